"""The admin's maintenance notices as the hub shows them (api layer; no host access).

Every hub page shows the announcement and a drain's countdown (base.html), and to a user whose
idle server is about to be culled, when (the daemon's session list), fetched from the daemon
(GET /v1/maintenance, GET /v1/sessions) and kept NOTICES_TTL_S: a page costs the daemon at most
two reads every few seconds, however many users load pages. A daemon that does not answer leaves the
last state shown (a notice is no reason to fail a page). RefreshNotices refreshes it before
each hub page, so Pages.render, which is not async, reads it as it is.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final

from starlette.types import ASGIApp, Receive, Scope, Send

from hostd.units.errors import HostdError
from hostd.units.maintenance import MaintenanceView, format_countdown

__all__ = ["NOTICES_TTL_S", "Notices", "RefreshNotices", "notices_context"]

log = logging.getLogger(__name__)

NOTICES_TTL_S: Final = 5.0


class Notices:
    """The last maintenance state read from the daemon, at most NOTICES_TTL_S old once
    refreshed."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[MaintenanceView]],
        *,
        fetch_culls: Callable[[], Awaitable[dict[str, datetime]]] | None = None,
        ttl_s: float = NOTICES_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._fetch_culls = fetch_culls
        self.ttl_s = ttl_s
        self._clock = clock
        self.latest = MaintenanceView()
        # Users whose idle server will be culled soon, and when (SessionView.cull_at): each
        # page of theirs says so, not only the home page.
        self.culls: dict[str, datetime] = {}
        self._read_at: float | None = None

    async def refresh(self) -> MaintenanceView:
        now = self._clock()
        if self._read_at is not None and now - self._read_at < self.ttl_s:
            return self.latest
        self._read_at = now  # also after a failure: a daemon that is down is not asked per page
        try:
            self.latest = await self._fetch()
            if self._fetch_culls is not None:
                self.culls = await self._fetch_culls()
        except HostdError as exc:
            log.warning("could not read the maintenance notices: %s (%s)", exc.message, exc.code)
        return self.latest


def notices_context(view: MaintenanceView, now: datetime | None = None) -> dict[str, Any]:
    """What base.html shows: the announcement, and the drain with its countdown in words."""
    drain = view.drain
    return {
        "announcement": view.announcement,
        "drain": drain,
        "drain_countdown": (
            None if drain is None else format_countdown(drain.at, now or datetime.now(UTC))
        ),
    }


# Hub paths that are no page: a liveness probe or a scrape must not wait on the daemon.
_NOT_PAGES: Final = ("/hub/static/", "/hub/api", "/hub/health", "/hub/metrics", "/hub/user-auth")


class RefreshNotices:
    """Refreshes the notices before each hub page (not the static files, the REST API, the
    probes, nor the users' servers behind the proxy)."""

    def __init__(self, app: ASGIApp, *, notices: Notices) -> None:
        self.app = app
        self.notices = notices

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path.startswith("/hub/") and not path.startswith(_NOT_PAGES):
            await self.notices.refresh()
        await self.app(scope, receive, send)
