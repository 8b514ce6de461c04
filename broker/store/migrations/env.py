"""Alembic environment: plain SQL migrations on a psycopg 3 connection.

The database address comes from ``config.attributes["url"]`` (set by ``varco db upgrade``)
as a libpq URL; there are no ORM models, so no autogenerate.
"""

from __future__ import annotations

import psycopg
from alembic import context
from sqlalchemy import create_engine, pool

url = context.config.attributes.get("url")
if not url:
    raise RuntimeError("no database url: run migrations through `varco db upgrade`")

engine = create_engine("postgresql+psycopg://", poolclass=pool.NullPool,
                       creator=lambda: psycopg.connect(url))
with engine.connect() as connection:
    context.configure(connection=connection, transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()
