"""One broker session across RPs: single sign-on, prompt/max_age, step-up, consent, logout."""

from __future__ import annotations

import json

import pytest

from tests.oidc.oidc_helpers import (
    GIUSEPPE,
    LAURA,
    PIN_GIUSEPPE,
    PIN_LAURA,
    Browser,
    IdTokenCheck,
    code_from,
    demo_rp,
    error_from,
    hidden,
    now_of,
    pension_rp,
    query,
)

pytestmark = pytest.mark.integration
DISPOSITIVO_CLAIM = json.dumps({"id_token": {"privilege": {"essential": True,
                                                           "value": "dispositivo"}}})


def _tokens(rp, browser, pending, code):
    response = rp.exchange(browser.http, pending, code)
    assert response.status_code == 200, response.text
    return response.json()


def _id_claims(broker, browser, rp, pending, tokens, alg="ES256"):
    return IdTokenCheck(broker.url).load(browser.http)(
        tokens["id_token"], client_id=rp.client_id, now=now_of(broker), nonce=pending.nonce,
        access_token=tokens["access_token"], alg=alg)


def test_single_sign_on_across_two_rps(broker):
    browser = Browser(broker.url)
    demo, pension = demo_rp(broker.url), pension_rp(broker.url)
    first = demo.authorize_params()
    demo_claims = _id_claims(broker, browser, demo, first, _tokens(
        demo, browser, first, browser.login_for_code(first, LAURA, PIN_LAURA)))
    broker.clock.advance(seconds=30)
    second = pension.authorize_params()
    code = code_from(browser.authorize(second), second)  # straight back: no login page
    pension_claims = _id_claims(broker, browser, pension, second,
                                _tokens(pension, browser, second, code), alg="RS256")
    assert pension_claims["auth_time"] == demo_claims["auth_time"]  # the same login
    assert pension_claims["sid"] == demo_claims["sid"]
    assert pension_claims["sub"] != demo_claims["sub"]  # pairwise
    quiet = demo.authorize_params(prompt="none")
    assert code_from(browser.authorize(quiet), quiet)


def test_prompt_login_and_max_age_ask_again(broker):
    browser = Browser(broker.url)
    demo = demo_rp(broker.url)
    pending = demo.authorize_params()
    browser.login_for_code(pending, LAURA, PIN_LAURA)
    broker.clock.advance(seconds=120)
    for extra in ({"prompt": "login"}, {"max_age": "60"}):
        pending = demo.authorize_params(**extra)
        response = browser.authorize(pending)
        assert not response.headers["location"].startswith(demo.redirect_uri), extra
        code = code_from(browser.pin_login(response, LAURA, PIN_LAURA, demo.redirect_uri),
                         pending)
        claims = _id_claims(broker, browser, demo, pending,
                            _tokens(demo, browser, pending, code))
        assert claims["auth_time"] == now_of(broker)  # a fresh login, not the old one
        broker.clock.advance(seconds=120)
    quiet = demo.authorize_params(prompt="none", max_age="60")
    assert error_from(browser.authorize(quiet), quiet)["error"] == "login_required"
    still = demo.authorize_params(max_age="600")
    assert code_from(browser.authorize(still), still)


