"""``/authorize`` with ``idp_hint=spid:<entityID>`` goes to the IdP in one response.

The pending login is still bound to the browser: the browser cookie is set on that
same redirect, and a response brought back by another browser is refused.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from broker.http.pages import BROWSER_COOKIE
from tests.providers.spid_env import SpidEnv

pytestmark = pytest.mark.integration


def test_hinted_idp_gets_the_signed_request_straight_from_authorize(spid: SpidEnv):
    browser = spid.browser()
    login, r = browser.authorize()
    assert r.status_code == 302
    target = urlsplit(r.headers["location"])
    assert r.headers["location"].startswith(spid.idp.base_url)
    query = parse_qs(target.query)
    assert {"SAMLRequest", "RelayState", "SigAlg", "Signature"} <= set(query)
    assert BROWSER_COOKIE in r.cookies  # the pending login's binding, on this response
    page = browser.to_idp_form(r)
    done = browser.follow(browser.post_to_acs(browser.idp_submit(page, "mario.rossi")),
                          stop_at=login.redirect_uri)
    assert parse_qs(urlsplit(done.headers["location"]).query).get("code")


def test_response_brought_back_by_another_browser_is_refused(spid: SpidEnv):
    browser = spid.browser()
    _login, r = browser.authorize()
    page = browser.to_idp_form(r)
    idp_page = browser.idp_submit(page, "mario.rossi")
    thief = spid.browser()
    thief.http.cookies.set(BROWSER_COOKIE, "someone-else")
    answer = thief.post_to_acs(idp_page)
    answer = thief.follow(answer, stop_at="\x00")
    assert answer.status_code >= 400
    assert "code=" not in answer.headers.get("location", "")


@pytest.mark.parametrize("hint", ["spid", "spid:https://idp.not-trusted.example"])
def test_no_or_unknown_idp_shows_our_page_at_its_own_url(spid: SpidEnv, hint: str):
    _login, r = spid.browser().authorize(hint=hint)
    assert r.status_code == 303
    location = r.headers["location"]
    assert location.startswith("/login"), location
    assert "SAMLRequest" not in location
