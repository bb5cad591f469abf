"""hostd.daemon.store on sqlite3: a file the sqlmodel version wrote (data/hostd-sqlmodel.sqlite,
made by that code) is read and written by this one, and an older file gets its new columns."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hostd.daemon.store import SessionRecord, Store

OLD_FILE = Path(__file__).parent / "data" / "hostd-sqlmodel.sqlite"


@pytest.fixture
def old_copy(tmp_path: Path) -> Path:
    path = tmp_path / "hostd.sqlite"
    shutil.copy(OLD_FILE, path)
    return path


def test_reads_what_the_sqlmodel_version_wrote(old_copy: Path) -> None:
    store = Store.open(old_copy)
    try:
        alice = store.last_for("alice")
        assert alice is not None
        assert (alice.id, alice.unit, alice.invocation_id, alice.port) == (
            1, "jupyter-alice.service", "abc", 8001,
        )  # fmt: skip
        assert alice.started_at == datetime(2026, 11, 1, 9, 30, 15, 123456)  # UTC, naive as before
        assert alice.ended_at == datetime(2026, 11, 1, 10, 0, 0, 5)
        assert (alice.state, alice.result, alice.exit_status, alice.reason) == (
            "stopped", "success", 0, "stopped by alice",
        )  # fmt: skip
        assert (alice.mem_limit_bytes, alice.cpu_limit, alice.started_by_uid, alice.profile) == (
            2 << 30, 1.5, 1001, "user:alice",
        )  # fmt: skip
        assert [r.user for r in store.open_records()] == ["bob"]
        maintenance = store.maintenance()
        assert maintenance.announcement == "tonight"
        assert maintenance.drain_at == datetime(2026, 12, 24, 18, 0)
        assert maintenance.drain_message == "bye"
    finally:
        store.close()


def test_writes_on_after_the_old_rows(old_copy: Path) -> None:
    store = Store.open(old_copy)
    try:
        added = store.add(
            SessionRecord(user="alice", unit="jupyter-alice.service", started_at=datetime.now(UTC))
        )
        assert added.id == 3
        store.update(3, state="running", port=8002)
        store.save_maintenance(announcement=None, drain_at=None, drain_message=None)
        last = store.last_for("alice")
        assert last is not None and (last.id, last.state, last.port) == (3, "running", 8002)
        assert store.maintenance().announcement is None
    finally:
        store.close()
    # The datetime text is SQLAlchemy's, so the sqlmodel version (a downgrade) reads it too.
    with sqlite3.connect(old_copy) as db:
        texts = [row[0] for row in db.execute("SELECT started_at FROM sessions ORDER BY id")]
    assert all(len(text) == len("2026-11-01 09:30:15.123456") for text in texts)


def test_an_older_file_gets_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "hostd.sqlite"
    with sqlite3.connect(path) as db:  # the first release's table: no profile, no started_by_uid
        db.execute(
            "CREATE TABLE sessions (id INTEGER NOT NULL, user VARCHAR NOT NULL, unit VARCHAR NOT"
            " NULL, started_at DATETIME NOT NULL, state VARCHAR NOT NULL, PRIMARY KEY (id))"
        )
        db.execute(
            "INSERT INTO sessions VALUES (1, 'carol', 'jupyter-carol.service',"
            " '2026-01-01 00:00:00.000000', 'running')"
        )
    store = Store.open(path)
    try:
        carol = store.last_for("carol")
        assert carol is not None and carol.profile is None and carol.started_by_uid is None
        store.update(1, profile="group:staff")
        assert (store.last_for("carol") or carol).profile == "group:staff"
    finally:
        store.close()


def test_an_unknown_column_is_refused(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "hostd.sqlite")
    try:
        with pytest.raises(ValueError, match="no such columns"):
            store.update(1, **{"state = 'x'; --": 1})
    finally:
        store.close()


def test_the_daemon_loads_no_orm() -> None:
    """sqlmodel's stack is ~25 MiB of RSS: the daemon's modules must not load it."""
    code = (
        "import sys, hostd.cli.serve, hostd.daemon.sessions, hostd.daemon.server;"
        " orm = {'sqlalchemy', 'sqlmodel', 'pydantic'};"
        " print(sorted({m.split('.')[0] for m in sys.modules} & orm))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
