"""What the daemon's HTTP face is handed: the one interface it calls (api layer).

hostd.daemon implements it against systemd; tests implement it with a fake
(tests/api/fake.py). It names values of hostd.units only, so the HTTP face knows no host.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

from hostd.units import SessionRequest
from hostd.units.choices import ProfileView
from hostd.units.history import HistoryWindow, HostHistoryView, UsageHistoryView
from hostd.units.maintenance import Drain, MaintenanceView
from hostd.units.values import (
    AccountView,
    AuthResult,
    Caller,
    Credentials,
    HostView,
    LogLine,
    PeerCredentials,
    PolicyView,
    SessionView,
    StartOutcome,
    UsageView,
)

__all__ = ["SessionService"]


class SessionService(Protocol):
    """What the daemon's API can ask of the daemon. Raises hostd.units.errors classes only."""

    def authorize(self, peer: PeerCredentials | None) -> Caller:
        """Root or a member of the configured group; else PermissionDenied."""
        ...

    async def account(self, user: str) -> AccountView:
        """Whether ``user``'s account may have a session now: the account policy, then PAM's
        account management without a password (and a locked password). UnknownUser,
        UserRefused, AccountDisabled (locked, expired), AccountUnchecked (PAM did not answer)."""
        ...

    async def profiles(self, user: str) -> list[ProfileView]:
        """The [[profile_list]] choices ``user`` may take (by Unix group), with the limits a
        start with each gets, in the admin's order; [] when none are configured."""
        ...

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
        """Start (idempotently). ``server`` names a named server ("" the default one); the
        other methods name one by its key, user or user:server (hostd.units.servers).
        With ``wait``, return once the server answers or failed.
        Refused as ``account`` refuses (AccountDisabled for a locked or expired account),
        whoever asks.

        ``command`` names one of the admin's [commands]; ``secrets`` reach the session as
        files only its user can read, never in the unit's Environment= or argv. ``profile``
        is a [[profile_list]] slug (None: the user's default choice); UnknownProfile for one
        the user may not take, and the choice's limits cap the request's."""
        ...

    async def stop(self, user: str, *, caller: Caller) -> SessionView:
        """Stop (idempotently); returns the final view."""
        ...

    async def get(self, user: str) -> SessionView:
        """SessionNotFound if the user has no session that systemd or the store knows of."""
        ...

    async def list(self) -> builtins.list[SessionView]: ...

    async def logs(self, user: str, *, lines: int) -> builtins.list[LogLine]: ...

    def follow(self, user: str, *, cursor: str | None) -> AsyncIterator[LogLine]:
        """Log lines after ``cursor`` (or the last few), then new ones as they come."""
        ...

    async def health(self) -> dict[str, Any]: ...

    async def usage(self, user: str) -> UsageView:
        """SessionNotFound unless the session is starting or running."""
        ...

    async def usage_history(self, user: str, *, window: HistoryWindow) -> UsageHistoryView:
        """What the session used over the window, oldest first (hostd.units.history); an
        empty view for a session not yet measured; SessionNotFound when there is none."""
        ...

    async def host(self) -> HostView: ...

    async def host_history(self, *, window: HistoryWindow) -> HostHistoryView:
        """The memory promised to sessions against the host's capacity over the window."""
        ...

    async def policy(self) -> PolicyView:
        """The admin's sandbox, [commands] names and [session] limits, which a caller must
        agree with (the spawner checks JupyterHub's options against it). No secrets."""
        ...

    async def token(self, user: str) -> str:
        """The running session's Jupyter token, for the hub's proxy (root and the group only,
        as everything on the socket); SessionNotFound when there is none."""
        ...

    async def set_limits(
        self, user: str, *, mem_limit: int | None, cpu_limit: float | None, caller: Caller
    ) -> SessionView:
        """Change a running session's limits live (SetUnitProperties); admins only."""
        ...

    async def activity(self, user: str, *, caller: Caller) -> None:
        """The hub saw the user active now: resets the idle clock of the session."""
        ...

    async def maintenance(self) -> MaintenanceView:
        """The admin's announcement and drain, for every member (the hub shows them)."""
        ...

    async def set_announcement(self, text: str | None, *, caller: Caller) -> MaintenanceView:
        """Set (None: clear) the announcement every hub page shows; root only
        (PermissionDenied), InvalidInput for a text that is not one short line."""
        ...

    async def set_drain(self, drain: Drain | None, *, caller: Caller) -> MaintenanceView:
        """Drain the host (None: cancel): starts are refused (Draining) with the drain's
        message and every running session is stopped at its time; root only. InvalidInput
        for a time in the past or too far ahead, or a message that is not one short line."""
        ...

    async def metrics(self) -> tuple[bytes, str]:
        """Prometheus exposition: (body, content type)."""
        ...

    async def authenticate(self, credentials: Credentials) -> AuthResult:
        """Check a password for the hub (PAM, the account policy, the lockout): LoginFailed
        for every refusal, LockedOut after too many failures of that user name."""
        ...
