"""Builds the broker's stores from its settings: the one place that knows the backends.

The durable database is the SQLite file under the data folder (the default) or
PostgreSQL (``store.durable: postgres``, schema by ``varco db upgrade``); the ephemeral
store is a table of the SQLite file (one host) or Redis (``store.ephemeral: redis``, any
number of broker processes). Nothing else in the broker names a backend.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from broker.clock import Clock
from broker.config import Settings
from broker.errors import ConfigError, ServiceUnavailable
from broker.store.base import Database, EphemeralStore
from broker.store.sqlite import SqliteDatabase, SqliteEphemeralStore


@dataclass(frozen=True)
class Stores:
    """What ``create_app`` puts in the context, plus what operations need to know."""

    db: Database
    ephemeral: EphemeralStore
    ephemeral_backend: str

    def check(self) -> list[str]:
        """Problems that make this process not ready (``/readyz``); empty when fine."""
        problems = []
        try:
            self.db.query("SELECT 1")
        except Exception as exc:  # any failure of the file is "not ready"
            problems.append(f"database: {type(exc).__name__}")
        ping = getattr(self.ephemeral, "ping", None)
        if ping is not None:
            try:
                ping()
            except ServiceUnavailable as exc:
                problems.append(f"ephemeral store: {exc.detail}")
        return problems

    def close(self) -> None:
        for store in (self.ephemeral, self.db):
            close = getattr(store, "close", None)
            if close is not None:
                close()


def build_stores(settings: Settings, clock: Clock) -> Stores:
    """The database and the ephemeral store the settings ask for.

    A Redis that cannot be reached at start is not fatal (it may come up after the
    broker): ``/readyz`` says 503 until it answers. A missing URL is a ``ConfigError``.
    """
    cfg = settings.store
    db = build_database(settings)
    if cfg.ephemeral == "redis":
        url = os.environ.get(cfg.redis_url_env)
        if not url:
            raise ConfigError([f"{settings.source}: store.redis_url_env: environment variable "
                               f"{cfg.redis_url_env} is not set"])
        from broker.store.redis import RedisEphemeralStore

        return Stores(db, RedisEphemeralStore(url, prefix=cfg.redis_prefix), "redis")
    local = db if isinstance(db, SqliteDatabase) else SqliteDatabase(
        settings.data_dir / "varco.db")
    return Stores(db, SqliteEphemeralStore(local, clock), "sqlite")


def build_database(settings: Settings) -> Database:
    """The durable database of ``settings``: the SQLite file, or PostgreSQL at head.

    PostgreSQL whose schema is missing or behind the code is a ``ConfigError`` saying to
    run ``varco db upgrade``: a broker never migrates on its own (many processes start
    at once; the operator decides when the schema moves).
    """
    cfg = settings.store
    if cfg.durable == "postgres":
        url = os.environ.get(cfg.postgres_url_env)
        if not url:
            raise ConfigError([f"{settings.source}: store.postgres_url_env: environment "
                               f"variable {cfg.postgres_url_env} is not set"])
        from broker.store.postgres import PostgresDatabase

        return PostgresDatabase(url, pool_size=cfg.postgres_pool_size)
    return SqliteDatabase(settings.data_dir / "varco.db")
