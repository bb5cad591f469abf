"""The [gpus] section, and gpus in [session] and the admin's profiles, checked with the rest."""

from __future__ import annotations

from hostd.config import GpuConfig, parse_config
from hostd.config.gpus import parse_gpus
from hostd.config.profiles import ProfileLimits
from hostd.daemon.starter import policy_for
from tests.hostd.config.samples import problems_of

GPUS = (
    '[session]\nisolate_devices = true\n[gpus]\ndevices = [["/dev/nvidia0"], "/dev/nvidia1"]\n'
    'control = ["/dev/nvidiactl", "/dev/nvidia-uvm"]\n'
)


def test_gpus_are_read_in_order_with_their_control_nodes() -> None:
    config = parse_config(GPUS)
    assert config.gpus == GpuConfig(
        (("/dev/nvidia0",), ("/dev/nvidia1",)), ("/dev/nvidiactl", "/dev/nvidia-uvm")
    )
    assert config.gpus.count == 2
    assert config.gpus.nodes()[-1] == "/dev/nvidia-uvm"
    assert parse_config("").gpus == GpuConfig() and parse_config("").session.gpus == 0


def test_session_and_profile_gpus_resolve_like_mem_limit() -> None:
    config = parse_config(
        GPUS + "[profiles.users.alice]\ngpus = 2\n[profiles.groups.staff]\ngpus = 1\n"
    )
    assert config.profiles.users["alice"] == ProfileLimits(gpus=2)
    assert policy_for(config, "alice", (), None)[0].gpus == 2
    assert policy_for(config, "bob", ("staff",), None)[0].gpus == 1
    assert policy_for(config, "carol", (), None)[0].gpus == 0


def test_gpus_asked_beyond_those_listed_are_config_errors() -> None:
    assert problems_of("[session]\ngpus = 1\n") == [
        ("session.gpus", "1 GPUs for every session, and [gpus] lists 0")
    ]
    assert problems_of(GPUS + "[profiles.users.alice]\ngpus = 3\n") == [
        ("profiles.users.alice.gpus", "3 GPUs, and [gpus] lists 2")
    ]
    assert problems_of("[profiles.groups.staff]\ngpus = -1\n") == [
        ("profiles.groups.staff.gpus", "expected a whole number of GPUs, 0 or more, not -1")
    ]


def test_gpus_need_isolate_devices() -> None:
    text = GPUS.replace("isolate_devices = true", "isolate_devices = false")
    assert [key for key, _ in problems_of(text)] == ["session.isolate_devices"]
    assert [
        key
        for key, _ in problems_of(
            "[session]\nisolate_devices = true\n[session.unit_extra_properties]\n"
            'PrivateDevices = "no"\n[gpus]\ndevices = ["/dev/nvidia0"]\n'
        )
    ] == ["session.unit_extra_properties.PrivateDevices"]


def test_every_gpus_problem_is_reported_by_its_key() -> None:
    problems: list[tuple[str, str]] = []
    parse_gpus(
        {
            "devices": [["relative"], [], ["/dev/a"]],
            "control": ["/dev/a"],
            "count": 2,
        },
        problems,
    )
    assert [key for key, _ in problems] == [
        "gpus.count",
        "gpus.devices[0]",
        "gpus.devices[1]",
        "gpus.control",
    ]
    assert problems[-1][1] == "/dev/a is also in gpus.devices[2]: a node is one GPU's"
    problems = []
    assert parse_gpus(5, problems) == GpuConfig() and problems[0][0] == "gpus"
    problems = []
    parse_gpus({"devices": "/dev/a"}, problems)
    parse_gpus({"control": ["/dev/c"]}, problems)
    assert [key for key, _ in problems] == ["gpus.devices", "gpus.control"]
