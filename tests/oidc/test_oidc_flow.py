"""The authorization code flow end to end, as a relying party sees it over real HTTP.

A real broker on uvicorn (demo config), a test RP that is not the server's code
(httpx + pyjwt), the PIN login done through the real forms.
"""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from tests.oidc.oidc_helpers import (
    GIUSEPPE,
    LAURA,
    PIN_GIUSEPPE,
    PIN_LAURA,
    Browser,
    IdTokenCheck,
    demo_rp,
    now_of,
    pension_rp,
)

pytestmark = pytest.mark.integration


def test_discovery_and_jwks_describe_what_the_broker_enforces(broker):
    http = broker.client()
    config = http.get("/.well-known/openid-configuration").json()
    assert config["issuer"] == broker.url
    assert config["response_types_supported"] == ["code"]
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert config["authorization_response_iss_parameter_supported"] is True
    assert set(config["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic", "client_secret_post", "private_key_jwt"}
    assert set(config["id_token_signing_alg_values_supported"]) == {"ES256", "RS256"}
    assert config["end_session_endpoint"] == f"{broker.url}/logout"
    assert config["request_parameter_supported"] is False
    keys = http.get(config["jwks_uri"]).json()["keys"]
    assert {k["alg"] for k in keys} == {"ES256", "RS256"}
    for key in keys:
        assert not {"d", "p", "q"} & set(key), "private members published"
        members = ("crv", "kty", "x", "y") if key["kty"] == "EC" else ("e", "kty", "n")
        canonical = json.dumps({m: key[m] for m in members}, separators=(",", ":"),
                               sort_keys=True)
        thumb = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest())
        assert key["kid"] == thumb.decode().rstrip("=")  # RFC 7638


def test_code_flow_with_pkce_gives_a_valid_id_token_and_userinfo(broker):
    rp = demo_rp(broker.url, scope="openid profile fiscal_number")
    browser = Browser(broker.url)
    pending = rp.authorize_params()
    code = browser.login_for_code(pending, LAURA, PIN_LAURA)
    response = rp.exchange(browser.http, pending, code)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    tokens = response.json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 300  # short-lived, not Authlib's ten days
    assert "refresh_token" not in tokens  # no offline_access asked
    check = IdTokenCheck(broker.url).load(browser.http)
    claims = check(tokens["id_token"], client_id="demo-rp", now=now_of(broker),
                   nonce=pending.nonce, access_token=tokens["access_token"])
    assert claims["acr"] == "urn:varco:acr:pin"
    assert claims["amr"] == ["pin"]
    assert claims["privilege"] == "dispositivo"
    assert claims["fiscal_number"] == LAURA
    assert claims["given_name"] and claims["family_name"]
    assert "email" not in claims  # email scope not asked
    assert LAURA not in claims["sub"] and claims["sid"]
    for method in ("GET", "POST"):
        info = browser.http.request(method, "/userinfo", headers={
            "Authorization": f"Bearer {tokens['access_token']}"})
        assert info.status_code == 200, info.text
        body = info.json()
        assert body["sub"] == claims["sub"]
        assert body["fiscal_number"] == LAURA and body["privilege"] == "dispositivo"


def test_max_age_and_claims_parameter(broker):
    rp = demo_rp(broker.url, scope="openid")
    browser = Browser(broker.url)
    claims_param = json.dumps({"id_token": {"given_name": None},
                               "userinfo": {"fiscal_number": {"essential": True}}})
    pending = rp.authorize_params(max_age="600", claims=claims_param)
    tokens = rp.exchange(browser.http, pending,
                         browser.login_for_code(pending, GIUSEPPE, PIN_GIUSEPPE)).json()
    claims = IdTokenCheck(broker.url).load(browser.http)(
        tokens["id_token"], client_id="demo-rp", now=now_of(broker), nonce=pending.nonce,
        access_token=tokens["access_token"])
    assert claims["auth_time"] == now_of(broker)
    assert claims["privilege"] == "ordinario"
    assert "given_name" in claims and "fiscal_number" not in claims
    info = browser.http.get("/userinfo", headers={
        "Authorization": f"Bearer {tokens['access_token']}"}).json()
    assert info["fiscal_number"] == GIUSEPPE and "given_name" not in info


def test_claims_parameter_cannot_widen_the_registration(broker):
    rp = pension_rp(broker.url, scope="openid")  # pension-portal may not have email
    browser = Browser(broker.url)
    pending = rp.authorize_params(claims=json.dumps({"id_token": {"email": None}}))
    tokens = rp.exchange(browser.http, pending,
                         browser.login_for_code(pending, LAURA, PIN_LAURA)).json()
    claims = IdTokenCheck(broker.url).load(browser.http)(
        tokens["id_token"], client_id="pension-portal", now=now_of(broker),
        nonce=pending.nonce, alg="RS256")
    assert "email" not in claims


