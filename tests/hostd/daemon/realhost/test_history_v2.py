"""Usage over time on a real Debian 12 host (cgroup v2): the history the daemon keeps from its
own readings of the session's v2 cgroup says what the kernel's files say. On the hybrid
testbed it is read from the v1 controllers (tests/hostd/daemon/systemd/test_history.py).
Run in packaging/vm: ``-m real_host tests/hostd/daemon/realhost``.
"""

from __future__ import annotations

import time

import pytest

from tests.hostd.daemon.realhost.test_host_safety import MakeDaemon, MakeUser, policy, start
from tests.hostd.daemon.realhost.test_usage_v2 import MIB, cgroup_dir, kernel_cpu_usec
from tests.hostd.daemon.systemd.conftest import PROBE

pytestmark = pytest.mark.real_host

WAIT_S = 35.0  # three 10 s points and more, under TCG's slowness


def test_the_history_matches_the_kernels_v2_files(daemon: MakeDaemon, make_user: MakeUser) -> None:
    d = daemon(policy(PROBE, "512M", "cpu_limit = 0.5\n"))
    user = make_user({"busy": True, "hog_mib": 100})
    start(d, user)
    group = cgroup_dir(f"jupyter-{user}.service")
    assert (group / "memory.current").exists(), "not a cgroup v2 host"
    before, began = kernel_cpu_usec(group), time.monotonic()
    time.sleep(WAIT_S)  # nothing asks for usage: the reaper's readings alone fill the history
    kernel_percent = (kernel_cpu_usec(group) - before) / 1e4 / (time.monotonic() - began)
    kernel_memory = int((group / "memory.current").read_text())
    status, history = d.api("GET", f"/v1/sessions/{user}/usage/history")
    assert status == 200, history
    whole = history["points"][1:-1]  # the first and the last point are partial
    assert len(whole) >= 2, history["points"]
    assert all(p["memory_limit_bytes"] == 512 * MIB and p["cpu_limit"] == 0.5 for p in whole)
    # Memory: the most seen in each point; the hog holds still, so about memory.current.
    for point in whole:
        assert abs(point["memory_bytes"] - kernel_memory) <= 0.15 * kernel_memory, (
            point,
            kernel_memory,
        )
    # CPU: each point's mean against the kernel's cpu.stat over the whole wait (CPUQuota=50%).
    assert 35 <= kernel_percent <= 60, kernel_percent
    for point in whole:
        assert abs(point["cpu_percent"] - kernel_percent) <= 15, (point, kernel_percent)
    assert d.api("DELETE", f"/v1/sessions/{user}")[0] == 200
    assert d.api("GET", f"/v1/sessions/{user}/usage/history")[0] == 404
