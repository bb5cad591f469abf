"""The reader on file trees built under tmp_path, and once on this machine's real cgroups."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest

from hostd import cgroups
from hostd.cgroups.reader import CgroupReader, read_usage
from hostd.cgroups.usage import Usage

SAMPLES = Path(__file__).parent / "samples"
UNIT = "/jupyter.slice/jupyter-alice.service"
ALL_NONE = {
    "memory_bytes": None,
    "memory_peak_bytes": None,
    "memory_limit_bytes": None,
    "cpu_usage_ns": None,
    "cpu_throttled_ns": None,
    "tasks": None,
    "oom_kills": None,
}

V1_MEMORY = {
    "memory.usage_in_bytes": "3203072\n",
    "memory.max_usage_in_bytes": "4591616\n",
    "memory.limit_in_bytes": "62914560\n",
    "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
}
V1_CPUACCT = {"cpuacct.usage": "91503846348\n"}
V1_CPU = {"cpu.stat": "nr_periods 4\nnr_throttled 2\nthrottled_time 5000\n"}
PIDS = {"pids.current": "3\n"}
V2_UNIT = {
    "memory.current": "157286400\n",
    "memory.max": "max\n",
    "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
    "cpu.stat": "usage_usec 1000\nuser_usec 600\nsystem_usec 400\nthrottled_usec 7\n",
    "pids.current": "2\n",
}


def write_files(directory: Path, files: Mapping[str, str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)


def machine(tmp_path: Path, layout: str) -> Path:
    """tmp_path as a machine's root with the sample mountinfo of `layout`; returns its path."""
    mountinfo = tmp_path / "mountinfo"
    shutil.copyfile(SAMPLES / f"mountinfo-{layout}.txt", mountinfo)
    return mountinfo


def hybrid(tmp_path: Path, *, v1_root: str = "sys/fs/cgroup") -> CgroupReader:
    """This machine kind's layout, with the unit's cgroup in every hierarchy systemd uses."""
    mountinfo = machine(tmp_path, "hybrid-apart")
    write_files(tmp_path / "sys/fs/cgroup/unified", {"cgroup.controllers": "hugetlb\n"})
    write_files(tmp_path / f"{v1_root}/memory{UNIT}", V1_MEMORY)
    write_files(tmp_path / f"{v1_root}/cpuacct{UNIT}", V1_CPUACCT)
    write_files(tmp_path / f"{v1_root}/cpu{UNIT}", V1_CPU)
    write_files(tmp_path / f"{v1_root}/pids{UNIT}", PIDS)
    return CgroupReader.load(mountinfo_path=mountinfo, fs_root=tmp_path)


HYBRID_USAGE = Usage(
    version="v1",
    memory_bytes=3203072,
    memory_peak_bytes=4591616,
    memory_limit_bytes=62914560,
    cpu_usage_ns=91503846348,
    cpu_throttled_ns=5000,
    tasks=3,
    oom_kills=1,
)


# -- the three layouts -------------------------------------------------------------------


def test_hybrid_apart_reads_v1(tmp_path: Path) -> None:
    reader = hybrid(tmp_path)
    assert reader.version == "v1"
    assert reader.read_usage(UNIT) == HYBRID_USAGE


def test_v1_together(tmp_path: Path) -> None:
    mountinfo = machine(tmp_path, "v1-together")
    write_files(tmp_path / "sys/fs/cgroup/unified", {"cgroup.controllers": ""})
    write_files(tmp_path / f"sys/fs/cgroup/memory{UNIT}", V1_MEMORY)
    write_files(tmp_path / f"sys/fs/cgroup/cpu,cpuacct{UNIT}", {**V1_CPU, **V1_CPUACCT})
    write_files(tmp_path / f"sys/fs/cgroup/pids{UNIT}", PIDS)
    assert read_usage(UNIT, mountinfo_path=mountinfo, fs_root=tmp_path) == HYBRID_USAGE


