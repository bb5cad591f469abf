"""``/user/<name>/...``: each user's JupyterLab through the hub, HTTP and WebSocket (api layer).

Who may pass: the server's owner, and admins when ``admin_access`` is on; anyone else gets 403
(a WebSocket upgrade is refused before it is accepted). Not logged in: a browser asking for a
page is sent to the login page, anything else gets 403. A request that changes something,
sent with the session cookie from another site, is refused (the upstream server skips its own
XSRF check for token-authenticated requests, and every request the hub forwards is one).

Forwarded: to the server's Unix socket (``http+unix://...`` from the daemon) or its loopback port
(``http://127.0.0.1:PORT/user/<name>/...``: an admin's {PORT} cmd), bodies
streamed both ways, with ``Authorization: token <the session's Jupyter token>`` added by the
hub and the hub's own cookies and credentials taken out, over connections checked to end at
the user's own server (hostd.api.hub.routes: the route cache, the peer check, activity reports).
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, unquote

from starlette.datastructures import Headers
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from hostd.api.http1 import TransportFailure
from hostd.api.hub.identity import Identity, Sessions, hub_cookie_names
from hostd.api.hub.routes import Activity, Route, Routes
from hostd.api.hub.security import cross_site
from hostd.api.hub.upstream import Answer, Upstreams
from hostd.api.hub.wsrelay import RELAY_EXTENSION, RELAY_MESSAGE, UpgradeRefused, open_upstream
from hostd.units import validate_username
from hostd.units.errors import HostdError, InvalidName

__all__ = ["ErrorPage", "ProxyError", "UserProxy"]

log = logging.getLogger(__name__)

# An upstream answer of known length up to this is read whole and sent at once; longer or
# unsized ones (downloads, event streams) are streamed.
BUFFERED_BODY_MAX_BYTES: Final = 256 * 1024
# jupyter_server answers a kernel's WebSocket upgrade once the kernel is ready, giving up
# after its kernel_info_timeout (60 s): the hub waits longer, so the server's answer decides.
# (10 s was measured too short: 20 kernels starting at once on two cores,
# tests/api/hub/systemd/test_load.py.)
WS_OPEN_TIMEOUT_S: Final = 75.0
# No message size limit and no pings of the hub's own on a WebSocket: the hub relays its bytes
# (hostd.api.hub.wsrelay), holding no message, and the server's pings reach the browser. (The
# hub's pings to a server once cut kernels that jupyter_server's open() kept waiting for up to
# 60 s, 20 starting at once on two cores: tests/api/hub/systemd/test_load.py.)
_USER_PATH: Final = re.compile(rb"/user/([^/?#]{1,128})(/[^?#]*)?")
_HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# Request headers the hub sets or checks itself, never passed on.
_DROPPED_REQUEST: Final = _HOP_BY_HOP | {"host", "authorization", "origin", "cookie"}
# Methods that change nothing; every other one, in any case ("post" is POST to tornado) and
# any name the hub does not know (PROPFIND), is a change and gets the cross-site check.
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
# An upgrade's own headers (Sec-WebSocket-Key, -Version, -Protocol, -Extensions) go to the
# server: the handshake is the browser's and the server's (hostd.api.hub.wsrelay).
_WS_DROPPED: Final = _DROPPED_REQUEST | {"content-length"}
_SWITCHING: Final = (
    b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
)


def _wants_html(headers: Headers, method: str) -> bool:
    return method in ("GET", "HEAD") and "text/html" in headers.get("accept", "")


def _forwarded_cookies(headers: Headers) -> str | None:
    ours = hub_cookie_names()
    kept = []
    for header in headers.getlist("cookie"):
        for part in header.split(";"):
            name = part.split("=", 1)[0].strip()
            if part.strip() and name not in ours:
                kept.append(part.strip())
    return "; ".join(kept) or None


def _request_headers(scope: Scope, route: Route, dropped: frozenset[str]) -> list[tuple[str, str]]:
    headers = Headers(scope=scope)
    out = [(key, value) for key, value in headers.items() if key not in dropped]
    connection_listed = {item.strip().lower() for item in headers.get("connection", "").split(",")}
    out = [(key, value) for key, value in out if key not in connection_listed]
    cookies = _forwarded_cookies(headers)
    if cookies is not None:
        out.append(("cookie", cookies))
    client = scope.get("client")
    if client:
        out.append(("x-forwarded-for", str(client[0])))
    out.append(
        ("x-forwarded-proto", "https" if scope.get("scheme") in ("https", "wss") else "http")
    )
    if "host" in headers:
        out.append(("x-forwarded-host", headers["host"]))
    out.append(("authorization", f"token {route.token}"))
    return out


def _cookie_name(set_cookie: bytes) -> bytes:
    """The name a Set-Cookie header sets, as browsers read it (RFC 6265bis 5.6): the text
    before the first "=", stripped; empty when there is no "=" at all."""
    pair = set_cookie.split(b";", 1)[0]
    return pair.split(b"=", 1)[0].strip() if b"=" in pair else b""


def _response_headers(raw: list[tuple[bytes, bytes]], route: Route) -> list[tuple[bytes, bytes]]:
    ours = {name.encode() for name in hub_cookie_names()}
    connection_listed = {
        item.strip().lower().encode()
        for key, value in raw
        if key.lower() == b"connection"
        for item in value.decode("latin-1").split(",")
    }
    out = []
    origin = route.http_origin.encode()
    for key, value in raw:
        name = key.lower()
        if name.decode("latin-1") in _HOP_BY_HOP or name in connection_listed or name == b"date":
            continue  # hop-by-hop; and Date, which the hub's server sets itself
        if name == b"set-cookie" and _cookie_name(value) in ours | {b""}:
            # A user's server may not set (or clear) the hub's own cookies; nor a nameless
            # one ("=NAME=V"), which a browser sends back as "NAME=V": any cookie's name.
            continue
        if name == b"location" and value.startswith(origin):
            value = value[len(origin) :] or b"/"
        out.append((name, value))
    return out


class UserProxy:
    """The ASGI app for every path under /user/ (HTTP and WebSocket)."""

    def __init__(
        self,
        *,
        sessions: Sessions,
        routes: Routes,
        activity: Activity,
        http: Callable[[], Upstreams],
        admin_access: bool,
        not_running: Callable[[Request, Identity, str], Awaitable[Response]],
        identify: Callable[[HTTPConnection], Awaitable[Identity | None]] | None = None,
        login_url: Callable[[HTTPConnection, str], str] | None = None,
        error_page: ErrorPage | None = None,
    ) -> None:
        """``identify`` and ``login_url`` (where a browser that is nobody goes, given the path
        it asked for) default to the hub's own origin's: its cookie, its login page. Under
        subdomain_host they are the user's origin's (hostd.api.hub.subdomains).
        ``error_page``: the hub's page for a refusal or a failure, shown to a browser asking
        for a page (GET, Accept: text/html); every other client gets the JSON body."""
        self.sessions = sessions
        self.identify = identify or sessions.identify
        self.login_url = login_url or _login_page
        self.routes = routes
        self.activity = activity
        self.http = http
        self.admin_access = admin_access
        self.not_running = not_running
        self.error_page = error_page

    async def _refuse(
        self,
        request: Request,
        identity: Identity | None,
        status: int,
        message: str,
        page: ProxyError | None = None,
    ) -> Response:
        """JupyterHub's JSON error body; a hub page with the reason and what to do instead,
        for a browser asking for a page (when this proxy has one)."""
        if self.error_page is None or not _wants_html(request.headers, request.method):
            return _json(status, message)
        return await self.error_page(request, identity, status, page or ProxyError(message))

    def allowed(self, identity: Identity, user: str) -> bool:
        return identity.user == user or (identity.admin and self.admin_access)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        user, rest = _user_of(raw_path)
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send, None if rest is None else user)
            return
        request = Request(scope, receive)
        if user is None:
            page = ProxyError(
                "There is no server at this address: a server's address is /user/<name>/.",
                title="No such server",
            )
            await (await self._refuse(request, None, 404, "no such server", page))(
                scope, receive, send
            )
            return
        if rest is None:  # /user/alice: the server lives under /user/alice/
            query = f"?{request.url.query}" if request.url.query else ""
            await RedirectResponse(f"/user/{user}/{query}", 302)(scope, receive, send)
            return
        identity = await self.identify(request)
        method = scope["method"]
        if identity is None:
            if _wants_html(request.headers, method):
                target = raw_path.decode("latin-1") + _query(scope)
                response: Response = RedirectResponse(self.login_url(request, target), 302)
            else:
                response = _json(403, "not logged in")
            await response(scope, receive, send)
            return
        if not self.allowed(identity, user):
            message = f"{identity.user} may not use {user}'s server"
            refused = await self._refuse(
                request, identity, 403, message, _not_yours(identity, user)
            )
            await refused(scope, receive, send)
            return
        if user == identity.user and rest == b"/logout" and _wants_html(request.headers, method):
            # JupyterLab's File > Log Out (its hub extension: <server>/logout): the hub's.
            await RedirectResponse("/hub/logout", 302)(scope, receive, send)
            return
        changes = method.upper() not in _SAFE_METHODS
        if changes and not identity.by_token and cross_site(request.headers):
            await _json(403, "refused: a request from another site")(scope, receive, send)
            return
        try:
            # A named server's key (user:server) when the path is /user/<name>/<server>/...
            # and that server runs; the user's own right was checked above, for any server.
            user = await self.routes.key_for(user, rest)
            route = await self.routes.get(user)
        except HostdError as exc:  # the daemon is restarting, say: a clear answer, not a 500
            log.warning("could not look up %s's server: %s", user, exc.message)
            message = "the hub cannot reach hostd just now; try again"
            page = ProxyError(
                "The hub cannot reach hostd, the service that runs the servers, just now.",
                title="Try again in a moment",
                advice="It is probably restarting: reload this page in a few seconds. "
                "If it lasts, tell the administrator.",
            )
            refused = await self._refuse(request, identity, 503, message, page)
            await refused(scope, receive, send)
            return
        if route is None:
            await (await self.not_running(request, identity, user))(scope, receive, send)
            return
        self.activity.seen(user)
        await self._forward(scope, receive, send, user, route)

    async def _forward(
        self, scope: Scope, receive: Receive, send: Send, user: str, route: Route
    ) -> None:
        headers = Headers(scope=scope)
        chunked = "transfer-encoding" in headers
        has_body = chunked or headers.get("content-length", "0") != "0"
        target = (scope.get("raw_path") or scope["path"].encode()) + _query(scope).encode("latin-1")
        try:
            # The connection must end at this route's user's server (hostd.api.hub.upstream).
            upstream = await self.http().request(
                route,
                scope["method"],
                target,
                _request_headers(scope, route, _DROPPED_REQUEST),
                _request_body(receive) if has_body else None,
                sized=has_body and not chunked,
            )
        except TransportFailure as exc:
            self.routes.forget(user)
            log.info("%s's server did not answer %s: %r", user, scope["path"], exc)
            message = f"{user}'s server did not answer; try again"
            page = ProxyError(
                f"{user}'s server did not answer.",
                title="The server did not answer",
                advice="It may be busy or just stopping: reload this page in a moment, or "
                "see its state and logs on the home page.",
            )
            asked = Request(scope, receive)
            failed = await self._refuse(asked, await self.identify(asked), 502, message, page)
            await failed(scope, receive, send)
            return
        try:
            answer_headers = _response_headers(upstream.headers, route)
            length = _content_length(upstream.headers)
            if not (length.isdigit() and int(length) <= BUFFERED_BODY_MAX_BYTES):
                response = StreamingResponse(_upstream_body(upstream, user), upstream.status)
                response.raw_headers = answer_headers
                await response(scope, receive, send)
                return
            # Most answers (API calls, small files) are short and sized: read whole, sent in
            # two writes, without a streaming response's task group (measured: a third of the
            # proxy's CPU per small request); and a server that breaks off is a clean 502.
            try:
                body = await upstream.read()
            except TransportFailure as exc:
                log.info("%s's server broke off a response: %r", user, exc)
                await _json(502, f"{user}'s server broke off its answer")(scope, receive, send)
                return
            start = {"type": "http.response.start", "status": upstream.status}
            await send({**start, "headers": answer_headers})
            await send({"type": "http.response.body", "body": body})
        finally:
            upstream.close()

    # -- WebSocket ---------------------------------------------------------------------

    async def _websocket(
        self, scope: Scope, receive: Receive, send: Send, user: str | None
    ) -> None:
        websocket = WebSocket(scope, receive, send)
        identity = await self.identify(websocket)
        # Browsers send Origin with every WebSocket; another site's is refused, as the
        # upstream would (it skips the check for the token the hub adds).
        refused = (
            user is None
            or identity is None
            or not self.allowed(identity, user)
            or (not identity.by_token and cross_site(websocket.headers))
        )
        rest = _user_of(scope.get("raw_path") or scope["path"].encode())[1] or b"/"
        try:
            if not refused and user is not None:
                user = await self.routes.key_for(user, rest)
            route = None if refused or user is None else await self.routes.get(user)
        except HostdError as exc:
            log.warning("could not look up %s's server: %s", user, exc.message)
            route = None
        if route is None or user is None:
            await websocket.close(code=1008)  # before accept: the server answers 403
            return
        if RELAY_EXTENSION not in scope.get("extensions", {}):
            log.error("the hub is served without its WebSocket protocol: refusing WebSockets")
            await websocket.close(code=1008)
            return
        target = (scope.get("raw_path") or scope["path"].encode()) + _query(scope).encode("latin-1")
        try:
            # The browser's Sec-WebSocket-* go to the server, whose 101 goes back: the
            # handshake is theirs, end to end, and the hub relays bytes (hostd.api.hub.wsrelay).
            upgraded = await open_upstream(
                route,
                target,
                _request_headers(scope, route, _WS_DROPPED),
                timeout_s=WS_OPEN_TIMEOUT_S,
            )
        except (OSError, TimeoutError, UpgradeRefused) as exc:
            self.routes.forget(user)
            log.info("%s's server refused a WebSocket to %s: %r", user, scope["path"], exc)
            await websocket.close(code=1008)
            return
        head = b"".join(
            [_SWITCHING]
            + [b"%s: %s\r\n" % pair for pair in _response_headers(upgraded.headers, route)]
            + [b"\r\n"]
        )
        self.activity.seen(user)
        key = user
        await send(
            {
                "type": RELAY_MESSAGE,
                "upgraded": upgraded,
                "head": head,
                "activity": lambda: self.activity.seen(key),
            }
        )


@dataclass(frozen=True)
class ProxyError:
    """What a refusal's page says: the reason, a title, what to do, links to do it."""

    message: str
    title: str | None = None
    advice: str | None = None
    links: tuple[tuple[str, str], ...] = ()


