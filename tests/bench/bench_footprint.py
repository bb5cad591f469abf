"""Issue 8 §4: memory footprint.

Footprint rows read what the other rows recorded while their sessions ran: the RSS of hostd
(``hostd serve`` and its D-Bus worker) and of JupyterHub with its configurable-http-proxy.
"""

from __future__ import annotations

from typing import Any

from tests.bench.context import Context
from tests.bench.framework import Result, row


def _recorded(key: str, part: str | None = None) -> Any:
    def run(ctx: Context) -> Result:
        value = ctx.data.get(key)
        if isinstance(value, dict) and part is not None:
            value = value.get(part)
        if value is None:
            return Result(status="not measured in this run (its row did not run)")
        return Result(samples=[float(value)], unit="MiB")

    return run


BOTH = ("quick", "full")
FOOTPRINT = [
    ("rss hostd idle", "hostd (daemon + D-Bus worker), idle", "hostd_idle_rss", None, BOTH),
    ("rss hostd N=10", "hostd with 10 JupyterLab sessions", "hostd_rss_10", None, BOTH),
    ("rss hostd N=50", "hostd with 50 JupyterLab sessions", "hostd_rss_50", None, ("full",)),
    ("rss hostd N=100", "hostd with 100 tiny sessions", "hostd_rss_100_tiny", None, ("full",)),
    ("rss anchor idle", "JupyterHub + proxy, idle", "anchor_idle_rss", None, ("quick", "full")),
    ("rss anchor proxy idle", "configurable-http-proxy alone, idle", "anchor_idle_proxy_rss", None,
     ("quick", "full")),
    ("rss anchor N=10", "JupyterHub + proxy with 10 sessions", "anchor_rss_10", "hub_and_proxy",
     ("quick", "full")),
    ("rss anchor N=50", "JupyterHub + proxy with 50 spawns asked", "anchor_rss_50", "hub_and_proxy",
     ("full",)),
    ("rss anchor N=100", "JupyterHub + proxy with 100 tiny sessions", "anchor_rss_100_tiny",
     "hub_and_proxy", ("full",)),
]  # fmt: skip
for _key, _title, _data, _part, _modes in FOOTPRINT:
    row(_key, "footprint", _title, modes=_modes)(_recorded(_data, _part))


@row("rss hub", "footprint", "hostd-hub after the spawn rows (idle)")
def hub_rss(ctx: Context) -> Result:
    why = ctx.our_hub_unavailable()
    if why:
        return Result.unavailable(why)
    hub = ctx._hubs.get("ourhub")
    if hub is None:
        return Result(status="not measured in this run (row c did not run)")
    return Result(
        samples=[hub.rss_mib()],
        unit="MiB",
        extra={"idle_at_start": ctx.data.get("ourhub_idle_rss")},
    )