def test_v2_unlimited_and_old_kernel_without_memory_peak(tmp_path: Path) -> None:
    mountinfo = machine(tmp_path, "v2")
    controllers = {"cgroup.controllers": "cpuset cpu io memory hugetlb pids rdma misc\n"}
    write_files(tmp_path / "sys/fs/cgroup", controllers)
    write_files(tmp_path / f"sys/fs/cgroup{UNIT}", V2_UNIT)
    reader = CgroupReader.load(mountinfo_path=mountinfo, fs_root=tmp_path)
    assert reader.version == "v2"
    assert reader.read_usage(UNIT) == Usage(
        version="v2",
        memory_bytes=157286400,
        memory_peak_bytes=None,
        memory_limit_bytes=None,
        cpu_usage_ns=1_000_000,
        cpu_throttled_ns=7000,
        tasks=2,
        oom_kills=0,
    )


def test_v1_unlimited_limit(tmp_path: Path) -> None:
    reader = hybrid(tmp_path)
    limit = tmp_path / f"sys/fs/cgroup/memory{UNIT}/memory.limit_in_bytes"
    limit.write_text("9223372036854771712\n")
    usage = reader.read_usage(UNIT)
    assert usage is not None
    assert usage.memory_limit_bytes is None
    assert usage.memory_bytes == 3203072


# -- vanished and partial cgroups --------------------------------------------------------


def test_vanished_cgroup_is_none(tmp_path: Path) -> None:
    reader = hybrid(tmp_path)
    assert reader.read_usage("/jupyter.slice/jupyter-bob.service") is None
    for controller in ("memory", "cpuacct", "cpu", "pids"):
        shutil.rmtree(tmp_path / f"sys/fs/cgroup/{controller}{UNIT}")
    assert reader.read_usage(UNIT) is None


def test_cgroup_vanishing_while_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reader = hybrid(tmp_path)
    read_bytes = Path.read_bytes

    def read_then_stop_the_unit(path: Path) -> bytes:
        data = read_bytes(path)
        for controller in ("memory", "cpuacct", "cpu", "pids"):
            shutil.rmtree(tmp_path / f"sys/fs/cgroup/{controller}{UNIT}", ignore_errors=True)
        return data

    monkeypatch.setattr(Path, "read_bytes", read_then_stop_the_unit)
    # The first file was read before the stop; the rest are gone (really: ENOENT).
    assert reader.read_usage(UNIT) == Usage(version="v1", **{**ALL_NONE, "memory_bytes": 3203072})


@pytest.mark.parametrize("code", [errno.ENODEV, errno.ESRCH, errno.ENOENT])
def test_vanishing_errors_are_missing_readings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    # ENODEV and ESRCH cannot be produced on a tmp_path tree: stand in for the kernel here.
    reader = hybrid(tmp_path)
    read_bytes = Path.read_bytes

    def failing_for_cpuacct(path: Path) -> bytes:
        if path.name == "cpuacct.usage":
            raise OSError(code, "gone")
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", failing_for_cpuacct)
    usage = reader.read_usage(UNIT)
    assert usage is not None
    assert usage.cpu_usage_ns is None
    assert usage.memory_bytes == 3203072


def test_other_os_errors_propagate(tmp_path: Path) -> None:
    reader = hybrid(tmp_path)
    current = tmp_path / f"sys/fs/cgroup/pids{UNIT}/pids.current"
    current.unlink()
    current.mkdir()  # reading it is EISDIR: a broken tree, not a stopping unit
    with pytest.raises(IsADirectoryError):
        reader.read_usage(UNIT)


def test_cgroup_without_accounting_files_gives_empty_usage(tmp_path: Path) -> None:
    mountinfo = machine(tmp_path, "hybrid-apart")
    (tmp_path / f"sys/fs/cgroup/pids{UNIT}").mkdir(parents=True)
    reader = CgroupReader.load(mountinfo_path=mountinfo, fs_root=tmp_path)
    assert reader.read_usage(UNIT) == Usage(version="v1", **ALL_NONE)


def test_only_memory_accounting_on(tmp_path: Path) -> None:
    # systemd creates a unit's v1 cgroup only in the controllers whose accounting is on.
    mountinfo = machine(tmp_path, "hybrid-apart")
    write_files(tmp_path / f"sys/fs/cgroup/memory{UNIT}", V1_MEMORY)
    usage = read_usage(UNIT, mountinfo_path=mountinfo, fs_root=tmp_path)
    assert usage is not None
    assert usage.memory_limit_bytes == 62914560
    assert (usage.cpu_usage_ns, usage.cpu_throttled_ns, usage.tasks) == (None, None, None)


