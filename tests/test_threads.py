"""``in_thread``: blocking work off the event loop, with the request's context."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from broker.threads import in_thread

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
