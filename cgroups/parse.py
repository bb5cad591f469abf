"""Parsers for the text of single cgroup files (pure layer).

Functions over text they are given: no file access, no knowledge of which hierarchy a file
came from. They never raise on odd content: a reading that cannot be parsed is a missing
reading (None, or an absent key), because a garbled counter must not stop the loop that
samples every session.
"""

from __future__ import annotations

__all__ = ["UNLIMITED_AT_LEAST", "parse_flat_keyed", "parse_int_file"]

# cgroup v1 has no "max": an unset limit reads as PAGE_COUNTER_MAX pages in bytes, e.g.
# 9223372036854771712 with 4 KiB pages (0x7FFFFFFFFFFFF000), and other large values with
# other page sizes. Every such value is at least 2**62; no real limit or counter is.
UNLIMITED_AT_LEAST = 2**62


def parse_int_file(text: str) -> int | None:
    """One integer, as in memory.current or memory.limit_in_bytes.

    None for "max" (v2's unlimited), for v1's huge "unlimited" values, for a negative value
    (v1 writes -1 for "no quota") and for anything that is not an integer.
    """
    value = text.strip()
    if value == "max":
        return None
    try:
        number = int(value)
    except ValueError:
        return None
    if number < 0 or number >= UNLIMITED_AT_LEAST:
        return None
    return number


def parse_flat_keyed(text: str) -> dict[str, int]:
    """A flat keyed file (``key value`` per line), as in cpu.stat or memory.events.

    Lines that are not exactly two fields with an integer value are skipped: nested keyed
    files (io.stat) and pressure files have other shapes, and a key a parser does not know
    about is simply unused.
    """
    values: dict[str, int] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 2:
            continue
        key, raw = fields
        try:
            values[key] = int(raw)
        except ValueError:
            continue
    return values
