"""Issue 8 §4: memory footprint.

Most footprint rows read what the other rows recorded while their sessions ran: the RSS of
hostd (``hostd serve`` and its D-Bus worker) and of JupyterHub with its configurable-http-proxy.
The target's own row, "rss hostd+hub N=100", runs its sessions itself: 100 users log in to
hostd-hub (PAM, a token each), 100 tiny servers start through the daemon's API (the hub starts
only the site's JupyterLab, and 100 of those do not fit 2 cores), the hub proxies one request to
each, and then daemon + hub are measured together, while all 100 run. Its twin, "rss hostd+hub
N=100 after load", does the same once more after the proxy rows have loaded that daemon and hub
(issue 17: the target holds idle and after the load rows).

PSS (/proc/PID/smaps_rollup) is reported next to RSS as information: the target is RSS.
"""

from __future__ import annotations

import collections
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.bench.bench_concurrent import per_session_memory
from tests.bench.context import PASSWORD, Context
from tests.bench.drivers import reasons, spawn_many, stop_many
from tests.bench.env import HostdHub, http, settle, sh, tree_processes, wait_no_units
from tests.bench.framework import Result, row

TARGET_MIB = 100.0  # issue 8: daemon + hub RSS with 100 sessions
HUB_SESSIONS = 100
SAMPLES = 3  # readings 0.5 s apart while the sessions run; the row's median is the target's
LOGINS_AT_ONCE = 4  # untimed set-up: PAM's password hashing is most of a login's time


def _recorded(key: str, part: str | None = None) -> Any:
    def run(ctx: Context) -> Result:
        value: Any = ctx.data.get(key)
        pss: Any = ctx.data.get(f"{key}_pss")
        if isinstance(value, dict) and part is not None:
            value, pss = value.get(part), value.get(f"{part}_pss")
        if value is None:
            return Result(status="not measured in this run (its row did not run)")
        extra = {"pss_mib": pss} if pss is not None else {}
        return Result(samples=[float(value)], unit="MiB", extra=extra)

    return run


BOTH = ("quick", "full")
FOOTPRINT = [
    ("rss hostd idle", "hostd (daemon + D-Bus worker), idle", "hostd_idle_rss", None, BOTH),
    ("rss hostd N=10", "hostd with 10 JupyterLab sessions", "hostd_rss_10", "daemon", BOTH),
    ("rss hostd N=50", "hostd with 50 JupyterLab sessions", "hostd_rss_50", "daemon", ("full",)),
    ("rss hostd N=100", "hostd with 100 tiny sessions", "hostd_rss_100_tiny", "daemon",
     ("full",)),
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
        extra={
            "pss_mib": hub.pss_mib(),
            "idle_at_start": ctx.data.get("ourhub_idle_rss"),
            "idle_at_start_pss": ctx.data.get("ourhub_idle_rss_pss"),
        },
    )


# A request the hub proxied reached the tiny server (python3 -m http.server) when its answer is
# the server's own: a directory listing, or its 404 page (the path /user/<name>/ is not a
# directory in the user's home).
TINY_ANSWERS = (b"Directory listing for", b"Nothing matches the given URI")


@row(
    "rss hostd+hub N=100",
    "footprint",
    "daemon (+ D-Bus worker) + hostd-hub: 100 tiny sessions running, each reached via the hub",
)
def daemon_and_hub_rss(ctx: Context) -> Result:
    return _daemon_and_hub_rss(ctx, "hb")


@row(
    "rss hostd+hub N=100 after load",
    "after load",
    "the same, after the proxy rows: the same daemon and hub, 100 new tiny sessions",
)
def daemon_and_hub_rss_after_load(ctx: Context) -> Result:
    return _daemon_and_hub_rss(ctx, "hl")


def _daemon_and_hub_rss(ctx: Context, prefix: str) -> Result:
    why = ctx.our_hub_unavailable()
    if why:
        return Result.unavailable(why)
    hub_driver = ctx.our_hub()
    hub, hostd = hub_driver.hub, ctx.hostd()
    assert isinstance(hub, HostdHub)
    extra: dict[str, Any] = {
        "hub_rss_before_mib": hub.rss_mib(),
        "daemon_rss_before_mib": hostd.rss_mib(),
    }
    users = ctx.users.many(prefix, HUB_SESSIONS)
    t0 = time.monotonic()
    sh("chpasswd", input="".join(f"{user}:{PASSWORD}\n" for user in users))  # one lock of shadow
    with ThreadPoolExecutor(LOGINS_AT_ONCE) as pool:  # a PAM login through the hub, a token
        list(pool.map(lambda user: hub.log_in(user, PASSWORD), users))
    extra["logins_s"] = round(time.monotonic() - t0, 1)
    driver = ctx.hostd_driver({"command": "tiny", "mem_limit": per_session_memory(HUB_SESSIONS)})
    driver.cpu_at_ready = False
    spawns, wall = spawn_many(driver, users)
    extra["spawn_wall_s"] = round(wall, 2)
    extra["spawn_failures"] = reasons(spawns)
    running = [s.user for s in spawns if s.ok]
    proxied: collections.Counter[str] = collections.Counter()
    for user in running:
        try:
            status, body = http(f"{hub.url}/user/{user}/", token=hub.tokens[user], timeout=30)
        except OSError as exc:
            proxied[f"connection: {type(exc).__name__}"] += 1
            continue
        reached = any(marker in body for marker in TINY_ANSWERS)
        proxied["reached the server" if reached else f"{status} from the hub"] += 1
    extra["proxied"] = dict(proxied)
    settle(max_s=10)
    try:
        readings = []
        for _ in range(SAMPLES):
            readings.append(
                {
                    "daemon_rss": hostd.rss_mib(),
                    "hub_rss": hub.rss_mib(),
                    "daemon_pss": hostd.pss_mib(),
                    "hub_pss": hub.pss_mib(),
                }
            )
            time.sleep(0.5)
        assert hostd.proc is not None and hub.proc is not None
        extra["processes"] = tree_processes(hostd.proc.pid) + tree_processes(hub.proc.pid)
        _status, listed = hostd.api("GET", "/v1/sessions")
        states = collections.Counter(view["state"] for view in (listed or {})["sessions"])
        extra["session_states"] = dict(states)
        extra["sessions_running"] = states["running"]
    finally:
        stop_many(driver, users)
        extra["units_left_after_stop"] = wait_no_units(driver.unit_pattern, timeout=120)
    for name in ("daemon_rss", "hub_rss", "daemon_pss", "hub_pss"):
        extra[f"{name}_mib"] = statistics.median(r[name] for r in readings)
    extra["pss_mib"] = extra["daemon_pss_mib"] + extra["hub_pss_mib"]
    result = Result(
        samples=[r["daemon_rss"] + r["hub_rss"] for r in readings], unit="MiB", extra=extra
    )
    result.attempts, result.successes = HUB_SESSIONS, proxied["reached the server"]
    return result
