"""The routes admins' tools and people's links expect of a JupyterHub, beyond the pages and
the API of hostd.api.hub.app (api layer): health, info, metrics, activity reports,
user-redirect and spawn-pending. Their code lives in monitor, activity_api and shortcuts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hostd.api.hub.activity_api import ActivityAPI
from hostd.api.hub.api import HubAPI
from hostd.api.hub.monitor import Monitor
from hostd.api.hub.pages import Pages
from hostd.api.hub.shortcuts import Shortcuts
from hostd.api.hub.state import Hub

__all__ = ["tool_routes"]

Endpoint = Callable[[Request], Awaitable[Response]]


def tool_routes(hub: Hub, pages: Pages, api: HubAPI) -> list[Route]:
    monitor, activity, shortcuts = Monitor(hub), ActivityAPI(api), Shortcuts(hub, pages)

    def call(handler: Endpoint) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            return await api.dispatch(request, handler)

        return endpoint

    read = ["GET", "HEAD"]
    return [
        Route("/hub/health", monitor.health, methods=read),
        Route("/hub/api/health", monitor.health, methods=read),
        Route("/hub/api/info", monitor.info, methods=["GET"]),
        Route("/hub/api/maintenance", monitor.maintenance, methods=["GET"]),
        Route("/hub/metrics", monitor.metrics, methods=["GET"]),
        Route("/hub/api/metrics", monitor.metrics, methods=["GET"]),
        Route("/hub/api/users/{name}/activity", call(activity.activity), methods=["POST"]),
        Route("/hub/user-redirect/{path:path}", shortcuts.user_redirect, methods=["GET"]),
        Route("/hub/spawn-pending/{name}", shortcuts.spawn_pending, methods=["GET"]),
    ]
