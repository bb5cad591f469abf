"""The admin's session policy and a caller's session request (pure layer; no I/O).

Both check themselves when made, so a SessionPolicy that exists is one build_unit can use: a
bad config fails at start-up, not at someone's first spawn. Option names and defaults are
systemdspawner's where it has them (mem_limit, cpu_limit, isolate_tmp, ...).
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar

from hostd.units._text import has_unsafe_char, prefixed, show
from hostd.units.convert import choice, ip_prefixes
from hostd.units.directives import convert_extra_properties
from hostd.units.environ import validate_env_pattern, validate_environment
from hostd.units.errors import InvalidOption, InvalidPath
from hostd.units.gpus import gpu_count
from hostd.units.paths import expand_template, substitute_placeholders, validate_path
from hostd.units.sizes import TIMESPAN_MAX_USEC, parse_cpu, parse_size
from hostd.units.urls import validate_default_url

__all__ = [
    "HOSTD_ENVIRONMENT",
    "METADATA_ADDRESS",
    "OOM_POLICIES",
    "SessionPolicy",
    "SessionRequest",
    "listens_on_socket",
    "placeholders_in",
]

# Variables hostd derives from the policy (default_shell, mem_limit, cpu_limit); JupyterHub's
# Spawner.get_env sets MEM_LIMIT and CPU_LIMIT, and jupyter-resource-usage reads them.
HOSTD_ENVIRONMENT = frozenset({"SHELL", "MEM_LIMIT", "CPU_LIMIT"})
# These directives have an option of their own, which request caps and the daemon's
# capacity check read; setting them again in unit_extra_properties would bypass both.
_FIRST_CLASS = {"MemoryMax": "mem_limit", "CPUQuota": "cpu_limit", "OOMPolicy": "oom_policy"}
# ref: systemd.service(5) OOMPolicy=: "stop" (systemd's default) ends the whole session when
# any one process in it is OOM-killed, so one kernel over mem_limit took the user's JupyterLab
# and every other kernel (measured on Debian 12, cgroup v2); "continue" lets only it die.
OOM_POLICIES = ("continue", "stop", "kill")
# The cloud metadata service (AWS, GCP, Azure, OpenStack): it hands out the machine's
# credentials to any process that asks.
METADATA_ADDRESS = "169.254.169.254"
# The placeholders of cmd, with stand-ins to check templates once at start-up; build_unit
# checks the real values.
_SAMPLE = {
    "USERNAME": "user",
    "USERID": "1000",
    "PORT": "8888",
    "SOCKET": "/run/hostd/sessions/user/jupyter.sock",
    "BASE_URL": "/user/user/",
}
# A session's server listens on a Unix socket ({SOCKET}, the default) or a loopback port
# ({PORT}); never both.
_ENDPOINTS = ("PORT", "SOCKET")

_T = TypeVar("_T")


def _optional(parse: Callable[[object], _T], value: object) -> _T | None:
    return None if value is None else parse(value)


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidOption(f"expected true or false, not {show(value)}")
    return value


def _strings(value: object) -> tuple[str, ...]:
    # A bare string is refused, not split: "/a" would otherwise become ("/", "a").
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise InvalidOption(f"expected a list of strings, not {show(value)}")
    return tuple(value)


def _path_template(template: object) -> str:
    if not isinstance(template, str):
        raise InvalidPath(f"a path template must be a string, not {show(template)}")
    validate_path(expand_template(template, username=_SAMPLE["USERNAME"], uid=1000))
    return template


def _path_templates(value: object) -> tuple[str, ...]:
    return tuple(_path_template(template) for template in _strings(value))


def placeholders_in(argv: tuple[str, ...]) -> set[str]:
    """The {NAME} placeholders argv uses ({{ and }} are literal braces, not placeholders)."""
    found: set[str] = set()
    for arg in argv:
        found.update(field for _, field, _, _ in string.Formatter().parse(arg) if field)
    return found


def listens_on_socket(cmd: tuple[str, ...]) -> bool:
    """Whether a session run as cmd listens on a Unix socket ({SOCKET}) rather than a port."""
    return "SOCKET" in placeholders_in(cmd)


def _cmd(value: object) -> tuple[str, ...]:
    argv = _strings(value)
    if not argv:
        raise InvalidOption("must name a program")
    for arg in argv:
        if has_unsafe_char(arg):
            raise InvalidOption(f"argument {show(arg)} holds a control character")
        substitute_placeholders(arg, _SAMPLE, what="cmd argument")
    if placeholders_in(argv) >= set(_ENDPOINTS):
        raise InvalidOption(
            "uses both {PORT} and {SOCKET}: a session listens on a Unix socket or on a port"
        )
    with prefixed("cmd[0]"):
        validate_path(substitute_placeholders(argv[0], _SAMPLE, what="cmd argument"))
    return argv


def _cap(default: float | None, maximum: float | None, what: str) -> None:
    if maximum is None:
        return
    if default is None:
        raise InvalidOption(
            f"max_{what} needs {what}: a session that asks for nothing would be unlimited"
        )
    if maximum < default:
        raise InvalidOption(f"max_{what} {maximum} is below {what} {default}")


def _ip_addresses(value: object) -> tuple[str, ...]:
    # A bare string is refused as for every list option; each entry must parse.
    entries = _strings(value)
    for entry in entries:
        ip_prefixes([entry])
    return entries


def _stop_timeout(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= TIMESPAN_MAX_USEC:
        raise InvalidOption(f"expected a positive number of microseconds, not {show(value)}")
    return value


# A user's servers share one slice: a bound that keeps a typo from meaning "unlimited".
NAMED_SERVER_LIMIT_MAX = 100


def _server_count(value: object) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 0 <= value <= NAMED_SERVER_LIMIT_MAX
    ):
        raise InvalidOption(
            f"expected a whole number 0..{NAMED_SERVER_LIMIT_MAX}, not {show(value)}"
        )
    return value


def _environment(value: object) -> Mapping[str, str]:
    environment = validate_environment(value, what="environment")
    clash = sorted(HOSTD_ENVIRONMENT & environment.keys())
    if clash:
        raise InvalidOption(
            f"{', '.join(clash)}: set by hostd from default_shell, mem_limit and cpu_limit"
        )
    return MappingProxyType(environment)


def _extra_properties(value: object) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise InvalidOption(f"expected a mapping of directives, not {show(value)}")
    for name, option in _FIRST_CLASS.items():
        if name in value:
            raise InvalidOption(f"{name} is set from {option}: set {option} instead")
    convert_extra_properties(value)
    return MappingProxyType(dict(value))


def _check_fields(instance: object, checks: Mapping[str, Callable[[object], object]]) -> None:
    """Check each named field of a frozen dataclass, replacing its value by the checked (and
    normalised: tuples, read-only mappings) one; errors name the field."""
    for name, check in checks.items():
        with prefixed(name):
            object.__setattr__(instance, name, check(getattr(instance, name)))


@dataclass(frozen=True, kw_only=True)
class SessionPolicy:
    """What the admin decides for every session; checked when made.

    Templates (user_workingdir, readonly_paths, readwrite_paths) expand {USERNAME} and
    {USERID}; cmd also expands {BASE_URL} and where the server listens: {SOCKET} (a Unix
    socket in a directory of the session's own, which only its user and the hub's identity
    can reach) or {PORT} (a loopback port, which any local account could take first). cmd[0]
    must be an absolute path.
    max_mem_limit/max_cpu_limit cap what a caller may request; None means a caller may ask
    for mem_limit/cpu_limit or less. oom_policy is OOMPolicy= (continue: a process over the
    limit dies alone); allow_swap lets a session swap beyond its memory limit (otherwise
    MemorySwapMax=0 with any limit); ip_address_deny are addresses and prefixes the session
    cannot reach (IPAddressDeny=; an empty list for none).
    """

    cmd: tuple[str, ...]
    mem_limit: int | None = None
    cpu_limit: float | None = None
    isolate_tmp: bool = False
    isolate_devices: bool = False
    disable_user_sudo: bool = False
    user_workingdir: str | None = None
    readonly_paths: tuple[str, ...] = ()
    readwrite_paths: tuple[str, ...] = ()
    # Seen read-only by every session, whatever else is mounted (BindReadOnlyPaths=).
    shared_paths: tuple[str, ...] = ()
    default_shell: str = "/bin/bash"
    environment: Mapping[str, str] = field(default_factory=dict)
    allowed_environment: tuple[str, ...] = ("JUPYTERHUB_*",)
    max_mem_limit: int | None = None
    max_cpu_limit: float | None = None
    stop_timeout_usec: int = 10_000_000
    oom_policy: str = "continue"
    allow_swap: bool = False
    ip_address_deny: tuple[str, ...] = (METADATA_ADDRESS,)
    unit_extra_properties: Mapping[str, object] = field(default_factory=dict)
    # GPUs each session gets, of those listed in [gpus] (0: none).
    gpus: int = 0
    # How many named servers a user may run besides the default one; 0: named servers off,
    # every session is jupyter-<user>.service in jupyter.slice as before (hostd.units.servers).
    named_server_limit: int = 0

    def __post_init__(self) -> None:
        checks: dict[str, Callable[[object], object]] = {
            "cmd": _cmd,
            "mem_limit": lambda value: _optional(parse_size, value),
            "cpu_limit": lambda value: _optional(parse_cpu, value),
            "isolate_tmp": _flag,
            "isolate_devices": _flag,
            "disable_user_sudo": _flag,
            "user_workingdir": lambda value: _optional(_path_template, value),
            "readonly_paths": _path_templates,
            "readwrite_paths": _path_templates,
            "shared_paths": lambda value: tuple(validate_path(p) for p in _strings(value)),
            "default_shell": validate_path,
            "environment": _environment,
            "allowed_environment": lambda value: tuple(
                validate_env_pattern(pattern) for pattern in _strings(value)
            ),
            "max_mem_limit": lambda value: _optional(parse_size, value),
            "max_cpu_limit": lambda value: _optional(parse_cpu, value),
            "stop_timeout_usec": _stop_timeout,
            "oom_policy": choice(*OOM_POLICIES),
            "allow_swap": _flag,
            "ip_address_deny": _ip_addresses,
            "unit_extra_properties": _extra_properties,
            "gpus": gpu_count,
            "named_server_limit": _server_count,
        }
        _check_fields(self, checks)
        _cap(self.mem_limit, self.max_mem_limit, "mem_limit")
        _cap(self.cpu_limit, self.max_cpu_limit, "cpu_limit")


@dataclass(frozen=True, kw_only=True)
class SessionRequest:
    """What a caller asks for one session; checked when made, judged against the policy by
    build_unit."""

    mem_limit: int | None = None
    cpu_limit: float | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    default_url: str | None = None

    def __post_init__(self) -> None:
        checks: dict[str, Callable[[object], object]] = {
            "mem_limit": lambda value: _optional(parse_size, value),
            "cpu_limit": lambda value: _optional(parse_cpu, value),
            "environment": lambda value: MappingProxyType(
                validate_environment(value, what="environment")
            ),
            "default_url": lambda value: _optional(validate_default_url, value),
        }
        _check_fields(self, checks)
