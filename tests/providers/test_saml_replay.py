"""Assertion replay under a fresh ``InResponseTo``: the assertion-ID mark alone stops it.

The SAML ACS keeps two single-use marks: the pending AuthnRequest named by
``InResponseTo`` (taken once) and the assertion ID (kept until the assertion expires).
Every other replay test is stopped by the first mark already, so switching off the
second broke nothing. Here the IdP answers a *new* AuthnRequest (fresh ``InResponseTo``,
new Response ID, correctly signed) with an assertion whose ID it already used in an
earlier, successful login: what an IdP that caches or re-issues assertions sends, and
the only replay the request mark cannot see.

SPID and CIE share the ACS (``providers.saml.sp``), so one test runs for both.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from lxml import etree
from saml2 import BINDING_HTTP_REDIRECT

from providers.saml.testidp.idp import SAML, IdpRequest, TestIdp
from providers.saml.xmlutil import b64_xml
from tests.providers.cie_env import CieEnv, start_cie_env
from tests.providers.spid_env import Login, SpidBrowser, SpidEnv, form_fields, start_spid_env

pytestmark = pytest.mark.integration


@dataclass
class Profile:
    """One SAML profile's environment and what differs between them."""

    name: str  # the provider, also the ACS path
    env: SpidEnv | CieEnv
    user: str

    def browser(self) -> SpidBrowser:
        return self.env.browser()


@pytest.fixture(params=["spid", "cie"])
def profile(request: pytest.FixtureRequest, broker_factory: Any, tmp_path: Path
            ) -> Iterator[Profile]:
    if request.param == "spid":
        spid = start_spid_env(broker_factory, tmp_path)
        yield Profile("spid", spid, "mario.rossi")
        spid.stop()
    else:
        cie = start_cie_env(broker_factory, tmp_path)
        yield Profile("cie", cie, "cie.rossi")
        cie.stop()


def _assertion_id(saml_response: str) -> str:
    assertion = etree.fromstring(b64_xml(saml_response)).find(f"{{{SAML}}}Assertion")
    assert assertion is not None
    return assertion.get("ID") or ""


def _authn_request(p: Profile, browser: SpidBrowser, r: httpx.Response) -> IdpRequest:
    """Follow the broker to the IdP and read the signed AuthnRequest as the IdP does."""
    redirect = browser.follow(r, stop_at=p.env.idp.base_url)
    q = {k: v[0] for k, v in parse_qs(urlsplit(redirect.headers["location"]).query).items()}
    return p.env.idp.parse_request(BINDING_HTTP_REDIRECT, q["SAMLRequest"], q.get("RelayState"),
                                   q.get("SigAlg"), q.get("Signature"))


def _idp_answers(p: Profile, browser: SpidBrowser, *, assertion_id: str | None = None
                 ) -> tuple[Login, IdpRequest, httpx.Response]:
    """A new login (``prompt=login``) that the IdP answers with a response it signs for
    the new request; ``assertion_id`` forces the ID of its assertion."""

    def reuse_id(root: etree._Element) -> None:
        assertion = root.find(f"{{{SAML}}}Assertion")
        assert assertion is not None
        assertion.set("ID", assertion_id or "")

    login, r = browser.authorize(prompt="login")
    req = _authn_request(p, browser, r)
    xml = p.env.idp.response_xml(req, p.env.idp.users[p.user],
                                 mutate=reuse_id if assertion_id else None)
    posted = browser.http.post(f"{p.env.broker.url}/{p.name}/acs", data={
        "SAMLResponse": TestIdp.encode(xml), "RelayState": req.relay_state or ""})
    return login, req, posted


def test_assertion_replay_under_a_fresh_in_response_to_is_refused(
        profile: Profile, caplog: pytest.LogCaptureFixture) -> None:
    p, browser = profile, profile.browser()
    sessions = p.env.broker.ctx.sessions

    # 1. A full brokered login: RP -> broker -> IdP login form -> ACS -> code -> tokens.
    login, r = browser.authorize()
    idp_page = browser.idp_submit(browser.to_idp_form(r), p.user)
    _, fields = form_fields(idp_page.text)
    used_id = _assertion_id(fields["SAMLResponse"])
    first = browser.follow(browser.post_to_acs(idp_page), stop_at=login.redirect_uri)
    assert browser.tokens(login, first)["claims"]["fiscal_number"].endswith("RSSMRA80A01H501U")
    sid = browser.http.cookies["varco_session"]
    before = sessions.by_sid(sid)
    assert before is not None and len(before.logins) == 1

    # 2. A new AuthnRequest, answered with a signed response for it (its own
    #    InResponseTo and Response ID) carrying the assertion ID of the first login.
    replay_login, req, replay = _idp_answers(p, browser, assertion_id=used_id)
    assert req.id not in fields["SAMLResponse"]  # a request the first answer never saw

    # The citizen gets our readable refusal page (a message, in Italian, and the error id
    # that finds the one log line saying why), not a server error ...
    assert replay.status_code == 400, replay.text[:500]
    page = html.unescape(replay.text)
    message = re.search(r'<div class="error" role="alert">\s*<p>([^<]+)</p>', page)
    assert message and "Torna al servizio" in message.group(1), page
    error_id = re.search(r"Codice dell'errore: <code>([0-9a-f]+)</code>", page)
    assert error_id, page
    logged = [r for r in caplog.records if error_id.group(1) in r.getMessage()]
    assert [r.levelname for r in logged] == ["WARNING"], [r.getMessage() for r in logged]
    # ... the RP gets no code: no redirect at all, let alone to its redirect_uri ...
    assert "location" not in replay.headers
    assert replay_login.redirect_uri not in replay.text
    # ... and the session is exactly what the first login made of it.
    assert "varco_session=" not in replay.headers.get("set-cookie", "")
    assert sessions.by_sid(sid) == before

    # 3. Control: the same hand-driven path with the IdP's own fresh assertion ID logs in,
    #    so the refusal above was the assertion-ID mark's and nothing else's.
    control_login, _, control = _idp_answers(p, browser)
    back = browser.follow(control, stop_at=control_login.redirect_uri)
    assert "code=" in back.headers.get("location", ""), back.text[:500]
    after = sessions.by_sid(browser.http.cookies["varco_session"])
    assert after is not None and len(after.logins) >= 1
