"""Sessions on Unix sockets (issue 13), attacked as another real local account (``useradd``)
with only what any account has, against a real hostd, a real systemd and real JupyterLab.

On a port, this attacker took alice's address first (tests/hostd/daemon/systemd/
test_attacks.py): its listener was called alice's server before that fix, and the port range
could be filled by anyone. On her socket there is nothing to take: the address is in no public
property, the directory is closed to everyone but alice and the proxy group, and only a member
of that group (the hub's identity) reaches her server.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import REPO
from tests.hostd.daemon.systemd.test_attacks import start_in_background

pytestmark = pytest.mark.systemd

SESSION_VENV = Path(os.environ.get("HOSTD_HUB_CACHE", REPO / ".cache" / "hub")) / "session"

# mallory: looks for alice's address in her unit's public properties, and tries, until killed,
# to bind or connect to the socket path every account can work out. Prints each new outcome.
SOCKET_SQUATTER = r"""
import errno, socket, subprocess, sys, time
unit, path = sys.argv[1], sys.argv[2]
seen = set()
def say(what):
    if what not in seen:
        seen.add(what)
        print(what, flush=True)
while True:
    shown = subprocess.run(["systemctl", "show", unit, "-p", "Environment", "--value"],
                           capture_output=True, text=True).stdout
    if "HOSTD_PORT=" in shown:
        say("port-in-environment")
    for act in ("bind", "connect"):
        sock = socket.socket(socket.AF_UNIX)
        try:
            getattr(sock, act)(path)
            say(f"{act}: ok")
            if act == "bind":
                sock.listen()
                time.sleep(120)
        except OSError as exc:
            say(f"{act}: {errno.errorcode.get(exc.errno, exc.errno)}")
        finally:
            sock.close()
    time.sleep(0.01)
"""

# One GET over the socket, printing the status line (the hub's side, or mallory's).
GET = r"""
import socket, sys
sock = socket.socket(socket.AF_UNIX)
try:
    sock.connect(sys.argv[1])
except OSError as exc:
    sys.exit(f"connect: {exc.strerror}")
sock.sendall(f"GET {sys.argv[2]} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
print(sock.recv(64).split(b"\r\n")[0].decode())
"""


def as_account(user: str, code: str, *args: str, groups: tuple[int, ...] = ()) -> Any:
    """Debian's python3 running ``code`` as ``user`` with its own gid and only ``groups``."""
    account = pwd.getpwnam(user)
    return subprocess.Popen(
        ["/usr/bin/python3", "-c", code, *args],
        user=account.pw_uid,
        group=account.pw_gid,
        extra_groups=list(groups),
        env={"PATH": "/usr/bin:/bin", "HOME": account.pw_dir},
        cwd="/",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def ran(process: Any) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=60)
    return process.returncode, out.strip(), err.strip()


@pytest.fixture
def proxy_group() -> Iterator[str]:
    name = f"hp{uuid.uuid4().hex[:8]}"
    subprocess.run(["groupadd", name], check=True)
    yield name
    subprocess.run(["groupdel", name], check=False)


def lab_policy(**more: object) -> str:
    if not (SESSION_VENV / "bin" / "jupyter").exists():
        pytest.fail(f"{SESSION_VENV} is missing: run ./packaging/test.sh (it makes it)")
    cmd = [
        str(SESSION_VENV / "bin" / "jupyter"),
        "lab",
        "--no-browser",
        "--ServerApp.sock={SOCKET}",
        "--ServerApp.sock_mode=0660",
        "--ServerApp.base_url={BASE_URL}",
    ]
    lines = {"cmd": cmd, "isolate_tmp": True, "isolate_devices": True, **more}
    return "[session]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in lines.items())


def test_a_session_on_its_socket_is_the_users_and_the_hubs_alone(
    daemon, make_user, proxy_group: str
) -> None:
    # Under a read-only root (the admin's readonly_paths = ["/"]): the socket's directory
    # stays writable for the server.
    d = daemon(
        lab_policy(readonly_paths=["/"], readwrite_paths=["/home/{USERNAME}"]),
        proxy_group=proxy_group,
    )
    alice, mallory = make_user(), make_user()
    hub = make_user(groups=proxy_group)  # the hub's identity: a member of the proxy group
    path = d.runtime / "sessions" / alice / "jupyter.sock"
    squatter = as_account(mallory, SOCKET_SQUATTER, f"jupyter-{alice}.service", str(path))
    answer = start_in_background(d, alice)
    answer["thread"].join(timeout=120)
    squatter.kill()
    _, tries, _ = ran(squatter)
    # mallory tried all along and got nowhere: no address in the unit's environment; before
    # the directory was made there was no such path, and from then on it refused her.
    assert answer["status"] == 201 and answer["body"]["state"] == "running", answer
    outcomes = set(tries.splitlines())
    assert {"bind: EACCES", "connect: EACCES"} <= outcomes, tries
    assert outcomes <= {"bind: EACCES", "connect: EACCES", "bind: ENOENT", "connect: ENOENT"}
    assert answer["body"]["url"].startswith("http+unix://%2F")
    environment = subprocess.run(
        ["systemctl", "show", f"jupyter-{alice}.service", "-p", "Environment", "--value"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "PORT" not in environment and str(path.parent) not in environment
    # The hub's identity reaches her server; mallory, asking the same, does not.
    gid = grp.getgrnam(proxy_group).gr_gid
    status, out, err = ran(as_account(hub, GET, str(path), f"/user/{alice}/api", groups=(gid,)))
    assert (status, out) == (0, "HTTP/1.1 200 OK"), err
    status, out, err = ran(as_account(mallory, GET, str(path), f"/user/{alice}/api"))
    assert status != 0 and "Permission denied" in err
    # The socket is the user's and the proxy group's, 0660, as the server made it.
    info = path.lstat()
    assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (
        pwd.getpwnam(alice).pw_uid,
        gid,
        0o660,
    )
    # Stopped: nothing of the socket is left.
    assert d.api("DELETE", f"/v1/sessions/{alice}")[0] == 200
    assert not path.parent.exists()


def test_without_the_proxy_group_a_socket_session_is_refused_clearly(daemon, make_user) -> None:
    d = daemon(lab_policy(), proxy_group="hostd-no-such-group")
    alice = make_user()
    status, body = d.api("POST", f"/v1/sessions/{alice}")
    assert (status, body["code"]) == (500, "invalid-config"), body
    assert "groupadd --system hostd-no-such-group" in body["message"]
    assert d.api("GET", f"/v1/sessions/{alice}")[0] == 404  # never started
    assert not (d.runtime / "sessions" / alice).exists()
