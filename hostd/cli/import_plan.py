"""What `hostctl import` read from another JupyterHub's configuration (hostd/ layer, pure: the
readers make it, hostd.cli.migrate_command shows and applies it).

An import is a plan, never code run: the settings it carries over (each a `hostctl config`
key, its value, and where in the admin's file it came from), the settings it leaves out (and
why), and notes the admin should read (a line to change, a default assumed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["ImportPlan", "ImportRefused", "NotCarried", "Setting"]


class ImportRefused(Exception):
    """The file cannot be imported at all (missing, unreadable, not the format it claims):
    ``message`` says why, ``problems`` lists details, one line each."""

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems


@dataclass(frozen=True)
class Setting:
    """One value carried over: ``key`` is `hostctl config`'s dotted name; ``merge`` adds the
    items of a list to the file's own (admins, allowed users) instead of replacing it."""

    key: str
    value: object
    origin: str  # "line 4: c.SystemdSpawner.mem_limit", "limits.memory"
    merge: bool = False


@dataclass(frozen=True)
class NotCarried:
    """A setting left out: where it is, and why."""

    origin: str
    reason: str


@dataclass
class ImportPlan:
    """What one file says, for hostd. ``source`` names the format, for people."""

    source: Literal["jupyterhub_config.py", "TLJH config.yaml"]
    settings: list[Setting] = field(default_factory=list)
    not_carried: list[NotCarried] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # The [commands] entry JupyterHub's HostdSpawner will run (hostd_command); None: no
    # JupyterHub stays (TLJH's is replaced by hostd's hub), none is needed.
    command_name: str | None = None

    def carry(self, key: str, value: object, origin: str, *, merge: bool = False) -> None:
        """Carry the value over; a later one of the same key wins (as in the admin's file)."""
        self.settings = [s for s in self.settings if s.key != key]
        self.settings.append(Setting(key, value, origin, merge))

    def leave_out(self, origin: str, reason: str) -> None:
        self.not_carried.append(NotCarried(origin, reason))
