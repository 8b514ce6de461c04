"""OIDC Back-Channel Logout 1.0 (and the URLs of Front-Channel Logout 1.0).

When a broker session ends, every RP that joined it and registered a
``backchannel_logout_uri`` gets a POST of a signed ``logout_token`` (``typ:
logout+jwt``; ``iss``, ``aud``, ``iat``, ``exp``, ``jti``, the logout ``events`` member,
``sid`` and ``sub``; never a ``nonce``). RPs with only a ``frontchannel_logout_uri`` are
loaded in iframes on the signed-out page instead (``frontchannel_urls``).

A session ends through ``OidcFront.end_session`` for every cause: RP-initiated logout,
IdP-initiated logout (SAML SLO through the login hub), admin revocation
(``POST /admin/sessions/{sid}/revoke``, scope ``admin:sessions``); and by
expiry, which nobody calls: for that, each session an RP with a back channel joined is
written to a small table of the durable database (``logout_watch``), and a periodic
sweep takes the expired rows (``DELETE ... RETURNING``: with several processes on one
database, each row goes to exactly one of them) and notifies their RPs.

Deliveries never run on the request path: a sender thread POSTs them, retrying a
failed one a few times with growing pauses (``RETRY_DELAYS``). Each outcome is counted
(``varco_backchannel_logout_total``) and audited. Pending deliveries live in the
process's memory: on a graceful stop the sender tries what is left once; a crash loses
them (the RP's own session lifetime is the backstop).
"""

from __future__ import annotations

import heapq
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx
import jwt
from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Column, Index, Table, Text

from broker.errors import NotFound
from broker.model import BrokerSession
from broker.oidc.claims import subject
from broker.oidc.clients import Client
from broker.store.base import serialize
from broker.store.schema import BROKER, DOUBLE

if TYPE_CHECKING:
    from broker.admin.auth import AdminAuth
    from broker.oidc.core import OidcCore

log = logging.getLogger("varco.oidc.backchannel")
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_LIFETIME = 120
RETRY_DELAYS = (1.0, 5.0, 30.0)  # pauses before the 2nd, 3rd and 4th attempt
POST_TIMEOUT = 5.0

NS_SID = "oidc:sid"  # public sid -> cookie sid, written by the OIDC front


