"""Build the configured directory once at start (``directory:`` settings section)."""

from __future__ import annotations

import logging

from broker.clock import Clock
from broker.config import Settings
from broker.directory.base import Directory
from broker.directory.demo import seed_demo_directory
from broker.directory.sqlite import SqliteDirectory
from broker.errors import ConfigError
from broker.store.base import Database

log = logging.getLogger("varco.directory")


def build_directory(settings: Settings, db: Database, clock: Clock) -> Directory:
    """The embedded directory (seeded with demo roles if asked) or the LDAP one."""
    cfg = settings.directory
    if cfg.backend == "ldap":
        from broker.directory.ldap import LdapDirectory

        problems = [f"directory.{k}: required for the ldap backend"
                    for k in ("ldap_url", "base_dn") if not getattr(cfg, k)]
        if problems:
            raise ConfigError([f"{settings.source}: {p}" for p in problems])
        return LdapDirectory.from_settings(cfg)
    directory = SqliteDirectory(db)
    if (cfg.demo or settings.demo_seed) and seed_demo_directory(directory, clock.now()):
        log.info("seeded the demo roles into the embedded directory")
    return directory
