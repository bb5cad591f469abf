"""mountinfo parsing and locating a unit's files, on the three layouts seen."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostd.cgroups.mounts import CgroupFiles, CgroupMount, CgroupMounts, parse_mountinfo
from hostd.cgroups.usage import V1_FILES, V2_FILES, CgroupVersion

SAMPLES = Path(__file__).parent / "samples"
UNIT = "/jupyter.slice/jupyter-alice.service"


def sample(name: str) -> CgroupMounts:
    return parse_mountinfo((SAMPLES / f"mountinfo-{name}.txt").read_text())


def line(mount_point: str, fstype: str, super_options: str, *, root: str = "/") -> str:
    return f"40 31 0:37 {root} {mount_point} rw,relatime - {fstype} {fstype} {super_options}"


# -- the three layouts -------------------------------------------------------------------


def test_hybrid_apart_captured_on_this_machine_kind() -> None:
    mounts = sample("hybrid-apart")
    assert mounts.v2 == CgroupMount("/sys/fs/cgroup/unified", "/", frozenset())
    assert mounts.v1_mount_points() == {
        "cpu": "/sys/fs/cgroup/cpu",
        "cpuacct": "/sys/fs/cgroup/cpuacct",
        "cpuset": "/sys/fs/cgroup/cpuset",
        "memory": "/sys/fs/cgroup/memory",
        "devices": "/sys/fs/cgroup/devices",
        "freezer": "/sys/fs/cgroup/freezer",
        "blkio": "/sys/fs/cgroup/blkio",
        "pids": "/sys/fs/cgroup/pids",
        "name=systemd": "/sys/fs/cgroup/systemd",
    }


def test_v1_together_as_on_stock_debian() -> None:
    mounts = sample("v1-together")
    assert mounts.v2 == CgroupMount("/sys/fs/cgroup/unified", "/", frozenset())
    cpu = mounts.v1_mount("cpu")
    assert cpu == CgroupMount("/sys/fs/cgroup/cpu,cpuacct", "/", frozenset({"cpu", "cpuacct"}))
    assert mounts.v1_mount("cpuacct") is cpu
    points = mounts.v1_mount_points()
    assert points["net_prio"] == points["net_cls"] == "/sys/fs/cgroup/net_cls,net_prio"
    assert points["name=systemd"] == "/sys/fs/cgroup/systemd"  # "xattr" is an option
    assert "xattr" not in points
    assert len(mounts.v1) == 11


def test_v2_only() -> None:
    mounts = sample("v2")
    assert mounts == CgroupMounts(v2=CgroupMount("/sys/fs/cgroup", "/", frozenset()), v1=())
    assert mounts.v1_mount("memory") is None
    assert mounts.v1_mount_points() == {}


def test_no_cgroups_mounted() -> None:
    text = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
    assert parse_mountinfo(text) == CgroupMounts(v2=None, v1=())


# -- line format -------------------------------------------------------------------------


def test_controllers_come_from_super_options_not_the_path() -> None:
    mounts = parse_mountinfo(line("/cg/whatever", "cgroup", "rw,nosuid,memory,clone_children"))
    assert mounts.v1_mount_points() == {"memory": "/cg/whatever"}


def test_octal_escapes_are_decoded() -> None:
    text = line(r"/srv/my\040cgroups\011tab\134back\012nl", "cgroup", "rw,pids")
    mount = parse_mountinfo(text).v1_mount("pids")
    assert mount is not None
    assert mount.mount_point == "/srv/my cgroups\ttab\\back\nnl"


def test_root_of_a_partly_mounted_hierarchy_is_reported() -> None:
    text = line("/sys/fs/cgroup", "cgroup2", "rw", root=r"/docker/abc\040d")
    assert parse_mountinfo(text).v2 == CgroupMount("/sys/fs/cgroup", "/docker/abc d", frozenset())


def test_optional_fields_of_any_number() -> None:
    none = "30 21 0:26 / /a rw - cgroup2 cgroup2 rw"
    several = "30 21 0:26 / /b rw shared:9 master:2 propagate_from:1 - cgroup cgroup rw,cpu"
    mounts = parse_mountinfo(f"{none}\n{several}\n")
    assert mounts.v2 is not None
    assert mounts.v2.mount_point == "/a"
    assert mounts.v1_mount_points() == {"cpu": "/b"}


def test_a_source_named_dash_is_not_the_separator() -> None:
    mounts = parse_mountinfo("30 21 0:26 / /c rw shared:1 - cgroup - rw,memory")
    assert mounts.v1_mount_points() == {"memory": "/c"}


def test_malformed_lines_are_skipped() -> None:
    text = "\n".join(
        [
            "",
            "garbage",
            "30 21 0:26 / /x rw - cgroup2",  # tail too short
            "30 21 0:26 / /y rw - cgroup2 cgroup2 rw extra",  # tail too long
            "30 - 0:26 / /z rw cgroup2 cgroup2 rw",  # a "-" before field 7 is no separator
            line("/sys/fs/cgroup/memory", "cgroup", "rw,memory"),
        ]
    )
    assert parse_mountinfo(text) == CgroupMounts(
        v2=None, v1=(CgroupMount("/sys/fs/cgroup/memory", "/", frozenset({"memory"})),)
    )


def test_first_mount_of_a_hierarchy_wins() -> None:
    text = "\n".join(
        [
            line("/first2", "cgroup2", "rw"),
            line("/second2", "cgroup2", "rw"),
            line("/first1", "cgroup", "rw,memory"),
            line("/second1", "cgroup", "rw,memory"),
        ]
    )
    mounts = parse_mountinfo(text)
    assert mounts.v2 is not None
    assert mounts.v2.mount_point == "/first2"
    memory = mounts.v1_mount("memory")
    assert memory is not None
    assert memory.mount_point == "/first1"
    assert mounts.v1_mount_points() == {"memory": "/first1"}


# -- choosing v1 or v2 -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layout", "v2_controllers", "expected"),
    [
        ("v2", "cpuset cpu io memory hugetlb pids rdma misc\n", "v2"),
        ("hybrid-apart", "hugetlb\n", "v1"),  # what this machine kind's unified lists
        ("hybrid-apart", "", "v1"),
        ("hybrid-apart", None, "v1"),  # cgroup.controllers could not be read
        ("v1-together", "", "v1"),
        ("hybrid-apart", "memory pids\n", "v2"),  # controllers moved to v2: prefer it
        ("v2", "", "v2"),  # no memory anywhere, but cpu.stat usage_usec still counts
        ("v2", None, "v2"),
    ],
)
def test_choose_version(layout: str, v2_controllers: str | None, expected: str) -> None:
    assert sample(layout).choose_version(v2_controllers) == expected


def test_choose_version_without_cgroups() -> None:
    assert CgroupMounts(v2=None, v1=()).choose_version(None) is None


def test_choose_version_legacy_without_cgroup2() -> None:
    assert parse_mountinfo(line("/m", "cgroup", "rw,memory")).choose_version(None) == "v1"


def test_choose_version_ignores_v1_hierarchies_usage_does_not_read() -> None:
    mounts = parse_mountinfo(line("/s", "cgroup", "rw,xattr,name=systemd"))
    assert mounts.choose_version(None) is None


# -- files_for ---------------------------------------------------------------------------


def test_files_for_v2() -> None:
    files = sample("v2").files_for(UNIT, "v2")
    directory = "/sys/fs/cgroup/jupyter.slice/jupyter-alice.service"
    assert files == CgroupFiles(
        version="v2",
        files=tuple((name, f"{directory}/{name}") for name in V2_FILES),
        directories=(directory,),
    )


def test_files_for_hybrid_apart() -> None:
    files = sample("hybrid-apart").files_for(UNIT, "v1")
    assert files.version == "v1"
    located = dict(files.files)
    assert located.keys() == V1_FILES.keys()
    assert located["cpuacct.usage"] == f"/sys/fs/cgroup/cpuacct{UNIT}/cpuacct.usage"
    assert located["cpu.stat"] == f"/sys/fs/cgroup/cpu{UNIT}/cpu.stat"
    assert located["memory.oom_control"] == f"/sys/fs/cgroup/memory{UNIT}/memory.oom_control"
    assert located["pids.current"] == f"/sys/fs/cgroup/pids{UNIT}/pids.current"
    assert files.directories == tuple(
        f"/sys/fs/cgroup/{controller}{UNIT}" for controller in ("memory", "cpuacct", "cpu", "pids")
    )


def test_files_for_v1_together() -> None:
    files = sample("v1-together").files_for(UNIT, "v1")
    located = dict(files.files)
    assert located["cpuacct.usage"] == f"/sys/fs/cgroup/cpu,cpuacct{UNIT}/cpuacct.usage"
    assert located["cpu.stat"] == f"/sys/fs/cgroup/cpu,cpuacct{UNIT}/cpu.stat"
    assert files.directories == (
        f"/sys/fs/cgroup/memory{UNIT}",
        f"/sys/fs/cgroup/cpu,cpuacct{UNIT}",
        f"/sys/fs/cgroup/pids{UNIT}",
    )


def test_files_for_leaves_out_unmounted_controllers() -> None:
    mounts = parse_mountinfo(line("/sys/fs/cgroup/memory", "cgroup", "rw,memory"))
    files = mounts.files_for(UNIT, "v1")
    assert [name for name, _ in files.files] == [
        name for name, controller in V1_FILES.items() if controller == "memory"
    ]
    assert files.directories == (f"/sys/fs/cgroup/memory{UNIT}",)


def test_files_for_v2_without_a_v2_mount() -> None:
    assert sample("v1-together").files_for(UNIT, "v2").files != ()
    no_v2 = CgroupMounts(v2=None, v1=())
    assert no_v2.files_for(UNIT, "v2") == CgroupFiles(version="v2", files=(), directories=())


@pytest.mark.parametrize(
    "control_group",
    [
        "",  # systemd's ControlGroup of a unit that is not running
        "jupyter.slice/jupyter-alice.service",
        "/jupyter.slice/../../etc",
        "/jupyter.slice/./x",
        "/..",
        "/bad\0name",
    ],
)
def test_files_for_refuses_unsafe_control_groups(control_group: str) -> None:
    layouts: list[tuple[str, CgroupVersion]] = [("v2", "v2"), ("hybrid-apart", "v1")]
    for layout, version in layouts:
        files = sample(layout).files_for(control_group, version)
        assert files.files == ()
        assert files.directories == ()


# -- path_of and the mount's root --------------------------------------------------------


# Only /docker/abc of the hierarchy is mounted at /sys/fs/cgroup.
PART = CgroupMount("/sys/fs/cgroup", "/docker/abc", frozenset())


@pytest.mark.parametrize(
    ("mount", "control_group", "expected"),
    [
        (CgroupMount("/sys/fs/cgroup", "/", frozenset()), "/", "/sys/fs/cgroup"),
        (CgroupMount("/sys/fs/cgroup", "/", frozenset()), "/a/b/", "/sys/fs/cgroup/a/b"),
        (CgroupMount("/", "/", frozenset()), "/", "/"),
        (CgroupMount("/", "/", frozenset()), "/a", "/a"),
        (PART, "/docker/abc", "/sys/fs/cgroup"),
        (PART, "/docker/abc/jupyter.slice", "/sys/fs/cgroup/jupyter.slice"),
        (PART, "/docker/abcd", None),
        (PART, "/jupyter.slice", None),
    ],
)
def test_path_of(mount: CgroupMount, control_group: str, expected: str | None) -> None:
    assert mount.path_of(control_group) == expected


def test_mounts_are_frozen_and_hashable() -> None:
    mounts = sample("hybrid-apart")
    assert hash(mounts) == hash(sample("hybrid-apart"))
    with pytest.raises(AttributeError):
        mounts.v2 = None  # type: ignore[misc]
