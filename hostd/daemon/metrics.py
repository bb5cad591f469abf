"""Prometheus metrics of the daemon, named and bucketed like JupyterHub's (``hostd_`` prefix).

One registry per daemon (no globals), so tests can make as many as they like. Per-session
gauges are filled at scrape time from fresh cgroup readings; they carry a ``user`` label.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from hostd.units.values import UsageView

__all__ = [
    "Metrics",
    "SessionSample",
]

# jupyterhub/metrics.py: SERVER_SPAWN_DURATION_SECONDS, same buckets, same status label.
SPAWN_BUCKETS = (0.5, 1, 2.5, 5, 10, 15, 30, 60, 120, 180, 300, 600, float("inf"))


@dataclass(frozen=True)
class SessionSample:
    usage: UsageView
    mem_limit_bytes: int | None


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
            "hostd_server_stop_seconds", "time to stop a server", ["status"], registry=r
        )
        for status in ("success", "failure"):  # present from the start, as JupyterHub does
            self.spawn_duration.labels(status=status)
            self.stop_duration.labels(status=status)
        self.running = Gauge("hostd_running_servers", "sessions starting or running", registry=r)
        self.waiting = Gauge(
            "hostd_starts_waiting", "starts queued behind the concurrency limit", registry=r
        )
        labels = ["user"]
        self.memory = Gauge("hostd_session_memory_bytes", "memory in use", labels, registry=r)
        self.memory_limit = Gauge(
            "hostd_session_memory_limit_bytes", "MemoryMax", labels, registry=r
        )
        self.cpu_seconds = Gauge("hostd_session_cpu_seconds", "CPU time used", labels, registry=r)
        self.cpu_percent = Gauge(
            "hostd_session_cpu_percent", "recent CPU use, 100 = one core", labels, registry=r
        )
        self.tasks = Gauge("hostd_session_tasks", "tasks (threads)", labels, registry=r)
        self.oom_kills = Gauge(
            "hostd_session_oom_kills",
            "processes the kernel OOM-killed in the session (cgroup oom_kill)",
            labels,
            registry=r,
        )

    def render(self, sessions: Iterable[SessionSample], waiting: int) -> tuple[bytes, str]:
        gauges = (
            self.memory,
            self.memory_limit,
            self.cpu_seconds,
            self.cpu_percent,
            self.tasks,
            self.oom_kills,
        )
        for gauge in gauges:
            gauge.clear()
        count = 0
        for sample in sessions:
            count += 1
            u = sample.usage
            values = (
                u.memory_bytes,
                sample.mem_limit_bytes,
                u.cpu_seconds,
                u.cpu_percent,
                u.tasks,
                u.oom_kills,
            )
            for gauge, value in zip(gauges, values, strict=True):
                if value is not None:
                    gauge.labels(user=u.user).set(value)
        self.running.set(count)
        self.waiting.set(waiting)
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
