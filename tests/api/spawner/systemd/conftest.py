"""Fixtures of the spawner's systemd tier: a real hostd, a real JupyterHub as a non-root user in
group hostd, PAM users made with useradd and chpasswd.

What test.sh installs once (the venv, HOSTD_SPAWNER_CACHE) is used as is; everything made here
(users, directories, the daemon, JupyterHub and its proxy) is removed at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import REPO
from tests.hostd.daemon.systemd.conftest import Daemon
from tests.loopback import free_port

TOP = REPO
# Where test.sh installed them: beside the venv, readable by every user.
CACHE = Path(os.environ.get("HOSTD_SPAWNER_CACHE") or TOP / ".cache" / "spawner")
SESSION_VENV = CACHE / "session"
CHP = CACHE / "node" / "node_modules" / ".bin" / "configurable-http-proxy"
# JupyterHub 6 is the test venv's own (the test extra), JupyterHub 5 test.sh's.
HUB_VENVS = {"jupyterhub6": Path(sys.prefix), "jupyterhub5": CACHE / "jupyterhub5"}
# World-readable, in the testbed's overlay: the session's user runs hostd-session-exec.
BASE = Path("/opt/hostd-test-spawner")
SESSION_EXEC = BASE / "bin" / "hostd-session-exec"
MISSING_PROGRAM = BASE / "bin" / "no-such-jupyterhub-singleuser"
# Seed 002's paths (a site's jupyterhub_config.py for systemdspawner).
SHARED_DATA = Path("/opt/shared-data")
SHARED = Path("/shared")
OUTPUTS = SHARED / "notebook-outputs"
USERS_DIR = SHARED / "users"
USER_SESSIONS = "systemd-user-sessions.service"
BROKEN_PREFIX = "broken"  # users whose spawn runs the [commands] entry whose program is missing
SOCKET_PREFIX = "sock"  # users whose spawn runs the [commands] entry on a Unix socket


def seed_002_unit(user: str) -> dict[str, str]:
    """What seed 002's jupyterhub_config.py makes of a user's unit, as systemctl shows it."""
    return {
        "User": user,
        "MemoryMax": str(2 * 1024**3),
        "CPUQuotaPerSecUSec": "1s",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "NoNewPrivileges": "yes",
        "WorkingDirectory": f"{USERS_DIR}/{user}",
        "ReadOnlyPaths": str(SHARED_DATA),
        "ReadWritePaths": f"/tmp {OUTPUTS}",
        "RuntimeDirectoryPreserve": "no",
    }


SINGLEUSER = [
    str(SESSION_EXEC),
    str(SESSION_VENV / "bin" / "jupyterhub-singleuser"),
    "--ip=127.0.0.1",
    "--port={PORT}",
]
# As README's JupyterHub section gives it. --ServerApp.port=8888 is jupyter_server's default,
# said again: jupyterhub-singleuser takes the port of JUPYTERHUB_SERVICE_URL as its default,
# and jupyter_server exits ("--port and --sock are mutually exclusive") when a socket is given
# with any port but 8888 (serverapp.py, init_webapp).
SOCKET_SINGLEUSER = [
    str(SESSION_EXEC),
    str(SESSION_VENV / "bin" / "jupyterhub-singleuser"),
    "--ServerApp.sock={SOCKET}",
    "--ServerApp.sock_mode=0660",
    "--ServerApp.port=8888",
]
# The daemon's [daemon] proxy_group: JupyterHub's accounts are in it (its proxy connects to the
# sessions' sockets, and JupyterHub itself checks them).
PROXY_GROUP = f"hp{uuid.uuid4().hex[:8]}"

# The daemon's [session] and [commands]: what seed 002 asks of systemdspawner, now the admin's.
DAEMON_POLICY = f"""
[session]
cmd = {json.dumps(SINGLEUSER)}
mem_limit = "2G"
cpu_limit = 1.0
isolate_tmp = true
isolate_devices = true
disable_user_sudo = true
default_shell = "/bin/bash"
user_workingdir = "{USERS_DIR}/{{USERNAME}}"
readonly_paths = ["{SHARED_DATA}"]
readwrite_paths = ["/tmp", "{OUTPUTS}"]
unit_extra_properties = {{ RuntimeDirectoryPreserve = "no" }}

[commands]
singleuser = {json.dumps(SINGLEUSER)}
missing = {json.dumps([str(SESSION_EXEC), str(MISSING_PROGRAM)])}
socket = {json.dumps(SOCKET_SINGLEUSER)}
"""

# Seed 002's lines as written for systemdspawner: only spawner_class differs.
HUB_CONFIG = """
c = get_config()  # noqa
c.JupyterHub.spawner_class = "hostd"
c.SystemdSpawner.default_shell = '/bin/bash'
c.SystemdSpawner.mem_limit = '2G'
c.SystemdSpawner.cpu_limit = 1.0
c.SystemdSpawner.isolate_tmp = True
c.SystemdSpawner.isolate_devices = True
c.SystemdSpawner.disable_user_sudo = True
c.SystemdSpawner.unit_extra_properties = {{'RuntimeDirectoryPreserve': 'no'}}
c.SystemdSpawner.user_workingdir = '{users_dir}/{{USERNAME}}'
c.SystemdSpawner.readonly_paths = ['{shared_data}']
c.SystemdSpawner.readwrite_paths = ['/tmp', '{outputs}']

