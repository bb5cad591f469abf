"""The start of a session, until its server listens or the start fails (host layer).

A start looks the account up and asks PAM's account management (a locked or expired account
gets no session, whoever asks), allocates a port and the GPUs it asks for, writes the token,
builds the unit with hostd.units, records it in the store, waits for a start slot (Admission)
and for the server to listen on its port. A start that fails is recorded as an end
(Ends.finish) with the reason and the last lines the session printed. All of it runs under the
user's lock.

Ready means the session's own listener: a socket on its port held by a process in its unit's
cgroup, running as its user (hostd.daemon.ports). The port is public (HOSTD_PORT in the unit's
Environment=), so another account may bind it first; that start fails, saying so, rather than
being called running at someone else's listener (issue 13, attack 3).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace

from hostd.config import Config
from hostd.config.profile_list import apply_choice
from hostd.config.profiles import apply_profile
from hostd.daemon import credentials, journal
from hostd.daemon.ends import Ends
from hostd.daemon.gpus import allocate_gpus, grant_for
from hostd.daemon.ports import ListenerCheck, SessionOwner, allocate_port, describe_address
from hostd.daemon.servers import check_server_count, servers_of
from hostd.daemon.session_parts import SessionParts
from hostd.daemon.sockets import (
    Address,
    answers_http,
    prepare_socket_dir,
    proxy_gid,
    socket_path,
)
from hostd.daemon.store import SessionRecord, now
from hostd.daemon.systemd import UnitStatus
from hostd.daemon.users import group_names, lookup_session_user
from hostd.daemon.views import ACTIVE, OOM_REASON, base_url_for_key
from hostd.units import (
    SLICE,
    SessionPolicy,
    SessionRequest,
    UnitSpec,
    UserInfo,
    build_unit,
    keep_loaded,
    listens_on_socket,
    spec_limits,
)
from hostd.units.errors import InvalidOption, SessionConflict, SpawnFailed
from hostd.units.failures import describe_end, exit_kind
from hostd.units.servers import (
    session_key,
    unit_name_for_key,
    user_slice_for,
    validate_server_name,
)
from hostd.units.values import Caller, SessionView, StartOutcome

__all__ = ["FAILURE_LOG_LINES", "Starter", "policy_for"]

log = logging.getLogger(__name__)

# How often a starting session's address is looked at (a read of /proc/net/tcp or unix): soon
# at first, then less often. Measured with a tiny server (bench rows "b tiny" and "a tiny"): a
# fixed 50 ms looked first before the server listened and then 50 ms later, a third of the
# daemon's +70 ms over systemd-run; JupyterLab takes a second, and 100 starting at once each
# read /proc every READY_POLL_S at most.
READY_POLL_FIRST_S = 0.01
READY_POLL_S = 0.05
STATE_POLL_S = 0.1  # how often its unit is read meanwhile (a failure shows within this)
FAILURE_LOG_LINES = 20


def _port_environment(port: int | None) -> dict[str, str]:
    """A port session's variables: its port, and no moving to another one."""
    if port is None:
        return {}
    return {
        "HOSTD_PORT": str(port),
        # JupyterLab's default port_retries is 50: refused its port (another account bound
        # it first) it would quietly serve on another one. An admin's cmd from an older
        # config may lack --ServerApp.port_retries=0; jupyter_server reads this variable
        # when the flag is not given.
        "JUPYTER_PORT_RETRIES": "0",
    }


def policy_for(
    config: Config, name: str, groups: tuple[str, ...], command: str | None
) -> tuple[SessionPolicy, str | None]:
    """[session], with the most specific profile's limits and the named command; the
    profile's label."""
    policy = config.session
    if command is not None:
        argv = config.commands.get(command)
        if argv is None:
            known = ", ".join(sorted(config.commands)) or "none"
            raise InvalidOption(f"unknown command {command!r} (the admin defined: {known})")
        policy = replace(policy, cmd=argv)
    match = config.profiles.match(name, groups)
    if match is None:
        return policy, None
    label, limits = match
    return apply_profile(policy, limits), label


