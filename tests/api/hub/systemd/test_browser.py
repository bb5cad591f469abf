"""A person in a real browser (headless Chromium, driven by Playwright): logs in through the
form, starts the server from the home page, and sees JupyterLab load through the hub.

Screenshots go to tests/artifacts/ (hub-home.png, hub-running.png, jupyterlab.png, and
hub-phone.png: the home page on a phone's screen). What it
needs comes from test.sh: Debian's chromium, and playwright-core from npm in
$HOSTD_HUB_CACHE/node (Playwright's own browser download cannot work here and is not used).
"""

from __future__ import annotations

import json
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
