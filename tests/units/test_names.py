"""units.names: user names, and the unit names derived from them."""

from __future__ import annotations

import contextlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hostd.units.errors import InvalidName
from hostd.units.names import (
    SLICE,
    UNIT_PREFIX,
    UNIT_SUFFIX,
    syslog_identifier_for,
    unit_name_for,
    user_for_unit_name,
    validate_username,
)

# No example database: the tests must not write into the tree.
FAST = settings(database=None, max_examples=300)
# unit_name_is_valid(): these characters, at most 255 of them (UNIT_NAME_MAX counts the NUL).
SYSTEMD_UNIT_NAME = re.compile(r"[A-Za-z0-9:_.\\-]{1,255}")
valid_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,30}\$?", fullmatch=True)


def test_constants() -> None:
    assert (UNIT_PREFIX, UNIT_SUFFIX, SLICE) == ("jupyter-", ".service", "jupyter.slice")


@pytest.mark.parametrize(
    "name", ["alice", "Alice", "_svc", "mary-jane", "a.b", "machine$", "a1_-.", "a" * 32, "x"]
)
def test_valid_usernames(name: str) -> None:
    assert validate_username(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".",
        "..",
        "-alice",
        "1alice",
        ".alice",
        "al ice",
        "al\nice",
        "alice\n",  # a regex "$" would let the trailing newline through
        "al\tice",
        "al\x00ice",
        "ålice",
        "alice\u200b",
        "a" * 33,
        "al$ice",
        "alice$$",
        "al/ice",
        "al\\ice",
        "al@ice",
        "al:ice",
        "$",
    ],
)
def test_invalid_usernames(name: str) -> None:
    with pytest.raises(InvalidName) as caught:
        validate_username(name)
    assert repr(name) in caught.value.message


@pytest.mark.parametrize("name", [None, 42, b"alice", ["alice"]])
def test_non_string_usernames(name: object) -> None:
    with pytest.raises(InvalidName, match="must be a string"):
        validate_username(name)


def test_long_name_is_shown_truncated() -> None:
    with pytest.raises(InvalidName) as caught:
        validate_username("b" * 1000)
    assert "'bbbb" in caught.value.message
    assert "..." in caught.value.message
    assert len(caught.value.message) < 200


@pytest.mark.parametrize(
    ("user", "unit"),
    [
        ("alice", "jupyter-alice.service"),
        ("mary-jane", "jupyter-mary-jane.service"),
        ("a.b", "jupyter-a.b.service"),
        ("_svc", "jupyter-_svc.service"),
        ("Alice", "jupyter-Alice.service"),
        ("machine$", "jupyter-machine\\x24.service"),
    ],
)
def test_unit_name_for(user: str, unit: str) -> None:
    assert unit_name_for(user) == unit
    assert user_for_unit_name(unit) == user


def test_unit_name_for_validates() -> None:
    with pytest.raises(InvalidName):
        unit_name_for("../etc")


def test_syslog_identifier() -> None:
    assert syslog_identifier_for("alice") == "jupyter-alice"
    assert syslog_identifier_for("machine$") == "jupyter-machine\\x24"


@pytest.mark.parametrize(
    "unit",
    [
        "jupyter-alice",
        "alice.service",
        "sshd.service",
        "jupyter-.service",
        "jupyter-alice.socket",
        "jupyter-machine$.service",  # "$" must be escaped
        "jupyter-\\x61lice.service",  # a needless escape
        "jupyter-machine\\x2A.service",  # upper-case hex
        "jupyter-machine\\X24.service",
        "jupyter-al\\x00ice.service",
        "jupyter-\\xc3\\xa5lice.service",
        "jupyter-\\x5cx41.service",
        "jupyter-alice@1.service",
        "jupyter-1alice.service",
        "user@1000.service",
        "",
        42,
        None,
    ],
)
def test_not_session_units(unit: object) -> None:
    assert user_for_unit_name(unit) is None


@FAST
@given(st.text())
def test_any_text_validates_or_raises_invalid_name(text: str) -> None:
    with contextlib.suppress(InvalidName):
        assert validate_username(text) == text


@FAST
@given(valid_names)
def test_unit_names_are_valid_systemd_names_and_invert(user: str) -> None:
    unit = unit_name_for(user)
    assert SYSTEMD_UNIT_NAME.fullmatch(unit)
    assert unit.startswith(UNIT_PREFIX)
    assert unit.endswith(UNIT_SUFFIX)
    assert user_for_unit_name(unit) == user


@FAST
@given(valid_names, valid_names)
def test_unit_name_for_is_injective(first: str, second: str) -> None:
    if first != second:
        assert unit_name_for(first) != unit_name_for(second)


@FAST
@given(st.text(alphabet=st.sampled_from("ab$\\x24.-_:@ ")))
def test_user_for_unit_name_only_inverts(middle: str) -> None:
    user = user_for_unit_name(f"{UNIT_PREFIX}{middle}{UNIT_SUFFIX}")
    if user is not None:
        assert unit_name_for(user) == f"{UNIT_PREFIX}{middle}{UNIT_SUFFIX}"
