"""The login hub: the one login page, and what happens between a provider and the RP.

``start`` remembers the validated ``AuthRequest`` for this browser (a pending login,
``tx``) and shows the chooser, or goes straight to the provider an RP hinted at.
Providers come back through ``complete`` with an ``AuthEvent``; the hub maps it to an
``Identity``, asks policy for a ``Decision``, records the trace in the audit trail, adds
the login to the session and either asks for a stronger login (step-up) or lets the
OIDC front answer the RP. Providers and the OIDC front never meet.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict

from broker.context import BrokerContext
from broker.errors import AccessDenied, BrokerError, LoginExpired, NotFound, Text
from broker.fiscal_code import mask
from broker.http.cookies import set_cookie
from broker.http.pages import BROWSER_COOKIE
from broker.http.threads import in_thread
from broker.login.interaction import Unmet, unmet
from broker.model import (
    AuthEvent,
    AuthRequest,
    BrokerSession,
    ClientInfo,
    Decision,
    Identity,
    LoginRecord,
    ReturnBinding,
)
from broker.policy import PolicyInput
from providers.base import ChoiceLookup, LeavesOnStart, LogoutCapable, Provider, supports

log = logging.getLogger("varco.login")
NS = "tx"
NS_PARKED = "xsite-post"
# Sent back by the browser on a provider's cross-site POST (SameSite=None), on that
# provider's return path only: it names the browser the pending login belongs to.
RETURN_COOKIE = "varco_return"


class PendingLogin(BaseModel):
    """A login in progress: the request, the browser it belongs to, why it was needed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    auth: AuthRequest
    browser: str
    reason: Unmet


@dataclass(frozen=True)
class Decided:
    """A login the policy has judged (``LoginHub.decide``), not yet written."""

    tx_id: str
    pending: PendingLogin
    event: AuthEvent
    identity: Identity
    decision: Decision


