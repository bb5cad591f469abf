"""One HTTP/1.1 client connection, its answers parsed in C (llhttp, by httptools), and a pool
of them (api layer; runs in the event loop of whichever process uses it).

Three clients share it: the daemon's (hostd.api.client_transport: hostctl, the hub,
HostdSpawner, over the daemon's socket), the hub's proxy to users' servers
(hostd.api.hub.upstream, each connection checked to end at the route's user's server before a
byte is sent) and the hub's WebSocket upgrades (hostd.api.hub.wsrelay, which takes the
connection's transport over after the server's 101). Each writes its own request head; this
module reads the answers.

Why a protocol and llhttp, not httpx: the profile of the hub under load (README, Benchmarks) put
four fifths of the proxy's CPU per small request in httpx, httpcore and h11, and httpx's stack
cost the hub about 9 MiB of RSS. Here the parser is fed from ``data_received``, a connection
the peer closed while idle is known from ``connection_lost`` (no system call per reuse), and a
body is handed on in the pieces the socket gave, joined when several wait; reading from the
socket pauses while more than ``BUFFER_HIGH`` bytes wait for the caller.

Errors: every way a connection fails is one ``TransportFailure`` with a ``kind`` ("connect",
"timeout", "lost") and the reason. An HTTP error status is not a failure: it is an answer.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final, Literal, cast

import httptools

__all__ = ["BUFFER_HIGH", "Connection", "Pool", "TransportFailure"]

# Read from the peer no further ahead than this of what the caller has taken.
BUFFER_HIGH: Final = 1024 * 1024

FailureKind = Literal["connect", "timeout", "lost"]


class TransportFailure(Exception):
    """The peer could not be reached, did not answer in time, or broke off its answer."""

    def __init__(self, kind: FailureKind, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.kind: FailureKind = kind
        self.reason = reason
        self.detail = detail  # for "timeout": which wait ran out (ConnectTimeout, ReadTimeout)


class Connection(asyncio.Protocol):
    """One connection; one exchange at a time on it (``begin`` starts the next)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.idle_since = 0.0
        self._writable = asyncio.Event()
        self._writable.set()
        self.begin()

    def begin(self, *, head_only: bool = False, upgrade: bool = False) -> None:
        """A new answer is awaited. ``head_only``: it answers HEAD (no body, whatever its
        Content-Length says). ``upgrade``: a 101 ends the exchange at its head; the bytes after
        it wait in ``early`` and reading is paused, for whoever takes the transport over."""
        self.parser = httptools.HttpResponseParser(self)
        self.head_only, self.upgrade = head_only, upgrade
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.head: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.early = b""
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.complete = False
        self.keep_alive = False
        self.error: TransportFailure | None = None
        self._wake: asyncio.Future[None] | None = None
        self._paused = False

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's: not a subclass

    def data_received(self, data: bytes) -> None:
        if self.complete:  # bytes nobody asked for: this connection is not reusable
            self.close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as switched:
            if self.upgrade and self.status == 101:
                self._switched(data[switched.args[0] :])
            else:  # a 101 nobody asked for
                self._fail(TransportFailure("lost", "the peer switched protocols unasked"))
            return
        except httptools.HttpParserError as exc:
            self._fail(TransportFailure("lost", f"an answer that is not HTTP/1.1: {exc!r}"))
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
            self._fail(TransportFailure("lost", f"the peer closed the connection ({exc!r})"))

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- httptools' callbacks ------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status == 101 and self.upgrade:
            self.status = status  # the HttpParserUpgrade that follows ends the exchange
            return
        if 100 <= status < 200:  # 100 Continue and the like: the answer follows
            self.headers = []
            return
        self.status = status
        # Asked here: once the message is complete, llhttp has cleared what it reads this from.
        self.keep_alive = bool(self.parser.should_keep_alive())
        if self.head_only:  # an answer to HEAD has no body
            self.complete = True
            self.lost = True  # llhttp would wait for that body: not reusable
        if not self.head.done():
            self.head.set_result(None)

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        self._notify()

    def on_message_complete(self) -> None:
        if self.status and not (self.upgrade and self.status == 101):  # not the end of a 1xx
            self.complete = True
            self._notify()

    # -- the exchange ----------------------------------------------------------------------

    def header(self, name: bytes) -> bytes | None:
        """The first value of header ``name`` (lower case) in the answer, if any."""
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def _has_length(self) -> bool:
        return self.header(b"content-length") is not None or (
            self.header(b"transfer-encoding") is not None
        )

    def _switched(self, early: bytes) -> None:
        self.early, self.complete, self.lost = early, True, True  # never back in a pool
        if self.transport is not None:
            self.transport.pause_reading()  # the rest is the new protocol's
        if not self.head.done():
            self.head.set_result(None)

    def _notify(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def _fail(self, error: TransportFailure) -> None:
        self.error = error
        self.close()
        if not self.head.done():
            self.head.set_exception(error)
            self.head.exception()  # retrieved: a request already given up logs nothing
        self._notify()

    async def send(self, data: bytes, timeout: float | None) -> None:
        """Write ``data``; wait (at most ``timeout``) while the peer takes too little."""
        if self.lost or self.transport is None:
            raise TransportFailure("lost", "the peer closed the connection")
        try:
            self.transport.write(data)
            if not self._writable.is_set():
                async with asyncio.timeout(timeout):
                    await self._writable.wait()
        except TimeoutError:
            raise TransportFailure("timeout", "could not send in time", "WriteTimeout") from None
        except (OSError, RuntimeError) as exc:  # the transport went away under a write
            raise TransportFailure("lost", f"could not send: {exc!r}") from exc

    async def answer_head(self, timeout: float | None) -> None:
        """Wait (at most ``timeout``) for the answer's status and headers."""
        try:
            async with asyncio.timeout(timeout):
                await self.head
        except TimeoutError:
            self._fail(TransportFailure("timeout", "no answer in time", "ReadTimeout"))
            raise TransportFailure("timeout", "no answer in time", "ReadTimeout") from None

    async def body(self, timeout: float | None) -> AsyncIterator[bytes]:
        """The answer's body, in the pieces that arrived (joined when several wait); each
        awaited at most ``timeout``."""
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
                raise TransportFailure(self.error.kind, self.error.reason) from self.error
            self._wake = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(timeout):
                    await self._wake
            except TimeoutError:
                failure = TransportFailure("timeout", "the rest of the answer did not come")
                self._fail(failure)
                raise TransportFailure("timeout", failure.reason, "ReadTimeout") from None
            finally:
                self._wake = None

    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.lost

    def close(self) -> None:
        self.lost = True
        if self.transport is not None:
            self.transport.close()


class Pool:
    """Connections to one peer: at most ``max_connections`` at once (a request waits
    ``wait_s`` for one, None: as long as it takes), ``max_idle`` kept between exchanges for
    ``idle_expiry_s``."""

    def __init__(
        self,
        *,
        max_connections: int,
        max_idle: int,
        idle_expiry_s: float,
        wait_s: float | None,
    ) -> None:
        self.max_connections, self.max_idle = max_connections, max_idle
        self.idle_expiry_s, self.wait_s = idle_expiry_s, wait_s
        self.idle: collections.deque[Connection] = collections.deque()
        self._slots = asyncio.Semaphore(max_connections)

    async def exchange(
        self,
        ask: Callable[[Connection], Awaitable[None]],
        *,
        connect: Callable[[], Awaitable[Connection]],
        retry: bool,
    ) -> Connection:
        """A connection (kept, or new from ``connect``) on which ``ask`` has sent a request and
        awaited its answer's head; the caller reads the body and hands it to ``release``.
        ``retry``: a kept connection the peer closed as it was taken (lost before any answer:
        the peer never took the request) is given up and the request sent once more, on a new
        one."""
        while True:
            connection, reused = await self._take(connect)
            try:
                await ask(connection)
            except BaseException as exc:
                connection.close()
                self.release(connection)
                stale = reused and not connection.status
                lost = isinstance(exc, TransportFailure) and exc.kind == "lost"
                if not (retry and stale and lost):
                    raise
                retry = False
                continue
            return connection

    async def _take(self, connect: Callable[[], Awaitable[Connection]]) -> tuple[Connection, bool]:
        """A connection (and whether it served before), holding one of the pool's slots."""
        if not self._slots.locked():
            await self._slots.acquire()  # at once: no timer to arm
        else:
            try:
                async with asyncio.timeout(self.wait_s):
                    await self._slots.acquire()
            except TimeoutError:
                n = self.max_connections
                failure = TransportFailure("timeout", f"all {n} connections busy", "PoolTimeout")
                raise failure from None
        now = time.monotonic()
        while self.idle:
            connection = self.idle.pop()
            if not connection.lost and now - connection.idle_since < self.idle_expiry_s:
                return connection, True
            connection.close()
        try:
            return await connect(), False
        except BaseException:
            self._slots.release()
            raise

    def release(self, connection: Connection) -> None:
        """The exchange is over: its connection kept when its answer was read whole."""
        if connection.reusable() and len(self.idle) < self.max_idle:
            connection.idle_since = time.monotonic()
            self.idle.append(connection)
        else:
            connection.close()
        self._slots.release()

    def close(self) -> None:
        while self.idle:
            self.idle.pop().close()
