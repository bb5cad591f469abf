"""HostdSpawner in a real JupyterHub (5.x and 6.x), inside a real systemd: issue 6, by effect.

JupyterHub runs as a non-root user in group hostd with seed 002's systemdspawner options; a
PAM user logs in, and the test drives JupyterHub's REST API with a service token.
"""

from __future__ import annotations

import asyncio
import json
import re
import stat
import time
import urllib.parse
import urllib.request
import uuid
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import psutil
import pytest
from websockets.asyncio.client import connect

from tests.api.spawner.systemd.conftest import (
    BROKEN_PREFIX,
    MISSING_PROGRAM,
    PROXY_GROUP,
    SOCKET_PREFIX,
    JupyterHub,
    NoRedirect,
    PamUser,
    http,
    run,
    seed_002_unit,
)
from tests.hostd.daemon.systemd.conftest import Daemon, unit_property, units_left

pytestmark = pytest.mark.systemd


def log_in(hub: JupyterHub, user: PamUser) -> int:
    """PAM login through JupyterHub's form; the status of the POST (302: logged in)."""
    return logged_in_opener(hub, user)[0]


def logged_in_opener(hub: JupyterHub, user: PamUser) -> tuple[int, urllib.request.OpenerDirector]:
    """PAM login through JupyterHub's form: the POST's status and the opener holding the cookies."""
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect())
    page = http(f"{hub.url}/hub/login", opener=opener)
    found = re.search(rb'name="_xsrf" value="([^"]+)"', page.body)
    assert found, page.body[:500]
    form = {"username": user.name, "password": user.password, "_xsrf": found.group(1).decode()}
    answer = http(
        f"{hub.url}/hub/login",
        "POST",
        data=urllib.parse.urlencode(form).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        opener=opener,
    )
    return answer.status, opener


def spawn(hub: JupyterHub, user: str) -> list[dict[str, Any]]:
    """Ask JupyterHub for user's server; the progress events until ready or failed."""
    known = hub.api("POST", f"/users/{user}")  # 409: known already (logged in)
    assert known.status in (201, 409), (known.status, known.body)
    answer = hub.api("POST", f"/users/{user}/server")
    assert answer.status in (201, 202), (answer.status, answer.body, hub.tail())
    return hub.progress(user)


def server_model(hub: JupyterHub, user: str) -> dict[str, Any] | None:
    answer = hub.api("GET", f"/users/{user}")
    assert answer.status == 200, answer.body
    servers: dict[str, Any] = answer.json()["servers"]
    return servers.get("")


def stop(hub: JupyterHub, user: str) -> None:
    answer = hub.api("DELETE", f"/users/{user}/server")
    assert answer.status in (202, 204), (answer.status, answer.body)
    deadline = time.monotonic() + 30
    while server_model(hub, user) is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert server_model(hub, user) is None


KERNEL_START_S = 120  # the longest a kernel may take to start (the VM tier runs under TCG)


async def run_in_kernel(hub: JupyterHub, user: str, code: str) -> str:
    """Start a kernel through JupyterHub's proxy, run code over its websocket, return stdout."""
    base = f"{hub.url}/user/{user}/api/kernels"
    created = http(base, "POST", token=hub.token, data=json.dumps({"name": "python3"}).encode())
    assert created.status == 201, (created.status, created.body)
    kernel = created.json()["id"]
    ws_url = f"{base.replace('http://', 'ws://')}/{kernel}/channels"
    msg_id = uuid.uuid4().hex
    request = {
        "header": {
            "msg_id": msg_id,
            "msg_type": "execute_request",
            "username": user,
            "session": uuid.uuid4().hex,
            "version": "5.3",
            "date": "",
        },
        "parent_header": {},
        "metadata": {},
        "content": {"code": code, "silent": False, "store_history": False},
        "channel": "shell",
        "buffers": [],
    }
    out = ""
    try:
        # Leaving the block waits for the closing handshake and closes the socket, before
        # asyncio.run() ends the loop. (tornado's close() only sends the close frame and leaves
        # the socket to its loop: once asyncio.run() had returned, the socket stayed open until
        # the garbage collector found it, a ResourceWarning in whichever test ran then.)
        # The handshake ends once jupyter_server has the kernel running (it waits for the
        # kernel's start before it answers): under TCG in the VM tier that took more than
        # websockets' default 10 s on a slow machine (stop 26's CI).
        async with connect(
            ws_url,
            additional_headers={"Authorization": f"token {hub.token}"},
            open_timeout=KERNEL_START_S,
        ) as connection:
            await connection.send(json.dumps(request))
            async with asyncio.timeout(60):
                while True:
                    message = json.loads(await connection.recv())
                    if message.get("parent_header", {}).get("msg_id") != msg_id:
                        continue
                    kind = message["header"]["msg_type"]
                    if kind == "stream":
                        out += message["content"]["text"]
                    elif kind == "error":
                        pytest.fail(f"the kernel raised: {message['content']}")
                    elif kind == "status" and message["content"]["execution_state"] == "idle":
                        return out
    finally:
        http(f"{base}/{kernel}", "DELETE", token=hub.token)


