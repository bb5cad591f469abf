"""Resource-control properties hostd sends besides a session's first unit (pure layer; no I/O).

build_unit decides a session's unit when it starts. What the daemon sends afterwards, a
running session's new limits (SetUnitProperties) and the cap of the slice all sessions run in,
is built here from plain numbers, as is the AddRef the daemon adds to a unit it starts, so no
MemoryMax= or CPUQuota= is ever assembled by hand in hostd/. build_unit uses the same
limit_properties, so a limit looks the same at start and when changed live.
"""

from __future__ import annotations

from hostd.units.model import Property, UnitSpec
from hostd.units.sizes import cpu_quota_usec
from hostd.units.values import Limits

__all__ = [
    "cpu_limit_of",
    "keep_loaded",
    "limit_properties",
    "slice_cap_properties",
    "spec_limits",
]

_USEC_PER_SEC = 1_000_000


def limit_properties(
    mem_limit: int | None, cpu_limit: float | None, *, allow_swap: bool = False
) -> tuple[Property, ...]:
    """MemoryMax (and MemorySwapMax=0 unless ``allow_swap``) and CPUQuotaPerSecUSec for the
    limits given; an unset one is left out.

    Raises InvalidOption for a CPU amount out of range (as parse_cpu)."""
    properties: list[Property] = []
    if mem_limit is not None:
        # ref: systemd.resource-control(5) MemoryMax=: bytes, "t" on the bus.
        properties.append(Property("MemoryMax", "t", mem_limit))
        if not allow_swap:
            # ref: systemd.resource-control(5) MemorySwapMax=. With swap on the host, a
            # 256 MiB allocation under MemoryMax=64M succeeded by swapping (measured on
            # Debian 12): mem_limit caps memory and swap together. Ignored on cgroup v1.
            properties.append(Property("MemorySwapMax", "t", 0))
    if cpu_limit is not None:
        # ref: systemd.resource-control(5) CPUQuota=: on the bus CPUQuotaPerSecUSec, the CPU
        # time allowed per second of wall time (1.5 cores = 1,500,000 us).
        properties.append(Property("CPUQuotaPerSecUSec", "t", cpu_quota_usec(cpu_limit)))
    return tuple(properties)


def slice_cap_properties(memory_limit: int) -> tuple[Property, ...]:
    """The slice's own memory cap: what all sessions together may use, whatever each may."""
    return (
        # ref: systemd.resource-control(5) MemoryAccounting=: a slice's MemoryMax= applies
        # only where memory accounting is on (cgroup v1 creates the memory cgroup only then).
        Property("MemoryAccounting", "b", True),
        # ref: systemd.resource-control(5) MemoryMax= on a slice bounds every unit in it together.
        Property("MemoryMax", "t", memory_limit),
    )


def keep_loaded(spec: UnitSpec) -> UnitSpec:
    """spec with AddRef: systemd keeps the unit loaded after it ends, while the bus connection
    that started it lives, so its Result can be read before systemd collects it."""
    # ref: org.freedesktop.systemd1(5) StartTransientUnit(): the AddRef property pins the unit
    # to the client (Ref()/Unref()); SYSTEMD-NOTES.md.
    return UnitSpec(spec.name, (*spec.properties, Property("AddRef", "b", True)))


def cpu_limit_of(quota_usec: int | None) -> float | None:
    """Cores from CPUQuotaPerSecUSec (the inverse of cpu_quota_usec), to 3 decimals."""
    return None if quota_usec is None else round(quota_usec / _USEC_PER_SEC, 3)


def spec_limits(spec: UnitSpec) -> Limits:
    """The memory and CPU limits a unit spec sets (None where it sets none)."""
    mem = _int_property(spec, "MemoryMax")
    return Limits(mem, cpu_limit_of(_int_property(spec, "CPUQuotaPerSecUSec")))


def _int_property(spec: UnitSpec, name: str) -> int | None:
    for prop in spec.properties:
        if prop.name == name and isinstance(prop.value, int):
            return prop.value
    return None
