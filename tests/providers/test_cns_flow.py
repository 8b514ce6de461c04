"""CNS end to end: RP -> broker -> nginx card endpoint (real TLS, client certificate) -> RP.

A real nginx (Debian package) runs the shipped snippets in front of a real broker; httpx
presents each test card in the TLS handshake. Valid cards reach the RP with the codice
fiscale and ``dispositivo``; every bad card gets its readable 4xx page, an audit entry,
and no code and no session.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from broker.clock import FixedClock
from tests.cns.flow import CnsEnv, start_cns_env
from tests.cns.pki_env import CN_FORM_CF, MARIO
from tests.oidc.oidc_helpers import IdTokenCheck, now_of

pytestmark = pytest.mark.integration


@pytest.fixture
def cns(broker_factory, tmp_path: Path) -> Iterator[CnsEnv]:
    env = start_cns_env(broker_factory, tmp_path, FixedClock(datetime.now(UTC)))
    yield env
    env.stop()


@pytest.mark.parametrize(("card", "cf", "given"), [
    ("valid", MARIO, "Mario"),
    ("valid_cn", CN_FORM_CF, "Giuseppe"),
])
def test_valid_card_reaches_the_rp_with_dispositivo(cns: CnsEnv, card: str, cf: str,
                                                    given: str) -> None:
    rp = cns.rp()
    pending = rp.authorize_params(idp_hint="cns")
    browser = cns.browser(cns.pki.cards[card])
    code = browser.login_for_code(pending)
    with cns.http() as http:
        tokens = rp.exchange(http, pending, code)
        assert tokens.status_code == 200, tokens.text
        body = tokens.json()
        claims = IdTokenCheck(cns.issuer).load(http)(
            body["id_token"], client_id=rp.client_id, now=now_of(cns.broker),
            nonce=pending.nonce, access_token=body["access_token"])
        info = http.get(f"{cns.issuer}/userinfo",
                        headers={"Authorization": f"Bearer {body['access_token']}"}).json()
    assert claims["acr"] == "urn:varco:acr:cns"
    assert claims["amr"] == ["sc"]
    assert claims["privilege"] == "dispositivo"
    assert info["fiscal_number"] == cf
    assert info["given_name"] == given


BAD_CARDS = [
    # card, status, code in the audit trail, words of the page (Italian, the default)
    ("expired", 403, "cns_expired", "scaduto"),
    ("not_yet_valid", 403, "cns_not_yet_valid", "non è ancora valido"),
    ("revoked", 403, "cns_revoked", "revocato"),
    ("wrong_ca", 403, "cns_unknown_issuer", "certificatore CNS riconosciuto"),
    ("no_cf", 403, "cns_no_fiscal_code", "codice fiscale valido"),
    ("bad_cf", 403, "cns_no_fiscal_code", "codice fiscale valido"),
    (None, 400, "cns_no_certificate", "non ha presentato alcun certificato"),
]


@pytest.mark.parametrize(("card", "status", "code", "words"), BAD_CARDS)
def test_bad_card_gets_a_readable_page_and_no_session(cns: CnsEnv, card: str | None,
                                                      status: int, code: str,
                                                      words: str) -> None:
    rp = cns.rp()
    pending = rp.authorize_params(idp_hint="cns")
    browser = cns.browser(cns.pki.cards[card] if card else None)
    page = browser.login(pending)
    assert page.status_code == status, page.text[:800]
    assert words in page.text
    assert 'class="error-id"' in page.text
    assert "code=" not in str(page.headers.get("location", ""))
    assert "varco_session" not in browser.http.cookies
    entries = [e for e in cns.broker.ctx.audit.entries("login.error")
               if e.data.get("provider") == "cns"]
    assert entries and entries[0].data["error"] == code
    assert not cns.broker.ctx.audit.entries("login.decision")
    # Still no session: a new authorization goes to the login, not back to the RP.
    again = browser.authorize(rp.authorize_params(idp_hint="cns"))
    assert again.status_code in (302, 303)
    assert again.headers["location"].startswith("/login"), again.headers["location"]


def test_ocsp_responder_named_in_the_card_is_asked(broker_factory, tmp_path: Path) -> None:
    """With ``ocsp: true`` a card whose AIA names a responder is checked there: the
    responder's "revoked" wins over a CRL that does not list the card yet."""
    from providers.cns import pki
    from tests.cns.ocsp_responder import OcspResponder

    env = start_cns_env(broker_factory, tmp_path, FixedClock(datetime.now(UTC)), ocsp=True)
    responder = OcspResponder(env.pki.inter, pki.make_ocsp_signer(env.pki.inter, env.pki.now),
                              env.pki.now).start()
    try:
        good = env.pki.card("ocsp_good", pki.cns_subject(MARIO, "Mario", "Rossi"),
                            ocsp_url=responder.url)
        bad = env.pki.card("ocsp_revoked", pki.cns_subject(MARIO, "Mario", "Rossi"),
                           ocsp_url=responder.url)
        responder.revoked.add(bad.issued.cert.serial_number)
        rp = env.rp()
        assert env.browser(good).login_for_code(rp.authorize_params(idp_hint="cns"))
        page = env.browser(bad).login(rp.authorize_params(idp_hint="cns"))
        assert page.status_code == 403
        assert "revocato" in page.text
        assert responder.requests == 2
    finally:
        responder.stop()
        env.stop()
