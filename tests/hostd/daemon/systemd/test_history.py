"""Usage over time against a real systemd: the daemon's own readings (every 2 s, from the
session's cgroup) fill the history; a busy session under CPUQuota=50% shows about half a core,
its memory against its MemoryMax; the history goes with the session."""

from __future__ import annotations

import itertools
import time

import pytest

from tests.hostd.daemon.systemd.test_capacity import MIB, policy, start

pytestmark = pytest.mark.systemd


def test_the_history_shows_a_busy_session_against_its_limits_and_goes_with_it(
    daemon, make_user
) -> None:
    d = daemon(policy(mem_limit='"512M"'))
    user = make_user({"busy": True, "hog_mib": 100})
    start(d, user)
    # Nothing asks for usage meanwhile: only the reaper's readings feed the history.
    time.sleep(25)  # two whole 10 s points at least
    status, history = d.api("GET", f"/v1/sessions/{user}/usage/history")
    assert status == 200, history
    assert (history["window"], history["resolution_s"]) == ("1h", 10)
    points = history["points"]
    assert len(points) >= 3, points
    assert [b["at"] - a["at"] for a, b in itertools.pairwise(points)] == [10] * (len(points) - 1)
    whole = points[1:-1]  # the first and the last point are partial
    assert all(p["memory_limit_bytes"] == 512 * MIB and p["cpu_limit"] == 0.5 for p in whole)
    assert all(100 * MIB <= p["memory_bytes"] <= 512 * MIB for p in whole), whole
    # CPUQuota=50% holds the busy loop to half a core, and the points say so.
    assert all(35 <= p["cpu_percent"] <= 60 for p in whole), whole
    status, day = d.api("GET", f"/v1/sessions/{user}/usage/history?window=24h")
    assert status == 200 and day["resolution_s"] == 300 and 1 <= len(day["points"]) <= 2
    status, host = d.api("GET", "/v1/host/history")
    assert status == 200 and host["points"][-1]["memory_committed_bytes"] == 512 * MIB
    assert d.api("GET", f"/v1/sessions/{user}/usage/history?window=1y")[0] == 422
    assert d.api("DELETE", f"/v1/sessions/{user}")[0] == 200
    assert d.api("GET", f"/v1/sessions/{user}/usage/history")[0] == 404
    time.sleep(12)  # into the next 10 s point, which the reaper fills with what is promised
    status, host = d.api("GET", "/v1/host/history")
    assert host["points"][-1]["memory_committed_bytes"] == 0, host["points"][-3:]
    assert any(p["memory_committed_bytes"] == 512 * MIB for p in host["points"])
