"""The hub as one ASGI app, built by a function from its config (api layer).

    app = build_hub_app(config, store=store, secret=secret, daemon=HostdClient(socket))

Paths: ``/hub/...`` pages and ``/hub/api/...`` (Starlette routes), ``/hub/static/...``, and
everything under ``/user/`` to the proxy (hostd.api.hub.proxy), which sees requests before any
routing. Middleware, outermost first: RequestTimer (jupyterhub_request_duration_seconds by
route template: hostd.api.hub.metrics); with subdomain_host, SubdomainGate (a user's origin goes
to that user's server only: hostd.api.hub.subdomains); _UserPaths (hands /user/ to the proxy),
_PageHeaders (CSP, no framing, no caching, on the hub's own responses only), _UserPageGuard (a
partial guard against the pages of users' servers: SECURITY.md).

No I/O happens here: the database, the cookie key and the daemon's client are made by the
caller (hostd.api.hub.cli, or a test) and closed with the app's lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Final

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request, cookie_parser
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hostd.api.client import HostdClient
from hostd.api.heap import trim_heap_forever
from hostd.api.hub.accounts import Accounts
from hostd.api.hub.api import HubAPI, api_error
from hostd.api.hub.db import HubStore
from hostd.api.hub.forms import BadInput
from hostd.api.hub.identity import SESSION_COOKIE, Identity, Sessions
from hostd.api.hub.metrics import HubMetrics, RequestTimer, timed_login, timed_logout
from hostd.api.hub.notices import Notices, RefreshNotices
from hostd.api.hub.pages import Forbidden, Pages
from hostd.api.hub.proxy import ProxyError, UserProxy
from hostd.api.hub.routes import Activity, Routes, account_uid
from hostd.api.hub.security import Secret, from_user_page, scripted_load
from hostd.api.hub.servers import Servers
from hostd.api.hub.settings import HubConfig
from hostd.api.hub.state import STATIC_DIR, Hub
from hostd.api.hub.subdomains import (
    AuthCodes,
    Site,
    SubdomainGate,
    login_redirect,
    user_auth_endpoint,
)
from hostd.api.hub.tool_routes import tool_routes
from hostd.units.errors import HostdError

__all__ = ["build_hub_app"]

log = logging.getLogger(__name__)

# The hub's pages load only their own CSS and JS; no page may be framed (clickjacking of the
# start and stop buttons).
_PAGE_HEADERS: Final = (
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)
_NO_STORE: Final = (b"cache-control", b"no-store")
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
_FOLLOW: Final = re.compile(r"/hub/logs/[^/]+/follow")


class _UserPaths:
    """/user/... goes to the proxy, before any routing; the rest to the hub's app."""

    def __init__(self, app: ASGIApp, *, proxy: ASGIApp) -> None:
        self.app = app
        self.proxy = proxy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and (
            scope["path"] == "/user" or scope["path"].startswith("/user/")
        ):
            await self.proxy(scope, receive, send)
            return
        await self.app(scope, receive, send)


class _PageHeaders:
    """Security headers on the hub's own responses (never on a user's server's)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/hub/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name for name, _ in headers}
                headers.extend(h for h in _PAGE_HEADERS if h[0] not in names)
                if not static and _NO_STORE[0] not in names:
                    headers.append(_NO_STORE)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


class _UserPageGuard:
    """A partial guard for the hub against the pages of users' servers, which share its origin:
    a request carrying the hub's cookie is refused when the browser says a /user/ page made it
    (``from_user_page``: any write, or a script's read), and a hub page is refused to scripts
    (``scripted_load``: no fetch() of a page to read its CSRF token). A user's page that opens a
    hub page in a window of its own still reads it (same origin): SECURITY.md says so."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/hub/static/"):
            headers = Headers(scope=scope)
            if SESSION_COOKIE in cookie_parser(headers.get("cookie", "")):
                why = _refusal(scope, headers)
                if why is not None:
                    log.warning("refused %s %s: %s", scope["method"], scope["path"], why)
                    if scope["path"].startswith("/hub/api"):
                        response: Response = api_error(403, why)
                    else:
                        response = PlainTextResponse(why, status_code=403)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def _refusal(scope: Scope, headers: Headers) -> str | None:
    navigation = headers.get("sec-fetch-mode", "navigate") == "navigate"
    if from_user_page(headers) and (scope["method"] not in _SAFE_METHODS or not navigation):
        return "refused: a page of a user's server may not act on the hub with your cookie"
    path: str = scope["path"]
    # The logs' Follow is read by the logs page's own script (hub.js), which sends the page's
    # CSRF token: the route refuses a script's read without it (Pages.follow). A user's page
    # that says so (Referer) is refused above.
    script_readable = (
        _FOLLOW.fullmatch(path) is not None and headers.get("sec-fetch-site") == "same-origin"
    )
    if not path.startswith("/hub/api") and scripted_load(headers) and not script_readable:
        return "refused: hub pages are for the browser's window, not for scripts or frames"
    return None


