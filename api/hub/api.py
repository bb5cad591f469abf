"""The hub's JSON API for scripts, under /hub/api/, with JupyterHub's semantics (api layer).

Authenticated by ``Authorization: token <hub API token>`` (or ``Bearer``), or by the browser's
session cookie; with the cookie, every request that changes something also needs the
``X-XSRFToken`` header and must not come from another site. A user may act on their own
server, an admin on anyone's (but makes someone a token, which opens their server, only with
``admin_access``). Errors are JupyterHub's body, ``{"status", "message"}``; a body over its
limit is 413.

    POST   /hub/api/users/{name}/server            201 ready, 202 pending, 400 running or
                                                   busy, 429 + Retry-After (capacity)
    DELETE /hub/api/users/{name}/server            204 stopped, 202 pending
    POST, DELETE /hub/api/users/{name}/servers/{server}, GET .../{server}/progress: the same
                                                   for a named server (JupyterHub 6's shapes;
                                                   409 too-many-servers, 400 a bad name)
    GET    /hub/api/users/{name}/server/progress   text/event-stream, ending in
                                                   {"progress": 100, "ready": true, "url"}
                                                   or {"progress": 100, "failed": true, ...}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from types import MappingProxyType
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from hostd.api.hub.db import HubUser
from hostd.api.hub.forms import BadInput, TooLarge, read_json
from hostd.api.hub.identity import XSRF_HEADER, Identity
from hostd.api.hub.security import cross_site
from hostd.api.hub.servers import NotPending, ServerBusy, ServerStatus
from hostd.api.hub.state import Hub
from hostd.api.wire import STATUS_BY_ERROR, retry_after_headers, status_for
from hostd.units import validate_username
from hostd.units.errors import HostdError, InvalidInput, SpawnFailed, UnknownProfile
from hostd.units.servers import session_key, split_session_key, validate_server_name

__all__ = [
    "HUB_STATUS",
    "HubAPI",
    "api_error",
    "error_response",
    "status_of",
]

_UNSAFE: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_NOTE_MAX: Final = 200
# The wire's table, in JupyterHub's shape: a request it cannot use is 400 (not 422) and a
# failed spawn 500 (not 502); plus the hub's own errors. Looked up along the MRO (status_for).
HUB_STATUS: Final[Mapping[type[HostdError], int]] = MappingProxyType(
    {
        **STATUS_BY_ERROR,
        InvalidInput: 400,
        UnknownProfile: 400,  # JupyterHub answers user_options it refuses with 400
        SpawnFailed: 500,
        TooLarge: 413,
        ServerBusy: 400,
        NotPending: 400,
    }
)


def _profile_option(options: Mapping[str, Any]) -> str | None:
    """The [[profile_list]] slug in a start's user_options (None: the default choice). Other
    options are not hostd's to honour: JupyterHub's own clients send none."""
    profile = options.get("profile")
    if profile is None or (isinstance(profile, str) and 0 < len(profile) <= 64):
        return profile
    raise BadInput("profile: expected the slug of a profile this user may choose")


def status_of(exc: HostdError) -> int:
    return status_for(exc, HUB_STATUS)


def api_error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"status": status, "message": message}, status_code=status, headers=headers)


def error_response(exc: HostdError) -> JSONResponse:
    return api_error(status_of(exc), exc.message, retry_after_headers(exc))


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _version() -> str:
    try:
        return version("hostd")
    except PackageNotFoundError:
        return "unknown"


class _Refused(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


class HubAPI:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def _identity(self, request: Request) -> Identity:
        identity = await self.hub.sessions.identify(request)
        if identity is None:
            raise _Refused(api_error(403, "not logged in: send a token or the session cookie"))
        if request.method in _UNSAFE and not identity.by_token:
            if cross_site(request.headers):
                raise _Refused(api_error(403, "refused: a request from another site"))
            if not self.hub.sessions.check_xsrf(identity, request.headers.get(XSRF_HEADER)):
                raise _Refused(api_error(403, f"missing or wrong {XSRF_HEADER} header"))
        return identity

    async def for_user(self, request: Request) -> tuple[Identity, str]:
        """Who asks, and for whom ({name}); refused (403, 404) unless they may act for them."""
        identity = await self._identity(request)
        try:
            user = validate_username(request.path_params["name"])
        except InvalidInput:
            raise _Refused(api_error(404, "no such user")) from None
        if not identity.may_act_for(user):
            raise _Refused(api_error(403, f"{identity.user} may not act for {user}"))
        return identity, user

    async def dispatch(self, request: Request, handler: Any) -> Response:
        try:
            response: Response = await handler(request)
        except _Refused as refused:
            return refused.response
        except HostdError as exc:
            return error_response(exc)
        return response

    # -- models --------------------------------------------------------------------------

    def _server_model(self, status: ServerStatus) -> dict[str, Any]:
        view = status.view
        user, server = split_session_key(status.user)
        progress = f"/hub/api/users/{user}/server" + (f"s/{server}" if server else "")
        return {
            "name": server,
            "ready": status.ready,
            "pending": status.pending,
            "state": status.state,
            "url": status.url,
            "progress_url": f"{progress}/progress",
            "started": _iso(view.started_at) if view is not None else None,
            "failure": status.failure,
            # hostd's own: when an idle server will be stopped, once [capacity] idle_warning
            # of it is left (activity clears it). JupyterHub has no such field.
            "cull_at": _iso(view.cull_at) if view is not None else None,
        }

    def _user_model(
        self,
        name: str,
        record: HubUser | None,
        status: ServerStatus,
        named: tuple[ServerStatus, ...] = (),
    ) -> dict[str, Any]:
        servers = {"": self._server_model(status)} if status.state != "stopped" else {}
        for each in named:  # JupyterHub's servers dict: named servers by name
            if each.state != "stopped":
                model = self._server_model(each)
                servers[model["name"]] = model
        return {
            "kind": "user",
            "name": name,
            "admin": record.admin if record is not None else False,
            "created": _iso(record.created) if record is not None else None,
            "last_login": _iso(record.last_login) if record is not None else None,
            "last_activity": _iso(record.last_activity) if record is not None else None,
            "server": status.url if status.ready else None,
            "pending": status.pending,
            "servers": servers,
        }

    async def _user(self, name: str) -> dict[str, Any]:
        record, status, keys = await asyncio.gather(
            asyncio.to_thread(self.hub.store.user, name),
            self.hub.servers.status(name),
            self._named_keys(name),
        )
        if record is None and status.view is None and status.pending is None:
            raise _Refused(api_error(404, f"no user {name} on this hub"))
        named = await asyncio.gather(*(self.hub.servers.status(key) for key in keys))
        return self._user_model(name, record, status, tuple(named))

    async def _named_keys(self, name: str) -> list[str]:
        """The keys of the user's named servers the daemon knows, and those pending here."""
        keys = {
            session_key(view.user, view.server)
            for view in await self.hub.daemon.list()
            if view.user == name and view.server
        }
        keys |= {key for key in self.hub.servers.pending_keys() if key.startswith(f"{name}:")}
        return sorted(keys)

    async def for_server(self, request: Request) -> tuple[Identity, str]:
        """Who asks, and the key of {name}'s server {server} (user:server)."""
        identity, user = await self.for_user(request)
        return identity, session_key(user, validate_server_name(request.path_params["server"]))

    # -- endpoints -----------------------------------------------------------------------

    async def info(self, request: Request) -> Response:
        return JSONResponse({"version": _version()})

    async def whoami(self, request: Request) -> Response:
        identity = await self._identity(request)
        return JSONResponse(await self._user(identity.user))

    async def users(self, request: Request) -> Response:
        identity = await self._identity(request)
        if not identity.admin:
            return api_error(403, "only admins may list users")
        names = {user.name for user in await asyncio.to_thread(self.hub.store.users)}
        names |= {view.user for view in await self.hub.daemon.list()}
        models = await asyncio.gather(*(self._user(name) for name in sorted(names)))
        return JSONResponse(list(models))

    async def user(self, request: Request) -> Response:
        _, user = await self.for_user(request)
        return JSONResponse(await self._user(user))

    async def server(self, request: Request) -> Response:
        identity, user = await self.for_user(request)
        if request.method == "POST":
            # JupyterHub's user_options: {"profile": "<slug>"} (KubeSpawner's), or nothing.
            profile = _profile_option(await read_json(request))
            outcome = await self.hub.servers.start(user, by=identity.user, profile=profile)
            return Response(status_code=201 if outcome == "ready" else 202, media_type="text/plain")
        outcome_stop = await self.hub.servers.stop(user, by=identity.user)
        return Response(status_code=204 if outcome_stop == "stopped" else 202)

    async def named_server(self, request: Request) -> Response:
        """POST and DELETE /hub/api/users/{name}/servers/{server}: a named server."""
        identity, key = await self.for_server(request)
        if request.method == "POST":
            profile = _profile_option(await read_json(request))  # as for the default server
            outcome = await self.hub.servers.start(key, by=identity.user, profile=profile)
            return Response(status_code=201 if outcome == "ready" else 202, media_type="text/plain")
        # JupyterHub's body may say {"remove": true}: hostd keeps nothing of a stopped server.
        outcome_stop = await self.hub.servers.stop(key, by=identity.user)
        return Response(status_code=204 if outcome_stop == "stopped" else 202)

    async def named_progress(self, request: Request) -> Response:
        _, key = await self.for_server(request)
        return await self._progress(key)

    async def progress(self, request: Request) -> Response:
        _, user = await self.for_user(request)
        return await self._progress(user)

    async def _progress(self, user: str) -> Response:
        events = self.hub.servers.progress(user)
        try:
            first = await anext(events)
        except NotPending as exc:
            await events.aclose()
            return api_error(400, exc.message)
        except BaseException:
            await events.aclose()
            raise

        async def stream() -> AsyncIterator[bytes]:
            async with contextlib.aclosing(events):
                yield _event(first)
                async for event in events:
                    yield _event(event)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def tokens(self, request: Request) -> Response:
        identity, user = await self.for_user(request)
        if request.method == "POST":
            # A token made for someone opens their server (/user/<name>/): only with the
            # access to it that admin_access gives (JupyterHub: a token carries no more than
            # its maker holds).
            if identity.user != user and not self.hub.config.admin_access:
                return api_error(
                    403, f"{identity.user} may not make tokens for {user} (admin_access is off)"
                )
            options = await read_json(request)
            note = options.get("note")
            if note is not None and (not isinstance(note, str) or len(note) > _NOTE_MAX):
                return api_error(400, f"note: expected text of at most {_NOTE_MAX} characters")
            longest = self.hub.config.token_max_age_s
            expires_in = options.get("expires_in", longest)
            if expires_in is None:  # JupyterHub's "never": not here, the longest instead
                expires_in = longest
            if (
                isinstance(expires_in, bool)
                or not isinstance(expires_in, int)
                or not 0 < expires_in <= longest
            ):
                return api_error(
                    400,
                    f"expires_in: expected whole seconds from 1 to {longest} "
                    "(hub.toml's token_max_age_days)",
                )
            # The token is bound to the account's uid now: a name made again gets nothing.
            account = await self.hub.sessions.accounts.check(user)
            if account is None:
                return api_error(403, f"the account of {user} may not use the hub now")
            token, row = await asyncio.to_thread(
                self.hub.store.create_token,
                user,
                uid=account.uid,
                lifetime=timedelta(seconds=expires_in),
                note=note,
            )
            return JSONResponse(
                {
                    "id": row.id,
                    "token": token,
                    "note": row.note,
                    "created": _iso(row.created),
                    "expires_at": _iso(row.expires),
                },
                status_code=201,
            )
        rows = await asyncio.to_thread(self.hub.store.tokens, user)
        return JSONResponse(
            {
                "api_tokens": [
                    {
                        "id": row.id,
                        "prefix": row.prefix,
                        "note": row.note,
                        "created": _iso(row.created),
                        "last_used": _iso(row.last_used),
                        "expires_at": _iso(row.expires),
                    }
                    for row in rows
                ]
            }
        )

    async def token(self, request: Request) -> Response:
        _, user = await self.for_user(request)
        deleted = await asyncio.to_thread(
            self.hub.store.delete_token, user, request.path_params["token_id"]
        )
        self.hub.sessions.forget_tokens()
        return Response(status_code=204) if deleted else api_error(404, "no such token")


def _event(event: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(event)}\n\n".encode()
