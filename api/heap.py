"""Giving the heap's free pages back to the kernel, for the daemon and the hub (api layer).

glibc's malloc keeps what a process frees for its next allocations; only the top of the heap
goes back by itself. After a burst (100 spawns at once, logins, their JSON and D-Bus replies;
in the hub, proxied bodies) a process holds pages it no longer uses, scattered through the heap,
in its RSS until the next burst. ``malloc_trim(0)`` hands every whole free page back (madvise)
without moving anything: measured on this machine kind at 0.3 ms when there is something to give
back and 0.01 ms when there is not, so the daemon (hostd.daemon.server) and the hub (its app's
lifespan) call it every HEAP_TRIM_INTERVAL_S: issue 17's footprint target counts RSS. Where
the C library is not glibc, there is no malloc_trim and this does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
from collections.abc import Callable
from typing import Final

__all__ = ["HEAP_TRIM_INTERVAL_S", "malloc_trim", "trim_heap_forever"]

HEAP_TRIM_INTERVAL_S: Final = 2.0


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        # The process's own symbols, libc's among them: no library search (ctypes.util's
        # find_library runs ldconfig in a subprocess).
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None
    return trim


_MALLOC_TRIM = _load_malloc_trim()


def malloc_trim() -> bool:
    """Give the heap's free pages back; True if glibc released any."""
    return _MALLOC_TRIM is not None and bool(_MALLOC_TRIM(0))


async def trim_heap_forever(interval_s: float = HEAP_TRIM_INTERVAL_S) -> None:
    while True:
        await asyncio.sleep(interval_s)
        malloc_trim()
