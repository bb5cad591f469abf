"""Sandbox escapes (issue 9), tried from inside a running session, as the session's user.

Each attempt is made by session_probe.py in the session; each target is first shown to be
reachable where only the sandbox could refuse it (a world-writable directory, a sudoers rule
that lets the user in, a setuid-root binary that elevates outside), so a refusal here is the
sandbox's doing and not a file permission's. What the session must not read (the daemon's
database, the hub's cookie secret, another session's token and secrets) is protected by modes
and owners instead: those tests check the files are really there, so a refusal is not a typo.
"""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import REPO
from tests.hostd.daemon.systemd.conftest import (
    BASE_POLICY,
    PROBE,
    SANDBOX,
    SESSION_EXEC,
    VENV_BIN,
    Daemon,
    unit_property,
    write_plan,
)
from tests.hostd.daemon.systemd.session_probe import block_devices

pytestmark = pytest.mark.systemd

# README's sandbox: the whole tree read-only but the user's home (and the test's rw path).
HARDENED_POLICY = BASE_POLICY.replace(
    f'readonly_paths = ["{SANDBOX}"]', 'readonly_paths = ["/"]'
).replace(
    f'readwrite_paths = ["{SANDBOX}/rw"]',
    f'readwrite_paths = ["/home/{{USERNAME}}", "{SANDBOX}/rw"]',
)
assert HARDENED_POLICY != BASE_POLICY and 'readonly_paths = ["/"]' in HARDENED_POLICY
StartDaemon = Callable[..., Daemon]
MakeUser = Callable[..., str]
SECRETS_COMMAND = (
    f'\n[commands]\nwith-secrets = ["{SESSION_EXEC}", "/usr/bin/python3", "{PROBE}", "{{PORT}}"]\n'
)


def probe_report(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url.split('/user/')[0]}/report", timeout=10) as response:  # noqa: S310 (http only)
        return json.loads(response.read())  # type: ignore[no-any-return]


