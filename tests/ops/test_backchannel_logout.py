"""OIDC Back-Channel Logout 1.0 and Front-Channel Logout, seen from the relying parties.

A real HTTP receiver on 127.0.0.1 plays the RPs' logout endpoints; the logout tokens
are validated with pyjwt against the broker's published JWKS, as an RP would.
"""

from __future__ import annotations

import hashlib
import html
import re
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
import pytest
import yaml

from broker.config import StoreSettings
from broker.paths import project_dir
from tests.oidc.oidc_helpers import GIUSEPPE, PIN_GIUSEPPE, RP, Browser, demo_rp
from tests.ops.logout_receiver import LogoutReceiver
from tests.ops.sso import login_code, sso_code

pytestmark = pytest.mark.integration
EVENT = "http://schemas.openid.net/event/backchannel-logout"


@pytest.fixture
def receiver():
    r = LogoutReceiver().start()
    yield r
    r.stop()


def clients_file(tmp_path, receiver: LogoutReceiver):
    data = yaml.safe_load((project_dir("config") / "clients.demo.yaml").read_text())
    secret = "sha256:" + hashlib.sha256(b"rp-secret").hexdigest()
    data["clients"] += [
        {"client_id": "bcl-rp", "name": "Back channel RP", "secret_hash": secret,
         "redirect_uris": [f"{receiver.base}/cb"], "id_token_signed_response_alg": "RS256",
         "scopes": ["openid", "profile"],
         "backchannel_logout_uri": f"{receiver.base}/bcl",
         "backchannel_logout_session_required": True},
        {"client_id": "fcl-rp", "name": "Front channel RP", "secret_hash": secret,
         "redirect_uris": [f"{receiver.base}/cb"], "scopes": ["openid", "profile"],
         "frontchannel_logout_uri": f"{receiver.base}/fcl?x=1"},
        {"client_id": "ops-admin", "name": "Operations", "secret_hash": secret,
         "admin_scopes": ["admin:sessions"]},
        {"client_id": "auditor", "name": "Auditor", "secret_hash": secret,
         "admin_scopes": ["admin:audit"]},
    ]
    path = tmp_path / "clients.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def rp(broker, client_id: str, receiver: LogoutReceiver) -> RP:
    return RP(broker.url, client_id, f"{receiver.base}/cb", "rp-secret")


def login_everywhere(broker, receiver) -> tuple[Browser, dict[str, Any]]:
    """PIN login at bcl-rp, then single sign-on at fcl-rp and at the demo RP."""
    browser = Browser(broker.url)
    bcl = rp(broker, "bcl-rp", receiver)
    pending = bcl.authorize_params()
    code = login_code(browser, pending, GIUSEPPE, PIN_GIUSEPPE)
    tokens = bcl.exchange(browser.http, pending, code).json()
    for other in (rp(broker, "fcl-rp", receiver), demo_rp(broker.url)):
        p = other.authorize_params()
        sso_code(browser, p)
    return browser, tokens


def validate(broker, token: str, client_id: str, alg: str) -> dict[str, Any]:
    """What a careful RP does with a logout token (OIDC Back-Channel Logout 1.0, 2.6)."""
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "logout+jwt" and header["alg"] == alg
    jwks = httpx.get(f"{broker.url}/jwks").json()
    jwk = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    claims = jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=[alg], audience=client_id,
                        issuer=broker.url, options={"verify_exp": False, "verify_iat": False,
                                                    "require": ["iat", "exp", "jti"]})
    assert claims["events"] == {EVENT: {}}
    assert "nonce" not in claims
    assert 0 < claims["exp"] - claims["iat"] <= 120
    return claims


def test_discovery_advertises_both_channels(broker):
    config = broker.client().get("/.well-known/openid-configuration").json()
    assert config["backchannel_logout_supported"] is True
    assert config["backchannel_logout_session_supported"] is True
    assert config["frontchannel_logout_supported"] is True


