"""Named servers on a real Debian 12 host (cgroup v2, systemd the real PID 1): the user's slice
is a nested cgroup jupyter.slice/jupyter-<user>.slice whose memory.max holds all of the user's
servers together, shown by effect. Run in packaging/vm: ``-m real_host``."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.hostd.daemon.systemd.conftest import PROBE, Daemon, unit_property, units_left

pytestmark = pytest.mark.real_host

WAIT_S = 60.0


def _active(unit: str) -> str:
    done = subprocess.run(["systemctl", "is-active", unit], capture_output=True, text=True)
    return done.stdout.strip()


def test_two_servers_of_one_user_share_the_slices_memory_max_on_cgroup_v2(
    daemon: Callable[..., Daemon], make_user: Callable[..., str]
) -> None:
    argv = f'["/usr/bin/python3", "{PROBE}", "{{PORT}}"]'
    d = daemon(f'[session]\ncmd = {argv}\nmem_limit = "128M"\nnamed_server_limit = 2\n')
    user = make_user({"hog_mib": 80})
    status, first = d.api("POST", f"/v1/sessions/{user}?server=one")
    assert status == 201, first
    slice_dir = Path(f"/sys/fs/cgroup/jupyter.slice/jupyter-{user}.slice")
    assert (slice_dir / "memory.max").read_text().strip() == str(128 * 2**20)
    assert (slice_dir / f"jupyter-{user}:one.service").is_dir()  # nested, as on v1
    assert unit_property(f"jupyter-{user}.slice", "MemoryMax") == str(128 * 2**20)
    status, second = d.api("POST", f"/v1/sessions/{user}?server=two")
    # Two servers of 80 MiB cannot live under the slice's 128 MiB. Which one the kernel kills, and
    # whether it kills one or both (the second may be killed too while the first's memory is
    # still charged), is the kernel's choice: the claim is that they never live together.
    deadline = time.monotonic() + WAIT_S
    alive: list[str] = []
    while time.monotonic() < deadline:
        alive = [s for s in ("one", "two") if _active(f"jupyter-{user}:{s}.service") == "active"]
        if len(alive) <= 1:
            break
        time.sleep(0.5)
    assert len(alive) <= 1, (alive, second)
    # The kill was the kernel's, charged to the user's slice and not to a server's own limit:
    # the kernel's report names the slice as the memory cgroup that was out of memory.
    memcg = f"oom_memcg=/jupyter.slice/jupyter-{user}.slice,"
    deadline = time.monotonic() + WAIT_S
    kernel = ""
    while memcg not in kernel and time.monotonic() < deadline:
        kernel = subprocess.run(["dmesg"], capture_output=True, text=True, check=True).stdout
        time.sleep(0.2)
    assert memcg in kernel, kernel[-2000:]
    for server in ("one", "two"):
        d.api("DELETE", f"/v1/sessions/{user}?server={server}")
    deadline = time.monotonic() + WAIT_S
    while [u for u in units_left() if user in u] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not [u for u in units_left() if user in u]
    assert not slice_dir.exists()
