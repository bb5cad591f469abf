"""A WebSocket through the hub as bytes: the user's server's upgrade, then a relay of the two
connections' bytes (api layer; runs in the hub's event loop).

Why bytes: relaying messages cost four frame codecs per message and direction in Python
(uvicorn's protocol, its ASGI queue, starlette, a ``websockets`` client that parses and masks
again); configurable-http-proxy pipes the bytes after the 101 (README, Benchmarks: the profile).
What stays as it was: the hub decides first, on the upgrade request alone (who asks, the
cross-site Origin, whose server: hostd.api.hub.proxy), and only then connects to the server,
over a connection checked to end at that user's server (``checked_socket``: SO_PEERCRED, or
the socket table for TCP) before a byte is sent.

How the browser's connection is handed over: the hub's uvicorn WebSocket protocol
(hostd.api.hub.server.HubWebSocketProtocol) offers the ASGI extension ``RELAY_EXTENSION``; the
app sends it ``{"type": RELAY_MESSAGE, "upgraded": Upgraded, "activity": callable}`` instead of
``websocket.accept``, and that send returns when the relay has ended, both connections closed.
The relay works on transports, TLS ones too: nothing here reads the browser's frames.

What is read: the headers of the server's frames, and nothing else (their lengths, to know where
each frame ends; no payload is copied or unmasked). That keeps what the hub promised when it
relayed messages: a server that breaks off is reported to the browser as 1014 (bad gateway),
never as a normal close; a close frame without a code (tornado's ``close()``) reaches the browser
as 1000; a hub that stops sends 1012 (service restart), as uvicorn did.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from hostd.api.http1 import Connection, TransportFailure
from hostd.api.hub.routes import Route, checked_socket

__all__ = [
    "RELAY_EXTENSION",
    "RELAY_MESSAGE",
    "Relay",
    "UpgradeRefused",
    "Upgraded",
    "open_upstream",
]

log = logging.getLogger(__name__)

RELAY_EXTENSION: Final = "hostd.relay"
RELAY_MESSAGE: Final = "hostd.relay.start"
# Close frames the relay writes to the browser itself (RFC 6455 5.5.1, 7.4.1).
_CLOSE_NORMAL: Final = b"\x88\x02\x03\xe8"  # 1000: in place of a close frame without a code
_CLOSE_RESTART: Final = b"\x88\x02\x03\xf4"  # 1012: the hub is stopping
_CLOSE_BAD_GATEWAY: Final = b"\x88\x02\x03\xf6"  # 1014: the server broke off, no close frame
# The hub's own pings to the browser went with uvicorn's frame codec. A browser that vanished
# (a laptop closed, a network gone) is found by the kernel instead: TCP keepalive after a minute
# of silence, then three probes 20 s apart. The server's own pings (jupyter_server's) go through.
KEEPALIVE_IDLE_S: Final = 60
KEEPALIVE_INTERVAL_S: Final = 20
KEEPALIVE_COUNT: Final = 3
# Once one side is gone, what is still buffered for the other goes before its connection is
# closed, for at most this long (uvicorn's own close timeout): a peer that reads nothing does
# not keep a relay, and its two sockets, forever.
FLUSH_TIMEOUT_S: Final = 10.0


class UpgradeRefused(Exception):
    """The user's server answered the upgrade with something other than 101."""

    def __init__(self, status: int) -> None:
        super().__init__(f"the server answered the WebSocket upgrade with {status}")
        self.status = status


@dataclass(frozen=True)
class Upgraded:
    """The server's 101: its connection (paused; the relay's from now on), the headers it
    answered with, and the bytes that came after its head (frames it sent at once)."""

    transport: asyncio.Transport
    headers: list[tuple[bytes, bytes]]
    early: bytes


async def open_upstream(
    route: Route, target: bytes, headers: list[tuple[str, str]], *, timeout_s: float
) -> Upgraded:
    """Ask the route's server to upgrade ``target`` (a GET with ``headers``, the browser's
    Sec-WebSocket-* among them), over a connection checked to end at the route's user's
    server. OSError, TimeoutError or UpgradeRefused when it did not switch protocols."""
    sock = await checked_socket(route)
    loop = asyncio.get_running_loop()
    try:
        if route.socket is not None:
            transport, connection = await loop.create_unix_connection(Connection, sock=sock)
        else:
            transport, connection = await loop.create_connection(Connection, sock=sock)
    except BaseException:
        sock.close()
        raise
    host = "localhost" if route.socket is not None else route.origin.split("://", 1)[1]
    lines = [b"GET ", target, b" HTTP/1.1\r\nhost: ", host.encode(), b"\r\n"]
    lines.append(b"upgrade: websocket\r\nconnection: Upgrade\r\n")
    for name, value in headers:
        lines += [name.encode("latin-1"), b": ", value.encode("latin-1"), b"\r\n"]
    lines.append(b"\r\n")
    try:
        connection.begin(upgrade=True)
        await connection.send(b"".join(lines), timeout_s)
        await connection.answer_head(timeout_s)
        if connection.status != 101:
            raise UpgradeRefused(connection.status)
    except TransportFailure as exc:
        transport.close()
        raise OSError(exc.reason) from exc
    except BaseException:
        transport.close()  # given up: what the connection does next is nobody's
        raise
    return Upgraded(transport, connection.headers, connection.early)


