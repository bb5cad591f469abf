"""A unit's resource usage, built from the text of its cgroup files (pure layer).

Knows which files hold which reading on cgroup v2 and v1 (the table in
shared/SYSTEMD-NOTES.md) and turns their text into a `Usage`. It must not open files or
know where hierarchies are mounted: `mounts` finds the places, `reader` reads them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

from hostd.cgroups.parse import parse_flat_keyed, parse_int_file

__all__ = [
    "OOM_FILES",
    "V1_FILES",
    "V2_FILES",
    "CgroupVersion",
    "CpuSample",
    "Usage",
    "cpu_ns_from_proc_stats",
    "cpu_percent",
    "oom_kills_from",
    "usage_from_v1",
    "usage_from_v2",
]

CgroupVersion = Literal["v1", "v2"]

# Every file usage_from_v2 reads; on v2 they all sit in the unit's one directory.
V2_FILES: Final[tuple[str, ...]] = (
    "memory.current",
    "memory.peak",  # Linux 5.19+; older kernels lack it, so the peak is then unknown
    "memory.max",
    "memory.events",
    "cpu.stat",
    "pids.current",
)

# Every file usage_from_v1 reads, and the v1 controller whose hierarchy holds it: the unit
# has one directory per hierarchy, and `cpu` and `cpuacct` may be mounted apart.
V1_FILES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "memory.usage_in_bytes": "memory",
        "memory.max_usage_in_bytes": "memory",
        "memory.limit_in_bytes": "memory",
        "memory.oom_control": "memory",  # its oom_kill line needs Linux 4.13+
        "cpuacct.usage": "cpuacct",
        "cpu.stat": "cpu",
        "pids.current": "pids",
    }
)

# The one file that counts a cgroup's OOM kills, per version, and the key of its count. On
# v2 memory.events counts the whole subtree (memory.events.local only the cgroup itself)
# and changing it raises a file-modified event (inotify), which hostd/ watches.
OOM_FILES: Final[Mapping[CgroupVersion, str]] = MappingProxyType(
    {"v2": "memory.events", "v1": "memory.oom_control"}
)
_OOM_KILL_KEY = "oom_kill"

_NS_PER_USEC = 1_000
_NS_PER_S = 1_000_000_000


@dataclass(frozen=True, kw_only=True)
class Usage:
    """One reading of a unit's cgroup; None where the file or value was not there.

    Memory in bytes, CPU times in nanoseconds (cumulative since the cgroup was created).
    A None limit means unlimited or unknown; systemd's accounting settings decide which
    files exist, especially on v1.
    """

    version: CgroupVersion
    memory_bytes: int | None
    memory_peak_bytes: int | None
    memory_limit_bytes: int | None
    cpu_usage_ns: int | None
    cpu_throttled_ns: int | None
    tasks: int | None
    oom_kills: int | None


@dataclass(frozen=True)
class CpuSample:
    """Cumulative CPU time of a cgroup at one instant of time.monotonic()."""

    monotonic_s: float
    cpu_usage_ns: int | None


def _int(files: Mapping[str, str], name: str) -> int | None:
    text = files.get(name)
    return None if text is None else parse_int_file(text)


def _keyed(files: Mapping[str, str], name: str, key: str, *, scale: int = 1) -> int | None:
    text = files.get(name)
    if text is None:
        return None
    value = parse_flat_keyed(text).get(key)
    return None if value is None else value * scale


def usage_from_v2(files: Mapping[str, str]) -> Usage:
    """Usage from v2 file texts keyed by file name (see V2_FILES); missing files give None."""
    return Usage(
        version="v2",
        memory_bytes=_int(files, "memory.current"),
        memory_peak_bytes=_int(files, "memory.peak"),
        memory_limit_bytes=_int(files, "memory.max"),
        # usage_usec is in every v2 cgroup; throttled_usec only where the cpu controller is.
        cpu_usage_ns=_keyed(files, "cpu.stat", "usage_usec", scale=_NS_PER_USEC),
        cpu_throttled_ns=_keyed(files, "cpu.stat", "throttled_usec", scale=_NS_PER_USEC),
        tasks=_int(files, "pids.current"),
        oom_kills=oom_kills_from("v2", files.get(OOM_FILES["v2"])),
    )


def usage_from_v1(files: Mapping[str, str]) -> Usage:
    """Usage from v1 file texts keyed by file name (see V1_FILES); missing files give None."""
    return Usage(
        version="v1",
        memory_bytes=_int(files, "memory.usage_in_bytes"),
        memory_peak_bytes=_int(files, "memory.max_usage_in_bytes"),
        # Unset reads as a huge number, which parse_int_file turns into None.
        memory_limit_bytes=_int(files, "memory.limit_in_bytes"),
        cpu_usage_ns=_int(files, "cpuacct.usage"),
        cpu_throttled_ns=_keyed(files, "cpu.stat", "throttled_time"),
        tasks=_int(files, "pids.current"),
        # systemd 252 cannot report oom-kill on v1 (the unit ends as signal/KILL): this
        # counter is what tells an OOM kill apart there.
        oom_kills=oom_kills_from("v1", files.get(OOM_FILES["v1"])),
    )


def oom_kills_from(version: CgroupVersion, text: str | None) -> int | None:
    """Processes the kernel OOM-killed in the cgroup, from the text of OOM_FILES[version].

    None without the file, or on v1 before Linux 4.13 (memory.oom_control had no oom_kill
    line then: only the notification tells an OOM there).
    """
    if text is None:
        return None
    return parse_flat_keyed(text).get(_OOM_KILL_KEY)


def cpu_ns_from_proc_stats(stats: Iterable[str], clock_ticks: int) -> int | None:
    """CPU time of processes, from their /proc/PID/stat texts: utime + stime + cutime + cstime.

    The fallback for v1 where cpuacct is mounted apart from cpu (this machine kind): systemd
    then makes the unit's cgroup in `cpu` only, and cpuacct.usage does not exist. Time of
    processes that ended and were not waited for is lost, so it can go backwards; cpu_percent
    reads that as "no answer". None when no text parses.
    """
    ticks, parsed = 0, False
    for text in stats:
        # comm (field 2) may hold spaces and parentheses: split after its last ")".
        fields = text.rpartition(")")[2].split()
        try:
            # After comm, fields[0] is field 3 (state); utime..cstime are fields 14..17.
            ticks += sum(int(value) for value in fields[11:15])
        except ValueError:
            continue
        parsed = parsed or len(fields) >= 15
    if not parsed or clock_ticks <= 0:
        return None
    return ticks * _NS_PER_S // clock_ticks


def cpu_percent(earlier: CpuSample, later: CpuSample) -> float | None:
    """CPU use between two samples, in percent of ONE core (200.0 = two cores busy).

    None when a reading is missing, when no time passed, or when the counter went
    backwards (the unit restarted and its cgroup was created anew).
    """
    if earlier.cpu_usage_ns is None or later.cpu_usage_ns is None:
        return None
    elapsed_s = later.monotonic_s - earlier.monotonic_s
    if elapsed_s <= 0:
        return None
    used_ns = later.cpu_usage_ns - earlier.cpu_usage_ns
    if used_ns < 0:
        return None
    return used_ns / (elapsed_s * _NS_PER_S) * 100.0
