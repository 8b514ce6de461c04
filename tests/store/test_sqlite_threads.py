"""The worker threads of one process on the embedded SQLite file.

A transaction belongs to the thread that opened it: another thread's statements neither
join it (they would be rolled back with it) nor see its uncommitted rows, and a value
``take`` removes goes to exactly one thread.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from broker.clock import FixedClock
from broker.store.sqlite import SqliteDatabase, SqliteEphemeralStore
from tests.store.test_durable_contract import T0


class Boom(Exception):
    pass


def test_a_rolled_back_transaction_takes_no_other_threads_write_with_it(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "varco.db")
    store = SqliteEphemeralStore(db, FixedClock(T0))
    inside, other_done = threading.Event(), threading.Event()
    seen_by_other: list[str | None] = []

    def other() -> None:
        inside.wait(5)
        seen_by_other.append(store.get("t", "a"))  # A's uncommitted row: not visible
        store.put("t", "b", "from B", 60)  # waits for A's transaction, then commits alone
        other_done.set()

    worker = threading.Thread(target=other)
    worker.start()
    with pytest.raises(Boom), db.transaction():
        store.put("t", "a", "from A", 60)
        inside.set()
        assert not other_done.wait(0.3)  # B is held back while A's transaction is open
        raise Boom
    worker.join(5)
    assert other_done.is_set()
    assert seen_by_other == [None]
    assert store.get("t", "a") is None  # A's write went with its rollback
    assert store.get("t", "b") == "from B"  # B's did not


def test_take_hands_each_value_to_exactly_one_of_many_threads(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "varco.db")
    store = SqliteEphemeralStore(db, FixedClock(T0))
    keys = [f"k{i}" for i in range(200)]
    store.put_many([("t", k, f"v-{k}", 60) for k in keys])
    taken: list[tuple[str, str]] = []
    lock = threading.Lock()

    def taker() -> None:
        for k in keys:
            value = store.take("t", k)
            if value is not None:
                with lock:
                    taken.append((k, value))

    threads = [threading.Thread(target=taker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(taken) == sorted((k, f"v-{k}") for k in keys)  # each once, none lost


class _CheckedLock:
    """The process's write lock, checking at each release that SQLite's own write lock
    is free: a second connection that never waits must be able to take it."""

    def __init__(self, path: Path):
        self._lock = threading.Lock()
        self._probe = sqlite3.connect(path, timeout=0, isolation_level=None,
                                      check_same_thread=False)
        self.held_after_release: list[str] = []

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        try:
            self._probe.execute("BEGIN IMMEDIATE")
            self._probe.execute("ROLLBACK")
        except sqlite3.OperationalError as err:
            self.held_after_release.append(str(err))
        self._lock.release()


def test_a_take_commits_before_the_write_lock_goes_to_another_thread(tmp_path: Path) -> None:
    """``DELETE ... RETURNING`` commits only once its rows are read; read before the
    lock is released, or the next thread's write meets SQLite's sleeping busy handler."""
    db = SqliteDatabase(tmp_path / "varco.db")
    store = SqliteEphemeralStore(db, FixedClock(T0))
    store.put("t", "a", "value", 60)
    checked = _CheckedLock(tmp_path / "varco.db")
    db._write_lock = checked  # type: ignore[assignment]
    assert store.take("t", "a") == "value"
    assert store.take("t", "a") is None
    store.put("t", "b", "value", 60)
    assert checked.held_after_release == []


def test_a_batch_takes_the_write_lock_at_its_first_write_only(tmp_path: Path) -> None:
    """Before its first write a batch holds nothing (a request signs or decides there
    while other threads write); from it to the end, its writes commit together."""
    db = SqliteDatabase(tmp_path / "varco.db")
    store = SqliteEphemeralStore(db, FixedClock(T0))
    probe = sqlite3.connect(tmp_path / "varco.db", timeout=0, isolation_level=None)

    def other_thread_put(key: str) -> None:
        worker = threading.Thread(target=store.put, args=("t", key, "other", 60))
        worker.start()
        worker.join(5)
        assert not worker.is_alive(), "the other thread's write waited for the batch"

    with db.batch():
        assert store.get("t", "x") is None
        other_thread_put("before-first-write")  # no lock held yet: it commits at once
        store.put("t", "a", "1", 60)
        store.put("t", "b", "2", 60)
        seen = probe.execute("SELECT count(*) FROM ephemeral WHERE k IN ('a','b')").fetchone()
        assert seen == (0,)  # not committed yet
        with pytest.raises(sqlite3.OperationalError):
            probe.execute("BEGIN IMMEDIATE")  # and the batch holds SQLite's write lock
    assert store.get("t", "a") == "1" and store.get("t", "b") == "2"
    assert store.get("t", "before-first-write") == "other"
    probe.execute("BEGIN IMMEDIATE")  # released at the end
    probe.execute("ROLLBACK")


def test_a_failed_batch_writes_nothing_and_releases_the_lock(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "varco.db")
    store = SqliteEphemeralStore(db, FixedClock(T0))
    with pytest.raises(Boom), db.batch():
        store.put("t", "a", "1", 60)
        assert store.take("t", "a") == "1"
        store.put("t", "b", "2", 60)
        raise Boom
    assert store.get("t", "a") is None and store.get("t", "b") is None
    store.put("t", "c", "3", 60)  # the write lock is free again
    with db.batch():  # a batch that only reads opens no transaction
        assert store.get("t", "c") == "3"
        assert not db._conn().in_transaction
