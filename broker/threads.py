"""Running blocking work (SQLite, signatures, argon2) off the event loop.

Starlette's ``run_in_threadpool`` goes through anyio: a capacity limiter, a cancel scope
and two checkpoints around each call, ~50 us of event-loop CPU per hop, about twice
what the call itself needs. A login makes one hop per request, so Varco's endpoints use
``in_thread``: one bounded pool whose worker settles the caller's asyncio future, with
the caller's context variables (the request id the log lines carry) copied into the
worker as anyio does. The pool has anyio's default size (40); FastAPI's own sync
dependencies, if any, still use anyio's pool.

The pool wakes its **most recently idle** thread (``LifoPool``), not the one idle the
longest as ``ThreadPoolExecutor``'s shared queue does. Under the usual load a handful of
threads take all the calls, so their CPU caches and, above all, their SQLite
connections' page caches stay warm: a connection drops its page cache whenever another
connection has written, and with 40 connections taking turns every statement started
cold. Measured on the SPID login: ~9% less broker CPU per login (bench/README.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

WORKERS = 40

log = logging.getLogger("varco.threads")


class Job:
    """A call waiting for, or given to, a worker. ``call`` and ``done`` must not raise."""

    __slots__ = ("call", "done")

    def __init__(self, call: Callable[[], Any], done: Callable[[Any], None]):
        self.call = call
        self.done = done


class LifoPool:
    """Up to ``max_workers`` daemon threads; each call goes to the most recently idle one.

    Calls that find every thread busy wait in a FIFO backlog, taken in order by the
    threads as they finish. A worker parks itself before it reports a result
    (``done``), so a caller that submits again as soon as it hears back finds the same
    thread on top of the idle stack.

    Daemon threads: the server stops taking requests and lets those in flight finish
    before the process exits, so no call is cut short by the exit.
    """

    def __init__(self, max_workers: int, name_prefix: str):
        self.max_workers = max_workers
        self.name_prefix = name_prefix
        self._lock = threading.Lock()
        self._idle: list[tuple[threading.Lock, list[Job | None]]] = []  # top = last
        self._backlog: deque[Job] = deque()
        self._threads = 0

    def submit(self, call: Callable[[], Any], done: Callable[[Any], None]) -> Job:
        job = Job(call, done)
        with self._lock:
            if self._idle:
                wake, slot = self._idle.pop()
                slot[0] = job
                wake.release()
                return job
            if self._threads >= self.max_workers:
                self._backlog.append(job)
                return job
            self._threads += 1
            number = self._threads
        thread = threading.Thread(target=self._work, args=(job,), daemon=True,
                                  name=f"{self.name_prefix}_{number}")
        try:
            thread.start()
        except RuntimeError:  # the system refused another thread: wait for a running one
            with self._lock:
                self._threads -= 1
                if self._threads == 0:
                    raise
                self._backlog.append(job)
        return job

    def cancel(self, job: Job) -> bool:
        """Drop ``job`` if no worker has taken it yet; False when it runs or has run."""
        with self._lock:
            try:
                self._backlog.remove(job)
            except ValueError:
                return False
            return True

    def _work(self, job: Job) -> None:
        wake = threading.Lock()
        wake.acquire()
        slot: list[Job | None] = [None]
        while True:
            try:
                result = job.call()
            except BaseException:  # the contract says it cannot; keep the thread anyway
                log.exception("worker call raised")
                result = None
            with self._lock:
                following = self._backlog.popleft() if self._backlog else None
                if following is None:
                    self._idle.append((wake, slot))
            try:
                job.done(result)
            except BaseException:
                log.exception("worker completion raised")
            if following is None:
                wake.acquire()  # released by ``submit`` with the next job in ``slot``
                following, slot[0] = slot[0], None
            job = following  # type: ignore[assignment]


_pool = LifoPool(WORKERS, "varco-worker")


async def in_thread(func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """``func(*args, **kwargs)`` in a worker thread, awaited; its exception is raised here.

    The worker settles an asyncio future itself (one ``call_soon_threadsafe``) instead of
    ``run_in_executor``'s chain of a concurrent future copied into an asyncio one, ~15%
    less event-loop work per hop. Cancelling the caller before a worker takes the call
    drops it.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()

    def call() -> tuple[Any, BaseException | None]:
        try:
            return context.run(func, *args, **kwargs), None
        except BaseException as exc:  # handed to the awaiting caller, as run_in_executor does
            return None, exc

    def done(outcome: tuple[Any, BaseException | None]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(_settle, future, *outcome)

    job = _pool.submit(call, done)
    try:
        return await future
    except asyncio.CancelledError:
        _pool.cancel(job)  # not taken yet: it never will be
        raise


def _settle(future: asyncio.Future[T], result: T | None, exc: BaseException | None) -> None:
    if future.cancelled():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)  # type: ignore[arg-type]
