"""How HostdClient's requests cross the daemon's Unix socket: HTTP/1.1 parsed by llhttp (api layer).

Why not httpx: the hub is a long-lived process that talks to the daemon all day, and the footprint
target (issue 17: daemon + D-Bus worker + hub with 100 sessions in 100 MiB of RSS) counts every
module it loads. httpx with httpcore, h11 and, where installed, the rich and pygments its command
line pulls in, cost the hub about 5 MiB of RSS (README, Benchmarks) for requests to one local
socket; httptools (llhttp, C) is already loaded there for the proxy's upstream client. So the
daemon's client speaks HTTP/1.1 itself, over asyncio streams: a request is a few header lines,
the answer is parsed by llhttp (chunked bodies included), connections are kept alive briefly.

``HttpxExchange`` keeps httpx's transports usable (imported only when one is given): the tests'
ASGI and mock transports reach the daemon's app in process through it.

Errors: every way the socket fails is one ``TransportFailure`` with a ``kind`` ("connect",
"timeout", "lost") and the reason; HostdClient turns it into DaemonUnreachable. An HTTP error
status is not a failure here: it is a ``Reply`` like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

import httptools

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
READ_SIZE: Final = 65536

FailureKind = Literal["connect", "timeout", "lost"]


@dataclass(frozen=True)
class Timeouts:
    """Seconds to connect (and to send), and to wait for each piece of the answer (None: as
    long as it takes, for a log follow)."""

    connect: float
    read: float | None


class TransportFailure(Exception):
    """The daemon could not be reached, did not answer in time, or broke off its answer."""

    def __init__(self, kind: FailureKind, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.kind: FailureKind = kind
        self.reason = reason
        self.detail = detail  # for "timeout": which wait ran out (ConnectTimeout, ReadTimeout)


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


class _Answer:
    """llhttp's callbacks for one response; the body's pieces wait in ``chunks``."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.content_type = ""
        self.has_length = False
        self.head_done = False
        self.complete = False
        self.keep_alive = False
        self.chunks: list[bytes] = []

    def on_header(self, name: bytes, value: bytes) -> None:
        lower = name.lower()
        if lower == b"content-type":
            self.content_type = value.decode("latin-1")
        elif lower in (b"content-length", b"transfer-encoding"):
            self.has_length = True

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        # Read here: once the message is complete, llhttp has cleared what it reads this from.
        self.keep_alive = bool(self.parser.should_keep_alive())
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(bytes(body))

    def on_message_complete(self) -> None:
        self.complete = True

    def take(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        return data


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    reused: bool = False
    idle_since: float = field(default_factory=time.monotonic)

    def close(self) -> None:
        self.writer.close()


class _SocketStream:
    """One exchange on one connection: the head is read, the body as the caller asks."""

    def __init__(
        self, owner: UnixSocketExchange, conn: _Connection, method: str, target: str, t: Timeouts
    ) -> None:
        self._owner, self._conn, self._timeouts = owner, conn, t
        self.method, self.path = method, _path_of(target)
        self.answer = _Answer()
        self.status_code = 0

    async def _feed(self) -> None:
        """Read once from the socket into the parser; EOF ends a body without a length."""
        try:
            async with asyncio.timeout(self._timeouts.read):
                data = await self._conn.reader.read(READ_SIZE)
        except TimeoutError:
            raise TransportFailure("timeout", "no answer in time", "ReadTimeout") from None
        except OSError as exc:
            raise TransportFailure("lost", str(exc)) from exc
        answer = self.answer
        if not data:
            if answer.head_done and not answer.has_length:
                answer.complete = True  # a body that ends where the connection does
                answer.keep_alive = False
                return
            raise TransportFailure("lost", "the daemon closed the connection")
        try:
            answer.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            raise TransportFailure("lost", f"an answer that is not HTTP/1.1 ({exc})") from exc

    async def head(self) -> None:
        while not self.answer.head_done:
            await self._feed()
        self.status_code = self.answer.status

    async def read(self) -> Reply:
        while not self.answer.complete:
            await self._feed()
        return Reply(
            self.status_code, self.method, self.path, self.answer.take(), self.answer.content_type
        )

    async def lines(self) -> AsyncIterator[str]:
        pending = b""
        while True:
            pending += self.answer.take()
            *whole, pending = pending.split(b"\n")
            for line in whole:
                yield line.rstrip(b"\r").decode("utf-8", errors="replace")
            if self.answer.complete:
                break
            await self._feed()
        if pending:
            yield pending.rstrip(b"\r").decode("utf-8", errors="replace")

    def reusable(self) -> bool:
        return self.answer.complete and self.answer.keep_alive


class UnixSocketExchange:
    """HTTP/1.1 to the daemon's Unix socket; connections opened on the first request."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self._idle: list[_Connection] = []
        self._slots: asyncio.Semaphore | None = None

    async def _connect(self, timeouts: Timeouts) -> _Connection:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if now - conn.idle_since < KEEPALIVE_S and not conn.reader.at_eof():
                conn.reused = True
                return conn
            conn.close()
        try:
            async with asyncio.timeout(timeouts.connect):
                reader, writer = await asyncio.open_unix_connection(self.socket_path)
        except TimeoutError:
            raise TransportFailure("timeout", "no connection in time", "ConnectTimeout") from None
        except OSError as exc:
            raise TransportFailure("connect", str(exc)) from exc
        return _Connection(reader, writer)

    def _release(self, conn: _Connection, *, reusable: bool) -> None:
        if reusable and len(self._idle) < MAX_IDLE and not conn.writer.is_closing():
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            conn.close()

    async def _send(
        self, conn: _Connection, method: str, target: str, body: bytes | None, t: Timeouts
    ) -> None:
        head = [f"{method} {target} HTTP/1.1", "Host: hostd", "Accept: */*"]
        if body is not None:
            head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        elif method in ("POST", "PUT", "PATCH"):
            head.append("Content-Length: 0")
        conn.writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (body or b""))
        try:
            async with asyncio.timeout(t.connect):
                await conn.writer.drain()
        except TimeoutError:
            raise TransportFailure("timeout", "could not send in time", "WriteTimeout") from None
        except OSError as exc:
            raise TransportFailure("lost", str(exc)) from exc

    @contextlib.asynccontextmanager
    async def _exchange(
        self, method: str, target: str, body: bytes | None, timeouts: Timeouts
    ) -> AsyncIterator[_SocketStream]:
        if self._slots is None:
            self._slots = asyncio.Semaphore(MAX_CONNECTIONS)
        async with self._slots:
            for attempt in (1, 2):
                conn = await self._connect(timeouts)
                stream = _SocketStream(self, conn, method, target, timeouts)
                try:
                    await self._send(conn, method, target, body, timeouts)
                    await stream.head()
                except TransportFailure as exc:
                    conn.close()
                    # A kept-alive connection the daemon closed just as it was taken: nothing
                    # of an answer came, so the daemon never read the request. Once more, anew.
                    if attempt == 1 and conn.reused and exc.kind == "lost":
                        continue
                    raise
                except BaseException:
                    conn.close()
                    raise
                break
            reusable = False
            try:
                yield stream
                reusable = stream.reusable()
            finally:
                self._release(conn, reusable=reusable)

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
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


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
