"""The bus worker's read of a unit (consistent_read): its fields come from one state of the
unit, though read one Get at a time. The Gets are answered here from scripted states of a
unit, as PID 1 would between its turns; the systemd tier and the VM read real units."""

from __future__ import annotations

from typing import Any

from hostd.busworker.worker import (
    MISSING,
    READ_TRIES,
    SERVICE_FIELDS,
    UNIT_FIELDS,
    consistent_read,
)

RUNNING = {
    "Result": "success",
    "ExecMainStatus": 0,
    "ActiveState": "active",
    "StateChangeTimestamp": 1_000,
}
# The server died of SIGKILL (OOMPolicy=continue): one turn of PID 1 changes all of these.
DIED = {
    "Result": "signal",
    "ExecMainStatus": 9,
    "ActiveState": "failed",
    "StateChangeTimestamp": 2_000,
}
PER_READ = 1 + len(SERVICE_FIELDS) + len(UNIT_FIELDS)  # the stamp, then every field


class Unit:
    """A unit whose state moves on after given numbers of Gets."""

    def __init__(self, *states: dict[str, Any], after: tuple[int, ...] = ()) -> None:
        self.states, self.after, self.gets = states, after, 0

    def get(self, interface: bytes, field: str) -> Any:
        self.gets += 1
        moved = sum(self.gets > n for n in self.after)
        state = self.states[min(moved, len(self.states) - 1)]
        if field == "Environment":
            return MISSING  # a property this unit lacks is left out
        return state.get(field, f"{field} of {state['ActiveState']}")


def test_a_unit_that_does_not_change_is_read_once() -> None:
    unit = Unit(RUNNING)
    found = consistent_read(unit.get)
    assert (found["Result"], found["ActiveState"]) == ("success", "active")
    assert "Environment" not in found
    assert unit.gets == PER_READ  # the stamp, then each field once


def test_a_unit_that_dies_between_its_result_and_its_state_is_read_again() -> None:
    # Died after the Result was read (the 2nd Get): the first pass mixes both states.
    unit = Unit(RUNNING, DIED, after=(2,))
    found = consistent_read(unit.get)
    fields = ("Result", "ExecMainStatus", "ActiveState", "StateChangeTimestamp")
    assert {field: found[field] for field in fields} == DIED
    assert unit.gets == 2 * PER_READ


def test_a_unit_that_keeps_changing_is_read_at_most_read_tries_times() -> None:
    states = [dict(RUNNING, StateChangeTimestamp=n) for n in range(READ_TRIES + 2)]
    unit = Unit(*states, after=tuple(PER_READ * n + 1 for n in range(READ_TRIES + 1)))
    consistent_read(unit.get)
    assert unit.gets == READ_TRIES * PER_READ
