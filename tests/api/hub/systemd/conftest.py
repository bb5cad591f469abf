"""Fixtures of the hub's systemd tier: a real hostd whose sessions are real JupyterLab, real PAM
users (useradd, chpasswd), and hostd-hub running as its own unprivileged user in group hostd.

What test.sh installs once is used as is: .venv (hostd, the hub) and .cache/hub/session (the
session's JupyterLab: world-readable, as /opt/hostd/session is on a real machine). Everything
made here (users, directories, the daemon, the hub) is removed at the end; inside the
testbed all of it lands in the overlay anyway.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import REPO
from tests.hostd.daemon.systemd.conftest import Daemon
from tests.loopback import free_port

TOP = REPO
VENV_BIN = Path(sys.executable).parent
# Made by test.sh (HOSTD_HUB_CACHE): .cache/hub in a checkout every user can read.
HUB_CACHE = Path(os.environ.get("HOSTD_HUB_CACHE", TOP / ".cache" / "hub"))
SESSION_VENV = HUB_CACHE / "session"
PAM_SOURCE = TOP / "packaging" / "pam.d" / "hostd"
PAM_FILE = Path("/etc/pam.d/hostd")
USER_SESSIONS = "systemd-user-sessions.service"
BASE = Path("/run/hostd-hub-test")  # readable by the hub's user, unlike pytest's tmp_path
HUB_USER = "hostd-hub-test"
ADMIN_GROUP = "hostd-hub-test-admins"

# The daemon's policy: the session is JupyterLab from the admin's environment (read-only to
# users), served under the base URL the hub proxies, on its Unix socket (the default cmd's).
LAB_POLICY = f"""
[session]
cmd = {
    json.dumps(
        [
            str(SESSION_VENV / "bin" / "jupyter"),
            "lab",
            "--no-browser",
            "--ServerApp.sock={SOCKET}",
            "--ServerApp.sock_mode=0660",
            "--ServerApp.base_url={BASE_URL}",
        ]
    )
}
mem_limit = "1G"
cpu_limit = 1.0
isolate_tmp = true
isolate_devices = true
disable_user_sudo = true

