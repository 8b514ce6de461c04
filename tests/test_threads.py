"""``in_thread`` and its pool: blocking work off the event loop, with the request's context,
on few warm threads, without letting a blocked call hold up the others."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import broker.http.threads
from broker.http.threads import LifoPool, in_thread

REQUEST = contextvars.ContextVar("request", default="none")


def _where(suffix: str, *, twice: bool = False) -> tuple[str, str]:
    value = REQUEST.get() + suffix
    return threading.current_thread().name, value + value if twice else value


def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., LifoPool]]:
    """``in_thread``'s pool replaced by one built for the test."""
    def install(**options: Any) -> LifoPool:
        made = LifoPool(options.pop("max_workers", 8), "varco-worker", **options)
        monkeypatch.setattr(broker.http.threads, "_pool", made)
        return made
    yield install


def test_runs_in_a_worker_with_the_callers_context_and_arguments() -> None:
    async def main() -> tuple[str, str]:
        REQUEST.set("req-1")
        return await in_thread(_where, "!", twice=True)

    thread, value = asyncio.run(main())
    assert thread.startswith("varco-worker") and thread != threading.current_thread().name
    assert value == "req-1!req-1!"


def test_the_workers_exception_is_raised_to_the_caller() -> None:
    def fail() -> None:
        raise LookupError("gone")

    with pytest.raises(LookupError, match="gone"):
        asyncio.run(in_thread(fail))


def test_a_call_cancelled_before_a_worker_takes_it_never_runs(pool: Callable[..., LifoPool]
                                                               ) -> None:
    pool(max_workers=2, active=2, patience=60)
    release = threading.Event()
    ran: list[str] = []

    async def main() -> None:
        busy = [asyncio.ensure_future(in_thread(release.wait, 10)) for _ in range(2)]
        await asyncio.sleep(0.05)  # both workers are now blocked
        queued = asyncio.ensure_future(in_thread(ran.append, "ran"))
        await asyncio.sleep(0.05)
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        release.set()
        assert all(await asyncio.gather(*busy))
        await in_thread(lambda: None)  # the pool is usable again

    asyncio.run(main())
    assert ran == []


def test_calls_in_a_row_reuse_the_most_recently_idle_thread(pool: Callable[..., LifoPool]
                                                            ) -> None:
    """After a burst has started many workers, sequential calls keep to one of them:
    the warm thread (CPU caches, its SQLite connection's page cache) takes the work,
    not the one idle the longest."""
    pool(max_workers=8, active=8)
    release = threading.Event()
    started: list[str] = []

    def hold() -> str:
        started.append(threading.current_thread().name)
        release.wait(10)
        return threading.current_thread().name

    async def main() -> tuple[set[str], list[str]]:
        burst = [asyncio.ensure_future(in_thread(hold)) for _ in range(8)]
        await asyncio.to_thread(_until, lambda: len(started) == 8)
        release.set()
        names = set(await asyncio.gather(*burst))
        sequential = [(await in_thread(_where, ""))[0] for _ in range(20)]
        return names, sequential

    burst, sequential = asyncio.run(main())
    assert len(burst) == 8  # eight threads ran at once
    assert len(set(sequential)) == 1


def test_no_more_than_active_calls_run_while_they_keep_finishing() -> None:
    """Calls beyond ``active`` wait their turn instead of fighting for the GIL."""
    pool = LifoPool(8, "test-worker", active=2, patience=60)  # no watchdog in this test
    lock = threading.Lock()
    now = [0]
    peak = [0]
    finished = threading.Semaphore(0)

    def call() -> None:
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        time.sleep(0.002)
        with lock:
            now[0] -= 1

    for _ in range(20):
        pool.submit(call, lambda _: finished.release())
    for _ in range(20):
        assert finished.acquire(timeout=5)
    assert peak[0] == 2


def test_a_blocked_call_does_not_hold_up_the_backlog() -> None:
    """With one call blocked (a slow LDAP server, say), no call finishing and no new
    call submitted, the watchdog lets another thread take the waiting call."""
    pool = LifoPool(8, "test-worker", active=1, patience=0.01, sweep=0.02)
    release, second_ran = threading.Event(), threading.Event()
    pool.submit(lambda: release.wait(10), lambda _: None)
    pool.submit(second_ran.set, lambda _: None)
    try:
        assert second_ran.wait(5), "the second call waited for the blocked one"
        assert not release.is_set()
    finally:
        release.set()


def test_under_traffic_a_blocked_call_is_bypassed_without_waiting_for_the_sweep() -> None:
    """A call submitted while others have waited ``patience`` behind a blocked one lets
    another thread in at once: the watchdog's sweep (an hour here) is only for a backlog
    that no new call comes to look at."""
    pool = LifoPool(8, "test-worker", active=1, patience=0.01, sweep=3600)
    release, second_ran = threading.Event(), threading.Event()
    pool.submit(lambda: release.wait(10), lambda _: None)
    pool.submit(second_ran.set, lambda _: None)
    try:
        time.sleep(0.05)
        assert not second_ran.is_set()  # nothing looked at the backlog yet
        pool.submit(lambda: None, lambda _: None)
        assert second_ran.wait(5), "the waiting call stayed behind the blocked one"
        assert not release.is_set()
    finally:
        release.set()


def test_a_burst_beyond_the_pool_waits_and_every_call_runs_once() -> None:
    """More calls than workers: the extra ones queue until a worker is free; none is
    lost or run twice."""
    pool = LifoPool(4, "test-worker", active=1, patience=0.001)
    release = threading.Event()
    order: list[int] = []
    finished = threading.Semaphore(0)
    for _ in range(4):
        pool.submit(lambda: release.wait(10), lambda _: finished.release())
    for n in range(30):
        pool.submit(functools.partial(order.append, n), lambda _: finished.release())
    time.sleep(0.05)
    assert order == []  # the four threads are all blocked: nothing queued has run
    release.set()
    for _ in range(34):
        assert finished.acquire(timeout=5)
    assert sorted(order) == list(range(30))
