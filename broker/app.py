"""The app factory: builds one broker from its settings, each part once, in dependency order.

Keys, policies, mappings, client registrations and provider configs are loaded and
validated here at start; a broken file stops the start with every problem listed.

The parts, each handed what it needs (nothing is looked up later through the app):

1. the shared infrastructure (``BrokerContext``): stores, clock, audit trail, sessions,
   page renderer, policy, mappings;
2. the directory and its facts for the policy;
3. ``OidcCore``: keys, clients, tokens; it issues codes and ends sessions;
4. the providers, from their types (``providers.types``) and their config sections;
5. the login hub, with the providers and the core;
6. the OIDC front, with the core and the hub;
7. the routes, the one error handler (``broker.http.errorpages``), the probes and jobs.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp

from broker.admin.audit import audit_router
from broker.admin.auth import AdminAuth
from broker.admin.directory import directory_admin_router
from broker.audit import AuditLog
from broker.clock import Clock, SystemClock
from broker.config import Settings
from broker.context import BrokerContext
from broker.directory.base import Directory
from broker.directory.factory import build_directory
from broker.errors import BrokerError, ConfigError
from broker.http.errorpages import ErrorPages
from broker.http.fastlane import FastLane
from broker.http.forms import MAX_BODY_BYTES
from broker.http.pages import Renderer
from broker.login.facts import DirectoryFacts
from broker.login.hub import HubParts, LoginHub
from broker.login.session import ProviderSessions, SessionManager
from broker.mapping import MappingSet
from broker.oidc.core import OidcCore
from broker.oidc.front import OidcFront
from broker.ops.jobs import BackgroundJob, Periodic
from broker.ops.metrics import MeteredAuditLog
from broker.ops.probes import Ops
from broker.ops.requests import install_request_middleware
from broker.policy import PolicyHolder
from broker.policy.watch import PolicyWatcher
from broker.store.factory import Stores, build_stores
from providers.base import (
    HasAdminRoutes,
    HasBackgroundJobs,
    HasDemo,
    Provider,
    ProviderConfig,
    ProviderServices,
    supports,
)
from providers.types import ProviderType, provider_types

log = logging.getLogger("varco.app")


@dataclass(frozen=True)
class Broker:
    """The built parts of one broker (``app.state.broker``): for operators' tools and
    tests to look at. The parts themselves never reach each other through it."""

    ctx: BrokerContext
    stores: Stores
    directory: Directory
    core: OidcCore
    providers: dict[str, Provider]
    hub: LoginHub
    front: OidcFront
    ops: Ops

    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    @property
    def audit(self) -> AuditLog:
        return self.ctx.audit

    @property
    def sessions(self) -> SessionManager:
        return self.ctx.sessions

    @property
    def policy(self) -> PolicyHolder:
        return self.ctx.policy


def create_app(settings: Settings, *, clock: Clock | None = None,
               issuer: str | None = None) -> FastAPI:
    """Build the broker. ``issuer`` is used when the settings do not fix one (demo)."""
    clock = clock or SystemClock()
    issuer = (settings.issuer or issuer or "http://127.0.0.1:8000").rstrip("/")
    settings = settings.with_issuer(issuer)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    secure = _secure_cookies(settings, issuer)
    configs = _provider_configs(settings)

    stores = build_stores(settings, clock)  # sqlite, or redis/postgres for scale-out
    renderer = Renderer(settings.secret_key, secure_cookies=secure,
                        extra_dirs=_template_dirs(configs))
    ctx = BrokerContext(
        settings=settings, issuer=issuer, clock=clock, db=stores.db,
        ephemeral=stores.ephemeral,
        sessions=SessionManager(stores.ephemeral, clock, settings, secure=secure),
        audit=MeteredAuditLog(stores.db, clock),  # the audit trail, counted in /metrics
        templates=renderer, secret_key=settings.secret_key,
        policy=PolicyHolder(settings.policies_dir),
        mappings=MappingSet.load(settings.mappings_dir))
    directory = build_directory(settings, stores.db, clock)
    core = OidcCore(ctx)
    admin = AdminAuth(core)
    services = ProviderServices(
        clock=clock, db=stores.db, ephemeral=stores.ephemeral, audit=ctx.audit,
        pages=renderer, sessions=ProviderSessions(ctx.sessions, core.end_session),
        policy=ctx.policy, admin=admin, base_url=issuer, data_dir=settings.data_dir,
        config_dir=settings.source.parent if settings.source else Path.cwd())
    providers: dict[str, Provider] = {}
    for name in _build_order(settings, configs):  # a type's ``requires`` first
        kind, cfg = configs[name]
        providers[name] = kind.factory(cfg, replace(services,
                                                    peers=MappingProxyType(dict(providers))))
    hub = LoginHub(HubParts(
        clock=clock, db=stores.db, ephemeral=stores.ephemeral, audit=ctx.audit,
        pages=renderer, sessions=ctx.sessions, policy=ctx.policy, mappings=ctx.mappings,
        facts=DirectoryFacts(directory, ctx.policy, ctx.audit), authorizer=core,
        providers=providers, secret_key=settings.secret_key,
        login_timeout=settings.session.login_timeout))
    front = OidcFront(ctx, core, hub, admin)
    jobs: list[BackgroundJob] = [
        Periodic("ephemeral-purge", settings.store.purge_interval,
                 stores.ephemeral.purge_expired),
        *core.background_jobs(), PolicyWatcher(ctx.policy, ctx.audit.record),
        *(job for p in providers.values() if supports(p, HasBackgroundJobs)
          for job in p.background_jobs())]
    ops = Ops(stores, core.keys, ctx.policy, jobs)

    # FastAPI's OpenTelemetry bridge looks up the global providers on every request even
    # when none is configured; Varco exports Prometheus metrics and JSON logs instead.
    app = FastAPI(title="Varco", docs_url=None, redoc_url=None, openapi_url=None,
                  max_body_size=MAX_BODY_BYTES,  # 413 past it (a route may allow more)
                  telemetry={"tracing": False, "metrics": False, "logs": False,
                             "operation_spans": False})
    app.state.broker = Broker(ctx=ctx, stores=stores, directory=directory, core=core,
                              providers=providers, hub=hub, front=front, ops=ops)
    # Routes are matched one by one in this order, each request twice (FastAPI's
    # included routers do not skip on a prefix): the login path first, the back office
    # after; the login path's busiest endpoints are one dict lookup (the fast lane).
    lane = FastLane()
    for hot in (*front.hot_routes(), *hub.hot_routes()):
        lane.add(hot)
    app.router.routes.append(lane)
    app.include_router(front.router)
    app.include_router(hub.router)
    for name, provider in providers.items():
        app.include_router(provider.router, prefix=f"/{name}")
    app.include_router(audit_router(ctx.audit, admin))
    app.include_router(directory_admin_router(directory, ctx.audit, clock, admin))
    for provider in providers.values():
        if supports(provider, HasAdminRoutes):  # back office (e.g. /admin/pin)
            app.include_router(provider.admin_router())
    _mount_demo(app, ctx, providers)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"),
              name="static")
    _install_error_handler(app, lane, ErrorPages(renderer))
    app.include_router(ops.router())
    install_request_middleware(app)  # after the handlers: the request id is outermost
    ctx.audit.record("broker.start", issuer=issuer, providers=sorted(providers))
    return app


def _provider_configs(settings: Settings) -> dict[str, tuple[ProviderType, ProviderConfig]]:
    """Validate every provider section against its type (all problems at once)."""
    types = provider_types()
    problems: list[str] = []
    configs: dict[str, tuple[ProviderType, ProviderConfig]] = {}
    for name, raw in settings.providers.items():
        kind = types.get(name)
        if kind is None:
            problems.append(f"providers.{name}: unknown provider (known: {', '.join(types)})")
            continue
        try:
            configs[name] = (kind, kind.config.model_validate(raw or {}))
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"])
                problems.append(f"providers.{name}.{loc}: {err['msg']}")
    if problems:
        raise ConfigError([f"{settings.source}: {p}" for p in problems])
    return configs


def _build_order(settings: Settings,
                 configs: dict[str, tuple[ProviderType, ProviderConfig]]) -> list[str]:
    """The enabled providers, each after the types it ``requires`` (which must be enabled)."""
    enabled = {name for name, (_, cfg) in configs.items() if cfg.enabled}
    problems = [f"{settings.source}: providers.{name}: needs providers.{need} enabled"
                for name in sorted(enabled) for need in configs[name][0].requires
                if need not in enabled]
    if problems:
        raise ConfigError(problems)
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in order:
            return
        if name in path:
            raise ConfigError([f"provider types require each other: {' -> '.join(path)}"])
        for need in configs[name][0].requires:
            visit(need, (*path, name))
        order.append(name)

    for name in configs:
        if name in enabled:
            visit(name, ())
    return order


def _template_dirs(configs: dict[str, tuple[ProviderType, ProviderConfig]]) -> list[Path]:
    """Each enabled provider's ``templates`` folder, beside the module of its factory."""
    dirs = (Path(inspect.getfile(kind.factory)).parent / "templates"
            for kind, cfg in configs.values() if cfg.enabled)
    return sorted({d for d in dirs if d.is_dir()})