@dataclass(frozen=True)
class _StartAsk:
    """What a start was asked for, beside whose it is."""

    request: SessionRequest
    caller: Caller
    wait: bool
    command: str | None
    secrets: Mapping[str, str]
    profile_slug: str | None
    server: str


class Starter:
    """Start a session (idempotently) and, if asked, wait until it is ready or has failed."""

    def __init__(
        self,
        parts: SessionParts,
        ends: Ends,
        *,
        check_account: Callable[[str], Awaitable[None]],
    ) -> None:
        self.parts = parts
        self.ends = ends
        # Authenticator.check_account: PAM's account management, for every start.
        self.check_account = check_account

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
        metrics = self.parts.metrics
        started_at = time.monotonic()
        try:
            server = validate_server_name(server)  # before any lookup: a bad name is the caller's
            ask = _StartAsk(request, caller, wait, command, secrets or {}, profile, server)
            info = await lookup_session_user(user, self.parts.config.daemon)
            async with self._account_check(info.name) as account:
                outcome = await self._start(info, account, ask)
        except Exception:
            metrics.spawn_duration.labels(status="failure").observe(time.monotonic() - started_at)
            raise
        if outcome.created:
            metrics.spawn_duration.labels(status="success").observe(time.monotonic() - started_at)
        return outcome

    @contextlib.asynccontextmanager
    async def _account_check(self, name: str) -> AsyncIterator[asyncio.Future[None]]:
        """PAM's account management for this start, running meanwhile.

        Whoever asks (the hub, a token, the spawner, root): a locked or expired account gets
        no session (AccountDisabled), as it gets no login. PAM answers from a process of its
        own (40-70 ms): it runs while the start is prepared, and _start awaits it before
        anything of the session is kept, recorded or started. A start that ends first cancels
        it; a refusal nobody awaited is not left unretrieved."""
        account: asyncio.Future[None] = asyncio.ensure_future(self.check_account(name))
        try:
            yield account
        finally:
            if not account.done():
                account.cancel()
                await asyncio.wait([account])
            elif not account.cancelled():
                account.exception()  # retrieved: raised already, or not needed (a refusal)

    async def _start(
        self, info: UserInfo, account: asyncio.Future[None], ask: _StartAsk
    ) -> StartOutcome:
        parts = self.parts
        daemon = parts.config.daemon
        name = info.name
        # The daemon's key of this server: the user name for the default server, so all of a
        # default server's names (unit, paths, URL, records) are what they always were.
        key = session_key(name, ask.server)
        unit = unit_name_for_key(key)
        credentials.check_secrets(ask.secrets)
        groups = await asyncio.to_thread(group_names, info.name, info.gid)
        policy, profile = policy_for(parts.config, name, groups, ask.command)
        # The user's slice (named servers) carries the user's share, not one choice's.
        user_policy = policy
        # The [[profile_list]] choice: visibility and its caps hold whoever asks (a hidden
        # slug is UnknownProfile); a command the caller names wins over the choice's.
        choice = parts.config.profile_list.choose(ask.profile_slug, groups)
        if choice is not None:
            policy = apply_choice(
                policy, choice, parts.config.commands, keep_cmd=ask.command is not None
            )
        named_on = policy.named_server_limit > 0
        async with parts.admission.lock(key):
            if ask.server or named_on:
                running = servers_of(name, await parts.session_units())
                check_server_count(key, policy, running)
            status = await parts.systemd.unit_status(unit)
            if status is not None and status.active_state in ("deactivating", *ACTIVE):
                await account  # a refused account does not see its session
            if status is not None and status.active_state in ACTIVE:
                view = await parts.views.session(key, status)
                if ask.wait and view.state == "starting":
                    view = await self.wait_ready(key, unit, self._deadline(), info.uid)
                return StartOutcome(view, created=False)
            if status is not None and status.active_state == "deactivating":
                raise SessionConflict(f"the session of {key} is stopping; start it again shortly")
            if status is not None:  # ended but still loaded (our AddRef): free the name
                await self.ends.finish(key, unit, status, reason="ended")
            entry = parts.table[key]
            # Taken as soon as chosen, with no await between: other users' starts interleave
            # with this one at each await, and must see these GPUs held.
            gpus = entry.gpus = allocate_gpus(
                parts.config.gpus, policy.gpus, parts.table.gpus(), user=key
            )
            try:
                on_socket = listens_on_socket(policy.cmd)
                if on_socket:
                    # The proxy group first: without it no hub could reach the session.
                    gid = await asyncio.to_thread(proxy_gid, daemon.proxy_group)
                    port = entry.port = None
                    address: Address = await asyncio.to_thread(
                        prepare_socket_dir, daemon.sessions_dir, key, info.uid, gid
                    )
                else:
                    low, high = daemon.port_range
                    port = entry.port = allocate_port(low, high, parts.table.ports())
                    address = port
                token_file = credentials.write_token(
                    parts.credentials_dir, unit, info.uid, info.gid
                )
                secrets_dir = credentials.write_secrets(
                    token_file.parent, ask.secrets, info.uid, info.gid
                )
            except BaseException:
                entry.gpus = ()  # no session holds them: a start that failed here
                raise
            try:
                spec = build_unit(
                    policy,
                    info,
                    ask.request,
                    port=port,
                    socket=str(address) if on_socket else None,
                    base_url=base_url_for_key(daemon, key),
                    privileged=ask.caller.privileged,
                    hostd_environment={
                        **_port_environment(port),
                        "JUPYTER_TOKEN_FILE": str(token_file),
                        **({"HOSTD_CREDENTIALS_DIR": str(secrets_dir)} if secrets_dir else {}),
                    },
                    gpus=grant_for(parts.config.gpus, gpus),
                    server=ask.server,
                    slice_name=user_slice_for(name) if named_on else SLICE,
                )
                limits = spec_limits(spec)
                parts.admission.promise_memory(key, limits.mem_limit_bytes or 0)
            except Exception:
                self.ends.release(key, unit)
                raise
            # AddRef keeps the unit loaded after it ends, while our bus connection lives, so its
            # Result can be read before systemd collects it (SYSTEMD-NOTES.md).
            spec = keep_loaded(spec)
            try:
                await account  # PAM said yes, before the session is recorded and started
            except BaseException:
                self.ends.release(key, unit)
                raise
            record = await asyncio.to_thread(
                parts.store.add,
                SessionRecord(
                    user=key,
                    unit=unit,
                    port=port,
                    started_at=now(),
                    mem_limit_bytes=limits.mem_limit_bytes,
                    cpu_limit=limits.cpu_limit,
                    started_by_uid=ask.caller.uid,
                    profile=profile,
                    profile_slug=choice.slug if choice is not None else None,
                ),
            )
            assert record.id is not None
            entry.record_id = record.id
            entry.active_at = time.monotonic()
            if profile is not None:
                entry.profile = profile
            entry.profile_slug = choice.slug if choice is not None else None
            log.info(
                "starting %s for %s on %s",
                unit,
                key,
                describe_address(address),
                extra={"HOSTD_USER": name, "UNIT": unit},
            )
            async with parts.admission.start_slot():
                try:
                    job = await self._start_unit(spec, name, user_policy if named_on else None)
                except Exception:
                    await self.ends.finish(
                        key, unit, None, reason="systemd refused the unit", failed=True
                    )
                    raise
                if job != "done":
                    raise await self._start_failed(key, unit, f"systemd's start job ended '{job}'")
                status = await parts.systemd.unit_status(unit)
                if status is not None:
                    parts.oom.watch(key, parts.sampler.memory_dir(status.control_group or ""))
                if not ask.wait:
                    return StartOutcome(await parts.views.session(key, status), created=True)
                view = await self.wait_ready(key, unit, self._deadline(), info.uid)
                return StartOutcome(view, created=True)

    async def _start_unit(self, spec: UnitSpec, user: str, policy: SessionPolicy | None) -> str:
        """Start the session's unit; with named servers on (policy given), in the user's slice,
        started first with the user's total limits."""
        if policy is None:
            return await self.parts.systemd.start_unit(spec)
        async with self.ends.slices.starting(user, policy):
            return await self.parts.systemd.start_unit(spec)

    def _deadline(self) -> float:
        return time.monotonic() + self.parts.config.daemon.start_timeout_s

    async def wait_ready(self, name: str, unit: str, deadline: float, uid: int) -> SessionView:
        """Until the session's own process listens on its address (uid ``uid``, in the unit's
        cgroup; a socket must answer HTTP too), or its unit ends, or another process holds the
        address (both reported at once)."""
        systemd = self.parts.systemd
        status = await systemd.unit_status(unit)
        address = self._address(name, status)
        ready_path = f"{base_url_for_key(self.parts.config.daemon, name)}api"
        next_state_check = time.monotonic() + STATE_POLL_S
        pause = READY_POLL_FIRST_S
        while True:
            found = await self._listener(address, uid, status)
            if found.state == "foreign":
                await systemd.stop_unit(unit)
                raise await self._start_failed(name, unit, found.describe(address))
            if found.state == "ours" and await asyncio.to_thread(answers_http, address, ready_path):
                status = await systemd.unit_status(unit)
                if status is not None and status.active_state in ACTIVE:
                    await self.ends.mark(name, state="running", invocation_id=status.invocation_id)
                    return await self.parts.views.session(name, status, answering=True)
            if time.monotonic() >= next_state_check:
                if await systemd.active_state(unit) not in ACTIVE:
                    # A server refused its port exits (JupyterLab with port_retries=0): if
                    # another process holds the port, that is the reason to give.
                    found = await self._listener(address, uid, status)
                    why = (
                        found.describe(address)
                        if found.state == "foreign"
                        else "the session ended while starting"
                    )
                    raise await self._start_failed(name, unit, why)
                next_state_check = time.monotonic() + STATE_POLL_S
                if status is None or status.main_pid is None:
                    status = await systemd.unit_status(unit)
            if time.monotonic() >= deadline:
                await systemd.stop_unit(unit)
                raise await self._start_failed(
                    name,
                    unit,
                    f"the session did not answer on {describe_address(address)} within "
                    f"{self.parts.config.daemon.start_timeout_s:g} s",
                )
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, READY_POLL_S)

    def _address(self, name: str, status: UnitStatus | None) -> Address:
        """The starting session's address: the port it was given, else its socket."""
        port = self.parts.table[name].port
        if port is not None or status is None:
            return (
                port
                if port is not None
                else socket_path(self.parts.config.daemon.sessions_dir, name)
            )
        return self.parts.views.address(name, status)

    async def _listener(
        self, address: Address, uid: int, status: UnitStatus | None
    ) -> ListenerCheck:
        """Who listens on the starting session's address (hostd.daemon.sockets.check_address)."""
        owner = SessionOwner(
            uid,
            status.control_group if status is not None else None,
            status.main_pid if status is not None else None,
        )
        return await asyncio.to_thread(self.parts.views.probe, address, owner)

    async def _start_failed(self, name: str, unit: str, why: str) -> SpawnFailed:
        oom = self.parts.oom
        status = await self.parts.systemd.unit_status(unit)
        # The last lines the process printed reach journald a moment after it died.
        await asyncio.sleep(0.2)
        lines = [entry.message for entry in await journal.tail(unit, FAILURE_LOG_LINES)]
        end = describe_end(status.result, status.exit_code, status.exit_status) if status else ""
        if status is not None and oom.ended_by_oom(name, status.result, status.exit_status):
            end = OOM_REASON
        details = {
            "result": oom.result_of(name, status.result, status.exit_status) if status else None,
            "exit_status": status.exit_status if status else None,
            "exit": exit_kind(status.exit_code) if status else None,
            "log": lines,
        }
        await self.ends.finish(name, unit, status, reason=f"failed to start: {why}", failed=True)
        message = f"the session of {name} failed to start: {why}" + (f"; {end}" if end else "")
        log.warning("%s", message, extra={"HOSTD_USER": name, "UNIT": unit})
        return SpawnFailed(message, details=details)
