"""When an idle session will be culled, and whether to warn of it yet (host layer; no I/O).

The reaper stops a session idle for longer than [capacity] idle_timeout; idle_warning seconds
before that its view carries ``cull_at`` (SessionView), so the hub can tell its user while
activity can still keep it. The idle clock is monotonic (UserEntry.active_at): a change of
the wall clock neither culls nor spares a session; ``cull_at`` is that moment in wall time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

__all__ = ["cull_at"]


def cull_at(
    active_at: float | None,
    *,
    idle_timeout_s: float,
    idle_warning_s: float,
    now_monotonic: float,
    now_wall: datetime,
) -> datetime | None:
    """When the session last active at ``active_at`` (monotonic) will be culled, once that is
    at most ``idle_warning_s`` away; None while it is further, with no cull or no warning."""
    if active_at is None or idle_timeout_s <= 0 or idle_warning_s <= 0:
        return None
    left = active_at + idle_timeout_s - now_monotonic
    if left > idle_warning_s:
        return None
    # Past due: the reaper culls it on its next round (within REAP_INTERVAL_S).
    when = now_wall + timedelta(seconds=max(0.0, left))
    # In whole seconds, rounded up: two views a moment apart read the two clocks microseconds
    # apart, and a user is told one time, not a new one at every look (a test saw 854493 and
    # 854494 microseconds for the same session).
    return when.replace(microsecond=0) + timedelta(seconds=1 if when.microsecond else 0)
