"""Sessions: one transient systemd unit per user (host layer; implements SessionService).

State lives in systemd: every answer about a session is read from its unit (its properties), so a
daemon killed with -9 loses nothing; on start-up it lists ``jupyter-*.service`` and carries on.
The store keeps history (who, when, limits, how it ended). What lives only in memory is cheap
to rebuild, one entry per user in a SessionTable: the port its session holds (also in the
unit's HOSTD_PORT) and a lock, so a start and a stop of the same user never interleave.

SessionManager is the one object the API is handed; it wires the parts, each a module of its
own and testable without systemd: lifecycle (start, stop, read, limits; its starter starts a
session, its ends record how one ended), admission (the bounds on starts), reaper (reattach,
reap, cull) and views. What they share it builds once, a SessionParts (session_parts).
"""

from __future__ import annotations

import asyncio
import builtins
import os
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from hostd.config import Config
from hostd.daemon import credentials, journal
from hostd.daemon.admission import Admission
from hostd.daemon.choices import profile_views
from hostd.daemon.history import HostHistory
from hostd.daemon.hostmem import host_memory
from hostd.daemon.lifecycle import Lifecycle
from hostd.daemon.login import AccountPamCheck, Authenticator
from hostd.daemon.maintenance import Maintenance
from hostd.daemon.metrics import Metrics, SessionSample
from hostd.daemon.reaper import Reaper
from hostd.daemon.session_parts import SessionParts
from hostd.daemon.sockets import check_address
from hostd.daemon.store import Store
from hostd.daemon.systemd import SystemdClient, SystemdSeam, UnitStatus
from hostd.daemon.table import SessionTable
from hostd.daemon.usage import MIN_CPU_SPAN_S, OomWatcher, UsageSampler
from hostd.daemon.users import group_names, lookup_session_user, name_for_uid, user_in_group
from hostd.daemon.views import ACTIVE, ListenerProbe, Views, host_view
from hostd.units import (
    SessionRequest,
    cpu_limit_of,
)
from hostd.units.choices import ProfileView
from hostd.units.errors import PermissionDenied, SessionNotFound
from hostd.units.gpus import gpus_of_environment
from hostd.units.history import HistoryWindow, HostHistoryView, UsageHistoryView
from hostd.units.maintenance import Drain, MaintenanceView
from hostd.units.servers import key_for_unit_name, unit_name_for_key, validate_session_key
from hostd.units.values import (
    AccountView,
    AuthResult,
    Caller,
    Credentials,
    HostView,
    LogLine,
    PeerCredentials,
    PolicyView,
    SessionView,
    StartOutcome,
    UsageView,
)

if TYPE_CHECKING:
    from hostd.api.service import SessionService

__all__ = ["SessionManager"]


