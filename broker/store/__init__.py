"""Storage: the interfaces the broker needs and their embedded (SQLite) implementation.

Stores know nothing of the web or of providers. A Redis/PostgreSQL implementation fills
the same interfaces (``broker.store.base``).
"""

from broker.store.base import Database, EphemeralStore
from broker.store.sqlite import SqliteDatabase, SqliteEphemeralStore

__all__ = ["Database", "EphemeralStore", "SqliteDatabase", "SqliteEphemeralStore"]
