"""What the hub's pure tests run against: a fake daemon (the daemon's real app and client over
tests.api.fake's service) and a tiny fake upstream (a user's "JupyterLab": HTTP and WebSocket
handlers that show what reached them), each served by real uvicorn.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp
from starlette.websockets import WebSocket

from hostd.units import SessionRequest
from hostd.units.errors import HostdError, SpawnFailed
from hostd.units.servers import server_base_path, session_key, unit_name_for_key
from hostd.units.values import Caller, Limits, SessionView, StartOutcome
from tests.api.fake import STARTED_AT, FakeSessionService

PASSWORDS = {"alice": "wonderland", "bob": "b0b-secret", "carol": "c4r0l"}
ADMINS = {"carol"}
_XSRF = re.compile(r'name="_xsrf" value="([^"]+)"')


class HubFake(FakeSessionService):
    """The daemon's service for the hub's tests: sessions answer at ``upstream`` (a real
    server), a start takes ``start_delay_s`` and then succeeds or raises ``start_error``."""

    def reset(self) -> None:
        super().reset()
        self.passwords = dict(PASSWORDS)
        self.admins = set(ADMINS)
        self.upstream = "http://127.0.0.1:9"
        self.start_delay_s = 0.0
        self.start_error: HostdError | None = None
        self.stop_delay_s = 0.0
        self.starts = 0

    def url_for(self, user: str) -> str:
        return f"{self.upstream}/user/{server_base_path(user)}/"

    def add_session(self, user: str, *, lines: int = 3, **changes: Any) -> SessionView:
        changes.setdefault("url", self.url_for(user))
        return super().add_session(user, lines=lines, **changes)

    async def start(
        self,
        user: str,
        request: SessionRequest,
        *,
        caller: Caller,
        wait: bool = True,
        command: str | None = None,
        secrets: Mapping[str, str] | None = None,
        profile: str | None = None,
        server: str = "",
    ) -> StartOutcome:
        self.calls.append(("start", user, request, caller, wait))
        self.extras = (command, dict(secrets or {}))
        self.profile_asked = profile
        self._check("start")
        self.check_drain()
        self._known(user)
        choice = self._choice(user, profile)
        name, user = user, session_key(user, server)  # from here on, the server's key
        existing = self.sessions.get(user)
        if existing is not None and existing.state in ("starting", "running"):
            return StartOutcome(session=existing, created=False)
        self.starts += 1
        view = SessionView(
            user=name,
            server=server,
            unit=unit_name_for_key(user),
            state="starting",
            started_at=STARTED_AT,
            url=self.url_for(user),
            limits=Limits(mem_limit_bytes=2 * 1024**3, cpu_limit=1.0),
            profile_slug=choice.slug if choice is not None else None,
        )
        if choice is not None:
            view = replace(view, limits=Limits(choice.mem_limit_bytes, choice.cpu_limit))
        self.sessions[user] = view
        self.journal.setdefault(user, [])
        if not wait:
            return StartOutcome(session=view, created=True)
        deadline = asyncio.get_running_loop().time() + self.start_delay_s
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
            if self.sessions.get(user) is not view:  # stopped meanwhile
                raise self._stopped_error(user)
        if self.start_error is not None:
            self.sessions[user] = replace(view, state="failed", reason=self.start_error.message)
            raise self.start_error
        running = replace(view, state="running")
        self.sessions[user] = running
        return StartOutcome(session=running, created=True)

    async def stop(self, user: str, *, caller: Caller) -> SessionView:
        await asyncio.sleep(self.stop_delay_s)
        return await super().stop(user, caller=caller)

    @staticmethod
    def _stopped_error(user: str) -> HostdError:
        return SpawnFailed(f"{user}'s session was stopped while it started")


# -- the fake upstream: a user's server ----------------------------------------------------


def _echo(request: Request, body: bytes) -> dict[str, Any]:
    return {
        "method": request.method,
        "path": request.url.path,
        "raw_path": request.scope["raw_path"].decode("latin-1"),
        "query": request.url.query,
        "headers": {key: value for key, value in request.headers.items()},
        "body_length": len(body),
        "body_sha256": hashlib.sha256(body).hexdigest(),
    }


def upstream_app(seen: list[str]) -> Starlette:
    """Answers only with the right token, as jupyter_server does for the hub's header; the
    path of every request that reached it goes in ``seen``."""

    def authorised(user: str, headers: Mapping[str, str]) -> bool:
        return headers.get("authorization") == f"token token-of-{user}"

    async def echo(request: Request) -> Response:
        seen.append(request.url.path)
        user = request.path_params["user"]
        if not authorised(user, request.headers):
            return JSONResponse({"message": "bad token"}, status_code=403)
        rest = request.path_params["rest"]
        if rest == "stream":
            count = int(request.query_params.get("n", "3"))

            async def chunks() -> AsyncIterator[bytes]:
                for i in range(count):
                    yield f"chunk {i}\n".encode()
                    await asyncio.sleep(0.01)

            return StreamingResponse(chunks(), media_type="text/plain")
        if rest == "redirect":
            origin = f"http://{request.headers['host']}"
            return Response(status_code=302, headers={"location": f"{origin}/user/{user}/lab"})
        if rest == "cookies":
            response = JSONResponse({"ok": True})
            response.set_cookie("hostd-hub-session", "planted")
            response.set_cookie("lab-cookie", "kept")
            return response
        if rest == "nameless-cookies":
            # A browser stores "=NAME=V" as a nameless cookie and sends it back as "NAME=V":
            # the hub's own cookie, planted by a user's server through the name before "=".
            response = JSONResponse({"ok": True})
            for tossed in (
                "=hostd-hub-session=planted",
                "hostd-hub-session =planted",
                "hostd-hub-session",
                "=hostd-hub-login=planted",
            ):
                response.raw_headers.append((b"set-cookie", tossed.encode()))
            response.set_cookie("lab-cookie", "kept")
            return response
        body = b""
        async for chunk in request.stream():
            body += chunk
        return JSONResponse(_echo(request, body))

    async def socket(websocket: WebSocket) -> None:
        seen.append(websocket.url.path)
        user = websocket.path_params["user"]
        if not authorised(user, websocket.headers):
            await websocket.close(code=1008)
            return
        protocols = websocket.scope.get("subprotocols") or []
        await websocket.accept(subprotocol=protocols[0] if protocols else None)
        await websocket.send_text(
            json.dumps({"headers": dict(websocket.headers), "path": websocket.url.path})
        )
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") == "close-4001":
                await websocket.close(code=4001)
                return
            if message.get("text") is not None:
                await websocket.send_text(f"echo: {message['text']}")
            else:
                await websocket.send_bytes(b"echo: " + message["bytes"])

    return Starlette(
        routes=[
            Route(
                "/user/{user}/{rest:path}",
                echo,
                methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
            ),
            WebSocketRoute("/user/{user}/{rest:path}", socket),
        ]
    )


async def start_server(app: ASGIApp, **options: Any) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    """Real uvicorn in the running loop: on ``uds`` if given, else 127.0.0.1 on a free port."""
    if "uds" in options:
        where: dict[str, Any] = {"uds": options.pop("uds")}
    else:
        where = {"host": "127.0.0.1", "port": options.pop("port", 0)}
    config = uvicorn.Config(
        app,
        **where,
        lifespan=options.pop("lifespan", "off"),
        ws=options.pop("ws", "websockets-sansio"),
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=2,
        **options,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn did not start")
        await asyncio.sleep(0.002)
    return server, task


def url_of(server: uvicorn.Server) -> str:
    port = server.servers[0].sockets[0].getsockname()[1]
    return f"{'https' if server.config.ssl_certfile else 'http'}://127.0.0.1:{port}"


async def stop_servers(*running: tuple[uvicorn.Server, asyncio.Task[None]]) -> None:
    """All at once: each takes up to a tick of its main loop (0.1 s) to notice."""
    for server, _ in running:
        server.should_exit = True
    await asyncio.wait_for(asyncio.gather(*(task for _, task in running)), timeout=10)


def xsrf_of(html: str) -> str:
    match = _XSRF.search(html)
    assert match is not None, html
    return match[1]


async def log_in(
    client: httpx.AsyncClient, user: str, password: str | None = None, *, next_url: str = ""
) -> httpx.Response:
    """The form, as a browser sends it (the login page first, for its cookie and _xsrf)."""
    page = await client.get("/hub/login" + (f"?next={next_url}" if next_url else ""))
    form = {
        "_xsrf": xsrf_of(page.text),
        "username": user,
        "password": PASSWORDS.get(user, "") if password is None else password,
    }
    if next_url:
        form["next"] = next_url
    return await client.post("/hub/login", data=form)
