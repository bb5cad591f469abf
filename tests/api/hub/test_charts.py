"""Usage over time on the hub's pages: charts drawn by the server as inline SVG, labelled, in
human units, with a text alternative; and the pure drawing (hostd.api.hub.charts)."""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET

from hostd.api.hub.charts import cpu_chart, host_memory_chart, memory_chart, memory_sparkline
from hostd.units.errors import SystemdUnavailable
from hostd.units.history import HostHistoryView, HostPoint, UsageHistoryView, UsagePoint
from hostd.units.values import Limits
from tests.api.hub.conftest import HubUnderTest
from tests.api.hub.fake import log_in

GIB, MIB = 2**30, 2**20
NOW = 1_800_000_000.0
SVG = re.compile(r"<svg\b.*?</svg>", re.S)


def history(*memory: int | None, cpu: float | None = 50.0) -> UsageHistoryView:
    start = int(NOW) - 10 * (len(memory) - 1)
    return UsageHistoryView(
        user="alice",
        window="1h",
        resolution_s=10,
        points=tuple(
            UsagePoint(
                at=start + 10 * i,
                memory_bytes=m,
                memory_limit_bytes=2 * GIB,
                cpu_percent=cpu,
                cpu_limit=1.5,
            )
            for i, m in enumerate(memory)
        ),
    )


def svgs(page: str) -> list[ET.Element]:
    """Every inline SVG of a page, parsed (it must be well-formed XML)."""
    # The page is our own, rendered in this test: not untrusted input.
    return [ET.fromstring(s) for s in SVG.findall(page)]  # noqa: S314


# -- the drawing --------------------------------------------------------------------------


def test_a_memory_chart_says_now_peak_and_limit_in_human_units() -> None:
    chart = memory_chart(history(512 * MIB, 1200 * MIB, 800 * MIB), now=NOW)
    assert chart.title == "Memory, last hour"
    assert chart.summary == "now 800.0M, peak 1.2G of the 2.0G limit"
    assert chart.limit_label == "limit 2.0G"
    assert [t.label for t in chart.x_ticks] == ["60 min ago", "30 min ago", "now"]
    assert [t.label for t in chart.y_ticks] == ["0B", "1.0G", "2.0G"]  # 0, half, the limit
    assert chart.line.startswith("M") and chart.line.count("L") == 2
    assert chart.limit_y is not None and chart.top <= chart.limit_y <= chart.bottom
    assert "bytes" not in chart.summary


def test_cpu_is_in_cores_as_its_limit() -> None:
    chart = cpu_chart(history(1, 2, cpu=75.0), now=NOW)
    assert chart.summary == "now 0.75 cores, peak 0.75 cores of the 1.50 cores limit"
    assert chart.title == "CPU in cores, last hour"
    assert [t.label for t in chart.y_ticks] == ["0", "0.75", "1.5"]


def test_a_missing_value_breaks_the_line_and_no_value_says_so() -> None:
    chart = memory_chart(history(MIB, None, MIB, MIB), now=NOW)
    assert chart.line.count("M") == 2  # two runs: a gap where nothing was measured
    empty = memory_chart(history(), now=NOW)
    assert (empty.line, empty.summary, empty.rows) == ("", "No measurements yet.", ())


def test_the_table_of_values_has_a_row_per_twelfth_of_the_window() -> None:
    points = [512 * MIB] * 360
    chart = memory_chart(history(*points), now=NOW)
    assert len(chart.rows) == 12
    assert all(value == "512.0M" for _, value in chart.rows)
    assert chart.rows[-1][0].endswith("UTC")


def test_the_host_chart_draws_promises_against_capacity() -> None:
    view = HostHistoryView(
        window="24h",
        resolution_s=300,
        points=(
            HostPoint(int(NOW) - 600, 2 * GIB, 12 * GIB, 1),
            HostPoint(int(NOW) - 300, 6 * GIB, 12 * GIB, 3),
        ),
    )
    chart = host_memory_chart(view, now=NOW)
    assert chart.summary == "now 6.0G, peak 6.0G of the 12.0G capacity"
    assert chart.limit_label == "capacity 12.0G"
    assert [t.label for t in chart.x_ticks] == ["24 h ago", "12 h ago", "now"]


