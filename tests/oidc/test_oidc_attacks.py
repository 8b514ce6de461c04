"""What an attacker or a careless RP meets: one named test per class of attack or mistake.

Each asserts what is visible from outside: an error page instead of a redirect, the
OIDC error with ``iss`` and ``state``, a refused token request, tokens that stop working.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import httpx
import jwt
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from broker.paths import project_dir
from tests.oidc.oidc_helpers import (
    LAURA,
    PIN_LAURA,
    RP,
    Browser,
    demo_rp,
    error_from,
    now_of,
    pension_rp,
)

pytestmark = pytest.mark.integration
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


# --- authorization endpoint -----------------------------------------------------------
def test_unregistered_redirect_uri_gets_an_error_page_never_a_redirect(broker):
    browser = Browser(broker.url)
    for params in (
        {"redirect_uri": "https://evil.example/cb"},
        {"redirect_uri": f"{broker.url}/demo-rp/callback/../evil"},
        {"redirect_uri": f"{broker.url}/demo-rp/callback?x=1"},
        {"redirect_uri": None},
        {"client_id": "no-such-client"},
    ):
        pending = demo_rp(broker.url).authorize_params(**params)
        response = browser.authorize(pending)
        assert response.status_code == 400, params
        assert "location" not in response.headers
        assert 'href="https://evil' not in response.text and "refresh" not in response.text
        assert "richiesta di accesso non valida" in response.text  # our readable page
        assert re.search(r"<code>[0-9a-f]{12}</code>", response.text)  # with an error id


@pytest.mark.parametrize("pkce", [
    {"code_challenge": None, "code_challenge_method": None},
    {"code_challenge_method": "plain"},
    {"code_challenge_method": None},  # defaults to plain in RFC 7636
    {"code_challenge": "short"},
])
def test_missing_or_plain_pkce_is_refused_for_every_client(broker, pkce):
    for rp in (demo_rp(broker.url), pension_rp(broker.url)):  # both confidential
        pending = rp.authorize_params(**pkce)
        error = error_from(Browser(broker.url).authorize(pending), pending)
        assert error["error"] == "invalid_request"


@pytest.mark.parametrize(("params", "error"), [
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"response_type": "code id_token"}, "unsupported_response_type"),
    ({"scope": "profile"}, "invalid_scope"),
    ({"scope": "openid abilitazioni"}, "invalid_scope"),  # not registered for demo-rp
    ({"prompt": "none login"}, "invalid_request"),
    ({"prompt": "bogus"}, "invalid_request"),
    ({"max_age": "-1"}, "invalid_request"),
    ({"claims": "{not json"}, "invalid_request"),
    ({"claims": '{"access_token": {}}'}, "invalid_request"),
    ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
    ({"response_mode": "fragment"}, "invalid_request"),
])
def test_invalid_requests_return_to_the_rp_with_iss_and_state(broker, params, error):
    pending = demo_rp(broker.url).authorize_params(**params)
    assert error_from(Browser(broker.url).authorize(pending), pending)["error"] == error


def test_prompt_none_without_a_session_is_login_required(broker):
    pending = demo_rp(broker.url).authorize_params(prompt="none")
    error = error_from(Browser(broker.url).authorize(pending), pending)
    assert error["error"] == "login_required"


def test_repeated_parameters_are_refused(broker):
    rp = demo_rp(broker.url)
    pending = rp.authorize_params()
    url = httpx.URL("/authorize", params=[*list(pending.params.items()), ("scope", "openid")])
    assert error_from(Browser(broker.url).http.get(url), pending)["error"] == "invalid_request"
    twice = [*list(pending.params.items()), ("redirect_uri", "https://evil.example/")]
    page = Browser(broker.url).http.get(httpx.URL("/authorize", params=twice))
    assert page.status_code == 400 and "location" not in page.headers


# --- token endpoint -------------------------------------------------------------------
def _code(broker, rp: RP, browser: Browser | None = None):
    browser = browser or Browser(broker.url)
    pending = rp.authorize_params()
    return browser, pending, browser.login_for_code(pending, LAURA, PIN_LAURA)


def test_wrong_code_verifier_fails_and_burns_the_code(broker):
    rp = demo_rp(broker.url)
    browser, pending, code = _code(broker, rp)
    wrong = rp.exchange(browser.http, pending, code, verifier=secrets.token_urlsafe(48))
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    again = rp.exchange(browser.http, pending, code)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_token_endpoint_refuses_other_methods_and_oversized_forms(broker):
    http = httpx.Client(base_url=broker.url)
    got = http.get("/token")
    assert got.status_code == 405 and "location" not in got.headers
    flood = "&".join(f"x{i}=1" for i in range(1001))
    response = http.post("/token", content=flood, auth=("demo-rp", "demo-rp-secret"),
                         headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert response.headers["cache-control"] == "no-store"
    repeated = http.post("/token", content="grant_type=a&grant_type=b",
                         auth=("demo-rp", "demo-rp-secret"),
                         headers={"content-type": "application/x-www-form-urlencoded"})
    assert repeated.status_code == 400 and repeated.json()["error"] == "invalid_request"


def test_request_bodies_over_the_limit_are_refused_before_they_are_read(broker):
    """1 MiB for any request (the PIN conversion upload has its own, larger, limit)."""
    big = "grant_type=authorization_code&pad=" + "x" * (1024 * 1024)
    http = httpx.Client(base_url=broker.url)
    form = {"content-type": "application/x-www-form-urlencoded"}
    token = http.post("/token", content=big, auth=("demo-rp", "demo-rp-secret"), headers=form)
    assert token.status_code == 400 and token.json()["error"] == "invalid_request"

    def chunks():  # no content-length: the limit is counted while reading
        for _ in range(20):
            yield b"x" * 65536

    streamed = http.post("/token", content=chunks(), auth=("demo-rp", "demo-rp-secret"),
                         headers=form)
    assert streamed.status_code == 400 and streamed.json()["error"] == "invalid_request"
    acs = http.post("/spid/acs", content=big.replace("grant_type", "RelayState"),
                    headers=form)
    assert acs.status_code == 413 and "troppo grande" in acs.text  # our page, no redirect
    assert "location" not in acs.headers
    cancel = http.post("/login/cancel", content=big, headers=form)  # an ordinary route
    assert cancel.status_code == 413 and "location" not in cancel.headers


def test_missing_code_verifier_is_refused(broker):
    rp = demo_rp(broker.url)
    browser, _pending, code = _code(broker, rp)
    response = rp.token(browser.http, {"grant_type": "authorization_code", "code": code,
                                       "redirect_uri": rp.redirect_uri})
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_code_replay_is_refused_and_revokes_what_the_code_issued(broker):
    rp = demo_rp(broker.url, scope="openid offline_access")
    browser, pending, code = _code(broker, rp)
    tokens = rp.exchange(browser.http, pending, code).json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert browser.http.get("/userinfo", headers=bearer).status_code == 200
    replay = rp.exchange(browser.http, pending, code)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert browser.http.get("/userinfo", headers=bearer).status_code == 401
    assert rp.refresh(browser.http, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    status = rp.endpoint(browser.http, "/introspect", {"token": tokens["access_token"]})
    assert status.json() == {"active": False}


def test_wrong_client_secret_and_wrong_method_are_invalid_client(broker):
    rp = demo_rp(broker.url)
    browser, pending, code = _code(broker, rp)
    wrong = RP(broker.url, "demo-rp", rp.redirect_uri, "demo-rp-secreT")
    response = wrong.exchange(browser.http, pending, code)
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    # demo-rp is registered for client_secret_basic: the right secret in the body fails.
    as_post = RP(broker.url, "demo-rp", rp.redirect_uri, "demo-rp-secret", auth="post")
    response = as_post.exchange(browser.http, pending, code)
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    # The failed attempts did not consume the code: the genuine client still can.
    assert rp.exchange(browser.http, pending, code).status_code == 200


def test_a_code_is_bound_to_its_client_and_redirect_uri(broker):
    rp = demo_rp(broker.url)
    browser, pending, code = _code(broker, rp)
    other = pension_rp(broker.url)
    thief = RP(broker.url, other.client_id, rp.redirect_uri, other.secret, auth="post")
    response = thief.exchange(browser.http, pending, code)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    browser, pending, code = _code(broker, rp)
    moved = RP(broker.url, "demo-rp", f"{broker.url}/demo-rp/elsewhere", rp.secret)
    response = moved.exchange(browser.http, pending, code)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_no_refresh_token_without_offline_access(broker):
    rp = demo_rp(broker.url, scope="openid profile")
    browser, pending, code = _code(broker, rp)
    tokens = rp.exchange(browser.http, pending, code).json()
    assert "refresh_token" not in tokens


# --- private_key_jwt ------------------------------------------------------------------
@pytest.fixture
def jwt_broker(broker_factory, tmp_path: Path):
    """The demo clients plus ``jwt-rp``, registered for private_key_jwt with our test key."""
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "rp-key-1"}
    registry = yaml.safe_load((project_dir("config") / "clients.demo.yaml").read_text())
    registry["clients"].append({
        "client_id": "jwt-rp", "name": "JWT RP",
        "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [jwk]},
        "redirect_uris": ["{issuer}/jwt-rp/cb"], "scopes": ["openid", "profile"]})
    path = tmp_path / "clients.yaml"
    path.write_text(yaml.safe_dump(registry))
    return broker_factory(clients=path), key


def _assertion(broker, key, **overrides) -> str:
    now = now_of(broker)
    claims = {"iss": "jwt-rp", "sub": "jwt-rp", "aud": f"{broker.url}/token",
              "iat": now, "exp": now + 60, "jti": secrets.token_urlsafe(12), **overrides}
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": "rp-key-1"})


def _jwt_exchange(broker, key, **overrides) -> httpx.Response:
    rp = RP(broker.url, "jwt-rp", f"{broker.url}/jwt-rp/cb", auth="none")
    browser, pending, code = _code(broker, rp)
    assertion = overrides.pop("assertion", None) or _assertion(broker, key, **overrides)
    return rp.token(browser.http, {
        "grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri,
        "code_verifier": pending.verifier, "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion})


def test_private_key_jwt_good_assertion_is_accepted(jwt_broker):
    broker, key = jwt_broker
    response = _jwt_exchange(broker, key)
    assert response.status_code == 200, response.text
    assert response.json()["id_token"]
    issuer_aud = _jwt_exchange(broker, key, aud=broker.url)  # the issuer is a fine aud too
    assert issuer_aud.status_code == 200, issuer_aud.text


def test_private_key_jwt_wrong_key_is_refused(jwt_broker):
    broker, _ = jwt_broker
    response = _jwt_exchange(broker, ec.generate_private_key(ec.SECP256R1()))
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_private_key_jwt_reused_jti_is_refused(jwt_broker):
    broker, key = jwt_broker
    assertion = _assertion(broker, key)
    assert _jwt_exchange(broker, key, assertion=assertion).status_code == 200
    replay = _jwt_exchange(broker, key, assertion=assertion)
    assert replay.status_code == 401 and replay.json()["error"] == "invalid_client"


@pytest.mark.parametrize("overrides", [
    {"aud": "https://other-op.example/token"},
    {"exp": None},
    {"jti": None},
    {"sub": "demo-rp"},
    {"iss": "someone-else"},
], ids=["wrong-aud", "no-exp", "no-jti", "wrong-sub", "wrong-iss"])
def test_private_key_jwt_bad_claims_are_refused(jwt_broker, overrides):
    broker, key = jwt_broker
    response = _jwt_exchange(broker, key, **overrides)
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_private_key_jwt_expired_assertion_is_refused(jwt_broker):
    broker, key = jwt_broker
    now = now_of(broker)
    response = _jwt_exchange(broker, key, iat=now - 600, exp=now - 120)
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_private_key_jwt_alg_none_is_refused(jwt_broker):
    broker, key = jwt_broker
    now = now_of(broker)
    unsigned = jwt.encode({"iss": "jwt-rp", "sub": "jwt-rp", "aud": f"{broker.url}/token",
                           "exp": now + 60, "jti": "x"}, "", algorithm="none")
    response = _jwt_exchange(broker, key, assertion=unsigned)
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
