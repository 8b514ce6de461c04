"""``OidcFront``: the OpenID Connect endpoints relying parties call.

``/authorize`` validates the request into an ``AuthRequest`` and hands it to the login
hub, whose interaction policy answers (single sign-on, a login, ``login_required``).
The token-side endpoints (token, introspection, revocation) are Authlib's, through
``broker.oidc.server``; codes, consent and session ends are ``broker.oidc.core``'s.
Every route that does I/O runs in the thread pool.
"""

from __future__ import annotations

from typing import Any, cast

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import QueryParams

from broker.admin.auth import AdminAuth
from broker.context import BrokerContext
from broker.errors import LoginExpired
from broker.http.fastlane import HotRoute
from broker.http.forms import BadForm, form_pairs, parse_urlencoded
from broker.http.threads import in_thread
from broker.login.hub import LoginHub
from broker.model import known_acrs
from broker.oidc import authorize as authz
from broker.oidc.claims import SUPPORTED_CLAIMS, released_claims
from broker.oidc.clients import KNOWN_SCOPES
from broker.oidc.core import NO_STORE, NS_CONSENT, OidcCore, PendingConsent
from broker.oidc.keys import JWKS_MAX_AGE
from broker.oidc.logout import LogoutRoutes
from broker.oidc.server import HttpInput
from providers.types import provider_types


