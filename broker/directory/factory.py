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


def build_directory(settings: Settings, db: Database | None, clock: Clock) -> Directory:
    """The embedded directory (seeded with demo roles if asked) or the LDAP one.

    ``db`` is the durable database the embedded directory lives in; the LDAP backend
    needs none (``varco policy explain`` opens no database for it).
    """
    cfg = settings.directory
    if cfg.backend == "ldap":
        from broker.directory.ldap import LdapDirectory

        problems = [f"directory.{k}: required for the ldap backend"
                    for k, v in (("ldap_url", cfg.ldap_url), ("base_dn", cfg.base_dn)) if not v]
        if problems:
            raise ConfigError([f"{settings.source}: {p}" for p in problems])
        return LdapDirectory.from_settings(cfg)
    if db is None:
        raise ValueError("the embedded directory needs the durable database")
    directory = SqliteDirectory(db)
    if (cfg.demo or settings.demo_seed) and seed_demo_directory(directory, clock.now()):
        log.info("seeded the demo roles into the embedded directory")
    return directory
