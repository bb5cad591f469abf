"""Usage over time in a real browser (headless Chromium, driven by Playwright): with a running
session, the user's home page charts memory and CPU against their limits, the admin's page a
sparkline per session and the host's promised memory against capacity; at a desktop's width and
at a phone's (390 px), labelled for screen readers, reachable with Tab, inside the viewport,
and without console errors.

Screenshots go to tests/artifacts/: usage-home-desktop.png, usage-home-phone.png,
usage-admin-desktop.png, usage-admin-phone.png.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.api.hub.systemd.conftest import Hub, PamUser
from tests.api.hub.systemd.test_browser import ARTIFACTS, run_in_chromium

pytestmark = pytest.mark.systemd

SCRIPT = Path(__file__).with_name("browser") / "usage_charts.cjs"
PHONE_WIDTH = 390
SHOTS = ("usage-home-desktop", "usage-home-phone", "usage-admin-desktop", "usage-admin-phone")


def assert_labelled_and_inside(chart: dict[str, Any] | None, width: int | None = None) -> None:
    assert chart is not None, "no such chart on the page"
    assert chart["visible"], chart
    assert chart["role"] == "img" and chart["tabindex"] == "0", chart
    assert chart["svgName"] and chart["figureName"], chart  # a <title> and a caption
    if width is not None:  # inside the phone's viewport: nothing cut off, no sideways scroll
        assert chart["box"]["x"] >= 0, chart
        assert chart["box"]["x"] + chart["box"]["width"] <= width, chart


def test_charts_of_usage_over_time_in_chromium(
    hub: Hub, make_pam_user: Callable[..., PamUser]
) -> None:
    user, admin = make_pam_user(), make_pam_user(admin=True)
    ARTIFACTS.mkdir(exist_ok=True)
    for name in SHOTS:
        (ARTIFACTS / f"{name}.png").unlink(missing_ok=True)
    seen = run_in_chromium(
        hub,
        SCRIPT,
        user.name,
        user.password,
        admin.name,
        admin.password,
        str(ARTIFACTS),
        timeout=500,
    )

    home, phone = seen["home"], seen["homePhone"]
    assert "Use over the last hour" in home["headings"]
    memory, cpu = home["memory"], home["cpu"]
    for chart in (memory, cpu):
        assert_labelled_and_inside(chart)
        assert chart["hasLimit"] and chart["linePoints"] >= 3, chart
        assert "now" in chart["texts"] and "60 min ago" in chart["texts"], chart
    # Sizes in human units, against the policy's limits (1G, 1 core); the words for people.
    assert memory["svgName"].startswith("Memory, last hour: now "), memory
    assert "of the 1.0G limit" in memory["figureDescription"], memory
    assert "limit 1.0G" in memory["texts"], memory
    assert "of the 1.00 cores limit" in cpu["figureDescription"], cpu
    assert memory["tableRows"] >= 1  # the values as text, in a table under the chart
    # Keyboard: Tab reaches both charts.
    assert {"chart-memory", "chart-cpu"} <= set(home["tabStops"]), home["tabStops"]
    for chart in (phone["memory"], phone["cpu"]):
        assert_labelled_and_inside(chart, PHONE_WIDTH)
    assert phone["overflow"] <= 0

    admin_page, admin_phone = seen["admin"], seen["adminPhone"]
    host, spark = admin_page["host"], admin_page["spark"]
    assert_labelled_and_inside(host)
    assert_labelled_and_inside(spark)
    assert host["hasLimit"] and "capacity" in host["figureDescription"], host
    # The user's 1G session is promised: the host's line is above zero.
    assert "now 1.0G" in host["figureDescription"], host
    assert spark["svgName"].startswith(f"{user.name}'s memory, last hour: now "), spark
    assert {"chart-host-memory", f"chart-memory-{user.name}"} <= set(admin_page["tabStops"])
    assert_labelled_and_inside(admin_phone["host"], PHONE_WIDTH)
    assert_labelled_and_inside(admin_phone["spark"], PHONE_WIDTH)
    assert admin_phone["overflow"] <= 0

    # No console error at all: the favicon is served now (branch pages-polish).
    assert seen["errors"] == [], seen["errors"]
    for name in SHOTS:
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 10_000, name
