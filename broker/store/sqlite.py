"""Embedded SQLite implementation of the storage interfaces.

One file under the data folder, created on first start. WAL mode so readers never wait
for a writer; one connection per thread (FastAPI runs sync endpoints in a thread pool).
Expiry uses the injected clock so tests can move time.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Index, MetaData, Table, Text, UniqueConstraint
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.schema import CreateIndex, CreateTable

from broker.clock import Clock
from broker.store.base import AUDIT_GENESIS, audit_digest
from broker.store.schema import DOUBLE, sqlite_script

# A rowid table, the values in its leaves. (Until 2026-11 it was WITHOUT ROWID, whose
# b-tree keeps at most ~1 KB of a row in the page: a 2-3 KB session or pending login
# went to overflow pages, and each write touched and logged twice as many pages; a
# put+take cost ~57 us, now ~40, a read 6.5 us, now 2.7.) ``_migrate_ephemeral`` moves
# an older file's rows over. SQLite only (Redis is the other ephemeral store), so on a
# ``MetaData`` of its own that no PostgreSQL migration targets.
EPHEMERAL = MetaData()
EPHEMERAL_TABLE = Table(
    "ephemeral", EPHEMERAL,
    Column("ns", Text, nullable=False),
    Column("k", Text, nullable=False),
    Column("v", Text, nullable=False),
    Column("expires", DOUBLE, nullable=False),
    UniqueConstraint("ns", "k"),
)
Index("ephemeral_expires", EPHEMERAL_TABLE.c.expires)


_AUDIT_APPEND = """
INSERT INTO audit (at, kind, data, prev, hash)
SELECT ?1, ?2, ?3, p, varco_audit_digest(p, ?1, ?2, ?3)
FROM (SELECT coalesce((SELECT hash FROM audit ORDER BY seq DESC LIMIT 1), ?4) AS p)
"""


class SqliteDatabase:
    """A SQLite file with per-thread connections."""

    def __init__(self, path: Path | str):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._lock = threading.Lock()
        # One writer at a time inside this process: threads queue on a lock instead of
        # meeting SQLite's busy handler, which sleeps in steps of up to 100 ms.
        self._write_lock = threading.Lock()
        # Outside any transaction: SQLite refuses to change the journal mode inside one.
        self._conn().execute("PRAGMA journal_mode=WAL")

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                   check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.create_function("varco_audit_digest", 4, audit_digest, deterministic=True)
            self._local.conn = conn
        return conn

    def write(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """One statement as its own transaction (or within the caller's ``transaction()``).

        No BEGIN/COMMIT of its own: a single writing statement already takes SQLite's
        write lock before it reads anything (retrying through the busy handler), so it is
        as atomic as ``BEGIN IMMEDIATE`` around it, for two statements less.
        """
        conn = self._conn()
        if conn.in_transaction or self._begin_batch(conn):
            return conn.execute(sql, params)
        with self._write_lock:
            return conn.execute(sql, params)

    def write_returning(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """``write`` for a statement with ``RETURNING``: its rows are read before the write
        lock is released, because SQLite commits such a statement only once its rows are
        read; until then another thread's write would meet SQLite's busy handler, which
        sleeps for milliseconds."""
        conn = self._conn()
        if conn.in_transaction or self._begin_batch(conn):
            return conn.execute(sql, params).fetchall()
        with self._write_lock:
            return conn.execute(sql, params).fetchall()

    def audit_append(self, at: str, kind: str, data: str, lock: str) -> None:
        """``Database.audit_append`` in one statement: read the last hash, insert after it.

        One writer at a time holds the database, so no entry can slip in between.
        """
        self.write(_AUDIT_APPEND, (at, kind, data, AUDIT_GENESIS))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE so concurrent writers queue instead of failing mid-way."""
        conn = self._conn()
        if conn.in_transaction or self._begin_batch(conn):  # nested use joins the outer one
            yield conn
            return
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")

    @contextmanager
    def batch(self) -> Iterator[sqlite3.Connection]:
        """``Database.batch``: this thread's writes in one transaction until the end.

        The transaction, and with it the process's write lock, begins at the first write
        (``_begin_batch``), not on entry: what a request does before it writes (reads,
        a signature, a policy decision) holds no lock, and a batch that writes nothing
        costs nothing. Nested batches and transactions join the outer one.
        """
        conn = self._conn()
        if conn.in_transaction or getattr(self._local, "batch", None) is not None:
            yield conn
            return
        begun = self._local.batch = [False]
        try:
            yield conn
        except BaseException:
            if begun[0]:
                conn.execute("ROLLBACK")
            raise
        else:
            if begun[0]:
                conn.execute("COMMIT")
        finally:
            self._local.batch = None
            if begun[0]:
                self._write_lock.release()

    def _begin_batch(self, conn: sqlite3.Connection) -> bool:
        """Open the thread's pending ``batch`` at its first write; False outside one."""
        begun = getattr(self._local, "batch", None)
        if begun is None or begun[0]:
            return False
        self._write_lock.acquire()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._write_lock.release()
            raise
        begun[0] = True
        return True

    def create_tables(self, tables: tuple[Table, ...]) -> None:
        """``Database.create_tables``: their DDL as ``broker.store.schema`` renders it for
        SQLite (``IF NOT EXISTS``, rendered once per process), run as one script."""
        self.execute_script(sqlite_script(tables))

    def execute_script(self, sql: str) -> None:
        """Several statements at once, outside any transaction (DDL, ``VACUUM``)."""
        with self._lock:
            self._conn().executescript(sql)

    def query(self, sql: str, params: Sequence[Any] = ()) -> Iterator[sqlite3.Row]:
        return iter(self._conn().execute(sql, params).fetchall())


class SqliteEphemeralStore:
    """``EphemeralStore`` on a table of the embedded database."""

    def __init__(self, db: SqliteDatabase, clock: Clock):
        self.db = db
        self.clock = clock
        _migrate_ephemeral(db)
        db.create_tables((EPHEMERAL_TABLE,))

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def put(self, ns: str, key: str, value: str, ttl: int) -> None:
        self.db.write("INSERT OR REPLACE INTO ephemeral VALUES (?,?,?,?)",
                      (ns, key, value, self._now() + ttl))

    def get(self, ns: str, key: str) -> str | None:
        row = self.db._conn().execute(
            "SELECT v FROM ephemeral WHERE ns=? AND k=? AND expires>?",
            (ns, key, self._now())).fetchone()
        return row[0] if row else None

    def put_many(self, items: Sequence[tuple[str, str, str, int]]) -> None:
        now = self._now()
        with self.db.transaction() as c:
            c.executemany("INSERT OR REPLACE INTO ephemeral VALUES (?,?,?,?)",
                          [(ns, key, value, now + ttl) for ns, key, value, ttl in items])

    def get_many(self, keys: Sequence[tuple[str, str]]) -> list[str | None]:
        return [self.get(ns, key) for ns, key in keys]  # a local file: no round trips

    def take(self, ns: str, key: str) -> str | None:
        rows = self.db.write_returning(
            "DELETE FROM ephemeral WHERE ns=? AND k=? RETURNING v, expires", (ns, key))
        if not rows or rows[0][1] <= self._now():
            return None
        value: str = rows[0][0]
        return value

    def add(self, ns: str, key: str, value: str, ttl: int) -> bool:
        """One statement: insert, or take over an expired row; a live row wins (0 rows)."""
        now = self._now()
        cur = self.db.write(
            "INSERT INTO ephemeral VALUES (?1,?2,?3,?4) ON CONFLICT (ns, k) DO UPDATE "
            "SET v=excluded.v, expires=excluded.expires WHERE ephemeral.expires<=?5",
            (ns, key, value, now + ttl, now))
        return cur.rowcount == 1

    def delete(self, ns: str, key: str) -> None:
        self.db.write("DELETE FROM ephemeral WHERE ns=? AND k=?", (ns, key))

    def incr(self, ns: str, key: str, ttl: int) -> int:
        now = self._now()
        with self.db.transaction() as c:
            c.execute("DELETE FROM ephemeral WHERE ns=? AND k=? AND expires<=?", (ns, key, now))
            c.execute(
                "INSERT INTO ephemeral VALUES (?,?,'1',?) "
                "ON CONFLICT(ns,k) DO UPDATE SET v=CAST(CAST(v AS INTEGER)+1 AS TEXT)",
                (ns, key, now + ttl))
            row = c.execute("SELECT v FROM ephemeral WHERE ns=? AND k=?", (ns, key)).fetchone()
        return int(row[0])

    def purge_expired(self) -> int:
        with self.db.transaction() as c:
            return c.execute("DELETE FROM ephemeral WHERE expires<=?", (self._now(),)).rowcount


def _migrate_ephemeral(db: SqliteDatabase) -> None:
    """An ``ephemeral`` table of the old WITHOUT ROWID shape becomes the rowid table, its
    rows (sessions, pending logins, tokens) kept: one transaction, so a second process
    starting at the same time waits, then finds the work done."""
    def old_shape(conn: sqlite3.Connection) -> bool:
        row = conn.execute("SELECT sql FROM sqlite_master WHERE type='table' "
                           "AND name='ephemeral'").fetchone()
        return row is not None and "WITHOUT ROWID" in row[0].upper()

    if not old_shape(db._conn()):
        return
    with db.transaction() as conn:
        if not old_shape(conn):
            return
        conn.execute("ALTER TABLE ephemeral RENAME TO ephemeral_old")
        conn.execute("DROP INDEX IF EXISTS ephemeral_expires")
        dialect = sqlite_dialect.dialect()
        conn.execute(str(CreateTable(EPHEMERAL_TABLE).compile(dialect=dialect)))
        conn.execute("INSERT INTO ephemeral (ns, k, v, expires) "
                     "SELECT ns, k, v, expires FROM ephemeral_old")
        conn.execute("DROP TABLE ephemeral_old")
        for index in EPHEMERAL_TABLE.indexes:
            conn.execute(str(CreateIndex(index).compile(dialect=dialect)))
