"""How HostdClient's requests cross the daemon's Unix socket: HTTP/1.1 parsed by llhttp (api layer).

Why not httpx: the hub is a long-lived process that talks to the daemon all day, and the footprint
target (issue 17: daemon + D-Bus worker + hub with 100 sessions in 100 MiB of RSS) counts every
module it loads. httpx with httpcore, h11 and, where installed, the rich and pygments its command
line pulls in, cost the hub about 5 MiB of RSS (README, Benchmarks) for requests to one local
socket; httptools (llhttp, C) is already loaded there for the proxy's upstream client. So the
daemon's client writes its few header lines itself, on hostd.api.http1's connections (the
proxy's and the WebSocket upgrades' too): answers parsed by llhttp, chunked bodies included,
connections kept alive briefly.

``HttpxExchange`` keeps httpx's transports usable (imported only when one is given): the tests'
ASGI and mock transports reach the daemon's app in process through it.

Errors: every way the socket fails is one ``TransportFailure`` (hostd.api.http1's) with a
``kind`` ("connect", "timeout", "lost") and the reason; HostdClient turns it into
DaemonUnreachable. An HTTP error status is not a failure here: it is a ``Reply`` like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from hostd.api.http1 import Connection, Pool, TransportFailure

if TYPE_CHECKING:
    import httpx

__all__ = [
    "Exchange",
    "HttpxExchange",
    "Reply",
    "StreamReply",
    "Timeouts",
    "TransportFailure",
    "UnixSocketExchange",
]

# The daemon (uvicorn) closes a connection idle for 5 s: a request could go out on a connection
# the daemon was closing and fail (seen as a hub proxy's 500 under tests/api/hub/systemd/
# test_load.py). Idle connections are let go well before the daemon does.
KEEPALIVE_S: Final = 2.0
MAX_IDLE: Final = 20  # connections kept between requests
MAX_CONNECTIONS: Final = 100  # at once; more requests wait their turn


@dataclass(frozen=True)
class Timeouts:
    """Seconds to connect (and to send), and to wait for each piece of the answer (None: as
    long as it takes, for a log follow)."""

    connect: float
    read: float | None


@dataclass
class Reply:
    """A whole answer: status, content type, body."""

    status_code: int
    method: str
    path: str
    content: bytes
    content_type: str = ""

    @property
    def is_error(self) -> bool:
        return self.status_code >= 400

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


class StreamReply(Protocol):
    """An answer whose body is read as it comes (a log follow)."""

    status_code: int
    method: str
    path: str

    async def read(self) -> Reply: ...

    def lines(self) -> AsyncIterator[str]: ...


class Exchange(Protocol):
    """What HostdClient needs of a transport: a request, a streamed request, closing."""

    async def request(
        self, method: str, target: str, body: bytes | None, timeouts: Timeouts
    ) -> Reply: ...

    def stream(
        self, method: str, target: str, timeouts: Timeouts
    ) -> contextlib.AbstractAsyncContextManager[StreamReply]: ...

    async def aclose(self) -> None: ...


def _path_of(target: str) -> str:
    return target.split("?", 1)[0]


# -- over the Unix socket ----------------------------------------------------------------------


class _SocketStream:
    """One exchange on one of the pool's connections: the head is in, the body as asked."""

    def __init__(self, conn: Connection, method: str, target: str, t: Timeouts) -> None:
        self._conn, self._timeouts = conn, t
        self.method, self.path = method, _path_of(target)
        self.status_code = conn.status

    async def read(self) -> Reply:
        content = b"".join([piece async for piece in self._conn.body(self._timeouts.read)])
        content_type = (self._conn.header(b"content-type") or b"").decode("latin-1")
        return Reply(self.status_code, self.method, self.path, content, content_type)

    async def lines(self) -> AsyncIterator[str]:
        pending = b""
        async for piece in self._conn.body(self._timeouts.read):
            *whole, pending = (pending + piece).split(b"\n")
            for line in whole:
                yield line.rstrip(b"\r").decode("utf-8", errors="replace")
        if pending:
            yield pending.rstrip(b"\r").decode("utf-8", errors="replace")


