"""Operations: health and readiness probes, Prometheus metrics, request ids, background jobs.

- ``GET /healthz``: the process is alive (no I/O; a load balancer's liveness probe).
- ``GET /readyz``: this process can serve logins: the stores answer, the signing keys
  and the policy are loaded, and it is not shutting down. 503 with the list of what
  is wrong otherwise, so a load balancer takes it out of rotation.
- ``GET /metrics``: Prometheus text format from this module's ``REGISTRY``. Counts and
  timings only, never an identifier; still, expose it only on the internal network.

Metrics are module-level so any part of the broker can count without being handed
anything: ``from broker.ops.service import METRICS; METRICS.lockouts.labels(provider="pin").inc()``.
Most business counters are derived from the audit trail (``MeteredAuditLog``): every
event the broker records for the auditors is also counted, with no second call site.

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
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any, Protocol

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from broker.audit import AuditLog
from broker.context import BrokerContext
from broker.http.threads import in_thread

log = logging.getLogger("varco.ops")

# --- request ids -------------------------------------------------------------------------
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


# --- metrics -----------------------------------------------------------------------------
REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
LATENCY_BUCKETS = (.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10)


class _CallbackGauges(Collector):
    """Gauges read at scrape time from callbacks other modules register (outbox backlog)."""

    def __init__(self) -> None:
        self._callbacks: dict[str, tuple[str, Callable[[], float]]] = {}
        self._lock = threading.Lock()

    def add(self, name: str, documentation: str, fn: Callable[[], float]) -> None:
        with self._lock:
            self._callbacks[name] = (documentation, fn)

    def collect(self):  # type: ignore[no-untyped-def]
        with self._lock:
            items = list(self._callbacks.items())
        for name, (doc, fn) in items:
            try:
                value = float(fn())
            except Exception:  # a broken hook must not break the scrape
                log.exception("metrics: gauge %s failed", name)
                continue
            yield GaugeMetricFamily(name, doc, value=value)


class Metrics:
    """Every metric the broker exposes. One instance: ``METRICS``."""

    def __init__(self, registry: CollectorRegistry):
        self.logins = Counter("varco_logins_total", "Logins by provider and outcome "
                              "(allowed, denied, error).", ["provider", "outcome"],
                              registry=registry)
        self.step_ups = Counter("varco_step_ups_total", "Step-ups asked after a login that "
                                "was not strong enough.", ["provider"], registry=registry)
        self.token_grants = Counter("varco_token_grants_total", "Token endpoint grants by "
                                    "type and outcome.", ["grant_type", "outcome"],
                                    registry=registry)
        self.lockouts = Counter("varco_lockouts_total", "Credentials locked after too many "
                                "failures.", ["provider"], registry=registry)
        self.policy_reloads = Counter("varco_policy_reloads_total", "Policy folder reloads "
                                      "(ok, refused).", ["outcome"], registry=registry)
        self.logouts = Counter("varco_logouts_total", "Broker sessions ended, by reason.",
                               ["reason"], registry=registry)
        self.backchannel = Counter("varco_backchannel_logout_total", "Back-channel logout "
                                   "deliveries (delivered, retried, failed).", ["outcome"],
                                   registry=registry)
        self.request_seconds = Histogram(
            "varco_http_request_duration_seconds", "Latency per route template.",
            ["method", "route", "status"], buckets=LATENCY_BUCKETS, registry=registry)
        self._gauges = _CallbackGauges()
        registry.register(self._gauges)

    def add_gauge(self, name: str, documentation: str, fn: Callable[[], float]) -> None:
        """Expose ``fn()`` as gauge ``name`` at every scrape (e.g. the outbox backlog).

        ``fn`` runs on the scrape, in the thread pool: keep it to one cheap query.
        Registering the same name again replaces the callback (a rebuilt app).
        """
        self._gauges.add(name, documentation, fn)

    def observe_audit(self, kind: str, fields: dict[str, Any]) -> None:
        """Count what an audit event says; called by ``MeteredAuditLog`` after the write."""
        if kind == "login.decision":
            outcome = "allowed" if fields.get("allow") else "denied"
            self.logins.labels(str(fields.get("provider")), outcome).inc()
        elif kind == "login.error":
            self.logins.labels(str(fields.get("provider")), "error").inc()
        elif kind == "oidc.token":
            self.token_grants.labels(str(fields.get("grant_type")), "issued").inc()
        elif kind == "oidc.code_rejected" or kind == "oidc.code_wrong_client":
            self.token_grants.labels("authorization_code", "rejected").inc()
        elif kind == "oidc.refresh_rejected":
            self.token_grants.labels("refresh_token", "rejected").inc()
        elif kind == "policy.reload":
            self.policy_reloads.labels("ok" if fields.get("ok") else "refused").inc()
        elif kind == "oidc.logout":
            self.logouts.labels(str(fields.get("reason"))).inc()
        elif kind == "pin.locked":
            self.lockouts.labels("pin").inc()
        elif kind == "login.step_up":
            self.step_ups.labels(str(fields.get("provider"))).inc()


METRICS = Metrics(REGISTRY)


class MeteredAuditLog(AuditLog):
    """The audit trail, counting each event into ``METRICS`` once it is written."""

    def record(self, kind: str, **fields: Any) -> None:
        super().record(kind, **fields)
        METRICS.observe_audit(kind, fields)


# --- background jobs ---------------------------------------------------------------------
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


# --- routes and wiring -------------------------------------------------------------------
class Ops:
    """The probes and the lifecycle of one app's background jobs."""

    def __init__(self, app: FastAPI, ctx: BrokerContext):
        self.app = app
        self.ctx = ctx
        self.draining = False
        self.jobs: list[BackgroundJob] = []

    def readiness(self) -> list[str]:
        """What keeps this process from serving; empty when ready."""
        problems: list[str] = []
        if self.draining:
            problems.append("shutting down")
        stores = getattr(self.app.state, "stores", None)
        if stores is not None:
            problems += stores.check()
        front = getattr(self.ctx, "front", None)
        keys = getattr(front, "keys", None)
        if keys is None:
            problems.append("signing keys: not loaded")
        else:
            for alg in ("ES256", "RS256"):
                try:
                    keys.signing_key(alg)
                except KeyError:
                    problems.append(f"signing keys: none usable for {alg}")
        try:
            if not self.ctx.policy.engine.rules:
                problems.append("policy: no rules loaded")
        except Exception as exc:
            problems.append(f"policy: {type(exc).__name__}")
        return problems

    async def healthz(self) -> JSONResponse:
        return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})

    async def readyz(self) -> JSONResponse:
        problems = await in_thread(self.readiness)
        body: dict[str, Any] = {"status": "ready" if not problems else "not ready",
                                "problems": problems}
        policy_problems = self.ctx.policy.problems
        if policy_problems:  # the last good policy serves; say why the new one did not
            body["policy_reload_refused"] = policy_problems[:20]
        return JSONResponse(body, status_code=503 if problems else 200,
                            headers={"Cache-Control": "no-store"})

    async def metrics(self) -> Response:
        data = await in_thread(generate_latest, REGISTRY)
        return Response(data, media_type=CONTENT_TYPE_LATEST,
                        headers={"Cache-Control": "no-store"})

    def router(self) -> APIRouter:
        @asynccontextmanager
        async def lifespan(_app: Any):  # type: ignore[no-untyped-def]
            for job in self.jobs:
                job.start()
            try:
                yield
            finally:
                # Uvicorn has stopped accepting and let in-flight requests finish by now.
                self.draining = True
                for job in reversed(self.jobs):
                    job.stop()
                stores = getattr(self.app.state, "stores", None)
                if stores is not None:
                    stores.close()

        r = APIRouter(lifespan=lifespan)
        r.add_api_route("/healthz", self.healthz, methods=["GET"])
        r.add_api_route("/readyz", self.readyz, methods=["GET"])
        r.add_api_route("/metrics", self.metrics, methods=["GET"])
        return r


def install(app: FastAPI, ctx: BrokerContext) -> APIRouter:
    """Probes, metrics, request ids and background jobs for ``app``; returns the router.

    Call after every other middleware wrapper (``broker.app``), so the request id is set
    before the access log line is written. Jobs: the periodic ``purge_expired`` sweep,
    and whatever the OIDC front declares in ``background_jobs()`` (key folder watcher,
    back-channel logout sender).
    """
    ops = Ops(app, ctx)
    app.state.ops = ops
    ops.jobs.append(Periodic("ephemeral-purge", ctx.settings.store.purge_interval,
                             ctx.ephemeral.purge_expired))
    front_jobs = getattr(getattr(ctx, "front", None), "background_jobs", None)
    if front_jobs is not None:
        ops.jobs.extend(front_jobs())
    _install_request_middleware(app)
    return ops.router()


def route_template(scope: dict[str, Any]) -> str:
    """The route's path template (``/pin/login``, ``/static``), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else "unmatched"


def _install_request_middleware(app: FastAPI) -> None:
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
