"""Named servers in the daemon: the count a user may run and the user's slice (host layer).

Where [session] named_server_limit is 0 (the default) none of this runs: every session is
``jupyter-<user>.service`` in jupyter.slice, as before. Above 0, every server of a user (the
default one too) runs in the transient slice ``jupyter-<user>.slice`` (hostd.units.servers),
which carries the user's total limits: the [session] mem_limit and cpu_limit the user's
profile resolves to. The slice is started before the first server and stopped once the last
one has ended, so a stop leaves no unit behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from hostd.daemon.systemd import SystemdSeam, UnitStatus
from hostd.daemon.views import ACTIVE
from hostd.units import SessionPolicy
from hostd.units.errors import TooManyServers
from hostd.units.servers import (
    key_for_unit_name,
    split_session_key,
    user_slice_for,
    user_slice_spec,
)

__all__ = ["UserSlices", "check_server_count", "servers_of"]

log = logging.getLogger(__name__)


def servers_of(user: str, units: list[UnitStatus]) -> list[str]:
    """The keys of the user's active servers (default and named) among units."""
    keys = []
    for status in units:
        key = key_for_unit_name(status.name)
        if key is not None and status.active_state in ACTIVE and split_session_key(key)[0] == user:
            keys.append(key)
    return keys


def check_server_count(key: str, policy: SessionPolicy, running: list[str]) -> None:
    """TooManyServers when key names a server the user may not start now: named servers off,
    or named_server_limit of them already running (key itself excepted: a start of a running
    server is no new one)."""
    user, server = split_session_key(key)
    if not server:
        return
    limit = policy.named_server_limit
    if limit == 0:
        raise TooManyServers(
            f"named servers are off on this host ([session] named_server_limit = 0): "
            f"{user} may run only the default server"
        )
    named = [other for other in running if other != key and split_session_key(other)[1]]
    if len(named) >= limit:
        raise TooManyServers(
            f"{user} already runs {len(named)} named servers, the most allowed "
            f"([session] named_server_limit = {limit}); stop one first"
        )


class UserSlices:
    """Start a user's slice before a server, stop it after the last one (one lock per user:
    two servers of one user starting at once make one slice)."""

    def __init__(self, systemd: SystemdSeam) -> None:
        self.systemd = systemd
        self._locks: dict[str, asyncio.Lock] = {}
        # Starts under way per user: a server that ends meanwhile must not stop the slice
        # the starting one is about to run in.
        self._starting: dict[str, int] = {}

    def _lock(self, user: str) -> asyncio.Lock:
        return self._locks.setdefault(user, asyncio.Lock())

    @contextlib.asynccontextmanager
    async def starting(self, user: str, policy: SessionPolicy) -> AsyncIterator[str]:
        """The user's slice (ensure), kept running while the block starts a server in it."""
        self._starting[user] = self._starting.get(user, 0) + 1
        try:
            yield await self.ensure(user, policy)
        finally:
            self._starting[user] -= 1
            if not self._starting[user]:
                del self._starting[user]

    async def ensure(self, user: str, policy: SessionPolicy) -> str:
        """The user's slice, started with the user's total limits if it is not running."""
        name = user_slice_for(user)
        async with self._lock(user):
            if await self.systemd.active_state(name) in ACTIVE:
                return name
            spec = user_slice_spec(user, policy.mem_limit, policy.cpu_limit)
            job = await self.systemd.start_unit(spec)
            log.info(
                "started %s (mem_limit=%s cpu_limit=%s): %s",
                name,
                policy.mem_limit,
                policy.cpu_limit,
                job,
                extra={"HOSTD_USER": user, "UNIT": name},
            )
        return name

    async def release(self, user: str, units: list[UnitStatus]) -> None:
        """Stop the user's slice when none of the user's servers is active any more."""
        if servers_of(user, units):
            return
        name = user_slice_for(user)
        async with self._lock(user):
            if self._starting.get(user) or await self.systemd.active_state(name) is None:
                return
            job = await self.systemd.stop_unit(name)
            log.info("stopped %s: %s", name, job, extra={"HOSTD_USER": user, "UNIT": name})
