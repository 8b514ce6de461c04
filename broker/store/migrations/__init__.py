"""Alembic migrations of the PostgreSQL schema, run by ``varco db upgrade``.

SQLite needs none: the embedded file creates its own tables at start.
"""
