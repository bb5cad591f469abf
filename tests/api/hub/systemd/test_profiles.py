"""[[profile_list]] on a real machine (inside packaging/testbed): the hub's start page offers
the choices a PAM user may take, a chosen one starts a real JupyterLab whose unit and cgroup
carry the choice's MemoryMax and CPUQuota, and the daemon refuses a hidden slug and a slug
with larger limits whoever sends them (the hub's API, the hub's own identity)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.hub.systemd.conftest import (
    ADMIN_GROUP,
    BASE,
    HUB_USER,
    LAB_POLICY,
    Hub,
    PamUser,
    log_in,
    run,
    xsrf_of,
)
from tests.api.hub.systemd.lab import progress
from tests.hostd.daemon.systemd.conftest import Daemon

pytestmark = pytest.mark.systemd

TINY_BYTES = 400 * 2**20
CHOICES = f"""
[[profile_list]]
slug = "tiny"
display_name = "Tiny: 400 MB, half a CPU"
description = "For a quick look"
mem_limit = "400M"
cpu_limit = 0.5

[[profile_list]]
slug = "standard"
display_name = "Standard: 1 GB, 1 CPU"
default = true
mem_limit = "1G"
cpu_limit = 1.0

[[profile_list]]
slug = "staff"
display_name = "Staff: 2 GB"
mem_limit = "2G"
groups = ["{ADMIN_GROUP}"]
"""


@pytest.fixture(scope="module")
def lab_daemon(hub_machine: None) -> Iterator[Daemon]:
    """conftest's, with choices: every other hub test runs without any."""
    root = BASE / f"daemon-{uuid.uuid4().hex[:8]}"
    root.mkdir(mode=0o700)
    daemon = Daemon(root, LAB_POLICY + CHOICES, act_for_others=(HUB_USER,), proxy_group=HUB_USER)
    daemon.start()
    yield daemon
    daemon.terminate()
    shutil.rmtree(daemon.socket.parent, ignore_errors=True)


@pytest.fixture(scope="module")
def alice(make_pam_user: Callable[..., PamUser]) -> PamUser:
    return make_pam_user()


@pytest.fixture(scope="module")
def alice_browser(hub: Hub, alice: PamUser) -> Iterator[httpx.Client]:
    with hub.browser() as client:
        assert log_in(client, alice.name, alice.password).status_code == 303, hub.tail()
        yield client


def unit_show(user: str, *keys: str) -> dict[str, str]:
    out = run("systemctl", "show", f"jupyter-{user}.service", *(f"-p{k}" for k in keys)).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def kernel_limits(user: str) -> tuple[int, int, int]:
    """What the kernel enforces on the unit's cgroup (v1 in the testbed): memory limit, CPU
    quota and period, in bytes and microseconds."""
    group = unit_show(user, "ControlGroup")["ControlGroup"].lstrip("/")
    memory = Path("/sys/fs/cgroup/memory", group, "memory.limit_in_bytes").read_text()
    cpu = Path("/sys/fs/cgroup/cpu,cpuacct", group)
    if not cpu.exists():
        cpu = Path("/sys/fs/cgroup/cpu", group)
    quota = (cpu / "cpu.cfs_quota_us").read_text()
    period = (cpu / "cpu.cfs_period_us").read_text()
    return int(memory), int(quota), int(period)


def stop(client: httpx.Client, user: str) -> None:
    xsrf = xsrf_of(client.get("/hub/home").text)
    client.delete(f"/hub/api/users/{user}/server", headers={"X-XSRFToken": xsrf})
    run("systemctl", "stop", f"jupyter-{user}.service", check=False)


def test_the_start_page_offers_only_the_choices_the_user_may_take(
    alice_browser: httpx.Client,
) -> None:
    page = alice_browser.get("/hub/home").text
    assert 'id="profile-choices"' in page
    assert 'value="tiny"' in page and 'value="standard" checked' in page
    assert 'value="staff"' not in page  # alice is not in the admins' group
    assert "400.0M memory · 0.5 CPU" in page and "For a quick look" in page


def test_a_chosen_profile_starts_with_its_limits_in_the_unit_and_the_kernel(
    hub: Hub, lab_daemon: Daemon, alice: PamUser, alice_browser: httpx.Client
) -> None:
    home = alice_browser.get("/hub/home").text
    started = alice_browser.post(
        f"/hub/spawn/{alice.name}", data={"_xsrf": xsrf_of(home), "profile": "tiny"}
    )
    assert started.status_code == 303, started.text
    try:
        events = progress(alice_browser, alice.name)
        assert events[-1].get("ready"), (events, hub.tail())
        shown = unit_show(alice.name, "MemoryMax", "CPUQuotaPerSecUSec")
        assert shown == {"MemoryMax": str(TINY_BYTES), "CPUQuotaPerSecUSec": "500ms"}
        memory, quota, period = kernel_limits(alice.name)
        assert memory == TINY_BYTES and quota / period == 0.5
        page = alice_browser.get("/hub/home").text
        assert 'id="server-profile" data-profile="tiny"' in page
        assert "Profile: <strong>Tiny: 400 MB, half a CPU</strong>" in page
        status = run(str(Path(sys.executable).parent / "hostctl"), "--socket",
                     str(lab_daemon.socket), "status", alice.name).stdout  # fmt: skip
        assert status.splitlines()[0].endswith("PROFILE") and status.rstrip().endswith("tiny")
    finally:
        stop(alice_browser, alice.name)


