"""Is a unit restarting over and over? (hostd/ layer, pure).

A service with Restart= that dies at once (hostd-hub on a port another process holds: issue 14,
F4) is, at any instant, either "active (running)" for the second its start takes or
"activating (auto-restart)" for its RestartSec=: one look at ActiveState calls it healthy.
hostd.cli.verify_host looks several times (``systemctl show`` of NRestarts, ActiveState,
SubState and ActiveEnterTimestampMonotonic) until each unit settles, and these functions judge
the looks: a unit is looping when its restart counter grew between the first look and the
last, or when a look finds it waiting to restart again (SubState auto-restart, NRestarts >= 1:
a unit that died once, at its first start, is watched one more round). A unit found waiting to
restart when the watch ends fails too, never "activating". A unit settles when it
has been active for SETTLE_S without a restart (longer than hostd-hub's start plus its
RestartSec=2, twice), or is stopped or failed (which the ordinary unit check judges).

Nothing here runs a command.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from hostd.cli.verify import HUB_UNIT, Check, UnitState

__all__ = [
    "JOURNAL_LINES",
    "RESTARTING_UNITS",
    "SETTLE_S",
    "SHOWN_LINES",
    "WATCH_S",
    "judge_restart_loop",
    "restart_looping",
    "settled",
]

# The units installed with Restart= (packaging/systemd): the ones that can loop.
RESTARTING_UNITS: Final = ("hostd.service", HUB_UNIT)
SETTLE_S: Final = 8.0
# verify looks at most this long (a unit still starting after that is judged as it is).
WATCH_S: Final = 20.0
# How many of the unit's own last journal lines verify reads to find the reason: a restart that
# is starting again when verify reads has already written its own lines after the last failure's
# (CI caught a window of 5 showing only the new attempt's lines), so read several attempts back.
JOURNAL_LINES: Final = 60
# How many lines the report shows under the failure: the ones up to the reason's line.
SHOWN_LINES: Final = 5
# A line that says why: a log level, a Python exception, an errno, or words of failure. Levels
# match in capitals only: "INFO uvicorn.error: Application shutdown complete." says nothing.
_ERROR_LINE = re.compile(
    r"\b(ERROR|CRITICAL|FATAL)\b|\b[A-Z]\w*(Error|Exception):|\[Errno \d+\]|"
    r"(?i:\b(failed|denied|refused|not found|no such file|cannot|can't|invalid|"
    r"address already in use)\b)"
)
_ADDRESS_IN_USE = re.compile(r"errno 98|address already in use", re.IGNORECASE)


def _waiting_to_restart(state: UnitState) -> bool:
    # systemd 252 says auto-restart; 254 and later also auto-restart-queued.
    return state.sub_state.startswith("auto-restart")


def restart_looping(looks: Sequence[UnitState]) -> bool:
    """True when a look finds the unit waiting to restart once more, or its counter grew."""
    if any(_waiting_to_restart(state) and (state.n_restarts or 0) >= 1 for state in looks):
        return True
    counts = [state.n_restarts for state in looks if state.n_restarts is not None]
    return len(counts) > 1 and counts[-1] > counts[0]


def settled(state: UnitState, now_us: int) -> bool:
    """True when more looks cannot change the verdict: active for SETTLE_S, or at rest."""
    if _waiting_to_restart(state):
        return False
    if state.active_state in ("inactive", "failed") or state.load_state != "loaded":
        return True
    return state.active_state == "active" and now_us - state.active_enter_us >= SETTLE_S * 1e6


def _reason(journal: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """The line that says why (the last one that reads like an error, else the last one) and
    the SHOWN_LINES lines that end with it."""
    lines = [line.strip() for line in journal if line.strip()]
    if not lines:
        return "its journal has no lines", ()
    errors = [at for at, line in enumerate(lines) if _ERROR_LINE.search(line)]
    end = errors[-1] if errors else len(lines) - 1
    return lines[end], tuple(lines[max(0, end + 1 - SHOWN_LINES) : end + 1])


def judge_restart_loop(
    looks: Sequence[UnitState], journal: Sequence[str], *, hub_config: str
) -> Check | None:
    """A failure when the looks at one unit show it restarting over and over, or waiting to
    restart at the last look (None: neither); journal: the unit's own last lines, the newest
    last; hub_config: hub.toml's path, for the fix when the hub's port is taken."""
    if not looks:
        return None
    unit = looks[-1].name
    short = unit.removesuffix(".service")
    reason, shown = _reason(journal)
    count = max(state.n_restarts or 0 for state in looks)
    if restart_looping(looks):
        restarts = f"{count} restart{'' if count == 1 else 's'} so far"
        detail = f"{short} is restarting over and over ({restarts}): {reason}"
    elif _waiting_to_restart(looks[-1]):
        detail = f"{short} died and is waiting to restart: {reason}"
    else:
        return None
    if unit == HUB_UNIT and _ADDRESS_IN_USE.search(reason):
        fix = (
            f"another process holds the hub's port: set another port in {hub_config} (or stop "
            f"that process: ss -ltnp), then systemctl restart {short}"
        )
    else:
        fix = f"journalctl -u {short} -n 50 says why; fix that, then systemctl restart {short}"
    return Check(f"unit {unit}", "fail", detail, fix, log=shown)