class UnixSocketExchange:
    """HTTP/1.1 to the daemon's Unix socket (hostd.api.http1's connections, kept briefly)."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self._pool = Pool(
            max_connections=MAX_CONNECTIONS,
            max_idle=MAX_IDLE,
            idle_expiry_s=KEEPALIVE_S,
            wait_s=None,
        )

    async def _connect(self, timeout: float) -> Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_unix_connection(Connection, self.socket_path)
        except TimeoutError:
            raise TransportFailure("timeout", "no connection in time", "ConnectTimeout") from None
        except OSError as exc:
            raise TransportFailure("connect", str(exc)) from exc
        return conn

    @contextlib.asynccontextmanager
    async def _exchange(
        self, method: str, target: str, body: bytes | None, timeouts: Timeouts
    ) -> AsyncIterator[_SocketStream]:
        head = [f"{method} {target} HTTP/1.1", "Host: hostd", "Accept: */*"]
        if body is not None:
            head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        elif method in ("POST", "PUT", "PATCH"):
            head.append("Content-Length: 0")
        request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (body or b"")

        async def ask(conn: Connection) -> None:
            conn.begin(head_only=method == "HEAD")
            await conn.send(request, timeouts.connect)
            await conn.answer_head(timeouts.read)

        # A kept connection the daemon closed just as it was taken is replaced, once: nothing
        # of an answer came, so the daemon never read the request.
        connect = functools.partial(self._connect, timeouts.connect)
        conn = await self._pool.exchange(ask, connect=connect, retry=True)
        try:
            yield _SocketStream(conn, method, target, timeouts)
        finally:
            self._pool.release(conn)

    async def request(
        self, method: str, target: str, body: bytes | None, timeouts: Timeouts
    ) -> Reply:
        async with self._exchange(method, target, body, timeouts) as stream:
            return await stream.read()

    @contextlib.asynccontextmanager
    async def stream(
        self, method: str, target: str, timeouts: Timeouts
    ) -> AsyncIterator[StreamReply]:
        async with self._exchange(method, target, None, timeouts) as stream:
            yield stream

    async def aclose(self) -> None:
        self._pool.close()


# -- through an httpx transport (the tests' ASGI and mock transports) ---------------------------


def _failure_of(exc: Exception) -> TransportFailure:
    """An httpx transport error as the one failure kind; the OSError behind it as the reason."""
    import httpx

    cause: BaseException | None = exc
    reason = str(exc) or type(exc).__name__
    while cause is not None:
        if isinstance(cause, OSError):
            reason = str(cause)
            break
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return TransportFailure("connect", reason)
    if isinstance(exc, httpx.TimeoutException):
        return TransportFailure("timeout", reason, type(exc).__name__)
    return TransportFailure("lost", reason)


class _HttpxStream:
    def __init__(self, response: httpx.Response, method: str, path: str) -> None:
        self._response = response
        self.status_code = response.status_code
        self.method, self.path = method, path

    async def read(self) -> Reply:
        import httpx

        try:
            content = await self._response.aread()
        except httpx.TransportError as exc:
            raise _failure_of(exc) from exc
        content_type = self._response.headers.get("content-type", "")
        return Reply(self.status_code, self.method, self.path, content, content_type)

    async def lines(self) -> AsyncIterator[str]:
        import httpx

        try:
            async for line in self._response.aiter_lines():
                yield line
        except httpx.TransportError as exc:
            raise _failure_of(exc) from exc


class HttpxExchange:
    """Requests through an httpx transport; httpx is imported only when one is given."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        import httpx

        # trust_env=False: HTTP_PROXY and friends would route requests away from the daemon.
        self._client = httpx.AsyncClient(
            transport=transport, base_url="http://hostd", trust_env=False
        )

    @staticmethod
    def _timeout(timeouts: Timeouts) -> httpx.Timeout:
        import httpx

        return httpx.Timeout(timeouts.connect, read=timeouts.read)

    async def request(
        self, method: str, target: str, body: bytes | None, timeouts: Timeouts
    ) -> Reply:
        async with self.stream(method, target, timeouts, body=body) as stream:
            return await stream.read()

    @contextlib.asynccontextmanager
    async def stream(
        self, method: str, target: str, timeouts: Timeouts, *, body: bytes | None = None
    ) -> AsyncIterator[StreamReply]:
        import httpx

        headers = {"content-type": "application/json"} if body is not None else None
        request = self._client.build_request(
            method, target, content=body, headers=headers, timeout=self._timeout(timeouts)
        )
        try:
            response = await self._client.send(request, stream=True)
        except httpx.TransportError as exc:
            raise _failure_of(exc) from exc
        try:
            yield _HttpxStream(response, method, _path_of(target))
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()
