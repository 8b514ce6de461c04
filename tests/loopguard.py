"""Finds blocking calls made on the event loop, in every test that runs a broker.

A store call (SQLite, PostgreSQL, Redis), an LDAP lookup or an argon2 hash made on the
event loop stops every other request of the process while it runs; the broker must make
them in its worker threads (``broker.http.threads.in_thread``, the hub's one hop). The
guard wraps those classes' methods once per test session and records any call made from
a broker's server thread while its event loop runs (``tests.harness`` names those threads
``SERVER_THREAD``); ``tests/conftest.py`` fails the test that made one. Other threads that
run a loop (Playwright's, in the browser tests) build brokers too, which is not serving.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import traceback
from collections.abc import Callable
from typing import Any

from broker.directory.ldap import LdapDirectory
from broker.store.postgres import PostgresDatabase
from broker.store.redis import RedisEphemeralStore
from broker.store.sqlite import SqliteDatabase, SqliteEphemeralStore
from providers.pin.hashing import PinHasher

EPHEMERAL = ("put", "get", "put_many", "get_many", "take", "add", "delete", "incr")
GUARDED: list[tuple[type, tuple[str, ...]]] = [
    (SqliteDatabase, ("transaction", "query", "write", "write_returning", "audit_append",
                      "batch")),
    (PostgresDatabase, ("transaction", "query", "audit_append")),
    (SqliteEphemeralStore, EPHEMERAL),
    (RedisEphemeralStore, EPHEMERAL),
    (LdapDirectory, ("facts", "comune", "operators")),
    (PinHasher, ("hash", "verify")),
]
VIOLATIONS: list[str] = []
SERVER_THREAD = "broker-event-loop"
_installed = False


def on_event_loop() -> bool:
    """Is this a broker's server thread, running its event loop right now?"""
    if not threading.current_thread().name.startswith(SERVER_THREAD):
        return False
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _guard(cls: type, name: str) -> None:
    original: Callable[..., Any] = getattr(cls, name)

    @functools.wraps(original)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if on_event_loop():
            where = "".join(traceback.format_stack()[-8:-1])
            VIOLATIONS.append(f"{cls.__name__}.{name} called on the event loop:\n{where}")
        return original(*args, **kwargs)

    setattr(cls, name, guarded)


def install() -> None:
    """Wrap every guarded method (once per process)."""
    global _installed
    if _installed:
        return
    _installed = True
    for cls, names in GUARDED:
        for name in names:
            _guard(cls, name)
