"""hostd.daemon.views: session, record and host views from plain values (no systemd)."""

from __future__ import annotations

import asyncio
import os
import pwd
import socket
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hostd.daemon.ports import ListenerCheck, SessionOwner, check_listener
from hostd.daemon.sockets import Address
from hostd.daemon.store import SessionRecord
from hostd.daemon.systemd import UnitStatus
from hostd.daemon.views import (
    OOM_REASON,
    ended_reason,
    host_view,
    session_address,
    session_port,
    session_state,
    session_url,
    view_from_record,
    view_from_status,
)
from hostd.units.errors import SessionNotFound
from hostd.units.values import Limits, SessionView
from tests.hostd.daemon.fake_systemd import unit_status
from tests.hostd.daemon.parts import GIB, ROOT, end_held, make_manager, serving_daemon
from tests.hostd.daemon.test_ports import own_control_group

UNIT = "jupyter-alice.service"
WHEN = datetime(2026, 12, 6, tzinfo=UTC)


def view(
    status_state: str = "active",
    *,
    answering: bool = True,
    stop_reason: str | None = None,
    **more: object,
) -> SessionView:
    status = unit_status(UNIT, status_state, port=20001, **more)  # type: ignore[arg-type]
    return view_from_status(
        "alice",
        status,
        answering=answering,
        address=20001,
        base_url="/user/alice/",
        result_of=lambda result, exit_status: result,
        profile="group:staff",
        stop_reason=stop_reason,
    )


@pytest.mark.parametrize(
    ("active_state", "result", "answering", "state"),
    [
        ("active", "success", True, "running"),
        ("reloading", "success", True, "running"),
        ("active", "success", False, "starting"),
        ("activating", "success", True, "starting"),
        ("deactivating", "success", True, "stopping"),
        ("failed", "exit-code", False, "failed"),
        ("inactive", "signal", False, "failed"),
        ("inactive", "success", False, "stopped"),
        ("inactive", None, False, "stopped"),
    ],
)
def test_session_state(active_state: str, result: str | None, answering: bool, state: str) -> None:
    status = unit_status(UNIT, active_state, result=result)
    assert session_state(status, answering=answering) == state


@pytest.mark.parametrize(
    ("active_state", "answering", "state"),
    [
        ("active", False, "stopping"),  # its server closed its socket first: not "starting"
        ("active", True, "stopping"),
        ("activating", False, "stopping"),
        ("deactivating", False, "stopping"),
        ("inactive", False, "stopped"),  # the unit's word once it has ended
    ],
)
def test_a_session_the_daemon_is_stopping_reads_stopping_until_it_has_ended(
    active_state: str, answering: bool, state: str
) -> None:
    status = unit_status(UNIT, active_state, result="success")
    assert session_state(status, answering=answering, stopping=True) == state


def test_a_running_session() -> None:
    assert view(memory_max=GIB, cpu_quota_usec=500_000) == SessionView(
        user="alice",
        unit=UNIT,
        state="running",
        started_at=WHEN,
        url="http://127.0.0.1:20001/user/alice/",
        limits=Limits(GIB, 0.5),
        profile="group:staff",
    )


def test_an_ended_session_says_why_and_has_no_url() -> None:
    crashed = view("failed", answering=False, result="exit-code", exit_code=1, exit_status=3)
    assert (crashed.state, crashed.url, crashed.result, crashed.exit_status) == (
        "failed",
        None,
        "exit-code",
        3,
    )
    assert crashed.reason == "crashed: exit status 3"
    oom = view("failed", answering=False, result="oom-kill")
    assert oom.reason == OOM_REASON
    status = unit_status(UNIT, "failed", result="signal", exit_code=2, exit_status=9)
    seen = view_from_status(
        "alice",
        status,
        answering=False,
        address=None,
        base_url="/",
        result_of=lambda result, exit_status: "oom-kill",  # what the OOM watcher saw
        profile=None,
    )
    assert seen.reason == OOM_REASON  # the kernel's OOM kill, seen by the watcher
    assert seen.result == "oom-kill"


def test_a_unit_ended_by_the_daemons_stop_gives_the_stops_reason_until_it_is_recorded() -> None:
    # What Ends.finish(stopped=True) will record: a stop is not a failure, the OOM kill is.
    for result in ("success", "signal", "exit-code"):
        seen = view(
            "inactive" if result == "success" else "failed", result=result, stop_reason="culled"
        )
        assert (seen.state, seen.reason, seen.url) == ("stopped", "culled", None)
    oom = view("failed", result="oom-kill", stop_reason="culled")
    assert (oom.state, oom.reason) == ("failed", OOM_REASON)
    assert view("active", answering=False, stop_reason="culled").state == "stopping"