[auth]
admin_groups = ["{ADMIN_GROUP}"]
"""


def run(*argv: str, check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check, **kwargs)


@dataclass(frozen=True)
class PamUser:
    name: str
    password: str


class Hub:
    """hostd-hub as HUB_USER (groups: its own and hostd), on a free loopback port."""

    def __init__(
        self, root: Path, daemon: Daemon, *, verify: ssl.SSLContext | bool = True, **options: Any
    ) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # ACME mode: HTTPS on the certificate's first name; verify: the CA's root to trust.
        if options.get("acme_domains"):
            self.url = f"https://{options['acme_domains'][0]}:{self.port}"
        self.verify = verify
        self.config = root / "hub.toml"
        self.log = root / "hub.log"
        # An option may name the hub's port, picked here: "http://hub.test:{port}".
        options = {
            key: value.replace("{port}", str(self.port)) if isinstance(value, str) else value
            for key, value in options.items()
        }
        lines = {
            "ip": "127.0.0.1",
            "port": self.port,
            "state_dir": str(root / "state"),
            "hostd_socket": str(daemon.socket),
            "slow_spawn_timeout": 1,
            **options,
        }
        self.config.write_text(
            "[hub]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in lines.items())
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start the process without waiting for it to answer."""
        # PYTHONPATH: the hub runs this checkout's code, whichever checkout the venv was made from.
        env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": str(self.root),
            "PYTHONPATH": str(TOP),
        }
        argv = [
            "setpriv", f"--reuid={HUB_USER}", f"--regid={HUB_USER}", "--init-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--",
            str(VENV_BIN / "hostd-hub"), "--config", str(self.config),
        ]  # fmt: skip
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                argv, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"hostd-hub exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                answer = httpx.get(f"{self.url}/hub/api", timeout=2, verify=self.verify)
                if answer.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()  # no fixture teardown follows a failed start: no process left behind
        pytest.fail(f"hostd-hub did not answer within 30 s:\n{self.tail()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def browser(self) -> httpx.Client:
        """A client that keeps cookies and follows no redirects, like a careful browser."""
        return httpx.Client(base_url=self.url, timeout=60, verify=self.verify)


@pytest.fixture(scope="session")
def hub_machine() -> Iterator[None]:
    """What a real machine has and the testbed's overlay lacks: the PAM service, the hub's
    system user in group hostd, logins allowed (no /run/nologin)."""
    if not (SESSION_VENV / "bin" / "jupyter").exists():
        pytest.fail(f"{SESSION_VENV} is missing: run ./packaging/test.sh (it makes it)")
    if BASE.exists():
        pytest.fail(f"{BASE} exists already: a previous run left it")
    made_pam = not PAM_FILE.exists()
    if made_pam:
        shutil.copy(PAM_SOURCE, PAM_FILE)
    run("groupadd", "-f", "hostd")
    run("groupadd", "-f", ADMIN_GROUP)
    run(
        "useradd", "--system", "--user-group", "--groups", "hostd", "--no-create-home",
        "--home-dir", str(BASE), "--shell", "/usr/sbin/nologin", HUB_USER,
    )  # fmt: skip
    BASE.mkdir(mode=0o755)
    sessions_were_active = run("systemctl", "is-active", USER_SESSIONS, check=False).returncode
    run("systemctl", "start", USER_SESSIONS)
    yield
    if sessions_were_active != 0:
        run("systemctl", "stop", USER_SESSIONS, check=False)
    run("userdel", HUB_USER, check=False)
    run("groupdel", ADMIN_GROUP, check=False)
    shutil.rmtree(BASE, ignore_errors=True)
    if made_pam:
        PAM_FILE.unlink(missing_ok=True)  # the install tests may have purged it


@pytest.fixture(scope="module")
def lab_daemon(hub_machine: None) -> Iterator[Daemon]:
    root = BASE / f"daemon-{uuid.uuid4().hex[:8]}"
    root.mkdir(mode=0o700)
    # The hub's own group is the proxy group: it reaches the sessions' sockets, nobody else.
    daemon = Daemon(root, LAB_POLICY, act_for_others=(HUB_USER,), proxy_group=HUB_USER)
    daemon.start()
    yield daemon
    daemon.terminate()
    shutil.rmtree(daemon.socket.parent, ignore_errors=True)


@pytest.fixture(scope="module")
def hub_options() -> dict[str, Any]:
    return {}


@pytest.fixture(scope="module")
def hub(lab_daemon: Daemon, hub_options: dict[str, Any]) -> Iterator[Hub]:
    root = BASE / f"hub-{uuid.uuid4().hex[:8]}"
    root.mkdir(mode=0o700)
    shutil.chown(root, HUB_USER, HUB_USER)
    hub = Hub(root, lab_daemon, **hub_options)
    hub.start()
    yield hub
    hub.stop()


@pytest.fixture(scope="module")
def make_pam_user(hub_machine: None) -> Iterator[Callable[..., PamUser]]:
    made: list[str] = []

    def make(*, admin: bool = False) -> PamUser:
        name = f"h{uuid.uuid4().hex[:8]}"
        groups = ["-G", ADMIN_GROUP] if admin else []
        run("useradd", "-m", "-s", "/bin/bash", *groups, name)
        password = f"Pw-{uuid.uuid4().hex}"
        subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True)
        made.append(name)
        return PamUser(name, password)

    yield make
    for name in made:
        run("systemctl", "stop", f"jupyter-{name}.service", check=False)
        run("userdel", "-r", "-f", name, check=False)


def xsrf_of(html: str) -> str:
    marker = 'name="_xsrf" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def log_in(client: httpx.Client, user: str, password: str, next_url: str = "") -> httpx.Response:
    page = client.get("/hub/login", params={"next": next_url} if next_url else None)
    form = {"_xsrf": xsrf_of(page.text), "username": user, "password": password}
    if next_url:
        form["next"] = next_url
    return client.post("/hub/login", data=form)


def hub_pid_uid(hub: Hub) -> tuple[int, int]:
    """(pid, real uid) of the hub's Python process (setpriv execs it: same pid)."""
    assert hub.proc is not None
    status = Path(f"/proc/{hub.proc.pid}/status").read_text()
    uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
    return hub.proc.pid, uid
