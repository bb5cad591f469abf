"""The views the daemon answers with, built from a unit's status and the store (host layer).

A session that systemd still knows is described from its unit (its properties); one that systemd
has forgotten, from its last record in the store. The building is pure functions over those
values; Views adds the two reads they need (is the port answering, the last record).
"""

from __future__ import annotations

import asyncio
import pwd
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from hostd.config import Config
from hostd.config.daemon import DaemonConfig
from hostd.daemon.idle import cull_at
from hostd.daemon.ports import ListenerCheck, SessionOwner
from hostd.daemon.sockets import Address, check_address, socket_path
from hostd.daemon.store import SessionRecord, Store, now
from hostd.daemon.systemd import UnitStatus
from hostd.daemon.table import SessionTable
from hostd.daemon.usage import OomWatcher
from hostd.units import cpu_limit_of
from hostd.units.failures import describe_end
from hostd.units.gpus import gpus_of_environment
from hostd.units.servers import (
    key_for_unit_name,
    split_session_key,
    unit_name_for_key,
)
from hostd.units.values import HostView, Limits, SessionState, SessionView

__all__ = [
    "ACTIVE",
    "ENDED",
    "OOM_REASON",
    "ListenerProbe",
    "Views",
    "base_url_for_key",
    "ended_reason",
    "host_view",
    "session_address",
    "session_port",
    "session_state",
    "session_url",
    "view_from_record",
    "view_from_status",
]

ACTIVE = ("active", "activating", "reloading")
ENDED = ("inactive", "failed")
OOM_REASON = "killed: out of memory (MemoryMax reached)"

# Who answers on a session's address (hostd.daemon.sockets.check_address; blocking, run in a
# thread).
ListenerProbe = Callable[[Address, SessionOwner], ListenerCheck]


def ended_reason(status: UnitStatus | None) -> str:
    """Why a session ended on its own: "ended", or "crashed: exit status 3" and the like."""
    if status is None or status.result in (None, "success"):
        return "ended"
    return f"crashed: {describe_end(status.result, status.exit_code, status.exit_status)}"


def base_url_for_key(daemon: DaemonConfig, key: str) -> str:
    """A server's base URL: the default server's as before (``<prefix><user>/``), a named
    one's ``<prefix><user>/<server>/`` (JupyterHub's /user/<name>/<server>/)."""
    user, server = split_session_key(key)
    base = daemon.base_url_for(user)
    return f"{base}{quote(server, safe='')}/" if server else base


def session_port(status: UnitStatus) -> int | None:
    """The port the daemon gave the session (its unit's HOSTD_PORT)."""
    text = status.env("HOSTD_PORT")
    return int(text) if text and text.isdigit() else None


def session_address(status: UnitStatus, sessions_dir: Path, name: str) -> Address:
    """Where the session's server answers: the port the daemon gave it (HOSTD_PORT, a {PORT}
    cmd), else its socket. The socket's path follows from the user's name, so no public
    property of the unit names it."""
    port = session_port(status)
    return port if port is not None else socket_path(sessions_dir, name)


def session_url(address: Address, base_url: str) -> str:
    """The session's URL: http://127.0.0.1:PORT/BASE/, or for a socket jupyter_server's own
    form, http+unix://<the path, percent-encoded>/BASE/."""
    if isinstance(address, int):
        return f"http://127.0.0.1:{address}{base_url}"
    return f"http+unix://{quote(str(address), safe='')}{base_url}"


def session_state(status: UnitStatus, *, answering: bool, stopping: bool = False) -> SessionState:
    """The session's state from its unit's; an active unit whose server does not answer yet
    is starting, unless the daemon is stopping it (``stopping``)."""
    if stopping and status.active_state in ACTIVE:
        return "stopping"
    if status.active_state in ("active", "reloading"):
        return "running" if answering else "starting"
    if status.active_state == "activating":
        return "starting"
    if status.active_state == "deactivating":
        return "stopping"
    if status.active_state == "failed" or status.result not in (None, "success"):
        return "failed"
    return "stopped"


def view_from_status(
    name: str,
    status: UnitStatus,
    *,
    answering: bool,
    address: Address | None,
    base_url: str,
    result_of: Callable[[str | None, int | None], str | None],
    profile: str | None,
    stopping: bool = False,
    stop_reason: str | None = None,
) -> SessionView:
    """The view of a session whose unit systemd knows. ``stopping``: the daemon is stopping
    it; ``stop_reason``: why, while its end is not recorded yet (the reason it will record)."""
    state = session_state(status, answering=answering, stopping=stopping or stop_reason is not None)
    url = (
        session_url(address, base_url)
        if address is not None and state in ("starting", "running")
        else None
    )
    ended = state in ("failed", "stopped")
    reason = result = None
    if ended:  # not yet recorded (by the reaper, or the stop): the same words it will use
        # result_of: systemd's Result, or "oom-kill" where the OOM watcher saw the main
        # process die of the kernel's OOM kill (OOMPolicy=continue reports it as "signal").
        result = result_of(status.result, status.exit_status)
        if result == "oom-kill":
            reason = OOM_REASON
        elif stop_reason is not None:  # Ends.finish(stopped=True): a stop is not a failure
            state, reason = "stopped", stop_reason
        else:
            reason = ended_reason(status)
    user, server = split_session_key(name)
    return SessionView(
        user=user,
        server=server,
        unit=unit_name_for_key(name),
        state=state,
        result=result,
        exit_status=status.exit_status if ended else None,
        started_at=status.active_since,
        url=url,
        limits=Limits(status.memory_max, cpu_limit_of(status.cpu_quota_usec)),
        reason=reason,
        profile=profile,
        gpus=gpus_of_environment(status.env("HOSTD_GPUS")) if not ended else (),
    )


