"""The hub's user database, via sqlmodel (api layer; the one module of the hub that writes disk).

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

The models have a registry of their own, so the daemon's tables (hostd.daemon.store, in
SQLModel.metadata) never land in the hub's file. Calls block; the app runs them in a thread
(asyncio.to_thread), one write at a time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import Engine, event, inspect
from sqlalchemy.orm import registry
from sqlmodel import Field, Session, SQLModel, col, create_engine, delete, select

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


class _HubModel(SQLModel, registry=registry()):
    pass


class HubUser(_HubModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True)
    admin: bool = False
    created: datetime  # first seen: the first login
    last_login: datetime | None = None
    last_activity: datetime | None = None


class LoginEvent(_HubModel, table=True):
    __tablename__ = "login_events"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)  # as typed (bounded): a failed login may name nobody
    at: datetime
    ok: bool
    code: str | None = None  # "login-failed", "locked-out", ... for a failure
    remote: str | None = None


class SpawnEvent(_HubModel, table=True):
    __tablename__ = "spawn_events"

    id: int | None = Field(default=None, primary_key=True)
    user: str = Field(index=True)
    at: datetime
    action: str  # "start" or "stop"
    by: str  # who asked
    outcome: str  # "ready", "failed", "stopped"
    message: str | None = None


class BrowserSession(_HubModel, table=True):
    __tablename__ = "browser_sessions"

    id: str = Field(primary_key=True)  # SHA-256 of the id in the cookie
    user: str = Field(index=True)
    uid: int | None = None  # the account's when it logged in; None: from before uids, refused
    created: datetime
    expires: datetime
    remote: str | None = None


class ApiToken(_HubModel, table=True):
    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    user: str = Field(index=True)
    uid: int | None = None  # the account's when the token was made; None: refused
    hash: str = Field(index=True, unique=True)
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


class HubStore:
    """One database. Open with ``HubStore.open(url)`` (no I/O in the constructor)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()  # sqlite writes from worker threads, one at a time
        self.legacy_rows_removed = 0

    @classmethod
    def open(cls, url: str) -> HubStore:
        """Open (and make, or upgrade) the database at ``url``."""
        connect_args = {"check_same_thread": False} if url.startswith("sqlite") else {}
        engine = create_engine(url, connect_args=connect_args)
        if url.startswith("sqlite"):
            event.listen(engine, "connect", _sqlite_pragmas)
        _HubModel.metadata.create_all(engine)
        _add_missing_columns(engine)
        store = cls(engine)
        store.prune()
        store.legacy_rows_removed = store.remove_unbound()
        return store

    def close(self) -> None:
        self._engine.dispose()

    def _session(self) -> Session:
        return Session(self._engine, expire_on_commit=False)

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
        with self._lock, self._session() as db:
            db.add(LoginEvent(name=name[:64], at=at, ok=ok, code=code, remote=remote))
            if ok:
                user = db.exec(select(HubUser).where(HubUser.name == name)).first()
                if user is None:
                    user = HubUser(name=name, created=at)
                user.admin, user.last_login = admin, at
                db.add(user)
            db.commit()

    def user(self, name: str) -> HubUser | None:
        with self._session() as db:
            return db.exec(select(HubUser).where(HubUser.name == name)).first()

    def users(self) -> list[HubUser]:
        with self._session() as db:
            return list(db.exec(select(HubUser).order_by(col(HubUser.name))).all())

    def set_admin(self, name: str, admin: bool) -> None:
        """The user's admin flag as the daemon says it now (not only at the last login)."""
        with self._lock, self._session() as db:
            user = db.exec(select(HubUser).where(HubUser.name == name)).first()
            if user is not None and user.admin != admin:
                user.admin = admin
                db.add(user)
                db.commit()

    def touch_activity(self, name: str) -> None:
        """Activity now (the proxy's traffic); a later report stays (record_activity)."""
        self.record_activity(name, utcnow())

    def record_activity(self, name: str, at: datetime) -> bool:
        """``at`` as the user's last activity if it is later than the one known; False: no
        such user (JupyterHub's activity POST keeps the latest report, not the last)."""
        with self._lock, self._session() as db:
            user = db.exec(select(HubUser).where(HubUser.name == name)).first()
            if user is None:
                return False
            if user.last_activity is None or aware(user.last_activity) < at:
                user.last_activity = at
                db.add(user)
                db.commit()
            return True

    def login_events(self, name: str, limit: int = 20) -> list[LoginEvent]:
        with self._session() as db:
            query = (
                select(LoginEvent)
                .where(LoginEvent.name == name)
                .order_by(col(LoginEvent.id).desc())
                .limit(limit)
            )
            return list(db.exec(query).all())

    # -- spawns ---------------------------------------------------------------------------

    def record_spawn(
        self, user: str, *, action: str, by: str, outcome: str, message: str | None = None
    ) -> None:
        with self._lock, self._session() as db:
            db.add(
                SpawnEvent(
                    user=user,
                    at=utcnow(),
                    action=action,
                    by=by,
                    outcome=outcome,
                    message=None if message is None else message[:_MESSAGE_MAX],
                )
            )
            db.commit()

    def spawn_events(self, user: str, limit: int = 20) -> list[SpawnEvent]:
        with self._session() as db:
            query = (
                select(SpawnEvent)
                .where(SpawnEvent.user == user)
                .order_by(col(SpawnEvent.id).desc())
                .limit(limit)
            )
            return list(db.exec(query).all())

    # -- browser sessions ---------------------------------------------------------------

    def create_session(
        self, user: str, *, uid: int, lifetime: timedelta, remote: str | None = None
    ) -> str:
        """A new session of ``user`` (account ``uid``): the id for the cookie (the database
        keeps its hash)."""
        session_id = new_token()
        at = utcnow()
        with self._lock, self._session() as db:
            db.add(
                BrowserSession(
                    id=hash_token(session_id),
                    user=user,
                    uid=uid,
                    created=at,
                    expires=at + lifetime,
                    remote=remote,
                )
            )
            db.commit()
        return session_id

    def session_owner(self, session_id: str) -> SessionOwner | None:
        """Whose session this is, or None if it is unknown, ended or expired."""
        with self._session() as db:
            row = db.exec(
                select(BrowserSession, HubUser)
                .join(HubUser, col(HubUser.name) == col(BrowserSession.user))
                .where(BrowserSession.id == hash_token(session_id))
            ).first()
        if row is None:
            return None
        session, user = row
        expires = aware(session.expires)
        if expires <= utcnow():
            return None
        return SessionOwner(user=user.name, admin=user.admin, expires=expires, uid=session.uid)

    def end_session(self, session_id: str) -> None:
        with self._lock, self._session() as db:
            db.exec(delete(BrowserSession).where(col(BrowserSession.id) == hash_token(session_id)))
            db.commit()

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
        with self._lock, self._session() as db:
            db.add(row)
            db.commit()
            db.refresh(row)
        return token, row

    def tokens(self, user: str) -> list[ApiToken]:
        with self._session() as db:
            query = select(ApiToken).where(ApiToken.user == user).order_by(col(ApiToken.id))
            return list(db.exec(query).all())

    def delete_token(self, user: str, token_id: int) -> bool:
        with self._lock, self._session() as db:
            row = db.get(ApiToken, token_id)
            if row is None or row.user != user:
                return False
            db.delete(row)
            db.commit()
            return True

    def token_owner(self, token: str) -> SessionOwner | None:
        """Whose API token this is (and marks it used now), or None."""
        at = utcnow()
        with self._lock, self._session() as db:
            row = db.exec(
                select(ApiToken, HubUser)
                .join(HubUser, col(HubUser.name) == col(ApiToken.user))
                .where(ApiToken.hash == hash_token(token))
            ).first()
            if row is None:
                return None
            api_token, user = row
            expires = None if api_token.expires is None else aware(api_token.expires)
            if expires is not None and expires <= at:
                return None
            api_token.last_used = at
            db.add(api_token)
            db.commit()
            return SessionOwner(
                user=user.name, admin=user.admin, expires=expires, uid=api_token.uid
            )

    # -- housekeeping -------------------------------------------------------------------

    def prune(self) -> None:
        """Drop expired sessions and tokens, and events older than EVENT_RETENTION."""
        at = utcnow()
        with self._lock, self._session() as db:
            db.exec(delete(BrowserSession).where(col(BrowserSession.expires) <= at))
            db.exec(delete(ApiToken).where(col(ApiToken.expires) <= at))
            db.exec(delete(LoginEvent).where(col(LoginEvent.at) <= at - EVENT_RETENTION))
            db.exec(delete(SpawnEvent).where(col(SpawnEvent.at) <= at - EVENT_RETENTION))
            db.commit()

    def remove_unbound(self) -> int:
        """Delete sessions and tokens made before uids were kept (NULL uid): which account
        made them cannot be told any more, and they would be refused anyway. How many went."""
        with self._lock, self._session() as db:
            sessions = db.exec(delete(BrowserSession).where(col(BrowserSession.uid).is_(None)))
            tokens = db.exec(delete(ApiToken).where(col(ApiToken.uid).is_(None)))
            db.commit()
            return int(sessions.rowcount or 0) + int(tokens.rowcount or 0)


def _sqlite_pragmas(connection: object, _record: object) -> None:
    # Several threads write: wait for the lock rather than fail at once ("database is locked").
    cursor = connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA busy_timeout = 5000")
    cursor.close()


def _add_missing_columns(engine: Engine) -> None:
    """Upgrade in place: a column added since the file was made is added, nullable.

    A missing column that may not be null cannot be added to rows that exist: that is a
    mistake in a release, refused here rather than half-applied.
    """
    with engine.begin() as conn:
        for table in _HubModel.metadata.sorted_tables:
            present = {column["name"] for column in inspect(conn).get_columns(table.name)}
            for column in table.columns:
                if column.name in present:
                    continue
                if not column.nullable:
                    raise RuntimeError(
                        f"cannot upgrade {table.name}: column {column.name} may not be null"
                    )
                kind = column.type.compile(dialect=engine.dialect)
                conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}")
