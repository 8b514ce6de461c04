"""``in_thread``: blocking work off the event loop, with the request's context."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from broker.threads import WORKERS, in_thread

REQUEST = contextvars.ContextVar("request", default="none")


def _where(suffix: str, *, twice: bool = False) -> tuple[str, str]:
    value = REQUEST.get() + suffix
    return threading.current_thread().name, value + value if twice else value


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


def test_a_call_cancelled_before_a_worker_takes_it_never_runs() -> None:
    release = threading.Event()
    ran: list[str] = []

    async def main() -> None:
        busy = [asyncio.ensure_future(in_thread(release.wait, 10)) for _ in range(WORKERS)]
        await asyncio.sleep(0.05)  # every worker is now blocked
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


def test_calls_in_a_row_reuse_the_most_recently_idle_thread() -> None:
    """After a burst has started many workers, sequential calls keep to one of them:
    the warm thread (CPU caches, its SQLite connection's page cache) takes the work,
    not the one idle the longest."""
    release = threading.Event()

    async def main() -> tuple[set[str], list[str]]:
        started = [asyncio.ensure_future(in_thread(_hold, release)) for _ in range(8)]
        await asyncio.sleep(0.05)
        release.set()
        burst = set(await asyncio.gather(*started))
        sequential = [(await in_thread(_where, ""))[0] for _ in range(20)]
        return burst, sequential

    burst, sequential = asyncio.run(main())
    assert len(burst) == 8  # eight threads ran at once
    assert len(set(sequential)) == 1


def _hold(release: threading.Event) -> str:
    release.wait(10)
    return threading.current_thread().name


def test_a_burst_beyond_the_pool_waits_and_every_call_runs_once() -> None:
    """More calls than workers: the extra ones queue until a worker is free; none is
    lost or run twice."""
    release = threading.Event()
    order: list[int] = []

    async def main() -> None:
        busy = [asyncio.ensure_future(in_thread(release.wait, 10)) for _ in range(WORKERS)]
        await asyncio.sleep(0.05)
        queued = [asyncio.ensure_future(in_thread(order.append, n)) for n in range(30)]
        await asyncio.sleep(0.05)
        assert order == []  # every worker is blocked: nothing queued has run
        release.set()
        await asyncio.gather(*busy, *queued)

    asyncio.run(main())
    assert sorted(order) == list(range(30))