def test_step_up_from_ordinario_to_dispositivo(broker):
    browser = Browser(broker.url)
    demo, pension = demo_rp(broker.url), pension_rp(broker.url)
    first = demo.authorize_params()
    claims = _id_claims(broker, browser, demo, first, _tokens(
        demo, browser, first, browser.login_for_code(first, GIUSEPPE, PIN_GIUSEPPE)))
    assert claims["privilege"] == "ordinario"
    # The pension portal requires dispositivo: no silent code, and no code with less.
    quiet = pension.authorize_params(prompt="none")
    assert error_from(browser.authorize(quiet), quiet)["error"] == "login_required"
    for needs in ((pension, {}), (demo, {"claims": DISPOSITIVO_CLAIM}),
                  (demo, {"acr_values": "https://www.spid.gov.it/SpidL2"})):
        rp, extra = needs
        pending = rp.authorize_params(**extra)
        response = browser.authorize(pending)
        assert not response.headers["location"].startswith(rp.redirect_uri), extra
        weak = browser.pin_login(response, GIUSEPPE, PIN_GIUSEPPE, rp.redirect_uri)
        assert not weak.headers.get("location", "").startswith(rp.redirect_uri), extra
    pending = pension.authorize_params()
    code = browser.login_for_code(pending, LAURA, PIN_LAURA)
    claims = _id_claims(broker, browser, pension, pending,
                        _tokens(pension, browser, pending, code), alg="RS256")
    assert claims["privilege"] == "dispositivo"
    again = demo.authorize_params(claims=DISPOSITIVO_CLAIM)
    assert code_from(browser.authorize(again), again)  # now satisfied without a login


def test_high_assurance_acr_is_never_met_by_a_pin(broker):
    browser = Browser(broker.url)
    demo = demo_rp(broker.url)
    first = demo.authorize_params()
    browser.login_for_code(first, LAURA, PIN_LAURA)  # dispositivo, but acr pin
    quiet = demo.authorize_params(prompt="none", acr_values="https://www.spid.gov.it/SpidL3")
    assert error_from(browser.authorize(quiet), quiet)["error"] == "login_required"


def test_prompt_consent_asks_and_honours_the_answer(broker):
    browser = Browser(broker.url)
    demo = demo_rp(broker.url)
    pending = demo.authorize_params(prompt="consent")
    page = browser.pin_login(browser.authorize(pending), LAURA, PIN_LAURA, demo.redirect_uri)
    assert page.status_code == 200 and "Servizio dimostrativo" in page.text
    form = {"consent_id": hidden(page.text, "consent_id"), "decision": "allow"}
    forged = browser.http.post("/authorize/consent", data=form)
    assert forged.status_code == 403  # no CSRF token
    allowed = browser.http.post("/authorize/consent",
                                data={**form, "csrf_token": hidden(page.text, "csrf_token")})
    assert _tokens(demo, browser, pending, code_from(allowed, pending))["id_token"]
    pending = demo.authorize_params(prompt="consent")
    page = browser.authorize(pending)  # SSO, but consent is still asked
    assert page.status_code == 200
    denied = browser.http.post("/authorize/consent", data={
        "consent_id": hidden(page.text, "consent_id"), "decision": "deny",
        "csrf_token": hidden(page.text, "csrf_token")})
    assert error_from(denied, pending)["error"] == "access_denied"


# --- logout ---------------------------------------------------------------------------
def _two_rps_signed_in(broker):
    browser = Browser(broker.url)
    demo, pension = demo_rp(broker.url, scope="openid offline_access"), pension_rp(broker.url)
    first = demo.authorize_params()
    demo_tokens = _tokens(demo, browser, first, browser.login_for_code(first, LAURA, PIN_LAURA))
    second = pension.authorize_params()
    pension_tokens = _tokens(pension, browser, second, code_from(browser.authorize(second),
                                                                  second))
    return browser, demo, demo_tokens, pension_tokens


def _signed_out_everywhere(broker, browser, demo, demo_tokens, pension_tokens):
    quiet = demo.authorize_params(prompt="none")
    assert error_from(browser.authorize(quiet), quiet)["error"] == "login_required"
    for tokens in (demo_tokens, pension_tokens):
        info = browser.http.get("/userinfo", headers={
            "Authorization": f"Bearer {tokens['access_token']}"})
        assert info.status_code == 401
    assert demo.refresh(browser.http, demo_tokens["refresh_token"]).json()["error"] == (
        "invalid_grant")