def proc_environ(pid: str) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_a_pam_user_gets_a_sandboxed_server_whose_kernel_answers_through_the_proxy(
    hub: JupyterHub, make_pam_user: Any
) -> None:
    user = make_pam_user()
    assert log_in(hub, user) == 302, hub.tail()
    wrong = PamUser(user.name, "not-the-password")
    assert log_in(hub, wrong) == 403  # PAM really decides

    events = spawn(hub, user.name)
    assert events[-1].get("ready"), (events, hub.tail())
    messages = [event.get("message", "") for event in events]
    assert len(events) > 2, messages  # JupyterHub's default is one event, then ready
    unit = f"jupyter-{user.name}.service"
    assert any(m.startswith(f"Asking hostd to start {unit}") for m in messages), messages
    assert any(m.startswith(f"systemd started {unit} (memory 2.0G, 1 CPU)") for m in messages)

    expected = seed_002_unit(user.name)
    assert {key: unit_property(unit, key) for key in expected} == expected

    # The API token reached jupyterhub-singleuser, and nothing any local user can read.
    pid = unit_property(unit, "MainPID")
    token = proc_environ(pid)["JUPYTERHUB_API_TOKEN"]
    assert len(token) >= 32
    assert token not in run("systemctl", "show", unit).stdout
    environment = unit_property(unit, "Environment")
    assert "JUPYTERHUB_API_TOKEN" not in environment and "JPY_API_TOKEN" not in environment
    assert token not in Path(f"/proc/{pid}/cmdline").read_text()

    assert asyncio.run(run_in_kernel(hub, user.name, "print(6*7)")) == "42\n"

    stop(hub, user.name)
    assert units_left(f"jupyter-{user.name}") == []


def test_a_spawn_whose_command_is_missing_fails_with_the_reason_within_seconds(
    hub: JupyterHub, make_pam_user: Any
) -> None:
    user = make_pam_user(BROKEN_PREFIX)
    started = time.monotonic()
    events = spawn(hub, user.name)
    took = time.monotonic() - started
    assert events[-1].get("failed"), events
    message = events[-1]["message"]
    assert f"the session of {user.name} failed to start" in message, message
    assert "exit status 127" in message, message
    assert took < 10, f"{took:.1f} s: {message}"
    answer = hub.api("GET", f"/users/{user.name}")
    assert answer.json()["servers"] == {}
    assert units_left(f"jupyter-{user.name}") == []
    assert str(MISSING_PROGRAM) in hub.tail(200)  # the session's last log lines, logged


def test_a_restarted_jupyterhub_finds_the_running_server_again(
    hub: JupyterHub, make_pam_user: Any
) -> None:
    user = make_pam_user()
    assert spawn(hub, user.name)[-1].get("ready")
    unit = f"jupyter-{user.name}.service"
    invocation = unit_property(unit, "InvocationID")

    hub.restart()

    model = server_model(hub, user.name)
    assert model is not None and model["ready"], model
    assert unit_property(unit, "InvocationID") == invocation  # the same server, not a new one
    status = http(f"{hub.url}/user/{user.name}/api/status", token=hub.token)
    assert status.status == 200, (status.status, status.body)
    stop(hub, user.name)
    assert units_left(f"jupyter-{user.name}") == []


