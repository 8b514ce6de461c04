"""The login page in a real headless Chromium: what a citizen sees and does.

A newcomer's loop: the demo RP sends the browser to the broker, the citizen picks PIN
on the one login page, signs in with the keyboard, and lands back on the RP with the
claims. Also: the English switch, labels on every field, and the readable refusal for a
resident in Italy.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from broker.config import DirectorySettings

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def broker(broker_factory):
    """The demo exactly as a newcomer runs it, demo roles included."""
    return broker_factory(directory=DirectorySettings(demo=True))


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"])
        yield browser
        browser.close()


def test_pin_login_through_the_demo_rp_with_the_keyboard(broker, browser) -> None:
    page = browser.new_page()
    page.goto(f"{broker.url}/demo-rp/")
    page.get_by_role("link", name="Accedi (profilo ordinario)").click()
    # The one login page, in Italian by default, names the RP and lists PIN.
    assert page.locator("html").get_attribute("lang") == "it"
    assert "Accedi ai servizi" in page.content()
    page.get_by_role("link", name="PIN").first.click()
    # Every field has a label: the page is usable with a screen reader.
    page.get_by_label("Codice fiscale").fill("BNCLRA85M41Z404W")
    page.get_by_label("PIN").fill("Abroad01")
    page.keyboard.press("Enter")
    # Laura is also an intermediary and a municipal operator: she picks the role.
    page.wait_for_url(f"{broker.url}/roles/choose*")
    assert "Per chi stai operando?" in page.content()
    page.get_by_role("button", name="Per me stesso").click()
    page.wait_for_url(f"{broker.url}/demo-rp/callback*")
    text = page.content()
    assert "BNCLRA85M41Z404W" in text
    assert "dispositivo" in text
    page.close()


def test_english_switch_and_refusal_for_resident_in_italy(broker, browser) -> None:
    page = browser.new_page()
    page.goto(f"{broker.url}/demo-rp/")
    page.get_by_role("link", name="Accedi (profilo ordinario)").click()
    page.get_by_role("link", name="English").click()
    assert page.locator("html").get_attribute("lang") == "en"
    assert "Sign in to the services" in page.content()
    page.get_by_role("link", name="PIN").first.click()
    page.get_by_label("Codice fiscale").fill("RSSMRA80A01H501U")
    page.get_by_label("PIN").fill("Italia01")
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    alert = page.get_by_role("alert").inner_text()
    # The refusal names the ways in that this citizen can use, in the chosen language.
    assert "SPID" in alert and "CIE" in alert
    assert page.locator("html").get_attribute("lang") == "en"
    assert "/demo-rp/callback" not in page.url
    page.close()


def _pin_login(page, cf: str, pin: str) -> None:
    page.get_by_role("link", name="PIN").first.click()
    page.get_by_label("Codice fiscale").fill(cf)
    page.get_by_label("PIN").fill(pin)
    page.keyboard.press("Enter")


def test_second_service_reuses_the_session_and_asks_ordinario_to_step_up(
        broker, browser) -> None:
    # Laura (dispositivo): one login, then the pension portal signs her in without a form.
    page = browser.new_page()
    page.goto(f"{broker.url}/demo-rp/")
    page.get_by_role("link", name="Accedi (profilo ordinario)").click()
    _pin_login(page, "BNCLRA85M41Z404W", "Abroad01")
    page.wait_for_url(f"{broker.url}/roles/choose*")
    page.get_by_role("button", name="Per me stesso").click()
    page.wait_for_url(f"{broker.url}/demo-rp/callback*")
    page.get_by_role("link", name="Torna ai servizi dimostrativi").click()
    page.get_by_role("link", name="Domanda di pensione").click()
    page.wait_for_url(f"{broker.url}/demo-rp/pension-portal/callback*")
    assert "pension-portal" in page.content() and "BNCLRA85M41Z404W" not in page.url
    page.close()

    # Giuseppe (ordinario): the pension portal needs dispositivo, so the login page
    # comes back and says why, instead of handing the RP a weaker login.
    page = browser.new_page()
    page.goto(f"{broker.url}/demo-rp/")
    page.get_by_role("link", name="Accedi (profilo ordinario)").click()
    _pin_login(page, "VRDGPP70C15Z110R", "Abroad02")
    page.wait_for_url(f"{broker.url}/roles/choose*")  # he is also a delegate
    page.get_by_role("button", name="Per me stesso").click()
    page.wait_for_url(f"{broker.url}/demo-rp/callback*")
    page.get_by_role("link", name="Torna ai servizi dimostrativi").click()
    page.get_by_role("link", name="Domanda di pensione").click()
    page.wait_for_load_state()
    assert "/pension-portal/callback" not in page.url
    assert "profilo dispositivo" in page.get_by_role("status").inner_text()
    page.close()


def test_demo_spid_login_with_the_test_idp(broker, browser) -> None:
    """The demo config's SPID: the standard button, the test IdP's form, back with claims."""
    page = browser.new_page()
    page.goto(f"{broker.url}/demo-rp/")
    page.get_by_role("link", name="Accedi (profilo ordinario)").click()
    page.get_by_text("Entra con SPID").click()  # a <details> disclosure, no JavaScript
    page.get_by_role("link", name="Varco Test IdP").click()
    page.get_by_label("Nome utente / Username").fill("mario.rossi")
    page.get_by_label("Password").fill("test")
    page.get_by_role("button", name="Entra / Sign in").click()
    page.wait_for_url(f"{broker.url}/demo-rp/callback*")
    text = page.content()
    assert "RSSMRA80A01H501U" in text
    assert "https://www.spid.gov.it/SpidL2" in text and "dispositivo" in text
    page.close()


def test_step_up_from_pin_ordinario_to_spid_keeps_one_session(broker, browser) -> None:
    """Giuseppe signs in with his ordinario PIN, then files a pension application: the
    login page asks for more, he uses SPID level 2, and the RP gets dispositivo."""
    page = browser.new_page()
    page.goto(f"{broker.url}/demo-rp/")
    page.get_by_role("link", name="Accedi (profilo ordinario)").click()
    _pin_login(page, "VRDGPP70C15Z110R", "Abroad02")
    page.wait_for_url(f"{broker.url}/roles/choose*")
    page.get_by_role("button", name="Per me stesso").click()
    page.wait_for_url(f"{broker.url}/demo-rp/callback*")
    assert "ordinario" in page.content()
    page.get_by_role("link", name="Torna ai servizi dimostrativi").click()
    page.get_by_role("link", name="Domanda di pensione").click()
    assert "profilo dispositivo" in page.get_by_role("status").inner_text()
    page.get_by_text("Entra con SPID").click()
    page.get_by_role("link", name="Varco Test IdP").click()
    page.get_by_label("Nome utente / Username").fill("giuseppe.verdi")
    page.get_by_label("Password").fill("test")
    page.get_by_role("button", name="Entra / Sign in").click()
    page.wait_for_url(f"{broker.url}/roles/choose*")  # still a delegate too
    page.get_by_role("button", name="Per me stesso").click()
    page.wait_for_url(f"{broker.url}/demo-rp/pension-portal/callback*")
    text = page.content()
    assert "dispositivo" in text and "https://www.spid.gov.it/SpidL2" in text
    sid = next(c["value"] for c in page.context.cookies() if c["name"] == "varco_session")
    session = broker.ctx.sessions.by_sid(sid)
    assert session is not None
    assert [r.event.provider for r in session.logins] == ["pin", "spid"]  # both events kept
    assert session.current.decision.privilege == "dispositivo"
    page.close()
