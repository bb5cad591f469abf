"""The OOM watcher: v2's memory.events through real inotify on files under tmp_path, and
when an ended session counts as OOM-killed (OOMPolicy=continue lets kernels die alone)."""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
from pathlib import Path

import pytest

from hostd.cgroups import CgroupReader
from hostd.daemon import usage
from hostd.daemon.usage import OomWatcher, UsageSampler

SAMPLES = Path(__file__).parents[2] / "cgroups" / "samples"
UNIT = "/jupyter.slice/jupyter-alice.service"
EVENTS = "low 0\nhigh 0\nmax 0\noom 0\noom_kill {}\noom_group_kill 0\n"
SIGKILL = int(signal.SIGKILL)


async def settle(watcher: OomWatcher, user: str, kills: int) -> None:
    for _ in range(100):
        if watcher.killed.get(user, 0) >= kills:
            return
        await asyncio.sleep(0.01)


def v2_session(tmp_path: Path, kills: int = 0) -> Path:
    directory = tmp_path / "sys/fs/cgroup/jupyter.slice/jupyter-alice.service"
    directory.mkdir(parents=True)
    (directory / "memory.events").write_text(EVENTS.format(kills))
    return directory


async def test_v2_kills_are_counted_as_they_happen(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = v2_session(tmp_path, kills=1)  # before hostd watched: history
    watcher = OomWatcher()
    watcher.watch("alice", directory)
    assert watcher.killed == {}
    with caplog.at_level(logging.WARNING, logger=usage.__name__):
        shutil.copyfile(SAMPLES / "memory.events-v2-after-oom.txt", directory / "memory.events")
        await settle(watcher, "alice", 1)
    assert watcher.killed == {"alice": 1}  # 2 now, 1 before
    assert "kernel killed 1 process(es) in alice's session: out of memory" in caplog.text
    # A change that is not a kill, and the reaper's periodic look, count nothing more.
    (directory / "memory.events").write_text(EVENTS.format(2).replace("max 0", "max 9"))
    watcher.watch("alice", directory)
    await asyncio.sleep(0.05)
    assert watcher.killed == {"alice": 1}
    watcher.close()


async def test_the_periodic_look_catches_a_missed_event(tmp_path: Path) -> None:
    directory = v2_session(tmp_path)
    watcher = OomWatcher()
    watcher.watch("alice", directory)
    # As if the event were lost: write through another name the watch does not see.
    (directory / "memory.events.new").write_text(EVENTS.format(3))
    (directory / "memory.events.new").replace(directory / "memory.events")
    watcher.watch("alice", directory)
    assert watcher.killed == {"alice": 3}
    # The cgroup goes: nothing read, nothing lost.
    shutil.rmtree(directory)
    await asyncio.sleep(0.05)
    watcher.watch("alice", directory)
    assert watcher.killed == {"alice": 3}
    watcher.unwatch("alice")
    watcher.unwatch("alice")
    watcher.close()


async def test_unwatchable_and_absent_directories_are_ignored(tmp_path: Path) -> None:
    watcher = OomWatcher()
    watcher.watch("alice", None)
    watcher.watch("bob", tmp_path / "gone")  # neither v1 nor v2 files: nothing to watch
    assert watcher.killed == {}
    watcher.close()


@pytest.mark.parametrize(
    ("seen", "result", "exit_status", "ended"),
    [
        (0, "oom-kill", SIGKILL, True),  # systemd knew (OOMPolicy=stop/kill on v2)
        (1, "signal", SIGKILL, True),  # the main process OOM-killed (continue; v1)
        (0, "signal", SIGKILL, False),  # a kill -9, no OOM seen
        (1, "success", 0, False),  # a kernel died earlier; the session was then stopped
        (1, "exit-code", 1, False),
        (1, "signal", int(signal.SIGTERM), False),
        (1, None, None, True),  # the unit was collected: the OOM kill just seen ended it
        (0, None, None, False),
        (1, None, int(signal.SIGKILL), False),
    ],
)
def test_ended_by_oom(seen: int, result: str | None, exit_status: int | None, ended: bool) -> None:
    watcher = OomWatcher()
    if seen:
        watcher._count("alice", seen)
    assert watcher.ended_by_oom("alice", result, exit_status) is ended
    expected = "oom-kill" if ended else result
    assert watcher.result_of("alice", result, exit_status) == expected


def test_an_old_oom_kill_is_not_the_cause(monkeypatch: pytest.MonkeyPatch) -> None:
    watcher = OomWatcher()
    watcher._count("alice", 1)
    later = usage.time.monotonic() + usage.OOM_CAUSE_WINDOW_S + 1
    monkeypatch.setattr(usage.time, "monotonic", lambda: later)
    assert not watcher.ended_by_oom("alice", "signal", SIGKILL)
    # hostd's own kill on a lowered limit has no time: it always counts.
    watcher.killed["bob"] = 1
    assert watcher.ended_by_oom("bob", "signal", SIGKILL)
    assert watcher.pop_killed("alice") == 1
    assert watcher.pop_killed("alice") == 0


def test_memory_dir_is_the_cgroup_of_the_oom_counter(tmp_path: Path) -> None:
    shutil.copyfile(SAMPLES / "mountinfo-v2.txt", tmp_path / "mountinfo")
    (tmp_path / "sys/fs/cgroup").mkdir(parents=True)
    (tmp_path / "sys/fs/cgroup/cgroup.controllers").write_text("cpu memory pids\n")
    reader = CgroupReader.load(mountinfo_path=tmp_path / "mountinfo", fs_root=tmp_path)
    sampler = UsageSampler(reader)
    assert sampler.memory_dir(UNIT) == tmp_path / f"sys/fs/cgroup{UNIT}"
    assert sampler.memory_dir("") is None
    assert UsageSampler(None).memory_dir(UNIT) is None


async def test_a_kill_whose_cgroup_went_at_once_is_found_in_the_slice(tmp_path: Path) -> None:
    """An OOM-killed main process: systemd removes the cgroup before hostd reads it; the
    slice's memory.events (which counts its whole subtree) still holds the kill."""
    directory = v2_session(tmp_path)
    slice_events = directory.parent / "memory.events"
    slice_events.write_text(EVENTS.format(5))  # kills of sessions long gone
    watcher = OomWatcher()
    watcher.watch("alice", directory)
    slice_events.write_text(EVENTS.format(6))
    shutil.rmtree(directory)
    watcher._changed("alice")  # the change event, processed after the removal
    assert watcher.killed == {"alice": 1}
    assert watcher.ended_by_oom("alice", "signal", SIGKILL)
    watcher._changed("alice")  # nothing new in the slice: nothing more
    watcher._changed("bob")  # not watched
    assert watcher.killed == {"alice": 1}
    watcher.close()


async def test_a_kill_between_the_sessions_reading_and_the_slices_is_not_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """memory.events changes at "oom" before "oom_kill" counts: the change event's reading of
    the session can come just before the kill, and systemd removes the cgroup before the next.
    The kill, landing between the session's reading and the slice's, must not be taken as
    explained by that reading (it was, when the slice was read second)."""
    directory = v2_session(tmp_path)
    slice_events = directory.parent / "memory.events"
    slice_events.write_text(EVENTS.format(0))
    watcher = OomWatcher()
    watcher.watch("alice", directory)
    read = OomWatcher._read_oom_kills

    def kernel_kills_right_after_the_sessions_reading(events: Path) -> int | None:
        count = read(events)
        if events.parent == directory and slice_events.read_text() == EVENTS.format(0):
            slice_events.write_text(EVENTS.format(1))  # the kill lands here
        return count

    monkeypatch.setattr(
        OomWatcher, "_read_oom_kills", staticmethod(kernel_kills_right_after_the_sessions_reading)
    )
    watcher._changed("alice")  # the "oom" change: the session's count still 0
    shutil.rmtree(directory)  # the main process died: systemd removed the cgroup
    watcher._changed("alice")  # the "oom_kill" change, processed after the removal
    assert watcher.killed == {"alice": 1}
    assert watcher.ended_by_oom("alice", "signal", SIGKILL)
    watcher.close()


async def test_kills_read_in_the_session_are_not_counted_again_from_the_slice(
    tmp_path: Path,
) -> None:
    directory = v2_session(tmp_path)
    slice_events = directory.parent / "memory.events"
    slice_events.write_text(EVENTS.format(0))
    watcher = OomWatcher()
    watcher.watch("alice", directory)
    (directory / "memory.events").write_text(EVENTS.format(1))
    slice_events.write_text(EVENTS.format(1))
    watcher._changed("alice")
    assert watcher.killed == {"alice": 1}
    shutil.rmtree(directory)  # then the session ends by a stop
    watcher._changed("alice")
    assert watcher.killed == {"alice": 1}
    assert not watcher.ended_by_oom("alice", "success", 0)
    watcher.close()


def test_cpu_percent_is_taken_over_half_a_second_at_least(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seen in CI: a usage request read the session a few milliseconds after the reaper did,
    inside a CFS period in which CPUQuota=50% held the busy session back, and said 0 %."""
    shutil.copyfile(SAMPLES / "mountinfo-v2.txt", tmp_path / "mountinfo")
    (tmp_path / "sys/fs/cgroup").mkdir(parents=True)
    (tmp_path / "sys/fs/cgroup/cgroup.controllers").write_text("cpu memory pids\n")
    directory = v2_session(tmp_path)
    sampler = UsageSampler(
        CgroupReader.load(mountinfo_path=tmp_path / "mountinfo", fs_root=tmp_path)
    )
    clock = [1000.0]
    monkeypatch.setattr(usage.time, "monotonic", lambda: clock[0])

    def read_at(t: float, cpu_s: float) -> float | None:
        clock[0] = 1000.0 + t
        (directory / "cpu.stat").write_text(f"usage_usec {int(cpu_s * 1e6)}\n")
        assert sampler.read("alice", UNIT) is not None
        return sampler.recent_cpu_percent("alice")

    assert read_at(0.0, 0.0) is None  # one reading: no CPU % yet
    assert read_at(0.01, 0.0) is None  # too soon to say
    assert read_at(2.0, 1.0) == pytest.approx(50.0)  # the reaper, 2 s on: half a core
    assert read_at(2.003, 1.0) == pytest.approx(1.0 / 2.003 * 100)  # not 0 %: over 2.003 s
    assert read_at(2.6, 1.3) == pytest.approx(0.3 / 0.597 * 100)  # since the one at 2.003
    clock[0] = 1000.0 + 2.6 + usage.FRESH_S + 1
    assert sampler.recent_cpu_percent("alice") is None  # too old to say what "recent" is
