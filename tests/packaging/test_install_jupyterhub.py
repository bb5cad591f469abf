"""packaging/install.sh --jupyterhub end to end, inside the testbed (a real systemd as PID 1):
seed 000's architecture (JupyterHub, configurable-http-proxy, PAM login, one server per user)
on hostd, as seed 002's admin runs it (systemctl status jupyterhub, journalctl -u jupyter-<user>).

One real install for the module, then, in file order: what it installed and how it runs;
seed 002's ``c.SystemdSpawner.*`` lines appended verbatim to the generated
jupyterhub_config.py, a PAM user logging in through JupyterHub's form, a kernel answering
through configurable-http-proxy, the server's lines in its journal, a stop through the REST
API; a second run that changes nothing; a port another process holds, refused in both modes;
--uninstall leaving nothing of the mode, --purge its config. The users and directories it makes
are removed; the testbed is left as found.

pip's cache (.cache/pip-install) and npm's (.cache/npm-install) are the checkout's, which the
testbed shares with the host: only the first run downloads JupyterHub and the proxy.
The hub listens on loopback, on a free port, through /etc/hostd/hub.toml written before the
install (the testbed shares the machine's network; JupyterHub's default is every interface,
port 8000): install.sh takes the generated bind_url from it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.api.spawner.systemd.conftest import JupyterHub
from tests.api.spawner.systemd.test_jupyterhub import log_in, run_in_kernel, spawn, stop
from tests.hostd.daemon.systemd.conftest import unit_property, units_left
from tests.packaging.test_install import (
    CONFIG,
    PREFIX,
    active,
    install,
    main_pid,
    newer_than,
    run,
    write_loopback_hub_config,
)
from tests.seeds import SEED_002_ON_HOSTD

pytestmark = pytest.mark.systemd

JH_ENV = PREFIX / "jupyterhub"
JH_CONFIG = Path("/etc/jupyterhub/jupyterhub_config.py")
JH_STATE = Path("/var/lib/jupyterhub")
JH_UNIT = "jupyterhub.service"
HOSTCTL = Path("/usr/local/bin/hostctl")
SESSION_EXEC = "/opt/hostd/bin/hostd-session-exec"
SINGLEUSER = "/opt/hostd/session/bin/jupyterhub-singleuser"
# JupyterHub's own internal ports (its API, the proxy's API): JupyterHub's defaults, which the
# generated config keeps. The testbed shares the machine's loopback: they must be free.
INTERNAL_PORTS = (8081, 8001)

SEED_PATHS = (Path("/opt/shared-data"), Path("/shared"))
# The test's own lines: a service token for the REST API, and POST .../server answering at
# once (the test reads the progress stream).
TEST_ONLY = """
c.JupyterHub.services = [{{'name': 'tester', 'api_token': '{token}'}}]
c.JupyterHub.load_roles = [{{
    'name': 'tester',
    'scopes': ['admin:users', 'admin:servers', 'access:servers', 'proxy'],
    'services': ['tester'],
}}]
c.JupyterHub.tornado_settings = {{'slow_spawn_timeout': 0}}
"""


class InstalledHub(JupyterHub):
    """The JupyterHub install.sh started (jupyterhub.service), driven as the spawner's systemd
    tier drives its own: the same REST, login and kernel helpers."""

    def __init__(self, url: str, token: str) -> None:  # no super(): nothing to write or start
        self.version, self.url, self.token = "jupyterhub6", url, token

    def tail(self, lines: int = 60) -> str:
        return run("journalctl", "-u", JH_UNIT, "-n", str(lines), "--no-pager", check=False).stdout


@dataclass
class Machine:
    port: int
    first_install: subprocess.CompletedProcess[str]
    users: list[str] = field(default_factory=list)
    token: str = ""  # the REST API's, once the test's lines are in jupyterhub_config.py

    def pam_user(self) -> tuple[str, str]:
        """A new account with a password, and its seed 002 working directory."""
        name, password = f"j{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(12)
        run("useradd", "-m", "-s", "/bin/bash", name)
        self.users.append(name)
        subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True)
        workdir = Path("/shared/users") / name
        workdir.mkdir(parents=True)
        shutil.chown(workdir, name, name)
        return name, password

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}")


@pytest.fixture(scope="module")
def machine() -> Iterator[Machine]:
    if PREFIX.exists() or CONFIG.exists() or JH_CONFIG.exists():
        pytest.fail(f"{PREFIX}, {CONFIG} or {JH_CONFIG} exists already: this needs a fresh testbed")
    # The spawner's systemd tier (session-scoped) may hold seed 002's paths too: use them then,
    # and remove only what this module made.
    made_paths = [path for path in SEED_PATHS if not path.exists()]
    taken = [port for port in INTERNAL_PORTS if listening(port)]
    if taken:
        pytest.fail(f"JupyterHub's internal ports {taken} are taken on this machine's loopback")
    port = write_loopback_hub_config()
    made = Machine(port=port, first_install=install("--jupyterhub"))
    try:
        yield made
    finally:
        for name in made.users:
            subprocess.run(["systemctl", "stop", f"jupyter-{name}.service"], check=False)
            subprocess.run(["userdel", "-r", "-f", name], capture_output=True, check=False)
            shutil.rmtree(Path("/shared/users") / name, ignore_errors=True)
        install("--purge")
        for path in made_paths:
            shutil.rmtree(path, ignore_errors=True)


def test_install_succeeds_and_verify_checks_the_jupyterhub_mode(machine: Machine) -> None:
    result = machine.first_install
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    for step in (
        "jupyterhub-singleuser (JupyterHub 6) in the session environment",
        "JupyterHub 6, HostdSpawner and configurable-http-proxy in /opt/hostd/jupyterhub",
        "JupyterHub's config /etc/jupyterhub/jupyterhub_config.py",
        "JupyterHub (jupyterhub.service, instead of hostd-hub)",
    ):
        assert f"==> {step}" in result.stdout, result.stdout
    assert re.search(r"^hostctl verify: all \d+ checks passed", result.stdout, re.M), result.stdout
    for name, detail in (
        ("unit jupyterhub.service", r"active \(running\), enabled"),
        ("unit hostd-hub.service", r"inactive: jupyterhub.service serves instead"),
        ("JupyterHub's user", r"jupyterhub in groups hostd, hostd-proxy, shadow; acts for others"),
        ("JupyterHub's singleuser", re.escape(f"{SESSION_EXEC} {SINGLEUSER}")),
        ("JupyterHub's environment", r"/opt/hostd/jupyterhub: JupyterHub 6\.\d+\.\d+"),
    ):
        assert re.search(rf"^ok\s+{re.escape(name)}\s+{detail}", result.stdout, re.M), (
            name,
            result.stdout,
        )
    hub_row = rf"^  hub +http://127\.0\.0\.1:{machine.port}/ \(JupyterHub\)$"
    assert re.search(hub_row, result.stdout, re.M), result.stdout


def test_jupyterhub_runs_unprivileged_instead_of_hostd_hub(machine: Machine) -> None:
    assert active(JH_UNIT, "hostd.service", "hostd-hub.service") == ["active", "active", "inactive"]
    assert run("systemctl", "is-enabled", JH_UNIT).stdout.strip() == "enabled"
    assert run("systemctl", "is-enabled", "hostd-hub.service", check=False).stdout.strip() == (
        "disabled"
    )
    assert "Active: active (running)" in run("systemctl", "status", JH_UNIT).stdout
    status = Path(f"/proc/{main_pid(JH_UNIT)}/status").read_text()
    uid = re.search(r"^Uid:\s+(\d+)", status, re.M)
    assert uid is not None and uid[1] == run("id", "-u", "jupyterhub").stdout.strip() != "0"
    groups = re.search(r"^Groups:\s*(.*)$", status, re.M)
    assert groups is not None
    for group in ("hostd", "hostd-proxy", "shadow"):
        assert run("getent", "group", group).stdout.split(":")[2] in groups[1].split(), group
    assert re.search(r"^NoNewPrivs:\s+1$", status, re.M)
    # The proxy listens on the hub's port, inside jupyterhub.service.
    assert listening(machine.port)

    daemon = tomllib.loads(CONFIG.read_text())
    assert "jupyterhub" in daemon["daemon"]["act_for_others"]
    assert daemon["commands"]["singleuser"] == [
        SESSION_EXEC,
        SINGLEUSER,
        "--ServerApp.sock={SOCKET}",
        "--ServerApp.sock_mode=0660",
        "--ServerApp.port=8888",
    ]
    config = JH_CONFIG.read_text()
    assert 'c.JupyterHub.spawner_class = "hostd"' in config
    assert 'c.JupyterHub.authenticator_class = "pam"' in config
    assert f'c.JupyterHub.bind_url = "http://127.0.0.1:{machine.port}"' in config


def test_jupyterhubs_environment_holds_hostd_and_no_stray_modules(machine: Machine) -> None:
    python = JH_ENV / "bin" / "python"
    found = run(
        python,
        "-I",
        "-c",
        "import importlib.util as u, json; import hostd.api.spawner\n"
        "print(json.dumps({n: u.find_spec(n) is not None for n in ('api', 'units', 'cgroups')}))",
    )
    assert json.loads(found.stdout) == {"api": False, "units": False, "cgroups": False}
    assert "hostd" in run(JH_ENV / "bin" / "pip", "list", "--format=freeze").stdout
    assert (JH_ENV / "bin" / "configurable-http-proxy").resolve().is_file()
    assert Path(SINGLEUSER).is_file()


def test_seed_002_a_pam_user_logs_in_and_a_kernel_answers_through_the_proxy(
    machine: Machine,
) -> None:
    # The admin's step: seed 002's sandbox in hostd.toml, its directories, its lines appended.
    Path("/opt/shared-data").mkdir(parents=True, exist_ok=True)
    outputs = Path("/shared/notebook-outputs")
    outputs.mkdir(parents=True, exist_ok=True)
    outputs.chmod(0o1777)
    token = secrets.token_hex(16)
    with JH_CONFIG.open("a") as config:
        config.write(SEED_002_ON_HOSTD + TEST_ONLY.format(token=token))
    # The one documented step: seed 002's sandbox into hostd.toml's [session].
    imported = run(HOSTCTL, "import", "--apply", JH_CONFIG)
    assert 'session.readonly_paths = ["/opt/shared-data"] (was [])' in imported.stdout, imported
    singleuser = tomllib.loads(CONFIG.read_text())["commands"]["singleuser"]
    assert "--ServerApp.sock={SOCKET}" in singleuser  # install.sh's, kept by the import
    run("systemctl", "restart", "hostd.service", JH_UNIT)
    wait_until(lambda: listening(machine.port), 60, "JupyterHub after its restart")
    hub = InstalledHub(machine.url, token)
    wait_until(lambda: hub.api("GET", "/").status == 200, 60, "JupyterHub's API")

    machine.token = token
    name, password = machine.pam_user()
    workdir = Path("/shared/users") / name

    class User:  # what log_in reads
        def __init__(self, name: str, password: str) -> None:
            self.name, self.password = name, password

    assert log_in(hub, User(name, password)) == 302, hub.tail()  # type: ignore[arg-type]
    assert log_in(hub, User(name, "not-the-password")) == 403  # type: ignore[arg-type]

    events = spawn(hub, name)
    assert events[-1].get("ready"), (events, hub.tail())
    unit = f"jupyter-{name}.service"
    expected = {
        "User": name,
        "MemoryMax": str(2 * 1024**3),
        "CPUQuotaPerSecUSec": "1s",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "NoNewPrivileges": "yes",
        "WorkingDirectory": str(workdir),
        "ReadOnlyPaths": "/opt/shared-data",
        # Seed 002's, then the session's socket directory (hostd's, for {SOCKET}).
        "ReadWritePaths": f"/tmp /shared/notebook-outputs /run/hostd/sessions/{name}",
        "RuntimeDirectoryPreserve": "no",
    }
    assert {key: unit_property(unit, key) for key in expected} == expected
    # On its Unix socket (JupyterHub 6's singleuser), reached by the proxy.
    assert Path(f"/run/hostd/sessions/{name}/jupyter.sock").is_socket()

    assert asyncio.run(run_in_kernel(hub, name, "print(6*7)")) == "42\n"

    journal = run("journalctl", "-u", unit, "--no-pager").stdout
    assert "jupyterhub-singleuser" in journal or "JupyterHub" in journal, journal[-2000:]
    assert re.search(r"Jupyter Server .* is running at", journal), journal[-2000:]

    stop(hub, name)  # DELETE /hub/api/users/<name>/server
    assert units_left(f"jupyter-{name}") == []


def test_running_install_again_changes_nothing(machine: Machine) -> None:
    before = {unit: main_pid(unit) for unit in ("hostd.service", JH_UNIT)}
    # A config an older install.sh wrote (no proxy_class): kept, with the lines to add shown.
    written = JH_CONFIG.read_text()
    older = "".join(
        line
        for line in written.splitlines(keepends=True)
        if not line.startswith(("c.JupyterHub.proxy_class", "c.PatientConfigurableHTTPProxy"))
    )
    assert older != written
    JH_CONFIG.write_text(older)
    marker = Path("/run/hostd-install-marker")
    marker.touch()
    time.sleep(1.1)  # mtimes have a resolution; a change in this second must count
    roots = (
        PREFIX,
        Path("/etc/hostd"),
        Path("/etc/jupyterhub"),
        Path("/etc/systemd/system"),
        Path("/etc/passwd"),
        Path("/etc/group"),
    )
    try:
        again = install("--jupyterhub")
        assert again.returncode == 0, f"{again.stdout}\n{again.stderr}"
        assert newer_than(marker, roots) == [], again.stdout
    finally:
        marker.unlink()
        JH_CONFIG.write_text(written)
    assert f"kept your {JH_CONFIG}" in again.stdout
    hint = "to give the proxy more than JupyterHub's 10 s to start, add to it"
    assert hint in again.stdout, again.stdout
    shown = [line.strip() for line in again.stdout.splitlines() if line.startswith("      c.")]
    assert shown == [line for line in written.splitlines() if line not in older.splitlines()]
    assert "restarted" not in again.stdout
    assert {unit: main_pid(unit) for unit in before} == before


def test_jupyterhub_5_by_running_it_again_with_5(machine: Machine) -> None:
    """--jupyterhub=5: a fresh environment with JupyterHub 5, [commands] singleuser switched to
    a loopback port (JupyterHub 5 cannot connect to a socket), and a server that answers.
    JupyterHub 5 cannot read JupyterHub 6's database: refused first, then done as told."""
    refused = install("--jupyterhub=5")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    db = JH_STATE / "jupyterhub.sqlite"
    assert f"JupyterHub 5 cannot read JupyterHub 6's database {db}: nothing changed" in (
        refused.stderr
    )
    assert active(JH_UNIT) == ["active"]  # untouched
    fix = f"how to fix: systemctl stop jupyterhub; mv {db} {db}.jupyterhub6"
    assert fix in refused.stderr, refused.stderr
    run("systemctl", "stop", JH_UNIT)
    db.rename(db.with_name("jupyterhub.sqlite.jupyterhub6"))

    switched = install("--jupyterhub=5")
    assert switched.returncode == 0, f"{switched.stdout}\n{switched.stderr}"
    assert "==> JupyterHub 5, HostdSpawner and configurable-http-proxy in" in switched.stdout
    environment = r"^ok\s+JupyterHub's environment\s+/opt/hostd/jupyterhub: JupyterHub 5\."
    assert re.search(environment, switched.stdout, re.M), switched.stdout
    singleuser = tomllib.loads(CONFIG.read_text())["commands"]["singleuser"]
    assert singleuser == [SESSION_EXEC, SINGLEUSER, "--ip=127.0.0.1", "--port={PORT}"]
    assert f"kept your {JH_CONFIG}" in switched.stdout  # the test's lines are still there

    hub = InstalledHub(machine.url, machine.token)
    wait_until(lambda: hub.api("GET", "/").status == 200, 60, "JupyterHub 5's API")
    assert hub.api("GET", "/").json()["version"].startswith("5.")
    name, _ = machine.pam_user()
    events = spawn(hub, name)
    assert events[-1].get("ready"), (events, hub.tail())
    route = hub.api("GET", "/proxy").json()[f"/user/{name}/"]["target"]
    assert route.startswith("http://127.0.0.1:"), route
    assert asyncio.run(run_in_kernel(hub, name, "print(6*7)")) == "42\n"
    stop(hub, name)
    assert units_left(f"jupyter-{name}") == []