def test_refresh_rotates_and_reuse_revokes_the_family(broker):
    rp = demo_rp(broker.url, scope="openid offline_access")
    browser = Browser(broker.url)
    pending = rp.authorize_params()
    first = rp.exchange(browser.http, pending,
                        browser.login_for_code(pending, LAURA, PIN_LAURA)).json()
    assert first["refresh_token"]
    second = rp.refresh(browser.http, first["refresh_token"])
    assert second.status_code == 200, second.text
    second = second.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    check = IdTokenCheck(broker.url).load(browser.http)
    claims = check(second["id_token"], client_id="demo-rp", now=now_of(broker), nonce=None,
                   access_token=second["access_token"])
    assert claims["auth_time"] <= now_of(broker)
    # The old refresh token again: refused, and the whole family with it.
    replay = rp.refresh(browser.http, first["refresh_token"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert rp.refresh(browser.http, second["refresh_token"]).json()["error"] == "invalid_grant"
    info = browser.http.get("/userinfo", headers={
        "Authorization": f"Bearer {second['access_token']}"})
    assert info.status_code == 401
    assert 'error="invalid_token"' in info.headers["www-authenticate"]


def test_access_token_and_code_lifetimes(broker):
    rp = demo_rp(broker.url)
    browser = Browser(broker.url)
    pending = rp.authorize_params()
    tokens = rp.exchange(browser.http, pending,
                         browser.login_for_code(pending, LAURA, PIN_LAURA)).json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    broker.clock.advance(seconds=299)
    assert browser.http.get("/userinfo", headers=bearer).status_code == 200
    broker.clock.advance(seconds=2)
    assert browser.http.get("/userinfo", headers=bearer).status_code == 401
    # A code is good for 60 seconds only.
    pending = rp.authorize_params()
    code = Browser(broker.url).login_for_code(pending, LAURA, PIN_LAURA)
    broker.clock.advance(seconds=61)
    late = rp.exchange(browser.http, pending, code)
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant"


def test_introspection_is_per_client(broker):
    demo, pension = demo_rp(broker.url), pension_rp(broker.url)
    browser = Browser(broker.url)
    pending = demo.authorize_params()
    tokens = demo.exchange(browser.http, pending,
                           browser.login_for_code(pending, LAURA, PIN_LAURA)).json()
    own = demo.endpoint(browser.http, "/introspect", {"token": tokens["access_token"]})
    assert own.status_code == 200
    body = own.json()
    assert body["active"] is True and body["client_id"] == "demo-rp"
    assert body["scope"] == "openid profile" and body["exp"] > now_of(broker)
    other = pension.endpoint(browser.http, "/introspect", {"token": tokens["access_token"]})
    assert other.json() == {"active": False}
    junk = demo.endpoint(browser.http, "/introspect", {"token": "not-a-token"})
    assert junk.json() == {"active": False}
    anonymous = browser.http.post("/introspect", data={"token": tokens["access_token"]})
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "invalid_client"


def test_revocation_of_access_and_refresh_tokens(broker):
    rp = demo_rp(broker.url, scope="openid offline_access")
    browser = Browser(broker.url)
    pending = rp.authorize_params()
    tokens = rp.exchange(browser.http, pending,
                         browser.login_for_code(pending, LAURA, PIN_LAURA)).json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert browser.http.get("/userinfo", headers=bearer).status_code == 200
    other = pension_rp(broker.url).endpoint(browser.http, "/revoke",
                                            {"token": tokens["access_token"]})
    assert other.status_code == 400  # not its token: refused, and nothing revoked
    assert browser.http.get("/userinfo", headers=bearer).status_code == 200
    done = rp.endpoint(browser.http, "/revoke", {"token": tokens["access_token"],
                                                 "token_type_hint": "access_token"})
    assert done.status_code == 200
    assert browser.http.get("/userinfo", headers=bearer).status_code == 401
    assert rp.endpoint(browser.http, "/revoke",
                       {"token": tokens["refresh_token"]}).status_code == 200
    assert rp.refresh(browser.http, tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_pairwise_subjects_differ_per_client_and_are_stable(broker):
    browser = Browser(broker.url)
    subs: dict[str, set[str]] = {}
    for rp in (demo_rp(broker.url), pension_rp(broker.url), demo_rp(broker.url)):
        pending = rp.authorize_params()
        if not subs:
            code = browser.login_for_code(pending, LAURA, PIN_LAURA)
        else:  # single sign-on: the code comes without a login
            from tests.oidc.oidc_helpers import code_from
            code = code_from(browser.authorize(pending), pending)
        tokens = rp.exchange(browser.http, pending, code).json()
        info = browser.http.get("/userinfo", headers={
            "Authorization": f"Bearer {tokens['access_token']}"}).json()
        subs.setdefault(rp.client_id, set()).add(info["sub"])
    assert len(subs["demo-rp"]) == 1
    assert subs["demo-rp"] != subs["pension-portal"]
