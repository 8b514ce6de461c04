"""The PIN login over real HTTP, against a real broker on uvicorn (demo config, demo users).

Every login starts at the demo RP with ``idp_hint=pin``, so the PIN form is reached the
way a citizen reaches it. What is asserted is what a citizen or an attacker sees: status,
page text, where the browser is sent; the clock is moved instead of sleeping.
"""

from __future__ import annotations

import hashlib
import html
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from providers.pin.provider import until_text

pytestmark = pytest.mark.integration

LAURA, PIN_LAURA = "BNCLRA85M41Z404W", "Abroad01"
GIUSEPPE, PIN_GIUSEPPE = "VRDGPP70C15Z110R", "Abroad02"
ANNA, INITIAL_ANNA = "NRENNA90H52Z600M", "Iniziale12345678"
UNKNOWN = "MRTLCU75E12Z112X"  # valid check character, no PIN
ROME = ZoneInfo("Europe/Rome")


def _hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, f"no hidden field {name}"
    return html.unescape(match.group(1))


class PinBrowser:
    """One browser on the PIN form of a login started by the demo RP."""

    def __init__(self, broker, client: httpx.Client | None = None):
        self.broker = broker
        self.client = client or broker.client()
        page = self.client.get("/demo-rp/login", params={"idp_hint": "pin"},
                               follow_redirects=True)
        assert page.status_code == 200, page.text
        assert str(page.url.path) == "/login/start/pin", page.url
        assert 'autocomplete="current-password"' in page.text
        self.page = page.text
        self.tx = _hidden(page.text, "tx")
        self.csrf = _hidden(page.text, "csrf_token")

    def login(self, cf: str, pin: str, **extra: str) -> httpx.Response:
        data = {"csrf_token": self.csrf, "tx": self.tx, "fiscal_code": cf, "pin": pin, **extra}
        return self.client.post("/pin/login", data=data)

    def reached_rp(self, response: httpx.Response) -> None:
        """The login completed: the browser is sent to the RP with a code, no error.

        Used after the test moved the broker's clock: the demo RP checks the ID token's
        times against the real clock, so it is not followed there.
        """
        response = self._as_myself(response)
        assert response.status_code in (302, 303), response.text
        location = httpx.URL(response.headers["location"])
        assert location.path == "/demo-rp/callback"
        assert location.params.get("code") and "error" not in location.params

    def finish(self, response: httpx.Response) -> httpx.Response:
        """Follow the redirects after a completed login to the demo RP's claims page."""
        response = self._as_myself(response)
        assert response.status_code in (302, 303), response.text
        page = self.client.get(response.headers["location"], follow_redirects=True)
        assert page.status_code == 200, page.text
        return page


    def _as_myself(self, response: httpx.Response) -> httpx.Response:
        """A person with abilitazioni (the demo directory, issue 5) is asked which role they
        act in: choose "for myself", as a citizen signing in for their own services does."""
        if response.status_code not in (302, 303) or not response.headers["location"].startswith(
                "/roles/choose"):
            return response
        page = self.client.get(response.headers["location"])
        return self.client.post("/roles/choose", data={
            "csrf_token": _hidden(page.text, "csrf_token"), "tx": _hidden(page.text, "tx"),
            "role": hashlib.sha256(b"self").hexdigest()[:20]})


def _attempts(broker, cf: str) -> int:
    failed: int = broker.ctx.providers["pin"].store.attempts(cf).failed_count
    return failed


def test_right_pin_reaches_the_rp_with_the_person(broker) -> None:
    b = PinBrowser(broker)
    page = b.finish(b.login(LAURA.lower(), PIN_LAURA))
    assert str(page.url.path) == "/demo-rp/callback"
    assert LAURA in page.text and "dispositivo" in page.text


def test_wrong_pin_and_unknown_fiscal_code_look_the_same(broker) -> None:
    b = PinBrowser(broker)
    wrong = b.login(LAURA, "Wrong123")
    unknown = b.login(UNKNOWN, "Wrong123")
    assert wrong.status_code == unknown.status_code == 401
    assert "Codice fiscale o PIN non corretti" in wrong.text
    assert wrong.text.replace(LAURA, "CF") == unknown.text.replace(UNKNOWN, "CF")
    assert set(wrong.headers) == set(unknown.headers)


