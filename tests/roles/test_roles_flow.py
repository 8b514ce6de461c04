"""End to end: intermediary, operator and delegate log in with the PIN, choose a role,
and the relying party receives the right claims (real broker, real HTTP, ID tokens
checked against the JWKS)."""

from __future__ import annotations

import pytest

from tests.oidc.oidc_helpers import (
    GIUSEPPE,
    LAURA,
    PIN_GIUSEPPE,
    PIN_LAURA,
    Browser,
    IdTokenCheck,
    code_from,
    now_of,
    query,
)
from tests.roles.roles_env import (
    MARIO,
    choose,
    demo_directory,
    isee_rp,
    portale_rp,
    role_buttons,
    tokens_for,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def broker(broker_factory):
    return broker_factory(directory=demo_directory())


def _login_to_role_page(broker, rp, cf, pin, **extra):
    browser = Browser(broker.url)
    pending = rp.authorize_params(**extra)
    page = browser.pin_login(browser.authorize(pending), cf, pin, rp.redirect_uri)
    return browser, pending, page


def _claims(broker, rp, browser, pending, code):
    tokens = tokens_for(rp, browser, pending, code)
    check = IdTokenCheck(broker.url).load(browser.http)
    claims = check(tokens["id_token"], client_id=rp.client_id, now=now_of(broker),
                   nonce=pending.nonce, access_token=tokens["access_token"])
    info = browser.http.get("/userinfo", headers={
        "Authorization": f"Bearer {tokens['access_token']}"}).json()
    return claims, info


def test_intermediary_chooses_a_company_and_the_rp_gets_that_abilitazione(broker):
    rp = portale_rp(broker.url)
    browser, pending, page = _login_to_role_page(broker, rp, LAURA, PIN_LAURA)
    assert page.status_code == 200 and "/roles/choose" in page.text
    titles = set(role_buttons(page.text))
    # for herself, two companies in force (the expired SC65 delega is not offered),
    # and the operator of Roma
    assert any("Per me stesso" in t for t in titles)
    assert any("00743110157" in t for t in titles)
    assert any("01234567897" in t for t in titles)
    assert not any("12345678903" in t for t in titles), "expired delega offered"
    assert any("H501" in t for t in titles)
    assert len(titles) == 4
    code = code_from(choose(browser, page, "01234567897"), pending)
    claims, info = _claims(broker, rp, browser, pending, code)
    want = [{"kind": "intermediary", "scope": {"company": "01234567897",
                                               "as": "commercialista"}, "services": []}]
    assert claims["abilitazioni"] == want
    assert info["abilitazioni"] == want
    assert claims["fiscal_number"] == LAURA
    assert "act" not in claims


def test_isee_desk_narrows_the_choice_to_the_isee_operator_role(broker):
    rp = isee_rp(broker.url)
    browser, pending, response = _login_to_role_page(broker, rp, LAURA, PIN_LAURA)
    # only one role fits the ISEE desk: no page, straight back to the RP
    code = code_from(response, pending)
    claims, _ = _claims(broker, rp, browser, pending, code)
    assert claims["abilitazioni"] == [{
        "kind": "municipal_operator", "scope": {"comune": "H501"},
        "services": ["isee.acquisizione", "variazioni_anagrafiche"]}]
    assert claims["privilege"] == "dispositivo"


def test_isee_desk_refuses_an_ordinario_operator_of_an_expired_comune(broker):
    rp = isee_rp(broker.url)
    _browser, _pending, page = _login_to_role_page(broker, rp, GIUSEPPE, PIN_GIUSEPPE)
    assert page.status_code == 403
    assert "operatori comunali abilitati all&#39;ISEE" in page.text or \
        "operatori comunali abilitati all'ISEE" in page.text
    assert not page.headers.get("location")
    decisions = broker.ctx.audit.entries("login.decision")
    assert decisions[0].data["reason"] == "isee_operator_required"
    assert decisions[0].data["allow"] is False


def test_delegate_acts_for_the_delegator_with_an_rfc8693_act_claim(broker):
    rp = portale_rp(broker.url)
    # Giuseppe's own sub at this RP, from another browser acting for himself
    own_browser, own_pending, own_page = _login_to_role_page(broker, rp, GIUSEPPE,
                                                             PIN_GIUSEPPE)
    own_code = code_from(choose(own_browser, own_page, "Per me stesso"), own_pending)
    own, _ = _claims(broker, rp, own_browser, own_pending, own_code)
    assert own["fiscal_number"] == GIUSEPPE and "act" not in own
    assert own.get("abilitazioni", []) == []

    browser, pending, page = _login_to_role_page(broker, rp, GIUSEPPE, PIN_GIUSEPPE)
    titles = set(role_buttons(page.text))
    assert any(MARIO in t for t in titles)
    assert not any("F205" in t for t in titles), "expired convenzione gave a role"
    code = code_from(choose(browser, page, MARIO), pending)
    claims, info = _claims(broker, rp, browser, pending, code)
    assert claims["fiscal_number"] == MARIO  # sub and fiscal_number are the delegator's
    assert claims["sub"] != own["sub"]
    assert claims["act"]["fiscal_number"] == GIUSEPPE
    assert claims["act"]["sub"] not in (claims["sub"], own["sub"])
    assert "given_name" not in claims and "family_name" not in claims  # not Mario's
    assert claims["abilitazioni"] == [{"kind": "delegate", "scope": {"circular": "127/2021"},
                                       "services": []}]
    assert info["act"] == claims["act"] and info["sub"] == claims["sub"]


def test_act_sub_is_pairwise_and_fiscal_number_needs_its_scope(broker):
    rp = portale_rp(broker.url, scope="openid abilitazioni")
    browser, pending, page = _login_to_role_page(broker, rp, GIUSEPPE, PIN_GIUSEPPE)
    code = code_from(choose(browser, page, MARIO), pending)
    claims, _ = _claims(broker, rp, browser, pending, code)
    assert set(claims["act"]) == {"sub"}
    assert "fiscal_number" not in claims


def test_switching_role_needs_no_new_login(broker):
    rp = portale_rp(broker.url)
    browser, pending, page = _login_to_role_page(broker, rp, LAURA, PIN_LAURA)
    code = code_from(choose(browser, page, "H501"), pending)
    first, _ = _claims(broker, rp, browser, pending, code)
    assert first["abilitazioni"][0]["kind"] == "municipal_operator"
    switch = browser.http.get("/roles")
    assert switch.status_code == 200
    assert "H501 ✓" in switch.text  # the current role is marked
    done = choose(browser, switch, "00743110157")
    assert done.status_code == 200 and "Ruolo cambiato" in done.text
    again = rp.authorize_params(prompt="none")
    code = code_from(browser.authorize(again), again)  # SSO: no login page
    second, _ = _claims(broker, rp, browser, again, code)
    assert second["abilitazioni"] == [{"kind": "intermediary", "scope": {
        "company": "00743110157", "as": "commercialista"}, "services": []}]
    assert second["auth_time"] == first["auth_time"]  # same login


def test_role_choice_needs_csrf_and_an_offered_role(broker):
    rp = portale_rp(broker.url)
    browser, _pending, page = _login_to_role_page(broker, rp, LAURA, PIN_LAURA)
    tx = query(str(page.url))["tx"]
    key = next(iter(role_buttons(page.text).values()))
    no_csrf = browser.http.post("/roles/choose", data={"tx": tx, "role": key})
    assert no_csrf.status_code == 403 and not no_csrf.headers.get("location")
    forged = browser.http.post("/roles/choose", data={
        "tx": tx, "role": "0" * 20, "csrf_token": "x"})
    assert forged.status_code == 403
    bogus = browser.http.post("/roles/choose", data={
        "tx": tx, "role": "0" * 20,
        "csrf_token": page.text.split('name="csrf_token" value="')[1].split('"')[0]})
    assert bogus.status_code == 400 and not bogus.headers.get("location")
    # another browser cannot use this tx
    other = Browser(broker.url)
    stolen = other.http.get(f"/roles/choose?tx={tx}")
    assert stolen.status_code == 400


def test_switch_page_without_session_is_a_readable_error(broker):
    page = Browser(broker.url).http.get("/roles")
    assert page.status_code == 400
    assert "Codice dell'errore" in page.text or "Codice dell&#39;errore" in page.text


def test_plain_citizen_with_one_role_sees_no_role_page(broker):
    # Giuseppe without directory roles (his delegation revoked): no choice to make.
    directory = broker.ctx.directory
    assert directory.revoke_delegation(MARIO, GIUSEPPE)
    rp = portale_rp(broker.url)
    browser, pending, response = _login_to_role_page(broker, rp, GIUSEPPE, PIN_GIUSEPPE)
    code = code_from(response, pending)  # no role page: straight to the RP
    claims, _ = _claims(broker, rp, browser, pending, code)
    assert claims["fiscal_number"] == GIUSEPPE and claims.get("abilitazioni", []) == []


def test_sso_to_the_isee_desk_switches_to_the_one_fitting_role(broker):
    """Signed in for herself at one RP, Laura reaches the ISEE desk by SSO as its operator."""
    portale = portale_rp(broker.url)
    browser, pending, page = _login_to_role_page(broker, portale, LAURA, PIN_LAURA)
    code_from(choose(browser, page, "Per me stesso"), pending)
    isee = isee_rp(broker.url)
    pending = isee.authorize_params()
    code = code_from(browser.authorize(pending), pending)  # no login page, no role page
    claims, _ = _claims(broker, isee, browser, pending, code)
    assert claims["abilitazioni"][0]["kind"] == "municipal_operator"


def test_sso_keeps_the_role_and_select_account_asks_again(broker):
    portale = portale_rp(broker.url)
    browser, pending, page = _login_to_role_page(broker, portale, LAURA, PIN_LAURA)
    code_from(choose(browser, page, "01234567897"), pending)
    # Single sign-on at the same RP keeps the chosen role, even with prompt=none.
    pending = portale.authorize_params(prompt="none")
    code = code_from(browser.authorize(pending), pending)
    claims, _ = _claims(broker, portale, browser, pending, code)
    assert claims["abilitazioni"][0]["scope"]["company"] == "01234567897"
    # prompt=select_account brings the role page back instead of a code.
    pending = portale.authorize_params(prompt="select_account")
    response = browser.authorize(pending)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/roles/choose?tx=")
    # Choosing there issues the code, now for the new role.
    code_from(choose(browser, browser.walk(response, portale.redirect_uri), "Per me stesso"),
              pending)
