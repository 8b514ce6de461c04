"""Request ids, the latency histogram and the access log: one ASGI wrapper.

Each request gets an id (``X-Request-Id``: taken from the proxy when well-formed, else
generated), returned in the response and put on every log record written while the
request is served (``record.request_id``), so the ``error_id`` a citizen reads and the
proxy's access log meet in one line.
"""

from __future__ import annotations

import contextvars
import logging
import random
import re
import secrets
import time
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI

from broker.ops.metrics import METRICS

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id",
                                                                        default=None)
_GOOD_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_base_factory = logging.getLogRecordFactory()


def _record_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    record.request_id = REQUEST_ID.get()
    return record


logging.setLogRecordFactory(_record_factory)


def request_id_of(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The proxy's ``X-Request-Id`` if it is a plain token, else a fresh random one.

    A malformed id (too long, spaces, newlines) is replaced, never echoed: it would end
    up in log lines and response headers.
    """
    for name, value in headers:
        if name.lower() == b"x-request-id":
            try:
                text = value.decode("ascii")
            except UnicodeDecodeError:
                break
            if _GOOD_ID.match(text):
                return text
            break
    return f"{_ID_RANDOM.getrandbits(64):016x}"


# Our own request ids are printed in logs and headers, not secrets: 64 bits from a
# generator seeded once from the OS, without a getrandom system call per request (and
# not a counter, which would tell any client how busy the broker is).
_ID_RANDOM = random.Random(secrets.randbits(128))  # noqa: S311 - ids, not secrets



def route_template(scope: dict[str, Any]) -> str:
    """The route's path template (``/pin/login``, ``/static``), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else "unmatched"


def install_request_middleware(app: FastAPI) -> None:
    """Request id in and out, the latency histogram and the access log: one ASGI wrapper.

    The access log has the path only, never the query string: codes, tokens and hints
    never reach the log. (Starlette's BaseHTTPMiddleware would cost a task per request.)
    """
    inner = app.build_middleware_stack
    histogram = METRICS.request_seconds
    access = logging.getLogger("varco.access")

    def build():  # type: ignore[no-untyped-def]
        stack = inner()

        async def observed(scope, receive, send):  # type: ignore[no-untyped-def]
            if scope["type"] != "http":
                return await stack(scope, receive, send)
            rid = request_id_of(scope.get("headers") or ())
            token = REQUEST_ID.set(rid)
            started = time.perf_counter()
            status = 500

            async def send_with_id(message):  # type: ignore[no-untyped-def]
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    message["headers"] = [*message.get("headers", ()),
                                          (b"x-request-id", rid.encode("ascii"))]
                await send(message)

            try:
                await stack(scope, receive, send_with_id)
            finally:
                elapsed = time.perf_counter() - started
                histogram.labels(scope["method"], route_template(scope),
                                 str(status)).observe(elapsed)
                if access.isEnabledFor(logging.INFO):
                    access.info("%s %s %s %.1fms", scope["method"], scope["path"], status,
                                elapsed * 1000)
                REQUEST_ID.reset(token)

        return observed

    app.build_middleware_stack = build  # type: ignore[method-assign]