def test_malformed_fiscal_code_gets_a_clear_message_and_is_not_counted(broker) -> None:
    b = PinBrowser(broker)
    bad = LAURA[:-1] + "X"  # wrong check character
    page = b.login(bad, PIN_LAURA)
    assert page.status_code == 400
    assert "Il codice fiscale non è valido" in page.text
    assert 'aria-invalid="true"' in page.text and 'aria-describedby="fiscal_code-hint pin-error"' \
        in page.text
    assert b.login("ABC", PIN_LAURA).status_code == 400
    assert _attempts(broker, bad) == 0 and _attempts(broker, LAURA) == 0


def test_tenth_wrong_pin_locks_for_five_minutes_and_the_page_says_until_when(broker) -> None:
    b = PinBrowser(broker)
    for _ in range(9):
        assert b.login(LAURA, "Wrong123").status_code == 401
    tenth = b.login(LAURA, "Wrong123")
    until = until_text(broker.clock.now() + timedelta(minutes=5))
    assert tenth.status_code == 429
    assert f"bloccato fino alle {until}" in tenth.text
    eleventh = b.login(LAURA, PIN_LAURA)  # even the right PIN
    assert eleventh.status_code == 429
    assert f"bloccato fino alle {until}" in eleventh.text
    assert 0 < int(eleventh.headers["Retry-After"]) <= 301
    broker.clock.advance(minutes=5)
    b.reached_rp(b.login(LAURA, PIN_LAURA))


def test_lock_applies_to_an_unknown_fiscal_code_too(broker) -> None:
    b = PinBrowser(broker)
    statuses = [b.login(UNKNOWN, "Wrong123").status_code for _ in range(11)]
    assert statuses == [401] * 9 + [429, 429]


def test_lock_survives_a_restart(broker_factory, tmp_path) -> None:
    first = broker_factory(data_dir=tmp_path / "data")
    b = PinBrowser(first)
    for _ in range(10):
        b.login(GIUSEPPE, "Wrong123")
    first.stop()
    second = broker_factory(data_dir=tmp_path / "data", clock=first.clock)
    again = PinBrowser(second).login(GIUSEPPE, PIN_GIUSEPPE)
    assert again.status_code == 429 and "bloccato fino alle" in again.text


def test_expired_pin_is_refused_with_guidance_to_renew(broker) -> None:
    broker.clock.advance(days=183)
    b = PinBrowser(broker)
    page = b.login(LAURA, PIN_LAURA)
    assert page.status_code == 403
    assert "Il tuo PIN è scaduto" in page.text
    assert "Richiedi un nuovo PIN (rinnovo)" in page.text
    assert b.login(LAURA, "Wrong123").status_code == 401, "a guess learns nothing of expiry"


def test_form_post_without_csrf_is_refused_and_counts_nothing(broker) -> None:
    b = PinBrowser(broker)
    page = b.client.post("/pin/login", data={"tx": b.tx, "fiscal_code": LAURA, "pin": "x"})
    assert page.status_code == 403
    forged = b.client.post("/pin/login", data={"tx": b.tx, "csrf_token": "forged",
                                                "fiscal_code": LAURA, "pin": "x"})
    assert forged.status_code == 403
    assert _attempts(broker, LAURA) == 0


def test_login_of_another_browser_is_refused(broker) -> None:
    victim = PinBrowser(broker)
    attacker = PinBrowser(broker)
    page = attacker.client.post("/pin/login", data={
        "csrf_token": attacker.csrf, "tx": victim.tx, "fiscal_code": LAURA, "pin": PIN_LAURA})
    assert page.status_code == 400
    assert "La sessione di accesso è scaduta" in page.text


