"""Health and readiness probes, the metrics endpoint, and the background jobs' lifecycle.

- ``GET /healthz``: the process is alive (no I/O; a load balancer's liveness probe).
- ``GET /readyz``: this process can serve logins: the stores answer, the signing keys
  and the policy are loaded, and it is not shutting down. 503 with the list of what
  is wrong otherwise, so a load balancer takes it out of rotation.
- ``GET /metrics``: Prometheus text format (``broker.ops.metrics``). Counts and timings
  only, never an identifier; still, expose it only on the internal network.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from broker.http.threads import in_thread
from broker.oidc.keys import KeyStore
from broker.ops.jobs import BackgroundJob
from broker.ops.metrics import REGISTRY
from broker.policy import PolicyHolder
from broker.store.factory import Stores


class Ops:
    """The probes and the lifecycle of one app's background jobs."""

    def __init__(self, stores: Stores, keys: KeyStore, policy: PolicyHolder,
                 jobs: Sequence[BackgroundJob], checks: Sequence[Callable[[], list[str]]] = ()):
        self.stores = stores
        self.keys = keys
        self.policy = policy
        self.jobs = list(jobs)
        self.checks = list(checks)  # more readiness checks (a provider's trust, later)
        self.draining = False

    def readiness(self) -> list[str]:
        """What keeps this process from serving; empty when ready."""
        problems: list[str] = []
        if self.draining:
            problems.append("shutting down")
        problems += self.stores.check()
        for alg in ("ES256", "RS256"):
            try:
                self.keys.signing_key(alg)
            except KeyError:
                problems.append(f"signing keys: none usable for {alg}")
        try:
            if not self.policy.engine.rules:
                problems.append("policy: no rules loaded")
        except Exception as exc:
            problems.append(f"policy: {type(exc).__name__}")
        for check in self.checks:
            problems += check()
        return problems

    async def healthz(self) -> JSONResponse:
        return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})

    async def readyz(self) -> JSONResponse:
        problems = await in_thread(self.readiness)
        body: dict[str, Any] = {"status": "ready" if not problems else "not ready",
                                "problems": problems}
        policy_problems = self.policy.problems
        if policy_problems:  # the last good policy serves; say why the new one did not
            body["policy_reload_refused"] = policy_problems[:20]
        return JSONResponse(body, status_code=503 if problems else 200,
                            headers={"Cache-Control": "no-store"})

    async def metrics(self) -> Response:
        data = await in_thread(generate_latest, REGISTRY)
        return Response(data, media_type=CONTENT_TYPE_LATEST,
                        headers={"Cache-Control": "no-store"})

    def router(self) -> APIRouter:
        """The probe routes; the router's lifespan starts the jobs and, at shutdown (uvicorn
        has stopped accepting and let in-flight requests finish), stops them and closes
        the stores."""

        @asynccontextmanager
        async def lifespan(_app: Any) -> AsyncIterator[None]:
            for job in self.jobs:
                job.start()
            try:
                yield
            finally:
                self.draining = True
                for job in reversed(self.jobs):
                    job.stop()
                self.stores.close()

        r = APIRouter(lifespan=lifespan)
        r.add_api_route("/healthz", self.healthz, methods=["GET"])
        r.add_api_route("/readyz", self.readyz, methods=["GET"])
        r.add_api_route("/metrics", self.metrics, methods=["GET"])
        return r
