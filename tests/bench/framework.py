"""The benchmark's small framework: rows that return samples, the table made from them.

A row is one function registered with ``@row(key, section, title)``; it gets the run's Context
and returns a ``Result``: its samples (seconds, MiB, ...) and counts. Rows that cannot run yet
(the hub, the spawner) return ``Result.unavailable()``; a row that raises is reported as an
error and the run goes on. ``summarise`` turns results into the table's lines (median, p95,
ratios against the floor and the anchor of the same run) and ``to_json`` into the JSON file.
"""

from __future__ import annotations

import math
import statistics
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

NOT_AVAILABLE = "not available yet"


@dataclass
class Result:
    """What one row measured. ``samples`` are in ``unit``; counts are for spawns."""

    samples: list[float] = field(default_factory=list)
    unit: str = "s"
    attempts: int | None = None
    successes: int | None = None
    wall_s: float | None = None
    status: str = "ok"  # ok, "not available yet: why", "error: why"
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def unavailable(cls, why: str) -> Result:
        return cls(status=f"{NOT_AVAILABLE}: {why}")

    @classmethod
    def error(cls, why: str) -> Result:
        return cls(status=f"error: {why}")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    @property
    def p95(self) -> float | None:
        return percentile(self.samples, 95)


@dataclass
class Row:
    key: str  # "a", "b", "f N=20", ... as the table names it
    section: str  # one of SECTIONS
    title: str
    run: Callable[[Any], Result]
    modes: tuple[str, ...] = ("quick", "full")


ROWS: list[Row] = []
# The order rows run in; "after load" holds what is measured again once the proxy rows loaded.
SECTIONS = ("spawn", "stop", "concurrent", "footprint", "proxy", "after load")


def row(
    key: str, section: str, title: str, *, modes: tuple[str, ...] = ("quick", "full")
) -> Callable[[Callable[[Any], Result]], Callable[[Any], Result]]:
    def register(fn: Callable[[Any], Result]) -> Callable[[Any], Result]:
        ROWS.append(Row(key, section, title, fn, modes))
        return fn

    return register


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile (p95 of 10 samples is the 10th smallest): no interpolation."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


class Interrupted(BaseException):
    """SIGTERM or SIGINT: the rows not yet run are reported as interrupted."""


def run_rows(
    rows: list[Row], ctx: Any, log: Callable[[str], None], results: dict[str, Result]
) -> None:
    """Run the rows in order into ``results`` (filled as they end: kept if interrupted)."""
    for r in rows:
        started = time.monotonic()
        log(f"row {r.key}: {r.title}")
        try:
            result = r.run(ctx)
        except Exception as exc:  # a broken row is reported, the others still run
            log(traceback.format_exc())
            result = Result.error(f"{type(exc).__name__}: {exc}")
        result.extra.setdefault("row_seconds", round(time.monotonic() - started, 1))
        results[r.key] = result
        log(f"row {r.key}: {describe(result)}")


def fmt(value: float | None, unit: str = "s") -> str:
    if value is None:
        return "–"
    if unit == "s":
        if value < 0.01:
            return f"{value * 1000:.2f} ms"
        return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"
    if unit == "MiB":
        return f"{value:.0f} MiB"
    return f"{value:,.0f} {unit}"


def describe(result: Result) -> str:
    if not result.ok:
        return result.status
    parts = [f"median {fmt(result.median, result.unit)}", f"p95 {fmt(result.p95, result.unit)}"]
    if result.successes is not None:
        parts.insert(0, f"{result.successes}/{result.attempts} ok")
    if result.wall_s is not None:
        parts.append(f"wall {fmt(result.wall_s)}")
    return ", ".join(parts)


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def to_json(results: dict[str, Result], rows: list[Row], meta: dict[str, Any]) -> dict[str, Any]:
    titles = {r.key: (r.section, r.title) for r in rows}
    out: dict[str, Any] = {"meta": meta, "rows": []}
    for key, result in results.items():
        section, title = titles[key]
        entry = {"key": key, "section": section, "title": title, **asdict(result)}
        entry["median"] = result.median
        entry["p95"] = result.p95
        out["rows"].append(entry)
    return out
