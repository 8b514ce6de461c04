"""CNS attacks, each through the real nginx + broker bench: forged certificate headers,
replayed challenges and outcome links, a challenge used from another browser, a stale
certificate after the clock moves, a CRL updated on disk while the broker runs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from broker.clock import FixedClock
from tests.cns.flow import CnsEnv, start_cns_env
from tests.oidc.oidc_helpers import code_from, query

pytestmark = pytest.mark.integration


@pytest.fixture
def cns(broker_factory, tmp_path: Path) -> Iterator[CnsEnv]:
    env = start_cns_env(broker_factory, tmp_path, FixedClock(datetime.now(UTC)))
    yield env
    env.stop()


def escaped_pem(env: CnsEnv, card: str) -> str:
    pem = env.pki.cards[card].issued.cert.public_bytes(serialization.Encoding.PEM).decode()
    return quote(pem, safe="")


def cns_errors(env: CnsEnv) -> list[str]:
    return [e.data["error"] for e in env.broker.ctx.audit.entries("login.error")
            if e.data.get("provider") == "cns"]


def test_header_sent_straight_to_the_broker_from_another_address(cns: CnsEnv) -> None:
    """An attacker who reaches the broker's port (not via nginx) with a victim's public
    certificate in the header gets nothing, and cannot even burn the challenge."""
    rp = cns.rp()
    pending = rp.authorize_params(idp_hint="cns")
    browser = cns.browser(cns.pki.cards["valid"])
    link = browser.card_link(browser.start_page(pending))
    direct = f"{cns.broker.url}/cns/tls?{urlsplit(link).query}"
    transport = httpx.HTTPTransport(local_address="127.0.0.2")  # not a trusted proxy
    with httpx.Client(transport=transport, follow_redirects=False) as attacker:
        answer = attacker.get(direct, headers={"X-Varco-Client-Cert": escaped_pem(cns, "valid")})
    assert answer.status_code == 403
    assert "punto di accesso previsto" in answer.text
    assert "location" not in answer.headers
    assert cns_errors(cns) == ["cns_untrusted_proxy"]
    # The citizen's own login with that link still works.
    assert code_from(browser.present(link, rp.redirect_uri), pending)


def test_header_forged_through_the_main_site_is_not_let_through(cns: CnsEnv) -> None:
    """The main site is the same trusted proxy address: it must not reach /cns/tls."""
    rp = cns.rp()
    pending = rp.authorize_params(idp_hint="cns")
    browser = cns.browser(None)  # no card at all
    link = browser.card_link(browser.start_page(pending))
    for path in ("/cns/tls", "/cns//tls", "/cns/%74ls", "/cns/./tls"):
        forged = browser.http.get(f"{cns.issuer}{path}?{urlsplit(link).query}",
                                  headers={"X-Varco-Client-Cert": escaped_pem(cns, "valid")})
        assert forged.status_code == 404, (path, forged.status_code)
    assert "varco_session" not in browser.http.cookies
    assert not cns.broker.ctx.audit.entries("login.decision")


def test_header_forged_at_the_card_endpoint_without_a_card(cns: CnsEnv) -> None:
    """nginx replaces the browser's own header: no card in the handshake, no login."""
    rp = cns.rp()
    pending = rp.authorize_params(idp_hint="cns")
    browser = cns.browser(None)
    link = browser.card_link(browser.start_page(pending))
    first = browser.http.get(link, headers={"X-Varco-Client-Cert": escaped_pem(cns, "valid")})
    page = browser.walk(first, rp.redirect_uri)
    assert page.status_code == 400
    assert "non ha presentato alcun certificato" in page.text
    assert cns_errors(cns) == ["cns_no_certificate"]


def test_replayed_challenge_is_refused(cns: CnsEnv) -> None:
    """The card link works once: a second handshake with it (same card, same browser)
    gets a readable refusal, not a second login."""
    rp = cns.rp()
    pending = rp.authorize_params(idp_hint="cns")
    browser = cns.browser(cns.pki.cards["valid"])
    link = browser.card_link(browser.start_page(pending))
    assert code_from(browser.present(link, rp.redirect_uri), pending)
    again = browser.http.get(link)
    assert again.status_code == 400
    assert "già stato usato o è scaduto" in again.text
    assert "location" not in again.headers
    assert cns_errors(cns) == ["cns_challenge_invalid"]


