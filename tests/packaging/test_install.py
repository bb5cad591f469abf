"""packaging/install.sh end to end, inside the testbed (a real systemd as PID 1).

One real install for the whole module (pip-installing JupyterLab is the slow part: pip's cache
is kept in the checkout's .cache/pip-install, which the testbed shares with the host, so only
the first run downloads). The tests then run in file order against that machine, as an admin
would: sessions through hostctl and through the hub, a second install, restarts, verify with
something broken, TLS, and finally --uninstall and --purge. The module leaves the testbed as
it found it (--purge, the users it made removed).

The hub is configured before the install (an admin's /etc/hostd/hub.toml is never
overwritten) to listen on loopback only, on a free port: the testbed shares the machine's
network, and the default is every interface on port 8000.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from hostd.cgroups.reader import CgroupReader
from tests.loopback import free_port

pytestmark = pytest.mark.systemd

TOP = Path(__file__).resolve().parents[2]
INSTALL = TOP / "packaging" / "install.sh"
PIP_CACHE = TOP / ".cache" / "pip-install"
NPM_CACHE = TOP / ".cache" / "npm-install"  # --jupyterhub: configurable-http-proxy
INSTALL_TIMEOUT_S = 1500
HUB_CONFIG = Path("/etc/hostd/hub.toml")
CONFIG = Path("/etc/hostd/hostd.toml")
SOCKET = Path("/run/hostd/hostd.sock")
PREFIX = Path("/opt/hostd")
# The installed one: the test's PATH has the checkout's .venv first.
HOSTCTL = Path("/usr/local/bin/hostctl")
# What a second install must leave untouched (mtime), besides the running processes.
INSTALLED = (
    PREFIX,
    Path("/etc/hostd"),
    Path("/etc/pam.d/hostd"),
    Path("/etc/systemd/system"),
    Path("/usr/local/bin"),
    Path("/etc/passwd"),
    Path("/etc/group"),
)


@dataclass
class Machine:
    hub_url: str
    first_install: subprocess.CompletedProcess[str]
    users: dict[str, str]  # name -> password

    def user(self) -> tuple[str, str]:
        name = f"i{uuid.uuid4().hex[:8]}"
        password = secrets.token_urlsafe(12)
        subprocess.run(["useradd", "-m", "-s", "/bin/bash", name], check=True)
        subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True)
        self.users[name] = password
        return name, password


def run(
    *argv: str | Path, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(arg) for arg in argv], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        command = " ".join(map(str, argv))
        pytest.fail(f"{command}: exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def install(*args: str) -> subprocess.CompletedProcess[str]:
    """Run install.sh with pip's and npm's caches kept beside the checkout (a second run is
    quick)."""
    env = {
        **os.environ,
        "PIP_CACHE_DIR": str(PIP_CACHE),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "npm_config_cache": str(NPM_CACHE),
    }
    return subprocess.run(
        [str(INSTALL), *args],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
        check=False,
        env=env,
    )


def main_pid(unit: str) -> int:
    return int(run("systemctl", "show", "-p", "MainPID", "--value", unit).stdout.strip())


def active(*units: str) -> list[str]:
    result = run("systemctl", "is-active", *units, check=False)
    return result.stdout.split()


def newer_than(marker: Path, roots: tuple[Path, ...]) -> list[str]:
    since = marker.stat().st_mtime
    changed = []
    for root in roots:
        if not root.exists():
            continue
        paths = [root] if root.is_file() else [root, *root.rglob("*")]
        for path in paths:
            try:
                if path.lstat().st_mtime > since:
                    changed.append(str(path))
            except FileNotFoundError:
                continue
    return changed


def wait_for(condition, timeout: float = 60, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}")


def write_loopback_hub_config() -> int:
    """The admin's /etc/hostd/hub.toml, written before install.sh (which keeps it): the shipped
    file on loopback and a free port, so the hub never meets another listener. Returns the port."""
    port = free_port()
    shipped = (TOP / "packaging" / "hub.toml").read_text()
    hub_config = re.sub(r'(?m)^ip = ""', 'ip = "127.0.0.1"', shipped)
    hub_config = re.sub(r"(?m)^port = 8000", f"port = {port}", hub_config)
    assert hub_config != shipped, "packaging/hub.toml no longer has the ip and port lines"
    HUB_CONFIG.parent.mkdir(mode=0o755)
    HUB_CONFIG.write_text(hub_config)
    return port


@pytest.fixture(scope="module")
def machine() -> Iterator[Machine]:
    if PREFIX.exists() or CONFIG.exists():
        pytest.fail(f"{PREFIX} or {CONFIG} exists already: this test needs a fresh testbed")
    port = write_loopback_hub_config()
    made = Machine(hub_url=f"http://127.0.0.1:{port}", first_install=install(), users={})
    try:
        yield made
    finally:
        for name in made.users:
            subprocess.run(
                ["systemctl", "stop", f"jupyter-{name}.service"], capture_output=True, check=False
            )
            subprocess.run(["userdel", "-r", "-f", name], capture_output=True, check=False)
        install("--purge")


@pytest.fixture(scope="module")
def session(machine: Machine) -> str:
    """A real user's JupyterLab started with hostctl; the tests below check it survives."""
    name, _ = machine.user()
    started = run(HOSTCTL, "start", name, timeout=180)
    assert f"started {name} (jupyter-{name}.service), running" in started.stdout
    return name