def _mount_demo(app: FastAPI, ctx: BrokerContext, providers: dict[str, Provider]) -> None:
    """Demo parts: the providers' own (a test IdP) and the demo relying parties."""
    for provider in providers.values():
        if supports(provider, HasDemo):
            for prefix, router in provider.demo_routes():
                app.include_router(router, prefix=prefix)
                log.warning("demo part of %s enabled at %s%s: never in production",
                            provider.name, ctx.issuer, prefix)
    if ctx.settings.demo_rp:
        from broker.demo.rp import demo_rp_router

        app.include_router(demo_rp_router(ctx), prefix="/demo-rp")


def _secure_cookies(settings: Settings, issuer: str) -> bool:
    mode = settings.session.cookie_secure
    if mode == "always":
        return True
    if mode == "never":
        return False
    return issuer.startswith("https://")


def _install_error_handler(app: FastAPI, lane: FastLane, errors: ErrorPages) -> None:
    """One handler for every error, on the app and on the fast lane (which runs outside
    the app's middleware)."""
    for kind in (BrokerError, StarletteHTTPException, RequestValidationError, Exception):
        app.add_exception_handler(kind, errors.handle)
    stack = app.build_middleware_stack

    def build() -> ASGIApp:
        return lane.dispatcher(app, stack(), app.router, errors.handle)

    app.build_middleware_stack = build  # type: ignore[method-assign]

