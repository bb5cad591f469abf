"""User names and the unit names derived from them (pure layer; no I/O).

A session unit is ``jupyter-<user>.service`` in ``jupyter.slice``. The user part keeps the
characters people type (so ``systemctl status jupyter-alice`` works) and escapes every other
byte as ``\\xNN`` the way systemd-escape does, so two users never share a unit name.
"""

from __future__ import annotations

import re

from hostd.units._text import show
from hostd.units.errors import InvalidName

__all__ = [
    "SLICE",
    "UNIT_PREFIX",
    "UNIT_SUFFIX",
    "USERNAME_MAX",
    "syslog_identifier_for",
    "unit_name_for",
    "user_for_unit_name",
    "validate_username",
]

UNIT_PREFIX = "jupyter-"
UNIT_SUFFIX = ".service"
SLICE = "jupyter.slice"

# Debian's useradd default NAME_REGEX is ^[a-z][-a-z0-9_]*\$?$; hostd also takes upper case,
# a leading underscore and dots, which other account sources (sssd, LDAP) hand out.
_USERNAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\$?")
# useradd(8): "Usernames may only be up to 32 characters long."
USERNAME_MAX = 32

# A subset of the characters systemd allows in unit names (unit_name_is_valid, VALID_CHARS),
# minus "\\", which starts an escape and so must itself be escaped to keep the mapping injective.
_KEPT = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-")
_ESCAPE = re.compile(r"\\x([0-9a-f]{2})")


def validate_username(name: object) -> str:
    """Return name if it is a login name hostd accepts, else raise InvalidName.

    Takes any object: names arrive from config files and requests, and anything that is not
    a valid name is an InvalidName, never a TypeError.
    """
    if not isinstance(name, str):
        raise InvalidName(f"user name must be a string, not {show(name)}")
    if not 1 <= len(name) <= USERNAME_MAX:
        raise InvalidName(f"invalid user name {show(name)}: must be 1 to {USERNAME_MAX} characters")
    # fullmatch, not match with "$": the regex "$" also matches before a trailing newline.
    if not name.isascii() or _USERNAME.fullmatch(name) is None:
        raise InvalidName(
            f"invalid user name {show(name)}: must start with a letter or '_' and hold only "
            "letters, digits, '_', '.', '-' (and an optional trailing '$')"
        )
    return name


def _escape(text: str) -> str:
    return "".join(
        chr(byte) if byte in _KEPT else f"\\x{byte:02x}" for byte in text.encode("utf-8")
    )


def unit_name_for(user: str) -> str:
    """The session unit name of a user: ``jupyter-<escaped user>.service``."""
    return f"{UNIT_PREFIX}{_escape(validate_username(user))}{UNIT_SUFFIX}"


def syslog_identifier_for(user: str) -> str:
    """The journal SYSLOG_IDENTIFIER of a user's session: the unit name without its suffix."""
    return unit_name_for(user).removesuffix(UNIT_SUFFIX)


def user_for_unit_name(unit: object) -> str | None:
    """The user whose session unit this is, or None if it is not a hostd session unit.

    Exact inverse of unit_name_for: a name that unit_name_for would not produce (a needless
    escape, upper-case hex, an invalid user) is not a session unit.
    """
    if not (isinstance(unit, str) and unit.startswith(UNIT_PREFIX) and unit.endswith(UNIT_SUFFIX)):
        return None
    middle = unit[len(UNIT_PREFIX) : len(unit) - len(UNIT_SUFFIX)]
    raw = _ESCAPE.sub(lambda match: chr(int(match.group(1), 16)), middle)
    try:
        user = validate_username(raw)
    except InvalidName:
        return None
    return user if unit_name_for(user) == unit else None
