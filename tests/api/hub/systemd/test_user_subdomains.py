"""subdomain_host in a real browser (issue 13, attack 2, closed): each user's server at an origin
of its own, <name>.hub.test, every name resolved to 127.0.0.1 by Chromium's host rules.

alice, a real account, serves a page from her own JupyterLab (her own Jupyter config). An admin
(``admin_access`` on) opens it in headless Chromium, through the hub's one-time code into alice's
origin. Its script tries what gets past the partial guard of the shared origin (SECURITY.md,
Known limits): open a hub page in a window of its own and read its _xsrf, then, sending no
Referer, mint an API token for bob with the admin's cookie. On the shared origin both work
(``tests/api/hub/systemd/test_user_pages.py::test_without_subdomains_a_window_of_its_own_reads_the_hub``);
at alice's own origin the browser refuses both.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.api.hub.systemd.conftest import Hub, PamUser
from tests.api.hub.systemd.test_browser import run_in_chromium
from tests.api.hub.systemd.test_user_pages import serve_attack_page
from tests.hostd.daemon.systemd.conftest import Daemon

pytestmark = pytest.mark.systemd

SCRIPT = Path(__file__).with_name("browser") / "subdomain_attack.cjs"


@pytest.fixture(scope="module")
def hub_options() -> dict[str, Any]:
    return {"admin_access": True, "subdomain_host": "http://hub.test:{port}"}


def test_alices_page_at_her_own_origin_cannot_read_or_act_on_the_hub(
    hub: Hub, lab_daemon: Daemon, make_pam_user: Callable[..., PamUser]
) -> None:
    admin, alice, bob = make_pam_user(admin=True), make_pam_user(), make_pam_user()
    serve_attack_page(alice.name, bob.name)
    status, body = lab_daemon.api("POST", f"/v1/sessions/{alice.name}", {})
    assert status == 201 and body["state"] == "running", body
    hub_url = f"http://hub.test:{hub.port}"
    alice_origin = f"http://{alice.name}.hub.test:{hub.port}"
    page = f"{alice_origin}/user/{alice.name}/static/attack.html?hub={hub_url}"
    seen = run_in_chromium(
        hub, SCRIPT, admin.name, admin.password, page, timeout=300, hub_url=hub_url
    )
    assert seen["origin"] == alice_origin, seen  # in through the code, at her origin
    assert seen["server"] == 200, seen  # the page reaches its own server with that origin's cookie
    assert seen["read"] == "blocked", seen  # the hub's window is another origin's
    assert seen["token"] == "failed", seen  # no CORS: the POST never reached the hub
    assert "/tokens" not in hub.tail(), hub.tail()
