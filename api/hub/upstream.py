"""The proxy's HTTP/1.1 client to users' servers: pooled connections, each checked to end at
the route's user's server, responses parsed in C (llhttp, by httptools) (api layer).

Why not httpx: the profile of the hub under load (py-spy, README's Benchmarks) put four fifths
of the proxy's CPU per small request in httpx, httpcore (its pool's checks of every idle
connection, through anyio's typed attributes) and h11. Here a connection is an asyncio
protocol: the parser is fed from data_received, an idle connection that the server closed
is known from connection_lost (no system call per reuse), and a body is handed on in the
chunks the socket gave, joined when several wait.

The pool is per (uid, host, port, Unix socket): the uid the route names, which the server's
end of every new connection must belong to before a byte is sent (hostd.api.hub.routes.
check_peer: SO_PEERCRED on a Unix socket, the socket table for TCP, read in a thread); a
connection checked for one user's server is never handed to a request on another's route.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator
from typing import Final, cast

import httptools

from hostd.api.hub.routes import CONNECT_TIMEOUT_S, Route, check_peer

__all__ = ["Answer", "UpstreamError", "Upstreams"]

MAX_CONNECTIONS: Final = 64  # per server, at once
MAX_IDLE: Final = 16  # per server, kept alive between requests
IDLE_EXPIRY_S: Final = 5.0  # tornado keeps an idle connection longer: it is ours to close
READ_TIMEOUT_S: Final = 300.0  # for the head, and between two pieces of a body
WRITE_TIMEOUT_S: Final = 60.0
# Read from the server no further ahead than this of what the browser has taken.
BUFFER_HIGH: Final = 1024 * 1024


class UpstreamError(Exception):
    """The server could not be reached, was not the user's, or broke off its answer."""


class _Connection(asyncio.Protocol):
    """One connection to a server; one exchange at a time on it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.idle_since = 0.0
        self._writable = asyncio.Event()
        self._writable.set()
        self.begin(head_only=False)

    def begin(self, *, head_only: bool) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.head_only = head_only
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.head: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.complete = False
        self.keep_alive = False
        self.error: BaseException | None = None
        self._wake: asyncio.Future[None] | None = None
        self._paused = False

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's: not a subclass

    def data_received(self, data: bytes) -> None:
        if self.complete:  # bytes nobody asked for: this connection is not reusable
            self.lost = True
            if self.transport is not None:
                self.transport.close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:  # HttpParserUpgrade among them: not asked
            self._fail(UpstreamError(f"the server's answer is not HTTP/1.1: {exc!r}"))
            return
        if self.buffered > BUFFER_HIGH and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool | None:
        return None  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._writable.set()
        if self.complete:
            return
        if self.head.done() and not self._has_length():
            self.complete = True  # a body that ends where the connection does
            self._notify()
        else:
            self._fail(UpstreamError(f"the server closed the connection: {exc!r}"))

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- httptools' callbacks ------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # 100 Continue and the like: the answer follows
            self.headers = []  # (101, never asked for, fails as an upgrade the parser refuses)
            return
        self.status = status
        # Asked here: once the message is complete, llhttp has cleared what it reads this from.
        self.keep_alive = self.parser.should_keep_alive()
        if self.head_only:  # an answer to HEAD has no body, whatever its Content-Length says
            self.complete = True
            self.lost = True  # llhttp would wait for that body: not reusable
        if not self.head.done():
            self.head.set_result(None)

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        self._notify()

    def on_message_complete(self) -> None:
        if self.status:  # not the end of a 1xx
            self.complete = True
            self._notify()

    # -- the exchange ----------------------------------------------------------------------

    def _has_length(self) -> bool:
        return any(
            name.lower() in (b"content-length", b"transfer-encoding") for name, _ in self.headers
        )

    def _notify(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def _fail(self, error: BaseException) -> None:
        self.error = error
        self.lost = True
        if self.transport is not None:
            self.transport.close()
        if not self.head.done():
            self.head.set_exception(error)
            self.head.exception()  # retrieved: a request already given up logs nothing
        self._notify()

    async def write(self, data: bytes) -> None:
        if self.lost or self.transport is None:
            raise UpstreamError("the server closed the connection")
        self.transport.write(data)
        if not self._writable.is_set():
            async with asyncio.timeout(WRITE_TIMEOUT_S):
                await self._writable.wait()

    async def body(self) -> AsyncIterator[bytes]:
        """The answer's body, in the pieces that arrived (joined when several wait)."""
        while True:
            if self.chunks:
                data = b"".join(self.chunks) if len(self.chunks) > 1 else self.chunks[0]
                self.chunks.clear()
                self.buffered = 0
                if self._paused and self.transport is not None and not self.lost:
                    self._paused = False
                    self.transport.resume_reading()
                yield data
                continue
            if self.complete:
                return
            if self.error is not None:
                raise UpstreamError(str(self.error)) from self.error
            self._wake = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(READ_TIMEOUT_S):
                    await self._wake
            except TimeoutError as exc:
                self._fail(UpstreamError("the server did not send the rest of its answer"))
                raise UpstreamError("the server did not send the rest of its answer") from exc
            finally:
                self._wake = None

    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.lost

    def close(self) -> None:
        self.lost = True
        if self.transport is not None:
            self.transport.close()


