"""Usage readings on a real Debian 12 host (cgroup v2): the daemon's figures for memory, CPU and
tasks against what the kernel reports for the unit's cgroup at the same moment. On the hybrid
testbed they come from the v1 controllers (tests/hostd/daemon/systemd/test_capacity.py).
Run in packaging/vm: ``-m real_host tests/hostd/daemon/realhost``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.hostd.daemon.realhost.test_host_safety import MakeDaemon, MakeUser, policy, start
from tests.hostd.daemon.systemd.conftest import PROBE, unit_property

pytestmark = pytest.mark.real_host

MIB = 1024 * 1024
WINDOW_S = 6.0  # TCG is slow and noisy: a long window keeps both CPU figures steady


def cgroup_dir(unit: str) -> Path:
    return Path("/sys/fs/cgroup" + unit_property(unit, "ControlGroup"))


def kernel_cpu_usec(group: Path) -> int:
    stat = dict(line.split() for line in (group / "cpu.stat").read_text().splitlines())
    return int(stat["usage_usec"])


def test_memory_and_tasks_match_the_kernels_cgroup_files(
    daemon: MakeDaemon, make_user: MakeUser
) -> None:
    d = daemon(policy(PROBE, "512M"))
    user = make_user({"hog_mib": 100})
    start(d, user)
    group = cgroup_dir(f"jupyter-{user}.service")
    assert (group / "memory.current").exists(), "not a cgroup v2 host"
    status, usage = d.api("GET", f"/v1/sessions/{user}/usage")
    kernel_memory = int((group / "memory.current").read_text())
    kernel_tasks = int((group / "pids.current").read_text())
    assert status == 200, usage
    assert usage["memory_bytes"] >= 100 * MIB, usage
    # The hog holds still; the rest (Python, page cache) moves a little between the two reads.
    assert abs(usage["memory_bytes"] - kernel_memory) <= 0.1 * kernel_memory, (usage, kernel_memory)
    assert usage["memory_limit_bytes"] == int((group / "memory.max").read_text()) == 512 * MIB
    assert usage["tasks"] == kernel_tasks, (usage, kernel_tasks)
    assert d.api("DELETE", f"/v1/sessions/{user}")[0] == 200


def test_cpu_share_matches_the_kernels_cpu_stat_under_the_quota(
    daemon: MakeDaemon, make_user: MakeUser
) -> None:
    d = daemon(policy(PROBE, "256M", "cpu_limit = 0.5\n"))
    user = make_user({"busy": True})
    start(d, user)
    group = cgroup_dir(f"jupyter-{user}.service")
    time.sleep(2.5)  # the daemon's sampler has two readings of a busy session
    readings: list[float] = []
    before, began = kernel_cpu_usec(group), time.monotonic()
    while time.monotonic() - began < WINDOW_S:
        status, usage = d.api("GET", f"/v1/sessions/{user}/usage")
        assert status == 200 and usage["cpu_percent"] is not None, usage
        readings.append(usage["cpu_percent"])
        time.sleep(1.0)
    kernel_percent = (kernel_cpu_usec(group) - before) / 1e4 / (time.monotonic() - began)
    ours = sorted(readings)[len(readings) // 2]
    # CPUQuota=50% holds the busy loop at half a core, as the kernel counts it, and the
    # daemon's median reading over the same window says the same within 15 points.
    assert 35 <= kernel_percent <= 60, kernel_percent
    assert abs(ours - kernel_percent) <= 15, (readings, kernel_percent)
    assert usage["cpu_limit"] == 0.5
    assert d.api("DELETE", f"/v1/sessions/{user}")[0] == 200
