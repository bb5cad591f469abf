"""The hub's WebSocket byte relay (hostd.api.hub.wsrelay): what goes through it both ways,
how each side's end reaches the other, and that the hub's checks still come before anything
reaches the user's server.

The user's servers here are ``websockets`` servers (a real frame codec on the other end) or
raw asyncio servers that record every connection and byte they get (to show that nothing was
sent to them)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve, unix_serve

from hostd.api.hub import wsrelay
from hostd.api.hub.wsrelay import _FrameEnds
from tests.api.hub.conftest import HubUnderTest
from tests.api.hub.fake import log_in
from tests.api.hub.test_proxy import cookie_of, logged_in, ws_url

PATH = "/user/alice/api/kernels/k1/channels"


@contextlib.asynccontextmanager
async def user_server(
    hub: HubUnderTest,
    handler: Callable[[ServerConnection], Awaitable[None]],
    *,
    on_socket: Path | None = None,
    **options: Any,
) -> AsyncIterator[None]:
    """A websockets server as alice's running server: on loopback, or on a Unix socket."""
    if on_socket is not None:
        async with unix_serve(handler, str(on_socket), ping_interval=None, **options):
            hub.fake.add_session("alice", url=f"http+unix://{str(on_socket).replace('/', '%2F')}/")
            yield
        return
    async with serve(handler, "127.0.0.1", 0, ping_interval=None, **options) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        hub.fake.add_session("alice", url=f"http://127.0.0.1:{port}/user/alice/")
        yield


@dataclass
class RawServer:
    """A TCP server that records every connection and every byte; answers with ``answer``."""

    answer: bytes = b""
    hold: bool = True  # after its answer: wait for the hub to close (else drop the connection)
    connections: int = 0
    received: list[bytes] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)  # a connection was handled

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.received.append(head)
            writer.write(self.answer)
            await writer.drain()
            if self.hold:
                self.received.append(await reader.read())  # until the hub closes
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            self.received.append(getattr(exc, "partial", b""))
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            self.done.set()


