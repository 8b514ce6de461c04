"""``varco db upgrade``: bring the PostgreSQL schema to the code's head revision (Alembic).

Run it once per release, before starting the new broker processes; a broker on
PostgreSQL refuses to start on a schema that is behind. SQLite needs none of this: the
embedded file creates its tables at start.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from broker.errors import ConfigError


def _default_config() -> Path:
    from broker.paths import project_dir

    return project_dir("config") / "demo.yaml"


def database_url(config: Path) -> str | None:
    """The PostgreSQL URL the broker running ``config`` uses; None when it is on SQLite."""
    from broker.config import load_settings

    settings = load_settings(config)
    if settings.store.durable != "postgres":
        return None
    url = os.environ.get(settings.store.postgres_url_env)
    if not url:  # load_settings already refuses this; kept for a clear message
        raise ConfigError([f"{settings.store.postgres_url_env} is not set"])
    return url


def cmd_upgrade(args: argparse.Namespace) -> int:
    from broker.store.migrate import head_revisions, upgrade

    url = database_url(args.config or _default_config())
    if url is None:
        print("store.durable is sqlite: the embedded file creates its schema at start; "
              "nothing to upgrade")
        return 0
    upgrade(url)
    print(f"PostgreSQL schema at revisions {', '.join(head_revisions())} (heads)")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = sub.add_parser("db", help="durable database (PostgreSQL) schema migrations")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", help="migrate the PostgreSQL schema to the head revisions")
    up.add_argument("--config", type=Path, default=None)
    up.set_defaults(func=cmd_upgrade)