ErrorPage = Callable[[Request, Identity | None, int, ProxyError], Awaitable[Response]]


def _not_yours(identity: Identity, user: str) -> ProxyError:
    admins = (
        " Admins may open other people's servers only when the hub's admin_access is on."
        if identity.admin
        else ""
    )
    return ProxyError(
        f"You are signed in as {identity.user}; {user}'s server is {user}'s alone.{admins}",
        title="This is not your server",
        advice=f"Open your own server from your home page, or sign in as {user} if that is you.",
        links=(
            (f"/user/{identity.user}/lab", "Open your own JupyterLab"),
            ("/hub/logout", "Sign out, to sign in as someone else"),
        ),
    )


def _login_page(connection: HTTPConnection, target: str) -> str:
    return f"/hub/login?next={quote(target, safe='')}"


def _user_of(raw_path: bytes) -> tuple[str | None, bytes | None]:
    """(user, the rest of the path) of /user/<name>/...; (None, None) for no valid name."""
    match = _USER_PATH.fullmatch(raw_path.split(b"?", 1)[0])
    if match is None:
        return None, None
    try:
        user = validate_username(unquote(match[1].decode("ascii"), errors="strict"))
    except (InvalidName, UnicodeDecodeError):
        return None, None
    return user, match[2]


def _query(scope: Scope) -> str:
    query: bytes = scope.get("query_string", b"")
    return f"?{query.decode('latin-1')}" if query else ""


async def _request_body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body = message.get("body", b"")
        if body:
            yield body
        if not message.get("more_body", False):
            return


def _content_length(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name.lower() == b"content-length":
            return value.decode("latin-1").strip()
    return ""


async def _upstream_body(upstream: Answer, user: str) -> AsyncIterator[bytes]:
    try:
        async for chunk in upstream.body():
            yield chunk
    except TransportFailure as exc:
        log.info("%s's server broke off a response: %r", user, exc)
        raise


def _json(status: int, message: str) -> JSONResponse:
    # JupyterHub's error body.
    return JSONResponse({"status": status, "message": message}, status_code=status)
