"""``subdomain_host``: each user's server at an origin of its own (api layer).

JupyterHub's model: with ``subdomain_host = "https://hub.example.org"`` the hub's pages stay at
https://hub.example.org/hub/ and alice's server is served at
https://alice.hub.example.org/user/alice/. A page of alice's server then runs at an origin the
hub's cookie is never sent to (it is host-only), so its scripts cannot act as whoever opens
it, an admin included (issue 13, attack 2); without subdomains they share the hub's origin
and only a partial guard stands (hostd.api.hub.security.from_user_page). DNS: a wildcard
record ``*.hub.example.org`` to the hub; TLS: a wildcard certificate (README).

A browser gets into alice's origin by a one-time code, as jupyterhub-singleuser does by OAuth:
her origin sends a browser without its cookie to the hub's ``/hub/user-auth?next=...``; the hub
(its cookie says who this is; login first if needed) checks that this identity may use alice's
server, and sends the browser back to ``/user/alice/oauth_callback?code=...`` at her origin,
where the code (single use, CODE_TTL_S, bound to that origin) becomes the server cookie
``hostd-user-auth``: host-only, HttpOnly, signed for that origin alone, naming the browser's
hub session. Logging out of the hub ends that session, and with it every server cookie.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, urlencode, urlsplit

from starlette.datastructures import Headers, QueryParams
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from hostd.api.hub.identity import Identity, Sessions
from hostd.units import validate_username
from hostd.units.errors import InvalidName

__all__ = [
    "CALLBACK",
    "CODE_TTL_S",
    "AuthCodes",
    "Site",
    "SubdomainGate",
    "label_ok",
    "login_redirect",
    "user_auth_endpoint",
    "user_auth_redirect",
]

CALLBACK: Final = "oauth_callback"  # /user/<name>/oauth_callback, as jupyterhub-singleuser's
CODE_TTL_S: Final = 60.0
_CODES_MAX: Final = 10_000
# A DNS label (RFC 1123), lower case: the names that can be a subdomain.
_LABEL: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class Site:
    """The hub's origin and its users' origins under ``subdomain_host``."""

    origin: str  # parse_subdomain_host's

    @property
    def scheme(self) -> str:
        return urlsplit(self.origin).scheme

    @property
    def netloc(self) -> str:
        return urlsplit(self.origin).netloc

    @property
    def secure(self) -> bool:
        return self.scheme == "https"

    def server_origin(self, user: str) -> str:
        return f"{self.scheme}://{user}.{self.netloc}"

    def user_of(self, host: str) -> str | None:
        """The user whose origin a request's Host is, or None (the hub's own, or another)."""
        host = host.lower()
        suffix = f".{self.netloc}"
        if not host.endswith(suffix):
            return None
        label = host[: -len(suffix)]
        return label if _LABEL.fullmatch(label) else None


def label_ok(user: str) -> bool:
    """Whether a user name can be a subdomain (a DNS label): "a.b" or "al_ice" cannot."""
    return _LABEL.fullmatch(user) is not None


class AuthCodes:
    """One-time codes: each names a hub session, for one user's origin, for CODE_TTL_S."""

    def __init__(self, *, ttl_s: float = CODE_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._codes: dict[str, tuple[str, str, float]] = {}

    def issue(self, session_id: str, origin: str) -> str:
        now = time.monotonic()
        if len(self._codes) >= _CODES_MAX:
            self._codes = {k: v for k, v in self._codes.items() if v[2] > now}
        code = secrets.token_urlsafe(32)
        self._codes[code] = (session_id, origin, now + self.ttl_s)
        return code

    def redeem(self, code: str | None, origin: str) -> str | None:
        """The session a code names, once, if it is for ``origin`` and not expired."""
        found = self._codes.pop(code or "", None)
        if found is None:
            return None
        session_id, for_origin, expires = found
        if for_origin != origin or time.monotonic() > expires:
            return None
        return session_id


class SubdomainGate:
    """Outermost ASGI middleware in subdomain mode: a request at a user's origin goes to that
    user's server (the proxy, or the code's callback) and nowhere else; a /user/ path at the
    hub's own origin is sent to the user's origin."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        site: Site,
        proxy: ASGIApp,
        sessions: Sessions,
        codes: AuthCodes,
    ) -> None:
        self.app = app
        self.site = site
        self.proxy = proxy
        self.sessions = sessions
        self.codes = codes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        user = self.site.user_of(headers.get("host", ""))
        path: str = scope["path"]
        if user is None:
            if path == "/user" or path.startswith("/user/"):
                await self._to_users_origin(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        prefix = f"/user/{user}"
        if path == f"{prefix}/{CALLBACK}" and scope["type"] == "http":
            await self._callback(Request(scope, receive), user)(scope, receive, send)
        elif path == prefix or path.startswith(f"{prefix}/"):
            await self.proxy(scope, receive, send)
        elif scope["type"] == "http":
            # The hub's pages are at the hub's origin (JupyterLab's "Hub Control Panel" link
            # is /hub/home at whatever origin it runs).
            target = self.site.origin + _raw_target(scope)
            await RedirectResponse(target, 302)(scope, receive, send)
        else:
            await _close(send)

    async def _to_users_origin(self, scope: Scope, receive: Receive, send: Send) -> None:
        parts = scope["path"].split("/")
        try:
            user = validate_username(parts[2]) if len(parts) > 2 else None
        except InvalidName:
            user = None
        if scope["type"] != "http":
            await _close(send)
            return
        if user is None or not label_ok(user):
            why = "no such server" if user is None else f"{user}'s name cannot be a subdomain"
            await PlainTextResponse(why, status_code=404)(scope, receive, send)
            return
        target = self.site.server_origin(user) + _raw_target(scope)
        await RedirectResponse(target, 302)(scope, receive, send)

    def _callback(self, request: Request, user: str) -> Response:
        origin = self.site.server_origin(user)
        session_id = self.codes.redeem(request.query_params.get("code"), origin)
        if session_id is None:
            return PlainTextResponse(
                "This sign-in link has expired or was used: open the server again from the hub.",
                status_code=403,
            )
        next_path = request.query_params.get("next", "")
        if not next_path.startswith(f"/user/{user}/"):
            next_path = f"/user/{user}/"
        response = RedirectResponse(next_path, 302)
        self.sessions.set_server_cookie(
            response, session_id, origin=origin, secure=self.site.secure
        )
        return response


def user_auth_endpoint(
    sessions: Sessions, site: Site, codes: AuthCodes, *, admin_access: bool
) -> Callable[[Request], Awaitable[Response]]:
    """GET /hub/user-auth?next=...: into a user's origin, for a browser logged in to the hub
    (else to the login page first, and back)."""

    async def endpoint(request: Request) -> Response:
        identity = await sessions.identify(request)
        if identity is None:
            back = quote(f"{request.url.path}?{request.url.query}", safe="")
            return RedirectResponse(f"/hub/login?next={back}", 302)
        return user_auth_redirect(
            site, codes, identity, request.query_params, admin_access=admin_access
        )

    return endpoint


def user_auth_redirect(
    site: Site, codes: AuthCodes, identity: Identity, params: QueryParams, *, admin_access: bool
) -> Response:
    """``/hub/user-auth?next=<a URL at a user's origin>``: a one-time code for the browser's
    hub session, sent to that origin's callback, when ``identity`` may use that server."""
    target = urlsplit(params.get("next", ""))
    user = site.user_of(target.netloc)
    origin = None if user is None else site.server_origin(user)
    if (
        user is None
        or f"{target.scheme}://{target.netloc}".lower() != origin
        or not (target.path == f"/user/{user}" or target.path.startswith(f"/user/{user}/"))
    ):
        return PlainTextResponse("next must be a page of a user's server", status_code=400)
    if identity.session_id is None:
        return PlainTextResponse("sign in with the hub's login page first", status_code=403)
    if not (identity.user == user or (identity.admin and admin_access)):
        return PlainTextResponse(f"{identity.user} may not use {user}'s server", status_code=403)
    code = codes.issue(identity.session_id, origin)
    path = target.path + (f"?{target.query}" if target.query else "")
    query = urlencode({"code": code, "next": path})
    return RedirectResponse(f"{origin}/user/{user}/{CALLBACK}?{query}", 302)


def login_redirect(site: Site, host: str, target: str) -> str:
    """Where a browser without the server cookie goes: the hub's user-auth, back to target."""
    return f"{site.origin}/hub/user-auth?next=" + quote(
        f"{site.scheme}://{host.lower()}{target}", safe=""
    )


def _raw_target(scope: Scope) -> str:
    raw: bytes = scope.get("raw_path") or scope["path"].encode()
    query: bytes = scope.get("query_string", b"")
    return raw.decode("latin-1") + (f"?{query.decode('latin-1')}" if query else "")


async def _close(send: Send) -> None:
    await send({"type": "websocket.close", "code": 1008})