def test_the_hub_api_takes_the_slug_and_refuses_a_hidden_one(
    hub: Hub, alice: PamUser, alice_browser: httpx.Client
) -> None:
    xsrf = xsrf_of(alice_browser.get("/hub/home").text)
    path = f"/hub/api/users/{alice.name}/server"
    hidden = alice_browser.post(path, json={"profile": "staff"}, headers={"X-XSRFToken": xsrf})
    assert hidden.status_code == 400, hidden.text
    assert hidden.json()["message"] == "no profile staff to choose (the choices: tiny, standard)"
    assert unit_show(alice.name, "LoadState")["LoadState"] == "not-found"
    started = alice_browser.post(path, json={"profile": "tiny"}, headers={"X-XSRFToken": xsrf})
    assert started.status_code in (201, 202), started.text
    try:
        events = progress(alice_browser, alice.name)
        assert events[-1].get("ready"), (events, hub.tail())
        assert kernel_limits(alice.name)[0] == TINY_BYTES
    finally:
        stop(alice_browser, alice.name)


def test_attack_the_hubs_identity_sending_a_slug_and_larger_limits_is_refused(
    lab_daemon: Daemon, alice: PamUser
) -> None:
    # The hub's own account (act_for_others, unprivileged) on the daemon's socket, as a
    # compromised hub would: a hidden slug, then a visible one with more than it gives.
    script = (
        "import asyncio, sys\n"
        "from hostd.api.client import HostdClient\n"
        "async def main(profile, mem):\n"
        "    async with HostdClient(sys.argv[1]) as c:\n"
        "        try:\n"
        "            await c.start(sys.argv[2], profile=profile, mem_limit=mem)\n"
        "        except Exception as e:\n"
        "            print(type(e).__name__, e.code, e.message)\n"
        "asyncio.run(main('staff', None))\n"
        "asyncio.run(main('tiny', '2G'))\n"
    )
    out = subprocess.run(
        ["setpriv", f"--reuid={HUB_USER}", f"--regid={HUB_USER}", "--init-groups", "--",
         sys.executable, "-c", script, str(lab_daemon.socket), alice.name],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.splitlines()  # fmt: skip
    assert out == [
        "UnknownProfile unknown-profile no profile staff to choose (the choices: tiny, standard)",
        "InvalidOption invalid-option requested mem_limit 2147483648 is above the allowed "
        "419430400",
    ]
    assert unit_show(alice.name, "LoadState")["LoadState"] == "not-found"


PROFILES_SCRIPT = Path(__file__).with_name("browser") / "profiles.cjs"
SCREENSHOTS = Path(__file__).parents[3] / "screenshots"


def test_a_person_picks_a_choice_by_keyboard_in_chromium_at_desktop_and_phone_width(
    hub: Hub, alice: PamUser
) -> None:
    """The start page with choices at 1280 and 390 px: screenshots hub-home-choices-<width>
    and hub-home-chosen-running-<width> (tests/artifacts, copied to tests/screenshots), with
    pages.cjs's checks (console, overflow, contrast, focus outlines)."""
    from tests.api.hub.systemd.test_browser import ARTIFACTS, run_in_chromium

    ARTIFACTS.mkdir(exist_ok=True)
    seen = run_in_chromium(
        hub, PROFILES_SCRIPT, alice.name, alice.password, "-", "-", str(ARTIFACTS), timeout=600
    )
    events = seen["events"]
    assert seen["problems"] == [], "\n".join(seen["problems"]) + f"\n{events}"
    for width in ("desktop", "phone"):
        choices = events[f"choices-{width}"]
        assert [(c["slug"], c["checked"]) for c in choices] == [
            ("tiny", False),
            ("standard", True),
        ]
        assert all(c["fits"] and c["readable"] for c in choices), choices
        assert "400.0M memory · 0.5 CPU" in choices[0]["text"]
        assert events[f"picked-{width}"] == "tiny"
        assert events[f"running-{width}"] == {
            "state": "running",
            "profile": "tiny",
            "text": "Profile: Tiny: 400 MB, half a CPU (400.0M memory · 0.5 CPU)",
            "form": 0,
        }
        assert events[f"stopped-{width}"] == "stopped"
        for page in ("home-choices", "home-chosen-running"):
            shot = ARTIFACTS / f"hub-{page}-{width}.png"
            assert shot.stat().st_size > 5_000
            shutil.copy(shot, SCREENSHOTS / shot.name)