def view_from_record(name: str, unit: str, record: SessionRecord | None) -> SessionView:
    """The view of a session systemd no longer knows, from its last record (if any)."""
    user, server = split_session_key(name)
    if record is None:
        return SessionView(user=user, server=server, unit=unit, state="stopped")
    state: SessionState = "failed" if record.state == "failed" else "stopped"
    if record.ended_at is None:
        state = "stopped"
    return replace(
        SessionView(user=user, server=server, unit=unit, state=state),
        result=record.result,
        exit_status=record.exit_status,
        started_at=record.started_at,
        limits=Limits(record.mem_limit_bytes, record.cpu_limit),
        reason=record.reason,
        profile=record.profile,
        profile_slug=record.profile_slug,
    )


def host_view(
    active: Iterable[UnitStatus],
    *,
    memory_total: int,
    memory_available: int,
    cpus: int,
    memory_capacity: int,
    waiting: int,
) -> HostView:
    """The host's totals over the active session units."""
    units = list(active)
    return HostView(
        memory_total_bytes=memory_total,
        memory_available_bytes=memory_available,
        cpus=cpus,
        sessions_running=len(units),
        memory_limits_bytes=sum(s.memory_max or 0 for s in units),
        cpu_limits=round(sum(cpu_limit_of(s.cpu_quota_usec) or 0.0 for s in units), 3),
        memory_capacity_bytes=memory_capacity,
        starts_waiting=waiting,
    )


class Views:
    """Session views with what they need read: the port (the session's own listener?) and the
    store."""

    def __init__(
        self,
        config: Config,
        store: Store,
        table: SessionTable,
        oom: OomWatcher,
        *,
        probe: ListenerProbe = check_address,
    ) -> None:
        self.config = config
        self.store = store
        self.table = table
        self.oom = oom
        self.probe = probe

    async def session(
        self, name: str, status: UnitStatus | None, *, answering: bool | None = None
    ) -> SessionView:
        """From the unit if systemd knows it, else from the store. answering=None: look at the
        port (only for an active unit, where it tells starting from running): running only
        when the session's own process listens there, never someone else's."""
        if status is None:
            return await self.stored(name, unit_name_for_key(name))
        # A stop the daemon begins while this view is built (a cull, another caller's) makes
        # the session "stopping": its listener may be gone while the unit read still active.
        stops_begun = self.table.stops_begun(name)
        if answering is None and status.active_state in ("active", "reloading"):
            answering = (await self.listener(status)).state == "ours"
        stop_reason = self.table.stop_reason(name)
        ended = status.active_state in ENDED
        if ended and stop_reason is None and self.table.record_id(name) is None:
            # Its end is recorded (a stop finished while the unit was read): the store says how.
            return await self.stored(name, unit_name_for_key(name))
        stopping = self.table.stops_begun(name) != stops_begun
        view = view_from_status(
            name,
            status,
            answering=bool(answering),
            address=self.address(name, status),
            base_url=base_url_for_key(self.config.daemon, name),
            result_of=lambda result, exit_status: self.oom.result_of(name, result, exit_status),
            profile=self.table.profile(name),
            stopping=stopping,
            stop_reason=stop_reason,
        )
        view = replace(view, profile_slug=self.table.profile_slug(name))
        if view.state != "running":
            return view
        return replace(view, cull_at=self.cull_at(name))

    def cull_at(self, name: str) -> datetime | None:
        """When the reaper will cull the session, once within [capacity] idle_warning of it."""
        capacity = self.config.capacity
        return cull_at(
            self.table[name].active_at if self.table.record_id(name) is not None else None,
            idle_timeout_s=capacity.idle_timeout_s,
            idle_warning_s=capacity.idle_warning_s,
            now_monotonic=time.monotonic(),
            now_wall=now(),
        )

    def address(self, name: str, status: UnitStatus) -> Address:
        """Where the session's server answers (session_address)."""
        return session_address(status, self.config.daemon.sessions_dir, name)

    async def listener(self, status: UnitStatus, uid: int | None = None) -> ListenerCheck:
        """Who answers on the session's address: nobody yet, the session itself, or another
        process. ``uid``: the session user's, when the caller knows it (else from User=)."""
        name = key_for_unit_name(status.name)
        if name is None:
            return ListenerCheck("none")
        address = self.address(name, status)
        if uid is None:
            uid = await asyncio.to_thread(_uid_of, status.user)
            if uid is None:
                return ListenerCheck("none")
        owner = SessionOwner(uid, status.control_group, status.main_pid)
        return await asyncio.to_thread(self.probe, address, owner)

    async def stored(self, name: str, unit: str) -> SessionView:
        record = await asyncio.to_thread(self.store.last_for, name)
        return view_from_record(name, unit, record)


def _uid_of(user: str | None) -> int | None:
    """The uid of a unit's User= (None: no such account any more, or no User=)."""
    if not user:
        return None
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return None
