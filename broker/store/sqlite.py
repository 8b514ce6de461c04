"""Embedded SQLite implementation of the storage interfaces.

One file under the data folder, created on first start. WAL mode so the readers of
other processes never wait for a writer; one connection per process (``SqliteDatabase``
says why).
Expiry uses the injected clock so tests can move time.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from broker.clock import Clock
from broker.store.base import AUDIT_GENESIS, audit_digest

_EPHEMERAL_SCHEMA = """
CREATE TABLE IF NOT EXISTS ephemeral (
  ns TEXT NOT NULL,
  k TEXT NOT NULL,
  v TEXT NOT NULL,
  expires REAL NOT NULL,
  PRIMARY KEY (ns, k)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ephemeral_expires ON ephemeral(expires);
"""


_AUDIT_APPEND = """
INSERT INTO audit (at, kind, data, prev, hash)
SELECT ?1, ?2, ?3, p, varco_audit_digest(p, ?1, ?2, ?3)
FROM (SELECT coalesce((SELECT hash FROM audit ORDER BY seq DESC LIMIT 1), ?4) AS p)
"""


class SqliteDatabase:
    """A SQLite file behind one connection per process, shared by its threads in turn.

    Why one connection: in WAL mode a connection drops its whole page cache whenever
    another connection has written since its last read, and a login writes several
    times. With a connection per worker thread every statement re-read its pages from
    the file (~90 ``pread`` calls per SPID login); one connection keeps its cache, and
    its prepared statements, across requests. The price is that statements of different
    threads take turns on a re-entrant lock. SQLite admits one writer at a time anyway,
    and a statement here takes microseconds; a ``transaction()`` holds the lock for its
    whole length, so callers keep network calls and heavy work outside it (the login
    hub decides first and writes after).
    """

    def __init__(self, path: Path | str):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                     check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        # Outside any transaction: SQLite refuses to change the journal mode inside one.
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=30000")  # another process writing
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.create_function("varco_audit_digest", 4, audit_digest, deterministic=True)

    def write(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        """One statement as its own transaction (or within this thread's ``transaction()``);
        the rows it returns (``RETURNING``), read before another thread may use the
        connection.

        No BEGIN/COMMIT of its own: a single writing statement already takes SQLite's
        write lock before it reads anything (retrying through the busy handler), so it is
        as atomic as ``BEGIN IMMEDIATE`` around it, for two statements less.
        """
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def audit_append(self, at: str, kind: str, data: str, lock: str) -> None:
        """``Database.audit_append`` in one statement: read the last hash, insert after it.

        One writer at a time holds the database, so no entry can slip in between.
        """
        self.write(_AUDIT_APPEND, (at, kind, data, AUDIT_GENESIS))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE so concurrent writers (other processes) queue instead of failing
        mid-way; the connection is this thread's until the end of the block."""
        with self._lock:
            conn = self._conn
            if conn.in_transaction:  # nested use joins the outer transaction
                yield conn
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")

    def batch(self) -> AbstractContextManager[sqlite3.Connection]:
        """``Database.batch``: this thread's writes in one transaction until the end."""
        return self.transaction()

    def execute_script(self, sql: str) -> None:
        with self._lock:
            self._conn.executescript(sql)

    def query(self, sql: str, params: tuple = ()) -> Iterator[sqlite3.Row]:
        with self._lock:
            return iter(self._conn.execute(sql, params).fetchall())


class SqliteEphemeralStore:
    """``EphemeralStore`` on a table of the embedded database."""

    def __init__(self, db: SqliteDatabase, clock: Clock):
        self.db = db
        self.clock = clock
        db.execute_script(_EPHEMERAL_SCHEMA)

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def put(self, ns: str, key: str, value: str, ttl: int) -> None:
        self.db.write("INSERT OR REPLACE INTO ephemeral VALUES (?,?,?,?)",
                      (ns, key, value, self._now() + ttl))

    def get(self, ns: str, key: str) -> str | None:
        rows = self.db.query("SELECT v FROM ephemeral WHERE ns=? AND k=? AND expires>?",
                             (ns, key, self._now()))
        row = next(rows, None)
        return row[0] if row else None

    def put_many(self, items: Sequence[tuple[str, str, str, int]]) -> None:
        now = self._now()
        with self.db.transaction() as c:
            c.executemany("INSERT OR REPLACE INTO ephemeral VALUES (?,?,?,?)",
                          [(ns, key, value, now + ttl) for ns, key, value, ttl in items])

    def get_many(self, keys: Sequence[tuple[str, str]]) -> list[str | None]:
        return [self.get(ns, key) for ns, key in keys]  # a local file: no round trips

    def take(self, ns: str, key: str) -> str | None:
        rows = self.db.write("DELETE FROM ephemeral WHERE ns=? AND k=? RETURNING v, expires",
                             (ns, key))
        row = rows[0] if rows else None
        if row is None or row[1] <= self._now():
            return None
        return row[0]

    def add(self, ns: str, key: str, value: str, ttl: int) -> bool:
        now = self._now()
        with self.db.transaction() as c:
            c.execute("DELETE FROM ephemeral WHERE ns=? AND k=? AND expires<=?", (ns, key, now))
            cur = c.execute("INSERT OR IGNORE INTO ephemeral VALUES (?,?,?,?)",
                            (ns, key, value, now + ttl))
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