class RevokeSession(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: str = Field(min_length=3, max_length=500)


# Sessions some RP joined with a logout URI, until they expire: the expiry sweep tells
# those RPs. On SQLite, REAL as files made before this declaration have it.
LOGOUT_WATCH = Table(
    "logout_watch", BROKER,
    Column("psid", Text, primary_key=True),
    Column("expires_at", DOUBLE, nullable=False),
    Column("clients", Text, nullable=False),
)
Index("logout_watch_expires", LOGOUT_WATCH.c.expires_at)


@dataclass(order=True)
class Delivery:
    due: float
    attempt: int = field(compare=False)
    client_id: str = field(compare=False)
    uri: str = field(compare=False)
    token: str = field(compare=False, repr=False)
    reason: str = field(compare=False)


class Sender:
    """The thread that POSTs logout tokens, with retries; ``start``/``stop`` by ops."""

    def __init__(self, audit: Callable[..., Any], post: Callable[[str, str], int] | None = None):
        self.audit = audit
        self._post = post or _post_form
        self._queue: list[Delivery] = []
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def submit(self, client_id: str, uri: str, token: str, reason: str) -> None:
        with self._cond:
            heapq.heappush(self._queue, Delivery(time.monotonic(), 0, client_id, uri, token,
                                                 reason))
            self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def start(self) -> None:
        if self._thread is None:
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="backchannel-logout",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Try every delivery still queued once (graceful shutdown), then stop."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=POST_TIMEOUT * 3)
            self._thread = None

    def _next(self) -> Delivery | None:
        with self._cond:
            while True:
                if self._stopping:
                    return heapq.heappop(self._queue) if self._queue else None
                if self._queue:
                    wait = self._queue[0].due - time.monotonic()
                    if wait <= 0:
                        return heapq.heappop(self._queue)
                    self._cond.wait(wait)
                else:
                    self._cond.wait()

    def _run(self) -> None:
        while True:
            delivery = self._next()
            if delivery is None:
                return
            try:
                self._attempt(delivery)
            except Exception:  # the sender must outlive any surprise
                log.exception("back-channel logout: unexpected error")

    def _attempt(self, d: Delivery) -> None:
        from broker.ops.metrics import METRICS

        try:
            status = self._post(d.uri, d.token)
            ok, why = status in (200, 204), f"http {status}"
        except httpx.HTTPError as exc:
            ok, why = False, type(exc).__name__
        if ok:
            METRICS.backchannel.labels("delivered").inc()
            self.audit("oidc.backchannel_logout", client_id=d.client_id, ok=True,
                       attempts=d.attempt + 1, reason=d.reason)
            return
        if d.attempt < len(RETRY_DELAYS) and not self._stopping:
            METRICS.backchannel.labels("retried").inc()
            log.warning("back-channel logout to %s failed (%s), retrying", d.client_id, why)
            with self._cond:
                heapq.heappush(self._queue, Delivery(
                    time.monotonic() + RETRY_DELAYS[d.attempt], d.attempt + 1, d.client_id,
                    d.uri, d.token, d.reason))
            return
        METRICS.backchannel.labels("failed").inc()
        log.error("back-channel logout to %s failed for good (%s)", d.client_id, why)
        self.audit("oidc.backchannel_logout", client_id=d.client_id, ok=False,
                   attempts=d.attempt + 1, error=why, reason=d.reason)


def _post_form(uri: str, token: str) -> int:
    response = httpx.post(uri, data={"logout_token": token}, timeout=POST_TIMEOUT,
                          follow_redirects=False,
                          headers={"Cache-Control": "no-store"})
    return response.status_code


class BackchannelLogout:
    """Builds logout tokens, sends them, and watches sessions for expiry."""

    def __init__(self, front: OidcCore):
        self.front = front
        self.ctx = front.ctx
        self.ctx.db.create_tables((LOGOUT_WATCH,))
        self.sender = Sender(self.ctx.audit.record)

    # --- tokens -------------------------------------------------------------------------
    def sub_for(self, client: Client, fiscal_code: str) -> str:
        cfg = client.config
        return subject(self.ctx.secret_key, fiscal_code, subject_type=cfg.subject_type,
                       sector=cfg.sector_identifier or cfg.client_id)

    def logout_token(self, client: Client, psid: str, sub: str) -> str:
        """A Back-Channel Logout 1.0 token for one RP, signed with its id_token alg."""
        now = int(self.ctx.clock.now().timestamp())
        claims = {"iss": self.front.issuer, "aud": client.client_id, "iat": now,
                  "exp": now + LOGOUT_TOKEN_LIFETIME, "jti": secrets.token_urlsafe(16),
                  "sid": psid, "sub": sub, "events": {LOGOUT_EVENT: {}}}
        alg = client.config.id_token_signed_response_alg
        key = self.front.keys.signing_key(alg)
        return jwt.encode(claims, key.private_key, algorithm=alg,
                          headers={"kid": key.kid, "typ": "logout+jwt"})

    # --- when sessions end -------------------------------------------------------------
    def session_ended(self, session: BrokerSession, psid: str, reason: str) -> int:
        """Queue a logout token for every RP of ``session`` with a back channel."""
        with self.ctx.db.transaction() as c:
            c.execute("DELETE FROM logout_watch WHERE psid=?", (psid,))
        subs: dict[str, str | None] = dict.fromkeys(session.clients)
        return self._notify(psid, subs, session.subject, reason)

    def _notify(self, psid: str, subs: dict[str, str | None], fiscal_code: str | None,
                reason: str) -> int:
        queued = 0
        for client_id, known_sub in subs.items():
            client = self.front.registry.get(client_id)
            if client is None or not client.backchannel_logout_uri:
                continue
            sub = known_sub or (self.sub_for(client, fiscal_code) if fiscal_code else None)
            if sub is None:
                continue
            self.sender.submit(client_id, client.backchannel_logout_uri,
                               self.logout_token(client, psid, sub), reason)
            queued += 1
        return queued

    def frontchannel_urls(self, session: BrokerSession, psid: str) -> list[str]:
        """Iframe URLs for the RPs of ``session`` that only have a front channel."""
        out = []
        for client_id in session.clients:
            client = self.front.registry.get(client_id)
            if client is None or not client.frontchannel_logout_uri \
                    or client.backchannel_logout_uri:
                continue
            uri = client.frontchannel_logout_uri
            sep = "&" if "?" in uri else "?"
            out.append(f"{uri}{sep}{urlencode({'iss': self.front.issuer, 'sid': psid})}")
        return out

    # --- admin revocation ----------------------------------------------------------------
    def mount(self, router: APIRouter, admin: AdminAuth) -> None:
        """``POST /admin/sessions/{sid}/revoke`` (scope ``admin:sessions``), ``sid`` being
        the public one RPs and the audit trail see. The body's ``reason`` is audited."""
        from broker.admin.auth import AdminCaller

        def revoke(sid: str, body: RevokeSession,
                   caller: AdminCaller = Depends(admin.require("admin:sessions"))
                   ) -> dict[str, Any]:
            cookie_sid = self.ctx.ephemeral.get(NS_SID, sid) if len(sid) <= 64 else None
            ended = self.front.end_session(cookie_sid, reason="admin_revoked",
                                           client_id=caller.client_id) if cookie_sid else None
            if ended is None:
                raise NotFound("no live session with that sid")
            self.ctx.audit.record("admin.session_revoked", sid=sid,
                                  operator=caller.client_id, reason=body.reason)
            return {"revoked": sid, "clients": list(ended.clients)}

        router.add_api_route("/admin/sessions/{sid}/revoke", revoke, methods=["POST"])

    # --- expiry ---------------------------------------------------------------------------
    def watch(self, session: BrokerSession, psid: str, client: Client) -> None:
        """Remember that ``client`` must hear of this session's expiry (back channel only)."""
        if not client.backchannel_logout_uri:
            return
        sub = self.sub_for(client, session.subject)
        with self.ctx.db.transaction() as c:
            serialize(c, f"logout_watch.{psid}")
            row = c.execute("SELECT clients FROM logout_watch WHERE psid=?", (psid,)).fetchone()
            clients = json.loads(row[0]) if row else {}
            clients[client.client_id] = sub
            c.execute("INSERT INTO logout_watch (psid, expires_at, clients) VALUES (?,?,?)"
                      " ON CONFLICT(psid) DO UPDATE SET expires_at = excluded.expires_at,"
                      " clients = excluded.clients",
                      (psid, session.expires_at.timestamp(), json.dumps(clients)))

    def sweep_expired(self) -> int:
        """Notify the RPs of every watched session that has expired; returns how many."""
        now = self.ctx.clock.now().timestamp()
        with self.ctx.db.transaction() as c:
            rows = c.execute("DELETE FROM logout_watch WHERE expires_at<=? "
                             "RETURNING psid, clients", (now,)).fetchall()
        queued = 0
        for psid, clients in rows:
            self.ctx.audit.record("oidc.logout", sid=psid, reason="expired",
                                  clients=sorted(json.loads(clients)), client_id=None)
            queued += self._notify(psid, json.loads(clients), None, "expired")
        return queued
