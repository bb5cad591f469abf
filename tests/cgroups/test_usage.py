"""Usage from the texts of a unit's cgroup files, and CPU percent between two samples."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from hostd.cgroups.usage import (
    OOM_FILES,
    V1_FILES,
    V2_FILES,
    CgroupVersion,
    CpuSample,
    Usage,
    cpu_percent,
    oom_kills_from,
    usage_from_v1,
    usage_from_v2,
)

# A unit on v2 (Debian 12 form, Linux 6.1): MemoryMax=2G, CPUQuota=50%, one OOM kill.
V2_TEXTS = {
    "memory.current": "157286400\n",
    "memory.peak": "209715200\n",
    "memory.max": "2147483648\n",
    "memory.events": "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n",
    "cpu.stat": (
        "usage_usec 8123456\nuser_usec 7000000\nsystem_usec 1123456\n"
        "core_sched.force_idle_usec 0\nnr_periods 200\nnr_throttled 17\n"
        "throttled_usec 950000\nnr_bursts 0\nburst_usec 0\n"
    ),
    "pids.current": "9\n",
}

# A unit on v1 (this machine kind): texts in the shape captured here, limit unset.
V1_TEXTS = {
    "memory.usage_in_bytes": "3203072\n",
    "memory.max_usage_in_bytes": "4591616\n",
    "memory.limit_in_bytes": "9223372036854771712\n",
    "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
    "cpuacct.usage": "91503846348\n",
    "cpu.stat": (
        "nr_periods 10\nnr_throttled 3\nthrottled_time 123456789\nnr_bursts 0\nburst_time 0\n"
    ),
    "pids.current": "4\n",
}


def test_usage_from_v2() -> None:
    assert usage_from_v2(V2_TEXTS) == Usage(
        version="v2",
        memory_bytes=157286400,
        memory_peak_bytes=209715200,
        memory_limit_bytes=2147483648,
        cpu_usage_ns=8123456000,
        cpu_throttled_ns=950000000,
        tasks=9,
        oom_kills=1,
    )


def test_usage_from_v2_unlimited_and_without_cpu_controller() -> None:
    texts = dict(V2_TEXTS, **{"memory.max": "max\n", "cpu.stat": "usage_usec 5\n"})
    usage = usage_from_v2(texts)
    assert usage.memory_limit_bytes is None
    assert usage.cpu_usage_ns == 5000
    assert usage.cpu_throttled_ns is None


def test_usage_from_v2_old_kernel_without_memory_peak() -> None:
    texts = {name: text for name, text in V2_TEXTS.items() if name != "memory.peak"}
    usage = usage_from_v2(texts)
    assert usage.memory_peak_bytes is None
    assert usage.memory_bytes == 157286400


def test_usage_from_v1() -> None:
    assert usage_from_v1(V1_TEXTS) == Usage(
        version="v1",
        memory_bytes=3203072,
        memory_peak_bytes=4591616,
        memory_limit_bytes=None,
        cpu_usage_ns=91503846348,
        cpu_throttled_ns=123456789,
        tasks=4,
        oom_kills=2,
    )


def test_usage_from_v1_with_a_limit_and_an_old_kernel_oom_control() -> None:
    # Before Linux 4.13 memory.oom_control had no oom_kill line.
    texts = dict(
        V1_TEXTS,
        **{
            "memory.limit_in_bytes": "62914560\n",
            "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\n",
        },
    )
    usage = usage_from_v1(texts)
    assert usage.memory_limit_bytes == 62914560
    assert usage.oom_kills is None


@pytest.mark.parametrize("build", [usage_from_v1, usage_from_v2])
def test_no_files_give_no_readings(build: Callable[[Mapping[str, str]], Usage]) -> None:
    usage = build({})
    assert [value for name, value in vars(usage).items() if name != "version"] == [None] * 7


def test_file_tables_cover_every_file_the_builders_read() -> None:
    # V1_FILES/V2_FILES tell the reader what to read: each file must change the result.
    assert set(V2_FILES) == set(V2_TEXTS)
    assert set(V1_FILES) == set(V1_TEXTS)
    for name in V2_FILES:
        assert usage_from_v2({k: v for k, v in V2_TEXTS.items() if k != name}) != usage_from_v2(
            V2_TEXTS
        )
    for name in V1_FILES:
        without = {k: v for k, v in V1_TEXTS.items() if k != name}
        if name == "memory.limit_in_bytes":
            without[name] = "62914560\n"  # the sample's limit is unset: None either way
        assert usage_from_v1(without) != usage_from_v1(V1_TEXTS)


def test_v1_files_name_their_controllers() -> None:
    assert V1_FILES["cpuacct.usage"] == "cpuacct"
    assert V1_FILES["cpu.stat"] == "cpu"
    assert {V1_FILES[name] for name in V1_FILES if name.startswith("memory.")} == {"memory"}


def test_usage_is_frozen() -> None:
    usage = usage_from_v1(V1_TEXTS)
    with pytest.raises(AttributeError):
        usage.tasks = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("earlier", "later", "expected"),
    [
        (CpuSample(10.0, 0), CpuSample(12.0, 2_000_000_000), 100.0),  # one core busy
        (CpuSample(10.0, 0), CpuSample(11.0, 2_000_000_000), 200.0),  # two cores busy
        (CpuSample(10.0, 5), CpuSample(14.0, 5), 0.0),  # idle
        (CpuSample(10.0, 0), CpuSample(10.5, 100_000_000), 20.0),  # CPUQuota=20%
    ],
)
def test_cpu_percent(earlier: CpuSample, later: CpuSample, expected: float) -> None:
    assert cpu_percent(earlier, later) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        (CpuSample(10.0, None), CpuSample(12.0, 5)),  # first reading missing
        (CpuSample(10.0, 5), CpuSample(12.0, None)),  # second reading missing
        (CpuSample(10.0, 5), CpuSample(10.0, 9)),  # no time passed
        (CpuSample(12.0, 5), CpuSample(10.0, 9)),  # samples swapped
        (CpuSample(10.0, 9_000), CpuSample(12.0, 5)),  # counter reset: new cgroup
    ],
)
def test_cpu_percent_none(earlier: CpuSample, later: CpuSample) -> None:
    assert cpu_percent(earlier, later) is None


def test_cpu_ns_from_proc_stats() -> None:
    from hostd.cgroups.usage import cpu_ns_from_proc_stats

    odd_comm = "9 (we ird) comm)) S 1 9 9 0 -1 0 0 0 0 0 100 0 0 0 20 0 1 0 1 1 1\n"
    assert cpu_ns_from_proc_stats([odd_comm], 100) == 1_000_000_000
    assert cpu_ns_from_proc_stats([odd_comm, odd_comm], 100) == 2_000_000_000
    assert cpu_ns_from_proc_stats([], 100) is None
    assert cpu_ns_from_proc_stats(["1 (x) S 1 2"], 100) is None  # too short
    assert cpu_ns_from_proc_stats(["1 (x) S " + "a " * 20], 100) is None  # not numbers
    assert cpu_ns_from_proc_stats([odd_comm], 0) is None


# -- OOM kills, from sample files -------------------------------------------------------

SAMPLES = Path(__file__).parent / "samples"


@pytest.mark.parametrize(
    ("version", "sample", "kills"),
    [
        ("v2", "memory.events-v2-after-oom.txt", 2),
        ("v1", "memory.oom_control-v1.txt", 3),
        ("v1", "memory.oom_control-v1-before-4.13.txt", None),
    ],
)
def test_oom_kills_from_samples(version: CgroupVersion, sample: str, kills: int | None) -> None:
    text = (SAMPLES / sample).read_text()
    assert oom_kills_from(version, text) == kills
    build = usage_from_v2 if version == "v2" else usage_from_v1
    assert build({OOM_FILES[version]: text}).oom_kills == kills


def test_oom_kills_without_the_file_or_with_garbage() -> None:
    assert oom_kills_from("v2", None) is None
    assert oom_kills_from("v2", "oom_kill lots\n") is None
    assert oom_kills_from("v1", "") is None
