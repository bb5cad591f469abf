"""Session history in sqlite, with the standard library's sqlite3 (host layer).

systemd is the truth about what runs now; this keeps what systemd forgets once a unit is
collected: who started what, when, with which limits, and how it ended. Calls block (sqlite
is quick, but it is a disk write): the daemon runs them with asyncio.to_thread.

Plain sqlite3 rather than an ORM: sqlmodel's stack (pydantic + SQLAlchemy) cost the daemon
about 25 MiB of RSS at rest for two small tables (issue 17). The file is the one the sqlmodel
version wrote, read and written the same way: the same tables, columns, indexes and
datetime text (``YYYY-MM-DD HH:MM:SS.ffffff``, UTC, no zone; read back without one).
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

__all__ = [
    "MaintenanceRecord",
    "SessionRecord",
    "Store",
    "now",
]


@dataclass
class SessionRecord:
    user: str
    unit: str
    started_at: datetime
    id: int | None = None
    invocation_id: str | None = None
    port: int | None = None
    ended_at: datetime | None = None
    state: str = "starting"  # starting, running, stopped, failed
    result: str | None = None  # systemd's Result
    exit_status: int | None = None
    reason: str | None = None  # why it ended: stopped by <who>, failed at start, lost, ...
    mem_limit_bytes: int | None = None
    cpu_limit: float | None = None
    started_by_uid: int | None = None
    profile: str | None = None  # the limits profile applied: "user:alice", "group:staff"
    profile_slug: str | None = None  # the [[profile_list]] choice started: "small", "gpu"


@dataclass
class MaintenanceRecord:
    """The admin's maintenance state (hostd.daemon.maintenance): one row, id 1, so that a
    drain set before a restart of the daemon (or a reboot) still holds after it."""

    id: int = 1
    announcement: str | None = None
    drain_at: datetime | None = None  # UTC
    drain_message: str | None = None


# The schema as SQLAlchemy's create_all made it for the sqlmodel version (same tables, types,
# keys and index names): a file made by either version is read and written by the other.
_TABLES: Final = (
    """CREATE TABLE IF NOT EXISTS sessions (
	id INTEGER NOT NULL,
	user VARCHAR NOT NULL,
	unit VARCHAR NOT NULL,
	invocation_id VARCHAR,
	port INTEGER,
	started_at DATETIME NOT NULL,
	ended_at DATETIME,
	state VARCHAR NOT NULL,
	result VARCHAR,
	exit_status INTEGER,
	reason VARCHAR,
	mem_limit_bytes INTEGER,
	cpu_limit FLOAT,
	started_by_uid INTEGER,
	profile VARCHAR,
	profile_slug VARCHAR,
	PRIMARY KEY (id)
)""",
    """CREATE TABLE IF NOT EXISTS maintenance (
	id INTEGER NOT NULL,
	announcement VARCHAR,
	drain_at DATETIME,
	drain_message VARCHAR,
	PRIMARY KEY (id)
)""",
)  # fmt: skip

_INDEXES: Final = (
    "CREATE INDEX IF NOT EXISTS ix_sessions_user ON sessions (user)",
    "CREATE INDEX IF NOT EXISTS ix_sessions_invocation_id ON sessions (invocation_id)",
)
# Every column of sessions with its sqlite type: what an older file lacks is added (nullable).
_SESSION_COLUMNS: Final = {
    "id": "INTEGER",
    "user": "VARCHAR",
    "unit": "VARCHAR",
    "invocation_id": "VARCHAR",
    "port": "INTEGER",
    "started_at": "DATETIME",
    "ended_at": "DATETIME",
    "state": "VARCHAR",
    "result": "VARCHAR",
    "exit_status": "INTEGER",
    "reason": "VARCHAR",
    "mem_limit_bytes": "INTEGER",
    "cpu_limit": "FLOAT",
    "started_by_uid": "INTEGER",
    "profile": "VARCHAR",
    "profile_slug": "VARCHAR",
}
_DATETIMES: Final = frozenset({"started_at", "ended_at", "drain_at"})
_SESSION_FIELDS: Final = tuple(f.name for f in fields(SessionRecord))
_MAINTENANCE_FIELDS: Final = tuple(f.name for f in fields(MaintenanceRecord))
# The statements built from the records' field names (constants of this module, never input).
_SELECT_SESSIONS: Final = f"SELECT {', '.join(_SESSION_FIELDS)} FROM sessions WHERE "  # noqa: S608
_SELECT_MAINTENANCE: Final = (
    f"SELECT {', '.join(_MAINTENANCE_FIELDS)} FROM maintenance WHERE id = 1"  # noqa: S608
)


def _to_db(value: object) -> object:
    """A value as the file keeps it: datetimes as SQLAlchemy's sqlite text, in UTC."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def _from_db(text: str | None) -> datetime | None:
    """A datetime of the file (naive, UTC), as SQLAlchemy gave it back."""
    return None if text is None else datetime.fromisoformat(text)


