"""`hostctl config`'s keys and values: one dotted namespace over hostd.toml and hub.toml
(hostd/ layer, pure: no I/O, no TOML document touched here).

``daemon.port_range``, ``session.mem_limit``, ``auth.admin_users`` ... are hostd.toml's;
``hub.<key>`` is hub.toml's (its only section is [hub]), so one name says which file. TLJH's
``tljh-config`` names are aliases of hostd's (``limits.memory`` is ``session.mem_limit``). A key
the files cannot have is refused with the names near it, as the config loaders do.

A VALUE is read as TOML (``4``, ``true``, ``"x"``, ``[1, 2]``); a bare word that is not TOML
(``4G``, ``alice``, ``/srv/data``) is a string, as tljh-config takes it.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from hostd.config.auth import AUTH_KEYS
from hostd.config.capacity import CAPACITY_KEYS
from hostd.config.daemon import DAEMON_KEYS
from hostd.config.profiles import PROFILE_KEYS
from hostd.config.session import SESSION_KEYS
from hostd.config.shared import SHARED_KEYS

__all__ = [
    "ALIASES",
    "REFUSED_ALIASES",
    "ConfigFile",
    "ConfigKeyError",
    "Key",
    "known_keys",
    "mask_secrets",
    "parse_key",
    "parse_value",
]

ConfigFile = Literal["daemon", "hub"]

# tljh-config's keys -> hostd's (README: "Migrating from ... The Littlest JupyterHub").
ALIASES: Final[Mapping[str, str]] = {
    "limits.memory": "session.mem_limit",
    "limits.cpu": "session.cpu_limit",
    "users.admin": "auth.admin_users",
    "users.allowed": "daemon.allowed_users",
    "services.cull.timeout": "capacity.idle_timeout",
    "https.tls.cert": "hub.ssl_cert",
    "https.tls.key": "hub.ssl_key",
}
# tljh-config's keys that hostd has no equivalent of, and what to use instead (none today).
REFUSED_ALIASES: Final[Mapping[str, str]] = {}

# The sections whose keys are fixed; hub.toml's come from hostd.api.hub.settings (see _hub_keys).
_FIXED: Final[Mapping[str, tuple[str, ...]]] = {
    "daemon": tuple(DAEMON_KEYS),
    "session": SESSION_KEYS,
    "capacity": CAPACITY_KEYS,
    "auth": AUTH_KEYS,
    "shared": SHARED_KEYS,
}
# [session] keys that are tables of names the admin chooses (a variable, a directive).
_OPEN_SESSION_TABLES: Final = ("environment", "unit_extra_properties")
_PART = re.compile(r'[A-Za-z0-9_-]+|"[^"\\\n]*"')
_BARE_PART = re.compile(r"[A-Za-z0-9_-]+")
# A value that starts like TOML's string, array or table is meant as TOML: not read as a word.
_TOML_OPENERS: Final = ('"', "'", "[", "{")
# user:password@ in a URL (hub.db_url may hold a database's password).
_URL_PASSWORD = re.compile(r"(://[^:/@\s\"']*:)[^@\s\"']+@")


class ConfigKeyError(Exception):
    """A key or value `hostctl config` refuses, or an edit the checks refused; ``problems``
    lists every reason, one line each."""

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems


@dataclass(frozen=True)
class Key:
    """A key in one of the two files: ``parts`` is its path in that file's TOML."""

    file: ConfigFile
    parts: tuple[str, ...]
    alias: str | None = None  # the tljh-config name it was given as

    def __str__(self) -> str:
        return ".".join(p if _BARE_PART.fullmatch(p) else f'"{p}"' for p in self.parts)

    @property
    def is_section(self) -> bool:
        return len(self.parts) == 1


def _hub_keys() -> tuple[str, ...]:
    # Imported here, as verify_host does: the hub's rules only when a hub key is used.
    from hostd.api.hub.settings import HUB_KEYS

    return HUB_KEYS


def _split(text: str) -> tuple[str, ...] | None:
    parts: list[str] = []
    position = 0
    while True:
        match = _PART.match(text, position)
        if match is None:
            return None
        parts.append(match.group().strip('"'))
        position = match.end()
        if position == len(text):
            return tuple(parts)
        if text[position] != ".":
            return None
        position += 1


def known_keys() -> list[str]:
    """Every fixed dotted key, with the aliases: what "did you mean" chooses from."""
    fixed = [f"{section}.{key}" for section, keys in _FIXED.items() for key in keys]
    return [*fixed, *(f"hub.{key}" for key in _hub_keys()), *ALIASES]


def _unknown(text: str) -> ConfigKeyError:
    hints = difflib.get_close_matches(text, known_keys(), n=3)
    hint = f" (did you mean {' or '.join(hints)}?)" if hints else ""
    return ConfigKeyError(
        f"unknown key {text}{hint}; the sections are "
        f"{', '.join([*_FIXED, 'commands', 'profiles', 'hub'])}"
    )


def _known(parts: tuple[str, ...]) -> bool:
    section, rest = parts[0], parts[1:]
    if not rest:
        return section in (*_FIXED, "commands", "profiles", "hub")
    if section == "hub":
        return len(rest) == 1 and rest[0] in _hub_keys()
    if section == "commands":
        return len(rest) == 1
    if section == "profiles":
        # profiles.users, profiles.users.alice, profiles.users.alice.mem_limit
        if rest[0] not in ("users", "groups"):
            return False
        return len(rest) <= 2 or (len(rest) == 3 and rest[2] in PROFILE_KEYS)
    if section not in _FIXED or rest[0] not in _FIXED[section]:
        return False
    return len(rest) == 1 or (
        section == "session" and rest[0] in _OPEN_SESSION_TABLES and len(rest) == 2
    )


def parse_key(text: str) -> Key:
    """The Key a dotted name (or a tljh-config alias) means; ConfigKeyError if the files cannot
    have it, naming the keys near it."""
    if text in REFUSED_ALIASES:
        raise ConfigKeyError(f"{text}: {REFUSED_ALIASES[text]}")
    alias = text if text in ALIASES else None
    parts = _split(ALIASES.get(text, text))
    if parts is None:
        raise ConfigKeyError(
            f"not a dotted key: {text!r} (like session.mem_limit; quote a part that has a dot or "
            'a space: session.environment."MY VAR")'
        )
    if not _known(parts):
        raise _unknown(text)
    return Key(file="hub" if parts[0] == "hub" else "daemon", parts=parts, alias=alias)


def parse_value(text: str) -> object:
    """VALUE as TOML; a bare word that is not TOML (4G, alice) as a string. ConfigKeyError for
    text that starts like TOML's string, array or table but is not TOML."""
    try:
        parsed = tomllib.loads(f"value = {text}")
    except tomllib.TOMLDecodeError as exc:
        if text.lstrip().startswith(_TOML_OPENERS):
            raise ConfigKeyError(f"not a TOML value: {text} ({exc})") from None
        return text
    if set(parsed) != {"value"}:
        # "1\nother = 2" is more than one value: take the text as it is.
        return text
    return parsed["value"]


def mask_secrets(text: str) -> str:
    """text with the password of any URL in it (user:password@) replaced by ***."""
    return _URL_PASSWORD.sub(r"\1***@", text)
