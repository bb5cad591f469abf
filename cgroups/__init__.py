"""hostd.cgroups: usage readings of a systemd unit's cgroup, on cgroup v2 and on v1/hybrid
(the pure ground floor).

Loaded by: the daemon (session usage) and hostctl verify (the host's shape).
As: root there; reading cgroup files needs no privilege.
Never: talk to systemd (callers pass the unit's ControlGroup property), write to a cgroup, or
import anything of the project outside itself.

Layers: `parse` (text of one file), `usage` (texts of a unit's files -> `Usage`) and `mounts`
(mountinfo text -> where the files are) are pure; `reader` is the only module that reads the
filesystem. Host-wide memory is psutil's business, not this package's.
"""

from hostd.cgroups.mounts import CgroupFiles, CgroupMount, CgroupMounts, parse_mountinfo
from hostd.cgroups.parse import parse_flat_keyed, parse_int_file
from hostd.cgroups.reader import CgroupReader, read_usage
from hostd.cgroups.usage import (
    OOM_FILES,
    V1_FILES,
    V2_FILES,
    CgroupVersion,
    CpuSample,
    Usage,
    cpu_ns_from_proc_stats,
    cpu_percent,
    oom_kills_from,
    usage_from_v1,
    usage_from_v2,
)

__all__ = [
    "OOM_FILES",
    "V1_FILES",
    "V2_FILES",
    "CgroupFiles",
    "CgroupMount",
    "CgroupMounts",
    "CgroupReader",
    "CgroupVersion",
    "CpuSample",
    "Usage",
    "cpu_ns_from_proc_stats",
    "cpu_percent",
    "oom_kills_from",
    "parse_flat_keyed",
    "parse_int_file",
    "parse_mountinfo",
    "read_usage",
    "usage_from_v1",
    "usage_from_v2",
]
