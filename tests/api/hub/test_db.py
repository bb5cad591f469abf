"""The hub's database: made on first open, upgraded in place, sessions, tokens, events."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from hostd.api.hub.db import EVENT_RETENTION, HubStore, utcnow


@pytest.fixture
def store(tmp_path: Path) -> HubStore:
    return HubStore.open(f"sqlite:///{tmp_path / 'hub.sqlite'}")


def columns(path: Path, table: str) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def test_first_open_makes_every_table_and_no_daemon_table(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite"
    HubStore.open(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"users", "login_events", "spawn_events", "browser_sessions", "api_tokens"}
    assert {"name", "admin", "created", "last_login", "last_activity"} <= columns(path, "users")


def test_an_old_file_is_upgraded_in_place_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite"
    with sqlite3.connect(path) as db:  # as a first release might have made it
        db.execute(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR NOT NULL UNIQUE, "
            "admin BOOLEAN NOT NULL, created DATETIME NOT NULL)"
        )
        db.execute("INSERT INTO users (name, admin, created) VALUES ('alice', 0, '2024-01-01')")
    store = HubStore.open(f"sqlite:///{path}")
    assert {"last_login", "last_activity"} <= columns(path, "users")
    store.record_login("alice", ok=True, admin=True)
    user = store.user("alice")
    assert user is not None and user.admin and user.last_login is not None
    assert user.created.year == 2024
    store.close()


def test_sessions_and_tokens_from_before_uids_are_upgraded_and_removed(tmp_path: Path) -> None:
    # As the release before uids made them: a 14-day cookie and a token that never expires,
    # of a name that may since have been deleted and made again. Nothing says whose they
    # were, so the upgrade removes them (their users log in again and make new tokens).
    path = tmp_path / "hub.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE browser_sessions (id VARCHAR PRIMARY KEY, user VARCHAR NOT NULL, "
            "created DATETIME NOT NULL, expires DATETIME NOT NULL, remote VARCHAR)"
        )
        db.execute(
            "CREATE TABLE api_tokens (id INTEGER PRIMARY KEY, user VARCHAR NOT NULL, "
            "hash VARCHAR NOT NULL UNIQUE, prefix VARCHAR NOT NULL, note VARCHAR, "
            "created DATETIME NOT NULL, expires DATETIME, last_used DATETIME)"
        )
        db.execute(
            "INSERT INTO browser_sessions VALUES ('h1', 'alice', '2024-01-01', '2999-01-01', NULL)"
        )
        db.execute(
            "INSERT INTO api_tokens (user, hash, prefix, created) "
            "VALUES ('alice', 'h2', 'abcd', '2024-01-01')"
        )
    store = HubStore.open(f"sqlite:///{path}")
    assert "uid" in columns(path, "browser_sessions") and "uid" in columns(path, "api_tokens")
    assert store.legacy_rows_removed == 2
    assert store.tokens("alice") == []
    store.record_login("alice", ok=True)
    token, _ = store.create_token("alice", uid=5000, lifetime=timedelta(days=1))
    owner = store.token_owner(token)
    assert owner is not None and owner.uid == 5000
    store.close()
    assert HubStore.open(f"sqlite:///{path}").legacy_rows_removed == 0


def test_a_missing_column_that_may_not_be_null_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR NOT NULL)")
    with pytest.raises(RuntimeError, match="may not be null"):
        HubStore.open(f"sqlite:///{path}")


def test_logins_make_users_and_are_recorded(store: HubStore) -> None:
    store.record_login("mallory", ok=False, code="login-failed", remote="10.0.0.9")
    assert store.user("mallory") is None
    store.record_login("alice", ok=True, remote="10.0.0.1")
    first = store.user("alice")
    store.record_login("alice", ok=True, admin=True)
    again = store.user("alice")
    assert first is not None and again is not None
    assert again.created == first.created and again.admin
    assert [user.name for user in store.users()] == ["alice"]
    events = store.login_events("mallory")
    assert [(e.ok, e.code, e.remote) for e in events] == [(False, "login-failed", "10.0.0.9")]


def test_a_session_ends_at_logout_and_at_expiry(store: HubStore) -> None:
    store.record_login("alice", ok=True)
    session = store.create_session("alice", uid=5000, lifetime=timedelta(hours=1))
    owner = store.session_owner(session)
    assert owner is not None and (owner.user, owner.uid, owner.admin) == ("alice", 5000, False)
    store.end_session(session)
    assert store.session_owner(session) is None
    expired = store.create_session("alice", uid=5000, lifetime=timedelta(seconds=-1))
    assert store.session_owner(expired) is None
    assert store.session_owner("never-made") is None


def test_tokens_are_kept_hashed_and_can_be_revoked(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite"
    store = HubStore.open(f"sqlite:///{path}")
    store.record_login("alice", ok=True)
    token, row = store.create_token("alice", uid=5000, lifetime=timedelta(days=1), note="ci")
    with sqlite3.connect(path) as db:
        assert token not in repr(db.execute("SELECT * FROM api_tokens").fetchall())
    owner = store.token_owner(token)
    assert owner is not None and (owner.user, owner.uid) == ("alice", 5000)
    listed = store.tokens("alice")
    assert [(t.note, t.prefix) for t in listed] == [("ci", token[:4])]
    assert listed[0].last_used is not None
    assert row.id is not None
    assert not store.delete_token("bob", row.id)
    assert store.delete_token("alice", row.id)
    assert store.token_owner(token) is None
    expired, _ = store.create_token("alice", uid=5000, lifetime=timedelta(seconds=-1))
    assert store.token_owner(expired) is None


def test_prune_drops_what_is_old(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite"
    store = HubStore.open(f"sqlite:///{path}")
    store.record_login("alice", ok=True)
    store.create_session("alice", uid=5000, lifetime=timedelta(seconds=-1))
    store.record_spawn("alice", action="start", by="alice", outcome="ready")
    store.record_login("old", ok=False)
    long_ago = utcnow() - EVENT_RETENTION - timedelta(days=1)
    with sqlite3.connect(path) as db:  # an event from long ago, as the file keeps datetimes
        db.execute(
            "UPDATE login_events SET at = ? WHERE id = 2", (f"{long_ago:%Y-%m-%d %H:%M:%S.%f}",)
        )
    store.prune()
    assert store.login_events("old") == []
    assert len(store.login_events("alice")) == 1
    assert [e.outcome for e in store.spawn_events("alice")] == ["ready"]


# tests/api/hub/data/hub-sqlmodel.sqlite: made by the sqlmodel version of this module (the
# release before issue 17), its events then dated 2099 so that the 90-day prune keeps them.
OLD_FILE = Path(__file__).parent / "data" / "hub-sqlmodel.sqlite"
OLD_SESSION = "r-eAPOKKl_cOjD2RD9FmeqeqAoSef0Sc9nVh8w9Iajw"
OLD_TOKEN = "Qfs1EJpZj_LzCqrCc_Tu-OIp_9pfUAsYfXXh2UFoC1U"


def test_a_file_of_the_sqlmodel_version_keeps_working(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite"
    shutil.copy(OLD_FILE, path)
    store = HubStore.open(f"sqlite:///{path}")
    try:
        assert store.legacy_rows_removed == 0
        assert [(u.name, u.admin) for u in store.users()] == [("alice", True), ("bob", False)]
        alice = store.user("alice")
        assert alice is not None and alice.last_activity == datetime(2026, 11, 30, 12, 0, 0, 250000)
        owner = store.session_owner(OLD_SESSION)
        assert owner is not None and (owner.user, owner.admin, owner.uid) == ("alice", True, 5001)
        owner = store.token_owner(OLD_TOKEN)
        assert owner is not None and (owner.user, owner.uid) == ("bob", 5002)
        assert [(t.id, t.note) for t in store.tokens("bob")] == [(1, "ci")]
        events = store.login_events("mallory")
        assert [(e.ok, e.code, e.remote) for e in events] == [(False, "login-failed", "10.0.0.9")]
        spawns = store.spawn_events("alice")
        assert [(e.action, e.by, e.message) for e in spawns] == [
            ("stop", "carol", "bye"),
            ("start", "alice", None),
        ]
        # and it writes on after them: new rows, new ids, the old rows untouched
        store.record_login("alice", ok=True, admin=False)
        token, row = store.create_token("alice", uid=5001, lifetime=timedelta(days=1))
        assert row.id == 2 and store.token_owner(token) is not None
        assert store.session_owner(OLD_SESSION) is not None
    finally:
        store.close()


def test_only_sqlite_urls_are_taken(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="only sqlite databases are supported"):
        HubStore.open("postgresql://hub@localhost/hub")
    store = HubStore.open("sqlite://")  # in memory
    store.record_login("alice", ok=True)
    assert store.user("alice") is not None
    store.close()
