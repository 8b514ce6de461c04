"""PostgreSQL implementation of ``Database``: what must last, shared by every broker process.

Repositories write one SQL dialect, the subset SQLite and PostgreSQL share (``?``
placeholders, ``INSERT ... ON CONFLICT``, ``RETURNING``). This module makes a psycopg 3
connection look like the sqlite3 one they already use: ``?`` becomes ``%s`` (once per
statement text, cached), rows are addressable by index and by column name like
``sqlite3.Row``. The schema is not created here: Alembic owns it (``varco db upgrade``),
and ``check_schema`` refuses to run on a database that is not at the head revision.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from broker.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy import Table


@lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """``?`` placeholders to psycopg's ``%s``; a literal ``%`` doubled. Quoted text untouched."""
    out: list[str] = []
    quote: str | None = None
    for ch in sql:
        if quote is not None:
            out.append("%%" if ch == "%" else ch)
            if ch == quote:
                quote = None
        elif ch in ("'", '"'):
            quote = ch
            out.append(ch)
        elif ch == "?":
            out.append("%s")
        elif ch == "%":
            out.append("%%")
        else:
            out.append(ch)
    return "".join(out)


class Row(tuple[Any, ...]):
    """A result row readable as ``row[0]``, ``row["name"]`` and by unpacking, as sqlite3.Row."""

    _index: dict[str, int]

    def __new__(cls, values: Sequence[Any], index: dict[str, int]) -> Row:
        row = super().__new__(cls, values)
        row._index = index
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


def _row_factory(cursor: psycopg.Cursor[Any]) -> Any:
    names = [c.name for c in cursor.description or ()]
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        index.setdefault(name, i)  # like sqlite3.Row: the first column of that name wins

    def make(values: Sequence[Any]) -> Row:
        return Row(values, index)

    return make


class Connection:
    """The part of ``sqlite3.Connection`` repositories use, over one psycopg connection."""

    def __init__(self, conn: psycopg.Connection[Any]):
        self.raw = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        cur = self.raw.cursor(row_factory=_row_factory)
        return cur.execute(translate(sql), tuple(params) if params else None)

    def advisory_lock(self, name: str) -> None:
        """Hold a transaction-scoped lock on ``name`` (see ``base.serialize``)."""
        key = zlib.crc32(name.encode()) - 2**31
        self.raw.execute("SELECT pg_advisory_xact_lock(%s)", (key,))


class PostgresDatabase:
    """A pool of connections to one PostgreSQL database; nested ``transaction()`` joins."""

    def __init__(self, url: str, *, pool_size: int = 10, check: bool = True):
        self.url = url
        self._local = threading.local()
        # ``timeout``: a request waits at most this long for a connection, and /readyz
        # says "not ready" in bounded time when the server is gone.
        self.pool = ConnectionPool(url, min_size=1, max_size=pool_size, open=True,
                                   kwargs={"autocommit": True}, name="varco", timeout=5)
        if check:
            self.check_schema()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One pooled connection in one READ COMMITTED transaction for this thread."""
        current: Connection | None = getattr(self._local, "conn", None)
        if current is not None:  # nested use joins the outer transaction, as on SQLite
            yield current
            return
        with self.pool.connection() as raw, raw.transaction():
            conn = Connection(raw)
            self._local.conn = conn
            try:
                yield conn
            finally:
                self._local.conn = None

    def batch(self) -> AbstractContextManager[None]:
        """``Database.batch``: no grouping on PostgreSQL (see the protocol)."""
        return nullcontext()

    def audit_append(self, at: str, kind: str, data: str, lock: str) -> None:
        """One round trip for ``broker.audit``'s append (migration 0002's function).

        Inside an outer ``transaction()`` it joins it, as every repository call does.
        """
        key = zlib.crc32(lock.encode()) - 2**31  # the key ``Connection.advisory_lock`` uses
        sql = "SELECT varco_audit_append(%s, %s, %s, %s)"
        current: Connection | None = getattr(self._local, "conn", None)
        if current is not None:
            current.raw.execute(sql, (at, kind, data, key))
            return
        with self.pool.connection() as raw:  # autocommit: the call is its own transaction
            raw.execute(sql, (at, kind, data, key))

    def create_tables(self, tables: tuple[Table, ...]) -> None:
        """Nothing: PostgreSQL's schema is the migrations' (``varco db upgrade``), checked
        at start by ``check_schema``; a broker never changes it by itself."""

    def query(self, sql: str, params: Sequence[Any] = ()) -> Iterator[Row]:
        current: Connection | None = getattr(self._local, "conn", None)
        if current is not None:
            return iter(current.execute(sql, params).fetchall())
        with self.pool.connection() as raw:
            return iter(Connection(raw).execute(sql, params).fetchall())

    def check_schema(self) -> None:
        """Refuse to run on a schema that is missing or behind the code's migrations: the
        database must be at the head of every branch (the broker's, each provider's)."""
        from broker.store.migrate import head_revisions

        heads = head_revisions()
        try:
            rows = list(self.query("SELECT version_num FROM alembic_version"))
        except psycopg.errors.UndefinedTable:
            rows = []
        except (psycopg.OperationalError, PoolTimeout) as exc:
            self.close()
            where = psycopg.conninfo.conninfo_to_dict(self.url)  # never the password
            raise ConfigError([f"PostgreSQL at {where.get('host', 'localhost')}:"
                               f"{where.get('port', 5432)}/{where.get('dbname', '')} cannot "
                               f"be reached: {type(exc).__name__}"]) from exc
        current = tuple(sorted(str(r[0]) for r in rows))
        if current != heads:
            self.close()
            raise ConfigError([
                f"PostgreSQL schema is at {', '.join(current) or 'nothing'}, the code needs "
                f"{', '.join(heads)}: run `varco db upgrade` first"])

    def close(self) -> None:
        self.pool.close()
