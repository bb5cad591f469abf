"""The end of a session: stop it, record how it ended, free what it held (host layer).

Every end goes through Ends.finish(), whoever saw it: a stop asked for (stop), an idle session
culled (the reaper, with stop_locked), a session that ended on its own (the reaper), a start
that failed (the Starter). finish() closes the store's record, lets systemd collect the unit
(our AddRef kept it loaded so its Result could be read) and frees the port or the socket's
directory, the promised memory and the token. Callers hold the user's lock, so a start and an
end of one user never interleave.
"""

from __future__ import annotations

import asyncio
import logging
import time

from hostd.daemon import credentials
from hostd.daemon.servers import UserSlices
from hostd.daemon.session_parts import SessionParts
from hostd.daemon.sockets import remove_socket_dir
from hostd.daemon.store import now
from hostd.daemon.systemd import UnitStatus
from hostd.daemon.views import ENDED, OOM_REASON
from hostd.units.servers import split_session_key, unit_name_for_key, validate_session_key
from hostd.units.values import Caller, SessionView

__all__ = ["Ends"]

log = logging.getLogger(__name__)


class Ends:
    """Stop sessions and record every end; update the open record of a session meanwhile."""

    def __init__(self, parts: SessionParts) -> None:
        self.parts = parts
        # Named servers: each user's slice (hostd.daemon.servers), stopped after the last end.
        self.slices = UserSlices(parts.systemd)

    async def stop(self, user: str, *, caller: Caller) -> SessionView:
        # No account lookup: the session of a deleted account can still be stopped.
        name = validate_session_key(user)  # a user, or user:server (a named server)
        unit = unit_name_for_key(name)
        async with self.parts.admission.lock(name):
            status = await self.parts.systemd.unit_status(unit)
            if status is not None and status.active_state not in ENDED:
                await self.stop_locked(name, unit, f"stopped by {caller.name}", requested=True)
            else:
                await self.finish(name, unit, status, reason="ended")
            return await self.parts.views.stored(name, unit)

    async def stop_locked(self, name: str, unit: str, reason: str, *, requested: bool) -> None:
        """Stop the unit and record the end (the user's lock held). requested: a caller asked,
        rather than the daemon deciding (an idle session culled)."""
        systemd = self.parts.systemd
        started = time.monotonic()
        # From here until the end is recorded a view says "stopping", whatever the unit and
        # its listener say meanwhile: an active unit whose server has just closed its socket
        # is not "starting"; and once the unit has ended, it gives this reason, not "ended"
        # (Views.session).
        entry = self.parts.table[name]
        entry.stop_reason = reason
        entry.stops_begun += 1
        try:
            job = await systemd.stop_unit(unit)
            status = await systemd.unit_status(unit)
            self.parts.metrics.stop_duration.labels(
                status="success" if job in ("done", "no-such-unit") else "failure"
            ).observe(time.monotonic() - started)
            extra = {"HOSTD_USER": name, "UNIT": unit}
            if requested:
                log.info("stopped %s in %.3f s", unit, time.monotonic() - started, extra=extra)
            else:
                log.info("stopped %s: %s", unit, reason, extra=extra)
            await self.finish(name, unit, status, reason=reason, stopped=True)
        finally:
            entry.stop_reason = None

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
        oom = self.parts.oom
        # The record closes, and the OOM watcher forgets the session, once the store has the
        # end, not before: until then a view reads the unit (Views.session), whose "signal" is
        # an OOM kill only while the watcher remembers it; after it, the store. A write that
        # fails leaves both for the reaper to finish again.
        record_id = self.parts.table.record_id(name)
        result = oom.result_of(
            name, status.result if status else None, status.exit_status if status else None
        )
        if result == "oom-kill":
            reason, failed = OOM_REASON, True
        if record_id is not None:
            state = (
                "failed"
                if failed or (status and status.result not in (None, "success") and not stopped)
                else "stopped"
            )
            await asyncio.to_thread(
                self.parts.store.update,
                record_id,
                ended_at=now(),
                state=state,
                reason=reason,
                result=result,
                exit_status=status.exit_status if status else None,
            )
        self.parts.table.close_record(name)
        oom.pop_killed(name)
        oom.unwatch(name)
        self.parts.sampler.forget(name)
        if status is not None:
            await self.parts.systemd.unref(unit)
            await self.parts.systemd.reset_failed(unit)
        self.release(name, unit)
        if self.parts.config.session.named_server_limit:
            user = split_session_key(name)[0]
            await self.slices.release(user, await self.parts.session_units())

    def release(self, name: str, unit: str) -> None:
        """Free the port or socket, the promised memory and the token of a session that is
        over."""
        self.parts.table.release(name)
        credentials.remove(self.parts.credentials_dir, unit)
        remove_socket_dir(self.parts.config.daemon.sessions_dir, name)

    async def mark(self, name: str, **changes: object) -> None:
        """Update the store's record of the user's session, if it has one open."""
        record_id = self.parts.table.record_id(name)
        if record_id is not None:
            await asyncio.to_thread(self.parts.store.update, record_id, **changes)
