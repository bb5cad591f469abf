"""Prometheus's text format of a prometheus_client registry, for the daemon's and the hub's
/metrics (api layer; runs in whichever process serves them).

Why not ``prometheus_client.exposition.generate_latest``: that module also holds the library's
HTTP servers and push gateway client, and importing it loads http.server, socketserver,
wsgiref, urllib.request and gzip: 3.6 MiB of RSS in each of the daemon and the hub (issue 17's
footprint target counts both; README, Benchmarks). The metrics, the registry and the escaping
stay prometheus_client's (``prometheus_client.openmetrics.exposition``, which loads nothing
more); this is the text format's loop over them, written as generate_latest (0.2x) writes it.
tests/api/test_metrics_text.py holds the two to the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, cast

from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

__all__ = ["TEXT_FORMAT", "render"]

# What render writes: the classic text format every Prometheus 2 reads (prometheus_client's
# CONTENT_TYPE_LATEST names a newer one).
TEXT_FORMAT: Final = "text/plain; version=0.0.4; charset=utf-8"

# OpenMetrics' own samples of a family, written as gauges after it in the text format.
_OPENMETRICS_SUFFIXES: Final = ("_created", "_gsum", "_gcount")
_TYPE_IN_TEXT: Final = {"info": "gauge", "stateset": "gauge", "gaugehistogram": "histogram",
                        "unknown": "untyped"}  # fmt: skip
_ESCAPING: Final = openmetrics.UNDERSCORES  # generate_latest's default
_go_float = cast(Callable[[float], str], floatToGoString)  # untyped in the library


def _name(name: str) -> str:
    return str(openmetrics.escape_metric_name(name, _ESCAPING))


def _help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def _label_value(value: str) -> str:
    # Label values may be any UTF-8: only the backslash, newline and double quote are escaped.
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _sample_line(sample: Sample) -> str:
    labels = ",".join(
        f'{openmetrics.escape_label_name(k, _ESCAPING)}="{_label_value(v)}"'
        for k, v in sorted(sample.labels.items())
    )
    stamp = "" if sample.timestamp is None else f" {int(float(sample.timestamp) * 1000):d}"
    braces = f"{{{labels}}}" if labels else ""
    return f"{_name(sample.name)}{braces} {_go_float(sample.value)}{stamp}\n"


def render(registry: Collector) -> bytes:
    """The registry's metrics in Prometheus's text format (what generate_latest returns)."""
    output: list[str] = []
    for metric in registry.collect():
        name, kind = metric.name, metric.type
        if kind == "counter":
            name += "_total"
        elif kind == "info":
            name += "_info"
        kind = _TYPE_IN_TEXT.get(kind, kind)
        output.append(f"# HELP {_name(name)} {_help(metric.documentation)}\n")
        output.append(f"# TYPE {_name(name)} {kind}\n")
        extra: dict[str, list[str]] = {}
        for sample in metric.samples:
            suffix = next(
                (s for s in _OPENMETRICS_SUFFIXES if sample.name == metric.name + s), None
            )
            if suffix is None:
                output.append(_sample_line(sample))
            else:
                extra.setdefault(suffix, []).append(_sample_line(sample))
        for suffix, lines in sorted(extra.items()):
            output.append(f"# HELP {_name(metric.name + suffix)} {_help(metric.documentation)}\n")
            output.append(f"# TYPE {_name(metric.name + suffix)} gauge\n")
            output.extend(lines)
    return "".join(output).encode("utf-8")
