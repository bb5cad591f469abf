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
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

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
# The VM runs under TCG, ~5x slower than the host and slower still beside another VM
# (MACHINE.md): importing the daemon took longer than the systemd tier's 15 s there.
DAEMON_UP_S = 180.0
SESSION_START_S = 90


class PatientDaemon(Daemon):
    """The systemd tier's Daemon, with waits made for an emulated machine."""

    def __init__(self, root: Path, policy: str) -> None:
        super().__init__(root, policy)
        text = self.config.read_text().replace(
            "start_timeout = 20\n", f"start_timeout = {SESSION_START_S}\n", 1
        )
        self.config.write_text(text)

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(VENV_BIN / "hostd"), "serve", "--config", str(self.config)],
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + DAEMON_UP_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"hostd exited: {self.log.read_text()}")
            if self.socket.exists():
                try:
                    if raw_request(str(self.socket), "GET", "/v1/health")[0] == 200:
                        return
                except OSError:
                    pass
            time.sleep(0.2)
        pytest.fail(f"hostd did not come up in {DAEMON_UP_S:g} s: {self.log.read_text()}")


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
