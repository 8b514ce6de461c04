"""The JSON log lines of ``varco serve``: shape, order, nothing lost at exit, bounded."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import time

import broker.ops.logs as logs
from broker.ops.logs import BatchedLineHandler, JsonFormatter

_THREADS_AND_EXIT = """
import logging, threading
from broker.ops.logs import setup_logging
setup_logging()
log = logging.getLogger("varco.test")
def worker(n):
    for i in range(250):
        log.info("thread %d line %d", n, i)
threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
for t in threads: t.start()
for t in threads: t.join()
log.warning("last, then exit at once")
"""


def test_every_line_from_eight_threads_is_written_in_order_before_the_process_exits():
    proc = subprocess.run([sys.executable, "-c", _THREADS_AND_EXIT], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    entries = [json.loads(line) for line in proc.stderr.splitlines()]
    assert len(entries) == 8 * 250 + 1
    assert entries[-1]["level"] == "warning"
    for n in range(8):
        mine = [e["msg"] for e in entries if e["msg"].startswith(f"thread {n} ")]
        assert mine == [f"thread {n} line {i}" for i in range(250)]


def test_a_line_is_json_with_its_request_id_and_exception_and_survives_quotes_and_newlines():
    record = logging.LogRecord("varco.login", logging.ERROR, "", 0, 'said "%s"', ("a\nb",),
                               None)
    record.request_id = "7ce55a582e64b2a8"
    try:
        raise ValueError("bad")
    except ValueError:
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["msg"] == 'said "a\nb"' and entry["level"] == "error"
    assert entry["request_id"] == "7ce55a582e64b2a8" and "ValueError: bad" in entry["exc"]
    assert entry["ts"].endswith("+00:00")
    assert len(entry["ts"]) == len("2026-11-24T01:00:00.000+00:00")


def test_lines_reach_the_stream_without_an_explicit_flush():
    stream = io.StringIO()
    handler = BatchedLineHandler(stream)
    handler.setFormatter(JsonFormatter())
    try:
        handler.handle(logging.LogRecord("x", logging.INFO, "", 0, "queued", (), None))
        deadline = time.monotonic() + 5
        while "queued" not in stream.getvalue() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert json.loads(stream.getvalue())["msg"] == "queued"
    finally:
        handler.close()


def test_a_stalled_stream_drops_lines_past_the_bound_and_says_how_many(monkeypatch):
    monkeypatch.setattr(logs, "MAX_QUEUED", 3)
    stream = io.StringIO()
    handler = BatchedLineHandler(stream)
    handler.setFormatter(JsonFormatter())
    try:
        with handler._write_lock:  # the writer is stuck in a write
            for i in range(5):
                handler.handle(logging.LogRecord("x", logging.INFO, "", 0, f"line {i}", (),
                                                 None))
        handler.flush()
        entries = [json.loads(line) for line in stream.getvalue().splitlines()]
        assert [e["msg"] for e in entries] == [
            "line 0", "line 1", "line 2",
            "2 log lines dropped: the log stream did not keep up"]
        assert entries[-1]["level"] == "warning"
    finally:
        handler.close()
