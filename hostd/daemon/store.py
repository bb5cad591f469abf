"""Session history in sqlite, via sqlmodel (host layer).

systemd is the truth about what runs now; this keeps what systemd forgets once a unit is
collected: who started what, when, with which limits, and how it ended. Calls block (sqlite
is quick, but it is a disk write): the daemon runs them with asyncio.to_thread.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Field, Session, SQLModel, col, create_engine, select

__all__ = [
    "MaintenanceRecord",
    "SessionRecord",
    "Store",
    "now",
]


class SessionRecord(SQLModel, table=True):
    __tablename__ = "sessions"

    id: int | None = Field(default=None, primary_key=True)
    user: str = Field(index=True)
    unit: str
    invocation_id: str | None = Field(default=None, index=True)
    port: int | None = None
    started_at: datetime
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


class MaintenanceRecord(SQLModel, table=True):
    """The admin's maintenance state (hostd.daemon.maintenance): one row, id 1, so that a
    drain set before a restart of the daemon (or a reboot) still holds after it."""

    __tablename__ = "maintenance"

    id: int = Field(default=1, primary_key=True)
    announcement: str | None = None
    drain_at: datetime | None = None  # UTC
    drain_message: str | None = None


class Store:
    """One sqlite file. Create with ``Store.open(path)`` (no I/O in the constructor)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()  # sqlite writes from worker threads, one at a time

    @classmethod
    def open(cls, path: Path) -> Store:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False})
        SQLModel.metadata.create_all(engine)
        _add_missing_columns(engine)
        return cls(engine)

    def add(self, record: SessionRecord) -> SessionRecord:
        with self._lock, Session(self._engine, expire_on_commit=False) as db:
            db.add(record)
            db.commit()
            db.refresh(record)
            return record

    def update(self, record_id: int, **changes: object) -> None:
        with self._lock, Session(self._engine) as db:
            record = db.get(SessionRecord, record_id)
            if record is None:
                return
            for key, value in changes.items():
                setattr(record, key, value)
            db.add(record)
            db.commit()

    def last_for(self, user: str) -> SessionRecord | None:
        with Session(self._engine, expire_on_commit=False) as db:
            query = (
                select(SessionRecord)
                .where(SessionRecord.user == user)
                .order_by(col(SessionRecord.id).desc())
                .limit(1)
            )
            return db.exec(query).first()

    def open_records(self) -> list[SessionRecord]:
        """Records of sessions that have not ended (as far as the store knows)."""
        with Session(self._engine, expire_on_commit=False) as db:
            query = select(SessionRecord).where(col(SessionRecord.ended_at).is_(None))
            return list(db.exec(query).all())

    def maintenance(self) -> MaintenanceRecord:
        """The maintenance state (an empty one if none was ever saved)."""
        with Session(self._engine, expire_on_commit=False) as db:
            return db.get(MaintenanceRecord, 1) or MaintenanceRecord()

    def save_maintenance(
        self, *, announcement: str | None, drain_at: datetime | None, drain_message: str | None
    ) -> None:
        with self._lock, Session(self._engine) as db:
            record = db.get(MaintenanceRecord, 1) or MaintenanceRecord()
            record.announcement = announcement
            record.drain_at = drain_at
            record.drain_message = drain_message
            db.add(record)
            db.commit()

    def close(self) -> None:
        self._engine.dispose()


def _add_missing_columns(engine: Engine) -> None:
    """Upgrade in place: a column added since the file was made is added, nullable.

    create_all makes missing tables but never alters one; every column added after the first
    release is optional, so ALTER TABLE ... ADD COLUMN is the whole migration.
    """
    table = SessionRecord.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        present = {row[1] for row in conn.exec_driver_sql(f"PRAGMA table_info({table.name})")}
        for column in table.columns:
            if column.name not in present:
                kind = column.type.compile(dialect=engine.dialect)
                conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}")


def now() -> datetime:
    return datetime.now(UTC)
