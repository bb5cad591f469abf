"""hostd.daemon.reaper: reattach at start-up, reap ended sessions, cull idle ones, over a fake
of the daemon's systemd seam and a real store (no systemd)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from hostd.daemon.reaper import CUT_OFF_REASON
from hostd.daemon.store import SessionRecord, now
from hostd.units import SessionRequest
from tests.hostd.daemon.fake_systemd import unit_status
from tests.hostd.daemon.parts import GIB, ROOT, make_manager, serving_daemon

UNIT = "jupyter-daemon.service"


def record(user: str, state: str = "running", profile: str | None = None) -> SessionRecord:
    return SessionRecord(
        user=user, unit=f"jupyter-{user}.service", started_at=now(), state=state, profile=profile
    )


async def test_reattach_takes_over_what_systemd_runs_and_closes_what_ended(
    tmp_path: Path,
) -> None:
    manager, fake = make_manager(tmp_path)
    fake.units["jupyter-alice.service"] = unit_status(
        "jupyter-alice.service", port=20001, memory_max=GIB
    )
    fake.units["jupyter-ended.service"] = unit_status("jupyter-ended.service", "inactive")
    fake.units["other.service"] = unit_status("other.service")
    alice = manager.store.add(record("alice", profile="group:staff"))
    cut_off = manager.store.add(record("bob", state="starting"))
    gone = manager.store.add(record("carol"))
    credentials = manager.lifecycle.credentials_dir
    for unit in ("jupyter-alice.service", "jupyter-bob.service"):
        (credentials / unit).mkdir(parents=True)

    await manager.reattach()

    entry = manager.table["alice"]
    assert (entry.port, entry.promised, entry.record_id) == (20001, GIB, alice.id)
    assert entry.profile == "group:staff" and entry.active_at is not None
    assert manager.table.recorded() == ["alice"]
    closed = {r.user: r for r in (manager.store.last_for("bob"), manager.store.last_for("carol"))}
    assert (closed["bob"].id, closed["bob"].state, closed["bob"].reason) == (
        cut_off.id,
        "failed",
        CUT_OFF_REASON,
    )
    assert (closed["carol"].id, closed["carol"].state, closed["carol"].reason) == (
        gone.id,
        "stopped",
        "ended while hostd was down",
    )
    assert [p.name for p in credentials.iterdir()] == ["jupyter-alice.service"]
    assert (await manager.get("alice")).profile == "group:staff"
    await manager.close()


async def test_reap_records_a_session_that_crashed_and_frees_it(tmp_path: Path) -> None:
    manager, fake = await serving_daemon(tmp_path)
    fake.end(UNIT, result="exit-code", exit_status=3)
    assert (await manager.get("daemon")).reason == "crashed: exit status 3"  # before the reaper
    await manager.reap()
    ended = manager.store.last_for("daemon")
    assert ended is not None
    assert (ended.state, ended.reason, ended.exit_status) == (
        "failed",
        "crashed: exit status 3",
        3,
    )
    assert manager.table.recorded() == [] and manager.table.ports() == set()
    assert UNIT not in fake.units
    await manager.close()


async def test_reap_leaves_a_user_whose_start_or_stop_is_under_way(tmp_path: Path) -> None:
    manager, fake = await serving_daemon(tmp_path)
    fake.end(UNIT)
    async with manager.table.lock("daemon"):
        await manager.reap()
    assert manager.table.recorded() == ["daemon"]
    await manager.reap()
    assert manager.table.recorded() == []
    await manager.close()


async def test_an_idle_session_is_culled_and_an_active_one_is_not(tmp_path: Path) -> None:
    manager, fake = make_manager(tmp_path, "[capacity]\nidle_timeout = 60\n")
    fake.serve = True
    await manager.start("daemon", SessionRequest(), caller=ROOT)
    await manager.reap()
    assert manager.table.recorded() == ["daemon"]  # active a moment ago
    await manager.activity("daemon", caller=ROOT)
    manager.table["daemon"].active_at = time.monotonic() - 120
    await manager.reap()
    ended = manager.store.last_for("daemon")
    assert ended is not None and ended.state == "stopped"
    assert ended.reason is not None and ended.reason.endswith("s (culled)")
    assert UNIT not in fake.units
    await manager.close()


async def test_a_connection_held_open_to_an_idle_session_does_not_keep_it(
    tmp_path: Path,
) -> None:
    # Issue 13, attack 6 (the real one, as another account: tests/hostd/daemon/systemd/
    # test_attacks.py): anyone's open connection to the port used to count as activity.
    manager, fake = make_manager(tmp_path, "[capacity]\nidle_timeout = 60\n")
    fake.serve = True
    await manager.start("daemon", SessionRequest(), caller=ROOT)
    port = manager.table["daemon"].port
    assert port is not None
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    (listener,) = fake.listeners
    accepted, _ = await asyncio.to_thread(listener.accept)  # established at both ends
    try:
        manager.table["daemon"].active_at = time.monotonic() - 120
        await manager.reap()
        ended = manager.store.last_for("daemon")
        assert ended is not None and ended.state == "stopped"
        assert ended.reason is not None and ended.reason.endswith("s (culled)")
    finally:
        accepted.close()
        writer.close()
    await manager.close()


async def test_without_an_idle_timeout_nothing_is_culled(tmp_path: Path) -> None:
    manager, fake = await serving_daemon(tmp_path)
    manager.table["daemon"].active_at = time.monotonic() - 10**6
    await manager.reap()
    assert manager.table.recorded() == ["daemon"] and UNIT in fake.units
    await manager.close()


async def test_the_reaper_runs_until_closed(tmp_path: Path) -> None:
    manager, _ = make_manager(tmp_path)
    manager.reaper.start()
    await asyncio.sleep(0)
    await manager.close()
    assert manager.reaper._task is not None and manager.reaper._task.cancelled()
