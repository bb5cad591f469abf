"""What the daemon keeps in memory about each user's session (host layer; no I/O).

State lives in systemd and the store; this is the little that is cheap to rebuild at start-up
(the reaper's reattach does): the lock that keeps a start and a stop of one user from
interleaving, the port the session holds (also in its unit's HOSTD_PORT), the GPUs it holds
(also in its unit's HOSTD_GPUS), the store record not yet closed, the memory it was promised,
when it was last active and its profile. One entry per user, in one table, instead of one
dictionary per field.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

__all__ = ["SessionTable", "UserEntry"]


@dataclass
class UserEntry:
    """One user's session as the daemon tracks it; a field is None while it does not apply."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    port: int | None = None  # held by a session that is not over
    record_id: int | None = None  # the store's record of the session not yet ended
    promised: int | None = None  # memory limit counted against capacity
    active_at: float | None = None  # monotonic time of its last activity
    profile: str | None = None  # the profile its running session got
    gpus: tuple[int, ...] = ()  # the GPUs (indices in [gpus]) a session that is not over holds
    profile_slug: str | None = None  # the [[profile_list]] choice it was started with
    # Why the daemon is stopping it (a caller's stop, a cull, a drain), until the end is
    # recorded: a view of the unit that has just ended gives this reason, not "ended".
    stop_reason: str | None = None
    stops_begun: int = 0  # how many stops the daemon has begun: a view sees one begin


class SessionTable:
    """Entries by user name. An entry, like its lock, stays once made (one per user seen)."""

    def __init__(self) -> None:
        self._entries: dict[str, UserEntry] = {}

    def __getitem__(self, name: str) -> UserEntry:
        entry = self._entries.get(name)
        if entry is None:
            entry = self._entries[name] = UserEntry()
        return entry

    def lock(self, name: str) -> asyncio.Lock:
        return self[name].lock

    def record_id(self, name: str) -> int | None:
        entry = self._entries.get(name)
        return None if entry is None else entry.record_id

    def profile(self, name: str) -> str | None:
        entry = self._entries.get(name)
        return None if entry is None else entry.profile

    def profile_slug(self, name: str) -> str | None:
        entry = self._entries.get(name)
        return None if entry is None else entry.profile_slug

    def stop_reason(self, name: str) -> str | None:
        """Why the daemon is stopping the session, while it has asked systemd to stop it and
        has not recorded the end yet; else None."""
        entry = self._entries.get(name)
        return None if entry is None else entry.stop_reason

    def stops_begun(self, name: str) -> int:
        """How many stops of the session the daemon has begun (a view compares two reads)."""
        entry = self._entries.get(name)
        return 0 if entry is None else entry.stops_begun

    def recorded(self) -> list[str]:
        """Users whose session has a store record not yet closed."""
        return [name for name, entry in self._entries.items() if entry.record_id is not None]

    def ports(self) -> set[int]:
        """Ports held by sessions that are not over."""
        return {entry.port for entry in self._entries.values() if entry.port is not None}

    def gpus(self) -> dict[int, str]:
        """GPUs held by sessions that are not over: index -> user."""
        return {gpu: name for name, entry in self._entries.items() for gpu in entry.gpus}

    def promised_except(self, name: str) -> int:
        """Memory promised to every session but name's."""
        return sum(entry.promised or 0 for user, entry in self._entries.items() if user != name)

    def promised_total(self) -> int:
        """Memory promised to every session together."""
        return sum(entry.promised or 0 for entry in self._entries.values())

    def close_record(self, name: str) -> int | None:
        """Forget the session's record, activity and profile; the record's id, if any."""
        entry = self[name]
        record_id = entry.record_id
        entry.record_id = entry.active_at = entry.profile = entry.profile_slug = None
        return record_id

    def release(self, name: str) -> None:
        """Free the port, the promised memory and the GPUs of a session that is over."""
        entry = self[name]
        entry.port = entry.promised = None
        entry.gpus = ()
