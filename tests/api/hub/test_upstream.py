"""The proxy's client to users' servers (hostd.api.hub.upstream), against a raw HTTP server on
a Unix socket that counts its connections and keeps what it was sent."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hostd.api.http1 import TransportFailure
from hostd.api.hub.routes import Route
from hostd.api.hub.upstream import Upstreams

BIG = b"y" * (3 * 1024 * 1024)


class Counting:
    """An HTTP/1.1 server: small answers, 3 MiB at /big, HEAD answered with a length only."""

    def __init__(self) -> None:
        self.connections = 0
        self.received = b""

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.received += head
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ")
                names = {line.split(":", 1)[0].lower(): line for line in lines[1:] if line}
                if "transfer-encoding" in names:
                    while (size := int((await reader.readline()).strip(), 16)) > 0:
                        self.received += await reader.readexactly(size)
                        await reader.readline()
                    await reader.readline()
                body = BIG if target == "/big" else b'{"ok": true}'
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
                if method != "HEAD":
                    writer.write(body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def served() -> AsyncIterator[tuple[Counting, Route]]:
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "server.sock")
        counting = Counting()
        server = await asyncio.start_unix_server(counting.serve, path)
        route = Route(origin="http+unix://x", host="localhost", port=80, token="t",
                      uid=os.getuid(), fetched=time.monotonic(), socket=path)  # fmt: skip
        async with server:
            yield counting, route


async def test_connections_are_kept_alive_between_requests(
    served: tuple[Counting, Route],
) -> None:
    counting, route = served
    upstreams = Upstreams()
    for _ in range(5):
        answer = await upstreams.request(route, "GET", b"/api", [], None, sized=False)
        assert (answer.status, await answer.read()) == (200, b'{"ok": true}')
        answer.close()
    big = await upstreams.request(route, "GET", b"/big", [], None, sized=False)
    assert await big.read() == BIG
    big.close()
    await upstreams.aclose()
    assert counting.connections == 1
    assert counting.received.count(b"host: localhost\r\n") == 6


async def test_an_answer_to_head_has_no_body_and_its_connection_is_not_reused(
    served: tuple[Counting, Route],
) -> None:
    counting, route = served
    upstreams = Upstreams()
    head = await upstreams.request(route, "HEAD", b"/big", [], None, sized=False)
    assert (head.status, await head.read()) == (200, b"")
    head.close()
    answer = await upstreams.request(route, "GET", b"/api", [], None, sized=False)
    assert await answer.read() == b'{"ok": true}'
    answer.close()
    await upstreams.aclose()
    assert counting.connections == 2


async def test_an_unsized_body_goes_chunked(served: tuple[Counting, Route]) -> None:
    counting, route = served

    async def body() -> AsyncIterator[bytes]:
        yield b"first "
        yield b"second"

    upstreams = Upstreams()
    answer = await upstreams.request(route, "POST", b"/api", [], body(), sized=False)
    assert answer.status == 200
    await answer.read()
    answer.close()
    await upstreams.aclose()
    assert b"transfer-encoding: chunked\r\n" in counting.received
    assert counting.received.endswith(b"first second")


async def test_a_server_of_another_uid_gets_nothing(served: tuple[Counting, Route]) -> None:
    counting, route = served
    other = Route(**{**route.__dict__, "uid": os.getuid() + 1})
    upstreams = Upstreams()
    with pytest.raises(TransportFailure, match="belongs to uid"):
        await upstreams.request(other, "GET", b"/api", [], None, sized=False)
    await upstreams.aclose()
    await asyncio.sleep(0.05)
    assert counting.received == b""
