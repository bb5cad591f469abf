"""Histogram buckets JupyterHub's dashboards expect (jupyterhub/metrics.py), shared by the
daemon's ``hostd_`` series and the hub's ``jupyterhub_`` series so both read alike."""

from __future__ import annotations

from typing import Final

__all__ = ["SPAWN_BUCKETS", "STOP_BUCKETS"]

# SERVER_SPAWN_DURATION_SECONDS: a start takes seconds to minutes.
SPAWN_BUCKETS: Final = (0.5, 1, 2.5, 5, 10, 15, 30, 60, 120, 180, 300, 600, float("inf"))
# SERVER_STOP_DURATION_SECONDS: a stop takes milliseconds to seconds.
STOP_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, float("inf"),
)  # fmt: skip
