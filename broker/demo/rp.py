"""Two tiny relying parties inside the demo broker, so a newcomer sees the whole loop.

Each is a real OIDC client of the broker: it sends the browser to ``/authorize`` with
PKCE and a nonce, exchanges the code at the token endpoint over HTTP, checks the ID
token's signature against the JWKS, and shows the claims. ``demo-rp`` reads (any
privilege); ``pension-portal`` files applications, so its registration requires
``dispositivo``: signing in there after an ordinario PIN shows single sign-on and
step-up. Enabled by ``demo_rp: true``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from broker.context import BrokerContext
from broker.errors import BadRequest
from broker.http.threads import in_thread

COOKIE = "demo_rp_state"
NS = "demo-rp"


@dataclass(frozen=True)
class DemoClient:
    client_id: str
    secret_env: str
    default_secret: str
    callback: str  # path under /demo-rp
    auth: str  # client_secret_basic | client_secret_post
    scope: str


CLIENTS = {
    "demo-rp": DemoClient("demo-rp", "VARCO_DEMO_RP_SECRET", "demo-rp-secret", "/callback",
                          "client_secret_basic",
                          "openid profile email fiscal_number offline_access"),
    "pension-portal": DemoClient("pension-portal", "VARCO_PENSION_PORTAL_SECRET",
                                 "pension-portal-secret", "/pension-portal/callback",
                                 "client_secret_post", "openid profile fiscal_number"),
}


def demo_rp_router(ctx: BrokerContext) -> APIRouter:
    router = APIRouter()

    def redirect_uri(rp: DemoClient) -> str:
        return f"{ctx.issuer}/demo-rp{rp.callback}"

    @router.get("/")
    def home(request: Request) -> Response:
        return ctx.templates.render(request, "demo_rp.html", {"claims": None})

    @router.get("/login")
    def login(request: Request, rp: str = "demo-rp", level: str = "", idp_hint: str = "",
              prompt: str = "") -> Response:
        client = CLIENTS.get(rp)
        if client is None:
            raise BadRequest(f"demo RP: unknown client {rp!r}")
        state = secrets.token_urlsafe(16)
        verifier = secrets.token_urlsafe(48)
        nonce = secrets.token_urlsafe(16)
        challenge = base64.urlsafe_b64encode(
            hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        params = {
            "response_type": "code", "client_id": client.client_id,
            "redirect_uri": redirect_uri(client), "scope": client.scope, "state": state,
            "nonce": nonce, "code_challenge": challenge, "code_challenge_method": "S256",
            "ui_locales": ctx.templates.language(request),
        }
        if level == "dispositivo":
            params["acr_values"] = "https://www.spid.gov.it/SpidL2"
        if idp_hint:
            params["idp_hint"] = idp_hint
        if prompt in ("login", "consent"):
            params["prompt"] = prompt
        ctx.ephemeral.put(NS, state, json.dumps(
            {"verifier": verifier, "nonce": nonce, "rp": client.client_id}), 900)
        response = RedirectResponse(f"{ctx.issuer}/authorize?{urlencode(params)}", 303)
        response.set_cookie(COOKIE, state, httponly=True, samesite="lax", path="/demo-rp")
        return response

    async def callback(request: Request, client: DemoClient, state: str, code: str,
                       error: str, error_description: str, iss: str) -> Response:
        if iss and iss != ctx.issuer:
            raise BadRequest("demo RP: wrong iss in the authorization response")
        if not state or state != request.cookies.get(COOKIE):
            raise BadRequest("demo RP: state does not match this browser")
        saved = await in_thread(ctx.ephemeral.take, NS, state)
        if saved is None or json.loads(saved)["rp"] != client.client_id:
            raise BadRequest("demo RP: unknown state")
        if error:
            return ctx.templates.render(request, "demo_rp.html", {
                "claims": None, "error": error, "error_description": error_description})
        pkce = json.loads(saved)
        secret = os.environ.get(client.secret_env, client.default_secret)
        form = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": redirect_uri(client), "code_verifier": pkce["verifier"]}
        auth: tuple[str | bytes, str | bytes] | None = (client.client_id, secret)
        if client.auth == "client_secret_post":
            form.update(client_id=client.client_id, client_secret=secret)
            auth = None
        async with httpx.AsyncClient(timeout=10) as http:
            token = (await http.post(f"{ctx.issuer}/token", data=form) if auth is None
                     else await http.post(f"{ctx.issuer}/token", auth=auth, data=form))
            if token.status_code != 200:
                raise BadRequest(f"demo RP: token endpoint said {token.status_code}")
            tokens = token.json()
            jwks = (await http.get(f"{ctx.issuer}/jwks")).json()
            userinfo = (await http.get(
                f"{ctx.issuer}/userinfo",
                headers={"Authorization": f"Bearer {tokens['access_token']}"})).json()
        claims = _verify_id_token(tokens["id_token"], jwks, ctx.issuer, pkce["nonce"],
                                  client.client_id, ctx.clock.now().timestamp())
        return ctx.templates.render(request, "demo_rp.html", {
            "claims": claims, "userinfo": userinfo, "rp": client.client_id,
            "logout_url": f"{ctx.issuer}/logout?" + urlencode({
                "id_token_hint": tokens["id_token"],
                "post_logout_redirect_uri": f"{ctx.issuer}/demo-rp/",
                "client_id": client.client_id})})

    for client in CLIENTS.values():
        def make(client: DemoClient = client) -> Callable[..., Awaitable[Response]]:
            async def handler(request: Request, state: str = "", code: str = "",
                              error: str = "", error_description: str = "",
                              iss: str = "") -> Response:
                return await callback(request, client, state, code, error,
                                      error_description, iss)
            return handler
        router.add_api_route(client.callback, make(), methods=["GET"])

    return router


def _verify_id_token(id_token: str, jwks: dict[str, Any], issuer: str,
                     nonce: str, client_id: str, now: float) -> dict[str, Any]:
    """Signature, iss, aud, nonce, and iat/exp against the broker's own clock."""
    header = jwt.get_unverified_header(id_token)
    key = next((k for k in jwks["keys"] if k.get("kid") == header.get("kid")), None)
    if key is None:
        raise BadRequest("demo RP: id_token signed with an unknown key")
    claims = jwt.decode(id_token, jwt.PyJWK(key).key, algorithms=["ES256", "RS256"],
                        audience=client_id, issuer=issuer,
                        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False})
    if not claims["iat"] - 60 <= now < claims["exp"] + 60:
        raise BadRequest("demo RP: id_token expired or issued in the future")
    if claims.get("nonce") != nonce:
        raise BadRequest("demo RP: nonce does not match")
    return claims
