"""One behavioural suite for ``EphemeralStore``, run on every backend.

SQLite runs with a ``FixedClock`` (expiry by moving time); Redis runs against a real
redis-server whose TTLs are its own clock, so the few expiry tests there wait out real
one-second TTLs (about five seconds in all). Everything else is the same assertion on
both: what a caller of the interface can observe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from broker.clock import FixedClock
from broker.errors import ServiceUnavailable
from broker.store.base import EphemeralStore
from broker.store.redis import RedisEphemeralStore
from broker.store.sqlite import SqliteDatabase, SqliteEphemeralStore
from tests.store.redis_env import RedisServer, free_port

pytestmark = pytest.mark.integration


@dataclass
class Backend:
    """A store under test, how to let time pass for it, and how to reopen it."""

    name: str
    store: EphemeralStore
    wait: Callable[[float], None]
    reopen: Callable[[], EphemeralStore]


_counter = iter(range(1_000_000))


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        clock = FixedClock(datetime(2025, 3, 1, 9, 0, tzinfo=UTC))
        path = tmp_path / "eph.db"
        store = SqliteEphemeralStore(SqliteDatabase(path), clock)
        yield Backend("sqlite", store, lambda s: clock.advance(seconds=s),
                      lambda: SqliteEphemeralStore(SqliteDatabase(path), clock))
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    prefix = f"t{next(_counter)}:"  # each test its own key space on the shared server
    store = RedisEphemeralStore(server.url, prefix=prefix)
    yield Backend("redis", store, time.sleep,
                  lambda: RedisEphemeralStore(server.url, prefix=prefix))
    store.close()


def test_put_get_replace_and_delete(backend: Backend) -> None:
    s = backend.store
    assert s.get("ns", "k") is None
    s.put("ns", "k", '{"a": "è ✓"}', 60)
    assert s.get("ns", "k") == '{"a": "è ✓"}'
    s.put("ns", "k", "second", 60)
    assert s.get("ns", "k") == "second"
    s.delete("ns", "k")
    assert s.get("ns", "k") is None
    s.delete("ns", "never-there")  # deleting nothing is not an error


def test_put_many_and_get_many(backend: Backend) -> None:
    s = backend.store
    s.put("tok", "old", "replaced", 60)
    s.put_many([("marker", "t1", "grant-1", 600), ("tok", "t1", '{"k": "è"}', 60),
                ("tok", "old", "new", 1)])
    assert s.get_many([("tok", "t1"), ("marker", "t1"), ("tok", "absent"), ("tok", "old")]) \
        == ['{"k": "è"}', "grant-1", None, "new"]
    assert s.get_many([]) == []
    backend.wait(1.2)
    assert s.get_many([("tok", "old"), ("marker", "t1")]) == [None, "grant-1"]


def test_namespaces_are_separate(backend: Backend) -> None:
    s = backend.store
    s.put("oidc:code", "x", "code", 60)
    s.put("oidc", "code:x", "other", 60)
    assert s.get("oidc:code", "x") == "code"
    assert s.get("oidc", "code:x") == "other"
    assert s.take("oidc:code", "x") == "code"
    assert s.get("oidc", "code:x") == "other"


def test_take_is_single_use(backend: Backend) -> None:
    s = backend.store
    s.put("code", "c1", "grant", 60)
    assert s.take("code", "c1") == "grant"
    assert s.take("code", "c1") is None
    assert s.get("code", "c1") is None


def test_add_refuses_a_replay(backend: Backend) -> None:
    s = backend.store
    assert s.add("replay", "assertion-1", "1", 60) is True
    assert s.add("replay", "assertion-1", "2", 60) is False
    assert s.get("replay", "assertion-1") == "1"  # the first value stays


def test_incr_counts_from_one(backend: Backend) -> None:
    s = backend.store
    assert [s.incr("fails", "cf", 60) for _ in range(3)] == [1, 2, 3]
    assert s.incr("fails", "other", 60) == 1
    s.delete("fails", "cf")
    assert s.incr("fails", "cf", 60) == 1


def test_values_expire(backend: Backend) -> None:
    s = backend.store
    s.put("ns", "short", "v", 1)
    s.put("ns", "long", "v", 600)
    assert s.add("ns", "added", "v", 1) is True
    backend.wait(1.2)
    assert s.get("ns", "short") is None
    assert s.take("ns", "short") is None
    assert s.get("ns", "long") == "v"
    assert s.add("ns", "added", "again", 600) is True  # expired: free again
    assert s.get("ns", "added") == "again"


def test_counter_window_does_not_slide(backend: Backend) -> None:
    """A lockout window starts at the first failure; later failures do not extend it."""
    s = backend.store
    assert s.incr("fails", "cf", 2) == 1
    backend.wait(1.0)
    assert s.incr("fails", "cf", 2) == 2
    backend.wait(1.2)
    assert s.incr("fails", "cf", 2) == 1


def test_state_survives_reopening(backend: Backend) -> None:
    """A broker restart (a new store object on the same backend) loses nothing."""
    backend.store.put("session", "sid", "alive", 600)
    backend.store.incr("fails", "cf", 600)
    again = backend.reopen()
    assert again.get("session", "sid") == "alive"
    assert again.incr("fails", "cf", 600) == 2


def test_purge_expired_keeps_live_values(backend: Backend) -> None:
    s = backend.store
    s.put("ns", "live", "v", 600)
    assert s.purge_expired() >= 0
    assert s.get("ns", "live") == "v"


def _race(n: int, fn: Callable[[int], object]) -> list[object]:
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = fn(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    return results


N = 16


def test_concurrent_take_has_exactly_one_winner(backend: Backend) -> None:
    for round_ in range(5):
        backend.store.put("code", f"c{round_}", f"grant{round_}", 60)
        results = _race(N, lambda _i, r=round_: backend.store.take("code", f"c{r}"))
        assert [r for r in results if r is not None] == [f"grant{round_}"]


def test_concurrent_add_has_exactly_one_winner(backend: Backend) -> None:
    for round_ in range(5):
        results = _race(N, lambda i, r=round_: backend.store.add("replay", f"a{r}", str(i), 60))
        assert results.count(True) == 1
        winner = results.index(True)
        assert backend.store.get("replay", f"a{round_}") == str(winner)


def test_concurrent_incr_counts_exactly(backend: Backend) -> None:
    per_thread = 25
    results = _race(N, lambda _i: [backend.store.incr("rate", "ip", 60)
                                   for _ in range(per_thread)])
    seen = sorted(v for batch in results for v in batch)  # type: ignore[attr-defined]
    assert seen == list(range(1, N * per_thread + 1))  # every count handed out once


def test_redis_down_is_service_unavailable() -> None:
    store = RedisEphemeralStore(f"redis://127.0.0.1:{free_port()}/0", timeout=1)
    with pytest.raises(ServiceUnavailable):
        store.get("ns", "k")
    with pytest.raises(ServiceUnavailable):
        store.ping()


def test_redis_keys_are_prefixed_and_hold_no_other_data(redis_server: RedisServer) -> None:
    a = RedisEphemeralStore(redis_server.url, prefix="tenant-a:")
    b = RedisEphemeralStore(redis_server.url, prefix="tenant-b:")
    a.put("session", "sid", "A", 60)
    assert b.get("session", "sid") is None
    raw = redis_server.client()
    assert raw.get("tenant-a:session|sid") == "A"
    assert 0 < raw.ttl("tenant-a:session|sid") <= 60
    with pytest.raises(ValueError):
        a.put("bad|ns", "k", "v", 60)
