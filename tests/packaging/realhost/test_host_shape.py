"""The host this tier runs on is what users run: systemd the real PID 1, cgroup v2 unified.
If these fail, every other real_host result proves nothing about such a host."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.packaging.realhost.conftest import run

pytestmark = pytest.mark.real_host


def test_cgroups_are_unified_v2() -> None:
    assert run("stat", "-fc", "%T", "/sys/fs/cgroup").stdout.strip() == "cgroup2fs"
    controllers = Path("/sys/fs/cgroup/cgroup.controllers").read_text().split()
    assert {"cpu", "memory", "pids"} <= set(controllers)


def test_pid_1_is_systemd_and_not_a_testbed() -> None:
    assert Path("/proc/1/comm").read_text().strip() == "systemd"
    assert "HOSTD_TESTBED" not in os.environ
    assert run("systemctl", "is-system-running", check=False).stdout.strip() in (
        "running",
        "degraded",
    )
    # Our own cgroup is systemd's: a service of the real system.slice, not a namespace's root.
    assert Path("/proc/self/cgroup").read_text().startswith("0::/system.slice/")