class Answer:
    """A server's answer: status, headers as sent, and its body (read once)."""

    def __init__(self, connection: _Connection, release: _Pool) -> None:
        self.status = connection.status
        self.headers = connection.headers
        self._connection = connection
        self._pool = release
        self._closed = False

    def body(self) -> AsyncIterator[bytes]:
        return self._connection.body()

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self._connection.body()])

    def close(self) -> None:
        """The connection goes back to the pool when the answer was read whole, else shut."""
        if not self._closed:
            self._closed = True
            self._pool.release(self._connection)


class _Pool:
    """Connections to one server for one uid: at most MAX_CONNECTIONS, MAX_IDLE kept."""

    def __init__(self, route: Route) -> None:
        self.uid = route.uid
        self.socket = route.socket
        self.address = (route.host, route.port)
        self.idle: collections.deque[_Connection] = collections.deque()
        self.slots = asyncio.Semaphore(MAX_CONNECTIONS)

    async def take(self) -> tuple[_Connection, bool]:
        """A connection (and whether it served before), holding one of the pool's slots."""
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await self.slots.acquire()
        except TimeoutError as exc:
            raise UpstreamError(f"all {MAX_CONNECTIONS} connections to the server busy") from exc
        now = time.monotonic()
        while self.idle:
            connection = self.idle.pop()
            if not connection.lost and now - connection.idle_since < IDLE_EXPIRY_S:
                return connection, True
            connection.close()
        try:
            return await self._connect(), False
        except BaseException:
            self.slots.release()
            raise

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                if self.socket is not None:
                    transport, connection = await loop.create_unix_connection(
                        _Connection, self.socket
                    )
                else:
                    transport, connection = await loop.create_connection(_Connection, *self.address)
        except (OSError, TimeoutError) as exc:
            raise UpstreamError(f"could not connect: {exc!r}") from exc
        try:
            sock = transport.get_extra_info("socket")
            if self.socket is not None:
                check_peer(sock, self.uid)  # SO_PEERCRED: one system call
            else:  # the kernel takes milliseconds to print the socket table: not on the loop
                await asyncio.to_thread(check_peer, sock, self.uid)
        except OSError as exc:
            transport.close()
            raise UpstreamError(str(exc)) from exc
        return connection

    def release(self, connection: _Connection) -> None:
        if connection.reusable() and len(self.idle) < MAX_IDLE:
            connection.idle_since = time.monotonic()
            self.idle.append(connection)
        else:
            connection.close()
        self.slots.release()

    def close(self) -> None:
        while self.idle:
            self.idle.pop().close()


class Upstreams:
    """Every forwarded HTTP request goes through here: a pool per user's server."""

    def __init__(self) -> None:
        self._pools: dict[tuple[int, str, int, str | None], _Pool] = {}

    async def request(
        self,
        route: Route,
        method: str,
        target: bytes,
        headers: list[tuple[str, str]],
        body: AsyncIterator[bytes] | None,
        *,
        sized: bool,
    ) -> Answer:
        """Send the request; the answer once its head is in. ``sized``: the headers carry
        Content-Length (else a body goes chunked). UpstreamError when it cannot be had."""
        key = (route.uid, route.host, route.port, route.socket)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = _Pool(route)
        host = "localhost" if route.socket is not None else route.origin.split("://", 1)[1]
        lines = [f"{method} ".encode(), target, b" HTTP/1.1\r\nhost: ", host.encode(), b"\r\n"]
        for name, value in headers:
            lines += [name.encode("latin-1"), b": ", value.encode("latin-1"), b"\r\n"]
        if body is not None and not sized:
            lines.append(b"transfer-encoding: chunked\r\n")
        lines.append(b"\r\n")
        head = b"".join(lines)
        # A connection the server closed while idle is seen only when used: a request
        # without a body that changes nothing goes again, once, on a new connection.
        retry = body is None and method in ("GET", "HEAD", "OPTIONS")
        while True:
            connection, reused = await pool.take()
            try:
                return await self._exchange(connection, pool, method, head, body, sized)
            except BaseException as exc:
                connection.close()
                pool.release(connection)
                stale = reused and not connection.status  # closed before any answer
                if not (isinstance(exc, UpstreamError) and retry and stale):
                    raise
                retry = False

    async def _exchange(
        self,
        connection: _Connection,
        pool: _Pool,
        method: str,
        head: bytes,
        body: AsyncIterator[bytes] | None,
        sized: bool,
    ) -> Answer:
        connection.begin(head_only=method == "HEAD")
        try:
            await connection.write(head)
            if body is not None:
                async for chunk in body:
                    framed = chunk if sized else b"%x\r\n%s\r\n" % (len(chunk), chunk)
                    await connection.write(framed)
                if not sized:
                    await connection.write(b"0\r\n\r\n")
            async with asyncio.timeout(READ_TIMEOUT_S):
                await connection.head
        except TimeoutError as exc:
            raise UpstreamError("the server did not answer in time") from exc
        except (OSError, RuntimeError) as exc:  # the transport went away under a write
            raise UpstreamError(f"could not send the request: {exc!r}") from exc
        return Answer(connection, pool)

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()
