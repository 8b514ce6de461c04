"""Grant/refuse semantics table-driven on small rule sets, the shipped abilitazioni policy,
the explain output for a denied operator, and broken grant rules with file:line."""

from __future__ import annotations

import io
import textwrap
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from broker.cli.policy import explain
from broker.clock import FixedClock
from broker.config import load_settings
from broker.directory.demo import seed_demo_directory
from broker.directory.sqlite import SqliteDirectory
from broker.errors import PolicyError
from broker.paths import project_dir
from broker.policy import PolicyEngine, make_input
from broker.store import SqliteDatabase
from providers.pin.acr import ACR_PIN
from providers.spid.levels import ACR_SPID_L2

NOW = datetime(2025, 3, 1, 12, tzinfo=UTC)
ALLOW_ALL = """
  - id: allow-spid
    description: any spid login
    when: {provider: spid}
    allow: {privilege: dispositivo}
  - id: allow-pin
    description: any pin login is ordinario
    when: {provider: pin}
    allow: {privilege: ordinario}
"""
OPERATOR_GRANT = """
  - id: grant-ops
    description: operators
    grant:
      kind: municipal_operator
      for_each: facts.operatore
      scope: {comune: {ref: item.comune}}
      services: {ref: item.abilitazioni}
      requires_privilege: dispositivo
"""


def engine_of(tmp_path: Path, rules: str, extra: str = "") -> PolicyEngine:
    (tmp_path / "p.yaml").write_text(f"version: 1\nrules:{rules}\n{extra}")
    return PolicyEngine.load(tmp_path)


def op(comune: str, *services: str) -> dict[str, Any]:
    return {"comune": comune, "abilitazioni": list(services)}


def spid(facts: dict[str, Any], client: str = "demo-rp"):
    return make_input(provider="spid", now=NOW, fiscal_code="BNCLRA85M41Z404W",
                      acr=ACR_SPID_L2, facts=facts, client={"client_id": client})


CASES = [
    # (name, rules, facts, want abilitazioni as {(comune, services)})
    ("one comune", OPERATOR_GRANT, {"operatore": [op("H501", "cittadino.cud")]},
     {("H501", ("cittadino.cud",))}),
    ("no facts, no grant", OPERATOR_GRANT, {}, set()),
    ("facts not a list", OPERATOR_GRANT, {"operatore": "H501"}, set()),
    ("same comune twice extends", OPERATOR_GRANT,
     {"operatore": [op("H501", "cittadino.cud"), op("H501", "cittadino.domus")]},
     {("H501", ("cittadino.cud", "cittadino.domus"))}),
    ("exclusive ISEE pair dropped, rest kept", OPERATOR_GRANT,
     {"operatore": [op("H501", "isee.consultazione", "cittadino.cud"),
                    op("H501", "isee.acquisizione")]},
     {("H501", ("cittadino.cud",))}),
    ("exclusive pair alone: no abilitazione", OPERATOR_GRANT,
     {"operatore": [op("H501", "prestazioni_sociali.consultazione",
                       "prestazioni_sociali.acquisizione")]}, set()),
    ("unknown service in facts: not granted", OPERATOR_GRANT,
     {"operatore": [op("H501", "root")]}, set()),
    ("missing scope value: not granted", OPERATOR_GRANT,
     {"operatore": [{"abilitazioni": ["cittadino.cud"]}]}, set()),
    ("refuse overrides grant (deny overrides allow)", OPERATOR_GRANT + """
  - id: refuse-h501
    description: no H501
    refuse:
      kind: municipal_operator
      for_each: facts.operatore
      where: {item.comune: H501}
      scope: {comune: {ref: item.comune}}
""", {"operatore": [op("H501", "cittadino.cud"), op("L219", "cittadino.cud")]},
     {("L219", ("cittadino.cud",))}),
    ("refuse without scope takes the whole kind", OPERATOR_GRANT + """
  - id: refuse-all
    description: none at all
    when: {provider: spid}
    refuse: {kind: municipal_operator}
""", {"operatore": [op("H501", "cittadino.cud")]}, set()),
]


@pytest.mark.parametrize(("name", "rules", "facts", "want"), CASES, ids=[c[0] for c in CASES])
def test_grant_semantics(tmp_path, name, rules, facts, want):
    engine = engine_of(tmp_path, ALLOW_ALL + rules)
    decision = engine.decide(spid(facts))
    assert decision.allow
    got = {(a.scope["comune"], a.services) for a in decision.abilitazioni}
    assert got == want


def test_credential_strength_is_required_and_the_trace_says_so(tmp_path):
    engine = engine_of(tmp_path, ALLOW_ALL + OPERATOR_GRANT)
    inp = make_input(provider="pin", now=NOW, fiscal_code="VRDGPP70C15Z110R", acr=ACR_PIN,
                     facts={"operatore": [op("H501", "cittadino.cud")]})
    decision = engine.decide(inp)
    assert decision.allow and decision.abilitazioni == ()
    trace = next(t for t in decision.trace if t.rule == "grant-ops")
    assert not trace.fired
    assert "needs privilege dispositivo, this login gives ordinario" in trace.why


def test_exclusive_pair_refusal_is_in_the_trace(tmp_path):
    engine = engine_of(tmp_path, ALLOW_ALL + OPERATOR_GRANT)
    decision = engine.decide(spid({"operatore": [op("H501", "isee.consultazione",
                                                    "isee.acquisizione")]}))
    line = next(t for t in decision.trace if t.rule == "exclusive-pairs")
    assert line.fired and "exclude each other" in line.why


