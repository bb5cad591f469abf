"""A raw HTTP server on a Unix socket for the HTTP/1.1 clients' tests (test_http1.py,
test_client_transport.py): each connection handed to a handler that writes whatever bytes the
test wants, including what no real server would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

__all__ = ["Handler", "raw_server"]

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def raw_server(path: Path, handler: Handler) -> AsyncIterator[list[int]]:
    """A Unix-socket server running ``handler`` per connection; yields the connection count."""
    connections: list[int] = []

    async def counted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_unix_server(counted, path=str(path))
    async with server:
        yield connections
