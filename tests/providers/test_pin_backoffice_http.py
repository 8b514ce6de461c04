"""Conversion ordinario -> dispositivo and the back-office API, end to end over HTTP.

The citizen uploads the MV35 form and an identity document; an admin client approves or
rejects through ``/admin/pin``; after approval the same PIN logs in to an RP that
requires ``dispositivo`` and the ID token says so. Every decision names the operator
and the reason in the audit trail.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.oidc.oidc_helpers import Browser, IdTokenCheck, now_of, pension_rp
from tests.providers.pin_env import BACKOFFICE, PinEnv, body, hidden, start_pin_env

pytestmark = pytest.mark.integration

GIUSEPPE, PIN_GIUSEPPE = "VRDGPP70C15Z110R", "Abroad02"  # ordinario
LAURA = "BNCLRA85M41Z404W"  # already dispositivo
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def env(broker_factory, tmp_path: Path) -> Iterator[PinEnv]:
    running = start_pin_env(broker_factory, tmp_path)
    yield running
    running.stop()


def _upload(env: PinEnv, cf: str = GIUSEPPE, pin: str = PIN_GIUSEPPE,
            mv35: tuple[str, bytes, str] = ("mv35.pdf", PDF, "application/pdf"),
            doc: tuple[str, bytes, str] = ("passport.png", PNG, "image/png")):
    return env.citizen().post("/pin/conversion", {"fiscal_code": cf, "pin": pin},
                              files={"mv35": mv35, "id_document": doc})


def _pending(env: PinEnv) -> list[dict[str, Any]]:
    with env.admin() as admin:
        r = admin.get("/admin/pin/conversions")
    assert r.status_code == 200
    conversions: list[dict[str, Any]] = r.json()["conversions"]
    return conversions


SELF_ROLE = hashlib.sha256(b"self").hexdigest()[:20]  # broker.login.roles.role_key of "for myself"


def _login_pension(env: PinEnv, cf: str, pin: str):
    rp = pension_rp(env.broker.url)
    pending = rp.authorize_params(scope="openid profile fiscal_number")
    browser = Browser(env.broker.url)
    final = browser.pin_login(browser.authorize(pending), cf, pin, rp.redirect_uri)
    if final.status_code == 200 and 'name="role"' in final.text:
        # A person with abilitazioni (issue 5 demo directory) picks "for myself".
        final = browser.walk(browser.http.post("/roles/choose", data={
            "csrf_token": hidden(final.text, "csrf_token"), "tx": hidden(final.text, "tx"),
            "role": SELF_ROLE}), rp.redirect_uri)
    return rp, pending, browser, final


def test_conversion_approved_then_dispositivo_login_with_the_claim(env: PinEnv) -> None:
    # Before: an ordinario PIN cannot finish a login at an RP that needs dispositivo.
    _, _, _, before = _login_pension(env, GIUSEPPE, PIN_GIUSEPPE)
    assert before.status_code == 200 and 'name="pin"' not in before.text  # step-up page
    assert "/pension-portal/callback" not in before.headers.get("location", "")

    page = _upload(env)
    assert page.status_code == 200, page.text
    [conv] = _pending(env)
    assert conv["fiscal_code"] == GIUSEPPE and conv["status"] == "pending"
    assert conv["form_type"] == "application/pdf" and conv["document_type"] == "image/png"
    stored = list((env.data_dir / "pin_uploads").iterdir())
    assert len(stored) == 2 and all(oct(p.stat().st_mode & 0o777) == "0o600" for p in stored)
    assert not any("mv35" in p.name or "passport" in p.name for p in stored)
    # Not served publicly: no route outside the admin API reaches the files.
    for path in stored:
        assert env.broker.client().get(f"/pin_uploads/{path.name}").status_code == 404
        assert env.broker.client().get(f"/static/../pin_uploads/{path.name}").status_code \
            == 404
    with env.admin() as admin:
        f = admin.get(f"/admin/pin/conversions/{conv['id']}/files/mv35")
        assert f.status_code == 200 and f.content == PDF
        assert f.headers["content-type"] == "application/pdf"
        assert "attachment" in f.headers["content-disposition"]
        anonymous = env.broker.client().get(f"/admin/pin/conversions/{conv['id']}/files/mv35")
        assert anonymous.status_code == 401
        r = admin.post(f"/admin/pin/conversions/{conv['id']}/approve",
                       json={"operator": "m.rossi", "reason": "MV35 e passaporto verificati"})
        assert r.status_code == 200, r.text
        assert r.json()["conversion"]["status"] == "approved"
        assert r.json()["conversion"]["operator"] == "backoffice:m.rossi"
        twice = admin.post(f"/admin/pin/conversions/{conv['id']}/reject",
                           json={"operator": "m.rossi", "reason": "ripensamento"})
        assert twice.status_code == 409
        audit = admin.get("/admin/audit/entries",
                          params={"kind": "pin.conversion.approved"}).json()["entries"]
    [entry] = audit
    assert entry["data"]["operator"] == "backoffice:m.rossi"
    assert entry["data"]["reason"] == "MV35 e passaporto verificati"
    env.deliver()
    [notice] = env.smtp.wait_for("giuseppe.verdi@example.org")
    assert "dispositivo" in body(notice)

    rp, pending, browser, final = _login_pension(env, GIUSEPPE, PIN_GIUSEPPE)
    from tests.oidc.oidc_helpers import code_from

    code = code_from(final, pending)
    tokens = rp.exchange(browser.http, pending, code)
    assert tokens.status_code == 200, tokens.text
    check = IdTokenCheck(env.broker.url).load(browser.http)
    claims = check(tokens.json()["id_token"], client_id=rp.client_id, now=now_of(env.broker),
                   nonce=pending.nonce, alg="RS256")
    assert claims["privilege"] == "dispositivo" and claims["amr"] == ["pin"]


def test_conversion_rejected_keeps_ordinario_and_tells_why(env: PinEnv) -> None:
    assert _upload(env).status_code == 200
    [conv] = _pending(env)
    with env.admin() as admin:
        r = admin.post(f"/admin/pin/conversions/{conv['id']}/reject",
                       json={"operator": "a.bianchi", "reason": "firma mancante sul MV35"})
        assert r.status_code == 200
        history = admin.get(f"/admin/pin/persons/{GIUSEPPE}").json()
    assert history["credentials"][-1]["privilege"] == "ordinario"
    assert history["events"][-1] == {**history["events"][-1], "kind": "conversion.rejected",
                                     "actor": "backoffice:a.bianchi",
                                     "reason": "firma mancante sul MV35"}
    env.deliver()
    [notice] = env.smtp.wait_for("giuseppe.verdi@example.org")
    assert "firma mancante" in body(notice)
    # A new request may follow a rejection.
    assert _upload(env).status_code == 200


@pytest.mark.parametrize(("mv35", "message"), [
    (("mv35.pdf", b"hello, I am text", "application/pdf"), "PNG o JPEG"),
    (("mv35.exe", b"MZ\x90\x00" + b"\x00" * 32, "image/png"), "PNG o JPEG"),
    (("mv35.pdf", b"", "application/pdf"), "Allega il file"),
    (("mv35.pdf", b"%PDF-" + b"0" * (5 * 1024 * 1024), "application/pdf"), "troppo grande"),
])
def test_bad_uploads_are_refused_and_nothing_is_stored(env: PinEnv, mv35, message) -> None:
    page = _upload(env, mv35=mv35)
    assert page.status_code == 400 and message in page.text
    assert _pending(env) == []
    assert not (env.data_dir / "pin_uploads").exists() or not any(
        (env.data_dir / "pin_uploads").iterdir())


def test_conversion_needs_the_right_pin_and_an_ordinario_pin(env: PinEnv) -> None:
    assert _upload(env, pin="Wrong123").status_code == 401
    laura = _upload(env, cf=LAURA, pin="Abroad01")
    assert laura.status_code == 409 and "già dispositivo" in laura.text
    assert _upload(env).status_code == 200
    again = _upload(env)
    assert again.status_code == 409 and "già una richiesta" in again.text


def test_pending_conversion_is_an_explicit_attribute_of_the_pin_login(env: PinEnv) -> None:
    provider = env.provider
    outcome = provider._check(GIUSEPPE, PIN_GIUSEPPE)
    assert "pin_conversion" not in provider._event(outcome.account).attributes
    assert _upload(env).status_code == 200
    [conv] = _pending(env)
    attributes = provider._event(provider._check(GIUSEPPE, PIN_GIUSEPPE).account).attributes
    assert attributes["pin_privilege"] == "ordinario"  # not upgraded
    assert attributes["pin_conversion"] == "pending"
    assert attributes["pin_conversion_id"] == conv["id"]


def test_admin_revoke_and_letter_reissue_with_operator_and_reason(env: PinEnv) -> None:
    with env.admin() as admin:
        missing = admin.post("/admin/pin/revoke", json={"fiscal_code": GIUSEPPE,
                                                        "operator": "x"})
        assert missing.status_code == 400 and missing.json()["error"] == "bad_request"
        no_letter = admin.post("/admin/pin/letters/reissue", json={
            "fiscal_code": GIUSEPPE, "operator": "x", "reason": "returned to sender"})
        assert no_letter.status_code == 409  # his PIN is past the initial one
        r = admin.post("/admin/pin/revoke", json={"fiscal_code": GIUSEPPE,
                                                  "operator": "l.neri",
                                                  "reason": "furto denunciato"})
        assert r.status_code == 200
        again = admin.post("/admin/pin/revoke", json={"fiscal_code": GIUSEPPE,
                                                      "operator": "l.neri", "reason": "again"})
        assert again.status_code == 409
        anna = admin.post("/admin/pin/letters/reissue", json={
            "fiscal_code": "NRENNA90H52Z600M", "operator": "l.neri",
            "reason": "lettera tornata al mittente"})
        assert anna.status_code == 200 and anna.json()["practice_number"].startswith("PIN-")
        history = admin.get("/admin/pin/persons/VRDGPP70C15Z110R").json()
        bad_cf = admin.get("/admin/pin/persons/VRDGPP70C15Z110X")
    assert bad_cf.status_code == 400
    assert history["credentials"][-1]["status"] == "revoked"
    assert history["events"][-1]["actor"] == "backoffice:l.neri"
    env.deliver()
    assert len(list((env.data_dir / "outbox/letters").glob("*.pdf"))) == 1


@pytest.mark.parametrize(("auth", "status"), [
    (None, 401), (("demo-rp", "demo-rp-secret"), 403), (("backoffice", "nope"), 401),
    (BACKOFFICE, 200)])
def test_admin_pin_api_needs_an_admin_client(env: PinEnv, auth, status) -> None:
    with env.broker.client() as http:
        r = http.get("/admin/pin/outbox", auth=auth)
    assert r.status_code == status, r.text


def test_filing_with_an_ordinario_pin_awaiting_conversion_is_explicit(env: PinEnv) -> None:
    """pension-portal accepts applications *filed* with an ordinario PIN (DOMAIN.md, 001).

    While the conversion is pending the login passes, but the token says ordinario and
    carries ``application_filing``: never a silent upgrade to dispositivo.
    """
    assert _upload(env).status_code == 200
    [conv] = _pending(env)
    rp, pending, browser, final = _login_pension(env, GIUSEPPE, PIN_GIUSEPPE)
    from tests.oidc.oidc_helpers import code_from

    code = code_from(final, pending)
    tokens = rp.exchange(browser.http, pending, code).json()
    check = IdTokenCheck(env.broker.url).load(browser.http)
    claims = check(tokens["id_token"], client_id=rp.client_id, now=now_of(env.broker),
                   nonce=pending.nonce, alg="RS256")
    assert claims["privilege"] == "ordinario"
    assert claims["application_filing"] == {"status": "held_until_conversion",
                                            "conversion_id": str(conv["id"])}
