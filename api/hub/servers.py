"""Starting and stopping users' servers with JupyterHub's semantics (api layer).

The daemon does the work (``HostdClient.start``/``stop``); this keeps what JupyterHub keeps
about it: which start or stop is pending (one task per user, owned here), how the last start
ended, and the progress events of a pending start. Nothing here touches the host.

- ``start`` asks the daemon to start and waits up to ``slow_spawn_timeout``: "ready" (the
  API's 201) or "pending" (202, the task goes on); ServerBusy (400) when the server is
  running already or a start or stop is pending; the daemon's errors as they are
  (CapacityExceeded: 429 with Retry-After).
- ``stop`` stops (a pending start too) and waits up to ``slow_stop_timeout``: "stopped"
  (204) or "pending" (202).
- ``progress`` yields JupyterHub's progress events and ends with ``{"progress": 100,
  "ready": true, "url": ...}`` or ``{"progress": 100, "failed": true, "message": ...}``.

A start made elsewhere (hostctl, a hub that restarted) has no task here: its progress is
read by polling the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from hostd.api.client import HostdClient
from hostd.api.hub.db import HubStore
from hostd.api.hub.metrics import HubMetrics
from hostd.units.errors import CapacityExceeded, HostdError, SessionNotFound, SpawnFailed
from hostd.units.servers import server_base_path, split_session_key
from hostd.units.values import SessionView

__all__ = [
    "PROGRESS_INTERVAL_S",
    "NotPending",
    "Pending",
    "ServerBusy",
    "ServerStatus",
    "Servers",
    "failure_message",
    "server_url",
]

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S: Final = 1.0
# A start seen only through the daemon (no task here) is followed for at most this long.
POLL_LIMIT_S: Final = 600.0
_FAILURE_SHOWN_S: Final = 3600.0


class ServerBusy(HostdError):
    """Raised when a start is asked of a server that runs or is starting or stopping."""

    code = "server-busy"


class NotPending(HostdError):
    """Raised when progress is asked of a server that is neither starting nor just failed."""

    code = "not-pending"


PendingKind = Literal["spawn", "stop"]


@dataclass
class Pending:
    kind: PendingKind
    task: asyncio.Task[Any]
    since: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class ServerStatus:
    """A user's server as the hub's pages and API show it."""

    user: str
    view: SessionView | None  # the daemon's view; None: it knows of no session
    pending: PendingKind | None
    failure: str | None  # why the last start failed (for an hour, until the next start)

    @property
    def state(self) -> str:
        if self.pending == "spawn":
            return "starting"
        if self.pending == "stop":
            return "stopping"
        return self.view.state if self.view is not None else "stopped"

    @property
    def ready(self) -> bool:
        return self.pending is None and self.view is not None and self.view.state == "running"

    @property
    def url(self) -> str:
        return server_url(self.user)


def server_url(user: str) -> str:
    """``/user/<name>/``, or ``/user/<name>/<server>/`` for a named server's key (user:server,
    hostd.units.servers; a server name needs no escaping in a URL)."""
    return f"/user/{server_base_path(user)}/"


def _named(key: str) -> tuple[str, dict[str, str]]:
    """The daemon's user and server arguments of a key: server only for a named server."""
    user, server = split_session_key(key)
    return user, ({"server": server} if server else {})


def failure_message(exc: BaseException) -> str:
    """What a person is told of a failed start: the daemon's reason and its last log lines."""
    if isinstance(exc, HostdError):
        message = exc.message
        if isinstance(exc, SpawnFailed):
            lines = [str(line) for line in exc.details.get("log") or []][-5:]
            if lines:
                message += "\n" + "\n".join(lines)
        return message
    return f"{type(exc).__name__}: {exc}"


