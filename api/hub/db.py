"""The hub's user database, in sqlite with the standard library's sqlite3 (api layer; the one
module of the hub that writes disk).

Tables: ``users`` (name, admin, first seen, last login, last activity), ``login_events`` and
``spawn_events`` (who did what when, for people), ``browser_sessions`` (one row per logged-in
browser: logout deletes it, so an old cookie stops working) and ``api_tokens`` (per-user
tokens for scripts). Tokens and session ids are kept as SHA-256 hashes only. Each session and
token keeps the uid its account had when it was made: a name deleted and made again (another
uid) inherits none of them (hostd.api.hub.identity compares it with the account's uid now).

The file is made on first start and upgraded in place: ``HubStore.open`` creates missing
tables and adds missing columns; every column added after the first release is nullable, so
``ALTER TABLE ... ADD COLUMN`` is the whole migration (as hostd.daemon.store does for the daemon).
Rows from before the uid column have none (NULL): nothing tells which account made them, so
they are refused, and ``HubStore.open`` deletes them (their users log in again and make new
tokens; ``legacy_rows_removed`` says how many went).

Plain sqlite3 rather than an ORM: sqlmodel's stack (pydantic + SQLAlchemy) cost the hub about
25 MiB of RSS at rest (issue 17). The file is the one the sqlmodel version wrote, read and
written the same way: the same tables, columns, indexes, booleans as 0/1 and datetime text
(``YYYY-MM-DD HH:MM:SS.ffffff``, UTC, no zone; read back without one, see ``aware``). Calls
block; the app runs them in a thread (asyncio.to_thread), one at a time on one connection.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

from hostd.api.hub.security import hash_token, new_token

__all__ = [
    "EVENT_RETENTION",
    "ApiToken",
    "BrowserSession",
    "HubStore",
    "HubUser",
    "LoginEvent",
    "SessionOwner",
    "SpawnEvent",
    "aware",
    "utcnow",
]

EVENT_RETENTION: Final = timedelta(days=90)
_NOTE_MAX: Final = 200
_MESSAGE_MAX: Final = 2000


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    """sqlite gives datetimes back without a zone; they were written in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(kw_only=True)
class HubUser:
    id: int | None = None
    name: str
    admin: bool = False
    created: datetime  # first seen: the first login
    last_login: datetime | None = None
    last_activity: datetime | None = None


@dataclass(kw_only=True)
class LoginEvent:
    id: int | None = None
    name: str  # as typed (bounded): a failed login may name nobody
    at: datetime
    ok: bool
    code: str | None = None  # "login-failed", "locked-out", ... for a failure
    remote: str | None = None


@dataclass(kw_only=True)
class SpawnEvent:
    id: int | None = None
    user: str
    at: datetime
    action: str  # "start" or "stop"
    by: str  # who asked
    outcome: str  # "ready", "failed", "stopped"
    message: str | None = None


@dataclass(kw_only=True)
class BrowserSession:
    id: str  # SHA-256 of the id in the cookie
    user: str
    uid: int | None = None  # the account's when it logged in; None: from before uids, refused
    created: datetime
    expires: datetime
    remote: str | None = None


@dataclass(kw_only=True)
class ApiToken:
    id: int | None = None
    user: str
    uid: int | None = None  # the account's when the token was made; None: refused
    hash: str
    prefix: str  # the first characters, to tell tokens apart on a page
    note: str | None = None
    created: datetime
    expires: datetime | None = None
    last_used: datetime | None = None


@dataclass(frozen=True)
class SessionOwner:
    """Who a browser session or an API token belongs to (the name, and the uid the account had
    when it was made), and until when it is good. ``admin`` is what the last login said: the
    hub's identity takes the daemon's answer of now instead."""

    user: str
    admin: bool
    expires: datetime | None
    uid: int | None = None


_Row = TypeVar("_Row", HubUser, LoginEvent, SpawnEvent, BrowserSession, ApiToken)


@dataclass(frozen=True)
class _Table:
    """One table as SQLAlchemy's create_all made it for the sqlmodel version: columns in order
    (name, sqlite type, may be null), the primary key, the indexes (name, column, unique)."""

    name: str
    model: type[Any]
    columns: tuple[tuple[str, str, bool], ...]
    key: str
    indexes: tuple[tuple[str, str, bool], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(column for column, _kind, _null in self.columns)

    def create(self) -> str:
        lines = [f'\t"{c}" {kind}{"" if null else " NOT NULL"}' for c, kind, null in self.columns]
        lines.append(f"\tPRIMARY KEY ({self.key})")
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n" + ",\n".join(lines) + "\n)"

    def create_indexes(self) -> list[str]:
        return [
            f"CREATE {'UNIQUE ' if unique else ''}INDEX IF NOT EXISTS {index}"
            f" ON {self.name} ({column})"
            for index, column, unique in self.indexes
        ]

    def select(self, alias: str = "") -> str:
        prefix = f"{alias}." if alias else ""
        return ", ".join(f'{prefix}"{column}"' for column in self.names)

    def row(self, values: tuple[Any, ...] | list[Any]) -> Any:
        kinds = {column: kind for column, kind, _null in self.columns}
        return self.model(
            **{
                column: _from_db(kinds[column], value)
                for column, value in zip(self.names, values, strict=True)
            }
        )