class LoginHub:
    """Implements ``providers.base.LoginHub`` and ``broker.login.interaction.LoginStarter``."""

    def __init__(self, ctx: BrokerContext):
        self.ctx = ctx
        self.router = APIRouter()
        self.router.add_api_route("/login", self.chooser, methods=["GET"])
        self.router.add_api_route("/login/start/{name}", self.start_provider, methods=["GET"])
        self.router.add_api_route("/login/cancel", self.cancel_form, methods=["POST"])

    # --- LoginStarter ---------------------------------------------------------------
    def remember(self, request: Request, auth: AuthRequest, reason: Unmet) -> None:
        """Keep ``auth`` as this browser's pending login (the ``tx`` of every login page)."""
        self._keep(self._pending_login(request, auth, reason))

    def _pending_login(self, request: Request, auth: AuthRequest, reason: Unmet
                       ) -> PendingLogin:
        browser = self.ctx.templates.browser_id(request)
        return PendingLogin(auth=auth, browser=browser, reason=reason)

    def _keep(self, pending: PendingLogin) -> None:
        self.ctx.ephemeral.put(NS, pending.auth.tx_id, pending.model_dump_json(),
                               self.ctx.settings.session.login_timeout)

    def start(self, request: Request, auth: AuthRequest, reason: Unmet) -> Response:
        self.remember(request, auth, reason)
        target = f"/login?tx={auth.tx_id}"
        hinted = self._hinted_provider(auth, reason)
        if hinted is not None:
            name, hint = hinted
            target = f"/login/start/{name}?tx={auth.tx_id}"
            if hint:
                target += "&" + _q("hint", hint)
        response = RedirectResponse(target, status_code=303)
        return self.ctx.templates.bind_cookies(request, response)

    def begin(self, request: Request, auth: AuthRequest, reason: Unmet) -> Response:
        """``start`` for ``/authorize``: a hinted provider that goes straight to another
        site (``providers.base.LeavesOnStart``, e.g. ``spid:<entityID>``) is started in
        the same response.

        Saves the browser the ``/login/start/<name>`` round trip. Called in a worker
        thread, where the provider's ``start_here`` runs too (no second hop). The browser
        cookie the pending login is bound to is set on the provider's response.

        The pending login and the provider's own record (the SAML request) are written in
        one batch, one commit: the provider signs before it writes, so the batch, which
        opens at the first write, holds no lock across the signature; the pending login
        is written last, and a page rendered meanwhile (an error) finds it in the
        request (``varco_pending``).
        """
        hinted = self._hinted_provider(auth, reason)
        if hinted is None:
            return self.start(request, auth, reason)
        name, hint = hinted
        provider = self.ctx.providers[name]
        if not (supports(provider, LeavesOnStart) and provider.leaves_on_start(hint or None)):
            return self.start(request, auth, reason)
        pending = self._pending_login(request, auth, reason)
        request.state.varco_pending = (auth.tx_id, pending)
        with self.ctx.db.batch():
            response = provider.start_here(request, auth, hint or None)
            self._keep(pending)
        return self.ctx.templates.bind_cookies(request, response)

    def _hinted_provider(self, auth: AuthRequest, reason: Unmet) -> tuple[str, str] | None:
        """``idp_hint=pin|spid|cie|cns`` or ``spid:<entityID>``; unknown/disabled -> chooser."""
        if not auth.idp_hint:
            return None
        name, _, hint = auth.idp_hint.partition(":")
        provider = self.ctx.providers.get(name)
        if provider is None or not self._offerable(name, auth):
            return None
        if hint and not _has_choice(provider, hint):
            return None
        return name, hint

    def _offerable(self, name: str, auth: AuthRequest) -> bool:
        return self.ctx.policy.engine.provider_can_satisfy(name, auth.required_privilege)

    # --- LoginHub (what providers call) -----------------------------------------------
    def _load(self, request: Request, tx_id: str | None) -> PendingLogin:
        if not tx_id or len(tx_id) > 128:
            raise LoginExpired("missing tx")
        raw = self.ctx.ephemeral.get(NS, tx_id)
        if raw is None:
            raise LoginExpired("unknown or expired tx")
        pending = PendingLogin.model_validate_json(raw)
        browser = getattr(request.state, "varco_browser", None) or \
            request.cookies.get(BROWSER_COOKIE, "")
        if not hmac.compare_digest(pending.browser.encode(), browser.encode()):
            raise LoginExpired("tx belongs to another browser")
        return pending

    def pending(self, request: Request, tx_id: str) -> AuthRequest:
        loaded = self._load(request, tx_id)
        # A provider checks the pending login, then completes it within the same request
        # (the SAML ACS): ``complete_here`` takes this read instead of loading it again.
        request.state.varco_pending = (tx_id, loaded)
        return loaded.auth

    def _reuse_or_load(self, request: Request, tx_id: str) -> PendingLogin:
        """The pending login read by ``pending`` earlier in this request (once), or a load."""
        cached = getattr(request.state, "varco_pending", None)
        request.state.varco_pending = None
        if cached is not None and cached[0] == tx_id:
            return cached[1]
        return self._load(request, tx_id)

    async def complete(self, request: Request, tx_id: str, event: AuthEvent) -> Response:
        return await in_thread(self.complete_here, request, tx_id, event)

    def complete_here(self, request: Request, tx_id: str, event: AuthEvent) -> Response:
        """``complete`` for a provider already in a worker thread (no second hop).

        ``decide``, then ``commit`` in one batch: the login's writes (session, code,
        pending login, audit) are one SQLite commit, and a failure half-way leaves none.
        """
        decided = self.decide(request, tx_id, event)
        if isinstance(decided, Response):
            return decided
        with self.ctx.db.batch():
            return self.commit(request, decided)

    def decide(self, request: Request, tx_id: str, event: AuthEvent) -> Decided | Response:
        """The first half of ``complete``: what the policy says of this login, reading
        only (the pending login, the directory). A provider that writes with the login
        (the SAML replay mark) calls ``decide``, then ``commit`` in its own batch.

        Nothing here writes, except the audit entry of a failure (then the error page is
        the answer), so no batch is held across a directory lookup (LDAP: the network).
        """
        try:
            pending = self._reuse_or_load(request, tx_id)
            auth = pending.auth
            identity = self.ctx.mappings.map(event)
            client = self.client_info(auth)
            roles = request.app.state.roles  # broker.login.roles: directory facts, fail closed
            decision = self.ctx.policy.engine.decide(PolicyInput(
                event=event, identity=identity, client=client, now=self.ctx.clock.now(),
                facts=roles.load_facts(auth, identity.fiscal_code)), fired_only=True)
        except BrokerError as error:
            self.ctx.audit.record("login.error", provider=event.provider, error=error.code,
                                  error_id=error.error_id, detail=error.detail)
            return self.fail(request, error, tx_id)
        return Decided(tx_id=tx_id, pending=pending, event=event, identity=identity,
                       decision=decision)

    def commit(self, request: Request, decided: Decided) -> Response:
        """The second half of ``complete``: audit, session, then the RP (or step-up)."""
        tx_id, pending, event = decided.tx_id, decided.pending, decided.event
        auth, identity, decision = pending.auth, decided.identity, decided.decision
        self._audit_decision(event, identity.fiscal_code, auth, decision)
        if not decision.allow:
            return self._denied(request, auth, decision)
        session = self.ctx.sessions.add_login(
            request, LoginRecord(event=event, identity=identity, decision=decision))
        lacking = unmet(session, auth, self.ctx.clock.now(), fresh=True)
        if lacking is not None:
            # Logged in, but not strongly enough for this RP: ask for more (step-up).
            self.ctx.audit.record("login.step_up", provider=event.provider,
                                  client_id=auth.client_id, privilege=decision.privilege)
            self.ctx.ephemeral.put(NS, tx_id, pending.model_copy(
                update={"reason": Unmet.STEP_UP}).model_dump_json(),
                self.ctx.settings.session.login_timeout)
            response = RedirectResponse(f"/login?tx={tx_id}", status_code=303)
        else:
            # broker.login.roles: one role -> front.finish; several -> the role choice page.
            response = request.app.state.roles.after_login(request, auth, session)
        self.ctx.sessions.set_cookie(response, session)
        return response

    def _audit_decision(self, event: AuthEvent, cf: str, auth: AuthRequest,
                        decision: Decision) -> None:
        self.ctx.audit.record(
            "login.decision", provider=event.provider, idp=event.idp, fiscal_code=cf,
            client_id=auth.client_id, acr=event.acr, allow=decision.allow,
            privilege=decision.privilege, reason=decision.reason,
            abilitazioni=[a.model_dump() for a in decision.abilitazioni],
            trace=[t.model_dump() for t in decision.trace if t.fired])
        log.info("login decision provider=%s cf=%s client=%s allow=%s privilege=%s",
                 event.provider, mask(cf), auth.client_id, decision.allow, decision.privilege)

    def client_info(self, auth: AuthRequest) -> ClientInfo:
        info = self.ctx.front.client_info(auth.client_id)
        return info or ClientInfo(client_id=auth.client_id, name=auth.client_name)

    def _denied(self, request: Request, auth: AuthRequest, decision: Decision) -> Response:
        message = Text(decision.message_it or AccessDenied.message.it,
                       decision.message_en or AccessDenied.message.en)
        error = AccessDenied(f"policy denied: {decision.reason}", message=message)
        return self.fail(request, error, auth.tx_id, choose_again=True)

    def fail(self, request: Request, error: BrokerError, tx_id: str | None = None,
             *, choose_again: bool = False) -> Response:
        log.warning("error_id=%s code=%s status=%s detail=%s", error.error_id, error.code,
                    error.status, error.detail)
        lang = self.ctx.templates.language(request)
        links = []
        if tx_id and (choose_again or not isinstance(error, LoginExpired)):
            links.append({"url": f"/login?tx={tx_id}",
                          "text": Text("Scegli un altro metodo di accesso",
                                       "Choose another sign-in method").get(lang)})
        keep_tx = tx_id if tx_id and not isinstance(error, LoginExpired) else None
        return self.ctx.templates.render(request, "error.html", {
            "message": error.message.get(lang), "error_id": error.error_id,
            "links": links, "tx": keep_tx}, status=error.status)

    def cancel(self, request: Request, tx_id: str) -> Response:
        pending = self._load(request, tx_id)
        self.ctx.ephemeral.delete(NS, tx_id)
        self.ctx.audit.record("login.cancelled", client_id=pending.auth.client_id)
        return self.ctx.front.deny(request, pending.auth, "access_denied",
                                   "The user cancelled the login")

    def render(self, request: Request, template: str, context: dict[str, Any],
               status: int = 200) -> Response:
        tx_id = context.get("tx")
        hint: tuple[str, ...] = ()
        cached = getattr(request.state, "varco_pending", None)
        if cached is not None and cached[0] == tx_id:
            # read by ``pending`` earlier in this request: no store call (which may be a
            # network round trip to Redis) from an async route on the event loop
            hint = cached[1].auth.ui_locales
        elif tx_id:
            raw = self.ctx.ephemeral.get(NS, tx_id)
            if raw:
                hint = tuple(json.loads(raw)["auth"].get("ui_locales") or ())
        return self.ctx.templates.render(request, template, context, status, ui_locales=hint)

    def verify_csrf(self, request: Request, token: str | None) -> None:
        self.ctx.templates.verify_csrf(request, token)

    def session(self, request: Request) -> BrokerSession | None:
        return self.ctx.sessions.current(request)

    def settle(self, request: Request, auth: AuthRequest, session: BrokerSession) -> Response:
        """Single sign-on: the role must fit this RP too (``broker.login.roles``)."""
        response = request.app.state.roles.settle(request, auth, session, fresh=False)
        return self.ctx.templates.bind_cookies(request, response)

    def return_binding(self, request: Request, auth: AuthRequest) -> ReturnBinding:
        """What a provider keeps with its outgoing request to accept a cross-site return."""
        return ReturnBinding(browser=self.ctx.templates.browser_id(request),
                             sid=request.cookies.get(self.ctx.sessions.COOKIE, ""),
                             lang=self.ctx.templates.language(request, auth.ui_locales))

    def expect_cross_site_return(self, request: Request, response: Response, path: str,
                                 ttl: int) -> None:
        """Let the provider's cross-site POST to ``path`` name this browser.

        SameSite=None (which browsers take only with Secure), HttpOnly, and scoped to
        ``path``: no other route of ours ever receives it from another site. Where the
        browser refuses it (plain http off localhost) the POST is parked instead.
        """
        set_cookie(response, RETURN_COOKIE, self.ctx.templates.browser_id(request),
                   max_age=ttl, path=path, secure=True, httponly=True, samesite="none")

    def cross_site_claim(self, request: Request) -> str | None:
        """On a POST without our SameSite=Lax cookies: the browser the return cookie
        names (to check against the provider's ``ReturnBinding``); None otherwise."""
        if request.cookies.get(BROWSER_COOKIE):
            return None
        claim = request.cookies.get(RETURN_COOKIE, "")
        return claim if 16 <= len(claim) <= 64 else None

    def adopt(self, request: Request, claim: str, binding: ReturnBinding) -> None:
        """Complete this request as the browser that started the login.

        ``claim`` (the return cookie) must equal the browser kept server-side with the
        provider's request, else it is another browser's response: ``LoginExpired``.
        """
        if not binding.browser or not hmac.compare_digest(claim.encode(),
                                                          binding.browser.encode()):
            raise LoginExpired("cross-site return from another browser")
        request.state.varco_browser = binding.browser
        request.state.browser_id = binding.browser  # Renderer: CSRF tokens, no new cookie
        request.state.varco_sid = binding.sid
        request.state.varco_lang = binding.lang

    def park_cross_site_post(self, request: Request, fields: dict[str, str]) -> Response | None:
        """Bring a cross-site POST (an IdP's ACS POST) back to this site as a GET.

        Browsers do not send SameSite=Lax cookies on a POST from another site, so the
        pending login cannot be matched to this browser there. When the browser cookie is
        missing, the fields are parked server-side under a single-use key (2 minutes) and
        the browser is sent to ``<same path>?resume=<key>``: a top-level GET, which does
        carry the cookie. None means the cookie is here: go on.
        """
        if request.cookies.get(BROWSER_COOKIE):
            return None
        key = secrets.token_urlsafe(24)
        self.ctx.ephemeral.put(NS_PARKED, key, json.dumps(fields), 120)
        return RedirectResponse(f"{request.url.path}?{urlencode({'resume': key})}",
                                status_code=303)

    def unpark(self, key: str) -> dict[str, str] | None:
        """The parked fields, once; None when unknown, expired or already used."""
        if not key or len(key) > 64:
            return None
        raw = self.ctx.ephemeral.take(NS_PARKED, key)
        return json.loads(raw) if raw else None

    def end_session(self, request: Request, response: Response) -> None:
        """A provider learnt that the citizen logged out there (IdP-initiated SLO)."""
        session = self.ctx.sessions.current(request)
        if session is not None:
            self.ctx.front.end_session(session.sid, reason="provider_initiated")
        self.ctx.sessions.clear_cookie(response)

    async def provider_logout(self, request: Request, ended: list[BrokerSession],
                              return_to: str) -> Response | None:
        """The first provider that needs a logout round trip gets it (one redirect chain)."""
        for session in ended:
            for record in reversed(session.logins):
                provider = self.ctx.providers.get(record.event.provider)
                if supports(provider, LogoutCapable):
                    response = await provider.logout(request, record.event, return_to)
                    if response is not None:
                        return response
        return None

    # --- routes --------------------------------------------------------------------
    def chooser(self, request: Request, tx: str | None = None) -> Response:
        try:
            pending = self._load(request, tx)
        except BrokerError as error:
            return self.fail(request, error)
        auth = pending.auth
        lang = self.ctx.templates.language(request, auth.ui_locales)
        providers = []
        for name, provider in self.ctx.providers.items():
            if not self._offerable(name, auth):
                continue
            providers.append({
                "name": name, "label": provider.label.get(lang),
                "url": f"/login/start/{name}?tx={auth.tx_id}",
                "choices": provider.choices(),
                "partial": getattr(provider, "chooser_partial", None),
            })
        return self.ctx.templates.render(request, "login.html", {
            "providers": providers, "tx": auth.tx_id, "client_name": auth.client_name,
            "step_up": pending.reason is Unmet.STEP_UP,
        }, ui_locales=auth.ui_locales)

    async def start_provider(self, request: Request, name: str, tx: str | None = None,
                             hint: str | None = None) -> Response:
        try:
            auth = await in_thread(self.pending, request, tx or "")
            provider = self.ctx.providers.get(name)
            if provider is None or not self._offerable(name, auth):
                raise NotFound(f"provider {name!r} not enabled for this request")
        except BrokerError as error:
            return self.fail(request, error, tx)
        return await provider.start(request, auth, hint)

    def cancel_form(self, request: Request, tx: str = Form(""),
                    csrf_token: str = Form("")) -> Response:
        try:
            self.verify_csrf(request, csrf_token)
            return self.cancel(request, tx)
        except BrokerError as error:
            return self.fail(request, error)


def _has_choice(provider: Provider, hint: str) -> bool:
    """Is ``hint`` one of the provider's sub-choices (without listing them when it can)?"""
    if supports(provider, ChoiceLookup):
        return provider.has_choice(hint)
    return hint in {c["id"] for c in provider.choices()}


def _q(key: str, value: str) -> str:
    return urlencode({key: value})
