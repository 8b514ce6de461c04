"""SPID end to end over real HTTP: RP -> broker -> pysaml2 test IdP -> ACS -> RP -> tokens."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urljoin

import pytest
import uvicorn
from spid_env import (
    RunningLike,
    SpidEnv,
    form_fields,
    free_port,
    spid_section,
    start_spid_env,
)

from broker.app import create_app
from broker.clock import FixedClock
from broker.testidp.mount import PREFIX, demo_test_idp
from tests.harness import demo_settings, start_broker

pytestmark = pytest.mark.integration


@pytest.fixture
def spid(broker_factory, tmp_path: Path) -> Iterator[SpidEnv]:
    env = start_spid_env(broker_factory, tmp_path)
    yield env
    env.stop()


def test_spid_level2_login_gives_tokens_for_the_citizen(spid: SpidEnv):
    browser = spid.browser()
    login, r = browser.login("mario.rossi")
    body = browser.tokens(login, r)
    claims = body["claims"]
    assert claims["acr"] == "https://www.spid.gov.it/SpidL2"
    assert "spid" in claims["amr"]
    userinfo = browser.http.get(f"{spid.broker.url}/userinfo", headers={
        "Authorization": f"Bearer {body['access_token']}"}).json()
    assert userinfo.get("fiscal_number") == "RSSMRA80A01H501U", userinfo


def test_cancel_at_the_idp_returns_access_denied_to_the_rp(spid: SpidEnv):
    browser = spid.browser()
    login, r = browser.authorize()
    form = browser.to_idp_form(r)
    acs = browser.post_to_acs(browser.idp_submit(form, "", action="cancel"))
    back = browser.follow(acs, stop_at=login.redirect_uri)
    assert back.status_code in (302, 303)
    location = back.headers["location"]
    assert location.startswith(login.redirect_uri)
    assert "error=access_denied" in location and f"state={login.state}" in location


def test_replayed_response_gets_our_error_page(spid: SpidEnv):
    browser = spid.browser()
    login, r = browser.authorize()
    idp_page = browser.idp_submit(browser.to_idp_form(r), "mario.rossi")
    first = browser.follow(browser.post_to_acs(idp_page), stop_at=login.redirect_uri)
    assert first.status_code in (302, 303)
    again = browser.post_to_acs(idp_page)
    assert again.status_code == 400
    assert "non è valida" in again.text
    assert login.redirect_uri not in again.headers.get("location", "")


def test_response_posted_from_another_browser_is_refused(spid: SpidEnv):
    victim = spid.browser()
    _, r = victim.authorize()
    idp_page = victim.idp_submit(victim.to_idp_form(r), "mario.rossi")
    attacker = spid.browser()
    stolen = attacker.post_to_acs(idp_page)
    # Without our cookie the POST is parked and re-entered as a GET: still not the victim's.
    if stolen.status_code == 303:
        stolen = attacker.http.get(urljoin(str(stolen.url), stolen.headers["location"]))
    assert stolen.status_code == 400
    assert "location" not in stolen.headers


def test_cross_site_acs_post_without_cookies_resumes_as_a_get_once(spid: SpidEnv):
    """A real IdP posts from another site: SameSite=Lax cookies stay home on that POST."""
    browser = spid.browser()
    login, r = browser.authorize()
    posted = browser.post_to_acs(browser.idp_submit(browser.to_idp_form(r), "mario.rossi"),
                                 cross_site=True)
    assert posted.status_code == 303
    resume = urljoin(str(posted.url), posted.headers["location"])
    assert "/spid/acs?resume=" in resume and "SAMLResponse" not in resume
    back = browser.follow(browser.http.get(resume), stop_at=login.redirect_uri)
    assert "fiscal_number" in browser.tokens(login, back)["claims"]
    again = browser.http.get(resume)
    assert again.status_code == 400, "a resume key works once"


def test_user_without_level2_credentials_sees_readable_page(spid: SpidEnv):
    browser = spid.browser()
    _, r = browser.authorize()
    acs = browser.post_to_acs(browser.idp_submit(browser.to_idp_form(r), "luigi.verdi"))
    assert acs.status_code == 403
    assert "livello richiesto" in acs.text


def test_rp_asking_level3_gets_an_authn_request_for_level3(spid: SpidEnv):
    browser = spid.browser()
    login, r = browser.authorize(acr_values="https://www.spid.gov.it/SpidL3")
    form = browser.to_idp_form(r)
    assert "SpidL3" in form.text
    # mario.rossi only has level 2: the IdP answers ErrorCode nr20, never a level-2 login.
    acs = browser.post_to_acs(browser.idp_submit(form, "mario.rossi"))
    assert acs.status_code == 403
    login, r = browser.authorize(acr_values="https://www.spid.gov.it/SpidL3")
    acs = browser.post_to_acs(browser.idp_submit(browser.to_idp_form(r), "anna.bianchi"))
    body = browser.tokens(login, browser.follow(acs, stop_at=login.redirect_uri))
    assert body["claims"]["acr"] == "https://www.spid.gov.it/SpidL3"


def test_response_after_the_clock_moved_past_expiry_is_refused(spid: SpidEnv):
    browser = spid.browser()
    _, r = browser.authorize()
    idp_page = browser.idp_submit(browser.to_idp_form(r), "mario.rossi")
    spid.broker.clock.advance(minutes=8)
    acs = browser.post_to_acs(idp_page)
    assert acs.status_code == 400


def test_login_page_lists_the_idp_and_the_post_binding_works(broker_factory, tmp_path: Path):
    env = start_spid_env(broker_factory, tmp_path, binding="post")
    try:
        browser = env.browser()
        login, r = browser.authorize(hint="spid")
        page = browser.follow(r, stop_at="\x00")
        assert page.status_code == 200
        assert "Entra con SPID" in page.text and env.idp.name in page.text
        import html as _html
        import re

        link = re.search(r'href="(/spid/login\?[^"]+)"', page.text)
        assert link, page.text
        post_page = browser.http.get(env.broker.url + _html.unescape(link.group(1)))
        assert post_page.status_code == 200 and 'name="SAMLRequest"' in post_page.text
        action, fields = form_fields(post_page.text)
        form = browser.http.post(action, data=fields)
        acs = browser.post_to_acs(browser.idp_submit(form, "mario.rossi"))
        body = browser.tokens(login, browser.follow(acs, stop_at=login.redirect_uri))
        assert body["claims"]["acr"] == "https://www.spid.gov.it/SpidL2"
    finally:
        env.stop()


def test_sp_metadata_is_signed_with_the_sp_certificate(spid: SpidEnv):
    import httpx
    from lxml import etree

    from providers.saml.keys import cert_from_b64
    from providers.saml.signing import verify_element

    r = httpx.get(f"{spid.broker.url}/spid/metadata")
    assert r.status_code == 200
    root = etree.fromstring(r.content)
    cert = root.xpath("//ds:X509Certificate/text()",
                      namespaces={"ds": "http://www.w3.org/2000/09/xmldsig#"})[-1]
    verify_element(root, [cert_from_b64(cert)])
    sp = root.find("{urn:oasis:names:tc:SAML:2.0:metadata}SPSSODescriptor")
    assert sp.get("AuthnRequestsSigned") == "true" and sp.get("WantAssertionsSigned") == "true"


def test_test_idp_mounted_inside_the_broker_process(tmp_path: Path):
    """The demo setup: the test IdP served by the broker itself at /test-idp."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    base = demo_settings(tmp_path / "data")
    settings = base.model_copy(update={"providers": {
        **base.providers, "spid": spid_section(tmp_path / "none", test_idp=True)}})
    app = create_app(settings, clock=FixedClock(datetime.now(UTC)), issuer=url)
    provider = app.state.ctx.providers["spid"]
    assert provider.cfg.test_idp
    router, idp = demo_test_idp(url, settings.data_dir, provider.metadata_xml)
    app.include_router(router, prefix=PREFIX)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    try:
        env = SpidEnv(RunningLike(url, app.state.ctx), idp, server, tmp_path)
        browser = env.browser()
        login, r = browser.login("mario.rossi")
        assert browser.tokens(login, r)["claims"]["acr"] == "https://www.spid.gov.it/SpidL2"
    finally:
        server.should_exit = True


def test_second_broker_process_shares_the_replay_cache(broker_factory, tmp_path: Path):
    """Two brokers behind one public URL (same data folder): a response used at one is
    refused at the other."""
    env = start_spid_env(broker_factory, tmp_path)
    try:
        twin = start_broker(env.broker.ctx.settings, clock=env.broker.clock)
        try:
            browser = env.browser()
            login, r = browser.authorize()
            idp_page = browser.idp_submit(browser.to_idp_form(r), "mario.rossi")
            first = browser.follow(browser.post_to_acs(idp_page), stop_at=login.redirect_uri)
            assert first.status_code in (302, 303)
            action, fields = form_fields(idp_page.text)
            replay = browser.http.post(action.replace(env.broker.url, twin.url), data=fields)
            assert replay.status_code == 400
        finally:
            twin.stop()
    finally:
        env.stop()
