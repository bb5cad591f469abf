"""A person in a real browser (headless Chromium, driven by Playwright): logs in through the
form, starts the server from the home page, and sees JupyterLab load through the hub.

Screenshots go to tests/artifacts/ (hub-home.png, hub-running.png, jupyterlab.png, and
hub-phone.png: the home page on a phone's screen). What it
needs comes from test.sh: Debian's chromium, and playwright-core from npm in
$HOSTD_HUB_CACHE/node (Playwright's own browser download cannot work here and is not used).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.api.hub.systemd.conftest import HUB_CACHE, TOP, Hub, PamUser

pytestmark = pytest.mark.systemd

SCRIPT = Path(__file__).with_name("browser") / "jupyterlab.cjs"
NODE_MODULES = HUB_CACHE / "node" / "node_modules"
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = TOP / "tests" / "artifacts"


def run_in_chromium(
    hub: Hub, script: Path, *args: str, timeout: float, hub_url: str | None = None
) -> Any:
    """Run a Playwright script (browser/*.cjs) against the hub in a fresh Chromium profile;
    what it saw, from the JSON line it prints last. ``hub_url``: the hub as the browser names
    it (default hub.url); every *.hub.test name resolves to 127.0.0.1 (subdomain_host)."""
    for needed in (CHROMIUM, NODE_MODULES / "playwright-core", Path("/usr/bin/node")):
        if not needed.exists():
            pytest.fail(f"{needed} is missing: run ./packaging/test.sh (it installs it)")
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        result = subprocess.run(
            ["node", str(script), hub_url or hub.url, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={
                "PATH": "/usr/bin:/bin",
                "HOME": profile,
                "NODE_PATH": str(NODE_MODULES),
                "CHROMIUM_PROFILE": profile,
                "CHROMIUM_HOST_RULES": "MAP hub.test 127.0.0.1, MAP *.hub.test 127.0.0.1",
            },
            cwd=NODE_MODULES.parent,
        )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{hub.tail()}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_person_logs_in_starts_the_server_and_sees_jupyterlab(
    hub: Hub, make_pam_user: Callable[..., PamUser]
) -> None:
    user = make_pam_user()
    ARTIFACTS.mkdir(exist_ok=True)
    seen = run_in_chromium(hub, SCRIPT, user.name, user.password, str(ARTIFACTS), timeout=400)
    assert seen["wrongPassword"] == "Invalid user name or password."
    assert "Running" in seen["stateAfterStart"]
    assert seen["url"].startswith(f"{hub.url}/user/{user.name}/lab")
    assert "JupyterLab" in seen["title"]
    assert [line for line in seen["refused"] if line.startswith("403")] == [], seen["refused"]
    assert (ARTIFACTS / "jupyterlab.png").stat().st_size > 10_000
    assert seen["phoneOverflow"] <= 0  # readable on a phone: no sideways scrolling


PAGES_SCRIPT = Path(__file__).with_name("browser") / "pages.cjs"


def slow_start(user: str, *, seconds: int) -> None:
    """The user's own Jupyter config sleeps before the server listens: a start that takes
    longer than the form's wait (pages.FORM_START_WAIT_S), as a cold one on a busy machine
    does, so the progress page is always there to be checked."""
    config = Path(f"/home/{user}/.jupyter")
    config.mkdir()
    (config / "jupyter_server_config.py").write_text(f"import time\ntime.sleep({seconds})\n")
    for path in (config, config / "jupyter_server_config.py"):
        shutil.chown(path, user, user)


def test_every_hub_page_is_readable_usable_by_keyboard_and_clean_at_desktop_and_phone_width(
    hub: Hub, make_pam_user: Callable[..., PamUser]
) -> None:
    """Issue 16, in Chromium: every hub page at 1280 and 390 px (screenshots hub-<page>-<width>
    .png in tests/artifacts), with no console error or failed request, no sideways scrolling,
    a focus outline of 3:1 on Tab, text at 4.5:1 and input borders at 3:1; and the behaviours
    (refusal page, start feedback and progress, JupyterLab by itself and its hub menu, the
    logs' filters and follow, the admin table's search, sort and actions on a phone)."""
    person, admin = make_pam_user(), make_pam_user(admin=True)
    slow_start(person.name, seconds=8)
    ARTIFACTS.mkdir(exist_ok=True)
    seen = run_in_chromium(
        hub,
        PAGES_SCRIPT,
        person.name,
        person.password,
        admin.name,
        admin.password,
        str(ARTIFACTS),
        timeout=900,
    )
    events = seen["events"]
    assert seen["problems"] == [], "\n".join(seen["problems"])
    for width in ("desktop", "phone"):
        refusal = events[f"refusal-{width}"]
        assert refusal["status"] == 403 and refusal["type"].startswith("text/html"), refusal
        assert refusal["links"] >= 1, refusal  # what to do next: a link back
        assert events[f"afterClick-{width}"] == {"disabled": True, "text": "Starting…"}
        progress = events[f"progress-{width}"]
        assert progress["label"].startswith("Starting your server"), progress
        # Held while the page was checked: the stream may begin at "ready" itself.
        assert progress["events"][-1].startswith("Server ready at"), progress
        assert events[f"spawnPendingPage-{width}"] is True
        assert events[f"openedLab-{width}"] is True
        logs = events[f"logs-{width}"]
        assert logs["filters"] == ["priority", "grep", "since"], logs
        assert logs["followButton"] and logs["wraps"] in ("pre-wrap", "pre-line"), logs
        # One timestamp per line (the journal's), not the journal's and Jupyter's.
        assert len(re.findall(r"\d\d:\d\d:\d\d", logs["firstLine"])) == 1, logs
        assert events[f"followGrew-{width}"] > 0 and events[f"followStayed-{width}"] is True
        assert events[f"followPressed-{width}"] == "true"
        assert events[f"logsFiltered-{width}"] == 0
        assert events[f"admin-{width}"] == {
            "search": True,
            "sort": events[f"admin-{width}"]["sort"],
            "stopInView": True,
            "logsInView": True,
        }
        assert events[f"admin-{width}"]["sort"] >= 3
        assert events[f"adminFiltered-{width}"] == 1, events[f"adminRows-{width}"]
        assert events[f"adminSorted-{width}"] == 1
    assert events["labFileMenu"] == ["Hub Control Panel", "Log Out"]  # the hub's, not the server's
    assert events["labLogOut"] == f"{hub.url}/hub/logout"
    for page in (
        "login",
        "home-stopped",
        "refused",
        "spawn-pending",
        "spawn-pending-page",
        "logs",
        "admin",
        "error-404",
    ):
        for width in ("desktop", "phone"):
            assert (ARTIFACTS / f"hub-{page}-{width}.png").stat().st_size > 5_000
