"""eIDAS through FICEP, end to end: RP -> broker -> FICEP (the pysaml2 test IdP) -> the
SPID ACS -> RP, for a citizen of another EU state, linked or not to a codice fiscale."""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from lxml import etree

from broker.paths import project_dir
from providers.saml.testidp.idp import SAML, TestIdp
from tests.oidc.oidc_helpers import Browser, demo_rp
from tests.providers.eidas_env import (
    BIANCHI_ID,
    LAURA,
    SCHMIDT_ID,
    EidasBrowser,
    EidasEnv,
    start_eidas_env,
)
from tests.providers.spid_env import form_fields

pytestmark = pytest.mark.integration
BACKOFFICE = ("backoffice", "backoffice-secret")
SUBSTANTIAL = "http://eidas.europa.eu/LoA/substantial"
HIGH = "http://eidas.europa.eu/LoA/high"


@pytest.fixture
def eidas(broker_factory: Any, tmp_path: Path) -> Iterator[EidasEnv]:
    env = start_eidas_env(broker_factory, tmp_path)
    yield env
    env.stop()


def _login(env: EidasEnv, username: str, **authorize: str) -> tuple[EidasBrowser, Any]:
    browser = env.browser()
    login, r = browser.login(username, **authorize)
    return browser, browser.tokens(login, r)


def _pin_sub(env: EidasEnv) -> str:
    """Laura's ``sub`` at the demo RP when she signs in with her PIN."""
    rp = demo_rp(env.broker.url)
    browser = Browser(env.broker.url)
    pending = rp.authorize_params(idp_hint="pin")
    code = browser.login_for_code(pending, LAURA, "Abroad01")
    tokens = rp.exchange(browser.http, pending, code).json()
    info = browser.http.get(f"{env.broker.url}/userinfo", headers={
        "Authorization": f"Bearer {tokens['access_token']}"}).json()
    browser.close()
    return str(info["sub"])


def test_a_citizen_of_another_state_without_codice_fiscale_reaches_the_rp(eidas: EidasEnv):
    _, tokens = _login(eidas, "eidas.schmidt")
    claims = tokens["claims"]
    assert claims["eidas_person_identifier"] == SCHMIDT_ID
    assert "fiscal_number" not in claims  # none was sent, none is made up
    assert (claims["given_name"], claims["family_name"]) == ("Anke", "Schmidt")
    assert claims["birthdate"] == "1979-06-21"
    assert (claims["acr"], claims["amr"], claims["privilege"]) == (
        SUBSTANTIAL, ["eidas"], "dispositivo")
    assert SCHMIDT_ID not in claims["sub"] and len(claims["sub"]) == 43  # pairwise HMAC
    # the same person comes back with the same sub (a stable key, not the NameID)
    _, again = _login(eidas, "eidas.schmidt")
    assert again["claims"]["sub"] == claims["sub"]


def test_the_request_to_ficep_asks_the_configured_attribute_set_and_level(eidas: EidasEnv):
    browser = eidas.browser()
    _, r = browser.authorize()
    req, _ = browser.authn_request(r)
    assert req.attr_index == "100"  # the demo asks the full set
    assert req.acr == "https://www.spid.gov.it/SpidL2"  # substantial, as FICEP reads it
    assert req.acs_url == f"{eidas.broker.url}/spid/acs"
    _, r = browser.authorize(acr_values=HIGH)
    req, _ = browser.authn_request(r)
    assert req.acr == "https://www.spid.gov.it/SpidL3"


def test_a_linked_identity_carries_the_codice_fiscale_and_the_pin_sub(eidas: EidasEnv):
    _, tokens = _login(eidas, "eidas.bianchi")  # linked to Laura in the demo data
    claims = tokens["claims"]
    assert claims["fiscal_number"] == LAURA
    assert claims["eidas_person_identifier"] == BIANCHI_ID
    assert claims["acr"] == SUBSTANTIAL  # what was asked; her eID could do more
    # she moves from her PIN to her national eID without losing anything: same sub
    assert claims["sub"] == _pin_sub(eidas)


def test_an_rp_needing_high_assurance_gets_it_or_a_readable_refusal(eidas: EidasEnv):
    _, tokens = _login(eidas, "eidas.bianchi", acr_values=HIGH)  # a high-level eID
    assert tokens["claims"]["acr"] == HIGH
    browser = eidas.browser()
    _, r = browser.authorize(acr_values=HIGH)
    answer = browser.post_to_acs(browser.idp_submit(browser.to_idp_form(r), "eidas.schmidt"))
    assert answer.status_code in (400, 403), answer.text[:300]  # FICEP: level not reached
    assert "location" not in answer.headers and "Codice dell" in answer.text


