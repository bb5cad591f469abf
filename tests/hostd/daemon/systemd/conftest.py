"""Fixtures for the daemon's systemd tier: real users, a real hostd serving a real socket.

Every test makes its own users (``useradd``) and its own daemon (config in tmp_path), and
leaves nothing: sessions stopped, users removed, the daemon terminated.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import REPO

VENV_BIN = Path(sys.executable).parent
PROBE_SOURCE = Path(__file__).with_name("session_probe.py")
SANDBOX = Path("/srv/hostd-test")  # readonly_paths in the test policy
PROBE = Path("/opt/hostd-test/session_probe.py")  # readable by every user, unlike a checkout
SESSION_EXEC = Path("/opt/hostd-test/hostd-session-exec")
SESSION_EXEC_SOURCE = REPO / "packaging" / "hostd-session-exec"

# How long hostd may take to answer after `hostd serve`: ~1 s on a host; inside packaging/vm
# (TCG, ~5x slower, imports 10x: MACHINE.md) it takes 15-40 s.
START_DEADLINE_S = 90.0 if os.environ.get("HOSTD_VM") == "1" else 15.0

BASE_POLICY = f"""
[session]
cmd = ["/usr/bin/python3", "{PROBE}", "{{PORT}}"]
mem_limit = "128M"
cpu_limit = 0.5
isolate_tmp = true
isolate_devices = true
disable_user_sudo = true
readonly_paths = ["{SANDBOX}"]
readwrite_paths = ["{SANDBOX}/rw"]
"""


def _unchunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        out, body = out + rest[:size], rest[size + 2 :]
    return out


def raw_request(sock_path: str, method: str, path: str, body: bytes = b"") -> tuple[int, Any]:
    """HTTP/1.1 over the Unix socket with the standard library (runs as any user)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(60)
        conn.connect(sock_path)
        head = f"{method} {path} HTTP/1.1\r\nHost: hostd\r\nContent-Length: {len(body)}\r\n"
        conn.sendall(head.encode() + b"Connection: close\r\n\r\n" + body)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    header, _, payload = data.partition(b"\r\n\r\n")
    status = int(header.split()[1])
    if b"transfer-encoding: chunked" in header.lower():
        payload = _unchunk(payload)
    return status, json.loads(payload) if payload.strip() else None


