"""The values that cross from units/ to the daemon (pure layer; no I/O).

A UnitSpec is everything StartTransientUnit needs: a unit name and its properties under their
D-Bus names, with D-Bus signatures, as plain Python values (str, int, bool, lists, tuples,
bytes for ``ay``). Turning them into a D-Bus message is hostd/'s job.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Property", "UnitSpec", "UserInfo"]


@dataclass(frozen=True)
class Property:
    """One transient-unit property: its D-Bus name (``CPUQuotaPerSecUSec``), signature
    (``t``) and value (``1000000``)."""

    name: str
    signature: str
    value: object


@dataclass(frozen=True)
class UserInfo:
    """The account a session runs as, as read from the user database by the daemon."""

    name: str
    uid: int
    gid: int
    home: str
    shell: str


@dataclass(frozen=True)
class UnitSpec:
    """A transient service to start: its unit name and its properties, in a fixed order."""

    name: str
    properties: tuple[Property, ...]

    def as_dict(self) -> dict[str, object]:
        """The property values by D-Bus name, in order (for logs, tests and diffs)."""
        return {prop.name: prop.value for prop in self.properties}

    def get(self, name: str) -> Property | None:
        """The property of that D-Bus name, or None if the unit does not set it."""
        return next((prop for prop in self.properties if prop.name == name), None)
