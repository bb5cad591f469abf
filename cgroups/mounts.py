"""Where the cgroup hierarchies are mounted, from the text of /proc/self/mountinfo (pure layer).

Parses mountinfo text it is given and maps a unit's ControlGroup to the files of its
readings. It must not open files: whether cgroup v2 holds the memory controller is in the
file cgroup.controllers, which `reader` reads and passes to `CgroupMounts.choose_version`.

Layouts seen: pure v2 (cgroup2 at /sys/fs/cgroup); hybrid with `cpu` and `cpuacct` mounted
apart and a controller-less cgroup2 at /sys/fs/cgroup/unified (this project's machines);
stock Debian v1 with `cpu,cpuacct` mounted together. proc(5) documents the line format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hostd.cgroups.usage import V1_FILES, V2_FILES, CgroupVersion

__all__ = ["CgroupFiles", "CgroupMount", "CgroupMounts", "parse_mountinfo"]

# The v1 controllers a kernel can have (cgroups(7)); named hierarchies such as name=systemd
# are kept too. Anything else in the super options is a mount option (rw, xattr, ...).
_V1_CONTROLLERS = frozenset(
    {
        "blkio",
        "cpu",
        "cpuacct",
        "cpuset",
        "devices",
        "freezer",
        "hugetlb",
        "memory",
        "misc",
        "net_cls",
        "net_prio",
        "perf_event",
        "pids",
        "rdma",
    }
)

# mountinfo escapes space, tab, newline and backslash in paths as three octal digits.
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class CgroupMount:
    """One mounted hierarchy.

    `root` is the cgroup of the hierarchy that appears at `mount_point`: "/" normally, but a
    sub-cgroup when only part of the tree is mounted (a container without a cgroup
    namespace). `controllers` are v1's, from the super options; empty for cgroup2, whose
    controllers are in cgroup.controllers instead.
    """

    mount_point: str
    root: str
    controllers: frozenset[str]

    def path_of(self, control_group: str) -> str | None:
        """The directory of `control_group` under this mount, or None if it is not in it.

        Refuses a ControlGroup that is empty (systemd's value for a stopped unit), relative,
        or has "." or ".." parts: a root daemon must not be steered outside the mount.
        """
        if not control_group.startswith("/") or "\0" in control_group:
            return None
        if any(part in {".", ".."} for part in control_group.split("/")):
            return None
        relative = _relative_to(control_group, self.root)
        if relative is None:
            return None
        # A mount at "/" (seen only in tests and odd containers) must not become "".
        return (self.mount_point.rstrip("/") + relative) or "/"


@dataclass(frozen=True)
class CgroupFiles:
    """Where the readings of one unit's cgroup are, for one cgroup version.

    `files` pairs each file name (a key of usage_from_v1/usage_from_v2's input) with its
    path; `directories` are the unit's cgroup directories those paths are in.
    """

    version: CgroupVersion
    files: tuple[tuple[str, str], ...]
    directories: tuple[str, ...]


@dataclass(frozen=True)
class CgroupMounts:
    """The cgroup2 mount (or None) and the v1 hierarchies of one mount namespace."""

    v2: CgroupMount | None
    v1: tuple[CgroupMount, ...]

    def v1_mount(self, controller: str) -> CgroupMount | None:
        """The v1 hierarchy holding `controller` (e.g. "cpuacct", "name=systemd")."""
        for mount in self.v1:
            if controller in mount.controllers:
                return mount
        return None

    def v1_mount_points(self) -> dict[str, str]:
        """Each v1 controller and where its hierarchy is mounted."""
        return {
            controller: mount.mount_point
            for mount in reversed(self.v1)  # so that the first mount wins, as in v1_mount
            for controller in mount.controllers
        }

    def choose_version(self, v2_controllers: str | None) -> CgroupVersion | None:
        """Which hierarchy to read usage from, given the text of the v2 cgroup.controllers.

        v2 when it holds the memory controller. On hybrid machines cgroup2 exists but the
        resource controllers are bound to v1 (this machine's lists only hugetlb), so v1 is
        read when any v1 hierarchy holds a controller that usage comes from. A v2 without
        memory and without such v1 hierarchies still counts CPU time (cpu.stat usage_usec
        is in every v2 cgroup). None when no cgroup hierarchy is mounted at all.
        """
        if self.v2 is not None and "memory" in (v2_controllers or "").split():
            return "v2"
        if any(self.v1_mount(controller) for controller in set(V1_FILES.values())):
            return "v1"
        if self.v2 is not None:
            return "v2"
        return None

    def files_for(self, control_group: str, version: CgroupVersion) -> CgroupFiles:
        """Where each reading of `control_group` (systemd's ControlGroup property) lives.

        Files whose hierarchy is not mounted, or does not contain the cgroup, are left out;
        so is everything when `control_group` is not a safe absolute path.
        """
        located: list[tuple[str, str]] = []
        if version == "v2":
            directory = None if self.v2 is None else self.v2.path_of(control_group)
            if directory is not None:
                located = [(name, _join(directory, name)) for name in V2_FILES]
        else:
            for name, controller in V1_FILES.items():
                mount = self.v1_mount(controller)
                directory = None if mount is None else mount.path_of(control_group)
                if directory is not None:
                    located.append((name, _join(directory, name)))
        directories = tuple(dict.fromkeys(path.rpartition("/")[0] for _, path in located))
        return CgroupFiles(version=version, files=tuple(located), directories=directories)


def parse_mountinfo(text: str) -> CgroupMounts:
    """The cgroup mounts listed in the text of /proc/<pid>/mountinfo.

    A hierarchy mounted twice (a bind mount) shows the same files at both places, so only
    the first cgroup2 mount is kept and `CgroupMounts.v1_mount` returns the first v1 mount
    of a controller. Lines that do not have the mountinfo shape are
    skipped rather than failing the daemon.
    """
    v2: CgroupMount | None = None
    v1: list[CgroupMount] = []
    for line in text.splitlines():
        fields = line.split(" ")
        # Fields: id, parent, major:minor, root, mount point, options, then zero or more
        # optional fields ("shared:5") up to a lone "-", then fstype, source, super options.
        try:
            separator = fields.index("-", 6)
        except ValueError:
            continue
        tail = fields[separator + 1 :]
        if len(tail) != 3:
            continue
        fstype, _source, super_options = tail
        root, mount_point = _unescape(fields[3]), _unescape(fields[4])
        if fstype == "cgroup2" and v2 is None:
            v2 = CgroupMount(mount_point=mount_point, root=root, controllers=frozenset())
        elif fstype == "cgroup":
            controllers = frozenset(
                option
                for option in super_options.split(",")
                if option in _V1_CONTROLLERS or option.startswith("name=")
            )
            v1.append(CgroupMount(mount_point=mount_point, root=root, controllers=controllers))
    return CgroupMounts(v2=v2, v1=tuple(v1))


def _unescape(field: str) -> str:
    return _OCTAL_ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), field)


def _relative_to(control_group: str, root: str) -> str | None:
    """`control_group` relative to a mount's root, with a leading "/" (or "" for the root)."""
    if root == "/":
        return "" if control_group == "/" else control_group.rstrip("/")
    if control_group == root:
        return ""
    if control_group.startswith(root + "/"):
        return control_group[len(root) :].rstrip("/")
    return None


def _join(directory: str, name: str) -> str:
    return directory.rstrip("/") + "/" + name
