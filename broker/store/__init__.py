"""Storage: the interfaces the broker needs and their implementations (SQLite, Redis, PostgreSQL).

Stores know nothing of the web or of providers. ``broker.store.redis`` and
``broker.store.postgres`` fill the same interfaces (``broker.store.base``) for many broker
processes; ``broker.store.factory`` picks them from the settings.
"""

from broker.store.base import Database, EphemeralStore
from broker.store.sqlite import SqliteDatabase, SqliteEphemeralStore

__all__ = ["Database", "EphemeralStore", "SqliteDatabase", "SqliteEphemeralStore"]
