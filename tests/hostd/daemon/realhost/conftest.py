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
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import on_real_host
from tests.hostd.daemon.systemd.conftest import (  # noqa: F401 (make_user: a fixture)
    PROBE,
    PROBE_SOURCE,
    VENV_BIN,
    Daemon,
    make_user,
    raw_request,
)

KERNELS_PROBE_SOURCE = Path(__file__).with_name("kernels_probe.py")
KERNELS_PROBE = Path("/opt/hostd-test/kernels_probe.py")  # readable by every user
# The VM runs under TCG, ~5x slower than the host (MACHINE.md): a JupyterLab-sized start takes
# longer than the systemd tier's 20 s there. (The daemon's own start deadline is the systemd
# tier's, which knows the VM: HOSTD_VM.)
SESSION_START_S = 90


class PatientDaemon(Daemon):
    """The systemd tier's Daemon, with waits made for an emulated machine."""

    def __init__(self, root: Path, policy: str) -> None:
        super().__init__(root, policy)
        text = self.config.read_text().replace(
            "start_timeout = 20\n", f"start_timeout = {SESSION_START_S}\n", 1
        )
        self.config.write_text(text)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def start(policy: str) -> Daemon:
        root = tmp_path / f"d{len(started)}"
        root.mkdir()
        d = PatientDaemon(root, policy)
        started.append(d)
        d.start()
        return d

    yield start
    for d in started:
        d.terminate()
        shutil.rmtree(d.socket.parent, ignore_errors=True)


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
