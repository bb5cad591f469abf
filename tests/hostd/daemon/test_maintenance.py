"""hostd.daemon.maintenance and its uses: the announcement and drain kept across a restart of
the daemon, starts refused while draining, the reaper stopping every session at the drain's
time, and the cull warning (cull_at) of an idle session; over FakeSystemd and a real store
(no systemd: the systemd tier has the real thing, tests/hostd/daemon/systemd/test_maintenance.py).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import pytest

from hostd.daemon.maintenance import DRAIN_REASON
from hostd.daemon.store import now
from hostd.units import SessionRequest
from hostd.units.errors import Draining, InvalidInput, PermissionDenied
from hostd.units.maintenance import Drain, MaintenanceView
from hostd.units.values import Caller
from tests.hostd.daemon.parts import ROOT, end_held, make_manager, serving_daemon

UNIT = "jupyter-daemon.service"
HUB = Caller(uid=999, name="hostd-hub", privileged=False, acts_for_others=True)


def ahead(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


async def test_the_state_is_kept_across_a_restart_of_the_daemon(tmp_path: Path) -> None:
    manager, _ = make_manager(tmp_path)
    at = ahead(3600).replace(microsecond=0)
    await manager.set_announcement("  Kernel update tonight  ", caller=ROOT)
    await manager.set_drain(Drain(at, "Reboot for a kernel update"), caller=ROOT)
    await manager.close()

    again, _ = make_manager(tmp_path)
    assert await again.maintenance() == MaintenanceView()  # not loaded yet: no I/O before
    await again.maintenance_state.load()
    assert await again.maintenance() == MaintenanceView(
        "Kernel update tonight", Drain(at, "Reboot for a kernel update")
    )
    assert (await again.maintenance()).drain.at.tzinfo == UTC  # type: ignore[union-attr]
    await again.set_drain(None, caller=ROOT)
    await again.set_announcement(None, caller=ROOT)
    await again.close()

    third, _ = make_manager(tmp_path)
    assert await third.maintenance_state.load() == MaintenanceView()
    await third.close()


async def test_only_root_changes_it(tmp_path: Path) -> None:
    manager, _ = make_manager(tmp_path)
    with pytest.raises(PermissionDenied, match="only root"):
        await manager.set_announcement("hello", caller=HUB)
    with pytest.raises(PermissionDenied, match="only root"):
        await manager.set_drain(Drain(ahead(60), "m"), caller=HUB)
    with pytest.raises(PermissionDenied, match="only root"):
        await manager.set_drain(None, caller=HUB)
    assert await manager.maintenance() == MaintenanceView()
    await manager.close()


async def test_a_past_time_or_a_bad_message_is_refused(tmp_path: Path) -> None:
    manager, _ = make_manager(tmp_path)
    with pytest.raises(InvalidInput, match="in the past"):
        await manager.set_drain(Drain(ahead(-3600), "late"), caller=ROOT)
    with pytest.raises(InvalidInput, match="one line"):
        await manager.set_drain(Drain(ahead(60), "two\nlines"), caller=ROOT)
    with pytest.raises(InvalidInput, match="empty"):
        await manager.set_announcement(" ", caller=ROOT)
    assert await manager.maintenance() == MaintenanceView()
    await manager.close()


async def test_a_start_is_refused_while_draining_with_the_message(tmp_path: Path) -> None:
    manager, fake = make_manager(tmp_path)
    fake.serve = True
    await manager.set_drain(Drain(ahead(600), "Reboot for a kernel update"), caller=ROOT)
    for caller in (ROOT, HUB):
        with pytest.raises(Draining, match="Reboot for a kernel update") as caught:
            await manager.start("daemon", SessionRequest(), caller=caller)
        assert 590 <= caught.value.retry_after_s <= 601
    assert UNIT not in fake.units
    await manager.set_drain(None, caller=ROOT)
    outcome = await manager.start("daemon", SessionRequest(), caller=ROOT)
    assert outcome.created and outcome.session.state == "running"
    await manager.close()


async def test_at_the_drain_time_every_session_is_stopped_and_starts_stay_refused(
    tmp_path: Path,
) -> None:
    manager, fake = await serving_daemon(tmp_path)
    await manager.set_drain(Drain(ahead(30), "Reboot for a kernel update"), caller=ROOT)
    await manager.reap()
    assert manager.table.recorded() == ["daemon"]  # before its time: it runs on
    assert (await manager.get("daemon")).state == "running"

    # The time has come (moved, not waited for; the systemd tier waits).
    state = manager.maintenance_state
    assert state.view.drain is not None
    state.view = replace(state.view, drain=replace(state.view.drain, at=now()))
    await manager.reap()
    view = await manager.get("daemon")
    assert view.state == "stopped"
    assert view.reason == f"{DRAIN_REASON}: Reboot for a kernel update"
    assert UNIT not in fake.units and manager.table.recorded() == []
    with pytest.raises(Draining) as caught:
        await manager.start("daemon", SessionRequest(), caller=ROOT)
    assert caught.value.retry_after_s == 300  # past its time: down for maintenance
    await manager.close()


@pytest.mark.parametrize("window", ["unit read after the stop", "record written"])
async def test_a_view_read_while_the_drain_stops_the_session_gives_the_drain_reason(
    tmp_path: Path, window: Literal["unit read after the stop", "record written"]
) -> None:
    # Stop 26's CI (testbed): the unit had ended, the stop was reading it back (a D-Bus round
    # trip) before recording the end, and a view read then said "ended". The stop is held at
    # each await between the unit's end and the record's, and the view read there.
    manager, fake = await serving_daemon(tmp_path)
    await manager.set_drain(Drain(ahead(30), "Reboot for a kernel update"), caller=ROOT)
    state = manager.maintenance_state
    assert state.view.drain is not None
    state.view = replace(state.view, drain=replace(state.view.drain, at=now()))

    async with end_held(manager, fake, window) as held:
        reaping = asyncio.ensure_future(manager.reap())
        await held.wait()  # the unit has ended; its end is not recorded yet
        seen = await manager.get("daemon")
    await reaping
    reason = f"{DRAIN_REASON}: Reboot for a kernel update"
    assert (seen.state, seen.reason) == ("stopped", reason)
    after = await manager.get("daemon")  # from the store now: the same words
    assert (after.state, after.reason) == ("stopped", reason)
    assert UNIT not in fake.units
    await manager.close()


async def test_the_cull_warning_comes_idle_warning_before_the_cull(tmp_path: Path) -> None:
    manager, fake = make_manager(tmp_path, "[capacity]\nidle_timeout = 600\nidle_warning = 120\n")
    fake.serve = True
    await manager.start("daemon", SessionRequest(), caller=ROOT)
    assert (await manager.get("daemon")).cull_at is None  # active just now

    manager.table["daemon"].active_at = time.monotonic() - 470  # 130 s to the cull
    assert (await manager.get("daemon")).cull_at is None
    manager.table["daemon"].active_at = time.monotonic() - 500  # 100 s to the cull
    before = datetime.now(UTC)
    cull_at = (await manager.get("daemon")).cull_at
    assert cull_at is not None
    assert before + timedelta(seconds=98) <= cull_at <= datetime.now(UTC) + timedelta(seconds=101)
    assert [v.cull_at for v in await manager.list()] == [cull_at]  # the list has it too
    await manager.reap()
    assert manager.table.recorded() == ["daemon"]  # warned, not culled

    await manager.activity("daemon", caller=HUB)  # the hub saw the user
    assert (await manager.get("daemon")).cull_at is None

    manager.table["daemon"].active_at = time.monotonic() - 601
    await manager.reap()
    assert (await manager.get("daemon")).reason == "idle for 601 s (culled)"
    await manager.close()


async def test_no_cull_warning_without_a_cull_or_with_idle_warning_0(tmp_path: Path) -> None:
    for more in ("", "[capacity]\nidle_timeout = 600\nidle_warning = 0\n"):
        manager, fake = make_manager(tmp_path / str(len(more)), more)
        fake.serve = True
        await manager.start("daemon", SessionRequest(), caller=ROOT)
        manager.table["daemon"].active_at = time.monotonic() - 599
        assert (await manager.get("daemon")).cull_at is None
        await manager.close()
