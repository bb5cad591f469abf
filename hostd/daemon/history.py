"""Usage over time, per session and for the host, in bounded rings (host layer; no I/O).

Nothing here samples: the UsageSampler hands every reading it takes (the reaper's, every
REAP_INTERVAL_S, and each API read) to ``UsageHistory.record``, and the reaper hands the
host's promised memory to ``HostHistory.record`` once a round. Each reading is folded into the
open point of every window in hostd.units.history.HISTORY_WINDOWS (10 s points for the last
hour, 5 min points for the last day); a point that is over goes into a ring of that window's
``max_points`` (a deque with maxlen), the oldest falling out.

Memory, bounded by construction: a session holds at most 360 + 288 = 648 closed points plus one
open point per window. A point is a slotted UsagePoint of five numbers, about 140 bytes with
its numbers: tests/hostd/daemon/test_history.py measures a full history of one session (about
90 KiB) and holds it under HISTORY_BYTES_PER_SESSION (128 KiB), so 100 sessions take at most
12.5 MiB. The host's history is one more such pair of rings. A session's history is dropped
when its session ends (the Ends forget it with the sampler's readings): a new session starts a
new chart.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from hostd.cgroups import Usage
from hostd.units.history import (
    HISTORY_WINDOWS,
    HistoryWindow,
    HostHistoryView,
    HostPoint,
    UsageHistoryView,
    UsagePoint,
)

__all__ = [
    "HISTORY_BYTES_PER_SESSION",
    "MAX_POINTS_PER_SESSION",
    "HostHistory",
    "UsageHistory",
]

# Every window's ring, full: the most closed points a session keeps.
MAX_POINTS_PER_SESSION: Final = sum(w.max_points for w in HISTORY_WINDOWS.values())
# What one session's full history may take, as measured by the test (see the docstring).
HISTORY_BYTES_PER_SESSION: Final = 128 * 1024
# A gap between two readings longer than this (the daemon was stopped, the clock jumped)
# says nothing about the CPU use in between.
_CPU_GAP_MAX_S: Final = 120.0
_NS_PER_S: Final = 1e9

Clock = Callable[[], float]


def _start_of(at: float, window: HistoryWindow) -> int:
    return int(at // window.resolution_s) * window.resolution_s


@dataclass(slots=True)
class _OpenUsage:
    """The point of one window still being filled."""

    at: int
    memory_bytes: int | None = None
    memory_limit_bytes: int | None = None
    cpu_ns: int = 0  # CPU time used between the readings folded in
    cpu_wall_s: float = 0.0  # the wall time those readings span
    cpu_limit: float | None = None

    def point(self) -> UsagePoint:
        cpu = None
        if self.cpu_wall_s > 0:
            cpu = round(100.0 * self.cpu_ns / _NS_PER_S / self.cpu_wall_s, 2)
        return UsagePoint(
            at=self.at,
            memory_bytes=self.memory_bytes,
            memory_limit_bytes=self.memory_limit_bytes,
            cpu_percent=cpu,
            cpu_limit=self.cpu_limit,
        )


class _SessionRings:
    """One session's rings, one per window, and its last reading (for CPU use between two)."""

    def __init__(self) -> None:
        self.closed: dict[str, deque[UsagePoint]] = {
            name: deque(maxlen=w.max_points) for name, w in HISTORY_WINDOWS.items()
        }
        self.open: dict[str, _OpenUsage] = {}
        self.last: tuple[float, int] | None = None  # (wall time, cumulative CPU ns)

    def fold(self, at: float, usage: Usage, cpu_limit: float | None) -> None:
        cpu_ns, cpu_s = 0, 0.0
        if usage.cpu_usage_ns is not None:
            if self.last is not None:
                last_at, last_ns = self.last
                dt, dns = at - last_at, usage.cpu_usage_ns - last_ns
                if 0 < dt <= _CPU_GAP_MAX_S and dns >= 0:
                    cpu_ns, cpu_s = dns, dt
            self.last = (at, usage.cpu_usage_ns)
        for name, window in HISTORY_WINDOWS.items():
            start = _start_of(at, window)
            current = self.open.get(name)
            if current is None or current.at != start:
                if current is not None:
                    self.closed[name].append(current.point())
                current = self.open[name] = _OpenUsage(at=start)
            if usage.memory_bytes is not None:
                current.memory_bytes = max(current.memory_bytes or 0, usage.memory_bytes)
            if usage.memory_limit_bytes is not None:
                current.memory_limit_bytes = usage.memory_limit_bytes
            if cpu_limit is not None:
                current.cpu_limit = cpu_limit
            current.cpu_ns += cpu_ns
            current.cpu_wall_s += cpu_s

    def points(self, name: str, since: float) -> tuple[UsagePoint, ...]:
        points = list(self.closed[name])
        current = self.open.get(name)
        if current is not None:
            points.append(current.point())
        return tuple(p for p in points if p.at >= since)


