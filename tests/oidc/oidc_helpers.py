"""A small OIDC relying party for the tests, written against the specs, not the server.

It speaks plain HTTP (httpx) and validates ID tokens with pyjwt against the published
JWKS, so a server bug cannot hide behind shared code. ``Browser`` wraps one cookie jar
and performs the PIN login the way a citizen does: follow the redirects to the form,
read the CSRF token from the page, post it.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt

LAURA, PIN_LAURA = "BNCLRA85M41Z404W", "Abroad01"  # abroad, dispositivo
GIUSEPPE, PIN_GIUSEPPE = "VRDGPP70C15Z110R", "Abroad02"  # abroad, ordinario
DEMO_SECRET = "demo-rp-secret"
PENSION_SECRET = "pension-portal-secret"


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, f"no hidden field {name} in page"
    return html.unescape(match.group(1))


def query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@dataclass
class Pending:
    """One authorization request in flight: what the RP must remember."""

    rp: RP
    state: str
    nonce: str
    verifier: str
    params: dict[str, str]


@dataclass
class RP:
    """A registered relying party as the tests drive it."""

    base: str
    client_id: str
    redirect_uri: str
    secret: str | None = None
    auth: str = "basic"  # basic | post | none (caller supplies its own auth)
    scope: str = "openid profile"

    def authorize_params(self, **extra: str) -> Pending:
        verifier = secrets.token_urlsafe(48)
        state, nonce = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
        params = {"response_type": "code", "client_id": self.client_id,
                  "redirect_uri": self.redirect_uri, "scope": self.scope, "state": state,
                  "nonce": nonce, "code_challenge": s256(verifier),
                  "code_challenge_method": "S256", "idp_hint": "pin", **extra}
        params = {k: v for k, v in params.items() if v is not None}
        return Pending(self, state, nonce, verifier, params)

    def _secret(self) -> str:
        assert self.secret is not None, f"{self.client_id} has no secret (auth={self.auth})"
        return self.secret

    def token(self, http: httpx.Client, data: dict[str, str], **kw: Any) -> httpx.Response:
        if self.auth == "basic":
            kw.setdefault("auth", (self.client_id, self._secret()))
        elif self.auth == "post":
            data = {"client_id": self.client_id, "client_secret": self._secret(), **data}
        return http.post(f"{self.base}/token", data=data, **kw)

    def exchange(self, http: httpx.Client, pending: Pending, code: str,
                 verifier: str | None = None, **kw: Any) -> httpx.Response:
        return self.token(http, {"grant_type": "authorization_code", "code": code,
                                 "redirect_uri": self.redirect_uri,
                                 "code_verifier": verifier or pending.verifier}, **kw)

    def refresh(self, http: httpx.Client, refresh_token: str) -> httpx.Response:
        return self.token(http, {"grant_type": "refresh_token",
                                 "refresh_token": refresh_token})

    def endpoint(self, http: httpx.Client, path: str, data: dict[str, str]) -> httpx.Response:
        if self.auth == "basic":
            return http.post(f"{self.base}{path}", data=data,
                             auth=(self.client_id, self._secret()))
        return http.post(f"{self.base}{path}", data={
            "client_id": self.client_id, "client_secret": self._secret(), **data})


class Browser:
    """One browser (cookie jar) that never follows redirects by itself."""

    def __init__(self, base: str):
        self.base = base
        self.http = httpx.Client(base_url=base, follow_redirects=False, timeout=30)

    def authorize(self, pending: Pending) -> httpx.Response:
        return self.http.get(f"/authorize?{urlencode(pending.params)}")

    def walk(self, response: httpx.Response, stop_at: str) -> httpx.Response:
        """Follow broker-internal redirects; stop at a page or a redirect to ``stop_at``."""
        for _ in range(10):
            if response.status_code not in (302, 303):
                return response
            location = response.headers["location"]
            if location.startswith(stop_at):
                return response
            response = self.http.get(location)
        raise AssertionError("redirect loop")

    def pin_login(self, response: httpx.Response, cf: str, pin: str,
                  stop_at: str) -> httpx.Response:
        """From an authorize response, reach the PIN form, log in, return the redirect."""
        page = self.walk(response, stop_at)
        assert page.status_code == 200, page.text
        if 'name="pin"' not in page.text:  # the chooser: pick the PIN
            match = re.search(r'href="(/login/start/pin\?[^"]+)"', page.text)
            assert match, "no PIN choice on the login page"
            page = self.walk(self.http.get(html.unescape(match.group(1))), stop_at)
        assert 'name="pin"' in page.text, page.text
        action = re.search(r'<form method="post" action="([^"]+)"', page.text)
        assert action
        result = self.http.post(html.unescape(action.group(1)), data={
            "csrf_token": hidden(page.text, "csrf_token"), "tx": hidden(page.text, "tx"),
            "fiscal_code": cf, "pin": pin})
        return self.walk(result, stop_at)

    def login_for_code(self, pending: Pending, cf: str, pin: str) -> str:
        """The whole front channel: authorize, PIN login, back at the RP with a code."""
        final = self.pin_login(self.authorize(pending), cf, pin, pending.rp.redirect_uri)
        return code_from(final, pending)

    def close(self) -> None:
        self.http.close()


def code_from(response: httpx.Response, pending: Pending) -> str:
    assert response.status_code in (302, 303), response.text[:500]
    location = response.headers["location"]
    assert location.startswith(pending.rp.redirect_uri + "?"), location
    params = query(location)
    assert params.get("iss") == pending.rp.base, params  # RFC 9207
    assert params.get("state") == pending.state, params
    assert "error" not in params, params
    return params["code"]


def error_from(response: httpx.Response, pending: Pending) -> dict[str, str]:
    assert response.status_code in (302, 303), response.text[:500]
    location = response.headers["location"]
    assert location.startswith(pending.rp.redirect_uri + "?"), location
    params = query(location)
    assert params.get("iss") == pending.rp.base, params  # RFC 9207, errors too
    assert params.get("state") == pending.state, params
    assert "code" not in params
    return params


@dataclass
class IdTokenCheck:
    """Validates ID tokens like a careful RP: JWKS signature, iss, aud, nonce, at_hash."""

    base: str
    jwks: dict[str, Any] = field(default_factory=dict)

    def load(self, http: httpx.Client) -> IdTokenCheck:
        config = http.get(f"{self.base}/.well-known/openid-configuration").json()
        assert config["issuer"] == self.base
        self.jwks = http.get(config["jwks_uri"]).json()
        return self

    def __call__(self, id_token: str, *, client_id: str, now: int, nonce: str | None,
                 access_token: str | None = None, alg: str = "ES256") -> dict[str, Any]:
        header = jwt.get_unverified_header(id_token)
        assert header["alg"] == alg
        jwk = next(k for k in self.jwks["keys"] if k["kid"] == header["kid"])
        claims = jwt.decode(id_token, jwt.PyJWK(jwk).key, algorithms=[alg],
                            audience=client_id, issuer=self.base,
                            options={"verify_exp": False, "verify_iat": False,
                                     "require": ["iss", "sub", "aud", "exp", "iat",
                                                 "auth_time"]})
        assert claims["iat"] <= now < claims["exp"], "id_token not valid at the broker's now"
        assert claims["auth_time"] <= now
        assert claims.get("nonce") == nonce
        if access_token is not None:
            digest = hashlib.sha256(access_token.encode()).digest()[:16]
            assert claims["at_hash"] == base64.urlsafe_b64encode(digest).decode().rstrip("=")
        return claims


def demo_rp(base: str, **kw: Any) -> RP:
    return RP(base, "demo-rp", f"{base}/demo-rp/callback", DEMO_SECRET, **kw)


def pension_rp(base: str, **kw: Any) -> RP:
    return RP(base, "pension-portal", f"{base}/demo-rp/pension-portal/callback",
              PENSION_SECRET, auth="post", **kw)


def now_of(broker: Any) -> int:
    return int(broker.clock.now().timestamp())


def b64json(part: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded
