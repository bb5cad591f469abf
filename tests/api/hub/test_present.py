"""How the hub's pages say things (hostd.api.hub.present): meter levels at 80 and 95 % of the
limit, CPUs in words, one timestamp per log line, the logs page's filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hostd.api.hub.present import (
    LogFilter,
    cpus,
    cpus_used,
    line_priority,
    meter_level,
    meter_words,
    without_own_timestamp,
)
from hostd.units.values import LogLine

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "limit", "level", "words"),
    [
        (0, 100, "ok", ""),
        (79.9, 100, "ok", ""),
        (80, 100, "warning", "near the limit"),
        (86, 100, "warning", "near the limit"),  # issue 16: "meters stay green at 86 %"
        (94.9, 100, "warning", "near the limit"),
        (95, 100, "danger", "at the limit"),
        (120, 100, "danger", "at the limit"),
        (50, None, "ok", ""),
        (None, 100, "ok", ""),
        (5, 0, "ok", ""),
    ],
)
def test_a_meter_turns_warning_at_80_and_danger_at_95_percent(
    value: float | None, limit: float | None, level: str, words: str
) -> None:
    assert meter_level(value, limit) == level
    assert meter_words(value, limit) == words


def test_cpu_limits_read_as_cpus_never_as_percent() -> None:
    assert [cpus(1.0), cpus(2.0), cpus(0.5), cpus(1.25), cpus(None)] == [
        "1 CPU",
        "2 CPUs",
        "0.5 CPU",
        "1.25 CPUs",
        "–",
    ]
    assert cpus_used(0.0, 1.0) == "0.00 of 1 CPU (0 %)"
    assert cpus_used(1.5, 2.0) == "1.50 of 2 CPUs (75 %)"
    assert cpus_used(None, None) == "0.00 CPU"


def test_a_log_line_keeps_one_timestamp() -> None:
    jupyter = "[I 2026-12-06 11:00:00.123 ServerApp] Jupyter Server 2.14 is running at:"
    assert without_own_timestamp(jupyter) == "[I ServerApp] Jupyter Server 2.14 is running at:"
    assert without_own_timestamp("[W 2026-12-06 11:00:00,5] no name") == "[W] no name"
    assert without_own_timestamp("plain [I 2026-12-06 11:00:00 X] later") == (
        "plain [I 2026-12-06 11:00:00 X] later"
    )


def line(message: str, *, priority: int | None = 6, age: timedelta = timedelta()) -> LogLine:
    return LogLine(cursor="c", timestamp=NOW - age, message=message, priority=priority)


def test_log_filters_by_priority_text_and_since() -> None:
    lines = [
        line("kernel died", priority=3),
        line("Kernel started", priority=6),
        line("old error", priority=3, age=timedelta(hours=2)),
        line("no priority", priority=None),
    ]
    only = LogFilter.from_query
    assert only({}).apply(lines, NOW) == lines and not only({}).active
    errors = only({"priority": "3"})
    assert [x.message for x in errors.apply(lines, NOW)] == ["kernel died", "old error"]
    assert [x.message for x in only({"grep": "KERNEL"}).apply(lines, NOW)] == [
        "kernel died",
        "Kernel started",
    ]
    recent = only({"priority": "3", "since": "1h"})
    assert [x.message for x in recent.apply(lines, NOW)] == ["kernel died"]
    assert len(only({"priority": "7"}).apply(lines, NOW)) == 4  # debug: everything
    naive = LogLine(cursor="c", timestamp=NOW.replace(tzinfo=None), message="m")
    assert only({"since": "15m"}).keeps(naive, NOW)


def test_jupyters_own_level_is_the_lines_priority() -> None:
    """journald files all a session writes at "info": Jupyter's [E]/[W] letters are what
    tell an error, so the priority filter reads them."""
    error = line("[E 2026-12-06 11:00:00.000 ServerApp] Uncaught exception", priority=6)
    warning = line("[W 2026-12-06 11:00:00.000 ServerApp] 404 GET /x", priority=6)
    info = line("[I 2026-12-06 11:00:00.000 ServerApp] ok", priority=6)
    assert [line_priority(x) for x in (error, warning, info)] == [3, 4, 6]
    assert LogFilter.from_query({"priority": "4"}).apply([error, warning, info], NOW) == [
        error,
        warning,
    ]


def test_unknown_filter_values_are_ignored_not_refused() -> None:
    odd = LogFilter.from_query({"priority": "9", "since": "forever", "grep": " x" * 300})
    assert (odd.priority, odd.since, len(odd.text)) == ("", "", 200)
