"""The start-time choices a user may take, as they cross the wire (pure layer; no I/O).

The daemon reads the admin's ``[[profile_list]]`` (hostd.config.profile_list) and answers
GET /v1/accounts/{user}/profiles with the choices that user may see, each with the limits a
start with it gets (resolved against the user's policy, so a choice that sets no mem_limit
shows the one that applies). The hub's start page and HostdSpawner's options_form render
these; neither reads hostd.toml.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hostd.units.fields import (
    bool_field,
    int_field,
    json_object,
    list_field,
    optional_float,
    optional_int,
    str_field,
)
from hostd.units.sizes import format_size

__all__ = ["ProfileView", "describe_limits", "profiles_body", "profiles_from_body"]


@dataclass(frozen=True, kw_only=True)
class ProfileView:
    """One choice a user may take; ``default`` is the one a start without a slug gets."""

    slug: str
    display_name: str
    description: str = ""
    default: bool = False
    mem_limit_bytes: int | None = None  # None: no memory limit
    cpu_limit: float | None = None  # None: no CPU limit
    gpus: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "display_name": self.display_name,
            "description": self.description,
            "default": self.default,
            "mem_limit_bytes": self.mem_limit_bytes,
            "cpu_limit": self.cpu_limit,
            "gpus": self.gpus,
        }

    @classmethod
    def from_dict(cls, data: object) -> ProfileView:
        """The inverse of to_dict; KeyError for a missing field, TypeError for a wrong type."""
        item = json_object(data)
        return cls(
            slug=str_field(item, "slug"),
            display_name=str_field(item, "display_name"),
            description=str_field(item, "description"),
            default=bool_field(item, "default"),
            mem_limit_bytes=optional_int(item, "mem_limit_bytes"),
            cpu_limit=optional_float(item, "cpu_limit"),
            gpus=int_field(item, "gpus"),
        )


def describe_limits(view: ProfileView) -> str:
    """The limits for people: "2.0 GiB memory · 1 CPU · 1 GPU"."""
    parts = [
        "no memory limit"
        if view.mem_limit_bytes is None
        else f"{format_size(view.mem_limit_bytes)} memory",
        "no CPU limit" if view.cpu_limit is None else f"{view.cpu_limit:g} CPU",
    ]
    if view.gpus:
        parts.append(f"{view.gpus} GPU{'' if view.gpus == 1 else 's'}")
    return " · ".join(parts)


def profiles_body(views: Iterable[ProfileView]) -> dict[str, Any]:
    """GET /v1/accounts/{user}/profiles: {"profiles": [...]} in the admin's order."""
    return {"profiles": [view.to_dict() for view in views]}


def profiles_from_body(data: object) -> list[ProfileView]:
    body: Mapping[str, Any] = json_object(data)
    return [ProfileView.from_dict(item) for item in list_field(body, "profiles")]
