"""The app factory: builds one broker from its settings, parsing everything once.

Keys, policies, mappings, client registrations and provider configs are loaded and
validated here at start; a broken file stops the start with every problem listed.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from broker.admin.audit import audit_router
from broker.clock import Clock, SystemClock
from broker.config import Settings
from broker.context import BrokerContext
from broker.errors import BadRequest, BrokerError, ConfigError, NotFound, ServiceUnavailable
from broker.http.fastlane import ErrorHandler, FastLane
from broker.http.forms import MAX_BODY_BYTES
from broker.http.pages import Renderer
from broker.login import roles
from broker.login.hub import LoginHub
from broker.login.session import SessionManager
from broker.mapping import MappingSet
from broker.ops import service as ops
from broker.ops.service import MeteredAuditLog
from broker.policy import PolicyHolder
from broker.store.factory import build_stores
from providers.base import HasHotRoutes, Provider, ProviderServices, provider_types

log = logging.getLogger("varco.app")
API_PREFIXES = ("/admin/", "/api/")  # machine clients: errors as JSON, not pages
PROVIDERS_DIR = Path(__file__).resolve().parent.parent / "providers"


def create_app(settings: Settings, *, clock: Clock | None = None,
               issuer: str | None = None) -> FastAPI:
    """Build the broker. ``issuer`` is used when the settings do not fix one (demo)."""
    clock = clock or SystemClock()
    issuer = (settings.issuer or issuer or "http://127.0.0.1:8000").rstrip("/")
    settings = settings.with_issuer(issuer)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    secure = _secure_cookies(settings, issuer)

    stores = build_stores(settings, clock)  # sqlite, or redis for the ephemeral part
    db, ephemeral = stores.db, stores.ephemeral
    secret_key = settings.secret_key
    template_dirs = sorted(p for p in PROVIDERS_DIR.glob("*/templates") if p.is_dir())
    ctx = BrokerContext(
        settings=settings, issuer=issuer, clock=clock, db=db, ephemeral=ephemeral,
        sessions=SessionManager(ephemeral, clock, settings, secure=secure),
        audit=MeteredAuditLog(db, clock),  # the audit trail, also counted in /metrics
        templates=Renderer(secret_key, secure_cookies=secure, extra_dirs=template_dirs),
        secret_key=secret_key,
        policy=PolicyHolder(settings.policies_dir),
        mappings=MappingSet.load(settings.mappings_dir),
    )
    # FastAPI's OpenTelemetry bridge looks up the global providers on every request even
    # when none is configured; Varco exports Prometheus metrics and JSON logs instead.
    app = FastAPI(title="Varco", docs_url=None, redoc_url=None, openapi_url=None,
                  max_body_size=MAX_BODY_BYTES,  # 413 past it (a route may allow more)
                  telemetry={"tracing": False, "metrics": False, "logs": False,
                             "operation_spans": False})
    app.state.ctx = ctx
    app.state.stores = stores
    services = ProviderServices(
        clock=clock, db=db, ephemeral=ephemeral, hub=lambda: ctx.login,  # type: ignore[arg-type]
        base_url=lambda: issuer, data_dir=settings.data_dir,
        config_dir=settings.source.parent if settings.source else Path.cwd(),
        audit=ctx.audit)
    ctx.providers = _build_providers(settings, services)
    hub = LoginHub(ctx)
    ctx.login = hub

    from broker.oidc import OidcFront  # the OIDC front imports the context it serves

    front = OidcFront(ctx)
    ctx.front = front
    # Routes are matched one by one in this order, each request twice (FastAPI's
    # included routers do not skip on a prefix): the citizen's login path first, the
    # back office after.
    lane = FastLane()  # the login path's endpoints: one dict lookup, ahead of the rest
    for hot in front.hot_routes():
        lane.add(hot)
    for name, provider in ctx.providers.items():
        if isinstance(provider, HasHotRoutes):
            for hot in provider.hot_routes():
                lane.add(hot, prefix=f"/{name}")
    app.router.routes.append(lane)
    app.include_router(front.router)
    app.include_router(hub.router)
    for name, provider in ctx.providers.items():
        app.include_router(provider.router, prefix=f"/{name}")
    app.include_router(roles.install(app, ctx))  # directory, role pages, admin, policy watcher
    app.include_router(audit_router())
    for provider in ctx.providers.values():
        admin = getattr(provider, "admin_router", None)  # back office (e.g. /admin/pin)
        if admin is not None:
            app.include_router(admin)
    _mount_test_idp(app, ctx)
    if settings.demo_rp:
        from broker.demo.rp import demo_rp_router

        app.include_router(demo_rp_router(ctx), prefix="/demo-rp")
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    on_error = _install_error_pages(app, hub)
    stack = app.build_middleware_stack
    app.build_middleware_stack = (  # type: ignore[method-assign]
        lambda: lane.dispatcher(app, stack(), app.router, on_error))
    app.include_router(ops.install(app, ctx))  # after the access log: request id outermost
    ctx.audit.record("broker.start", issuer=issuer, providers=sorted(ctx.providers))
    return app


def _mount_test_idp(app: FastAPI, ctx: BrokerContext) -> None:
    """Demo only: the pysaml2 test IdP at /test-idp (SPID) and /test-idp-cie (CIE ID)."""
    from providers.saml.testidp.mount import PREFIX, PREFIX_CIE, demo_test_idp

    for name, prefix in (("spid", PREFIX), ("cie", PREFIX_CIE)):
        provider = ctx.providers.get(name)
        if provider is None or not getattr(getattr(provider, "cfg", None), "test_idp", False):
            continue
        router, _ = demo_test_idp(ctx.issuer, ctx.settings.data_dir, provider.metadata_xml,
                                  profile=name)
        app.include_router(router, prefix=prefix)
        log.warning("test IdP enabled at %s%s: demo only, never in production", ctx.issuer,
                    prefix)


def _secure_cookies(settings: Settings, issuer: str) -> bool:
    mode = settings.session.cookie_secure
    if mode == "always":
        return True
    if mode == "never":
        return False
    return issuer.startswith("https://")


def _build_providers(settings: Settings, services: ProviderServices) -> dict[str, Provider]:
    """Validate every provider section (all problems at once), then build the enabled ones."""
    types = provider_types()
    problems: list[str] = []
    configs = {}
    for name, raw in settings.providers.items():
        kind = types.get(name)
        if kind is None:
            problems.append(f"providers.{name}: unknown provider (known: {', '.join(types)})")
            continue
        try:
            configs[name] = kind.config.model_validate(raw or {})
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"])
                problems.append(f"providers.{name}.{loc}: {err['msg']}")
    if problems:
        raise ConfigError([f"{settings.source}: {p}" for p in problems])
    return {name: types[name].factory(cfg, services)
            for name, cfg in configs.items() if cfg.enabled}


def _install_error_pages(app: FastAPI, hub: LoginHub) -> ErrorHandler:
    """One place where every error becomes a readable page with an error id; returns the
    same choice as one function, for the fast lane (which runs outside the handlers)."""

    @app.exception_handler(BrokerError)
    async def broker_error(request: Request, exc: BrokerError):
        if request.url.path.startswith(API_PREFIXES):
            log.warning("error_id=%s code=%s status=%s detail=%s", exc.error_id, exc.code,
                        exc.status, exc.detail)
            return JSONResponse({"error": exc.code, "error_description": exc.message.en,
                                 "error_id": exc.error_id}, status_code=exc.status,
                                headers={"Cache-Control": "no-store"})
        return hub.fail(request, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        fields = ",".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        return hub.fail(request, BadRequest(f"invalid request fields: {fields}"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            return hub.fail(request, NotFound(f"no route {request.url.path}"))
        return hub.fail(request, BadRequest(f"http {exc.status_code}", status=exc.status_code))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        error = ServiceUnavailable("unexpected error", status=500)
        log.exception("error_id=%s unexpected error on %s", error.error_id, request.url.path)
        return hub.fail(request, error)

    async def any_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, BrokerError):
            return await broker_error(request, exc)
        if isinstance(exc, RequestValidationError):
            return await validation_error(request, exc)
        if isinstance(exc, StarletteHTTPException):
            return await http_error(request, exc)
        return await unexpected(request, exc)

    return any_error
