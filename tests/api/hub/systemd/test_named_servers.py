"""Named servers through hostd-hub on a real machine (inside packaging/testbed): a PAM user runs
her default JupyterLab and a named one, each answering at its own /user/<name>[/<server>]/ with
its own token; another user is kept out of both; the stops leave no unit and no slice."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.api.hub.systemd.conftest import (
    BASE,
    HUB_USER,
    LAB_POLICY,
    Hub,
    PamUser,
    log_in,
    run,
    xsrf_of,
)
from tests.api.hub.systemd.lab import progress, start_lab
from tests.hostd.daemon.systemd.conftest import Daemon, unit_property, units_left

pytestmark = pytest.mark.systemd

NAMED_POLICY = LAB_POLICY.replace("[auth]", "named_server_limit = 2\n\n[auth]", 1)


@pytest.fixture(scope="module")
def lab_daemon(hub_machine: None) -> Iterator[Daemon]:
    """The hub's daemon, with named servers on (this module's own)."""
    root = BASE / f"daemon-{uuid.uuid4().hex[:8]}"
    root.mkdir(mode=0o700)
    daemon = Daemon(root, NAMED_POLICY, act_for_others=(HUB_USER,), proxy_group=HUB_USER)
    daemon.start()
    yield daemon
    daemon.terminate()
    shutil.rmtree(daemon.socket.parent, ignore_errors=True)


@pytest.fixture(scope="module")
def alice(make_pam_user: Callable[..., PamUser]) -> Iterator[PamUser]:
    user = make_pam_user()
    yield user
    run("systemctl", "stop", f"jupyter-{user.name}:*.service", f"jupyter-{user.name}.slice",
        check=False)  # fmt: skip


def test_a_default_and_a_named_jupyterlab_of_one_user_through_the_hub(
    hub: Hub, alice: PamUser, make_pam_user: Callable[..., PamUser]
) -> None:
    with hub.browser() as browser:
        assert log_in(browser, alice.name, alice.password).status_code == 303, hub.tail()
        assert start_lab(hub, browser, alice.name) == f"/user/{alice.name}/"
        xsrf = xsrf_of(browser.get("/hub/home").text)
        started = browser.post(
            f"/hub/api/users/{alice.name}/servers/lab", headers={"X-XSRFToken": xsrf}
        )
        assert started.status_code in (201, 202), (started.text, hub.tail())
        events = progress(browser, alice.name, "lab")
        assert events[-1].get("ready"), (events, hub.tail())
        assert events[-1]["url"] == f"/user/{alice.name}/lab/"
        # Two real JupyterLabs, each at its own base URL through the hub's proxy.
        default = browser.get(f"/user/{alice.name}/api/status")
        named = browser.get(f"/user/{alice.name}/lab/api/status")
        assert default.status_code == named.status_code == 200, (named.text, hub.tail())
        model = browser.get(f"/hub/api/users/{alice.name}").json()
        assert sorted(model["servers"]) == ["", "lab"]
        home = browser.get("/hub/home").text
        assert 'id="server-lab"' in home
        for unit in (f"jupyter-{alice.name}.service", f"jupyter-{alice.name}:lab.service"):
            assert unit_property(unit, "Slice") == f"jupyter-{alice.name}.slice"
        # Another user gets neither, whatever path names them.
        bob = make_pam_user()
        with hub.browser() as other:
            assert log_in(other, bob.name, bob.password).status_code == 303
            for path in ("lab/api/status", "lab/lab", "api/status"):
                assert other.get(f"/user/{alice.name}/{path}").status_code == 403
            bob_xsrf = xsrf_of(other.get("/hub/home").text)
            refused = other.delete(
                f"/hub/api/users/{alice.name}/servers/lab", headers={"X-XSRFToken": bob_xsrf}
            )
            assert refused.status_code == 403
        # Stops, through the API: nothing of alice's left, the slice neither.
        for path in (
            f"/hub/api/users/{alice.name}/servers/lab",
            f"/hub/api/users/{alice.name}/server",
        ):
            stopped = browser.delete(path, headers={"X-XSRFToken": xsrf})
            assert stopped.status_code in (202, 204), stopped.text
    deadline = time.monotonic() + 30
    while units_left(f"jupyter-{alice.name}") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert units_left(f"jupyter-{alice.name}") == []