@pytest.mark.parametrize("control_group", ["", "relative", "/jupyter.slice/../.."])
def test_unsafe_control_group_is_none(tmp_path: Path, control_group: str) -> None:
    assert hybrid(tmp_path).read_usage(control_group) is None


# -- loading -----------------------------------------------------------------------------


def test_unreadable_v2_controllers_fall_back_to_v1(tmp_path: Path) -> None:
    mountinfo = machine(tmp_path, "hybrid-apart")  # no unified/cgroup.controllers written
    assert CgroupReader.load(mountinfo_path=mountinfo, fs_root=tmp_path).version == "v1"


def test_no_cgroups_mounted(tmp_path: Path) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text("27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n")
    reader = CgroupReader.load(mountinfo_path=mountinfo, fs_root=tmp_path)
    assert reader.version is None
    assert reader.read_usage(UNIT) is None


def test_missing_mountinfo_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        CgroupReader.load(mountinfo_path=tmp_path / "nothing", fs_root=tmp_path)


def test_escaped_and_non_utf8_mount_points(tmp_path: Path) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_bytes(
        b"32 31 0:29 / /cg/my\\040memory rw - cgroup cgroup rw,memory\n"
        b"33 31 0:30 / /cg/\xffpids rw - cgroup cgroup rw,pids\n"
    )
    write_files(tmp_path / f"cg/my memory{UNIT}", V1_MEMORY)
    pids = tmp_path / os.fsdecode(b"cg/\xffpids") / UNIT.lstrip("/")
    write_files(pids, PIDS)
    usage = read_usage(UNIT, mountinfo_path=mountinfo, fs_root=tmp_path)
    assert usage is not None
    assert (usage.memory_bytes, usage.tasks) == (3203072, 3)


def test_constructing_does_no_io() -> None:
    # Mounts that exist nowhere: only read_usage touches the filesystem.
    mounts = cgroups.parse_mountinfo("30 21 0:26 / /nowhere/cg rw - cgroup2 cgroup2 rw")
    reader = CgroupReader(mounts=mounts, version="v2")
    assert reader.read_usage(UNIT) is None


def test_package_exports() -> None:
    assert set(cgroups.__all__) == {name for name in dir(cgroups) if not name.startswith("_")} - {
        "mounts",
        "parse",
        "reader",
        "usage",
    }


# -- this machine, for real --------------------------------------------------------------


def own_memory_cgroup(reader: CgroupReader) -> str | None:
    """This process's cgroup in the hierarchy that holds memory, from /proc/self/cgroup."""
    lines = Path("/proc/self/cgroup").read_text().splitlines()
    for entry in lines:
        _, controllers, path = entry.split(":", 2)
        if "memory" in controllers.split(","):  # v1, e.g. "4:memory:/process_api/<hash>"
            return path
    for entry in lines:
        if entry.startswith("0::") and reader.version == "v2":  # v2 with memory enabled
            return entry[3:]
    return None


def test_own_cgroup_on_this_machine() -> None:
    reader = CgroupReader.load()
    control_group = own_memory_cgroup(reader)
    if control_group is None:
        pytest.skip("/proc/self/cgroup names no memory controller (no v1 memory, no v2 one)")
    usage = reader.read_usage(control_group)
    assert usage is not None
    assert usage.memory_bytes is not None
    assert usage.memory_bytes > 0


def test_module_level_read_usage_on_this_machine() -> None:
    control_group = own_memory_cgroup(CgroupReader.load())
    if control_group is None:
        pytest.skip("/proc/self/cgroup names no memory controller (no v1 memory, no v2 one)")
    usage = read_usage(control_group)
    assert usage is not None
    assert usage.memory_bytes is not None
    assert usage.memory_bytes > 0


# -- v1 with cpuacct mounted apart: no cpuacct.usage for the unit ----------------------------