class _FrameEnds:
    """Where the server's frames end, from their headers alone (RFC 6455 5.2): a header cut
    by a read is held back until the rest comes; a close frame without a code is sent on
    with 1000 (the browser would read 1005, "no status"); after a close frame nothing is
    read."""

    __slots__ = ("closed", "held", "left")

    def __init__(self) -> None:
        self.left = 0  # payload bytes of the current frame still to come
        self.held = b""
        self.closed = False

    def at_boundary(self) -> bool:
        """Whether the browser has been sent whole frames only (a frame of the hub's may go)."""
        return self.left == 0 and not self.closed

    def feed(self, data: bytes) -> bytes:
        """The bytes to send on: ``data``, less a cut header at its end."""
        if self.held:
            data, self.held = self.held + data, b""
        size = len(data)
        at = self.left
        if at >= size:
            self.left = at - size
            return data
        while not self.closed:
            if size - at < 2:
                break
            second = data[at + 1]
            length = second & 0x7F
            head = 2
            if length >= 126:
                head = 4 if length == 126 else 10
                if size - at < head:
                    break
                length = int.from_bytes(data[at + 2 : at + head], "big")
            if second & 0x80:  # a masked frame (not a server's, but its length is the same)
                head += 4
            if data[at] & 0x0F == 0x08:
                self.closed = True
                if head == 2 and length == 0:
                    data = data[:at] + bytes([data[at]]) + _CLOSE_NORMAL[1:] + data[at + 2 :]
                    size += 2
                    length = 2
            at += head + length
            if at >= size:
                self.left = at - size
                return data
        if self.closed:
            self.left = 0
            return data
        self.held, self.left = data[at:], 0
        return data[:at]


class _Side(asyncio.Protocol):
    """One connection of the relay: what it reads is written to the other one."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.other: _Side | None = None

    def eof_received(self) -> bool | None:
        return None  # close: connection_lost follows, and closes the other side

    def pause_writing(self) -> None:  # this side cannot take more: stop reading the other
        if self.other is not None and self.other.transport is not None:
            self.other.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.other is not None and self.other.transport is not None and not self.other.lost:
            self.other.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.relay.side_lost(self, exc)


class _Browser(_Side):
    def data_received(self, data: bytes) -> None:
        self.relay.upstream.write(data)
        self.relay.activity()


class _Server(_Side):
    def data_received(self, data: bytes) -> None:
        self.relay.browser.write(self.relay.frames.feed(data))


class Relay:
    """The browser's connection and the server's, each one's bytes written to the other, until
    either ends; then both are closed. ``finished`` is done once both are gone."""

    def __init__(
        self,
        browser: asyncio.Transport,
        upgraded: Upgraded,
        *,
        activity: Callable[[], None],
    ) -> None:
        self.browser = browser
        self.upstream = upgraded.transport
        self.activity = activity
        self.frames = _FrameEnds()
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._browser_side = _Browser(self)
        self._server_side = _Server(self)
        self._browser_side.other, self._server_side.other = self._server_side, self._browser_side
        self._early = upgraded.early
        self._flush_timer: asyncio.TimerHandle | None = None

    def start(self, head: bytes) -> None:
        """Send the browser the server's 101 ``head``, then relay."""
        _keep_alive(self.browser)
        for transport, side in (
            (self.browser, self._browser_side),
            (self.upstream, self._server_side),
        ):
            transport.set_protocol(side)
            side.transport = transport
        self.browser.write(head)
        if self._early:
            self._server_side.data_received(self._early)
        self.upstream.resume_reading()  # paused at the end of the 101 (http1.Connection)

    def side_lost(self, side: _Side, exc: Exception | None) -> None:
        if side is self._server_side and not self._browser_side.lost:
            if self.frames.at_boundary():
                # No close frame from the server: its end was not a normal one.
                log.info("a user's server ended a WebSocket without a close frame: %r", exc)
                self.browser.write(_CLOSE_BAD_GATEWAY)
            self._close_after_flush(self.browser)
        elif side is self._browser_side and not self._server_side.lost:
            self._close_after_flush(self.upstream)
        if self._browser_side.lost and self._server_side.lost and not self.finished.done():
            if self._flush_timer is not None:
                self._flush_timer.cancel()
            self.finished.set_result(None)

    def _close_after_flush(self, transport: asyncio.Transport) -> None:
        transport.close()  # after what is buffered for it
        if transport.get_write_buffer_size() and self._flush_timer is None:
            loop = asyncio.get_running_loop()
            self._flush_timer = loop.call_later(FLUSH_TIMEOUT_S, transport.abort)

    def shutdown(self) -> None:
        """The hub is stopping: the browser is told so (1012) when a frame of the hub's can go."""
        if not self._browser_side.lost and self.frames.at_boundary():
            self.frames.closed = True
            self.browser.write(_CLOSE_RESTART)
        self.close()

    def close(self) -> None:
        for transport in (self.browser, self.upstream):
            if not transport.is_closing():
                transport.close()

    def abort(self) -> None:
        """Both connections dropped at once (the hub's task was cancelled)."""
        for transport in (self.browser, self.upstream):
            transport.abort()


def _keep_alive(transport: asyncio.Transport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, KEEPALIVE_IDLE_S)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPALIVE_INTERVAL_S)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, KEEPALIVE_COUNT)
