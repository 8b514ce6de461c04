"""The CNS login: a one-time challenge, the card handshake at nginx, the hand-over to the hub.

The steps, and why each exists:

1. ``start`` (main site, ``/login/start/cns``, in the hub's worker thread) issues a random
   single-use challenge bound to the pending login (``tx``) and shows "insert the card,
   then continue"; the link leads to the card endpoint ``tls_url`` with the challenge.
2. ``GET /cns/tls?c=...`` arrives through the nginx card server block, which asks the
   browser for a client certificate on a *new* TLS handshake (no session cache, no
   tickets, no keep-alive there) and puts the certificate in ``X-Varco-Client-Cert``.
   The broker believes that header only from ``trusted_proxies`` and only on this route,
   consumes the challenge (a replayed link is refused), verifies the certificate itself
   (chain, dates by the broker clock, CRL/OCSP, codice fiscale) and stores the outcome
   under a second one-time token.
3. ``GET /cns/done?r=...`` is back on the main site (the card endpoint may be another host,
   whose cookies the broker never sees): a callback (``providers.base.CallbackRoute``)
   takes the outcome once and returns it to the hub (which checks that ``tx`` belongs to
   this browser): the ``AuthEvent``, or a ``Refusal`` shown as a readable 4xx page.

So a certificate only counts for the login whose challenge it came with, on a handshake
made after that challenge was issued: a card pulled out and reinserted cannot be stood in
for by a cached header or an old TLS session.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict

from broker.audit import AuditLog
from broker.errors import BrokerError, Text
from broker.fiscal_code import mask
from broker.http.threads import in_thread
from broker.model import AuthEvent
from providers.base import CallbackRoute, LoginStep, ProviderServices, Refusal, Returned
from providers.cns.acr import ACR_CNS
from providers.cns.chain import ChainVerifier, load_pem_bundle
from providers.cns.config import CnsConfig
from providers.cns.errors import ERRORS, CnsChallengeInvalid, CnsError, CnsUntrustedProxy
from providers.cns.revocation import CrlSet, OcspChecker
from providers.cns.verify import CardVerifier, VerifiedCard, parse_escaped_cert

log = logging.getLogger("varco.providers.cns")

CERT_HEADER = "x-varco-client-cert"  # nginx: proxy_set_header X-Varco-Client-Cert ...
CHALLENGES = "cns-challenge"
OUTCOMES = "cns-outcome"
OUTCOME_TTL = 120
# RFC 8176: "sc" = smart card. A CNS is a smart card or a USB token holding the same chip;
# the provider name ("cns") travels separately in the session and the audit trail.
AMR = ("sc",)


class Challenge(BaseModel):
    """What a challenge stands for: one pending login."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    tx: str


