"""Per-user and per-group limits, named commands, and capacity settings (config sections).

Parsed with the rest of the config (hostd.config calls these); each parser adds every problem
it finds as (dotted key, message) and returns what checked out. No I/O here.

    [commands]                       # a caller may pick one by name ("command" in a start)
    singleuser = ["/opt/hostd/bin/hostd-session-exec", ".../jupyterhub-singleuser", ...]

    [profiles.users.alice]           # most specific wins: a user's profile, then the first
    mem_limit = "4G"                 # group profile (in file order) the user belongs to,
    [profiles.groups.staff]          # then [session]
    cpu_limit = 2.0

    [capacity]
    max_concurrent_starts = 4        # more starts wait, in order
    memory_share = 0.9               # of RAM: sum of sessions' mem_limit, and jupyter.slice
    idle_timeout = 0                 # seconds without activity before a session is stopped
    idle_cpu_percent = 2.0           # below this (of one core) a session counts as idle
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from hostd.units import SessionPolicy, parse_cpu, parse_size, validate_username
from hostd.units.errors import InvalidInput

PROFILE_KEYS = ("mem_limit", "cpu_limit")
_COMMAND_NAME_MAX = 64


@dataclass(frozen=True)
class ProfileLimits:
    mem_limit: int | None = None
    cpu_limit: float | None = None


@dataclass(frozen=True)
class Profiles:
    users: Mapping[str, ProfileLimits] = field(default_factory=dict)
    groups: tuple[tuple[str, ProfileLimits], ...] = ()

    def match(self, user: str, groups: Iterable[str]) -> tuple[str, ProfileLimits] | None:
        """The most specific profile of the user: ("user:alice", ...) or ("group:staff", ...)."""
        if user in self.users:
            return f"user:{user}", self.users[user]
        member = set(groups)
        for group, limits in self.groups:
            if group in member:
                return f"group:{group}", limits
        return None


def apply_profile(policy: SessionPolicy, limits: ProfileLimits) -> SessionPolicy:
    """The policy with the profile's limits; caps rise with them so a profile is never below
    what a request may already ask for."""
    changes: dict[str, Any] = {}
    if limits.mem_limit is not None:
        changes["mem_limit"] = limits.mem_limit
        if policy.max_mem_limit is not None and policy.max_mem_limit < limits.mem_limit:
            changes["max_mem_limit"] = limits.mem_limit
    if limits.cpu_limit is not None:
        changes["cpu_limit"] = limits.cpu_limit
        if policy.max_cpu_limit is not None and policy.max_cpu_limit < limits.cpu_limit:
            changes["max_cpu_limit"] = limits.cpu_limit
    return replace(policy, **changes) if changes else policy


@dataclass(frozen=True)
class CapacityConfig:
    max_concurrent_starts: int = 4
    memory_share: float = 0.9
    idle_timeout_s: float = 0.0  # 0: never cull
    idle_cpu_percent: float = 2.0
    retry_after_s: int = 30


_CAPACITY_KEYS = {
    "max_concurrent_starts": "max_concurrent_starts",
    "memory_share": "memory_share",
    "idle_timeout": "idle_timeout_s",
    "idle_cpu_percent": "idle_cpu_percent",
    "retry_after": "retry_after_s",
}


def _number(value: object, *, low: float, high: float, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, not {value!r}")
    if integer and not isinstance(value, int):
        raise ValueError(f"expected a whole number, not {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{value!r} is outside {low:g}..{high:g}")
    return value


def parse_capacity(table: object, problems: list[tuple[str, str]]) -> CapacityConfig:
    if not isinstance(table, dict):
        problems.append(("capacity", "expected a table [capacity]"))
        return CapacityConfig()
    ranges: dict[str, tuple[float, float, bool]] = {
        "max_concurrent_starts": (1, 1000, True),
        "memory_share": (0.001, 1.0, False),
        "idle_timeout": (0, 30 * 86400, False),
        "idle_cpu_percent": (0, 10000, False),
        "retry_after": (1, 3600, True),
    }
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in _CAPACITY_KEYS:
            problems.append((f"capacity.{key}", f"unknown option; known: {', '.join(ranges)}"))
            continue
        low, high, integer = ranges[key]
        try:
            values[_CAPACITY_KEYS[key]] = _number(value, low=low, high=high, integer=integer)
        except ValueError as exc:
            problems.append((f"capacity.{key}", str(exc)))
    return CapacityConfig(**values)


def _limits(table: object, where: str, problems: list[tuple[str, str]]) -> ProfileLimits | None:
    if not isinstance(table, dict):
        problems.append((where, "expected a table of mem_limit and cpu_limit"))
        return None
    values: dict[str, Any] = {}
    ok = True
    for key, value in table.items():
        try:
            if key == "mem_limit":
                values[key] = parse_size(value)
            elif key == "cpu_limit":
                values[key] = parse_cpu(value)
            else:
                problems.append(
                    (f"{where}.{key}", "unknown option; a profile sets mem_limit, cpu_limit")
                )
                ok = False
        except InvalidInput as exc:
            problems.append((f"{where}.{key}", exc.message))
            ok = False
    return ProfileLimits(**values) if ok else None


def parse_profiles(table: object, problems: list[tuple[str, str]]) -> Profiles:
    if not isinstance(table, dict):
        problems.append(("profiles", "expected [profiles.users.NAME] / [profiles.groups.NAME]"))
        return Profiles()
    users: dict[str, ProfileLimits] = {}
    groups: list[tuple[str, ProfileLimits]] = []
    for kind, entries in table.items():
        if kind not in ("users", "groups") or not isinstance(entries, dict):
            problems.append(
                (
                    f"profiles.{kind}",
                    "expected [profiles.users.NAME] or [profiles.groups.NAME] tables",
                )
            )
            continue
        for name, limits_table in entries.items():
            where = f"profiles.{kind}.{name}"
            if kind == "users":
                try:
                    validate_username(name)
                except InvalidInput as exc:
                    problems.append((where, exc.message))
                    continue
            limits = _limits(limits_table, where, problems)
            if limits is not None:
                if kind == "users":
                    users[name] = limits
                else:
                    groups.append((name, limits))
    return Profiles(MappingProxyType(users), tuple(groups))


def parse_commands(
    table: object, base: SessionPolicy | None, problems: list[tuple[str, str]]
) -> Mapping[str, tuple[str, ...]]:
    """Named commands, each checked as [session] cmd is (absolute program, placeholders)."""
    if not isinstance(table, dict):
        problems.append(("commands", "expected a table of NAME = [argv...]"))
        return MappingProxyType({})
    commands: dict[str, tuple[str, ...]] = {}
    for name, argv in table.items():
        where = f"commands.{name}"
        if (
            not (0 < len(name) <= _COMMAND_NAME_MAX)
            or not name.replace("-", "").replace("_", "").isalnum()
        ):
            problems.append((where, "a command name is letters, digits, '-' and '_'"))
            continue
        try:
            checked = SessionPolicy(cmd=argv) if base is None else replace(base, cmd=argv)
        except InvalidInput as exc:
            problems.append((where, exc.message))
            continue
        commands[name] = checked.cmd
    return MappingProxyType(commands)
