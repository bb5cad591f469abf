"""hostd.daemon.history: usage over time in bounded rings, fed by the sampler's readings, and
dropped when a session ends; the host's promised memory against capacity (no systemd)."""

from __future__ import annotations

import itertools
import sys
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from hostd.cgroups import CgroupReader, Usage
from hostd.daemon.history import (
    HISTORY_BYTES_PER_SESSION,
    MAX_POINTS_PER_SESSION,
    HostHistory,
    UsageHistory,
)
from hostd.daemon.usage import UsageSampler
from hostd.units import SessionRequest
from hostd.units.errors import SessionNotFound
from hostd.units.history import HISTORY_WINDOWS
from tests.hostd.daemon.parts import GIB, ROOT, make_manager

HOUR, DAY = HISTORY_WINDOWS["1h"], HISTORY_WINDOWS["24h"]
MIB = 2**20
T0 = 1_800_000_000.0  # a Unix time that is a whole number of 5 min points


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def usage(memory: int | None = 100 * MIB, cpu_ns: int | None = 0, limit: int = GIB) -> Usage:
    return Usage(
        version="v2",
        memory_bytes=memory,
        memory_peak_bytes=memory,
        memory_limit_bytes=limit,
        cpu_usage_ns=cpu_ns,
        cpu_throttled_ns=0,
        tasks=3,
        oom_kills=0,
    )


def feed(history: UsageHistory, clock: Clock, seconds: float, step: float = 2.0) -> None:
    """Readings every ``step`` seconds (the reaper's pace) of a session using half a core."""
    cpu_ns = int(clock.now * 1e9 / 2)
    end = clock.now + seconds
    while clock.now < end:
        clock.now += step
        cpu_ns += int(step * 1e9 / 2)
        history.record("alice", usage(cpu_ns=cpu_ns), cpu_limit=1.0)