class Outcome(BaseModel):
    """The result of one card handshake, waiting for the browser on the main site."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    tx: str
    event: AuthEvent | None = None
    error: str | None = None
    error_id: str | None = None
    detail: str | None = None


class CnsProvider:
    """The ``cns`` provider: Carta Nazionale dei Servizi through an nginx TLS endpoint."""

    name = "cns"
    label = Text("Carta Nazionale dei Servizi (CNS)", "National Services Card (CNS)")

    def __init__(self, config: CnsConfig, services: ProviderServices, verifier: CardVerifier,
                 audit: AuditLog):
        self.config = config
        self.services = services
        self.verifier = verifier
        self.audit = audit
        self.proxies = tuple(ipaddress.ip_network(p, strict=False)
                             for p in config.trusted_proxies)
        self._router = APIRouter()
        self._router.add_api_route("/tls", self.tls, methods=["GET"], name="cns_tls")

    @property
    def router(self) -> APIRouter:
        return self._router

    def callbacks(self) -> list[CallbackRoute]:
        """``providers.base.Callbacks``: the browser back on the main site."""
        return [CallbackRoute("/done", ("GET",), self.done)]

    # -- step 1: the challenge ---------------------------------------------------------

    def start(self, step: LoginStep, hint: str | None) -> Response:
        auth = step.auth
        challenge = secrets.token_urlsafe(32)
        self.services.ephemeral.put(CHALLENGES, challenge,
                                    Challenge(tx=auth.tx_id).model_dump_json(),
                                    self.config.challenge_ttl)
        root = step.request.scope.get("root_path", "")
        context = {
            "tx": auth.tx_id,
            "card_url": f"{self.config.tls_url}?c={quote(challenge, safe='')}",
            "chooser_url": f"{root}/login?tx={quote(auth.tx_id, safe='')}",
            "minutes": max(1, self.config.challenge_ttl // 60),
        }
        return self.services.pages.page(step.request, "cns_start.html", context)

    # -- step 2: the card handshake, through nginx -------------------------------------

    def _trusted(self, request: Request) -> bool:
        host = request.client.host if request.client else ""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in net for net in self.proxies)

    async def tls(self, request: Request) -> Response:
        """The card endpoint behind nginx: verify and park the outcome for the main site."""
        if not self._trusted(request):
            error: CnsError = CnsUntrustedProxy(
                f"certificate endpoint called from untrusted address "
                f"{request.client.host if request.client else '?'}")
            await in_thread(self._audit_refusal, error, None)
            raise error
        raw = await in_thread(self.services.ephemeral.take, CHALLENGES,
                              request.query_params.get("c", "")[:128])
        if raw is None:
            error = CnsChallengeInvalid("unknown, expired or already used challenge")
            await in_thread(self._audit_refusal, error, None)
            raise error
        tx = Challenge.model_validate_json(raw).tx
        try:
            card = await in_thread(self._verify, request.headers.get(CERT_HEADER))
            outcome = Outcome(tx=tx, event=self._event(card))
            log.info("cns: certificate %s of %s verified", card.serial,
                     mask(card.holder.fiscal_code))
        except CnsError as error:
            await in_thread(self._audit_refusal, error, tx)
            outcome = Outcome(tx=tx, error=error.code, error_id=error.error_id,
                              detail=error.detail)
        token = secrets.token_urlsafe(32)
        await in_thread(self.services.ephemeral.put, OUTCOMES, token,
                        outcome.model_dump_json(), OUTCOME_TTL)
        response = RedirectResponse(f"{self.services.base_url}/cns/done?r={token}",
                                    status_code=303)
        response.headers["Cache-Control"] = "no-store"
        return response

    def _verify(self, header: str | None) -> VerifiedCard:
        leaf = parse_escaped_cert(header)
        return self.verifier.verify(leaf, self.services.clock.now())

    def _event(self, card: VerifiedCard) -> AuthEvent:
        holder = card.holder
        return AuthEvent(
            provider=self.name, subject=holder.fiscal_code, acr=ACR_CNS, amr=AMR,
            auth_time=self.services.clock.now(), idp=card.issuer,
            attributes={"fiscal_code": holder.fiscal_code, "given_name": holder.given_name,
                        "family_name": holder.family_name, "cert_serial": card.serial,
                        "issuer": card.issuer})

    def _audit_refusal(self, error: BrokerError, tx: str | None) -> None:
        """Log and audit a refusal (SQLite write: call it in the thread pool)."""
        log.warning("cns: refused error_id=%s code=%s detail=%s", error.error_id, error.code,
                    error.detail)
        self.audit.record("login.error", provider=self.name, error=error.code,
                          error_id=error.error_id, detail=error.detail, tx=tx)

    # -- step 3: back on the main site -------------------------------------------------

    def done(self, request: Request, fields: Mapping[str, str]) -> Returned:
        raw = self.services.ephemeral.take(OUTCOMES, fields.get("r", "")[:128])
        if raw is None:
            return Returned(None, Refusal(CnsChallengeInvalid("unknown or used outcome token")))
        outcome = Outcome.model_validate_json(raw)
        if outcome.event is not None:
            return Returned(outcome.tx, outcome.event)
        error = ERRORS.get(outcome.error or "", CnsError)(outcome.detail or "")
        if outcome.error_id:
            error.error_id = outcome.error_id  # the id already written in the audit trail
        return Returned(outcome.tx, Refusal(error))


def create_cns_provider(config: CnsConfig, services: ProviderServices) -> CnsProvider:
    """Registry factory: load the CAs (a missing or empty bundle stops the start)."""
    base = Path(services.config_dir)
    anchors = load_pem_bundle(base / config.ca_bundle, "ca_bundle")
    intermediates = (load_pem_bundle(base / config.intermediates, "intermediates")
                     if config.intermediates else [])
    verifier = CardVerifier(
        ChainVerifier(anchors, intermediates, max_chain_depth=config.max_chain_depth),
        CrlSet([base / p for p in config.crls]),
        OcspChecker(config.ocsp_timeout) if config.ocsp else None,
        require_revocation=config.revocation == "require")
    log.info("cns: %d trusted CA(s), %d intermediate(s), %d CRL source(s), ocsp=%s",
             len(anchors), len(intermediates), len(config.crls), config.ocsp)
    return CnsProvider(config, services, verifier, services.audit)