class Servers:
    """The pending starts and stops, one at most per server. A server is named by its key:
    the user name for the default server, user:server for a named one."""

    def __init__(
        self,
        daemon: HostdClient,
        store: HubStore,
        *,
        slow_spawn_timeout: float,
        slow_stop_timeout: float,
        command: str | None = None,
        on_change: Callable[[str], None] = lambda user: None,
        metrics: HubMetrics | None = None,
    ) -> None:
        self.daemon = daemon
        self.store = store
        self.slow_spawn_timeout = slow_spawn_timeout
        self.slow_stop_timeout = slow_stop_timeout
        self.command = command
        self.on_change = on_change  # the proxy forgets the user's route
        self.metrics = metrics or HubMetrics()
        self._pending: dict[str, Pending] = {}
        self._failures: dict[str, tuple[str, float]] = {}
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def view(self, user: str) -> SessionView | None:
        try:
            name, named = _named(user)
            return await self.daemon.get(name, **named)
        except SessionNotFound:
            return None

    def pending_keys(self) -> list[str]:
        """The servers with a start or stop pending here (their keys)."""
        return list(self._pending)

    def pending(self, user: str) -> PendingKind | None:
        entry = self._pending.get(user)
        return None if entry is None else entry.kind

    def failure(self, user: str) -> str | None:
        entry = self._failures.get(user)
        if entry is None or time.monotonic() - entry[1] > _FAILURE_SHOWN_S:
            return None
        return entry[0]

    async def status(self, user: str) -> ServerStatus:
        view = await self.view(user)
        failure = self.failure(user)
        if failure is None and view is not None and view.state == "failed":
            failure = view.reason or "the server failed"
        return ServerStatus(user, view, self.pending(user), failure)

    # -- start ---------------------------------------------------------------------------

    async def start(
        self, user: str, *, by: str, wait_s: float | None = None, profile: str | None = None
    ) -> Literal["ready", "pending"]:
        """Start ``user``'s server; wait up to ``wait_s`` (default slow_spawn_timeout).
        ``profile``: a [[profile_list]] slug (the daemon checks it; None: the default)."""
        async with self._locks[user]:
            pending = self.pending(user)
            if pending is not None:
                self.metrics.observe_spawn("failure", 0.0, reason="already-pending")
                raise ServerBusy(f"{user}'s server is pending {pending}, please wait")
            view = await self.view(user)
            if view is not None and view.state == "running":
                raise ServerBusy(f"{user}'s server is already running")
            if view is not None and view.state in ("starting", "stopping"):
                raise ServerBusy(f"{user}'s server is {view.state}, please wait")
            self._failures.pop(user, None)
            task = asyncio.create_task(self._spawn(user, by, profile), name=f"spawn {user}")
            entry = Pending("spawn", task)
            self._pending[user] = entry
            task.add_done_callback(lambda done: self._done(user, entry))
        await asyncio.wait({task}, timeout=self.slow_spawn_timeout if wait_s is None else wait_s)
        if not task.done():
            return "pending"
        task.result()  # the daemon's error, if it refused at once
        return "ready"

    async def _spawn(self, user: str, by: str, profile: str | None = None) -> None:
        started = time.monotonic()
        try:
            name, server = split_session_key(user)
            if server:
                await self.daemon.start(
                    name, wait=True, command=self.command, server=server, profile=profile
                )
            else:
                await self.daemon.start(name, wait=True, command=self.command, profile=profile)
        except Exception as exc:
            # JupyterHub's statuses: "failure" for a start that failed as starts may (its
            # reason "throttled" when the host is full), "error" for the hub's own fault.
            if isinstance(exc, HostdError):
                reason = "throttled" if isinstance(exc, CapacityExceeded) else ""
                self.metrics.observe_spawn("failure", time.monotonic() - started, reason)
            else:
                self.metrics.observe_spawn("error", time.monotonic() - started)
            superseded = self._pending.get(user) is not None and self._pending[user].kind == "stop"
            message = failure_message(exc)
            if not superseded:
                self._failures[user] = (message, time.monotonic())
            log.info("start of %s's server failed: %s", user, message.splitlines()[0])
            await asyncio.to_thread(
                self.store.record_spawn,
                user,
                action="start",
                by=by,
                outcome="failed",
                message=message,
            )
            raise
        self.metrics.observe_spawn("success", time.monotonic() - started)
        log.info("%s's server is ready (started by %s)", user, by)
        await asyncio.to_thread(
            self.store.record_spawn, user, action="start", by=by, outcome="ready"
        )

    def _done(self, user: str, entry: Pending) -> None:
        if self._pending.get(user) is entry:
            del self._pending[user]
        if not entry.task.cancelled():
            entry.task.exception()  # retrieved: a failure is reported, not "never retrieved"
        self.on_change(user)

    # -- stop ----------------------------------------------------------------------------

    async def stop(
        self, user: str, *, by: str, wait_s: float | None = None
    ) -> Literal["stopped", "pending"]:
        """Stop ``user``'s server; wait up to ``wait_s`` (default slow_stop_timeout)."""
        async with self._locks[user]:
            current = self._pending.get(user)
            if current is not None and current.kind == "stop":
                return "pending"
            task = asyncio.create_task(self._stop(user, by), name=f"stop {user}")
            entry = Pending("stop", task)
            self._pending[user] = entry  # a pending start is stopped too: the daemon stops it
            task.add_done_callback(lambda done: self._done(user, entry))
        self.on_change(user)
        await asyncio.wait({task}, timeout=self.slow_stop_timeout if wait_s is None else wait_s)
        if not task.done():
            return "pending"
        task.result()
        return "stopped"

    async def _stop(self, user: str, by: str) -> None:
        started = time.monotonic()
        try:
            name, named = _named(user)
            await self.daemon.stop(name, **named)
        except SessionNotFound:
            return  # nothing to stop: not a stop to time
        except BaseException:
            self.metrics.observe_stop(False, time.monotonic() - started)
            raise
        self.metrics.observe_stop(True, time.monotonic() - started)
        self._failures.pop(user, None)
        log.info("%s's server stopped by %s", user, by)
        await asyncio.to_thread(
            self.store.record_spawn, user, action="stop", by=by, outcome="stopped"
        )

    # -- progress ------------------------------------------------------------------------

    async def progress(self, user: str) -> AsyncGenerator[dict[str, Any], None]:
        """JupyterHub's progress events of a start; NotPending before the first event when
        the server is neither starting nor just failed."""
        url = server_url(user)
        ready = {"progress": 100, "ready": True, "message": f"Server ready at {url}", "url": url}
        entry = self._pending.get(user)
        if entry is not None and entry.kind == "stop":
            raise NotPending(f"{user}'s server is stopping")
        task = entry.task if entry is not None else None
        if task is None:
            view = await self.view(user)
            if view is not None and view.state == "running":
                yield ready
                return
            if view is None or view.state != "starting":
                failure = self.failure(user) or (
                    view.reason if view is not None and view.state == "failed" else None
                )
                if failure is None:
                    raise NotPending(f"{user}'s server is not starting")
                yield _failed(failure)
                return
        since = entry.since if entry is not None else time.monotonic()
        yield {"progress": 0, "message": "Server requested"}
        while True:
            if task is not None:
                await asyncio.wait({task}, timeout=PROGRESS_INTERVAL_S)
                if task.done():
                    if task.cancelled() or task.exception() is not None:
                        yield _failed(self.failure(user) or _task_failure(task))
                    else:
                        yield ready
                    return
            else:
                await asyncio.sleep(PROGRESS_INTERVAL_S)
                view = await self.view(user)
                if view is not None and view.state == "running":
                    yield ready
                    return
                if view is None or view.state != "starting":
                    yield _failed(view.reason if view is not None and view.reason else "stopped")
                    return
                if time.monotonic() - since > POLL_LIMIT_S:
                    yield _failed("gave up waiting for the server")
                    return
            yield await self._step(user, time.monotonic() - since)

    async def _step(self, user: str, elapsed: float) -> dict[str, Any]:
        # Half way at 15 s, creeping towards 90: a start takes a few seconds to a minute.
        progress = min(90, 10 + int(80 * elapsed / (elapsed + 15)))
        message = f"Starting your server ({int(elapsed)} s)"
        with contextlib.suppress(HostdError):
            lines = await self.daemon.logs(user, lines=1)
            if lines:
                message += f": {lines[-1].message[:200]}"
        return {"progress": progress, "message": message}

    async def aclose(self) -> None:
        """Cancel what is pending (at shutdown): the daemon's own start goes on regardless."""
        tasks = [entry.task for entry in self._pending.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _failed(message: str) -> dict[str, Any]:
    return {"progress": 100, "failed": True, "message": f"Spawn failed: {message}"}


def _task_failure(task: asyncio.Task[Any]) -> str:
    if task.cancelled():
        return "the start was cancelled"
    exc = task.exception()
    return "unknown" if exc is None else failure_message(exc)