def test_ended_reason() -> None:
    assert ended_reason(None) == "ended"
    assert ended_reason(unit_status(UNIT, "inactive")) == "ended"
    signalled = unit_status(UNIT, "failed", result="signal", exit_code=2, exit_status=9)
    assert ended_reason(signalled) == "crashed: killed by SIGKILL (often: out of memory)"


def test_session_port() -> None:
    assert session_port(unit_status(UNIT, port=20001)) == 20001
    assert session_port(unit_status(UNIT)) is None
    assert session_port(replace(unit_status(UNIT), environment=("HOSTD_PORT=x",))) is None


def test_a_session_without_a_port_is_on_its_socket_and_its_url_says_so() -> None:
    sessions = Path("/run/hostd/sessions")
    assert session_address(unit_status(UNIT, port=20001), sessions, "alice") == 20001
    on_socket = session_address(unit_status(UNIT), sessions, "alice")
    assert on_socket == sessions / "alice" / "jupyter.sock"
    # jupyter_server's own form: the path percent-encoded as the host.
    assert session_url(on_socket, "/user/alice/") == (
        "http+unix://%2Frun%2Fhostd%2Fsessions%2Falice%2Fjupyter.sock/user/alice/"
    )
    assert session_url(20001, "/user/alice/") == "http://127.0.0.1:20001/user/alice/"


def test_a_session_without_a_record_is_stopped() -> None:
    assert view_from_record("alice", UNIT, None) == SessionView("alice", UNIT, "stopped")


def test_a_recorded_session() -> None:
    record = SessionRecord(
        user="alice",
        unit=UNIT,
        started_at=WHEN,
        ended_at=WHEN,
        state="failed",
        result="exit-code",
        exit_status=1,
        reason="crashed: exit status 1",
        mem_limit_bytes=GIB,
        cpu_limit=1.0,
        profile="user:alice",
    )
    assert view_from_record("alice", UNIT, record) == SessionView(
        user="alice",
        unit=UNIT,
        state="failed",
        result="exit-code",
        exit_status=1,
        started_at=WHEN,
        limits=Limits(GIB, 1.0),
        reason="crashed: exit status 1",
        profile="user:alice",
    )
    # A record still open (its unit gone while hostd was down) reads as stopped.
    record.ended_at = None
    assert view_from_record("alice", UNIT, record).state == "stopped"


def test_host_view_sums_the_active_units() -> None:
    active = [
        unit_status("jupyter-a.service", memory_max=GIB, cpu_quota_usec=500_000),
        unit_status("jupyter-b.service", memory_max=None, cpu_quota_usec=1_250_000),
    ]
    host = host_view(
        active,
        memory_total=8 * GIB,
        memory_available=6 * GIB,
        cpus=2,
        memory_capacity=7 * GIB,
        waiting=3,
    )
    assert (host.sessions_running, host.memory_limits_bytes, host.cpu_limits) == (2, GIB, 1.75)
    assert (host.memory_capacity_bytes, host.starts_waiting, host.cpus) == (7 * GIB, 3, 2)


def own_session(port: int) -> UnitStatus:
    """An active unit whose session is this process: its user, its cgroup, its pid."""
    return replace(
        unit_status(UNIT),
        environment=(f"HOSTD_PORT={port}",),
        user=pwd.getpwuid(os.getuid()).pw_name,
        control_group=own_control_group(),
        main_pid=os.getpid(),
    )


async def test_views_call_running_only_the_sessions_own_listener(tmp_path: Path) -> None:
    # The real check (hostd.daemon.ports.check_listener), on a listener of this process: the
    # "session" runs as this process's user, in this process's cgroup.
    manager, _ = make_manager(tmp_path)
    manager.views.probe = check_listener
    with socket.create_server(("127.0.0.1", 0)) as server:
        status = own_session(server.getsockname()[1])
        assert (await manager.views.session("alice", status)).state == "running"
        # Someone else's listener on the port (another cgroup, another account) is not hers.
        elsewhere = replace(status, control_group="/jupyter.slice/jupyter-alice.service")
        assert (await manager.views.session("alice", elsewhere)).state == "starting"
        other_user = replace(
            status, user=next(u.pw_name for u in pwd.getpwall() if u.pw_uid != os.getuid())
        )
        assert (await manager.views.session("alice", other_user)).state == "starting"
        assert (
            await manager.views.session("alice", replace(status, user=None))
        ).state == "starting"
    assert (await manager.views.session("alice", status)).state == "starting"
    assert (await manager.views.session("alice", None)).state == "stopped"
    await manager.close()


