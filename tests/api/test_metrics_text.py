"""api/metrics_text.py writes what prometheus_client's generate_latest writes, byte for byte,
for every kind of family the daemon and the hub use and the rest (counters, gauges, histograms,
info, state sets, custom collectors), with the characters that must be escaped."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
    Summary,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hostd.api.metrics_text import render

AWKWARD = 'a "quoted" back\\slash, new\nline, ünïcode'


class Custom(Collector):
    def collect(self) -> Iterable[Metric]:
        gauge = GaugeMetricFamily("hostd_custom_bytes", f"help with {AWKWARD}", labels=["user"])
        gauge.add_metric(["alice"], 1.5)
        gauge.add_metric([AWKWARD], float("inf"), timestamp=1700000000.25)
        yield gauge
        counter = CounterMetricFamily("hostd_custom_ends", "ends", labels=["reason"])
        counter.add_metric(["oom-kill"], 3, created=1700000000.0)
        yield counter


def test_every_kind_of_family_is_written_as_generate_latest_writes_it() -> None:
    registry = CollectorRegistry()
    Gauge("hostd_sessions", "sessions", ["state"], registry=registry).labels("running").set(2)
    Counter("hostd_starts", "starts", registry=registry).inc()
    histogram = Histogram("hostd_spawn_seconds", "spawn", ["status"], registry=registry)
    histogram.labels("success").observe(0.7)
    Summary("hostd_requests_seconds", "requests", registry=registry).observe(0.01)
    Info("hostd_build", "build", registry=registry).info({"version": "0.1.0"})
    Enum("hostd_mode", "mode", states=["on", "off"], registry=registry).state("off")
    Gauge("hostd_nothing", "no samples", ["user"], registry=registry)
    registry.register(Custom())
    assert render(registry) == generate_latest(registry)


def test_an_empty_registry_is_empty() -> None:
    assert render(CollectorRegistry()) == generate_latest(CollectorRegistry()) == b""
