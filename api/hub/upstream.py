"""The proxy's HTTP/1.1 client to users' servers: a pool of connections per user's server,
each checked to end at the route's user's server (api layer; runs in the hub's event loop).

The connections and their answers are hostd.api.http1's (llhttp, flow control, kept alive).
What is the proxy's own: the pool is per (uid, host, port, Unix socket), the uid the route
names; the server's end of every new connection must belong to it before a byte is sent
(hostd.api.hub.routes.checked_socket: SO_PEERCRED on a Unix socket, the socket table for TCP,
read in a thread); a connection checked for one user's server is never handed to a request on
another's route.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from typing import Final

from hostd.api.http1 import Connection, Pool, TransportFailure
from hostd.api.hub.routes import CONNECT_TIMEOUT_S, Route, checked_socket

__all__ = ["Answer", "Upstreams"]

MAX_CONNECTIONS: Final = 64  # per server, at once
MAX_IDLE: Final = 16  # per server, kept alive between requests
IDLE_EXPIRY_S: Final = 5.0  # tornado keeps an idle connection longer: it is ours to close
READ_TIMEOUT_S: Final = 300.0  # for the head, and between two pieces of a body
WRITE_TIMEOUT_S: Final = 60.0


class Answer:
    """A server's answer: status, headers as sent, and its body (read once)."""

    def __init__(self, connection: Connection, pool: Pool) -> None:
        self.status = connection.status
        self.headers = connection.headers
        self._connection = connection
        self._pool = pool
        self._closed = False

    def body(self) -> AsyncIterator[bytes]:
        return self._connection.body(READ_TIMEOUT_S)

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self._connection.body(READ_TIMEOUT_S)])

    def close(self) -> None:
        """The connection goes back to the pool when the answer was read whole, else shut."""
        if not self._closed:
            self._closed = True
            self._pool.release(self._connection)


async def _connect(route: Route) -> Connection:
    """A connection to the route's server, checked to be its user's before it is used."""
    try:
        sock = await checked_socket(route)
    except (OSError, TimeoutError) as exc:
        raise TransportFailure("connect", f"could not connect: {exc!r}") from exc
    loop = asyncio.get_running_loop()
    try:
        if route.socket is not None:
            _, connection = await loop.create_unix_connection(Connection, sock=sock)
        else:
            _, connection = await loop.create_connection(Connection, sock=sock)
    except BaseException:
        sock.close()
        raise
    return connection


class Upstreams:
    """Every forwarded HTTP request goes through here: a pool per user's server."""

    def __init__(self) -> None:
        self._pools: dict[tuple[int, str, int, str | None], Pool] = {}

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
        Content-Length (else a body goes chunked). TransportFailure when it cannot be had."""
        key = (route.uid, route.host, route.port, route.socket)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = Pool(
                max_connections=MAX_CONNECTIONS,
                max_idle=MAX_IDLE,
                idle_expiry_s=IDLE_EXPIRY_S,
                wait_s=CONNECT_TIMEOUT_S,
            )
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

        async def ask(connection: Connection) -> None:
            connection.begin(head_only=method == "HEAD")
            await connection.send(head, WRITE_TIMEOUT_S)
            if body is not None:
                async for chunk in body:
                    framed = chunk if sized else b"%x\r\n%s\r\n" % (len(chunk), chunk)
                    await connection.send(framed, WRITE_TIMEOUT_S)
                if not sized:
                    await connection.send(b"0\r\n\r\n", WRITE_TIMEOUT_S)
            await connection.answer_head(READ_TIMEOUT_S)

        connect = functools.partial(_connect, route)
        return Answer(await pool.exchange(ask, connect=connect, retry=retry), pool)

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()
