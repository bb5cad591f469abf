"""The ``[[profile_list]]`` tables: the choices a user may pick at start (KubeSpawner's
``profile_list``, in its vocabulary).

Parsed with the rest of the config (hostd.config calls parse_profile_list), which adds every
problem as (dotted key, message) and returns what checked out. The daemon resolves a start's
slug with ProfileList.choose and applies the choice to the user's policy (apply_choice),
whatever the caller sends: a hidden or unknown slug is UnknownProfile, and a choice's limits
are also its caps. No I/O here (group membership is the caller's to look up).

    [[profile_list]]
    slug = "small"                  # what a start sends ("profile": "small"); unique
    display_name = "Small: 2 GB, 1 CPU"
    description = "For notebooks and teaching"
    default = true                  # at most one; else the first the user may see
    mem_limit = "2G"                # [session]'s when absent; never above max_mem_limit
    cpu_limit = 1.0
    command = "lab"                 # a [commands] name; [session] cmd when absent
    gpus = 0                        # how many GPUs the session gets
    groups = ["staff"]              # who may see and take it; everyone when absent

Not to be confused with ``[profiles.users.NAME]``/``[profiles.groups.NAME]`` (hostd.config
.profiles): the admin's per-user limits, which apply first and which no user chooses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from hostd.config.document import Problems
from hostd.units import SessionPolicy, parse_cpu, parse_size
from hostd.units.checks import check_group_names
from hostd.units.errors import InvalidInput, UnknownProfile

__all__ = [
    "PROFILE_CHOICE_KEYS",
    "PROFILE_LIST_MAX",
    "ProfileChoice",
    "ProfileList",
    "apply_choice",
    "parse_profile_list",
]

PROFILE_CHOICE_KEYS = (
    "slug",
    "display_name",
    "description",
    "default",
    "mem_limit",
    "cpu_limit",
    "command",
    "gpus",
    "groups",
)
# Bounded so that the slug can be a metrics label (bounded cardinality) and a form stays short.
PROFILE_LIST_MAX = 32
GPUS_MAX = 64
DISPLAY_NAME_MAX = 100
DESCRIPTION_MAX = 500
# A slug is a URL and label value as it stands: lower case, digits, '-', '_'.
_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


@dataclass(frozen=True)
class ProfileChoice:
    """One choice; None limits and command: [session]'s (and the user's admin profile's)."""

    slug: str
    display_name: str
    description: str = ""
    default: bool = False
    mem_limit: int | None = None
    cpu_limit: float | None = None
    command: str | None = None
    gpus: int = 0
    groups: tuple[str, ...] = ()  # empty: everyone

    def visible_to(self, groups: Iterable[str]) -> bool:
        return not self.groups or not set(self.groups).isdisjoint(groups)


@dataclass(frozen=True)
class ProfileList:
    """The choices in file order; empty: no choice is offered and starts are as before."""

    choices: tuple[ProfileChoice, ...] = ()

    def visible(self, groups: Iterable[str]) -> tuple[ProfileChoice, ...]:
        member = set(groups)
        return tuple(choice for choice in self.choices if choice.visible_to(member))

    def choose(self, slug: str | None, groups: Iterable[str]) -> ProfileChoice | None:
        """The choice a start gets: the slug asked for, else the default the user may see
        (else the first), else None (no choice configured or visible: [session] as before).

        A slug the user may not see is refused exactly as one that does not exist, so a
        caller learns nothing of hidden choices."""
        visible = self.visible(groups)
        if slug is None:
            return next((c for c in visible if c.default), visible[0] if visible else None)
        for choice in visible:
            if choice.slug == slug:
                return choice
        offered = ", ".join(c.slug for c in visible) or "none"
        shown = slug if _SLUG.fullmatch(slug) else repr(slug[:64])
        raise UnknownProfile(f"no profile {shown} to choose (the choices: {offered})")


def apply_choice(
    policy: SessionPolicy,
    choice: ProfileChoice,
    commands: Mapping[str, tuple[str, ...]],
    *,
    keep_cmd: bool = False,
) -> SessionPolicy:
    """The policy a start with this choice runs under: the choice's limits are both the
    default and the cap (a caller may ask for less, never for more), its command the cmd
    (unless keep_cmd: the caller named a [commands] entry of its own)."""
    changes: dict[str, Any] = {}
    if choice.mem_limit is not None:
        changes["mem_limit"] = changes["max_mem_limit"] = choice.mem_limit
    if choice.cpu_limit is not None:
        changes["cpu_limit"] = changes["max_cpu_limit"] = choice.cpu_limit
    if choice.command is not None and not keep_cmd:
        changes["cmd"] = commands[choice.command]  # checked to exist by parse_profile_list
    # The GPU count rides with the limits (the allocator reads SessionPolicy.gpus).
    changes["gpus"] = choice.gpus
    return replace(policy, **changes) if changes else policy


