"""Faults (issue 9): nothing lost, nothing orphaned, against a real systemd.

One test per fault: the daemon killed with -9 while 20 sessions start; a session that crashes;
a session that exhausts its memory; D-Bus restarted under the daemon, and gone when it starts.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.hostd.daemon.systemd.conftest import Daemon, unit_property, units_left, write_plan

pytestmark = pytest.mark.systemd

PORTS = range(20000, 30000)  # the daemon's default port_range
MakeDaemon = Callable[..., Daemon]
MakeUser = Callable[..., str]
OOM_REASON = "killed: out of memory (MemoryMax reached)"


def start(daemon: Daemon, user: str) -> dict[str, Any]:
    status, body = daemon.api("POST", f"/v1/sessions/{user}")
    assert status in (200, 201), body
    return body  # type: ignore[no-any-return]


def listed(daemon: Daemon) -> dict[str, dict[str, Any]]:
    status, body = daemon.api("GET", "/v1/sessions")
    assert status == 200, body
    return {s["user"]: s for s in body["sessions"]}


def port_of(view: dict[str, Any]) -> int:
    return int(view["url"].split(":")[2].split("/")[0])


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/report", timeout=5) as response:
            return bool(json.loads(response.read())["uid"])
    except OSError:
        return False


def open_rows(db: Path) -> dict[str, tuple[str, str | None]]:
    """user -> (state, reason) of the store's rows that have not ended."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        rows = conn.execute("SELECT user, state, reason FROM sessions WHERE ended_at IS NULL")
        return {user: (state, reason) for user, state, reason in rows}


