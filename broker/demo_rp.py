"""A tiny relying party inside the demo broker, so a newcomer sees the whole loop.

It is a real OIDC client of the broker: it sends the browser to ``/authorize`` with
PKCE and a nonce, exchanges the code at the token endpoint over HTTP, checks the ID
token's signature against the JWKS, and shows the claims. Enabled by ``demo_rp: true``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from broker.context import BrokerContext
from broker.errors import BadRequest

CLIENT_ID = "demo-rp"
COOKIE = "demo_rp_state"
NS = "demo-rp"


def demo_rp_router(ctx: BrokerContext) -> APIRouter:
    router = APIRouter()
    secret = os.environ.get("VARCO_DEMO_RP_SECRET", "demo-rp-secret")
    redirect_uri = f"{ctx.issuer}/demo-rp/callback"

    @router.get("/")
    def home(request: Request) -> Response:
        return ctx.templates.render(request, "demo_rp.html", {"claims": None})

    @router.get("/login")
    def login(request: Request, level: str = "", idp_hint: str = "",
              prompt: str = "") -> Response:
        state = secrets.token_urlsafe(16)
        verifier = secrets.token_urlsafe(48)
        nonce = secrets.token_urlsafe(16)
        challenge = base64.urlsafe_b64encode(
            hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        params = {
            "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": redirect_uri,
            "scope": "openid profile email fiscal_number offline_access", "state": state,
            "nonce": nonce, "code_challenge": challenge, "code_challenge_method": "S256",
            "ui_locales": ctx.templates.language(request),
        }
        if level == "dispositivo":
            params["acr_values"] = "https://www.spid.gov.it/SpidL2"
        if idp_hint:
            params["idp_hint"] = idp_hint
        if prompt in ("login", "consent"):
            params["prompt"] = prompt
        ctx.ephemeral.put(NS, state, json.dumps({"verifier": verifier, "nonce": nonce}), 900)
        response = RedirectResponse(f"{ctx.issuer}/authorize?{urlencode(params)}", 303)
        response.set_cookie(COOKIE, state, httponly=True, samesite="lax", path="/demo-rp")
        return response

    @router.get("/callback")
    async def callback(request: Request, state: str = "", code: str = "", error: str = "",
                       error_description: str = "", iss: str = "") -> Response:
        if iss and iss != ctx.issuer:
            raise BadRequest("demo RP: wrong iss in the authorization response")
        if not state or state != request.cookies.get(COOKIE):
            raise BadRequest("demo RP: state does not match this browser")
        saved = ctx.ephemeral.take(NS, state)
        if saved is None:
            raise BadRequest("demo RP: unknown state")
        if error:
            return ctx.templates.render(request, "demo_rp.html", {
                "claims": None, "error": error, "error_description": error_description})
        pkce = json.loads(saved)
        async with httpx.AsyncClient(timeout=10) as client:
            token = await client.post(
                f"{ctx.issuer}/token", auth=(CLIENT_ID, secret),
                data={"grant_type": "authorization_code", "code": code,
                      "redirect_uri": redirect_uri, "code_verifier": pkce["verifier"]})
            if token.status_code != 200:
                raise BadRequest(f"demo RP: token endpoint said {token.status_code}")
            tokens = token.json()
            jwks = (await client.get(f"{ctx.issuer}/jwks")).json()
            userinfo = (await client.get(
                f"{ctx.issuer}/userinfo",
                headers={"Authorization": f"Bearer {tokens['access_token']}"})).json()
        claims = _verify_id_token(tokens["id_token"], jwks, ctx.issuer, pkce["nonce"],
                                  ctx.clock.now().timestamp())
        return ctx.templates.render(request, "demo_rp.html", {
            "claims": claims, "userinfo": userinfo, "id_token": tokens["id_token"],
            "logout_url": f"{ctx.issuer}/logout?" + urlencode({
                "id_token_hint": tokens["id_token"],
                "post_logout_redirect_uri": f"{ctx.issuer}/demo-rp/",
                "client_id": CLIENT_ID})})

    return router


def _verify_id_token(id_token: str, jwks: dict[str, Any], issuer: str,
                     nonce: str, now: float) -> dict[str, Any]:
    """Signature, iss, aud, nonce, and iat/exp against the broker's own clock."""
    header = jwt.get_unverified_header(id_token)
    key = next((k for k in jwks["keys"] if k.get("kid") == header.get("kid")), None)
    if key is None:
        raise BadRequest("demo RP: id_token signed with an unknown key")
    claims = jwt.decode(id_token, jwt.PyJWK(key).key, algorithms=["ES256", "RS256"],
                        audience=CLIENT_ID, issuer=issuer,
                        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False})
    if not claims["iat"] - 60 <= now < claims["exp"] + 60:
        raise BadRequest("demo RP: id_token expired or issued in the future")
    if claims.get("nonce") != nonce:
        raise BadRequest("demo RP: nonce does not match")
    return claims