def test_install_succeeds_and_reports_each_step(machine: Machine) -> None:
    result = machine.first_install
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    for step in ("apt packages", "the daemon's venv", "the session environment", "systemd units"):
        assert f"==> {step}" in result.stdout
    assert "hostctl verify: all" in result.stdout
    # The testbed's hybrid cgroups: verify says what cannot be enforced there.
    shape = r"^WARN\s+cgroup shape\s+cgroup v1 or hybrid: not enforced"
    assert re.search(shape, result.stdout, re.M), result.stdout
    assert re.search(r"^ok\s+proxy group\s+group hostd-proxy: hostd-hub$", result.stdout, re.M)
    assert "kept your /etc/hostd/hub.toml" in result.stdout
    assert "hostd is installed and running." in result.stdout
    port = machine.hub_url.rsplit(":", 1)[1]
    assert re.search(rf"^  hub +http://\S+:{port}/$", result.stdout, re.M), result.stdout


def test_an_admins_hub_config_is_kept(machine: Machine) -> None:
    assert f"port = {machine.hub_url.rsplit(':', 1)[1]}" in HUB_CONFIG.read_text()


def test_units_are_active_and_enabled(machine: Machine) -> None:
    assert active("hostd.socket", "hostd.service", "hostd-hub.service") == ["active"] * 3
    enabled = run("systemctl", "is-enabled", "hostd.socket", "hostd.service", "hostd-hub.service")
    assert enabled.stdout.split() == ["enabled"] * 3


def test_socket_is_root_and_group_hostd_0660(machine: Machine) -> None:
    st = SOCKET.stat()
    assert (st.st_uid, oct(st.st_mode & 0o777)) == (0, "0o660")
    assert run("getent", "group", "hostd").stdout.split(":")[2] == str(st.st_gid)


def test_hub_runs_unprivileged_in_group_hostd(machine: Machine) -> None:
    pid = main_pid("hostd-hub.service")
    status = Path(f"/proc/{pid}/status").read_text()
    uid = re.search(r"^Uid:\s+(\d+)", status, re.M)
    assert uid is not None and uid[1] == run("id", "-u", "hostd-hub").stdout.strip() != "0"
    # hostd: the daemon's socket; hostd-proxy: the sessions' Unix sockets, in the running hub.
    assert {"hostd", "hostd-proxy"} <= set(run("id", "-nG", "hostd-hub").stdout.split())
    groups = re.search(r"^Groups:\s*(.*)$", status, re.M)
    proxy_gid = run("getent", "group", "hostd-proxy").stdout.split(":")[2]
    assert groups is not None and proxy_gid in groups[1].split()
    assert re.search(r"^NoNewPrivs:\s+1$", status, re.M)
    # Inside the hub's own mount namespace, as its user: the system is read-only but for its
    # state directory, and /etc/shadow is out of reach.
    gid = run("id", "-g", "hostd-hub").stdout.strip()
    as_hub = ["nsenter", f"--target={pid}", "--mount", f"--setuid={uid[1]}", f"--setgid={gid}"]
    for command, expected in (
        ("touch /opt/hostd/x", "Read-only file system"),
        ("touch /etc/hostd/x", "Read-only file system"),
        ("cat /etc/shadow", "Permission denied"),
    ):
        denied = run(*as_hub, "/bin/sh", "-c", command, check=False)
        assert denied.returncode != 0 and expected in denied.stderr, (command, denied.stderr)
    run(*as_hub, "/bin/sh", "-c", "touch /var/lib/hostd-hub/x && rm /var/lib/hostd-hub/x")