def proxy_target(hub: JupyterHub, user: str) -> str:
    """The target of user's route in configurable-http-proxy, as JupyterHub lists it."""
    answer = hub.api("GET", "/proxy")
    assert answer.status == 200, (answer.status, answer.body)
    target: str = answer.json()[f"/user/{user}/"]["target"]
    return target


def test_a_server_on_a_unix_socket_answers_through_jupyterhub_6_and_is_refused_by_5(
    hub: JupyterHub, daemon: Daemon, make_pam_user: Any
) -> None:
    # The admin's [commands] socket listens on {SOCKET}; JupyterHub's account is in the
    # daemon's proxy_group (conftest), as install.sh makes the hub's.
    user = make_pam_user(SOCKET_PREFIX)
    unit = f"jupyter-{user.name}.service"
    sock = daemon.runtime / "sessions" / user.name / "jupyter.sock"
    events = spawn(hub, user.name)
    if hub.version == "jupyterhub5":
        assert events[-1].get("failed"), events
        message = events[-1]["message"]
        assert "on a Unix socket, which JupyterHub 5." in message, message
        assert "listens on {PORT}" in message, message
        assert hub.api("GET", f"/users/{user.name}").json()["servers"] == {}
        assert units_left(f"jupyter-{user.name}") == []  # stopped, not left for nothing
        return

    assert events[-1].get("ready"), (events, hub.tail())
    assert stat.S_ISSOCK(sock.stat().st_mode)
    assert "HOSTD_PORT" not in unit_property(unit, "Environment")
    server = psutil.Process(int(unit_property(unit, "MainPID")))
    assert [c for c in server.net_connections("inet") if c.status == psutil.CONN_LISTEN] == []
    # The proxy's route is the socket itself: no ":80" (what User.spawn makes of a URL) in it.
    target = proxy_target(hub, user.name)
    assert target.startswith("http+unix://") and ":" not in target[len("http+unix:") :], target
    assert urllib.parse.unquote(urllib.parse.urlparse(target).netloc) == str(sock)

    status = http(f"{hub.url}/user/{user.name}/api/status", token=hub.token)
    assert status.status == 200, (status.status, status.body, hub.tail())
    assert asyncio.run(run_in_kernel(hub, user.name, "print(6*7)")) == "42\n"  # WebSockets too

    # A restarted JupyterHub rebuilds the server from its database (no connect_url there).
    invocation = unit_property(unit, "InvocationID")
    hub.restart()
    model = server_model(hub, user.name)
    assert model is not None and model["ready"], (model, hub.tail())
    assert unit_property(unit, "InvocationID") == invocation
    assert proxy_target(hub, user.name) == target
    status = http(f"{hub.url}/user/{user.name}/api/status", token=hub.token)
    assert status.status == 200, (status.status, status.body, hub.tail())

    stop(hub, user.name)
    assert units_left(f"jupyter-{user.name}") == []


@pytest.mark.parametrize("hub", ["jupyterhub6"], indirect=True)
def test_a_jupyterhub_outside_the_proxy_group_is_told_so_at_once(
    hub: JupyterHub, make_pam_user: Any
) -> None:
    run("gpasswd", "-d", hub.user, PROXY_GROUP)
    try:
        hub.restart()  # its groups are read at login (setpriv --init-groups)
        user = make_pam_user(SOCKET_PREFIX)
        started = time.monotonic()
        events = spawn(hub, user.name)
        took = time.monotonic() - started
        assert events[-1].get("failed"), events
        message = events[-1]["message"]
        assert "JupyterHub's user cannot connect to" in message, message
        assert "proxy_group" in message, message
        assert took < 10, f"{took:.1f} s: {message}"  # not JupyterHub's http_timeout (30 s)
        assert units_left(f"jupyter-{user.name}") == []
    finally:
        run("gpasswd", "-a", hub.user, PROXY_GROUP)
        hub.restart()
