"""The hub's Prometheus series, with JupyterHub's names where they mean the same (api layer).

One registry per hub (no globals: a test makes as many hubs as it likes). Names, labels and
buckets follow jupyterhub/metrics.py (JupyterHub 5 and 6), so its dashboards and alerts read a
hostd hub unchanged; what JupyterHub has no word for is ``hostd_hub_...``. Every status label
value exists from the start (a failure rate is 0, not absent, before the first failure).

``RequestTimer`` is the ASGI middleware behind ``jupyterhub_request_duration_seconds``; its
``handler`` label is the route's template (``/hub/api/users/{name}``), never the raw path,
so the number of series stays bounded whatever paths are asked for.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from typing import Final, Literal

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hostd.units.buckets import SPAWN_BUCKETS, STOP_BUCKETS

__all__ = [
    "ACTIVE_PERIODS",
    "PROXY_HANDLER",
    "UNMATCHED_HANDLER",
    "HubMetrics",
    "RequestTimer",
    "SpawnStatus",
    "handler_of",
    "hostd_version",
    "timed_login",
    "timed_logout",
]

# jupyterhub.metrics.ActiveUserPeriods
ACTIVE_PERIODS: Final = (
    ("24h", timedelta(hours=24)),
    ("7d", timedelta(days=7)),
    ("30d", timedelta(days=30)),
)
# jupyterhub.metrics.ServerSpawnStatus and ServerSpawnFailureReason
SpawnStatus = Literal["success", "failure", "error"]
_SPAWN_REASONS: Final = ("", "throttled", "too-many-users", "already-pending")
PROXY_HANDLER: Final = "/user/{name}/"  # every request the hub forwards to a user's server
UNMATCHED_HANDLER: Final = "unmatched"  # no route: a 404, or a redirect of the subdomain gate
# Any other method a client invents is "other": a label's values must stay few.
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def hostd_version() -> str:
    try:
        return version("hostd")
    except PackageNotFoundError:
        return "unknown"


class HubMetrics:
    """The hub's registry and its series; scrape-time values are set by ``observe_state``."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.request_duration = Histogram(
            "jupyterhub_request_duration_seconds",
            "Request duration for all HTTP requests",
            ["method", "handler", "code"],
            registry=r,
        )
        self.spawn_duration = Histogram(
            "jupyterhub_server_spawn_duration_seconds",
            "Time taken for server spawning operation",
            ["status", "reason"],
            buckets=SPAWN_BUCKETS,
            registry=r,
        )
        for status in ("success", "failure", "error"):
            self.spawn_duration.labels(status=status, reason="")
        for reason in _SPAWN_REASONS:
            self.spawn_duration.labels(status="failure", reason=reason)
        self.stop_duration = Histogram(
            "jupyterhub_server_stop_seconds",
            "Time taken for server stopping operation",
            ["status"],
            buckets=STOP_BUCKETS,
            registry=r,
        )
        self.login_duration = Histogram(
            "jupyterhub_login_duration_seconds",
            "duration for all authentication attempts",
            ["status"],
            registry=r,
        )
        for status in ("success", "failure"):
            self.stop_duration.labels(status=status)
            self.login_duration.labels(status=status)
        self.logout_duration = Histogram(
            "jupyterhub_logout_duration_seconds", "duration for all logout requests", registry=r
        )
        self.running_servers = Gauge(
            "jupyterhub_running_servers",
            "The number of user servers currently running",
            registry=r,
        )
        self.total_users = Gauge("jupyterhub_total_users", "Total number of users", registry=r)
        self.active_users = Gauge(
            "jupyterhub_active_users",
            "Number of users who were active in the given time period",
            ["period"],
            registry=r,
        )
        for period, _ in ACTIVE_PERIODS:
            self.active_users.labels(period=period)
        self.daemon_up = Gauge(
            "hostd_hub_daemon_up",
            "1 when the last scrape read the daemon's series (hostd_...), else 0",
            registry=r,
        )
        build = Gauge(
            "hostd_hub_build_info",
            "the hub's version (always 1)",
            ["version", "python"],
            registry=r,
        )
        build.labels(version=hostd_version(), python=platform.python_version()).set(1)

    def observe_spawn(self, status: SpawnStatus, seconds: float, reason: str = "") -> None:
        self.spawn_duration.labels(status=status, reason=reason).observe(seconds)

    def observe_stop(self, ok: bool, seconds: float) -> None:
        self.stop_duration.labels(status="success" if ok else "failure").observe(seconds)

    def observe_state(
        self, *, running: int | None, last_activity: Iterable[datetime | None], now: datetime
    ) -> None:
        """The scrape-time gauges: running servers (None: the daemon could not say, the last
        value stays), users and the active ones per period."""
        if running is not None:
            self.running_servers.set(running)
        times = list(last_activity)
        self.total_users.set(len(times))
        for period, length in ACTIVE_PERIODS:
            active = sum(1 for at in times if at is not None and now - at <= length)
            self.active_users.labels(period=period).set(active)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def handler_of(scope: Scope) -> str:
    """The route template that served ``scope`` (Starlette's router leaves it in scope)."""
    path: str = scope["path"]
    if path == "/user" or path.startswith("/user/"):
        return PROXY_HANDLER
    route = scope.get("route")
    template = getattr(route, "path", None)
    if not isinstance(template, str):
        return UNMATCHED_HANDLER
    if not hasattr(route, "endpoint"):  # a Mount: /hub/static
        return template + "/{path}"
    return template


class RequestTimer:
    """Times every HTTP request, from its start to its last byte (JupyterHub's request_time).
    WebSockets are not timed: they last as long as the user's tab."""

    def __init__(self, app: ASGIApp, *, metrics: HubMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        code = 500  # no answer at all: what the server will say

        async def watch(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            self.metrics.request_duration.labels(
                method=scope["method"] if scope["method"] in _METHODS else "other",
                handler=handler_of(scope),
                code=str(code),
            ).observe(time.monotonic() - started)


Endpoint = Callable[[Request], Awaitable[Response]]


def timed_login(endpoint: Endpoint, metrics: HubMetrics) -> Endpoint:
    """The login form's POST, timed as jupyterhub_login_duration_seconds: "success" is the
    303 to where the person was going, anything else (a form shown again) a failure."""

    async def timed(request: Request) -> Response:
        started = time.monotonic()
        response = await endpoint(request)
        status = "success" if response.status_code == 303 else "failure"
        metrics.login_duration.labels(status=status).observe(time.monotonic() - started)
        return response

    return timed


def timed_logout(endpoint: Endpoint, metrics: HubMetrics) -> Endpoint:
    async def timed(request: Request) -> Response:
        with metrics.logout_duration.time():
            return await endpoint(request)

    return timed