def test_a_user_session_starts_with_hostctl(session: str) -> None:
    assert active(f"jupyter-{session}.service") == ["active"]
    status = run(HOSTCTL, "status", session).stdout
    assert "running" in status
    # The default cmd: on its Unix socket, in a directory of the user's and hostd-proxy's.
    assert f"http+unix://%2Frun%2Fhostd%2Fsessions%2F{session}%2Fjupyter.sock/" in status
    directory = Path(f"/run/hostd/sessions/{session}")
    info = directory.stat()
    assert (info.st_uid, oct(info.st_mode & 0o7777)) == (
        int(run("id", "-u", session).stdout),
        "0o2710",
    )
    assert str(info.st_gid) == run("getent", "group", "hostd-proxy").stdout.split(":")[2]


def test_a_user_logs_in_and_starts_a_session_through_the_hub(machine: Machine) -> None:
    name, password = machine.user()
    with httpx.Client(base_url=machine.hub_url, timeout=60, follow_redirects=False) as hub:
        page = hub.get("/hub/login")
        assert page.status_code == 200, page.text
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
        assert xsrf is not None
        login = hub.post(
            "/hub/login", data={"username": name, "password": password, "_xsrf": xsrf[1]}
        )
        assert login.status_code in (302, 303), login.text
        home = hub.get("/hub/home")
        assert home.status_code == 200, home.text
        token = re.search(r'name="_xsrf" value="([^"]+)"', home.text)
        assert token is not None
        start = hub.post(f"/hub/api/users/{name}/server", headers={"X-XSRFToken": token[1]})
        assert start.status_code in (201, 202), start.text
        lab = wait_for(
            lambda: (r := hub.get(f"/user/{name}/lab")).status_code == 200 and r,
            timeout=120,
            what=f"/user/{name}/lab through the hub",
        )
        assert "JupyterLab" in lab.text
    assert active(f"jupyter-{name}.service") == ["active"]


def test_running_install_again_changes_nothing(machine: Machine, session: str) -> None:
    before = {
        unit: main_pid(unit)
        for unit in (f"jupyter-{session}.service", "hostd.service", "hostd-hub.service")
    }
    marker = Path("/run/hostd-install-marker")
    marker.touch()
    time.sleep(1.1)  # mtimes have a resolution; a change in this second must count
    try:
        again = install()
        assert again.returncode == 0, f"{again.stdout}\n{again.stderr}"
        # (A source file edited meanwhile is an upgrade: that reinstalls, as it should.)
        assert newer_than(marker, INSTALLED) == [], again.stdout
    finally:
        marker.unlink()
    assert "up to date" in again.stdout
    assert "restarted" not in again.stdout
    assert {unit: main_pid(unit) for unit in before} == before


def test_restarting_hostd_and_the_hub_keeps_the_session(session: str) -> None:
    unit = f"jupyter-{session}.service"
    pid, daemon = main_pid(unit), main_pid("hostd.service")
    run("systemctl", "restart", "hostd.service")
    assert main_pid("hostd.service") != daemon
    run("systemctl", "restart", "hostd-hub.service")
    assert (active(unit), main_pid(unit)) == (["active"], pid)
    # And the restarted daemon still knows it.
    assert "running" in run(HOSTCTL, "status", session).stdout