def test_challenge_expires(cns: CnsEnv) -> None:
    rp = cns.rp()
    pending = rp.authorize_params(idp_hint="cns")
    browser = cns.browser(cns.pki.cards["valid"])
    link = browser.card_link(browser.start_page(pending))
    cns.broker.clock.advance(seconds=181)  # challenge_ttl defaults to 180
    late = browser.http.get(link)
    assert late.status_code == 400
    assert cns_errors(cns) == ["cns_challenge_invalid"]


def test_replayed_outcome_link_is_refused(cns: CnsEnv) -> None:
    rp = cns.rp()
    pending = rp.authorize_params(idp_hint="cns")
    browser = cns.browser(cns.pki.cards["valid"])
    link = browser.card_link(browser.start_page(pending))
    to_done = browser.http.get(link)
    assert to_done.status_code == 303
    done = to_done.headers["location"]
    assert done.startswith(f"{cns.issuer}/cns/done?r=")
    assert code_from(browser.walk(browser.http.get(done), rp.redirect_uri), pending)
    replay = browser.http.get(done)
    assert replay.status_code == 400
    assert "code" not in query(replay.headers.get("location", ""))


def test_challenge_used_from_another_browser_logs_nobody_in(cns: CnsEnv) -> None:
    """Login CSRF / link theft: the attacker's card on the victim's challenge link.
    The outcome belongs to the victim's pending login, which the attacker's browser does
    not own; the victim's browser never asked for it either."""
    rp = cns.rp()
    pending = rp.authorize_params(idp_hint="cns")
    victim = cns.browser(None)
    link = victim.card_link(victim.start_page(pending))
    attacker = cns.browser(cns.pki.cards["valid"])
    page = attacker.present(link, rp.redirect_uri)
    assert page.status_code == 400
    assert "varco_session" not in attacker.http.cookies
    assert not cns.broker.ctx.audit.entries("login.decision")


def test_the_broker_clock_decides_expiry_not_nginx(cns: CnsEnv) -> None:
    """nginx accepts the card (its dates are fine in real time); the broker's clock says
    the card's three years are over."""
    cns.broker.clock.advance(days=1200)
    # CRLs would be stale by then too: refresh them at the broker's time.
    cns.pki.now = cns.broker.clock.now()
    cns.pki.write_crls([])
    rp = cns.rp()
    pending = rp.authorize_params(idp_hint="cns")
    page = cns.browser(cns.pki.cards["valid"]).login(pending)
    assert page.status_code == 403
    assert "scaduto" in page.text
    assert cns_errors(cns) == ["cns_expired"]


def test_crl_updated_on_disk_applies_without_restart(cns: CnsEnv) -> None:
    rp = cns.rp()
    card = cns.pki.cards["valid"]
    pending = rp.authorize_params(idp_hint="cns")
    assert cns.browser(card).login_for_code(pending)
    cns.pki.write_crls([cns.pki.cards["revoked"].issued, card.issued])
    crl = cns.pki.crl_dir / "inter.crl"
    stat = crl.stat()
    os.utime(crl, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    pending = rp.authorize_params(idp_hint="cns")
    page = cns.browser(card).login(pending)
    assert page.status_code == 403
    assert "revocato" in page.text


def test_missing_crl_refuses_with_503_when_revocation_is_required(cns: CnsEnv) -> None:
    for f in cns.pki.crl_dir.iterdir():
        f.unlink()
    pending = cns.rp().authorize_params(idp_hint="cns")
    page = cns.browser(cns.pki.cards["valid"]).login(pending)
    assert page.status_code == 503
    assert cns_errors(cns) == ["cns_revocation_unknown"]


def test_clock_moves_past_the_crl_next_update(cns: CnsEnv) -> None:
    cns.broker.clock.advance(days=8)  # the CRLs say next update within 7 days
    pending = cns.rp().authorize_params(idp_hint="cns")
    page = cns.browser(cns.pki.cards["valid"]).login(pending)
    assert page.status_code == 503
    assert cns.broker.clock.now() - cns.pki.now > timedelta(days=7)


def test_browser_x_forwarded_for_does_not_change_who_the_broker_trusts(cns: CnsEnv) -> None:
    """uvicorn (proxy headers on by default for 127.0.0.1, as `varco serve` with
    trusted_proxies) would take the client address from X-Forwarded-For; the card block
    clears it, so a browser cannot make itself (or anyone) the trusted proxy."""
    assert cns.broker.server.config.proxy_headers
    rp = cns.rp()
    pending = rp.authorize_params(idp_hint="cns")
    browser = cns.browser(cns.pki.cards["valid"])
    link = browser.card_link(browser.start_page(pending))
    first = browser.http.get(link, headers={"X-Forwarded-For": "10.9.9.9"})
    assert code_from(browser.walk(first, rp.redirect_uri), pending)
