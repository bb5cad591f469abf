"""Usage over time as pictures: charts the hub draws itself, as inline SVG (api layer; pure).

The daemon keeps the points (hostd.units.history); this module turns them into what the
templates draw (_charts.html): the line's SVG path, the limit's line, the axes' labels, and a
text alternative for people who do not see the picture (a one-line summary such as "now
512.0M, peak 1.2G of the 2.0G limit", and a table of the values). Nothing is fetched: no
script, no font, no library, so a page's Content-Security-Policy stays 'self'. Sizes are the
ground floor's (format_size: 2.0G, base 1024), CPU is in cores, as the limits are.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, TypeVar

from hostd.units.history import HISTORY_WINDOWS, HostHistoryView, UsageHistoryView
from hostd.units.sizes import format_size

__all__ = [
    "Chart",
    "Tick",
    "cpu_chart",
    "host_memory_chart",
    "memory_chart",
    "memory_sparkline",
]

# The drawing's own units (its viewBox); the page scales it to its width. About a phone's
# width, so that its 11-unit labels stay about 11 px there (hub.css caps a chart's width).
CHART_SIZE: Final = (320, 160)
SPARK_SIZE: Final = (120, 32)
# Space for the axes' labels around the plot: left, top, right, bottom.
_CHART_MARGINS: Final = (46, 14, 8, 22)
_SPARK_MARGINS: Final = (1, 2, 1, 2)
_ROWS: Final = 12  # rows of the table of values: every 5 min of an hour, every 2 h of a day

Point = tuple[int, float | None]  # (Unix time, value)
_T = TypeVar("_T")


@dataclass(frozen=True)
class Tick:
    """A label on an axis: where (in the drawing's units) and what it says."""

    at: float
    label: str


@dataclass(frozen=True)
class Chart:
    """What a template needs to draw one chart and to say it in words."""

    id: str
    title: str  # "Memory, last hour"
    summary: str  # the text alternative: "now 512.0M, peak 1.2G of the 2.0G limit"
    width: int
    height: int
    left: float  # the plot's box inside the drawing
    top: float
    right: float
    bottom: float
    line: str  # SVG path of the values; "" when there is none yet
    area: str  # the same, closed down to zero, to fill
    limit_y: float | None  # where the limit's line is drawn; None: no limit
    limit_label: str | None
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    rows: tuple[tuple[str, str], ...]  # (time, value) as text, oldest first
    unit: str  # what the values are, for the table's header


def memory_chart(history: UsageHistoryView, *, now: float | None = None) -> Chart:
    return _memory_against_limit(
        history, "memory", f"Memory, {_window_words(history.window)}", now=now, small=False
    )


def cpu_chart(history: UsageHistoryView, *, now: float | None = None) -> Chart:
    # Cores, as the limit is set (cpu_limit = 1.5): "0 % of 100 %" said nothing (issue 16).
    points = [
        (p.at, None if p.cpu_percent is None else p.cpu_percent / 100.0) for p in history.points
    ]
    limit = _last([p.cpu_limit for p in history.points])
    return _chart(
        "cpu",
        f"CPU in cores, {_window_words(history.window)}",
        points,
        limit=limit,
        window_s=_seconds(history.window, history.resolution_s),
        now=now,
        show=_cores,
        tick=_cores_tick,
        unit="CPU (cores)",
        limit_words="limit",
        size=CHART_SIZE,
        margins=_CHART_MARGINS,
    )


def memory_sparkline(history: UsageHistoryView, *, now: float | None = None) -> Chart:
    """A small chart of one session's memory, for a row of the admin's page."""
    title = f"{history.user}'s memory, {_window_words(history.window)}"
    return _memory_against_limit(history, f"memory-{history.user}", title, now=now, small=True)


def _memory_against_limit(
    history: UsageHistoryView, chart_id: str, title: str, *, now: float | None, small: bool
) -> Chart:
    points = [(p.at, _maybe_float(p.memory_bytes)) for p in history.points]
    limit = _last([p.memory_limit_bytes for p in history.points])
    return _chart(
        chart_id,
        title,
        points,
        limit=None if limit is None else float(limit),
        window_s=_seconds(history.window, history.resolution_s),
        now=now,
        show=_size,
        unit="Memory",
        limit_words="limit",
        size=SPARK_SIZE if small else CHART_SIZE,
        margins=_SPARK_MARGINS if small else _CHART_MARGINS,
        ticks=not small,
    )


def host_memory_chart(history: HostHistoryView, *, now: float | None = None) -> Chart:
    """The memory promised to sessions (their limits together) against the host's capacity."""
    points = [(p.at, float(p.memory_committed_bytes)) for p in history.points]
    capacity = _last([p.memory_capacity_bytes for p in history.points])
    return _chart(
        "host-memory",
        f"Memory promised to sessions, {_window_words(history.window)}",
        points,
        limit=None if capacity is None else float(capacity),
        window_s=_seconds(history.window, history.resolution_s),
        now=now,
        show=_size,
        unit="Promised",
        limit_words="capacity",
        size=CHART_SIZE,
        margins=_CHART_MARGINS,
    )


# -- drawing -------------------------------------------------------------------------------


def _chart(
    chart_id: str,
    title: str,
    points: Sequence[Point],
    *,
    limit: float | None,
    window_s: int,
    now: float | None,
    show: Callable[[float], str],
    unit: str,
    limit_words: str,
    size: tuple[int, int],
    margins: tuple[int, int, int, int],
    ticks: bool = True,
    tick: Callable[[float], str] | None = None,
) -> Chart:
    tick = show if tick is None else tick
    now = time.time() if now is None else now
    width, height = size
    left, top = float(margins[0]), float(margins[1])
    right, bottom = float(width - margins[2]), float(height - margins[3])
    start = now - window_s
    values = [v for _, v in points if v is not None]
    top_value = max([*values, limit or 0.0]) * 1.1 or 1.0

    def x(at: float) -> float:
        return left + (right - left) * min(max((at - start) / window_s, 0.0), 1.0)

    def y(value: float) -> float:
        return bottom - (bottom - top) * min(value / top_value, 1.0)

    line, area = _paths([(x(at), None if v is None else y(v)) for at, v in points], bottom)
    y_ticks: tuple[Tick, ...] = ()
    x_ticks: tuple[Tick, ...] = ()
    if ticks:
        # At 0, half and all of the limit (the peak without one): round numbers a reader knows.
        scale = limit or max(values, default=0.0) or 1.0
        y_ticks = tuple(Tick(round(y(scale * f), 1), tick(scale * f)) for f in (0.0, 0.5, 1.0))
        x_ticks = tuple(
            Tick(round(x(start + window_s * f), 1), _ago(window_s * (1 - f)))
            for f in (0.0, 0.5, 1.0)
        )
    return Chart(
        id=chart_id,
        title=title,
        summary=_summary(values, limit, show, limit_words),
        width=width,
        height=height,
        left=left,
        top=top,
        right=right,
        bottom=bottom,
        line=line,
        area=area,
        limit_y=None if limit is None else round(y(limit), 1),
        limit_label=None if limit is None else f"{limit_words} {show(limit)}",
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        rows=_rows(points, start, window_s, show),
        unit=unit,
    )


def _paths(xy: Sequence[tuple[float, float | None]], bottom: float) -> tuple[str, str]:
    """The line through the points (a gap where a value is missing) and its filled area."""
    line: list[str] = []
    area: list[str] = []
    run: list[tuple[float, float]] = []
    for px, py in [*xy, (0.0, None)]:
        if py is not None:
            run.append((px, py))
            continue
        if run:
            # One point alone still shows: a short flat stroke.
            if len(run) == 1:
                run.append((run[0][0] + 1.0, run[0][1]))
            steps = " ".join(f"L{a:.1f},{b:.1f}" for a, b in run[1:])
            line.append(f"M{run[0][0]:.1f},{run[0][1]:.1f} {steps}")
            area.append(
                f"M{run[0][0]:.1f},{bottom:.1f} L{run[0][0]:.1f},{run[0][1]:.1f} {steps} "
                f"L{run[-1][0]:.1f},{bottom:.1f} Z"
            )
        run = []
    return " ".join(line), " ".join(area)


def _summary(
    values: Sequence[float], limit: float | None, show: Callable[[float], str], limit_words: str
) -> str:
    if not values:
        return "No measurements yet."
    of = "" if limit is None else f" of the {show(limit)} {limit_words}"
    return f"now {show(values[-1])}, peak {show(max(values))}{of}"


def _rows(
    points: Sequence[Point], start: float, window_s: int, show: Callable[[float], str]
) -> tuple[tuple[str, str], ...]:
    """The values as text, one row per twelfth of the window: its time and its peak."""
    step = window_s / _ROWS
    rows: list[tuple[str, str]] = []
    for i in range(_ROWS):
        low, high = start + i * step, start + (i + 1) * step
        inside = [v for at, v in points if low <= at < high and v is not None]
        if inside:
            rows.append((_clock(low), show(max(inside))))
    return tuple(rows)


def _last(values: Sequence[_T | None]) -> _T | None:
    for value in reversed(values):
        if value is not None:
            return value
    return None


def _maybe_float(value: int | None) -> float | None:
    return None if value is None else float(value)


def _size(value: float) -> str:
    return format_size(round(value))


def _cores(value: float) -> str:
    return f"{value:.2f} cores"


def _cores_tick(value: float) -> str:
    return f"{value:.2g}"


def _seconds(window: str, resolution_s: int) -> int:
    known = HISTORY_WINDOWS.get(window)
    return resolution_s * 360 if known is None else known.seconds


def _window_words(window: str) -> str:
    return {"1h": "last hour", "24h": "last 24 hours"}.get(window, f"last {window}")


def _ago(seconds: float) -> str:
    if seconds <= 0:
        return "now"
    if seconds >= 7200:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 60:.0f} min ago"


def _clock(at: float) -> str:
    return f"{datetime.fromtimestamp(at, UTC):%H:%M} UTC"
