"""What the home and admin pages need for their charts, asked of the daemon (api layer).

A chart is an extra: when the daemon cannot give a history (an older daemon, a session that
just ended), the page shows without it, never an error page.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from hostd.api.client import HostdClient
from hostd.api.hub.charts import cpu_chart, host_memory_chart, memory_chart, memory_sparkline
from hostd.units.errors import HostdError
from hostd.units.history import UsageHistoryView

__all__ = ["ADMIN_HOST_WINDOW", "admin_charts", "home_charts"]

log = logging.getLogger(__name__)

# The host's promises change at starts and stops: a day shows the pattern, an hour would not.
ADMIN_HOST_WINDOW = "24h"


async def home_charts(daemon: HostdClient, user: str) -> dict[str, Any]:
    """The user's memory and CPU over the last hour: {"charts": [...]} ([] without history)."""
    try:
        history = await daemon.usage_history(user, window="1h")
    except HostdError as exc:
        log.debug("no usage history of %s: %s", user, exc.message)
        return {"charts": []}
    return {"charts": [memory_chart(history), cpu_chart(history)]}


async def admin_charts(daemon: HostdClient, users: Iterable[str]) -> dict[str, Any]:
    """A sparkline of each running session's memory, and the host's promised memory."""
    names = list(users)
    answers = await asyncio.gather(
        *(daemon.usage_history(name, window="1h") for name in names), return_exceptions=True
    )
    sparklines = [
        memory_sparkline(answer) for answer in answers if isinstance(answer, UsageHistoryView)
    ]
    try:
        host = host_memory_chart(await daemon.host_history(window=ADMIN_HOST_WINDOW))
    except HostdError as exc:
        log.debug("no host history: %s", exc.message)
        host = None
    return {"sparklines": sparklines, "host_chart": host}
