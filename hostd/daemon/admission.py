"""Admission: whether, and when, a session may start (host layer).

Three bounds: starts run at most ``capacity.max_concurrent_starts`` at once (the rest wait in
arrival order), the memory limits promised to sessions stay within ``capacity.memory_share``
of RAM, and jupyter.slice is capped at that same share so all sessions together leave room
for the daemon, the hub and sshd. The per-user lock (in the SessionTable) keeps one user's
start and stop from interleaving. The arithmetic is pure functions over numbers; the slice cap
is the one call to systemd, with properties built by hostd.units.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from hostd.config import Config
from hostd.daemon.systemd import SystemdSeam
from hostd.daemon.table import SessionTable
from hostd.units import SLICE, slice_cap_properties
from hostd.units.errors import CapacityExceeded
from hostd.units.sizes import format_size

__all__ = ["Admission", "check_memory_promise", "memory_capacity"]

log = logging.getLogger(__name__)


def memory_capacity(memory_total: int, memory_share: float) -> int:
    """The bytes of memory sessions may be promised together."""
    return int(memory_total * memory_share)


def check_memory_promise(
    others: int, mem_limit: int, capacity: int, *, memory_share: float, retry_after_s: int
) -> None:
    """CapacityExceeded if promising mem_limit on top of others passes capacity."""
    if others + mem_limit > capacity:
        # Sizes for people (2.0G, base 1024 as systemctl shows them), not byte counts.
        raise CapacityExceeded(
            f"starting this session (memory limit {format_size(mem_limit)}) would promise "
            f"{format_size(others + mem_limit)} of memory to sessions, over the "
            f"{format_size(capacity)} they may have together (memory_share "
            f"{memory_share:g}); try again when another stops",
            retry_after_s=retry_after_s,
        )


class Admission:
    """The bounds on starts, over the daemon's SessionTable; memory_total is the host's RAM."""

    def __init__(self, config: Config, table: SessionTable, memory_total: int = 0) -> None:
        self.config = config
        self.table = table
        self.memory_total = memory_total
        self._starts = asyncio.Semaphore(config.capacity.max_concurrent_starts)
        self._waiting = 0  # starts queued behind the concurrency limit

    @property
    def waiting(self) -> int:
        """Starts waiting for a slot right now."""
        return self._waiting

    def lock(self, name: str) -> asyncio.Lock:
        """The user's lock: a start and a stop of one user never interleave."""
        return self.table.lock(name)

    def memory_capacity(self) -> int:
        return memory_capacity(self.memory_total, self.config.capacity.memory_share)

    def promise_memory(self, name: str, mem_limit: int) -> None:
        """Count a session's memory limit against the share of RAM sessions may be promised."""
        capacity = self.config.capacity
        check_memory_promise(
            self.table.promised_except(name),
            mem_limit,
            self.memory_capacity(),
            memory_share=capacity.memory_share,
            retry_after_s=capacity.retry_after_s,
        )
        self.table[name].promised = mem_limit

    @contextlib.asynccontextmanager
    async def start_slot(self) -> AsyncIterator[None]:
        """One of max_concurrent_starts, held while the start runs."""
        # Beyond max_concurrent_starts, starts wait here in arrival order (asyncio's
        # Semaphore wakes waiters first in, first out) instead of failing.
        self._waiting += 1
        try:
            await self._starts.acquire()
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._starts.release()

    async def cap_slice(self, systemd: SystemdSeam) -> None:
        """jupyter.slice's MemoryMax: all sessions together leave room for the daemon, the hub
        and sshd, whatever each session's own limit is."""
        limit = self.memory_capacity()
        try:
            await systemd.set_properties(SLICE, slice_cap_properties(limit))
        except Exception as exc:
            log.warning("could not cap jupyter.slice at %d bytes: %s", limit, exc)
        else:
            log.info("jupyter.slice capped at %d bytes of memory", limit)
