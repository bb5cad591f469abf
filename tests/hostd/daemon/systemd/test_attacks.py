"""Issue 13's attacks on a session's TCP port, each run as the attacker: another real local
account (``useradd``), using only what any account has (``systemctl show``, Debian's python3),
against a real hostd and a real systemd.

Each failed on the code before the fix (seen by stashing it and running this file):
the squatter got alice's start answered ``running`` at its own listener, and a connection the
attacker held open kept alice's idle session from ever being culled.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests import REPO
from tests.hostd.daemon.systemd.conftest import BASE_POLICY

pytestmark = pytest.mark.systemd

# Made by test.sh (HOSTD_HUB_CACHE): JupyterLab in a venv every user can read.
SESSION_VENV = Path(os.environ.get("HOSTD_HUB_CACHE", REPO / ".cache" / "hub")) / "session"

# The squatter: polls the unit's public Environment= for HOSTD_PORT, binds it on loopback and
# listens, says so, and holds it. Standard library only, as an ordinary account.
SQUATTER = r"""
import socket, subprocess, sys, time
unit = sys.argv[1]
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    out = subprocess.run(["systemctl", "show", unit, "-p", "Environment", "--value"],
                         capture_output=True, text=True).stdout
    ports = [w.split("=", 1)[1] for w in out.split() if w.startswith("HOSTD_PORT=")]
    if ports:
        server = socket.socket()
        server.bind(("127.0.0.1", int(ports[0])))
        server.listen()
        print(ports[0], flush=True)
        time.sleep(120)
        sys.exit(0)
    time.sleep(0.01)
sys.exit("no HOSTD_PORT appeared")
"""

# The holder: one TCP connection to a port, held open.
HOLDER = r"""
import socket, sys, time
conn = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
print("connected", flush=True)
time.sleep(120)
"""


def capacity(**options: object) -> str:
    return "\n[capacity]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in options.items())


def as_user(user: str, code: str, *args: str) -> subprocess.Popen[str]:
    """Debian's python3 running ``code`` as ``user`` (its uid, gid and no other group): the
    attacker's process itself, so killing it ends the attack (runuser would stay between)."""
    account = pwd.getpwnam(user)
    return subprocess.Popen(
        ["/usr/bin/python3", "-c", code, *args],
        user=account.pw_uid,
        group=account.pw_gid,
        extra_groups=[],
        env={"PATH": "/usr/bin:/bin", "HOME": account.pw_dir},
        cwd="/",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def end(process: subprocess.Popen[str]) -> None:
    """Kill a process this test started and close its pipes."""
    process.kill()
    process.communicate(timeout=30)


def start_in_background(d: Any, user: str) -> dict[str, Any]:
    """POST /v1/sessions/USER in a thread; the dict gets "status" and "body" when it answers."""
    answer: dict[str, Any] = {}

    def run() -> None:
        answer["status"], answer["body"] = d.api("POST", f"/v1/sessions/{user}")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    answer["thread"] = thread
    return answer


def squat(d: Any, alice: str, mallory: str) -> tuple[dict[str, Any], int]:
    """Mallory takes alice's port while alice's server is still starting; alice's start's
    answer, and the port."""
    squatter = as_user(mallory, SQUATTER, f"jupyter-{alice}.service")
    try:
        answer = start_in_background(d, alice)
        assert squatter.stdout is not None
        line = squatter.stdout.readline().strip()  # blocks until mallory holds the port
        assert line.isdigit(), squatter.stderr.read() if squatter.stderr else line
        answer["thread"].join(timeout=120)
        assert not answer["thread"].is_alive()
        return answer, int(line)
    finally:
        end(squatter)


def test_a_port_another_account_takes_first_fails_the_start_loudly(daemon, make_user) -> None:
    # alice's server needs 4 s before it listens (the ~2 s JupyterLab takes, with room on a
    # busy 2-core machine); mallory binds her port meanwhile. Before the fix the daemon
    # answered 201 "running", its URL at mallory's listener.
    d = daemon()
    alice = make_user({"sleep_s": 4})
    mallory = make_user()
    answer, port = squat(d, alice, mallory)
    mallory_uid = pwd.getpwnam(mallory).pw_uid
    assert answer["status"] == 502 and answer["body"]["code"] == "spawn-failed", answer
    assert (
        f"port {port} was taken by another process (uid {mallory_uid}, pid "
        in answer["body"]["message"]
    ), answer
    status, view = d.api("GET", f"/v1/sessions/{alice}")
    assert view["state"] == "failed" and "was taken by another process" in view["reason"]
    assert view["url"] is None
    # Nothing of alice's is left running, and her next start works.
    assert d.api("GET", f"/v1/sessions/{alice}")[1]["state"] != "running"
    status, body = d.api("POST", f"/v1/sessions/{alice}")
    assert (status, body["state"]) == (201, "running"), body


def test_jupyterlab_refused_its_port_exits_instead_of_moving(daemon, make_user) -> None:
    # The real server, with a cmd that does not say --ServerApp.port_retries=0 (an admin's
    # older config): the daemon's JUPYTER_PORT_RETRIES=0 keeps JupyterLab from serving on
    # the next port (its default is to try 50), so the start fails and names the squatter.
    if not (SESSION_VENV / "bin" / "jupyter").exists():
        pytest.fail(f"{SESSION_VENV} is missing: run ./packaging/test.sh (it makes it)")
    cmd = [
        str(SESSION_VENV / "bin" / "jupyter"),
        "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        "--port={PORT}",
        "--ServerApp.base_url={BASE_URL}",
    ]
    d = daemon(f"[session]\ncmd = {json.dumps(cmd)}\nisolate_tmp = true\n")
    alice, mallory = make_user(), make_user()
    answer, port = squat(d, alice, mallory)
    assert answer["status"] == 502 and answer["body"]["code"] == "spawn-failed", answer
    assert f"port {port} was taken by another process" in answer["body"]["message"]
    journal = subprocess.run(
        ["journalctl", f"_SYSTEMD_UNIT=jupyter-{alice}.service", "-o", "cat", "--no-pager"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # It never served anywhere: no "Jupyter Server ... is running at" on any port.
    assert "is running at" not in journal, journal


def test_a_connection_another_account_holds_open_does_not_keep_a_session(daemon, make_user) -> None:
    # mallory holds one TCP connection to alice's idle session. Before the fix the reaper
    # counted it as activity and alice's session was never culled.
    d = daemon(BASE_POLICY + capacity(idle_timeout=3))
    alice, mallory = make_user({}), make_user()
    status, session = d.api("POST", f"/v1/sessions/{alice}")
    assert status == 201, session
    port = session["url"].split(":")[2].split("/")[0]
    holder = as_user(mallory, HOLDER, port)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "connected"
        deadline = time.monotonic() + 60  # culled within ~5 s; generous on a busy machine
        while time.monotonic() < deadline:
            view = d.api("GET", f"/v1/sessions/{alice}")[1]
            # Running until culled, then stopping; never "starting" (testbed run 38).
            if view["state"] not in ("running", "stopping"):
                break
            time.sleep(0.5)
        assert holder.poll() is None  # the connection was held all along
    finally:
        end(holder)
    assert view["state"] == "stopped" and "(culled)" in view["reason"], view