def all_rows(db: Path) -> dict[str, tuple[str, str | None]]:
    """user -> (state, reason) of each user's last row."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        rows = conn.execute("SELECT user, state, reason FROM sessions ORDER BY id")
        return {user: (state, reason) for user, state, reason in rows}


def listening_ports() -> set[int]:
    """Ports in the daemon's range that a process of this system listens on.

    The testbed shares the machine's network namespace, not its PID namespace: sockets of
    other systems' processes show with no pid here, and are not ours to count.
    """
    return {
        c.laddr.port
        for c in psutil.net_connections("tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port in PORTS and c.pid is not None
    }


def bus_workers() -> dict[int, int]:
    """pid -> parent pid of every hostd D-Bus worker process."""
    found = {}
    for proc in psutil.process_iter(["pid", "ppid", "cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if "hostd.busworker.worker" in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found[proc.info["pid"]] = proc.info["ppid"]
    return found


def mine(units: list[str], users: list[str]) -> set[str]:
    return {u for u in units if any(f"jupyter-{user}.service" == u for user in users)}


def test_kill_9_while_twenty_sessions_start_loses_and_orphans_nothing(
    daemon: MakeDaemon, make_user: MakeUser
) -> None:
    d = daemon()
    # A second of sleep before each session listens: with 4 starts at a time (the default
    # max_concurrent_starts) the twenty take several seconds, and the kill lands in the middle.
    users = [make_user({"sleep_s": 1.0}) for _ in range(20)]
    db = d.root / "state" / "hostd.sqlite"
    replies: dict[str, object] = {}

    def go(user: str) -> None:
        try:
            replies[user] = d.api("POST", f"/v1/sessions/{user}")[0]
        except (OSError, IndexError) as exc:  # the daemon died under the request (no reply)
            replies[user] = type(exc).__name__

    threads = [threading.Thread(target=go, args=(u,)) for u in users]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # every start recorded, a third of the units made
        if len(open_rows(db)) == 20 and len(mine(units_left(), users)) >= 7:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the starts did not get under way")
    workers_before = bus_workers()
    d.kill9()
    for t in threads:
        t.join(timeout=30)
    assert [u for u in users if replies.get(u) == 201 or isinstance(replies.get(u), str)] == users
    cut_off = [u for u in users if replies[u] != 201]
    assert cut_off, "the kill came after every start had finished"
    # The killed daemon's D-Bus worker goes with it (once it has read what was sent to it).
    deadline = time.monotonic() + 5
    while set(workers_before) & set(bus_workers()):
        assert time.monotonic() < deadline, "the killed daemon's D-Bus worker lives on"
        time.sleep(0.1)
    at_kill_units = mine(units_left(), users)  # the worker may have started one more meanwhile
    assert len(at_kill_units) < 20, "the kill came after every unit was made"

    d.start()
    deadline = time.monotonic() + 20
    while True:
        sessions = listed(d)
        if all(s["state"] == "running" for s in sessions.values()):
            break
        assert time.monotonic() < deadline, sessions
        time.sleep(0.2)
    # Nothing lost: what systemd ran is listed and answers; every other start says why not.
    assert {f"jupyter-{u}.service" for u in sessions} == at_kill_units
    adopted = set(sessions) & set(cut_off)  # their units were starting when the daemon died
    assert adopted, "no session was mid-start at the kill"
    for user in users:
        if user in sessions:
            assert answers(port_of(sessions[user]))
            continue
        status, view = d.api("GET", f"/v1/sessions/{user}")
        assert status == 200, view
        assert view["state"] == "failed", view
        assert "hostd stopped" in view["reason"], view
    # Nothing orphaned: units, ports, runtime files and store rows are the listed sessions'.
    assert mine(units_left(), users) == {s["unit"] for s in sessions.values()}
    assert listening_ports() == {port_of(s) for s in sessions.values()}
    credentials = d.runtime / "credentials"
    assert {p.name for p in credentials.iterdir()} == {s["unit"] for s in sessions.values()}
    assert set(open_rows(db)) == set(sessions)
    assert d.proc is not None
    assert set(bus_workers().values()) == {d.proc.pid}
    for user in sessions:
        assert d.api("DELETE", f"/v1/sessions/{user}")[0] == 200
    assert mine(units_left(), users) == set()
    assert listening_ports() == set()
    assert list(credentials.iterdir()) == []
    assert open_rows(db) == {}
    last = all_rows(db)
    assert {u for u in users if last[u][0] == "failed"} == set(users) - set(sessions)
    print(
        f"at the kill: {len(at_kill_units)} units ({len(adopted)} starting), "
        f"{len(cut_off)} starts cut off; "
        f"after the restart: {len(sessions)} running, {20 - len(sessions)} failed with a reason"
    )


def wait_for(daemon: Daemon, user: str, check: Any, timeout_s: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        status, view = daemon.api("GET", f"/v1/sessions/{user}")
        assert status == 200, view
        if check(view):
            return view  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, view
        time.sleep(0.2)


def test_a_crashed_session_shows_its_exit_status_and_log_and_starts_again(
    daemon: MakeDaemon, make_user: MakeUser
) -> None:
    d = daemon()
    user = make_user({"print": "probe: hello", "exit_after_s": 1.0, "exit_code": 3})
    assert start(d, user)["state"] == "running"
    crashed_at = time.monotonic()
    view = wait_for(d, user, lambda v: v["state"] == "failed")
    seen_s = time.monotonic() - crashed_at
    for when in ("at once", "after the unit was collected"):
        assert (view["result"], view["exit_status"]) == ("exit-code", 3), (when, view)
        assert "exit status 3" in (view["reason"] or ""), (when, view)
        assert "crashing with exit status 3" in "\n".join(view["log"]), (when, view)
        assert "probe: hello" in "\n".join(view["log"]), (when, view)
        deadline = time.monotonic() + 10
        while units_left(f"jupyter-{user}"):  # the reaper records it and systemd collects it
            assert time.monotonic() < deadline
            time.sleep(0.2)
        view = d.api("GET", f"/v1/sessions/{user}")[1]
    write_plan(user, {})
    again = start(d, user)
    assert again["state"] == "running"
    assert answers(port_of(again))
    assert d.api("DELETE", f"/v1/sessions/{user}")[0] == 200
    print(f"crash seen as failed {seen_s:.1f} s after it started")


def test_a_session_out_of_memory_dies_alone_and_says_so(
    daemon: MakeDaemon, make_user: MakeUser
) -> None:
    d = daemon()
    other = make_user({})
    hog = make_user({"hog_after_s": 1.0, "hog_mib": 400})  # over the policy's 128M
    other_view = start(d, other)
    other_pid = unit_property(f"jupyter-{other}.service", "MainPID")
    assert start(d, hog)["state"] == "running"
    view = wait_for(d, hog, lambda v: v["state"] == "failed")
    assert view["reason"] == OOM_REASON, view
    # The others and the daemon carry on, untouched.
    assert d.proc is not None and d.proc.poll() is None
    assert d.api("GET", "/v1/health")[0] == 200
    assert listed(d)[other]["state"] == "running"
    assert unit_property(f"jupyter-{other}.service", "MainPID") == other_pid
    assert answers(port_of(other_view))
    # And once the reaper has recorded it, the reason stays.
    deadline = time.monotonic() + 10
    while units_left(f"jupyter-{hog}"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert d.api("GET", f"/v1/sessions/{hog}")[1]["reason"] == OOM_REASON
    assert d.api("DELETE", f"/v1/sessions/{other}")[0] == 200


def start_within(daemon: Daemon, user: str, window_s: float) -> tuple[float, list[int]]:
    """Start ``user``'s session, retrying refusals; seconds taken and the refusals seen."""
    began = time.monotonic()
    refusals: list[int] = []
    while True:
        status, body = daemon.api("POST", f"/v1/sessions/{user}")
        if status == 201:
            assert body["state"] == "running"
            return time.monotonic() - began, refusals
        assert status == 503 and body["code"] == "systemd-unavailable", (status, body)
        refusals.append(status)
        assert time.monotonic() - began < window_s, body
        time.sleep(0.2)


