"""The hub's shared state: one object, made once by build_hub_app, closed at shutdown (api layer).

Everything a request may need and nothing else: the config, the database, the daemon's
client, sessions (who is asking), servers (pending starts and stops), the proxy's routes and
activity reports, the admin's maintenance notices, the Prometheus series, the templates, and
the one pooled HTTP client for forwarded requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Final

from starlette.templating import Jinja2Templates

from hostd.api.client import HostdClient
from hostd.api.hub.db import HubStore
from hostd.api.hub.identity import Sessions
from hostd.api.hub.metrics import HubMetrics
from hostd.api.hub.notices import Notices
from hostd.api.hub.present import cpus, cpus_used, meter_level, meter_words, without_own_timestamp
from hostd.api.hub.routes import Activity, Routes
from hostd.api.hub.servers import Servers
from hostd.api.hub.settings import HubConfig
from hostd.api.hub.upstream import Upstreams
from hostd.units.choices import describe_limits
from hostd.units.failures import describe_oom_kills
from hostd.units.sizes import format_size

__all__ = ["STATE_LABELS", "STATIC_DIR", "TEMPLATES_DIR", "Hub"]

TEMPLATES_DIR: Final = Path(__file__).with_name("templates")
STATIC_DIR: Final = Path(__file__).with_name("static")
# What the pages call a server's state: Cockpit's words for a service (issue 16). The one
# place they are set; the templates show them through the "state_label" filter.
STATE_LABELS: Final = MappingProxyType(
    {
        "starting": "Starting",
        "running": "Running",
        "stopping": "Stopping",
        "stopped": "Not running",
        "failed": "Failed to start",
    }
)


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=TEMPLATES_DIR)
    templates.env.filters["size"] = lambda value: "–" if value is None else format_size(value)
    templates.env.filters["when"] = lambda value: (
        "–" if value is None else f"{value:%Y-%m-%d %H:%M} UTC"
    )
    # "kernel killed: out of memory (2 processes)", or None: a kernel that died alone.
    templates.env.filters["oom"] = describe_oom_kills
    templates.env.filters["state_label"] = lambda state: STATE_LABELS.get(state, state)
    # How the pages say use, limits and log lines (hostd.api.hub.present).
    templates.env.filters["level"] = meter_level
    templates.env.filters["level_words"] = meter_words
    templates.env.filters["cpus"] = cpus
    templates.env.filters["cpus_used"] = cpus_used
    templates.env.filters["own_words"] = without_own_timestamp
    templates.env.filters["choice_limits"] = describe_limits
    return templates


@dataclass
class Hub:
    config: HubConfig
    store: HubStore
    daemon: HostdClient
    sessions: Sessions
    servers: Servers
    routes: Routes
    activity: Activity
    notices: Notices
    metrics: HubMetrics = field(default_factory=HubMetrics)
    templates: Jinja2Templates = field(default_factory=_templates)
    upstream: Upstreams | None = None

    def http(self) -> Upstreams:
        """The proxy's pooled client to the servers, made on first use (not in a constructor)."""
        if self.upstream is None:
            self.upstream = Upstreams()
        return self.upstream

    async def aclose(self) -> None:
        await self.servers.aclose()
        await self.activity.aclose()
        await self.routes.aclose()
        if self.upstream is not None:
            await self.upstream.aclose()
            self.upstream = None
        await self.daemon.aclose()