# /proc/PID/stat of a busy python3, as this machine prints it; utime 250, stime 50,
# cutime 7, cstime 3 (fields 14-17).
PROC_STAT = (
    "4242 (python3) R 1 4242 4242 0 -1 4194304 1032 0 0 0 250 50 7 3 20 0 1 0 "
    "123456 20000000 2500 18446744073709551615 1 1 0 0 0 0 0 16781312 2 0 0 0 17 1 0 0\n"
)


def test_hybrid_without_cpuacct_counts_the_cgroups_processes(tmp_path: Path) -> None:
    # systemd 252 realises cpuacct only where it is mounted with cpu: here, nowhere.
    mountinfo = machine(tmp_path, "hybrid-apart")
    write_files(
        tmp_path / f"sys/fs/cgroup/memory{UNIT}", {**V1_MEMORY, "cgroup.procs": "4242\n77\n"}
    )
    write_files(tmp_path / f"sys/fs/cgroup/cpu{UNIT}", V1_CPU)
    write_files(tmp_path / "proc/4242", {"stat": PROC_STAT})  # 77 has exited meanwhile
    reader = CgroupReader.load(mountinfo_path=mountinfo, fs_root=tmp_path)
    usage = reader.read_usage(UNIT)
    assert usage is not None
    assert usage.cpu_usage_ns == 310 * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def test_hybrid_without_cpuacct_and_without_procs_has_no_cpu_reading(tmp_path: Path) -> None:
    mountinfo = machine(tmp_path, "hybrid-apart")
    write_files(tmp_path / f"sys/fs/cgroup/cpu{UNIT}", V1_CPU)
    reader = CgroupReader.load(mountinfo_path=mountinfo, fs_root=tmp_path)
    usage = reader.read_usage(UNIT)
    assert usage is not None and usage.cpu_usage_ns is None
    assert reader._cpu_ns_of_processes("relative/path") is None


def test_no_memory_or_pids_hierarchy_means_no_process_fallback(tmp_path: Path) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text("32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n")
    write_files(tmp_path / f"sys/fs/cgroup/cpu{UNIT}", V1_CPU)
    reader = CgroupReader.load(mountinfo_path=mountinfo, fs_root=tmp_path)
    usage = reader.read_usage(UNIT)
    assert usage is not None and usage.cpu_usage_ns is None


# -- the OOM kill counter alone --------------------------------------------------------


def test_read_oom_kills_on_v1_and_v2(tmp_path: Path) -> None:
    (tmp_path / "hybrid").mkdir()
    reader = hybrid(tmp_path / "hybrid")
    assert (
        reader.oom_file(UNIT) == tmp_path / f"hybrid/sys/fs/cgroup/memory{UNIT}/memory.oom_control"
    )
    assert reader.read_oom_kills(UNIT) == 1
    shutil.copyfile(SAMPLES / "memory.oom_control-v1.txt", reader.oom_file(UNIT))  # type: ignore[arg-type]
    assert reader.read_oom_kills(UNIT) == 3
    assert reader.read_oom_kills("/jupyter.slice/jupyter-bob.service") is None  # no cgroup
    assert reader.oom_file("relative") is None
    assert reader.read_oom_kills("relative") is None

    root = tmp_path / "v2"
    root.mkdir()
    mountinfo = machine(root, "v2")
    write_files(root / "sys/fs/cgroup", {"cgroup.controllers": "cpu memory pids\n"})
    write_files(root / f"sys/fs/cgroup{UNIT}", V2_UNIT)
    v2 = CgroupReader.load(mountinfo_path=mountinfo, fs_root=root)
    assert v2.oom_file(UNIT) == root / f"sys/fs/cgroup{UNIT}/memory.events"
    assert v2.read_oom_kills(UNIT) == 0
    shutil.copyfile(
        SAMPLES / "memory.events-v2-after-oom.txt", root / f"sys/fs/cgroup{UNIT}/memory.events"
    )
    assert v2.read_oom_kills(UNIT) == 2


def test_read_oom_kills_without_cgroups(tmp_path: Path) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text("")
    reader = CgroupReader.load(mountinfo_path=mountinfo, fs_root=tmp_path)
    assert reader.version is None
    assert reader.oom_file(UNIT) is None
    assert reader.read_oom_kills(UNIT) is None
