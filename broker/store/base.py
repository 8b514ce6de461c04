"""Storage interfaces.

Two kinds of state:

* ``EphemeralStore``: short-lived, hot, keyed values with a time to live (sessions,
  pending logins, authorization codes, tokens, replay caches). Its operations are the
  ones Redis offers atomically (SET EX, GETDEL, SET NX, INCR), so the scale-out
  implementation is a thin mapping and no caller does read-modify-write.
* ``Database``: durable, relational (PIN credentials, audit trail, directory). Repositories
  receive one and run their own SQL inside ``transaction()``, in the dialect SQLite and
  PostgreSQL share (``?`` placeholders, ``ON CONFLICT``, ``RETURNING``). ``Connection``,
  ``Cursor`` and ``Row`` are the part of sqlite3's that they use, which
  ``broker.store.postgres`` offers over psycopg as well; their tables are declared once
  in ``broker.store.schema``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sqlalchemy import Table


class EphemeralStore(Protocol):
    """Namespaced key/value pairs that expire. Values are strings (JSON by convention)."""

    def put(self, ns: str, key: str, value: str, ttl: int) -> None:
        """Set ``key`` to ``value`` for ``ttl`` seconds, replacing any previous value."""

    def get(self, ns: str, key: str) -> str | None:
        """The live value, or None if absent or expired."""

    def put_many(self, items: Sequence[tuple[str, str, str, int]]) -> None:
        """``put`` of several ``(ns, key, value, ttl)`` at once: one round trip, all or
        none (a token and its reuse marker)."""

    def get_many(self, keys: Sequence[tuple[str, str]]) -> list[str | None]:
        """``get`` of several ``(ns, key)`` in one round trip, in order."""

    def take(self, ns: str, key: str) -> str | None:
        """Atomically read and delete: single-use values (codes, pending SAML requests)."""

    def add(self, ns: str, key: str, value: str, ttl: int) -> bool:
        """Set only if absent (or expired). False means it was already there: a replay."""

    def delete(self, ns: str, key: str) -> None: ...

    def incr(self, ns: str, key: str, ttl: int) -> int:
        """Atomically add one and return the new count; a new counter lives ``ttl`` seconds."""

    def purge_expired(self) -> int:
        """Drop expired entries; returns how many. Called periodically, never per request."""


class Row(Protocol):
    """A result row: ``row[0]``, ``row["name"]``, unpacking; ``sqlite3.Row`` is one."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...

    def __len__(self) -> int: ...

    def keys(self) -> list[str]: ...


class Cursor(Protocol):
    """What a statement gives back: its rows, or how many rows it changed."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Row | None: ...

    def fetchall(self) -> Sequence[Row]: ...

    def __iter__(self) -> Iterator[Row]: ...


class Connection(Protocol):
    """A connection inside ``Database.transaction()``: one statement at a time, ``?``
    placeholders (``sqlite3.Connection`` is one)."""

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> Cursor: ...


class Database(Protocol):
    """A durable SQL database. ``transaction()`` commits on success, rolls back on error."""

    def transaction(self) -> AbstractContextManager[Connection]: ...

    def create_tables(self, tables: tuple[Table, ...]) -> None:
        """Create ``tables`` (declared in ``broker.store.schema``'s way) where they are
        missing, with their indexes and triggers: what a repository does at start.

        SQLite renders them from their declaration; PostgreSQL leaves its schema to the
        migrations (``varco db upgrade``), so there this does nothing."""

    def query(self, sql: str, params: Sequence[Any] = ()) -> Iterator[Row]: ...

    def batch(self) -> AbstractContextManager[object]:
        """Group this thread's writes (one request's) where a commit is what they cost.

        SQLite: one transaction, one commit instead of one per write, and all or nothing.
        PostgreSQL: nothing; each write keeps its own round trip and transaction, since
        holding one open would hold the audit chain's lock against every other process.
        """

    def audit_append(self, at: str, kind: str, data: str, lock: str) -> None:
        """Append one entry to the ``audit`` table, chained to the last one (``prev`` and
        ``hash`` by ``audit_digest``), atomically against every other writer; ``lock``
        names the chain. Inside an outer ``transaction()`` it joins it."""


AUDIT_GENESIS = "0" * 64  # the ``prev`` of the first audit entry


def audit_digest(prev: str, at: str, kind: str, data: str) -> str:
    """The audit chain's link: SHA-256 over the previous hash and this entry's content.

    ``broker.audit`` verifies with it; SQLite calls it from SQL; PostgreSQL computes the
    same bytes in ``varco_audit_append`` (migration 0002).
    """
    return hashlib.sha256("\x1f".join((prev, at, kind, data)).encode()).hexdigest()


def serialize(conn: Any, name: str) -> None:
    """Make writers that read-then-write ``name`` in a transaction take turns.

    SQLite transactions are already one writer at a time (``BEGIN IMMEDIATE``), so there
    this does nothing; on PostgreSQL it takes a transaction-scoped advisory lock, so two
    processes appending to the audit chain or counting the same PIN failures cannot both
    read the same "before".
    """
    lock = getattr(conn, "advisory_lock", None)
    if lock is not None:
        lock(name)
