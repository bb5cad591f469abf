"""The ``[daemon]`` section: hostd's own settings (socket, state, ports, timeouts, who may log in).

``DaemonConfig`` checks and normalises itself when made, in code as from the file; the
``[daemon]`` keys are hostd's own names. ``read_uid_min`` reads UID_MIN from the text of
/etc/login.defs, which an unset ``min_uid`` defaults to. No I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hostd.config.document import Problems, SectionKeys
from hostd.units import validate_base_url, validate_username
from hostd.units._text import show
from hostd.units.checks import (
    LogLevel,
    check_duration,
    check_group_name,
    check_group_names,
    check_log_level,
    check_path,
    check_port_range,
    check_user_names,
    check_whole_number,
)
from hostd.units.errors import ConfigError, InvalidInput, InvalidOption

__all__ = [
    "DAEMON_KEYS",
    "DAEMON_NOT_SETTABLE",
    "FALLBACK_MIN_UID",
    "TIMEOUT_MAX_S",
    "UID_MAX",
    "DaemonConfig",
    "LogLevel",
    "parse_daemon",
    "read_uid_min",
]

# useradd's default UID_MIN (login.defs(5)), used when login.defs is missing or has none.
FALLBACK_MIN_UID = 1000
# uid_t is 32 bits and (uid_t)-1 means "no uid" to the kernel (setresuid(2)).
UID_MAX = 2**32 - 2
# A sanity bound on the timeouts: a value above a day is a unit mistake (ms for s, say).
TIMEOUT_MAX_S = 86400.0

# C-style numbers as strtoul(3) with base 0 reads them: 0x hex, leading 0 octal, else decimal.
_C_NUMBER = re.compile(
    r"0[xX](?P<hex>[0-9a-fA-F]{1,8})|(?P<oct>0[0-7]{0,11})|(?P<dec>[1-9][0-9]{0,9})"
)


def _socket_mode(value: object) -> int:
    # The socket is the daemon's one door: root and socket_group, never everyone.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0o770:
        raise InvalidOption(f"invalid socket mode {show(value)}: expected 0o000..0o770")
    if value & 0o007:
        raise InvalidOption(f"socket mode {value:#o} would let every local user in")
    return value


def _min_uid(value: object) -> int | None:
    if value is None:
        return None
    return check_whole_number(value, low=1, high=UID_MAX, what="a uid")


def _timeout(value: object) -> float:
    return check_duration(value, at_most=TIMEOUT_MAX_S)


def _url_prefix(value: object) -> str:
    try:
        return validate_base_url(value)
    except InvalidOption:
        raise InvalidOption(
            f"expected a URL path that starts and ends with '/', like '/user/', not {show(value)}"
        ) from None


# Field name -> (TOML key, check). Each check returns the normalised value or raises
# InvalidInput; socket_mode has no TOML key on purpose (see DaemonConfig).
_DAEMON_FIELDS: dict[str, tuple[str | None, Callable[[object], object]]] = {
    "socket": ("socket", check_path),
    "socket_group": ("socket_group", check_group_name),
    "socket_mode": (None, _socket_mode),
    "act_for_others": ("act_for_others", check_user_names),
    "proxy_group": ("proxy_group", check_group_name),
    "state_dir": ("state_dir", check_path),
    "runtime_dir": ("runtime_dir", check_path),
    "min_uid": ("min_uid", _min_uid),
    "allowed_groups": ("allowed_groups", check_group_names),
    "allowed_users": ("allowed_users", check_user_names),
    "port_range": ("port_range", check_port_range),
    "start_timeout_s": ("start_timeout", _timeout),
    "stop_timeout_s": ("stop_timeout", _timeout),
    "base_url_prefix": ("base_url_prefix", _url_prefix),
    "log_level": ("log_level", check_log_level),
}
# TOML key -> DaemonConfig field name.
DAEMON_KEYS: Mapping[str, str] = {
    key: name for name, (key, _) in _DAEMON_FIELDS.items() if key is not None
}
DAEMON_NOT_SETTABLE = {
    ("daemon", "socket_mode"): "not configurable: the socket is always 0660 (root and socket_group)"
}


@dataclass(frozen=True, kw_only=True)
class DaemonConfig:
    """The ``[daemon]`` section; checks (and normalises) itself, raising ConfigError.

    min_uid None means "not set": load_config/parse_config replace it by UID_MIN from
    /etc/login.defs, else FALLBACK_MIN_UID, so a loaded config always holds an int here;
    ``resolved_min_uid`` gives the int either way. socket_mode cannot be set from the file.
    """

    socket: Path = Path("/run/hostd/hostd.sock")
    socket_group: str = "hostd"
    socket_mode: int = 0o660
    # Members of socket_group who may act for other users (the hub's own user); every other
    # member acts only for itself. Root always acts for all.
    act_for_others: tuple[str, ...] = ("hostd-hub",)
    # The group whose members may connect to sessions' Unix sockets: the hub's user (and
    # JupyterHub's, with the JupyterHub install). Nobody else belongs in it.
    proxy_group: str = "hostd-proxy"
    state_dir: Path = Path("/var/lib/hostd")
    runtime_dir: Path = Path("/run/hostd")
    min_uid: int | None = None
    # When set, only members (primary or supplementary) of one of these may have a session.
    allowed_groups: tuple[str, ...] = ()
    # When set (or allowed_groups is), these users may too, whatever their groups (JupyterHub's
    # allowed_users, TLJH's users.allowed).
    allowed_users: tuple[str, ...] = ()
    port_range: tuple[int, int] = (20000, 29999)
    # How long a started session has to answer on its port before the start counts as failed.
    start_timeout_s: float = 60.0
    # How long systemd waits after SIGTERM before SIGKILL (the units' TimeoutStopSec=).
    stop_timeout_s: float = 10.0
    base_url_prefix: str = "/user/"
    log_level: LogLevel = "info"

    def __post_init__(self) -> None:
        problems: Problems = []
        for name, (key, check) in _DAEMON_FIELDS.items():
            try:
                object.__setattr__(self, name, check(getattr(self, name)))
            except InvalidInput as exc:
                problems.append((f"daemon.{key or name}", exc.message))
        if problems:
            raise ConfigError(problems)

    @property
    def resolved_min_uid(self) -> int:
        """min_uid, or FALLBACK_MIN_UID if this config was made without one (not loaded)."""
        return FALLBACK_MIN_UID if self.min_uid is None else self.min_uid

    @property
    def sessions_dir(self) -> Path:
        """Where each session's socket directory is made (runtime_dir/sessions/<user>/)."""
        return self.runtime_dir / "sessions"

    def base_url_for(self, user: str) -> str:
        """A session's base URL: prefix + name + "/", the name escaped as JupyterHub does."""
        return f"{self.base_url_prefix}{quote(validate_username(user), safe='@~')}/"


