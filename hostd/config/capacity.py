"""The ``[capacity]`` section: how much the machine takes on, and when idle sessions end.

    [capacity]
    max_concurrent_starts = 4        # more starts wait, in order
    memory_share = 0.9               # of RAM: sum of sessions' mem_limit, and jupyter.slice
    idle_timeout = 0                 # seconds without activity before a session is stopped
    idle_warning = 300               # seconds before a cull that its user is warned; 0: never
    idle_cpu_percent = 2.0           # below this (of one core) a session counts as idle
    retry_after = 30                 # seconds a refused start is told to wait

No I/O here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hostd.config.document import Problems
from hostd.units.checks import check_duration
from hostd.units.errors import InvalidInput, InvalidOption

__all__ = ["CAPACITY_KEYS", "IDLE_TIMEOUT_MAX_S", "CapacityConfig", "parse_capacity"]

IDLE_TIMEOUT_MAX_S = 30 * 86400


@dataclass(frozen=True)
class CapacityConfig:
    """The ``[capacity]`` section."""

    max_concurrent_starts: int = 4
    memory_share: float = 0.9
    idle_timeout_s: float = 0.0  # 0: never cull
    # How long before a cull the session's view has cull_at (the hub's warning); 0: none.
    idle_warning_s: float = 300.0
    idle_cpu_percent: float = 2.0
    retry_after_s: int = 30


def _number(low: float, high: float, *, integer: bool = False) -> Callable[[object], float]:
    """A check of a number (a whole one if integer) from low to high."""

    def check(value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidOption(f"expected a number, not {value!r}")
        if integer and not isinstance(value, int):
            raise InvalidOption(f"expected a whole number, not {value!r}")
        if not low <= value <= high:
            raise InvalidOption(f"{value!r} is outside {low:g}..{high:g}")
        return value

    return check


def _idle_timeout(value: object) -> float:
    return check_duration(value, at_most=IDLE_TIMEOUT_MAX_S, zero_ok=True)


# TOML key -> (CapacityConfig field, check)
_CAPACITY_KEYS: dict[str, tuple[str, Callable[[object], float]]] = {
    "max_concurrent_starts": ("max_concurrent_starts", _number(1, 1000, integer=True)),
    "memory_share": ("memory_share", _number(0.001, 1.0)),
    "idle_timeout": ("idle_timeout_s", _idle_timeout),
    "idle_warning": ("idle_warning_s", _idle_timeout),
    "idle_cpu_percent": ("idle_cpu_percent", _number(0, 10000)),
    "retry_after": ("retry_after_s", _number(1, 3600, integer=True)),
}
# The TOML keys of [capacity], for `hostctl config`'s "did you mean".
CAPACITY_KEYS = tuple(_CAPACITY_KEYS)


def parse_capacity(table: object, problems: Problems) -> CapacityConfig:
    """The [capacity] section; every problem is added as (dotted key, message), and what
    checked out is kept."""
    if not isinstance(table, dict):
        problems.append(("capacity", "expected a table [capacity]"))
        return CapacityConfig()
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in _CAPACITY_KEYS:
            known = ", ".join(_CAPACITY_KEYS)
            problems.append((f"capacity.{key}", f"unknown option; known: {known}"))
            continue
        name, check = _CAPACITY_KEYS[key]
        try:
            values[name] = check(value)
        except InvalidInput as exc:
            problems.append((f"capacity.{key}", exc.message))
    return CapacityConfig(**values)