def _row(names: tuple[str, ...], row: tuple[Any, ...]) -> dict[str, Any]:
    return {
        name: _from_db(value) if name in _DATETIMES else value
        for name, value in zip(names, row, strict=True)
    }


class Store:
    """One sqlite file. Create with ``Store.open(path)`` (no I/O in the constructor)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._lock = threading.Lock()  # one connection, used by worker threads one at a time

    @classmethod
    def open(cls, path: Path) -> Store:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        with db:
            for statement in _TABLES:
                db.execute(statement)
            _add_missing_columns(db)  # before the indexes: one may be on a new column
            for statement in _INDEXES:
                db.execute(statement)
        return cls(db)

    def add(self, record: SessionRecord) -> SessionRecord:
        names = [n for n in _SESSION_FIELDS if not (n == "id" and record.id is None)]
        values = [_to_db(getattr(record, n)) for n in names]
        marks = ", ".join("?" * len(names))
        with self._lock:
            cursor = self._db.execute(
                f"INSERT INTO sessions ({', '.join(names)}) VALUES ({marks})",  # noqa: S608 (field names)
                values,
            )
            record.id = cursor.lastrowid
            found = self._session_where("id = ?", (record.id,))
        assert found is not None
        return found

    def update(self, record_id: int, **changes: object) -> None:
        unknown = set(changes) - set(_SESSION_FIELDS)
        if unknown:
            raise ValueError(f"no such columns: {sorted(unknown)}")
        if not changes:
            return
        assignments = ", ".join(f"{name} = ?" for name in changes)
        with self._lock:
            self._db.execute(
                f"UPDATE sessions SET {assignments} WHERE id = ?",  # noqa: S608 (checked names)
                [*(_to_db(v) for v in changes.values()), record_id],
            )

    def last_for(self, user: str) -> SessionRecord | None:
        with self._lock:
            return self._session_where("user = ? ORDER BY id DESC LIMIT 1", (user,))

    def open_records(self) -> list[SessionRecord]:
        """Records of sessions that have not ended (as far as the store knows)."""
        with self._lock:
            rows = self._db.execute(_SELECT_SESSIONS + "ended_at IS NULL").fetchall()
        return [SessionRecord(**_row(_SESSION_FIELDS, row)) for row in rows]

    def maintenance(self) -> MaintenanceRecord:
        """The maintenance state (an empty one if none was ever saved)."""
        with self._lock:
            row = self._db.execute(_SELECT_MAINTENANCE).fetchone()
        return (
            MaintenanceRecord()
            if row is None
            else MaintenanceRecord(**_row(_MAINTENANCE_FIELDS, row))
        )

    def save_maintenance(
        self, *, announcement: str | None, drain_at: datetime | None, drain_message: str | None
    ) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO maintenance (id, announcement, drain_at, drain_message)"
                " VALUES (1, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " announcement = excluded.announcement, drain_at = excluded.drain_at,"
                " drain_message = excluded.drain_message",
                (announcement, _to_db(drain_at), drain_message),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _session_where(self, where: str, params: tuple[object, ...]) -> SessionRecord | None:
        row = self._db.execute(_SELECT_SESSIONS + where, params).fetchone()
        return None if row is None else SessionRecord(**_row(_SESSION_FIELDS, row))


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """Upgrade in place: a column added since the file was made is added, nullable.

    CREATE TABLE IF NOT EXISTS never alters a table; every column added after the first
    release is optional, so ALTER TABLE ... ADD COLUMN is the whole migration.
    """
    present = {row[1] for row in db.execute("PRAGMA table_info(sessions)")}
    for name, kind in _SESSION_COLUMNS.items():
        if name not in present:
            db.execute(f"ALTER TABLE sessions ADD COLUMN {name} {kind}")


def now() -> datetime:
    return datetime.now(UTC)
