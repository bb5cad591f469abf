"""Named servers' names (hostd.units.servers): validation, keys, unit and slice names, and the
collisions the scheme exists to rule out."""

from __future__ import annotations

import pytest

from hostd.units import SessionPolicy, SessionRequest, UserInfo, build_unit, unit_name_for
from hostd.units.errors import InvalidName, InvalidOption, InvalidServerName
from hostd.units.servers import (
    SERVER_NAME_MAX,
    key_for_unit_name,
    server_base_path,
    session_key,
    split_session_key,
    unit_name_for_key,
    user_slice_for,
    user_slice_spec,
    validate_server_name,
    validate_session_key,
)


@pytest.mark.parametrize("name", ["lab", "a", "0", "my-lab", "lab_2", "x" * SERVER_NAME_MAX])
def test_good_server_names_pass(name: str) -> None:
    assert validate_server_name(name) == name


def test_the_empty_server_name_is_the_default_server() -> None:
    assert validate_server_name("") == ""
    assert session_key("alice") == session_key("alice", "") == "alice"


@pytest.mark.parametrize(
    "name",
    [
        "../etc",  # a path
        "a/b",
        "..",
        ".",
        "lab.slice",  # a unit type
        "lab:x",  # the key's separator
        "-lab",  # an option, a slice's nesting
        "_lab",
        "Lab",  # JupyterHub's URLs are case sensitive, unit names too: one spelling
        "lab\n",
        "lab ",
        "l%2fab",
        "<script>",
        "l\u00e9b",
        "x" * (SERVER_NAME_MAX + 1),
    ],
)
def test_bad_server_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidServerName):
        validate_server_name(name)


@pytest.mark.parametrize("value", [None, 1, ["lab"], b"lab"])
def test_a_server_name_must_be_a_string(value: object) -> None:
    with pytest.raises(InvalidServerName, match="must be a string"):
        validate_server_name(value)


def test_keys_units_and_their_inverse() -> None:
    assert unit_name_for_key("alice") == "jupyter-alice.service"
    assert unit_name_for_key("alice:lab") == "jupyter-alice:lab.service"
    assert unit_name_for_key("a-b:lab") == "jupyter-a-b:lab.service"
    assert unit_name_for_key("a$:lab") == "jupyter-a\\x24:lab.service"
    for key in ("alice", "alice:lab", "a-b:lab", "a.b:x-y", "a$:lab", "a$"):
        assert key_for_unit_name(unit_name_for_key(key)) == key
    assert split_session_key("alice:lab") == ("alice", "lab")
    assert split_session_key("alice") == ("alice", "")
    assert validate_session_key("alice:lab") == "alice:lab"
    assert server_base_path("alice") == "alice"
    assert server_base_path("alice:lab") == "alice/lab"


@pytest.mark.parametrize(
    "unit",
    [
        "jupyter-alice:.service",  # no server name
        "jupyter-alice:Lab.service",  # a name validate_server_name refuses
        "jupyter-:lab.service",  # no user
        "jupyter-alice:lab.slice",
        "jupyter-alice:lab",
        "hostd.service",
        "jupyter-alice\\x3alab.service",  # a needless escape of ":"
        "other-alice:lab.service",
        None,
        42,
    ],
)
def test_names_that_are_not_session_units(unit: object) -> None:
    assert key_for_unit_name(unit) is None


def test_no_named_server_unit_is_any_users_default_unit() -> None:
    # The attack a "-" separator would allow: alice's server "bob" is user alice-bob's unit.
    assert unit_name_for_key("alice:bob") != unit_name_for("alice-bob")
    assert key_for_unit_name(unit_name_for("alice-bob")) == "alice-bob"
    # Every pair of (user, server) from names made of the same letters stays apart.
    users = ["a", "a-b", "a-b-c", "a.b", "b"]
    servers = ["", "b", "b-c", "c"]
    units = [unit_name_for_key(session_key(u, s)) for u in users for s in servers]
    assert len(set(units)) == len(units)


def test_bad_keys_are_refused() -> None:
    with pytest.raises(InvalidName):
        validate_session_key(":lab")
    with pytest.raises(InvalidServerName):
        validate_session_key("alice:../x")
    with pytest.raises(InvalidServerName):
        validate_session_key("alice:lab:x")
    with pytest.raises(InvalidName):
        validate_session_key(None)
    with pytest.raises(InvalidName):
        session_key("a/b", "lab")


def test_a_user_slice_is_a_direct_child_of_jupyter_slice() -> None:
    # A "-" in a slice name is nesting (systemd.slice(5)): alice-bob's slice must not sit in
    # alice's, spending alice's share.
    assert user_slice_for("alice") == "jupyter-alice.slice"
    assert user_slice_for("alice-bob") == "jupyter-alice\\x2dbob.slice"
    assert user_slice_for("a.b") == "jupyter-a.b.slice"
    assert user_slice_for("a$") == "jupyter-a\\x24.slice"
    middle = user_slice_for("a-b-c").removeprefix("jupyter-").removesuffix(".slice")
    assert "-" not in middle


def test_the_user_slice_carries_the_users_total_limits() -> None:
    spec = user_slice_spec("alice", 2**30, 1.5)
    assert spec.name == "jupyter-alice.slice"
    values = {prop.name: prop.value for prop in spec.properties}
    assert values["MemoryMax"] == 2**30
    assert values["CPUQuotaPerSecUSec"] == 1_500_000
    assert values["MemoryAccounting"] is True
    no_limits = {prop.name for prop in user_slice_spec("alice", None, None).properties}
    assert "MemoryMax" not in no_limits


POLICY = SessionPolicy(cmd=("/bin/server", "{PORT}", "{BASE_URL}"), mem_limit=2**30)
ALICE = UserInfo("alice", 1000, 1000, "/home/alice", "/bin/bash")


def test_a_named_servers_unit_differs_from_the_default_where_it_must() -> None:
    default = build_unit(POLICY, ALICE, SessionRequest(), port=9000, base_url="/user/alice/")
    named = build_unit(
        POLICY,
        ALICE,
        SessionRequest(),
        port=9001,
        base_url="/user/alice/lab/",
        server="lab",
        slice_name="jupyter-alice.slice",
    )
    assert named.name == "jupyter-alice:lab.service"
    d = {p.name: p.value for p in default.properties}
    n = {p.name: p.value for p in named.properties}
    assert n["Slice"] == "jupyter-alice.slice"
    assert d["Slice"] == "jupyter.slice"
    assert n["RuntimeDirectory"] == ["jupyter-alice:lab"]
    assert d["RuntimeDirectory"] == ["jupyter-alice"]
    assert n["SyslogIdentifier"] == "jupyter-alice:lab"
    assert n["LogExtraFields"] == [b"HOSTD_USER=alice", b"HOSTD_SERVER=lab"]
    assert n["Description"] == "JupyterLab for alice (server lab)"
    assert "JUPYTER_RUNTIME_DIR=/run/jupyter-alice:lab" in n["Environment"]
    with pytest.raises(InvalidServerName):
        build_unit(POLICY, ALICE, SessionRequest(), port=9001, base_url="/x/", server="../a")


def test_named_server_limit_is_a_small_whole_number() -> None:
    assert SessionPolicy(cmd=("/bin/x",)).named_server_limit == 0
    assert SessionPolicy(cmd=("/bin/x",), named_server_limit=3).named_server_limit == 3
    for bad in (-1, 101, True, "2", 1.5):
        with pytest.raises(InvalidOption, match="named_server_limit"):
            SessionPolicy(cmd=("/bin/x",), named_server_limit=bad)
