"""`hostctl verify` against a real unit that restarts over and over (issue 14, F4), inside the
testbed (a real systemd as PID 1): the unit binds a port this test holds, dies with
EADDRINUSE, and systemd restarts it every RestartSec=, as hostd-hub did on JupyterHub's port.

One look at it says "active (running)" or "activating (auto-restart)": verify used to call it
healthy. No hostd is installed here, so the rest of verify's checks fail; only the unit's line
is asserted.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.systemd

# verify watches the units installed with Restart= by their names: the test's unit takes one.
UNIT = "hostd.service"
HOSTCTL = [sys.executable, "-m", "hostd.cli.hostctl"]
CONFIG = "/nonexistent/hostd.toml"  # the defaults: the unit line is what this test reads


def systemctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemctl", *args], capture_output=True, text=True, check=False)


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port this process listens on: nobody else can bind it."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


@pytest.fixture
def looping_unit(held_port: int) -> Iterator[str]:
    if systemctl("cat", UNIT).returncode == 0:
        pytest.fail(f"{UNIT} exists already: this test needs a testbed without hostd")
    bind = f"import socket; s = socket.socket(); s.bind(('127.0.0.1', {held_port})); s.listen()"
    started = subprocess.run(
        [
            "systemd-run",
            "--quiet",
            f"--unit={UNIT}",
            "--property=Restart=always",
            "--property=RestartSec=1",
            # As hostd-hub.service: a start rate that never trips the start limit.
            "--property=StartLimitIntervalSec=0",
            "/usr/bin/python3",
            "-c",
            bind,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert started.returncode == 0, started.stderr
    try:
        yield UNIT
    finally:
        systemctl("stop", UNIT)
        systemctl("reset-failed", UNIT)


def verify() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HOSTCTL, "verify", "--config", CONFIG],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=Path(__file__).resolve().parents[4],
    )


def test_verify_fails_on_a_unit_restarting_over_and_over(looping_unit: str) -> None:
    result = verify()
    print(result.stdout)  # shown with -s: the report as an admin sees it
    assert result.returncode == 1, result.stdout + result.stderr
    line = re.search(
        r"^FAIL\s+unit hostd\.service\s+hostd is restarting over and over "
        r"\(\d+ restarts? so far\): "
        r"OSError: \[Errno 98\] Address already in use$",
        result.stdout,
        re.M,
    )
    assert line, result.stdout
    assert "fix: journalctl -u hostd -n 50 says why; fix that, then systemctl restart hostd" in (
        result.stdout
    )
    # The unit's own last lines, under the failure.
    assert re.search(r"^\s+\| OSError: \[Errno 98\] Address already in use$", result.stdout, re.M)
    assert not re.search(r"^ok\s+unit hostd\.service", result.stdout, re.M)


def test_a_unit_that_stays_up_is_not_called_looping(held_port: int) -> None:
    """The same unit on a free port runs and is judged as before (ok, activating or not)."""
    started = subprocess.run(
        [
            "systemd-run",
            "--quiet",
            f"--unit={UNIT}",
            "--property=Restart=always",
            "--property=RestartSec=1",
            "/bin/sleep",
            "300",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert started.returncode == 0, started.stderr
    try:
        result = verify()
    finally:
        systemctl("stop", UNIT)
    # (A transient unit is not enabled: a warning, not a failure.)
    state = r"^(ok|WARN)\s+unit hostd\.service\s+active \(running\)"
    assert re.search(state, result.stdout, re.M), result.stdout
    assert "restarting over and over" not in result.stdout