def test_rp_initiated_logout_reaches_every_rp_of_the_session(broker_factory, tmp_path,
                                                             receiver):
    broker = broker_factory(clients=clients_file(tmp_path, receiver))
    browser, tokens = login_everywhere(broker, receiver)
    id_claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    page = browser.http.get("/logout", params={"id_token_hint": tokens["id_token"]})
    assert page.status_code == 200
    [post] = receiver.wait_for(1)
    assert post.path == "/bcl"
    assert post.content_type == "application/x-www-form-urlencoded"
    claims = validate(broker, post.form["logout_token"][0], "bcl-rp", "RS256")
    assert claims["sid"] == id_claims["sid"] and claims["sub"] == id_claims["sub"]
    # The front-channel RP is framed on the signed-out page, allowed by the CSP.
    frames = [html.unescape(u) for u in re.findall(r'<iframe src="([^"]+)"', page.text)]
    assert frames == [f"{receiver.base}/fcl?x=1&"
                      + urlencode({"iss": broker.url, "sid": id_claims["sid"]})]
    assert f"frame-src {receiver.base}" in page.headers["content-security-policy"]
    time.sleep(0.5)
    assert len(receiver.posts) == 1  # the demo RP registered neither: nothing for it
    [audit] = broker.ctx.audit.entries("oidc.backchannel_logout")
    assert audit.data["ok"] is True and audit.data["client_id"] == "bcl-rp"


def test_a_failing_rp_endpoint_is_retried_off_the_request_path(broker_factory, tmp_path,
                                                               receiver):
    broker = broker_factory(clients=clients_file(tmp_path, receiver))
    browser, tokens = login_everywhere(broker, receiver)
    receiver.statuses = [503]
    started = time.monotonic()
    page = browser.http.get("/logout", params={"id_token_hint": tokens["id_token"]})
    assert page.status_code == 200 and time.monotonic() - started < 1  # did not wait
    first, second = receiver.wait_for(2)
    assert first.form["logout_token"] == second.form["logout_token"]
    deadline = time.monotonic() + 5
    while not broker.ctx.audit.entries("oidc.backchannel_logout"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    [audit] = broker.ctx.audit.entries("oidc.backchannel_logout")
    assert audit.data["ok"] is True and audit.data["attempts"] == 2


def test_session_expiry_is_announced_once(broker_factory, tmp_path, receiver):
    broker = broker_factory(clients=clients_file(tmp_path, receiver),
                            store=StoreSettings(purge_interval=1))
    _browser, tokens = login_everywhere(broker, receiver)
    time.sleep(1.5)
    assert receiver.posts == []  # alive: nothing said
    broker.clock.advance(seconds=broker.ctx.settings.session.lifetime + 1)
    [post] = receiver.wait_for(1)
    claims = validate(broker, post.form["logout_token"][0], "bcl-rp", "RS256")
    assert claims["sid"] == jwt.decode(tokens["id_token"],
                                       options={"verify_signature": False})["sid"]
    time.sleep(1.5)
    assert len(receiver.posts) == 1
    assert broker.ctx.audit.entries("oidc.logout")[-1].data["reason"] == "expired"


def test_admin_revocation_ends_the_session_and_tells_the_rps(broker_factory, tmp_path,
                                                             receiver):
    broker = broker_factory(clients=clients_file(tmp_path, receiver))
    browser, tokens = login_everywhere(broker, receiver)
    sid = jwt.decode(tokens["id_token"], options={"verify_signature": False})["sid"]
    admin = httpx.Client(base_url=broker.url)
    url = f"/admin/sessions/{sid}/revoke"
    body = {"reason": "stolen device reported by the citizen"}
    assert admin.post(url, json=body).status_code == 401  # no client authentication
    assert admin.post(url, json=body, auth=("auditor", "rp-secret")).status_code == 403
    assert admin.post(url, json={}, auth=("ops-admin", "rp-secret")).status_code in (400, 422)
    assert receiver.posts == []  # refused requests changed nothing
    done = admin.post(url, json=body, auth=("ops-admin", "rp-secret"))
    assert done.status_code == 200, done.text
    assert set(done.json()["clients"]) == {"bcl-rp", "fcl-rp", "demo-rp"}
    [post] = receiver.wait_for(1)
    validate(broker, post.form["logout_token"][0], "bcl-rp", "RS256")
    [entry] = broker.ctx.audit.entries("admin.session_revoked")
    assert entry.data["operator"] == "ops-admin" and "stolen" in entry.data["reason"]
    again = admin.post(url, json=body, auth=("ops-admin", "rp-secret"))
    assert again.status_code == 404
    userinfo = browser.http.get("/userinfo", headers={
        "Authorization": f"Bearer {tokens['access_token']}"})
    assert userinfo.status_code == 401  # the session's tokens died with it
    # A later sweep does not announce the same session a second time.
    broker.clock.advance(seconds=broker.ctx.settings.session.lifetime + 1)
    assert broker.ctx.core.backchannel.sweep_expired() == 0
