"""Sizes, CPU amounts and time spans as admins write them (pure layer; no I/O).

The notations follow systemdspawner (``mem_limit = '2G'``, ``cpu_limit = 1.0``) and
systemd.time(7); the results are what systemd's D-Bus properties take (bytes, microseconds).
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

from hostd.units._text import show
from hostd.units.errors import InvalidOption, InvalidSize

__all__ = [
    "CPU_MAX",
    "CPU_MIN",
    "SIZE_MAX",
    "TIMESPAN_MAX_USEC",
    "cpu_quota_usec",
    "format_size",
    "parse_cpu",
    "parse_percent_quota",
    "parse_size",
    "parse_timespan_usec",
]

# The D-Bus properties are uint64, but 2**64-1 means "infinity" there; a finite size stays
# within int64 so it can never be mistaken for it.
SIZE_MAX = 2**63 - 1
TIMESPAN_MAX_USEC = 2**63 - 1

# The kernel refuses a CFS quota below 1 ms per period (cpu.cfs_quota_us >= 1000), and systemd
# uses a 100 ms period: 0.01 of a core is the smallest quota that is enforced as written.
CPU_MIN = 0.01
CPU_MAX = 1024.0
_USEC_PER_SEC = 1_000_000
_QUOTA_MIN_USEC = 10_000
_QUOTA_MAX_USEC = 1024 * _USEC_PER_SEC

# [0-9], not \d: \d also matches other scripts' digits, which Fraction() would accept.
_NUMBER = r"([0-9]+(?:\.[0-9]+)?)"
_SIZE = re.compile(rf"{_NUMBER}\s*(?:([KMGT])(?:I?B)?|B)?", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_DECIMAL = re.compile(_NUMBER)
_PERCENT = re.compile(rf"{_NUMBER}%")

# systemd.time(7); units are case-sensitive there ("M" is a month), months and years omitted.
_TIME_UNITS_USEC = {
    **dict.fromkeys(("", "s", "sec", "second", "seconds"), _USEC_PER_SEC),
    **dict.fromkeys(("us", "usec", "\u00b5s", "\u03bcs"), 1),
    **dict.fromkeys(("ms", "msec"), 1000),
    **dict.fromkeys(("m", "min", "minute", "minutes"), 60 * _USEC_PER_SEC),
    **dict.fromkeys(("h", "hr", "hour", "hours"), 3600 * _USEC_PER_SEC),
    **dict.fromkeys(("d", "day", "days"), 86400 * _USEC_PER_SEC),
    **dict.fromkeys(("w", "week", "weeks"), 7 * 86400 * _USEC_PER_SEC),
}
# One "<number> [unit]" of a span; matched part by part, not as one repeated group, which
# would backtrack exponentially on long runs of digits.
_TIMESPAN_PART = re.compile(rf"{_NUMBER}\s*([a-z\u00b5\u03bc]*)\s*")
# Longer notations are refused before parsing: Python will not turn more than 4300 digits into
# an int (a ValueError, not ours), and no real size or span needs more than a few dozen.
_NOTATION_MAX = 128


def _notation(value: object) -> str | None:
    """value stripped if it is a string short enough to parse, else None."""
    if isinstance(value, str) and len(value) <= _NOTATION_MAX:
        return value.strip()
    return None


def parse_size(value: object) -> int:
    """Bytes from an int (bytes) or a string like "2048", "512M", "1.5G", "2GiB" (base 1024).

    Raises InvalidSize for anything else, for zero, and above SIZE_MAX.
    """
    if isinstance(value, bool):
        raise InvalidSize(f"invalid size {show(value)}: a boolean is not a size")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str):
        text = _notation(value)
        match = None if text is None else _SIZE.fullmatch(text)
        if match is None:
            raise InvalidSize(f"invalid size {show(value)}: expected bytes or a size like 512M")
        number, unit = match.group(1), (match.group(2) or "").upper()
        if "." in number and not unit:
            raise InvalidSize(f"invalid size {show(value)}: a fraction needs a unit (K/M/G/T)")
        size = math.floor(Fraction(number) * _UNITS[unit])
    else:
        raise InvalidSize(f"invalid size {show(value)}: expected an int of bytes or a string")
    if not 0 < size <= SIZE_MAX:
        raise InvalidSize(f"invalid size {show(value)}: must be between 1 byte and {SIZE_MAX}")
    return size


def parse_cpu(value: object) -> float:
    """Cores (1.0 is one whole core) from an int, a float or a decimal string."""
    if isinstance(value, bool):
        raise InvalidSize(f"invalid CPU limit {show(value)}: a boolean is not a CPU amount")
    text = _notation(value)
    cores: int | float
    if isinstance(value, int | float):
        cores = value
    elif text is not None and _DECIMAL.fullmatch(text):
        cores = float(text)
    else:
        raise InvalidSize(f"invalid CPU limit {show(value)}: expected a number of cores")
    # Compared before float(): a huge int would overflow it. NaN fails every comparison, so
    # this also refuses NaN, and the infinities are out of range.
    if not CPU_MIN <= cores <= CPU_MAX:
        raise InvalidSize(
            f"invalid CPU limit {show(value)}: must be between {CPU_MIN} and {CPU_MAX:g} cores"
        )
    return float(cores)


def cpu_quota_usec(cores: float) -> int:
    """CPUQuotaPerSecUSec for a number of cores: CPU time allowed per second of wall time."""
    return round(parse_cpu(cores) * _USEC_PER_SEC)


def parse_percent_quota(value: object) -> int:
    """CPUQuotaPerSecUSec from the CPUQuota= notation, e.g. "150%" (1.5 cores)."""
    text = _notation(value)
    match = None if text is None else _PERCENT.fullmatch(text)
    if match is None:
        raise InvalidSize(f"invalid CPU quota {show(value)}: expected a percentage like '150%'")
    usec = math.floor(Fraction(match.group(1)) * (_USEC_PER_SEC // 100))
    if not _QUOTA_MIN_USEC <= usec <= _QUOTA_MAX_USEC:
        raise InvalidSize(
            f"invalid CPU quota {show(value)}: must be between "
            f"{CPU_MIN * 100:g}% and {CPU_MAX * 100:g}%"
        )
    return usec


def parse_timespan_usec(value: object) -> int:
    """Microseconds from an int (seconds) or a systemd.time(7) span: "10s", "500ms", "1min 30s".

    Zero is accepted here; whether it makes sense is the caller's call. "infinity" is not.
    """
    if isinstance(value, bool):
        raise InvalidOption(f"invalid time span {show(value)}: a boolean is not a time span")
    text = _notation(value)
    usec: int | None
    if isinstance(value, int):
        usec = value * _USEC_PER_SEC
    else:
        usec = _sum_timespan(text) if text else None
    if usec is None:
        raise InvalidOption(
            f"invalid time span {show(value)}: expected seconds or a span like '1min 30s'"
        )
    if not 0 <= usec <= TIMESPAN_MAX_USEC:
        raise InvalidOption(
            f"invalid time span {show(value)}: must be between 0 and {TIMESPAN_MAX_USEC} µs"
        )
    return usec


def _sum_timespan(text: str) -> int | None:
    """Microseconds in a non-empty stripped span, or None if a part does not parse."""
    usec, position = 0, 0
    while position < len(text):
        match = _TIMESPAN_PART.match(text, position)
        if match is None or match.group(2) not in _TIME_UNITS_USEC:
            return None
        usec += math.floor(Fraction(match.group(1)) * _TIME_UNITS_USEC[match.group(2)])
        position = match.end()
    return usec


_DISPLAY_UNITS = ("B", "K", "M", "G", "T", "P", "E")


def format_size(size: int | None) -> str:
    """Bytes for people, base 1024 like systemctl: 512B, 1.5K, 2.0G; "-" for none."""
    if size is None:
        return "-"
    if size < 1024:
        return f"{size}B"
    value = float(size)
    for unit in _DISPLAY_UNITS[1:]:
        value /= 1024
        if value < 1024 or unit == _DISPLAY_UNITS[-1]:
            return f"{value:.1f}{unit}"
    raise AssertionError("unreachable")  # pragma: no cover
