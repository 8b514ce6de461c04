"""SAML Single Logout for SPID, both ways, on ``/spid/slo`` (Redirect and POST bindings).

* SP-initiated (``start``): when the broker session ends, the hub calls
  ``SpidProvider.logout``; we send a signed LogoutRequest (NameID, NameQualifier,
  SessionIndex from the login's ``provider_state``) to the IdP and remember where the
  browser goes afterwards. The IdP's signed LogoutResponse comes back here.
* IdP-initiated: a signed LogoutRequest from a trusted IdP ends this browser's broker
  session if it holds a SPID login with that NameID at that IdP (through
  ``ProviderServices.sessions.end``, which also tells the RPs), and we answer with a signed
  LogoutResponse.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from broker.errors import BadRequest
from broker.http.threads import in_thread
from broker.model import AuthEvent
from providers.saml.errors import SamlError
from providers.saml.logout import (
    LogoutError,
    build_logout_request,
    build_logout_response,
    peek_issuer,
    read_logout,
)
from providers.saml.xmlutil import (
    BINDING_POST,
    BINDING_REDIRECT,
    STATUS_SUCCESS,
    b64_xml,
    inflate_b64,
    new_id,
    parse,
)
from providers.spid.authn import encode_post, encode_redirect, post_form
from providers.spid.errors import SpidResponseRejected

if TYPE_CHECKING:
    from providers.saml.idp_registry import IdpInfo
    from providers.spid.provider import SpidProvider

NS_LOGOUT = "spid.logout"


def _signed_part(raw_query: str, param: str) -> tuple[str, str, str] | None:
    """``param=..&RelayState=..&SigAlg=..`` exactly as received, plus Signature and SigAlg."""
    parts = dict(p.split("=", 1) for p in raw_query.split("&") if "=" in p)
    if param not in parts or "Signature" not in parts or "SigAlg" not in parts:
        return None
    from urllib.parse import unquote_plus

    signed = f"{param}={parts[param]}"
    if "RelayState" in parts:
        signed += f"&RelayState={parts['RelayState']}"
    signed += f"&SigAlg={parts['SigAlg']}"
    return signed, unquote_plus(parts["Signature"]), unquote_plus(parts["SigAlg"])


class SloRoutes:
    def __init__(self, provider: SpidProvider):
        self.p = provider

    def _send(self, idp: IdpInfo, xml: bytes, param: str, relay: str) -> Response:
        binding = BINDING_REDIRECT if idp.slo.get(BINDING_REDIRECT) else BINDING_POST
        location = idp.slo[binding]
        if binding == BINDING_REDIRECT:
            return RedirectResponse(encode_redirect(xml, location, relay, self.p.keys, param),
                                    status_code=302)
        return HTMLResponse(post_form(location, {param: encode_post(xml, self.p.keys),
                                                 "RelayState": relay}))

    # --- SP-initiated ---------------------------------------------------------------------
    async def start(self, request: Request, event: AuthEvent, return_to: str) -> Response | None:
        """A LogoutRequest to the IdP of ``event`` (signs and stores: a worker thread)."""
        return await in_thread(self._start, event, return_to)

    def _start(self, event: AuthEvent, return_to: str) -> Response | None:
        if event.provider != "spid" or not event.idp or not event.provider_state.get("name_id"):
            return None
        idp = self.p.registry.get(event.idp)
        if idp is None or not idp.slo:
            return None
        binding = BINDING_REDIRECT if idp.slo.get(BINDING_REDIRECT) else BINDING_POST
        request_id = new_id()
        xml = build_logout_request(
            request_id=request_id, now=self.p.services.clock.now(),
            sp_entity_id=self.p.endpoints.entity_id, destination=idp.slo[binding],
            name_id=event.provider_state["name_id"],
            name_qualifier=event.provider_state.get("name_qualifier") or idp.entity_id,
            session_index=event.provider_state.get("session_index") or None)
        self.p.services.ephemeral.put(NS_LOGOUT, request_id, json.dumps(
            {"return_to": return_to, "idp": idp.entity_id}), self.p.cfg.request_ttl)
        return self._send(idp, xml, "SAMLRequest", "")

    # --- the endpoint ---------------------------------------------------------------------
    async def endpoint(self, request: Request) -> Response:
        if request.method == "GET":
            params = dict(request.query_params)
            raw: str | None = request.url.query
        else:
            form = await request.form()
            params = {k: v for k, v in form.items() if isinstance(v, str)}
            raw = None
        return await in_thread(self._endpoint, request, params, raw)

    def _endpoint(self, request: Request, params: dict[str, str], raw: str | None
                  ) -> Response:
        try:
            if "SAMLResponse" in params:
                return self._logout_response(params, raw)
            if "SAMLRequest" in params:
                return self._logout_request(request, params, raw)
        except SamlError as exc:  # any refused message, the SPID page
            raise SpidResponseRejected(f"logout: {exc.detail}") from exc
        raise BadRequest("SLO without SAMLRequest or SAMLResponse")

    def _decode(self, params: dict[str, str], raw: str | None,
                param: str) -> tuple[bytes, tuple[str, str, str] | None]:
        if raw is not None:
            signed = _signed_part(raw, param)
            if signed is None:
                raise LogoutError("Redirect binding without signature")
            return inflate_b64(params[param]), signed
        return b64_xml(params[param]), None

    def _logout_response(self, params: dict[str, str], raw: str | None) -> Response:
        xml, signed = self._decode(params, raw, "SAMLResponse")
        in_response_to = parse(xml).get("InResponseTo") or ""
        pending_raw = self.p.services.ephemeral.take(NS_LOGOUT, in_response_to)
        if not in_response_to or pending_raw is None:
            raise LogoutError("LogoutResponse to no pending LogoutRequest")
        pending = json.loads(pending_raw)
        idp = self.p.registry.get(pending["idp"])
        if idp is None:
            raise LogoutError("IdP no longer trusted")
        msg = read_logout(xml, idp=idp, slo_url=self.p.endpoints.slo_url,
                          now=self.p.services.clock.now(),
                          skew=timedelta(seconds=self.p.cfg.clock_skew), signed_query=signed)
        if msg.kind != "LogoutResponse":
            raise LogoutError("expected a LogoutResponse")
        return RedirectResponse(pending["return_to"], status_code=303)

    def _logout_request(self, request: Request, params: dict[str, str],
                        raw: str | None) -> Response:
        xml, signed = self._decode(params, raw, "SAMLRequest")
        idp = self.p.registry.get(peek_issuer(xml))
        if idp is None:
            raise LogoutError("LogoutRequest from an unknown IdP")
        msg = read_logout(xml, idp=idp, slo_url=self.p.endpoints.slo_url,
                          now=self.p.services.clock.now(),
                          skew=timedelta(seconds=self.p.cfg.clock_skew), signed_query=signed)
        if msg.kind != "LogoutRequest":
            raise LogoutError("expected a LogoutRequest")
        sessions = self.p.services.sessions
        session = sessions.current(request)
        matches = session is not None and any(
            rec.event.provider == "spid" and rec.event.idp == idp.entity_id
            and rec.event.provider_state.get("name_id") == msg.name_id
            for rec in session.logins)
        status = STATUS_SUCCESS
        binding = BINDING_REDIRECT if idp.slo.get(BINDING_REDIRECT) else BINDING_POST
        answer = build_logout_response(
            response_id=new_id(), now=self.p.services.clock.now(),
            sp_entity_id=self.p.endpoints.entity_id, destination=idp.slo.get(binding, ""),
            in_response_to=msg.id, status=status)
        response = self._send(idp, answer, "SAMLResponse", params.get("RelayState", ""))
        if matches:
            sessions.end(request, response, reason="provider_initiated")
        return response
