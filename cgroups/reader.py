"""Reads a unit's cgroup files: the only I/O of the cgroups package.

`CgroupReader.load()` finds the hierarchies once (mountinfo and the v2 cgroup.controllers);
`read_usage()` then reads only the few files of one unit, so it can run for every session
every few seconds. It must not parse (that is `mounts`, `parse` and `usage`), and it must
not raise when a unit's cgroup vanishes while it is read (a session stopping): the kernel
then answers ENOENT, ESRCH or ENODEV, which become missing readings. Any other OSError is a
broken setup and propagates.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, replace
from pathlib import Path

from hostd.cgroups.mounts import CgroupMounts, parse_mountinfo
from hostd.cgroups.usage import (
    OOM_FILES,
    CgroupVersion,
    Usage,
    cpu_ns_from_proc_stats,
    oom_kills_from,
    usage_from_v1,
    usage_from_v2,
)

__all__ = ["DEFAULT_FS_ROOT", "DEFAULT_MOUNTINFO", "CgroupReader", "read_usage"]

DEFAULT_MOUNTINFO = "/proc/self/mountinfo"
# Prefixed to every mount point; tests point it at a tree they build.
DEFAULT_FS_ROOT = "/"

# Removing a cgroup while it is read: its files go (ENOENT), and a file opened just before
# the removal can fail with ENODEV. ESRCH (ProcessLookupError) means the same thing here:
# what the file described is already gone.
_VANISHED = frozenset({errno.ENOENT, errno.ESRCH, errno.ENODEV})
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CgroupReader:
    """The mounts found once, and the version usage is read from (None: no cgroups)."""

    mounts: CgroupMounts
    version: CgroupVersion | None
    fs_root: Path = Path(DEFAULT_FS_ROOT)

    @classmethod
    def load(
        cls,
        *,
        mountinfo_path: str | os.PathLike[str] = DEFAULT_MOUNTINFO,
        fs_root: str | os.PathLike[str] = DEFAULT_FS_ROOT,
    ) -> CgroupReader:
        """Read mountinfo and the v2 controllers; a missing mountinfo (no /proc) raises."""
        # fsdecode keeps mount points that are not UTF-8 usable as paths (surrogateescape).
        mounts = parse_mountinfo(os.fsdecode(Path(mountinfo_path).read_bytes()))
        root = Path(fs_root)
        v2_controllers = None
        if mounts.v2 is not None:
            v2_controllers = _read_text(_under(root, mounts.v2.mount_point, "cgroup.controllers"))
        return cls(mounts=mounts, version=mounts.choose_version(v2_controllers), fs_root=root)

    def read_usage(self, control_group: str) -> Usage | None:
        """Usage of `control_group` (systemd's ControlGroup), or None if it exists nowhere."""
        if self.version is None:
            return None
        located = self.mounts.files_for(control_group, self.version)
        texts: dict[str, str] = {}
        for name, path in located.files:
            text = _read_text(_under(self.fs_root, path))
            if text is not None:
                texts[name] = text
        # Only when nothing was read is it worth a stat to tell "gone" from "no accounting".
        if not texts and not any(_under(self.fs_root, d).is_dir() for d in located.directories):
            return None
        if self.version == "v2":
            return usage_from_v2(texts)
        usage = usage_from_v1(texts)
        if usage.cpu_usage_ns is None:
            usage = replace(usage, cpu_usage_ns=self._cpu_ns_of_processes(control_group))
        return usage

    def oom_file(self, control_group: str) -> Path | None:
        """The file that counts `control_group`'s OOM kills (OOM_FILES), whether or not it
        exists yet; None without cgroups or for a ControlGroup outside the mounts."""
        if self.version is None:
            return None
        name = OOM_FILES[self.version]
        path = dict(self.mounts.files_for(control_group, self.version).files).get(name)
        return None if path is None else _under(self.fs_root, path)

    def read_oom_kills(self, control_group: str) -> int | None:
        """OOM kills in `control_group` so far (one small file), or None if not readable."""
        path = self.oom_file(control_group)
        text = None if path is None else _read_text(path)
        return None if self.version is None else oom_kills_from(self.version, text)

    def _cpu_ns_of_processes(self, control_group: str) -> int | None:
        """v1 without cpuacct.usage: the CPU time of the processes in the unit's cgroup."""
        mount = self.mounts.v1_mount("memory") or self.mounts.v1_mount("pids")
        relative = None if mount is None else mount.path_of(control_group)
        if relative is None:
            return None
        procs = _read_text(_under(self.fs_root, relative, "cgroup.procs"))
        if procs is None:
            return None
        stats = (_read_text(_under(self.fs_root, "/proc", pid, "stat")) for pid in procs.split())
        return cpu_ns_from_proc_stats((s for s in stats if s is not None), _CLOCK_TICKS)


def read_usage(
    control_group: str,
    *,
    mountinfo_path: str | os.PathLike[str] = DEFAULT_MOUNTINFO,
    fs_root: str | os.PathLike[str] = DEFAULT_FS_ROOT,
) -> Usage | None:
    """One-off reading; anything that reads repeatedly should keep a `CgroupReader`."""
    reader = CgroupReader.load(mountinfo_path=mountinfo_path, fs_root=fs_root)
    return reader.read_usage(control_group)


def _under(fs_root: Path, path: str, *more: str) -> Path:
    return fs_root.joinpath(path.lstrip("/"), *more)


def _read_text(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except OSError as exc:
        if exc.errno in _VANISHED:
            return None
        raise
    # Cgroup files are ASCII; a stray byte must not make a reading raise.
    return data.decode("ascii", errors="replace")