def test_linking_and_unlinking_through_the_admin_api(eidas: EidasEnv):
    url = eidas.broker.url
    with httpx.Client(base_url=url, timeout=30) as admin:
        body = {"person_identifier": SCHMIDT_ID, "fiscal_code": "rssmra80a01h501u",
                "operator": "m.ferri", "reason": "identified at the Rome office"}
        assert admin.put("/admin/eidas/links", json=body).status_code == 401  # no client
        made = admin.put("/admin/eidas/links", json=body, auth=BACKOFFICE)
        assert made.status_code == 200, made.text
        assert made.json()["fiscal_code"] == "RSSMRA80A01H501U"
        other = admin.put("/admin/eidas/links", auth=BACKOFFICE,
                          json={**body, "fiscal_code": LAURA})
        assert other.status_code == 409  # one person identifier, one codice fiscale
        bad = admin.put("/admin/eidas/links", auth=BACKOFFICE,
                        json={**body, "person_identifier": "Schmidt"})
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_person_identifier"
        _, linked = _login(eidas, "eidas.schmidt")
        assert linked["claims"]["fiscal_number"] == "RSSMRA80A01H501U"

        gone = admin.request("DELETE", "/admin/eidas/links", auth=BACKOFFICE, json={
            "person_identifier": SCHMIDT_ID, "operator": "m.ferri", "reason": "wrong person"})
        assert gone.status_code == 200, gone.text
        again = admin.request("DELETE", "/admin/eidas/links", auth=BACKOFFICE, json={
            "person_identifier": SCHMIDT_ID, "operator": "m.ferri", "reason": "twice"})
        assert again.status_code == 404
    _, unlinked = _login(eidas, "eidas.schmidt")
    assert "fiscal_number" not in unlinked["claims"]
    trail = [(e.kind, e.data.get("operator"), e.data.get("reason"))
             for e in eidas.broker.ctx.audit.entries(limit=1000)
             if e.kind.startswith("eidas.")]
    assert ("eidas.linked", "backoffice:m.ferri", "identified at the Rome office") in trail
    assert ("eidas.unlinked", "backoffice:m.ferri", "wrong person") in trail


def test_an_rp_that_requires_a_codice_fiscale_refuses_the_unlinked_readably(
        broker_factory: Any, tmp_path: Path):
    registry = yaml.safe_load((project_dir("config") / "clients.demo.yaml").read_text())
    for client in registry["clients"]:
        if client["client_id"] == "demo-rp":
            client["requires_fiscal_code"] = True
    clients = tmp_path / "clients.yaml"
    clients.write_text(yaml.safe_dump(registry))
    env = start_eidas_env(broker_factory, tmp_path, clients=clients)
    try:
        browser = env.browser()
        _, r = browser.login("eidas.schmidt")
        assert r.status_code == 403, r.text[:500]
        page = html.unescape(r.text)
        assert "richiede un codice fiscale" in page and "collegare" in page
        assert "location" not in r.headers
        entry = env.broker.ctx.audit.entries("login.decision")[-1].data
        assert (entry["allow"], entry["reason"]) == (False, "fiscal_code_required")
        # the linked one is let in
        _, tokens = _login(env, "eidas.bianchi")
        assert tokens["claims"]["fiscal_number"] == LAURA
    finally:
        env.stop()


def test_sp_metadata_declares_ficeps_two_attribute_sets(eidas: EidasEnv):
    root = etree.fromstring(httpx.get(f"{eidas.broker.url}/spid/metadata").content)
    md = "urn:oasis:names:tc:SAML:2.0:metadata"
    sets = {s.get("index"): (s.findtext(f"{{{md}}}ServiceName"),
                             sorted(a.get("Name") for a in s.iter(f"{{{md}}}RequestedAttribute")))
            for s in root.iter(f"{{{md}}}AttributeConsumingService")}
    assert sets["99"] == ("eIDAS Natural Person Minimum Attribute Set",
                          ["dateOfBirth", "familyName", "name", "spidCode"])
    assert sets["100"] == ("eIDAS Natural Person Full Attribute Set",
                           ["address", "dateOfBirth", "familyName", "gender", "name",
                            "placeOfBirth", "spidCode"])
    assert "0" in sets  # SPID's own set is still there


