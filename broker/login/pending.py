"""Logins in progress: kept per browser, found again only by that browser.

A pending login (``tx``) is the validated ``AuthRequest`` plus the browser it belongs to:
the random ``varco_browser`` cookie (SameSite=Lax). Every step of the login loads it
with ``load``, which refuses another browser's ``tx`` (``LoginExpired``).

A provider whose credential source answers with a POST from its own site (a SAML IdP)
gets no SameSite=Lax cookie of ours on that POST. For those returns the hub sets a
``varco_return`` cookie when the provider starts (SameSite=None, Secure, HttpOnly,
scoped to the return path alone) naming the browser; ``load`` accepts it as the
browser's claim and *adopts* the session and language kept with the pending login, so
the login completes in that very request. A browser that refused the Secure cookie
(plain http off localhost) has its POST parked server-side under a single-use key and
re-entered as a GET of ours, which carries the cookies (``park``/``unpark``).
"""

from __future__ import annotations

import hmac
import json
import secrets
from urllib.parse import urlencode

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict

from broker.errors import LoginExpired
from broker.http.cookies import set_cookie
from broker.http.pages import BROWSER_COOKIE, Renderer
from broker.login.interaction import Unmet
from broker.login.session import SessionManager
from broker.model import AuthRequest
from broker.store.base import EphemeralStore

NS = "tx"
NS_PARKED = "xsite-post"
PARK_TTL = 120
RETURN_COOKIE = "varco_return"


class PendingLogin(BaseModel):
    """A login in progress: the request, the browser it belongs to, why it was needed,
    and what a cross-site return adopts (the browser's session id and language)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    auth: AuthRequest
    browser: str
    reason: Unmet
    sid: str = ""
    lang: str = ""


class PendingLogins:
    """The store of pending logins and the browser binding around it (worker threads)."""

    def __init__(self, ephemeral: EphemeralStore, renderer: Renderer,
                 sessions: SessionManager, ttl: int):
        self.ephemeral = ephemeral
        self.renderer = renderer
        self.sessions = sessions
        self.ttl = ttl

    def new(self, request: Request, auth: AuthRequest, reason: Unmet) -> PendingLogin:
        """A pending login for this browser (not yet stored)."""
        return PendingLogin(
            auth=auth, browser=self.renderer.browser_id(request), reason=reason,
            sid=(request.cookies.get(self.sessions.COOKIE)
                 or getattr(request.state, "varco_sid", None) or ""),
            lang=self.renderer.language(request, auth.ui_locales))

    def keep(self, pending: PendingLogin) -> None:
        self.ephemeral.put(NS, pending.auth.tx_id, pending.model_dump_json(), self.ttl)

    def restamp(self, request: Request, pending: PendingLogin) -> PendingLogin:
        """Keep what a cross-site return adopts up to date (the language may have been
        switched on the chooser since ``/authorize``); writes only when it changed."""
        fresh = self.new(request, pending.auth, pending.reason)
        if (fresh.sid, fresh.lang) != (pending.sid, pending.lang):
            pending = pending.model_copy(update={"sid": fresh.sid, "lang": fresh.lang})
            self.keep(pending)
        return pending

    def drop(self, tx_id: str) -> None:
        self.ephemeral.delete(NS, tx_id)

    def load(self, request: Request, tx_id: str | None, *, claim: str | None = None
             ) -> PendingLogin:
        """This browser's pending login ``tx_id``; ``LoginExpired`` if unknown, expired or
        another browser's. ``claim``: the return cookie of a cross-site POST, which must
        name the browser the login belongs to; then its session and language are adopted.

        The loaded login is kept on the request (``varco_auth``): pages rendered later in
        the request (an error page) read its language and ``tx`` without a store call.
        """
        if not tx_id or len(tx_id) > 128:
            raise LoginExpired("missing tx")
        raw = self.ephemeral.get(NS, tx_id)
        if raw is None:
            raise LoginExpired("unknown or expired tx")
        pending = PendingLogin.model_validate_json(raw)
        browser = claim if claim is not None else request.cookies.get(BROWSER_COOKIE, "")
        if not pending.browser or not hmac.compare_digest(pending.browser.encode(),
                                                          browser.encode()):
            raise LoginExpired("tx belongs to another browser")
        if claim is not None:
            request.state.browser_id = pending.browser  # Renderer: CSRF, no new cookie
            request.state.varco_sid = pending.sid
            request.state.varco_lang = pending.lang
        request.state.varco_auth = pending.auth
        return pending

    # --- cross-site returns ---------------------------------------------------------------
    def expect_return(self, request: Request, response: Response, path: str) -> None:
        """Let a cross-site POST to ``path`` name this browser (see the module docstring)."""
        set_cookie(response, RETURN_COOKIE, self.renderer.browser_id(request),
                   max_age=self.ttl, path=path, secure=True, httponly=True, samesite="none")

    @staticmethod
    def claim(request: Request) -> str | None:
        """The browser a cross-site POST's return cookie names; None when our own cookie
        came (not cross-site) or the return cookie is absent or malformed."""
        if request.cookies.get(BROWSER_COOKIE):
            return None
        value = request.cookies.get(RETURN_COOKIE, "")
        return value if 16 <= len(value) <= 64 else None

    def park(self, request: Request, fields: dict[str, str]) -> Response:
        """Park a cross-site POST and send the browser to ``<path>?resume=<key>``."""
        key = secrets.token_urlsafe(24)
        self.ephemeral.put(NS_PARKED, key, json.dumps(fields), PARK_TTL)
        return RedirectResponse(f"{request.url.path}?{urlencode({'resume': key})}",
                                status_code=303)

    def unpark(self, key: str) -> dict[str, str] | None:
        """The parked fields, once; None when unknown, expired or already used."""
        if not key or len(key) > 64:
            return None
        raw = self.ephemeral.take(NS_PARKED, key)
        return dict(json.loads(raw)) if raw else None
