"""Running blocking work (SQLite, signatures, argon2) off the event loop.

Starlette's ``run_in_threadpool`` goes through anyio: a capacity limiter, a cancel scope
and two checkpoints around each call, ~50 us of event-loop CPU per hop, about twice
what the call itself needs. A login makes one hop per request, so Varco's endpoints use
``in_thread``: the loop's ``run_in_executor`` on one bounded pool, with the caller's
context variables (the request id the log lines carry) copied into the worker as anyio
does. The pool has anyio's default size (40); FastAPI's own sync dependencies, if any,
still use anyio's pool.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

WORKERS = 40
_pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="varco-worker")


async def in_thread(func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """``func(*args, **kwargs)`` in a worker thread, awaited; its exception is raised here."""
    context = contextvars.copy_context()
    if kwargs:
        return await asyncio.get_running_loop().run_in_executor(
            _pool, lambda: context.run(func, *args, **kwargs))
    return await asyncio.get_running_loop().run_in_executor(_pool, context.run, func, *args)
