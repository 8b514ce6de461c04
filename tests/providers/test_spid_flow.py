"""SPID end to end over real HTTP: RP -> broker -> pysaml2 test IdP -> ACS -> RP -> tokens."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode, urljoin

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
from providers.saml.testidp.mount import PREFIX, demo_test_idp
from tests.harness import demo_settings, start_broker

pytestmark = pytest.mark.integration


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
    again = browser.post_to_acs(idp_page)  # the back button re-posts the IdP's form
    assert again.status_code == 400
    assert "sessione di accesso è scaduta" in again.text  # that login is over: start again
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
    """A browser that kept none of our cookies on the IdP's POST (it refused the Secure
    return cookie, e.g. plain http off localhost): the POST is parked, then resumed."""
    browser = spid.browser()
    login, r = browser.authorize()
    posted = browser.post_to_acs(browser.idp_submit(browser.to_idp_form(r), "mario.rossi"),
                                 cross_site=True, return_cookie=False)
    assert posted.status_code == 303
    resume = urljoin(str(posted.url), posted.headers["location"])
    assert "/spid/acs?resume=" in resume and "SAMLResponse" not in resume
    back = browser.follow(browser.http.get(resume), stop_at=login.redirect_uri)
    assert "fiscal_number" in browser.tokens(login, back)["claims"]
    again = browser.http.get(resume)
    assert again.status_code == 400, "a resume key works once"


def test_return_cookie_is_samesite_none_and_scoped_to_the_acs(spid: SpidEnv):
    browser = spid.browser()
    _, r = browser.authorize()
    sent = [v for k, v in r.headers.multi_items() if k == "set-cookie"
            and v.startswith("varco_return=")]
    assert len(sent) == 1, r.headers
    attrs = {a.strip().split("=")[0].lower(): a.strip().partition("=")[2].lower()
             for a in sent[0].split(";")[1:]}
    assert attrs["samesite"] == "none" and "secure" in attrs and "httponly" in attrs
    assert attrs["path"] == "/spid/acs"
    assert 0 < int(attrs["max-age"]) <= 900


def test_cross_site_acs_post_completes_at_once_with_the_return_cookie(spid: SpidEnv):
    """A real IdP posts from another site: our SameSite=Lax cookies stay home, the
    SameSite=None return cookie comes along; the login completes in that one request."""
    browser = spid.browser()
    login, r = browser.authorize(ui_locales="en")
    posted = browser.post_to_acs(browser.idp_submit(browser.to_idp_form(r), "mario.rossi"),
                                 cross_site=True)
    assert posted.status_code in (302, 303), posted.text[:500]
    assert posted.headers["location"].startswith(login.redirect_uri)
    session = [v for k, v in posted.headers.multi_items() if k == "set-cookie"
               and v.startswith("varco_session=")]
    assert session and "samesite=lax" in session[0].lower()
    assert "varco_browser=" not in posted.headers.get("set-cookie", ""), \
        "the browser keeps its binding: no new browser cookie"
    browser.http.cookies.set("varco_session", session[0].split(";")[0].split("=", 1)[1],
                             domain="127.0.0.1")
    assert browser.tokens(login, posted)["claims"]["acr"] == "https://www.spid.gov.it/SpidL2"
    # the session it set is this browser's: single sign-on for the next RP request
    _, again = browser.authorize(prompt="none")
    assert "code=" in again.headers.get("location", ""), again.headers


def test_cross_site_post_with_another_browsers_return_cookie_is_refused(spid: SpidEnv):
    victim = spid.browser()
    _, r = victim.authorize()
    idp_page = victim.idp_submit(victim.to_idp_form(r), "mario.rossi")
    attacker = spid.browser()
    attacker.authorize()  # the attacker's own return cookie
    stolen = attacker.post_to_acs(idp_page, cross_site=True)
    assert stolen.status_code == 400, stolen.text[:300]
    assert "location" not in stolen.headers
    assert "varco_session=" not in stolen.headers.get("set-cookie", "")
    # A refused attempt spends nothing: the response still completes the victim's own login
    # in the victim's browser, once (single use is marked when a login commits).
    mine = victim.post_to_acs(idp_page)
    assert mine.status_code == 303 and "varco_session=" in mine.headers.get("set-cookie", "")
    assert victim.post_to_acs(idp_page).status_code == 400


def test_cross_site_error_page_keeps_the_citizens_language(spid: SpidEnv):
    browser = spid.browser()
    browser.http.cookies.set("varco_lang", "en", domain="127.0.0.1")  # chose English
    _, r = browser.authorize()
    page = browser.idp_submit(browser.to_idp_form(r), "luigi.verdi")  # only SPID level 1
    posted = browser.post_to_acs(page, cross_site=True)
    assert 400 <= posted.status_code < 500
    assert '<html lang="en">' in posted.text, posted.text[:300]


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
    provider = app.state.broker.providers["spid"]
    assert provider.cfg.test_idp
    router, idp = demo_test_idp(url, settings.data_dir, provider.metadata_xml)
    app.include_router(router, prefix=PREFIX)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    try:
        env = SpidEnv(RunningLike(url, app.state.broker), idp, server, tmp_path)
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


def test_cross_site_step_up_from_pin_ordinario_joins_the_same_session(spid: SpidEnv):
    """Giuseppe's ordinario PIN session steps up with SPID for the pension portal; the
    IdP's POST comes cross-site (no session cookie on it), yet it joins that session."""
    from tests.oidc.oidc_helpers import GIUSEPPE, PIN_GIUSEPPE, code_from, pension_rp

    browser = spid.browser()
    _, r = browser.authorize(hint="pin")
    page = browser.follow(r, stop_at="\x00")
    action, fields = form_fields(page.text)
    done = browser.http.post(urljoin(spid.broker.url, action), data={
        **fields, "fiscal_code": GIUSEPPE, "pin": PIN_GIUSEPPE})
    assert done.status_code == 303, done.text[:300]
    sid = browser.http.cookies["varco_session"]
    assert spid.broker.ctx.sessions.by_sid(sid).current.decision.privilege == "ordinario"

    pension = pension_rp(spid.broker.url)
    pending = pension.authorize_params(idp_hint=f"spid:{spid.idp.entity_id}")
    r = browser.http.get(f"{spid.broker.url}/authorize?{urlencode(pending.params)}")
    idp_page = browser.idp_submit(browser.to_idp_form(r), "giuseppe.verdi")
    posted = browser.post_to_acs(idp_page, cross_site=True)
    code = code_from(posted, pending)
    assert f"varco_session={sid};" in posted.headers.get("set-cookie", ""), \
        "a step-up keeps the session id"
    session = spid.broker.ctx.sessions.by_sid(sid)
    assert [rec.event.provider for rec in session.logins] == ["pin", "spid"]
    assert session.current.decision.privilege == "dispositivo"
    tokens = pension.exchange(browser.http, pending, code)
    assert tokens.status_code == 200, tokens.text