def _text(value: object, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit or not value.isprintable():
        raise InvalidInput(f"expected printable text of at most {limit} characters")
    return value


def _gpus(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= GPUS_MAX:
        raise InvalidInput(f"expected a whole number of GPUs from 0 to {GPUS_MAX}")
    return value


def _choice(
    table: object,
    where: str,
    session: SessionPolicy | None,
    commands: Mapping[str, tuple[str, ...]],
    problems: Problems,
) -> ProfileChoice | None:
    if not isinstance(table, dict):
        problems.append((where, "expected a [[profile_list]] table"))
        return None
    count = len(problems)
    values: dict[str, Any] = {}
    checks = {
        "display_name": lambda v: _text(v, DISPLAY_NAME_MAX),
        "description": lambda v: _text(v, DESCRIPTION_MAX),
        "mem_limit": parse_size,
        "cpu_limit": parse_cpu,
        "gpus": _gpus,
        "groups": check_group_names,
    }
    for key, value in table.items():
        at = f"{where}.{key}"
        try:
            if key == "slug":
                if not isinstance(value, str) or not _SLUG.fullmatch(value):
                    raise InvalidInput(
                        "a slug is 1 to 63 lower-case letters, digits, '-' and '_', "
                        "starting with a letter or digit"
                    )
                values[key] = value
            elif key == "default":
                if not isinstance(value, bool):
                    raise InvalidInput("expected true or false")
                values[key] = value
            elif key == "command":
                if value not in commands:
                    known = ", ".join(sorted(commands)) or "none"
                    raise InvalidInput(
                        f"unknown command {value!r}: name one of [commands] (defined: {known})"
                    )
                values[key] = value
            elif key in checks:
                values[key] = checks[key](value)
            else:
                raise InvalidInput(
                    f"unknown option; a choice sets {', '.join(PROFILE_CHOICE_KEYS)}"
                )
        except InvalidInput as exc:
            problems.append((at, exc.message))
    if "slug" not in values and "slug" not in table:
        problems.append((f"{where}.slug", "missing: every choice needs a slug"))
    if session is not None:
        for key, cap in (
            ("mem_limit", session.max_mem_limit),
            ("cpu_limit", session.max_cpu_limit),
        ):
            value = values.get(key)
            if value is not None and cap is not None and value > cap:
                problems.append((f"{where}.{key}", f"{table[key]} is above [session] max_{key}"))
    if len(problems) > count:
        return None
    values.setdefault("display_name", values["slug"])
    return ProfileChoice(**values)


def parse_profile_list(
    value: object,
    session: SessionPolicy | None,
    commands: Mapping[str, tuple[str, ...]],
    problems: Problems,
) -> ProfileList:
    """The ``[[profile_list]]`` array; session is [session]'s policy (None if it did not
    check out), commands the [commands] that did."""
    if not isinstance(value, list):
        problems.append(("profile_list", "expected [[profile_list]] tables"))
        return ProfileList()
    if len(value) > PROFILE_LIST_MAX:
        problems.append(("profile_list", f"at most {PROFILE_LIST_MAX} choices, not {len(value)}"))
        return ProfileList()
    choices: list[ProfileChoice] = []
    slugs: set[object] = set()
    defaults: list[str] = []
    for index, table in enumerate(value):
        slug = table.get("slug") if isinstance(table, dict) else None
        if isinstance(slug, str) and slug in slugs:
            problems.append((f"profile_list[{index}].slug", f"duplicate slug {slug!r}"))
            continue
        slugs.add(slug)
        if isinstance(table, dict) and table.get("default") is True:
            defaults.append(str(slug))
        choice = _choice(table, f"profile_list[{index}]", session, commands, problems)
        if choice is not None:
            choices.append(choice)
    if len(defaults) > 1:
        problems.append(
            ("profile_list", f"two or more choices say default = true: {', '.join(defaults)}")
        )
    return ProfileList(tuple(choices))