class OidcFront:
    """The endpoints RPs call; ``router`` holds all but the fast lane's (``hot_routes``)."""

    def __init__(self, ctx: BrokerContext, core: OidcCore, hub: LoginHub, admin: AdminAuth):
        self.ctx = ctx
        self.core = core
        self.hub = hub
        self.issuer = ctx.issuer
        self.registry = core.registry
        self.keys = core.keys
        self.tokens = core.tokens
        self.server = core.server
        self.discovery_document = self._discovery()
        r = self.router = APIRouter()
        r.add_api_route("/.well-known/openid-configuration", self.discovery, methods=["GET"])
        r.add_api_route("/jwks", self.jwks, methods=["GET"])
        r.add_api_route("/.well-known/jwks.json", self.jwks, methods=["GET"])
        r.add_api_route("/authorize/consent", self.consent, methods=["POST"])
        r.add_api_route("/userinfo", self.userinfo, methods=["GET", "POST"])
        r.add_api_route("/introspect", self.introspect, methods=["POST"])
        r.add_api_route("/revoke", self.revoke, methods=["POST"])
        LogoutRoutes(ctx, core, hub).mount(r)
        core.backchannel.mount(r, admin)  # admin revocation of a session

    def hot_routes(self) -> list[HotRoute]:
        """``/authorize`` and ``/token``: on every login, so on the app's fast lane."""
        return [HotRoute("/authorize", self.authorize, ("GET", "POST")),
                HotRoute("/token", self.token, ("POST",))]

    # --- discovery and keys ---------------------------------------------------------
    def _discovery(self) -> dict[str, Any]:
        i = self.issuer
        return {
            "issuer": i,
            "authorization_endpoint": f"{i}/authorize",
            "token_endpoint": f"{i}/token",
            "userinfo_endpoint": f"{i}/userinfo",
            "jwks_uri": f"{i}/jwks",
            "end_session_endpoint": f"{i}/logout",
            "introspection_endpoint": f"{i}/introspect",
            "revocation_endpoint": f"{i}/revoke",
            "scopes_supported": sorted(KNOWN_SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic", "client_secret_post", "private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256", "PS256"],
            "introspection_endpoint_auth_methods_supported": [
                "client_secret_basic", "client_secret_post", "private_key_jwt"],
            "revocation_endpoint_auth_methods_supported": [
                "client_secret_basic", "client_secret_post", "private_key_jwt"],
            "id_token_signing_alg_values_supported": ["ES256", "RS256"],
            "subject_types_supported": ["pairwise", "public"],
            "claims_supported": [*SUPPORTED_CLAIMS, *self._identifier_claims()],
            "claims_parameter_supported": True,
            "acr_values_supported": known_acrs(),
            "prompt_values_supported": ["none", "login", "consent", "select_account"],
            "ui_locales_supported": ["it", "en"],
            "claim_types_supported": ["normal"],
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "authorization_response_iss_parameter_supported": True,
            "frontchannel_logout_supported": True,
            "frontchannel_logout_session_supported": True,
            "backchannel_logout_supported": True,
            "backchannel_logout_session_supported": True,
        }

    def _identifier_claims(self) -> list[str]:
        """``<scheme>_person_identifier`` for the schemes the enabled providers carry."""
        types = provider_types()
        return sorted({f"{scheme}_person_identifier" for name in self.hub.providers
                       for scheme in types[name].identifier_schemes})

    def discovery(self) -> JSONResponse:
        return JSONResponse(self.discovery_document,
                            headers={"Cache-Control": "public, max-age=300"})

    def jwks(self) -> JSONResponse:
        return JSONResponse(self.keys.jwks(),
                            headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE}"})

    # --- authorization endpoint -----------------------------------------------------
    async def authorize(self, request: Request) -> Response:
        if request.method == "POST":
            items: list[tuple[str, Any]] = list(await form_pairs(request))
        else:  # the form parser is ~3x quicker than Starlette's QueryParams here
            items = list(parse_urlencoded(request.scope["query_string"]))
            # Later readers of ``request.query_params`` (the language of the pages and
            # cookies) get these pairs instead of a second parse; Starlette keeps the
            # parsed query under this name (if that changes, they just parse again).
            request._query_params = QueryParams(items)
        return await in_thread(self._authorize, request, items)

    def _authorize(self, request: Request, items: list[tuple[str, Any]]
                   ) -> Response:
        pairs = [(k, v) for k, v in items if isinstance(v, str)]
        try:
            _client, auth = authz.parse(pairs, self.registry, self.ctx.clock.now())
        except authz.RedirectableError as err:
            self.ctx.audit.record("oidc.authorize_rejected", client_id=err.client.client_id,
                                  error=err.error)
            return self.core._to_client(err.redirect_uri, {
                "error": err.error, "error_description": err.description}, err.state)
        # Single sign-on, a login, or login_required: the hub's interaction policy says.
        return self.hub.authorize(request, auth)

    # --- consent (prompt=consent) ---------------------------------------------------
    async def consent(self, request: Request) -> Response:
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        return await in_thread(self._consent, request, fields)

    def _consent(self, request: Request, form: dict[str, str]) -> Response:
        self.ctx.templates.verify_csrf(request, form.get("csrf_token"))
        consent_id = form.get("consent_id", "")
        raw = self.ctx.ephemeral.take(NS_CONSENT, consent_id) if consent_id else None
        if raw is None:
            raise LoginExpired("unknown or expired consent")
        pending = PendingConsent.model_validate_json(raw)
        session = self.ctx.sessions.current(request)
        if session is None or self.core.public_sid(session.sid) != pending.sid:
            raise LoginExpired("consent posted from another session")
        if form.get("decision") != "allow":
            return self.core.deny(request, pending.auth, "access_denied",
                                  "the user did not consent")
        return self.core.issue(request, pending.auth, session)

    # --- token-side endpoints (Authlib) ---------------------------------------------
    async def _input(self, request: Request) -> HttpInput | JSONResponse:
        """The form as Authlib reads it, or the OAuth error for an unreadable one."""
        try:
            return await self.core.http_input(request)
        except BadForm as exc:
            return _invalid_request(exc.detail)

    async def token(self, request: Request) -> Response:
        src = await self._input(request)
        if isinstance(src, Response):
            return src
        if any(len(v) > 1 for v in src.datalist.values()):
            return _invalid_request("repeated parameters")
        return await in_thread(self._token, src)

    def _token(self, src: HttpInput) -> Response:
        """The grant in one batch: the code (or refresh token) taken, the new tokens and
        the audit entry commit together, once (SQLite; the batch opens at the take, after
        client authentication)."""
        with self.ctx.db.batch():
            # Authlib's stubs say a (status, body, headers) tuple; our server's
            # ``handle_response`` makes it a Response.
            return cast(Response, self.server.create_token_response(src))

    async def introspect(self, request: Request) -> Response:
        src = await self._input(request)
        if isinstance(src, Response):
            return src
        return await in_thread(self.server.create_endpoint_response,
                               "introspection", src)

    async def revoke(self, request: Request) -> Response:
        src = await self._input(request)
        if isinstance(src, Response):
            return src
        return await in_thread(self.server.create_endpoint_response, "revocation", src)

    # --- userinfo -------------------------------------------------------------------
    async def userinfo(self, request: Request) -> Response:
        token = None
        auth = request.headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            token = value.strip()
        elif request.method == "POST":
            form = await request.form()
            candidate = form.get("access_token")
            token = candidate if isinstance(candidate, str) and candidate else None
        return await in_thread(self._userinfo, token)

    def _userinfo(self, token: str | None) -> Response:
        if not token:
            return _bearer_error(401, "invalid_request", "missing bearer token")
        record = self.tokens.access(token)
        if record is None:
            return _bearer_error(401, "invalid_token", "the access token is not active")
        if "openid" not in record.scopes:
            return _bearer_error(403, "insufficient_scope", "openid scope required")
        client = self.registry.get(record.grant.client_id)
        if client is None:
            return _bearer_error(401, "invalid_token", "client no longer registered")
        claims = released_claims(
            record.grant.user, self.server.sub_for(client, record.grant), record.scopes,
            (record.grant.claims or {}).get("userinfo"), client.config.scopes)
        return JSONResponse(claims, headers=NO_STORE)


def _bearer_error(status: int, error: str, description: str) -> Response:
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status,
        headers={**NO_STORE,
                 "WWW-Authenticate": f'Bearer error="{error}", '
                                     f'error_description="{description}"'})


def _invalid_request(description: str) -> JSONResponse:
    return JSONResponse({"error": "invalid_request", "error_description": description},
                        status_code=400, headers=NO_STORE)
