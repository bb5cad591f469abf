"""A restart of the hub on a real machine (inside packaging/testbed): the sessions are systemd
units of their own and keep running, a logged-in user's cookie still works (the cookie key is
on disk), pages answer again, and a kernel's WebSocket, closed by the restart, reconnects to the
same kernel with its state intact (issue 9)."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import websockets
from websockets.sync.client import ClientConnection

from tests.api.hub.systemd.conftest import Hub, PamUser, log_in, run
from tests.api.hub.systemd.lab import channels, run_code, start_lab

pytestmark = pytest.mark.systemd

CLOSE_WAIT_S = 30  # the hub's graceful shutdown is bounded at 10 s (hostd.api.hub.server)


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
    return start_lab(hub, carol_browser, carol.name)


def main_pid(unit: str) -> tuple[str, int]:
    shown = run("systemctl", "show", unit, "-p", "ActiveState", "-p", "MainPID").stdout
    values = dict(line.split("=", 1) for line in shown.split())
    return values["ActiveState"], int(values["MainPID"])


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
