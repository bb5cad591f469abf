"""The collaborators every path of a session shares, wired once (host layer).

SessionManager builds one SessionParts and hands it to each part that acts on sessions (the
Starter, the Ends, the Lifecycle, the Reaper), so they are wired in one place and each
constructor names only what is its own. Frozen: the parts are fixed at start-up; what they hold
(the table, the store) changes, which parts they are does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hostd.config import Config
from hostd.daemon.admission import Admission
from hostd.daemon.metrics import Metrics
from hostd.daemon.store import Store
from hostd.daemon.systemd import SystemdSeam, UnitStatus
from hostd.daemon.table import SessionTable
from hostd.daemon.usage import OomWatcher, UsageSampler
from hostd.daemon.views import Views
from hostd.units import UNIT_PREFIX, UNIT_SUFFIX

__all__ = ["SessionParts"]


@dataclass(frozen=True, kw_only=True)
class SessionParts:
    """The config, systemd, the store and the in-memory state that sessions are run with."""

    config: Config
    systemd: SystemdSeam
    store: Store
    table: SessionTable
    admission: Admission
    views: Views
    sampler: UsageSampler
    oom: OomWatcher
    metrics: Metrics

    @property
    def credentials_dir(self) -> Path:
        """Where each session's token and secrets are written, a directory per unit."""
        return self.config.daemon.runtime_dir / "credentials"

    async def session_units(self) -> list[UnitStatus]:
        """Every ``jupyter-*.service`` that systemd has loaded, running or ended."""
        return await self.systemd.list_units(f"{UNIT_PREFIX}*{UNIT_SUFFIX}")