async def test_the_host_health_and_metrics_count_the_running_sessions(tmp_path: Path) -> None:
    manager, fake = make_manager(tmp_path, memory_total=4 * GIB)
    fake.units[UNIT] = unit_status(UNIT, port=20001, memory_max=GIB, cpu_quota_usec=500_000)
    fake.units["jupyter-bob.service"] = unit_status("jupyter-bob.service", "inactive")
    host = await manager.host()
    assert (host.sessions_running, host.memory_limits_bytes, host.cpu_limits) == (1, GIB, 0.5)
    assert host.memory_capacity_bytes == int(4 * GIB * 0.9)
    health = await manager.health()
    assert health["systemd"] == "252"
    body, content_type = await manager.metrics()
    assert content_type.startswith("text/plain") and b"alice" in body
    with pytest.raises(SessionNotFound):
        await manager.usage("bob")
    assert (await manager.usage("alice")).user == "alice"
    await manager.close()


async def test_a_stop_begun_while_the_view_looks_at_the_listener_makes_it_stopping(
    tmp_path: Path,
) -> None:
    # Testbed run 38: a cull's stop landed between the unit read (active) and the listener
    # check (gone), and the view said "starting". The daemon's own stop now decides it.
    manager, _ = make_manager(tmp_path)
    server = socket.create_server(("127.0.0.1", 0))
    status = own_session(server.getsockname()[1])

    def stop_lands_first(address: Address, owner: SessionOwner) -> ListenerCheck:
        manager.table["alice"].stops_begun += 1  # what Ends.stop_locked does first
        server.close()  # then the session's server goes away
        return check_listener(address, owner)

    manager.views.probe = check_listener
    assert (await manager.views.session("alice", status)).state == "running"
    manager.views.probe = stop_lands_first
    seen = await manager.views.session("alice", status)
    assert (seen.state, seen.url) == ("stopping", None)
    # No stop under way any more, the same read: what a server that has not listened yet is.
    manager.views.probe = check_listener
    assert (await manager.views.session("alice", status)).state == "starting"
    await manager.close()


async def test_a_unit_read_before_a_whole_stop_is_told_from_the_stops_record(
    tmp_path: Path,
) -> None:
    # The status was read (ended, still loaded) and the daemon's stop then recorded the end
    # before the view was built: the record has the stop's reason, the unit only "ended".
    manager, fake = await serving_daemon(tmp_path)
    unit = "jupyter-daemon.service"
    fake.on_stop = lambda name: stale.append(fake.units[name])
    stale: list[UnitStatus] = []
    await manager.stop("daemon", caller=ROOT)
    seen = await manager.views.session("daemon", stale[0])
    assert stale[0].active_state == "inactive" and unit not in fake.units
    assert (seen.state, seen.reason) == ("stopped", "stopped by root")
    await manager.close()


async def test_an_oom_killed_session_read_while_its_end_is_recorded_says_oom(
    tmp_path: Path,
) -> None:
    # 6815b55 kept the record open during the store's write of the end, but the OOM watcher
    # had forgotten the kill by then: a view read from the unit said systemd's "signal".
    manager, fake = await serving_daemon(tmp_path)
    unit = "jupyter-daemon.service"
    fake.end(unit, result="signal", exit_status=9)  # OOMPolicy=continue: SIGKILL, "signal"
    manager.oom.killed["daemon"] = 1  # what the OOM watcher saw in the session's cgroup
    async with end_held(manager, fake, "record written") as held:
        reaping = asyncio.ensure_future(manager.reap())
        await held.wait()
        seen = await manager.get("daemon")
    await reaping
    assert (seen.state, seen.result, seen.reason) == ("failed", "oom-kill", OOM_REASON)
    after = await manager.get("daemon")  # from the store now
    assert (after.state, after.result, after.reason) == ("failed", "oom-kill", OOM_REASON)
    await manager.close()
