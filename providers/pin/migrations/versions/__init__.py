"""Revisions of the ``pin`` branch (Alembic skips this file; it makes them package data)."""
