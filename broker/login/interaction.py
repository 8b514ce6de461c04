"""The interaction policy: what a login still needs, evaluated once per step, in one place.

Like node-oidc-provider's interaction policy, every request that could end a login asks
``next_step`` once (``/authorize`` with a session, the end of a login, the role choice)
and does what it says: sign in, sign in more strongly (step-up), choose the role to act
in, consent, or issue the code. Nothing loops back through the OIDC front.

The hub carries the answer out (``broker.login.hub``); ``Authorizer`` is what it needs
of the OIDC side to answer the RP, implemented by ``broker.oidc.core``. Neither imports
the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from fastapi import Request, Response

from broker.login.roles import role_key, role_options
from broker.model import ActingRole, AuthRequest, BrokerSession, ClientInfo, acr_rank
from broker.policy.schema import Requirement


class Unmet(StrEnum):
    """Why a session does not satisfy a request."""

    LOGIN = "login"  # no session, prompt=login, or max_age exceeded
    STEP_UP = "step_up"  # a session exists but its privilege or acr is too low


def unmet(session: BrokerSession | None, auth: AuthRequest, now: datetime,
          *, fresh: bool = False) -> Unmet | None:
    """What a session lacks for this request, or None if it is enough.

    ``fresh`` is True right after a login for this very request, where ``prompt=login``
    has just been honoured and must not ask again.
    """
    if session is None or now >= session.expires_at:
        return Unmet.LOGIN
    current = session.current
    if not fresh and "login" in auth.prompt:
        return Unmet.LOGIN
    if auth.max_age is not None:
        age = (now - current.event.auth_time).total_seconds()
        if age > auth.max_age:
            return Unmet.LOGIN
    privilege = current.decision.privilege
    filing_accepted = (privilege is not None and auth.accept_filed_with_ordinario
                       and filing_pending(session) is not None)
    if (privilege is None or not privilege.satisfies(auth.required_privilege)) \
            and not filing_accepted:
        return Unmet.STEP_UP
    if auth.required_acr is not None and (
        acr_rank(current.decision.acr or current.event.acr) < acr_rank(auth.required_acr)
    ):
        return Unmet.STEP_UP
    return None


def filing_pending(session: BrokerSession) -> str | None:
    """The pending ordinario->dispositivo conversion of the current login, if any.

    DOMAIN.md: an application can be *filed* with an ordinario PIN to stop deadlines
    running; it is processed only after conversion. This is that distinct, explicit
    grant: only RPs registered with ``accept_filed_with_ordinario`` take it, and the
    privilege stays ``ordinario``.
    """
    event = session.current.event
    if event.attributes.get("pin_conversion") != "pending":
        return None
    return str(event.attributes.get("pin_conversion_id") or "")


class Prompt(StrEnum):
    """What a login still needs before the RP gets its code."""

    LOGIN = "login"  # sign in (or again: prompt=login, max_age)
    STEP_UP = "step_up"  # sign in more strongly: privilege or acr too low
    NO_ROLE = "no_role"  # no role of this person fits the RP: refused
    CHOOSE_ROLE = "choose_role"  # several roles fit: the person picks one
    CONSENT = "consent"  # prompt=consent
    ISSUE = "issue"  # nothing: issue the code


@dataclass(frozen=True)
class Next:
    """``next_step``'s answer; ``role`` is set when one role is to be taken silently."""

    prompt: Prompt
    role: ActingRole | None = None
    options: tuple[ActingRole, ...] = ()


def next_step(session: BrokerSession | None, auth: AuthRequest, now: datetime, *,
              requirement: Requirement | None, fresh: bool, role_chosen: bool = False
              ) -> Next:
    """The one evaluation of what ``session`` still lacks for ``auth``.

    - ``fresh``: a login for this very request has just completed (``prompt=login`` is
      honoured, never asked again).
    - The role: no fitting role refuses; single sign-on keeps the session's role when it
      fits, unless the RP sent ``prompt=select_account``; one fitting role is taken
      silently; several are offered. ``role_chosen``: the person has just picked one.
    """
    lacking = unmet(session, auth, now, fresh=fresh)
    if lacking is not None:
        return Next(Prompt.LOGIN if lacking is Unmet.LOGIN else Prompt.STEP_UP)
    assert session is not None
    if not role_chosen:
        options = tuple(role_options(session.current.decision, requirement))
        if not options:
            return Next(Prompt.NO_ROLE)
        current = role_key(session.role or ActingRole(kind="self"))
        keeps = (not fresh and "select_account" not in auth.prompt
                 and current in {role_key(r) for r in options})
        if not keeps:
            if len(options) > 1:
                return Next(Prompt.CHOOSE_ROLE, options=options)
            only = options[0]
            if only.kind != "self" or session.role is not None:
                # (a plain citizen acting for themselves has no role to record)
                return Next(Prompt.CONSENT if "consent" in auth.prompt else Prompt.ISSUE,
                            role=only)
    return Next(Prompt.CONSENT if "consent" in auth.prompt else Prompt.ISSUE)


class Authorizer(Protocol):
    """Implemented by ``broker.oidc.core``: what the hub needs to answer the RP."""

    def client_info(self, client_id: str) -> ClientInfo | None:
        """What policy may know of a registered client (None if unknown)."""

    def issue(self, request: Request, auth: AuthRequest, session: BrokerSession) -> Response:
        """Issue the authorization code for ``auth`` and redirect to the RP."""

    def consent(self, request: Request, auth: AuthRequest, session: BrokerSession
                ) -> Response:
        """Ask the person to consent (``prompt=consent``); the answer issues or denies."""

    def deny(self, request: Request, auth: AuthRequest, error: str,
             description: str | None = None) -> Response:
        """Redirect to the RP with an OIDC error (``state`` and RFC 9207 ``iss`` included)."""

    def end_session(self, sid: str, *, reason: str,
                    client_id: str | None = None) -> BrokerSession | None:
        """End a broker session for every RP (tokens revoked); returns what ended."""
