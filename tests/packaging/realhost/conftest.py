"""Fixtures of the real-host tier (marker ``real_host``): inside a fresh Debian 12 VM
(packaging/vm), where systemd is the real PID 1 on cgroup v2, as on the machines users run.

``./packaging/install.sh`` runs there once per session, as an admin runs it on a fresh VM; the
tests then look at what it made. With HOSTD_PREBUILT (packaging/test.sh sets it) install.sh
copies venvs built on the host instead of running pip in the slow guest; every other step is
the admin's.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from tests import REPO

TOP = REPO
INSTALL = TOP / "packaging" / "install.sh"
HUB_URL = "http://127.0.0.1:8000"  # packaging/hub.toml's port, on the VM's loopback
INSTALL_TIMEOUT_S = 1500  # pip inside the guest, when HOSTD_PREBUILT is not given, is slow


@dataclass(frozen=True)
class Installed:
    """What install.sh printed (stdout and stderr together)."""

    output: str


class InstalledHub:
    """The hub install.sh started (hostd-hub.service), as tests/api/hub/systemd/lab.py
    drives one: its URL, and the tail of its log for assertion messages."""

    url = HUB_URL

    def tail(self, lines: int = 60) -> str:
        return subprocess.run(
            ["journalctl", "-u", "hostd-hub.service", "-n", str(lines), "--no-pager"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout


def run(*argv: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=timeout)


def install(*args: str) -> subprocess.CompletedProcess[str]:
    """./packaging/install.sh ARGS as an admin runs it on this host (never a testbed); stdout
    and stderr together."""
    env = {k: v for k, v in os.environ.items() if k != "HOSTD_INSIDE_TESTBED"}
    return subprocess.run(
        [str(INSTALL), *args],
        cwd=TOP,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
        check=False,
    )


@contextmanager
def local_account() -> Iterator[tuple[str, str]]:
    """A local account with a password, made as an admin makes one (useradd, chpasswd); its
    session and the account are gone afterwards."""
    name = f"r{uuid.uuid4().hex[:8]}"
    password = f"Pw-{uuid.uuid4().hex}"
    run("useradd", "-m", "-s", "/bin/bash", name)
    subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True)
    try:
        yield name, password
    finally:
        run("systemctl", "stop", f"jupyter-{name}.service", check=False)
        run("userdel", "-r", "-f", name, check=False)


@pytest.fixture(scope="session")
def installed() -> Installed:
    """./packaging/install.sh, once: as root, on this host, no testbed anywhere."""
    done = install()
    print(done.stdout)
    assert done.returncode == 0, f"install.sh failed ({done.returncode}):\n{done.stdout}"
    return Installed(done.stdout)
