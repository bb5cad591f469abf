"""The daemon client's HTTP/1.1 over a Unix socket (api/client_transport.py), against small raw
servers: what uvicorn does in tests/api/test_client.py, and what it never does on purpose."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hostd.api.client_transport import Timeouts, TransportFailure, UnixSocketExchange
from tests.api.rawhttp import raw_server

QUICK = Timeouts(connect=2.0, read=0.3)
OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


async def answer_each(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        try:
            await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return
        writer.write(OK)
        await writer.drain()


async def test_a_connection_is_kept_alive_between_requests(socket_path: Path) -> None:
    async with raw_server(socket_path, answer_each) as connections:
        exchange = UnixSocketExchange(str(socket_path))
        for _ in range(3):
            reply = await exchange.request("GET", "/v1/health", None, QUICK)
            assert (reply.status_code, reply.json(), reply.path) == (200, {}, "/v1/health")
        await exchange.aclose()
    assert len(connections) == 1


async def test_a_kept_connection_the_server_closed_is_replaced_without_an_error(
    socket_path: Path,
) -> None:
    async def answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(OK)  # keep-alive by HTTP/1.1's default, then closed all the same
        await writer.drain()

    async with raw_server(socket_path, answer_once) as connections:
        exchange = UnixSocketExchange(str(socket_path))
        for _ in range(3):
            assert (await exchange.request("POST", "/x", b"{}", QUICK)).status_code == 200
        await exchange.aclose()
    assert len(connections) == 3


async def test_a_chunked_body_and_one_ended_by_the_connection_are_read_whole(
    socket_path: Path,
) -> None:
    async def chunked_then_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for piece in (b'{"a"', b": 1}"):
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nno length")
        await writer.drain()

    async with raw_server(socket_path, chunked_then_eof):
        exchange = UnixSocketExchange(str(socket_path))
        assert (await exchange.request("GET", "/a", None, QUICK)).json() == {"a": 1}
        assert (await exchange.request("GET", "/b", None, QUICK)).text == "no length"
        await exchange.aclose()


async def test_a_server_that_does_not_answer_is_a_read_timeout(socket_path: Path) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    async with raw_server(socket_path, silent):
        exchange = UnixSocketExchange(str(socket_path))
        with pytest.raises(TransportFailure) as caught:
            await exchange.request("GET", "/v1/health", None, QUICK)
        await exchange.aclose()
    assert (caught.value.kind, caught.value.detail) == ("timeout", "ReadTimeout")


async def test_an_answer_that_is_not_http_is_a_lost_connection(socket_path: Path) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        await writer.drain()

    async with raw_server(socket_path, garbage):
        exchange = UnixSocketExchange(str(socket_path))
        with pytest.raises(TransportFailure, match=r"not HTTP/1\.1") as caught:
            await exchange.request("GET", "/v1/health", None, QUICK)
        await exchange.aclose()
    assert caught.value.kind == "lost"


async def test_a_request_cancelled_mid_answer_does_not_leave_its_connection_for_the_next(
    socket_path: Path,
) -> None:
    async def slow_then_fast(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf")
        await writer.drain()
        await asyncio.sleep(5)

    async with raw_server(socket_path, slow_then_fast) as connections:
        exchange = UnixSocketExchange(str(socket_path))
        task = asyncio.create_task(exchange.request("GET", "/a", None, Timeouts(2.0, 10.0)))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(TransportFailure):
            await exchange.request("GET", "/b", None, QUICK)  # a new connection, a new wait
        await exchange.aclose()
    assert len(connections) == 2