@contextlib.asynccontextmanager
async def raw_server(
    hub: HubUnderTest, answer: bytes = b"", *, hold: bool = True
) -> AsyncIterator[RawServer]:
    raw = RawServer(answer, hold)
    server = await asyncio.start_server(raw.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    hub.fake.add_session("alice", url=f"http://127.0.0.1:{port}/user/alice/")
    try:
        yield raw
    finally:
        server.close()
        await server.wait_closed()


async def echo(connection: ServerConnection) -> None:
    async for message in connection:
        await connection.send(message)


def _open_fds() -> int:
    return len(list(Path("/proc/self/fd").iterdir()))


# -- data both ways --------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["tcp", "socket"])
async def test_many_messages_in_flight_come_back_whole_and_in_order(
    hub: HubUnderTest, short_dir: Path, where: str
) -> None:
    on_socket = short_dir / "lab.sock" if where == "socket" else None
    sent = [f"message {i} " * (i % 50) for i in range(2000)]
    async with (
        user_server(hub, echo, on_socket=on_socket),
        logged_in(hub, "alice") as client,
        connect(ws_url(hub, PATH), additional_headers=cookie_of(client)) as socket,
    ):

        async def send_all() -> None:
            for text in sent:
                await socket.send(text)

        sender = asyncio.create_task(send_all())
        received = [await socket.recv() for _ in sent]
        await sender
    assert received == sent


async def test_large_frames_go_through_both_ways(hub: HubUnderTest) -> None:
    # 125 bytes and less: a 7-bit length; up to 64 KiB: 16-bit; above: 64-bit. 40 MiB is
    # more than the hub ever held of a message before (its limit was 64 MiB per message).
    rng = random.Random(17)
    sizes = [0, 125, 126, 65535, 65536, 3 * 1024 * 1024 + 7, 40 * 1024 * 1024]
    async with (
        user_server(hub, echo, max_size=None),
        logged_in(hub, "alice") as client,
        connect(ws_url(hub, PATH), additional_headers=cookie_of(client), max_size=None) as socket,
    ):
        for size in sizes:
            payload = rng.randbytes(size)
            await socket.send(payload)
            back = await socket.recv()
            assert isinstance(back, bytes)
            assert len(back) == size
            assert hashlib.sha256(back).digest() == hashlib.sha256(payload).digest()


async def test_frames_the_server_sends_with_its_101_reach_the_browser(hub: HubUnderTest) -> None:
    # The 101 and two frames in one write: the relay gets them in the handshake's read.
    answer = b"".join(
        [
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
            b"Sec-WebSocket-Accept: %s\r\nX-Lab: kept\r\n",
            b"Set-Cookie: hostd-hub-session=planted\r\nSet-Cookie: lab=kept\r\n\r\n",
            b"\x81\x05hello\x82\x03\x00\x01\x02",
        ]
    )
    async with logged_in(hub, "alice") as client:
        key = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455's example: its accept value is known
        cookie = cookie_of(client)["Cookie"]
        accept = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        async with raw_server(hub, answer.replace(b"%s", accept)) as raw:
            reader, writer = await asyncio.open_connection(*hub.url[7:].split(":"))
            writer.write(
                f"GET {PATH} HTTP/1.1\r\nHost: {hub.url[7:]}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\nCookie: {cookie}\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            frames = await reader.readexactly(12)
            writer.close()
            await writer.wait_closed()
    assert head.startswith(b"HTTP/1.1 101 ")
    lowered = head.lower()
    assert b"sec-websocket-accept: " + accept.lower() in lowered
    assert b"x-lab: kept" in lowered
    assert b"set-cookie: lab=kept" in lowered
    assert b"hostd-hub-session" not in lowered  # a server never sets the hub's cookies
    assert frames == b"\x81\x05hello\x82\x03\x00\x01\x02"
    # The browser's own handshake went to the server, with the hub's token and not its cookie.
    request = raw.received[0].lower()
    assert f"sec-websocket-key: {key}".lower().encode() in request
    assert b"authorization: token token-of-alice" in request
    assert b"hostd-hub-session" not in request


# -- ends --------------------------------------------------------------------------------------


async def test_the_browsers_close_code_reaches_the_server_and_its_reply_the_browser(
    hub: HubUnderTest,
) -> None:
    codes: list[int | None] = []
    recorded = asyncio.Event()

    async def records(connection: ServerConnection) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for _ in connection:
                pass
        codes.append(connection.close_code)
        recorded.set()

    async with (
        user_server(hub, records),
        logged_in(hub, "alice") as client,
    ):
        async with connect(ws_url(hub, PATH), additional_headers=cookie_of(client)) as socket:
            await socket.send("x")
            await socket.close(code=4002, reason="done here")
        assert socket.close_code == 4002  # the server's reply came back through the relay
        async with asyncio.timeout(5):
            await recorded.wait()
    assert codes == [4002]


async def test_the_servers_close_code_and_reason_reach_the_browser(hub: HubUnderTest) -> None:
    async def closes(connection: ServerConnection) -> None:
        await connection.recv()
        await connection.close(code=4003, reason="kernel gone")

    async with (
        user_server(hub, closes),
        logged_in(hub, "alice") as client,
        connect(ws_url(hub, PATH), additional_headers=cookie_of(client)) as socket,
    ):
        await socket.send("x")
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await socket.recv()
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4003, "kernel gone")


async def test_a_server_that_breaks_off_inside_a_frame_ends_the_browsers_connection(
    hub: HubUnderTest,
) -> None:
    # Half a frame, then the connection drops: no close frame of the hub's can follow half a
    # frame, so the browser's connection ends as the server's did (1006, abnormal).
    answer = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        b"\x82\x7e\x01\x00" + b"x" * 100
    )
    async with logged_in(hub, "alice") as client, raw_server(hub, answer, hold=False) as raw:
        reader, writer = await asyncio.open_connection(*hub.url[7:].split(":"))
        writer.write(
            f"GET {PATH} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            f"Cookie: {cookie_of(client)['Cookie']}\r\n\r\n".encode()
        )
        await reader.readuntil(b"\r\n\r\n")
        async with asyncio.timeout(5):
            rest = await reader.read()  # until the hub closes the browser's connection
        writer.close()
        await writer.wait_closed()
    assert rest == b"\x82\x7e\x01\x00" + b"x" * 100  # nothing of the hub's after it
    assert raw.connections == 1


