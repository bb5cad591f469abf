"""What sessions use, sampled from their cgroups; out-of-memory kills seen as they happen.

The sampler keeps the last two readings of each running session, so "recent CPU %" is the
share of one core used between them. On cgroup v1 (hybrid, this machine kind) systemd cannot
tell an OOM kill from any SIGKILL (its Result is "signal"), so the OOM watcher registers an
eventfd on each session's memory.oom_control (cgroup v1's notification API) and remembers the
sessions the kernel OOM-killed in. On v2 sessions run with OOMPolicy=continue (a kernel over
mem_limit dies alone), so systemd says Result=oom-kill only if told to stop: the watcher
follows memory.events' oom_kill through inotify, to log each kill and to know an OOM-killed
main process (Result=signal) for what it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hostd.cgroups import OOM_FILES, CgroupReader, CpuSample, Usage, cpu_percent, oom_kills_from
from hostd.daemon.history import UsageHistory
from hostd.units.values import UsageView

__all__ = [
    "MIN_CPU_SPAN_S",
    "OomWatcher",
    "Sample",
    "UsageSampler",
]

log = logging.getLogger(__name__)

FRESH_S = 10.0  # an older sample does not say what "recent" CPU use is
# CPU % is taken over at least this long. Readings come from the reaper (every 2 s) and from
# every usage request: two of them a few milliseconds apart can fall inside one CFS period in
# which CPUQuota= has throttled a busy session, and said 0 % (seen in CI); over five 100 ms
# periods or more, a quota of 50 % reads as 40-60 %.
MIN_CPU_SPAN_S = 0.5
# An OOM kill seen this long before a session's main process died of SIGKILL is its cause.
# The v1 event comes before the kill, the v2 one just after; the reaper looks every 2 s.
OOM_CAUSE_WINDOW_S = 30.0
# linux/inotify.h
_IN_MODIFY = 0x00000002
_IN_IGNORED = 0x00008000
_EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then the name)


@dataclass(frozen=True)
class Sample:
    at: float
    usage: Usage


def _next_pair(
    pair: tuple[Sample | None, Sample] | None, new: Sample
) -> tuple[Sample | None, Sample]:
    """The (earlier, later) readings CPU % is taken between, after a new reading: the later
    one is the newest, the earlier one at least MIN_CPU_SPAN_S before it (right after the first
    reading, the first is kept, to pair with the next reading late enough)."""
    if pair is None:
        return None, new
    earlier, later = pair
    if new.at - later.at >= MIN_CPU_SPAN_S:
        return later, new
    if earlier is not None:  # new - earlier >= later - earlier >= MIN_CPU_SPAN_S
        return earlier, new
    return None, later  # too soon after the first reading: wait to pair with it


class UsageSampler:
    """Readings per user; ``load()`` first (it reads mountinfo), then ``read``.

    Every reading also goes into ``history`` (usage over time, bounded: hostd.daemon.history);
    ``forget`` drops both at a session's end.
    """

    def __init__(self, reader: CgroupReader | None, history: UsageHistory | None = None) -> None:
        self.reader = reader
        self.history = UsageHistory() if history is None else history
        self._samples: dict[str, tuple[Sample | None, Sample]] = {}

    @classmethod
    def load(cls) -> UsageSampler:
        try:
            return cls(CgroupReader.load())
        except OSError as exc:  # no /proc, no cgroupfs: usage is simply unknown
            log.warning("cgroup usage unavailable: %s", exc)
            return cls(None)

    def read(
        self, user: str, control_group: str | None, *, cpu_limit: float | None = None
    ) -> Usage | None:
        """Read now and remember the reading (the previous one is kept for CPU %, and the
        history keeps it too, with the CPU limit in force when the caller knows it)."""
        if self.reader is None or not control_group:
            return None
        usage = self.reader.read_usage(control_group)
        if usage is None:
            return None
        self._samples[user] = _next_pair(self._samples.get(user), Sample(time.monotonic(), usage))
        self.history.record(user, usage, cpu_limit=cpu_limit)
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
        self.history.forget(user)

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
        """The directory of the session's OOM counter: its v1 memory cgroup, or its v2 cgroup
        (None without one). OomWatcher tells the two apart by their files."""
        if self.reader is None:
            return None
        oom_file = self.reader.oom_file(control_group)
        return None if oom_file is None else oom_file.parent


class OomWatcher:
    """Which sessions the kernel OOM-killed in, as it happens (cgroup v1 and v2).

    v1: an eventfd on memory.oom_control (the notification API), which fires when the cgroup
    is out of memory, before a victim is picked. v2: inotify(7) on memory.events, which the
    kernel marks modified when its counters change; the oom_kill count is read then, and
    again each time ``watch`` is called for a watched session (the reaper does every few
    seconds), so a missed event costs a delay, not the count.

    ``killed`` counts per user what was seen (hostd's own kill on a lowered limit adds one).
    Under OOMPolicy=continue a kernel that passes the limit dies alone and the session goes
    on: only ``ended_by_oom`` says whether the session itself ended by it.
    """

    def __init__(self) -> None:
        self.killed: dict[str, int] = {}  # user -> OOM kills seen
        self._last_at: dict[str, float] = {}  # user -> monotonic time of the last one
        self._fds: dict[str, tuple[int, int]] = {}  # user -> (eventfd, memory.oom_control fd)
        self._inotify: _Inotify | None = None
        self._events: dict[str, Path] = {}  # user -> its v2 memory.events
        self._counts: dict[str, int] = {}  # user -> oom_kill last read there
        # The parent's (jupyter.slice's) memory.events and its oom_kill last read: see _gone.
        self._parent_counts: dict[Path, int] = {}

    def watch(self, user: str, memory_dir: Path | None) -> None:
        if memory_dir is None:
            return
        if user in self._events:
            self._read_count(user)  # the backstop: a missed event is caught here
            return
        if user in self._fds:
            return
        events = memory_dir / OOM_FILES["v2"]
        if events.exists():
            self._watch_v2(user, events)
            return
        self._watch_v1(user, memory_dir)

    def _watch_v1(self, user: str, memory_dir: Path) -> None:
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
        self._count(user, 1)
        log.warning(
            "out of memory in %s's session: the kernel kills in it",
            user,
            extra={"HOSTD_USER": user},
        )

    def _watch_v2(self, user: str, events: Path) -> None:
        try:
            if self._inotify is None:
                self._inotify = _Inotify(self._changed)
            self._inotify.add(user, events)
        except OSError as exc:
            log.warning("cannot watch %s for OOM kills: %s", events, exc)
            return
        self._events[user] = events
        # Kills before hostd watched (a reattach) are history, not news. The slice first, as in
        # _read_count: a kill between the two readings is then the session's news, not history.
        parent = self._read_parent(events)
        self._counts[user] = self._read_oom_kills(events) or 0
        self._parent_count(events, parent)

    def _changed(self, user: str) -> None:
        if user in self._events:
            self._read_count(user)

    def _read_count(self, user: str) -> None:
        events = self._events[user]
        # The slice's count is read before the session's: a kill that lands between the two
        # readings is then in neither baseline (the session's next reading, or _gone's slice
        # increase, finds it). Read after, it was taken as explained by a session reading that
        # predates it: memory.events changes at "oom" before "oom_kill" counts, so the change
        # event's reading can come just before the kill, and the cgroup was gone by the next
        # (a VM run recorded an OOM-killed session as 'signal').
        parent = self._read_parent(events)
        count = self._read_oom_kills(events)
        if count is None:
            new = self._gone(events, parent)
        else:
            new = count - self._counts.get(user, 0)
            self._counts[user] = count
            self._parent_count(events, parent)  # these kills are explained
        if new <= 0:
            return
        count = self._counts[user] = self._counts.get(user, 0) + new
        self._count(user, new)
        log.warning(
            "kernel killed %d process(es) in %s's session: out of memory (MemoryMax reached); "
            "%d so far",
            new,
            user,
            count,
            extra={"HOSTD_USER": user},
        )

    def _read_parent(self, events: Path) -> int | None:
        """The parent slice's oom_kill: it counts its whole subtree."""
        return self._read_oom_kills(events.parent.parent / events.name)

    def _parent_count(self, events: Path, count: int | None) -> int | None:
        """Remember the parent's oom_kill as read (``count``, by _read_parent); returns the
        increase since the last reading."""
        parent = events.parent.parent / events.name
        if count is None:
            return None
        last = self._parent_counts.get(parent, count)
        self._parent_counts[parent] = count
        return count - last

    def _gone(self, events: Path, parent: int | None) -> int:
        """Kills of a session whose cgroup went before its memory.events could be read.

        An OOM-killed main process ends the unit, and systemd removes the cgroup within
        milliseconds: the change event arrives, the file is gone. The parent slice's count
        still holds the kill; what it gained since it was last read (after every reading of
        a session's, and every few seconds) is this session's.
        """
        return max(self._parent_count(events, parent) or 0, 0)

    @staticmethod
    def _read_oom_kills(events: Path) -> int | None:
        try:
            return oom_kills_from("v2", events.read_text())
        except OSError:
            return None

    def _count(self, user: str, kills: int) -> None:
        self.killed[user] = self.killed.get(user, 0) + kills
        self._last_at[user] = time.monotonic()

    def ended_by_oom(self, user: str, result: str | None, exit_status: int | None) -> bool:
        """Whether a session that ended with this Result and exit status was OOM-killed.

        systemd says so itself ("oom-kill") on v2 under OOMPolicy=stop/kill. Under
        OOMPolicy=continue, and always on v1, an OOM-killed main process ends as
        signal/SIGKILL: it counts when an OOM kill was seen in the session within
        OOM_CAUSE_WINDOW_S (hostd's own kill on a lowered limit has no time and always
        counts). A kernel killed earlier, in a session that then stops, is not its end. A
        unit systemd already collected (result and exit status None) ended by an OOM kill
        seen in that window, as before OOMPolicy=continue.
        """
        if result == "oom-kill":
            return True
        unknown = result is None and exit_status is None
        killed = result == "signal" and exit_status == signal.SIGKILL
        if (unknown or killed) and not self.killed.get(user) and user in self._events:
            # The change event can come after systemd removed the cgroup, or not at all, when
            # the kill ended the main process: read now (the parent slice's count, _gone).
            self._read_count(user)
        if not (unknown or killed) or not self.killed.get(user):
            return False
        seen_at = self._last_at.get(user)
        return seen_at is None or time.monotonic() - seen_at <= OOM_CAUSE_WINDOW_S

    def result_of(self, user: str, result: str | None, exit_status: int | None) -> str | None:
        """systemd's Result, with "oom-kill" where ended_by_oom knows better than "signal"."""
        return "oom-kill" if self.ended_by_oom(user, result, exit_status) else result

    def unwatch(self, user: str) -> None:
        if self._events.pop(user, None) is not None and self._inotify is not None:
            self._inotify.remove(user)
        self._counts.pop(user, None)
        fds = self._fds.pop(user, None)
        if fds is None:
            return
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(fds[0])
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)

    def pop_killed(self, user: str) -> int:
        self._last_at.pop(user, None)
        return self.killed.pop(user, 0)

    def close(self) -> None:
        for user in list(self._fds) + list(self._events):
            self.unwatch(user)
        if self._inotify is not None:
            self._inotify.close()
            self._inotify = None


