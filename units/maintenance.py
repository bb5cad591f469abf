"""Maintenance: an announcement, a drain before a reboot, and how their times are written
(pure layer; no I/O, no clock: every "now" is passed in).

An admin announces a text (every hub page shows it) and drains the host: from then on every
start is refused with the admin's message, and at ``at`` every running session is stopped.
The daemon keeps the state (MaintenanceView), the wire carries it as JSON with ``at`` in ISO
8601 UTC, and hostctl reads the admin's TIME with parse_drain_time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, Final

from hostd.units._text import has_unsafe_char, show
from hostd.units.errors import InvalidInput

__all__ = [
    "DRAIN_AHEAD_MAX",
    "DRAIN_PAST_SLACK",
    "MESSAGE_MAX",
    "Drain",
    "MaintenanceView",
    "check_drain_at",
    "check_message",
    "format_countdown",
    "parse_drain_time",
]

# A banner, not a letter: longer would not fit a page's top line.
MESSAGE_MAX: Final = 500
# A drain further ahead than this is a typo (a year for a month), not a plan.
DRAIN_AHEAD_MAX: Final = timedelta(days=30)
# "now" written by hostctl reaches the daemon a moment later: that much past is still now.
DRAIN_PAST_SLACK: Final = timedelta(seconds=60)

_RELATIVE: Final = re.compile(r"\+(?:(\d{1,4})h)?(?:(\d{1,6})m)?(?:(\d{1,7})s)?")
_CLOCK: Final = re.compile(r"(\d{1,2}):(\d{2})")


@dataclass(frozen=True)
class Drain:
    """Starts are refused with ``message``; running sessions are stopped at ``at`` (UTC)."""

    at: datetime
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "message": self.message}


@dataclass(frozen=True)
class MaintenanceView:
    """What the hub shows and the daemon enforces; None: no announcement, no drain."""

    announcement: str | None = None
    drain: Drain | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "announcement": self.announcement,
            "drain": None if self.drain is None else self.drain.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MaintenanceView:
        """The inverse of to_dict: KeyError for a missing field, TypeError for a wrong type,
        ValueError for a time that does not parse."""
        announcement, drain = data["announcement"], data["drain"]
        if announcement is not None and not isinstance(announcement, str):
            raise TypeError("announcement: expected a string or null")
        if drain is None:
            return cls(announcement=announcement)
        if not isinstance(drain, Mapping):
            raise TypeError("drain: expected an object or null")
        at, message = drain["at"], drain["message"]
        if not isinstance(at, str) or not isinstance(message, str):
            raise TypeError("drain: at and message must be strings")
        return cls(announcement=announcement, drain=Drain(_aware(at), message))


def _aware(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
    return moment.astimezone(UTC)


def check_message(value: object, what: str = "message") -> str:
    """A banner's text: 1 to MESSAGE_MAX characters of one line, trimmed; InvalidInput."""
    if not isinstance(value, str):
        raise InvalidInput(f"{what}: expected text, not {show(value)}")
    text = value.strip()
    if not text:
        raise InvalidInput(f"{what}: must not be empty")
    if len(text) > MESSAGE_MAX:
        raise InvalidInput(f"{what}: longer than {MESSAGE_MAX} characters")
    # A newline or a control character would break the banner's one line (and a log's).
    if has_unsafe_char(text):
        raise InvalidInput(f"{what}: must be one line of printable text")
    return text


def check_drain_at(at: datetime, now: datetime) -> datetime:
    """``at`` in UTC, if it is not in the past (beyond DRAIN_PAST_SLACK) and not further ahead
    than DRAIN_AHEAD_MAX; InvalidInput otherwise. Both must be aware."""
    if at.tzinfo is None:
        raise InvalidInput("at: a time with a zone (UTC offset) is needed")
    if at < now - DRAIN_PAST_SLACK:
        raise InvalidInput(f"at: {at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC is in the past")
    if at > now + DRAIN_AHEAD_MAX:
        raise InvalidInput(f"at: more than {DRAIN_AHEAD_MAX.days} days ahead")
    return at.astimezone(UTC)


def parse_drain_time(text: str, now: datetime) -> datetime:
    """The admin's TIME, in UTC: "now"; "+30m", "+1h30m", "+90s" from now; "HH:MM" in now's
    zone, today or, once past, tomorrow; or ISO 8601 ("2025-06-01T22:00", in now's zone
    without an offset). ``now`` is aware (the local time); InvalidInput for anything else,
    a time in the past or one too far ahead."""
    if now.tzinfo is None:
        raise ValueError("now must be aware")
    written = text.strip()
    relative = _RELATIVE.fullmatch(written)
    clock = _CLOCK.fullmatch(written)
    if written == "now":
        at = now
    elif relative is not None and any(relative.groups()):
        hours, minutes, seconds = (int(part or 0) for part in relative.groups())
        at = now + timedelta(hours=hours, minutes=minutes, seconds=seconds)
    elif clock is not None:
        hour, minute = int(clock[1]), int(clock[2])
        if hour > 23 or minute > 59:
            raise InvalidInput(f"TIME: {show(text)} is not a time of day (00:00 to 23:59)")
        at = datetime.combine(now.date(), time(hour, minute), tzinfo=now.tzinfo)
        if at <= now:
            at += timedelta(days=1)
    else:
        try:
            at = datetime.fromisoformat(written)
        except ValueError:
            raise InvalidInput(
                f"TIME: {show(text)} is none of now, +30m, +1h30m, HH:MM or ISO 8601"
            ) from None
        if at.tzinfo is None:
            at = at.replace(tzinfo=now.tzinfo)
    return check_drain_at(at, now)


def format_countdown(at: datetime, now: datetime) -> str:
    """How long until ``at``, for a banner: "in 2 hours 5 minutes", "in 1 minute", "in less
    than a minute", "now" once it has come."""
    left = int((at - now).total_seconds())
    if left <= 0:
        return "now"
    if left < 60:
        return "in less than a minute"
    minutes = -(-left // 60)  # rounded up: "in 1 minute" until the last minute begins
    hours, minutes = divmod(minutes, 60)
    parts = [f"{hours} hour{'s' * (hours != 1)}"] if hours else []
    if minutes:
        parts.append(f"{minutes} minute{'s' * (minutes != 1)}")
    return "in " + " ".join(parts)
