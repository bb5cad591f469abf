"""Loopback ports for sessions (host layer): pick a free one, see when one answers."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import Collection

from hostd.units.errors import CapacityExceeded

__all__ = [
    "allocate_port",
    "port_free",
    "port_open",
]

TRIES = 200


def allocate_port(low: int, high: int, taken: Collection[int]) -> int:
    """A port in low..high that no session holds and nothing listens on right now."""
    candidates = [p for p in range(low, high + 1) if p not in taken]
    random.shuffle(candidates)
    for port in candidates[:TRIES]:
        if port_free(port):
            return port
    raise CapacityExceeded(f"no free port in {low}-{high} for another session")


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def port_open(port: int) -> bool:
    """True once something accepts connections on 127.0.0.1:port."""
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
