"""A data folder from before the rowid ephemeral table keeps its sessions and tokens."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from broker.clock import FixedClock
from broker.store.sqlite import SqliteDatabase, SqliteEphemeralStore
from tests.store.test_durable_contract import T0

OLD_SCHEMA = """
CREATE TABLE ephemeral (ns TEXT NOT NULL, k TEXT NOT NULL, v TEXT NOT NULL,
  expires REAL NOT NULL, PRIMARY KEY (ns, k)) WITHOUT ROWID;
CREATE INDEX ephemeral_expires ON ephemeral(expires);
"""


def test_old_without_rowid_table_is_moved_over_with_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "varco.db"
    now = T0.timestamp()
    with sqlite3.connect(path) as old:
        old.executescript(OLD_SCHEMA)
        old.executemany("INSERT INTO ephemeral VALUES (?,?,?,?)", [
            ("session", "live", "s" * 3000, now + 600),
            ("oidc:code", "gone", "c", now - 1)])
    clock = FixedClock(T0)
    store = SqliteEphemeralStore(SqliteDatabase(path), clock)
    assert store.get("session", "live") == "s" * 3000
    assert store.get("oidc:code", "gone") is None  # still expired
    assert store.take("session", "live") == "s" * 3000
    store.put("tx", "a", "1", 60)
    assert store.incr("count", "x", 60) == 1 and store.incr("count", "x", 60) == 2
    again = SqliteEphemeralStore(SqliteDatabase(path), clock)  # a second start: nothing to do
    assert again.get("tx", "a") == "1"
    with sqlite3.connect(path) as check:
        (sql,) = check.execute("SELECT sql FROM sqlite_master WHERE name='ephemeral'").fetchone()
        tables = {r[0] for r in check.execute("SELECT name FROM sqlite_master")}
    assert "WITHOUT ROWID" not in sql.upper()
    assert "ephemeral_old" not in tables and "ephemeral_expires" in tables
    clock.advance(seconds=120)
    assert again.purge_expired() >= 1  # the expires index works on the new table