_USERS: Final = _Table(
    "users",
    HubUser,
    (
        ("id", "INTEGER", False),
        ("name", "VARCHAR", False),
        ("admin", "BOOLEAN", False),
        ("created", "DATETIME", False),
        ("last_login", "DATETIME", True),
        ("last_activity", "DATETIME", True),
    ),
    "id",
    (("ix_users_name", "name", True),),
)
_LOGIN_EVENTS: Final = _Table(
    "login_events",
    LoginEvent,
    (
        ("id", "INTEGER", False),
        ("name", "VARCHAR", False),
        ("at", "DATETIME", False),
        ("ok", "BOOLEAN", False),
        ("code", "VARCHAR", True),
        ("remote", "VARCHAR", True),
    ),
    "id",
    (("ix_login_events_name", "name", False),),
)
_SPAWN_EVENTS: Final = _Table(
    "spawn_events",
    SpawnEvent,
    (
        ("id", "INTEGER", False),
        ("user", "VARCHAR", False),
        ("at", "DATETIME", False),
        ("action", "VARCHAR", False),
        ("by", "VARCHAR", False),
        ("outcome", "VARCHAR", False),
        ("message", "VARCHAR", True),
    ),
    "id",
    (("ix_spawn_events_user", "user", False),),
)
_BROWSER_SESSIONS: Final = _Table(
    "browser_sessions",
    BrowserSession,
    (
        ("id", "VARCHAR", False),
        ("user", "VARCHAR", False),
        ("uid", "INTEGER", True),
        ("created", "DATETIME", False),
        ("expires", "DATETIME", False),
        ("remote", "VARCHAR", True),
    ),
    "id",
    (("ix_browser_sessions_user", "user", False),),
)
_API_TOKENS: Final = _Table(
    "api_tokens",
    ApiToken,
    (
        ("id", "INTEGER", False),
        ("user", "VARCHAR", False),
        ("uid", "INTEGER", True),
        ("hash", "VARCHAR", False),
        ("prefix", "VARCHAR", False),
        ("note", "VARCHAR", True),
        ("created", "DATETIME", False),
        ("expires", "DATETIME", True),
        ("last_used", "DATETIME", True),
    ),
    "id",
    (("ix_api_tokens_user", "user", False), ("ix_api_tokens_hash", "hash", True)),
)
_TABLES: Final = (_USERS, _LOGIN_EVENTS, _SPAWN_EVENTS, _BROWSER_SESSIONS, _API_TOKENS)
_BY_MODEL: Final = {table.model: table for table in _TABLES}


def _to_db(value: object) -> object:
    """A value as the file keeps it: datetimes as SQLAlchemy's sqlite text, in UTC (the same
    text hostd.daemon.store writes), booleans as 0/1."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, bool):
        return int(value)
    return value


def _from_db(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "DATETIME":
        return datetime.fromisoformat(value)  # naive, UTC: as SQLAlchemy gave it back
    if kind == "BOOLEAN":
        return bool(value)
    return value


def _database_path(url: str) -> str:
    """The file of a sqlite URL, as SQLAlchemy read it: sqlite:////abs/path, sqlite:///relative,
    sqlite:// (in memory)."""
    if not url.startswith("sqlite://"):
        # Not the URL itself: it may hold a password.
        raise ValueError("only sqlite databases are supported: db_url = sqlite:////path")
    rest = url.removeprefix("sqlite://")
    if not rest:
        return ":memory:"
    if not rest.startswith("/") or rest == "/":
        raise ValueError(f"expected sqlite:////path, not {url!r}")
    return rest[1:]


