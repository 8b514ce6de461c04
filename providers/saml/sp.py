"""The service-provider half SPID and CIE share: signed AuthnRequest out, ACS in, AuthEvent.

Order at the ACS, and why:

1. Decode and read only ``InResponseTo``; ``take`` the pending request it names (single
   use: a replayed or unsolicited response finds nothing). The pending request names
   the browser's login (``tx``), the IdP it went to, its IssueInstant and its level.
2. ``hub.pending`` proves the login belongs to this browser (cookie binding). A POST
   from the IdP's site carries no SameSite=Lax cookie of ours, only the SameSite=None
   return cookie set with the AuthnRequest (path: the ACS): when it names the browser
   kept with the pending request, the hub adopts that browser, its session and its
   language (``hub.adopt``) and the login completes in this request. Without it (a
   browser that refused a Secure cookie on plain http) the POST is parked and re-entered
   as a single-use GET of ourselves (``hub.park_cross_site_post``).
3. The full validation of ``providers.saml.response`` against the IdP's metadata
   certificates (signature, wrapping, times with the injected clock, audience, level),
   with the profile's own expectations (issuer Format, levels, attributes).
4. The assertion ID goes into the shared replay cache (``add``) until it expires.
5. ``hub.complete`` with the ``AuthEvent``. Every refusal is our own 4xx page; the
   IdP's failure statuses go to the profile's ``idp_status`` (cancel -> ``hub.cancel``).
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from lxml import etree

from broker.errors import BrokerError
from broker.http.fastlane import HotRoute
from broker.http.forms import form_pairs
from broker.http.threads import in_thread
from broker.model import AuthEvent, AuthRequest, ReturnBinding
from providers.base import ProviderServices
from providers.saml.authn import (
    build_authn_request,
    choose_sso,
    encode_post,
    encode_redirect,
    post_form,
)
from providers.saml.certs import ensure_keys, load_rollover_certs
from providers.saml.idp_registry import IdpInfo, IdpRegistry
from providers.saml.response import (
    Expected,
    LevelTooLow,
    SamlAssertion,
    SamlError,
    SamlStatus,
    validate_response,
)
from providers.saml.sp_config import SamlSpConfig
from providers.saml.sp_metadata import SpEndpoints
from providers.saml.status import CANCELLED, ProfileErrors, error_code
from providers.saml.xmlutil import (
    BINDING_REDIRECT,
    XmlError,
    b64_xml,
    format_time,
    new_id,
    parse,
    parse_time,
)


@dataclass(frozen=True)
class PendingRequest:
    """What the ACS must know about an AuthnRequest we sent (stored as JSON)."""

    request_id: str
    tx: str
    idp: str
    issued: str
    acr: str
    relay: str
    # who sent it: lets a cross-site POST of the response complete at once (LoginHub.adopt)
    returning: ReturnBinding = field(default_factory=ReturnBinding)

    def dump(self) -> str:
        return json.dumps({**self.__dict__, "returning": self.returning.model_dump()})

    @classmethod
    def load(cls, raw: str) -> PendingRequest:
        data = json.loads(raw)
        return cls(**{**data, "returning": ReturnBinding(**data.get("returning") or {})})


class SamlServiceProvider:
    """Base of ``SpidProvider`` and ``CieProvider``; routes live under ``/{name}``.

    Subclasses set ``name``, ``acr_levels``, ``errors`` and ``issuer_format_required``,
    and implement ``requested_acr`` and ``build_metadata`` (``comparison`` optional).
    """

    name: ClassVar[str]
    acr_levels: ClassVar[dict[str, int]]
    errors: ClassVar[ProfileErrors]
    issuer_format_required: ClassVar[bool] = True

    def __init__(self, cfg: SamlSpConfig, services: ProviderServices):
        self.cfg = cfg
        self.services = services
        self.log = logging.getLogger(f"varco.providers.{self.name}")
        base = services.base_url().rstrip("/")
        self.endpoints = SpEndpoints(
            entity_id=cfg.entity_id or f"{base}/{self.name}/metadata",
            acs_url=f"{base}/{self.name}/acs", slo_url=f"{base}/{self.name}/slo")
        data = Path(services.data_dir) / self.name
        self.keys = ensure_keys(
            key_path=_path(cfg.key_path, services.config_dir) or data / "sp.key",
            cert_path=_path(cfg.cert_path, services.config_dir) or data / "sp.crt",
            entity_id=self.endpoints.entity_id, profile=cfg.profile,
            org_id=cfg.organization_identifier, org_name=cfg.organization.name,
            common_name=cfg.organization.display_name, locality=cfg.locality,
            now=services.clock.now(), key_size=cfg.key_size)
        if cfg.rollover_cert_paths:
            self.keys = replace(self.keys, rollover_certs_pem=load_rollover_certs(
                [_path(p, services.config_dir) or p for p in cfg.rollover_cert_paths],
                services.clock.now()))
        # The configured folder, plus <data_dir>/<name>-idps where generated metadata (the
        # demo's test IdP, the conformance suite's fake IdP) is dropped.
        configured = _path(cfg.idp_metadata_dir, services.config_dir) or Path()
        self.registry = IdpRegistry(
            [configured, Path(services.data_dir) / f"{self.name}-idps"], services.clock.now,
            min_interval=1.0)
        self._metadata: bytes | None = None
        self._router = APIRouter()
        self._router.add_api_route("/metadata", self.metadata, methods=["GET"])

    def hot_routes(self) -> list[HotRoute]:
        """The ACS, on every login: on the app's fast lane (``broker.http.fastlane``)."""
        return [HotRoute("/acs", self.acs, ("POST", "GET"))]

    # --- what a profile says ----------------------------------------------------------
    def requested_acr(self, auth: AuthRequest) -> str:
        """The level to ask the IdP for."""
        raise NotImplementedError

    def comparison(self) -> str:
        """``Comparison`` of the RequestedAuthnContext."""
        return "minimum"

    def build_metadata(self) -> bytes:
        """The signed SP metadata of the profile."""
        raise NotImplementedError

    def idp_status(self, request: Request, status: SamlStatus, tx: str) -> Response:
        """The IdP's failure status: code 25 (cancelled) back to the RP, others a page."""
        hub = self.services.hub()
        code = error_code(status.message)
        self.log.info("%s idp status=%s sub=%s code=%s", self.name, status.code, status.sub_code,
                      code)
        if code == CANCELLED:
            return hub.cancel(request, tx)
        return hub.fail(request, self.errors.idp_code(code, f"IdP status {status.sub_code}"), tx)

    # --- Provider contract ------------------------------------------------------------
    @property
    def router(self) -> APIRouter:
        return self._router

    def metadata_xml(self) -> bytes:
        """The signed SP metadata (built once; the test IdP reads it in process)."""
        if self._metadata is None:
            self._metadata = self.build_metadata()
        return self._metadata

    def metadata(self) -> Response:
        return Response(self.metadata_xml(), media_type="application/samlmetadata+xml")

    def send_request(self, request: Request, auth: AuthRequest, idp: IdpInfo) -> Response:
        """The signed AuthnRequest to ``idp`` (call from a worker thread: it signs and
        stores), with the return cookie that lets the IdP's cross-site POST complete."""
        hub = self.services.hub()
        response = self._send_request(auth, idp, hub.return_binding(request, auth))
        hub.expect_cross_site_return(request, response, urlsplit(self.endpoints.acs_url).path,
                                     self.cfg.request_ttl)
        return response

    def _send_request(self, auth: AuthRequest, idp: IdpInfo, returning: ReturnBinding
                      ) -> Response:
        now = self.services.clock.now().replace(microsecond=0)
        binding, location = choose_sso(idp.sso, self.cfg.binding)
        request_id = new_id()
        acr = self.requested_acr(auth)
        xml = build_authn_request(request_id=request_id, now=now,
                                  sp_entity_id=self.endpoints.entity_id,
                                  destination=location, acr=acr, comparison=self.comparison())
        relay = secrets.token_urlsafe(24)
        pending = PendingRequest(request_id=request_id, tx=auth.tx_id, idp=idp.entity_id,
                                 issued=format_time(now), acr=acr, relay=relay,
                                 returning=returning)
        # Signed first, stored after: inside the caller's batch the write lock is then
        # not held across the signature.
        response: Response
        if binding == BINDING_REDIRECT:
            response = RedirectResponse(encode_redirect(xml, location, relay, self.keys),
                                        status_code=302)
        else:
            response = HTMLResponse(post_form(location, {
                "SAMLRequest": encode_post(xml, self.keys), "RelayState": relay},
                title=self.name.upper()))
        self.services.ephemeral.put(f"{self.name}.req", request_id, pending.dump(),
                                    self.cfg.request_ttl)
        self.log.info("%s authn request idp=%s acr=%s binding=%s", self.name, idp.entity_id,
                      acr, binding.rsplit(":", 1)[-1])
        return response

    async def acs(self, request: Request) -> Response:
        """The IdP's POST. Cross-site (no SameSite=Lax cookies of ours), it completes at
        once when the return cookie names the browser that sent the request, and is
        parked and re-entered as a GET of ours otherwise (see the hub).

        Everything but reading the body runs in one thread-pool call, the completion of
        the login included (``hub.complete_here``): nothing blocks the event loop, and
        one hop instead of two.
        """
        posted: dict[str, str] | None = None
        if request.method != "GET":
            posted = dict(await form_pairs(request))  # a repeated field: the last one
        return await in_thread(self._acs, request, posted)

    def _acs(self, request: Request, posted: dict[str, str] | None) -> Response:
        hub = self.services.hub()
        rejected = self.errors.rejected
        claim: str | None = None
        if posted is None:
            form = hub.unpark(request.query_params.get("resume", ""))
            if form is None:
                return hub.fail(request, rejected("unknown or used resume key"))
        else:
            form = posted
            claim = hub.cross_site_claim(request)
            if claim is None:
                parked = hub.park_cross_site_post(request, form)
                if parked is not None:
                    return parked
        saml_response = form.get("SAMLResponse")
        relay = form.get("RelayState")
        tx: str | None = None
        try:
            if not isinstance(saml_response, str) or not saml_response:
                raise rejected("no SAMLResponse")
            root = parse(b64_xml(saml_response))  # parsed once, validated below
            pending = self._take_pending(root)
            tx = pending.tx
            if not isinstance(relay, str) or not hmac.compare_digest(
                    relay.encode(), pending.relay.encode()):
                raise rejected("RelayState does not match the request")
            if claim is not None:
                hub.adopt(request, claim, pending.returning)
            auth = hub.pending(request, pending.tx)
            idp = self.registry.get(pending.idp)
            if idp is None:
                raise self.errors.unknown_idp("IdP no longer trusted (metadata or certificate)")
            result = self._validate(root, pending, idp, auth)
        except XmlError as exc:
            return hub.fail(request, rejected(f"unreadable response: {exc}"), tx)
        except BrokerError as error:
            return hub.fail(request, error, tx)
        if isinstance(result, SamlStatus):
            return self.idp_status(request, result, pending.tx)
        ttl = int((result.not_on_or_after - self.services.clock.now()).total_seconds())
        ttl = max(ttl, 0) + self.cfg.clock_skew + 60
        decided = hub.decide(request, pending.tx, self._event(result, idp))
        if isinstance(decided, Response):  # expired login, unmappable identity, directory down
            return decided
        # The replay mark and the login's writes in one batch (SQLite: one commit), after
        # the signature work and the decision, so the write lock covers the writes alone.
        with self.services.db.batch():
            if not self.services.ephemeral.add(f"{self.name}.assertion",
                                               f"{idp.entity_id} {result.assertion_id}", "1",
                                               ttl):
                return hub.fail(request, rejected("assertion replayed"), pending.tx)
            return hub.commit(request, decided)

    # --- helpers ------------------------------------------------------------------------
    def _take_pending(self, root: etree._Element) -> PendingRequest:
        rejected = self.errors.rejected
        in_response_to = root.get("InResponseTo") or ""
        if not in_response_to or len(in_response_to) > 256:
            raise rejected("InResponseTo missing")
        raw = self.services.ephemeral.take(f"{self.name}.req", in_response_to)
        if raw is None:
            raise rejected("no pending request for InResponseTo (replay/unsolicited)")
        pending = PendingRequest.load(raw)
        if pending.request_id != in_response_to:
            raise rejected("pending request mismatch")
        return pending

    def _validate(self, root: etree._Element, pending: PendingRequest, idp: IdpInfo,
                  auth: AuthRequest) -> SamlAssertion | SamlStatus:
        exp = Expected(
            request_id=pending.request_id, request_instant=parse_time(pending.issued),
            acs_url=self.endpoints.acs_url, sp_entity_id=self.endpoints.entity_id, idp=idp,
            now=self.services.clock.now(), acr_levels=self.acr_levels,
            min_level=self.acr_levels[pending.acr],
            requested_attributes=frozenset(self.cfg.attributes),
            required_attributes=frozenset(self.cfg.required_attributes),
            assertion_issuer_format_required=self.issuer_format_required,
            skew=timedelta(seconds=self.cfg.clock_skew))
        try:
            return validate_response(root, exp)
        except LevelTooLow as exc:
            raise self.errors.level_too_low(str(exc)) from exc
        except SamlError as exc:
            raise self.errors.rejected(str(exc)) from exc

    def _event(self, a: SamlAssertion, idp: IdpInfo) -> AuthEvent:
        return AuthEvent(
            provider=self.name, subject=a.name_id, attributes=dict(a.attributes), acr=a.acr,
            amr=(self.name,), auth_time=a.authn_instant, idp=idp.entity_id,
            provider_state={"name_id": a.name_id, "name_qualifier": a.name_qualifier,
                            "session_index": a.session_index or ""})


def _path(value: Path | None, base: Path | str) -> Path | None:
    if value is None:
        return None
    return value if value.is_absolute() else Path(base) / value
