"""An in-memory fake of the daemon's own systemd seam (hostd.daemon.systemd.SystemdSeam).

Not a mock of systemd: it implements, in a few lines each, what the daemon's parts ask of
SystemdClient (start, stop, read, set properties, unref, kill, reset-failed), so lifecycle,
admission, reaper and views can be tested without a booted systemd. What systemd itself does
with a unit is proven against a real one in tests/hostd/daemon/systemd/.
"""

from __future__ import annotations

import fnmatch
import socket
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from hostd.daemon.ports import ListenerCheck, SessionOwner
from hostd.daemon.systemd import UnitStatus
from hostd.units import Property, UnitSpec
from hostd.units.errors import SessionConflict

__all__ = ["FakeSystemd", "unit_status"]


def unit_status(
    name: str,
    active_state: str = "active",
    *,
    result: str | None = "success",
    port: int | None = None,
    memory_max: int | None = None,
    cpu_quota_usec: int | None = None,
    exit_code: int | None = None,
    exit_status: int | None = None,
) -> UnitStatus:
    """A unit's status as SystemdClient would read it."""
    return UnitStatus(
        name=name,
        active_state=active_state,
        sub_state="running" if active_state == "active" else "dead",
        result=result,
        exit_code=exit_code,
        exit_status=exit_status,
        main_pid=None,
        invocation_id="0123abcd",
        control_group=None,
        environment=() if port is None else (f"HOSTD_PORT={port}",),
        user=None,
        memory_max=memory_max,
        cpu_quota_usec=cpu_quota_usec,
        active_since=datetime(2026, 12, 6, tzinfo=UTC),
    )


class FakeSystemd:
    """Units by name. start_job is what a start job ends with; serve, when set, makes the
    session answer on its port (a real listening socket) once its unit starts; squatter_uid,
    when set, has "another account" (this process, reported as that uid) bind the port first.
    ``probe`` stands in for hostd.daemon.ports.check_listener: nothing runs as the session's
    user here, so it answers from the listeners the fake made."""

    def __init__(self) -> None:
        self.units: dict[str, UnitStatus] = {}
        self.started: list[UnitSpec] = []
        self.set: list[tuple[str, tuple[Property, ...]]] = []
        self.calls: list[tuple[str, str]] = []
        self.start_job = "done"
        self.start_error: Exception | None = None
        self.set_error: Exception | None = None
        self.serve = False
        self.squatter_uid: int | None = None
        self.listeners: list[socket.socket] = []
        self.served: set[int] = set()  # ports the sessions' own listeners hold
        self.squatted: dict[int, int] = {}  # port -> uid of the account that took it
        self.on_stop: Callable[[str], None] | None = None

    # -- SystemdSeam ------------------------------------------------------------------------

    async def start_unit(self, spec: UnitSpec) -> str:
        self.calls.append(("start", spec.name))
        if self.start_error is not None:
            raise self.start_error
        if spec.name in self.units:
            raise SessionConflict(f"systemd: Unit {spec.name} already exists.")
        self.started.append(spec)
        props = {p.name: p.value for p in spec.properties}
        environment = tuple(str(v) for v in props.get("Environment", []))  # type: ignore[attr-defined]
        memory_max, quota = props.get("MemoryMax"), props.get("CPUQuotaPerSecUSec")
        state = "active" if self.start_job == "done" else "failed"
        status = unit_status(
            spec.name,
            state,
            result="success" if state == "active" else "exit-code",
            memory_max=memory_max if isinstance(memory_max, int) else None,
            cpu_quota_usec=quota if isinstance(quota, int) else None,
        )
        user = props.get("User")
        self.units[spec.name] = replace(
            status, environment=environment, user=user if isinstance(user, str) else None
        )
        port = self.units[spec.name].env("HOSTD_PORT")
        if self.squatter_uid is not None and port is not None:
            self.listeners.append(socket.create_server(("127.0.0.1", int(port))))
            self.squatted[int(port)] = self.squatter_uid
        elif self.serve and port is not None:
            self.listeners.append(socket.create_server(("127.0.0.1", int(port))))
            self.served.add(int(port))
        return self.start_job

    def probe(self, port: int, owner: SessionOwner) -> ListenerCheck:
        """Who listens on the port, as check_listener would tell from the kernel's tables."""
        if port in self.squatted:
            return ListenerCheck("foreign", self.squatted[port], None)
        if port in self.served:
            return ListenerCheck("ours", owner.uid, owner.main_pid)
        return ListenerCheck("none")

    async def stop_unit(self, name: str) -> str:
        self.calls.append(("stop", name))
        status = self.units.get(name)
        if status is None:
            return "no-such-unit"
        self.units[name] = replace(status, active_state="inactive", sub_state="dead")
        if self.on_stop is not None:
            self.on_stop(name)
        return "done"

    async def unit_status(self, name: str) -> UnitStatus | None:
        return self.units.get(name)

    async def active_state(self, name: str) -> str | None:
        status = self.units.get(name)
        return None if status is None else status.active_state

    async def list_units(self, pattern: str) -> list[UnitStatus]:
        return [s for name, s in sorted(self.units.items()) if fnmatch.fnmatch(name, pattern)]

    async def set_properties(self, name: str, properties: tuple[Property, ...]) -> None:
        self.calls.append(("set", name))
        if self.set_error is not None:
            raise self.set_error
        self.set.append((name, properties))
        status = self.units.get(name)
        if status is None:
            return
        for prop in properties:
            if prop.name == "MemoryMax" and isinstance(prop.value, int):
                status = replace(status, memory_max=prop.value)
            if prop.name == "CPUQuotaPerSecUSec" and isinstance(prop.value, int):
                status = replace(status, cpu_quota_usec=prop.value)
        self.units[name] = status

    async def unref(self, name: str) -> None:
        self.calls.append(("unref", name))
        self._collect(name)

    async def kill_unit(self, name: str, signal: int = 9) -> None:
        self.calls.append(("kill", name))
        status = self.units[name]
        self.units[name] = replace(status, active_state="failed", result="signal")

    async def reset_failed(self, name: str) -> None:
        self.calls.append(("reset_failed", name))
        self._collect(name)

    async def version(self) -> str:
        return "252"

    async def close(self) -> None:
        for listener in self.listeners:
            listener.close()

    # -- what systemd does on its own -------------------------------------------------------

    def end(self, name: str, *, result: str = "success", exit_status: int = 0) -> None:
        """The unit's process ended on its own (exited, crashed, was killed)."""
        state = "inactive" if result == "success" else "failed"
        self.units[name] = replace(
            self.units[name],
            active_state=state,
            result=result,
            exit_status=exit_status,
            exit_code=1,
        )

    def _collect(self, name: str) -> None:
        # CollectMode=inactive-or-failed: an ended unit no one holds is gone.
        status = self.units.get(name)
        if status is not None and status.active_state in ("inactive", "failed"):
            del self.units[name]
