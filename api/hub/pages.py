"""The hub's pages: login, logout, home, admin, logs, tokens (api layer; server-rendered).

Every page works without JavaScript; /static/hub.js adds what needs it: a start's live
progress and JupyterLab opened when ready (the page also refreshes itself, inside <noscript>),
a button that says "Starting…" at once, the logs' Follow inside the page, the admin table's
search and sort. How the pages word use, limits and log lines: hostd.api.hub.present.
Every form that changes something carries ``_xsrf`` and is refused without it, with another
session's, or from another site.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse

from hostd.api.hub.chart_context import admin_charts, home_charts
from hostd.api.hub.forms import BadInput, TooLarge, read_form
from hostd.api.hub.identity import XSRF_FIELD, XSRF_HEADER, Identity
from hostd.api.hub.notices import notices_context
from hostd.api.hub.present import LOG_PRIORITIES, LOG_SINCE, LogFilter, without_own_timestamp
from hostd.api.hub.security import DEFAULT_NEXT, cross_site, safe_next, scripted_load
from hostd.api.hub.state import Hub
from hostd.units import validate_username
from hostd.units.errors import (
    HostdError,
    InvalidInput,
    LockedOut,
    LoginFailed,
    SessionNotFound,
)
from hostd.units.servers import session_key, validate_server_name
from hostd.units.values import Credentials, LogLine, UsageView

__all__ = [
    "Forbidden",
    "Pages",
]

log = logging.getLogger(__name__)
# What a login is told when the daemon cannot answer (or gives no uid): nothing about why.
UNAVAILABLE = "The login service is not available right now; please try later."

HOME_LOG_LINES: Final = 20
LOGS_PAGE_LINES: Final = 200
# How far back the logs page's filters look (LINES_MAX of the daemon's API is 10 000).
LOGS_FILTER_SCAN: Final = 2000
# Form-started servers: wait this long, so an immediate refusal (capacity) shows as a message.
FORM_START_WAIT_S: Final = 1.0


class Forbidden(Exception):
    """A page the identity may not see or a form it may not send."""


class Pages:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    # -- helpers -----------------------------------------------------------------------

    def render(
        self,
        request: Request,
        name: str,
        context: dict[str, Any],
        *,
        status: int = 200,
        identity: Identity | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        base = {
            "identity": identity,
            "xsrf": None if identity is None else self.hub.sessions.xsrf_token(identity),
            "admin_access": self.hub.config.admin_access,
            **notices_context(self.hub.notices.latest),
            "own_cull_at": None if identity is None else self.hub.notices.culls.get(identity.user),
        }
        return self.hub.templates.TemplateResponse(
            request, name, {**base, **context}, status_code=status, headers=headers
        )

    def error(
        self,
        request: Request,
        status: int,
        message: str,
        identity: Identity | None = None,
        headers: dict[str, str] | None = None,
        *,
        title: str | None = None,
        advice: str | None = None,
        links: Sequence[tuple[str, str]] = (),
    ) -> Response:
        """The hub's error page: the reason (``message``), what to do (``advice``, ``links``:
        (href, words)); a link home, or to sign in, is always there."""
        return self.render(
            request,
            "error.html",
            {
                "status": status,
                "message": message,
                "title": title,
                "advice": advice,
                "links": links,
            },
            status=status,
            identity=identity,
            headers=headers,
        )

    def _secure(self, request: Request) -> bool:
        return request.url.scheme == "https"

    async def identity_or_login(self, request: Request) -> Identity | Response:
        identity = await self.hub.sessions.identify(request)
        if identity is not None and not identity.by_token:
            return identity
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/hub/login?next={quote(target, safe='')}", 302)

    async def _checked_form(self, request: Request, identity: Identity) -> dict[str, str]:
        """The form of a state-changing POST, after the CSRF and same-site checks."""
        try:
            form = await read_form(request)
        except TooLarge:
            raise  # a 413 page (app.py): retrying the same form cannot help
        except BadInput:
            form = {}  # no form, no token: refused below like a missing token
        if cross_site(request.headers) or not self.hub.sessions.check_xsrf(
            identity, form.get(XSRF_FIELD)
        ):
            raise Forbidden("this form is stale or came from another site; reload and retry")
        return form

    # -- login and logout --------------------------------------------------------------

    async def login_page(self, request: Request) -> Response:
        next_url = safe_next(request.query_params.get("next"))
        identity = await self.hub.sessions.identify(request)
        if identity is not None and not identity.by_token:
            return RedirectResponse(next_url or DEFAULT_NEXT, 302)
        return self._login_form(request, next_url=next_url, username="", message=None)

    def _login_form(
        self,
        request: Request,
        *,
        next_url: str | None,
        username: str,
        message: str | None,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> Response:
        token, cookie = self.hub.sessions.login_form_token(request.cookies)
        response = self.render(
            request,
            "login.html",
            {"next": next_url, "username": username, "message": message, "login_xsrf": token},
            status=status,
            headers=headers,
        )
        if cookie is not None:
            self.hub.sessions.set_login_cookie(response, cookie, secure=self._secure(request))
        return response

    async def login(self, request: Request) -> Response:
        try:
            form = await read_form(request)
        except BadInput as exc:
            return self._login_form(
                request, next_url=None, username="", message=exc.message, status=exc.status
            )
        next_url = safe_next(form.get("next"))
        shown_name = form.get("username", "")[:64]
        if cross_site(request.headers) or not self.hub.sessions.check_login_form(
            request.cookies, form.get(XSRF_FIELD)
        ):
            return self._login_form(
                request,
                next_url=next_url,
                username=shown_name,
                status=403,
                message="This login form expired or came from another site; please try again.",
            )
        username, password = form.get("username", "").strip(), form.get("password", "")
        remote = request.client.host if request.client else None
        try:
            credentials = Credentials(username, password)
        except InvalidInput as exc:
            log.info("login refused before asking the daemon (%s) from %s", exc.code, remote)
            return self._login_form(
                request,
                next_url=next_url,
                username=shown_name,
                status=400,
                message=_input_message(username, password),
            )
        try:
            result = await self.hub.daemon.authenticate(credentials.username, credentials.password)
        except (LoginFailed, LockedOut) as exc:
            await asyncio.to_thread(
                self.hub.store.record_login, username, ok=False, code=exc.code, remote=remote
            )
            log.warning("login of %r from %s refused: %s", username, remote, exc.code)
            if isinstance(exc, LockedOut):
                minutes = max(1, -(-exc.retry_after_s // 60))
                return self._login_form(
                    request,
                    next_url=next_url,
                    username=shown_name,
                    status=429,
                    headers={"Retry-After": str(exc.retry_after_s)},
                    message=f"Too many failed logins. Try again in {minutes} minute"
                    + ("s." if minutes != 1 else "."),
                )
            return self._login_form(
                request,
                next_url=next_url,
                username=shown_name,
                status=403,
                message="Invalid user name or password.",
            )
        except HostdError as exc:
            log.error("login of %r: the daemon failed: %s", username, exc.message)
            return self._login_form(
                request, next_url=next_url, username=shown_name, status=503, message=UNAVAILABLE
            )
        await asyncio.to_thread(
            self.hub.store.record_login, result.user, ok=True, remote=remote, admin=result.admin
        )
        log.info("%s logged in from %s%s", result.user, remote, " (admin)" if result.admin else "")
        uid = result.uid
        if uid is None:  # a daemon from before uids were sent: ask for the account
            account = await self.hub.sessions.accounts.check(result.user)
            uid = None if account is None else account.uid
        if uid is None:
            return self._login_form(
                request, next_url=next_url, username=shown_name, status=503, message=UNAVAILABLE
            )
        response = RedirectResponse(next_url or DEFAULT_NEXT, 303)
        await self.hub.sessions.log_in(
            response, user=result.user, uid=uid, remote=remote, secure=self._secure(request)
        )
        return response

    async def logout_page(self, request: Request) -> Response:
        identity = await self.hub.sessions.identify(request)
        if identity is None or identity.by_token:
            return RedirectResponse("/hub/login", 302)
        return self.render(request, "logout.html", {}, identity=identity)

    async def logout(self, request: Request) -> Response:
        identity = await self.hub.sessions.identify(request)
        if identity is not None and not identity.by_token:
            await self._checked_form(request, identity)
            log.info("%s logged out", identity.user)
        response = RedirectResponse("/hub/login", 303)
        await self.hub.sessions.log_out(identity, response, secure=self._secure(request))
        return response

    # -- home --------------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        identity = await self.identity_or_login(request)
        if isinstance(identity, Response):
            return identity
        next_url = safe_next(request.query_params.get("next"))
        context = await self._server_context(identity.user)
        if next_url is not None and context["status"].ready:
            return RedirectResponse(next_url, 302)
        # A start from this page opens JupyterLab by itself once it is ready (issue 16): the
        # form carries it as next, and the progress bar goes there.
        context["next"] = next_url or f"/user/{identity.user}/lab"
        return self.render(request, "home.html", context, identity=identity)

    async def _server_context(self, user: str) -> dict[str, Any]:
        status = await self.hub.servers.status(user)
        usage: UsageView | None = None
        lines: list[LogLine] = []
        active = status.view is not None and status.view.state in ("starting", "running")
        with contextlib.suppress(SessionNotFound):
            if active:
                usage = await self.hub.daemon.usage(user)
            if status.view is not None:
                lines = await self.hub.daemon.logs(user, lines=HOME_LOG_LINES)
        # usage-charts: the last hour as pictures (chart_context), while the server runs.
        charts = await home_charts(self.hub.daemon, user) if usage is not None else {"charts": []}
        return {
            "status": status,
            "usage": usage,
            "lines": lines,
            "user": user,
            **charts,
            **(await self._choices(user)),
            **await self._named_context(user),
        }

    async def _choices(self, user: str) -> dict[str, Any]:
        """The [[profile_list]] choices the start form offers (the daemon's view of the
        user's groups), and the running session's choice."""
        profiles = await self.hub.daemon.profiles(user)
        return {"profiles": profiles, "profiles_by_slug": {p.slug: p for p in profiles}}

    async def _named_context(self, user: str) -> dict[str, Any]:
        """The user's named servers, when the daemon allows any ([session] named_server_limit)."""
        if not await self.hub.routes.named_servers_on():
            return {"named_limit": 0, "named": []}
        limit = (await self.hub.daemon.policy()).named_server_limit
        named = [
            {"name": view.server, "state": view.state}
            for view in await self.hub.daemon.list()
            if view.user == user and view.server and view.state != "stopped"
        ]
        return {"named_limit": limit, "named": named}

    async def spawn(self, request: Request) -> Response:
        return await self._act(request, "start")

    async def stop(self, request: Request) -> Response:
        return await self._act(request, "stop")

    async def _act(self, request: Request, action: str) -> Response:
        identity = await self.identity_or_login(request)
        if isinstance(identity, Response):
            return identity
        user = request.path_params["name"]
        if not identity.may_act_for(user):
            return self.error(request, 403, f"You may not {action} {user}'s server.", identity)
        form = await self._checked_form(request, identity)
        try:
            # A named server's key (user:server) when the form names one.
            server = validate_server_name(form.get("server", "").strip())
            key = session_key(user, server) if server else user
            if action == "start":
                await self.hub.servers.start(
                    key,
                    by=identity.user,
                    wait_s=FORM_START_WAIT_S,
                    profile=form.get("profile") or None,
                )
            else:
                await self.hub.servers.stop(key, by=identity.user, wait_s=FORM_START_WAIT_S)
        except HostdError as exc:
            # Shown on the page the form came from (the failure is kept for it too).
            log.info(
                "%s of %s's server by %s refused: %s", action, user, identity.user, exc.message
            )
        default = DEFAULT_NEXT if user == identity.user else "/hub/admin"
        target = safe_next(form.get("next")) or default
        if action == "start" and target.startswith("/user/"):
            target = f"/hub/home?next={quote(target, safe='')}"
        return RedirectResponse(target, 303)

    # -- admin ---------------------------------------------------------------------------

    async def admin(self, request: Request) -> Response:
        identity = await self.identity_or_login(request)
        if isinstance(identity, Response):
            return identity
        if not identity.admin:
            return self.error(request, 403, "Only admins may see this page.", identity)
        users, views, host = await asyncio.gather(
            asyncio.to_thread(self.hub.store.users),
            self.hub.daemon.list(),
            self.hub.daemon.host(),
        )
        # The default servers here; named ones in their own rows (their name: user:server).
        by_name = {view.user: view for view in views if not view.server}
        named_rows = [view for view in views if view.server]
        names = sorted({user.name for user in users} | set(by_name))
        active = [
            name
            for name in names
            if by_name.get(name) and by_name[name].state in ("starting", "running")
        ]
        usages = await asyncio.gather(
            *(self.hub.daemon.usage(name) for name in active), return_exceptions=True
        )
        usage_of = {
            name: usage
            for name, usage in zip(active, usages, strict=True)
            if isinstance(usage, UsageView)
        }
        records = {user.name: user for user in users}
        rows = [
            {
                "name": name,
                "record": records.get(name),
                "view": by_name.get(name),
                "usage": usage_of.get(name),
                "pending": self.hub.servers.pending(name),
                "failure": self.hub.servers.failure(name),
            }
            for name in names
        ]
        # usage-charts: a sparkline per running session, the host's promises against capacity.
        charts = await admin_charts(self.hub.daemon, usage_of)
        return self.render(
            request,
            "admin.html",
            {"rows": rows, "host": host, "named_rows": named_rows, **charts},
            identity=identity,
        )

    # -- logs ----------------------------------------------------------------------------

    async def _log_identity(self, request: Request) -> tuple[Identity, str] | Response:
        identity = await self.identity_or_login(request)
        if isinstance(identity, Response):
            return identity
        try:
            user = validate_username(request.path_params["name"])
        except InvalidInput:
            return self.error(request, 404, "No such user.", identity)
        if not identity.may_act_for(user):
            return self.error(request, 403, f"You may not read {user}'s logs.", identity)
        return identity, user

    async def logs(self, request: Request) -> Response:
        checked = await self._log_identity(request)
        if isinstance(checked, Response):
            return checked
        identity, user = checked
        wanted = LogFilter.from_query(dict(request.query_params))
        # Filtered: the filters run over the last LOGS_FILTER_SCAN lines (the daemon's logs
        # API has no filters of its own); the page says so.
        scanned = LOGS_FILTER_SCAN if wanted.active else LOGS_PAGE_LINES
        try:
            lines = await self.hub.daemon.logs(user, lines=scanned)
        except SessionNotFound:
            lines = []
        shown = wanted.apply(lines, datetime.now(UTC))[-LOGS_PAGE_LINES:]
        query = {"priority": wanted.priority, "grep": wanted.text}
        follow_query = urlencode({key: value for key, value in query.items() if value})
        context = {
            "user": user,
            "lines": shown,
            "filter": wanted,
            "scanned": scanned,
            "priorities": LOG_PRIORITIES,
            "since": LOG_SINCE,
            "follow_url": f"/hub/logs/{user}/follow" + (f"?{follow_query}" if follow_query else ""),
        }
        return self.render(request, "logs.html", context, identity=identity)

    async def follow(self, request: Request) -> Response:
        """The log as plain text that grows as lines come (a browser shows it as it loads)."""
        checked = await self._log_identity(request)
        if isinstance(checked, Response):
            return checked
        identity, user = checked
        # A script's read (the logs page's Follow) shows the page's CSRF token: a script of a
        # user's server on this origin that hides its Referer cannot read the page to learn it,
        # so it cannot read another account's log with the cookie of whoever visits it.
        if scripted_load(request.headers) and not self.hub.sessions.check_xsrf(
            identity, request.headers.get(XSRF_HEADER)
        ):
            return self.error(request, 403, f"Missing or wrong {XSRF_HEADER} header.", identity)
        # The page's priority and text filters apply to new lines too ("since" is moot).
        wanted = dataclasses.replace(LogFilter.from_query(dict(request.query_params)), since="")
        lines = self.hub.daemon.follow(user)

        async def body() -> AsyncIterator[bytes]:
            async with contextlib.aclosing(lines):
                try:
                    async for line in lines:
                        if not wanted.keeps(line, line.timestamp):
                            continue
                        message = without_own_timestamp(line.message)
                        yield f"{line.timestamp:%Y-%m-%d %H:%M:%S} {message}\n".encode()
                except HostdError as exc:
                    yield f"-- {exc.message}\n".encode()

        return StreamingResponse(
            body(),
            media_type="text/plain; charset=utf-8",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    # -- tokens --------------------------------------------------------------------------

    async def token_page(self, request: Request) -> Response:
        identity = await self.identity_or_login(request)
        if isinstance(identity, Response):
            return identity
        return await self._tokens(request, identity, new_token=None)

    async def _tokens(
        self, request: Request, identity: Identity, *, new_token: str | None
    ) -> Response:
        tokens = await asyncio.to_thread(self.hub.store.tokens, identity.user)
        return self.render(
            request, "token.html", {"tokens": tokens, "new_token": new_token}, identity=identity
        )

    async def token_create(self, request: Request) -> Response:
        identity = await self.identity_or_login(request)
        if isinstance(identity, Response):
            return identity
        form = await self._checked_form(request, identity)
        note = form.get("note", "").strip() or None
        if identity.uid is None:  # pragma: no cover - every Identity of a request has one
            return RedirectResponse("/hub/login", 303)
        token, _ = await asyncio.to_thread(
            self.hub.store.create_token,
            identity.user,
            uid=identity.uid,
            lifetime=timedelta(seconds=self.hub.config.token_max_age_s),
            note=note,
        )
        log.info("%s made an API token", identity.user)
        return await self._tokens(request, identity, new_token=token)

    async def token_delete(self, request: Request) -> Response:
        identity = await self.identity_or_login(request)
        if isinstance(identity, Response):
            return identity
        await self._checked_form(request, identity)
        token_id = request.path_params["token_id"]
        await asyncio.to_thread(self.hub.store.delete_token, identity.user, token_id)
        self.hub.sessions.forget_tokens()
        return RedirectResponse("/hub/token", 303)

    # -- what the proxy shows ------------------------------------------------------------

    async def not_running(self, request: Request, identity: Identity, user: str) -> Response:
        """/user/<name>/... while that server is not running (JupyterHub's 424 page)."""
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        accept = request.headers.get("accept", "")
        if request.method not in ("GET", "HEAD") or "text/html" not in accept:
            message = f"{user}'s server is not running"
            return JSONResponse({"status": 424, "message": message}, status_code=424)
        status = await self.hub.servers.status(user)
        if status.state == "starting" and user == identity.user:
            return RedirectResponse(f"/hub/home?next={quote(target, safe='')}", 302)
        return self.render(
            request,
            "not_running.html",
            {
                "status": status,
                "user": user,
                "next": safe_next(target),
                **(await self._choices(user)),
            },
            status=424,
            identity=identity,
        )


def _input_message(username: str, password: str) -> str:
    if not username or not password:
        return "Enter a user name and a password."
    if len(username) > 32 or len(password) > 1024:
        return "The user name or the password is too long."
    return "Invalid user name or password."