class UsageHistory:
    """Every running session's rings, fed by the sampler's readings; ``forget`` at its end."""

    def __init__(self, clock: Clock = time.time) -> None:
        self.clock = clock
        self._sessions: dict[str, _SessionRings] = {}

    def record(self, user: str, usage: Usage, *, cpu_limit: float | None = None) -> None:
        rings = self._sessions.get(user)
        if rings is None:
            rings = self._sessions[user] = _SessionRings()
        rings.fold(self.clock(), usage, cpu_limit)

    def has(self, user: str) -> bool:
        return user in self._sessions

    def view(self, user: str, window: HistoryWindow) -> UsageHistoryView:
        """The user's points of the window (none yet: an empty view)."""
        rings = self._sessions.get(user)
        since = _start_of(self.clock() - window.seconds, window) + window.resolution_s
        points = () if rings is None else rings.points(window.name, since)
        return UsageHistoryView(
            user=user, window=window.name, resolution_s=window.resolution_s, points=points
        )

    def forget(self, user: str) -> None:
        """Drop the history of a session that ended."""
        self._sessions.pop(user, None)

    def users(self) -> Iterable[str]:
        return tuple(self._sessions)


@dataclass(slots=True)
class _OpenHost:
    at: int
    committed: int = 0
    capacity: int = 0
    sessions: int = 0

    def point(self) -> HostPoint:
        return HostPoint(
            at=self.at,
            memory_committed_bytes=self.committed,
            memory_capacity_bytes=self.capacity,
            sessions_running=self.sessions,
        )


class HostHistory:
    """The memory the host promised its sessions against its capacity, over every window."""

    def __init__(self, clock: Clock = time.time) -> None:
        self.clock = clock
        self._closed: dict[str, deque[HostPoint]] = {
            name: deque(maxlen=w.max_points) for name, w in HISTORY_WINDOWS.items()
        }
        self._open: dict[str, _OpenHost] = {}

    def record(self, *, committed: int, capacity: int, sessions: int) -> None:
        at = self.clock()
        for name, window in HISTORY_WINDOWS.items():
            start = _start_of(at, window)
            current = self._open.get(name)
            if current is None or current.at != start:
                if current is not None:
                    self._closed[name].append(current.point())
                current = self._open[name] = _OpenHost(at=start)
            current.committed = max(current.committed, committed)
            current.capacity = capacity
            current.sessions = max(current.sessions, sessions)

    def view(self, window: HistoryWindow) -> HostHistoryView:
        since = _start_of(self.clock() - window.seconds, window) + window.resolution_s
        points = list(self._closed[window.name])
        current = self._open.get(window.name)
        if current is not None:
            points.append(current.point())
        return HostHistoryView(
            window=window.name,
            resolution_s=window.resolution_s,
            points=tuple(p for p in points if p.at >= since),
        )
