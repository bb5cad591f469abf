"""hostd.api.http1, the one HTTP/1.1 client connection of the daemon's client, the proxy and
the WebSocket upgrades: what only it decides, against raw servers on a Unix socket (the three
clients' own tests: test_client_transport.py, hub/test_upstream.py, hub/test_wsrelay.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hostd.api.http1 import BUFFER_HIGH, Connection, Pool, TransportFailure
from tests.api.rawhttp import Handler, raw_server

SWITCH = b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"


async def connect(path: Path) -> Connection:
    _, connection = await asyncio.get_running_loop().create_unix_connection(Connection, str(path))
    return connection


def answering(answer: bytes, *, then_wait: bool = True) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        if then_wait:
            await reader.read()  # until the client closes

    return handler


async def test_an_upgrade_ends_at_the_101_and_keeps_the_bytes_after_it(socket_path: Path) -> None:
    frame = b"\x81\x02hi"
    async with raw_server(socket_path, answering(SWITCH + frame)):
        connection = await connect(socket_path)
        connection.begin(upgrade=True)
        await connection.send(b"GET /ws HTTP/1.1\r\nhost: x\r\n\r\n", 2.0)
        await connection.answer_head(2.0)
        assert (connection.status, connection.early) == (101, frame)
        assert connection.header(b"upgrade") == b"websocket"
        assert connection.transport is not None and not connection.transport.is_reading()
        assert not connection.reusable()  # the connection is the new protocol's now
        connection.close()


async def test_an_upgrade_answered_otherwise_is_an_ordinary_answer(socket_path: Path) -> None:
    async with raw_server(socket_path, answering(OK)):
        connection = await connect(socket_path)
        connection.begin(upgrade=True)
        await connection.send(b"GET /ws HTTP/1.1\r\nhost: x\r\n\r\n", 2.0)
        await connection.answer_head(2.0)
        assert connection.status == 200
        assert b"".join([piece async for piece in connection.body(2.0)]) == b"{}"
        connection.close()


async def test_a_101_not_asked_for_fails_the_exchange(socket_path: Path) -> None:
    async with raw_server(socket_path, answering(SWITCH + b"\x81\x02hi")):
        connection = await connect(socket_path)
        connection.begin()
        await connection.send(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n", 2.0)
        with pytest.raises(TransportFailure, match="switched protocols unasked") as caught:
            await connection.answer_head(2.0)
        assert caught.value.kind == "lost"
        assert connection.lost


async def test_reading_pauses_while_a_megabyte_waits_for_the_caller(socket_path: Path) -> None:
    size = 8 * BUFFER_HIGH
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size + b"z" * size
    async with raw_server(socket_path, answering(answer)):
        connection = await connect(socket_path)
        connection.begin()
        await connection.send(b"GET /big HTTP/1.1\r\nhost: x\r\n\r\n", 2.0)
        await connection.answer_head(2.0)
        await asyncio.sleep(0.2)  # the server has written all it can
        assert connection.transport is not None and not connection.transport.is_reading()
        assert BUFFER_HIGH < connection.buffered < size
        got = sum([len(piece) async for piece in connection.body(2.0)])
        assert got == size and connection.reusable()
        connection.close()


async def ask_root(connection: Connection) -> None:
    connection.begin()
    await connection.send(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n", 2.0)
    await connection.answer_head(2.0)


async def answer_first_only(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers a connection's first request; a second is read and the connection closed
    without an answer: as a server that timed the connection out just as it was reused."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(OK)
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")


@pytest.mark.parametrize("retry", [True, False])
async def test_a_kept_connection_lost_before_any_answer_is_retried_once_when_asked(
    socket_path: Path, retry: bool
) -> None:
    pool = Pool(max_connections=2, max_idle=2, idle_expiry_s=60.0, wait_s=1.0)
    async with raw_server(socket_path, answer_first_only) as connections:
        first = await pool.exchange(ask_root, connect=lambda: connect(socket_path), retry=retry)
        assert [piece async for piece in first.body(2.0)] == [b"{}"]
        pool.release(first)
        if retry:
            again = await pool.exchange(ask_root, connect=lambda: connect(socket_path), retry=True)
            assert (again.status, [piece async for piece in again.body(2.0)]) == (200, [b"{}"])
            pool.release(again)
        else:
            with pytest.raises(TransportFailure) as caught:
                await pool.exchange(ask_root, connect=lambda: connect(socket_path), retry=False)
            assert caught.value.kind == "lost"
        pool.close()
    assert len(connections) == (2 if retry else 1)


async def test_a_request_waits_for_a_free_connection_at_most_wait_s(socket_path: Path) -> None:
    pool = Pool(max_connections=1, max_idle=1, idle_expiry_s=60.0, wait_s=0.2)
    async with raw_server(socket_path, answering(OK)):
        held = await pool.exchange(ask_root, connect=lambda: connect(socket_path), retry=False)
        with pytest.raises(TransportFailure, match="all 1 connections busy") as caught:
            await pool.exchange(ask_root, connect=lambda: connect(socket_path), retry=False)
        assert caught.value.kind == "timeout"
        pool.release(held)
        pool.close()
