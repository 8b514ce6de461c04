"""The authorization server's state and the ``Authorizer`` the login hub answers RPs with.

``OidcCore`` holds what the OIDC endpoints and the login hub share: the signing keys,
the client registry, the token store, Authlib's server, back-channel logout. It issues
authorization codes (``issue``), asks for consent, denies, and ends broker sessions for
every RP. It is built before the login hub (which calls it when a login settles) and
the OIDC front (``broker.oidc.front``, which serves the endpoints) is built after both:
nothing is late-bound.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import timedelta
from urllib.parse import urlencode

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict

from broker.context import BrokerContext
from broker.http.forms import form_pairs
from broker.model import AuthRequest, BrokerSession, ClientInfo
from broker.oidc import authorize as authz
from broker.oidc.backchannel import LOGOUT_TOKEN_LIFETIME, BackchannelLogout
from broker.oidc.claims import SCOPE_CLAIMS, UserSnapshot
from broker.oidc.clients import Client, load_clients
from broker.oidc.keys import KEY_RELOAD_INTERVAL, KeyStore
from broker.oidc.server import HttpInput, VarcoAuthorizationServer
from broker.oidc.tokens import CodeRecord, Grant, TokenStore
from broker.ops.jobs import BackgroundJob, Periodic

NS_CONSENT = "oidc:consent"
NS_SID = "oidc:sid"
CONSENT_TTL = 600
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class PendingConsent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    auth: AuthRequest
    sid: str  # public sid of the session that must still be there on approval


class OidcCore:
    """Implements ``broker.login.interaction.Authorizer``."""

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

    async def http_input(self, request: Request) -> HttpInput:
        """The request as Authlib reads it (``BadForm`` for an unreadable body): the token
        endpoints' and the admin APIs' client authentication read the same input."""
        datalist: dict[str, list[str]] = {}
        for k, v in await form_pairs(request):
            datalist.setdefault(k, []).append(v)
        return HttpInput(method=request.method, uri=f"{self.issuer}{request.scope['path']}",
                         headers=request.headers,
                         form={k: v[0] for k, v in datalist.items()}, datalist=datalist)

    def client_info(self, client_id: str) -> ClientInfo | None:
        client = self.registry.get(client_id)
        return client.info if client else None

    def deny(self, request: Request, auth: AuthRequest, error: str,
             description: str | None = None) -> Response:
        self.ctx.audit.record("oidc.denied", client_id=auth.client_id, error=error)
        params = {"error": error}
        if description:
            params["error_description"] = description
        return self._to_client(auth.redirect_uri, params, auth.state)

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

    def issue(self, request: Request, auth: AuthRequest, session: BrokerSession
              ) -> Response:
        """``Authorizer.issue``: the code, the session's sid mapping and the RP's watch."""
        client = self._client(auth)
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

    def consent(self, request: Request, auth: AuthRequest, session: BrokerSession
                ) -> Response:
        """``Authorizer.consent``: the page; ``OidcFront.consent`` takes the answer."""
        client = self._client(auth)
        consent_id = secrets.token_urlsafe(24)
        pending = PendingConsent(auth=auth, sid=self.public_sid(session.sid))
        self.ctx.ephemeral.put(NS_CONSENT, consent_id, pending.model_dump_json(), CONSENT_TTL)
        claims = sorted({c for s in auth.scopes for c in SCOPE_CLAIMS.get(s, ())}
                        - {"sub", "auth_time", "amr"})
        return self.ctx.templates.render(request, "oidc/consent.html", {
            "client_name": client.config.name, "consent_id": consent_id, "claims": claims,
            "offline": "offline_access" in auth.scopes,
        }, ui_locales=auth.ui_locales)

    def background_jobs(self) -> list[BackgroundJob]:
        """Key folder watcher, back-channel logout sender, session expiry (``broker.ops``)."""
        return [Periodic("key-folder-watch", KEY_RELOAD_INTERVAL, self.keys.reload_if_changed),
                self.backchannel.sender,
                Periodic("session-expiry-logout", self.ctx.settings.store.purge_interval,
                         self.backchannel.sweep_expired)]