# --- the SAML attacks of the SPID path, against the eIDAS one ------------------------------
def _answer(env: EidasEnv, browser: EidasBrowser, user: str, **response: Any
            ) -> httpx.Response:
    _, r = browser.authorize()
    req, _ = browser.authn_request(r)
    xml = env.idp.response_xml(req, env.idp.users[user], **response)
    return browser.http.post(f"{env.broker.url}/spid/acs", data={
        "SAMLResponse": TestIdp.encode(xml), "RelayState": req.relay_state or ""})


def test_replayed_eidas_response_is_refused(eidas: EidasEnv):
    browser = eidas.browser()
    login, r = browser.authorize()
    idp_page = browser.idp_submit(browser.to_idp_form(r), "eidas.schmidt")
    first = browser.follow(browser.post_to_acs(idp_page), stop_at=login.redirect_uri)
    assert first.status_code == 303
    again = browser.post_to_acs(idp_page)
    assert again.status_code == 400 and "location" not in again.headers


def test_eidas_response_posted_from_another_browser_is_refused(eidas: EidasEnv):
    victim = eidas.browser()
    _, r = victim.authorize()
    idp_page = victim.idp_submit(victim.to_idp_form(r), "eidas.schmidt")
    thief = eidas.browser()
    thief.authorize()
    _, fields = form_fields(idp_page.text)
    stolen = thief.http.post(f"{eidas.broker.url}/spid/acs", data=fields)
    assert stolen.status_code == 400
    assert "varco_session=" not in stolen.headers.get("set-cookie", "")


def test_tampered_person_identifier_breaks_the_signature(eidas: EidasEnv):
    def tamper(root: etree._Element) -> None:
        for value in root.iter(f"{{{SAML}}}AttributeValue"):
            if value.text == SCHMIDT_ID:
                value.text = BIANCHI_ID  # become the linked Laura

    browser = eidas.browser()
    signed = _answer(eidas, browser, "eidas.schmidt")  # the control: a good answer works
    assert signed.status_code == 303, signed.text[:300]
    xml = eidas.idp.response_xml
    _, r = browser.authorize(prompt="login")
    req, _ = browser.authn_request(r)
    good = etree.fromstring(xml(req, eidas.idp.users["eidas.schmidt"]))
    tamper(good)  # after the IdP signed
    forged = browser.http.post(f"{eidas.broker.url}/spid/acs", data={
        "SAMLResponse": TestIdp.encode(etree.tostring(good)),
        "RelayState": req.relay_state or ""})
    assert forged.status_code == 400 and "location" not in forged.headers


def test_an_eidas_request_answered_by_a_spid_idp_is_refused(eidas: EidasEnv):
    """FICEP's request answered by another IdP of the federation (trusted for SPID, not
    for eIDAS): the issuer is not the IdP the request went to."""
    browser = eidas.browser()
    _, r = browser.authorize()
    req, _ = browser.authn_request(r)
    impostor = TestIdp(entity_id="https://spid-idp.example", base_url="https://spid-idp.example",
                       key_dir=eidas.idp_dir.parent / "impostor",
                       sp_metadata=lambda: httpx.get(f"{eidas.broker.url}/spid/metadata").content,
                       profile="eidas")
    xml = impostor.response_xml(req, impostor.users["eidas.schmidt"])
    r = browser.http.post(f"{eidas.broker.url}/spid/acs", data={
        "SAMLResponse": TestIdp.encode(xml), "RelayState": req.relay_state or ""})
    assert r.status_code == 400 and "location" not in r.headers


def test_demo_broker_serves_the_ficep_test_idp_and_the_eidas_button(broker_factory: Any):
    broker = broker_factory()  # the demo config: FICEP played at /test-idp-eidas
    rp = demo_rp(broker.url)
    with httpx.Client(base_url=broker.url, timeout=30) as http:
        pending = rp.authorize_params(idp_hint="")
        chooser = http.get("/authorize", params={**pending.params}, follow_redirects=True)
        assert "Login with eIDAS" in chooser.text and 'class="button eidas-button"' in chooser.text
        assert http.get("/test-idp-eidas/metadata").status_code == 200
        pending = rp.authorize_params(idp_hint="eidas")
        r = http.get("/authorize", params=pending.params)
        assert r.status_code in (302, 303) and "/test-idp-eidas/sso" in r.headers["location"]
