"""Prometheus metrics: counts and timings only, never an identifier.

Metrics are module-level so any part of the broker can count without being handed
anything: ``from broker.ops.metrics import METRICS``. Most business counters are derived
from the audit trail (``MeteredAuditLog``): every event the broker records for the
auditors is also counted, with no second call site.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from broker.audit import AuditLog

log = logging.getLogger("varco.ops")
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

    def collect(self) -> Iterator[GaugeMetricFamily]:
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
        elif kind.endswith(".locked"):  # a provider locked a credential: "<provider>.locked"
            self.lockouts.labels(kind.partition(".")[0]).inc()
        elif kind == "login.step_up":
            self.step_ups.labels(str(fields.get("provider"))).inc()


METRICS = Metrics(REGISTRY)


class MeteredAuditLog(AuditLog):
    """The audit trail, counting each event into ``METRICS`` once it is written."""

    def record(self, kind: str, **fields: Any) -> None:
        super().record(kind, **fields)
        METRICS.observe_audit(kind, fields)


