"""A session's log, read from journald with journalctl (host layer).

journalctl runs as an asyncio subprocess: nothing blocks the event loop, and a follower is one
process that dies with its reader. (systemd-python's journal.Reader must stay on the thread
that made it and needs a build of its own; journalctl's JSON output carries the same fields.)
``-u UNIT`` also matches systemd's own messages about the unit (started, failed, ...), which is
what an admin sees with ``journalctl -u jupyter-alice``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from hostd.units.values import LogLine

__all__ = [
    "follow",
    "parse_entry",
    "tail",
]

JOURNALCTL = "journalctl"
FIELDS = "MESSAGE,PRIORITY,__CURSOR,__REALTIME_TIMESTAMP"
MAX_LINES = 10_000


def parse_entry(line: bytes) -> LogLine | None:
    """One line of ``journalctl -o json``; None for what is not an entry."""
    try:
        entry: dict[str, Any] = json.loads(line)
    except ValueError:
        return None
    cursor = entry.get("__CURSOR")
    if not isinstance(cursor, str):
        return None
    message = entry.get("MESSAGE")
    if isinstance(message, list):  # not UTF-8: journalctl gives the bytes as numbers
        message = bytes(v for v in message if isinstance(v, int) and 0 <= v < 256).decode(
            "utf-8", errors="replace"
        )
    elif message is None:  # over 4096 bytes without --all, or no MESSAGE at all
        message = ""
    try:
        stamp = datetime.fromtimestamp(int(entry.get("__REALTIME_TIMESTAMP", 0)) / 1e6, UTC)
    except (TypeError, ValueError):
        stamp = datetime.fromtimestamp(0, UTC)
    priority = entry.get("PRIORITY")
    return LogLine(
        cursor=cursor,
        timestamp=stamp,
        message=str(message),
        priority=int(priority) if isinstance(priority, str) and priority.isdigit() else None,
    )


def _argv(unit: str, *more: str) -> list[str]:
    return [
        JOURNALCTL,
        "--no-pager",
        "--quiet",
        "--all",
        "-o",
        "json",
        f"--output-fields={FIELDS}",
        "-u",
        unit,
        *more,
    ]


async def tail(unit: str, lines: int) -> list[LogLine]:
    """The last ``lines`` entries of the unit (all its invocations, newest last)."""
    lines = max(1, min(lines, MAX_LINES))
    proc = await asyncio.create_subprocess_exec(
        *_argv(unit, "-n", str(lines)),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await proc.communicate()
    return [entry for raw in out.splitlines() if (entry := parse_entry(raw)) is not None]


async def follow(unit: str, *, cursor: str | None, backlog: int = 10) -> AsyncIterator[LogLine]:
    """Entries after ``cursor`` (or the last ``backlog``), then new ones as they come.

    The journalctl process is killed when the consumer stops iterating.
    """
    start = ["--after-cursor", cursor] if cursor else ["-n", str(backlog)]
    proc = await asyncio.create_subprocess_exec(
        *_argv(unit, "--follow", *start),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        limit=1024 * 1024,
    )
    assert proc.stdout is not None
    try:
        while raw := await proc.stdout.readline():
            entry = parse_entry(raw)
            if entry is not None:
                yield entry
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