class SessionManager:
    """The daemon's SessionService. Create with ``await SessionManager.create(config)``."""

    def __init__(
        self,
        config: Config,
        systemd: SystemdSeam,
        store: Store,
        *,
        sampler: UsageSampler | None = None,
        memory_total: int = 0,
        probe: ListenerProbe = check_address,
        account_check: AccountPamCheck | None = None,
    ) -> None:
        """No I/O here: create() reads what these need (mountinfo, the RAM) and passes it.
        ``probe`` tells who answers on a session's address (a fake's, in tests without systemd);
        ``account_check`` replaces PAM's account check (tests over FakeSystemd only)."""
        self.config = config
        self.systemd = systemd
        self.store = store
        self.sampler = UsageSampler(None) if sampler is None else sampler
        self.oom = OomWatcher()
        self.metrics_registry = Metrics()
        self.table = SessionTable()
        self.admission = Admission(config, self.table, memory_total)
        self.views = Views(config, store, self.table, self.oom, probe=probe)
        self.authenticator = Authenticator(config.auth, config.daemon, account_check=account_check)
        self.parts = SessionParts(
            config=config,
            systemd=systemd,
            store=store,
            table=self.table,
            admission=self.admission,
            views=self.views,
            sampler=self.sampler,
            oom=self.oom,
            metrics=self.metrics_registry,
        )
        self.lifecycle = Lifecycle(self.parts, check_account=self.authenticator.check_account)
        self.maintenance_state = Maintenance(store)
        self.host_rings = HostHistory()
        self.reaper = Reaper(
            self.parts,
            ends=self.lifecycle.ends,
            maintenance=self.maintenance_state,
            host_history=self.host_rings,
        )

    @classmethod
    async def create(cls, config: Config) -> SessionManager:
        systemd = await SystemdClient.connect()
        store = await asyncio.to_thread(Store.open, config.daemon.state_dir / "hostd.sqlite")
        manager = cls(
            config,
            systemd,
            store,
            sampler=UsageSampler.load(),
            memory_total=host_memory().total,
        )
        await manager.cap_slice()
        await manager.maintenance_state.load()
        await manager.reaper.reattach()
        manager.reaper.start()
        return manager

    async def close(self) -> None:
        await self.reaper.close()
        self.oom.close()
        await self.systemd.close()
        await asyncio.to_thread(self.store.close)

    # -- SessionService -------------------------------------------------------------------

    def authorize(self, peer: PeerCredentials | None) -> Caller:
        if peer is None:
            raise PermissionDenied("no peer credentials: connect over the daemon's Unix socket")
        if peer.uid == 0:
            return Caller(uid=0, name="root", privileged=True, acts_for_others=True)
        group = self.config.daemon.socket_group
        if user_in_group(peer.uid, group):
            name = name_for_uid(peer.uid)
            acts_for_others = name in self.config.daemon.act_for_others
            return Caller(
                uid=peer.uid, name=name, privileged=False, acts_for_others=acts_for_others
            )
        raise PermissionDenied(f"uid {peer.uid} is neither root nor in group {group!r}")

    async def start(
        self,
        user: str,
        request: SessionRequest,
        *,
        caller: Caller,
        wait: bool = True,
        command: str | None = None,
        secrets: Mapping[str, str] | None = None,
        profile: str | None = None,
        server: str = "",
    ) -> StartOutcome:
        # Whoever asks, root too: a drained host is emptied for a reboot (drain --cancel
        # opens it again).
        self.maintenance_state.check_start()
        return await self.lifecycle.start(
            user,
            request,
            caller=caller,
            wait=wait,
            command=command,
            secrets=secrets,
            profile=profile,
            server=server,
        )

    async def stop(self, user: str, *, caller: Caller) -> SessionView:
        return await self.lifecycle.stop(user, caller=caller)

    async def get(self, user: str) -> SessionView:
        return await self.lifecycle.get(user)

    async def list(self) -> builtins.list[SessionView]:
        return await self.lifecycle.list()

    async def set_limits(
        self, user: str, *, mem_limit: int | None, cpu_limit: float | None, caller: Caller
    ) -> SessionView:
        return await self.lifecycle.set_limits(
            user, mem_limit=mem_limit, cpu_limit=cpu_limit, caller=caller
        )

    async def logs(self, user: str, *, lines: int) -> builtins.list[LogLine]:
        return await journal.tail(unit_name_for_key(validate_session_key(user)), lines)

    def follow(self, user: str, *, cursor: str | None) -> AsyncIterator[LogLine]:
        return journal.follow(unit_name_for_key(validate_session_key(user)), cursor=cursor)

    async def health(self) -> dict[str, Any]:
        version = await self.systemd.version()
        running = sum(1 for v in await self.list() if v.state in ("starting", "running"))
        return {"status": "ok", "systemd": version, "sessions": running}

    async def usage(self, user: str) -> UsageView:
        name = validate_session_key(user)
        status = await self.systemd.unit_status(unit_name_for_key(name))
        if status is None or status.active_state not in ACTIVE:
            raise SessionNotFound(f"{name} has no running session")
        cpu_limit = cpu_limit_of(status.cpu_quota_usec)
        usage = self.sampler.read(name, status.control_group, cpu_limit=cpu_limit)
        if usage is not None and not self.sampler.has_fresh_pair(name):
            # No recent sample to compare with: measure over a short interval now.
            await asyncio.sleep(MIN_CPU_SPAN_S + 0.05)  # a timer may fire a little early
            usage = self.sampler.read(name, status.control_group, cpu_limit=cpu_limit) or usage
        return self.sampler.view(name, usage, cpu_limit)

    async def usage_history(self, user: str, *, window: HistoryWindow) -> UsageHistoryView:
        name = validate_session_key(user)
        history = self.sampler.history
        if not history.has(name):
            # No reading yet: a session that just started has an empty history, no session none.
            status = await self.systemd.unit_status(unit_name_for_key(name))
            if status is None or status.active_state not in ACTIVE:
                raise SessionNotFound(f"{name} has no running session")
        return history.view(name, window)

    async def host_history(self, *, window: HistoryWindow) -> HostHistoryView:
        return self.host_rings.view(window)

    async def token(self, user: str) -> str:
        name = validate_session_key(user)
        if self.table.record_id(name) is None:
            raise SessionNotFound(f"{name} has no running session")
        try:
            return await asyncio.to_thread(
                credentials.read_token, self.parts.credentials_dir, unit_name_for_key(name)
            )
        except FileNotFoundError:
            raise SessionNotFound(f"{name} has no running session") from None

    async def host(self) -> HostView:
        return self._host_of(await self.parts.session_units())

    def _host_of(self, units: Iterable[UnitStatus]) -> HostView:
        memory = host_memory()
        return host_view(
            (s for s in units if s.active_state in ACTIVE),
            memory_total=memory.total,
            memory_available=memory.available,
            cpus=os.cpu_count() or 1,
            memory_capacity=self.admission.memory_capacity(),
            waiting=self.admission.waiting,
        )

    async def policy(self) -> PolicyView:
        source = self.config.source
        return PolicyView.of(
            self.config.session,
            commands=self.config.commands,
            config_file=None if source is None else str(source),
        )

    async def activity(self, user: str, *, caller: Caller) -> None:
        name = validate_session_key(user)
        if self.table.record_id(name) is None:
            raise SessionNotFound(f"{name} has no running session")
        self.table[name].active_at = time.monotonic()

    async def maintenance(self) -> MaintenanceView:
        return self.maintenance_state.view

    async def set_announcement(self, text: str | None, *, caller: Caller) -> MaintenanceView:
        return await self.maintenance_state.announce(text, caller=caller)

    async def set_drain(self, drain: Drain | None, *, caller: Caller) -> MaintenanceView:
        return await self.maintenance_state.drain(drain, caller=caller)

    async def metrics(self) -> tuple[bytes, str]:
        samples = []
        units = await self.parts.session_units()  # one D-Bus read for the sessions and the host
        for status in units:
            name = key_for_unit_name(status.name)
            if name is None or status.active_state not in ACTIVE:
                continue
            cpu_limit = cpu_limit_of(status.cpu_quota_usec)
            usage = self.sampler.read(name, status.control_group, cpu_limit=cpu_limit)
            view = self.sampler.view(name, usage, cpu_limit)
            gpus = gpus_of_environment(status.env("HOSTD_GPUS"))
            samples.append(
                SessionSample(view, status.memory_max, gpus, self.table.profile_slug(name))
            )
        return self.metrics_registry.render(samples, self.admission.waiting, self._host_of(units))

    async def authenticate(self, credentials: Credentials) -> AuthResult:
        return await self.authenticator.authenticate(credentials)

    async def account(self, user: str) -> AccountView:
        return await self.authenticator.account(user)

    async def profiles(self, user: str) -> builtins.list[ProfileView]:
        daemon = self.config.daemon
        info = await lookup_session_user(user, daemon)
        groups = await asyncio.to_thread(group_names, info.name, info.gid)
        return profile_views(self.config, info.name, groups)

    async def cap_slice(self) -> None:
        """jupyter.slice's MemoryMax (see Admission.cap_slice)."""
        await self.admission.cap_slice(self.systemd)

    async def reattach(self) -> None:
        await self.reaper.reattach()

    async def reap(self) -> None:
        await self.reaper.reap()


if TYPE_CHECKING:
    # The daemon's SessionService, checked by mypy here at the class, not only where hostd serve
    # hands it to the HTTP face (build_daemon_app).
    _: type[SessionService] = SessionManager
