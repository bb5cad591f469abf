"""A restart of the hub on a real machine (inside packaging/testbed): the sessions are systemd
units of their own and keep running, a logged-in user's cookie still works (the cookie key is
on disk), pages answer again, and a kernel's WebSocket, closed by the restart, reconnects to the
same kernel with its state intact (issue 9)."""

from __future__ import annotations

import contextlib
import json
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import httpx
import pytest
import websockets
from websockets.sync.client import ClientConnection, connect

from tests.hub.conftest import Hub, PamUser, log_in, run, xsrf_of
from tests.hub.test_hub import cookie, progress, ws_url

pytestmark = pytest.mark.systemd

CLOSE_WAIT_S = 30  # the hub's graceful shutdown is bounded at 10 s (api.hub.server)


@pytest.fixture(scope="module")
def carol(make_pam_user: Callable[..., PamUser]) -> PamUser:
    return make_pam_user()


@pytest.fixture(scope="module")
def carol_browser(hub: Hub, carol: PamUser) -> Iterator[httpx.Client]:
    with hub.browser() as client:
        assert log_in(client, carol.name, carol.password).status_code == 303, hub.tail()
        yield client


@pytest.fixture(scope="module")
def carol_lab(hub: Hub, carol: PamUser, carol_browser: httpx.Client) -> str:
    xsrf = xsrf_of(carol_browser.get("/hub/home").text)
    response = carol_browser.post(
        f"/hub/api/users/{carol.name}/server", headers={"X-XSRFToken": xsrf}
    )
    assert response.status_code in (201, 202), (response.text, hub.tail())
    events = progress(carol_browser, carol.name)
    assert events[-1].get("ready"), (events, hub.tail())
    return str(events[-1]["url"])


def main_pid(unit: str) -> tuple[str, int]:
    shown = run("systemctl", "show", unit, "-p", "ActiveState", "-p", "MainPID").stdout
    values = dict(line.split("=", 1) for line in shown.split())
    return values["ActiveState"], int(values["MainPID"])


def channels(hub: Hub, client: httpx.Client, user: str, kernel_id: str) -> ClientConnection:
    session = uuid.uuid4().hex
    url = ws_url(hub, f"/user/{user}/api/kernels/{kernel_id}/channels?session_id={session}")
    return connect(url, additional_headers=cookie(client), open_timeout=30)


def run_code(socket: ClientConnection, user: str, code: str) -> str:
    """Run code over an open channels WebSocket; what it printed."""
    msg_id = uuid.uuid4().hex
    header = {
        "msg_id": msg_id,
        "username": user,
        "session": uuid.uuid4().hex,
        "msg_type": "execute_request",
        "version": "5.3",
        "date": datetime.now(UTC).isoformat(),
    }
    content = {"code": code, "silent": False, "store_history": False, "user_expressions": {},
               "allow_stdin": False, "stop_on_error": True}  # fmt: skip
    socket.send(json.dumps({"header": header, "parent_header": {}, "metadata": {},
                            "content": content, "channel": "shell", "buffers": []}))  # fmt: skip
    printed = ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        message = json.loads(socket.recv(timeout=60))
        if message.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind = message["header"]["msg_type"]
        if kind == "stream":
            printed += message["content"]["text"]
        if kind == "error":
            printed += "error: " + message["content"]["ename"]
        if kind == "status" and message["content"]["execution_state"] == "idle":
            return printed
    raise AssertionError(f"no answer from the kernel; printed so far {printed!r}")


def closed_by_peer(socket: ClientConnection) -> websockets.ConnectionClosed | None:
    """The close the other side sent, or None if the socket stayed open CLOSE_WAIT_S."""
    deadline = time.monotonic() + CLOSE_WAIT_S
    try:
        while time.monotonic() < deadline:
            socket.recv(timeout=deadline - time.monotonic())  # whatever was still on its way
    except websockets.ConnectionClosed as closed:
        return closed
    except TimeoutError:
        pass
    return None


def test_a_hub_restart_keeps_sessions_cookies_and_kernel_state(
    hub: Hub, carol: PamUser, carol_browser: httpx.Client, carol_lab: str
) -> None:
    user = carol.name
    unit = f"jupyter-{user}.service"
    kernel = carol_browser.post(f"/user/{user}/api/kernels", json={"name": "python3"})
    assert kernel.status_code == 201, (kernel.text, hub.tail())
    kernel_id = kernel.json()["id"]
    page = carol_browser.get(f"/user/{user}/lab", headers={"accept": "text/html"})
    assert page.status_code == 200 and "JupyterLab" in page.text
    try:
        with channels(hub, carol_browser, user, kernel_id) as old:
            assert run_code(old, user, "x = 41; print('set')") == "set\n"
            state_before, pid_before = main_pid(unit)
            assert state_before == "active" and pid_before > 0
            assert hub.proc is not None
            hub_pid_before = hub.proc.pid
            # As systemd restarts hostd-hub.service: SIGTERM, wait for the exit, start again.
            started = time.monotonic()
            hub.stop()
            # uvicorn re-raises SIGTERM after its graceful shutdown; systemd counts an exit
            # by SIGTERM as clean (systemd.service(5), SuccessExitStatus=).
            assert hub.proc.returncode in (0, -signal.SIGTERM), hub.tail()
            stop_s = time.monotonic() - started
            hub.start()
            restart_s = time.monotonic() - started
            assert hub.proc.pid != hub_pid_before
            closed = closed_by_peer(old)
        assert closed is not None, "the kernel WebSocket through the old hub stayed open"
        assert main_pid(unit) == ("active", pid_before), "the session did not survive"

        # The same cookie (the browser is the same client) is still a login.
        home = carol_browser.get("/hub/home")
        assert home.status_code == 200 and f"Log out {user}" in home.text, hub.tail()
        page = carol_browser.get(f"/user/{user}/lab", headers={"accept": "text/html"})
        assert page.status_code == 200 and "JupyterLab" in page.text, hub.tail()
        with channels(hub, carol_browser, user, kernel_id) as new:
            assert run_code(new, user, "print(x + 1)") == "42\n"
        print(
            f"\nhub restart: {restart_s:.2f} s from SIGTERM to answering again (stop "
            f"{stop_s:.2f} s); the old kernel "
            f"WebSocket got close code {closed.rcvd.code if closed.rcvd else None}"
        )
    finally:
        with contextlib.suppress(httpx.HTTPError):  # the hub may be down if the test failed
            carol_browser.delete(f"/user/{user}/api/kernels/{kernel_id}")
