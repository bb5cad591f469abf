"""The daemon against a real systemd: each behaviour of issue 3, shown by its effect."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.hostd.daemon.systemd.conftest import (
    BASE_POLICY,
    PROBE,
    SANDBOX,
    SESSION_EXEC,
    as_member,
    cpu_seconds,
    raw_request,
    unit_property,
    units_left,
    write_plan,
)

pytestmark = pytest.mark.systemd


def probe_report(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url.split('/user/')[0]}/report", timeout=10) as response:  # noqa: S310 (http only)
        return json.loads(response.read())  # type: ignore[no-any-return]


def start(daemon: Any, user: str, *extra: str) -> dict[str, Any]:
    result = daemon.hostctl("start", user, "--json", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_a_session_is_a_unit_with_the_policy_running_as_the_user(daemon, make_user) -> None:
    d = daemon()
    user = make_user({})
    session = start(d, user)
    unit = f"jupyter-{user}.service"
    assert (session["state"], session["unit"]) == ("running", unit)
    expected = {
        "User": user,
        "Type": "exec",
        "MemoryMax": str(128 * 2**20),
        "CPUQuotaPerSecUSec": "500ms",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "NoNewPrivileges": "yes",
        "Slice": "jupyter.slice",
        "CollectMode": "inactive-or-failed",
        "SyslogIdentifier": f"jupyter-{user}",
        "MemoryAccounting": "yes",
        "CPUAccounting": "yes",
        "ReadOnlyPaths": str(SANDBOX),
        "ReadWritePaths": f"{SANDBOX}/rw",
    }
    assert {key: unit_property(unit, key) for key in expected} == expected
    assert (
        f"HOSTD_USER={user}"
        in subprocess.run(
            ["systemctl", "show", unit, "-p", "LogExtraFields"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    pid = int(unit_property(unit, "MainPID"))
    ps = subprocess.run(
        ["ps", "-o", "user=", "-p", str(pid)], capture_output=True, text=True, check=True
    )
    assert ps.stdout.strip() == user
    status = d.hostctl("status")
    assert status.returncode == 0
    assert any(line.split()[:2] == [user, "running"] for line in status.stdout.splitlines())
    assert probe_report(session["url"])["uid"] == int(subprocess.check_output(["id", "-u", user]))


def mapped_files(pid: int) -> set[str]:
    lines = Path(f"/proc/{pid}/maps").read_text().splitlines()
    return {line.split()[-1] for line in lines if len(line.split()) > 5}


def test_the_root_daemon_runs_a_session_without_openssl_mapped(daemon, make_user) -> None:
    # Issue 17's footprint: the daemon never speaks TLS, so `hostd serve` keeps OpenSSL out of
    # the root process (hostd.api.lean_imports.without_tls: 4.3 MiB of RSS); the D-Bus worker
    # loads pystemd's bus alone (no lxml). Read from the running processes, after a session.
    d = daemon()
    user = make_user({})
    assert start(d, user)["state"] == "running"
    assert d.proc is not None
    worker = [
        p for p in psutil.Process(d.proc.pid).children() if "busworker" in " ".join(p.cmdline())
    ]
    assert len(worker) == 1
    for pid in (d.proc.pid, worker[0].pid):
        assert [f for f in mapped_files(pid) if "libcrypto" in f or "libssl" in f] == [], pid
    assert [f for f in mapped_files(worker[0].pid) if "lxml" in f] == []
    metrics = d.hostctl_raw_metrics()  # prometheus_client's exposition, under the stand-in ssl
    assert "hostd_running_servers 1.0" in metrics, metrics[:2000]


def test_memory_max_kills_a_hog_and_the_start_reports_why(daemon, make_user) -> None:
    d = daemon()
    user = make_user({"hog_mib": 400})
    started = time.monotonic()
    result = d.hostctl("start", user)
    assert result.returncode == 1
    assert time.monotonic() - started < 10
    assert "[spawn-failed]" in result.stderr
    assert "out of memory (MemoryMax reached)" in result.stderr  # seen by the OOM watcher
    status, body = d.api("GET", f"/v1/sessions/{user}")
    assert status == 200
    # systemd says "signal" on v1; the OOM watcher knows it for an OOM kill.
    assert (body["state"], body["result"]) == ("failed", "oom-kill")
    # A failed session starts again with no reset-failed by hand.
    write_plan(user, {})
    assert start(d, user)["state"] == "running"


def test_cpu_quota_holds_a_busy_session_to_its_share(daemon, make_user) -> None:
    d = daemon(BASE_POLICY.replace("cpu_limit = 0.5", "cpu_limit = 0.2"))
    user = make_user({"busy": True})
    start(d, user)
    pid = int(unit_property(f"jupyter-{user}.service", "MainPID"))
    before, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(3)
    share = (cpu_seconds(pid) - before) / (time.monotonic() - t0)
    assert 0.10 <= share <= 0.25, f"busy session used {share:.0%} of a core at cpu_limit 0.2"


def test_a_missing_command_fails_the_start_call_itself_with_the_reason(daemon, make_user) -> None:
    d = daemon(BASE_POLICY.replace('"/usr/bin/python3"', '"/usr/bin/hostd-no-such-program"'))
    user = make_user({})
    started = time.monotonic()
    status, body = d.api("POST", f"/v1/sessions/{user}")
    assert time.monotonic() - started < 2
    assert status == 502
    assert body["code"] == "spawn-failed"
    assert "exit status 203 (EXEC" in body["message"]
    assert body["details"]["exit_status"] == 203
    assert units_left(f"jupyter-{user}") == []


def test_kill_9_of_the_daemon_loses_and_orphans_nothing(daemon, make_user) -> None:
    d = daemon()
    users = [make_user({}), make_user({})]
    for user in users:
        start(d, user)
    listed = d.api("GET", "/v1/sessions")[1]["sessions"]
    d.kill9()
    d.start()
    again = d.api("GET", "/v1/sessions")[1]["sessions"]
    assert [(s["user"], s["state"], s["url"]) for s in again] == [
        (s["user"], s["state"], s["url"]) for s in listed
    ]
    assert sorted(s["user"] for s in again) == sorted(users)
    for user in users:
        assert d.hostctl("stop", user).returncode == 0
    assert [u for u in units_left() if any(x in u for x in users)] == []
    assert list((d.runtime / "credentials").iterdir()) == []


def test_only_root_and_the_group_get_through_the_socket(daemon, make_user) -> None:
    d = daemon()
    outsider = make_user()
    member = make_user(groups="hostd")
    sock = str(d.socket)
    assert oct(d.socket.stat().st_mode & 0o777) == "0o660"
    assert raw_request(sock, "GET", "/v1/sessions")[0] == 200  # root
    # Debian's python3 and the standard library only: the user cannot read our venv.
    code = (
        "import socket, sys; c = socket.socket(socket.AF_UNIX); c.connect(sys.argv[1]);"
        "c.sendall(b'GET /v1/sessions HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n');"
        "print(c.recv(100).split()[1].decode())"
    )

    def as_user(user: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["runuser", "-u", user, "--", "/usr/bin/python3", "-c", code, sock],
            capture_output=True,
            text=True,
            check=False,
        )

    assert as_user(member).stdout.strip() == "200"
    denied = as_user(outsider)
    assert "PermissionError" in denied.stderr  # the socket's mode keeps them out first
    d.socket.chmod(0o666)  # and if the mode were wrong, the daemon's own check still refuses
    assert as_user(outsider).stdout.strip() == "403"


def test_a_member_of_the_group_acts_only_for_itself(daemon, make_user) -> None:
    # The attacker: carol, an ordinary account in group hostd (as the README once told admins
    # to make every user). Before the fix she read alice's Jupyter token, started a session
    # for bob (writing into his home as him) and stopped alice's.
    d = daemon()
    alice, bob = make_user({}), make_user({})
    carol = make_user(groups="hostd")
    start(d, alice)
    for method, path in [
        ("GET", f"/v1/sessions/{alice}/token"),
        ("GET", f"/v1/sessions/{alice}"),
        ("GET", f"/v1/sessions/{alice}/logs"),
        ("POST", f"/v1/sessions/{bob}"),
        ("DELETE", f"/v1/sessions/{alice}"),
        ("POST", "/v1/auth"),
    ]:
        status, body = as_member(d, carol, method, path)
        assert status == 403, (method, path, body)
        assert "may" in body["message"]
    status, body = as_member(d, carol, "GET", "/v1/sessions")
    assert status == 200 and body == {"sessions": []}
    assert d.api("GET", f"/v1/sessions/{alice}")[1]["state"] == "running"
    assert units_left(f"jupyter-{bob}") == []


def test_the_token_never_shows_in_the_units_environment_or_argv(daemon, make_user) -> None:
    d = daemon()
    user = make_user({})
    session = start(d, user)
    unit = f"jupyter-{user}.service"
    token_file = d.runtime / "credentials" / unit / "jupyter-token"
    token = token_file.read_text()
    assert len(token) >= 32
    uid = int(subprocess.check_output(["id", "-u", user]))
    assert oct(token_file.stat().st_mode & 0o777) == "0o400" and token_file.stat().st_uid == uid
    shown = subprocess.run(
        ["systemctl", "show", unit], capture_output=True, text=True, check=True
    ).stdout
    assert token not in shown
    pid = unit_property(unit, "MainPID")
    assert token not in Path(f"/proc/{pid}/cmdline").read_text()
    assert d.api("GET", f"/v1/sessions/{user}/token") == (200, {"token": token})
    report = probe_report(session["url"])
    assert report["token_readable"] is True
    assert report["token_file_env"] == str(token_file)
    other = make_user()
    peek = subprocess.run(
        ["runuser", "-u", other, "--", "cat", str(token_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert peek.returncode != 0 and token not in peek.stdout


def test_logs_come_back_through_the_api_and_hostctl(daemon, make_user) -> None:
    d = daemon()
    line = f"hello-from-the-session-{uuid.uuid4().hex}"
    user = make_user({"print": line})
    start(d, user)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status, body = d.api("GET", f"/v1/sessions/{user}/logs?lines=50")
        if status == 200 and any(e["message"] == line for e in body["lines"]):
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"{line} not in the API's logs: {body}")
    logs = d.hostctl("logs", user, "-n", "50")
    assert logs.returncode == 0 and line in logs.stdout.splitlines()


def test_start_and_stop_are_idempotent_and_bad_users_are_refused(daemon, make_user) -> None:
    d = daemon()
    user = make_user({})
    status, first = d.api("POST", f"/v1/sessions/{user}")
    assert status == 201
    status, again = d.api("POST", f"/v1/sessions/{user}")
    assert (status, again["url"]) == (200, first["url"])
    assert d.api("DELETE", f"/v1/sessions/{user}")[0] == 200
    status, body = d.api("DELETE", f"/v1/sessions/{user}")
    assert (status, body["state"]) == (200, "stopped")
    assert units_left(f"jupyter-{user}") == []
    for name, code, expected in [
        ("root", 403, "user-refused"),
        ("daemon", 403, "user-refused"),
        ("no-such-user-x", 404, "unknown-user"),
        ("bad%20name", 422, "invalid-name"),
    ]:
        status, body = d.api("POST", f"/v1/sessions/{name}")
        assert (status, body["code"]) == (code, expected), body
    status, body = d.api("POST", f"/v1/sessions/{user}", {"mem_limit": "lots"})
    assert (status, body["code"]) == (422, "invalid-size")
    assert d.socket.exists()


def test_secrets_reach_the_process_but_not_the_unit_and_commands_are_the_admins(
    daemon, make_user
) -> None:
    argv = f'["{SESSION_EXEC}", "/usr/bin/python3", "{PROBE}", "{{PORT}}"]'
    commands = f"\n[commands]\nwith-secrets = {argv}\n"
    d = daemon(BASE_POLICY + commands)
    user = make_user({})
    secret = f"s3cret-{uuid.uuid4().hex}"
    body = {"command": "with-secrets", "secrets": {"HOSTD_PROBE_SECRET": secret}}
    status, session = d.api("POST", f"/v1/sessions/{user}", body)
    assert status == 201, session
    assert probe_report(session["url"])["secret_env"] == secret
    unit = f"jupyter-{user}.service"
    shown = subprocess.run(["systemctl", "show", unit], capture_output=True, text=True, check=True)
    assert secret not in shown.stdout
    pid = unit_property(unit, "MainPID")
    assert secret not in Path(f"/proc/{pid}/cmdline").read_text()
    other = make_user()
    secrets_dir = d.runtime / "credentials" / unit
    peek = subprocess.run(
        ["runuser", "-u", other, "--", "cat", str(secrets_dir / "HOSTD_PROBE_SECRET")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert peek.returncode != 0 and secret not in peek.stdout
    assert d.api("DELETE", f"/v1/sessions/{user}")[0] == 200
    assert not secrets_dir.exists()
    status, body = d.api("POST", f"/v1/sessions/{user}", {"command": "rm-rf"})
    assert (status, body["code"]) == (422, "invalid-option")
    assert "with-secrets" in body["message"]


def test_logs_follow_streams_and_resumes_after_a_cursor(daemon, make_user) -> None:
    d = daemon()
    first, second = f"first-{uuid.uuid4().hex}", f"second-{uuid.uuid4().hex}"
    user = make_user({"print": first})
    start(d, user)
    deadline = time.monotonic() + 10
    entries: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not any(e["message"] == first for e in entries):
        entries = d.api("GET", f"/v1/sessions/{user}/logs?lines=50")[1]["lines"]
        time.sleep(0.1)
    cursor = next(e["cursor"] for e in entries if e["message"] == first)
    assert d.api("DELETE", f"/v1/sessions/{user}")[0] == 200
    write_plan(user, {"print": second})
    start(d, user)
    path = f"/v1/sessions/{user}/logs?follow=1&cursor={urllib.parse.quote(cursor)}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(10)
        conn.connect(str(d.socket))
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        while second.encode() not in data:
            chunk = conn.recv(65536)
            assert chunk, data
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert b" 200 " in head.split(b"\r\n")[0] and b"application/x-ndjson" in head
    streamed = [json.loads(x)["message"] for x in body.split(b"\r\n") if x.startswith(b"{")]
    assert first not in streamed  # resumed after the cursor, not from the start
    assert second in streamed
