"""The broker session: one per browser, shared by every RP (single sign-on).

The cookie carries only a random id; the state lives in the ephemeral store, so any
broker process can serve the next request. Step-up appends a login record; the
strongest record is the one tokens describe.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta

from fastapi import Request, Response

from broker.clock import Clock
from broker.config import Settings
from broker.http.cookies import set_cookie
from broker.model import BrokerSession, LoginRecord
from broker.store.base import EphemeralStore

NS = "session"


class SessionManager:
    COOKIE = "varco_session"

    def __init__(self, ephemeral: EphemeralStore, clock: Clock, settings: Settings,
                 *, secure: bool):
        self.ephemeral = ephemeral
        self.clock = clock
        self.lifetime = settings.session.lifetime
        self.secure = secure

    def by_sid(self, sid: str) -> BrokerSession | None:
        raw = self.ephemeral.get(NS, sid)
        if raw is None:
            return None
        session = BrokerSession.model_validate_json(raw)
        if self.clock.now() >= session.expires_at:
            return None
        return session

    def current(self, request: Request) -> BrokerSession | None:
        # ``varco_sid``: a cross-site return the login hub adopted (``LoginHub.adopt``).
        sid = request.cookies.get(self.COOKIE) or getattr(request.state, "varco_sid", None)
        if not sid or len(sid) > 128:
            return None
        return self.by_sid(sid)

    def add_login(self, request: Request, record: LoginRecord) -> BrokerSession:
        """Add a login to this browser's session, or start a new one.

        A step-up by the same person keeps the session id (tokens and logout are bound to
        it). A login for a different person never joins an existing session: the old one
        ends and a new one, with a new id, begins.
        """
        existing = self.current(request)
        now = self.clock.now()
        # The decision's trace is in the audit trail; the session keeps what tokens and
        # role choices need, and stays small: it is read on every request that has it.
        record = record.model_copy(update={
            "decision": record.decision.model_copy(update={"trace": ()})})
        if existing is not None and existing.subject == record.identity.subject:
            session = existing.model_copy(update={
                "logins": (*existing.logins, record),
            })
        else:
            if existing is not None:
                self.ephemeral.delete(NS, existing.sid)
            session = BrokerSession(
                sid=secrets.token_urlsafe(32), created_at=now,
                expires_at=now + timedelta(seconds=self.lifetime), logins=(record,))
        self._save(session)
        return session

    def add_client(self, session: BrokerSession, client_id: str) -> BrokerSession:
        """Record that ``client_id`` got a code from ``session`` (logout must reach it)."""
        if client_id in session.clients:
            return session
        updated = session.model_copy(update={"clients": (*session.clients, client_id)})
        self._save(updated)
        return updated

    def update(self, session: BrokerSession) -> None:
        """Store a changed session (e.g. the role it acts in) under its own id and expiry."""
        self._save(session)

    def end(self, sid: str) -> BrokerSession | None:
        raw = self.ephemeral.take(NS, sid)
        return BrokerSession.model_validate_json(raw) if raw else None

    def _save(self, session: BrokerSession) -> None:
        ttl = max(1, int((session.expires_at - self.clock.now()).total_seconds()))
        self.ephemeral.put(NS, session.sid, session.model_dump_json(), ttl)

    def set_cookie(self, response: Response, session: BrokerSession) -> None:
        set_cookie(response, self.COOKIE, session.sid, httponly=True, secure=self.secure,
                   samesite="lax", path="/", max_age=self.lifetime)

    def clear_cookie(self, response: Response) -> None:
        response.delete_cookie(self.COOKIE, path="/", secure=self.secure, httponly=True,
                               samesite="lax")


class ProviderSessions:
    """The session API a provider's own pages get (``providers.base.Sessions``)."""

    def __init__(self, sessions: SessionManager,
                 end_session: Callable[..., BrokerSession | None]):
        self._sessions = sessions
        self._end_session = end_session  # ``OidcCore.end_session``: tokens, back channel

    def current(self, request: Request) -> BrokerSession | None:
        return self._sessions.current(request)

    def end(self, request: Request, response: Response, *, reason: str) -> None:
        session = self._sessions.current(request)
        if session is not None:
            self._end_session(session.sid, reason=reason)
        self._sessions.clear_cookie(response)
