"""Running blocking work (SQLite, signatures, argon2) off the event loop.

Starlette's ``run_in_threadpool`` goes through anyio: a capacity limiter, a cancel scope
and two checkpoints around each call, ~50 us of event-loop CPU per hop, about twice
what the call itself needs. A login makes one hop per request, so Varco's endpoints use
``in_thread``: one bounded pool whose worker settles the caller's asyncio future, with
the caller's context variables (the request id the log lines carry) copied into the
worker as anyio does. The pool has anyio's default size (40); FastAPI's own sync
dependencies, if any, still use anyio's pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

WORKERS = 40
_pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="varco-worker")


async def in_thread(func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """``func(*args, **kwargs)`` in a worker thread, awaited; its exception is raised here.

    The worker settles an asyncio future itself (one ``call_soon_threadsafe``) instead of
    ``run_in_executor``'s chain of a concurrent future copied into an asyncio one, ~15%
    less event-loop work per hop. Cancelling the caller before the worker starts still
    drops the call.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()

    def work() -> None:
        try:
            outcome = (context.run(func, *args, **kwargs), None)
        except BaseException as exc:  # handed to the awaiting caller, as run_in_executor does
            outcome = (None, exc)
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(_settle, future, *outcome)

    submitted = _pool.submit(work)
    try:
        return await future
    except asyncio.CancelledError:
        submitted.cancel()  # not started yet: it never will
        raise


def _settle(future: asyncio.Future[T], result: T | None, exc: BaseException | None) -> None:
    if future.cancelled():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)  # type: ignore[arg-type]
