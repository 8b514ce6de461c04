"""CIE end to end over real HTTP: RP -> broker -> pysaml2 test IdP as CIE ID -> ACS -> RP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urljoin

import httpx
import pytest
from lxml import etree

from broker.http.pages import LANG_COOKIE
from providers.base import LogoutCapable
from providers.cie.metadata import CIE_NS
from providers.saml.keys import cert_from_b64
from providers.saml.signing import verify_element
from providers.saml.testidp.idp import SAML, TestIdp
from providers.saml.testidp.mount import PREFIX_CIE
from tests.providers.cie_env import CieBrowser, CieEnv, start_cie_env

pytestmark = pytest.mark.integration

L2 = "https://www.spid.gov.it/SpidL2"
L3 = "https://www.spid.gov.it/SpidL3"
ENTITY = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"
MD = "{urn:oasis:names:tc:SAML:2.0:metadata}"


@pytest.fixture
def cie(broker_factory, tmp_path: Path) -> Iterator[CieEnv]:
    env = start_cie_env(broker_factory, tmp_path)
    yield env
    env.stop()


def _answer(browser: CieBrowser, xml: bytes, relay: str | None) -> httpx.Response:
    return browser.post_fields({"SAMLResponse": TestIdp.encode(xml), "RelayState": relay or ""})


def test_cie_login_gives_tokens_with_fiscal_number_and_dispositivo(cie: CieEnv):
    browser = cie.browser()
    login, r = browser.login("cie.rossi")
    body = browser.tokens(login, r)
    claims = body["claims"]
    assert claims["acr"] == L2
    assert "cie" in claims["amr"]
    assert claims["privilege"] == "dispositivo"
    userinfo = browser.http.get(f"{cie.broker.url}/userinfo", headers={
        "Authorization": f"Bearer {body['access_token']}"}).json()
    assert userinfo.get("fiscal_number") == "RSSMRA80A01H501U", userinfo
    assert userinfo.get("family_name") == "Rossi"


def test_rp_asking_level3_gets_a_level3_request_and_acr(cie: CieEnv):
    browser = cie.browser()
    login, r = browser.authorize(acr_values=L3)
    form = browser.to_idp_form(r)
    assert "SpidL3" in form.text
    body = browser.tokens(login, browser.follow(
        browser.post_to_acs(browser.idp_submit(form, "cie.rossi")), stop_at=login.redirect_uri))
    assert body["claims"]["acr"] == L3 and body["claims"]["privilege"] == "dispositivo"


def test_authn_request_follows_the_cie_profile(cie: CieEnv):
    browser = cie.browser()
    _, r = browser.authorize()
    req, q = browser.authn_request(r)  # the IdP verified its signature
    from providers.saml.xmlutil import inflate_b64, parse

    root = parse(inflate_b64(q["SAMLRequest"]))
    assert root.get("ForceAuthn") == "true"
    assert root.get("Destination") == f"{cie.idp.base_url}/sso"
    assert req.comparison == "minimum" and req.acr == L2
    assert req.sp_entity_id == f"{cie.broker.url}/cie/metadata"


def test_comparison_exact_from_config(broker_factory, tmp_path: Path):
    env = start_cie_env(broker_factory, tmp_path, comparison="exact")
    try:
        browser = env.browser()
        login, r = browser.authorize()
        req, _ = browser.authn_request(r)
        assert req.comparison == "exact"
        # A level-3 assertion still satisfies an exact level-2 request (higher is fine).
        xml = env.idp.response_xml(req, env.idp.users["cie.rossi"], acr=L3)
        back = browser.follow(_answer(browser, xml, req.relay_state), stop_at=login.redirect_uri)
        assert browser.tokens(login, back)["claims"]["acr"] == L3
    finally:
        env.stop()


@pytest.mark.parametrize("code, words", [
    (1, ("non riuscita", "failed")),
    (21, ("Tempo scaduto", "timed out")),
    (22, ("acconsentito", "consent")),
])
def test_cie_error_codes_get_readable_pages(cie: CieEnv, code: int, words: tuple[str, str]):
    browser = cie.browser()
    _, r = browser.authorize()
    req, _ = browser.authn_request(r)
    page = _answer(browser, cie.idp.error_xml(req, code), req.relay_state)
    assert page.status_code == 403
    assert words[0] in page.text
    assert "location" not in page.headers
    # The same page in English, for a browser that chose English.
    browser.http.cookies.set(LANG_COOKIE, "en")
    _, r = browser.authorize()
    req, _ = browser.authn_request(r)
    page = _answer(browser, cie.idp.error_xml(req, code), req.relay_state)
    assert page.status_code == 403 and words[1] in page.text


def test_cancel_at_cie_returns_access_denied_to_the_rp(cie: CieEnv):
    browser = cie.browser()
    login, r = browser.authorize()
    form = browser.to_idp_form(r)
    acs = browser.post_to_acs(browser.idp_submit(form, "", action="cancel"))
    back = browser.follow(acs, stop_at=login.redirect_uri)
    location = back.headers["location"]
    assert location.startswith(login.redirect_uri)
    assert "error=access_denied" in location and f"state={login.state}" in location


def test_tampered_response_is_refused(cie: CieEnv):
    """A signed CIE response whose fiscal code is changed after signing."""
    browser = cie.browser()
    login, r = browser.authorize()
    req, _ = browser.authn_request(r)
    xml = cie.idp.response_xml(req, cie.idp.users["cie.bianchi"])
    assert b"BNCNNA85M41F205Q" in xml
    tampered = xml.replace(b"BNCNNA85M41F205Q", b"RSSMRA80A01H501U")
    page = _answer(browser, tampered, req.relay_state)
    assert page.status_code == 400
    assert "non è valida" in page.text
    assert login.redirect_uri not in page.headers.get("location", "")


def test_issuer_without_format_is_accepted_and_its_value_checked(cie: CieEnv):
    browser = cie.browser()
    login, r = browser.authorize()
    req, _ = browser.authn_request(r)
    xml = cie.idp.response_xml(req, cie.idp.users["cie.rossi"])
    issuers = etree.fromstring(xml).iter(f"{{{SAML}}}Issuer")
    assert all(i.get("Format") is None for i in issuers), "CIE ID sends Issuer without Format"
    back = browser.follow(_answer(browser, xml, req.relay_state), stop_at=login.redirect_uri)
    assert browser.tokens(login, back)["claims"]["privilege"] == "dispositivo"


@pytest.mark.parametrize("mutation", ["other value", "other format", "empty format"])
def test_wrong_issuer_is_refused_even_when_validly_signed(cie: CieEnv, mutation: str):
    def mutate(root):
        for issuer in root.iter(f"{{{SAML}}}Issuer"):
            if mutation == "other value":
                issuer.text = "https://idp.attacker.example"
            elif mutation == "other format":
                issuer.set("Format", "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified")
            else:
                issuer.set("Format", "")

    browser = cie.browser()
    _, r = browser.authorize()
    req, _ = browser.authn_request(r)
    xml = cie.idp.response_xml(req, cie.idp.users["cie.rossi"], mutate=mutate)
    page = _answer(browser, xml, req.relay_state)
    assert page.status_code == 400 and "non è valida" in page.text


def test_issuer_with_entity_format_is_accepted(cie: CieEnv):
    def mutate(root):
        for issuer in root.iter(f"{{{SAML}}}Issuer"):
            issuer.set("Format", ENTITY)

    browser = cie.browser()
    login, r = browser.authorize()
    req, _ = browser.authn_request(r)
    xml = cie.idp.response_xml(req, cie.idp.users["cie.rossi"], mutate=mutate)
    back = browser.follow(_answer(browser, xml, req.relay_state), stop_at=login.redirect_uri)
    assert "code=" in back.headers["location"]


def test_replayed_response_is_refused(cie: CieEnv):
    browser = cie.browser()
    login, r = browser.authorize()
    idp_page = browser.idp_submit(browser.to_idp_form(r), "cie.rossi")
    first = browser.follow(browser.post_to_acs(idp_page), stop_at=login.redirect_uri)
    assert first.status_code in (302, 303)
    again = browser.post_to_acs(idp_page)
    assert again.status_code == 400


def test_cross_site_acs_post_is_parked_and_resumed_once(cie: CieEnv):
    browser = cie.browser()
    login, r = browser.authorize()
    posted = browser.post_to_acs(browser.idp_submit(browser.to_idp_form(r), "cie.rossi"),
                                 cross_site=True)
    assert posted.status_code == 303
    resume = urljoin(str(posted.url), posted.headers["location"])
    assert "/cie/acs?resume=" in resume and "SAMLResponse" not in resume
    back = browser.follow(browser.http.get(resume), stop_at=login.redirect_uri)
    assert browser.tokens(login, back)["claims"]["privilege"] == "dispositivo"
    assert browser.http.get(resume).status_code == 400, "a resume key works once"


def test_metadata_per_the_cie_profile(cie: CieEnv):
    r = httpx.get(f"{cie.broker.url}/cie/metadata")
    assert r.status_code == 200
    root = etree.fromstring(r.content)
    certs = root.xpath("//ds:X509Certificate/text()",
                       namespaces={"ds": "http://www.w3.org/2000/09/xmldsig#"})
    assert isinstance(certs, list) and certs
    verify_element(root, [cert_from_b64(str(certs[-1]))])
    requested = [a.get("Name", "") for a in root.iter(f"{MD}RequestedAttribute")]
    assert sorted(requested) == ["dateOfBirth", "familyName", "fiscalNumber", "name"]
    contacts = root.findall(f"{MD}ContactPerson")
    assert [c.get("contactType") for c in contacts] == ["administrative"]
    ext = contacts[0].find(f"{MD}Extensions")
    assert ext is not None
    assert ext.find(f"{{{CIE_NS}}}Public") is not None
    assert ext.findtext(f"{{{CIE_NS}}}IPACode") == "inps"
    assert ext.findtext(f"{{{CIE_NS}}}Municipality") == "H501"
    assert ext.find(f"{{{CIE_NS}}}Private") is None


def test_no_saml_logout_with_cie(cie: CieEnv):
    provider = cie.broker.ctx.providers["cie"]
    assert not isinstance(provider, LogoutCapable)
    page = httpx.get(f"{cie.broker.url}/cie/slo?SAMLRequest=x")
    assert page.status_code == 400 and "Esci" in page.text


def test_login_page_shows_the_cie_button_that_goes_straight_to_cie_id(cie: CieEnv):
    browser = cie.browser()
    _, r = browser.authorize(hint="")
    page = browser.follow(r, stop_at="\x00")
    assert page.status_code == 200 and "Entra con CIE" in page.text
    import html
    import re

    link = re.search(r'class="button cie-button" href="([^"]+)"', page.text)
    assert link, page.text
    start = browser.http.get(cie.broker.url + html.unescape(link.group(1)))
    assert start.status_code == 302
    assert start.headers["location"].startswith(f"{cie.idp.base_url}/sso?SAMLRequest=")


def test_demo_broker_serves_the_cie_test_idp(broker_factory):
    """The demo config: the test IdP plays CIE ID inside the broker at /test-idp-cie."""
    broker = broker_factory()
    stand_in = SimpleNamespace(broker=broker, idp=SimpleNamespace(
        base_url=f"{broker.url}{PREFIX_CIE}"))
    browser = CieBrowser(stand_in)  # type: ignore[arg-type]
    login, r = browser.login("cie.rossi")
    claims = browser.tokens(login, r)["claims"]
    assert claims["privilege"] == "dispositivo" and "cie" in claims["amr"]
