"""A built unit's properties survive the JSON trip to the bus worker and become `a(sv)`."""

from __future__ import annotations

import json

from hostd.busworker.worker import properties_array
from hostd.daemon.systemd import _to_wire
from hostd.units import SessionPolicy, SessionRequest, UserInfo, build_unit

ALICE = UserInfo("alice", 1001, 1001, "/home/alice", "/bin/bash")


def test_ip_address_deny_travels_as_a_struct_with_its_bytes() -> None:
    policy = SessionPolicy(
        cmd=("/usr/bin/python3",), mem_limit="64M", ip_address_deny=("169.254.169.254", "::1")
    )
    spec = build_unit(policy, ALICE, SessionRequest(), port=20000, base_url="/user/alice/")
    wire = json.loads(json.dumps(_to_wire(spec.properties)))
    deny = next(entry for entry in wire if entry[0] == "IPAddressDeny")
    assert deny == [
        "IPAddressDeny",
        "a(iayu)",
        [[2, [169, 254, 169, 254], 32], [10, [0] * 15 + [1], 128]],
    ]
    args = properties_array(wire)
    start = args.index((ord("s"), b"IPAddressDeny"))
    assert args[start + 1 : start + 9] == [
        (ord("v"), b"a(iayu)"),
        (ord("a"), b"(iayu)"),
        (ord("r"), b"iayu"),
        (ord("i"), 2),
        (ord("a"), b"y"),
        (ord("y"), 169),
        (ord("y"), 254),
        (ord("y"), 169),
    ]
    logs = next(entry for entry in wire if entry[0] == "LogExtraFields")
    assert logs[2] == ["HOSTD_USER=alice"]  # aay still travels as text
