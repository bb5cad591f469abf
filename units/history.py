"""Usage over time: the windows the daemon keeps, and the values that cross the socket (pure).

The daemon (hostd.daemon.history) keeps, per running session and for the host, one ring of
fixed-size points per window: HISTORY_WINDOWS says how long each ring covers and at what
resolution, so how many points it holds at most (``max_points``). What a point is and how it
turns into JSON (and back) is here, where every process can read it: the daemon builds these
values, hostd.api.wire sends them, the client and the hub read them back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from hostd.units.errors import InvalidOption
from hostd.units.fields import (
    int_field,
    json_object,
    list_field,
    optional_float,
    optional_int,
    str_field,
)

__all__ = [
    "DEFAULT_WINDOW",
    "HISTORY_WINDOWS",
    "HistoryWindow",
    "HostHistoryView",
    "HostPoint",
    "UsageHistoryView",
    "UsagePoint",
    "window_named",
]


@dataclass(frozen=True)
class HistoryWindow:
    """How far back a history reaches (``seconds``) and how long one point stands for."""

    name: str
    seconds: int
    resolution_s: int

    @property
    def max_points(self) -> int:
        """The most points a ring of this window holds: the bound on its memory."""
        return self.seconds // self.resolution_s


# 10 s points for the last hour (360 points) and 5 min points for the last day (288 points):
# a chart of an hour shows a notebook's cell runs, one of a day the working hours.
HISTORY_WINDOWS: Final[Mapping[str, HistoryWindow]] = MappingProxyType(
    {
        "1h": HistoryWindow("1h", 3600, 10),
        "24h": HistoryWindow("24h", 86400, 300),
    }
)
DEFAULT_WINDOW: Final = "1h"


def window_named(name: str | None) -> HistoryWindow:
    """The window a request names (?window=1h); DEFAULT_WINDOW for none; InvalidOption else."""
    if name is None:
        return HISTORY_WINDOWS[DEFAULT_WINDOW]
    window = HISTORY_WINDOWS.get(name)
    if window is None:
        shown = name if len(name) <= 16 else name[:13] + "..."
        raise InvalidOption(f"window: expected one of {', '.join(HISTORY_WINDOWS)}, not {shown!r}")
    return window


@dataclass(frozen=True, slots=True)
class UsagePoint:
    """What a session used during one interval of a window's resolution.

    ``at`` is the interval's start (Unix time, whole seconds); memory is the most seen in the
    interval; CPU is its mean use (100.0 = one core busy); the limits are those in force at
    its last reading. None: not measured (the cgroup setup does not tell, or one reading only).
    """

    at: int
    memory_bytes: int | None
    memory_limit_bytes: int | None
    cpu_percent: float | None
    cpu_limit: float | None

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UsagePoint:
        return cls(
            at=int_field(data, "at"),
            memory_bytes=optional_int(data, "memory_bytes"),
            memory_limit_bytes=optional_int(data, "memory_limit_bytes"),
            cpu_percent=optional_float(data, "cpu_percent"),
            cpu_limit=optional_float(data, "cpu_limit"),
        )


@dataclass(frozen=True, slots=True)
class HostPoint:
    """The host during one interval: the most memory promised to sessions (the sum of their
    limits) against what they may be promised together, and the most sessions running."""

    at: int
    memory_committed_bytes: int
    memory_capacity_bytes: int
    sessions_running: int

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HostPoint:
        return cls(
            at=int_field(data, "at"),
            memory_committed_bytes=int_field(data, "memory_committed_bytes"),
            memory_capacity_bytes=int_field(data, "memory_capacity_bytes"),
            sessions_running=int_field(data, "sessions_running"),
        )


@dataclass(frozen=True)
class UsageHistoryView:
    """A session's points over one window, oldest first (the last may be still filling)."""

    user: str
    window: str
    resolution_s: int
    points: tuple[UsagePoint, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "window": self.window,
            "resolution_s": self.resolution_s,
            "points": [point.to_dict() for point in self.points],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UsageHistoryView:
        return cls(
            user=str_field(data, "user"),
            window=str_field(data, "window"),
            resolution_s=int_field(data, "resolution_s"),
            points=tuple(UsagePoint.from_dict(json_object(p)) for p in list_field(data, "points")),
        )


@dataclass(frozen=True)
class HostHistoryView:
    """The host's points over one window, oldest first (the last may be still filling)."""

    window: str
    resolution_s: int
    points: tuple[HostPoint, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "resolution_s": self.resolution_s,
            "points": [point.to_dict() for point in self.points],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HostHistoryView:
        return cls(
            window=str_field(data, "window"),
            resolution_s=int_field(data, "resolution_s"),
            points=tuple(HostPoint.from_dict(json_object(p)) for p in list_field(data, "points")),
        )