@pytest.mark.parametrize("flag", ["--jupyterhub", ""])
def test_a_port_another_process_holds_is_refused_with_the_fix(machine: Machine, flag: str) -> None:
    run("systemctl", "stop", JH_UNIT)
    holder = socket.socket()
    try:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", machine.port))
        holder.listen()
        refused = install(*([flag] if flag else []))
    finally:
        holder.close()
    assert refused.returncode == 1, refused.stdout + refused.stderr
    # The holder is this process: its name is how pytest was started (pytest, python).
    me = f"{Path('/proc/self/comm').read_text().strip()} (pid {os.getpid()},"
    assert f"port {machine.port} is held by {me}" in refused.stderr, refused.stderr
    where = (
        "c.JupyterHub.bind_url in /etc/jupyterhub/jupyterhub_config.py"
        if flag
        else ("port in /etc/hostd/hub.toml")
    )
    assert "how to fix: stop it (" in refused.stderr and where in refused.stderr, refused.stderr
    # Nothing was started on it: neither hub runs, so nothing restart-loops.
    assert active(JH_UNIT, "hostd-hub.service") == ["inactive", "inactive"]

    again = install("--jupyterhub")  # the port free again: JupyterHub comes back
    assert again.returncode == 0, f"{again.stdout}\n{again.stderr}"
    assert active(JH_UNIT) == ["active"] and listening(machine.port)


def test_uninstall_leaves_nothing_of_the_mode_and_purge_its_config(machine: Machine) -> None:
    result = install("--uninstall")
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    files = run("systemctl", "list-unit-files", "--no-legend", "jupyterhub*", check=False)
    assert files.stdout.strip() == ""
    loaded = run("systemctl", "list-units", "--all", "--no-legend", "jupyterhub*", check=False)
    assert loaded.stdout.strip() == ""
    assert not Path("/etc/systemd/system/jupyterhub.service").exists()
    assert not JH_ENV.exists() and not PREFIX.exists()
    assert run("getent", "passwd", "jupyterhub", check=False).returncode == 2
    assert run("getent", "group", "jupyterhub", check=False).returncode == 2
    assert not listening(machine.port)
    assert JH_CONFIG.exists() and JH_STATE.exists()  # kept: the config and the database

    purged = install("--purge")
    assert purged.returncode == 0, f"{purged.stdout}\n{purged.stderr}"
    for gone in ("/etc/jupyterhub", "/var/lib/jupyterhub", "/etc/hostd"):
        assert not Path(gone).exists(), gone
