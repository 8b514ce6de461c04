"""Background jobs: periodic work on threads of their own, never on the event loop."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger("varco.ops")


class BackgroundJob(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


class Periodic:
    """Runs ``fn`` every ``interval`` seconds on its own thread, never on the event loop."""

    def __init__(self, name: str, interval: float, fn: Callable[[], Any]):
        self.name = name
        self.interval = interval
        self.fn = fn
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.fn()
            except Exception:  # the job must outlive any surprise
                log.exception("background job %s failed", self.name)


