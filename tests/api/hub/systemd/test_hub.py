"""The hub on a real machine (inside packaging/testbed): PAM logins through the daemon, a real
JupyterLab per user behind /user/<name>/, code run over the kernel's WebSocket through the
proxy, other users kept out, and the hub holding no privilege."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.sync.client import connect

from hostd.api.hub.identity import SESSION_COOKIE
from tests.api.hub.systemd.conftest import HUB_USER, Hub, PamUser, hub_pid_uid, log_in, run, xsrf_of
from tests.api.hub.systemd.lab import channels, cookie, run_code, start_lab, ws_url
from tests.hostd.daemon.systemd.conftest import Daemon

pytestmark = pytest.mark.systemd


@pytest.fixture(scope="module")
def alice(make_pam_user: Callable[..., PamUser]) -> PamUser:
    return make_pam_user()


@pytest.fixture(scope="module")
def bob(make_pam_user: Callable[..., PamUser]) -> PamUser:
    return make_pam_user()


@pytest.fixture(scope="module")
def alice_browser(hub: Hub, alice: PamUser) -> Iterator[httpx.Client]:
    with hub.browser() as client:
        response = log_in(client, alice.name, alice.password)
        assert response.status_code == 303, hub.tail()
        yield client


@pytest.fixture(scope="module")
def alice_lab(hub: Hub, alice: PamUser, alice_browser: httpx.Client) -> str:
    """alice's server, started through the hub's API with her cookie; its URL."""
    return start_lab(hub, alice_browser, alice.name)


# -- login -----------------------------------------------------------------------------


def test_a_pam_user_logs_in_with_the_right_password_only(hub: Hub, alice: PamUser) -> None:
    with hub.browser() as client:
        wrong = log_in(client, alice.name, "not-" + alice.password)
        assert wrong.status_code == 403
        assert "Invalid user name or password" in wrong.text
        assert SESSION_COOKIE not in client.cookies
        right = log_in(client, alice.name, alice.password)
        assert (right.status_code, right.headers["location"]) == (303, "/hub/home")
        home = client.get("/hub/home")
    assert home.status_code == 200 and f"Log out {alice.name}" in home.text


def test_root_is_refused(hub: Hub) -> None:
    password = f"Root-{uuid.uuid4().hex}"
    shadow_before = run("getent", "shadow", "root").stdout
    subprocess.run(["chpasswd"], input=f"root:{password}\n", text=True, check=True)
    try:
        with hub.browser() as client:
            response = log_in(client, "root", password)
    finally:
        # Back as it was (inside the testbed this is the overlay's /etc/shadow only).
        hashed = shadow_before.split(":")[1]
        run("usermod", "-p", hashed, "root")
    assert response.status_code == 403
    assert "Invalid user name or password" in response.text


def test_a_post_without_csrf_token_is_refused(hub: Hub, alice_browser: httpx.Client) -> None:
    response = alice_browser.post("/hub/token", data={"note": "no token"})
    assert response.status_code == 403
    api = alice_browser.post("/hub/api/users/nobody/tokens", json={})
    assert api.status_code == 403


@pytest.mark.parametrize("target", ["//evil.example", "/\\evil.example", "///evil.example",
                                    "https://evil.example/", "http:evil.example"])  # fmt: skip
def test_each_open_redirect_after_login_is_refused(hub: Hub, alice: PamUser, target: str) -> None:
    with hub.browser() as client:
        response = log_in(client, alice.name, alice.password, next_url=target)
    assert (response.status_code, response.headers["location"]) == (303, "/hub/home")


# -- a real JupyterLab through the proxy -------------------------------------------------


def test_alice_opens_jupyterlab_through_the_hub(
    hub: Hub, lab_daemon: Daemon, alice: PamUser, alice_browser: httpx.Client, alice_lab: str
) -> None:
    assert alice_lab == f"/user/{alice.name}/"
    lab = alice_browser.get(f"/user/{alice.name}/lab", headers={"accept": "text/html"})
    assert lab.status_code == 200, (lab.text[:500], hub.tail())
    assert "JupyterLab" in lab.text
    # The session's own token stays between the hub and the server (packaging/session's
    # jupyter_server_config.py blanks it in JupyterLab's page config).
    token_file = lab_daemon.runtime / "credentials" / f"jupyter-{alice.name}.service"
    token = (token_file / "jupyter-token").read_text().strip()
    assert token and token not in lab.text
    status = alice_browser.get(f"/user/{alice.name}/api/status")
    assert status.status_code == 200 and "started" in status.json()
    unit = run("systemctl", "show", f"jupyter-{alice.name}.service", "-p", "ActiveState")
    assert unit.stdout.strip() == "ActiveState=active"
    home = alice_browser.get("/hub/home").text
    assert "<strong>Running</strong>" in home and 'id="usage-memory"' in home


def test_code_runs_in_a_kernel_over_the_proxys_websocket(
    hub: Hub, alice: PamUser, alice_browser: httpx.Client, alice_lab: str
) -> None:
    kernel = alice_browser.post(f"/user/{alice.name}/api/kernels", json={"name": "python3"})
    assert kernel.status_code == 201, (kernel.text, hub.tail())
    kernel_id = kernel.json()["id"]
    try:
        output = execute(hub, alice_browser, alice.name, kernel_id, "print(6*7)")
    finally:
        alice_browser.delete(f"/user/{alice.name}/api/kernels/{kernel_id}")
    assert output == "42\n"


def execute(hub: Hub, client: httpx.Client, user: str, kernel_id: str, code: str) -> str:
    """Run code in the kernel over its channels WebSocket; what it printed."""
    with channels(hub, client, user, kernel_id) as socket:
        return run_code(socket, user, code)


def test_bob_gets_403_on_alices_server_over_http_and_websocket(
    hub: Hub, alice: PamUser, bob: PamUser, alice_lab: str
) -> None:
    with hub.browser() as client:
        assert log_in(client, bob.name, bob.password).status_code == 303
        for path in ("/", "lab", "api/status", "api/kernels"):
            response = client.get(f"/user/{alice.name}/{path}", headers={"accept": "text/html"})
            assert response.status_code == 403, path
        assert client.post(f"/user/{alice.name}/api/kernels", json={}).status_code == 403
        with pytest.raises(websockets.InvalidStatus) as refused:
            connect(
                ws_url(hub, f"/user/{alice.name}/api/kernels/x/channels"),
                additional_headers=cookie(client),
            )
    assert refused.value.response.status_code == 403


def test_a_stranger_is_sent_to_login_and_refused_a_websocket(hub: Hub, alice: PamUser) -> None:
    with hub.browser() as client:
        page = client.get(f"/user/{alice.name}/lab", headers={"accept": "text/html"})
        assert page.status_code == 302 and page.headers["location"].startswith("/hub/login?")
        with pytest.raises(websockets.InvalidStatus) as refused:
            connect(ws_url(hub, f"/user/{alice.name}/api/events/subscribe"))
    assert refused.value.response.status_code == 403


def test_stop_through_the_api_ends_the_unit(
    hub: Hub, alice: PamUser, alice_browser: httpx.Client, alice_lab: str
) -> None:
    xsrf = xsrf_of(alice_browser.get("/hub/home").text)
    response = alice_browser.delete(
        f"/hub/api/users/{alice.name}/server", headers={"X-XSRFToken": xsrf}
    )
    assert response.status_code in (202, 204)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = run("systemctl", "is-active", f"jupyter-{alice.name}.service", check=False)
        if state.stdout.strip() != "active":
            break
        time.sleep(0.2)
    assert state.stdout.strip() != "active"
    gone = alice_browser.get(f"/user/{alice.name}/api/status")
    assert gone.status_code == 424


# -- privilege -------------------------------------------------------------------------


def test_the_hub_runs_as_its_own_user_without_privilege(hub: Hub) -> None:
    pid, uid = hub_pid_uid(hub)
    assert uid != 0
    assert run("id", "-un", str(uid)).stdout.strip() == HUB_USER
    status = Path(f"/proc/{pid}/status").read_text()
    caps = {line.split(":")[0]: line.split()[1] for line in status.splitlines() if "Cap" in line}
    assert int(caps["CapEff"], 16) == 0 and int(caps["CapPrm"], 16) == 0
    groups = run("id", "-nG", HUB_USER).stdout.split()
    assert "hostd" in groups and "shadow" not in groups


def test_the_hubs_user_cannot_read_etc_shadow(hub: Hub) -> None:
    read = run(
        "setpriv", f"--reuid={HUB_USER}", f"--regid={HUB_USER}", "--init-groups",
        "cat", "/etc/shadow", check=False,
    )  # fmt: skip
    assert read.returncode != 0 and "Permission denied" in read.stderr
    # The hub checks at start-up too, and says so when its user could.
    assert "can read /etc/shadow" not in hub.tail(500)
