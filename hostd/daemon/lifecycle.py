"""A session's lifecycle: start, stop, read, change limits, record how it ended (host layer).

One transient unit per user. A start allocates a port, writes the token, builds the unit with
hostd.units, records it in the store, waits for a start slot (Admission) and for the server
to listen on its port; a stop stops the unit and records the end. Every end goes through
finish(), which records it, lets systemd collect the unit and frees what the session held.
All of it runs under the user's lock, so a start and a stop of one user never interleave.

Ready means the session's own listener: a socket on its port held by a process in its unit's
cgroup, running as its user (hostd.daemon.ports). The port is public (HOSTD_PORT in the unit's
Environment=), so another account may bind it first; that start fails, saying so, rather than
being called running at someone else's listener (issue 13, attack 3).
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from pathlib import Path

from hostd.config import Config
from hostd.config.profiles import apply_profile
from hostd.daemon import credentials, journal
from hostd.daemon.admission import Admission
from hostd.daemon.metrics import Metrics
from hostd.daemon.ports import ListenerCheck, SessionOwner, allocate_port
from hostd.daemon.store import SessionRecord, Store, now
from hostd.daemon.systemd import SystemdSeam, UnitStatus
from hostd.daemon.table import SessionTable
from hostd.daemon.usage import OomWatcher, UsageSampler
from hostd.daemon.users import group_names, lookup_user
from hostd.daemon.views import ACTIVE, ENDED, OOM_REASON, Views
from hostd.units import (
    UNIT_PREFIX,
    UNIT_SUFFIX,
    SessionPolicy,
    SessionRequest,
    build_unit,
    keep_loaded,
    limit_properties,
    spec_limits,
    unit_name_for,
    user_for_unit_name,
    validate_username,
)
from hostd.units.errors import (
    InvalidOption,
    PermissionDenied,
    SessionConflict,
    SessionNotFound,
    SpawnFailed,
)
from hostd.units.failures import describe_end, exit_kind
from hostd.units.values import Caller, SessionView, StartOutcome

__all__ = ["FAILURE_LOG_LINES", "Lifecycle", "policy_for"]

log = logging.getLogger(__name__)

READY_POLL_S = 0.05  # how often a starting session's port is looked at (a read of /proc/net/tcp)
STATE_POLL_S = 0.1  # how often its unit is read meanwhile (a failure shows within this)
FAILURE_LOG_LINES = 20


def policy_for(
    config: Config, name: str, groups: tuple[str, ...], command: str | None
) -> tuple[SessionPolicy, str | None]:
    """[session], with the most specific profile's limits and the named command; the
    profile's label."""
    policy = config.session
    if command is not None:
        argv = config.commands.get(command)
        if argv is None:
            known = ", ".join(sorted(config.commands)) or "none"
            raise InvalidOption(f"unknown command {command!r} (the admin defined: {known})")
        policy = replace(policy, cmd=argv)
    match = config.profiles.match(name, groups)
    if match is None:
        return policy, None
    label, limits = match
    return apply_profile(policy, limits), label


