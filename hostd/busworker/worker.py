"""The D-Bus worker: the only process that runs pystemd (host layer).

Run as ``python -m hostd.busworker.worker`` by hostd.daemon.systemd. pystemd never releases
the GIL inside sd-bus calls, so a slow systemd would stall the daemon's event loop even from a
thread (SYSTEMD-NOTES.md); in a process of its own it stalls only this loop. It speaks JSON lines:

    request   {"id": 7, "op": "start", "args": {...}}
    response  {"id": 7, "ok": true, "result": ...}  or  {"id": 7, "ok": false,
               "error": {"name": "org.freedesktop.systemd1.NoSuchUnit", "message": "..."}}

Starts and stops answer when systemd's JobRemoved signal says the job finished, so several can
be in flight; everything else answers at once. One bus, one thread (sd-bus objects have thread
affinity).
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import sys
from collections.abc import Callable
from typing import Any

from hostd.api.lean_imports import without_package_init

if __name__ == "__main__":
    # pystemd's package __init__ imports its whole object layer (systemd1, machine1, lxml for
    # introspection): ~4 MiB of RSS this process never uses (issue 17). Without it Python
    # loads the Cython bus, pystemd.dbuslib, and what it imports alone.
    without_package_init("pystemd")

from pystemd.dbuslib import DBus, apply_signature

__all__ = [
    "BusError",
    "Worker",
    "consistent_read",
    "die_with_the_daemon",
    "error_name",
    "main",
    "properties_array",
    "serve",
    "text",
    "wire_value",
]


def error_name(exc: Exception) -> str:
    """The D-Bus error name of a pystemd exception.

    pystemd turns a known error name into a class (DBusNoSuchUnitError, DBusNoReplyError...)
    and keeps the name only for the base class; its map is not importable, so derive it.
    """
    explicit = text(getattr(exc, "err_name", "") or "")
    if explicit:
        return str(explicit)
    kind = type(exc).__name__
    if kind == "DBusNoSuchUnitError":
        return "org.freedesktop.systemd1.NoSuchUnit"
    if kind.startswith("DBus") and kind.endswith("Error"):
        return f"org.freedesktop.DBus.Error.{kind[4:-5]}"
    return f"pystemd.{kind}"


SYSTEMD = b"org.freedesktop.systemd1"
MANAGER_PATH = b"/org/freedesktop/systemd1"
MANAGER = b"org.freedesktop.systemd1.Manager"
UNIT = b"org.freedesktop.systemd1.Unit"
SERVICE = b"org.freedesktop.systemd1.Service"
PROPERTIES = b"org.freedesktop.DBus.Properties"

# What hostd reads of a unit (GetAll would return ~400 properties: read_unit says why not).
UNIT_FIELDS = (
    "Id",
    "ActiveState",
    "SubState",
    "LoadState",
    "InvocationID",
    "ActiveEnterTimestamp",
    "InactiveEnterTimestamp",
    "StateChangeTimestamp",
)
SERVICE_FIELDS = (
    "Result",
    "ExecMainCode",
    "ExecMainStatus",
    "ExecMainPID",
    "MainPID",
    "ControlGroup",
    "Environment",
    "User",
    "MemoryMax",
    "CPUQuotaPerSecUSec",
    "MemoryCurrent",
    "CPUUsageNSec",
    "NRestarts",
    "TasksCurrent",
)

# What Get answers for a property the unit lacks: skipped, as GetAll left it out.
MISSING_PROPERTY = frozenset(
    {
        "org.freedesktop.DBus.Error.UnknownProperty",
        "org.freedesktop.DBus.Error.UnknownInterface",
        "org.freedesktop.DBus.Error.InvalidArgs",
    }
)

# Process the bus at least this often: after a synchronous call, signals can sit in sd-bus's
# read queue while the fd is not readable (SYSTEMD-NOTES.md).
POLL_S = 0.05


MISSING = object()  # a property this unit does not have (consistent_read leaves it out)
READ_TRIES = 3  # reads of a unit that keeps changing state, before the last one is taken


def consistent_read(get: Callable[[bytes, str], Any]) -> dict[str, Any]:
    """The unit's fields from one state of it, read one Get at a time.

    PID 1 changes a unit's Result, exit status and ActiveState together, in one turn of its
    loop, and stamps StateChangeTimestamp then; our Gets can fall on both sides of that turn.
    A server that died between the read of Result ("success", still running) and of
    ActiveState ("failed") read as failed with Result success (VM run 42). So the stamp is read
    first and again last: a read it changed across is made again. The unit's state comes
    last, as before: a caller judges the session (is its server listening?) as soon after
    reading ActiveState as it can. A stop in between reads as "active, not listening": the
    daemon's own stops then read "stopping" (Views.session), but one it did not make (an
    admin's systemctl stop) reads "starting" for that moment."""
    found: dict[str, Any] = {}
    for _ in range(READ_TRIES):
        stamp = get(UNIT, "StateChangeTimestamp")
        found = {}
        for interface, fields in ((SERVICE, SERVICE_FIELDS), (UNIT, UNIT_FIELDS)):
            for field in fields:
                value = get(interface, field)
                if value is not MISSING:
                    found[field] = value
        if found.get("StateChangeTimestamp") == stamp:
            break
    return found


