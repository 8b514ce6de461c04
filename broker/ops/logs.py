"""Structured JSON logs, one object per line, for ``varco serve``.

Messages already carry masked identifiers (``broker.fiscal_code.mask``); this module only
shapes and writes them. Secrets are never passed to the logger in the first place.

Writing is batched: request threads format their line and queue it; one writer thread
writes what is queued, at most ``FLUSH_SECONDS`` later (at once for a warning or an
error, and at exit). A ``StreamHandler`` shared by 40 worker threads and the event loop
wrote under a lock, one system call per line, and a thread that wanted the lock while
another was in ``write`` slept and woke: a log line cost ~22 us of CPU with eight busy
threads against ~8 alone, about 0.3 ms per SPID login (five lines).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from json.encoder import encode_basestring  # the C encoder json.dumps uses
from typing import TextIO

FLUSH_SECONDS = 0.1
MAX_QUEUED = 50_000  # lines; past it (a stalled stderr) new lines are counted and dropped


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg"[, "request_id"][, "exc"]}`` on one line."""

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._prefix = ""

    def _timestamp(self, created: float) -> str:
        """ISO 8601 UTC with milliseconds; the part up to the second is made once a second."""
        second = int(created)
        if second != self._second:
            # Two threads may both rebuild it at a second's turn: same value, no harm.
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._prefix}.{int((created - second) * 1000):03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        parts = ['{"ts": "', self._timestamp(record.created),
                 '", "level": ', encode_basestring(record.levelname.lower()),
                 ', "logger": ', encode_basestring(record.name),
                 ', "msg": ', encode_basestring(record.getMessage())]
        request_id = getattr(record, "request_id", None)  # bound per request (broker.ops.requests)
        if request_id:
            parts += [', "request_id": ', encode_basestring(request_id)]
        if record.exc_info:
            parts += [', "exc": ', encode_basestring(self.formatException(record.exc_info))]
        parts.append("}")
        return "".join(parts)


class BatchedLineHandler(logging.Handler):
    """Formats in the caller's thread, writes from one writer thread in batches.

    ``handle`` takes no lock: formatting is thread-safe and a deque append is atomic.
    ``flush`` (called by ``logging.shutdown`` at exit, and by ``close``) writes whatever
    is queued before returning.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self.stream = stream if stream is not None else sys.stderr
        self._lines: deque[str] = deque()
        self._dropped = 0
        self._wake = threading.Event()
        self._write_lock = threading.Lock()
        self._closed = False
        self._writer = threading.Thread(target=self._run, name="varco-log-writer",
                                        daemon=True)
        self._writer.start()

    def handle(self, record: logging.LogRecord) -> bool:
        if not self.filter(record):
            return False
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return False
        if len(self._lines) >= MAX_QUEUED:
            self._dropped += 1  # a lost increment under a race only undercounts
            return True
        self._lines.append(line)
        if record.levelno >= logging.WARNING:
            self._wake.set()
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(FLUSH_SECONDS)
            self._wake.clear()
            self.flush()

    def flush(self) -> None:
        with self._write_lock:
            lines = []
            while self._lines:
                lines.append(self._lines.popleft())
            if self._dropped:
                dropped, self._dropped = self._dropped, 0
                lines.append(self.format(logging.LogRecord(
                    "varco.logs", logging.WARNING, "", 0,
                    "%d log lines dropped: the log stream did not keep up", (dropped,),
                    None)))
            if not lines:
                return
            try:
                self.stream.write("\n".join(lines) + "\n")
                self.stream.flush()
            except (OSError, ValueError):  # stderr closed or gone: nothing left to tell
                pass

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self.flush()
        super().close()


def setup_logging(level: int = logging.INFO) -> None:
    """JSON lines on stderr, written in batches. The record fields this format never
    prints are not gathered: the caller's file and line (a stack walk), the thread, and
    the process id (a ``getpid`` system call per record)."""
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None  # documented switch: no findCaller()
    handler = BatchedLineHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
