"""The SPID provider: IdP choice, signed AuthnRequest, ACS validation, the AuthEvent.

Order at the ACS, and why:

1. Decode and read only ``InResponseTo``; ``take`` the pending request it names (single
   use: a replayed or unsolicited response finds nothing). The pending request names
   the browser's login (``tx``), the IdP it went to, its IssueInstant and its level.
2. ``hub.pending`` proves the login belongs to this browser (cookie binding).
3. The full validation of ``providers.saml.response`` against the IdP's metadata
   certificates (signature, wrapping, times with the injected clock, audience, level).
4. The assertion ID goes into the shared replay cache (``add``) until it expires.
5. ``hub.complete`` with the ``AuthEvent``. Every refusal is our own 4xx page; only the
   citizen's cancellation (SPID code 25) goes back to the RP, as ``access_denied``.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse

from broker.errors import BrokerError, Text
from broker.model import ACR_SPID_L1, ACR_SPID_L2, ACR_SPID_L3, AuthEvent, AuthRequest
from providers.base import ProviderServices
from providers.saml.idp_registry import IdpInfo, IdpRegistry
from providers.saml.response import (
    Expected,
    LevelTooLow,
    SamlAssertion,
    SamlError,
    SamlStatus,
    validate_response,
)
from providers.saml.xmlutil import (
    BINDING_REDIRECT,
    XmlError,
    b64_xml,
    format_time,
    new_id,
    parse,
    parse_time,
)
from providers.spid.authn import (
    build_authn_request,
    choose_sso,
    encode_post,
    encode_redirect,
    post_form,
)
from providers.spid.certs import ensure_keys
from providers.spid.config import SpidConfig
from providers.spid.errors import (
    CANCELLED,
    SpidIdpError,
    SpidLevelTooLow,
    SpidResponseRejected,
    SpidUnknownIdp,
    spid_error_code,
)
from providers.spid.metadata import SpEndpoints, build_metadata

log = logging.getLogger("varco.providers.spid")

SPID_LEVELS = {ACR_SPID_L1: 1, ACR_SPID_L2: 2, ACR_SPID_L3: 3}
NS_REQUEST = "spid.req"
NS_ASSERTION = "spid.assertion"


@dataclass(frozen=True)
class PendingRequest:
    """What the ACS must know about an AuthnRequest we sent (stored as JSON)."""

    request_id: str
    tx: str
    idp: str
    issued: str
    acr: str
    relay: str

    def dump(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def load(cls, raw: str) -> PendingRequest:
        return cls(**json.loads(raw))


def required_acr(auth: AuthRequest) -> str:
    """SpidL3 if the RP asked for it, else SpidL2: never lower."""
    return ACR_SPID_L3 if auth.required_acr == ACR_SPID_L3 else ACR_SPID_L2


class SpidProvider:
    """Implements ``providers.base.Provider`` for SPID."""

    name = "spid"
    label = Text("Entra con SPID", "Sign in with SPID")
    chooser_partial = "spid_button.html"

    def __init__(self, cfg: SpidConfig, services: ProviderServices):
        self.cfg = cfg
        self.services = services
        base = services.base_url().rstrip("/")
        self.endpoints = SpEndpoints(entity_id=cfg.entity_id or f"{base}/spid/metadata",
                                     acs_url=f"{base}/spid/acs", slo_url=f"{base}/spid/slo")
        data = Path(services.data_dir) / "spid"
        self.keys = ensure_keys(
            key_path=_path(cfg.key_path, services.config_dir) or data / "sp.key",
            cert_path=_path(cfg.cert_path, services.config_dir) or data / "sp.crt",
            entity_id=self.endpoints.entity_id, profile=cfg.profile,
            org_id=cfg.organization_identifier, org_name=cfg.organization.name,
            common_name=cfg.organization.display_name, locality=cfg.locality,
            now=services.clock.now(), key_size=cfg.key_size)
        # The configured folder, plus <data_dir>/spid-idps where generated metadata (the
        # demo's test IdP, the conformance suite's fake IdP) is dropped.
        configured = _path(cfg.idp_metadata_dir, services.config_dir) or Path()
        self.registry = IdpRegistry([configured, Path(services.data_dir) / "spid-idps"],
                                    services.clock.now)
        self._metadata: bytes | None = None
        self._router = APIRouter()
        self._router.add_api_route("/metadata", self.metadata, methods=["GET"])
        self._router.add_api_route("/login", self.login_route, methods=["GET"])
        self._router.add_api_route("/acs", self.acs, methods=["POST", "GET"])
        from providers.spid.slo import SloRoutes

        self.slo = SloRoutes(self)
        self._router.add_api_route("/slo", self.slo.endpoint, methods=["GET", "POST"])

    # --- Provider contract ------------------------------------------------------------
    @property
    def router(self) -> APIRouter:
        return self._router

    def choices(self) -> list[dict[str, str]]:
        return [{"id": i.entity_id, "label": i.name} for i in self.registry.all()]

    async def start(self, request: Request, auth: AuthRequest, hint: str | None) -> Response:
        hub = self.services.hub()
        if not hint:
            return hub.render(request, "spid_idps.html", {
                "tx": auth.tx_id, "idps": self.choices()})
        idp = self.registry.get(hint)
        if idp is None:
            return hub.fail(request, SpidUnknownIdp("IdP not trusted or unknown"), auth.tx_id)
        return await run_in_threadpool(self._send_request, auth, idp)

    async def logout(self, request: Request, event: AuthEvent, return_to: str) -> Response | None:
        return await self.slo.start(request, event, return_to)

    # --- routes -------------------------------------------------------------------------
    def metadata_xml(self) -> bytes:
        """The signed SP metadata (built once; the test IdP reads it in process)."""
        if self._metadata is None:
            self._metadata = build_metadata(self.cfg, self.endpoints, self.keys)
        return self._metadata

    def metadata(self) -> Response:
        return Response(self.metadata_xml(), media_type="application/samlmetadata+xml")

    async def login_route(self, request: Request, tx: str = "", idp: str = "") -> Response:
        """``/spid/login?tx=..&idp=<entityID>``: the IdP list links here."""
        hub = self.services.hub()
        try:
            auth = hub.pending(request, tx)
        except BrokerError as error:
            return hub.fail(request, error)
        return await self.start(request, auth, idp or None)

    def _send_request(self, auth: AuthRequest, idp: IdpInfo) -> Response:
        now = self.services.clock.now().replace(microsecond=0)
        binding, location = choose_sso(idp.sso, self.cfg.binding)
        request_id = new_id()
        acr = required_acr(auth)
        xml = build_authn_request(request_id=request_id, now=now,
                                  sp_entity_id=self.endpoints.entity_id,
                                  destination=location, acr=acr)
        relay = secrets.token_urlsafe(24)
        pending = PendingRequest(request_id=request_id, tx=auth.tx_id, idp=idp.entity_id,
                                 issued=format_time(now), acr=acr, relay=relay)
        self.services.ephemeral.put(NS_REQUEST, request_id, pending.dump(), self.cfg.request_ttl)
        log.info("spid authn request idp=%s acr=%s binding=%s", idp.entity_id, acr,
                 binding.rsplit(":", 1)[-1])
        if binding == BINDING_REDIRECT:
            return RedirectResponse(encode_redirect(xml, location, relay, self.keys),
                                    status_code=302)
        return HTMLResponse(post_form(location, {
            "SAMLRequest": encode_post(xml, self.keys), "RelayState": relay}))

    async def acs(self, request: Request) -> Response:
        """The IdP's POST; re-entered as a GET when the POST came cross-site (see hub)."""
        hub = self.services.hub()
        if request.method == "GET":
            form = hub.unpark(request.query_params.get("resume", ""))
            if form is None:
                return hub.fail(request, SpidResponseRejected("unknown or used resume key"))
        else:
            posted = await request.form()
            form = {k: v for k, v in posted.items() if isinstance(v, str)}
            parked = hub.park_cross_site_post(request, form)
            if parked is not None:
                return parked
        saml_response = form.get("SAMLResponse")
        relay = form.get("RelayState")
        tx: str | None = None
        try:
            if not isinstance(saml_response, str) or not saml_response:
                raise SpidResponseRejected("no SAMLResponse")
            xml = b64_xml(saml_response)
            pending = self._take_pending(xml)
            tx = pending.tx
            if not isinstance(relay, str) or not hmac.compare_digest(
                    relay.encode(), pending.relay.encode()):
                raise SpidResponseRejected("RelayState does not match the request")
            auth = hub.pending(request, pending.tx)
            idp = self.registry.get(pending.idp)
            if idp is None:
                raise SpidUnknownIdp("IdP no longer trusted (metadata or certificate)")
            result = await run_in_threadpool(self._validate, xml, pending, idp, auth)
        except XmlError as exc:
            return hub.fail(request, SpidResponseRejected(f"unreadable response: {exc}"), tx)
        except BrokerError as error:
            return hub.fail(request, error, tx)
        if isinstance(result, SamlStatus):
            code = spid_error_code(result.message)
            log.info("spid idp status=%s sub=%s spid_code=%s", result.code, result.sub_code, code)
            if code == CANCELLED:
                return hub.cancel(request, pending.tx)
            return hub.fail(request, SpidIdpError(code, f"IdP status {result.sub_code}"),
                            pending.tx)
        ttl = int((result.not_on_or_after - self.services.clock.now()).total_seconds())
        ttl = max(ttl, 0) + self.cfg.clock_skew + 60
        if not self.services.ephemeral.add(NS_ASSERTION, f"{idp.entity_id} {result.assertion_id}",
                                           "1", ttl):
            return hub.fail(request, SpidResponseRejected("assertion replayed"), pending.tx)
        return await hub.complete(request, pending.tx, self._event(result, idp))

    # --- helpers ------------------------------------------------------------------------
    def _take_pending(self, xml: bytes) -> PendingRequest:
        root = parse(xml)
        in_response_to = root.get("InResponseTo") or ""
        if not in_response_to or len(in_response_to) > 256:
            raise SpidResponseRejected("InResponseTo missing")
        raw = self.services.ephemeral.take(NS_REQUEST, in_response_to)
        if raw is None:
            raise SpidResponseRejected("no pending request for InResponseTo (replay/unsolicited)")
        pending = PendingRequest.load(raw)
        if pending.request_id != in_response_to:
            raise SpidResponseRejected("pending request mismatch")
        return pending

    def _validate(self, xml: bytes, pending: PendingRequest, idp: IdpInfo,
                  auth: AuthRequest) -> SamlAssertion | SamlStatus:
        exp = Expected(
            request_id=pending.request_id, request_instant=parse_time(pending.issued),
            acs_url=self.endpoints.acs_url, sp_entity_id=self.endpoints.entity_id, idp=idp,
            now=self.services.clock.now(), acr_levels=SPID_LEVELS,
            min_level=SPID_LEVELS[pending.acr],
            requested_attributes=frozenset(self.cfg.attributes),
            required_attributes=frozenset(self.cfg.required_attributes),
            skew=timedelta(seconds=self.cfg.clock_skew))
        try:
            return validate_response(xml, exp)
        except LevelTooLow as exc:
            raise SpidLevelTooLow(str(exc)) from exc
        except SamlError as exc:
            raise SpidResponseRejected(str(exc)) from exc

    def _event(self, a: SamlAssertion, idp: IdpInfo) -> AuthEvent:
        return AuthEvent(
            provider="spid", subject=a.name_id, attributes=dict(a.attributes), acr=a.acr,
            amr=("spid",), auth_time=a.authn_instant, idp=idp.entity_id,
            provider_state={"name_id": a.name_id, "name_qualifier": a.name_qualifier,
                            "session_index": a.session_index or ""})


def _path(value: Path | None, base: Path | str) -> Path | None:
    if value is None:
        return None
    return value if value.is_absolute() else Path(base) / value


def create_spid_provider(cfg: SpidConfig, services: ProviderServices) -> SpidProvider:
    return SpidProvider(cfg, services)


__all__ = ["PendingRequest", "SpidProvider", "create_spid_provider", "required_acr"]
