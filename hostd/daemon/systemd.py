"""Async client of systemd for the daemon (host layer), through hostd.busworker.worker.

The worker is a child process speaking JSON lines (see its docstring); this side never blocks
the event loop. D-Bus errors become hostd.units.errors here, once. If the worker dies (it exits when
its bus connection is lost: D-Bus restarted), pending calls fail with SystemdUnavailable and the
next call starts a new one; a call that only reads is repeated once on the new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from hostd.units import Property, UnitSpec
from hostd.units.errors import InvalidOption, SessionConflict, SystemdUnavailable

__all__ = [
    "BusLost",
    "SystemdClient",
    "SystemdSeam",
    "UnitStatus",
    "utcnow",
]

log = logging.getLogger(__name__)

CALL_TIMEOUT_S = 30.0
# How long a start or stop job may take before we call systemd unresponsive. A stop waits for
# the unit's own TimeoutStopSec first, so this is above any sane stop timeout.
JOB_TIMEOUT_S = 150.0
# While systemd's D-Bus is missing at start-up, try again this often at most (doubling from
# the first).
CONNECT_RETRY_FIRST_S = 0.1
CONNECT_RETRY_MAX_S = 2.0
# Calls that only read: repeated once on a fresh worker when the bus went away under them
# (D-Bus restarted). A start or a stop may have reached systemd: never repeated.
RETRIABLE_OPS = frozenset({"get", "state", "list", "ping"})
# sd-bus's errors for a connection that is gone (ECONNRESET, ENOTCONN) or closed.
BUS_LOST_ERRNOS = frozenset({-errno.ECONNRESET, -errno.ENOTCONN, -errno.ECONNREFUSED})


class BusLost(SystemdUnavailable):
    """The worker, or its connection to the bus, went away under a call."""


@dataclass(frozen=True)
class UnitStatus:
    """What systemd says of one unit: the properties the D-Bus worker reads (read_unit)."""

    name: str
    active_state: str  # active, activating, deactivating, inactive, failed, ...
    sub_state: str
    result: str | None  # Result: success, exit-code, signal, oom-kill, ...
    exit_code: int | None  # ExecMainCode: CLD_EXITED=1, CLD_KILLED=2, CLD_DUMPED=3
    exit_status: int | None  # ExecMainStatus: exit status or signal number
    main_pid: int | None
    invocation_id: str | None
    control_group: str | None
    environment: tuple[str, ...]
    user: str | None
    memory_max: int | None
    cpu_quota_usec: int | None
    active_since: datetime | None

    @classmethod
    def from_properties(cls, p: dict[str, Any]) -> UnitStatus:
        def number(key: str) -> int | None:
            value = p.get(key)
            # systemd says "unset" with UINT64_MAX ("infinity").
            return None if value is None or value >= 2**63 else int(value)

        invocation = p.get("InvocationID")
        if isinstance(invocation, list):  # ay
            invocation = bytes(invocation).hex() or None
        since = p.get("ActiveEnterTimestamp") or 0
        return cls(
            name=p.get("Id", ""),
            active_state=p.get("ActiveState", "inactive"),
            sub_state=p.get("SubState", ""),
            result=p.get("Result") or None,
            exit_code=p.get("ExecMainCode"),
            exit_status=p.get("ExecMainStatus"),
            main_pid=p.get("MainPID") or None,
            invocation_id=invocation,
            control_group=p.get("ControlGroup") or None,
            environment=tuple(p.get("Environment") or ()),
            user=p.get("User") or None,
            memory_max=number("MemoryMax"),
            cpu_quota_usec=number("CPUQuotaPerSecUSec"),
            active_since=datetime.fromtimestamp(since / 1e6, UTC) if since else None,
        )

    def env(self, key: str) -> str | None:
        prefix = f"{key}="
        for entry in self.environment:
            if entry.startswith(prefix):
                return entry[len(prefix) :]
        return None


def _to_wire(properties: tuple[Property, ...]) -> list[list[Any]]:
    wire: list[list[Any]] = []
    for prop in properties:
        value = prop.value
        if prop.signature == "aay":
            value = [bytes(v).decode() for v in value]  # type: ignore[attr-defined]
        else:
            value = _bytes_as_lists(value)
        wire.append([prop.name, prop.signature, value])
    return wire


def _bytes_as_lists(value: Any) -> Any:
    """JSON has no bytes: an `ay` inside a struct (IPAddressDeny's a(iayu)) travels as a list
    of ints, which apply_signature takes as it takes bytes."""
    if isinstance(value, bytes):
        return list(value)
    if isinstance(value, list | tuple):
        return [_bytes_as_lists(item) for item in value]
    return value


class SystemdSeam(Protocol):
    """What the daemon's parts ask of systemd: SystemdClient, or a fake of it in tests.

    The parts of hostd.daemon (lifecycle, admission, reaper) are typed against this, not the
    client, so each can be tested in memory (tests/hostd/daemon/fake_systemd.py); the real
    client is proven against a booted systemd in tests/hostd/daemon/systemd/.
    """

    async def start_unit(self, spec: UnitSpec) -> str: ...
    async def stop_unit(self, name: str) -> str: ...
    async def unit_status(self, name: str) -> UnitStatus | None: ...
    async def active_state(self, name: str) -> str | None: ...
    async def list_units(self, pattern: str) -> list[UnitStatus]: ...
    async def set_properties(self, name: str, properties: tuple[Property, ...]) -> None: ...
    async def unref(self, name: str) -> None: ...
    async def kill_unit(self, name: str, signal: int = 9) -> None: ...
    async def reset_failed(self, name: str) -> None: ...
    async def version(self) -> str: ...
    async def close(self) -> None: ...


class SystemdClient:
    """One worker process, many concurrent requests. Create with ``await connect()``."""

    def __init__(self) -> None:
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._next_id = 0
        self._lock = asyncio.Lock()

    @classmethod
    async def connect(cls) -> SystemdClient:
        """A client whose worker has reached systemd; waits for as long as that takes.

        A daemon started while D-Bus is down or restarting becomes ready when it is back,
        instead of exiting (issue 9: "recovers without a restart"); hostd.service's start
        timeout bounds the wait, and systemd restarts it (Restart=on-failure) past that.
        """
        client = cls()
        delay = CONNECT_RETRY_FIRST_S
        while True:
            try:
                await client.call("ping")
                return client
            except SystemdUnavailable as exc:
                log.warning(
                    "waiting for systemd over D-Bus (%s); trying again in %.1f s", exc, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, CONNECT_RETRY_MAX_S)

    async def _ensure_worker(self) -> asyncio.subprocess.Process:
        async with self._lock:
            if self._proc is not None and self._proc.returncode is None:
                return self._proc
            env = dict(os.environ)
            # Bound every D-Bus call: a hung systemd answers "timeout", not never.
            env.setdefault("SYSTEMD_BUS_TIMEOUT", "20s")
            # hostd.busworker.worker.PARENT_ENV (not imported: it would load pystemd in the daemon).
            env["HOSTD_BUS_WORKER_PARENT"] = str(os.getpid())
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "hostd.busworker.worker",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=env,
                limit=16 * 1024 * 1024,
            )
            self._reader = asyncio.create_task(self._read_replies(self._proc))
            return self._proc

    async def _read_replies(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        try:
            while line := await proc.stdout.readline():
                reply = json.loads(line)
                future = self._pending.pop(reply["id"], None)
                if future is None or future.done():
                    continue
                if reply["ok"]:
                    future.set_result(reply["result"])
                else:
                    future.set_exception(_map_error(reply["error"]))
        finally:
            await proc.wait()
            log.warning("systemd worker exited with status %s", proc.returncode)
            failures = list(self._pending.values())
            self._pending.clear()
            for future in failures:
                if not future.done():
                    future.set_exception(BusLost("the D-Bus worker exited"))

    async def call(self, op: str, timeout: float = CALL_TIMEOUT_S, **args: Any) -> Any:
        try:
            return await self._call_once(op, timeout, args)
        except BusLost as exc:
            if op not in RETRIABLE_OPS:
                raise
            log.info("D-Bus went away under %s (%s): once more on a fresh worker", op, exc)
            old = self._proc
            if old is not None and old.returncode is None:  # it exits on a lost bus: let it
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(old.wait(), 2)
            return await self._call_once(op, timeout, args)

    async def _call_once(self, op: str, timeout: float, args: dict[str, Any]) -> Any:
        proc = await self._ensure_worker()
        assert proc.stdin is not None
        self._next_id += 1
        request_id = self._next_id
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        proc.stdin.write(json.dumps({"id": request_id, "op": op, "args": args}).encode() + b"\n")
        try:
            await proc.stdin.drain()
            return await asyncio.wait_for(future, timeout)
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise BusLost("the D-Bus worker is gone") from exc
        except TimeoutError as exc:
            raise SystemdUnavailable(f"systemd did not answer {op} within {timeout:.0f} s") from exc
        finally:
            self._pending.pop(request_id, None)

    async def close(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                await asyncio.wait_for(self._proc.wait(), 5)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader

    # -- operations -----------------------------------------------------------------------

    async def start_unit(self, spec: UnitSpec) -> str:
        """Start a transient unit; returns the job's result (done, failed, ...)."""
        reply = await self.call(
            "start", JOB_TIMEOUT_S, name=spec.name, properties=_to_wire(spec.properties)
        )
        return str(reply["job"])

    async def stop_unit(self, name: str) -> str:
        """Stop a unit; returns the job's result, or "no-such-unit"."""
        return str((await self.call("stop", JOB_TIMEOUT_S, name=name))["job"])

    async def unit_status(self, name: str) -> UnitStatus | None:
        found = await self.call("get", name=name)
        return None if found is None else UnitStatus.from_properties(found)

    async def active_state(self, name: str) -> str | None:
        """The unit's ActiveState, or None if systemd has no such unit: the cheap read."""
        found = await self.call("state", name=name)
        return None if found is None else str(found)

    async def list_units(self, pattern: str) -> list[UnitStatus]:
        return [UnitStatus.from_properties(p) for p in await self.call("list", patterns=[pattern])]

    async def set_properties(self, name: str, properties: tuple[Property, ...]) -> None:
        await self.call("set", name=name, properties=_to_wire(properties))

    async def unref(self, name: str) -> None:
        await self.call("unref", name=name)

    async def kill_unit(self, name: str, signal: int = 9) -> None:
        """Signal every process of the unit (KillUnit, who=all); SIGKILL by default."""
        await self.call("kill", name=name, signal=signal)

    async def reset_failed(self, name: str) -> None:
        await self.call("reset_failed", name=name)

    async def version(self) -> str:
        return str((await self.call("ping"))["version"])


def _map_error(error: dict[str, Any]) -> Exception:
    """D-Bus errors become domain errors here, and nowhere else."""
    name, message = str(error.get("name", "")), str(error.get("message", ""))
    if name == "org.freedesktop.systemd1.UnitExists" or error.get("errno") == -errno.EEXIST:
        return SessionConflict(f"systemd: {message}")
    if error.get("errno") in BUS_LOST_ERRNOS:
        return BusLost(f"the connection to D-Bus was lost: {message}")
    if name in (
        "org.freedesktop.DBus.Error.NoReply",
        "org.freedesktop.DBus.Error.Timeout",
        "org.freedesktop.DBus.Error.ServiceUnknown",
        "org.freedesktop.DBus.Error.NoServer",
    ):
        return SystemdUnavailable(f"systemd: {message}")
    if name in (
        "org.freedesktop.DBus.Error.InvalidArgs",
        "org.freedesktop.DBus.Error.NotSupported",
    ):
        # Validated input that systemd still refuses: a directive this systemd lacks, say.
        return InvalidOption(f"systemd refused the unit: {message}")
    return SystemdUnavailable(f"systemd refused: {name}: {message}")


def utcnow() -> datetime:
    return datetime.now(UTC)
