"""The test IdP's Single Logout: answers SP LogoutRequests, starts IdP-initiated logouts.

``GET|POST /slo`` with ``SAMLRequest``: pysaml2 verifies the SP's signature and the
IdP answers with a signed LogoutResponse (Redirect) to the SP's SLO endpoint. With
``SAMLResponse``: the SP's answer to an IdP-initiated logout, verified and recorded in
``TestIdp.logout_results``. ``GET /slo/start?sp=..&name_id=..&name_qualifier=..``
sends an IdP-initiated LogoutRequest through the browser.
"""

from __future__ import annotations

import html
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.response import StatusError
from saml2.saml import NAMEID_FORMAT_TRANSIENT, NameID
from saml2.xmldsig import SIG_RSA_SHA256

from providers.saml.testidp.idp import TestIdp


def _location(info: dict[str, Any]) -> str:
    return str(dict(info["headers"])["Location"])


def add_slo_routes(router: APIRouter, idp: TestIdp) -> None:
    """Add ``/slo`` and ``/slo/start``; see the module docstring."""

    @router.get("/slo/start")
    def start(sp: str, name_id: str, name_qualifier: str) -> Response:
        server = idp.server()
        dest = server.metadata.single_logout_service(sp, BINDING_HTTP_REDIRECT, "spsso")
        location = dest[0]["location"]
        _, req = server.create_logout_request(
            location, sp, name_id=NameID(format=NAMEID_FORMAT_TRANSIENT,
                                         name_qualifier=name_qualifier, text=name_id),
            sign=False)
        info = server.apply_binding(BINDING_HTTP_REDIRECT, str(req), location, "idp-slo",
                                    sign=True, sigalg=SIG_RSA_SHA256)
        return RedirectResponse(_location(info), status_code=302)

    @router.api_route("/slo", methods=["GET", "POST"])
    async def slo(request: Request) -> Response:
        if request.method == "GET":
            params = dict(request.query_params)
            binding = BINDING_HTTP_REDIRECT
        else:
            params = {k: str(v) for k, v in (await request.form()).items()}
            binding = BINDING_HTTP_POST
        server = idp.server()
        if "SAMLResponse" in params:
            try:
                resp = server.parse_logout_request_response(params["SAMLResponse"], binding)
                status = resp.response.status.status_code.value
            except StatusError as exc:  # verified, but the SP did not succeed
                status = f"non-success: {type(exc).__name__}"
            except Exception as exc:  # pysaml2 raises many types
                status = f"refused: {type(exc).__name__}"
            idp.logout_results.append(status)
            return HTMLResponse(f"<p>Logout: {html.escape(status)}</p>")
        if "SAMLRequest" not in params:
            return HTMLResponse("<p>SAMLRequest missing</p>", status_code=400)
        try:
            req = server.parse_logout_request(
                params["SAMLRequest"], binding, relay_state=params.get("RelayState"),
                sigalg=params.get("SigAlg"), signature=params.get("Signature"))
        except Exception as exc:
            return HTMLResponse(f"<p>LogoutRequest refused: {html.escape(type(exc).__name__)}"
                                "</p>", status_code=400)
        sp = req.message.issuer.text.strip()
        dest = server.metadata.single_logout_service(sp, BINDING_HTTP_REDIRECT, "spsso")
        location = dest[0]["location"]
        resp = server.create_logout_response(req.message, [BINDING_HTTP_REDIRECT], sign=False)
        resp.destination = location
        _spid_issuer(resp)
        info = server.apply_binding(BINDING_HTTP_REDIRECT, str(resp), location,
                                    params.get("RelayState") or "", response=True, sign=True,
                                    sigalg=SIG_RSA_SHA256)
        idp.logout_requests.append(req.message.name_id.text)
        return RedirectResponse(_location(info), status_code=302)


def _spid_issuer(message: Any) -> None:
    if message.issuer is not None:
        message.issuer.format = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"
