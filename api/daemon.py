"""The daemon's local HTTP API, as a Starlette app over a SessionService (api layer).

It translates HTTP into calls of hostd.api.service.SessionService and their results (or
hostd.units.errors) back into JSON, and does nothing else: no pwd, no files, no systemd. What the
JSON is, the limits of a request and the status of each error are hostd.api.wire's (the contract
the client reads with); this module is its Starlette face. Who the peer is comes from the server
(``scope["hostd.peer"]``, SO_PEERCRED), never from the request.

Middleware, outermost first: _ErrorBoundary (an unexpected exception is logged with its
traceback and answered 500 "internal"), _Authorize (every request, every route).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
)
from typing import Any, Final

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hostd.api.openapi import openapi_document
from hostd.api.service import SessionService
from hostd.api.wire import (
    BAD_REQUEST,
    HTTP_CODES,
    INTERNAL,
    INTERNAL_MESSAGE,
    LINES_DEFAULT,
    LINES_MAX,
    MAX_BODY_BYTES,
    NDJSON,
    announcement_from_body,
    credentials_from_body,
    drain_from_body,
    empty_from_body,
    error_body,
    http_error_body,
    limit_changes_from_body,
    lines_body,
    ndjson_error_line,
    ndjson_line,
    policy_to_dict,
    query_bool,
    query_int,
    query_window,
    request_object,
    retry_after_headers,
    sessions_body,
    start_from_body,
    start_profile,
    status_for,
    token_body,
)
from hostd.units.choices import profiles_body
from hostd.units.errors import HostdError, PermissionDenied
from hostd.units.servers import session_key, validate_server_name
from hostd.units.values import Caller, LogLine, PeerCredentials

__all__ = [
    "FIRST_LINE_WAIT_S",
    "NDJSON",
    "PEER_SCOPE_KEY",
    "build_daemon_app",
    "error_response",
    "http_error_response",
]

logger = logging.getLogger(__name__)

PEER_SCOPE_KEY: Final = "hostd.peer"
# How long a follow waits for its first line before it answers 200 and streams: an error in
# that time (no such session, say) is still a JSON error response with its status.
FIRST_LINE_WAIT_S: Final = 1.0


def error_response(error: HostdError) -> JSONResponse:
    """The JSON response for a deliberate error: its status, code, message and details."""
    return JSONResponse(
        error_body(error), status_code=status_for(error), headers=retry_after_headers(error)
    )


def http_error_response(
    status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The JSON response for a failure at the HTTP level (no domain error class)."""
    return JSONResponse(http_error_body(code, message), status_code=status, headers=headers)


class _BadRequest(HTTPException):
    def __init__(self, message: str) -> None:
        super().__init__(status_code=400, detail=message)


def _query(request: Request, name: str) -> str | None:
    value: str | None = request.query_params.get(name)
    return value


def _user(request: Request) -> str:
    # The server decodes %2F before routing, so "a%2Flogs" would reach another route with
    # user "a". No user name holds a "/": refuse the path instead.
    if b"%2f" in _raw_path(request.scope).lower():
        raise HTTPException(status_code=404, detail="a path segment may not hold an encoded '/'")
    user: str = request.path_params["user"]
    return user


def _raw_path(scope: Scope) -> bytes:
    raw = scope.get("raw_path")
    return raw if isinstance(raw, bytes) else scope["path"].encode()


def _caller(request: Request) -> Caller:
    caller: Caller = request.state.caller
    return caller


def _own_user(request: Request) -> str:
    """The path's user, when the caller may act for that user; PermissionDenied otherwise.

    Membership of the socket's group lets a user reach the daemon, not act as anyone: only
    root and the identities in [daemon] act_for_others (the hub) act for others."""
    user = _user(request)
    caller = _caller(request)
    if not caller.may_act_for(user):
        raise PermissionDenied(f"{caller.name} may act only for itself here, not for {user}")
    return user