def read_uid_min(text: str) -> int | None:
    """UID_MIN from the text of login.defs(5), or None if it sets none (or an unusable one).

    As shadow's getdef reads it: a line is a name and a value separated by blanks, "#" starts
    a comment line, a later line wins, a value may be quoted, and numbers are C-style (0x3e8
    hex, 01750 octal). A value that is not a number in 1..UID_MAX counts as none.
    """
    value: str | None = None
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "UID_MIN":
            value = words[1].strip('"')
    match = None if value is None else _C_NUMBER.fullmatch(value)
    if match is None:
        return None
    if match["hex"]:
        number = int(match["hex"], 16)
    elif match["oct"]:
        number = int(match["oct"], 8)
    else:
        number = int(match["dec"])
    return number if 1 <= number <= UID_MAX else None


def parse_daemon(
    table: Mapping[str, Any], keys: SectionKeys, login_defs: str | None, problems: Problems
) -> dict[str, Any]:
    """DaemonConfig's keyword arguments for the [daemon] keys that check out; every other key
    is a problem. An unset min_uid is UID_MIN from login_defs (the text of /etc/login.defs;
    None: FALLBACK_MIN_UID)."""
    values: dict[str, Any] = {}
    for key, value in table.items():
        if not keys.known("daemon", key, problems):
            continue
        name = DAEMON_KEYS[key]
        try:
            values[name] = _DAEMON_FIELDS[name][1](value)
        except InvalidInput as exc:
            problems.append((f"daemon.{key}", exc.message))
    if "min_uid" not in table:
        from_login_defs = None if login_defs is None else read_uid_min(login_defs)
        values["min_uid"] = FALLBACK_MIN_UID if from_login_defs is None else from_login_defs
    return values
