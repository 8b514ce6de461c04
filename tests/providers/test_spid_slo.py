"""SAML Single Logout both ways between the broker and the pysaml2 test IdP, over HTTP."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

import pytest
from starlette.requests import Request

from broker.model import AuthEvent
from tests.providers.spid_env import SpidBrowser, SpidEnv

pytestmark = pytest.mark.integration


def _as_request(browser: SpidBrowser) -> Request:
    cookie = "; ".join(f"{k}={v}" for k, v in browser.http.cookies.items())
    return Request({"type": "http", "method": "GET", "path": "/", "query_string": b"",
                    "headers": [(b"cookie", cookie.encode())]})


def _logged_in(spid: SpidEnv) -> tuple[SpidBrowser, AuthEvent]:
    browser = spid.browser()
    login, r = browser.login("mario.rossi")
    browser.tokens(login, r)
    session = spid.broker.ctx.sessions.current(_as_request(browser))
    assert session is not None
    event = next(rec.event for rec in session.logins if rec.event.provider == "spid")
    return browser, event


def test_sp_initiated_logout_reaches_the_idp_and_comes_back(spid: SpidEnv):
    browser, event = _logged_in(spid)
    provider = spid.broker.ctx.providers["spid"]
    start = asyncio.run(provider.logout(_as_request(browser), event, "https://rp.example/bye"))
    assert start is not None and start.status_code == 302
    to_idp = start.headers["location"]
    assert to_idp.startswith(f"{spid.idp.base_url}/slo?SAMLRequest=") and "Signature=" in to_idp
    idp_answer = browser.http.get(to_idp)
    assert idp_answer.status_code == 302, idp_answer.text  # the IdP verified our signature
    assert spid.idp.logout_requests == [event.provider_state["name_id"]]
    back = browser.http.get(idp_answer.headers["location"])
    assert back.status_code == 303
    assert back.headers["location"] == "https://rp.example/bye"
    # The LogoutResponse is single use.
    again = browser.http.get(idp_answer.headers["location"])
    assert again.status_code == 400


def test_idp_initiated_logout_is_verified_and_answered(spid: SpidEnv):
    browser, event = _logged_in(spid)
    start = browser.http.get(f"{spid.idp.base_url}/slo/start?" + urlencode({
        "sp": f"{spid.broker.url}/spid/metadata", "name_id": event.provider_state["name_id"],
        "name_qualifier": event.provider_state["name_qualifier"]}))
    assert start.status_code == 302
    at_sp = browser.http.get(start.headers["location"])
    assert at_sp.status_code == 302, at_sp.text
    assert at_sp.headers["location"].startswith(f"{spid.idp.base_url}/slo?SAMLResponse=")
    browser.http.get(at_sp.headers["location"])
    assert spid.idp.logout_results, "the IdP got no LogoutResponse"
    assert spid.idp.logout_results[-1].endswith("Success")
    assert spid.broker.ctx.sessions.current(_as_request(browser)) is None


def test_tampered_idp_logout_request_is_refused(spid: SpidEnv):
    browser, event = _logged_in(spid)
    start = browser.http.get(f"{spid.idp.base_url}/slo/start?" + urlencode({
        "sp": f"{spid.broker.url}/spid/metadata", "name_id": event.provider_state["name_id"],
        "name_qualifier": event.provider_state["name_qualifier"]}))
    location = start.headers["location"]
    tampered = location.replace("RelayState=idp-slo", "RelayState=evil")
    assert tampered != location
    r = browser.http.get(tampered)
    assert r.status_code == 400
    unsigned = location.split("&Signature=")[0]
    assert browser.http.get(unsigned).status_code == 400
    assert spid.broker.ctx.sessions.current(_as_request(browser)) is not None
