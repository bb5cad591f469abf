"""units.checks: the value checks hostd.toml and hub.toml share, each value and message."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostd.units.checks import (
    LOG_LEVELS,
    check_duration,
    check_group_name,
    check_group_names,
    check_log_level,
    check_optional_path,
    check_path,
    check_port_range,
    check_user_names,
    check_whole_number,
)
from hostd.units.errors import InvalidInput, InvalidName, InvalidOption, InvalidPath


def message_of(check: object, value: object, **options: object) -> str:
    with pytest.raises(InvalidInput) as caught:
        check(value, **options)  # type: ignore[operator]
    return caught.value.message


# --- paths ----------------------------------------------------------------------------------


def test_a_path_is_absolute_and_normalised_and_may_be_a_path() -> None:
    assert check_path("/run/hostd/hostd.sock") == Path("/run/hostd/hostd.sock")
    assert check_path(Path("/var/lib/hostd")) == Path("/var/lib/hostd")
    assert isinstance(check_path("/x"), Path)
    with pytest.raises(InvalidPath, match="must be absolute"):
        check_path("run/hostd")
    with pytest.raises(InvalidPath, match="not normalised"):
        check_path("/run//x")
    with pytest.raises(InvalidPath, match="must be a string"):
        check_path(7)


def test_an_optional_path_may_be_unset() -> None:
    assert check_optional_path(None) is None
    assert check_optional_path("") is None
    assert check_optional_path("/etc/c.pem") == Path("/etc/c.pem")
    with pytest.raises(InvalidPath):
        check_optional_path("c.pem")


# --- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["users", "hostd", "domain users", "Staff-1", "x" * 256])
def test_group_names_as_nss_hands_them_out(name: str) -> None:
    assert check_group_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "a:b", " staff", "staff ", "a\nb", "a\u200bb", 7, None, "x" * 257]
)
def test_what_cannot_be_a_group_name(name: object) -> None:
    with pytest.raises(InvalidName) as caught:
        check_group_name(name)
    assert caught.value.message.startswith("expected a group name like 'users', not ")


def test_lists_of_group_names() -> None:
    assert check_group_names(["students", "domain users"]) == ("students", "domain users")
    assert check_group_names(("a",)) == ("a",)
    assert check_group_names([]) == ()
    assert message_of(check_group_names, "staff") == "expected a list of group names, not 'staff'"
    assert message_of(check_group_names, ["ok", 1]) == "expected a group name like 'users', not 1"


def test_lists_of_user_names() -> None:
    assert check_user_names(["alice", "bob"]) == ("alice", "bob")
    assert check_user_names(()) == ()
    assert message_of(check_user_names, "alice") == "expected a list of user names, not 'alice'"
    with pytest.raises(InvalidName, match="invalid user name '-x'"):
        check_user_names(["-x"])


# --- numbers --------------------------------------------------------------------------------


def test_durations_are_floats_within_their_bound() -> None:
    assert check_duration(10, at_most=60) == 10.0
    assert isinstance(check_duration(10, at_most=60), float)
    assert check_duration(60, at_most=60) == 60.0
    assert check_duration(0, at_most=60, zero_ok=True) == 0.0
    assert check_duration(2.5, at_most=366, unit="days") == 2.5


@pytest.mark.parametrize(
    ("value", "options", "message"),
    [
        (True, {}, "expected a number of seconds, not True"),
        ("10s", {}, "expected a number of seconds, not '10s'"),
        (0, {}, "expected more than 0 and at most 86400 seconds, not 0"),
        (-1, {}, "expected more than 0 and at most 86400 seconds, not -1"),
        (86401, {}, "expected more than 0 and at most 86400 seconds, not 86401"),
        (float("nan"), {}, "expected more than 0 and at most 86400 seconds, not nan"),
        (float("inf"), {}, "expected more than 0 and at most 86400 seconds, not inf"),
        (10**400, {}, "expected more than 0 and at most 86400 seconds, not 1000000000000"),
        (-1, {"zero_ok": True}, "expected 0 to 86400 seconds, not -1"),
        (0, {"unit": "days"}, "expected more than 0 and at most 86400 days, not 0"),
        ("x", {"unit": "days"}, "expected a number of days, not 'x'"),
    ],
)
def test_durations_that_do_not_check_out(
    value: object, options: dict[str, object], message: str
) -> None:
    assert message_of(check_duration, value, at_most=86400.0, **options).startswith(message)


def test_a_large_bound_is_written_out() -> None:
    assert message_of(check_duration, -1, at_most=30 * 86400, zero_ok=True) == (
        "expected 0 to 2592000 seconds, not -1"
    )


def test_whole_numbers() -> None:
    assert check_whole_number(5, low=1, high=1000) == 5
    assert check_whole_number(1, low=1, high=1) == 1
    for value in (0, 1001, 1.5, True, "5", None):
        assert message_of(check_whole_number, value, low=1, high=1000).startswith(
            "expected a whole number from 1 to 1000, not "
        )
    assert message_of(check_whole_number, 70000, low=1, high=65535, what="a port number") == (
        "expected a port number from 1 to 65535, not 70000"
    )


def test_port_ranges() -> None:
    assert check_port_range([20000, 29999]) == (20000, 29999)
    assert check_port_range((1024, 65535)) == (1024, 65535)
    assert check_port_range([10, 20], low=1) == (10, 20)
    assert message_of(check_port_range, [80, 70000]) == (
        "invalid port range [80, 70000]: need 1024 <= low < high <= 65535"
    )
    for value in ([20000], [1, 2, 3], [True, 20000], ["1", "2"], "20000-29999", None):
        assert message_of(check_port_range, value).startswith(
            "expected [low, high], two port numbers, not "
        )
    with pytest.raises(InvalidOption, match="invalid port range"):
        check_port_range([20000, 20000])


def test_log_levels() -> None:
    assert LOG_LEVELS == ("debug", "info", "warning", "error")
    for level in LOG_LEVELS:
        assert check_log_level(level) == level
    assert message_of(check_log_level, "INFO") == (
        "expected one of debug, info, warning, error, not 'INFO'"
    )
    with pytest.raises(InvalidOption):
        check_log_level(None)
