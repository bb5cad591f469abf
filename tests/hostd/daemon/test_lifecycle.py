"""hostd.daemon.lifecycle: start, stop, get, list, set_limits and the recorded ends, over a
fake of the daemon's systemd seam and a real store (no systemd).

Sessions run as the account "daemon" (uid 1 on every Debian; the test config's min_uid is 1):
nothing runs as it, the fake only records the unit, and a real socket stands in for the
server answering on its port.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hostd.daemon.login import PamVerdict
from hostd.daemon.ports import ListenerCheck
from hostd.daemon.sessions import SessionManager
from hostd.units import Property, SessionRequest, UnitSpec, keep_loaded, limit_properties
from hostd.units.errors import (
    AccountDisabled,
    CapacityExceeded,
    InvalidOption,
    PermissionDenied,
    SessionNotFound,
    SpawnFailed,
    SystemdUnavailable,
)
from hostd.units.values import Caller
from tests.hostd.daemon.fake_systemd import FakeSystemd
from tests.hostd.daemon.parts import GIB, ROOT, make_manager

UNIT = "jupyter-daemon.service"
MEMBER = Caller(uid=1000, name="member", privileged=False)


@pytest.fixture
async def parts(tmp_path: Path) -> tuple[SessionManager, FakeSystemd]:
    manager, fake = make_manager(tmp_path)
    fake.serve = True
    yield manager, fake  # type: ignore[misc]
    await manager.close()


async def test_a_start_runs_the_built_unit_and_records_it(
    parts: tuple[SessionManager, FakeSystemd],
) -> None:
    manager, fake = parts
    outcome = await manager.start("daemon", SessionRequest(), caller=ROOT)
    assert outcome.created and outcome.session.state == "running"
    (spec,) = fake.started
    assert spec.properties[-1] == Property("AddRef", "b", True)  # keep_loaded, last
    assert keep_loaded(UnitSpec(spec.name, spec.properties[:-1])) == spec
    assert Property("MemoryMax", "t", GIB) in spec.properties
    entry = manager.table["daemon"]
    assert entry.port is not None and entry.record_id is not None and entry.promised == GIB
    assert outcome.session.url == f"http://127.0.0.1:{entry.port}/user/daemon/"
    record = manager.store.last_for("daemon")
    assert record is not None
    assert (record.state, record.mem_limit_bytes, record.cpu_limit) == ("running", GIB, 0.5)
    assert len(await manager.token("daemon")) > 20  # written for the session's user

    again = await manager.start("daemon", SessionRequest(), caller=ROOT)
    assert not again.created and again.session.state == "running"
    assert len(fake.started) == 1


async def test_a_start_without_waiting_answers_starting(
    parts: tuple[SessionManager, FakeSystemd],
) -> None:
    manager, fake = parts
    fake.serve = False
    outcome = await manager.start("daemon", SessionRequest(), caller=ROOT, wait=False)
    assert outcome.created and outcome.session.state == "starting"


async def test_a_unit_systemd_refuses_is_recorded_as_failed_and_frees_its_port(
    parts: tuple[SessionManager, FakeSystemd],
) -> None:
    manager, fake = parts
    fake.start_error = SystemdUnavailable("systemd: no")
    with pytest.raises(SystemdUnavailable):
        await manager.start("daemon", SessionRequest(), caller=ROOT)
    record = manager.store.last_for("daemon")
    assert record is not None
    assert (record.state, record.reason) == ("failed", "systemd refused the unit")
    assert manager.table["daemon"].port is None and manager.table.ports() == set()
    assert not (manager.lifecycle.credentials_dir / UNIT).exists()


async def test_a_failed_start_job_is_a_spawn_failure(
    parts: tuple[SessionManager, FakeSystemd],
) -> None:
    manager, fake = parts
    fake.start_job = "failed"
    with pytest.raises(SpawnFailed) as caught:
        await manager.start("daemon", SessionRequest(), caller=ROOT)
    assert "systemd's start job ended 'failed'" in caught.value.message
    assert caught.value.details["result"] == "exit-code"
    record = manager.store.last_for("daemon")
    assert record is not None and record.state == "failed"
    assert UNIT not in fake.units  # unref'd and reset: systemd may collect it


async def test_a_session_that_never_answers_is_stopped_at_the_deadline(
    parts: tuple[SessionManager, FakeSystemd],
) -> None:
    manager, fake = parts
    fake.serve = False
    with pytest.raises(SpawnFailed) as caught:
        await manager.start("daemon", SessionRequest(), caller=ROOT)
    assert "did not answer on port" in caught.value.message
    assert ("stop", UNIT) in fake.calls


async def test_a_session_that_ends_while_starting_is_reported_at_once(
    parts: tuple[SessionManager, FakeSystemd],
) -> None:
    manager, fake = parts
    fake.serve = False
    fake.start_job = "done"
    original = fake.start_unit

    async def start_and_crash(spec):  # type: ignore[no-untyped-def]
        job = await original(spec)
        fake.end(spec.name, result="exit-code", exit_status=3)
        return job

    fake.start_unit = start_and_crash  # type: ignore[method-assign]
    with pytest.raises(SpawnFailed) as caught:
        await manager.start("daemon", SessionRequest(), caller=ROOT)
    assert "ended while starting; exit status 3" in caught.value.message


async def test_a_port_another_account_took_fails_the_start_and_says_so(
    parts: tuple[SessionManager, FakeSystemd],
) -> None:
    # Issue 13, attack 3 (the real one, as another account: tests/hostd/daemon/systemd/
    # test_attacks.py): before the fix any listener on the port made the start "running".
    manager, fake = parts
    fake.squatter_uid = 1003
    with pytest.raises(SpawnFailed) as caught:
        await manager.start("daemon", SessionRequest(), caller=ROOT)
    port = next(iter(fake.squatted))
    assert caught.value.message.startswith(
        f"the session of daemon failed to start: port {port} was taken by another process "
        "(uid 1003) before the session listened"
    )
    assert ("stop", UNIT) in fake.calls
    record = manager.store.last_for("daemon")
    assert record is not None and record.state == "failed"
    assert manager.table.ports() == set()


async def test_a_port_taken_while_the_server_exits_is_the_reason_given(
    parts: tuple[SessionManager, FakeSystemd],
) -> None:
    # JupyterLab refused its port exits at once (port_retries=0): the squatter is the reason.
    manager, fake = parts
    original = fake.start_unit
    fake.squatter_uid = 1003

    async def start_and_exit(spec):  # type: ignore[no-untyped-def]
        job = await original(spec)
        fake.end(spec.name, result="exit-code", exit_status=1)
        return job

    fake.start_unit = start_and_exit  # type: ignore[method-assign]
    answers = iter([ListenerCheck("none")])
    probe = fake.probe
    # The first look finds nobody (the server had not exited yet), the next the squatter.
    manager.views.probe = lambda port, owner: next(answers, None) or probe(port, owner)
    with pytest.raises(SpawnFailed) as caught:
        await manager.start("daemon", SessionRequest(), caller=ROOT)
    assert "was taken by another process (uid 1003)" in caught.value.message
    assert caught.value.message.endswith("; exit status 1")


async def test_sessions_are_told_not_to_move_to_another_port(
    parts: tuple[SessionManager, FakeSystemd],
) -> None:
    manager, fake = parts
    await manager.start("daemon", SessionRequest(), caller=ROOT)
    (spec,) = fake.started
    environment = next(p.value for p in spec.properties if p.name == "Environment")
    assert "JUPYTER_PORT_RETRIES=0" in environment  # type: ignore[operator]


async def test_memory_over_capacity_starts_nothing(tmp_path: Path) -> None:
    manager, fake = make_manager(tmp_path, memory_total=GIB)  # 0.9 GiB for a 1 GiB session
    with pytest.raises(CapacityExceeded):
        await manager.start("daemon", SessionRequest(), caller=ROOT)
    assert fake.started == [] and manager.table.ports() == set()
    await manager.close()


async def test_an_account_pam_refuses_gets_no_session_whoever_asks(tmp_path: Path) -> None:
    asked: list[tuple[str, str]] = []

    async def locked(service: str, user: str) -> PamVerdict:
        asked.append((service, user))
        return PamVerdict(ok=False, reason="the password is locked (usermod -L, passwd -l)")

    manager, fake = make_manager(tmp_path, account_check=locked)
    for caller in (ROOT, MEMBER):
        with pytest.raises(AccountDisabled):
            await manager.start("daemon", SessionRequest(), caller=caller)
    assert asked == [("hostd", "daemon")] * 2
    assert fake.started == [] and manager.table.ports() == set()
    assert manager.store.last_for("daemon") is None
    await manager.close()


async def test_a_refusal_that_comes_after_the_start_was_prepared_leaves_nothing(
    tmp_path: Path,
) -> None:
    # PAM's check runs while the start is prepared (hostd.daemon.starter): a refusal that comes
    # last must still leave no unit, record, port, token or socket directory behind.
    async def slow_refusal(service: str, user: str) -> PamVerdict:
        await asyncio.sleep(0.3)
        return PamVerdict(ok=False, reason="the account has expired")

    manager, fake = make_manager(tmp_path, account_check=slow_refusal)
    with pytest.raises(AccountDisabled):
        await manager.start("daemon", SessionRequest(), caller=ROOT)
    assert fake.started == [] and manager.table.ports() == set()
    assert manager.store.last_for("daemon") is None
    assert not (manager.lifecycle.credentials_dir / UNIT).exists()
    assert list((tmp_path / "run").rglob("*.sock")) == []
    await manager.close()


async def test_a_running_session_is_not_shown_to_a_start_of_a_refused_account(
    tmp_path: Path,
) -> None:
    verdicts = [PamVerdict(ok=True, reason=""), PamVerdict(ok=False, reason="expired")]

    async def then_refused(service: str, user: str) -> PamVerdict:
        return verdicts.pop(0)

    manager, fake = make_manager(tmp_path, account_check=then_refused)
    fake.serve = True
    assert (await manager.start("daemon", SessionRequest(), caller=ROOT)).session.state == "running"
    with pytest.raises(AccountDisabled):
        await manager.start("daemon", SessionRequest(), caller=ROOT)
    assert [spec.name for spec in fake.started] == [UNIT]
    await manager.close()


async def test_an_unknown_command_is_refused(parts: tuple[SessionManager, FakeSystemd]) -> None:
    manager, _ = parts
    with pytest.raises(InvalidOption, match="unknown command 'lab'"):
        await manager.start("daemon", SessionRequest(), caller=ROOT, command="lab")


async def test_stop_records_who_stopped_it(parts: tuple[SessionManager, FakeSystemd]) -> None:
    manager, fake = parts
    await manager.start("daemon", SessionRequest(), caller=ROOT)
    view = await manager.stop("daemon", caller=ROOT)
    assert (view.state, view.reason) == ("stopped", "stopped by root")
    assert UNIT not in fake.units
    entry = manager.table["daemon"]
    assert (entry.port, entry.record_id, entry.promised, entry.active_at) == (None,) * 4
    assert (await manager.get("daemon")).reason == "stopped by root"
    assert (await manager.stop("daemon", caller=ROOT)).state == "stopped"  # idempotent


async def test_get_and_list(parts: tuple[SessionManager, FakeSystemd]) -> None:
    manager, _ = parts
    with pytest.raises(SessionNotFound):
        await manager.get("daemon")
    assert await manager.list() == []
    await manager.start("daemon", SessionRequest(), caller=ROOT)
    assert (await manager.get("daemon")).state == "running"
    assert [v.user for v in await manager.list()] == ["daemon"]


async def test_set_limits(parts: tuple[SessionManager, FakeSystemd]) -> None:
    manager, fake = parts
    with pytest.raises(PermissionDenied):
        await manager.set_limits("daemon", mem_limit=GIB, cpu_limit=None, caller=MEMBER)
    with pytest.raises(InvalidOption):
        await manager.set_limits("daemon", mem_limit=None, cpu_limit=None, caller=ROOT)
    with pytest.raises(SessionNotFound):
        await manager.set_limits("daemon", mem_limit=GIB, cpu_limit=None, caller=ROOT)
    await manager.start("daemon", SessionRequest(), caller=ROOT)
    view = await manager.set_limits("daemon", mem_limit=GIB // 2, cpu_limit=1.5, caller=ROOT)
    assert fake.set[-1] == (UNIT, limit_properties(GIB // 2, 1.5))
    assert (view.limits.mem_limit_bytes, view.limits.cpu_limit) == (GIB // 2, 1.5)
    assert manager.table["daemon"].promised == GIB // 2
    record = manager.store.last_for("daemon")
    assert record is not None and (record.mem_limit_bytes, record.cpu_limit) == (GIB // 2, 1.5)
    with pytest.raises(CapacityExceeded):
        await manager.set_limits("daemon", mem_limit=100 * GIB, cpu_limit=None, caller=ROOT)