def _own_session(request: Request) -> tuple[str, str, str]:
    """(user, server, key) of the path's user and the ``server`` query parameter (a named
    server; absent or "" the default one), when the caller may act for that user. key is the
    daemon's name of that server: the user name, or user:server (hostd.units.servers)."""
    user = _own_user(request)
    server = validate_server_name(_query(request, "server") or "")
    # The default server's key is the path's user as it came: the service validates it.
    return user, server, session_key(user, server) if server else user


def _for_others(request: Request, what: str) -> None:
    caller = _caller(request)
    if not caller.acts_for_others:
        raise PermissionDenied(f"{caller.name} may not {what}: only root and the hub may")


async def _json_object(request: Request) -> dict[str, Any]:
    """The request's body as a JSON object ({} when empty); _BadRequest when it is not one."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _BadRequest(f"request body over {MAX_BODY_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _BadRequest(f"request body over {MAX_BODY_BYTES} bytes")
    try:
        return request_object(bytes(body))
    except ValueError as exc:
        raise _BadRequest(str(exc)) from exc


async def _next_line(lines: AsyncIterator[LogLine]) -> LogLine | None:
    try:
        return await anext(lines)
    except StopAsyncIteration:
        return None


async def _close(lines: AsyncIterator[LogLine], first: asyncio.Task[LogLine | None]) -> None:
    # Shielded: this runs when the client went away and the stream was cancelled, and a
    # journal reader left open would follow a gone client forever.
    with anyio.CancelScope(shield=True):
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)  # also retrieves its exception
        aclose: Callable[[], Awaitable[object]] | None = getattr(lines, "aclose", None)
        if aclose is not None:
            await aclose()


async def _ndjson(
    lines: AsyncIterator[LogLine], first: asyncio.Task[LogLine | None], where: str
) -> AsyncGenerator[bytes, None]:
    try:
        line = await first
        while line is not None:
            yield ndjson_line(line)
            line = await _next_line(lines)
    except HostdError as exc:
        # The status line is gone already: the error becomes the stream's last line.
        yield ndjson_error_line(error_body(exc))
    except Exception:
        logger.exception("unexpected error while following %s", where)
        yield ndjson_error_line(http_error_body(INTERNAL, INTERNAL_MESSAGE))


class _FollowResponse(StreamingResponse):
    """A follow as NDJSON; the service's iterator is closed however the response ends
    (done, failed, or the client gone)."""

    def __init__(
        self, lines: AsyncIterator[LogLine], first: asyncio.Task[LogLine | None], where: str
    ) -> None:
        self._lines, self._first = lines, first
        self._body = _ndjson(lines, first, where)
        super().__init__(self._body, media_type=NDJSON)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self._body.aclose()
            await _close(self._lines, self._first)


class _Endpoints:
    def __init__(self, service: SessionService, *, first_line_wait_s: float) -> None:
        self.service = service
        self.first_line_wait_s = first_line_wait_s
        # Rendered once: the document is a constant of this build.
        self.openapi_body = json.dumps(openapi_document()).encode()

    async def sessions(self, request: Request) -> Response:
        caller = _caller(request)
        sessions = [s for s in await self.service.list() if caller.may_act_for(s.user)]
        return JSONResponse(sessions_body(sessions))

    async def session(self, request: Request) -> Response:
        name, server, user = _own_session(request)
        if request.method == "POST":
            return await self._start(request, name, server)
        if request.method == "DELETE":
            view = await self.service.stop(user, caller=_caller(request))
            return JSONResponse(view.to_dict())
        if request.method == "PATCH":
            mem_limit, cpu_limit = limit_changes_from_body(await _json_object(request))
            view = await self.service.set_limits(
                user, mem_limit=mem_limit, cpu_limit=cpu_limit, caller=_caller(request)
            )
            return JSONResponse(view.to_dict())
        return JSONResponse((await self.service.get(user)).to_dict())

    async def _start(self, request: Request, user: str, server: str) -> Response:
        wait = query_bool("wait", _query(request, "wait"), default=True)
        body = await _json_object(request)
        session_request, command, secrets = start_from_body(body)
        # server only for a named one: a default start is the call it always was.
        named = {"server": server} if server else {}
        outcome = await self.service.start(
            user,
            session_request,
            caller=_caller(request),
            wait=wait,
            command=command,
            secrets=secrets,
            profile=start_profile(body),
            **named,
        )
        return JSONResponse(outcome.session.to_dict(), status_code=201 if outcome.created else 200)

    async def logs(self, request: Request) -> Response:
        user = _own_session(request)[2]
        lines = query_int(
            "lines", _query(request, "lines"), default=LINES_DEFAULT, low=1, high=LINES_MAX
        )
        if query_bool("follow", _query(request, "follow"), default=False):
            return await self._follow(user, request.query_params.get("cursor"))
        # Annotated: in SessionService, "list[LogLine]" names its own method list (mypy).
        entries: Iterable[LogLine] = await self.service.logs(user, lines=lines)
        return JSONResponse(lines_body(entries))

    async def _follow(self, user: str, cursor: str | None) -> Response:
        lines = aiter(self.service.follow(user, cursor=cursor))
        first = asyncio.ensure_future(_next_line(lines))
        try:
            await asyncio.wait({first}, timeout=self.first_line_wait_s)
            if first.done():
                first.result()  # raises what follow raised: a HostdError gets its JSON answer
        except BaseException:
            await _close(lines, first)
            raise
        return _FollowResponse(lines, first, f"{user}'s logs")

    async def token(self, request: Request) -> Response:
        return JSONResponse(token_body(await self.service.token(_own_session(request)[2])))

    async def usage(self, request: Request) -> Response:
        return JSONResponse((await self.service.usage(_own_session(request)[2])).to_dict())

    async def usage_history(self, request: Request) -> Response:
        # The same right as reading the usage now: the user, or who acts for others.
        user = _own_session(request)[2]
        window = query_window(_query(request, "window"))
        return JSONResponse((await self.service.usage_history(user, window=window)).to_dict())

    async def host_history(self, request: Request) -> Response:
        window = query_window(_query(request, "window"))
        return JSONResponse((await self.service.host_history(window=window)).to_dict())

    async def activity(self, request: Request) -> Response:
        user = _own_session(request)[2]
        empty_from_body(await _json_object(request))
        await self.service.activity(user, caller=_caller(request))
        return Response(status_code=204)

    async def account(self, request: Request) -> Response:
        # The hub's re-check of its cookies and tokens; a member may ask of itself only.
        return JSONResponse((await self.service.account(_own_user(request))).to_dict())

    async def profiles(self, request: Request) -> Response:
        # The hub and the spawner ask for any user; a member may ask of itself only.
        return JSONResponse(profiles_body(await self.service.profiles(_own_user(request))))

    async def auth(self, request: Request) -> Response:
        # The body holds a password: no message quotes it (credentials_from_body's never do).
        _for_others(request, "check passwords")
        credentials = credentials_from_body(await _json_object(request))
        return JSONResponse((await self.service.authenticate(credentials)).to_dict())

    async def host(self, request: Request) -> Response:
        return JSONResponse((await self.service.host()).to_dict())

    async def policy(self, request: Request) -> Response:
        return JSONResponse(policy_to_dict(await self.service.policy()))

    async def maintenance(self, request: Request) -> Response:
        return JSONResponse((await self.service.maintenance()).to_dict())

    async def announcement(self, request: Request) -> Response:
        caller = _caller(request)
        if request.method == "PUT":
            text = announcement_from_body(await _json_object(request))
            view = await self.service.set_announcement(text, caller=caller)
        else:
            view = await self.service.set_announcement(None, caller=caller)
        return JSONResponse(view.to_dict())

    async def drain(self, request: Request) -> Response:
        caller = _caller(request)
        if request.method == "PUT":
            drain = drain_from_body(await _json_object(request))
            view = await self.service.set_drain(drain, caller=caller)
        else:
            view = await self.service.set_drain(None, caller=caller)
        return JSONResponse(view.to_dict())

    async def metrics(self, request: Request) -> Response:
        _for_others(request, "read every session's metrics")
        body, content_type = await self.service.metrics()
        return Response(body, media_type=content_type)

    async def health(self, request: Request) -> Response:
        return JSONResponse(await self.service.health())

    async def openapi(self, request: Request) -> Response:
        return Response(self.openapi_body, media_type="application/json")


async def _hostd_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HostdError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status, message = exc.status_code, exc.detail
    # Starlette's router raises these with the bare reason phrase.
    if status == 404 and message == "Not Found":
        message = f"no route {request.url.path}"
    elif status == 405 and message == "Method Not Allowed":
        message = f"{request.method} is not allowed on {request.url.path}"
    code = HTTP_CODES.get(status, BAD_REQUEST if status < 500 else INTERNAL)
    return http_error_response(status, code, message, headers=exc.headers)


class _Authorize:
    """Asks the service who the peer is, for every request; the Caller goes to scope state."""

    def __init__(self, app: ASGIApp, *, service: SessionService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):  # lifespan
            await self.app(scope, receive, send)
            return
        peer = scope.get(PEER_SCOPE_KEY)
        try:
            caller = self.service.authorize(peer if isinstance(peer, PeerCredentials) else None)
        except HostdError as exc:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})  # policy violation
                return
            await error_response(exc)(scope, receive, send)
            return
        # A copy: the server may share one state dict (lifespan state) between requests.
        scope["state"] = {**scope.get("state", {}), "caller": caller}
        await self.app(scope, receive, send)


class _ErrorBoundary:
    """Turns an exception nothing else handled into 500 "internal", logged with its traceback
    (the body never holds one). Starlette's own ServerErrorMiddleware would re-raise it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except ClientDisconnect:
            return  # nobody left to answer
        except Exception:
            logger.exception("unexpected error in %s %s", scope["method"], scope["path"])
            if started:
                raise  # half an answer is out: let the server cut the connection
            response = http_error_response(500, INTERNAL, INTERNAL_MESSAGE)
            await response(scope, receive, send)


