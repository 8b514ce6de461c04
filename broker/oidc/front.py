"""``OidcFront``: the routes of the OpenID Connect provider and the two seam methods.

``/authorize`` validates the request, then either answers at once from the browser's
session (single sign-on), answers ``login_required`` (``prompt=none``), or hands the
``AuthRequest`` to the login hub. The hub calls ``finish`` when a login settles it.
The token-side endpoints (token, introspection, revocation) are Authlib's, through
``broker.oidc.server``. Every route that does I/O runs in the thread pool.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict
from starlette.datastructures import QueryParams

from broker.context import BrokerContext
from broker.errors import LoginExpired
from broker.http.fastlane import HotRoute
from broker.http.forms import BadForm, form_pairs, parse_urlencoded
from broker.http.threads import in_thread
from broker.login.interaction import unmet
from broker.model import ACR_RANK, AuthRequest, BrokerSession, ClientInfo
from broker.oidc import authorize as authz
from broker.oidc.backchannel import LOGOUT_TOKEN_LIFETIME, BackchannelLogout
from broker.oidc.claims import SCOPE_CLAIMS, SUPPORTED_CLAIMS, UserSnapshot, released_claims
from broker.oidc.clients import KNOWN_SCOPES, Client, load_clients
from broker.oidc.keys import JWKS_MAX_AGE, KEY_RELOAD_INTERVAL, KeyStore
from broker.oidc.logout import LogoutRoutes
from broker.oidc.server import HttpInput, VarcoAuthorizationServer
from broker.oidc.tokens import CodeRecord, Grant, TokenStore

NS_CONSENT = "oidc:consent"
NS_SID = "oidc:sid"
CONSENT_TTL = 600
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class PendingConsent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    auth: AuthRequest
    sid: str  # public sid of the session that must still be there on approval


class OidcFront:
    """Implements ``broker.login.interaction.AuthorizationFront``; ``router`` holds every
    endpoint."""

    def __init__(self, ctx: BrokerContext):
        self.ctx = ctx
        self.issuer = ctx.issuer
        tok = ctx.settings.tokens
        # A superseded key stays published until every token it signed has expired.
        self.keys = KeyStore.load_or_create(
            ctx.settings.data_dir / "keys", now=ctx.clock.now().timestamp(),
            clock=lambda: ctx.clock.now().timestamp(),
            retire_after=max(tok.id_token_lifetime, LOGOUT_TOKEN_LIFETIME) + tok.clock_skew)
        self.registry = load_clients(ctx.settings.clients, ctx.issuer)
        self.tokens = TokenStore(ctx.ephemeral, ctx.clock, tok, ctx.settings.session.lifetime)
        self.server = VarcoAuthorizationServer(
            issuer=self.issuer, registry=self.registry, tokens=self.tokens, keys=self.keys,
            secret_key=ctx.secret_key, ephemeral=ctx.ephemeral,
            id_token_lifetime=tok.id_token_lifetime, clock_skew=tok.clock_skew,
            audit=ctx.audit.record, batch=ctx.db.batch)
        self.backchannel = BackchannelLogout(self)
        self.discovery_document = self._discovery()
        self.logout = LogoutRoutes(self)
        r = self.router = APIRouter()
        r.add_api_route("/.well-known/openid-configuration", self.discovery, methods=["GET"])
        r.add_api_route("/jwks", self.jwks, methods=["GET"])
        r.add_api_route("/.well-known/jwks.json", self.jwks, methods=["GET"])
        r.add_api_route("/authorize/consent", self.consent, methods=["POST"])
        r.add_api_route("/userinfo", self.userinfo, methods=["GET", "POST"])
        r.add_api_route("/introspect", self.introspect, methods=["POST"])
        r.add_api_route("/revoke", self.revoke, methods=["POST"])
        self.logout.mount(r)
        self.backchannel.mount(r)  # admin revocation of a session

    def hot_routes(self) -> list[HotRoute]:
        """``/authorize`` and ``/token``: on every login, so on the app's fast lane."""
        return [HotRoute("/authorize", self.authorize, ("GET", "POST")),
                HotRoute("/token", self.token, ("POST",))]

    # --- the seam -------------------------------------------------------------------
    def client_info(self, client_id: str) -> ClientInfo | None:
        client = self.registry.get(client_id)
        return client.info if client else None

    def finish(self, request: Request, auth: AuthRequest, session: BrokerSession) -> Response:
        lacking = unmet(session, auth, self.ctx.clock.now(), fresh=True)
        if lacking is not None:  # never answer with less than was asked
            return self.ctx.login.start(request, auth, lacking)
        client = self._client(auth)
        if "consent" in auth.prompt:
            return self._consent_page(request, auth, session, client)
        return self._issue_code(auth, session, client)

    def deny(self, request: Request, auth: AuthRequest, error: str,
             description: str | None = None) -> Response:
        self.ctx.audit.record("oidc.denied", client_id=auth.client_id, error=error)
        params = {"error": error}
        if description:
            params["error_description"] = description
        return self._to_client(auth.redirect_uri, params, auth.state)

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
            "claims_supported": list(SUPPORTED_CLAIMS),
            "claims_parameter_supported": True,
            "acr_values_supported": sorted(ACR_RANK, key=lambda a: ACR_RANK[a]),
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

    def discovery(self) -> JSONResponse:
        return JSONResponse(self.discovery_document,
                            headers={"Cache-Control": "public, max-age=300"})

    def jwks(self) -> JSONResponse:
        return JSONResponse(self.keys.jwks(),
                            headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE}"})

    def background_jobs(self) -> list[Any]:
        """Started and stopped by ``broker.ops.service``: key folder watcher, logout sender,
        expiry."""
        from broker.ops.service import Periodic

        return [Periodic("key-folder-watch", KEY_RELOAD_INTERVAL, self.keys.reload_if_changed),
                self.backchannel.sender,
                Periodic("session-expiry-logout", self.ctx.settings.store.purge_interval,
                         self.backchannel.sweep_expired)]

    # --- authorization endpoint -----------------------------------------------------
    async def authorize(self, request: Request) -> Response:
        if request.method == "POST":
            items: list[tuple[str, Any]] = list(await form_pairs(request))
        else:  # the form parser is ~3x quicker than Starlette's QueryParams here
            items = list(parse_urlencoded(request.scope["query_string"]))
            # Later readers of ``request.query_params`` (the language of the pages and
            # cookies) get these pairs instead of a second parse; Starlette keeps the
            # parsed query under this name (if that changes, they just parse again).
            request._query_params = QueryParams(items)  # type: ignore[attr-defined]
        return await in_thread(self._authorize, request, items)

    def _authorize(self, request: Request, items: list[tuple[str, Any]]
                   ) -> Response:
        pairs = [(k, v) for k, v in items if isinstance(v, str)]
        try:
            _client, auth = authz.parse(pairs, self.registry, self.ctx.clock.now())
        except authz.RedirectableError as err:
            self.ctx.audit.record("oidc.authorize_rejected", client_id=err.client.client_id,
                                  error=err.error)
            return self._to_client(err.redirect_uri, {
                "error": err.error, "error_description": err.description}, err.state)
        session = self.ctx.sessions.current(request)
        lacking = unmet(session, auth, self.ctx.clock.now())
        if lacking is None:
            assert session is not None
            # Single sign-on: the login hub still checks the session's role against what
            # this RP requires (and honours prompt=select_account) before finish().
            return self.ctx.login.settle(request, auth, session)
        if "none" in auth.prompt:
            # No UI allowed: OIDC Core 3.1.2.6. Authentication is what is missing in
            # both cases (no/old session, or one too weak), hence login_required.
            return self.deny(request, auth, "login_required",
                             "a login is needed and prompt=none forbids it")
        return self.ctx.login.begin(request, auth, lacking)

    def _client(self, auth: AuthRequest) -> Client:
        client = self.registry.get(auth.client_id)
        if client is None:
            raise authz.InvalidAuthorizationRequest("client disappeared from the registry")
        return client

    def end_session(self, sid: str, *, reason: str,
                    client_id: str | None = None) -> BrokerSession | None:
        """End one broker session for every RP: the session, its tokens, its sid mapping."""
        psid = self.public_sid(sid)
        ended = self.ctx.sessions.end(sid)
        self.tokens.revoke_session(psid)
        self.ctx.ephemeral.delete(NS_SID, psid)
        self.ctx.audit.record("oidc.logout", sid=psid, reason=reason,
                              clients=list(ended.clients) if ended else [],
                              client_id=client_id)
        if ended is not None:  # tell the RPs with a back channel (off the request path)
            self.backchannel.session_ended(ended, psid, reason)
        return ended

    def public_sid(self, sid: str) -> str:
        """The ``sid`` RPs see: derived from, never equal to, the cookie value."""
        mac = hmac.new(self.ctx.secret_key, b"sid|" + sid.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:18]).decode().rstrip("=")

    def _issue_code(self, auth: AuthRequest, session: BrokerSession, client: Client
                    ) -> Response:
        now = self.ctx.clock.now()
        psid = self.public_sid(session.sid)
        grant = Grant(
            grant_id=secrets.token_urlsafe(16), client_id=client.client_id,
            scopes=auth.scopes, sid=psid, nonce=auth.nonce, claims=auth.claims,
            user=UserSnapshot.of(
                session, accept_filing=client.config.accept_filed_with_ordinario),
            created_at=int(now.timestamp()),
            expires_at=int((now + timedelta(
                seconds=self.ctx.settings.tokens.refresh_token_lifetime)).timestamp()))
        code = self.tokens.issue_code(CodeRecord(
            grant=grant, redirect_uri=auth.redirect_uri, code_challenge=auth.code_challenge))
        remaining = max(1, int((session.expires_at - now).total_seconds()))
        self.ctx.ephemeral.put(NS_SID, psid, session.sid, remaining)
        session = self.ctx.sessions.add_client(session, client.client_id)
        self.backchannel.watch(session, psid, client)  # its expiry must reach the RP too
        self.ctx.audit.record("oidc.authorized", client_id=client.client_id, sid=psid,
                              acr=grant.user.acr, privilege=grant.user.privilege,
                              scopes=list(auth.scopes))
        return self._to_client(auth.redirect_uri, {"code": code}, auth.state)

    def _to_client(self, redirect_uri: str, params: dict[str, str],
                   state: str | None) -> Response:
        """An authorization response: always ``iss`` (RFC 9207), ``state`` if sent."""
        out = dict(params)
        if state is not None:
            out["state"] = state
        out["iss"] = self.issuer
        sep = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(f"{redirect_uri}{sep}{urlencode(out)}", status_code=303,
                                headers=NO_STORE)

    # --- consent (prompt=consent) ---------------------------------------------------
    def _consent_page(self, request: Request, auth: AuthRequest, session: BrokerSession,
                      client: Client) -> Response:
        consent_id = secrets.token_urlsafe(24)
        pending = PendingConsent(auth=auth, sid=self.public_sid(session.sid))
        self.ctx.ephemeral.put(NS_CONSENT, consent_id, pending.model_dump_json(), CONSENT_TTL)
        claims = sorted({c for s in auth.scopes for c in SCOPE_CLAIMS.get(s, ())}
                        - {"sub", "auth_time", "amr"})
        return self.ctx.templates.render(request, "oidc/consent.html", {
            "client_name": client.config.name, "consent_id": consent_id, "claims": claims,
            "offline": "offline_access" in auth.scopes,
        }, ui_locales=auth.ui_locales)

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
        if session is None or self.public_sid(session.sid) != pending.sid:
            raise LoginExpired("consent posted from another session")
        if form.get("decision") != "allow":
            return self.deny(request, pending.auth, "access_denied",
                             "the user did not consent")
        return self._issue_code(pending.auth, session, self._client(pending.auth))

    # --- token-side endpoints (Authlib) ---------------------------------------------
    async def _input(self, request: Request) -> HttpInput | JSONResponse:
        """The form as Authlib reads it, or the OAuth error for an unreadable one."""
        datalist: dict[str, list[str]] = {}
        try:
            pairs = await form_pairs(request)
        except BadForm as exc:
            return _invalid_request(exc.detail)
        for k, v in pairs:
            datalist.setdefault(k, []).append(v)
        return HttpInput(method=request.method, uri=f"{self.issuer}{request.scope['path']}",
                         headers=request.headers,
                         form={k: v[0] for k, v in datalist.items()}, datalist=datalist)

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
            return self.server.create_token_response(src)

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
