"""hostd.config.auth: [auth], how the daemon checks passwords for the hub, every problem by key."""

from __future__ import annotations

import pytest

from hostd.config import AuthConfig, parse_config
from hostd.config.auth import parse_auth
from hostd.units.errors import ConfigError


def test_auth_defaults() -> None:
    problems: list[tuple[str, str]] = []
    assert parse_auth({}, problems) == AuthConfig()
    assert problems == []
    assert AuthConfig() == AuthConfig(
        pam_service="hostd",
        admin_users=(),
        admin_groups=(),
        lockout_failures=5,
        lockout_window_s=900.0,
        lockout_duration_s=900.0,
    )
    assert parse_config("").auth == AuthConfig()


def test_auth_section_of_the_config() -> None:
    config = parse_config(
        "[auth]\n"
        'pam_service = "hostd-hub"\n'
        'admin_users = ["alice", "bob"]\n'
        'admin_groups = ["domain admins"]\n'
        "lockout_failures = 3\n"
        "lockout_window = 60\n"
        "lockout_duration = 2.5\n"
    )
    assert config.auth == AuthConfig(
        pam_service="hostd-hub",
        admin_users=("alice", "bob"),
        admin_groups=("domain admins",),
        lockout_failures=3,
        lockout_window_s=60.0,
        lockout_duration_s=2.5,
    )


def test_every_auth_problem_is_reported_by_its_key() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            "[auth]\n"
            'pam_service = "../shadow"\n'
            'admin_users = ["-x"]\n'
            'admin_groups = ["a:b"]\n'
            "lockout_failures = 0\n"
            "lockout_window = -1\n"
            "lockout_duration = true\n"
            "lockout = 5\n"
        )
    keys = [key for key, _ in caught.value.problems]
    assert keys == [
        "auth.pam_service",
        "auth.admin_users",
        "auth.admin_groups",
        "auth.lockout_failures",
        "auth.lockout_window",
        "auth.lockout_duration",
        "auth.lockout",
    ]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("pam_service", "''"),
        ("pam_service", "'a/b'"),
        ("pam_service", "5"),
        ("admin_users", "'alice'"),
        ("admin_groups", "'staff'"),
        ("admin_groups", "[' staff']"),
        ("lockout_failures", "1.5"),
        ("lockout_failures", "1001"),
        ("lockout_window", "0"),
        ("lockout_duration", "'900'"),
        ("lockout_duration", "604801"),
    ],
)
def test_auth_values_that_do_not_check_out(key: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(f"[auth]\n{key} = {value}\n")
    assert [k for k, _ in caught.value.problems] == [f"auth.{key}"]


def test_auth_must_be_a_table() -> None:
    problems: list[tuple[str, str]] = []
    assert parse_auth(5, problems) == AuthConfig()
    assert problems == [("auth", "expected a table [auth]")]
