"""Named servers: their names, session keys, unit and slice names (pure layer; no I/O).

A user's default server is ``jupyter-<user>.service`` as it always was (hostd.units.names).
A named server is ``jupyter-<user>:<server>.service``, inside the user's slice
``jupyter-<user>.slice`` (in ``jupyter.slice``), which carries the user's total limits.

Why ":" and not "-" between user and server: a user name may hold "-", so
``jupyter-alice-bob.service`` would be both alice's server "bob" and the default server of user
"alice-bob", and one of them could take over the other's unit. ":" is a character systemd
allows in a unit name (unit_name_is_valid) that no user name holds (validate_username), so the
two families of names never meet.

Why the slice escapes "-" as ``\\x2d`` (as systemd-escape does): a "-" in a slice name is
nesting (systemd.slice(5)), so user "alice-bob"'s ``jupyter-alice-bob.slice`` would sit inside
alice's ``jupyter-alice.slice`` and spend alice's share. ``jupyter-alice\\x2dbob.slice`` is a
direct child of ``jupyter.slice``.

Inside the daemon a session is named by its key: the user name for a default server (so every
path, URL and record of a default server is what it was), ``<user>:<server>`` for a named one.
"""

from __future__ import annotations

import re
from typing import Final

from hostd.units._text import show
from hostd.units.errors import InvalidServerName
from hostd.units.model import Property, UnitSpec
from hostd.units.names import (
    UNIT_PREFIX,
    UNIT_SUFFIX,
    unit_name_for,
    user_for_unit_name,
    validate_username,
)
from hostd.units.resources import limit_properties

__all__ = [
    "KEY_SEPARATOR",
    "SERVER_NAME_MAX",
    "key_for_unit_name",
    "server_base_path",
    "session_key",
    "split_session_key",
    "unit_name_for_key",
    "user_slice_for",
    "user_slice_spec",
    "validate_server_name",
    "validate_session_key",
]

KEY_SEPARATOR: Final = ":"
# JupyterHub's own rule for a server name is loose (anything without "/"); hostd keeps the
# short safe set of characters that is the same in a unit name, a path, a URL and HTML, so
# nothing has to be escaped anywhere: no "/", "." (no "..", no ".slice"), "%", "<", quotes.
SERVER_NAME_MAX: Final = 32
_SERVER_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


def validate_server_name(name: object) -> str:
    """Return name if it is a server name hostd accepts, else raise InvalidServerName. The
    empty string is the default server."""
    if not isinstance(name, str):
        raise InvalidServerName(f"server name must be a string, not {show(name)}")
    if name == "":
        return name
    if len(name) > SERVER_NAME_MAX or not name.isascii() or not _SERVER_NAME.fullmatch(name):
        raise InvalidServerName(
            f"invalid server name {show(name)}: must be 1 to {SERVER_NAME_MAX} characters, "
            "lower-case letters, digits, '_' and '-', starting with a letter or digit"
        )
    return name


def session_key(user: str, server: str = "") -> str:
    """The daemon's key of a user's server: the user name for the default server."""
    user = validate_username(user)
    server = validate_server_name(server)
    return f"{user}{KEY_SEPARATOR}{server}" if server else user


def split_session_key(key: str) -> tuple[str, str]:
    """(user, server) of a session key; server "" for the default server."""
    user, _, server = key.partition(KEY_SEPARATOR)
    return validate_username(user), validate_server_name(server)


def validate_session_key(key: object) -> str:
    """Return key if it is a valid session key (a user name, or user:server)."""
    if not isinstance(key, str):
        validate_username(key)  # raises InvalidName with its usual words
    assert isinstance(key, str)
    user, server = split_session_key(key)
    return session_key(user, server)


def unit_name_for_key(key: str) -> str:
    """``jupyter-<user>.service`` for a default server, ``jupyter-<user>:<server>.service``
    for a named one."""
    user, server = split_session_key(key)
    default = unit_name_for(user)
    if not server:
        return default
    return f"{default.removesuffix(UNIT_SUFFIX)}{KEY_SEPARATOR}{server}{UNIT_SUFFIX}"


def key_for_unit_name(unit: object) -> str | None:
    """The session key whose unit this is, or None if it is no hostd session unit (exact
    inverse of unit_name_for_key)."""
    user = user_for_unit_name(unit)
    if user is not None:
        return user
    if not isinstance(unit, str) or not unit.endswith(UNIT_SUFFIX):
        return None
    head, separator, server = unit.removesuffix(UNIT_SUFFIX).rpartition(KEY_SEPARATOR)
    if not separator:
        return None
    user = user_for_unit_name(f"{head}{UNIT_SUFFIX}")
    if user is None:
        return None
    try:
        key = session_key(user, server)
    except InvalidServerName:
        return None
    return key if server and unit_name_for_key(key) == unit else None


def user_slice_for(user: str) -> str:
    """``jupyter-<user>.slice``, a direct child of jupyter.slice: every "-" of the user name
    escaped as systemd-escape does (a "-" in a slice name would nest it)."""
    middle = unit_name_for(user).removeprefix(UNIT_PREFIX).removesuffix(UNIT_SUFFIX)
    return f"{UNIT_PREFIX}{middle.replace('-', chr(92) + 'x2d')}.slice"


def server_base_path(key: str) -> str:
    """What follows the base URL prefix: ``<user>`` or ``<user>/<server>`` (a server name
    needs no escaping in a URL: validate_server_name)."""
    user, server = split_session_key(key)
    return f"{user}/{server}" if server else user


def user_slice_spec(user: str, mem_limit: int | None, cpu_limit: float | None) -> UnitSpec:
    """The transient slice all of a user's servers run in, with the user's total limits: a
    second server shares the first one's memory and CPU rather than adding its own."""
    properties = (
        Property("Description", "s", f"JupyterLab servers of {validate_username(user)}"),
        # ref: systemd.resource-control(5): on cgroup v1 a slice's memory and cpu cgroups exist
        # only with accounting on, and its limits apply only there.
        Property("MemoryAccounting", "b", True),
        Property("CPUAccounting", "b", True),
        Property("TasksAccounting", "b", True),
        *limit_properties(mem_limit, cpu_limit),
    )
    return UnitSpec(user_slice_for(user), properties)
