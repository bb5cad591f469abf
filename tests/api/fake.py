"""A SessionService in memory, for the API's tests; and helpers to serve an app to them.

The fake keeps sessions and log lines in dicts, records every call, and raises what a test puts
in ``fail`` (method name -> exception). Authorisation: no peer is refused, uid 0 is
privileged, uids in ``allowed_uids`` are callers, anyone else is refused. Only a privileged
caller may set limits. Usage is what a test puts in ``usages`` (else a default from the
session's limits); the host view is computed from the sessions on a HOST_MEMORY_BYTES,
HOST_CPUS machine. The policy is what a test puts in ``session_policy`` (default: every
default of SessionPolicy), ``commands`` and ``config_file``. Logins: ``passwords`` (name ->
password) are the accounts that may log in, ``admins`` the admins among them, ``locked_out``
(name -> seconds) the names locked out. Accounts: every name in ``users`` has the uid in
``uids`` (given on first ask, from 5000 up); ``disabled`` are refused as PAM's account
management refuses a locked or expired account. Maintenance: ``maintenance_view`` is the
state (set by root only, checked as the daemon checks it); while it has a drain, every start
is refused with Draining.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Receive, Scope, Send

from hostd.api.daemon import PEER_SCOPE_KEY
from hostd.api.service import SessionService
from hostd.daemon.login import LOGIN_FAILED_MESSAGE
from hostd.units import SessionPolicy, SessionRequest, unit_name_for, validate_username
from hostd.units.choices import ProfileView
from hostd.units.errors import (
    AccountDisabled,
    Draining,
    LockedOut,
    LoginFailed,
    PermissionDenied,
    SessionNotFound,
    UnknownProfile,
    UnknownUser,
)
from hostd.units.history import (
    HistoryWindow,
    HostHistoryView,
    HostPoint,
    UsageHistoryView,
    UsagePoint,
)
from hostd.units.maintenance import Drain, MaintenanceView, check_drain_at, check_message
from hostd.units.servers import (
    server_base_path,
    session_key,
    split_session_key,
    unit_name_for_key,
)
from hostd.units.values import (
    AccountView,
    AuthResult,
    Caller,
    Credentials,
    HostView,
    Limits,
    LogLine,
    PeerCredentials,
    PolicyView,
    SessionView,
    StartOutcome,
    UsageView,
)

ROOT = PeerCredentials(pid=100, uid=0, gid=0)
MEMBER_UID = 1000
MEMBER = PeerCredentials(pid=101, uid=MEMBER_UID, gid=1000)  # the hub: acts for others
# A member of the socket's group who is nobody's hub: acts only for itself, as "carol".
SELF_ONLY_UID = 1001
SELF_ONLY = PeerCredentials(pid=103, uid=SELF_ONLY_UID, gid=1001)
STRANGER = PeerCredentials(pid=102, uid=2000, gid=2000)
STARTED_AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HOST_MEMORY_BYTES = 16 * 1024**3
HOST_CPUS = 8
DEFAULT_MEMORY_BYTES = 256 * 1024**2  # what a session uses unless a test says otherwise
ACTIVE = ("starting", "running")
DEFAULT_HISTORY_POINTS = 6  # points of a default usage history, the last one now


def history_points(window: HistoryWindow, limits: Limits) -> tuple[UsagePoint, ...]:
    """A default history: memory growing to DEFAULT_MEMORY_BYTES, CPU from 10 % to 60 %."""
    start = int(time.time()) // window.resolution_s * window.resolution_s
    return tuple(
        UsagePoint(
            at=start - (DEFAULT_HISTORY_POINTS - 1 - i) * window.resolution_s,
            memory_bytes=DEFAULT_MEMORY_BYTES * (i + 1) // DEFAULT_HISTORY_POINTS,
            memory_limit_bytes=limits.mem_limit_bytes,
            cpu_percent=10.0 * (i + 1),
            cpu_limit=limits.cpu_limit,
        )
        for i in range(DEFAULT_HISTORY_POINTS)
    )


def log_lines(user: str, count: int) -> list[LogLine]:
    return [
        LogLine(
            cursor=f"{user}-{i}",
            timestamp=STARTED_AT + timedelta(seconds=i),
            message=f"{user} line {i}",
            priority=6,
        )
        for i in range(count)
    ]


class FakeSessionService:
    """hostd.api.service.SessionService in memory."""

    def __init__(self) -> None:
        self.extras: tuple[str | None, dict[str, str]] = (None, {})
        self.profile_asked: str | None = None
        self.reset()

    def reset(self) -> None:
        """Back to no sessions, no calls, no failures."""
        self.users = {"alice", "bob", "carol"}
        # Where a session this fake starts answers (a {PORT} cmd's; a socket's: http+unix://...).
        self.start_origin = "http://127.0.0.1:8901"
        self.allowed_uids = {MEMBER_UID}
        self.sessions: dict[str, SessionView] = {}
        self.journal: dict[str, list[LogLine]] = {}
        self.calls: list[tuple[Any, ...]] = []
        self.usages: dict[str, UsageView] = {}
        # Usage over time: what a test puts here, else DEFAULT_HISTORY_POINTS points made
        # from the session's limits (history_points).
        self.histories: dict[str, UsageHistoryView] = {}
        self.starts_waiting = 0
        self.fail: dict[str, BaseException] = {}
        # follow: wait before the first line, raise after the lines, or wait forever.
        self.follow_delay_s = 0.0
        self.follow_error: BaseException | None = None
        self.follow_forever = False
        self.followers_open = 0
        self.followers_closed = 0
        self.passwords = {"alice": "wonderland", "carol": "c4r0l"}
        self.admins = {"carol"}
        self.locked_out: dict[str, int] = {}
        self.uids: dict[str, int] = {}
        self.disabled: set[str] = set()
        self.session_policy = SessionPolicy(cmd=("/bin/true",))
        self.commands: tuple[str, ...] = ("singleuser",)
        self.config_file: str | None = "/etc/hostd/hostd.toml"
        self.maintenance_view = MaintenanceView()
        # [[profile_list]] choices each user may take (the daemon's view: visibility applied).
        self.choices: dict[str, list[ProfileView]] = {}

    def _check(self, method: str) -> None:
        error = self.fail.get(method)
        if error is not None:
            raise error

    def check_drain(self) -> None:
        """Draining while a drain is set, as the daemon refuses every start then."""
        drain = self.maintenance_view.drain
        if drain is not None:
            raise Draining(f"{drain.message} (new sessions are refused for maintenance)")

    def _known(self, user: str) -> None:
        user = split_session_key(user)[0]  # a named server's key: user:server
        validate_username(user)
        if user not in self.users:
            raise UnknownUser(f"no account named {user!r}")

    def add_session(self, user: str, *, lines: int = 3, **changes: Any) -> SessionView:
        self.users.add(user)
        view = SessionView(
            user=user,
            unit=unit_name_for(user),
            state="running",
            started_at=STARTED_AT,
            url=f"http://127.0.0.1:8900/user/{user}/",
            limits=Limits(mem_limit_bytes=2 * 1024**3, cpu_limit=1.5),
        )
        self.sessions[user] = replace(view, **changes)
        self.journal[user] = log_lines(user, lines)
        return self.sessions[user]

    def authorize(self, peer: PeerCredentials | None) -> Caller:
        self.calls.append(("authorize", peer))
        self._check("authorize")
        if peer is None:
            raise PermissionDenied("no peer credentials on this connection")
        if peer.uid == 0:
            return Caller(uid=0, name="root", privileged=True, acts_for_others=True)
        if peer.uid == SELF_ONLY_UID:
            return Caller(uid=peer.uid, name="carol", privileged=False)
        if peer.uid in self.allowed_uids:
            return Caller(
                uid=peer.uid, name=f"uid{peer.uid}", privileged=False, acts_for_others=True
            )
        raise PermissionDenied(f"uid {peer.uid} may not use hostd")

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
        self.calls.append(("start", user, request, caller, wait))
        self.server = server
        self.extras = (command, dict(secrets or {}))
        self.profile_asked = profile
        self._check("start")
        self.check_drain()
        self._known(user)
        choice = self._choice(user, profile)
        name, user = user, session_key(user, server)  # from here on, the server's key
        existing = self.sessions.get(user)
        if existing is not None and existing.state in ("starting", "running"):
            return StartOutcome(session=existing, created=False)
        view = SessionView(
            user=name,
            server=server,
            unit=unit_name_for_key(user),
            state="running" if wait else "starting",
            started_at=STARTED_AT,
            url=f"{self.start_origin}/user/{server_base_path(user)}/",
            limits=Limits(mem_limit_bytes=request.mem_limit, cpu_limit=request.cpu_limit),
        )
        if choice is not None:
            view = replace(
                view,
                profile_slug=choice.slug,
                limits=Limits(choice.mem_limit_bytes, choice.cpu_limit),
            )
        self.sessions[user] = view
        self.journal.setdefault(user, [])
        return StartOutcome(session=view, created=True)

    async def stop(self, user: str, *, caller: Caller) -> SessionView:
        self.calls.append(("stop", user, caller))
        self._check("stop")
        view = await self.get(user)
        stopped = replace(view, state="stopped", result="success", url=None)
        self.sessions[user] = stopped
        return stopped

    async def get(self, user: str) -> SessionView:
        self.calls.append(("get", user))
        self._check("get")
        self._known(user)
        try:
            return self.sessions[user]
        except KeyError:
            raise SessionNotFound(f"{user} has no session") from None

    async def list(self) -> builtins.list[SessionView]:
        self.calls.append(("list",))
        self._check("list")
        return [self.sessions[user] for user in sorted(self.sessions)]

    async def logs(self, user: str, *, lines: int) -> builtins.list[LogLine]:
        self.calls.append(("logs", user, lines))
        self._check("logs")
        await self.get(user)
        return self.journal[user][-lines:]

    async def follow(self, user: str, *, cursor: str | None) -> AsyncIterator[LogLine]:
        self.calls.append(("follow", user, cursor))
        self.followers_open += 1
        try:
            if self.follow_delay_s:
                await asyncio.sleep(self.follow_delay_s)
            self._check("follow")
            await self.get(user)
            lines = self.journal[user]
            if cursor is not None:
                # journalctl --after-cursor with a cursor it cannot seek to prints nothing and
                # exits, so the real stream ends at once: so does this one.
                cursors = [line.cursor for line in lines]
                lines = lines[cursors.index(cursor) + 1 :] if cursor in cursors else []
            for line in lines:
                yield line
            if self.follow_error is not None:
                raise self.follow_error
            if self.follow_forever:
                await asyncio.Event().wait()
        finally:
            self.followers_closed += 1

    async def health(self) -> dict[str, Any]:
        self.calls.append(("health",))
        self._check("health")
        return {"status": "ok", "sessions": len(self.sessions)}

    def _active(self, user: str) -> SessionView:
        self._known(user)
        view = self.sessions.get(user)
        if view is None or view.state not in ACTIVE:
            raise SessionNotFound(f"{user} has no running session")
        return view

    async def usage(self, user: str) -> UsageView:
        self.calls.append(("usage", user))
        self._check("usage")
        view = self._active(user)
        if user in self.usages:
            return self.usages[user]
        limits = view.limits or Limits(mem_limit_bytes=None, cpu_limit=None)
        return UsageView(
            user=user,
            memory_bytes=DEFAULT_MEMORY_BYTES,
            memory_peak_bytes=2 * DEFAULT_MEMORY_BYTES,
            memory_limit_bytes=limits.mem_limit_bytes,
            cpu_seconds=12.5,
            cpu_percent=37.4,
            cpu_limit=limits.cpu_limit,
            cpu_throttled_seconds=0.0,
            tasks=9,
            oom_kills=0,
        )

    async def usage_history(self, user: str, *, window: HistoryWindow) -> UsageHistoryView:
        self.calls.append(("usage_history", user, window.name))
        self._check("usage_history")
        if user in self.histories:
            return self.histories[user]
        view = self._active(user)
        limits = view.limits or Limits(mem_limit_bytes=None, cpu_limit=None)
        return UsageHistoryView(
            user=user,
            window=window.name,
            resolution_s=window.resolution_s,
            points=history_points(window, limits),
        )

    async def host_history(self, *, window: HistoryWindow) -> HostHistoryView:
        self.calls.append(("host_history", window.name))
        self._check("host_history")
        host = await self.host()
        start = int(time.time()) // window.resolution_s * window.resolution_s
        points = tuple(
            HostPoint(
                at=start - (DEFAULT_HISTORY_POINTS - 1 - i) * window.resolution_s,
                memory_committed_bytes=host.memory_limits_bytes * (i + 1) // DEFAULT_HISTORY_POINTS,
                memory_capacity_bytes=host.memory_capacity_bytes,
                sessions_running=host.sessions_running,
            )
            for i in range(DEFAULT_HISTORY_POINTS)
        )
        return HostHistoryView(window=window.name, resolution_s=window.resolution_s, points=points)

    async def token(self, user: str) -> str:
        self.calls.append(("token", user))
        self._check("token")
        self._active(user)
        return f"token-of-{user}"

    async def host(self) -> HostView:
        self.calls.append(("host",))
        self._check("host")
        active = [view for view in self.sessions.values() if view.state in ACTIVE]
        limits = [view.limits for view in active if view.limits is not None]
        return HostView(
            memory_total_bytes=HOST_MEMORY_BYTES,
            memory_available_bytes=HOST_MEMORY_BYTES - DEFAULT_MEMORY_BYTES * len(active),
            cpus=HOST_CPUS,
            sessions_running=len(active),
            memory_limits_bytes=sum(limit.mem_limit_bytes or 0 for limit in limits),
            cpu_limits=sum(limit.cpu_limit or 0.0 for limit in limits),
            memory_capacity_bytes=HOST_MEMORY_BYTES * 3 // 4,
            starts_waiting=self.starts_waiting,
        )

    async def policy(self) -> PolicyView:
        self.calls.append(("policy",))
        self._check("policy")
        return PolicyView.of(
            self.session_policy, commands=self.commands, config_file=self.config_file
        )

    async def set_limits(
        self, user: str, *, mem_limit: int | None, cpu_limit: float | None, caller: Caller
    ) -> SessionView:
        self.calls.append(("set_limits", user, mem_limit, cpu_limit, caller))
        self._check("set_limits")
        view = self._active(user)
        if not caller.privileged:
            raise PermissionDenied(f"only root may change limits, not {caller.name}")
        limits = view.limits or Limits(mem_limit_bytes=None, cpu_limit=None)
        changed = replace(
            view,
            limits=Limits(
                mem_limit_bytes=limits.mem_limit_bytes if mem_limit is None else mem_limit,
                cpu_limit=limits.cpu_limit if cpu_limit is None else cpu_limit,
            ),
        )
        self.sessions[user] = changed
        return changed

    async def activity(self, user: str, *, caller: Caller) -> None:
        self.calls.append(("activity", user, caller))
        self._check("activity")
        self._active(user)

    async def maintenance(self) -> MaintenanceView:
        self.calls.append(("maintenance",))
        self._check("maintenance")
        return self.maintenance_view

    async def set_announcement(self, text: str | None, *, caller: Caller) -> MaintenanceView:
        self.calls.append(("set_announcement", text, caller))
        self._check("set_announcement")
        if not caller.privileged:
            raise PermissionDenied(f"{caller.name} may not announce: only root may")
        announcement = None if text is None else check_message(text, "announcement")
        self.maintenance_view = replace(self.maintenance_view, announcement=announcement)
        return self.maintenance_view

    async def set_drain(self, drain: Drain | None, *, caller: Caller) -> MaintenanceView:
        self.calls.append(("set_drain", drain, caller))
        self._check("set_drain")
        if not caller.privileged:
            raise PermissionDenied(f"{caller.name} may not drain the host: only root may")
        if drain is not None:
            drain = Drain(check_drain_at(drain.at, datetime.now(UTC)), drain.message)
        self.maintenance_view = replace(self.maintenance_view, drain=drain)
        return self.maintenance_view

    async def metrics(self) -> tuple[bytes, str]:
        self.calls.append(("metrics",))
        self._check("metrics")
        running = sum(1 for view in self.sessions.values() if view.state in ACTIVE)
        body = (
            "# HELP hostd_sessions Sessions starting or running.\n"
            "# TYPE hostd_sessions gauge\n"
            f"hostd_sessions {running}.0\n"
        )
        return body.encode(), CONTENT_TYPE_LATEST

    async def authenticate(self, credentials: Credentials) -> AuthResult:
        user = credentials.username
        self.calls.append(("authenticate", user))  # never the password
        self._check("authenticate")
        if user in self.locked_out:
            seconds = self.locked_out[user]
            raise LockedOut(
                f"too many failed logins: try again in {seconds} s", retry_after_s=seconds
            )
        if self.passwords.get(user) != credentials.password or user in self.disabled:
            raise LoginFailed(LOGIN_FAILED_MESSAGE)
        return AuthResult(user=user, admin=user in self.admins, uid=self.uid_of(user))

    def uid_of(self, user: str) -> int:
        # Given on first ask and kept: a name keeps its uid until a test re-creates it.
        return self.uids.setdefault(user, 5000 + len(self.uids))

    def _choice(self, user: str, slug: str | None) -> ProfileView | None:
        # As hostd.config.profile_list.ProfileList.choose: a hidden slug is an unknown one.
        visible = self.choices.get(user, [])
        if slug is None:
            return next((c for c in visible if c.default), visible[0] if visible else None)
        for choice in visible:
            if choice.slug == slug:
                return choice
        offered = ", ".join(c.slug for c in visible) or "none"
        raise UnknownProfile(f"no profile {slug} to choose (the choices: {offered})")

    async def profiles(self, user: str) -> list[ProfileView]:
        self.calls.append(("profiles", user))
        self._check("profiles")
        self._known(user)
        return list(self.choices.get(user, []))

    async def account(self, user: str) -> AccountView:
        self.calls.append(("account", user))
        self._check("account")
        validate_username(user)
        if user not in self.users and user not in self.passwords:
            raise UnknownUser(f"no account named {user!r}")
        if user in self.disabled:
            raise AccountDisabled(f"the account {user} is locked, expired or refused by PAM")
        return AccountView(user=user, uid=self.uid_of(user), admin=user in self.admins)


_check_protocol: type[SessionService] = FakeSessionService


def with_peer(app: ASGIApp, peer: PeerCredentials | None) -> ASGIApp:
    """The app as a server that read SO_PEERCRED would call it: peer in scope["hostd.peer"]."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if peer is not None and scope["type"] in ("http", "websocket"):
            scope = {**scope, PEER_SCOPE_KEY: peer}
        await app(scope, receive, send)

    return wrapped


def _config(app: ASGIApp, socket_path: Path) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        uds=str(socket_path),
        lifespan="off",
        http="h11",
        ws="none",
        log_config=None,  # leave the test run's logging alone
        access_log=False,
        timeout_graceful_shutdown=2,
    )


@contextlib.asynccontextmanager
async def serving(app: ASGIApp, socket_path: Path) -> AsyncIterator[uvicorn.Server]:
    """Real uvicorn on a Unix socket, in the running event loop."""
    server = uvicorn.Server(_config(app, socket_path))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn did not start")
        await asyncio.sleep(0.005)
    try:
        yield server
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=5)


@contextlib.contextmanager
def serving_in_thread(app: ASGIApp, socket_path: Path) -> Iterator[uvicorn.Server]:
    """Real uvicorn on a Unix socket, in a thread of its own (for code that runs asyncio.run)."""
    server = uvicorn.Server(_config(app, socket_path))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.005)
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(timeout=5)
