"""Fixtures of the daemon's real-host tier (marker ``real_host``): the systemd tier's (a real
hostd on a real socket, real users), on a host where systemd is the real PID 1 on cgroup v2 —
the Debian 12 VM of packaging/vm. What is measured only there: OOMPolicy= (a kernel over
mem_limit dies alone), MemorySwapMax= with swap on, and IPAddressDeny= (eBPF on the unit's
cgroup); the namespace testbed has v1 memory and no such firewall.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hostd.daemon.systemd.conftest import (  # noqa: F401 (fixtures, used by name)
    PROBE,
    PROBE_SOURCE,
    daemon,
    make_user,
)

KERNELS_PROBE_SOURCE = Path(__file__).with_name("kernels_probe.py")
KERNELS_PROBE = Path("/opt/hostd-test/kernels_probe.py")  # readable by every user


def on_real_host() -> bool:
    """systemd the real PID 1 on the unified hierarchy, not a testbed's namespace."""
    try:
        pid1 = Path("/proc/1/comm").read_text().strip()
    except OSError:
        return False
    return (
        pid1 == "systemd"
        and "HOSTD_TESTBED" not in os.environ
        and Path("/sys/fs/cgroup/cgroup.controllers").exists()
    )


@pytest.fixture(autouse=True)
def _real_host_paths() -> Iterator[None]:
    """The probes where every user can run them; checked first, so that nothing of this is
    made on a machine that is not a real host (the systemd tier's own fixture is autouse in
    its folder only, and would run before any skip)."""
    if os.geteuid() != 0 or not on_real_host():
        pytest.skip(
            "needs root on a real host: systemd the real PID 1 on cgroup v2; run inside the "
            "Debian 12 VM: packaging/vm run -- .venv/bin/pytest -m real_host"
        )
    PROBE.parent.mkdir(parents=True, exist_ok=True)
    for source, target in ((PROBE_SOURCE, PROBE), (KERNELS_PROBE_SOURCE, KERNELS_PROBE)):
        shutil.copy(source, target)
        target.chmod(0o755)
    subprocess.run(["groupadd", "-f", "hostd"], check=True)  # the daemon's socket_group
    yield
    shutil.rmtree(PROBE.parent, ignore_errors=True)
