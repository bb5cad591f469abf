"""hostd.toml: the daemon's configuration, read and checked once at start-up.

Loaded by: the daemon (`hostd serve`, `hostd check-config`) and hostctl (verify,
check-config); never by the hub or the spawner, which ask the daemon (GET /v1/policy).
As: root.
Never: touch the host beyond reading the file it is given (by default
``/etc/hostd/hostd.toml``) and ``/etc/login.defs`` (for UID_MIN): no users looked up, no
directories made, no systemd; nor import hostd.daemon (the daemon imports this package).

``load_config`` returns a frozen ``Config`` that is passed explicitly to whatever needs it;
nothing here keeps global state, and the dataclasses do no I/O when made. A wrong file fails
with one ConfigError that lists every problem, keyed by dotted TOML name
(``daemon.port_range``, ``session.unit_extra_properties.Foo``), so an admin fixes them all in
one go.

One module per section: ``daemon`` (hostd's own keys), ``session`` (systemdspawner's option
names, checked by units.SessionPolicy), ``commands``, ``profiles``, ``profile_list``,
``capacity``, ``auth``, ``shared``; ``document`` reads the file and collects the problems.
The checks several sections share (and hub.toml too) are hostd.units.checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from hostd.config.auth import AuthConfig, parse_auth
from hostd.config.capacity import CapacityConfig, parse_capacity
from hostd.config.commands import parse_commands
from hostd.config.daemon import (
    DAEMON_KEYS,
    DAEMON_NOT_SETTABLE,
    FALLBACK_MIN_UID,
    DaemonConfig,
    LogLevel,
    parse_daemon,
    read_uid_min,
)
from hostd.config.document import (
    Problems,
    SectionKeys,
    parse_toml,
    read_config_text,
    read_optional_text,
    section_table,
    unknown_sections,
)
from hostd.config.gpus import GpuConfig, parse_gpus
from hostd.config.profile_list import ProfileList, parse_profile_list
from hostd.config.profiles import Profiles, check_profile_gpus, parse_profiles
from hostd.config.session import (
    DEFAULT_SESSION_CMD,
    SESSION_KEYS,
    SESSION_NOT_SETTABLE,
    parse_session,
)
from hostd.config.shared import SHARED_KEYS, SharedConfig, parse_shared
from hostd.units import SessionPolicy, convert_extra_properties
from hostd.units.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_LOGIN_DEFS",
    "DEFAULT_SESSION_CMD",
    "FALLBACK_MIN_UID",
    "AuthConfig",
    "CapacityConfig",
    "Config",
    "DaemonConfig",
    "GpuConfig",
    "LogLevel",
    "ProfileList",
    "Profiles",
    "SharedConfig",
    "load_config",
    "parse_config",
    "read_uid_min",
]

DEFAULT_CONFIG_PATH = Path("/etc/hostd/hostd.toml")
DEFAULT_LOGIN_DEFS = Path("/etc/login.defs")

# The sections checked key by key, for the hints of an unknown key ("belongs in [session]").
_KEYS = SectionKeys(
    sections={"daemon": tuple(DAEMON_KEYS), "session": SESSION_KEYS},
    not_settable={**DAEMON_NOT_SETTABLE, **SESSION_NOT_SETTABLE},
)
# The sections parsed each as a whole, by their own module.
_OTHER_SECTIONS = ("commands", "profiles", "profile_list", "capacity", "auth", "shared", "gpus")


@dataclass(frozen=True)
class Config:
    """Everything the daemon is configured with; ``source`` is the file, None for defaults."""

    daemon: DaemonConfig
    session: SessionPolicy
    source: Path | None = None
    commands: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    profiles: Profiles = field(default_factory=Profiles)
    # [[profile_list]]: the choices a user may pick at start (empty: none offered).
    profile_list: ProfileList = field(default_factory=ProfileList)
    capacity: CapacityConfig = field(default_factory=CapacityConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    # [shared] scratch is also in session.readwrite_paths (parse_config puts it there).
    shared: SharedConfig = field(default_factory=SharedConfig)
    gpus: GpuConfig = field(default_factory=GpuConfig)

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
                for key, name in DAEMON_KEYS.items()
                if getattr(self.daemon, name) != getattr(daemon_default, name)
            )
            + tuple(
                f"session.{key}"
                for key in SESSION_KEYS
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
    # Exact, as an admin would write it in the file ("2G"), unlike units.sizes.format_size.
    for unit, factor in (("T", 1024**4), ("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size} bytes"


def parse_config(text: str, *, source: Path | None = None, login_defs: str | None = None) -> Config:
    """The Config in TOML text: the pure half of load_config (no file is read).

    login_defs is the text of /etc/login.defs, read for UID_MIN when [daemon] sets no min_uid
    (None: FALLBACK_MIN_UID). Raises ConfigError listing every problem; a TOML syntax error is
    one problem keyed by source (or "<config>"), with tomllib's line and column.
    """
    data = parse_toml(text, source)
    problems = unknown_sections(data, _KEYS, _OTHER_SECTIONS)
    daemon_values = parse_daemon(
        section_table(data, "daemon", problems), _KEYS, login_defs, problems
    )
    stop_timeout_s = daemon_values.get("stop_timeout_s", DaemonConfig.stop_timeout_s)
    table = section_table(data, "session", problems)
    session = parse_session(table, _KEYS, stop_timeout_s, problems)
    commands = parse_commands(data.get("commands", {}), session, problems)
    profiles = parse_profiles(data.get("profiles", {}), problems)
    profile_list = parse_profile_list(data.get("profile_list", []), session, commands, problems)
    capacity = parse_capacity(data.get("capacity", {}), problems)
    auth = parse_auth(data.get("auth", {}), problems)
    shared = parse_shared(data.get("shared", {}), problems)
    gpus = parse_gpus(data.get("gpus", {}), problems)
    check_profile_gpus(profiles, gpus.count, problems)
    for index, choice in enumerate(profile_list.choices):
        if choice.gpus > gpus.count:
            where = f"profile_list[{index}].gpus"
            problems.append((where, f"{choice.gpus} GPUs, and [gpus] lists {gpus.count}"))
    if session is not None:
        _check_session_gpus(session, gpus, problems)
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
        profile_list=profile_list,
        capacity=capacity,
        auth=auth,
        shared=shared,
        gpus=gpus,
    )


def _check_session_gpus(session: SessionPolicy, gpus: GpuConfig, problems: Problems) -> None:
    """[session] gpus within [gpus]; GPUs only with isolate_devices, whose closed device
    policy is what keeps every session from the GPUs it was not given."""
    if session.gpus > gpus.count:
        problems.append(
            (
                "session.gpus",
                f"{session.gpus} GPUs for every session, and [gpus] lists {gpus.count}",
            )
        )
    if gpus.count and not session.isolate_devices:
        problems.append(
            (
                "session.isolate_devices",
                "must be true with [gpus]: without PrivateDevices= every session could open "
                "every GPU",
            )
        )
    extra = {p.name: p.value for p in convert_extra_properties(session.unit_extra_properties)}
    if gpus.count and extra.get("PrivateDevices") is False:
        problems.append(
            (
                "session.unit_extra_properties.PrivateDevices",
                "cannot be turned off with [gpus]: every session could open every GPU",
            )
        )


def load_config(path: Path | None = None, *, login_defs: Path = DEFAULT_LOGIN_DEFS) -> Config:
    """Read and check the daemon's config file once; pass the result on explicitly.

    path None means DEFAULT_CONFIG_PATH if it exists, else every default (source None): a
    machine needs no file to run hostd. A file that cannot be read or is not UTF-8 is a
    ConfigError keyed by its path. login_defs gives UID_MIN for an unset daemon.min_uid; if
    it cannot be read, FALLBACK_MIN_UID applies.
    """
    defs_text = read_optional_text(login_defs)
    if path is None:
        if not DEFAULT_CONFIG_PATH.exists():
            return parse_config("", login_defs=defs_text)
        path = DEFAULT_CONFIG_PATH
    return parse_config(read_config_text(path), source=path, login_defs=defs_text)
