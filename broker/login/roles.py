"""Choosing the role a session acts in, after login and later without a new login.

A person may act for themselves, as an intermediary for a company, as the operator of a
comune, or as the delegate of a citizen: one role per abilitazione the policy granted,
plus *for myself*. After a login (``after_login``, called by the login hub) a person
with more than one role that the relying party accepts picks one on ``/roles/choose``;
with only one it is taken silently. An RP narrows the choice through its requirements
(policy ``requirements``: the ISEE desk accepts only ISEE operators, not *for myself*).

Switching later needs no new login: ``/roles`` lists the session's roles and changes the
role; the RP then sends a new authorization request (``prompt=none`` is enough) and the
new tokens carry the new role. The session and the tokens carry the choice
(``BrokerSession.role``; claims in ``broker.oidc.claims``).

``load_facts`` is the hub's hook to the directory: it fails closed (a readable page)
when the directory is down and the request needs it (an RP with an abilitazione
requirement, or the ``abilitazioni`` scope); plain citizen logins go on without roles.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

from fastapi import APIRouter, FastAPI, Form, Request, Response
from fastapi.responses import RedirectResponse

from broker.context import BrokerContext
from broker.directory.base import Directory, DirectoryUnavailable
from broker.directory.model import SERVICES
from broker.errors import AccessDenied, BrokerError, LoginExpired, Text
from broker.fiscal_code import mask
from broker.login.interaction import Unmet
from broker.model import ActingRole, AuthRequest, BrokerSession, Decision
from broker.oidc.keys import b64url
from broker.policy.engine import fits
from broker.policy.schema import Requirement

log = logging.getLogger("varco.roles")


class NoFittingRole(AccessDenied):
    code = "no_fitting_role"
    message = Text(
        "Questo servizio è riservato a chi ha un'abilitazione specifica (per esempio operatore "
        "ISEE di un comune convenzionato), che non risulta per te.",
        "This service is reserved for people with a specific authorisation (for example "
        "ISEE operator of a comune with a convenzione), which you do not hold.")
NS_TX = "tx"  # the login hub's pending logins


def role_key(role: ActingRole) -> str:
    """A stable id for one option (the form posts it back)."""
    raw = role.abilitazione.model_dump_json() if role.abilitazione else "self"
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


def role_options(decision: Decision, requirement: Requirement | None) -> list[ActingRole]:
    """The roles this login may act in for an RP: *for myself* and each abilitazione that fits."""
    needs_role = requirement is not None and requirement.abilitazione is not None
    out = [] if needs_role else [ActingRole(kind="self")]
    for abil in decision.abilitazioni:
        if fits(requirement, abil):
            out.append(ActingRole(kind=abil.kind, abilitazione=abil))  # type: ignore[arg-type]
    return out


def label(role: ActingRole, lang: str) -> dict[str, Any]:
    """What the choice page shows for one role: a title and the services."""
    a = role.abilitazione
    if a is None:
        return {"title": Text("Per me stesso", "For myself").get(lang), "services": []}
    s = a.scope
    if a.kind == "intermediary":
        title = Text(f"Intermediario ({s.get('as', '')}) per l'azienda {s.get('company', '')}",
                     f"Intermediary ({s.get('as', '')}) for company {s.get('company', '')}")
    elif a.kind == "municipal_operator":
        title = Text(f"Operatore del comune {s.get('comune', '')}",
                     f"Operator of comune {s.get('comune', '')}")
    else:
        title = Text(f"Delegato di {s.get('delegator', '')} (circolare {s.get('circular', '')})",
                     f"Delegate of {s.get('delegator', '')} (circular {s.get('circular', '')})")
    idx = 1 if lang == "en" else 0
    return {"title": title.get(lang),
            "services": [SERVICES[x][idx] if x in SERVICES else x for x in a.services]}


class RoleHub:
    """The role pages and the hooks the login hub calls."""

    def __init__(self, ctx: BrokerContext, directory: Directory):
        self.ctx = ctx
        self.directory = directory
        r = self.router = APIRouter()
        r.add_api_route("/roles/choose", self.choose_page, methods=["GET"])
        r.add_api_route("/roles/choose", self.choose, methods=["POST"])
        r.add_api_route("/roles", self.switch_page, methods=["GET"])
        r.add_api_route("/roles", self.switch, methods=["POST"])

    # --- hooks for the login hub ------------------------------------------------------
    def load_facts(self, auth: AuthRequest, fiscal_code: str) -> dict[str, Any]:
        """Directory facts for the policy input; fail closed only when this RP needs them."""
        try:
            return self.directory.facts(fiscal_code).as_policy_facts()
        except Exception as exc:
            needed = self.ctx.policy.engine.needs_directory(auth.client_id, auth.scopes)
            log.warning("directory %s unavailable for cf=%s client=%s needed=%s: %s",
                        self.directory.name, mask(fiscal_code), auth.client_id, needed,
                        type(exc).__name__)
            self.ctx.audit.record("directory.unavailable", client_id=auth.client_id,
                                  needed=needed, error=type(exc).__name__)
            if needed:
                if isinstance(exc, DirectoryUnavailable):
                    raise
                raise DirectoryUnavailable(f"directory error: {type(exc).__name__}") from exc
            return {}

    def after_login(self, request: Request, auth: AuthRequest,
                    session: BrokerSession) -> Response:
        """Right after a login: pick the only role silently, or ask among several."""
        return self.settle(request, auth, session, fresh=True)

    def settle(self, request: Request, auth: AuthRequest, session: BrokerSession, *,
               fresh: bool) -> Response:
        """The role this session acts in for ``auth``'s RP, then ``front.finish``.

        - no role fits the RP's requirement: refused (a readable page; ``access_denied``
          to the RP with ``prompt=none``), never a token without what the RP needs;
        - single sign-on (``fresh`` False) keeps the session's role when it fits, unless
          the RP sent ``prompt=select_account``;
        - one fitting role is taken silently; several are offered on ``/roles/choose``
          (``account_selection_required`` with ``prompt=none``).
        """
        options = self._options(session, auth.client_id)
        if not options:
            self.ctx.audit.record("roles.no_fitting_role", client_id=auth.client_id,
                                  fiscal_code=session.fiscal_code)
            if "none" in auth.prompt:
                return self.ctx.front.deny(request, auth, "access_denied",
                                           "no role of this person fits the client")
            self.ctx.login.remember(request, auth, Unmet.STEP_UP)  # type: ignore[attr-defined]
            return self._fail(request, NoFittingRole("no role fits the RP"), auth.tx_id)
        current = role_key(session.role or ActingRole(kind="self"))
        keys = [role_key(r) for r in options]
        if not fresh and current in keys and "select_account" not in auth.prompt:
            self.ctx.ephemeral.delete(NS_TX, auth.tx_id)
            return self.ctx.front.finish(request, auth, session)
        if len(options) == 1:
            if options[0].kind != "self" or session.role is not None:
                session = self._set_role(session, options[0])
            # else: a plain citizen acting for themselves: no role to record
            self.ctx.ephemeral.delete(NS_TX, auth.tx_id)
            return self.ctx.front.finish(request, auth, session)
        if "none" in auth.prompt:
            return self.ctx.front.deny(request, auth, "account_selection_required",
                                       "choose the role to act in")
        self.ctx.login.remember(request, auth, Unmet.LOGIN)  # type: ignore[attr-defined]
        return RedirectResponse(f"/roles/choose?tx={auth.tx_id}", status_code=303)

    # --- helpers ----------------------------------------------------------------------
    def _options(self, session: BrokerSession, client_id: str | None) -> list[ActingRole]:
        requirement = self.ctx.policy.engine.requirement_for(client_id) if client_id else None
        return role_options(session.current.decision, requirement)

    def _set_role(self, session: BrokerSession, role: ActingRole) -> BrokerSession:
        if role.kind == "delegate":
            key = hmac.new(self.ctx.secret_key, b"actor|" + session.fiscal_code.encode(),
                           hashlib.sha256).digest()
            role = role.model_copy(update={"actor_key": b64url(key)})
        updated = session.model_copy(update={"role": role})
        self.ctx.sessions.update(updated)
        self.ctx.audit.record("session.role", sid_hash=hashlib.sha256(
            session.sid.encode()).hexdigest()[:16], fiscal_code=session.fiscal_code,
            role=role.kind, scope=role.abilitazione.scope if role.abilitazione else {})
        return updated

    def _page(self, request: Request, options: list[ActingRole], current: str | None,
              **extra: Any) -> Response:
        lang = self.ctx.templates.language(request)
        roles = [{"key": role_key(r), **label(r, lang), "current": role_key(r) == current}
                 for r in options]
        return self.ctx.templates.render(request, "roles/choose.html",
                                         {"roles": roles, **extra})

    def _pending(self, request: Request, tx: str) -> tuple[AuthRequest, BrokerSession]:
        auth = self.ctx.login.pending(request, tx)  # type: ignore[attr-defined]
        session = self.ctx.sessions.current(request)
        if session is None:
            raise LoginExpired("role choice without a session")
        return auth, session

    def _fail(self, request: Request, error: BrokerError, tx: str | None = None) -> Response:
        return self.ctx.login.fail(request, error, tx)  # type: ignore[attr-defined]

    # --- routes: the choice right after login ----------------------------------------
    def choose_page(self, request: Request, tx: str = "") -> Response:
        try:
            auth, session = self._pending(request, tx)
        except BrokerError as error:
            return self._fail(request, error)
        return self._page(request, self._options(session, auth.client_id), None, tx=tx,
                          client_name=auth.client_name, action="/roles/choose")

    def choose(self, request: Request, tx: str = Form(""), role: str = Form(""),
               csrf_token: str = Form("")) -> Response:
        try:
            self.ctx.templates.verify_csrf(request, csrf_token)
            auth, session = self._pending(request, tx)
            chosen = next((r for r in self._options(session, auth.client_id)
                           if hmac.compare_digest(role_key(r), role)), None)
            if chosen is None:
                raise LoginExpired("unknown role option")
        except BrokerError as error:
            return self._fail(request, error)
        session = self._set_role(session, chosen)
        self.ctx.ephemeral.delete(NS_TX, auth.tx_id)
        return self.ctx.front.finish(request, auth, session)

    # --- routes: switching later, without a new login --------------------------------
    def switch_page(self, request: Request) -> Response:
        session = self.ctx.sessions.current(request)
        if session is None:
            return self._fail(request, LoginExpired("no session to switch role in"))
        current = role_key(session.role) if session.role else role_key(ActingRole())
        return self._page(request, self._options(session, None), current, action="/roles",
                          switching=True)

    def switch(self, request: Request, role: str = Form(""),
               csrf_token: str = Form("")) -> Response:
        try:
            self.ctx.templates.verify_csrf(request, csrf_token)
            session = self.ctx.sessions.current(request)
            if session is None:
                raise LoginExpired("no session to switch role in")
            chosen = next((r for r in self._options(session, None)
                           if hmac.compare_digest(role_key(r), role)), None)
            if chosen is None:
                raise LoginExpired("unknown role option")
        except BrokerError as error:
            return self._fail(request, error)
        session = self._set_role(session, chosen)
        return self._page(request, self._options(session, None), role_key(chosen),
                          action="/roles", switching=True, switched=True)


def install(app: FastAPI, ctx: BrokerContext) -> APIRouter:
    """Build the directory, the role pages, the directory admin API and the policy watcher.

    ``broker.app`` calls this once: ``app.include_router(roles.install(app, ctx))``. The
    returned router's lifespan starts and stops the policy folder watcher.
    """
    from contextlib import asynccontextmanager

    from broker.admin.directory import directory_admin_router
    from broker.directory.factory import build_directory
    from broker.policy.watch import PolicyWatcher

    directory = build_directory(ctx.settings, ctx.db, ctx.clock)
    hub = RoleHub(ctx, directory)
    app.state.directory = directory
    app.state.roles = hub
    watcher = PolicyWatcher(ctx.policy, ctx.audit.record)
    app.state.policy_watcher = watcher

    @asynccontextmanager
    async def lifespan(_app: Any):  # type: ignore[no-untyped-def]
        watcher.start()
        try:
            yield
        finally:
            watcher.stop()

    router = APIRouter(lifespan=lifespan)
    router.include_router(hub.router)
    router.include_router(directory_admin_router(directory))
    return router
