"""Maintenance: the admin's announcement and drain, kept in the store (host layer).

The state is one row of the store, read once at start-up (load) and written on every change,
so a drain set before a restart of the daemon, or before the reboot it prepares, still holds
after it. While a drain is set every start is refused (Draining, with the admin's message);
once its time has come the reaper stops every running session with DRAIN_REASON, and starts
stay refused until the admin cancels the drain (``hostctl drain --cancel``): a host that was
drained for a reboot must not fill up again before the reboot, and after it the admin says
when it is open again.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from hostd.daemon.store import Store, now
from hostd.units.errors import Draining, PermissionDenied
from hostd.units.maintenance import Drain, MaintenanceView, check_drain_at, check_message
from hostd.units.values import Caller

__all__ = ["DRAIN_REASON", "Maintenance", "drain_reason"]

DRAIN_REASON = "stopped for maintenance"
# What a refused start is told to wait once the drain's time has passed: the host is being
# worked on, and nobody knows for how long.
AFTER_DRAIN_RETRY_S = 300


def drain_reason(drain: Drain) -> str:
    """The reason recorded for a session the drain stopped."""
    return f"{DRAIN_REASON}: {drain.message}"


class Maintenance:
    """The maintenance state over the store. load() before use (no I/O in the constructor)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.view = MaintenanceView()

    async def load(self) -> MaintenanceView:
        record = await asyncio.to_thread(self.store.maintenance)
        drain = None
        if record.drain_at is not None:
            at = record.drain_at
            # Written in UTC; sqlite may give it back without its zone.
            at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
            drain = Drain(at, record.drain_message or "")
        self.view = MaintenanceView(announcement=record.announcement, drain=drain)
        return self.view

    async def announce(self, text: str | None, *, caller: Caller) -> MaintenanceView:
        """Set the announcement (None: clear it); root only."""
        _root_only(caller, "announce" if text is not None else "clear the announcement")
        announcement = None if text is None else check_message(text, "announcement")
        return await self._save(MaintenanceView(announcement, self.view.drain))

    async def drain(self, drain: Drain | None, *, caller: Caller) -> MaintenanceView:
        """Start a drain (None: cancel it); root only. A new drain replaces the one set."""
        _root_only(caller, "drain the host" if drain is not None else "cancel the drain")
        if drain is not None:
            drain = Drain(check_drain_at(drain.at, now()), check_message(drain.message))
        return await self._save(MaintenanceView(self.view.announcement, drain))

    async def _save(self, view: MaintenanceView) -> MaintenanceView:
        drain = view.drain
        await asyncio.to_thread(
            self.store.save_maintenance,
            announcement=view.announcement,
            drain_at=None if drain is None else drain.at.astimezone(UTC),
            drain_message=None if drain is None else drain.message,
        )
        self.view = view
        return view

    def check_start(self, moment: datetime | None = None) -> None:
        """Draining while a drain is set, before its time and after it."""
        drain = self.view.drain
        if drain is None:
            return
        left = (drain.at - (moment or now())).total_seconds()
        retry_after = int(left) + 1 if left > 0 else AFTER_DRAIN_RETRY_S
        raise Draining(
            f"{drain.message} (new sessions are refused for maintenance)",
            retry_after_s=retry_after,
        )

    def due(self, moment: datetime | None = None) -> Drain | None:
        """The drain whose time has come, if any: every running session is to stop."""
        drain = self.view.drain
        if drain is not None and drain.at <= (moment or now()):
            return drain
        return None


def _root_only(caller: Caller, what: str) -> None:
    if not caller.privileged:
        raise PermissionDenied(f"{caller.name} may not {what}: only root may")
