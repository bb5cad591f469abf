"""The reaper: take over sessions at start-up, record those that end, cull idle ones (host).

At start-up reattach() lists ``jupyter-*.service`` and rebuilds the SessionTable from what
systemd runs and the store's open records (a daemon killed with -9 loses nothing). Every
REAP_INTERVAL_S, reap() records sessions that ended on their own (crash, OOM kill) and frees
what they held, samples the running ones and stops those idle for longer than
capacity.idle_timeout, and, once a drain's time has come (hostd.daemon.maintenance), every
running session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time

from hostd.daemon.ends import Ends
from hostd.daemon.history import HostHistory
from hostd.daemon.maintenance import Maintenance, drain_reason
from hostd.daemon.session_parts import SessionParts
from hostd.daemon.sockets import remove_socket_dir
from hostd.daemon.store import now
from hostd.daemon.systemd import UnitStatus
from hostd.daemon.views import ENDED, ended_reason, session_port
from hostd.units import cpu_limit_of
from hostd.units.gpus import gpus_of_environment
from hostd.units.servers import key_for_unit_name, unit_name_for_key

__all__ = ["CUT_OFF_REASON", "REAP_INTERVAL_S", "Reaper"]

log = logging.getLogger(__name__)

REAP_INTERVAL_S = 2.0  # how often ended sessions are recorded and their leftovers removed
CUT_OFF_REASON = "hostd stopped before the session was running; start it again"


class Reaper:
    """Reattach once, then reap every REAP_INTERVAL_S (start() .. close())."""

    def __init__(
        self,
        parts: SessionParts,
        *,
        ends: Ends,
        maintenance: Maintenance | None = None,
        host_history: HostHistory | None = None,
    ) -> None:
        self.parts = parts
        self.maintenance = maintenance
        # The host's promised memory against its capacity, one reading a round (see reap).
        self.host_history = HostHistory() if host_history is None else host_history
        # The ends the reaper sees (a session ended on its own, one culled) are recorded as a
        # stop's are.
        self.ends = ends
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._reap_forever())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def reattach(self) -> None:
        """Take over what systemd runs (after a restart or a kill -9) and tidy what ended."""
        active: set[str] = set()
        active_users: set[str] = set()
        for status in await self.parts.session_units():
            name = key_for_unit_name(status.name)
            if name is None or status.active_state in ENDED:
                continue
            active.add(status.name)
            active_users.add(name)
            entry = self.parts.table[name]
            entry.promised = status.memory_max or 0
            entry.active_at = time.monotonic()
            self.parts.oom.watch(name, self.parts.sampler.memory_dir(status.control_group or ""))
            port = session_port(status)
            if port is not None:
                entry.port = port
            # The unit is the record of its GPUs: none is handed out twice after a restart.
            entry.gpus = gpus_of_environment(status.env("HOSTD_GPUS"))
        for record in await asyncio.to_thread(self.parts.store.open_records):
            if record.unit in active and record.id is not None:
                self.parts.table[record.user].record_id = record.id
                if record.profile:
                    self.parts.table[record.user].profile = record.profile
                self.parts.table[record.user].profile_slug = record.profile_slug
            elif record.id is not None:
                # A start that hostd's death cut off (queued, or its unit gone) never ran for
                # its user: a failure to report, with a reason, not a quiet stop (issue 9).
                cut_off = record.state == "starting"
                await asyncio.to_thread(
                    self.parts.store.update,
                    record.id,
                    ended_at=now(),
                    state="failed" if cut_off else "stopped",
                    reason=CUT_OFF_REASON if cut_off else "ended while hostd was down",
                )
        credentials_dir = self.parts.credentials_dir
        if credentials_dir.is_dir():
            for leftover in credentials_dir.iterdir():
                if leftover.name not in active:
                    shutil.rmtree(leftover, ignore_errors=True)
        sessions_dir = self.parts.config.daemon.sessions_dir
        if sessions_dir.is_dir():
            for leftover in sessions_dir.iterdir():
                if leftover.name not in active_users:
                    remove_socket_dir(sessions_dir, leftover.name)
        log.info("reattached to %d running sessions", len(active))

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(REAP_INTERVAL_S)
            try:
                await self.reap()
            except Exception:
                log.exception("reaping ended sessions failed; trying again")

    async def reap(self) -> None:
        """Record sessions that ended on their own (crash, OOM kill) and free what they held;
        sample the running ones; stop those idle for longer than capacity.idle_timeout, and
        every one once a drain's time has come."""
        idle_timeout = self.parts.config.capacity.idle_timeout_s
        drain = None if self.maintenance is None else self.maintenance.due()
        self.record_host()
        for name in self.parts.table.recorded():
            unit = unit_name_for_key(name)
            lock = self.parts.table.lock(name)
            if lock.locked():
                continue
            async with lock:
                status = await self.parts.systemd.unit_status(unit)
                if status is None or status.active_state in ENDED:
                    await self.ends.finish(name, unit, status, reason=ended_reason(status))
                    continue
                self.parts.sampler.read(
                    name, status.control_group, cpu_limit=cpu_limit_of(status.cpu_quota_usec)
                )
                self.parts.oom.watch(
                    name, self.parts.sampler.memory_dir(status.control_group or "")
                )
                if drain is not None:
                    await self.ends.stop_locked(name, unit, drain_reason(drain), requested=False)
                    continue
                if idle_timeout > 0 and status.active_state == "active":
                    idle_s = self.idle_seconds(name, status)
                    if idle_s > idle_timeout:
                        reason = f"idle for {idle_s:.0f} s (culled)"
                        await self.ends.stop_locked(name, unit, reason, requested=False)

    def record_host(self) -> None:
        """One reading of the host's history: the memory promised to sessions now (their
        limits, as admission counts them) against what they may be promised together."""
        table = self.parts.table
        self.host_history.record(
            committed=table.promised_total(),
            capacity=self.parts.admission.memory_capacity(),
            sessions=len(table.recorded()),
        )

    def idle_seconds(self, name: str, status: UnitStatus) -> float:
        """Seconds since the last activity: the hub's reports (POST .../activity, which only a
        caller acting for the user may send) or the session's own CPU use.

        Not an open TCP connection to the session's port: anyone on the machine may open one,
        and one held open kept an idle session from ever being culled (issue 13, attack 6).
        The hub reports every proxied request and WebSocket message it forwards instead.
        """
        now_s = time.monotonic()
        busy = (
            self.parts.sampler.recent_cpu_percent(name) or 0.0
        ) > self.parts.config.capacity.idle_cpu_percent
        entry = self.parts.table[name]
        if busy:
            entry.active_at = now_s
        return now_s - (entry.active_at if entry.active_at is not None else now_s)
