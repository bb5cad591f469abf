"""What the benchmark runs against, inside packaging/testbed: users, a hostd, JupyterHubs.

Everything here is made in the testbed's overlay (users with useradd, /opt/hostd-bench) and
removed by ``Context.close`` (and by the testbed's power-off in any case). What bench.sh
installed beforehand is only read: the session environment with JupyterLab, JupyterHub 6 with
systemdspawner 1.0.2, configurable-http-proxy.
"""

from __future__ import annotations

import contextlib
import http.client as httpclient
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil

from tests.loopback import free_port

TOP = Path(__file__).resolve().parents[2]
CACHE = TOP / ".cache" / "bench"
SESSION_VENV = CACHE / "session"  # JupyterLab 4 + jupyterhub-singleuser, as install.sh makes it
PIP_VENV = CACHE / "session-pip"  # the same exactly as pip installs it (see bench.sh)
ANCHOR_VENV = CACHE / "anchor"  # JupyterHub 6 + jupyterhub-systemdspawner 1.0.2
CHP = CACHE / "node" / "node_modules" / ".bin" / "configurable-http-proxy"
HUB6_VENV = TOP / ".venv"  # JupyterHub 6 with hostd installed: HostdSpawner (row d)
WORK = Path("/opt/hostd-bench")  # in the testbed's overlay
SESSION_EXEC = WORK / "bin" / "hostd-session-exec"
WS_ECHO = WORK / "bin" / "ws_echo.py"  # the "proxy ws" row's server (tests/bench/ws_echo.py)
HOSTD_BIN = Path(os.environ.get("VIRTUAL_ENV", str(HUB6_VENV))) / "bin"
# What packaging/systemd's hostd.service and hostd-hub.service set for the processes they start.
UNIT_ENV = {"MALLOC_ARENA_MAX": "2"}

# The same JupyterLab command in every hostd row (hostd's default [session] cmd) and the raw
# floor; JupyterHub's rows run jupyterhub-singleuser of the same environment, as they must.
LAB = str(SESSION_VENV / "bin" / "jupyter")
SINGLEUSER = str(SESSION_VENV / "bin" / "jupyterhub-singleuser")


def lab_argv(port: int | str, base_url: str, *, pip: bool = False) -> list[str]:
    lab = str(PIP_VENV / "bin" / "jupyter") if pip else LAB
    return [lab, "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
            f"--ServerApp.base_url={base_url}"]  # fmt: skip


def lab_socket_argv() -> list[str]:
    """JupyterLab on a Unix socket, as hostd's default [session] cmd starts it (issue 13)."""
    return [LAB, "lab", "--no-browser", "--ServerApp.sock={SOCKET}",
            "--ServerApp.sock_mode=0660", "--ServerApp.base_url={BASE_URL}"]  # fmt: skip


TINY = ["/usr/bin/python3", "-m", "http.server", "--bind", "127.0.0.1", "{PORT}"]


def ws_echo_argv(*, on_port: bool = False) -> list[str]:
    """The lean server (tests/bench/ws_echo.py) on the session's Unix socket, or on its
    loopback port (hostd's venv: uvloop, httptools)."""
    where = ["--port", "{PORT}"] if on_port else ["{SOCKET}"]
    return [str(HOSTD_BIN / "python"), str(WS_ECHO), *where]


# Seed 002: what a site configures systemdspawner with (mem_limit 2G, cpu_limit 1.0, a private
# /tmp and /dev, no sudo), as hostd's [session] policy.
SEED_POLICY = {
    "mem_limit": "2G",
    "cpu_limit": 1.0,
    "isolate_tmp": True,
    "isolate_devices": True,
    "disable_user_sudo": True,
    "default_shell": "/bin/bash",
}


def sh(*argv: str, check: bool = True, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check, **kw)


# --- HTTP ------------------------------------------------------------------------------------


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(NoRedirect, urllib.request.ProxyHandler({}))


