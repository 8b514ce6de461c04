"""The PIN lifecycle end to end over HTTP: request, two halves, activation, first login,
duplicate letter, revocation, renewal, and a channel that fails then recovers.

A real broker on uvicorn with the demo config; the PIN halves travel through a real SMTP
server (aiosmtpd), a local HTTP SMS gateway and PDF letters, and the tests read them
where a citizen would. The clock is moved instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from broker.clock import FixedClock
from tests.providers.pin_env import (
    PinEnv,
    body,
    choose_new_pin,
    fact,
    first_half_in,
    half_in_letter,
    letter_text,
    letters,
    make_cf,
    pin_login,
    request_form,
    start_pin_env,
)

pytestmark = pytest.mark.integration

LUCA = make_cf("MRTLCU75E12Z112")
GIUSEPPE, LAURA = "VRDGPP70C15Z110R", "BNCLRA85M41Z404W"
CARD = "80380000000000000001"


@pytest.fixture
def env(broker_factory, tmp_path: Path) -> Iterator[PinEnv]:
    running = start_pin_env(broker_factory, tmp_path)
    yield running
    running.stop()


def _db_bytes(env: PinEnv) -> bytes:
    return b"".join(p.read_bytes() for p in env.data_dir.glob("varco.db*"))


def _request(env: PinEnv, cf: str = LUCA, **over: str):
    citizen = env.citizen()
    page = citizen.post("/pin/request", request_form(cf, **over))
    return citizen, page


def test_request_halves_activation_and_first_login(env: PinEnv) -> None:
    citizen, page = _request(env)
    assert page.status_code == 200, page.text
    assert "Richiesta ricevuta" in page.text
    [practice] = fact(page.text)
    assert practice.startswith("PIN-")
    env.deliver()
    [sms] = env.sms.wait_for("+1555010099")
    first = first_half_in(sms["text"])
    assert practice in sms["text"]
    [letter] = letters(env)
    text = letter_text(letter)
    assert "Luca Martini" in text and "1 Main Street" in text and "02110 Boston MA" in text
    assert practice in text
    second = half_in_letter(letter)
    assert first != second
    assert first.encode() not in _db_bytes(env) and second.encode() not in _db_bytes(env)

    # Not activated yet: the 16 characters do not log in (and the page says nothing more).
    _, early = pin_login(env.broker, LUCA, first + second)
    assert early.status_code == 401

    wrong_card = citizen.post("/pin/activate", {"fiscal_code": LUCA, "first_half": first,
                                                "health_card_number": CARD[:-1] + "9",
                                                "health_card_expiry": "2031-01-31"})
    wrong_half = citizen.post("/pin/activate", {"fiscal_code": LUCA, "first_half": second,
                                                "health_card_number": CARD,
                                                "health_card_expiry": "2031-01-31"})
    assert wrong_card.status_code == wrong_half.status_code == 401
    assert "I dati non corrispondono" in wrong_card.text
    ok = citizen.post("/pin/activate", {"fiscal_code": LUCA, "first_half": first.lower(),
                                        "health_card_number": CARD,
                                        "health_card_expiry": "2031-01-31"})
    assert ok.status_code == 200 and "PIN attivato" in ok.text
    again = citizen.post("/pin/activate", {"fiscal_code": LUCA, "first_half": first,
                                           "health_card_number": CARD,
                                           "health_card_expiry": "2031-01-31"})
    assert again.status_code == 401  # once only

    http, change = pin_login(env.broker, LUCA, first + second)
    done = choose_new_pin(http, change, "Nuovo123")
    assert done.status_code in (302, 303)
    page = http.get(done.headers["location"], follow_redirects=True)
    assert "/demo-rp/callback" in str(page.url) and "ordinario" in page.text
    _, plain = pin_login(env.broker, LUCA, "Nuovo123")
    assert plain.status_code in (302, 303)

    with env.admin() as admin:
        history = admin.get(f"/admin/pin/persons/{LUCA}").json()
    kinds = [e["kind"] for e in history["events"]]
    assert kinds == ["issued.request", "activated"]
    assert {m["status"] for m in history["outbox"]} == {"sent"}
    assert all(not m["secret_held"] for m in history["outbox"])


def test_first_half_by_email_and_by_pec(env: PinEnv) -> None:
    _, page = _request(env, first_half_channel="email")
    assert page.status_code == 200
    env.deliver()
    [mail] = env.smtp.wait_for("luca.martini@example.org")
    assert first_half_in(body(mail)) and "prima parte" in mail["Subject"]
    other = make_cf("BLLMRC80A01Z404")
    _, page = _request(env, other, first_half_channel="pec", pec="marco@pec.example.it",
                       email="")
    assert page.status_code == 200, page.text
    env.deliver()
    [pec] = env.smtp.wait_for("marco@pec.example.it")
    assert first_half_in(body(pec))


def test_existing_pin_is_not_replaced_by_a_stranger_request(env: PinEnv) -> None:
    _, page = _request(env, LAURA)
    assert page.status_code == 409 and "esiste già un PIN" in page.text
    env.deliver()
    assert env.sms.received == [] and letters(env) == []
    _, still = pin_login(env.broker, LAURA, "Abroad01")
    assert still.status_code in (302, 303)


@pytest.mark.parametrize(("over", "field", "message"), [
    ({"fiscal_code": "MRTLCU75E12Z112A"}, "fiscal_code", "codice fiscale non è valido"),
    ({"email": "", "pec": ""}, "mobile_phone", "almeno due recapiti"),
    ({"mobile_phone": "12", }, "mobile_phone", "cellulare non è valido"),
    ({"first_half_channel": "pec"}, "first_half_channel", "Scegli un canale"),
    ({"health_card_number": "123"}, "health_card_number", "20 cifre"),
    ({"health_card_expiry": "2020-01-01"}, "health_card_expiry", "scaduta"),
    ({"residence": ""}, "residence", "dove risiedi"),
])
def test_bad_request_fields_get_a_clear_message_and_change_nothing(
        env: PinEnv, over: dict[str, str], field: str, message: str) -> None:
    _, page = _request(env, **over)
    assert page.status_code == 400
    assert message in page.text
    assert f'id="{field}"' not in page.text or 'aria-invalid="true"' in page.text
    env.deliver()
    assert env.sms.received == [] and letters(env) == []


def test_forged_request_without_csrf_is_refused(env: PinEnv) -> None:
    http = env.broker.client()
    http.get("/pin/request")
    page = http.post("/pin/request", data=request_form(LUCA))
    assert page.status_code == 403
    env.deliver()
    assert env.sms.received == []


def test_duplicate_letter_replaces_the_undelivered_pin(env: PinEnv) -> None:
    citizen, page = _request(env)
    [practice] = fact(page.text)
    env.deliver()
    old_first = first_half_in(env.sms.wait_for("+1555010099")[0]["text"])
    wrong = citizen.post("/pin/duplicate", {"fiscal_code": LUCA, "practice_number": "PIN-X"})
    right = citizen.post("/pin/duplicate", {"fiscal_code": LUCA, "practice_number": practice})
    assert wrong.status_code == right.status_code == 200
    assert wrong.text == right.text  # says nothing about whether it matched
    env.deliver()
    assert len(letters(env)) == 2
    new_letter = letters(env)[-1]
    assert practice not in letter_text(new_letter)
    new_first = first_half_in(env.sms.wait_for("+1555010099", 2)[1]["text"])
    stale = citizen.post("/pin/activate", {"fiscal_code": LUCA, "first_half": old_first,
                                           "health_card_number": CARD,
                                           "health_card_expiry": "2031-01-31"})
    assert stale.status_code == 401
    fresh = citizen.post("/pin/activate", {"fiscal_code": LUCA, "first_half": new_first,
                                           "health_card_number": CARD,
                                           "health_card_expiry": "2031-01-31"})
    assert fresh.status_code == 200


def test_lost_pin_revoked_with_two_contacts(env: PinEnv) -> None:
    citizen = env.citizen()
    wrong = citizen.post("/pin/revoke", {"fiscal_code": LAURA, "mobile_phone": "+15550100001",
                                         "email": "someone@example.org"})
    assert wrong.status_code == 200
    _, still = pin_login(env.broker, LAURA, "Abroad01")
    assert still.status_code in (302, 303)
    right = citizen.post("/pin/revoke", {"fiscal_code": LAURA, "mobile_phone": "+15550100001",
                                         "email": "Laura.Bianchi@example.org"})
    assert right.text == wrong.text
    _, refused = pin_login(env.broker, LAURA, "Abroad01")
    assert refused.status_code == 401
    env.deliver()
    [notice] = env.smtp.wait_for("laura.bianchi@example.org")
    assert "revocato" in body(notice)
    # After revocation a new request is possible.
    _, page = _request(env, LAURA, email="laura.bianchi@example.org")
    assert page.status_code == 200


def test_expired_pin_leads_to_a_guided_renewal(env: PinEnv) -> None:
    env.broker.clock.advance(days=184)
    http, page = pin_login(env.broker, GIUSEPPE, "Abroad02")
    assert page.status_code == 403 and "Rinnova il PIN" in page.text
    from tests.providers.pin_env import hidden

    token = hidden(page.text, "renew_token")
    renewed = http.post("/pin/renew", data={"csrf_token": hidden(page.text, "csrf_token"),
                                            "renew_token": token, "tx": hidden(page.text, "tx")})
    assert renewed.status_code == 200 and "PIN rinnovato" in renewed.text
    replay = http.post("/pin/renew", data={"csrf_token": hidden(page.text, "csrf_token"),
                                           "renew_token": token})
    assert replay.status_code == 400  # one renewal per proof
    env.deliver()
    [sms] = env.sms.wait_for("+15550100002")
    first = first_half_in(sms["text"])
    [letter] = letters(env)
    assert "Giuseppe Verdi" in letter_text(letter)
    second = half_in_letter(letter)
    http, change = pin_login(env.broker, GIUSEPPE, first + second)
    assert 'name="change_token"' in change.text  # straight to choosing the 8-character PIN


def test_rate_limit_per_fiscal_code_on_activation(env: PinEnv) -> None:
    citizen = env.citizen()
    data = {"fiscal_code": LUCA, "first_half": "AAAAAAAA", "health_card_number": CARD,
            "health_card_expiry": "2031-01-31"}
    statuses = [citizen.post("/pin/activate", data).status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    other = env.citizen().post("/pin/activate", {**data, "fiscal_code": GIUSEPPE})
    assert other.status_code == 401  # another codice fiscale is not blocked by LUCA's count


def test_a_channel_that_fails_then_recovers_loses_nothing(env: PinEnv) -> None:
    env.sms.failing = True
    _, page = _request(env)
    assert page.status_code == 200
    env.deliver()
    with env.admin() as admin:
        waiting = admin.get("/admin/pin/outbox", params={"fiscal_code": LUCA}).json()
    sms = next(m for m in waiting["messages"] if m["channel"] == "sms")
    assert sms["status"] == "pending" and sms["attempts"] >= 1 and sms["secret_held"]
    assert "503" in sms["last_error"] and "+1555010099" not in sms["recipient"]
    env.sms.failing = False
    env.broker.clock.advance(minutes=10)
    env.deliver()
    [arrived] = env.sms.wait_for("+1555010099")
    assert first_half_in(arrived["text"])
    with env.admin() as admin:
        after = admin.get("/admin/pin/outbox", params={"fiscal_code": LUCA}).json()
    assert {m["status"] for m in after["messages"]} == {"sent"}


@pytest.mark.parametrize(("when", "residence", "document", "want"), [
    ("2021-09-30T12:00:00+02:00", "italy", "yes", 200),
    ("2021-10-01T00:00:01+02:00", "italy", "yes", 403),
    ("2021-10-01T00:00:01+02:00", "abroad", "yes", 403),
    ("2021-10-01T00:00:01+02:00", "abroad", "no", 200),
])
def test_eligibility_on_both_sides_of_2021_10_01(broker_factory, tmp_path: Path, when: str,
                                                 residence: str, document: str,
                                                 want: int) -> None:
    clock = FixedClock(datetime.fromisoformat(when).astimezone(UTC))
    env = start_pin_env(broker_factory, tmp_path, clock)
    try:
        _, page = _request(env, residence=residence, italian_document=document)
        assert page.status_code == want, page.text[:400]
        env.deliver()
        if want == 403:
            assert "SPID" in page.text and "CIE" in page.text
            assert env.sms.received == [] and letters(env) == []
        else:
            assert env.sms.wait_for("+1555010099") and len(letters(env)) == 1
    finally:
        env.stop()


def test_request_pages_in_english(env: PinEnv) -> None:
    page = env.broker.client().get("/pin/request", params={"lang": "en"})
    assert page.status_code == 200 and "Request a PIN" in page.text
    assert 'lang="en"' in page.text


def test_no_pin_half_in_the_log(env: PinEnv, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    _, page = _request(env)
    assert page.status_code == 200
    env.deliver()
    first = first_half_in(env.sms.wait_for("+1555010099")[0]["text"])
    second = half_in_letter(letters(env)[0])
    assert first not in caplog.text and second not in caplog.text
    assert LUCA not in caplog.text


def test_the_broker_runs_the_outbox_worker_and_stops_it(env: PinEnv) -> None:
    worker = env.provider.worker
    assert worker._thread is not None and worker._thread.is_alive()
    _, page = _request(env)
    assert page.status_code == 200
    assert env.sms.wait_for("+1555010099", timeout=10)  # nobody called deliver()
    env.broker.stop()
    assert worker._thread is None
