"""Alembic environment: plain SQL migrations on a psycopg 3 connection.

The database address comes from ``config.attributes["url"]`` (set by ``varco db upgrade``)
as a libpq URL. The target is every registered part of the declared schema
(``broker.store.schema.schemas()``), so ``compare_metadata`` and autogenerate see the
same tables the SQLite file is rendered from; the revisions themselves stay frozen SQL.
"""

from __future__ import annotations

import psycopg
from alembic import context
from sqlalchemy import create_engine, pool

from broker.store.schema import schemas

url = context.config.attributes.get("url")
if not url:
    raise RuntimeError("no database url: run migrations through `varco db upgrade`")

engine = create_engine("postgresql+psycopg://", poolclass=pool.NullPool,
                       creator=lambda: psycopg.connect(url))
with engine.connect() as connection:
    context.configure(connection=connection, transactional_ddl=True,
                      target_metadata=[s.metadata for s in schemas()])
    with context.begin_transaction():
        context.run_migrations()
