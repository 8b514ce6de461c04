"""Runs the Alembic migrations of the PostgreSQL schema and says which revisions are heads.

The broker's migrations live in ``broker/store/migrations/versions`` (the trunk); each
provider with tables has its own version location and branch (``pin`` in
``providers/pin/migrations/versions``), found through ``broker.store.schema.schemas()``.
A database is current when it is at every head: one per branch. No ``alembic.ini`` is
needed: the configuration is built here, so ``varco db upgrade`` works from any folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from broker.store.schema import schemas

MIGRATIONS = Path(__file__).with_name("migrations")


def _config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations",
                        os.pathsep.join(str(s.versions) for s in schemas()))
    if url is not None:
        cfg.attributes["url"] = url
    return cfg


def head_revisions() -> tuple[str, ...]:
    """The revisions the code expects the database to be at, one per branch, sorted."""
    return tuple(sorted(ScriptDirectory.from_config(_config()).get_heads()))


def upgrade(url: str, revision: str = "heads") -> None:
    """Bring the database at ``url`` (libpq form) to ``revision``; idempotent."""
    command.upgrade(_config(url), revision)
