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

Which role a login takes is decided with the rest of the login's next step, once
(``broker.login.interaction.next_step``); this module holds the options, their labels,
and the pages, which hand the choice back to the hub.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response

from broker.directory.model import SERVICES
from broker.errors import AccessDenied, LoginExpired, Text
from broker.http.forms import form_pairs
from broker.http.threads import in_thread
from broker.model import ActingRole, BrokerSession, Decision
from broker.policy.engine import fits
from broker.policy.schema import Requirement

if TYPE_CHECKING:
    from broker.login.hub import LoginHub

class NoFittingRole(AccessDenied):
    code = "no_fitting_role"
    message = Text(
        "Questo servizio è riservato a chi ha un'abilitazione specifica (per esempio operatore "
        "ISEE di un comune convenzionato), che non risulta per te.",
        "This service is reserved for people with a specific authorisation (for example "
        "ISEE operator of a comune with a convenzione), which you do not hold.")


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
            out.append(ActingRole.model_validate({"kind": abil.kind, "abilitazione": abil}))
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


class RolePages:
    """``/roles/choose`` (right after a login) and ``/roles`` (switching later)."""

    def __init__(self, hub: LoginHub):
        self.hub = hub
        r = self.router = APIRouter()
        r.add_api_route("/roles/choose", self.choose_page, methods=["GET"])
        r.add_api_route("/roles/choose", self.choose, methods=["POST"])
        r.add_api_route("/roles", self.switch_page, methods=["GET"])
        r.add_api_route("/roles", self.switch, methods=["POST"])

    def _page(self, request: Request, options: list[ActingRole], current: str | None,
              **extra: Any) -> Response:
        pages = self.hub.pages
        lang = pages.language(request)
        roles = [{"key": role_key(r), **label(r, lang), "current": role_key(r) == current}
                 for r in options]
        return pages.page(request, "roles/choose.html", {"roles": roles, **extra})

    @staticmethod
    def _pick(options: list[ActingRole], key: str) -> ActingRole:
        chosen = next((r for r in options if hmac.compare_digest(role_key(r), key)), None)
        if chosen is None:
            raise LoginExpired("unknown role option")
        return chosen

    def _session(self, request: Request) -> BrokerSession:
        session = self.hub.sessions.current(request)
        if session is None:
            raise LoginExpired("no session to choose a role in")
        return session

    # --- the choice right after login ------------------------------------------------
    async def choose_page(self, request: Request) -> Response:
        return await in_thread(self._choose_page, request, request.query_params.get("tx"))

    def _choose_page(self, request: Request, tx: str | None) -> Response:
        auth = self.hub.pending.load(request, tx).auth
        session = self._session(request)
        return self._page(request, self.hub.role_options(session, auth.client_id), None,
                          tx=auth.tx_id, client_name=auth.client_name,
                          action="/roles/choose")

    async def choose(self, request: Request) -> Response:
        form = dict(await form_pairs(request))
        self.hub.pages.verify_csrf(request, form.get("csrf_token"))
        return await in_thread(self._choose, request, form)

    def _choose(self, request: Request, form: dict[str, str]) -> Response:
        pending = self.hub.pending.load(request, form.get("tx"))
        session = self._session(request)
        chosen = self._pick(self.hub.role_options(session, pending.auth.client_id),
                            form.get("role", ""))
        return self.hub.role_chosen(request, pending, session, chosen)

    # --- switching later, without a new login ----------------------------------------
    async def switch_page(self, request: Request) -> Response:
        return await in_thread(self._switch_page, request)

    def _switch_page(self, request: Request) -> Response:
        session = self._session(request)
        current = role_key(session.role or ActingRole())
        return self._page(request, self.hub.role_options(session, None), current,
                          action="/roles", switching=True)

    async def switch(self, request: Request) -> Response:
        form = dict(await form_pairs(request))
        self.hub.pages.verify_csrf(request, form.get("csrf_token"))
        return await in_thread(self._switch, request, form)

    def _switch(self, request: Request, form: dict[str, str]) -> Response:
        session = self._session(request)
        options = self.hub.role_options(session, None)
        chosen = self._pick(options, form.get("role", ""))
        self.hub.set_role(session, chosen)
        return self._page(request, options, role_key(chosen), action="/roles",
                          switching=True, switched=True)
