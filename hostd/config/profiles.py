"""The ``[profiles]`` section: per-user and per-group limits over [session]'s.

Parsed with the rest of the config (hostd.config calls parse_profiles), which adds every
problem as (dotted key, message) and returns what checked out; the daemon applies the match
of a user to its policy at each start (apply_profile). No I/O here.

    [profiles.users.alice]           # most specific wins: a user's profile, then the first
    mem_limit = "4G"                 # group profile (in file order) the user belongs to,
    [profiles.groups.staff]          # then [session]
    cpu_limit = 2.0
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from hostd.config.document import Problems
from hostd.units import SessionPolicy, parse_cpu, parse_size, validate_username
from hostd.units.errors import InvalidInput
from hostd.units.gpus import gpu_count

__all__ = [
    "PROFILE_KEYS",
    "ProfileLimits",
    "Profiles",
    "apply_profile",
    "check_profile_gpus",
    "parse_profiles",
]

PROFILE_KEYS = ("mem_limit", "cpu_limit", "gpus")


@dataclass(frozen=True)
class ProfileLimits:
    """The limits one profile sets; None: [session]'s."""

    mem_limit: int | None = None
    cpu_limit: float | None = None
    gpus: int | None = None


@dataclass(frozen=True)
class Profiles:
    """The ``[profiles]`` section: users by name, groups in file order (the first match wins)."""

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
    if limits.gpus is not None:
        changes["gpus"] = limits.gpus
    return replace(policy, **changes) if changes else policy


def check_profile_gpus(profiles: Profiles, available: int, problems: Problems) -> None:
    """Each profile's gpus within the GPUs [gpus] lists."""
    named = [(f"profiles.users.{name}", limits) for name, limits in profiles.users.items()]
    named += [(f"profiles.groups.{name}", limits) for name, limits in profiles.groups]
    for where, limits in named:
        if limits.gpus is not None and limits.gpus > available:
            problems.append((f"{where}.gpus", f"{limits.gpus} GPUs, and [gpus] lists {available}"))


def _limits(table: object, where: str, problems: Problems) -> ProfileLimits | None:
    if not isinstance(table, dict):
        problems.append((where, "expected a table of mem_limit, cpu_limit and gpus"))
        return None
    values: dict[str, Any] = {}
    ok = True
    for key, value in table.items():
        try:
            if key == "mem_limit":
                values[key] = parse_size(value)
            elif key == "cpu_limit":
                values[key] = parse_cpu(value)
            elif key == "gpus":
                values[key] = gpu_count(value)
            else:
                problems.append(
                    (f"{where}.{key}", "unknown option; a profile sets mem_limit, cpu_limit, gpus")
                )
                ok = False
        except InvalidInput as exc:
            problems.append((f"{where}.{key}", exc.message))
            ok = False
    return ProfileLimits(**values) if ok else None


def parse_profiles(table: object, problems: Problems) -> Profiles:
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
