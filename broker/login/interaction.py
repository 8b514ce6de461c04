"""The two seams between the OIDC front and the login hub, and the one rule they share.

``broker.oidc`` validates an authorization request into an ``AuthRequest``; when the
browser's session does not satisfy it, it hands it to the ``LoginStarter`` (the login
hub). When a login completes, the hub hands the request and the session back to the
``AuthorizationFront``, which issues the code. Neither side imports the other.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Protocol

from fastapi import Request, Response

from broker.model import AuthRequest, BrokerSession, ClientInfo, acr_rank


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


class AuthorizationFront(Protocol):
    """Implemented by ``broker.oidc``: answers the RP once a login is settled."""

    def finish(self, request: Request, auth: AuthRequest, session: BrokerSession) -> Response:
        """Issue the authorization code for ``auth`` (after consent if asked) and redirect."""

    def deny(self, request: Request, auth: AuthRequest, error: str,
             description: str | None = None) -> Response:
        """Redirect to the RP with an OIDC error (``state`` and RFC 9207 ``iss`` included)."""

    def client_info(self, client_id: str) -> ClientInfo | None:
        """What policy may know of a registered client (None if unknown)."""

    def end_session(self, sid: str, *, reason: str,
                    client_id: str | None = None) -> BrokerSession | None:
        """End a broker session for every RP (tokens revoked); returns what ended."""


class LoginStarter(Protocol):
    """Implemented by ``broker.login.hub``: takes the browser to the login page."""

    def start(self, request: Request, auth: AuthRequest, reason: Unmet) -> Response:
        """Remember ``auth`` for this browser and show the chooser (or the hinted provider)."""

    def begin(self, request: Request, auth: AuthRequest, reason: Unmet) -> Response:
        """``start`` for ``/authorize`` (in a worker thread): a hinted provider that leaves
        the site at once (``providers.base.LeavesOnStart``) is started in the same
        response and the same thread."""

    def settle(self, request: Request, auth: AuthRequest, session: BrokerSession) -> Response:
        """A session already satisfies ``auth``: settle the role it acts in, then finish."""

    async def provider_logout(self, request: Request, ended: list[BrokerSession],
                              return_to: str) -> Response | None:
        """Start provider-side logout (SAML SLO) for the logins of ended sessions."""
