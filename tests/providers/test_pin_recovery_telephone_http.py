"""Recovery (ripristino) and the telephone PIN, end to end over HTTP.

Recovery: one contact is not enough, wrong contacts get exactly the page right ones get
and nothing is sent, two right ones bring a recovery code by email, then a provisional
PIN whose halves come by SMS and email. Telephone PIN: only a SPID/CIE/CNS session can
make one, it is shown once, the contact center verifies it through the admin API until
the moment it expires (clock moved), it can be revoked, and it never opens a web session.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.providers.pin_env import (
    BACKOFFICE,
    PinEnv,
    body,
    choose_new_pin,
    fact,
    first_half_in,
    half_in_email,
    hidden,
    pin_login,
    start_pin_env,
    start_spid_for_pin,
)
from tests.providers.spid_env import SpidEnv

pytestmark = pytest.mark.integration

LAURA, MOBILE, EMAIL = "BNCLRA85M41Z404W", "+1 555 010 0001", "laura.bianchi@example.org"
MARIO = "RSSMRA80A01H501U"  # SPID test user (mario.rossi / test)


@pytest.fixture
def env(broker_factory, tmp_path: Path) -> Iterator[PinEnv]:
    running = start_pin_env(broker_factory, tmp_path)
    yield running
    running.stop()


def _recovery_code(text: str) -> str:
    match = re.search(r"\n\s+([A-Z2-9]{10})\s*\n", text)
    assert match, text
    return match.group(1)


def test_recovery_with_one_contact_is_refused_with_a_clear_message(env: PinEnv) -> None:
    page = env.citizen().post("/pin/recovery", {"fiscal_code": LAURA, "email": EMAIL})
    assert page.status_code == 400 and "almeno due recapiti" in page.text
    env.deliver()
    assert env.smtp.messages == []


def test_recovery_wrong_contacts_reveal_nothing(env: PinEnv) -> None:
    citizen = env.citizen()
    wrong = citizen.post("/pin/recovery", {"fiscal_code": LAURA, "mobile_phone": MOBILE,
                                           "email": "laura@elsewhere.example"})
    unknown = citizen.post("/pin/recovery", {"fiscal_code": "MRTLCU75E12Z112X",
                                             "mobile_phone": MOBILE, "email": EMAIL})
    right = citizen.post("/pin/recovery", {"fiscal_code": LAURA, "mobile_phone": MOBILE,
                                           "email": EMAIL.upper()})
    assert wrong.status_code == unknown.status_code == right.status_code == 200
    assert wrong.text == right.text == unknown.text
    env.deliver()
    assert len(env.smtp.wait_for(EMAIL)) == 1  # only the right contacts produced a code
    assert env.smtp.to("laura@elsewhere.example") == []


def test_recovery_with_two_contacts_gives_a_new_provisional_pin(env: PinEnv) -> None:
    citizen = env.citizen()
    citizen.post("/pin/recovery", {"fiscal_code": LAURA, "mobile_phone": MOBILE,
                                   "email": EMAIL})
    env.deliver()
    [mail] = env.smtp.wait_for(EMAIL)
    code = _recovery_code(body(mail))
    bad = citizen.post("/pin/recovery/confirm", {"fiscal_code": LAURA,
                                                 "recovery_code": "AAAAAAAAAA"})
    assert bad.status_code == 400 and "non è corretto" in bad.text
    ok = citizen.post("/pin/recovery/confirm", {"fiscal_code": LAURA, "recovery_code": code})
    assert ok.status_code == 200 and "PIN ripristinato" in ok.text
    [practice] = fact(ok.text)
    replay = citizen.post("/pin/recovery/confirm", {"fiscal_code": LAURA,
                                                    "recovery_code": code})
    assert replay.status_code == 400  # single use
    env.deliver()
    [sms] = env.sms.wait_for("+15550100001")
    first = first_half_in(sms["text"])
    mails = env.smtp.wait_for(EMAIL, 2)
    second = half_in_email(body(mails[1]))
    assert practice in body(mails[1])
    _, old = pin_login(env.broker, LAURA, "Abroad01")
    assert old.status_code == 401  # the forgotten PIN is replaced
    http, change = pin_login(env.broker, LAURA, first + second)
    done = choose_new_pin(http, change, "Ripri123")
    assert done.status_code in (302, 303)


def test_recovery_code_expires(env: PinEnv) -> None:
    citizen = env.citizen()
    citizen.post("/pin/recovery", {"fiscal_code": LAURA, "mobile_phone": MOBILE,
                                   "email": EMAIL})
    env.deliver()
    code = _recovery_code(body(env.smtp.wait_for(EMAIL)[0]))
    env.broker.clock.advance(minutes=31)
    late = citizen.post("/pin/recovery/confirm", {"fiscal_code": LAURA, "recovery_code": code})
    assert late.status_code == 400


@pytest.fixture
def spid(broker_factory, tmp_path: Path) -> Iterator[SpidEnv]:
    env = start_spid_for_pin(broker_factory, tmp_path)
    yield env
    env.stop()


def _telephone_page(spid: SpidEnv):
    browser = spid.browser()
    _, r = browser.login("mario.rossi")
    assert r.status_code in (302, 303), r.text[:300]
    page = browser.http.get(f"{spid.broker.url}/pin/telephone")
    return browser, page


def _verify(spid: SpidEnv, pin: str, auth=BACKOFFICE, cf: str = MARIO):
    with spid.broker.client() as http:
        return http.post("/admin/pin/telephone/verify", auth=auth, json={
            "fiscal_code": cf, "telephone_pin": pin, "operator": "cc.operatore7"})


def test_telephone_pin_made_after_spid_verified_until_it_expires(spid: SpidEnv) -> None:
    browser, page = _telephone_page(spid)
    assert page.status_code == 200 and 'value="1w"' in page.text
    shown = browser.http.post(f"{spid.broker.url}/pin/telephone", data={
        "csrf_token": hidden(page.text, "csrf_token"), "validity": "1w"})
    assert shown.status_code == 200
    pin = fact(shown.text)[0]
    assert re.fullmatch(r"[0-9]{10}", pin)
    again = browser.http.get(f"{spid.broker.url}/pin/telephone")
    assert pin not in again.text  # shown once
    issued = spid.broker.clock.now()

    assert _verify(spid, pin).json() == {"verified": True}
    assert _verify(spid, "0000000000").json() == {"verified": False}
    assert _verify(spid, pin, auth=("demo-rp", "demo-rp-secret")).status_code == 403
    spid.broker.clock.set(issued + timedelta(days=7) - timedelta(seconds=1))
    assert _verify(spid, pin).json() == {"verified": True}
    spid.broker.clock.set(issued + timedelta(days=7))
    assert _verify(spid, pin).json() == {"verified": False}
    with spid.broker.client() as http:
        audit = http.get("/admin/audit/entries", auth=BACKOFFICE,
                         params={"kind": "pin.telephone.verified"}).json()["entries"]
    assert audit[0]["data"]["operator"] == "backoffice:cc.operatore7"
    assert "telephone_pin" not in audit[0]["data"]


@pytest.mark.parametrize(("choice", "days"), [("1d", 1), ("1m", 30), ("3m", 90)])
def test_telephone_pin_validity_choices(spid: SpidEnv, choice: str, days: int) -> None:
    browser, page = _telephone_page(spid)
    shown = browser.http.post(f"{spid.broker.url}/pin/telephone", data={
        "csrf_token": hidden(page.text, "csrf_token"), "validity": choice})
    pin = fact(shown.text)[0]
    start = spid.broker.clock.now()
    spid.broker.clock.set(start + timedelta(days=days) - timedelta(seconds=1))
    assert _verify(spid, pin).json() == {"verified": True}
    spid.broker.clock.set(start + timedelta(days=days))
    assert _verify(spid, pin).json() == {"verified": False}


def test_telephone_pin_revoked_and_never_a_web_login(spid: SpidEnv) -> None:
    browser, page = _telephone_page(spid)
    csrf = hidden(page.text, "csrf_token")
    bad = browser.http.post(f"{spid.broker.url}/pin/telephone", data={"csrf_token": csrf,
                                                                      "validity": "1y"})
    assert bad.status_code == 400
    shown = browser.http.post(f"{spid.broker.url}/pin/telephone", data={
        "csrf_token": csrf, "validity": "1d"})
    pin = fact(shown.text)[0]
    _, web = pin_login(spid.broker, MARIO, pin)
    assert web.status_code == 401  # the web login never looks at telephone PINs
    status = browser.http.get(f"{spid.broker.url}/pin/telephone")
    assert "/pin/telephone/revoke" in status.text
    revoked = browser.http.post(f"{spid.broker.url}/pin/telephone/revoke",
                                data={"csrf_token": csrf})
    assert revoked.status_code == 200
    assert _verify(spid, pin).json() == {"verified": False}


def test_pin_only_session_cannot_make_a_telephone_pin(spid: SpidEnv) -> None:
    http, done = pin_login(spid.broker, "BNCLRA85M41Z404W", "Abroad01")
    assert done.status_code in (302, 303)
    http.get(done.headers["location"], follow_redirects=True)  # the session exists now
    page = http.get("/pin/telephone")
    assert page.status_code == 403 and "SPID, CIE o CNS" in page.text
    csrf = hidden(http.get("/pin/request").text, "csrf_token")
    forged = http.post("/pin/telephone", data={"csrf_token": csrf, "validity": "3m"})
    assert forged.status_code == 403
    no_session = spid.broker.client().get("/pin/telephone")
    assert no_session.status_code == 403


def test_telephone_verification_is_rate_limited_per_fiscal_code(spid: SpidEnv) -> None:
    statuses = [_verify(spid, "1234567890").status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