def test_verify_passes(machine: Machine) -> None:
    result = run(HOSTCTL, "verify", check=False, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^hostctl verify: all \d+ checks passed", result.stdout, re.M)
    for name in (
        "socket",
        "PAM",
        "cgroups",
        "CPU quota",
        "session environment",
        "unit hostd-hub.service",
    ):
        assert re.search(rf"^ok\s+{re.escape(name)}\s", result.stdout, re.M), result.stdout


def test_verify_fails_with_a_clear_line_when_the_socket_mode_is_broken(session: str) -> None:
    SOCKET.chmod(0o666)
    try:
        result = run(HOSTCTL, "verify", check=False, timeout=180)
    finally:
        # The fix verify gives; sessions keep running through it.
        pid = main_pid(f"jupyter-{session}.service")
        run("systemctl", "restart", "hostd.socket", "hostd.service")
    assert result.returncode == 1
    assert re.search(
        r"^FAIL\s+socket\s+/run/hostd/hostd.sock is root:hostd 0666, expected root:hostd 0660: "
        r"every local user can use the daemon$",
        result.stdout,
        re.M,
    ), result.stdout
    assert "fix: systemctl restart hostd.socket hostd.service" in result.stdout
    assert re.search(r"^hostctl verify: 1 of \d+ checks FAILED", result.stdout, re.M)
    assert oct(SOCKET.stat().st_mode & 0o777) == "0o660"
    assert main_pid(f"jupyter-{session}.service") == pid
    assert run(HOSTCTL, "verify", check=False, timeout=180).returncode == 0


SINGLEUSER = PREFIX / "session" / "bin" / "jupyterhub-singleuser"
SINGLEUSER_LINE = (
    'singleuser = ["/opt/hostd/bin/hostd-session-exec", "/opt/hostd/session/bin/'
    'jupyterhub-singleuser", "--ServerApp.sock={SOCKET}", "--ServerApp.sock_mode=0660", '
    '"--ServerApp.port=8888"]'
)


def test_verify_fails_on_a_missing_program_after_the_wrapper_and_passes_once_installed(
    machine: Machine,
) -> None:
    """Issue 14, F3: [commands] singleuser uncommented, jupyterhub not in the session
    environment: check-config and verify name the entry, the path and the fix; the fix, run
    as given, makes them pass."""
    original = CONFIG.read_text()
    assert not SINGLEUSER.exists(), "install.sh installs JupyterLab only"
    changed = original.replace("\n[commands]\n", f"\n[commands]\n{SINGLEUSER_LINE}\n", 1)
    assert changed != original, "packaging/hostd.toml no longer has a [commands] table"
    CONFIG.write_text(changed)
    try:
        missing = (
            r"^FAIL\s+program commands\.singleuser\s+/opt/hostd/session/bin/jupyterhub-singleuser "
            r"does not exist: every start with it fails$"
        )
        fix = "fix: /opt/hostd/session/bin/pip install jupyterhub"
        checked = run(HOSTCTL, "check-config", check=False)
        assert checked.returncode == 1, checked.stdout + checked.stderr
        assert re.search(missing, checked.stdout, re.M), checked.stdout
        assert fix in checked.stdout
        result = run(HOSTCTL, "verify", check=False, timeout=180)
        assert result.returncode == 1, result.stdout + result.stderr
        assert re.search(missing, result.stdout, re.M), result.stdout
        assert fix in result.stdout
        assert re.search(r"^hostctl verify: 1 of \d+ checks FAILED", result.stdout, re.M)

        env = {**os.environ, "PIP_CACHE_DIR": str(PIP_CACHE), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        pip = subprocess.run(
            [str(PREFIX / "session" / "bin" / "pip"), "install", "-q", "jupyterhub"],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
            env=env,
        )
        assert pip.returncode == 0, pip.stdout + pip.stderr
        result = run(HOSTCTL, "verify", check=False, timeout=180)
        assert result.returncode == 0, result.stdout + result.stderr
        assert re.search(
            r"^ok\s+program commands\.singleuser\s+/opt/hostd/bin/hostd-session-exec, then "
            r"/opt/hostd/session/bin/jupyterhub-singleuser$",
            result.stdout,
            re.M,
        ), result.stdout
    finally:
        CONFIG.write_text(original)


def test_verify_fails_while_the_hub_restarts_over_and_over_on_a_taken_port(
    machine: Machine,
) -> None:
    """Issue 14, F4: another process holds the hub's port; hostd-hub dies on EADDRINUSE and
    systemd restarts it every RestartSec=2, forever (never the start limit). verify used to
    call it active; it fails, naming the journal's line and the fix."""
    port = int(machine.hub_url.rsplit(":", 1)[1])
    run("systemctl", "stop", "hostd-hub.service")
    try:
        with socket.socket() as holder:
            # Past the hub's connections in TIME_WAIT; the hub still cannot bind a listener's port.
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            holder.bind(("127.0.0.1", port))
            holder.listen()
            run("systemctl", "start", "hostd-hub.service")
            result = run(HOSTCTL, "verify", check=False, timeout=180)
    finally:
        run("systemctl", "restart", "hostd-hub.service")
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(
        r"^FAIL\s+unit hostd-hub\.service\s+hostd-hub is restarting over and over "
        r"\(\d+ restarts? so far\): .*\[Errno 98\].*address already in use",
        result.stdout,
        re.M | re.I,
    ), result.stdout
    assert (
        "fix: another process holds the hub's port: set another port in /etc/hostd/hub.toml "
        "(or stop that process: ss -ltnp), then systemctl restart hostd-hub"
    ) in result.stdout
    assert re.search(r"^\s+\| .*\[Errno 98\]", result.stdout, re.M), result.stdout
    assert not re.search(r"^ok\s+unit hostd-hub\.service", result.stdout, re.M)
    # The port free again, the hub runs and verify passes (it waits for the hub to settle).
    wait_for(lambda: active("hostd-hub.service") == ["active"], what="hostd-hub active")
    again = run(HOSTCTL, "verify", check=False, timeout=180)
    assert again.returncode == 0, again.stdout + again.stderr


def memory_limit_file(group: str) -> Path:
    """The kernel's memory limit file of a cgroup, on v2 or (the testbed on a hybrid host) v1."""
    reader = CgroupReader.load()
    mount = reader.mounts.v2 if reader.version == "v2" else reader.mounts.v1_mount("memory")
    directory = None if mount is None else mount.path_of(group)
    assert directory is not None, f"no memory cgroup for {group}"
    name = "memory.max" if reader.version == "v2" else "memory.limit_in_bytes"
    return Path(directory) / name


def test_config_set_and_reload_give_new_sessions_the_limit(machine: Machine, session: str) -> None:
    """tljh-config's `set limits.memory 4G && reload`, with hostctl: the file is changed (its
    comments kept), the daemon restarts and answers, a new session gets MemoryMax=4G, the
    running one keeps running. A bad value, or a file broken by hand, restarts nothing."""
    shipped = CONFIG.read_bytes()
    running = main_pid(f"jupyter-{session}.service")
    daemon = main_pid("hostd.service")
    try:
        changed = run(HOSTCTL, "config", "set", "limits.memory", "4G")
        assert 'session.mem_limit (tljh-config\'s limits.memory) = "4G"' in changed.stdout
        assert run(HOSTCTL, "config", "get", "session.mem_limit").stdout == '"4G"\n'
        assert b"# seconds a started session has to answer" in CONFIG.read_bytes()
        reloaded = run(HOSTCTL, "reload", timeout=300)
        assert "restarted hostd.service: answers GET /v1/health" in reloaded.stdout
        assert "restarted hostd-hub.service: answers GET http://127.0.0.1:" in reloaded.stdout
        assert main_pid("hostd.service") not in (0, daemon)
        assert main_pid(f"jupyter-{session}.service") == running

        name, _ = machine.user()
        run(HOSTCTL, "start", name, timeout=180)
        unit = f"jupyter-{name}.service"
        four_g = str(4 * 1024**3)
        assert run("systemctl", "show", "-p", "MemoryMax", "--value", unit).stdout.strip() == four_g
        # And the kernel holds the session to it: its cgroup's memory.max (limit_in_bytes on v1).
        group = run("systemctl", "show", "-p", "ControlGroup", "--value", unit).stdout.strip()
        assert memory_limit_file(group).read_text().strip() == four_g
        run(HOSTCTL, "stop", name)

        daemon, good = main_pid("hostd.service"), CONFIG.read_bytes()
        refused = run(HOSTCTL, "config", "set", "session.mem_limit", "4X", check=False)
        assert refused.returncode == 1
        assert "session.mem_limit: invalid size '4X'" in refused.stderr
        assert CONFIG.read_bytes() == good
        CONFIG.write_bytes(good + b"bogus = 1\n")  # lands in [shared], by hand
        broken = run(HOSTCTL, "reload", check=False, timeout=300)
        assert broken.returncode == 1
        assert "shared.bogus" in broken.stderr
        assert "nothing restarted" in broken.stderr
        assert main_pid("hostd.service") == daemon
    finally:
        CONFIG.write_bytes(shipped)
        run("systemctl", "restart", "hostd.service")


def test_self_signed_tls(machine: Machine, session: str) -> None:
    pid = main_pid(f"jupyter-{session}.service")
    result = install("--self-signed", "127.0.0.1")
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert "NOT FOR PRODUCTION" in result.stdout
    crt, key = Path("/etc/hostd/tls/hub.crt"), Path("/etc/hostd/tls/hub.key")
    assert oct(key.stat().st_mode & 0o777) == "0o640"
    assert key.stat().st_gid == int(run("id", "-g", "hostd-hub").stdout)
    context = ssl.create_default_context(cafile=str(crt))  # checks the name: IP 127.0.0.1
    url = machine.hub_url.replace("http://", "https://")
    page = wait_for(
        lambda: _get_or_none(f"{url}/hub/login", context), timeout=30, what="the hub over HTTPS"
    )
    assert page.status_code == 200
    assert main_pid(f"jupyter-{session}.service") == pid


def _get_or_none(url: str, context: ssl.SSLContext) -> httpx.Response | None:
    try:
        return httpx.get(url, verify=context, timeout=10)
    except httpx.TransportError:
        return None


def test_uninstall_then_purge(machine: Machine, session: str) -> None:
    result = install("--uninstall")
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    ours = ("hostd.*", "hostd-hub.*", "jupyter*")  # not the testbed's hostd-testbed.target
    files = run("systemctl", "list-unit-files", "--no-legend", *ours, check=False)
    assert files.stdout.strip() == ""
    loaded = run("systemctl", "list-units", "--all", "--no-legend", *ours, check=False)
    assert loaded.stdout.strip() == ""
    units = ("hostd.socket", "hostd.service", "hostd-hub.service", "hostd-hub.service.d")
    assert not [unit for unit in units if Path("/etc/systemd/system", unit).exists()]
    assert not Path("/etc/systemd/system/jupyter.slice").exists()
    assert not PREFIX.exists()
    assert not any(
        Path("/usr/local/bin", tool).is_symlink() for tool in ("hostd", "hostctl", "hostd-hub")
    )
    assert run("getent", "passwd", "hostd-hub", check=False).returncode == 2
    assert run("getent", "group", "hostd", check=False).returncode == 2
    assert run("getent", "group", "hostd-proxy", check=False).returncode == 2
    # Kept: the config, the PAM file, the databases, and users' homes.
    assert CONFIG.exists() and HUB_CONFIG.exists() and Path("/etc/pam.d/hostd").exists()
    assert Path("/var/lib/hostd").exists()
    assert Path(f"/home/{session}").is_dir()

    purged = install("--purge")
    assert purged.returncode == 0, f"{purged.stdout}\n{purged.stderr}"
    for gone in ("/etc/hostd", "/etc/pam.d/hostd", "/var/lib/hostd", "/var/lib/hostd-hub"):
        assert not Path(gone).exists(), gone
    assert Path(f"/home/{session}").is_dir()