async def test_when_the_browser_goes_the_servers_connection_is_closed_and_nothing_is_left(
    hub: HubUnderTest,
) -> None:
    ended = asyncio.Event()

    async def waits(connection: ServerConnection) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await connection.recv()
        ended.set()

    async with user_server(hub, waits), logged_in(hub, "alice") as client:
        headers = cookie_of(client)
        async with connect(ws_url(hub, PATH), additional_headers=headers) as socket:
            await socket.send("warm-up")
        fds, tasks = _open_fds(), len(asyncio.all_tasks())
        for _ in range(20):
            ended.clear()
            socket = await connect(ws_url(hub, PATH), additional_headers=headers)
            socket.transport.abort()  # no close frame: the TCP connection just goes
            async with asyncio.timeout(5):
                await ended.wait()
        async with asyncio.timeout(5):
            # (file descriptors and tasks going away send no event to wait for)
            while _open_fds() > fds or len(asyncio.all_tasks()) > tasks:  # noqa: ASYNC110
                await asyncio.sleep(0.02)


async def test_a_hub_that_stops_tells_the_browser_1012_and_closes_the_servers_connection(
    hub: HubUnderTest,
) -> None:
    ended = asyncio.Event()

    async def waits(connection: ServerConnection) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for message in connection:
                await connection.send(message)
        ended.set()

    assert hub.server is not None
    async with (
        user_server(hub, waits),
        logged_in(hub, "alice") as client,
        connect(ws_url(hub, PATH), additional_headers=cookie_of(client)) as socket,
    ):
        await socket.send("x")
        assert await socket.recv() == "x"
        hub.server.should_exit = True  # as SIGTERM does: uvicorn's graceful shutdown
        with pytest.raises(websockets.ConnectionClosed) as closed:
            async with asyncio.timeout(5):
                await socket.recv()
        async with asyncio.timeout(5):
            await ended.wait()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012  # service restart


_SWITCH = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"


def _upgrade_request(hub: HubUnderTest, cookie: str) -> bytes:
    return (
        f"GET {PATH} HTTP/1.1\r\nHost: {hub.url[7:]}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        f"Sec-WebSocket-Version: 13\r\nCookie: {cookie}\r\n\r\n"
    ).encode()


async def test_a_browser_that_reads_nothing_holds_the_server_back(hub: HubUnderTest) -> None:
    # The relay reads from the server only as fast as the browser takes it (the transports'
    # flow control): what the hub holds stays bounded, whatever the server has to send.
    # (The browser here is a raw connection: websockets' client resumes reading by itself.)
    chunk = b"x" * (1024 * 1024)
    sent = 0

    async def sends(connection: ServerConnection) -> None:
        nonlocal sent
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await connection.send(chunk)
                sent += len(chunk)

    async with user_server(hub, sends), logged_in(hub, "alice") as client:
        reader, writer = await asyncio.open_connection(*hub.url[7:].split(":"))
        writer.write(_upgrade_request(hub, cookie_of(client)["Cookie"]))
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101 ")
        await asyncio.sleep(1.5)  # reading nothing: the StreamReader stops at 128 KiB
        writer.transport.abort()
    # Loopback socket buffers and the transports' high-water marks: a few MiB. With the
    # relay's pause_writing made a no-op, the hub read 1.2 GB here in 1.5 s (measured).
    assert 0 < sent <= 48 * 1024 * 1024, sent