class Daemon:
    def __init__(
        self,
        root: Path,
        policy: str,
        *,
        act_for_others: tuple[str, ...] = (),
        proxy_group: str | None = None,
    ) -> None:
        self.root = root
        # Not under tmp_path (0700): members of the group must be able to reach the socket.
        # Nor the runtime directory: sessions have a private /tmp and must read their token.
        self.socket = Path(f"/run/hostd-test-{uuid.uuid4().hex[:8]}/hostd.sock")
        self.runtime = self.socket.parent / "run"
        self.config = root / "hostd.toml"
        self.config.write_text(
            f'[daemon]\nsocket = "{self.socket}"\nstate_dir = "{root}/state"\n'
            f'runtime_dir = "{self.runtime}"\nstart_timeout = 20\n'
            f"act_for_others = {json.dumps(list(act_for_others))}\n"
            + (f"proxy_group = {json.dumps(proxy_group)}\n" if proxy_group else "")
            + policy
        )
        self.log = root / "hostd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(VENV_BIN / "hostd"), "serve", "--config", str(self.config)],
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"hostd exited: {self.log.read_text()}")
            if self.socket.exists():
                try:
                    if raw_request(str(self.socket), "GET", "/v1/health")[0] == 200:
                        return
                except OSError:
                    pass
            time.sleep(0.05)
        # Not left running: the fixture only stops the daemons that came up (seen in the VM: six
        # such daemons kept its two vCPUs busy for the rest of the run).
        self.terminate()
        pytest.fail(f"hostd did not come up in {START_DEADLINE_S:.0f} s: {self.log.read_text()}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def hostctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(VENV_BIN / "hostctl"), "--socket", str(self.socket), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def hostctl_raw_metrics(self) -> str:
        """GET /metrics as text (not JSON)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(str(self.socket))
            conn.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.split()[1] == b"200", head
        if b"transfer-encoding: chunked" in head.lower():
            body = _unchunk(body)
        return body.decode()

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = b"" if body is None else json.dumps(body).encode()
        return raw_request(str(self.socket), method, path, data)


@pytest.fixture(scope="session", autouse=True)
def _sandbox_paths() -> Iterator[None]:
    # Inside the testbed these land in the overlay; made once, removed at the end.
    PROBE.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROBE_SOURCE, PROBE)
    PROBE.chmod(0o755)
    shutil.copy(SESSION_EXEC_SOURCE, SESSION_EXEC)
    SESSION_EXEC.chmod(0o755)
    (SANDBOX / "rw").mkdir(parents=True, exist_ok=True)
    for path in (SANDBOX, SANDBOX / "rw"):
        path.chmod(0o777)  # writable by permission: only the sandbox can refuse a write
    subprocess.run(["groupadd", "-f", "hostd"], check=True)
    yield
    shutil.rmtree(PROBE.parent, ignore_errors=True)
    shutil.rmtree(SANDBOX, ignore_errors=True)


@pytest.fixture
def make_user() -> Iterator[Callable[..., str]]:
    made: list[str] = []

    def make(plan: dict[str, Any] | None = None, *, groups: str = "") -> str:
        name = f"u{uuid.uuid4().hex[:8]}"
        argv = ["useradd", "-m", "-s", "/bin/bash", name] + (["-G", groups] if groups else [])
        subprocess.run(argv, check=True)
        made.append(name)
        if plan is not None:
            write_plan(name, plan)
        return name

    yield make
    for name in made:
        # Named servers too (jupyter-<user>:<server>.service), and the user's slice.
        units = [f"jupyter-{name}.service", f"jupyter-{name}:*.service", f"jupyter-{name}.slice"]
        subprocess.run(["systemctl", "stop", *units], capture_output=True, check=False)
        subprocess.run(["userdel", "-r", "-f", name], capture_output=True, check=False)


def write_plan(user: str, plan: dict[str, Any]) -> None:
    home = Path(f"/home/{user}")
    path = home / ".hostd-probe.json"
    path.write_text(json.dumps(plan))
    shutil.chown(path, user, user)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def start(policy: str = BASE_POLICY, **options: Any) -> Daemon:
        root = tmp_path / f"d{len(started)}"
        root.mkdir()
        d = Daemon(root, policy, **options)
        d.start()
        started.append(d)
        return d

    yield start
    for d in started:
        d.terminate()
        shutil.rmtree(d.socket.parent, ignore_errors=True)


def unit_property(unit: str, prop: str) -> str:
    out = subprocess.run(
        ["systemctl", "show", unit, "-p", prop, "--value"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def units_left(prefix: str = "jupyter-") -> list[str]:
    out = subprocess.run(
        ["systemctl", "list-units", "--all", "--plain", "--no-legend", f"{prefix}*"],
        capture_output=True,
        text=True,
        check=True,
    )
    return [line.split()[0] for line in out.stdout.splitlines() if line.strip()]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_AS_MEMBER_CLIENT = r"""
import socket, sys
c = socket.socket(socket.AF_UNIX)
c.connect(sys.argv[1])
c.sendall(f"{sys.argv[2]} {sys.argv[3]} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
          "Connection: close\r\n\r\n{}".encode())
data = b""
while chunk := c.recv(65536):
    data += chunk
head, _, body = data.partition(b"\r\n\r\n")
print(head.split()[1].decode())
print(body.decode())
"""


def as_member(d: Daemon, user: str, method: str, path: str) -> tuple[int, Any]:
    """A request on the daemon's socket as ``user``, a local account: Debian's python3 and the
    standard library only (the account cannot read our venv)."""
    argv = ["runuser", "-u", user, "--", "/usr/bin/python3", "-c", _AS_MEMBER_CLIENT, str(d.socket)]
    done = subprocess.run(
        [*argv, method, path],
        capture_output=True,
        text=True,
        check=True,
    )
    status, _, body = done.stdout.partition("\n")
    return int(status), json.loads(body)
