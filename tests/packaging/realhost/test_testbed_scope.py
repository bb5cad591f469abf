"""packaging/testbed on a host whose PID 1 is systemd on unified cgroups: its "delegated
scope" path (systemd-run --scope -p Delegate=yes, then a leaf for itself), which the machines
hostd is developed on (hybrid cgroups, no systemd) never take. It must boot, run a command and
a systemd-tier test, and leave no scope, cgroup or state behind."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.packaging.realhost.conftest import TOP, run

pytestmark = pytest.mark.real_host

# The testbed, with a boot deadline for this guest: under TCG its systemd boots in ~20 s, where
# the testbed's default (15 s) fits a host.
TESTBED = ("env", "HOSTD_TESTBED_BOOT_TIMEOUT=120", str(TOP / "packaging" / "testbed"))
# One test of the systemd tier: a real session unit with the policy, run through the testbed.
ONE_SYSTEMD_TEST = (
    "tests/hostd/daemon/systemd/test_sessions.py"
    "::test_a_session_is_a_unit_with_the_policy_running_as_the_user"
)


def binds() -> list[str]:
    """The trees packaging/vm shared in (the venv may live outside the checkout): separate
    mounts, which the testbed's overlay of / does not show unless bound."""
    shares = [p for p in os.environ.get("HOSTD_VM_SHARES", "").split(":") if p]
    return [arg for p in shares if p != str(TOP) for arg in ("--bind", p)]


def leftovers() -> list[str]:
    units = run("systemctl", "list-units", "--all", "--plain", "--no-legend", "hostd-testbed-*")
    scopes = [line.split()[0] for line in units.stdout.splitlines() if line.strip()]
    cgroups = [str(p) for p in Path("/sys/fs/cgroup").rglob("hostd-testbed-*")]
    states = [str(p) for p in Path("/run/hostd-testbed").glob("*.json")]
    return scopes + cgroups + states


def test_the_host_takes_the_delegated_scope_path() -> None:
    controllers = Path("/sys/fs/cgroup/cgroup.controllers").read_text().split()
    assert Path("/proc/1/comm").read_text().strip() == "systemd" and "memory" in controllers


def test_testbed_run_true_boots_and_leaves_nothing() -> None:
    before = leftovers()
    done = run(*TESTBED, "run", "--timeout", "120", *binds(), "--", "true", check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert leftovers() == before


def test_testbed_runs_inside_its_delegated_scope() -> None:
    script = (
        "cat /proc/1/comm; systemctl is-system-running; systemd-run --wait -q -p MemoryMax=64M true"
    )
    done = run(*TESTBED, "run", "--timeout", "120", "--", "sh", "-c", script, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.split()
    assert lines[0] == "systemd" and lines[1] in ("running", "degraded"), done.stdout


def test_one_systemd_tier_test_passes_through_the_testbed() -> None:
    pytest_bin = str(Path(sys.executable).with_name("pytest"))
    argv = [*TESTBED, "run", "--timeout", "600", *binds(), "--",
            pytest_bin, "-q", "-p", "no:cacheprovider", ONE_SYSTEMD_TEST]  # fmt: skip
    done = run(*argv, check=False, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout, done.stdout[-3000:]