def start(daemon: Daemon, user: str) -> dict[str, Any]:
    result = daemon.hostctl("start", user, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def as_user(user: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """A command as the user, outside any session: what the sandbox must take away."""
    return subprocess.run(
        ["runuser", "-u", user, "--", *argv], capture_output=True, text=True, check=False
    )


@pytest.fixture
def daemon_in_var_lib() -> Iterator[StartDaemon]:
    """A daemon whose state_dir is under /var/lib, as installed: under tmp_path (the other
    fixture's) the sessions' private /tmp would hide it whatever its mode."""
    started: list[tuple[Daemon, Path]] = []

    def start_daemon(policy: str) -> Daemon:
        root = Path(f"/var/lib/hostd-test-{uuid.uuid4().hex[:8]}")
        root.mkdir(mode=0o755)
        d = Daemon(root, policy)
        started.append((d, root))
        d.start()
        return d

    yield start_daemon
    for d, root in started:
        d.terminate()
        shutil.rmtree(d.socket.parent, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def hub_state() -> Iterator[Path]:
    """A hub state directory as installed: hostd-hub.service's StateDirectory= (0700, the hub's
    user's), filled by the hub's own prepare() running as that user."""
    tag = uuid.uuid4().hex[:8]
    hub_user, state = f"h{tag}", Path(f"/var/lib/hostd-hub-test-{tag}")
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", hub_user],
        check=True,
    )
    try:
        state.mkdir(mode=0o700)
        shutil.chown(state, hub_user, hub_user)
        code = (
            "from pathlib import Path; from api.hub.config import HubConfig; "
            "from api.hub.server import prepare; "
            f"prepare(HubConfig(state_dir=Path('{state}')))[0].close()"
        )
        subprocess.run(
            ["runuser", "-u", hub_user, "--", str(VENV_BIN / "python"), "-c", code],
            cwd=REPO,
            check=True,
        )
        yield state
    finally:
        shutil.rmtree(state, ignore_errors=True)
        subprocess.run(["userdel", "-f", hub_user], capture_output=True, check=False)


def test_writes_outside_readwrite_paths_fail_even_where_permissions_allow(
    daemon: StartDaemon, make_user: MakeUser
) -> None:
    d = daemon(HARDENED_POLICY)
    tag = uuid.uuid4().hex[:8]
    other = make_user()
    user = make_user()
    dirs = [Path(f"/{top}/hostd-test-{tag}") for top in ("etc", "usr", "opt")]
    other_home = Path(f"/home/{other}")
    writes = {f"{path.parts[1]}_write": f"{path}/probe" for path in dirs}
    writes |= {
        "other_home_write": f"{other_home}/probe",
        "ro_write": f"{SANDBOX}/ro-{tag}",  # 0777, under readonly_paths
        "rw_write": f"{SANDBOX}/rw/{tag}",  # 0777, under readwrite_paths
        "home_write": f"/home/{user}/probe",  # the user's own, under readwrite_paths
    }
    try:
        for path in dirs:
            path.mkdir()
        for path in [*dirs, other_home]:
            path.chmod(0o777)  # writable by permission: only the sandbox can refuse
        for target in writes.values():
            outside = as_user(user, "touch", target)
            assert outside.returncode == 0, (target, outside.stderr)
            Path(target).unlink()
        write_plan(user, {"writes": writes})
        report = probe_report(start(d, user)["url"])
    finally:
        for path in dirs:
            shutil.rmtree(path, ignore_errors=True)
    # OSError is EROFS, the read-only mount; a permission would have been PermissionError.
    refused = {key: report[key] for key in writes if key not in ("rw_write", "home_write")}
    assert refused == dict.fromkeys(refused, "OSError")
    assert (report["rw_write"], report["home_write"]) == ("ok", "ok")
    assert report["tmp_write"] == "ok"  # PrivateTmp= stays writable under ReadOnlyPaths=/
    Path(writes["rw_write"]).unlink()


def test_readonly_paths_alone_are_read_only_and_readwrite_paths_writable(
    daemon: StartDaemon, make_user: MakeUser
) -> None:
    d = daemon()  # readonly_paths = [SANDBOX], readwrite_paths = [SANDBOX/rw], both 0777
    tag = uuid.uuid4().hex[:8]
    writes = {"ro_write": f"{SANDBOX}/ro-{tag}", "rw_write": f"{SANDBOX}/rw/{tag}"}
    user = make_user({"writes": writes})
    for target in writes.values():
        assert as_user(user, "touch", target).returncode == 0
        Path(target).unlink()
    report = probe_report(start(d, user)["url"])
    assert (report["ro_write"], report["rw_write"]) == ("OSError", "ok")
    Path(writes["rw_write"]).unlink()


def test_a_file_in_one_sessions_tmp_is_not_in_anothers_nor_the_hosts(
    daemon: StartDaemon, make_user: MakeUser
) -> None:
    d = daemon()
    tag = uuid.uuid4().hex
    markers = {"tmp": f"/tmp/hostd-probe-{tag}", "var_tmp": f"/var/tmp/hostd-probe-{tag}"}
    first = make_user({"writes": markers, "reads": markers})  # written, then read back
    second = make_user({"reads": markers})
    try:
        seen_by_first = probe_report(start(d, first)["url"])
        seen_by_second = probe_report(start(d, second)["url"])
        on_host = [path for path in markers.values() if Path(path).exists()]
    finally:
        for path in markers.values():
            Path(path).unlink(missing_ok=True)
    assert {key: seen_by_first[key] for key in markers} == dict.fromkeys(markers, "ok")
    assert {key: seen_by_second[key] for key in markers} == dict.fromkeys(
        markers, "FileNotFoundError"
    )
    assert on_host == []


# systemd binds the host's /dev/shm into a private /dev; isolate_tmp gives each session a
# tmpfs of its own there (units/build.py, TemporaryFileSystem=).
def test_a_file_in_one_sessions_dev_shm_is_not_in_anothers(
    daemon: StartDaemon, make_user: MakeUser
) -> None:
    d = daemon()
    marker = {"shm": f"/dev/shm/hostd-probe-{uuid.uuid4().hex}"}
    first = make_user({"writes": marker, "reads": marker})
    second = make_user({"reads": marker})
    try:
        assert probe_report(start(d, first)["url"])["shm"] == "ok"
        seen_by_second = probe_report(start(d, second)["url"])["shm"]
        on_host = Path(marker["shm"]).exists()
    finally:
        Path(marker["shm"]).unlink(missing_ok=True)
    assert (seen_by_second, on_host) == ("FileNotFoundError", False)


def test_dev_has_no_disks(daemon: StartDaemon, make_user: MakeUser) -> None:
    d = daemon()
    disk = Path(f"/dev/hostd-test-disk-{uuid.uuid4().hex[:8]}")
    subprocess.run(["mknod", str(disk), "b", "7", "0"], check=True)  # a loop device's numbers
    try:
        assert str(disk) in block_devices()  # on the host the probe's walk finds it
        user = make_user({"reads": {"disk": str(disk)}})
        report = probe_report(start(d, user)["url"])
    finally:
        disk.unlink()
    assert report["dev_block"] == []
    assert disk.name not in report["dev"] and report["disk"] == "FileNotFoundError"
    assert {"null", "zero", "urandom"} <= set(report["dev"])


def test_sudo_and_setuid_binaries_do_not_elevate(daemon: StartDaemon, make_user: MakeUser) -> None:
    # disable_user_sudo alone: PrivateDevices= (isolate_devices) adds a system call filter,
    # which implies NoNewPrivileges= for a non-root unit (systemd.exec(5)) and would pass
    # this test with disable_user_sudo = false (seen).
    d = daemon(BASE_POLICY.replace("isolate_devices = true", "isolate_devices = false"))
    tag = uuid.uuid4().hex[:8]
    user = make_user()
    suid = Path(f"/opt/hostd-test/suid-id-{tag}")
    sudoers = Path(f"/etc/sudoers.d/hostd-test-{tag}")
    own_suid = f"/home/{user}/suid-{tag}"
    try:
        shutil.copy("/usr/bin/id", suid)
        suid.chmod(0o4755 | stat.S_IFREG)
        sudoers.write_text(f"{user} ALL=(ALL:ALL) NOPASSWD: ALL\n")
        sudoers.chmod(0o440)
        # Outside a session each of these makes the user root, or a setuid file.
        assert as_user(user, "sudo", "-n", "id", "-u").stdout.strip() == "0"
        assert as_user(user, "sudo", "-n", "true").returncode == 0
        assert as_user(user, str(suid), "-u").stdout.strip() == "0"
        made = as_user(user, "sh", "-c", f"touch {own_suid} && chmod 4755 {own_suid}")
        assert made.returncode == 0 and Path(own_suid).stat().st_mode & stat.S_ISUID
        Path(own_suid).unlink()
        plan = {
            "suid": str(suid),
            "setuid": {"own_suid": own_suid},
            "run": {"sudo_true": ["sudo", "-n", "true"], "sudo_id": ["sudo", "-n", "id", "-u"]},
        }
        write_plan(user, plan)
        report = probe_report(start(d, user)["url"])
    finally:
        sudoers.unlink(missing_ok=True)
        suid.unlink(missing_ok=True)
    assert report["sudo_true"]["rc"] != 0
    assert report["sudo_id"]["rc"] != 0 and report["sudo_id"]["stdout"] != "0"
    assert report["suid_euid"] == str(report["uid"]) != "0"
    assert report["own_suid"] == "PermissionError"  # RestrictSUIDSGID=


def test_a_session_reads_no_secret_of_the_daemon_the_hub_or_another_session(
    daemon_in_var_lib: StartDaemon, make_user: MakeUser, hub_state: Path
) -> None:
    d = daemon_in_var_lib(BASE_POLICY + SECRETS_COMMAND)
    victim, user = make_user({}), make_user({})
    secret = f"s3cret-{uuid.uuid4().hex}"
    body = {"command": "with-secrets", "secrets": {"HOSTD_PROBE_SECRET": secret}}
    status, session = d.api("POST", f"/v1/sessions/{victim}", body)
    assert status == 201, session
    assert probe_report(session["url"])["secret_env"] == secret
    credentials = d.runtime / "credentials"
    victim_pid = unit_property(f"jupyter-{victim}.service", "MainPID")
    assert d.proc is not None
    targets = {
        "victim_token": credentials / f"jupyter-{victim}.service" / "jupyter-token",
        "victim_secret": credentials / f"jupyter-{victim}.service" / "HOSTD_PROBE_SECRET",
        "victim_environ": Path(f"/proc/{victim_pid}/environ"),  # hostd-session-exec exports
        "daemon_db": d.root / "state" / "hostd.sqlite",
        "daemon_environ": Path(f"/proc/{d.proc.pid}/environ"),
        "hub_cookie_secret": hub_state / "cookie_secret",
        "hub_db": hub_state / "hub.sqlite",
        "shadow": Path("/etc/shadow"),
    }
    # Each is there, and holds what it should: a refusal below is not a wrong path.
    assert secret in targets["victim_secret"].read_text()
    assert secret in targets["victim_environ"].read_text()
    assert all(path.is_file() for path in targets.values()), targets
    write_plan(user, {"reads": {key: str(path) for key, path in targets.items()}})
    report = probe_report(start(d, user)["url"])
    assert {key: report[key] for key in targets} == dict.fromkeys(targets, "PermissionError")
    assert report["token_readable"] is True  # its own token, the same way
    assert secret not in json.dumps(report)
