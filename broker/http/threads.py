"""Running blocking work (SQLite, signatures, argon2) off the event loop.

Starlette's ``run_in_threadpool`` goes through anyio: a capacity limiter, a cancel scope
and two checkpoints around each call, ~50 us of event-loop CPU per hop, about twice
what the call itself needs. A login makes one hop per request, so Varco's endpoints use
``in_thread``: one bounded pool whose worker settles the caller's asyncio future, with
the caller's context variables (the request id the log lines carry) copied into the
worker as anyio does. The pool has anyio's default size (40); FastAPI's own sync
dependencies, if any, still use anyio's pool.

The pool wakes its **most recently idle** thread (``LifoPool``), not the one idle the
longest as ``ThreadPoolExecutor``'s shared queue does, and runs one call at a time while
calls keep finishing. A few threads take all the calls, so their CPU caches and their
SQLite connections' page caches stay warm (a connection drops its page cache whenever
another connection has written; with 40 connections taking turns every statement started
cold). Measured on the SPID login: about 5% less broker CPU per login for the wake-up
order, 3% more for the one-at-a-time rule (bench/README.md, sixth round).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")
# What a call in a worker gave: its result, or the exception it raised.
_Outcome = tuple[T, None] | tuple[None, BaseException]

WORKERS = 40

log = logging.getLogger("varco.threads")


class Job:
    """A call waiting for, or given to, a worker. ``call`` and ``done`` must not raise."""

    __slots__ = ("call", "done")

    def __init__(self, call: Callable[[], Any], done: Callable[[Any], None]):
        self.call = call
        self.done = done


class LifoPool:
    """Daemon threads that run calls, the most recently idle thread first, ``active`` at a
    time unless the running ones stop finishing.

    - **LIFO wake-up.** A worker parks itself before it reports a result (``done``), so a
      caller that submits again as soon as it hears back finds the same thread on top.
    - **A small number running.** Under the GIL, two threads running Python take turns,
      and each turn is a hand-off between threads and cold caches for the one that
      resumes. So calls beyond ``active`` wait in a FIFO backlog and the running threads
      take them in turn as they finish.
    - **More room for calls that wait.** A call that blocks (an LDAP or database server
      that is slow, a busy lock) or runs long without the GIL (argon2) must not hold up
      the backlog: when ``patience`` seconds pass with calls waiting and none finished,
      one more thread is let in, and so on up to ``max_workers``. The extra room shrinks
      back as the backlog empties and those threads go idle. The check runs when a call
      is submitted (under traffic, that is often) and, for a backlog that no new call
      comes to look at, in a watchdog thread every ``sweep`` seconds. A watchdog that
      woke every ``patience`` (5 ms) while calls waited needed the GIL up to 200 times a
      second under load, in turn with the running call, each a hand-off between
      threads: about 3% of the SPID login's CPU (bench/README.md, seventh round).

    Daemon threads: the server stops taking requests and lets those in flight finish
    before the process exits, so no call is cut short by the exit.
    """

    def __init__(self, max_workers: int, name_prefix: str, *, active: int = 1,
                 patience: float = 0.005, sweep: float = 0.05):
        if not 1 <= active <= max_workers:
            raise ValueError("need 1 <= active <= max_workers")
        self.max_workers = max_workers
        self.name_prefix = name_prefix
        self.active = active
        self.patience = patience
        self.sweep = sweep
        self._lock = threading.Lock()
        self._idle: list[tuple[threading.Lock, list[Job | None]]] = []  # top = last
        self._backlog: deque[Job] = deque()
        self._threads = 0
        self._running = 0  # calls being run
        self._allowed = active  # ``active``, plus threads let in for waiting calls
        self._progress_at = 0.0  # monotonic time of the last finish, let-in or backlog start
        self._waiting = threading.Event()  # set while the backlog is not empty
        self._watchdog: threading.Thread | None = None

    def submit(self, call: Callable[[], Any], done: Callable[[Any], None]) -> Job:
        job = Job(call, done)
        thread: threading.Thread | None
        taken: Job | None
        with self._lock:
            if self._running < self._allowed:
                thread, taken = self._run_locked(job), job
            else:
                now = time.monotonic()
                if not self._backlog:
                    self._progress_at = now  # the wait starts now
                self._backlog.append(job)
                self._waiting.set()
                if self._watchdog is None:
                    self._watchdog = threading.Thread(
                        target=self._watch, daemon=True, name=f"{self.name_prefix}-watchdog")
                    self._watchdog.start()
                thread, taken = self._let_in_locked(now)
        if thread is not None and taken is not None:
            self._start(thread, taken)
        return job

    def cancel(self, job: Job) -> bool:
        """Drop ``job`` if no worker has taken it yet; False when it runs or has run."""
        with self._lock:
            try:
                self._backlog.remove(job)
            except ValueError:
                return False
            return True

    def _run_locked(self, job: Job) -> threading.Thread | None:
        """Give ``job`` to the most recently idle worker, or return a new thread for it
        (started by the caller, outside the lock). Holds ``_lock``."""
        self._running += 1
        if self._idle:
            wake, slot = self._idle.pop()
            slot[0] = job
            wake.release()
            return None
        self._threads += 1
        return threading.Thread(target=self._work, args=(job,), daemon=True,
                                name=f"{self.name_prefix}_{self._threads}")

    def _start(self, thread: threading.Thread, job: Job) -> None:
        try:
            thread.start()
        except RuntimeError:  # the system refused another thread: wait for a running one
            with self._lock:
                self._threads -= 1
                self._running -= 1
                if self._threads == 0:
                    raise
                self._backlog.appendleft(job)
                self._waiting.set()

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
                self._progress_at = time.monotonic()
                following = None
                if self._backlog and self._running <= self._allowed:
                    following = self._backlog.popleft()
                else:
                    self._running -= 1
                    # The extra room lasts while the calls let in for it run.
                    self._allowed = max(self.active, min(self._allowed, self._running))
                    self._idle.append((wake, slot))
                if not self._backlog:
                    self._waiting.clear()
            try:
                job.done(result)
            except BaseException:
                log.exception("worker completion raised")
            if following is None:
                wake.acquire()  # released by ``_run_locked`` with the next job in ``slot``
                following, slot[0] = slot[0], None
                assert following is not None
            job = following

    def _let_in_locked(self, now: float) -> tuple[threading.Thread | None, Job | None]:
        """One more thread for the oldest waiting call, when calls have waited ``patience``
        with none finished. Returns a thread to start (outside the lock) and its call, or
        ``(None, call)`` when an idle worker took it. Holds ``_lock``."""
        if (not self._backlog or self._allowed >= self.max_workers
                or now - self._progress_at < self.patience):
            return None, None
        self._allowed += 1
        self._progress_at = now  # the next one waits another ``patience``
        job = self._backlog.popleft()
        if not self._backlog:
            self._waiting.clear()
        return self._run_locked(job), job

    def _watch(self) -> None:
        while True:
            self._waiting.wait()
            time.sleep(self.sweep)
            with self._lock:
                thread, job = self._let_in_locked(time.monotonic())
            if thread is not None and job is not None:
                self._start(thread, job)


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

    def call() -> _Outcome[T]:
        try:
            return context.run(func, *args, **kwargs), None
        except BaseException as exc:  # handed to the awaiting caller, as run_in_executor does
            return None, exc

    def done(outcome: _Outcome[T]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(_settle, future, outcome)

    job = _pool.submit(call, done)
    try:
        return await future
    except asyncio.CancelledError:
        _pool.cancel(job)  # not taken yet: it never will be
        raise


def _settle(future: asyncio.Future[T], outcome: _Outcome[T]) -> None:
    if future.cancelled():
        return
    if outcome[1] is None:
        future.set_result(outcome[0])
    else:
        future.set_exception(outcome[1])
