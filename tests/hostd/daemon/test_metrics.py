"""The daemon's Prometheus metrics: counters for what only grows, base units, status labels
from the start, the host's capacity and commitment, a build-info series."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from hostd.daemon.metrics import Metrics, SessionSample
from hostd.units.values import HostView, UsageView

HOST = HostView(
    memory_total_bytes=8 * 2**30,
    memory_available_bytes=6 * 2**30,
    cpus=2,
    sessions_running=2,
    memory_limits_bytes=3 * 2**30,
    cpu_limits=1.5,
    memory_capacity_bytes=7 * 2**30,
    starts_waiting=0,
)


def families(text: str) -> dict[str, tuple[str, list[tuple[dict[str, str], float]]]]:
    """name -> (type, [(labels, value)]), as a scraper reads the exposition."""
    return {
        family.name: (family.type, [(s.labels, s.value) for s in family.samples])
        for family in text_string_to_metric_families(text)
    }


def test_growing_session_values_are_counters_ending_in_total() -> None:
    metrics = Metrics()
    sessions = [
        SessionSample(
            UsageView(user="alice", memory_bytes=1024, oom_kills=2, cpu_seconds=12.5), 2**30
        ),
        SessionSample(UsageView(user="bob", memory_bytes=2048, oom_kills=0), None),
        SessionSample(UsageView(user="carol"), None),  # not measurable: no sample at all
    ]
    body, content_type = metrics.render(sessions, waiting=0, host=HOST)
    text = body.decode()
    assert content_type.startswith("text/plain")
    assert "# TYPE hostd_session_oom_kills_total counter" in text
    assert 'hostd_session_oom_kills_total{user="alice"} 2.0' in text
    assert 'hostd_session_oom_kills_total{user="bob"} 0.0' in text
    assert 'hostd_session_cpu_seconds_total{user="alice"} 12.5' in text
    assert 'user="carol"' not in text
    assert "hostd_running_servers 3.0" in text
    seen = families(text)
    assert seen["hostd_session_cpu_seconds"][0] == "counter"
    assert seen["hostd_session_memory_bytes"][0] == "gauge"
    # No percent: CPU use is rate(hostd_session_cpu_seconds_total[1m]).
    assert "percent" not in text
    # A session that ended leaves the series with the next scrape.
    text = metrics.render([], waiting=0)[0].decode()
    assert 'user="alice"' not in text


def test_each_gpu_held_is_one_series_labelled_by_user_and_gpu() -> None:
    sessions = [
        SessionSample(UsageView(user="alice"), None, (0, 2)),
        SessionSample(UsageView(user="bob"), None),
    ]
    seen = families(Metrics().render(sessions, waiting=0)[0].decode())
    assert seen["hostd_session_gpu"] == (
        "gauge",
        [({"user": "alice", "gpu": "0"}, 1.0), ({"user": "alice", "gpu": "2"}, 1.0)],
    )


def test_status_labels_exist_before_any_start_or_stop() -> None:
    text = Metrics().render([], waiting=0)[0].decode()
    for name in ("hostd_server_spawn_duration_seconds", "hostd_server_stop_seconds"):
        for status in ("success", "failure"):
            assert f'{name}_count{{status="{status}"}} 0.0' in text


def test_host_capacity_commitment_and_build_info() -> None:
    seen = families(Metrics().render([], waiting=1, host=HOST)[0].decode())
    assert seen["hostd_host_memory_capacity_bytes"] == ("gauge", [({}, 7 * 2**30)])
    assert seen["hostd_host_memory_committed_bytes"] == ("gauge", [({}, 3 * 2**30)])
    assert seen["hostd_host_cpus"] == ("gauge", [({}, 2)])
    assert seen["hostd_host_cpus_committed"] == ("gauge", [({}, 1.5)])
    assert seen["hostd_starts_waiting"] == ("gauge", [({}, 1)])
    (labels, value), *_ = seen["hostd_build_info"][1]
    assert value == 1 and labels["version"] and labels["python"]
