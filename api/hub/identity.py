"""Who is asking: browser sessions (signed cookie + a row in the database), API tokens, and the
CSRF tokens bound to a session (api layer).

A request is authenticated by, in order: ``Authorization: token <t>`` (or ``Bearer``), a hub
API token from the database; else (no such header, or not a hub token: JupyterLab sends its
server's own) the session cookie. Answers are cached in memory for CACHE_S (the hub is one
process, and logout drops its entry at once), so a page that loads a hundred files through
/user/<name>/ does not ask the database a hundred times.

Rights follow the account: a session or token is then good only while its account is
(hostd.api.hub.accounts, the daemon's answer, at most 60 s old): not locked, not expired, and
with the uid it had when the session or token was made (a name deleted and made again is
another account). Whether the identity is an admin is that answer's too, not the login's.

Cookies: ``hostd-hub-session`` (HttpOnly, SameSite=Lax, Path=/, Secure when the request came
over HTTPS, Max-Age = cookie_max_age_days) and, before login, ``hostd-hub-login`` (a signed
nonce that the login form's ``_xsrf`` is bound to: no login CSRF). With subdomain_host, each
user's origin has ``hostd-user-auth`` (hostd.api.hub.subdomains).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.responses import Response

from hostd.api.hub.accounts import Accounts
from hostd.api.hub.db import HubStore, SessionOwner, utcnow
from hostd.api.hub.security import Secret, new_token

__all__ = [
    "CACHE_S",
    "LOGIN_COOKIE",
    "SERVER_COOKIE",
    "SESSION_COOKIE",
    "XSRF_FIELD",
    "XSRF_HEADER",
    "Identity",
    "Sessions",
    "hub_cookie_names",
]

SESSION_COOKIE: Final = "hostd-hub-session"
LOGIN_COOKIE: Final = "hostd-hub-login"
# subdomain_host: the cookie of a user's origin (hostd.api.hub.subdomains), naming a hub session.
SERVER_COOKIE: Final = "hostd-user-auth"
XSRF_FIELD: Final = "_xsrf"
XSRF_HEADER: Final = "X-XSRFToken"
CACHE_S: Final = 60.0
_CACHE_MAX: Final = 10_000
_LOGIN_COOKIE_S: Final = 3600
_TOKEN_MAX_CHARS: Final = 256
_PURPOSE_SESSION: Final = "session"
_PURPOSE_XSRF: Final = "xsrf"
_PURPOSE_LOGIN: Final = "login"
_PURPOSE_LOGIN_XSRF: Final = "login-xsrf"


def hub_cookie_names() -> frozenset[str]:
    """The hub's own cookies: never forwarded to a user's server, nor set by one."""
    return frozenset({SESSION_COOKIE, LOGIN_COOKIE, SERVER_COOKIE})


@dataclass(frozen=True)
class Identity:
    """An authenticated request: whose, and by which means. ``session_id`` is the browser
    session's (what its CSRF token is bound to); None for an API token. ``uid`` is the
    account's."""

    user: str
    admin: bool
    session_id: str | None = None
    uid: int | None = None

    @property
    def by_token(self) -> bool:
        return self.session_id is None

    def may_act_for(self, user: str) -> bool:
        return self.admin or self.user == user


def _server_purpose(origin: str) -> str:
    # A signature for one origin does not verify for another, nor as the hub's own cookie.
    return f"server {origin}"


