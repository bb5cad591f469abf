"""The daemon's configuration: one TOML file, read and checked once at start-up (hostd/ layer).

``load_config`` reads ``/etc/hostd/hostd.toml`` (and ``/etc/login.defs`` for UID_MIN) and
returns a frozen ``Config`` that is passed explicitly to whatever needs it; nothing here keeps
global state, and the dataclasses do no I/O when made. A wrong file fails with one ConfigError
that lists every problem, keyed by dotted TOML name (``daemon.port_range``,
``session.unit_extra_properties.Foo``), so an admin fixes them all in one go.

The ``[session]`` keys are systemdspawner's option names (mem_limit, cpu_limit, isolate_tmp,
...), checked by units.SessionPolicy; the ``[daemon]`` keys are hostd's own.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import quote

from hostd.config.profiles import (
    CapacityConfig,
    Profiles,
    parse_capacity,
    parse_commands,
    parse_profiles,
)
from hostd.daemon.login import AuthConfig, parse_auth
from hostd.daemon.scratch import SHARED_KEYS, SharedConfig, parse_shared
from hostd.units import (
    SessionPolicy,
    parse_cpu,
    parse_size,
    validate_base_url,
    validate_path,
    validate_username,
)
from hostd.units._text import has_unsafe_char, show
from hostd.units.errors import ConfigError, InvalidInput, InvalidName, InvalidOption

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_LOGIN_DEFS",
    "DEFAULT_SESSION_CMD",
    "FALLBACK_MIN_UID",
    "Config",
    "DaemonConfig",
    "LogLevel",
    "load_config",
    "parse_config",
    "read_uid_min",
]

DEFAULT_CONFIG_PATH = Path("/etc/hostd/hostd.toml")
DEFAULT_LOGIN_DEFS = Path("/etc/login.defs")
# useradd's default UID_MIN (login.defs(5)), used when login.defs is missing or has none.
FALLBACK_MIN_UID = 1000
# uid_t is 32 bits and (uid_t)-1 means "no uid" to the kernel (setresuid(2)).
UID_MAX = 2**32 - 2
DEFAULT_SESSION_CMD = (
    "/opt/hostd/session/bin/jupyter",
    "lab",
    "--no-browser",
    "--ip=127.0.0.1",
    "--port={PORT}",
    "--ServerApp.base_url={BASE_URL}",
)
# A sanity bound on the timeouts: a value above a day is a unit mistake (ms for s, say).
TIMEOUT_MAX_S = 86400.0

LogLevel = Literal["debug", "info", "warning", "error"]
_LOG_LEVELS: tuple[str, ...] = get_args(LogLevel)
_PORT_MIN, _PORT_MAX = 1024, 65535
# C-style numbers as strtoul(3) with base 0 reads them: 0x hex, leading 0 octal, else decimal.
_C_NUMBER = re.compile(
    r"0[xX](?P<hex>[0-9a-fA-F]{1,8})|(?P<oct>0[0-7]{0,11})|(?P<dec>[1-9][0-9]{0,9})"
)
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _path(value: object) -> Path:
    return Path(validate_path(str(value) if isinstance(value, Path) else value))


def _group(value: object) -> str:
    # Wider than user names on purpose: sssd hands out group names with spaces ("domain
    # users"). Only what cannot be in a group name (":" separates /etc/group fields) is out.
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= 256
        or ":" in value
        or value != value.strip()
        or has_unsafe_char(value)
    ):
        raise InvalidName(f"invalid group name {show(value)}: expected a name like 'hostd'")
    return value


def _groups(value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise InvalidOption(f"expected a list of group names, not {show(value)}")
    return tuple(_group(item) for item in value)


def _user_names(value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise InvalidOption(f"expected a list of user names, not {show(value)}")
    return tuple(validate_username(item) for item in value)


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
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= UID_MAX:
        raise InvalidOption(f"expected a uid between 1 and {UID_MAX}, not {show(value)}")
    return value


def _port_range(value: object) -> tuple[int, int]:
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not all(isinstance(port, int) and not isinstance(port, bool) for port in value)
    ):
        raise InvalidOption(f"expected [low, high], two port numbers, not {show(value)}")
    low, high = value
    if not _PORT_MIN <= low < high <= _PORT_MAX:
        raise InvalidOption(
            f"invalid port range [{low}, {high}]: need {_PORT_MIN} <= low < high <= {_PORT_MAX}"
        )
    return low, high


def _timeout(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidOption(f"expected a number of seconds, not {show(value)}")
    # Compared before float(): a huge int would overflow it; NaN fails both comparisons.
    if not 0 < value <= TIMEOUT_MAX_S:
        raise InvalidOption(
            f"expected more than 0 and at most {TIMEOUT_MAX_S:g} seconds, not {show(value)}"
        )
    return float(value)


def _url_prefix(value: object) -> str:
    try:
        return validate_base_url(value)
    except InvalidOption:
        raise InvalidOption(
            f"expected a URL path that starts and ends with '/', like '/user/', not {show(value)}"
        ) from None


def _log_level(value: object) -> str:
    if value not in _LOG_LEVELS:
        raise InvalidOption(f"expected one of {', '.join(_LOG_LEVELS)}, not {show(value)}")
    return str(value)


# Field name -> (TOML key, check). Each check returns the normalised value or raises
# InvalidInput; socket_mode has no TOML key on purpose (see DaemonConfig).
_DAEMON_FIELDS: dict[str, tuple[str | None, Callable[[object], object]]] = {
    "socket": ("socket", _path),
    "socket_group": ("socket_group", _group),
    "socket_mode": (None, _socket_mode),
    "act_for_others": ("act_for_others", _user_names),
    "state_dir": ("state_dir", _path),
    "runtime_dir": ("runtime_dir", _path),
    "min_uid": ("min_uid", _min_uid),
    "allowed_groups": ("allowed_groups", _groups),
    "port_range": ("port_range", _port_range),
    "start_timeout_s": ("start_timeout", _timeout),
    "stop_timeout_s": ("stop_timeout", _timeout),
    "base_url_prefix": ("base_url_prefix", _url_prefix),
    "log_level": ("log_level", _log_level),
}
_DAEMON_KEYS = {key: name for name, (key, _) in _DAEMON_FIELDS.items() if key is not None}
# Every SessionPolicy option is a [session] key of the same name, but stop_timeout_usec,
# which [daemon] stop_timeout sets: the daemon waits that long for a stop too.
_SESSION_KEYS = tuple(f.name for f in fields(SessionPolicy) if f.name != "stop_timeout_usec")
_SECTIONS = {"daemon": tuple(_DAEMON_KEYS), "session": _SESSION_KEYS}
# Sections parsed by hostd.profiles ([auth]: hostd.auth), each as a whole.
_OTHER_SECTIONS = ("commands", "profiles", "capacity", "auth", "shared")
_FIXED_SOCKET_MODE = "not configurable: the socket is always 0660 (root and socket_group)"
_NOT_SETTABLE = {
    ("daemon", "socket_mode"): _FIXED_SOCKET_MODE,
    ("session", "stop_timeout_usec"): "set from [daemon] stop_timeout (in seconds)",
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
    state_dir: Path = Path("/var/lib/hostd")
    runtime_dir: Path = Path("/run/hostd")
    min_uid: int | None = None
    # When set, only members (primary or supplementary) of one of these may have a session.
    allowed_groups: tuple[str, ...] = ()
    port_range: tuple[int, int] = (20000, 29999)
    # How long a started session has to answer on its port before the start counts as failed.
    start_timeout_s: float = 60.0
    # How long systemd waits after SIGTERM before SIGKILL (the units' TimeoutStopSec=).
    stop_timeout_s: float = 10.0
    base_url_prefix: str = "/user/"
    log_level: LogLevel = "info"

    def __post_init__(self) -> None:
        problems: list[tuple[str, str]] = []
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

    def base_url_for(self, user: str) -> str:
        """A session's base URL: prefix + name + "/", the name escaped as JupyterHub does."""
        return f"{self.base_url_prefix}{quote(validate_username(user), safe='@~')}/"


