"""Usage, capacity and live limits against a real systemd: each shown by its effect."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from typing import Any

import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.hostd.daemon.systemd.conftest import BASE_POLICY, cpu_seconds, unit_property, write_plan

pytestmark = pytest.mark.systemd
MIB = 1024 * 1024


def policy(**changes: str) -> str:
    text = BASE_POLICY
    for key, value in changes.items():
        old = next(line for line in text.splitlines() if line.startswith(f"{key} ="))
        text = text.replace(old, f"{key} = {value}")
    return text


def capacity(**options: object) -> str:
    return "\n[capacity]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in options.items())


def start(d: Any, user: str) -> dict[str, Any]:
    status, body = d.api("POST", f"/v1/sessions/{user}")
    assert status in (200, 201), body
    return body  # type: ignore[no-any-return]


def busy_share(unit: str, seconds: float = 2.0) -> float:
    pid = int(unit_property(unit, "MainPID"))
    before, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / (time.monotonic() - t0)


def test_usage_reads_memory_and_cpu_of_a_session(daemon, make_user) -> None:
    d = daemon(policy(mem_limit='"512M"'))
    hog = make_user({"hog_mib": 100})
    start(d, hog)
    status, usage = d.api("GET", f"/v1/sessions/{hog}/usage")
    assert status == 200
    assert usage["memory_bytes"] >= 100 * MIB
    assert usage["memory_limit_bytes"] == 512 * MIB
    busy = make_user({"busy": True})
    start(d, busy)
    time.sleep(2.5)  # two samples of the daemon's sampler
    status, usage = d.api("GET", f"/v1/sessions/{busy}/usage")
    assert usage["cpu_percent"] is not None, usage
    assert 35 <= usage["cpu_percent"] <= 60, usage
    assert usage["cpu_limit"] == 0.5 and usage["tasks"] >= 2
    assert d.api("GET", "/v1/sessions/nobody-here/usage")[0] == 404


def test_an_oom_kill_is_counted_and_shown_as_the_reason(daemon, make_user) -> None:
    d = daemon()
    user = make_user({"sleep_s": 1, "hog_mib": 400})
    status, body = d.api("POST", f"/v1/sessions/{user}")
    assert (status, body["code"]) == (502, "spawn-failed")
    assert "out of memory" in body["message"]
    status, view = d.api("GET", f"/v1/sessions/{user}")
    assert (view["state"], view["reason"]) == (
        "failed",
        "killed: out of memory (MemoryMax reached)",
    )


def test_ten_starts_at_once_with_concurrency_two_all_run(daemon, make_user) -> None:
    d = daemon(BASE_POLICY + capacity(max_concurrent_starts=2))
    users = [make_user({"sleep_s": 0.3}) for _ in range(10)]
    results: dict[str, int] = {}
    waiting_seen: list[int] = []

    def go(user: str) -> None:
        results[user] = d.api("POST", f"/v1/sessions/{user}")[0]

    threads = [threading.Thread(target=go, args=(u,)) for u in users]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        waiting_seen.append(d.api("GET", "/v1/host")[1]["starts_waiting"])
        time.sleep(0.05)
    assert sorted(results.values()) == [201] * 10
    assert max(waiting_seen) > 0  # they really queued
    states = {s["user"]: s["state"] for s in d.api("GET", "/v1/sessions")[1]["sessions"]}
    assert all(states[u] == "running" for u in users)


def test_a_start_over_capacity_is_refused_until_another_stops(daemon, make_user) -> None:
    share = 1.5 * 128 * MIB / psutil.virtual_memory().total  # room for one 128M session
    d = daemon(BASE_POLICY + capacity(memory_share=round(share, 6), retry_after=7))
    first, second = make_user({}), make_user({})
    start(d, first)
    status, body = d.api("POST", f"/v1/sessions/{second}")
    assert (status, body["code"]) == (429, "capacity")
    assert "(memory limit 128.0M) would promise 256.0M of memory" in body["message"]
    assert "bytes" not in body["message"]
    assert d.api("DELETE", f"/v1/sessions/{first}")[0] == 200
    assert start(d, second)["state"] == "running"


def test_jupyter_slice_caps_all_sessions_together(daemon, make_user) -> None:
    cap = 300 * MIB
    share = cap / psutil.virtual_memory().total
    no_limit = BASE_POLICY.replace('mem_limit = "128M"\n', "")
    d = daemon(no_limit + capacity(memory_share=round(share, 9)))
    assert abs(int(unit_property("jupyter.slice", "MemoryMax")) - cap) < MIB
    users = [make_user({}) for _ in range(3)]
    for user in users:
        start(d, user)
    for user in users:  # now each grows to 150 MiB: 450 MiB in a 300 MiB slice
        write_plan(user, {"hog_mib": 150})
    for user in users:
        d.api("DELETE", f"/v1/sessions/{user}")
        d.api("POST", f"/v1/sessions/{user}")
    time.sleep(1)
    states = {s["user"]: s["state"] for s in d.api("GET", "/v1/sessions")[1]["sessions"]}
    running = [u for u in users if states.get(u) == "running"]
    assert len(running) < 3, "three 150 MiB sessions fit in a 300 MiB slice"
    assert d.api("GET", "/v1/health")[0] == 200  # the daemon lives on


def test_lowering_memory_kills_and_raising_cpu_speeds_up(daemon, make_user) -> None:
    d = daemon(policy(mem_limit='"512M"', cpu_limit="0.2"))
    hog = make_user({"hog_mib": 100})
    start(d, hog)
    status, view = d.api("PATCH", f"/v1/sessions/{hog}", {"mem_limit": "50M"})
    assert status == 200, view
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        view = d.api("GET", f"/v1/sessions/{hog}")[1]
        if view["state"] in ("failed", "stopped"):
            break
        time.sleep(0.1)
    assert view["state"] == "failed", view
    busy = make_user({"busy": True})
    start(d, busy)
    unit = f"jupyter-{busy}.service"
    slow = busy_share(unit)
    assert d.api("PATCH", f"/v1/sessions/{busy}", {"cpu_limit": 0.8})[0] == 200
    assert unit_property(unit, "CPUQuotaPerSecUSec") == "800ms"
    fast = busy_share(unit)
    assert slow <= 0.3 and fast >= 0.6, (slow, fast)


def test_an_idle_session_is_culled_and_an_active_one_is_not(daemon, make_user) -> None:
    d = daemon(BASE_POLICY + capacity(idle_timeout=3))
    idle, active = make_user({}), make_user({})
    start(d, idle)
    start(d, active)
    deadline = time.monotonic() + 12
    while time.monotonic() < deadline:
        assert d.api("POST", f"/v1/sessions/{active}/activity")[0] == 204
        time.sleep(1)
    views = {u: d.api("GET", f"/v1/sessions/{u}")[1] for u in (idle, active)}
    assert views[idle]["state"] == "stopped"
    assert "idle for" in views[idle]["reason"]
    assert views[active]["state"] == "running"
    journal = subprocess.run(
        ["journalctl", "-t", "hostd", f"HOSTD_USER={idle}", "--no-pager"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "culled" in journal


def test_metrics_parse_and_carry_jupyterhub_style_names(daemon, make_user) -> None:
    d = daemon()
    user = make_user({})
    start(d, user)
    d.api("DELETE", f"/v1/sessions/{user}")
    other = make_user({})
    start(d, other)
    result = d.hostctl_raw_metrics()
    families = {f.name: f for f in text_string_to_metric_families(result)}
    spawn = families["hostd_server_spawn_duration_seconds"]
    assert spawn.type == "histogram"
    buckets = {s.labels["le"] for s in spawn.samples if s.name.endswith("_bucket")}
    assert {"0.5", "1.0", "2.5", "600.0", "+Inf"} <= buckets
    assert any(
        s.labels.get("status") == "success" and s.value >= 2
        for s in spawn.samples
        if s.name.endswith("_count")
    )
    assert families["hostd_server_stop_seconds"].type == "histogram"
    assert [s.value for s in families["hostd_running_servers"].samples] == [1.0]
    memory = families["hostd_session_memory_bytes"].samples
    assert [s.labels["user"] for s in memory] == [other] and memory[0].value > 0


def test_profiles_give_a_user_and_a_group_their_limits(daemon, make_user) -> None:
    subprocess.run(["groupadd", "-f", "hostd-staff"], check=True)
    member = make_user({}, groups="hostd-staff")
    alone = make_user({})
    profiles = (
        f'\n[profiles.users.{alone}]\nmem_limit = "300M"\n'
        '[profiles.groups.hostd-staff]\ncpu_limit = 0.3\nmem_limit = "200M"\n'
    )
    d = daemon(BASE_POLICY + profiles)
    assert start(d, member)["profile"] == "group:hostd-staff"
    assert start(d, alone)["profile"] == f"user:{alone}"
    assert unit_property(f"jupyter-{member}.service", "MemoryMax") == str(200 * MIB)
    assert unit_property(f"jupyter-{member}.service", "CPUQuotaPerSecUSec") == "300ms"
    assert unit_property(f"jupyter-{alone}.service", "MemoryMax") == str(300 * MIB)