def _api_token(headers: Headers) -> str | None:
    value = headers.get("authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() not in ("token", "bearer"):
        return None
    token = token.strip()
    return token if 0 < len(token) <= _TOKEN_MAX_CHARS else None


class Sessions:
    """Logins, logouts and the lookups behind every request."""

    def __init__(
        self, store: HubStore, secret: Secret, *, max_age_s: int, accounts: Accounts
    ) -> None:
        self.store = store
        self.secret = secret
        self.max_age_s = max_age_s
        self.accounts = accounts
        self._cache: dict[tuple[str, str], tuple[SessionOwner | None, float]] = {}

    # -- who is this -------------------------------------------------------------------

    async def identify(self, connection: HTTPConnection) -> Identity | None:
        """The identity of a request or WebSocket, or None."""
        token = _api_token(connection.headers)
        if token is not None:
            owner = await self._owner("token", token)
            if owner is not None:
                return await self._of_account(owner, None)
            # Not a hub token: JupyterLab sends its server's own token (from its page config)
            # along with the cookie; the cookie decides, and the proxy replaces the header.
        session_id = self.secret.verify(_PURPOSE_SESSION, connection.cookies.get(SESSION_COOKIE))
        if session_id is None:
            return None
        owner = await self._owner("session", session_id)
        return None if owner is None else await self._of_account(owner, session_id)

    async def identify_server(self, connection: HTTPConnection, origin: str) -> Identity | None:
        """The identity of a request at a user's ``origin`` (subdomain_host): an API token, or
        that origin's server cookie. The hub's own cookie never reaches there (host-only)."""
        token = _api_token(connection.headers)
        if token is not None:
            owner = await self._owner("token", token)
            if owner is not None:
                return await self._of_account(owner, None)
        session_id = self.secret.verify(
            _server_purpose(origin), connection.cookies.get(SERVER_COOKIE)
        )
        if session_id is None:
            return None
        owner = await self._owner("session", session_id)
        return None if owner is None else await self._of_account(owner, session_id)

    def set_server_cookie(
        self, response: Response, session_id: str, *, origin: str, secure: bool
    ) -> None:
        """The cookie of a user's origin, for the hub session ``session_id``: host-only (no
        Domain), signed for that origin alone, gone when the hub session ends."""
        response.set_cookie(
            SERVER_COOKIE,
            self.secret.sign(_server_purpose(origin), session_id),
            max_age=self.max_age_s,
            path="/",
            secure=secure,
            httponly=True,
            samesite="lax",
        )

    async def _of_account(self, owner: SessionOwner, session_id: str | None) -> Identity | None:
        """The identity, if the owner's account may still use the hub and is the one that
        made the session or token (the same uid); its admin flag is the account's now."""
        if owner.uid is None:  # from before uids were kept: nobody can say whose
            return None
        account = await self.accounts.check(owner.user)
        if account is None or account.uid != owner.uid:
            return None
        if account.admin != owner.admin:
            # Made or unmade an admin since the login: the user's row (what the API's user
            # model and the admin page show) follows, and cached owners are read again.
            await asyncio.to_thread(self.store.set_admin, owner.user, account.admin)
            self._forget_user(owner.user)
        return Identity(owner.user, account.admin, session_id, account.uid)

    def _forget_user(self, user: str) -> None:
        for key in [
            key for key, (cached, _) in self._cache.items() if cached and cached.user == user
        ]:
            del self._cache[key]

    async def _owner(self, kind: str, secret_value: str) -> SessionOwner | None:
        key = (kind, secret_value)
        cached = self._cache.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[1] < CACHE_S:
            owner = cached[0]
        else:
            lookup = self.store.token_owner if kind == "token" else self.store.session_owner
            owner = await asyncio.to_thread(lookup, secret_value)
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[key] = (owner, now)
        if owner is not None and owner.expires is not None and owner.expires <= utcnow():
            return None
        return owner

    def forget(self, kind: str, secret_value: str) -> None:
        self._cache.pop((kind, secret_value), None)

    def forget_tokens(self) -> None:
        """After a token is deleted: its cached answer must not outlive it."""
        for key in [key for key in self._cache if key[0] == "token"]:
            del self._cache[key]

    # -- log in and out ----------------------------------------------------------------

    async def log_in(
        self, response: Response, *, user: str, uid: int, remote: str | None, secure: bool
    ) -> None:
        """Make a session for ``user`` (account ``uid``) and set its cookie on ``response``."""
        self.accounts.forget(user)  # the daemon has just vouched for it: ask afresh
        session_id = await asyncio.to_thread(
            self.store.create_session,
            user,
            uid=uid,
            lifetime=timedelta(seconds=self.max_age_s),
            remote=remote,
        )
        response.set_cookie(
            SESSION_COOKIE,
            self.secret.sign(_PURPOSE_SESSION, session_id),
            max_age=self.max_age_s,
            path="/",
            secure=secure,
            httponly=True,
            samesite="lax",
        )
        response.delete_cookie(LOGIN_COOKIE, path="/hub/", secure=secure, httponly=True)

    async def log_out(self, identity: Identity | None, response: Response, *, secure: bool) -> None:
        """End the session in the database (an old copy of the cookie is then refused too)."""
        if identity is not None and identity.session_id is not None:
            self.forget("session", identity.session_id)
            await asyncio.to_thread(self.store.end_session, identity.session_id)
        response.delete_cookie(
            SESSION_COOKIE, path="/", secure=secure, httponly=True, samesite="lax"
        )

    # -- CSRF --------------------------------------------------------------------------

    def xsrf_token(self, identity: Identity) -> str:
        return self.secret.token_for(_PURPOSE_XSRF, identity.session_id or "")

    def check_xsrf(self, identity: Identity, token: str | None) -> bool:
        if identity.session_id is None:
            return True  # an API token is not sent by a browser on its own
        return self.secret.check_token(_PURPOSE_XSRF, identity.session_id, token)

    def login_form_token(self, cookies: Mapping[str, str]) -> tuple[str, str | None]:
        """The login form's ``_xsrf``, and the nonce cookie's new value when the browser has
        no valid one yet (set it with set_login_cookie)."""
        nonce = self.secret.verify(_PURPOSE_LOGIN, cookies.get(LOGIN_COOKIE))
        cookie = None
        if nonce is None:
            nonce = new_token()
            cookie = self.secret.sign(_PURPOSE_LOGIN, nonce)
        return self.secret.token_for(_PURPOSE_LOGIN_XSRF, nonce), cookie

    @staticmethod
    def set_login_cookie(response: Response, cookie: str, *, secure: bool) -> None:
        response.set_cookie(
            LOGIN_COOKIE,
            cookie,
            max_age=_LOGIN_COOKIE_S,
            path="/hub/",
            secure=secure,
            httponly=True,
            samesite="lax",
        )

    def check_login_form(self, cookies: Mapping[str, str], token: str | None) -> bool:
        nonce = self.secret.verify(_PURPOSE_LOGIN, cookies.get(LOGIN_COOKIE))
        return nonce is not None and self.secret.check_token(_PURPOSE_LOGIN_XSRF, nonce, token)
