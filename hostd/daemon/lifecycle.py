"""A session's lifecycle: start, stop, read, change limits, record how it ended (host layer).

One transient unit per user. Lifecycle is what SessionManager calls for a session; the path is
in three modules, each a class over the same SessionParts:

- hostd.daemon.starter (Starter): a start allocates a port, writes the token, builds the unit
  with hostd.units, records it in the store, waits for a start slot (Admission) and for the
  server to listen on its port. Ready means the session's own listener, not another account's
  that bound the public port first: that start fails, saying so (issue 13, attack 3).
- hostd.daemon.ends (Ends): a stop stops the unit and records the end. Every end goes through
  Ends.finish(), which records it, lets systemd collect the unit and frees what the session
  held; the reaper (hostd.daemon.reaper) records there the ends nobody asked for.
- here: get, list and set_limits, which read a session or change its limits in place.

Starts, stops and changes of limits run under the user's lock, so a start and a stop of one
user never interleave.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from pathlib import Path

from hostd.daemon import journal
from hostd.daemon.ends import Ends
from hostd.daemon.session_parts import SessionParts
from hostd.daemon.starter import FAILURE_LOG_LINES, Starter, policy_for
from hostd.daemon.systemd import UnitStatus
from hostd.daemon.views import ACTIVE, ENDED
from hostd.units import SessionRequest, limit_properties
from hostd.units.errors import InvalidOption, PermissionDenied, SessionNotFound
from hostd.units.servers import key_for_unit_name, unit_name_for_key, validate_session_key
from hostd.units.values import Caller, SessionView, StartOutcome

# FAILURE_LOG_LINES and policy_for are the Starter's (hostd.daemon.starter); this module has
# exported them since before the split, and still does.
__all__ = ["FAILURE_LOG_LINES", "Lifecycle", "policy_for"]

log = logging.getLogger(__name__)


class Lifecycle:
    """Start, stop, get, list and set_limits of sessions: starts by the Starter, ends by the
    Ends, reads and changes of limits here."""

    def __init__(
        self,
        parts: SessionParts,
        *,
        check_account: Callable[[str], Awaitable[None]],
    ) -> None:
        self.parts = parts
        self.ends = Ends(parts)
        self.starter = Starter(parts, self.ends, check_account=check_account)
        # Where each session's token is written; read here before the split (the tests still do).
        self.credentials_dir: Path = parts.credentials_dir

    async def start(
        self,
        user: str,
        request: SessionRequest,
        *,
        caller: Caller,
        wait: bool = True,
        command: str | None = None,
        secrets: Mapping[str, str] | None = None,
        profile: str | None = None,
        server: str = "",
    ) -> StartOutcome:
        return await self.starter.start(
            user,
            request,
            caller=caller,
            wait=wait,
            command=command,
            secrets=secrets,
            profile=profile,
            server=server,
        )

    async def stop(self, user: str, *, caller: Caller) -> SessionView:
        return await self.ends.stop(user, caller=caller)

    async def get(self, user: str) -> SessionView:
        name = validate_session_key(user)  # a user, or user:server (a named server)
        unit = unit_name_for_key(name)
        status = await self.parts.systemd.unit_status(unit)
        if status is not None and (
            status.active_state not in ENDED or self.parts.table.record_id(name) is not None
        ):
            view = await self.parts.views.session(name, status)
        else:
            view = await self.parts.views.stored(name, unit)
            if view.started_at is None:
                raise SessionNotFound(f"{name} has no session")
        if view.state == "failed":  # what it printed last says why, as journalctl -u would
            lines = await journal.tail(unit, FAILURE_LOG_LINES)
            view = replace(view, log=tuple(line.message for line in lines))
        return view

    async def list(self) -> builtins.list[SessionView]:
        views = []
        for status in await self.parts.session_units():
            name = key_for_unit_name(status.name)
            if name is not None:
                views.append(await self.parts.views.session(name, status))
        return sorted(views, key=lambda v: (v.user, v.server))

    async def set_limits(
        self, user: str, *, mem_limit: int | None, cpu_limit: float | None, caller: Caller
    ) -> SessionView:
        if not caller.privileged:
            raise PermissionDenied("only root may change the limits of a running session")
        if mem_limit is None and cpu_limit is None:
            raise InvalidOption("give mem_limit, cpu_limit or both")
        name = validate_session_key(user)
        unit = unit_name_for_key(name)
        async with self.parts.admission.lock(name):
            status = await self.parts.systemd.unit_status(unit)
            if status is None or status.active_state not in ACTIVE:
                raise SessionNotFound(f"{name} has no running session")
            if mem_limit is not None:
                self.parts.admission.promise_memory(name, mem_limit)
            allow_swap = self.parts.config.session.allow_swap
            properties = limit_properties(mem_limit, cpu_limit, allow_swap=allow_swap)
            await self.parts.systemd.set_properties(unit, properties)
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
            await self.ends.mark(name, **changes)
            return await self.parts.views.session(name, await self.parts.systemd.unit_status(unit))

    async def _enforce_lowered_memory(
        self, name: str, unit: str, status: UnitStatus, mem_limit: int
    ) -> None:
        """On cgroup v1 the kernel refuses a limit below what is in use (EBUSY) and systemd
        only logs it; v2 OOM-kills instead. hostd makes v1 behave as v2: the session that
        uses more than its new limit is killed, and says why."""
        usage = self.parts.sampler.read(name, status.control_group)
        directory = self.parts.sampler.memory_dir(status.control_group or "")
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
        self.parts.oom.killed[name] = self.parts.oom.killed.get(name, 0) + 1
        await self.parts.systemd.kill_unit(unit)