def hostd_journal(since: str) -> str:
    return subprocess.run(
        ["journalctl", "-o", "cat", "SYSLOG_IDENTIFIER=hostd", f"--since={since}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout


def systemctl(*args: str) -> None:
    subprocess.run(["systemctl", *args], check=True, capture_output=True, timeout=60)


def test_the_daemon_rides_out_a_dbus_restart_and_waits_for_a_missing_dbus(
    daemon: MakeDaemon, make_user: MakeUser
) -> None:
    d = daemon()
    before, after = make_user({}), make_user({})
    start(d, before)
    systemctl("restart", "dbus.service")
    took_s, refusals = start_within(d, after, 10)
    assert d.proc is not None and d.proc.poll() is None  # the same daemon, never restarted
    assert listed(d)[before]["state"] == "running"
    for user in (before, after):
        assert d.api("DELETE", f"/v1/sessions/{user}")[0] == 200
    assert mine(units_left(), [before, after]) == set()
    d.terminate()

    # Started while D-Bus is gone: it waits, and is ready once D-Bus is back.
    systemctl("stop", "dbus.socket", "dbus.service")
    since = f"@{int(time.time())}"
    waited: dict[str, float] = {}

    def restore_once_it_waits() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "waiting for systemd over D-Bus" not in (
            hostd_journal(since)
        ):
            time.sleep(0.1)
        time.sleep(1.0)  # and a little longer: it keeps waiting, it does not exit
        waited["at"] = time.monotonic()
        systemctl("start", "dbus.socket", "dbus.service")

    restore = threading.Thread(target=restore_once_it_waits)
    try:
        restore.start()
        d2 = daemon()  # waits up to 15 s for /v1/health; fails if hostd exits meanwhile
        ready_s = time.monotonic() - waited["at"]
    finally:
        restore.join()
        systemctl("start", "dbus.socket", "dbus.service")
    assert "waiting for systemd over D-Bus" in hostd_journal(since)
    took2_s, _ = start_within(d2, before, 10)
    assert d2.api("DELETE", f"/v1/sessions/{before}")[0] == 200
    print(
        f"after the D-Bus restart: a start ran in {took_s:.1f} s ({len(refusals)} refusals); "
        f"started without D-Bus: ready {ready_s:.1f} s after it was back, a start then took "
        f"{took2_s:.1f} s"
    )