def test_requirement_unknown_to_other_clients(tmp_path):
    req = """requirements:
  - client: desk
    description: needs an operator
    abilitazione: {kind: municipal_operator, services_any: [cittadino.cud]}
    message: {it: solo operatori, en: operators only}
"""
    engine = engine_of(tmp_path, ALLOW_ALL + OPERATOR_GRANT, req)
    facts = {"operatore": [op("H501", "cittadino.domus")]}
    assert engine.decide(spid(facts, "other")).allow
    denied = engine.decide(spid(facts, "desk"))
    assert not denied.allow and denied.message_en == "operators only"
    assert engine.decide(spid({"operatore": [op("H501", "cittadino.cud")]}, "desk")).allow


BROKEN = [
    ("unknown key in grant", """
  - id: g
    description: d
    grant: {kind: municipal_operator, colour: red}
""", "colour"),
    ("unknown kind", """
  - id: g
    description: d
    grant: {kind: superuser}
""", "kind"),
    ("unknown service literal", """
  - id: g
    description: d
    grant: {kind: municipal_operator, services: [isee.everything]}
""", "unknown services"),
    ("where without for_each", """
  - id: g
    description: d
    grant: {kind: delegate, where: {item.x: 1}}
""", "needs 'for_each'"),
    ("item outside for_each", """
  - id: g
    description: d
    grant: {kind: delegate, scope: {who: {ref: item.delegator_cf}}}
""", "item.* is only known inside"),
    ("bad for_each field", """
  - id: g
    description: d
    grant: {kind: delegate, for_each: fact.delegations}
""", "unknown field"),
    ("two effects", """
  - id: g
    description: d
    allow: {privilege: ordinario}
    grant: {kind: delegate}
""", "exactly one effect"),
]


@pytest.mark.parametrize(("name", "rules", "want"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_grant_rules_report_file_and_line(tmp_path, name, rules, want):
    (tmp_path / "p.yaml").write_text(f"version: 1\nrules:{rules}")
    with pytest.raises(PolicyError) as err:
        PolicyEngine.load(tmp_path)
    text = "\n".join(err.value.problems)
    assert want in text
    assert f"{tmp_path / 'p.yaml'}:" in text
    line = int(text.split(f"{tmp_path / 'p.yaml'}:")[1].split(":")[0])
    assert line >= 3


def test_explain_shows_a_denied_operator_with_directory_facts(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    seed_demo_directory(SqliteDirectory(SqliteDatabase(data / "varco.db")),
                        FixedClock(NOW).now())
    root = project_dir("config").parent
    config = tmp_path / "broker.yaml"
    config.write_text(textwrap.dedent(f"""\
        data_dir: {data}
        clients: {root / 'config' / 'clients.demo.yaml'}
        policies_dir: {root / 'policies'}
        mappings_dir: {root / 'mappings'}
        """))
    assert load_settings(config).directory.backend == "embedded"
    out = io.StringIO()
    code = explain(project_dir("policies"), "VRDGPP70C15Z110R", "pin", client="isee-desk",
                   attributes=["pin_privilege=ordinario", "residence=abroad",
                               "italian_document=false"],
                   now=date(2025, 3, 1), out=out, config=config)
    text = out.getvalue()
    assert code == 0, text
    assert "directory facts from the embedded directory" in text
    assert "facts.operatore: 1 item(s)" in text and "comune='F205'" in text
    assert "VRDGPP70C15Z110R" not in text and "RSSMRA80A01H501U" not in text  # masked
    # every rule is listed, fired or not, with why
    for rule in ("intermediary-deleghe", "operator-abilitazioni",
                 "no-convenzione-no-abilitazione", "delegate-of-citizen", "pin-ordinario",
                 "spid-level-1-denied"):
        assert rule in text
    assert "[not fired] grant operator-abilitazioni" in text
    assert "item.convenzione.valid_until on or after now ✗ (is 2022-12-31" in text
    assert "[FIRED] refuse no-convenzione-no-abilitazione" in text
    assert "[FIRED] deny requirement:isee-desk" in text
    assert "needs privilege dispositivo, this login gives ordinario" in text
    assert "DENY (isee_operator_required)" in text
    assert "message (it): Questo servizio è riservato agli operatori comunali" in text


def test_explain_shows_an_allowed_operator_with_abilitazioni(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    seed_demo_directory(SqliteDirectory(SqliteDatabase(data / "varco.db")), NOW)
    root = project_dir("config").parent
    config = tmp_path / "broker.yaml"
    config.write_text(f"data_dir: {data}\nclients: {root / 'config/clients.demo.yaml'}\n"
                      f"policies_dir: {root / 'policies'}\nmappings_dir: {root / 'mappings'}\n")
    out = io.StringIO()
    explain(project_dir("policies"), "BNCLRA85M41Z404W", "cie", client="isee-desk",
            now=date(2025, 3, 1), out=out, config=config)
    text = out.getvalue()
    assert "ALLOW by cie-level-2-or-more" in text
    assert ("abilitazione: municipal_operator (comune='H501') services "
            "[isee.acquisizione, variazioni_anagrafiche]") in text
    assert "abilitazione: intermediary (as='commercialista', company='00743110157')" in text
    assert "12345678903" not in text.split("Decision:")[1]  # the expired delega
