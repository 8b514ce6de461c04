"""The service-provider half SPID and CIE share: signed AuthnRequest out, ACS in, AuthEvent.

The ACS is a callback the hub serves (``providers.base.CallbackRoute``, cross-site: the
IdP's POST carries none of our SameSite=Lax cookies, and the hub recognises the browser
by its return cookie or re-enters the POST as a GET). What happens here, in order:

1. Decode, parse once, read ``InResponseTo``; look up the pending request it names (a
   response nobody asked for, or one whose request expired, finds nothing). The pending
   request names the login (``tx``), the IdP it went to, its IssueInstant, its level.
2. ``RelayState`` must be the one sent with the request.
3. The full validation of ``providers.saml.response`` against the IdP's metadata
   certificates (signature, wrapping, times with the injected clock, audience, level),
   with the profile's own expectations (issuer Format, levels, attributes).
4. The ``AuthEvent`` carries two single-use marks the hub spends in the login's commit:
   the ``InResponseTo`` (one login per request) and the assertion ID (one login per
   assertion, until it expires). A replay is refused then; a crash before the commit
   leaves the response usable for the browser's retry.

Every refusal is a ``Refusal`` with the profile's readable page; the IdP's failure
statuses go to the profile's ``idp_status`` (25, cancelled: back to the RP).

One SP may serve more than one login method (``SamlMethod``): eIDAS through FICEP is a
login method of its own, with its own IdP and attribute set, whose requests go out
with the SPID SP's identity and whose answers come back to the SPID ACS. The pending
request remembers which method sent it, and the method makes the event.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import ClassVar, Protocol

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from lxml import etree

from broker.model import AuthEvent, AuthRequest, SingleUse
from providers.base import CallbackRoute, ProviderServices, Refusal, Returned
from providers.saml.authn import (
    build_authn_request,
    choose_sso,
    encode_post,
    encode_redirect,
    post_form,
)
from providers.saml.certs import ensure_keys, load_rollover_certs
from providers.saml.errors import SamlError
from providers.saml.idp_registry import IdpInfo, IdpRegistry
from providers.saml.response import Expected, SamlAssertion, SamlStatus, validate_response
from providers.saml.sp_config import SamlSpConfig
from providers.saml.sp_metadata import AttributeService, SpEndpoints
from providers.saml.status import CANCELLED, ProfileErrors, error_code
from providers.saml.xmlutil import BINDING_REDIRECT, b64_xml, format_time, new_id, parse, parse_time


@dataclass(frozen=True)
class PendingRequest:
    """What the ACS must know about an AuthnRequest we sent (stored as JSON)."""

    request_id: str
    tx: str
    idp: str
    issued: str
    acr: str
    relay: str
    method: str = ""  # the SamlMethod that sent it; "" for the SP's own login method
    purpose: str = ""  # the kind of identity asked for (SPID's spid:Purpose), if any

    def dump(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def load(cls, raw: str) -> PendingRequest:
        data = json.loads(raw)
        data.pop("returning", None)  # written by releases before the hub kept the browser
        return cls(**data)


class SamlMethod(Protocol):
    """Another login method riding on this SP (``attach``): its IdPs, attributes, event."""

    @property
    def name(self) -> str: ...

    @property
    def registry(self) -> IdpRegistry: ...

    @property
    def attribute_index(self) -> int:
        """``AttributeConsumingServiceIndex`` of its requests (eIDAS: 99 or 100)."""

    @property
    def attributes(self) -> tuple[str, ...]:
        """What the IdP may send (anything else is refused)."""

    def attribute_services(self) -> list[AttributeService]:
        """The AttributeConsumingServices the SP's metadata must declare for it."""

    def requested_acr(self, auth: AuthRequest) -> str: ...

    def event(self, assertion: SamlAssertion, idp: IdpInfo) -> AuthEvent:
        """The login (the SP adds its single-use marks)."""


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
        base = services.base_url.rstrip("/")
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
        self._methods: dict[str, SamlMethod] = {}
        self._router = APIRouter()
        self._router.add_api_route("/metadata", self.metadata, methods=["GET"])

    def demo_routes(self) -> list[tuple[str, APIRouter]]:
        """``providers.base.HasDemo``: with ``test_idp``, the pysaml2 test IdP plays this
        profile's IdP inside the demo broker (its metadata dropped where ours is read)."""
        if not self.cfg.test_idp:
            return []
        from providers.saml.testidp.mount import PLACES, demo_test_idp

        router, _ = demo_test_idp(self.services.base_url, self.services.data_dir,
                                  self.metadata_xml, profile=self.name)
        return [(PLACES[self.name][0], router)]

    def callbacks(self) -> list[CallbackRoute]:
        """``providers.base.Callbacks``: the ACS, on every login, so on the fast lane."""
        return [CallbackRoute("/acs", ("POST", "GET"), self.acs, cross_site=True, hot=True)]

    # --- what a profile says ----------------------------------------------------------
    def requested_acr(self, auth: AuthRequest) -> str:
        """The level to ask the IdP for."""
        raise NotImplementedError

    def comparison(self) -> str:
        """``Comparison`` of the RequestedAuthnContext."""
        return "minimum"

    def purpose(self, auth: AuthRequest) -> str | None:
        """The kind of identity to ask for (SPID's professional identities); None: any."""
        return None

    def build_metadata(self) -> bytes:
        """The signed SP metadata of the profile."""
        raise NotImplementedError

    def idp_status(self, status: SamlStatus) -> Refusal:
        """The IdP's failure status: code 25 (cancelled) back to the RP, others a page."""
        code = error_code(status.message)
        self.log.info("%s idp status=%s sub=%s code=%s", self.name, status.code, status.sub_code,
                      code)
        if code == CANCELLED:
            return Refusal(self.errors.idp_code(code, "cancelled at the IdP"), cancelled=True)
        return Refusal(self.errors.idp_code(code, f"IdP status {status.sub_code}"))

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

    def attach(self, method: SamlMethod) -> None:
        """Serve another login method with this SP (its requests, this ACS)."""
        self._methods[method.name] = method

    def send_request(self, auth: AuthRequest, idp: IdpInfo, method: SamlMethod | None = None
                     ) -> Response:
        """The signed AuthnRequest to ``idp``, its record kept for the ACS (worker thread:
        it signs and stores). Signed first, stored after: inside the hub's batch the
        write lock is then not held across the signature."""
        now = self.services.clock.now().replace(microsecond=0)
        binding, location = choose_sso(idp.sso, self.cfg.binding)
        request_id = new_id()
        acr = method.requested_acr(auth) if method else self.requested_acr(auth)
        purpose = None if method else self.purpose(auth)
        xml = build_authn_request(request_id=request_id, now=now,
                                  sp_entity_id=self.endpoints.entity_id,
                                  destination=location, acr=acr, comparison=self.comparison(),
                                  attr_index=method.attribute_index if method else 0,
                                  purpose=purpose)
        relay = secrets.token_urlsafe(24)
        pending = PendingRequest(request_id=request_id, tx=auth.tx_id, idp=idp.entity_id,
                                 issued=format_time(now), acr=acr, relay=relay,
                                 method=method.name if method else "", purpose=purpose or "")
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

    def acs(self, request: Request, fields: Mapping[str, str]) -> Returned:
        """The IdP's answer (the hub's worker thread): which login, and what came of it."""
        rejected = self.errors.rejected
        saml_response = fields.get("SAMLResponse")
        if not saml_response:
            return Returned(None, Refusal(rejected("no SAMLResponse")))
        try:
            root = parse(b64_xml(saml_response))  # parsed once, validated below
            pending = self._pending(root)
        except SamlError as exc:
            return Returned(None, Refusal(self.errors.refusal(exc)))
        tx = pending.tx
        if not hmac.compare_digest(fields.get("RelayState", "").encode(),
                                   pending.relay.encode()):
            return Returned(tx, Refusal(rejected("RelayState does not match the request")))
        method = self._methods.get(pending.method) if pending.method else None
        if pending.method and method is None:
            return Returned(tx, Refusal(rejected(f"no login method {pending.method!r} here")))
        idp = (method.registry if method else self.registry).get(pending.idp)
        if idp is None:
            return Returned(tx, Refusal(self.errors.unknown_idp(
                "IdP no longer trusted (metadata or certificate)")))
        try:
            result = self._validate(root, pending, idp, method)
        except SamlError as exc:
            return Returned(tx, Refusal(self.errors.refusal(exc)))
        if isinstance(result, SamlStatus):
            return Returned(tx, self.idp_status(result))
        return Returned(tx, self._event(result, idp, pending, method))

    # --- helpers ------------------------------------------------------------------------
    def _pending(self, root: etree._Element) -> PendingRequest:
        """The request this response answers; spent with the login (``_event``)."""
        rejected = self.errors.rejected
        in_response_to = root.get("InResponseTo") or ""
        if not in_response_to or len(in_response_to) > 256:
            raise rejected("InResponseTo missing")
        raw = self.services.ephemeral.get(f"{self.name}.req", in_response_to)
        if raw is None:
            raise rejected("no pending request for InResponseTo (unsolicited or expired)")
        pending = PendingRequest.load(raw)
        if pending.request_id != in_response_to:
            raise rejected("pending request mismatch")
        return pending

    def _validate(self, root: etree._Element, pending: PendingRequest, idp: IdpInfo,
                  method: SamlMethod | None) -> SamlAssertion | SamlStatus:
        exp = Expected(
            request_id=pending.request_id, request_instant=parse_time(pending.issued),
            acs_url=self.endpoints.acs_url, sp_entity_id=self.endpoints.entity_id, idp=idp,
            now=self.services.clock.now(), acr_levels=self.acr_levels,
            min_level=self.acr_levels[pending.acr],
            requested_attributes=frozenset(method.attributes if method else self.cfg.attributes),
            required_attributes=frozenset(() if method else self.cfg.required_attributes),
            assertion_issuer_format_required=self.issuer_format_required,
            skew=timedelta(seconds=self.cfg.clock_skew))
        return validate_response(root, exp)

    def _event(self, a: SamlAssertion, idp: IdpInfo, pending: PendingRequest,
               method: SamlMethod | None) -> AuthEvent:
        """The login, with its two single-use marks (the module docstring, step 4)."""
        now = self.services.clock.now()
        lasts = int((a.not_on_or_after - now).total_seconds())
        assertion_ttl = max(lasts, 0) + self.cfg.clock_skew + 60
        marks = (
            SingleUse(ns=f"{self.name}.req-answered", key=pending.request_id,
                      ttl=self.cfg.request_ttl + self.cfg.clock_skew),
            SingleUse(ns=f"{self.name}.assertion", key=f"{idp.entity_id} {a.assertion_id}",
                      ttl=assertion_ttl))
        if method is not None:
            return method.event(a, idp).model_copy(update={"single_use": marks})
        attributes: dict[str, object] = dict(a.attributes)
        if pending.purpose:  # the IdP honoured it (else it answers error 30)
            attributes["purpose"] = pending.purpose
        return AuthEvent(
            provider=self.name, subject=a.name_id, attributes=attributes, acr=a.acr,
            amr=(self.name,), auth_time=a.authn_instant, idp=idp.entity_id,
            provider_state={"name_id": a.name_id, "name_qualifier": a.name_qualifier,
                            "session_index": a.session_index or ""},
            single_use=marks)


def _path(value: Path | None, base: Path | str) -> Path | None:
    if value is None:
        return None
    return value if value.is_absolute() else Path(base) / value
