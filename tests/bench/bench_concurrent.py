"""Issue 8 §2: N simultaneous spawns, hostd (b) against the anchor (f), default settings.

All N requests are released together; a spawn counts when its server answered. Wall is the
time from the release to the last server answering. The CPU-bound floor is what N servers'
start CPU costs on this machine's cores: N x the floor row's median start CPU / cores.

hostd's default admission refuses to promise more memory than [capacity] memory_share (0.9) of
RAM: 20 x seed 002's 2G does not fit 24 GiB, so hostd's rows ask each session for
min(2G, 0.9 x RAM / N) (a MemoryMax far above what a fresh server uses changes nothing in its
start); the row "b N=20 2G" shows what the admission does with 2G each. systemdspawner has no
admission and keeps seed 002's 2G.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import psutil

from tests.bench.context import TINY_PREFIX, Context
from tests.bench.drivers import Driver, reasons, spawn_many, stop_many
from tests.bench.env import (
    JupyterHub,
    machine_busy_s,
    own_cpu_s,
    settle,
    tree_cpu_s,
    unit_cpu_s,
    wait_no_units,
)
from tests.bench.framework import Result, row

MIB = 2**20
GIB = 2**30


def per_session_memory(n: int) -> int:
    capacity = 0.9 * psutil.virtual_memory().total
    per = min(2 * GIB, int(capacity / n))
    return per // (100 * MIB) * (100 * MIB)


def cpu_floor(ctx: Context, n: int, *, tiny: bool = False, pip: bool = False) -> float | None:
    """N x the single server's start CPU (median of row a, or a pip) / cores."""
    if tiny:
        return None
    phase = ctx.data.get("spawn", {})
    floor = phase.get("a pip" if pip else "a")
    cpus = [c for c in (floor.extra.get("start_cpu_s", []) if floor else []) if c]
    if not cpus:
        return None
    return float(n * statistics.median(cpus) / ctx.cores)


def concurrent(
    ctx: Context,
    driver: Driver,
    n: int,
    prefix: str,
    *,
    rss: Any,
    control_pid: int,
    tiny: bool = False,
    pip: bool = False,
) -> Result:
    users = ctx.users.many(prefix, n)
    for user in users:
        driver.prepare(user)
    busy = settle(max_s=30)
    driver.cpu_at_ready = False
    machine0, own0, t0 = machine_busy_s(), own_cpu_s() or 0.0, time.monotonic()
    control0 = tree_cpu_s(control_pid)
    spawns, wall = spawn_many(driver, users)
    control = tree_cpu_s(control_pid) - control0
    span = time.monotonic() - t0
    others = max(0.0, (machine_busy_s() - machine0) - ((own_cpu_s() or 0.0) - own0))
    ok = [s for s in spawns if s.ok]
    cpu_sum = sum(unit_cpu_s(driver.unit(s.user)) for s in ok)
    footprint = rss()
    stop_many(driver, users)
    left = wait_no_units(driver.unit_pattern, timeout=120)
    floor = cpu_floor(ctx, n, tiny=tiny, pip=pip)
    return Result(
        samples=[s.seconds for s in ok],
        attempts=n,
        successes=len(ok),
        wall_s=wall if ok else None,
        extra={
            "failures": reasons(spawns),
            "cpu_floor_s": floor,
            "wall_over_cpu_floor": wall / floor if ok and floor else None,
            "servers_cpu_sum_s": cpu_sum,
            # hostd (daemon + worker) or JupyterHub (hub + proxy) while the spawns ran
            "control_plane_cpu_s": control,
            "rss_mib_with_sessions": footprint,
            "own_cpu_busy_before": round(busy, 2),
            "others_cpu_share": others / (span * ctx.cores),
            "units_left_after_stop": left,
        },
    )


def _hostd_row(n: int, *, tiny: bool = False, memory: int | None = None, pip: bool = False) -> Any:
    def run(ctx: Context) -> Result:
        body: dict[str, Any] = {"mem_limit": memory or per_session_memory(n)}
        if tiny:
            body["command"] = "tiny"
        if pip:
            body["command"] = "pip"
        driver = ctx.hostd_driver(body)
        hostd = ctx.hostd()
        prefix = "tb" if tiny else "pb" if pip else "cb"
        assert hostd.proc is not None

        def footprint() -> dict[str, float]:
            return {"daemon": hostd.rss_mib(), "daemon_pss": hostd.pss_mib()}

        result = concurrent(
            ctx, driver, n, prefix, rss=footprint, control_pid=hostd.proc.pid, tiny=tiny,
            pip=pip,
        )  # fmt: skip
        result.extra["mem_limit_bytes"] = body["mem_limit"]
        ctx.data[f"hostd_rss_{n}{'_tiny' if tiny else ''}"] = result.extra["rss_mib_with_sessions"]
        return result

    return run


def _anchor_row(n: int, *, tiny: bool = False) -> Any:
    def run(ctx: Context) -> Result:
        driver = ctx.anchor()
        hub = driver.hub
        assert isinstance(hub, JupyterHub)
        prefix = TINY_PREFIX if tiny else "cf"

        def footprint() -> dict[str, float]:
            return {
                "hub_and_proxy": hub.rss_mib(),
                "hub_and_proxy_pss": hub.pss_mib(),
                "proxy": hub.proxy_rss_mib(),
            }

        assert hub.proc is not None
        result = concurrent(
            ctx, driver, n, prefix, rss=footprint, control_pid=hub.proc.pid, tiny=tiny
        )
        ctx.data[f"anchor_rss_{n}{'_tiny' if tiny else ''}"] = result.extra["rss_mib_with_sessions"]
        return result

    return run


for _n in (10, 20, 50):
    _modes = ("quick", "full") if _n == 10 else ("full",)
    row(f"b N={_n}", "concurrent", f"hostd API, {_n} at once", modes=_modes)(_hostd_row(_n))
    row(f"f N={_n}", "concurrent", f"anchor, {_n} at once", modes=_modes)(_anchor_row(_n))
row("b N=20 pip", "concurrent", "hostd API, 20 at once, JupyterLab as pip installs it",
    modes=("full",))(_hostd_row(20, pip=True))  # fmt: skip
row("b N=20 2G", "concurrent", "hostd API, 20 at once, seed 002's 2G each", modes=("full",))(
    _hostd_row(20, memory=2 * GIB)
)
row("b N=100 tiny", "concurrent", "hostd API, 100 tiny servers at once", modes=("full",))(
    _hostd_row(100, tiny=True)
)
row("f N=100 tiny", "concurrent", "anchor, 100 tiny servers at once", modes=("full",))(
    _anchor_row(100, tiny=True)
)
