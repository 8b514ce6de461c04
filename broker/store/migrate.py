"""Runs the Alembic migrations of the PostgreSQL schema and says which revision is head.

The migrations live in ``broker/store/migrations``; no ``alembic.ini`` is needed: the
configuration is built here, so ``varco db upgrade`` works from any folder.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).with_name("migrations")


def _config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        cfg.attributes["url"] = url
    return cfg


def head_revision() -> str:
    """The revision the code expects the database to be at."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` (libpq form) to ``revision``; idempotent."""
    command.upgrade(_config(url), revision)
