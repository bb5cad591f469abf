"""The daemon's parts wired as in hostd serve, over FakeSystemd and a real store in tmp_path."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

from hostd.config import Config, parse_config
from hostd.daemon.login import AccountPamCheck, PamVerdict
from hostd.daemon.sessions import SessionManager
from hostd.daemon.store import Store
from hostd.daemon.systemd import UnitStatus
from hostd.units import SessionRequest
from hostd.units.values import Caller
from tests.hostd.daemon.fake_systemd import FakeSystemd

__all__ = [
    "GIB",
    "ROOT",
    "account_usable",
    "end_held",
    "make_config",
    "make_manager",
    "serving_daemon",
]

GIB = 2**30
ROOT = Caller(uid=0, name="root", privileged=True)


def make_config(tmp_path: Path, more: str = "") -> Config:
    """A config whose sessions run as system accounts (min_uid 1: "daemon" is uid 1 on every
    Debian), with state and runtime directories in tmp_path."""
    return parse_config(
        f'[daemon]\nstate_dir = "{tmp_path}/state"\nruntime_dir = "{tmp_path}/run"\n'
        "min_uid = 1\nstart_timeout = 2\n"
        '[session]\ncmd = ["/usr/bin/python3", "-m", "http.server", "{PORT}"]\n'
        'mem_limit = "1G"\ncpu_limit = 0.5\n' + more
    )


async def account_usable(service: str, user: str) -> PamVerdict:
    """PAM's account check over FakeSystemd: every account is usable (their sessions run as
    system accounts, which /etc/pam.d has no say on here); the systemd tier runs real PAM."""
    return PamVerdict(ok=True, reason="usable (tests over FakeSystemd)")


def make_manager(
    tmp_path: Path,
    more: str = "",
    *,
    memory_total: int = 8 * GIB,
    account_check: AccountPamCheck = account_usable,
) -> tuple[SessionManager, FakeSystemd]:
    fake = FakeSystemd()
    config = make_config(tmp_path, more)
    config.daemon.state_dir.mkdir(parents=True, exist_ok=True)
    store = Store.open(config.daemon.state_dir / "hostd.sqlite")
    manager = SessionManager(
        config,
        fake,
        store,
        memory_total=memory_total,
        probe=fake.probe,
        account_check=account_check,
    )
    return manager, fake


async def serving_daemon(tmp_path: Path) -> tuple[SessionManager, FakeSystemd]:
    """make_manager's parts with a session of "daemon" (uid 1) running, its server answering."""
    manager, fake = make_manager(tmp_path)
    fake.serve = True
    await manager.start("daemon", SessionRequest(), caller=ROOT)
    return manager, fake


@contextlib.asynccontextmanager
async def end_held(
    manager: SessionManager,
    fake: FakeSystemd,
    where: Literal["unit read after the stop", "record written"],
) -> AsyncIterator[asyncio.Event]:
    """Hold the daemon's end of a session at one of its awaits until the block is left: its
    read of the unit after systemd stopped it (a D-Bus round trip), or the store's write of the
    end (a thread). The event is set once the end is held there."""
    loop = asyncio.get_running_loop()
    held, go_on = asyncio.Event(), threading.Event()
    read_unit, store = fake.unit_status, manager.parts.store
    write_record = store.update

    async def unit_status(name: str) -> UnitStatus | None:
        status = await read_unit(name)
        stopped = any(call[0] == "stop" for call in fake.calls)
        if where == "unit read after the stop" and stopped and not held.is_set():
            held.set()
            await asyncio.to_thread(go_on.wait)
        return status

    def update(record_id: int, **changes: object) -> None:
        if where == "record written" and "ended_at" in changes:
            loop.call_soon_threadsafe(held.set)
            go_on.wait()
        write_record(record_id, **changes)

    fake.unit_status = unit_status  # type: ignore[method-assign]
    store.update = update  # type: ignore[method-assign]
    try:
        yield held
    finally:
        go_on.set()
        fake.unit_status = read_unit  # type: ignore[method-assign]
        store.update = write_record  # type: ignore[method-assign]
