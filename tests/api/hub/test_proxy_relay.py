"""The proxy's WebSocket relay when the user's server is slow or breaks off.

jupyter_server (tornado) answers a kernel's WebSocket upgrade and then reads no frame of it,
pongs included, until the kernel is responsive: its ``open()`` waits for the kernel, up to
kernel_info_timeout (60 s), and tornado starts its frame loop only after ``open()`` returns.
With 20 kernels starting at once on two cores (tests/api/hub/systemd/test_load.py) that wait
passed the proxy's keepalive (websockets' default: a ping after 20 s, given up 20 s later), and
the proxy cut the kernel's WebSocket, passing the abnormal end on as a normal close (1000).

The fake servers here are websockets servers that stop reading, or drop the connection, on
purpose; the loop's clock runs fast while they stall (``fast_clock``), so a minute of the
proxy's timers passes in a few seconds and the tests stay deterministic and short.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import websockets
from websockets.asyncio.client import connect
from websockets.asyncio.server import Server, ServerConnection, serve

from tests.api.hub.conftest import HubUnderTest
from tests.api.hub.test_proxy import cookie_of, logged_in, ws_url

# Longer than jupyter_server's kernel_info_timeout (60 s, what its open() may wait) and than
# websockets' keepalive (20 s + 20 s), on the fast clock.
STALL_S = 65.0
# The stall takes 5 s of real time; uvicorn's keepalive between the hub and this test's client
# runs on the same clock and still leaves 1.5 s of real time for a pong on a busy machine.
CLOCK_RATE = 13.0


@contextlib.asynccontextmanager
async def fast_clock(rate: float) -> AsyncIterator[None]:
    """The running loop's clock runs ``rate`` times faster inside, continuous at both ends.

    A ticker wakes the loop every few milliseconds: the loop would otherwise sleep in select()
    for a timer's delay measured on the fast clock, in real seconds.
    """
    loop = asyncio.get_running_loop()
    real = time.monotonic
    start_loop, start_real = loop.time(), real()
    loop.time = lambda: start_loop + (real() - start_real) * rate  # type: ignore[method-assign]

    async def tick() -> None:
        while True:  # noqa: ASYNC110 (waking the loop is the point: no event to wait for)
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    try:
        yield
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        end_loop, end_real = loop.time(), real()
        loop.time = lambda: end_loop + (real() - end_real)  # type: ignore[method-assign]


@contextlib.asynccontextmanager
async def user_server(
    hub: HubUnderTest, user: str, handler: Callable[[ServerConnection], Awaitable[None]]
) -> AsyncIterator[Server]:
    """A WebSocket server on loopback as ``user``'s running server, with no keepalive of its own."""
    async with serve(handler, "127.0.0.1", 0, ping_interval=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        hub.fake.add_session(user, url=f"http://127.0.0.1:{port}/user/{user}/")
        yield server


async def test_a_kernel_websocket_outlives_a_server_that_reads_nothing_until_its_kernel_is_up(
    hub: HubUnderTest,
) -> None:
    async def jupyter_server(connection: ServerConnection) -> None:
        # As tornado does while jupyter_server's open() waits for the kernel: no frame is read.
        connection.transport.pause_reading()
        await asyncio.sleep(STALL_S)
        connection.transport.resume_reading()
        async for message in connection:
            await connection.send(f"echo: {message!s}")

    async with (
        user_server(hub, "alice", jupyter_server),
        logged_in(hub, "alice") as client,
        connect(
            ws_url(hub, "/user/alice/api/kernels/k1/channels"),
            additional_headers=cookie_of(client),
            ping_interval=None,  # the proxy's keepalive is under test, not this client's
        ) as socket,
    ):
        await socket.send("kernel_info_request")
        async with fast_clock(CLOCK_RATE), asyncio.timeout(STALL_S + 30):
            answer = await socket.recv()
    assert answer == "echo: kernel_info_request"


async def test_a_server_that_drops_the_connection_is_not_passed_on_as_a_normal_close(
    hub: HubUnderTest,
) -> None:
    async def breaks_off(connection: ServerConnection) -> None:
        await connection.recv()
        connection.transport.abort()  # no close frame: 1006 on the proxy's side

    async with (
        user_server(hub, "alice", breaks_off),
        logged_in(hub, "alice") as client,
        connect(
            ws_url(hub, "/user/alice/api/kernels/k1/channels"),
            additional_headers=cookie_of(client),
        ) as socket,
    ):
        await socket.send("kernel_info_request")
        with pytest.raises(websockets.ConnectionClosedError) as closed:
            await socket.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1014  # bad gateway: the upstream broke off


async def test_a_server_that_closes_without_a_code_ends_the_websocket_normally(
    hub: HubUnderTest,
) -> None:
    async def closes(connection: ServerConnection) -> None:
        await connection.recv()
        # An empty close frame (no code: 1005 on the proxy's side), as tornado's
        # WebSocketHandler.close() sends it; websockets sends one for None, untyped.
        await connection.close(code=None)  # type: ignore[arg-type]

    async with (
        user_server(hub, "alice", closes),
        logged_in(hub, "alice") as client,
        connect(
            ws_url(hub, "/user/alice/api/kernels/k1/channels"),
            additional_headers=cookie_of(client),
        ) as socket,
    ):
        await socket.send("kernel_info_request")
        with pytest.raises(websockets.ConnectionClosedOK) as closed:
            await socket.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1000
