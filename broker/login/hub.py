"""The login hub: the one login page, and everything between a provider and the RP.

``authorize`` takes an RP's validated ``AuthRequest`` from the OIDC front and asks the
interaction policy (``broker.login.interaction.next_step``) what the browser's session
still lacks. A login is remembered for this browser (a pending login, ``tx``) and the
chooser or the hinted provider is shown. The hub serves every step of a provider's
login (``providers.base.StepRoute``, ``CallbackRoute``): it reads the form, checks CSRF
and that the login is this browser's, makes the one hop to a worker thread, calls the
provider, and takes what the provider returns:

- an ``AuthEvent``: mapped to an ``Identity``, judged by the policy with the directory's
  facts, then in one commit: the event's single-use marks spent (a replay is refused
  and leaves nothing), the decision audited, the session joined, and the next step
  taken (step-up, role choice, consent, or the code from the ``Authorizer``);
- a ``Refusal``: its error is raised, and the one error handler renders the page
  (``broker.http.errorpages``), the login's ``tx`` known from the request;
- a ``Response``: the provider's own next page.

Providers and the OIDC front never meet; the hub is built after both the providers and
the ``Authorizer`` it is handed, and before the front that calls it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from broker.audit import AuditLog
from broker.clock import Clock
from broker.errors import AccessDenied, BrokerError, LoginExpired, NotFound, ProviderError, Text
from broker.fiscal_code import mask
from broker.http.fastlane import HotRoute
from broker.http.forms import form_pairs
from broker.http.pages import BROWSER_COOKIE, Renderer
from broker.http.threads import in_thread
from broker.login.facts import DirectoryFacts
from broker.login.interaction import Authorizer, Next, Prompt, Unmet, next_step
from broker.login.pending import PendingLogin, PendingLogins
from broker.login.roles import NoFittingRole, RolePages, role_options
from broker.login.session import SessionManager
from broker.mapping import MappingSet
from broker.model import (
    ActingRole,
    AuthEvent,
    AuthRequest,
    BrokerSession,
    ClientInfo,
    Decision,
    LoginRecord,
)
from broker.oidc.keys import b64url
from broker.policy import PolicyHolder, PolicyInput
from broker.store.base import Database, EphemeralStore
from providers.base import (
    CallbackRoute,
    Callbacks,
    Choices,
    LeavesOnStart,
    LoginStep,
    LogoutCapable,
    Provider,
    Refusal,
    Returned,
    ReturnsTo,
    StepResult,
    StepRoute,
    Steps,
    supports,
)

log = logging.getLogger("varco.login")
Endpoint = Callable[[Request], Awaitable[Response]]


class ReplayedLogin(ProviderError):
    """An answer from a credential source that already served a login."""

    code = "login_replayed"
    message = Text(
        "Questa risposta di accesso è già stata usata. Torna al servizio e accedi di nuovo.",
        "This sign-in answer has already been used. Go back to the service and sign in again.")


class LoginCancelled(BrokerError):
    """The citizen gave up (the RP gets ``access_denied``)."""

    code = "login_cancelled"


@dataclass(frozen=True)
class HubParts:
    """What the hub is built from, all built before it (``broker.app``)."""

    clock: Clock
    db: Database
    ephemeral: EphemeralStore
    audit: AuditLog
    pages: Renderer
    sessions: SessionManager
    policy: PolicyHolder
    mappings: MappingSet
    facts: DirectoryFacts
    authorizer: Authorizer
    providers: dict[str, Provider]
    secret_key: bytes
    login_timeout: int


class LoginHub:
    """The login page, the providers' login steps, and the interaction policy's acts."""

    def __init__(self, parts: HubParts):
        self.clock = parts.clock
        self.db = parts.db
        self.ephemeral = parts.ephemeral
        self.audit = parts.audit
        self.pages = parts.pages
        self.sessions = parts.sessions
        self.policy = parts.policy
        self.mappings = parts.mappings
        self.facts = parts.facts
        self.authorizer = parts.authorizer
        self.providers = parts.providers
        self._secret = parts.secret_key
        self.pending = PendingLogins(parts.ephemeral, parts.pages, parts.sessions,
                                     parts.login_timeout)
        self._return_paths = {
            name: [*(f"/{name}{cb.path}" for cb in _callbacks(p) if cb.cross_site),
                   *(p.return_paths() if supports(p, ReturnsTo) else ())]
            for name, p in self.providers.items()}
        self._hot: list[HotRoute] = []
        r = self.router = APIRouter()
        r.add_api_route("/login", self.chooser, methods=["GET"])
        r.add_api_route("/login/start/{name}", self.start_provider, methods=["GET"])
        r.add_api_route("/login/cancel", self.cancel_form, methods=["POST"])
        for name, provider in self.providers.items():
            for step in _steps(provider):
                self._route(f"/{name}{step.path}", step.methods,
                            self._step_endpoint(provider, step), step.hot)
            for callback in _callbacks(provider):
                self._route(f"/{name}{callback.path}", callback.methods,
                            self._callback_endpoint(provider, callback), callback.hot)
        r.include_router(RolePages(self).router)

    def _route(self, path: str, methods: Sequence[str], endpoint: Endpoint, hot: bool) -> None:
        if hot:
            self._hot.append(HotRoute(path, endpoint, tuple(methods)))
        else:
            self.router.add_api_route(path, endpoint, methods=list(methods))

    def hot_routes(self) -> list[HotRoute]:
        """Provider steps every login of their kind crosses (the app's fast lane)."""
        return list(self._hot)

    # --- from the OIDC front -----------------------------------------------------------
    def authorize(self, request: Request, auth: AuthRequest) -> Response:
        """A validated authorization request (worker thread): single sign-on, a login,
        or ``login_required`` with ``prompt=none``."""
        session = self.sessions.current(request)
        return _raised(self._advance(request, auth, session, fresh=False))

    async def provider_logout(self, request: Request, ended: list[BrokerSession],
                              return_to: str) -> Response | None:
        """The first provider that needs a logout round trip gets it (SAML SLO)."""
        for session in ended:
            for record in reversed(session.logins):
                provider = self.providers.get(record.event.provider)
                if provider is not None and supports(provider, LogoutCapable):
                    response = await provider.logout(request, record.event, return_to)
                    if response is not None:
                        return response
        return None

    # --- the interaction policy's acts -------------------------------------------------
    def _advance(self, request: Request, auth: AuthRequest, session: BrokerSession | None,
                 *, fresh: bool, role_chosen: bool = False) -> Response | BrokerError:
        """Evaluate the next step once and take it. A refusal is returned, not raised, so
        that a caller in a batch commits what led to it (the login, its audit entry)."""
        requirement = self.policy.engine.requirement_for(auth.client_id)
        step: Next = next_step(session, auth, self.clock.now(), requirement=requirement,
                               fresh=fresh, role_chosen=role_chosen)
        if step.prompt in (Prompt.LOGIN, Prompt.STEP_UP):
            reason = Unmet.LOGIN if step.prompt is Prompt.LOGIN else Unmet.STEP_UP
            if fresh:  # logged in, but not strongly enough for this RP: ask for more
                assert session is not None
                self.audit.record("login.step_up", provider=session.current.event.provider,
                                  client_id=auth.client_id,
                                  privilege=session.current.decision.privilege)
                self.pending.keep(self.pending.new(request, auth, Unmet.STEP_UP))
                return RedirectResponse(f"/login?tx={quote(auth.tx_id)}", status_code=303)
            if "none" in auth.prompt:
                # No UI allowed (OIDC Core 3.1.2.6): authentication is what is missing,
                # for no session, an old one, or one too weak alike.
                return self.authorizer.deny(request, auth, "login_required",
                                            "a login is needed and prompt=none forbids it")
            return self._begin(request, auth, reason)
        assert session is not None
        if step.prompt is Prompt.NO_ROLE:
            self.audit.record("roles.no_fitting_role", client_id=auth.client_id,
                              fiscal_code=session.subject)
            if "none" in auth.prompt:
                return self.authorizer.deny(request, auth, "access_denied",
                                            "no role of this person fits the client")
            pending = self.pending.new(request, auth, Unmet.STEP_UP)
            self.pending.keep(pending)
            request.state.varco_auth = auth
            return NoFittingRole("no role fits the RP")
        if step.prompt is Prompt.CHOOSE_ROLE:
            if "none" in auth.prompt:
                return self.authorizer.deny(request, auth, "account_selection_required",
                                            "choose the role to act in")
            self.pending.keep(self.pending.new(request, auth, Unmet.LOGIN))
            return RedirectResponse(f"/roles/choose?tx={quote(auth.tx_id)}", status_code=303)
        if step.role is not None:
            session = self.set_role(session, step.role)
        self.pending.drop(auth.tx_id)
        if step.prompt is Prompt.CONSENT:
            return self.authorizer.consent(request, auth, session)
        return self.authorizer.issue(request, auth, session)

    def role_options(self, session: BrokerSession, client_id: str | None) -> list[ActingRole]:
        """The roles this session may act in for ``client_id`` (any RP when None)."""
        requirement = self.policy.engine.requirement_for(client_id) if client_id else None
        return role_options(session.current.decision, requirement)

    def role_chosen(self, request: Request, pending: PendingLogin, session: BrokerSession,
                    role: ActingRole) -> Response:
        """The person picked ``role`` on the choice page: record it and go on."""
        session = self.set_role(session, role)
        return _raised(self._advance(request, pending.auth, session, fresh=True,
                                     role_chosen=True))

    def set_role(self, session: BrokerSession, role: ActingRole) -> BrokerSession:
        """Store the role a session acts in (a delegate gets its pairwise actor key)."""
        if role.kind == "delegate":
            key = hmac.new(self._secret, b"actor|" + session.subject.encode(),
                           hashlib.sha256).digest()
            role = role.model_copy(update={"actor_key": b64url(key)})
        updated = session.model_copy(update={"role": role})
        self.sessions.update(updated)
        self.audit.record("session.role", sid_hash=hashlib.sha256(
            session.sid.encode()).hexdigest()[:16], fiscal_code=session.subject,
            role=role.kind, scope=role.abilitazione.scope if role.abilitazione else {})
        return updated

    # --- starting a login --------------------------------------------------------------
    def _begin(self, request: Request, auth: AuthRequest, reason: Unmet) -> Response:
        """Remember the login and show the chooser, or the hinted provider.

        A hinted provider that leaves for another site at once (``LeavesOnStart``, e.g.
        ``spid:<entityID>``) is started in this very response, saving the browser a round
        trip; its own record (the SAML request) and the pending login are one commit. The
        provider signs before it writes, so the batch (which opens at its first write)
        holds no lock across the signature.
        """
        pending = self.pending.new(request, auth, reason)
        hinted = self._hinted(auth)
        if hinted is not None:
            provider, hint = hinted
            if supports(provider, LeavesOnStart) and provider.leaves_on_start(hint):
                request.state.varco_auth = auth
                with self.db.batch():
                    answer = self._start(request, provider, auth, hint)
                    self.pending.keep(pending)
                return self._started(request, answer)
            target = f"/login/start/{provider.name}?tx={quote(auth.tx_id)}"
            if hint:
                target += "&" + urlencode({"hint": hint})
        else:
            target = f"/login?tx={quote(auth.tx_id)}"
        self.pending.keep(pending)
        return self.pages.bind_cookies(request, RedirectResponse(target, status_code=303))

    def _hinted(self, auth: AuthRequest) -> tuple[Provider, str | None] | None:
        """``idp_hint=<name>`` or ``<name>:<choice>``; unknown or not offerable: chooser."""
        if not auth.idp_hint:
            return None
        name, _, hint = auth.idp_hint.partition(":")
        provider = self.providers.get(name)
        if provider is None or not self._offerable(name, auth):
            return None
        if hint and not (supports(provider, Choices) and provider.has_choice(hint)):
            return None
        return provider, hint or None

    def _offerable(self, name: str, auth: AuthRequest) -> bool:
        return self.policy.engine.provider_can_satisfy(name, auth.required_privilege)

    def _start(self, request: Request, provider: Provider, auth: AuthRequest,
               hint: str | None) -> Response | Refusal:
        answer = provider.start(LoginStep(request, auth, {}), hint)
        if isinstance(answer, Response):
            for path in self._return_paths[provider.name]:
                self.pending.expect_return(request, answer, path)
        return answer

    def _started(self, request: Request, answer: Response | Refusal) -> Response:
        if isinstance(answer, Refusal):
            raise answer.error
        return self.pages.bind_cookies(request, answer)

    # --- routes: the chooser, a provider's start, cancel -------------------------------
    async def chooser(self, request: Request) -> Response:
        return await in_thread(self._chooser, request, request.query_params.get("tx"))

    def _chooser(self, request: Request, tx: str | None) -> Response:
        pending = self.pending.load(request, tx)
        auth = pending.auth
        lang = self.pages.language(request, auth.ui_locales)
        offered = []
        for name, provider in self.providers.items():
            if not self._offerable(name, auth):
                continue
            offered.append({
                "name": name, "label": provider.label.get(lang),
                "url": f"/login/start/{name}?tx={quote(auth.tx_id)}",
                "choices": provider.choices() if supports(provider, Choices) else [],
                "partial": getattr(provider, "chooser_partial", None),
            })
        return self.pages.page(request, "login.html", {
            "providers": offered, "tx": auth.tx_id, "client_name": auth.client_name,
            "step_up": pending.reason is Unmet.STEP_UP})

    async def start_provider(self, request: Request, name: str) -> Response:
        query = request.query_params
        return await in_thread(self._start_provider, request, name, query.get("tx"),
                               query.get("hint") or None)

    def _start_provider(self, request: Request, name: str, tx: str | None,
                        hint: str | None) -> Response:
        pending = self.pending.load(request, tx)
        provider = self.providers.get(name)
        if provider is None or not self._offerable(name, pending.auth):
            raise NotFound(f"provider {name!r} not enabled for this request")
        if hint is not None and not (supports(provider, Choices)
                                     and provider.has_choice(hint)):
            raise NotFound(f"provider {name!r} has no choice {hint!r}")
        pending = self.pending.restamp(request, pending)
        return self._started(request, self._start(request, provider, pending.auth, hint))

    async def cancel_form(self, request: Request) -> Response:
        form = dict(await form_pairs(request))
        self.pages.verify_csrf(request, form.get("csrf_token"))
        return await in_thread(self._cancel, request, form.get("tx"))

    def _cancel(self, request: Request, tx: str | None) -> Response:
        return self.cancel(request, self.pending.load(request, tx))

    def cancel(self, request: Request, pending: PendingLogin) -> Response:
        """The citizen gave up (here or at the IdP): back to the RP with access_denied."""
        self.pending.drop(pending.auth.tx_id)
        self.audit.record("login.cancelled", client_id=pending.auth.client_id)
        return self.authorizer.deny(request, pending.auth, "access_denied",
                                    "The user cancelled the login")

    # --- routes: the providers' steps and returns --------------------------------------
    def _step_endpoint(self, provider: Provider, step: StepRoute) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            if request.method == "POST":
                form = dict(await form_pairs(request))  # a repeated field: the last one
                self.pages.verify_csrf(request, form.get("csrf_token"))
            else:
                form = dict(request.query_params)
            return await in_thread(self._step, request, provider, step, form)

        return endpoint

    def _step(self, request: Request, provider: Provider, step: StepRoute,
              form: dict[str, str]) -> Response:
        pending = self.pending.load(request, form.get("tx"))
        returns = self._return_paths[provider.name]
        if returns:  # a step that may leave for the IdP (the SPID list's link)
            pending = self.pending.restamp(request, pending)
        result = step.handler(LoginStep(request, pending.auth, form))
        if isinstance(result, Response):
            for path in returns:
                self.pending.expect_return(request, result, path)
        return self._settle(request, provider, pending, result)

    def _callback_endpoint(self, provider: Provider, route: CallbackRoute) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            posted = dict(await form_pairs(request)) if request.method == "POST" else None
            return await in_thread(self._callback, request, provider, route, posted)

        return endpoint

    def _callback(self, request: Request, provider: Provider, route: CallbackRoute,
                  posted: dict[str, str] | None) -> Response:
        """A return from the credential source; for a cross-site POST, see ``pending``."""
        claim: str | None = None
        fields = posted if posted is not None else dict(request.query_params)
        if route.cross_site:
            if posted is not None:
                claim = self.pending.claim(request)
                if claim is None and not request.cookies.get(BROWSER_COOKIE):
                    return self.pending.park(request, posted)
            elif "resume" in fields:
                parked = self.pending.unpark(fields["resume"])
                if parked is None:
                    raise LoginExpired("unknown or used resume key")
                fields = parked
        returned: Returned = route.handler(request, fields)
        if returned.tx is None:
            assert isinstance(returned.outcome, Refusal), "an event must name its login"
            raise returned.outcome.error
        pending = self.pending.load(request, returned.tx, claim=claim)
        return self._settle(request, provider, pending, returned.outcome)

    # --- what a provider returned -------------------------------------------------------
    def _settle(self, request: Request, provider: Provider, pending: PendingLogin,
                result: StepResult) -> Response:
        if isinstance(result, Response):
            return result
        if isinstance(result, Refusal):
            if result.cancelled:
                return self.cancel(request, pending)
            log.info("login refused provider=%s code=%s error_id=%s", provider.name,
                     result.error.code, result.error.error_id)
            raise result.error
        return self._complete(request, pending, result)

    def _complete(self, request: Request, pending: PendingLogin, event: AuthEvent
                  ) -> Response:
        """Map, decide (reading only: the directory may be LDAP, no lock held across it),
        then write everything the login is in one batch: all or nothing."""
        auth = pending.auth
        try:
            identity = self.mappings.map(event)
            client = (self.authorizer.client_info(auth.client_id)
                      or ClientInfo(client_id=auth.client_id, name=auth.client_name))
            decision = self.policy.engine.decide(PolicyInput(
                event=event, identity=identity, client=client, now=self.clock.now(),
                facts=self.facts.load(auth, identity.fiscal_code)), fired_only=True)
            if decision.allow and identity.fiscal_code is None and client.requires_fiscal_code:
                decision = _needs_fiscal_code(decision)
        except BrokerError as error:
            self.audit.record("login.error", provider=event.provider, error=error.code,
                              error_id=error.error_id, detail=error.detail)
            raise
        with self.db.batch():
            self._spend(event)
            self._audit_decision(event, identity.subject, auth, decision)
            if not decision.allow:
                answer: Response | BrokerError = AccessDenied(
                    f"policy denied: {decision.reason}", message=Text(
                        decision.message_it or AccessDenied.message.it,
                        decision.message_en or AccessDenied.message.en))
            else:
                session = self.sessions.add_login(
                    request, LoginRecord(event=event, identity=identity, decision=decision))
                answer = self._advance(request, auth, session, fresh=True)
                if isinstance(answer, Response):
                    self.sessions.set_cookie(answer, session)
        return _raised(answer)

    def _spend(self, event: AuthEvent) -> None:
        """Mark the event's single-use values spent; any already spent refuses the login
        (and the batch, raised out of, writes nothing)."""
        for mark in event.single_use:
            if not self.ephemeral.add(mark.ns, mark.key, "1", mark.ttl):
                log.warning("login replayed provider=%s mark=%s", event.provider, mark.ns)
                raise ReplayedLogin(f"{mark.ns} already used")

    def _audit_decision(self, event: AuthEvent, cf: str, auth: AuthRequest,
                        decision: Decision) -> None:
        self.audit.record(
            "login.decision", provider=event.provider, idp=event.idp, fiscal_code=cf,
            client_id=auth.client_id, acr=event.acr, allow=decision.allow,
            privilege=decision.privilege, reason=decision.reason,
            abilitazioni=[a.model_dump() for a in decision.abilitazioni],
            trace=[t.model_dump() for t in decision.trace if t.fired])
        log.info("login decision provider=%s cf=%s client=%s allow=%s privilege=%s",
                 event.provider, mask(cf), auth.client_id, decision.allow, decision.privilege)


def _needs_fiscal_code(decision: Decision) -> Decision:
    """The RP takes only people with a codice fiscale (``requires_fiscal_code``)."""
    return decision.model_copy(update={
        "allow": False, "reason": "fiscal_code_required", "privilege": None,
        "message_it": "Questo servizio richiede un codice fiscale italiano, che il tuo accesso "
                      "non comunica. Se l'Istituto ti ha già identificato, chiedi di "
                      "collegare la tua identità al codice fiscale; altrimenti accedi con "
                      "SPID, CIE o CNS.",
        "message_en": "This service needs an Italian codice fiscale (tax code), which your "
                      "sign-in does not carry. If the Institute has identified you, ask for "
                      "your identity to be linked to your codice fiscale; otherwise sign in "
                      "with SPID, CIE or CNS."})


def _raised(answer: Response | BrokerError) -> Response:
    if isinstance(answer, BrokerError):
        raise answer
    return answer


def _steps(provider: Provider) -> Sequence[StepRoute]:
    return provider.steps() if supports(provider, Steps) else ()


def _callbacks(provider: Provider) -> Sequence[CallbackRoute]:
    return provider.callbacks() if supports(provider, Callbacks) else ()
