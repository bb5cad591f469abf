"""hostd.units.maintenance: the admin's drain times, banner texts and the countdown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from hostd.units.errors import Draining, InvalidInput
from hostd.units.maintenance import (
    DRAIN_AHEAD_MAX,
    MESSAGE_MAX,
    Drain,
    MaintenanceView,
    check_drain_at,
    check_message,
    format_countdown,
    parse_drain_time,
)

# 14:30 in a zone two hours ahead of UTC (what hostctl passes: the local time, aware).
LOCAL = timezone(timedelta(hours=2))
NOW = datetime(2025, 6, 1, 14, 30, 15, tzinfo=LOCAL)
NOW_UTC = datetime(2025, 6, 1, 12, 30, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW_UTC),
        ("+30m", NOW_UTC + timedelta(minutes=30)),
        ("+1h30m", NOW_UTC + timedelta(minutes=90)),
        ("+2h", NOW_UTC + timedelta(hours=2)),
        ("+90s", NOW_UTC + timedelta(seconds=90)),
        (" +5m ", NOW_UTC + timedelta(minutes=5)),
        # HH:MM: local, today while it is ahead, else tomorrow.
        ("22:00", datetime(2025, 6, 1, 20, 0, tzinfo=UTC)),
        ("14:30", datetime(2025, 6, 2, 12, 30, tzinfo=UTC)),
        ("9:05", datetime(2025, 6, 2, 7, 5, tzinfo=UTC)),
        # ISO 8601: with an offset as written, without one in the local zone.
        ("2025-06-01T23:00:00+00:00", datetime(2025, 6, 1, 23, 0, tzinfo=UTC)),
        ("2025-06-01T23:00Z", datetime(2025, 6, 1, 23, 0, tzinfo=UTC)),
        ("2025-06-02 08:00", datetime(2025, 6, 2, 6, 0, tzinfo=UTC)),
    ],
)
def test_a_drain_time_is_read_into_utc(text: str, expected: datetime) -> None:
    at = parse_drain_time(text, NOW)
    assert at == expected
    assert at.tzinfo == UTC


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is none of"),
        ("+", "is none of"),
        ("soon", "is none of"),
        ("+30", "is none of"),
        ("30m", "is none of"),
        ("-5m", "is none of"),
        ("25:00", "not a time of day"),
        ("12:60", "not a time of day"),
        ("2025-06-01T10:00:00+02:00", "is in the past"),
        ("2024-01-01", "is in the past"),
        ("+999h", "more than 30 days ahead"),
        ("2026-06-01T10:00", "more than 30 days ahead"),
    ],
)
def test_an_absurd_or_past_drain_time_is_refused_with_why(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_drain_time(text, NOW)


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        parse_drain_time("now", NOW.replace(tzinfo=None))


def test_the_daemon_checks_the_time_it_is_sent() -> None:
    assert check_drain_at(NOW_UTC - timedelta(seconds=30), NOW_UTC) == NOW_UTC - timedelta(
        seconds=30
    )  # "now" that took a moment to arrive
    assert check_drain_at(NOW, NOW_UTC).tzinfo == UTC
    with pytest.raises(InvalidInput, match="zone"):
        check_drain_at(NOW.replace(tzinfo=None), NOW_UTC)
    with pytest.raises(InvalidInput, match="in the past"):
        check_drain_at(NOW_UTC - timedelta(minutes=5), NOW_UTC)
    with pytest.raises(InvalidInput, match="days ahead"):
        check_drain_at(NOW_UTC + DRAIN_AHEAD_MAX + timedelta(seconds=1), NOW_UTC)


@pytest.mark.parametrize(
    "value",
    [None, 3, "", "   ", "a\nb", "tab\there", "x" * (MESSAGE_MAX + 1), "bidi\u202etext"],
)
def test_a_banner_text_is_one_line_of_printable_text(value: object) -> None:
    with pytest.raises(InvalidInput, match=r"^announcement: "):
        check_message(value, "announcement")


def test_a_banner_text_is_trimmed() -> None:
    assert check_message("  Reboot at 22:00 (kernel) ") == "Reboot at 22:00 (kernel)"
    assert check_message("é" * MESSAGE_MAX) == "é" * MESSAGE_MAX


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "now"),
        (0, "now"),
        (1, "in less than a minute"),
        (59, "in less than a minute"),
        (60, "in 1 minute"),
        (61, "in 2 minutes"),
        (600, "in 10 minutes"),
        (3600, "in 1 hour"),
        (3601, "in 1 hour 1 minute"),
        (2 * 3600 + 5 * 60, "in 2 hours 5 minutes"),
    ],
)
def test_the_countdown_reads_as_words(seconds: int, text: str) -> None:
    assert format_countdown(NOW_UTC + timedelta(seconds=seconds), NOW_UTC) == text


def test_the_maintenance_view_reads_back_what_it_wrote() -> None:
    for view in (
        MaintenanceView(),
        MaintenanceView(announcement="Kernel update tonight"),
        MaintenanceView(drain=Drain(NOW_UTC, "Reboot for a kernel update")),
        MaintenanceView("a", Drain(NOW_UTC, "b")),
    ):
        assert MaintenanceView.from_dict(view.to_dict()) == view
    assert MaintenanceView(drain=Drain(NOW_UTC, "m")).to_dict() == {
        "announcement": None,
        "drain": {"at": "2025-06-01T12:30:15+00:00", "message": "m"},
    }


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"drain": None}, KeyError),
        ({"announcement": 3, "drain": None}, TypeError),
        ({"announcement": None, "drain": "soon"}, TypeError),
        ({"announcement": None, "drain": {"at": 3, "message": "m"}}, TypeError),
        ({"announcement": None, "drain": {"at": "2025-06-01T10:00", "message": "m"}}, ValueError),
        ({"announcement": None, "drain": {"at": "tonight", "message": "m"}}, ValueError),
    ],
)
def test_a_malformed_maintenance_body_is_refused(data: dict[str, object], error: type) -> None:
    with pytest.raises(error):
        MaintenanceView.from_dict(data)


def test_draining_says_when_to_retry() -> None:
    error = Draining("Reboot at 22:00", retry_after_s=120)
    assert error.code == "draining"
    assert error.to_dict() == {
        "code": "draining",
        "message": "Reboot at 22:00",
        "details": {"retry_after_s": 120},
    }