class HubStore:
    """One database. Open with ``HubStore.open(url)`` (no I/O in the constructor)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._lock = threading.Lock()  # one connection, used by worker threads one at a time
        self.legacy_rows_removed = 0

    @classmethod
    def open(cls, url: str) -> HubStore:
        """Open (and make, or upgrade) the database at ``url`` (a sqlite URL)."""
        db = sqlite3.connect(_database_path(url), check_same_thread=False, isolation_level=None)
        try:
            # Another process may hold the file's lock a moment: wait rather than fail at once.
            db.execute("PRAGMA busy_timeout = 5000")
            with _transaction(db):
                for table in _TABLES:
                    db.execute(table.create())
                _add_missing_columns(db)  # before the indexes: one may be on a new column
                for table in _TABLES:
                    for statement in table.create_indexes():
                        db.execute(statement)
        except BaseException:
            db.close()
            raise
        store = cls(db)
        store.prune()
        store.legacy_rows_removed = store.remove_unbound()
        return store

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction, the store's lock held."""
        with self._lock, _transaction(self._db):
            yield self._db

    def _all(self, model: type[_Row], where: str, params: tuple[Any, ...] = ()) -> list[_Row]:
        table = _BY_MODEL[model]
        query = f"SELECT {table.select()} FROM {table.name} {where}"  # noqa: S608 (constants)
        with self._lock:
            rows = self._db.execute(query, params).fetchall()
        return [table.row(row) for row in rows]

    def _first(self, model: type[_Row], where: str, params: tuple[Any, ...]) -> _Row | None:
        found = self._all(model, f"{where} LIMIT 1", params)
        return found[0] if found else None

    @staticmethod
    def _insert(
        db: sqlite3.Connection, row: HubUser | LoginEvent | SpawnEvent | BrowserSession | ApiToken
    ) -> int:
        table = _BY_MODEL[type(row)]
        names = [n for n in table.names if not (n == table.key and getattr(row, n) is None)]
        columns = ", ".join(f'"{n}"' for n in names)
        marks = ", ".join("?" * len(names))
        cursor = db.execute(
            f"INSERT INTO {table.name} ({columns}) VALUES ({marks})",  # noqa: S608 (constants)
            [_to_db(getattr(row, n)) for n in names],
        )
        return int(cursor.lastrowid or 0)

    # -- users and logins ---------------------------------------------------------------

    def record_login(
        self,
        name: str,
        *,
        ok: bool,
        code: str | None = None,
        remote: str | None = None,
        admin: bool = False,
    ) -> None:
        """A login attempt; a successful one makes or updates the user (admin, last login)."""
        at = utcnow()
        with self._write() as db:
            self._insert(db, LoginEvent(name=name[:64], at=at, ok=ok, code=code, remote=remote))
            if ok:
                updated = db.execute(
                    "UPDATE users SET admin = ?, last_login = ? WHERE name = ?",
                    (int(admin), _to_db(at), name),
                )
                if updated.rowcount == 0:
                    self._insert(db, HubUser(name=name, created=at, admin=admin, last_login=at))

    def user(self, name: str) -> HubUser | None:
        return self._first(HubUser, "WHERE name = ?", (name,))

    def users(self) -> list[HubUser]:
        return self._all(HubUser, "ORDER BY name")

    def set_admin(self, name: str, admin: bool) -> None:
        """The user's admin flag as the daemon says it now (not only at the last login)."""
        with self._write() as db:
            db.execute(
                "UPDATE users SET admin = ? WHERE name = ? AND admin != ?",
                (int(admin), name, int(admin)),
            )

    def touch_activity(self, name: str) -> None:
        """Activity now (the proxy's traffic); a later report stays (record_activity)."""
        self.record_activity(name, utcnow())

    def record_activity(self, name: str, at: datetime) -> bool:
        """``at`` as the user's last activity if it is later than the one known; False: no
        such user (JupyterHub's activity POST keeps the latest report, not the last)."""
        with self._write() as db:
            found = db.execute("SELECT last_activity FROM users WHERE name = ?", (name,)).fetchone()
            if found is None:
                return False
            last = _from_db("DATETIME", found[0])
            if last is None or aware(last) < at:
                db.execute("UPDATE users SET last_activity = ? WHERE name = ?", (_to_db(at), name))
            return True

    def login_events(self, name: str, limit: int = 20) -> list[LoginEvent]:
        return self._all(LoginEvent, "WHERE name = ? ORDER BY id DESC LIMIT ?", (name, limit))

    # -- spawns ---------------------------------------------------------------------------

    def record_spawn(
        self, user: str, *, action: str, by: str, outcome: str, message: str | None = None
    ) -> None:
        with self._write() as db:
            self._insert(
                db,
                SpawnEvent(
                    user=user,
                    at=utcnow(),
                    action=action,
                    by=by,
                    outcome=outcome,
                    message=None if message is None else message[:_MESSAGE_MAX],
                ),
            )

    def spawn_events(self, user: str, limit: int = 20) -> list[SpawnEvent]:
        return self._all(SpawnEvent, "WHERE user = ? ORDER BY id DESC LIMIT ?", (user, limit))

    # -- browser sessions ---------------------------------------------------------------

    def create_session(
        self, user: str, *, uid: int, lifetime: timedelta, remote: str | None = None
    ) -> str:
        """A new session of ``user`` (account ``uid``): the id for the cookie (the database
        keeps its hash)."""
        session_id = new_token()
        at = utcnow()
        with self._write() as db:
            self._insert(
                db,
                BrowserSession(
                    id=hash_token(session_id),
                    user=user,
                    uid=uid,
                    created=at,
                    expires=at + lifetime,
                    remote=remote,
                ),
            )
        return session_id

    def session_owner(self, session_id: str) -> SessionOwner | None:
        """Whose session this is, or None if it is unknown, ended or expired."""
        with self._lock:
            row = self._db.execute(
                "SELECT u.name, u.admin, s.expires, s.uid FROM browser_sessions s"
                " JOIN users u ON u.name = s.user WHERE s.id = ?",
                (hash_token(session_id),),
            ).fetchone()
        if row is None:
            return None
        name, admin, expires_text, uid = row
        expires = aware(_from_db("DATETIME", expires_text))
        if expires <= utcnow():
            return None
        return SessionOwner(user=name, admin=bool(admin), expires=expires, uid=uid)

    def end_session(self, session_id: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM browser_sessions WHERE id = ?", (hash_token(session_id),))

    # -- API tokens -----------------------------------------------------------------------

    def create_token(
        self, user: str, *, uid: int, lifetime: timedelta, note: str | None = None
    ) -> tuple[str, ApiToken]:
        """A new API token of ``user`` (account ``uid``), good for ``lifetime``: the token
        (shown once) and its row."""
        token = new_token()
        at = utcnow()
        row = ApiToken(
            user=user,
            uid=uid,
            hash=hash_token(token),
            prefix=token[:4],
            note=None if note is None else note[:_NOTE_MAX],
            created=at,
            expires=at + lifetime,
        )
        with self._write() as db:
            row.id = self._insert(db, row)
        return token, row

    def tokens(self, user: str) -> list[ApiToken]:
        return self._all(ApiToken, "WHERE user = ? ORDER BY id", (user,))

    def delete_token(self, user: str, token_id: int) -> bool:
        with self._write() as db:
            deleted = db.execute(
                "DELETE FROM api_tokens WHERE id = ? AND user = ?", (token_id, user)
            )
            return deleted.rowcount > 0

    def token_owner(self, token: str) -> SessionOwner | None:
        """Whose API token this is (and marks it used now), or None."""
        at = utcnow()
        with self._write() as db:
            row = db.execute(
                "SELECT t.id, u.name, u.admin, t.expires, t.uid FROM api_tokens t"
                " JOIN users u ON u.name = t.user WHERE t.hash = ?",
                (hash_token(token),),
            ).fetchone()
            if row is None:
                return None
            token_id, name, admin, expires_text, uid = row
            expires = None if expires_text is None else aware(_from_db("DATETIME", expires_text))
            if expires is not None and expires <= at:
                return None
            db.execute("UPDATE api_tokens SET last_used = ? WHERE id = ?", (_to_db(at), token_id))
            return SessionOwner(user=name, admin=bool(admin), expires=expires, uid=uid)

    # -- housekeeping -------------------------------------------------------------------

    def prune(self) -> None:
        """Drop expired sessions and tokens, and events older than EVENT_RETENTION."""
        at = utcnow()
        old = _to_db(at - EVENT_RETENTION)
        with self._write() as db:
            db.execute("DELETE FROM browser_sessions WHERE expires <= ?", (_to_db(at),))
            db.execute("DELETE FROM api_tokens WHERE expires <= ?", (_to_db(at),))
            db.execute("DELETE FROM login_events WHERE at <= ?", (old,))
            db.execute("DELETE FROM spawn_events WHERE at <= ?", (old,))

    def remove_unbound(self) -> int:
        """Delete sessions and tokens made before uids were kept (NULL uid): which account
        made them cannot be told any more, and they would be refused anyway. How many went."""
        with self._write() as db:
            sessions = db.execute("DELETE FROM browser_sessions WHERE uid IS NULL").rowcount
            tokens = db.execute("DELETE FROM api_tokens WHERE uid IS NULL").rowcount
            return max(sessions, 0) + max(tokens, 0)


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """BEGIN ... COMMIT on an autocommit connection; ROLLBACK on an error."""
    db.execute("BEGIN")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """Upgrade in place: a column added since the file was made is added, nullable.

    A missing column that may not be null cannot be added to rows that exist: that is a
    mistake in a release, refused here rather than half-applied.
    """
    for table in _TABLES:
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table.name})")}
        for column, kind, nullable in table.columns:
            if column in present:
                continue
            if not nullable:
                raise RuntimeError(f"cannot upgrade {table.name}: column {column} may not be null")
            db.execute(f'ALTER TABLE {table.name} ADD COLUMN "{column}" {kind}')