def http(
    url: str,
    method: str = "GET",
    *,
    token: str | None = None,
    body: Any = None,
    timeout: float = 30,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """(status, body); a refused or reset connection raises OSError."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})  # noqa: S310
    if token:
        request.add_header("Authorization", f"token {token}")
    try:
        with _OPENER.open(request, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def answers(url: str) -> bool:
    """True when the server answers ``url`` with a status below 500 (JupyterHub's test)."""
    try:
        return http(url, timeout=5)[0] < 500
    except OSError:
        return False


def wait_answers(url: str, deadline: float, interval: float = 0.02) -> bool:
    while time.monotonic() < deadline:
        if answers(url):
            return True
        time.sleep(interval)
    return False


class UnixHTTPConnection(httpclient.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("hostd", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.path)
        self.sock = sock


def uds(
    sock: Path, method: str, path: str, body: Any = None, timeout: float = 300
) -> tuple[int, Any]:
    conn = UnixHTTPConnection(str(sock), timeout)
    try:
        data = b"" if body is None else json.dumps(body).encode()
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        answer = conn.getresponse()
        payload = answer.read()
        return answer.status, json.loads(payload) if payload.strip() else None
    finally:
        conn.close()


class FakeHubAPI:
    """Just enough of JupyterHub's API for jupyterhub-singleuser to start without a hub: its
    version check at start-up (it retries with back-off, then gives up) and activity reports."""

    def __init__(self, version: str = "6.1.1") -> None:
        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                body = json.dumps({"version": version}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-JupyterHub-Version", version)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hub/api"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- users -----------------------------------------------------------------------------------


class Users:
    """Accounts made with useradd for the run (unique names), removed at the end."""

    def __init__(self) -> None:
        self.made: list[str] = []
        self._n = 0
        self._lock = threading.Lock()

    def make(self, prefix: str, *, password: str | None = None) -> str:
        with self._lock:
            self._n += 1
            name = f"{prefix}{self._n:03d}{secrets.token_hex(2)}"
        sh("useradd", "-m", "-s", "/bin/bash", "-U", name)
        if password is not None:
            sh("chpasswd", input=f"{name}:{password}\n")
        with self._lock:
            self.made.append(name)
        return name

    def many(self, prefix: str, n: int) -> list[str]:
        return [self.make(prefix) for _ in range(n)]

    def remove_all(self) -> None:
        for name in self.made:
            sh("userdel", "-r", "-f", name, check=False)
        self.made.clear()


# --- systemd and processes -------------------------------------------------------------------


def _cgroup_root() -> Path:
    """Where the unit's ControlGroup path lives: the name=systemd v1 tree, else cgroup2."""
    unified = None
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        point = left.split()[4]
        fstype, _src, opts = ([*right.split(), "", "", ""])[:3]
        if fstype == "cgroup" and "name=systemd" in opts.split(","):
            return Path(point)
        if fstype == "cgroup2":
            unified = Path(point)
    if unified is None:
        raise RuntimeError("no cgroup hierarchy holds systemd's tree")
    return unified


CGROUP_ROOT = _cgroup_root()
TICK = os.sysconf("SC_CLK_TCK")


def unit_show(unit: str, *props: str) -> dict[str, str]:
    out = sh("systemctl", "show", unit, *(f"-p{p}" for p in props), check=False).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def unit_pids(unit: str) -> list[int]:
    group = unit_show(unit, "ControlGroup").get("ControlGroup", "")
    if not group:
        return []
    pids: list[int] = []
    base = CGROUP_ROOT / group.lstrip("/")
    for procs in [base / "cgroup.procs", *base.rglob("*/cgroup.procs")]:
        with contextlib.suppress(OSError):
            pids += [int(p) for p in procs.read_text().split()]
    return pids


def process_cpu_s(pid: int) -> float:
    """utime + stime of the process and its waited-for children."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(v) for v in fields[11:15]) / TICK


def unit_cpu_s(unit: str) -> float:
    return sum(process_cpu_s(pid) for pid in unit_pids(unit))


def tree_rss_mib(pid: int) -> float:
    """RSS of a process and all its descendants, MiB."""
    try:
        top = psutil.Process(pid)
        procs = [top, *top.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total / 2**20


def pss_kib(pid: int) -> int:
    """Proportional set size (/proc/PID/smaps_rollup): each shared page split among the
    processes that map it. Information next to RSS: the footprint target is RSS."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def tree_pss_mib(pid: int) -> float:
    """PSS of a process and all its descendants, MiB."""
    try:
        top = psutil.Process(pid)
        procs = [top, *top.children(recursive=True)]
    except psutil.Error:
        return 0.0
    return sum(pss_kib(proc.pid) for proc in procs) / 1024


def tree_processes(pid: int) -> list[dict[str, Any]]:
    """Each process of the tree with its RSS and PSS (MiB): what a footprint is made of."""
    out: list[dict[str, Any]] = []
    with contextlib.suppress(psutil.Error):
        top = psutil.Process(pid)
        for proc in [top, *top.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                out.append(
                    {
                        "pid": proc.pid,
                        "cmd": " ".join(proc.cmdline())[:160],
                        "rss_mib": round(proc.memory_info().rss / 2**20, 1),
                        "pss_mib": round(pss_kib(proc.pid) / 1024, 1),
                    }
                )
    return out


def tree_cpu_s(pid: int) -> float:
    """User + system CPU-seconds of a process and its living descendants."""
    total = 0.0
    with contextlib.suppress(psutil.Error):
        top = psutil.Process(pid)
        for proc in [top, *top.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
    return total


def units(pattern: str) -> list[str]:
    out = sh("systemctl", "list-units", "--all", "--plain", "--no-legend", pattern, check=False)
    return [line.split()[0] for line in out.stdout.splitlines() if line.strip()]


def wait_no_units(pattern: str, timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    left = units(pattern)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = [
            u for u in units(pattern) if unit_show(u, "ActiveState")["ActiveState"] != "inactive"
        ]
    return left


def stop_units(pattern: str) -> None:
    left = units(pattern)
    if left:
        sh("systemctl", "stop", *left, check=False, timeout=120)
        sh("systemctl", "reset-failed", *left, check=False)


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def own_cpu_s() -> float | None:
    """CPU-seconds used by this testbed: cpuacct.usage at the root of its cgroup namespace."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fstype, _src, opts = [*right.split(), "", "", ""][:3]
        if fstype == "cgroup" and "cpuacct" in opts.split(","):
            usage = Path(left.split()[4]) / "cpuacct.usage"
            if usage.exists():
                return int(usage.read_text()) / 1e9
    return None


def machine_busy_s() -> float:
    """CPU-seconds the whole machine spent busy since boot (/proc/stat is not namespaced)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICK


def settle(max_s: float = 20.0, below: float = 0.1) -> float:
    """Wait (bounded) until what this testbed runs is quiet: below ``below`` of one core over
    0.25 s. Returns the last share seen. The machine is shared: other work's load is measured
    (``others_cpu_share`` in the results), not waited for.
    """
    deadline = time.monotonic() + max_s
    busy = 1.0
    while time.monotonic() < deadline:
        before = own_cpu_s()
        if before is None:
            time.sleep(1.0)
            return 0.0
        time.sleep(0.25)
        busy = ((own_cpu_s() or 0.0) - before) / 0.25
        if busy < below:
            break
    return busy


# --- hostd -----------------------------------------------------------------------------------


def toml_list(values: list[str]) -> str:
    return json.dumps(values)


def toml_value(value: Any) -> str:
    """A TOML value from str, bool, number, list or dict (an inline table)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


class Hostd:
    """``hostd serve`` with a config of the bench's (defaults but for the paths)."""

    def __init__(
        self,
        root: Path,
        session: dict[str, Any],
        commands: dict[str, list[str]],
        *,
        act_for_others: tuple[str, ...] = (),
    ) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        self.socket = Path("/run/hostd-bench/hostd.sock")
        self.config = root / "hostd.toml"
        lines = [
            "[daemon]",
            f'socket = "{self.socket}"',
            f'state_dir = "{root}/state"',
            'runtime_dir = "/run/hostd-bench/run"',
            f"act_for_others = {toml_list(list(act_for_others))}",
            "",
            "[session]",
            f"cmd = {toml_list(lab_argv('{PORT}', '{BASE_URL}'))}",
        ]
        for key, value in session.items():
            lines.append(f"{key} = {toml_value(value)}")
        lines += ["", "[commands]"]
        lines += [f"{name} = {toml_list(argv)}" for name, argv in commands.items()]
        self.config.write_text("\n".join(lines) + "\n")
        self.config.chmod(0o644)  # JupyterHub (row d) reads the policy
        self.log = root / "hostd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(HOSTD_BIN / "hostd"), "serve", "--config", str(self.config)],
                env={**os.environ, **UNIT_ENV},
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hostd exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(OSError):
                if self.socket.exists() and self.api("GET", "/v1/health")[0] == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"hostd did not come up: {self.log.read_text()[-2000:]}")

    def api(
        self, method: str, path: str, body: Any = None, timeout: float = 300
    ) -> tuple[int, Any]:
        return uds(self.socket, method, path, body, timeout)

    def rss_mib(self) -> float:
        assert self.proc is not None
        return tree_rss_mib(self.proc.pid)

    def pss_mib(self) -> float:
        assert self.proc is not None
        return tree_pss_mib(self.proc.pid)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


# --- JupyterHub ------------------------------------------------------------------------------

HUB_COMMON = """
c = get_config()  # noqa
c.JupyterHub.authenticator_class = 'pam'
c.Authenticator.allow_all = True
c.JupyterHub.bind_url = 'http://127.0.0.1:{public_port}'
c.JupyterHub.hub_bind_url = 'http://127.0.0.1:{hub_port}'
c.ConfigurableHTTPProxy.api_url = 'http://127.0.0.1:{proxy_api_port}'
c.ConfigurableHTTPProxy.command = ['{chp}']
# POST .../server answers 202 at once; the bench reads the progress stream (no polling).
c.JupyterHub.tornado_settings = {{'slow_spawn_timeout': 0}}
c.JupyterHub.services = [{{'name': 'bench', 'api_token': '{token}'}}]
c.JupyterHub.load_roles = [{{
    'name': 'bench',
    'scopes': ['admin:users', 'admin:servers', 'access:servers'],
    'services': ['bench'],
}}]
# INFO: the stop rows read JupyterHub's own account of a stop ("server took ... to stop") and
# HostdSpawner's of the daemon's part from the log (drivers.stop_parts_from_log).
c.JupyterHub.log_level = 'INFO'
"""


class JupyterHub:
    """A real JupyterHub driven through its REST API with a service token."""

    def __init__(self, venv: Path, home: Path, spawner_config: str, run_as: str | None) -> None:
        self.venv, self.home, self.run_as = venv, home, run_as
        home.mkdir(parents=True, exist_ok=True)
        self.token = secrets.token_hex(16)
        self.public_port = free_port()
        self.url = f"http://127.0.0.1:{self.public_port}"
        self.config = home / "jupyterhub_config.py"
        self.config.write_text(
            HUB_COMMON.format(
                public_port=self.public_port,
                hub_port=free_port(),
                proxy_api_port=free_port(),
                chp=CHP,
                token=self.token,
            )
            + spawner_config
        )
        self.config.chmod(0o600)
        if run_as:
            shutil.chown(home, run_as, run_as)
            shutil.chown(self.config, run_as, run_as)
        self.log = home / "jupyterhub.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            "PATH": f"{self.venv}/bin:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
        }
        argv = [str(self.venv / "bin" / "jupyterhub"), "-f", str(self.config)]
        if self.run_as:
            argv = ["setpriv", f"--reuid={self.run_as}", f"--regid={self.run_as}",
                    "--init-groups", "--", *argv]  # fmt: skip
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                argv, cwd=self.home, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterHub exited ({self.proc.returncode}):\n{self.tail()}")
            with contextlib.suppress(OSError):
                if http(f"{self.url}/hub/api/", timeout=2)[0] == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"JupyterHub did not answer within 90 s:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def api(self, method: str, path: str, body: Any = None, timeout: float = 60) -> tuple[int, Any]:
        status, payload = http(
            f"{self.url}/hub/api{path}", method, token=self.token, body=body, timeout=timeout
        )
        try:
            return status, json.loads(payload) if payload.strip() else None
        except ValueError:
            return status, payload.decode(errors="replace")

    def add_user(self, name: str) -> None:
        status, body = self.api("POST", f"/users/{name}")
        if status not in (201, 409):
            raise RuntimeError(f"JupyterHub refused user {name}: {status} {body}")

    def rss_mib(self) -> float:
        """The hub and its configurable-http-proxy (its child), MiB."""
        assert self.proc is not None
        return tree_rss_mib(self.proc.pid)

    def pss_mib(self) -> float:
        assert self.proc is not None
        return tree_pss_mib(self.proc.pid)

    def proxy_rss_mib(self) -> float:
        assert self.proc is not None
        total = 0.0
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(self.proc.pid).children(recursive=True):
                if "node" in child.name() or "configurable" in " ".join(child.cmdline()):
                    total += child.memory_info().rss / 2**20
        return total

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        pid_file = self.home / "jupyterhub-proxy.pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)


# --- hostd-hub ---------------------------------------------------------------------------------


class HostdHub:
    """hostd-hub as an unprivileged system user in group hostd (as packaging installs it),
    driven through its JupyterHub-style REST API with per-user tokens (login, then
    POST /hub/api/users/{name}/tokens)."""

    def __init__(self, root: Path, hostd: Hostd, run_as: str) -> None:
        self.root, self.run_as = root, run_as
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = ""  # per user: see tokens
        self.tokens: dict[str, str] = {}
        self.config = root / "hub.toml"
        options = {
            "ip": "127.0.0.1",
            "port": self.port,
            "state_dir": str(root / "state"),
            "hostd_socket": str(hostd.socket),
            "log_level": "warning",
        }
        self.config.write_text(
            "[hub]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in options.items())
        )
        shutil.chown(root, run_as, run_as)
        self.log = root / "hub.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(self.root), **UNIT_ENV}
        argv = ["setpriv", f"--reuid={self.run_as}", f"--regid={self.run_as}", "--init-groups",
                "--", str(HOSTD_BIN / "hostd-hub"), "--config", str(self.config)]  # fmt: skip
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                argv, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hostd-hub exited ({self.proc.returncode}):\n{self.tail()}")
            with contextlib.suppress(OSError):
                if http(f"{self.url}/hub/api", timeout=2)[0] == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"hostd-hub did not answer within 60 s:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def log_in(self, user: str, password: str) -> None:
        """Log in through the form, then make an API token for the user (untimed)."""
        import httpx

        with httpx.Client(base_url=self.url, timeout=60, trust_env=False) as browser:
            page = browser.get("/hub/login")
            marker = 'name="_xsrf" value="'
            start = page.text.index(marker) + len(marker)
            xsrf = page.text[start : page.text.index('"', start)]
            form = {"_xsrf": xsrf, "username": user, "password": password}
            answer = browser.post("/hub/login", data=form)
            if answer.status_code != 303:
                raise RuntimeError(f"hostd-hub refused the login of {user}: {answer.status_code}")
            home = browser.get("/hub/home").text
            start = home.index(marker) + len(marker)
            xsrf = home[start : home.index('"', start)]
            made = browser.post(
                f"/hub/api/users/{user}/tokens", json={"note": "bench"},
                headers={"X-XSRFToken": xsrf},
            )  # fmt: skip
            if made.status_code != 201:
                raise RuntimeError(f"hostd-hub made no token for {user}: {made.status_code}")
            self.tokens[user] = made.json()["token"]

    @property
    def pid(self) -> int:
        """hostd-hub's own process (setpriv execs it)."""
        assert self.proc is not None
        return self.proc.pid

    def rss_mib(self) -> float:
        return tree_rss_mib(self.pid)

    def pss_mib(self) -> float:
        return tree_pss_mib(self.pid)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