c.HostdSpawner.hostd_socket = '{socket}'
c.HostdSpawner.hostd_config = '{daemon_config}'

def pick_command(spawner):
    if spawner.user.name.startswith('{broken}'):
        spawner.hostd_command = 'missing'
    elif spawner.user.name.startswith('{on_socket}'):
        spawner.hostd_command = 'socket'

c.Spawner.pre_spawn_hook = pick_command

c.JupyterHub.authenticator_class = 'pam'
c.PAMAuthenticator.open_sessions = False
c.Authenticator.allow_all = True
c.JupyterHub.bind_url = 'http://127.0.0.1:{public_port}'
c.JupyterHub.hub_bind_url = 'http://127.0.0.1:{hub_port}'
c.ConfigurableHTTPProxy.api_url = 'http://127.0.0.1:{proxy_api_port}'
c.ConfigurableHTTPProxy.command = ['{chp}']
c.JupyterHub.cleanup_servers = False  # servers outlive a restart of JupyterHub
# POST .../server answers 202 at once: the test reads the progress stream.
c.JupyterHub.tornado_settings = {{'slow_spawn_timeout': 0}}
c.JupyterHub.services = [{{'name': 'tester', 'api_token': '{token}'}}]
c.JupyterHub.load_roles = [{{
    'name': 'tester',
    'scopes': ['admin:users', 'admin:servers', 'access:servers', 'proxy'],
    'services': ['tester'],
}}]
"""


def run(*argv: str, check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check, **kwargs)


class Response:
    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.status, self.body, self.headers = status, body, headers

    def json(self) -> Any:
        return json.loads(self.body) if self.body.strip() else None


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def http(
    url: str,
    method: str = "GET",
    *,
    token: str | None = None,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    opener: urllib.request.OpenerDirector | None = None,
    timeout: float = 30,
) -> Response:
    # Loopback http only (S310: no file: or other schemes reach here).
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})  # noqa: S310
    if token is not None:
        request.add_header("Authorization", f"token {token}")
    opener = opener or urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as answer:
            return Response(answer.status, answer.read(), dict(answer.headers))
    except urllib.error.HTTPError as error:
        return Response(error.code, error.read(), dict(error.headers))


class JupyterHub:
    """A real JupyterHub as ``user`` (non-root, groups hostd and shadow), in ``home``."""

    def __init__(self, version: str, user: str, home: Path, daemon: Daemon) -> None:
        self.version, self.venv = version, HUB_VENVS[version]
        self.user, self.home = user, home
        self.token = secrets.token_hex(16)
        self.public_port = free_port()
        self.url = f"http://127.0.0.1:{self.public_port}"
        self.log = home / "jupyterhub.log"
        self.config = home / "jupyterhub_config.py"
        self.config.write_text(
            HUB_CONFIG.format(
                users_dir=USERS_DIR,
                shared_data=SHARED_DATA,
                outputs=OUTPUTS,
                socket=daemon.socket,
                daemon_config=daemon.config,
                broken=BROKEN_PREFIX,
                on_socket=SOCKET_PREFIX,
                public_port=self.public_port,
                hub_port=free_port(),
                proxy_api_port=free_port(),
                chp=CHP,
                token=self.token,
            )
        )
        shutil.chown(self.config, user, user)
        self.config.chmod(0o600)  # it holds the test's API token
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            "PATH": f"{self.venv}/bin:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            # HostdSpawner from this checkout, whichever checkout the venvs were made from.
            "PYTHONPATH": str(TOP),
        }
        argv = [
            "setpriv",
            f"--reuid={self.user}",
            f"--regid={self.user}",
            "--init-groups",
            "--",
            str(self.venv / "bin" / "jupyterhub"),
            "-f",
            str(self.config),
        ]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                argv, cwd=self.home, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"JupyterHub exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                if http(f"{self.url}/hub/api/", timeout=2).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        pytest.fail(f"JupyterHub did not answer within 60 s:\n{self.tail()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        # JupyterHub stops the proxy it started; if it could not, the pid file says which.
        pid_file = self.home / "jupyterhub-proxy.pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
            pid_file.unlink()

    def restart(self) -> None:
        self.stop()
        self.start()

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def api(self, method: str, path: str, body: Any = None) -> Response:
        data = None if body is None else json.dumps(body).encode()
        return http(f"{self.url}/hub/api{path}", method, token=self.token, data=data)

    def progress(self, user: str, *, timeout: float = 90) -> list[dict[str, Any]]:
        """The events of user's spawn, until the ready or failed one."""
        url = f"{self.url}/hub/api/users/{user}/server/progress"
        request = urllib.request.Request(url)  # noqa: S310 (loopback http)
        request.add_header("Authorization", f"token {self.token}")
        events = []
        with urllib.request.urlopen(request, timeout=timeout) as stream:  # noqa: S310 (http only)
            for raw in stream:
                line = raw.decode().strip()
                if not line.startswith("data:"):
                    continue
                event = json.loads(line[len("data:") :])
                events.append(event)
                if event.get("ready") or event.get("failed"):
                    break
        return events


