"""Maintenance against a real systemd: a drain refuses starts with the admin's message, stops
every running session at its time (seen in the API and in systemctl), outlives a restart of
the daemon, and its cancel lets starts through again; an idle session's view warns of the
cull before it comes, activity clears the warning, and then it is culled."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.hostd.daemon.systemd.conftest import BASE_POLICY, units_left
from tests.hostd.daemon.systemd.test_capacity import capacity, start

pytestmark = pytest.mark.systemd

MESSAGE = "Reboot for a kernel update"


def wait_for(what: str, check: Any, *, within_s: float, every_s: float = 0.25) -> Any:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every_s)
    pytest.fail(f"{what}: not within {within_s} s")


def test_a_drain_refuses_starts_and_stops_every_session_at_its_time(daemon, make_user) -> None:
    d = daemon()
    running, refused = make_user({}), make_user({})
    start(d, running)
    at = datetime.now(UTC) + timedelta(seconds=6)
    status, body = d.api("PUT", "/v1/maintenance/drain", {"at": at.isoformat(), "message": MESSAGE})
    assert status == 200, body
    assert body["drain"]["message"] == MESSAGE

    status, body = d.api("POST", f"/v1/sessions/{refused}")
    assert (status, body["code"]) == (503, "draining"), body
    assert MESSAGE in body["message"]
    assert 1 <= body["details"]["retry_after_s"] <= 7
    assert f"jupyter-{refused}.service" not in units_left()
    # Before its time the running session runs on.
    assert d.api("GET", f"/v1/sessions/{running}")[1]["state"] == "running"
    assert f"jupyter-{running}.service" in units_left()

    view = wait_for(
        "the drain's stop",
        lambda: (v := d.api("GET", f"/v1/sessions/{running}")[1])["state"] == "stopped" and v,
        within_s=20,
    )
    assert datetime.now(UTC) >= at
    assert view["reason"] == f"stopped for maintenance: {MESSAGE}"
    assert f"jupyter-{running}.service" not in units_left()  # systemd has let it go

    # After its time, and after a restart of the daemon, starts stay refused.
    d.terminate()
    d.start()
    status, body = d.api("GET", "/v1/maintenance")
    assert status == 200 and body["drain"]["message"] == MESSAGE
    assert datetime.fromisoformat(body["drain"]["at"]) == at
    status, body = d.api("POST", f"/v1/sessions/{running}")
    assert (status, body["code"]) == (503, "draining"), body
    shown = d.hostctl("status")
    assert shown.returncode == 0 and "starts refused until hostctl drain --cancel" in shown.stdout

    done = d.hostctl("drain", "--cancel")
    assert done.returncode == 0, done.stderr
    assert "not draining" in done.stdout
    assert start(d, refused)["state"] in ("starting", "running")
    d.api("DELETE", f"/v1/sessions/{refused}")


def test_hostctl_drain_and_announce_as_root(daemon, make_user) -> None:
    d = daemon()
    done = d.hostctl("announce", "Kernel update tonight")
    assert done.returncode == 0 and "announcement: Kernel update tonight" in done.stdout
    done = d.hostctl("drain", "--at", "+10m", "--message", MESSAGE)
    assert done.returncode == 0, done.stderr
    assert "sessions stop in 10 minutes; starts refused" in done.stdout
    body = d.api("GET", "/v1/maintenance")[1]
    assert body["announcement"] == "Kernel update tonight"
    at = datetime.fromisoformat(body["drain"]["at"])
    assert timedelta(minutes=9) < at - datetime.now(UTC) <= timedelta(minutes=10)
    refused = d.hostctl("start", make_user({}))
    assert refused.returncode == 1 and "[draining]" in refused.stderr and MESSAGE in refused.stderr
    assert d.hostctl("drain", "--at", "12:99", "--message", "x").returncode == 2
    assert d.hostctl("drain", "--cancel").returncode == 0
    assert d.hostctl("announce", "--clear").returncode == 0
    assert d.api("GET", "/v1/maintenance")[1] == {"announcement": None, "drain": None}


def test_the_cull_warning_comes_before_the_cull_and_activity_clears_it(daemon, make_user) -> None:
    d = daemon(BASE_POLICY + capacity(idle_timeout=6, idle_warning=4))
    user = make_user({})
    start(d, user)
    started = time.monotonic()  # the idle clock starts once the session runs

    def view() -> dict[str, Any]:
        body: dict[str, Any] = d.api("GET", f"/v1/sessions/{user}")[1]
        return body

    first = view()
    if time.monotonic() - started < 1.5:  # 6 - 4 = 2 s of quiet before the warning
        assert first["cull_at"] is None, first
    warned = wait_for("the cull warning", lambda: (v := view())["cull_at"] and v, within_s=8)
    assert warned["state"] == "running"
    cull_at = datetime.fromisoformat(warned["cull_at"])
    # At most idle_warning away, told in whole seconds rounded up (hostd.daemon.idle).
    assert timedelta(0) <= cull_at - datetime.now(UTC) <= timedelta(seconds=5.5)

    assert d.api("POST", f"/v1/sessions/{user}/activity")[0] == 204
    cleared = view()
    assert (cleared["state"], cleared["cull_at"]) == ("running", None)

    warned_again = wait_for("the warning again", lambda: view()["cull_at"], within_s=8)
    assert warned_again is not None
    culled = wait_for("the cull", lambda: (v := view())["state"] == "stopped" and v, within_s=15)
    assert "(culled)" in culled["reason"] and culled["cull_at"] is None
    assert f"jupyter-{user}.service" not in units_left()
