"""WebSocket load for the "proxy ws" row: CONNECTIONS connections, IN_FLIGHT messages in flight
on each, every echo answered with a new message; messages received per second.

A lean client, so that the row measures the proxy between it and the echo server
(tests/bench/ws_echo.py) and not itself: asyncio protocols on uvloop, each message a masked
frame made once (a fixed 4-byte key per connection: valid frames; the proxies never unmask),
the echoes counted by their bytes (every echo is the same size), the first one checked whole.
Also runnable alone (a harness for profiling the hub):
    python -m tests.bench.ws_load URL|unix:PATH [header: value] [seconds]
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import psutil
import uvloop

# 16 messages in flight, one per connection, as the kernel row has 16: what JupyterLab's
# traffic looks like (a request, its answer), where each message costs a proxy a read and a
# write each way. With more in flight per connection reads carry many messages, the proxy's
# share of the CPU falls and the client and the echo server's rises (README, Benchmarks).
CONNECTIONS = 16
IN_FLIGHT = 1  # per connection
MESSAGE_BYTES = 256  # a kernel message's order of size
WARM_UP_S = 1.0


def _frames(payload: bytes) -> tuple[bytes, bytes]:
    """(the masked text frame a client sends, the unmasked one an echo server sends back)."""
    key = os.urandom(4)
    masked = bytes(byte ^ key[i % 4] for i, byte in enumerate(payload))
    size = len(payload)
    length = bytes((0x80 | size,)) if size < 126 else bytes((0x80 | 126,)) + size.to_bytes(2, "big")
    plain_length = bytes((size,)) if size < 126 else bytes((126,)) + size.to_bytes(2, "big")
    return b"\x81" + length + key + masked, b"\x81" + plain_length + payload


class _Client(asyncio.Protocol):
    def __init__(self, request: bytes, frame: bytes, echo: bytes) -> None:
        self.request = request
        self.frame = frame
        self.echo = echo
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.head = b""
        self.first = b""  # the first echo, checked whole
        self.left = 0  # bytes of an echo still to come
        self.received = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if not self.opened.done():
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.head.startswith(b"HTTP/1.1 101 "):
                self.opened.set_exception(OSError(f"no upgrade: {self.head[:200]!r}"))
                return
            data, self.head = self.head[end + 4 :], b""
            self.opened.set_result(None)
            self.transport.write(self.frame * IN_FLIGHT)  # type: ignore[union-attr]
        if len(self.first) < len(self.echo):
            self.first += data[: len(self.echo) - len(self.first)]
            if len(self.first) == len(self.echo) and self.first != self.echo:
                raise RuntimeError(f"not an echo: {self.first[:64]!r}")
        total = self.left + len(data)
        done, self.left = divmod(total, len(self.echo))
        if done:
            self.received += done
            self.transport.write(self.frame * done)  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(OSError(f"closed before the upgrade: {exc!r}"))


def process_cpu_s(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of process ``pid`` (all its threads), as env.tree_cpu_s
    reads them, kept apart."""
    times = psutil.Process(pid).cpu_times()
    return times.user, times.system


async def _rate(
    target: str, header: tuple[str, str] | None, seconds: float, proxy_pid: int | None
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    unix = target.startswith("unix:")
    path = "/echo" if unix else (urlsplit(target).path or "/")
    host = "localhost" if unix else urlsplit(target).netloc
    extra = f"{header[0]}: {header[1]}\r\n" if header else ""
    clients: list[_Client] = []
    for _ in range(CONNECTIONS):
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        ).encode()
        frame, echo = _frames(os.urandom(MESSAGE_BYTES // 2).hex().encode())
        if unix:
            _, client = await loop.create_unix_connection(
                lambda r=request, f=frame, e=echo: _Client(r, f, e), target[5:]
            )
        else:
            parts = urlsplit(target)
            _, client = await loop.create_connection(
                lambda r=request, f=frame, e=echo: _Client(r, f, e), parts.hostname, parts.port
            )
        clients.append(client)
    try:
        await asyncio.wait_for(asyncio.gather(*(c.opened for c in clients)), 30)
        await asyncio.sleep(WARM_UP_S)
        start = [c.received for c in clients]
        cpu0 = process_cpu_s(proxy_pid) if proxy_pid else None
        t0 = time.monotonic()
        await asyncio.sleep(seconds)
        span = time.monotonic() - t0
        got = sum(c.received for c in clients) - sum(start)
        cpu1 = process_cpu_s(proxy_pid) if proxy_pid else None
    finally:
        for c in clients:
            if c.transport is not None:
                c.transport.close()
    measured: dict[str, Any] = {
        "messages_per_s": got / span,
        "connections": CONNECTIONS,
        "in_flight": CONNECTIONS * IN_FLIGHT,
        "message_bytes": MESSAGE_BYTES,
    }
    if cpu0 is not None and cpu1 is not None and got:
        # The proxy's own CPU per message (user, kernel): what the rate cannot separate from
        # this client's and the echo server's on a machine all three share.
        measured["proxy_user_us_per_msg"] = (cpu1[0] - cpu0[0]) / got * 1e6
        measured["proxy_sys_us_per_msg"] = (cpu1[1] - cpu0[1]) / got * 1e6
    return measured


def ws_echo_rate(
    target: str, header: tuple[str, str] | None, seconds: float, proxy_pid: int | None = None
) -> dict[str, Any]:
    """``target``: ws URL's http form (http://host:port/path) or unix:<socket path>;
    ``proxy_pid``: the proxy in between, whose CPU per message is measured too."""
    return uvloop.run(_rate(target, header, seconds, proxy_pid))


if __name__ == "__main__":
    given = dict(enumerate(sys.argv[1:]))
    name, _, value = given.get(1, "").partition(": ")
    print(ws_echo_rate(given[0], (name, value) if value else None, float(given.get(2, "5"))))