class BusError(Exception):
    def __init__(self, name: str, message: str, errno: int = 0) -> None:
        super().__init__(message)
        self.name = name
        self.message = message
        self.errno = errno


def text(value: Any) -> Any:
    """D-Bus replies are bytes all the way down; JSON wants text."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, dict):
        return {text(k): text(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [text(v) for v in value]
    return value


def wire_value(signature: str, value: Any) -> Any:
    """JSON carries `ay` as text; everything else maps as it is (lists for structs)."""
    if signature == "ay":
        return value.encode() if isinstance(value, str) else bytes(value)
    if signature.startswith("a") and signature[1:] == "ay":
        return [wire_value("ay", v) for v in value]
    return value


def properties_array(properties: list[list[Any]]) -> list[tuple[int, Any]]:
    """`a(sv)` from (name, signature, value) triples, for any property systemd knows.

    pystemd's own table lacks several (CPUWeight, LogExtraFields, LoadCredential, ...): we
    build the argument ourselves with apply_signature, as SYSTEMD-NOTES.md describes.
    """
    args: list[tuple[int, Any]] = [(ord("a"), b"(sv)")]
    for name, signature, value in properties:
        sig = signature.encode()
        args += [(ord("r"), b"sv"), (ord("s"), name.encode())]
        args += [(ord("v"), sig)]
        args += apply_signature(sig, [wire_value(signature, value)])
        args += [(-1, None), (-1, None)]
    args += [(-1, None)]
    return args


class Worker:
    def __init__(self, bus: DBus) -> None:
        self.bus = bus
        self.jobs: dict[str, int] = {}  # job path -> request id waiting for it
        self.finished: dict[str, str] = {}  # job path -> result, for jobs done before we knew
        self.out = sys.stdout

    # -- plumbing -------------------------------------------------------------------------

    def call(self, path: bytes, interface: bytes, method: bytes, args: list[Any]) -> Any:
        try:
            return self.bus.call_method(SYSTEMD, path, interface, method, args).body
        except Exception as exc:  # pystemd's DBusBaseError family: errno, err_name, err_message
            message = text(getattr(exc, "err_message", "") or "") or str(exc)
            errno = int(getattr(exc, "errno", 0) or 0)
            raise BusError(error_name(exc), message, errno) from exc

    def reply(self, request_id: int, result: Any = None, error: BusError | None = None) -> None:
        if error is None:
            line = {"id": request_id, "ok": True, "result": result}
        else:
            line = {
                "id": request_id,
                "ok": False,
                "error": {"name": error.name, "message": error.message, "errno": error.errno},
            }
        self.out.write(json.dumps(line) + "\n")
        self.out.flush()

    def on_job_removed(self, job_path: str, result: str) -> None:
        request_id = self.jobs.pop(job_path, None)
        if request_id is None:
            self.finished[job_path] = result
            if len(self.finished) > 1000:  # jobs of others (systemctl): forget the oldest
                self.finished.pop(next(iter(self.finished)))
        else:
            self.reply(request_id, {"job": result})

    def wait_job(self, request_id: int, job_path: str) -> None:
        done = self.finished.pop(job_path, None)
        if done is not None:
            self.reply(request_id, {"job": done})
        else:
            self.jobs[job_path] = request_id

    def unit_path(self, name: str) -> bytes | None:
        try:
            path = self.call(
                MANAGER_PATH, MANAGER, b"GetUnit", apply_signature(b"s", [name.encode()])
            )
            return bytes(path)
        except BusError as exc:
            if exc.name == "org.freedesktop.systemd1.NoSuchUnit":
                return None
            raise

    # -- operations -----------------------------------------------------------------------

    def op_start(self, request_id: int, name: str, properties: list[list[Any]]) -> None:
        args = apply_signature(b"ss", [name.encode(), b"fail"])
        args += properties_array(properties)
        args += [(ord("a"), b"(sa(sv))"), (-1, None)]
        # A reply with one value decodes as that value, not a one-element list.
        job = self.call(MANAGER_PATH, MANAGER, b"StartTransientUnit", args)
        self.wait_job(request_id, text(job))

    def op_stop(self, request_id: int, name: str) -> None:
        try:
            job = self.call(
                MANAGER_PATH,
                MANAGER,
                b"StopUnit",
                apply_signature(b"ss", [name.encode(), b"replace"]),
            )
        except BusError as exc:
            if exc.name in (
                "org.freedesktop.systemd1.NoSuchUnit",
                "org.freedesktop.DBus.Error.UnknownObject",
            ):
                self.reply(request_id, {"job": "no-such-unit"})
                return
            raise
        self.wait_job(request_id, text(job))

    def op_get(self, request_id: int, name: str) -> None:
        self.reply(request_id, self.read_unit(name))

    def op_state(self, request_id: int, name: str) -> None:
        """ActiveState alone (None: no such unit). For polling: one Get costs about 0.1 ms of
        this worker's CPU, where read_unit's two GetAll (400 properties) cost 5 ms here and
        more in PID 1."""
        path = self.unit_path(name)
        state = None
        if path is not None:
            state = text(
                self.call(path, PROPERTIES, b"Get", apply_signature(b"ss", [UNIT, b"ActiveState"]))
            )
        self.reply(request_id, state)

    def read_unit(self, name: str) -> dict[str, Any] | None:
        """The fields hostd reads of a unit, one Get each (None: no such unit).

        Not GetAll: its ~400 decoded properties per unit were a burst of short-lived objects
        that left this process's allocator 2 MiB larger for good, and 22 Gets cost less CPU
        here and in PID 1 and less time than two GetAll (issue 17, README's Benchmarks).
        One Get at a time is not one snapshot: consistent_read says how the fields are kept
        from two states of the unit."""
        path = self.unit_path(name)
        if path is None:
            return None

        def get(interface: bytes, field: str) -> Any:
            which = apply_signature(b"ss", [interface, field.encode()])
            try:
                return text(self.call(path, PROPERTIES, b"Get", which))
            except BusError as exc:
                if exc.name in MISSING_PROPERTY:  # not a service, or an older systemd
                    return MISSING
                raise

        return consistent_read(get)

    def op_list(self, request_id: int, patterns: list[str]) -> None:
        args = apply_signature(b"asas", [[], [p.encode() for p in patterns]])
        units = self.call(MANAGER_PATH, MANAGER, b"ListUnitsByPatterns", args)
        found = []
        for entry in units or []:
            info = self.read_unit(text(entry[0]))
            if info is not None:
                found.append(info)
        self.reply(request_id, found)

    def op_set(self, request_id: int, name: str, properties: list[list[Any]]) -> None:
        args = apply_signature(b"sb", [name.encode(), True])
        args += properties_array(properties)
        self.call(MANAGER_PATH, MANAGER, b"SetUnitProperties", args)
        self.reply(request_id, None)

    def op_unref(self, request_id: int, name: str) -> None:
        path = self.unit_path(name)
        if path is not None:
            try:
                self.call(path, UNIT, b"Unref", [])
            except BusError as exc:  # not referenced by us (another daemon run created it)
                if "NotReferenced" not in exc.name:
                    raise
        self.reply(request_id, None)

    def op_kill(self, request_id: int, name: str, signal: int = 9) -> None:
        self.call(
            MANAGER_PATH,
            MANAGER,
            b"KillUnit",
            apply_signature(b"ssi", [name.encode(), b"all", signal]),
        )
        self.reply(request_id, None)

    def op_reset_failed(self, request_id: int, name: str) -> None:
        try:
            self.call(
                MANAGER_PATH, MANAGER, b"ResetFailedUnit", apply_signature(b"s", [name.encode()])
            )
        except BusError as exc:
            if exc.name != "org.freedesktop.systemd1.NoSuchUnit":
                raise
        self.reply(request_id, None)

    def op_ping(self, request_id: int) -> None:
        version = self.bus.get_property(SYSTEMD, MANAGER_PATH, MANAGER, b"Version", b"s")
        self.reply(request_id, {"version": text(version)})

    # -- loop -----------------------------------------------------------------------------

    def handle(self, line: str) -> None:
        request = json.loads(line)
        request_id = int(request["id"])
        ops: dict[str, Callable[..., None]] = {
            "start": self.op_start,
            "stop": self.op_stop,
            "get": self.op_get,
            "state": self.op_state,
            "list": self.op_list,
            "set": self.op_set,
            "unref": self.op_unref,
            "reset_failed": self.op_reset_failed,
            "kill": self.op_kill,
            "ping": self.op_ping,
        }
        op = ops.get(request.get("op"))
        try:
            if op is None:
                raise BusError("hostd.UnknownOperation", f"unknown operation {request.get('op')!r}")
            op(request_id, **request.get("args", {}))
        except BusError as exc:
            self.reply(request_id, error=exc)
        except Exception as exc:
            self.reply(
                request_id, error=BusError("hostd.WorkerError", f"{type(exc).__name__}: {exc}")
            )

    def drain(self) -> None:
        # process() returns an empty message both when idle and when a callback consumed one;
        # a few empty rounds in a row mean the queue is really empty.
        empty = 0
        while empty < 3:
            message = self.bus.process()
            empty = empty + 1 if message.is_empty() else 0


# match_signal keeps a borrowed pointer to its callback: it must live as long as the process
# (a collected callback segfaults, SYSTEMD-NOTES.md), so it is a module-level function.
_WORKER: Worker | None = None


def _job_removed(message: Any, error: Any = None, userdata: Any = None) -> None:
    message.process_reply(False)
    _id, job, _unit, result = message.body
    if _WORKER is not None:
        _WORKER.on_job_removed(text(job), text(result))


def main() -> int:
    try:
        return serve()
    except Exception as exc:  # no bus (D-Bus down), or it went away (D-Bus restarted)
        # One line for the daemon's log; the daemon starts a fresh worker on its next call.
        first_line = (str(exc).splitlines() or [""])[0]  # pystemd adds a paragraph of banter
        print(
            f"hostd.busworker.worker: {type(exc).__name__}: {first_line}",
            file=sys.stderr,
            flush=True,
        )
        return 1


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PARENT_ENV = "HOSTD_BUS_WORKER_PARENT"  # the daemon's pid, set by hostd.daemon.systemd


def die_with_the_daemon() -> None:
    """SIGKILL this worker the moment the daemon dies: requests it read but had not sent
    would otherwise still reach systemd after a ``kill -9`` of the daemon, behind the back of
    the next daemon's start-up scan."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    parent = os.environ.get(PARENT_ENV)
    if parent is not None and os.getppid() != int(parent):  # died before prctl took hold
        os._exit(1)


def serve() -> int:
    global _WORKER
    die_with_the_daemon()
    bus = DBus()
    bus.open()
    worker = _WORKER = Worker(bus)
    bus.match_signal(SYSTEMD, MANAGER_PATH, MANAGER, b"JobRemoved", _job_removed)
    # systemd only emits unit and job signals to clients that subscribed.
    worker.call(MANAGER_PATH, MANAGER, b"Subscribe", [])
    stdin = sys.stdin.fileno()
    os.set_blocking(stdin, False)
    pending = b""
    while True:
        readable, _, _ = select.select([stdin, bus.get_fd()], [], [], POLL_S)
        if stdin in readable:
            chunk = os.read(stdin, 65536)
            if not chunk:
                return 0  # the daemon went away: so do we (and our unit references)
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                if line.strip():
                    worker.handle(line.decode())
                    worker.drain()
        worker.drain()


if __name__ == "__main__":
    sys.exit(main())
