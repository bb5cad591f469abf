"""Which environment variables a session gets, and from whom (pure layer; no I/O).

Three sources fill a session's Environment=: the admin's fixed variables, hostd's own
(SHELL, MEM_LIMIT, ...), and the caller's, which must match the admin's allowlist. None may
carry a secret: every local user can read a unit's Environment= over D-Bus
(GHSA-cg54-gpgr-4rm6); secrets go through credentials (LoadCredential=).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from hostd.units._text import show
from hostd.units.errors import InvalidOption

__all__ = [
    "ENV_VALUE_MAX",
    "SECRET_WORDS",
    "env_allowed",
    "looks_secret",
    "validate_env_name",
    "validate_env_pattern",
    "validate_env_value",
    "validate_environment",
]

# Words that mark a variable as a secret, matched anywhere in the upper-cased name.
SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY")
# Generous for JUPYTERHUB_* values (URLs, scope lists) yet bounded: every value rides in the
# D-Bus message and in the unit's state for its whole life.
ENV_VALUE_MAX = 32 * 1024

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\*?")
_SECRETS_HINT = (
    "Environment= is readable by every local user (GHSA-cg54-gpgr-4rm6); "
    "secrets go through credentials"
)


def looks_secret(name: str) -> bool:
    """True if a variable name says it holds a secret (API_TOKEN, DB_PASSWORD, ...)."""
    upper = name.upper()
    return any(word in upper for word in SECRET_WORDS)


def validate_env_name(name: object) -> str:
    """A variable name as POSIX shells take it, and not a secret's."""
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise InvalidOption(f"invalid environment variable name {show(name)}")
    if looks_secret(name):
        raise InvalidOption(f"environment variable {name} looks like a secret: {_SECRETS_HINT}")
    return name


def validate_env_value(name: str, value: object) -> str:
    """A value without NUL or line breaks (which would split the KEY=VALUE record)."""
    if not isinstance(value, str):
        raise InvalidOption(f"environment variable {name}: value {show(value)} is not a string")
    if any(char in value for char in "\x00\n\r"):
        raise InvalidOption(f"environment variable {name}: value {show(value)} has a line break")
    if len(value) > ENV_VALUE_MAX:
        raise InvalidOption(f"environment variable {name}: value over {ENV_VALUE_MAX} characters")
    return value


def validate_environment(environment: object, *, what: str) -> dict[str, str]:
    """A mapping of names to values, each checked; what names it in messages."""
    if not isinstance(environment, Mapping):
        raise InvalidOption(f"{what} must be a mapping, not {show(environment)}")
    checked: dict[str, str] = {}
    for name, value in environment.items():
        # NAME_FILE=/path says where a secret lives (JUPYTER_TOKEN_FILE, as Docker's *_FILE
        # convention): the path is not the secret; the file is, and it stays 0400.
        key = str(name) if _is_file_reference(name, value) else validate_env_name(name)
        checked[key] = validate_env_value(key, value)
    return checked


def _is_file_reference(name: object, value: object) -> bool:
    return (
        isinstance(name, str)
        and name.endswith("_FILE")
        and _NAME.fullmatch(name) is not None
        and isinstance(value, str)
        and value.startswith("/")
    )


def validate_env_pattern(pattern: object) -> str:
    """An allowlist entry: a variable name, or a prefix ending in "*" ("JUPYTERHUB_*")."""
    if not isinstance(pattern, str) or _PATTERN.fullmatch(pattern) is None:
        raise InvalidOption(
            f"invalid allowed_environment entry {show(pattern)}: expected NAME or PREFIX*"
        )
    if looks_secret(pattern.rstrip("*")):
        raise InvalidOption(f"allowed_environment may not allow {pattern}: {_SECRETS_HINT}")
    return pattern


def env_allowed(name: str, patterns: Iterable[str]) -> bool:
    """True if name equals a pattern, or starts with the prefix of a "PREFIX*" pattern."""
    return any(
        name.startswith(pattern[:-1]) if pattern.endswith("*") else name == pattern
        for pattern in patterns
    )
