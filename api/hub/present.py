"""How the hub's pages say things: meter levels, CPU in words, log lines and their filters
(api layer; pure functions over values, no I/O, registered as the templates' filters).

The pages must be readable by people, not only by the daemon: a meter says in words as well as
in colour when use nears a limit, a CPU limit reads as CPUs ("1 CPU", never "100 %"), and a
log line carries one timestamp (the journal's), not the journal's and Jupyter's both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from hostd.units.values import LogLine

__all__ = [
    "DANGER_FRACTION",
    "LOG_PRIORITIES",
    "LOG_SINCE",
    "WARNING_FRACTION",
    "LogFilter",
    "cpus",
    "cpus_used",
    "line_priority",
    "meter_level",
    "meter_words",
    "without_own_timestamp",
]

# Where a meter turns amber and red (of the limit): the admin's "near the limit".
WARNING_FRACTION: Final = 0.80
DANGER_FRACTION: Final = 0.95

MeterLevel = Literal["ok", "warning", "danger"]

# journalctl's priorities (syslog(3), -p 0..7), as the filter offers them: "this and worse".
LOG_PRIORITIES: Final = {
    "0": "emergency",
    "1": "alert",
    "2": "critical",
    "3": "error",
    "4": "warning",
    "5": "notice",
    "6": "info",
    "7": "debug",
}
# The "since" choices: a label and how far back.
LOG_SINCE: Final = {
    "15m": ("the last 15 minutes", timedelta(minutes=15)),
    "1h": ("the last hour", timedelta(hours=1)),
    "24h": ("the last 24 hours", timedelta(hours=24)),
    "7d": ("the last 7 days", timedelta(days=7)),
}
LOG_TEXT_MAX: Final = 200

# Jupyter's (traitlets/tornado) log prefix: "[I 2026-12-06 11:00:00.123 ServerApp] ...";
# the date is dropped, the level and the logger's name stay.
_JUPYTER_PREFIX: Final = re.compile(
    r"^\[(?P<level>[A-Z]) \d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?P<name> [^\]]*)?\] ?"
)


# Jupyter's level letters as syslog priorities: journald files everything a session writes
# at "info" (SyslogLevel=), so Jupyter's own level is the one that tells an error.
_JUPYTER_LEVELS: Final = {"C": 2, "E": 3, "W": 4, "I": 6, "D": 7}


def line_priority(line: LogLine) -> int | None:
    """The priority a reader means: Jupyter's level when the message carries one, else the
    journal's."""
    match = _JUPYTER_PREFIX.match(line.message)
    if match is not None and match["level"] in _JUPYTER_LEVELS:
        return _JUPYTER_LEVELS[match["level"]]
    return line.priority


def meter_level(value: float | None, limit: float | None) -> MeterLevel:
    """ "ok" below 80 % of the limit, "warning" from 80 %, "danger" from 95 % (no limit: ok)."""
    if value is None or not limit or limit <= 0:
        return "ok"
    fraction = value / limit
    if fraction >= DANGER_FRACTION:
        return "danger"
    if fraction >= WARNING_FRACTION:
        return "warning"
    return "ok"


def meter_words(value: float | None, limit: float | None) -> str:
    """What the colour says, for those who do not see it: "" when far from the limit."""
    return {"ok": "", "warning": "near the limit", "danger": "at the limit"}[
        meter_level(value, limit)
    ]


def cpus(cores: float | None) -> str:
    """A number of cores as people say it: "1 CPU", "2 CPUs", "0.5 CPU", "1.25 CPUs"."""
    if cores is None:
        return "–"
    text = f"{cores:.2f}".rstrip("0").rstrip(".")
    return f"{text} CPU" if cores <= 1 else f"{text} CPUs"


def without_own_timestamp(message: str) -> str:
    """A journal message without the date Jupyter wrote into it (the page shows the journal's)."""
    match = _JUPYTER_PREFIX.match(message)
    if match is None:
        return message
    name = (match["name"] or "").strip()
    return f"[{match['level']}{' ' + name if name else ''}] {message[match.end() :]}"


@dataclass(frozen=True)
class LogFilter:
    """The logs page's filters, from its query string; unknown values are ignored, not errors
    (a hand-edited link shows the unfiltered log rather than a refusal)."""

    priority: str = ""
    text: str = ""
    since: str = ""

    @classmethod
    def from_query(cls, query: dict[str, str]) -> LogFilter:
        priority = query.get("priority", "")
        since = query.get("since", "")
        return cls(
            priority=priority if priority in LOG_PRIORITIES else "",
            text=query.get("grep", "").strip()[:LOG_TEXT_MAX],
            since=since if since in LOG_SINCE else "",
        )

    @property
    def active(self) -> bool:
        return bool(self.priority or self.text or self.since)

    def keeps(self, line: LogLine, now: datetime) -> bool:
        """Whether a line passes: priority this or worse (line_priority; a line without one
        passes only "debug"), the text anywhere in the message (any case), and not older
        than ``since``."""
        priority = line_priority(line)
        if (
            self.priority
            and self.priority != "7"
            and (priority is None or priority > int(self.priority))
        ):
            return False
        if self.text and self.text.casefold() not in line.message.casefold():
            return False
        if not self.since:
            return True
        # The journal's times are UTC; a naive one is read as such.
        when = line.timestamp if line.timestamp.tzinfo else line.timestamp.replace(tzinfo=UTC)
        return when >= now - LOG_SINCE[self.since][1]

    def apply(self, lines: list[LogLine], now: datetime) -> list[LogLine]:
        return [line for line in lines if self.keeps(line, now)]


def cpus_used(used: float | None, limit: float | None) -> str:
    """CPU in use, in cores, against the limit: "0.37 of 1.5 CPUs (25 %)"; "0.37 CPU"."""
    used = used or 0.0
    if not limit:
        return f"{used:.2f} CPU"
    return f"{used:.2f} of {cpus(limit)} ({100 * used / limit:.0f} %)"