def test_first_login_with_the_initial_pin_forces_the_new_8_character_pin(broker) -> None:
    b = PinBrowser(broker)
    change = b.login(ANNA, INITIAL_ANNA)
    assert change.status_code == 200
    assert "Scegli il nuovo PIN di 8 caratteri" in change.text
    token = _hidden(change.text, "change_token")
    assert 'autocomplete="new-password"' in change.text

    def choose(new: str, confirm: str, **over: str) -> httpx.Response:
        data = {"csrf_token": b.csrf, "tx": b.tx, "change_token": token, "new_pin": new,
                "new_pin_confirm": confirm, **over}
        return b.client.post("/pin/new-pin", data=data)

    assert choose("Nuovo123", "Nuovo123", csrf_token="").status_code == 403
    assert choose("Nuovo123", "Nuovo123", change_token="forged.AAAA").status_code == 400
    short = choose("Nuovo12", "Nuovo12")
    assert short.status_code == 400 and "esattamente 8 caratteri" in short.text
    letters = choose("Nuovissi", "Nuovissi")
    assert letters.status_code == 400 and "almeno una cifra" in letters.text
    mismatch = choose("Nuovo123", "Nuovo124")
    assert mismatch.status_code == 400 and "non coincidono" in mismatch.text
    # Nothing has changed yet: the initial PIN is still the one on record.
    assert broker.ctx.providers["pin"].store.get(ANNA).credential.kind == "initial16"
    page = b.finish(choose("Nuovo123", "Nuovo123"))
    assert ANNA in page.text and "ordinario" in page.text
    assert choose("Altro456", "Altro456").status_code == 400, "the step is used up"

    again = PinBrowser(broker)
    assert again.login(ANNA, INITIAL_ANNA).status_code == 401, "the initial PIN is gone"
    assert ANNA in again.finish(again.login(ANNA, "Nuovo123")).text


def test_initial_pin_first_half_alone_does_not_open_the_change_step(broker) -> None:
    b = PinBrowser(broker)
    page = b.login(ANNA, INITIAL_ANNA[:8])
    assert page.status_code == 401 and "change_token" not in page.text


def test_cancel_returns_to_the_rp_with_access_denied(broker) -> None:
    b = PinBrowser(broker)
    response = b.client.post("/pin/cancel", data={"csrf_token": b.csrf, "tx": b.tx})
    assert response.status_code in (302, 303)
    assert "error=access_denied" in response.headers["location"]
    assert b.client.post("/pin/cancel", data={"tx": b.tx}).status_code == 403


def test_choose_another_method_links_back_to_the_chooser(broker) -> None:
    b = PinBrowser(broker)
    assert f'href="/login?tx={b.tx}"' in b.page
    chooser = b.client.get(f"/login?tx={b.tx}")
    assert chooser.status_code == 200 and "/login/start/pin" in chooser.text
    again = b.client.get(f"/pin/login?tx={b.tx}")
    assert again.status_code == 200 and 'name="fiscal_code"' in again.text
    english = b.client.get(f"/pin/login?tx={b.tx}&lang=en")
    assert english.status_code == 200 and "Sign in with the PIN" in english.text
    assert '<html lang="en">' in english.text


def test_no_pin_and_no_full_fiscal_code_in_the_logs(broker, caplog) -> None:
    import logging

    with caplog.at_level(logging.DEBUG):
        b = PinBrowser(broker)
        b.login(GIUSEPPE[:-1] + "A", "Wrong123")      # malformed
        b.login(GIUSEPPE, "Wrong123")                  # wrong
        b.login(UNKNOWN, "Wrong123")                   # unknown
        b.finish(b.login(GIUSEPPE, PIN_GIUSEPPE))      # right
        first = PinBrowser(broker)
        change = first.login(ANNA, INITIAL_ANNA)
        first.client.post("/pin/new-pin", data={
            "csrf_token": first.csrf, "tx": first.tx, "new_pin": "Nuovo123",
            "new_pin_confirm": "Nuovo123", "change_token": _hidden(change.text, "change_token")})
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "VRDG********110R" in logged, "the PIN provider logs outcomes, masked"
    for secret in ("Wrong123", PIN_GIUSEPPE, INITIAL_ANNA, "Iniziale", "Nuovo123",
                   GIUSEPPE, UNKNOWN, ANNA, GIUSEPPE[:-1] + "A"):
        assert secret not in logged, secret