def build_daemon_app(
    service: SessionService, *, first_line_wait_s: float = FIRST_LINE_WAIT_S
) -> Starlette:
    """The daemon's API over ``service``; the server puts PeerCredentials in scope["hostd.peer"]."""
    endpoints = _Endpoints(service, first_line_wait_s=first_line_wait_s)
    routes = [
        Route("/v1/sessions", endpoints.sessions, methods=["GET"]),
        Route("/v1/sessions/{user}", endpoints.session, methods=["GET", "POST", "PATCH", "DELETE"]),
        Route("/v1/sessions/{user}/logs", endpoints.logs, methods=["GET"]),
        Route("/v1/sessions/{user}/usage", endpoints.usage, methods=["GET"]),
        Route("/v1/sessions/{user}/usage/history", endpoints.usage_history, methods=["GET"]),
        Route("/v1/sessions/{user}/token", endpoints.token, methods=["GET"]),
        Route("/v1/sessions/{user}/activity", endpoints.activity, methods=["POST"]),
        Route("/v1/auth", endpoints.auth, methods=["POST"]),
        Route("/v1/accounts/{user}", endpoints.account, methods=["GET"]),
        Route("/v1/accounts/{user}/profiles", endpoints.profiles, methods=["GET"]),
        Route("/v1/host", endpoints.host, methods=["GET"]),
        Route("/v1/host/history", endpoints.host_history, methods=["GET"]),
        Route("/v1/health", endpoints.health, methods=["GET"]),
        Route("/v1/policy", endpoints.policy, methods=["GET"]),
        Route("/v1/maintenance", endpoints.maintenance, methods=["GET"]),
        Route("/v1/maintenance/announcement", endpoints.announcement, methods=["PUT", "DELETE"]),
        Route("/v1/maintenance/drain", endpoints.drain, methods=["PUT", "DELETE"]),
        Route("/metrics", endpoints.metrics, methods=["GET"]),
        Route("/openapi.json", endpoints.openapi, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(_ErrorBoundary), Middleware(_Authorize, service=service)],
        exception_handlers={HostdError: _hostd_error, HTTPException: _http_error},
    )
    # "/v1/sessions/" would otherwise answer 307, which no client of this API wants.
    app.router.redirect_slashes = False
    return app
