"""Prometheus metrics of the daemon, named and bucketed like JupyterHub's (``hostd_`` prefix).

One registry per daemon (no globals), so tests can make as many as they like. The per-session
and host series are read at scrape time (fresh cgroup readings, the host's totals) by a
collector that yields them from the render's samples; no gauge is cleared and re-filled.

Hygiene (https://prometheus.io/docs/practices/naming/): what only grows is a counter whose
name ends in ``_total`` (a session's CPU seconds and OOM kills: ``rate()`` over a gauge breaks at
every restart, over a counter it sees the reset); base units only (seconds, bytes; CPU use as a
rate of ``hostd_session_cpu_seconds_total``, not a percent); every status label value exists
from the start, so a failure rate is 0 before the first failure, not absent.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from hostd.units.buckets import SPAWN_BUCKETS, STOP_BUCKETS
from hostd.units.values import HostView, UsageView

__all__ = [
    "Metrics",
    "SessionSample",
]


def _version() -> str:
    try:
        return version("hostd")
    except PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class SessionSample:
    usage: UsageView
    mem_limit_bytes: int | None
    gpus: tuple[int, ...] = ()  # the GPUs it holds (its unit's HOSTD_GPUS)
    profile: str | None = None  # the [[profile_list]] slug: from the config, so bounded


class _ScrapeCollector(Collector):
    """The series of one scrape: the sessions' and the host's, as handed to ``render``."""

    def __init__(self) -> None:
        self.sessions: Sequence[SessionSample] = ()
        self.host: HostView | None = None

    def describe(self) -> Iterable[Metric]:
        return ()  # unchecked: the registry's auto_describe must not collect at registration

    def collect(self) -> Iterator[Metric]:
        yield from self._session_series()
        if self.host is not None:
            yield from _host_series(self.host)

    def _session_series(self) -> Iterator[Metric]:
        labels = ["user"]
        memory = GaugeMetricFamily("hostd_session_memory_bytes", "memory in use", labels=labels)
        peak = GaugeMetricFamily(
            "hostd_session_memory_peak_bytes", "most memory used at once", labels=labels
        )
        limit = GaugeMetricFamily("hostd_session_memory_limit_bytes", "MemoryMax", labels=labels)
        # Counters: they only grow while the session lives and start again from 0 with it.
        cpu = CounterMetricFamily(
            "hostd_session_cpu_seconds", "CPU time used since the session started", labels=labels
        )
        throttled = CounterMetricFamily(
            "hostd_session_cpu_throttled_seconds",
            "time the session's tasks waited, throttled by CPUQuota",
            labels=labels,
        )
        oom = CounterMetricFamily(
            "hostd_session_oom_kills",
            "processes the kernel OOM-killed in the session (cgroup oom_kill)",
            labels=labels,
        )
        tasks = GaugeMetricFamily("hostd_session_tasks", "tasks (threads)", labels=labels)
        # One series per GPU held: a GPU has one holder at a time, so there are never more
        # series than [gpus] lists GPUs.
        gpu = GaugeMetricFamily(
            "hostd_session_gpu", "1 for each GPU the session holds", labels=["user", "gpu"]
        )
        # An info series (1 per session started with a choice) rather than a label on every
        # series above: their label sets stay as they were for hosts without choices.
        profile = GaugeMetricFamily(
            "hostd_session_profile",
            "the [[profile_list]] choice the session was started with",
            labels=["user", "profile"],
        )
        for sample in self.sessions:
            for index in sample.gpus:
                gpu.add_metric([sample.usage.user, str(index)], 1)
            u = sample.usage
            pairs = (
                (memory, u.memory_bytes),
                (peak, u.memory_peak_bytes),
                (limit, sample.mem_limit_bytes),
                (cpu, u.cpu_seconds),
                (throttled, u.cpu_throttled_seconds),
                (oom, u.oom_kills),
                (tasks, u.tasks),
            )
            for family, value in pairs:
                if value is not None:
                    family.add_metric([u.user], value)
            if sample.profile is not None:
                profile.add_metric([u.user, sample.profile], 1)
        yield from (memory, peak, limit, cpu, throttled, oom, tasks, gpu)
        if profile.samples:
            yield profile


def _host_series(host: HostView) -> Iterator[Metric]:
    # What the host has and what the running sessions are promised of it (their limits), so
    # an alert can compare commitment with capacity.
    series = (
        ("hostd_host_memory_bytes", "the machine's memory", host.memory_total_bytes),
        ("hostd_host_memory_available_bytes", "memory available now", host.memory_available_bytes),
        (
            "hostd_host_memory_capacity_bytes",
            "what all sessions together may be promised (the admitted share of memory)",
            host.memory_capacity_bytes,
        ),
        (
            "hostd_host_memory_committed_bytes",
            "the sum of the running sessions' memory limits",
            host.memory_limits_bytes,
        ),
        ("hostd_host_cpus", "CPUs of the machine", host.cpus),
        (
            "hostd_host_cpus_committed",
            "the sum of the running sessions' CPU limits, in CPUs",
            host.cpu_limits,
        ),
    )
    for name, documentation, value in series:
        yield GaugeMetricFamily(name, documentation, value=value)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.spawn_duration = Histogram(
            "hostd_server_spawn_duration_seconds",
            "time from a start request to a server that answers (or to its failure)",
            ["status"],
            buckets=SPAWN_BUCKETS,
            registry=r,
        )
        self.stop_duration = Histogram(
            "hostd_server_stop_seconds",
            "time to stop a server",
            ["status"],
            buckets=STOP_BUCKETS,
            registry=r,
        )
        for status in ("success", "failure"):  # present from the start, as JupyterHub does
            self.spawn_duration.labels(status=status)
            self.stop_duration.labels(status=status)
        self.running = Gauge("hostd_running_servers", "sessions starting or running", registry=r)
        self.waiting = Gauge(
            "hostd_starts_waiting", "starts queued behind the concurrency limit", registry=r
        )
        build = Gauge(
            "hostd_build_info", "the daemon's version (always 1)", ["version", "python"], registry=r
        )
        build.labels(version=_version(), python=platform.python_version()).set(1)
        self._scrape = _ScrapeCollector()
        r.register(self._scrape)

    def render(
        self, sessions: Iterable[SessionSample], waiting: int, host: HostView | None = None
    ) -> tuple[bytes, str]:
        # No await between setting the samples and reading them: one scrape at a time.
        self._scrape.sessions = samples = tuple(sessions)
        self._scrape.host = host
        self.running.set(len(samples))
        self.waiting.set(waiting)
        try:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        finally:
            self._scrape.sessions, self._scrape.host = (), None