class Lifecycle:
    """Start, stop, get, list and set_limits of sessions, and the recording of their ends."""

    def __init__(
        self,
        config: Config,
        systemd: SystemdSeam,
        store: Store,
        *,
        table: SessionTable,
        admission: Admission,
        views: Views,
        sampler: UsageSampler,
        oom: OomWatcher,
        metrics: Metrics,
        check_account: Callable[[str], Awaitable[None]],
    ) -> None:
        self.config = config
        # Authenticator.check_account: PAM's account management, for every start.
        self.check_account = check_account
        self.systemd = systemd
        self.store = store
        self.table = table
        self.admission = admission
        self.views = views
        self.sampler = sampler
        self.oom = oom
        self.metrics = metrics
        self.credentials_dir: Path = config.daemon.runtime_dir / "credentials"

    # -- start ------------------------------------------------------------------------------

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
            self.metrics.spawn_duration.labels(status="failure").observe(
                time.monotonic() - started_at
            )
            raise
        if outcome.created:
            self.metrics.spawn_duration.labels(status="success").observe(
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
        # Whoever asks (the hub, a token, the spawner, root): a locked or expired account gets
        # no session (AccountDisabled), as it gets no login.
        await self.check_account(name)
        unit = unit_name_for(name)
        credentials.check_secrets(secrets)
        groups = await asyncio.to_thread(group_names, info.name, info.gid)
        policy, profile = policy_for(self.config, name, groups, command)
        async with self.admission.lock(name):
            status = await self.systemd.unit_status(unit)
            if status is not None and status.active_state in ACTIVE:
                view = await self.views.session(name, status)
                if wait and view.state == "starting":
                    view = await self.wait_ready(name, unit, self._deadline(), info.uid)
                return StartOutcome(view, created=False)
            if status is not None and status.active_state == "deactivating":
                raise SessionConflict(f"the session of {name} is stopping; start it again shortly")
            if status is not None:  # ended but still loaded (our AddRef): free the name
                await self.finish(name, unit, status, reason="ended")
            low, high = daemon.port_range
            entry = self.table[name]
            port = entry.port = allocate_port(low, high, self.table.ports())
            token_file = credentials.write_token(self.credentials_dir, unit, info.uid, info.gid)
            secrets_dir = credentials.write_secrets(token_file.parent, secrets, info.uid, info.gid)
            try:
                spec = build_unit(
                    policy,
                    info,
                    request,
                    port=port,
                    base_url=daemon.base_url_for(name),
                    privileged=caller.privileged,
                    hostd_environment={
                        "HOSTD_PORT": str(port),
                        # JupyterLab's default port_retries is 50: refused its port (another
                        # account bound it first) it would quietly serve on another one. An
                        # admin's cmd from an older config may lack --ServerApp.port_retries=0;
                        # jupyter_server reads this variable when the flag is not given.
                        "JUPYTER_PORT_RETRIES": "0",
                        "JUPYTER_TOKEN_FILE": str(token_file),
                        **({"HOSTD_CREDENTIALS_DIR": str(secrets_dir)} if secrets_dir else {}),
                    },
                )
                limits = spec_limits(spec)
                self.admission.promise_memory(name, limits.mem_limit_bytes or 0)
            except Exception:
                self.release(name, unit)
                raise
            # AddRef keeps the unit loaded after it ends, while our bus connection lives, so its
            # Result can be read before systemd collects it (SYSTEMD-NOTES.md).
            spec = keep_loaded(spec)
            record = await asyncio.to_thread(
                self.store.add,
                SessionRecord(
                    user=name,
                    unit=unit,
                    port=port,
                    started_at=now(),
                    mem_limit_bytes=limits.mem_limit_bytes,
                    cpu_limit=limits.cpu_limit,
                    started_by_uid=caller.uid,
                    profile=profile,
                ),
            )
            assert record.id is not None
            entry.record_id = record.id
            entry.active_at = time.monotonic()
            if profile is not None:
                entry.profile = profile
            log.info(
                "starting %s for %s on port %d",
                unit,
                name,
                port,
                extra={"HOSTD_USER": name, "UNIT": unit},
            )
            async with self.admission.start_slot():
                try:
                    job = await self.systemd.start_unit(spec)
                except Exception:
                    await self.finish(
                        name, unit, None, reason="systemd refused the unit", failed=True
                    )
                    raise
                if job != "done":
                    raise await self._start_failed(name, unit, f"systemd's start job ended '{job}'")
                status = await self.systemd.unit_status(unit)
                if status is not None:
                    self.oom.watch(name, self.sampler.memory_dir(status.control_group or ""))
                if not wait:
                    return StartOutcome(await self.views.session(name, status), created=True)
                view = await self.wait_ready(name, unit, self._deadline(), info.uid)
                return StartOutcome(view, created=True)

    def _deadline(self) -> float:
        return time.monotonic() + self.config.daemon.start_timeout_s

    async def wait_ready(self, name: str, unit: str, deadline: float, uid: int) -> SessionView:
        """Until the session's own process listens on its port (uid ``uid``, in the unit's
        cgroup), or its unit ends, or another process holds the port (both reported at once)."""
        port = self.table[name].port
        status = await self.systemd.unit_status(unit)
        next_state_check = time.monotonic() + STATE_POLL_S
        while True:
            found = await self._listener(port, uid, status)
            if found.state == "foreign" and port is not None:
                await self.systemd.stop_unit(unit)
                raise await self._start_failed(name, unit, found.describe(port))
            if found.state == "ours":
                status = await self.systemd.unit_status(unit)
                if status is not None and status.active_state in ACTIVE:
                    await self.mark(name, state="running", invocation_id=status.invocation_id)
                    return await self.views.session(name, status, answering=True)
            if time.monotonic() >= next_state_check:
                if await self.systemd.active_state(unit) not in ACTIVE:
                    # A server refused its port exits (JupyterLab with port_retries=0): if
                    # another process holds the port, that is the reason to give.
                    found = await self._listener(port, uid, status)
                    why = (
                        found.describe(port)
                        if found.state == "foreign" and port is not None
                        else "the session ended while starting"
                    )
                    raise await self._start_failed(name, unit, why)
                next_state_check = time.monotonic() + STATE_POLL_S
                if status is None or status.main_pid is None:
                    status = await self.systemd.unit_status(unit)
            if time.monotonic() >= deadline:
                await self.systemd.stop_unit(unit)
                raise await self._start_failed(
                    name,
                    unit,
                    f"the session did not answer on port {port} within "
                    f"{self.config.daemon.start_timeout_s:g} s",
                )
            await asyncio.sleep(READY_POLL_S)

    async def _listener(
        self, port: int | None, uid: int, status: UnitStatus | None
    ) -> ListenerCheck:
        """Who listens on the starting session's port (hostd.daemon.ports.check_listener)."""
        if port is None:
            return ListenerCheck("none")
        owner = SessionOwner(
            uid,
            status.control_group if status is not None else None,
            status.main_pid if status is not None else None,
        )
        return await asyncio.to_thread(self.views.probe, port, owner)

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
        await self.finish(name, unit, status, reason=f"failed to start: {why}", failed=True)
        message = f"the session of {name} failed to start: {why}" + (f"; {end}" if end else "")
        log.warning("%s", message, extra={"HOSTD_USER": name, "UNIT": unit})
        return SpawnFailed(message, details=details)

    # -- stop, read, limits -----------------------------------------------------------------

    async def stop(self, user: str, *, caller: Caller) -> SessionView:
        # No account lookup: the session of a deleted account can still be stopped.
        name = validate_username(user)
        unit = unit_name_for(name)
        async with self.admission.lock(name):
            status = await self.systemd.unit_status(unit)
            if status is not None and status.active_state not in ENDED:
                await self.stop_locked(name, unit, f"stopped by {caller.name}", requested=True)
            else:
                await self.finish(name, unit, status, reason="ended")
            return await self.views.stored(name, unit)

    async def stop_locked(self, name: str, unit: str, reason: str, *, requested: bool) -> None:
        """Stop the unit and record the end (the user's lock held). requested: a caller asked,
        rather than the daemon deciding (an idle session culled)."""
        started = time.monotonic()
        job = await self.systemd.stop_unit(unit)
        status = await self.systemd.unit_status(unit)
        self.metrics.stop_duration.labels(
            status="success" if job in ("done", "no-such-unit") else "failure"
        ).observe(time.monotonic() - started)
        extra = {"HOSTD_USER": name, "UNIT": unit}
        if requested:
            log.info("stopped %s in %.3f s", unit, time.monotonic() - started, extra=extra)
        else:
            log.info("stopped %s: %s", unit, reason, extra=extra)
        await self.finish(name, unit, status, reason=reason, stopped=True)

    async def get(self, user: str) -> SessionView:
        name = validate_username(user)
        unit = unit_name_for(name)
        status = await self.systemd.unit_status(unit)
        if status is not None and (
            status.active_state not in ENDED or self.table.record_id(name) is not None
        ):
            view = await self.views.session(name, status)
        else:
            view = await self.views.stored(name, unit)
            if view.started_at is None:
                raise SessionNotFound(f"{name} has no session")
        if view.state == "failed":  # what it printed last says why, as journalctl -u would
            lines = await journal.tail(unit, FAILURE_LOG_LINES)
            view = replace(view, log=tuple(line.message for line in lines))
        return view

    async def list(self) -> builtins.list[SessionView]:
        views = []
        for status in await self.session_units():
            name = user_for_unit_name(status.name)
            if name is not None:
                views.append(await self.views.session(name, status))
        return sorted(views, key=lambda v: v.user)

    async def session_units(self) -> builtins.list[UnitStatus]:
        return await self.systemd.list_units(f"{UNIT_PREFIX}*{UNIT_SUFFIX}")

    async def set_limits(
        self, user: str, *, mem_limit: int | None, cpu_limit: float | None, caller: Caller
    ) -> SessionView:
        if not caller.privileged:
            raise PermissionDenied("only root may change the limits of a running session")
        if mem_limit is None and cpu_limit is None:
            raise InvalidOption("give mem_limit, cpu_limit or both")
        name = validate_username(user)
        unit = unit_name_for(name)
        async with self.admission.lock(name):
            status = await self.systemd.unit_status(unit)
            if status is None or status.active_state not in ACTIVE:
                raise SessionNotFound(f"{name} has no running session")
            if mem_limit is not None:
                self.admission.promise_memory(name, mem_limit)
            allow_swap = self.config.session.allow_swap
            properties = limit_properties(mem_limit, cpu_limit, allow_swap=allow_swap)
            await self.systemd.set_properties(unit, properties)
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
            await self.mark(name, **changes)
            return await self.views.session(name, await self.systemd.unit_status(unit))

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

    # -- the end of a session ---------------------------------------------------------------

    async def finish(
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
        record_id = self.table.close_record(name)
        result = self.oom.result_of(
            name, status.result if status else None, status.exit_status if status else None
        )
        if result == "oom-kill":
            reason, failed = OOM_REASON, True
        self.oom.pop_killed(name)
        self.oom.unwatch(name)
        self.sampler.forget(name)
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
        self.release(name, unit)

    def release(self, name: str, unit: str) -> None:
        """Free the port, the promised memory and the token of a session that is over."""
        self.table.release(name)
        credentials.remove(self.credentials_dir, unit)

    async def mark(self, name: str, **changes: object) -> None:
        """Update the store's record of the user's session, if it has one open."""
        record_id = self.table.record_id(name)
        if record_id is not None:
            await asyncio.to_thread(self.store.update, record_id, **changes)