async def test_a_server_that_reads_nothing_holds_the_browser_back(hub: HubUnderTest) -> None:
    done = asyncio.Event()

    async def reads_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(_SWITCH)
        await done.wait()  # reading nothing until the test is over
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    server = await asyncio.start_server(reads_nothing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    hub.fake.add_session("alice", url=f"http://127.0.0.1:{port}/user/alice/")
    chunk = b"\x82\x7f" + (1024 * 1024).to_bytes(8, "big") + b"mask" + b"x" * (1024 * 1024)
    sent = 0
    async with logged_in(hub, "alice") as client:
        reader, writer = await asyncio.open_connection(*hub.url[7:].split(":"))
        writer.write(_upgrade_request(hub, cookie_of(client)["Cookie"]))
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101 ")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.5):
                while True:
                    writer.write(chunk)
                    await writer.drain()
                    sent += len(chunk)
        writer.transport.abort()
        done.set()
    server.close()
    await server.wait_closed()
    assert 0 < sent <= 48 * 1024 * 1024, sent  # without the relay's flow control: 1.6 GB


# -- what the hub checks still comes first ----------------------------------------------------


async def test_a_server_refusing_the_upgrade_is_a_refusal_and_no_relay(hub: HubUnderTest) -> None:
    for answer in (
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",  # not a WebSocket server
        b"not HTTP at all\r\n\r\n",
    ):
        async with logged_in(hub, "alice") as client, raw_server(hub, answer) as raw:
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with connect(ws_url(hub, PATH), additional_headers=cookie_of(client)):
                    pass
        assert refused.value.response.status_code == 403, answer
        assert raw.connections == 1
        assert refused.value.response.body is not None
        assert b"ok" not in refused.value.response.body  # the server's answer stays with it


@pytest.mark.parametrize("server_owner", [lambda user: 4242])
async def test_a_server_not_the_users_gets_no_byte(hub: HubUnderTest) -> None:
    # The port is this process's, not uid 4242's: the peer check refuses the connection
    # before the upgrade request (with alice's token) is written.
    async with logged_in(hub, "alice") as client, raw_server(hub) as raw:
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with connect(ws_url(hub, PATH), additional_headers=cookie_of(client)):
                pass
        async with asyncio.timeout(5):
            await raw.done.wait()
    assert refused.value.response.status_code == 403
    assert raw.connections == 1
    assert raw.received == [b""]


async def test_a_cross_site_upgrade_is_refused_before_the_server_is_connected_to(
    hub: HubUnderTest,
) -> None:
    async with logged_in(hub, "alice") as client, raw_server(hub) as raw:
        evil = websockets.Origin("http://evil.example")
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with connect(
                ws_url(hub, PATH), additional_headers=cookie_of(client), origin=evil
            ):
                pass
        for user in ("bob", "carol"):  # nor for anyone but the owner
            async with logged_in(hub, user) as other:
                with pytest.raises(websockets.InvalidStatus):
                    async with connect(ws_url(hub, PATH), additional_headers=cookie_of(other)):
                        pass
        await asyncio.sleep(0.1)
    assert refused.value.response.status_code == 403
    assert raw.connections == 0


# -- under TLS -----------------------------------------------------------------------------------


@pytest.fixture
def hub_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Plain HTTP; HTTPS with the module's certificate for a test parametrized "tls"."""
    if getattr(request, "param", None) != "tls":
        return {}
    cert, key = request.getfixturevalue("certificate")
    return {
        "ssl_cert": cert,
        "ssl_key": key,
        "tls": {"ssl_certfile": str(cert), "ssl_keyfile": str(key)},
    }


@pytest.mark.parametrize("hub_options", ["tls"], indirect=True)
async def test_the_relay_works_on_a_tls_connection(
    hub: HubUnderTest, certificate: tuple[Path, Path]
) -> None:
    assert hub.url.startswith("https://")
    context = ssl.create_default_context(cafile=str(certificate[0]))
    async with user_server(hub, echo, max_size=None), hub.client(verify=context) as client:
        assert (await log_in(client, "alice")).status_code == 303
        url = "wss" + hub.url.removeprefix("https") + PATH
        async with connect(
            url, additional_headers=cookie_of(client), ssl=context, max_size=None
        ) as socket:
            payload = random.Random(3).randbytes(5 * 1024 * 1024)
            await socket.send(payload)
            assert await socket.recv() == payload
            for i in range(200):
                await socket.send(f"m{i}")
            assert [await socket.recv() for _ in range(200)] == [f"m{i}" for i in range(200)]


# -- the frame headers the relay reads ----------------------------------------------------------


def _frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    first = (0x80 if fin else 0) | opcode
    size = len(payload)
    if size < 126:
        return bytes([first, size]) + payload
    if size < 65536:
        return bytes([first, 126]) + size.to_bytes(2, "big") + payload
    return bytes([first, 127]) + size.to_bytes(8, "big") + payload


def test_frame_ends_are_found_wherever_the_reads_cut_the_stream() -> None:
    stream = b"".join(
        [
            _frame(1, b"a"),
            _frame(2, b"\x00" * 126),
            _frame(9, b"ping"),
            _frame(2, b"\x01" * 70000),
            _frame(0, b""),
            _frame(8, b""),  # tornado's close(): sent on as 1000
        ]
    )
    want = stream[:-2] + b"\x88\x02\x03\xe8"
    for cut in range(len(stream) + 1):
        ends = _FrameEnds()
        out = ends.feed(stream[:cut])
        assert ends.at_boundary() == (out == stream[: len(out)] and _whole(out)), cut
        out += ends.feed(stream[cut:])
        assert out == want, cut
        assert ends.closed and not ends.at_boundary()


def test_after_a_frame_ends_exactly_at_a_read_the_next_header_is_read() -> None:
    ends = _FrameEnds()
    assert ends.feed(_frame(1, b"x" * 10)) == _frame(1, b"x" * 10)
    assert ends.at_boundary()
    assert ends.feed(_frame(1, b"y" * 200)[:3]) == b""  # a 16-bit length cut: held
    assert ends.feed(_frame(1, b"y" * 200)[3:]) == _frame(1, b"y" * 200)
    assert ends.at_boundary()
    assert ends.feed(_frame(8, b"\x03\xe9bye") + b"trailing") == _frame(8, b"\x03\xe9bye") + (
        b"trailing"
    )
    assert ends.closed


def _whole(data: bytes) -> bool:
    """Whether ``data`` is whole frames (none cut)."""
    at = 0
    while at < len(data):
        if len(data) - at < 2:
            return False
        length, head = data[at + 1] & 0x7F, 2
        if length >= 126:
            head = 4 if length == 126 else 10
            if len(data) - at < head:
                return False
            length = int.from_bytes(data[at + 2 : at + head], "big")
        at += head + length
    return at == len(data)


async def test_a_relay_whose_other_side_reads_nothing_ends_after_the_flush_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The browser sends 8 MiB and goes; the server reads none of it. The relay closes the
    # server's connection after what is buffered for it, but not forever: FLUSH_TIMEOUT_S.
    monkeypatch.setattr(wsrelay, "FLUSH_TIMEOUT_S", 0.2)
    loop = asyncio.get_running_loop()
    browser, browser_end = socket.socketpair()
    server, server_end = socket.socketpair()
    for end in (browser, server):
        end.setblocking(False)
    try:
        browser_transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, browser_end)
        server_transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, server_end)
        server_transport.set_write_buffer_limits(high=64 * 1024 * 1024)  # no pause of the browser
        server_transport.pause_reading()  # as the handshake leaves it
        relay = wsrelay.Relay(
            browser_transport, wsrelay.Upgraded(server_transport, [], b""), activity=lambda: None
        )
        relay.start(_SWITCH)
        await loop.sock_sendall(browser, b"x" * (8 * 1024 * 1024))
        browser.shutdown(socket.SHUT_WR)
        async with asyncio.timeout(5):
            await relay.finished
        assert server_transport.is_closing() and browser_transport.is_closing()
    finally:
        browser.close()
        server.close()
