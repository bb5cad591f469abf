"""hostd.daemon.admission: memory promises, the start slots, the slice cap (no systemd)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hostd.daemon.admission import Admission, check_memory_promise, memory_capacity
from hostd.daemon.table import SessionTable
from hostd.units import Property
from hostd.units.errors import CapacityExceeded, SystemdUnavailable
from tests.hostd.daemon.fake_systemd import FakeSystemd
from tests.hostd.daemon.parts import GIB, make_config


def admission(tmp_path: Path, more: str = "", memory_total: int = 10 * GIB) -> Admission:
    return Admission(make_config(tmp_path, more), SessionTable(), memory_total)


def test_memory_capacity_is_the_share_of_ram() -> None:
    assert memory_capacity(10 * GIB, 0.5) == 5 * GIB
    assert memory_capacity(3, 0.5) == 1  # whole bytes, rounded down


def test_a_promise_within_capacity_passes_and_one_over_it_says_why() -> None:
    check_memory_promise(3 * GIB, 2 * GIB, 5 * GIB, memory_share=0.5, retry_after_s=30)
    with pytest.raises(CapacityExceeded) as caught:
        check_memory_promise(3 * GIB, 2 * GIB + 1, 5 * GIB, memory_share=0.5, retry_after_s=7)
    assert "memory_share 0.5" in caught.value.message
    # Sizes for people: no byte counts (issue 16: "would promise 70866960384 bytes").
    with pytest.raises(CapacityExceeded) as caught:
        check_memory_promise(3 * GIB, 3 * GIB, 5 * GIB, memory_share=0.5, retry_after_s=7)
    assert caught.value.message == (
        "starting this session (memory limit 3.0G) would promise 6.0G of memory to sessions, "
        "over the 5.0G they may have together (memory_share 0.5); try again when another stops"
    )
    assert caught.value.retry_after_s == 7


def test_promises_count_other_users_and_replace_the_users_own(tmp_path: Path) -> None:
    gate = admission(tmp_path, "[capacity]\nmemory_share = 0.5\n")  # 5 GiB of 10
    gate.promise_memory("alice", 3 * GIB)
    gate.promise_memory("alice", 4 * GIB)  # her own old promise does not count against her
    with pytest.raises(CapacityExceeded):
        gate.promise_memory("bob", 2 * GIB)
    assert gate.table["bob"].promised is None  # a refused promise is not kept
    gate.table.release("alice")
    gate.promise_memory("bob", 2 * GIB)
    assert gate.table.promised_except("carol") == 2 * GIB


async def test_starts_beyond_the_limit_wait_in_arrival_order(tmp_path: Path) -> None:
    gate = admission(tmp_path, "[capacity]\nmax_concurrent_starts = 1\n")
    order: list[str] = []
    release = asyncio.Event()

    async def start(name: str) -> None:
        async with gate.start_slot():
            order.append(name)
            await release.wait()

    first = asyncio.create_task(start("first"))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(start(name)) for name in ("second", "third")]
    await asyncio.sleep(0)
    assert order == ["first"] and gate.waiting == 2
    release.set()
    await asyncio.gather(first, *rest)
    assert order == ["first", "second", "third"] and gate.waiting == 0


async def test_a_slot_is_given_back_when_the_start_fails(tmp_path: Path) -> None:
    gate = admission(tmp_path, "[capacity]\nmax_concurrent_starts = 1\n")
    with pytest.raises(RuntimeError):
        async with gate.start_slot():
            raise RuntimeError("systemd said no")
    async with asyncio.timeout(1), gate.start_slot():
        pass


async def test_the_slice_is_capped_at_the_memory_capacity(tmp_path: Path) -> None:
    gate = admission(tmp_path, "[capacity]\nmemory_share = 0.25\n", memory_total=8 * GIB)
    systemd = FakeSystemd()
    await gate.cap_slice(systemd)
    assert systemd.set == [
        (
            "jupyter.slice",
            (Property("MemoryAccounting", "b", True), Property("MemoryMax", "t", 2 * GIB)),
        )
    ]


async def test_a_slice_systemd_refuses_is_logged_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    systemd = FakeSystemd()
    systemd.set_error = SystemdUnavailable("systemd: no")
    await admission(tmp_path).cap_slice(systemd)
    assert "could not cap jupyter.slice" in caplog.text


def test_the_users_lock_is_the_tables(tmp_path: Path) -> None:
    gate = admission(tmp_path)
    assert gate.lock("alice") is gate.table.lock("alice") is not gate.lock("bob")
