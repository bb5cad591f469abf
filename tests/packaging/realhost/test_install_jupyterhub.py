"""packaging/install.sh --jupyterhub on a Debian 12 VM, as an admin runs it after the plain
install (the session's ``installed`` fixture): JupyterHub takes port 8000 over from hostd-hub,
a real host's systemd runs it (its own cgroup), ``hostctl verify`` is green, and a local user
logs in through JupyterHub's form and runs code in a kernel through configurable-http-proxy.
At the end a plain install.sh brings hostd-hub back, for the tests that follow."""

from __future__ import annotations

import asyncio
import re
import secrets
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.api.spawner.systemd.test_jupyterhub import log_in, run_in_kernel, spawn, stop
from tests.packaging.realhost.conftest import Installed, install, local_account, run
from tests.packaging.test_install_jupyterhub import JH_CONFIG, TEST_ONLY, InstalledHub

pytestmark = pytest.mark.real_host

URL = "http://127.0.0.1:8000"  # the generated bind_url: hub.toml's default, every interface
# Under TCG (~5x slower than the host, more on a busy machine) a server's first start took more
# than JupyterHub's default start_timeout of 60 s ("Spawn failed: " after 63 s, first VM run):
# the test's lines give it longer; an admin's JupyterHub on real hardware keeps the defaults.
SLOW_VM = """
c.Spawner.start_timeout = 600
c.Spawner.http_timeout = 600
"""


@pytest.fixture(scope="module")
def jupyterhub(installed: Installed) -> Iterator[subprocess.CompletedProcess[str]]:
    done = install("--jupyterhub")
    print(done.stdout)
    if done.returncode != 0:  # what JupyterHub said, in the failure's report
        print(run("journalctl", "-u", "jupyterhub", "-n", "80", "--no-pager", check=False).stdout)
    try:
        yield done
    finally:
        back = install()  # hostd-hub again, for the real_host tests after this module
        assert back.returncode == 0, back.stdout


def test_install_jupyterhub_takes_the_port_over_from_hostd_hub(
    jupyterhub: subprocess.CompletedProcess[str],
) -> None:
    assert jupyterhub.returncode == 0, jupyterhub.stdout
    assert "stopped and disabled hostd-hub (one hub per port" in jupyterhub.stdout
    assert re.search(r"^hostctl verify: all \d+ checks passed", jupyterhub.stdout, re.M)
    unit = r"^ok\s+unit jupyterhub.service\s+active \(running\), enabled"
    assert re.search(unit, jupyterhub.stdout, re.M), jupyterhub.stdout
    assert run("systemctl", "is-active", "hostd-hub.service", check=False).stdout.strip() == (
        "inactive"
    )
    cgroup = run("systemctl", "show", "jupyterhub.service", "-p", "ControlGroup", "--value")
    assert cgroup.stdout.strip() == "/system.slice/jupyterhub.service"


@pytest.fixture
def local_user(jupyterhub: subprocess.CompletedProcess[str]) -> Iterator[tuple[str, str]]:
    with local_account() as account:
        yield account


def test_a_local_user_logs_in_through_jupyterhub_and_a_kernel_answers(
    local_user: tuple[str, str],
) -> None:
    name, password = local_user
    token = secrets.token_hex(16)
    with JH_CONFIG.open("a") as config:
        config.write(TEST_ONLY.format(token=token) + SLOW_VM)
    # hostd's own wait for the server to answer (60 s), longer too, for the same reason.
    run("/usr/local/bin/hostctl", "config", "set", "daemon.start_timeout", "600")
    run("systemctl", "restart", "hostd.service", "jupyterhub.service")
    hub = InstalledHub(URL, token)
    deadline = time.monotonic() + 120  # TCG: JupyterHub and node start slowly
    while time.monotonic() < deadline:
        try:
            if hub.api("GET", "/").status == 200:
                break
        except OSError:
            pass
        time.sleep(1)
    assert hub.api("GET", "/").status == 200, hub.tail()

    class User:  # what log_in reads
        def __init__(self, name: str, password: str) -> None:
            self.name, self.password = name, password

    assert log_in(hub, User(name, "not-" + password)) == 403  # type: ignore[arg-type]
    assert log_in(hub, User(name, password)) == 302, hub.tail()  # type: ignore[arg-type]
    events = spawn(hub, name)
    assert events[-1].get("ready"), (events, hub.tail())
    unit = f"jupyter-{name}.service"
    cgroup = run("systemctl", "show", unit, "-p", "ControlGroup", "--value").stdout.strip()
    assert cgroup == f"/jupyter.slice/{unit}"
    assert asyncio.run(run_in_kernel(hub, name, "print(6*7)")) == "42\n"
    stop(hub, name)
    assert run("systemctl", "is-active", unit, check=False).stdout.strip() != "active"