@pytest.fixture(scope="session")
def spawner_paths() -> Iterator[None]:
    for needed in (SESSION_VENV / "bin" / "jupyterhub-singleuser", CHP):
        if not needed.exists():
            pytest.fail(f"{needed} is missing: run ./packaging/test.sh (it installs it)")
    made = [BASE, SHARED_DATA, SHARED]
    for path in made:
        if path.exists():
            pytest.fail(f"{path} exists already: a previous run left it, or the host has it")
    SESSION_EXEC.parent.mkdir(parents=True)
    shutil.copy(TOP / "packaging" / "hostd-session-exec", SESSION_EXEC)
    SESSION_EXEC.chmod(0o755)
    for path in (SHARED_DATA, OUTPUTS, USERS_DIR):
        path.mkdir(parents=True, exist_ok=True)
    OUTPUTS.chmod(0o1777)
    run("groupadd", "-f", "hostd")
    # A booted machine lets users log in once systemd-user-sessions has removed /run/nologin
    # (pam_nologin refuses everyone but root before); the testbed's small target has not.
    sessions_was_active = run("systemctl", "is-active", USER_SESSIONS, check=False).returncode
    run("systemctl", "start", USER_SESSIONS)
    yield
    if sessions_was_active != 0:
        run("systemctl", "stop", USER_SESSIONS)
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


# JupyterHub's account per JupyterHub version: a member of group hostd that acts for the users
# it spawns, so the admin names it in [daemon] act_for_others (as for the hub's own user).
HUB_ACCOUNTS = {version: f"jh{uuid.uuid4().hex[:8]}" for version in sorted(HUB_VENVS)}


@pytest.fixture(scope="module")
def daemon(spawner_paths: None) -> Iterator[Daemon]:
    root = BASE / f"daemon-{uuid.uuid4().hex[:8]}"
    root.mkdir(mode=0o755)
    run("groupadd", PROXY_GROUP)
    d = Daemon(
        root, DAEMON_POLICY, act_for_others=tuple(HUB_ACCOUNTS.values()), proxy_group=PROXY_GROUP
    )
    d.config.chmod(0o644)  # as an admin's hostd.toml; JupyterHub asks GET /v1/policy
    d.start()
    yield d
    d.terminate()
    shutil.rmtree(d.socket.parent, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)
    run("groupdel", PROXY_GROUP, check=False)


def add_user(name: str, *, groups: str = "", home: Path | None = None) -> None:
    argv = ["useradd", "-s", "/bin/bash", "-U"]
    argv += ["-m"] if home is None else ["-M", "-d", str(home)]
    run(*argv, *(["-G", groups] if groups else []), name)


def remove_user(name: str) -> None:
    run("systemctl", "stop", f"jupyter-{name}.service", check=False)
    run("userdel", "-r", "-f", name, check=False)


@pytest.fixture(scope="module", params=sorted(HUB_VENVS))
def hub(request: pytest.FixtureRequest, daemon: Daemon) -> Iterator[JupyterHub]:
    venv = HUB_VENVS[request.param]
    if not (venv / "bin" / "jupyterhub").exists():
        pytest.fail(f"{venv}/bin/jupyterhub is missing: run ./packaging/test.sh")
    name = HUB_ACCOUNTS[request.param]
    home = BASE / name
    home.mkdir(mode=0o700)
    add_user(name, groups=f"hostd,shadow,{PROXY_GROUP}", home=home)
    shutil.chown(home, name, name)
    jupyterhub = JupyterHub(request.param, name, home, daemon)
    try:
        jupyterhub.start()
        yield jupyterhub
    finally:
        jupyterhub.stop()
        remove_user(name)
        shutil.rmtree(home, ignore_errors=True)


class PamUser:
    def __init__(self, name: str, password: str) -> None:
        self.name, self.password = name, password


@pytest.fixture
def make_pam_user(spawner_paths: None) -> Iterator[Callable[..., PamUser]]:
    made: list[str] = []

    def make(prefix: str = "u") -> PamUser:
        name = f"{prefix}{uuid.uuid4().hex[:8]}"
        password = secrets.token_urlsafe(12)
        add_user(name)
        made.append(name)
        run("chpasswd", input=f"{name}:{password}\n")
        workdir = USERS_DIR / name
        workdir.mkdir()
        shutil.chown(workdir, name, name)
        return PamUser(name, password)

    yield make
    for name in made:
        remove_user(name)
        shutil.rmtree(USERS_DIR / name, ignore_errors=True)
