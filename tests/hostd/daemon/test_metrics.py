"""The daemon's Prometheus metrics: per-session gauges, the OOM kill count among them."""

from __future__ import annotations

from hostd.daemon.metrics import Metrics, SessionSample
from hostd.units.values import UsageView


def test_oom_kills_are_a_gauge_per_session() -> None:
    metrics = Metrics()
    sessions = [
        SessionSample(UsageView(user="alice", memory_bytes=1024, oom_kills=2), 2**30),
        SessionSample(UsageView(user="bob", memory_bytes=2048, oom_kills=0), None),
        SessionSample(UsageView(user="carol"), None),  # not measurable: no sample at all
    ]
    body, content_type = metrics.render(sessions, waiting=0)
    text = body.decode()
    assert content_type.startswith("text/plain")
    assert "# TYPE hostd_session_oom_kills gauge" in text
    assert 'hostd_session_oom_kills{user="alice"} 2.0' in text
    assert 'hostd_session_oom_kills{user="bob"} 0.0' in text
    assert 'hostd_session_oom_kills{user="carol"}' not in text
    assert "hostd_running_servers 3.0" in text
    # A session that ended leaves the gauges with the next scrape.
    text = metrics.render([], waiting=0)[0].decode()
    assert 'user="alice"' not in text
