"""Sessions: one transient systemd unit per user (host layer; implements SessionService).

State lives in systemd: every answer about a session is read from its unit (one GetAll), so a
daemon killed with -9 loses nothing; on start-up it lists ``jupyter-*.service`` and carries on.
The store keeps history (who, when, limits, how it ended). What lives only in memory is cheap
to rebuild: the port each running session holds (also in the unit's HOSTD_PORT) and a lock
per user, so a start and a stop of the same user never interleave.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import os
import shutil
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import Any

import psutil

from hostd.config import Config
from hostd.config.profiles import apply_profile
from hostd.daemon import credentials, journal
from hostd.daemon.login import Authenticator
from hostd.daemon.metrics import Metrics, SessionSample
from hostd.daemon.ports import allocate_port, port_open
from hostd.daemon.store import SessionRecord, Store, now
from hostd.daemon.systemd import SystemdClient, UnitStatus
from hostd.daemon.usage import OomWatcher, UsageSampler, open_connections
from hostd.daemon.users import group_names, lookup_user, name_for_uid, user_in_group
from hostd.units import (
    UNIT_PREFIX,
    UNIT_SUFFIX,
    Property,
    SessionPolicy,
    SessionRequest,
    UnitSpec,
    build_unit,
    cpu_quota_usec,
    unit_name_for,
    user_for_unit_name,
    validate_username,
)
from hostd.units.errors import (
    CapacityExceeded,
    InvalidOption,
    PermissionDenied,
    SessionConflict,
    SessionNotFound,
    SpawnFailed,
)
from hostd.units.failures import describe_end, exit_kind
from hostd.units.values import (
    AuthResult,
    Caller,
    Credentials,
    HostView,
    Limits,
    LogLine,
    PeerCredentials,
    PolicyView,
    SessionState,
    SessionView,
    StartOutcome,
    UsageView,
)

log = logging.getLogger(__name__)

READY_POLL_S = 0.02  # how often a starting session's port is tried
STATE_POLL_S = 0.1  # how often its unit is read meanwhile (a failure shows within this)
REAP_INTERVAL_S = 2.0  # how often ended sessions are recorded and their leftovers removed
FAILURE_LOG_LINES = 20
OOM_REASON = "killed: out of memory (MemoryMax reached)"
CUT_OFF_REASON = "hostd stopped before the session was running; start it again"
ACTIVE = ("active", "activating", "reloading")
ENDED = ("inactive", "failed")


class SessionManager:
    """The daemon's SessionService. Create with ``await SessionManager.create(config)``."""

    def __init__(self, config: Config, systemd: SystemdClient, store: Store) -> None:
        self.config = config
        self.systemd = systemd
        self.store = store
        self._ports: dict[str, int] = {}  # user -> port of a session that is not over
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._records: dict[str, int] = {}  # user -> store id of the session not yet ended
        self._reaper: asyncio.Task[None] | None = None
        self._credentials = config.daemon.runtime_dir / "credentials"
        self.sampler = UsageSampler(None)
        self.oom = OomWatcher()
        self.metrics_registry = Metrics()
        capacity = config.capacity
        self._admission = asyncio.Semaphore(capacity.max_concurrent_starts)
        self._waiting = 0  # starts queued behind the concurrency limit
        self._promised: dict[str, int] = {}  # user -> memory limit of a session not over
        self._activity: dict[str, float] = {}  # user -> monotonic time of its last activity
        self._profiles: dict[str, str] = {}  # user -> profile its running session got
        self._memory_total = 0  # set by create(): no I/O in the constructor
        self.authenticator = Authenticator(config.auth, config.daemon)

    @classmethod
    async def create(cls, config: Config) -> SessionManager:
        systemd = await SystemdClient.connect()
        store = await asyncio.to_thread(Store.open, config.daemon.state_dir / "hostd.sqlite")
        manager = cls(config, systemd, store)
        manager.sampler = UsageSampler.load()
        manager._memory_total = psutil.virtual_memory().total
        await manager.cap_slice()
        await manager.reattach()
        manager._reaper = asyncio.create_task(manager._reap_forever())
        return manager

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        self.oom.close()
        await self.systemd.close()
        await asyncio.to_thread(self.store.close)

    # -- SessionService -------------------------------------------------------------------

    def authorize(self, peer: PeerCredentials | None) -> Caller:
        if peer is None:
            raise PermissionDenied("no peer credentials: connect over the daemon's Unix socket")
        if peer.uid == 0:
            return Caller(uid=0, name="root", privileged=True, acts_for_others=True)
        group = self.config.daemon.socket_group
        if user_in_group(peer.uid, group):
            name = name_for_uid(peer.uid)
            acts_for_others = name in self.config.daemon.act_for_others
            return Caller(
                uid=peer.uid, name=name, privileged=False, acts_for_others=acts_for_others
            )
        raise PermissionDenied(f"uid {peer.uid} is neither root nor in group {group!r}")

    async def start(
        self,
        user: str,
        request: SessionRequest,
        *,
        caller: Caller,
        wait: bool = True,
        command: str | None = None,
        secrets: Mapping[str, str] | None = None,
    ) -> StartOutcome:
        started_at = time.monotonic()
        try:
            outcome = await self._start(user, request, caller, wait, command, secrets or {})
        except Exception:
            self.metrics_registry.spawn_duration.labels(status="failure").observe(
                time.monotonic() - started_at
            )
            raise
        if outcome.created:
            self.metrics_registry.spawn_duration.labels(status="success").observe(
                time.monotonic() - started_at
            )
        return outcome

    async def _start(
        self,
        user: str,
        request: SessionRequest,
        caller: Caller,
        wait: bool,
        command: str | None,
        secrets: Mapping[str, str],
    ) -> StartOutcome:
        daemon = self.config.daemon
        info = await asyncio.to_thread(
            lookup_user,
            user,
            min_uid=daemon.resolved_min_uid,
            allowed_groups=daemon.allowed_groups,
        )
        name = info.name
        unit = unit_name_for(name)
        credentials.check_secrets(secrets)
        groups = await asyncio.to_thread(group_names, info.name, info.gid)
        policy, profile = self._policy_for(name, groups, command)
        async with self._locks[name]:
            status = await self.systemd.unit_status(unit)
            if status is not None and status.active_state in ACTIVE:
                view = await self._view(name, status)
                if wait and view.state == "starting":
                    view = await self._wait_ready(name, unit, self._deadline())
                return StartOutcome(view, created=False)
            if status is not None and status.active_state == "deactivating":
                raise SessionConflict(f"the session of {name} is stopping; start it again shortly")
            if status is not None:  # ended but still loaded (our AddRef): free the name
                await self._finish(name, unit, status, reason="ended")
            low, high = daemon.port_range
            port = self._ports[name] = allocate_port(low, high, set(self._ports.values()))
            token_file = credentials.write_token(self._credentials, unit, info.uid, info.gid)
            secrets_dir = credentials.write_secrets(token_file.parent, secrets, info.uid, info.gid)
            base_url = daemon.base_url_for(name)
            try:
                spec = build_unit(
                    policy,
                    info,
                    request,
                    port=port,
                    base_url=base_url,
                    privileged=caller.privileged,
                    hostd_environment={
                        "HOSTD_PORT": str(port),
                        "JUPYTER_TOKEN_FILE": str(token_file),
                        **({"HOSTD_CREDENTIALS_DIR": str(secrets_dir)} if secrets_dir else {}),
                    },
                )
                self._promise_memory(name, _prop(spec, "MemoryMax") or 0)
            except Exception:
                self._release(name, unit)
                raise
            # AddRef keeps the unit loaded after it ends, while our bus connection lives, so its
            # Result can be read before systemd collects it (SYSTEMD-NOTES.md).
            spec = UnitSpec(spec.name, (*spec.properties, Property("AddRef", "b", True)))
            record = await asyncio.to_thread(
                self.store.add,
                SessionRecord(
                    user=name,
                    unit=unit,
                    port=port,
                    started_at=now(),
                    mem_limit_bytes=_prop(spec, "MemoryMax"),
                    cpu_limit=_cpu(_prop(spec, "CPUQuotaPerSecUSec")),
                    started_by_uid=caller.uid,
                    profile=profile,
                ),
            )
            assert record.id is not None
            self._records[name] = record.id
            self._activity[name] = time.monotonic()
            if profile is not None:
                self._profiles[name] = profile
            log.info(
                "starting %s for %s on port %d",
                unit,
                name,
                port,
                extra={"HOSTD_USER": name, "UNIT": unit},
            )
            # Beyond max_concurrent_starts, starts wait here in arrival order (asyncio's
            # Semaphore wakes waiters first in, first out) instead of failing.
            self._waiting += 1
            try:
                await self._admission.acquire()
            finally:
                self._waiting -= 1
            try:
                try:
                    job = await self.systemd.start_unit(spec)
                except Exception:
                    await self._abandon(name, unit, reason="systemd refused the unit")
                    raise
                if job != "done":
                    raise await self._start_failed(name, unit, f"systemd's start job ended '{job}'")
                status = await self.systemd.unit_status(unit)
                if status is not None:
                    self.oom.watch(name, self.sampler.memory_dir(status.control_group or ""))
                if not wait:
                    return StartOutcome(await self._view(name, status), created=True)
                view = await self._wait_ready(name, unit, self._deadline())
                return StartOutcome(view, created=True)
            finally:
                self._admission.release()

    async def stop(self, user: str, *, caller: Caller) -> SessionView:
        # No account lookup: the session of a deleted account can still be stopped.
        name = validate_username(user)
        unit = unit_name_for(name)
        async with self._locks[name]:
            status = await self.systemd.unit_status(unit)
            if status is not None and status.active_state not in ENDED:
                started = time.monotonic()
                job = await self.systemd.stop_unit(unit)
                status = await self.systemd.unit_status(unit)
                self.metrics_registry.stop_duration.labels(
                    status="success" if job in ("done", "no-such-unit") else "failure"
                ).observe(time.monotonic() - started)
                log.info(
                    "stopped %s in %.3f s",
                    unit,
                    time.monotonic() - started,
                    extra={"HOSTD_USER": name, "UNIT": unit},
                )
                await self._finish(
                    name, unit, status, reason=f"stopped by {caller.name}", stopped=True
                )
            elif status is not None:
                await self._finish(name, unit, status, reason="ended")
            else:
                await self._finish(name, unit, None, reason="ended")
            return await self._stored_view(name, unit)

    async def get(self, user: str) -> SessionView:
        name = validate_username(user)
        unit = unit_name_for(name)
        status = await self.systemd.unit_status(unit)
        if status is not None and (status.active_state not in ENDED or name in self._records):
            view = await self._view(name, status)
        else:
            view = await self._stored_view(name, unit)
            if view.started_at is None:
                raise SessionNotFound(f"{name} has no session")
        if view.state == "failed":  # what it printed last says why, as journalctl -u would
            lines = await journal.tail(unit, FAILURE_LOG_LINES)
            view = replace(view, log=tuple(line.message for line in lines))
        return view

    async def list(self) -> list[SessionView]:
        statuses = await self.systemd.list_units(f"{UNIT_PREFIX}*{UNIT_SUFFIX}")
        views = []
        for status in statuses:
            name = user_for_unit_name(status.name)
            if name is not None:
                views.append(await self._view(name, status))
        return sorted(views, key=lambda v: v.user)

    async def logs(self, user: str, *, lines: int) -> builtins.list[LogLine]:
        return await journal.tail(unit_name_for(validate_username(user)), lines)

    def follow(self, user: str, *, cursor: str | None) -> AsyncIterator[LogLine]:
        return journal.follow(unit_name_for(validate_username(user)), cursor=cursor)

    async def health(self) -> dict[str, Any]:
        version = await self.systemd.version()
        running = sum(1 for v in await self.list() if v.state in ("starting", "running"))
        return {"status": "ok", "systemd": version, "sessions": running}

    async def usage(self, user: str) -> UsageView:
        name = validate_username(user)
        status = await self.systemd.unit_status(unit_name_for(name))
        if status is None or status.active_state not in ACTIVE:
            raise SessionNotFound(f"{name} has no running session")
        cpu_limit = _cpu(status.cpu_quota_usec)
        usage = self.sampler.read(name, status.control_group)
        if usage is not None and not self.sampler.has_fresh_pair(name):
            # No recent sample to compare with: measure over a short interval now.
            await asyncio.sleep(0.5)
            usage = self.sampler.read(name, status.control_group) or usage
        return self.sampler.view(name, usage, cpu_limit)

    async def token(self, user: str) -> str:
        name = validate_username(user)
        if name not in self._records:
            raise SessionNotFound(f"{name} has no running session")
        try:
            return await asyncio.to_thread(
                credentials.read_token, self._credentials, unit_name_for(name)
            )
        except FileNotFoundError:
            raise SessionNotFound(f"{name} has no running session") from None

    async def host(self) -> HostView:
        memory = psutil.virtual_memory()
        active = [s for s in await self._session_units() if s.active_state in ACTIVE]
        return HostView(
            memory_total_bytes=memory.total,
            memory_available_bytes=memory.available,
            cpus=os.cpu_count() or 1,
            sessions_running=len(active),
            memory_limits_bytes=sum(s.memory_max or 0 for s in active),
            cpu_limits=round(sum(_cpu(s.cpu_quota_usec) or 0.0 for s in active), 3),
            memory_capacity_bytes=self._memory_capacity(),
            starts_waiting=self._waiting,
        )

    async def policy(self) -> PolicyView:
        source = self.config.source
        return PolicyView.of(
            self.config.session,
            commands=self.config.commands,
            config_file=None if source is None else str(source),
        )

    async def set_limits(
        self, user: str, *, mem_limit: int | None, cpu_limit: float | None, caller: Caller
    ) -> SessionView:
        if not caller.privileged:
            raise PermissionDenied("only root may change the limits of a running session")
        if mem_limit is None and cpu_limit is None:
            raise InvalidOption("give mem_limit, cpu_limit or both")
        name = validate_username(user)
        unit = unit_name_for(name)
        async with self._locks[name]:
            status = await self.systemd.unit_status(unit)
            if status is None or status.active_state not in ACTIVE:
                raise SessionNotFound(f"{name} has no running session")
            properties: list[Property] = []
            if mem_limit is not None:
                self._promise_memory(name, mem_limit)
                properties.append(Property("MemoryMax", "t", mem_limit))
            if cpu_limit is not None:
                properties.append(Property("CPUQuotaPerSecUSec", "t", cpu_quota_usec(cpu_limit)))
            await self.systemd.set_properties(unit, tuple(properties))
            log.info(
                "limits of %s set to mem_limit=%s cpu_limit=%s by %s",
                unit,
                mem_limit,
                cpu_limit,
                caller.name,
                extra={"HOSTD_USER": name, "UNIT": unit},
            )
            changes: dict[str, object] = {}
            if mem_limit is not None:
                changes["mem_limit_bytes"] = mem_limit
                await self._enforce_lowered_memory(name, unit, status, mem_limit)
            if cpu_limit is not None:
                changes["cpu_limit"] = cpu_limit
            await self._mark(name, **changes)
            return await self._view(name, await self.systemd.unit_status(unit))

    async def activity(self, user: str, *, caller: Caller) -> None:
        name = validate_username(user)
        if name not in self._records:
            raise SessionNotFound(f"{name} has no running session")
        self._activity[name] = time.monotonic()

    async def metrics(self) -> tuple[bytes, str]:
        samples = []
        for status in await self._session_units():
            name = user_for_unit_name(status.name)
            if name is None or status.active_state not in ACTIVE:
                continue
            usage = self.sampler.read(name, status.control_group)
            view = self.sampler.view(name, usage, _cpu(status.cpu_quota_usec))
            samples.append(SessionSample(view, status.memory_max))
        return self.metrics_registry.render(samples, self._waiting)

    async def authenticate(self, credentials: Credentials) -> AuthResult:
        return await self.authenticator.authenticate(credentials)

    async def cap_slice(self) -> None:
        """jupyter.slice's MemoryMax: all sessions together leave room for the daemon, the hub
        and sshd, whatever each session's own limit is."""
        limit = self._memory_capacity()
        try:
            await self.systemd.set_properties(
                "jupyter.slice",
                (
                    Property("MemoryAccounting", "b", True),
                    Property("MemoryMax", "t", limit),
                ),
            )
        except Exception as exc:
            log.warning("could not cap jupyter.slice at %d bytes: %s", limit, exc)
        else:
            log.info("jupyter.slice capped at %d bytes of memory", limit)

    # -- reattach and reaping ---------------------------------------------------------------

    async def reattach(self) -> None:
        """Take over what systemd runs (after a restart or a kill -9) and tidy what ended."""
        active: set[str] = set()
        for status in await self.systemd.list_units(f"{UNIT_PREFIX}*{UNIT_SUFFIX}"):
            name = user_for_unit_name(status.name)
            if name is None or status.active_state in ENDED:
                continue
            active.add(status.name)
            self._promised[name] = status.memory_max or 0
            self._activity[name] = time.monotonic()
            self.oom.watch(name, self.sampler.memory_dir(status.control_group or ""))
            port = status.env("HOSTD_PORT")
            if port and port.isdigit():
                self._ports[name] = int(port)
        for record in await asyncio.to_thread(self.store.open_records):
            if record.unit in active and record.id is not None:
                self._records[record.user] = record.id
                if record.profile:
                    self._profiles[record.user] = record.profile
            elif record.id is not None:
                # A start that hostd's death cut off (queued, or its unit gone) never ran for
                # its user: a failure to report, with a reason, not a quiet stop (issue 9).
                cut_off = record.state == "starting"
                await asyncio.to_thread(
                    self.store.update,
                    record.id,
                    ended_at=now(),
                    state="failed" if cut_off else "stopped",
                    reason=CUT_OFF_REASON if cut_off else "ended while hostd was down",
                )
        if self._credentials.is_dir():
            for leftover in self._credentials.iterdir():
                if leftover.name not in active:
                    shutil.rmtree(leftover, ignore_errors=True)
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
        sample the running ones; stop those idle for longer than capacity.idle_timeout."""
        idle_timeout = self.config.capacity.idle_timeout_s
        for name in list(self._records):
            unit = unit_name_for(name)
            if self._locks[name].locked():
                continue
            async with self._locks[name]:
                status = await self.systemd.unit_status(unit)
                if status is None or status.active_state in ENDED:
                    await self._finish(name, unit, status, reason=_ended_reason(status))
                    continue
                self.sampler.read(name, status.control_group)
                self.oom.watch(name, self.sampler.memory_dir(status.control_group or ""))
                if idle_timeout > 0 and status.active_state == "active":
                    idle_s = self._idle_seconds(name, status)
                    if idle_s > idle_timeout:
                        await self._stop_locked(name, unit, f"idle for {idle_s:.0f} s (culled)")

    def _idle_seconds(self, name: str, status: UnitStatus) -> float:
        """Seconds since the last activity: the hub's report, CPU use or an open connection."""
        now_s = time.monotonic()
        busy = (
            self.sampler.recent_cpu_percent(name) or 0.0
        ) > self.config.capacity.idle_cpu_percent
        port = status.env("HOSTD_PORT")
        if busy or (port and port.isdigit() and open_connections(int(port)) > 0):
            self._activity[name] = now_s
        return now_s - self._activity.get(name, now_s)

    async def _stop_locked(self, name: str, unit: str, reason: str) -> None:
        started = time.monotonic()
        job = await self.systemd.stop_unit(unit)
        status = await self.systemd.unit_status(unit)
        self.metrics_registry.stop_duration.labels(
            status="success" if job in ("done", "no-such-unit") else "failure"
        ).observe(time.monotonic() - started)
        log.info("stopped %s: %s", unit, reason, extra={"HOSTD_USER": name, "UNIT": unit})
        await self._finish(name, unit, status, reason=reason, stopped=True)

    # -- helpers --------------------------------------------------------------------------

    def _policy_for(
        self, name: str, groups: tuple[str, ...], command: str | None
    ) -> tuple[SessionPolicy, str | None]:
        """[session], with the most specific profile's limits and the named command."""
        policy = self.config.session
        if command is not None:
            argv = self.config.commands.get(command)
            if argv is None:
                known = ", ".join(sorted(self.config.commands)) or "none"
                raise InvalidOption(f"unknown command {command!r} (the admin defined: {known})")
            policy = replace(policy, cmd=argv)
        match = self.config.profiles.match(name, groups)
        if match is None:
            return policy, None
        label, limits = match
        return apply_profile(policy, limits), label

    def _memory_capacity(self) -> int:
        return int(self._memory_total * self.config.capacity.memory_share)

    def _promise_memory(self, name: str, mem_limit: int) -> None:
        """Count a session's memory limit against the share of RAM sessions may be promised."""
        others = sum(v for user, v in self._promised.items() if user != name)
        capacity = self._memory_capacity()
        if others + mem_limit > capacity:
            raise CapacityExceeded(
                f"starting this session would promise {others + mem_limit} bytes of memory, "
                f"over the {capacity} bytes sessions may have together (memory_share "
                f"{self.config.capacity.memory_share:g}); try again when another stops",
                retry_after_s=self.config.capacity.retry_after_s,
            )
        self._promised[name] = mem_limit

    async def _enforce_lowered_memory(
        self, name: str, unit: str, status: UnitStatus, mem_limit: int
    ) -> None:
        """On cgroup v1 the kernel refuses a limit below what is in use (EBUSY) and systemd
        only logs it; v2 OOM-kills instead. hostd makes v1 behave as v2: the session that
        uses more than its new limit is killed, and says why."""
        usage = self.sampler.read(name, status.control_group)
        directory = self.sampler.memory_dir(status.control_group or "")
        if usage is None or directory is None or (usage.memory_bytes or 0) <= mem_limit:
            return
        try:
            applied = int((directory / "memory.limit_in_bytes").read_text())
        except (OSError, ValueError):
            return
        if applied <= mem_limit:
            return  # the kernel reclaimed enough and took the limit
        log.warning(
            "%s uses %d bytes, over its new limit %d: killing it",
            unit,
            usage.memory_bytes,
            mem_limit,
            extra={"HOSTD_USER": name, "UNIT": unit},
        )
        self.oom.killed[name] = self.oom.killed.get(name, 0) + 1
        await self.systemd.kill_unit(unit)

    async def _session_units(self) -> builtins.list[UnitStatus]:
        return await self.systemd.list_units(f"{UNIT_PREFIX}*{UNIT_SUFFIX}")

    def _deadline(self) -> float:
        return time.monotonic() + self.config.daemon.start_timeout_s

    async def _wait_ready(self, name: str, unit: str, deadline: float) -> SessionView:
        """Until the session answers on its port, or its unit ends (reported at once)."""
        port = self._ports.get(name)
        next_state_check = 0.0
        while True:
            if port is not None and await port_open(port):
                status = await self.systemd.unit_status(unit)
                if status is not None and status.active_state in ACTIVE:
                    await self._mark(name, state="running", invocation_id=status.invocation_id)
                    return await self._view(name, status, answering=True)
            if time.monotonic() >= next_state_check:
                if await self.systemd.active_state(unit) not in ACTIVE:
                    raise await self._start_failed(name, unit, "the session ended while starting")
                next_state_check = time.monotonic() + STATE_POLL_S
            if time.monotonic() >= deadline:
                await self.systemd.stop_unit(unit)
                raise await self._start_failed(
                    name,
                    unit,
                    f"the session did not answer on port {port} within "
                    f"{self.config.daemon.start_timeout_s:g} s",
                )
            await asyncio.sleep(READY_POLL_S)

    async def _start_failed(self, name: str, unit: str, why: str) -> SpawnFailed:
        status = await self.systemd.unit_status(unit)
        # The last lines the process printed reach journald a moment after it died.
        await asyncio.sleep(0.2)
        lines = [entry.message for entry in await journal.tail(unit, FAILURE_LOG_LINES)]
        end = describe_end(status.result, status.exit_code, status.exit_status) if status else ""
        if status is not None and self.oom.ended_by_oom(name, status.result, status.exit_status):
            end = OOM_REASON
        details = {
            "result": self.oom.result_of(name, status.result, status.exit_status)
            if status
            else None,
            "exit_status": status.exit_status if status else None,
            "exit": exit_kind(status.exit_code) if status else None,
            "log": lines,
        }
        await self._finish(name, unit, status, reason=f"failed to start: {why}", failed=True)
        message = f"the session of {name} failed to start: {why}" + (f"; {end}" if end else "")
        log.warning("%s", message, extra={"HOSTD_USER": name, "UNIT": unit})
        return SpawnFailed(message, details=details)

    async def _abandon(self, name: str, unit: str, *, reason: str) -> None:
        await self._finish(name, unit, None, reason=reason, failed=True)

    async def _finish(
        self,
        name: str,
        unit: str,
        status: UnitStatus | None,
        *,
        reason: str,
        stopped: bool = False,
        failed: bool = False,
    ) -> None:
        """Record the end, let systemd collect the unit, free the port and the token."""
        record_id = self._records.pop(name, None)
        result = self.oom.result_of(
            name, status.result if status else None, status.exit_status if status else None
        )
        if result == "oom-kill":
            reason, failed = OOM_REASON, True
        self.oom.pop_killed(name)
        self.oom.unwatch(name)
        self.sampler.forget(name)
        self._activity.pop(name, None)
        self._profiles.pop(name, None)
        if record_id is not None:
            state = (
                "failed"
                if failed or (status and status.result not in (None, "success") and not stopped)
                else "stopped"
            )
            await asyncio.to_thread(
                self.store.update,
                record_id,
                ended_at=now(),
                state=state,
                reason=reason,
                result=result,
                exit_status=status.exit_status if status else None,
            )
        if status is not None:
            await self.systemd.unref(unit)
            await self.systemd.reset_failed(unit)
        self._release(name, unit)

    def _release(self, name: str, unit: str) -> None:
        self._ports.pop(name, None)
        self._promised.pop(name, None)
        credentials.remove(self._credentials, unit)

    async def _mark(self, name: str, **changes: object) -> None:
        record_id = self._records.get(name)
        if record_id is not None:
            await asyncio.to_thread(self.store.update, record_id, **changes)

    async def _view(
        self, name: str, status: UnitStatus | None, *, answering: bool | None = None
    ) -> SessionView:
        unit = unit_name_for(name)
        if status is None:
            return await self._stored_view(name, unit)
        port_text = status.env("HOSTD_PORT")
        port = int(port_text) if port_text and port_text.isdigit() else None
        state: SessionState
        if status.active_state in ("active", "reloading"):
            if answering is None:
                answering = port is not None and await port_open(port)
            state = "running" if answering else "starting"
        elif status.active_state == "activating":
            state = "starting"
        elif status.active_state == "deactivating":
            state = "stopping"
        elif status.active_state == "failed" or status.result not in (None, "success"):
            state = "failed"
        else:
            state = "stopped"
        url = (
            f"http://127.0.0.1:{port}{self.config.daemon.base_url_for(name)}"
            if port is not None and state in ("starting", "running")
            else None
        )
        ended = state in ("failed", "stopped")
        reason = result = None
        if ended:  # ended on its own, not yet recorded by the reaper: the same words it will use
            result = self.oom.result_of(name, status.result, status.exit_status)
            reason = OOM_REASON if result == "oom-kill" else _ended_reason(status)
        return SessionView(
            user=name,
            unit=unit,
            state=state,
            result=result,
            exit_status=status.exit_status if ended else None,
            started_at=status.active_since,
            url=url,
            limits=Limits(status.memory_max, _cpu(status.cpu_quota_usec)),
            reason=reason,
            profile=self._profiles.get(name),
        )

    async def _stored_view(self, name: str, unit: str) -> SessionView:
        record = await asyncio.to_thread(self.store.last_for, name)
        if record is None:
            return SessionView(user=name, unit=unit, state="stopped")
        state: SessionState = "failed" if record.state == "failed" else "stopped"
        if record.ended_at is None:
            state = "stopped"
        return replace(
            SessionView(user=name, unit=unit, state=state),
            result=record.result,
            exit_status=record.exit_status,
            started_at=record.started_at,
            limits=Limits(record.mem_limit_bytes, record.cpu_limit),
            reason=record.reason,
            profile=record.profile,
        )


def _ended_reason(status: UnitStatus | None) -> str:
    """Why a session ended on its own: "ended", or "crashed: exit status 3" and the like."""
    if status is None or status.result in (None, "success"):
        return "ended"
    return f"crashed: {describe_end(status.result, status.exit_code, status.exit_status)}"


def _prop(spec: UnitSpec, name: str) -> int | None:
    for prop in spec.properties:
        if prop.name == name and isinstance(prop.value, int):
            return prop.value
    return None


def _cpu(quota_usec: int | None) -> float | None:
    return None if quota_usec is None else round(quota_usec / 1_000_000, 3)
