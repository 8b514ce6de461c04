"""The directory admin API over real HTTP: admin client auth, reasons in the audit trail,
extension not replacement, exclusive pairs refused, listing a comune's operators; and
the audit chain detecting a tampered row."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import pytest

from broker.paths import project_dir
from tests.oidc.oidc_helpers import LAURA, PIN_LAURA, Browser
from tests.roles.roles_env import MARIO, demo_directory, portale_rp

pytestmark = pytest.mark.integration
ADMIN = ("backoffice", "backoffice-secret")
REASON = "richiesta scritta del legale rappresentante"
CF = "RSSMRA80A01H501U"


@pytest.fixture
def broker(broker_factory):
    return broker_factory(directory=demo_directory())


def test_admin_api_needs_an_admin_client_never_a_cookie(broker):
    http = broker.client()
    body = {"fiscal_code": CF, "comune": "H501", "abilitazioni": ["cittadino.cud"],
            "reason": REASON}
    assert http.post("/admin/directory/operators/grant", json=body).status_code == 401
    wrong = http.post("/admin/directory/operators/grant", json=body,
                      auth=("backoffice", "nope"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    rp = http.post("/admin/directory/operators/grant", json=body,
                   auth=("demo-rp", "demo-rp-secret"))
    assert rp.status_code in (401, 403)
    # a logged-in citizen's browser cookie is not an admin credential
    browser = Browser(broker.url)
    pending = portale_rp(broker.url).authorize_params()
    browser.pin_login(browser.authorize(pending), LAURA, PIN_LAURA, pending.rp.redirect_uri)
    assert browser.http.cookies.get("varco_session")
    assert browser.http.post("/admin/directory/operators/grant",
                             json=body).status_code == 401
    listing = broker.client().get("/admin/directory/comuni/H501/operators", auth=ADMIN)
    assert [o["fiscal_code"] for o in listing.json()["operators"]] == [LAURA]


def test_grant_extends_lists_operators_and_audits_the_reason(broker):
    http = broker.client()
    r = http.post("/admin/directory/operators/grant", auth=ADMIN, json={
        "fiscal_code": LAURA, "comune": "H501", "abilitazioni": ["pensioni.casellario"],
        "reason": REASON})
    assert r.status_code == 200, r.text
    held = r.json()["operator"]["abilitazioni"]
    assert held == ["isee.acquisizione", "pensioni.casellario", "variazioni_anagrafiche"]
    r = http.post("/admin/directory/operators/grant", auth=ADMIN, json={
        "fiscal_code": CF, "comune": "H501", "abilitazioni": ["isee.consultazione"],
        "reason": REASON})
    assert r.status_code == 200
    ops = http.get("/admin/directory/comuni/H501/operators", auth=ADMIN).json()
    assert {o["fiscal_code"]: o["abilitazioni"] for o in ops["operators"]} == {
        LAURA: ["isee.acquisizione", "pensioni.casellario", "variazioni_anagrafiche"],
        CF: ["isee.consultazione"]}
    assert ops["comune"]["convenzione"]["status"] == "active"
    entry = broker.ctx.audit.entries("directory.grant")[0]
    assert entry.data["reason"] == REASON and entry.data["by"] == "backoffice"
    assert entry.data["fiscal_code"] == CF and entry.data["added"] == ["isee.consultazione"]


def test_exclusive_pair_is_refused_and_changes_nothing(broker):
    http = broker.client()
    r = http.post("/admin/directory/operators/grant", auth=ADMIN, json={
        "fiscal_code": LAURA, "comune": "H501",
        "abilitazioni": ["isee.consultazione"], "reason": REASON})
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "directory_conflict"
    assert "exclude each other" in r.json()["error_description"]
    both = http.post("/admin/directory/operators/grant", auth=ADMIN, json={
        "fiscal_code": CF, "comune": "H501",
        "abilitazioni": ["prestazioni_sociali.consultazione",
                         "prestazioni_sociali.acquisizione"], "reason": REASON})
    assert both.status_code == 409
    ops = http.get("/admin/directory/comuni/H501/operators", auth=ADMIN).json()["operators"]
    assert {o["fiscal_code"]: o["abilitazioni"] for o in ops} == {
        LAURA: ["isee.acquisizione", "variazioni_anagrafiche"]}
    # revoke the held half first, then the other one is accepted
    r = http.post("/admin/directory/operators/revoke", auth=ADMIN, json={
        "fiscal_code": LAURA, "comune": "H501", "abilitazioni": ["isee.acquisizione"],
        "reason": REASON})
    assert r.json()["operator"]["abilitazioni"] == ["variazioni_anagrafiche"]
    r = http.post("/admin/directory/operators/grant", auth=ADMIN, json={
        "fiscal_code": LAURA, "comune": "H501", "abilitazioni": ["isee.consultazione"],
        "reason": REASON})
    assert r.status_code == 200
    revoked = broker.ctx.audit.entries("directory.revoke")[0].data
    assert revoked["removed"] == ["isee.acquisizione"] and revoked["reason"] == REASON


def test_the_database_itself_refuses_both_halves_of_a_pair(broker):
    db = sqlite3.connect(broker.ctx.settings.data_dir / "varco.db")
    with pytest.raises(sqlite3.IntegrityError, match="exclusive"):
        db.execute("INSERT INTO dir_operator (cf, comune, service) VALUES (?,?,?)",
                   (LAURA, "H501", "isee.consultazione"))
    db.close()


@pytest.mark.parametrize(("path", "body", "status"), [
    ("/admin/directory/operators/grant", {"fiscal_code": CF, "comune": "H501",
                                          "abilitazioni": ["cittadino.cud"]}, 400),
    ("/admin/directory/operators/grant", {"fiscal_code": CF, "comune": "H501",
                                          "abilitazioni": ["root"], "reason": REASON}, 409),
    ("/admin/directory/operators/grant", {"fiscal_code": "RSSMRA80A01H501X", "comune": "H501",
                                          "abilitazioni": ["cittadino.cud"], "reason": REASON},
     400),
    ("/admin/directory/operators/grant", {"fiscal_code": CF, "comune": "Z999",
                                          "abilitazioni": ["cittadino.cud"], "reason": REASON},
     409),
    ("/admin/directory/operators/grant", {"fiscal_code": CF, "comune": "H501", "admin": True,
                                          "abilitazioni": ["cittadino.cud"], "reason": REASON},
     400),
    ("/admin/directory/deleghe", {"fiscal_code": LAURA, "kind": "commercialista",
                                  "delega": {"company_cf": "00743110158", "form": "PEC",
                                             "valid_from": "2024-01-01"}, "reason": REASON},
     400),
    ("/admin/directory/delegations", {"delegation": {
        "delegator_cf": CF, "delegate_cf": CF, "valid_from": "2024-01-01"}, "reason": REASON},
     400),
])
def test_bad_input_is_a_clear_error_and_changes_nothing(broker, path, body, status):
    http = broker.client()
    before = http.get("/admin/directory/comuni/H501/operators", auth=ADMIN).json()
    n_audit = len(broker.ctx.audit.entries(limit=1000))
    r = http.post(path, auth=ADMIN, json=body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert http.get("/admin/directory/comuni/H501/operators", auth=ADMIN).json() == before
    assert len(broker.ctx.audit.entries(limit=1000)) == n_audit


def test_deleghe_and_delegations_grant_and_revoke_with_audit(broker):
    http = broker.client()
    directory = broker.ctx.directory
    r = http.post("/admin/directory/deleghe", auth=ADMIN, json={
        "fiscal_code": CF, "kind": "avvocato", "reason": "modulo SC64 via PEC",
        "delega": {"company_cf": "00743110157", "form": "SC64", "valid_from": "2024-01-01",
                   "valid_until": "2030-01-01"}})
    assert r.status_code == 200, r.text
    facts = directory.facts(CF)
    assert facts.intermediary[0].kind == "avvocato"
    assert facts.intermediary[0].deleghe[0].form == "SC64"
    r = http.post("/admin/directory/deleghe/revoke", auth=ADMIN, json={
        "fiscal_code": CF, "kind": "avvocato", "company_cf": "00743110157",
        "reason": "revoca del legale rappresentante"})
    assert r.status_code == 200 and directory.facts(CF).intermediary == ()
    again = http.post("/admin/directory/deleghe/revoke", auth=ADMIN, json={
        "fiscal_code": CF, "kind": "avvocato", "company_cf": "00743110157",
        "reason": "revoca del legale rappresentante"})
    assert again.status_code == 404
    r = http.post("/admin/directory/delegations/revoke", auth=ADMIN, json={
        "delegator_cf": MARIO, "delegate_cf": "VRDGPP70C15Z110R",
        "reason": "revoca del delegante"})
    assert r.status_code == 200
    assert directory.facts("VRDGPP70C15Z110R").delegations == ()
    kinds = [e.kind for e in broker.ctx.audit.entries(limit=10)]
    assert {"directory.delega", "directory.delega_revoked",
            "directory.delegation_revoked"} <= set(kinds)
    assert broker.ctx.audit.entries("directory.delegation_revoked")[0].data["reason"] == \
        "revoca del delegante"


def test_audit_verify_detects_a_tampered_row(broker_factory, tmp_path):
    broker = broker_factory(directory=demo_directory())
    http = broker.client()
    http.post("/admin/directory/operators/grant", auth=ADMIN, json={
        "fiscal_code": CF, "comune": "H501", "abilitazioni": ["cittadino.cud"],
        "reason": REASON})
    broker.stop()
    data_dir = broker.ctx.settings.data_dir
    root = project_dir("config").parent
    config = tmp_path / "audit.yaml"
    config.write_text(textwrap.dedent(f"""\
        data_dir: {data_dir}
        clients: {root / 'config' / 'clients.demo.yaml'}
        policies_dir: {root / 'policies'}
        mappings_dir: {root / 'mappings'}
        """))

    def verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "broker.cli.main", "audit", "verify",
                               "--config", str(config)], capture_output=True, text=True,
                              cwd=root, timeout=60)

    ok = verify()
    assert ok.returncode == 0 and "intact" in ok.stdout, ok.stdout + ok.stderr
    db = sqlite3.connect(data_dir / "varco.db")
    with pytest.raises(sqlite3.IntegrityError):  # the triggers refuse edits...
        db.execute("UPDATE audit SET data = replace(data, ?, ?) WHERE kind='directory.grant'",
                   (REASON, "nessun motivo"))
    # ...so an attacker with file access drops them first
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("UPDATE audit SET data = replace(data, ?, ?) WHERE kind='directory.grant'",
               (REASON, "nessun motivo"))
    db.commit()
    seq = db.execute("SELECT seq FROM audit WHERE kind='directory.grant'").fetchone()[0]
    db.close()
    bad = verify()
    assert bad.returncode == 1
    assert f"audit chain broken at entry {seq}" in bad.stdout
