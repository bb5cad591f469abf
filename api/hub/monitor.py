"""What admins' tools read: health, the hub's info and its Prometheus metrics (api layer).

    GET /hub/health, /hub/api/health   200 {"status": "ok"}: no auth, no I/O (a load
                                       balancer's probe must not wait on the daemon or the
                                       database; the daemon's state is hostd_hub_daemon_up)
    GET /hub/api/info                  JupyterHub's fields (version, python, sys_executable,
                                       spawner, authenticator); admins only, as read:hub is
    GET /hub/api/maintenance           hostd's own (JupyterHub has nothing like it): the
                                       admin's announcement and drain, {"announcement",
                                       "drain": {"at", "message"} | null}; any logged-in user
    GET /hub/metrics, /hub/api/metrics Prometheus text: the hub's series (hostd.api.hub.
                                       metrics) and then the daemon's (hostd_..., per session
                                       and host), read through its socket at each scrape

Metrics need an admin's API token or cookie (JupyterHub's read:metrics, which its admin role
has) unless hub.toml says ``metrics_public = true`` (JupyterHub's authenticate_prometheus =
False). The daemon's series are relayed rather than served by a port of the daemon's own: the
daemon listens on nothing but its socket, and Prometheus gets one target and one token.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from datetime import UTC, datetime
from typing import Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hostd.api.hub.api import api_error
from hostd.api.hub.db import aware
from hostd.api.hub.metrics import hostd_version
from hostd.api.hub.state import Hub
from hostd.units.errors import HostdError

__all__ = ["Monitor"]

log = logging.getLogger(__name__)

# A scrape waits this long for the daemon's series, then goes without them (daemon_up 0):
# Prometheus' own scrape_timeout is 10 s by default.
DAEMON_WAIT_S: Final = 5.0
# What generate_latest writes, and what the daemon's relayed text is: the classic text format
# every Prometheus 2 reads (prometheus_client's CONTENT_TYPE_LATEST names a newer one).
TEXT_FORMAT: Final = "text/plain; version=0.0.4; charset=utf-8"


class Monitor:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def info(self, request: Request) -> Response:
        identity = await self.hub.sessions.identify(request)
        if identity is None:
            return api_error(403, "not logged in: send a token or the session cookie")
        if not identity.admin:
            return api_error(403, "only admins may read the hub's info")
        version = hostd_version()
        return JSONResponse(
            {
                "version": version,
                "python": sys.version,
                "sys_executable": sys.executable,
                "spawner": {"class": "hostd.daemon (a systemd unit per user)", "version": version},
                "authenticator": {"class": "hostd.daemon (PAM)", "version": version},
            }
        )

    async def maintenance(self, request: Request) -> Response:
        # What every page shows, for a user's tools; the same few-seconds cache as the pages.
        if await self.hub.sessions.identify(request) is None:
            return api_error(403, "not logged in: send a token or the session cookie")
        return JSONResponse((await self.hub.notices.refresh()).to_dict())

    async def metrics(self, request: Request) -> Response:
        if not self.hub.config.metrics_public:
            identity = await self.hub.sessions.identify(request)
            if identity is None:
                return api_error(403, "metrics need an admin's token (or metrics_public = true)")
            if not identity.admin:
                return api_error(403, f"{identity.user} may not read metrics: only admins may")
        daemon_text, running, users = await asyncio.gather(
            self._daemon_series(), self._running(), asyncio.to_thread(self.hub.store.users)
        )
        metrics = self.hub.metrics
        metrics.daemon_up.set(0 if daemon_text is None else 1)
        metrics.observe_state(
            running=running,
            last_activity=[u.last_activity and aware(u.last_activity) for u in users],
            now=datetime.now(UTC),
        )
        body = metrics.render()
        if daemon_text:
            body += daemon_text.encode() + (b"" if daemon_text.endswith("\n") else b"\n")
        return Response(body, media_type=TEXT_FORMAT)

    async def _daemon_series(self) -> str | None:
        try:
            async with asyncio.timeout(DAEMON_WAIT_S):
                return await self.hub.daemon.metrics()
        except (HostdError, TimeoutError) as exc:
            log.warning("metrics without the daemon's series: %s", exc)
            return None

    async def _running(self) -> int | None:
        """Running servers as the daemon lists them; None when it cannot say."""
        try:
            async with asyncio.timeout(DAEMON_WAIT_S):
                views = await self.hub.daemon.list()
        except (HostdError, TimeoutError):
            return None
        return sum(1 for view in views if view.state == "running")
