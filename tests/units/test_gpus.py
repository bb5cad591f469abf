"""units.gpus: what a session's unit gets for its GPUs."""

from __future__ import annotations

import pytest

from hostd.units import SessionPolicy, SessionRequest, UserInfo, build_unit
from hostd.units.errors import InvalidOption
from hostd.units.gpus import (
    GpuGrant,
    gpu_count,
    gpu_environment,
    gpu_properties,
    gpus_of_environment,
)
from hostd.units.model import Property

GRANT = GpuGrant((1,), ("/dev/nvidia1", "/dev/nvidiactl"))
USER = UserInfo("alice", 1001, 1001, "/home/alice", "/bin/bash")


def test_a_grant_allows_its_nodes_and_binds_them_into_a_private_dev() -> None:
    assert gpu_properties(GRANT, private_devices=True) == [
        Property("DeviceAllow", "a(ss)", [("/dev/nvidia1", "rw"), ("/dev/nvidiactl", "rw")]),
        Property(
            "BindPaths",
            "a(ssbt)",
            [
                ("/dev/nvidia1", "/dev/nvidia1", False, 0),
                ("/dev/nvidiactl", "/dev/nvidiactl", False, 0),
            ],
        ),
    ]
    assert [p.name for p in gpu_properties(GRANT, private_devices=False)] == ["DeviceAllow"]
    assert gpu_properties(GpuGrant((), ()), private_devices=True) == []


def test_the_variables_name_the_indices_and_are_read_back() -> None:
    assert gpu_environment((0, 2)) == {
        "HOSTD_GPUS": "0,2",
        "CUDA_VISIBLE_DEVICES": "0,2",
        "NVIDIA_VISIBLE_DEVICES": "0,2",
    }
    assert gpu_environment(()) == {}
    assert gpus_of_environment("0,2") == (0, 2)
    assert gpus_of_environment(None) == gpus_of_environment("") == ()
    assert gpus_of_environment("0,x") == ()


@pytest.mark.parametrize("value", [-1, True, 1.5, "2", None])
def test_a_gpu_count_is_a_whole_number(value: object) -> None:
    with pytest.raises(InvalidOption, match="whole number of GPUs"):
        gpu_count(value)
    assert gpu_count(3) == 3


def test_policy_gpus_is_checked_and_named() -> None:
    with pytest.raises(InvalidOption, match=r"^gpus: expected a whole number"):
        SessionPolicy(cmd=("/bin/true", "{PORT}"), gpus=-1)
    assert SessionPolicy(cmd=("/bin/true",)).gpus == 0


def test_build_unit_with_a_grant() -> None:
    policy = SessionPolicy(cmd=("/bin/server", "{PORT}"), isolate_devices=True, gpus=1)
    spec = build_unit(
        policy, USER, SessionRequest(), port=20000, base_url="/user/alice/", gpus=GRANT
    )
    props = {p.name: p.value for p in spec.properties}
    assert props["DeviceAllow"] == [("/dev/nvidia1", "rw"), ("/dev/nvidiactl", "rw")]
    assert ("/dev/nvidia1", "/dev/nvidia1", False, 0) in props["BindPaths"]
    environment = props["Environment"]
    assert "CUDA_VISIBLE_DEVICES=1" in environment and "HOSTD_GPUS=1" in environment
    plain = build_unit(policy, USER, SessionRequest(), port=20000, base_url="/user/alice/")
    names = {p.name for p in plain.properties}
    assert "DeviceAllow" not in names and "BindPaths" not in names