@dataclass(frozen=True)
class Config:
    """Everything the daemon is configured with; ``source`` is the file, None for defaults."""

    daemon: DaemonConfig
    session: SessionPolicy
    source: Path | None = None
    commands: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    profiles: Profiles = field(default_factory=Profiles)
    capacity: CapacityConfig = field(default_factory=CapacityConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    # [shared] scratch is also in session.readwrite_paths (parse_config puts it there).
    shared: SharedConfig = field(default_factory=SharedConfig)

    def describe(self) -> str:
        """One line for people: how many options differ from the defaults, the main settings."""
        d, s = self.daemon, self.session
        changed = len(self.changed_options())
        groups = f"groups {', '.join(d.allowed_groups)}" if d.allowed_groups else "any group"
        mem = _format_size(s.mem_limit) if s.mem_limit is not None else "none"
        cpu = f"{s.cpu_limit:g}" if s.cpu_limit is not None else "none"
        return (
            f"{changed} option{'' if changed == 1 else 's'} changed from the defaults; "
            f"socket {d.socket}, group {d.socket_group}; ports {d.port_range[0]}-"
            f"{d.port_range[1]}; sessions for uid >= {d.resolved_min_uid}, {groups}; "
            f"mem_limit {mem}, cpu_limit {cpu}"
        )

    def changed_options(self) -> tuple[str, ...]:
        """The dotted keys whose values differ from the defaults (min_uid is not counted)."""
        daemon_default = DaemonConfig(min_uid=self.daemon.min_uid)
        session_default = SessionPolicy(
            cmd=DEFAULT_SESSION_CMD, stop_timeout_usec=self.session.stop_timeout_usec
        )
        session = self.session
        if self.shared.scratch is not None:
            # Counted as shared.scratch, not as a readwrite_paths the admin wrote.
            scratch = str(self.shared.scratch)
            rw_paths = tuple(path for path in session.readwrite_paths if path != scratch)
            session = replace(session, readwrite_paths=rw_paths)
        return (
            tuple(
                f"daemon.{key}"
                for key, name in _DAEMON_KEYS.items()
                if getattr(self.daemon, name) != getattr(daemon_default, name)
            )
            + tuple(
                f"session.{key}"
                for key in _SESSION_KEYS
                if getattr(session, key) != getattr(session_default, key)
            )
            + tuple(
                f"shared.{key}"
                for key in SHARED_KEYS
                if getattr(self.shared, key) != getattr(SharedConfig(), key)
            )
        )

    def __repr__(self) -> str:
        return f"<Config {self.source or 'defaults'}: {self.describe()}>"


def _format_size(size: int) -> str:
    for unit, factor in (("T", 1024**4), ("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size} bytes"


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


def _dotted(*parts: str) -> str:
    # TOML's own notation, so a key with a space or a dot in it still reads unambiguously.
    return ".".join(part if _BARE_KEY.fullmatch(part) else f'"{part}"' for part in parts)


def _unknown(section: str | None, key: str, value: object = None) -> str:
    """The message for a key that section (None: the top level) does not have: where it
    belongs, or the known names near it."""
    noun = "section" if section is None and isinstance(value, dict) else "key"
    for other, keys in _SECTIONS.items():
        if other != section and key in keys:
            return f"unknown {noun}: belongs in [{other}]"
    known = list(_SECTIONS) if section is None else list(_SECTIONS[section])
    hints = difflib.get_close_matches(key, known, n=3)
    if hints:
        return f"unknown {noun} (did you mean {' or '.join(hints)}?)"
    if section is None:
        return f"unknown {noun}: the sections are [daemon] and [session]"
    return f"unknown {noun}"


def _without_prefix(message: str, *labels: str) -> str:
    # SessionPolicy and the directive table put the option's name in front of a message;
    # the dotted key already says it.
    for label in labels:
        message = message.removeprefix(f"{label}: ")
    return message


def _table(
    data: Mapping[str, object], section: str, problems: list[tuple[str, str]]
) -> dict[str, Any]:
    """The section's table as the file has it; {} (and a problem) if it is not a table."""
    table = data.get(section, {})
    if not isinstance(table, dict):
        problems.append((section, f"expected a table [{section}], not {show(table)}"))
        return {}
    return table


def _known(section: str, key: str, problems: list[tuple[str, str]]) -> bool:
    """True if section has key; else False, and the problem added (in file order)."""
    if (section, key) in _NOT_SETTABLE:
        problems.append((_dotted(section, key), _NOT_SETTABLE[section, key]))
        return False
    if key not in _SECTIONS[section]:
        problems.append((_dotted(section, key), _unknown(section, key)))
        return False
    return True


def _daemon(
    table: Mapping[str, Any], login_defs: str | None, problems: list[tuple[str, str]]
) -> dict[str, Any]:
    """DaemonConfig's keyword arguments for the [daemon] keys that check out; every other key
    is a problem."""
    values: dict[str, Any] = {}
    for key, value in table.items():
        if not _known("daemon", key, problems):
            continue
        name = _DAEMON_KEYS[key]
        try:
            values[name] = _DAEMON_FIELDS[name][1](value)
        except InvalidInput as exc:
            problems.append((f"daemon.{key}", exc.message))
    if "min_uid" not in table:
        from_login_defs = None if login_defs is None else read_uid_min(login_defs)
        values["min_uid"] = FALLBACK_MIN_UID if from_login_defs is None else from_login_defs
    return values


def _probe(key: str, value: object) -> None:
    """Check one [session] option on its own; raises InvalidInput."""
    # The caps are checked against mem_limit/cpu_limit once all options are in (_session).
    if key == "max_mem_limit":
        parse_size(value)
    elif key == "max_cpu_limit":
        parse_cpu(value)
    else:
        options: dict[str, Any] = {"cmd": DEFAULT_SESSION_CMD, key: value}
        SessionPolicy(**options)


def _session(
    table: Mapping[str, Any], stop_timeout_s: float, problems: list[tuple[str, str]]
) -> SessionPolicy | None:
    """The SessionPolicy for [session], or None after adding every problem it has.

    SessionPolicy stops at its first problem, so each option is checked on its own first
    (each unit_extra_properties entry too), then the ones that passed together.
    """
    good: dict[str, Any] = {}
    for key, value in table.items():
        if not _known("session", key, problems):
            continue
        if key == "unit_extra_properties" and isinstance(value, dict) and value:
            entries_ok = True
            for name, entry in value.items():
                try:
                    _probe(key, {name: entry})
                except InvalidInput as exc:
                    entries_ok = False
                    message = _without_prefix(exc.message, key, name)
                    problems.append((_dotted("session", key, name), message))
            if entries_ok:
                good[key] = value
            continue
        try:
            _probe(key, value)
        except InvalidInput as exc:
            problems.append((_dotted("session", key), _without_prefix(exc.message, key)))
        else:
            good[key] = value
    # A cap cannot be judged against a limit that did not parse.
    for limit in ("mem_limit", "cpu_limit"):
        if limit in table and limit not in good:
            good.pop(f"max_{limit}", None)
    good.setdefault("cmd", DEFAULT_SESSION_CMD)
    try:
        policy = SessionPolicy(**good, stop_timeout_usec=round(stop_timeout_s * 1_000_000))
    except InvalidInput as exc:
        # Only the checks across options are left: "max_mem_limit needs mem_limit: ...".
        caps = ("max_mem_limit", "max_cpu_limit")
        cap = next((cap for cap in caps if exc.message.startswith(cap)), None)
        problems.append((f"session.{cap}" if cap else "session", exc.message))
        return None
    return policy


def parse_config(text: str, *, source: Path | None = None, login_defs: str | None = None) -> Config:
    """The Config in TOML text: the pure half of load_config (no file is read).

    login_defs is the text of /etc/login.defs, read for UID_MIN when [daemon] sets no min_uid
    (None: FALLBACK_MIN_UID). Raises ConfigError listing every problem; a TOML syntax error is
    one problem keyed by source (or "<config>"), with tomllib's line and column.
    """
    where = str(source) if source is not None else "<config>"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([(where, f"not valid TOML: {exc}")]) from None
    problems = [
        (_dotted(key), _unknown(None, key, value))
        for key, value in data.items()
        if key not in _SECTIONS and key not in _OTHER_SECTIONS
    ]
    daemon_values = _daemon(_table(data, "daemon", problems), login_defs, problems)
    stop_timeout_s = daemon_values.get("stop_timeout_s", DaemonConfig.stop_timeout_s)
    session = _session(_table(data, "session", problems), stop_timeout_s, problems)
    commands = parse_commands(data.get("commands", {}), session, problems)
    profiles = parse_profiles(data.get("profiles", {}), problems)
    capacity = parse_capacity(data.get("capacity", {}), problems)
    auth = parse_auth(data.get("auth", {}), problems)
    shared = parse_shared(data.get("shared", {}), problems)
    if session is not None and shared.scratch is not None:
        scratch = str(shared.scratch)
        if scratch not in session.readwrite_paths:
            session = replace(session, readwrite_paths=(*session.readwrite_paths, scratch))
    if problems or session is None:
        raise ConfigError(problems)
    return Config(
        daemon=DaemonConfig(**daemon_values),
        session=session,
        source=source,
        commands=commands,
        profiles=profiles,
        capacity=capacity,
        auth=auth,
        shared=shared,
    )


def load_config(path: Path | None = None, *, login_defs: Path = DEFAULT_LOGIN_DEFS) -> Config:
    """Read and check the daemon's config file once; pass the result on explicitly.

    path None means DEFAULT_CONFIG_PATH if it exists, else every default (source None): a
    machine needs no file to run hostd. A file that cannot be read or is not UTF-8 is a
    ConfigError keyed by its path. login_defs gives UID_MIN for an unset daemon.min_uid; if
    it cannot be read, FALLBACK_MIN_UID applies.
    """
    try:
        defs_text: str | None = login_defs.read_text(encoding="utf-8", errors="replace")
    except OSError:
        defs_text = None
    if path is None:
        if not DEFAULT_CONFIG_PATH.exists():
            return parse_config("", login_defs=defs_text)
        path = DEFAULT_CONFIG_PATH
    try:
        # utf-8-sig: a byte-order mark some editors write is not a TOML error worth failing on.
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise ConfigError([(str(path), f"cannot read: {exc.strerror or exc}")]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [(str(path), f"not UTF-8 (byte {exc.object[exc.start]:#04x} at offset {exc.start})")]
        ) from exc
    return parse_config(text, source=path, login_defs=defs_text)