def deep_size(value: object, seen: set[int] | None = None) -> int:
    """Bytes of ``value`` and everything it holds (sys.getsizeof over the object graph)."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return 0
    seen.add(id(value))
    size = sys.getsizeof(value)
    children: Iterator[Any]
    if isinstance(value, dict):
        children = iter([*value.keys(), *value.values()])
    elif isinstance(value, list | tuple | deque | set):
        children = iter(value)
    elif is_dataclass(value):
        children = (getattr(value, f.name) for f in fields(value))
    elif hasattr(value, "__dict__"):
        children = iter(vars(value).values())
    else:
        children = iter(())
    return size + sum(deep_size(child, seen) for child in children)


# -- the rings: resolutions, bounds ------------------------------------------------------------


def test_the_windows_are_an_hour_of_10_s_points_and_a_day_of_5_min_points() -> None:
    assert (HOUR.seconds, HOUR.resolution_s, HOUR.max_points) == (3600, 10, 360)
    assert (DAY.seconds, DAY.resolution_s, DAY.max_points) == (86400, 300, 288)
    assert MAX_POINTS_PER_SESSION == 648


def test_readings_fold_into_points_of_each_resolution() -> None:
    clock = Clock()
    history = UsageHistory(clock)
    feed(history, clock, 60)  # one minute: six 10 s points, one 5 min point (still filling)
    hour = history.view("alice", HOUR)
    day = history.view("alice", DAY)
    assert (hour.window, hour.resolution_s, day.resolution_s) == ("1h", 10, 300)
    assert [p.at for p in hour.points] == [int(T0) + 10 * i for i in range(7)]
    assert len(day.points) == 1 and day.points[0].at == int(T0)
    whole = hour.points[1:-1]  # readings at 2 s: the first and the last point are partial
    assert {p.cpu_percent for p in whole} == {50.0}
    assert {p.memory_bytes for p in hour.points} == {100 * MIB}
    assert {(p.memory_limit_bytes, p.cpu_limit) for p in hour.points} == {(GIB, 1.0)}
    assert day.points[0].cpu_percent == 50.0


def test_memory_is_the_most_seen_in_the_point_and_cpu_its_mean() -> None:
    clock = Clock(T0 + 1)
    history = UsageHistory(clock)
    history.record("alice", usage(memory=10 * MIB, cpu_ns=0))
    clock.now += 2
    history.record("alice", usage(memory=300 * MIB, cpu_ns=2 * 10**9))  # 2 cores for 2 s
    clock.now += 2
    history.record("alice", usage(memory=20 * MIB, cpu_ns=2 * 10**9))  # idle for 2 s
    (point,) = history.view("alice", HOUR).points
    assert point.memory_bytes == 300 * MIB
    assert point.cpu_percent == 50.0  # 2 CPU seconds over 4 s: half a core


def test_one_reading_or_an_unmeasured_cgroup_gives_none_not_zero() -> None:
    clock = Clock()
    history = UsageHistory(clock)
    history.record("alice", usage(memory=None, cpu_ns=None))
    (point,) = history.view("alice", HOUR).points
    assert (point.memory_bytes, point.cpu_percent, point.cpu_limit) == (None, None, None)


def test_a_gap_or_a_counter_that_went_back_is_not_cpu_use() -> None:
    clock = Clock()
    history = UsageHistory(clock)
    history.record("alice", usage(cpu_ns=10**12))
    clock.now += 600  # the daemon was stopped: 10 minutes say nothing of the CPU in between
    history.record("alice", usage(cpu_ns=2 * 10**12))
    clock.now += 5
    history.record("alice", usage(cpu_ns=10**9))  # a new cgroup counting from 0
    assert [p.cpu_percent for p in history.view("alice", HOUR).points] == [None, None]


def test_a_day_of_readings_keeps_each_ring_at_its_bound() -> None:
    clock = Clock()
    history = UsageHistory(clock)
    feed(history, clock, 2 * 86400)  # two days at the reaper's pace
    hour = history.view("alice", HOUR).points
    day = history.view("alice", DAY).points
    assert len(hour) == HOUR.max_points and len(day) == DAY.max_points
    # Oldest first, evenly spaced, ending with the point being filled now.
    assert [b.at - a.at for a, b in itertools.pairwise(hour)] == [10] * 359
    assert hour[-1].at == int(clock.now) // 10 * 10
    assert hour[0].at > clock.now - 3600 and day[0].at > clock.now - 86400
    rings = history._sessions["alice"]
    assert sum(len(ring) for ring in rings.closed.values()) == MAX_POINTS_PER_SESSION


def test_a_full_history_of_one_session_takes_less_than_the_stated_bound() -> None:
    clock = Clock()
    history = UsageHistory(clock)
    feed(history, clock, 86400 + 3600, step=10)
    size = deep_size(history._sessions["alice"])
    assert 50 * 1024 < size <= HISTORY_BYTES_PER_SESSION, size


def test_an_old_history_shows_nothing_older_than_the_window() -> None:
    clock = Clock()
    history = UsageHistory(clock)
    feed(history, clock, 60)
    clock.now += 7200  # nothing read for two hours (e.g. the session stalled in starting)
    assert history.view("alice", HOUR).points == ()
    assert len(history.view("alice", DAY).points) == 1


def test_forget_drops_the_history_and_a_new_session_starts_a_new_one() -> None:
    clock = Clock()
    history = UsageHistory(clock)
    feed(history, clock, 60)
    history.forget("alice")
    history.forget("alice")
    assert not history.has("alice") and history.view("alice", HOUR).points == ()
    assert list(history.users()) == []


# -- the host's promised memory ------------------------------------------------------------


def test_the_host_history_keeps_the_most_promised_in_each_point() -> None:
    clock = Clock()
    host = HostHistory(clock)
    host.record(committed=GIB, capacity=6 * GIB, sessions=1)
    clock.now += 4
    host.record(committed=3 * GIB, capacity=6 * GIB, sessions=2)
    clock.now += 4
    host.record(committed=2 * GIB, capacity=6 * GIB, sessions=1)
    clock.now += 4  # the next 10 s point
    host.record(committed=0, capacity=6 * GIB, sessions=0)
    points = host.view(HOUR).points
    assert [(p.memory_committed_bytes, p.sessions_running) for p in points] == [
        (3 * GIB, 2),
        (0, 0),
    ]
    assert {p.memory_capacity_bytes for p in points} == {6 * GIB}
    assert len(host.view(DAY).points) == 1


def test_the_host_history_is_bounded_as_a_sessions_is() -> None:
    clock = Clock()
    host = HostHistory(clock)
    for _ in range(2 * 86400 // 2):
        clock.now += 2
        host.record(committed=GIB, capacity=2 * GIB, sessions=1)
    assert len(host.view(HOUR).points) == HOUR.max_points
    assert len(host.view(DAY).points) == DAY.max_points


# -- fed by the sampler, served and dropped by the daemon --------------------------------------


@dataclass
class StubReader:
    """A cgroup reader that returns what the test sets (no cgroupfs on the host tier)."""

    reading: Usage

    def read_usage(self, control_group: str) -> Usage | None:
        return self.reading

    def oom_file(self, control_group: str) -> Path | None:
        return None


def test_every_reading_of_the_sampler_goes_into_the_history() -> None:
    clock = Clock()
    sampler = UsageSampler(cast(CgroupReader, StubReader(usage())), history=UsageHistory(clock))
    assert sampler.read("alice", None) is None  # no cgroup: no reading, no point
    assert not sampler.history.has("alice")
    sampler.read("alice", "/jupyter.slice/jupyter-alice.service", cpu_limit=2.0)
    (point,) = sampler.history.view("alice", HOUR).points
    assert (point.memory_bytes, point.cpu_limit) == (100 * MIB, 2.0)
    sampler.forget("alice")
    assert not sampler.history.has("alice")


async def test_the_daemon_serves_the_history_and_drops_it_when_the_session_ends(
    tmp_path: Path,
) -> None:
    manager, fake = make_manager(tmp_path)
    fake.serve = True
    with pytest.raises(SessionNotFound):
        await manager.usage_history("daemon", window=HOUR)
    await manager.start("daemon", SessionRequest(), caller=ROOT)
    assert (await manager.usage_history("daemon", window=HOUR)).points == ()  # not read yet
    manager.sampler.history.record("daemon", usage())  # as the reaper's reading would
    view = await manager.usage_history("daemon", window=HOUR)
    assert view.user == "daemon" and len(view.points) == 1
    await manager.stop("daemon", caller=ROOT)
    assert not manager.sampler.history.has("daemon")
    with pytest.raises(SessionNotFound):
        await manager.usage_history("daemon", window=HOUR)
    await manager.close()


async def test_the_reaper_records_the_memory_promised_against_capacity(tmp_path: Path) -> None:
    manager, fake = make_manager(tmp_path, memory_total=8 * GIB)
    fake.serve = True
    await manager.start("daemon", SessionRequest(), caller=ROOT)
    await manager.reap()
    await manager.stop("daemon", caller=ROOT)
    await manager.reap()
    (point,) = (await manager.host_history(window=HOUR)).points[-1:]
    capacity = manager.admission.memory_capacity()
    assert point.memory_capacity_bytes == capacity > 0
    # The 1 GiB session was promised within this point, and is gone at its end.
    assert point.memory_committed_bytes == GIB
    assert manager.table.promised_total() == 0
    await manager.close()