def _routes(hub: Hub, pages: Pages, api: HubAPI) -> list[Route | Mount]:
    def call(
        handler: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await api.dispatch(request, handler)

        return endpoint

    async def to_home(request: Request) -> Response:
        return RedirectResponse("/hub/home", 302)

    async def favicon(request: Request) -> Response:
        # Where browsers look when a page names no icon (a plain-text or JSON answer).
        return RedirectResponse("/hub/static/favicon.svg", 301)

    return [
        Route("/", to_home),
        Route("/favicon.ico", favicon, methods=["GET", "HEAD"]),
        Route("/hub/favicon.ico", favicon, methods=["GET", "HEAD"]),
        Route("/hub", to_home),
        Route("/hub/", to_home),
        Route("/hub/login", pages.login_page, methods=["GET"]),
        Route("/hub/login", timed_login(pages.login, hub.metrics), methods=["POST"]),
        Route("/hub/logout", pages.logout_page, methods=["GET"]),
        Route("/hub/logout", timed_logout(pages.logout, hub.metrics), methods=["POST"]),
        Route("/hub/home", pages.home, methods=["GET"]),
        Route("/hub/spawn/{name}", pages.spawn, methods=["POST"]),
        Route("/hub/stop/{name}", pages.stop, methods=["POST"]),
        Route("/hub/admin", pages.admin, methods=["GET"]),
        Route("/hub/logs/{name}", pages.logs, methods=["GET"]),
        Route("/hub/logs/{name}/follow", pages.follow, methods=["GET"]),
        Route("/hub/token", pages.token_page, methods=["GET"]),
        Route("/hub/token", pages.token_create, methods=["POST"]),
        Route("/hub/token/{token_id:int}/delete", pages.token_delete, methods=["POST"]),
        Route("/hub/api", call(api.info), methods=["GET"]),
        Route("/hub/api/", call(api.info), methods=["GET"]),
        Route("/hub/api/user", call(api.whoami), methods=["GET"]),
        Route("/hub/api/users", call(api.users), methods=["GET"]),
        Route("/hub/api/users/{name}", call(api.user), methods=["GET"]),
        Route("/hub/api/users/{name}/server", call(api.server), methods=["POST", "DELETE"]),
        Route("/hub/api/users/{name}/server/progress", call(api.progress), methods=["GET"]),
        Route(
            "/hub/api/users/{name}/servers/{server}",
            call(api.named_server),
            methods=["POST", "DELETE"],
        ),
        Route(
            "/hub/api/users/{name}/servers/{server}/progress",
            call(api.named_progress),
            methods=["GET"],
        ),
        Route("/hub/api/users/{name}/tokens", call(api.tokens), methods=["GET", "POST"]),
        Route("/hub/api/users/{name}/tokens/{token_id:int}", call(api.token), methods=["DELETE"]),
        *tool_routes(hub, pages, api),
        Mount("/hub/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]


def build_hub_app(
    config: HubConfig,
    *,
    store: HubStore,
    secret: Secret,
    daemon: HostdClient,
    uid_of: Callable[[str], int] = account_uid,
) -> Starlette:
    """The hub over ``daemon``; the app's lifespan closes the daemon's client, the proxy's
    HTTP client and pending tasks (the store belongs to the caller). ``uid_of`` names the
    account that must own a user's server socket (tests put their own uid there)."""
    routes = Routes(daemon, uid_of=uid_of)
    accounts = Accounts(daemon.account, interval_s=config.account_check_interval)
    sessions = Sessions(store, secret, max_age_s=config.cookie_max_age_s, accounts=accounts)
    metrics = HubMetrics()
    servers = Servers(
        daemon,
        store,
        slow_spawn_timeout=config.slow_spawn_timeout,
        slow_stop_timeout=config.slow_stop_timeout,
        command=config.command,
        on_change=routes.forget,
        metrics=metrics,
    )
    activity = Activity(daemon, store, routes, interval_s=config.activity_interval)

    async def culls() -> dict[str, datetime]:
        views = await daemon.list()
        return {view.user: view.cull_at for view in views if view.cull_at and not view.server}

    notices = Notices(daemon.maintenance, fetch_culls=culls)
    hub = Hub(
        notices=notices,
        config=config,
        store=store,
        daemon=daemon,
        sessions=sessions,
        servers=servers,
        routes=routes,
        activity=activity,
        metrics=metrics,
    )
    pages = Pages(hub)
    api = HubAPI(hub)

    async def proxy_error(
        request: Request, identity: Identity | None, status: int, error: ProxyError
    ) -> Response:
        # /user/ paths skip _PageHeaders (a user's server sets its own): the hub's page
        # carries the hub's headers itself.
        response = pages.error(
            request,
            status,
            error.message,
            identity,
            title=error.title,
            advice=error.advice,
            links=error.links,
        )
        for name, value in (*_PAGE_HEADERS, _NO_STORE):
            response.headers[name.decode()] = value.decode()
        return response

    proxy = UserProxy(
        sessions=sessions,
        routes=routes,
        activity=activity,
        http=hub.http,
        admin_access=config.admin_access,
        not_running=pages.not_running,
        error_page=proxy_error,
    )
    routes_list = _routes(hub, pages, api)
    gate: list[Middleware] = []
    if config.subdomain_host:
        # Each user's server at its own origin (hostd.api.hub.subdomains): the proxy there
        # knows browsers by that origin's cookie, and sends the others to /hub/user-auth.
        site, codes = Site(config.subdomain_host), AuthCodes()

        def origin_of(connection: HTTPConnection) -> str:
            return site.server_origin(site.user_of(connection.headers.get("host", "")) or "")

        async def identify_there(connection: HTTPConnection) -> Identity | None:
            return await sessions.identify_server(connection, origin_of(connection))

        def login_there(connection: HTTPConnection, target: str) -> str:
            return login_redirect(site, connection.headers.get("host", ""), target)

        server_proxy = UserProxy(
            sessions=sessions,
            routes=routes,
            activity=activity,
            http=hub.http,
            admin_access=config.admin_access,
            not_running=pages.not_running,
            identify=identify_there,
            login_url=login_there,
        )
        user_auth = user_auth_endpoint(sessions, site, codes, admin_access=config.admin_access)
        routes_list.insert(0, Route("/hub/user-auth", user_auth, methods=["GET"]))
        gate.append(
            Middleware(SubdomainGate, site=site, proxy=server_proxy, sessions=sessions, codes=codes)
        )

    async def forbidden(request: Request, exc: Exception) -> Response:
        identity = await sessions.identify(request)
        return pages.error(request, 403, str(exc), identity)

    async def bad_input(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BadInput)
        if request.url.path.startswith("/hub/api"):
            return api_error(exc.status, exc.message)
        return pages.error(request, exc.status, exc.message, await sessions.identify(request))

    async def hostd_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HostdError)
        log.error("%s %s: %s (%s)", request.method, request.url.path, exc.message, exc.code)
        identity = await sessions.identify(request)
        return pages.error(
            request, 503, f"The hub could not do that just now: {exc.message}", identity
        )

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if request.url.path.startswith("/hub/api"):
            return api_error(exc.status_code, exc.detail)
        message = {404: "There is no such page.", 405: "That method is not allowed here."}
        text = message.get(exc.status_code, exc.detail)
        return pages.error(request, exc.status_code, text, await sessions.identify(request))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        trim = asyncio.create_task(trim_heap_forever())  # RSS back after bursts (heap.py)
        try:
            yield
        finally:
            trim.cancel()
            await hub.aclose()

    app = Starlette(
        routes=routes_list,
        middleware=[
            # Outermost: every request is timed, whoever answers it (the gate, the proxy).
            Middleware(RequestTimer, metrics=metrics),
            *gate,
            Middleware(_UserPaths, proxy=proxy),
            Middleware(_PageHeaders),
            Middleware(_UserPageGuard),
            Middleware(RefreshNotices, notices=notices),
        ],
        exception_handlers={
            Forbidden: forbidden,
            BadInput: bad_input,
            HostdError: hostd_error,
            HTTPException: http_error,
        },
        lifespan=lifespan,
    )
    app.state.hub = hub
    return app
