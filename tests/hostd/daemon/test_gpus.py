"""Which GPUs a start gets (hostd.daemon.gpus) and how the table holds and frees them."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostd.cli.verify_gpus import gpu_checks, node_kind
from hostd.config.gpus import GpuConfig
from hostd.daemon.gpus import GPU_RETRY_AFTER_S, allocate_gpus, grant_for
from hostd.daemon.table import SessionTable
from hostd.units import Property, SessionRequest
from hostd.units.errors import GpusNotConfigured, GpusUnavailable
from hostd.units.gpus import GpuGrant
from tests.hostd.daemon.parts import ROOT, make_manager

THREE = GpuConfig((("/dev/nvidia0",), ("/dev/nvidia1",), ("/dev/nvidia2",)), ("/dev/nvidiactl",))


def test_distinct_free_gpus_lowest_first() -> None:
    assert allocate_gpus(THREE, 2, {}, user="alice") == (0, 1)
    assert allocate_gpus(THREE, 2, {0: "bob"}, user="alice") == (1, 2)
    assert allocate_gpus(THREE, 0, {0: "a", 1: "b", 2: "c"}, user="alice") == ()


def test_none_free_is_429_naming_the_holders() -> None:
    with pytest.raises(GpusUnavailable) as caught:
        allocate_gpus(THREE, 2, {0: "bob", 2: "carol"}, user="alice")
    assert caught.value.message == (
        "no free GPU for the session of alice: it asks for 2, 1 of 3 free "
        "(GPU 0: bob, GPU 2: carol); try again when a session ends"
    )
    assert caught.value.retry_after_s == GPU_RETRY_AFTER_S


def test_more_than_configured_is_a_clear_4xx() -> None:
    with pytest.raises(GpusNotConfigured, match="asks for 1 GPUs, and no GPUs are configured"):
        allocate_gpus(GpuConfig(), 1, {}, user="alice")
    with pytest.raises(GpusNotConfigured, match=r"asks for 4 GPUs, and \[gpus\] lists 3"):
        allocate_gpus(THREE, 4, {}, user="alice")


def test_a_grant_is_the_gpus_nodes_then_the_control_nodes() -> None:
    assert grant_for(THREE, (2, 0)) == GpuGrant(
        (2, 0), ("/dev/nvidia2", "/dev/nvidia0", "/dev/nvidiactl")
    )
    assert grant_for(THREE, ()) is None


def test_the_table_holds_gpus_until_release() -> None:
    table = SessionTable()
    table["alice"].gpus = (0, 2)
    table["bob"].gpus = (1,)
    assert table.gpus() == {0: "alice", 2: "alice", 1: "bob"}
    table.release("alice")
    assert table.gpus() == {1: "bob"}


def test_check_config_wants_character_devices(tmp_path: Path) -> None:
    regular = tmp_path / "nvidia0"
    regular.write_text("")
    config = GpuConfig((("/dev/null",), (str(regular),)), (str(tmp_path / "gone"),))
    (check,) = gpu_checks(config)
    assert (check.name, check.status) == ("GPUs", "fail")
    assert check.detail == f"{regular} is a regular file; {tmp_path}/gone is missing"
    (check,) = gpu_checks(GpuConfig((("/dev/null",), ("/dev/zero",)), ("/dev/full",)))
    assert check.status == "ok" and check.detail.startswith("2 GPUs, 1 control nodes")
    assert gpu_checks(GpuConfig()) == []
    assert node_kind("/dev/null") == "char 1:3" and node_kind(str(tmp_path)) == "a directory"


GPU_CONFIG = 'isolate_devices = true\ngpus = 1\n[gpus]\ndevices = [["/dev/null"]]\n'


async def test_a_start_holds_its_gpu_until_its_end_and_a_restart_keeps_it(tmp_path: Path) -> None:
    manager, fake = make_manager(tmp_path, GPU_CONFIG)
    fake.serve = True
    try:
        first = await manager.start("daemon", SessionRequest(), caller=ROOT)
        assert first.session.gpus == (0,)
        (spec,) = fake.started
        assert Property("DeviceAllow", "a(ss)", [("/dev/null", "rw")]) in spec.properties
        with pytest.raises(GpusUnavailable, match="GPU 0: daemon"):
            await manager.start("bin", SessionRequest(), caller=ROOT)
        assert manager.table["bin"].gpus == () and manager.table["bin"].port is None
    finally:
        await manager.close()
    # A new daemon over the same units: the GPU is still held.
    again, fake_again = make_manager(tmp_path, GPU_CONFIG)
    fake_again.units.update(fake.units)
    await again.reattach()
    assert again.table.gpus() == {0: "daemon"}
    await again.close()