def test_logout_with_hint_ends_the_session_for_every_rp(broker):
    browser, demo, demo_tokens, pension_tokens = _two_rps_signed_in(broker)
    broker.clock.advance(seconds=3600)  # an expired id_token_hint is still a good hint
    browser.http.cookies.clear()
    browser_again = Browser(broker.url)  # even from a browser without the cookie
    response = browser_again.http.get("/logout", params={
        "id_token_hint": demo_tokens["id_token"], "client_id": "demo-rp",
        "post_logout_redirect_uri": f"{broker.url}/demo-rp/", "state": "bye"})
    assert response.status_code == 303
    assert response.headers["location"] == f"{broker.url}/demo-rp/?state=bye"
    broker.clock.advance(seconds=-3600)  # back within the tokens' lifetime: revoked
    for tokens in (demo_tokens, pension_tokens):
        info = browser.http.get("/userinfo", headers={
            "Authorization": f"Bearer {tokens['access_token']}"})
        assert info.status_code == 401
    assert demo.refresh(browser.http, demo_tokens["refresh_token"]).json()["error"] == (
        "invalid_grant")


def test_logout_in_the_browser_clears_the_cookie_and_the_session(broker):
    browser, demo, demo_tokens, pension_tokens = _two_rps_signed_in(broker)
    response = browser.http.get("/logout", params={
        "id_token_hint": demo_tokens["id_token"],
        "post_logout_redirect_uri": f"{broker.url}/demo-rp/"})
    assert response.status_code == 303
    assert query(response.headers["location"]) == {}
    _signed_out_everywhere(broker, browser, demo, demo_tokens, pension_tokens)


def test_logout_to_an_unregistered_uri_shows_our_page(broker):
    browser, demo, demo_tokens, pension_tokens = _two_rps_signed_in(broker)
    response = browser.http.get("/logout", params={
        "id_token_hint": demo_tokens["id_token"],
        "post_logout_redirect_uri": "https://evil.example/", "state": "x"})
    assert response.status_code == 200 and "location" not in response.headers
    assert "Sei uscito" in response.text
    _signed_out_everywhere(broker, browser, demo, demo_tokens, pension_tokens)


def test_tampered_id_token_hint_is_refused_and_changes_nothing(broker):
    browser, demo, demo_tokens, _ = _two_rps_signed_in(broker)
    head, body, sig = demo_tokens["id_token"].split(".")
    flipped = sig[:-4] + ("AAAA" if sig[-4:] != "AAAA" else "BBBB")
    for hint in (f"{head}.{body}.{flipped}", f"{head}.{body[:-3]}xyz.{sig}", "not-a-jwt"):
        response = browser.http.get("/logout", params={
            "id_token_hint": hint, "post_logout_redirect_uri": f"{broker.url}/demo-rp/"})
        assert response.status_code == 400 and "location" not in response.headers
    quiet = demo.authorize_params(prompt="none")
    assert code_from(browser.authorize(quiet), quiet)  # still signed in
    bearer = {"Authorization": f"Bearer {demo_tokens['access_token']}"}
    assert browser.http.get("/userinfo", headers=bearer).status_code == 200


def test_logout_without_hint_asks_for_confirmation(broker):
    browser, demo, demo_tokens, pension_tokens = _two_rps_signed_in(broker)
    page = browser.http.get("/logout", params={
        "client_id": "demo-rp", "post_logout_redirect_uri": f"{broker.url}/demo-rp/",
        "state": "s"})
    assert page.status_code == 200 and "Vuoi uscire?" in page.text
    fields = {name: hidden(page.text, name) for name in (
        "client_id", "post_logout_redirect_uri", "state")}
    forged = browser.http.post("/logout/confirm", data={**fields, "decision": "logout"})
    assert forged.status_code == 403
    quiet = demo.authorize_params(prompt="none")
    assert code_from(browser.authorize(quiet), quiet)  # the forged post changed nothing
    done = browser.http.post("/logout/confirm", data={
        **fields, "decision": "logout", "csrf_token": hidden(page.text, "csrf_token")})
    assert done.status_code == 303
    assert done.headers["location"] == f"{broker.url}/demo-rp/?state=s"
    _signed_out_everywhere(broker, browser, demo, demo_tokens, pension_tokens)