class _Inotify:
    """inotify(7) through libc (the standard library has no binding): one descriptor on the
    event loop, one watch per session's memory.events; calls ``on_change(user)``."""

    def __init__(self, on_change: Callable[[str], None]) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            raise _os_error(ctypes.get_errno(), "inotify_init1")
        self.fd: int = fd
        self._on_change = on_change
        self._users: dict[int, str] = {}  # watch descriptor -> user
        self._wds: dict[str, int] = {}
        asyncio.get_running_loop().add_reader(fd, self._read)

    def add(self, user: str, path: Path) -> None:
        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(path), _IN_MODIFY)
        if wd < 0:
            raise _os_error(ctypes.get_errno(), str(path))
        self._users[wd] = user
        self._wds[user] = wd

    def remove(self, user: str) -> None:
        wd = self._wds.pop(user, None)
        # A watch whose file went (IN_IGNORED) is the kernel's to drop, and its number may
        # come back for another file.
        if wd is not None and self._users.get(wd) == user:
            del self._users[wd]
            self._libc.inotify_rm_watch(self.fd, wd)

    def _read(self) -> None:
        try:
            data = os.read(self.fd, 64 * 1024)
        except OSError:
            return
        changed: list[str] = []
        offset = 0
        while offset + _EVENT.size <= len(data):
            wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
            offset += _EVENT.size + length
            user = self._users.get(wd)
            if mask & _IN_IGNORED:  # the file went with its cgroup
                self._users.pop(wd, None)
            if user is not None and mask & _IN_MODIFY and user not in changed:
                changed.append(user)
        for user in changed:
            self._on_change(user)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(self.fd)
        with contextlib.suppress(OSError):
            os.close(self.fd)


def _os_error(number: int, what: str) -> OSError:
    return OSError(number, os.strerror(number), what)
