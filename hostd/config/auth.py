"""The ``[auth]`` section: how the daemon checks passwords for the hub, and who is an admin.

    [auth]
    pam_service = "hostd"            # /etc/pam.d/<pam_service>
    admin_users = ["alice"]
    admin_groups = ["domain admins"]
    lockout_failures = 5             # this many failures of one user name within
    lockout_window = 900             # lockout_window seconds lock it out for
    lockout_duration = 900           # lockout_duration seconds

Only the settings: hostd.daemon.login does the checking of passwords with them. No I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hostd.config.document import Problems
from hostd.units._text import show
from hostd.units.checks import (
    check_duration,
    check_group_names,
    check_user_names,
    check_whole_number,
)
from hostd.units.errors import InvalidInput, InvalidOption

__all__ = ["AUTH_KEYS", "AUTH_TIME_MAX_S", "AuthConfig", "parse_auth"]

# A lockout's window or duration past a week is a mistake of unit, not a policy.
AUTH_TIME_MAX_S = 7 * 86400
# A PAM service is a file name in /etc/pam.d.
_PAM_SERVICE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class AuthConfig:
    """The ``[auth]`` section: how the daemon checks passwords for the hub."""

    pam_service: str = "hostd"  # /etc/pam.d/<pam_service>
    admin_users: tuple[str, ...] = ()
    admin_groups: tuple[str, ...] = ()
    lockout_failures: int = 5  # this many failures of one user name within lockout_window ...
    lockout_window_s: float = 900.0
    lockout_duration_s: float = 900.0  # ... lock it out for this long


def _pam_service(value: object) -> str:
    if not isinstance(value, str) or _PAM_SERVICE.fullmatch(value) is None:
        raise InvalidOption(f"expected the name of a file in /etc/pam.d, not {show(value)}")
    return value


def _failures(value: object) -> int:
    return check_whole_number(value, low=1, high=1000)


def _seconds(value: object) -> float:
    return check_duration(value, at_most=AUTH_TIME_MAX_S)


# TOML key -> (AuthConfig field, check)
_AUTH_KEYS: dict[str, tuple[str, Callable[[object], object]]] = {
    "pam_service": ("pam_service", _pam_service),
    "admin_users": ("admin_users", check_user_names),
    # As [daemon] allowed_groups takes them: sssd's "domain users" has a space.
    "admin_groups": ("admin_groups", check_group_names),
    "lockout_failures": ("lockout_failures", _failures),
    "lockout_window": ("lockout_window_s", _seconds),
    "lockout_duration": ("lockout_duration_s", _seconds),
}
# The TOML keys of [auth], for `hostctl config`'s "did you mean".
AUTH_KEYS = tuple(_AUTH_KEYS)


def parse_auth(table: object, problems: Problems) -> AuthConfig:
    """The [auth] section; every problem is added as (dotted key, message), and what checked
    out is kept."""
    if not isinstance(table, dict):
        problems.append(("auth", "expected a table [auth]"))
        return AuthConfig()
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in _AUTH_KEYS:
            problems.append((f"auth.{key}", f"unknown option; known: {', '.join(_AUTH_KEYS)}"))
            continue
        name, check = _AUTH_KEYS[key]
        try:
            values[name] = check(value)
        except InvalidInput as exc:
            problems.append((f"auth.{key}", exc.message))
    return AuthConfig(**values)
