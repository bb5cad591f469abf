"""What sessions use, sampled from their cgroups; out-of-memory kills seen as they happen.

The sampler keeps the last two readings of each running session, so "recent CPU %" is the
share of one core used between them. On cgroup v1 (hybrid, this machine kind) systemd cannot
tell an OOM kill from any SIGKILL (its Result is "signal"), so the OOM watcher registers an
eventfd on each session's memory.oom_control (cgroup v1's notification API) and remembers the
sessions the kernel OOM-killed in; on v2 memory.events carries oom_kill and systemd reports
Result=oom-kill itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from hostd.cgroups import CgroupReader, CpuSample, Usage, cpu_percent
from hostd.units.values import UsageView

log = logging.getLogger(__name__)

FRESH_S = 10.0  # an older sample does not say what "recent" CPU use is


@dataclass(frozen=True)
class Sample:
    at: float
    usage: Usage


class UsageSampler:
    """Readings per user; ``load()`` first (it reads mountinfo), then ``read``."""

    def __init__(self, reader: CgroupReader | None) -> None:
        self.reader = reader
        self._samples: dict[str, tuple[Sample | None, Sample]] = {}

    @classmethod
    def load(cls) -> UsageSampler:
        try:
            return cls(CgroupReader.load())
        except OSError as exc:  # no /proc, no cgroupfs: usage is simply unknown
            log.warning("cgroup usage unavailable: %s", exc)
            return cls(None)

    def read(self, user: str, control_group: str | None) -> Usage | None:
        """Read now and remember the reading (the previous one is kept for CPU %)."""
        if self.reader is None or not control_group:
            return None
        usage = self.reader.read_usage(control_group)
        if usage is None:
            return None
        last = self._samples.get(user)
        self._samples[user] = (last[1] if last else None, Sample(time.monotonic(), usage))
        return usage

    def recent_cpu_percent(self, user: str) -> float | None:
        pair = self._samples.get(user)
        if pair is None:
            return None
        earlier, later = pair
        if earlier is None or time.monotonic() - later.at > FRESH_S:
            return None
        return cpu_percent(
            CpuSample(earlier.at, earlier.usage.cpu_usage_ns),
            CpuSample(later.at, later.usage.cpu_usage_ns),
        )

    def has_fresh_pair(self, user: str) -> bool:
        return self.recent_cpu_percent(user) is not None

    def forget(self, user: str) -> None:
        self._samples.pop(user, None)

    def view(self, user: str, usage: Usage | None, cpu_limit: float | None) -> UsageView:
        if usage is None:
            return UsageView(user=user, cpu_limit=cpu_limit)
        ns = 1e9
        return UsageView(
            user=user,
            memory_bytes=usage.memory_bytes,
            memory_peak_bytes=usage.memory_peak_bytes,
            memory_limit_bytes=usage.memory_limit_bytes,
            cpu_seconds=None if usage.cpu_usage_ns is None else usage.cpu_usage_ns / ns,
            cpu_percent=self.recent_cpu_percent(user),
            cpu_limit=cpu_limit,
            cpu_throttled_seconds=(
                None if usage.cpu_throttled_ns is None else usage.cpu_throttled_ns / ns
            ),
            tasks=usage.tasks,
            oom_kills=usage.oom_kills,
        )

    def memory_dir(self, control_group: str) -> Path | None:
        """The session's v1 memory cgroup directory (None on v2 or without one)."""
        if self.reader is None or self.reader.version != "v1":
            return None
        mount = self.reader.mounts.v1_mount("memory")
        if mount is None:
            return None
        relative = mount.path_of(control_group)
        return None if relative is None else self.reader.fs_root / relative.lstrip("/")


class OomWatcher:
    """cgroup v1 OOM notifications: which sessions the kernel OOM-killed in."""

    def __init__(self) -> None:
        self.killed: dict[str, int] = {}  # user -> OOM kills seen
        self._fds: dict[str, tuple[int, int]] = {}  # user -> (eventfd, memory.oom_control fd)

    def watch(self, user: str, memory_dir: Path | None) -> None:
        if memory_dir is None or user in self._fds:
            return
        try:
            efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        except OSError:
            return
        try:
            ofd = os.open(memory_dir / "memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            os.close(efd)
            return
        try:
            (memory_dir / "cgroup.event_control").write_text(f"{efd} {ofd}")
        except OSError:
            os.close(efd)
            os.close(ofd)
            return
        self._fds[user] = (efd, ofd)
        asyncio.get_running_loop().add_reader(efd, self._fired, user, memory_dir)

    def _fired(self, user: str, memory_dir: Path) -> None:
        fds = self._fds.get(user)
        if fds is None:
            return
        with contextlib.suppress(OSError):
            os.eventfd_read(fds[0])
        try:
            (memory_dir / "memory.oom_control").read_text()
        except OSError:
            # The event also fires when the cgroup is removed: nothing more to watch.
            self.unwatch(user)
            return
        # The kernel notifies when the cgroup hits OOM, before it picks and kills a victim:
        # the oom_kill counter may still read 0 here, so the event itself is what counts.
        self.killed[user] = self.killed.get(user, 0) + 1
        log.warning(
            "out of memory in %s's session: the kernel kills in it",
            user,
            extra={"HOSTD_USER": user},
        )

    def unwatch(self, user: str) -> None:
        fds = self._fds.pop(user, None)
        if fds is None:
            return
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(fds[0])
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)

    def pop_killed(self, user: str) -> int:
        return self.killed.pop(user, 0)

    def close(self) -> None:
        for user in list(self._fds):
            self.unwatch(user)


def established_connections(proc_net_tcp: str, port: int) -> int:
    """ESTABLISHED TCP connections whose local port is ``port``, in /proc/net/tcp{,6} text."""
    count = 0
    for line in proc_net_tcp.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4:
            continue
        _address, _, local_port = fields[1].rpartition(":")
        if fields[3] == "01" and int(local_port, 16) == port:  # 01: TCP_ESTABLISHED
            count += 1
    return count


def open_connections(port: int) -> int:
    total = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            total += established_connections(Path(name).read_text(), port)
    return total