def test_a_sparkline_has_no_axes_but_says_whose_it_is() -> None:
    chart = memory_sparkline(history(MIB, 2 * MIB), now=NOW)
    assert chart.title == "alice's memory, last hour"
    assert chart.x_ticks == chart.y_ticks == ()
    assert (chart.width, chart.height) == (120, 32)


# -- the pages ----------------------------------------------------------------------------


async def test_home_shows_memory_and_cpu_over_the_last_hour_labelled(hub: HubUnderTest) -> None:
    hub.fake.add_session("alice", limits=Limits(mem_limit_bytes=2 * GIB, cpu_limit=1.5))
    async with hub.client() as client:
        await log_in(client, "alice")
        home = (await client.get("/hub/home")).text
    assert "Use over the last hour" in home
    parsed = svgs(home)
    assert len(parsed) == 2
    expected = [("Memory", "2.0G"), ("CPU in cores", "1.50 cores")]
    for svg, (kind, limit) in zip(parsed, expected, strict=True):
        assert svg.get("role") == "img" and svg.get("aria-labelledby")
        title = svg.find("{http://www.w3.org/2000/svg}title")
        if title is None:
            title = svg.find("title")
        assert title is not None and title.text is not None
        assert title.text.startswith(f"{kind}, last hour: now ")
        assert f"of the {limit} limit" in title.text
        texts = [t.text for t in svg.iter() if t.tag.endswith("text")]
        assert "now" in texts and "60 min ago" in texts and f"limit {limit}" in texts
    # Keyboard: each chart is focusable; its values are there as text, in a table.
    assert home.count('class="chart" id="chart-') == 2
    assert home.count('tabindex="0"') >= 2
    assert 'id="chart-memory-summary">now 256.0M, peak 256.0M of the 2.0G limit' in home
    assert "Memory, last hour as a table" in home
    assert ("usage_history", "alice", "1h") in hub.fake.calls
    # Nothing from outside the machine: no script or image from another origin.
    assert "http://" not in "".join(SVG.findall(home)).replace("http://www.w3.org/2000/svg", "")


async def test_home_without_a_running_server_or_a_history_has_no_chart(hub: HubUnderTest) -> None:
    async with hub.client() as client:
        await log_in(client, "alice")
        home = (await client.get("/hub/home")).text
    assert "<svg" not in home and "Use over the last hour" not in home
    hub.fake.add_session("alice")
    hub.fake.fail["usage_history"] = SystemdUnavailable("no answer")
    async with hub.client() as client:
        await log_in(client, "alice")
        response = await client.get("/hub/home")
    assert response.status_code == 200 and "<svg" not in response.text
    assert 'id="usage-memory"' in response.text  # the numbers of now still show


async def test_admin_shows_a_sparkline_per_session_and_the_hosts_promises(
    hub: HubUnderTest,
) -> None:
    hub.fake.add_session("alice", limits=Limits(mem_limit_bytes=2 * GIB, cpu_limit=1.0))
    hub.fake.add_session("dave", limits=Limits(mem_limit_bytes=GIB, cpu_limit=1.0))
    async with hub.client() as client:
        await log_in(client, "carol")
        page = (await client.get("/hub/admin")).text
    parsed = svgs(page)
    assert len(parsed) == 3  # the host's chart and one sparkline per running session
    assert 'id="chart-host-memory"' in page
    assert "Memory promised to sessions, last 24 hours" in page
    assert "of the 12.0G capacity" in page  # the fake's host: 16 GiB, three quarters
    text = html.unescape(page)
    assert "alice's memory, last hour: now 256.0M, peak 256.0M of the 2.0G limit" in text
    assert "dave's memory, last hour: now 256.0M, peak 256.0M of the 1.0G limit" in text
    assert ("host_history", "24h") in hub.fake.calls


async def test_admin_without_a_host_history_still_shows_the_sessions(hub: HubUnderTest) -> None:
    hub.fake.add_session("alice")
    hub.fake.fail["host_history"] = SystemdUnavailable("no answer")
    async with hub.client() as client:
        await log_in(client, "carol")
        response = await client.get("/hub/admin")
    assert response.status_code == 200
    assert 'id="chart-host-memory"' not in response.text
    assert 'id="chart-memory-alice"' in response.text


def test_the_clock_in_the_table_is_utc() -> None:
    chart = memory_chart(history(MIB), now=NOW + 5)
    assert chart.rows and chart.rows[0][0].endswith(" UTC")
