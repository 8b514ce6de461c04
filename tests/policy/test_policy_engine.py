"""The policy engine: shipped policies table-driven, and the semantics on small rule sets."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from broker.model import Privilege
from broker.paths import project_dir
from broker.policy import PolicyEngine, PolicyInput, make_input
from providers.cns.acr import ACR_CNS
from providers.pin.acr import ACR_PIN
from providers.spid.levels import ACR_SPID_L1, ACR_SPID_L2, ACR_SPID_L3

BEFORE = datetime(2021, 9, 30, 12, tzinfo=UTC)
AFTER = datetime(2023, 3, 1, 12, tzinfo=UTC)
ABROAD = {"residence": "abroad", "italian_document": False}
ITALY = {"residence": "italy", "italian_document": True}


@pytest.fixture(scope="module")
def shipped() -> PolicyEngine:
    return PolicyEngine.load(project_dir("policies"))


def pin(privilege: str, identity: dict[str, Any], now: datetime = AFTER,
        kind: str = "standard", cf: str = "BNCLRA85M41Z404W") -> PolicyInput:
    return make_input(provider="pin", now=now, fiscal_code=cf, acr=ACR_PIN,
                      attributes={"pin_privilege": privilege, "pin_kind": kind},
                      identity=identity)


def other(provider: str, acr: str) -> PolicyInput:
    return make_input(provider=provider, now=AFTER, fiscal_code="RSSMRA80A01H501U", acr=acr,
                      identity=ITALY)


SHIPPED_CASES = [
    # (name, input, want allow, want privilege, want acr, want reason)
    ("pin ordinario abroad", pin("ordinario", ABROAD), True, "ordinario", ACR_PIN,
     "pin-ordinario"),
    ("pin dispositivo abroad", pin("dispositivo", ABROAD), True, "dispositivo", ACR_PIN,
     "pin-dispositivo"),
    ("pin resident in Italy after 2021", pin("dispositivo", ITALY, cf="RSSMRA80A01H501U"),
     False, None, None, "pin_not_eligible"),
    ("pin resident in Italy before 2021", pin("dispositivo", ITALY, BEFORE), True,
     "dispositivo", ACR_PIN, "pin-dispositivo"),
    ("pin abroad with Italian document after 2021",
     pin("ordinario", {"residence": "abroad", "italian_document": True}), False, None, None,
     "pin_not_eligible"),
    ("pin in Italy without document after 2021",
     pin("ordinario", {"residence": "italy", "italian_document": False}), False, None, None,
     "pin_not_eligible"),
    ("pin with unknown residence after 2021", pin("ordinario", {}), False, None, None,
     "pin_not_eligible"),
    ("telephone pin", pin("dispositivo", ABROAD, kind="telephone"), False, None, None,
     "telephone_pin"),
    ("telephone pin before 2021", pin("dispositivo", ITALY, BEFORE, kind="telephone"), False,
     None, None, "telephone_pin"),
    ("pin without privilege", make_input(provider="pin", now=AFTER, fiscal_code=
     "BNCLRA85M41Z404W", identity=ABROAD), False, None, None, "no_rule_allows"),
    ("spid L1", other("spid", ACR_SPID_L1), False, None, None, "spid_level_too_low"),
    ("spid L2", other("spid", ACR_SPID_L2), True, "dispositivo", ACR_SPID_L2,
     "spid-level-2-or-3"),
    ("spid L3", other("spid", ACR_SPID_L3), True, "dispositivo", ACR_SPID_L3,
     "spid-level-2-or-3"),
    ("spid with a pin acr", other("spid", ACR_PIN), False, None, None, "no_rule_allows"),
    ("cie L3", other("cie", ACR_SPID_L3), True, "dispositivo", ACR_SPID_L3,
     "cie-level-2-or-more"),
    ("cie L2", other("cie", ACR_SPID_L2), True, "dispositivo", ACR_SPID_L2,
     "cie-level-2-or-more"),
    ("cie L1", other("cie", ACR_SPID_L1), False, None, None, "no_rule_allows"),
    ("cns", other("cns", ACR_CNS), True, "dispositivo", ACR_CNS, "cns-dispositivo"),
    ("unknown provider", other("fax", ACR_SPID_L3), False, None, None, "no_rule_allows"),
]


@pytest.mark.parametrize(("name", "inp", "allow", "privilege", "acr", "reason"),
                         SHIPPED_CASES, ids=[c[0] for c in SHIPPED_CASES])
def test_shipped_policies(shipped: PolicyEngine, name: str, inp: PolicyInput, allow: bool,
                          privilege: str | None, acr: str | None, reason: str) -> None:
    decision = shipped.decide(inp)
    assert decision.allow is allow
    assert decision.privilege == (Privilege(privilege) if privilege else None)
    assert decision.acr == acr
    assert decision.reason == reason
    if not allow:
        assert decision.message_it and decision.message_en
    # every rule is in the trace, fired or not, each with a reason
    assert [t.rule for t in decision.trace] == [r.id for r in shipped.rules]
    assert all(t.why for t in decision.trace)


def test_denied_resident_is_pointed_to_spid_cie_cns(shipped: PolicyEngine) -> None:
    d = shipped.decide(pin("dispositivo", ITALY, cf="RSSMRA80A01H501U"))
    assert d.message_it is not None and d.message_en is not None
    for word in ("SPID", "CIE", "CNS"):
        assert word in d.message_it
        assert word in d.message_en
    assert "1° ottobre 2021" in d.message_it


def test_spid_l1_message(shipped: PolicyEngine) -> None:
    message = shipped.decide(other("spid", ACR_SPID_L1)).message_it
    assert message is not None and "SPID di livello 2 è il minimo" in message


def test_trace_says_why_and_masks_the_fiscal_code(shipped: PolicyEngine) -> None:
    d = shipped.decide(pin("dispositivo", ITALY, cf="RSSMRA80A01H501U"))
    by_rule = {t.rule: t for t in d.trace}
    restriction = by_rule["pin-only-abroad-since-2021"]
    assert restriction.fired and restriction.effect == "deny"
    assert "identity.residence = 'abroad' ✗ (is 'italy')" in restriction.why
    assert restriction.source.endswith("pin.yaml:40")
    ordinario = by_rule["pin-ordinario"]
    assert not ordinario.fired
    assert "event.pin_privilege = 'ordinario' ✗ (is 'dispositivo')" in ordinario.why
    assert all("RSSMRA80A01H501U" not in t.why for t in d.trace)


@pytest.mark.parametrize(("provider", "required", "want"), [
    ("pin", None, True), ("pin", Privilege.DISPOSITIVO, True), ("pin", Privilege.ORDINARIO, True),
    ("spid", Privilege.DISPOSITIVO, True), ("cie", Privilege.DISPOSITIVO, True),
    ("cns", Privilege.DISPOSITIVO, True), ("fax", None, False),
])
def test_provider_can_satisfy_shipped(shipped: PolicyEngine, provider: str,
                                      required: Privilege | None, want: bool) -> None:
    assert shipped.provider_can_satisfy(provider, required) is want


# --- the language, on small rule sets ---------------------------------------------------

def engine(tmp_path: Path, rules: str) -> PolicyEngine:
    (tmp_path / "p.yaml").write_text("version: 1\nrules:\n" + rules)
    return PolicyEngine.load(tmp_path)


ALLOW_ORD = """\
  - id: ord
    description: ordinario for pin
    when: {provider: pin}
    allow: {privilege: ordinario}
"""
ALLOW_DISP = """\
  - id: disp
    description: dispositivo when the client is tagged benefits
    when: {provider: pin, client.tags: {contains: benefits}}
    allow: {privilege: dispositivo, acr: "https://www.spid.gov.it/SpidL2"}
"""
DENY_BLOCKED = """\
  - id: blocked
    description: a blocked person
    when: {facts.blocked: true}
    deny: {reason: blocked, message: {it: Bloccato, en: Blocked}}
"""


def inp(**kw: Any) -> PolicyInput:
    base: dict[str, Any] = {"provider": "pin", "now": AFTER, "fiscal_code": "RSSMRA80A01H501U",
                            "acr": ACR_PIN}
    base.update(kw)
    return make_input(**base)


def test_deny_by_default(tmp_path: Path) -> None:
    e = engine(tmp_path, ALLOW_ORD)
    d = e.decide(inp(provider="spid", acr=ACR_SPID_L2))
    assert not d.allow and d.reason == "no_rule_allows" and d.privilege is None
    assert d.message_it and d.message_en


def test_highest_privilege_wins_with_its_acr(tmp_path: Path) -> None:
    e = engine(tmp_path, ALLOW_ORD + ALLOW_DISP)
    plain = e.decide(inp())
    assert (plain.privilege, plain.acr, plain.reason) == (Privilege.ORDINARIO, ACR_PIN, "ord")
    tagged = e.decide(inp(client={"client_id": "rp", "tags": ["benefits"]}))
    assert (tagged.privilege, tagged.acr, tagged.reason) == \
        (Privilege.DISPOSITIVO, ACR_SPID_L2, "disp")


def test_deny_overrides_allow(tmp_path: Path) -> None:
    e = engine(tmp_path, ALLOW_ORD + ALLOW_DISP + DENY_BLOCKED)
    d = e.decide(inp(client={"client_id": "rp", "tags": ["benefits"]},
                     facts={"blocked": True}))
    assert not d.allow and d.reason == "blocked" and d.message_en == "Blocked"
    assert {t.rule for t in d.trace if t.fired} == {"ord", "disp", "blocked"}
    assert e.decide(inp(facts={"blocked": False})).allow
    assert e.decide(inp()).allow  # a missing fact never fires a rule


def test_first_deny_gives_the_message(tmp_path: Path) -> None:
    e = engine(tmp_path, ALLOW_ORD + DENY_BLOCKED + DENY_BLOCKED.replace(
        "id: blocked", "id: blocked-2").replace("reason: blocked", "reason: other"))
    assert e.decide(inp(facts={"blocked": True})).reason == "blocked"


COND_CASES: list[tuple[str, str, dict[str, Any], bool]] = [
    # (name, when, input overrides, fires)
    ("eq", "{provider: pin}", {}, True),
    ("eq other", "{provider: spid}", {}, False),
    ("in list shorthand", "{provider: [spid, pin]}", {}, True),
    ("not_in", "{provider: {not_in: [spid, cie]}}", {}, True),
    ("ne on missing attribute does not fire", "{event.x: {ne: a}}", {}, False),
    ("ne on present", "{event.x: {ne: a}}", {"attributes": {"x": "b"}}, True),
    ("exists false on missing", "{event.x: {exists: false}}", {}, True),
    ("exists true on present", "{event.x: {exists: true}}", {"attributes": {"x": 0}}, True),
    ("bool eq is strict (false is not 0)", "{event.x: false}", {"attributes": {"x": 0}}, False),
    ("bool eq", "{event.x: false}", {"attributes": {"x": False}}, True),
    ("level gte on pin (no level)", "{level: {gte: 1}}", {}, False),
    ("level in", "{level: [2, 3]}", {"acr": ACR_SPID_L3}, True),
    ("number lt", "{level: {lt: 2}}", {"acr": ACR_SPID_L1}, True),
    ("gt on text never fires", "{event.x: {gt: 1}}", {"attributes": {"x": "5"}}, False),
    ("now before", "{now: {before: 2030-01-01}}", {}, True),
    ("now after", "{now: {after: 2030-01-01}}", {}, False),
    ("now on_or_before same day", "{now: {on_or_before: 2023-03-01}}", {}, True),
    ("now with a timestamp", "{now: {after: 2023-03-01T12:59:59+01:00}}", {}, True),
    ("now equal timestamp is not after", "{now: {after: 2023-03-01T13:00:00+01:00}}", {}, False),
    ("naive timestamp is Rome time", "{now: {before: 2023-03-01T12:30:00}}", {}, False),
    ("date of birth", "{identity.date_of_birth: {before: 1990-01-01}}",
     {"identity": {"date_of_birth": date(1980, 1, 1)}}, True),
    ("date compare on text date", "{event.issued: {on_or_after: 2021-10-01}}",
     {"attributes": {"issued": "2021-10-01"}}, True),
    ("date compare on junk", "{event.issued: {on_or_after: 2021-10-01}}",
     {"attributes": {"issued": "soon"}}, False),
    ("client id", "{client.id: demo-rp}", {}, True),
    ("client tags contains", "{client.tags: {contains: isee}}",
     {"client": {"client_id": "x", "tags": ["isee"]}}, True),
    ("client required privilege", "{client.required_privilege: dispositivo}",
     {"client": {"client_id": "x", "required_privilege": "dispositivo"}}, True),
    ("identity extra", "{identity.extra.spidCode: ABC}",
     {"identity": {"extra": {"spidCode": "ABC"}}}, True),
    ("facts nested", "{facts.comune.convenzione.status: active}",
     {"facts": {"comune": {"convenzione": {"status": "active"}}}}, True),
    ("facts missing branch", "{facts.comune.convenzione.status: active}",
     {"facts": {"comune": {}}}, False),
    ("any", "{any: [{provider: spid}, {provider: pin}]}", {}, True),
    ("any none", "{any: [{provider: spid}, {provider: cie}]}", {}, False),
    ("all", "{all: [{provider: pin}, {client.id: demo-rp}]}", {}, True),
    ("not", "{not: {provider: spid}}", {}, True),
    ("not of missing is true", "{not: {event.x: a}}", {}, True),
    ("two operators on one field", "{now: {after: 2020-01-01, before: 2021-01-01}}", {}, False),
    ("no conditions", "{}", {}, True),
    ("amr contains", "{amr: {contains: pin}}", {}, True),
]


@pytest.mark.parametrize(("name", "when", "overrides", "fires"), COND_CASES,
                         ids=[c[0] for c in COND_CASES])
def test_conditions(tmp_path: Path, name: str, when: str, overrides: dict[str, Any],
                    fires: bool) -> None:
    e = engine(tmp_path, f"""\
  - id: r
    description: under test
    when: {when}
    allow: {{privilege: ordinario}}
""")
    d = e.decide(inp(**overrides))
    assert d.trace[0].fired is fires, d.trace[0].why
    assert d.allow is fires


def test_provider_can_satisfy_semantics(tmp_path: Path) -> None:
    e = engine(tmp_path, ALLOW_ORD + """\
  - id: spid-disp
    description: spid dispositivo unless level 1
    when: {any: [{provider: spid}, {provider: cie}], not: {level: 1}}
    allow: {privilege: dispositivo}
  - id: no-cns
    description: cns switched off entirely
    when: {provider: cns}
    deny: {reason: switched_off, message: {it: spento, en: switched off}}
  - id: cns-disp
    description: would allow cns, but the deny above always wins
    when: {provider: cns}
    allow: {privilege: dispositivo}
""")
    assert e.provider_can_satisfy("pin", None)
    assert e.provider_can_satisfy("pin", Privilege.ORDINARIO)
    assert not e.provider_can_satisfy("pin", Privilege.DISPOSITIVO)  # only ordinario allows
    assert e.provider_can_satisfy("spid", Privilege.DISPOSITIVO)
    assert e.provider_can_satisfy("cie", Privilege.DISPOSITIVO)
    assert not e.provider_can_satisfy("cns", None)  # an unconditional deny
    assert not e.provider_can_satisfy("fax", None)


def test_engine_is_pure(tmp_path: Path) -> None:
    """Deciding twice gives the same decision and does not change the input."""
    e = engine(tmp_path, ALLOW_ORD + DENY_BLOCKED)
    i = inp(facts={"blocked": False})
    assert e.decide(i) == e.decide(i)
    assert i.facts == {"blocked": False}


# --- what issue 5 builds on: quantifying over directory facts, comparing with fields ----

DELEGHE = [
    {"company": "01114601006", "form": "SC64", "valid_until": date(2023, 2, 28)},
    {"company": "12345678903", "form": "SC65", "valid_until": date(2023, 3, 1)},
]
SOME_CASES: list[tuple[str, str, list[Any] | None, bool]] = [
    ("an item matches", "{item.form: SC65}", DELEGHE, True),
    ("no item matches", "{item.form: SC62}", DELEGHE, False),
    ("valid until today counts (calendar day in Rome)",
     "{item.company: '12345678903', item.valid_until: {on_or_after: {ref: now}}}", DELEGHE, True),
    ("expired yesterday does not",
     "{item.company: '01114601006', item.valid_until: {on_or_after: {ref: now}}}", DELEGHE,
     False),
    ("ref to a missing field never matches",
     "{item.valid_until: {on_or_after: {ref: facts.nothing}}}", DELEGHE, False),
    ("empty list", "{item.form: SC64}", [], False),
    ("not a list", "{item.form: SC64}", None, False),
    ("outer fields still visible inside", "{item.form: SC64, provider: pin}", DELEGHE, True),
    ("list of plain values", "{item: SC64}", ["SC62", "SC64"], True),
]


@pytest.mark.parametrize(("name", "where", "items", "fires"), SOME_CASES,
                         ids=[c[0] for c in SOME_CASES])
def test_some_over_facts(tmp_path: Path, name: str, where: str, items: list[Any] | None,
                         fires: bool) -> None:
    e = engine(tmp_path, f"""\
  - id: r
    description: an intermediary with a matching delega
    when:
      some:
        of: facts.deleghe
        where: {where}
    allow: {{privilege: ordinario}}
""")
    facts = {} if items is None else {"deleghe": items}
    d = e.decide(inp(facts=facts))
    assert d.trace[0].fired is fires, d.trace[0].why
    assert "some of facts.deleghe" in d.trace[0].why


def test_ref_between_top_level_fields(tmp_path: Path) -> None:
    e = engine(tmp_path, """\
  - id: r
    description: the event happened today
    when: {auth_time: {on_or_after: {ref: now}}}
    allow: {privilege: ordinario}
""")
    assert e.decide(inp()).allow  # make_input sets auth_time = now


@pytest.mark.parametrize(("when", "fragment"), [
    ("{item.form: SC64}", "item.* is only known inside 'some"),
    ("{some: {of: facts.x}}", "'some' takes exactly 'of: <field>' and 'where:"),
    ("{some: {of: fatcs.x, where: {item: 1}}}", "rules[0].when.some.of: unknown field"),
    ("{some: {of: facts.x, where: {item.a: {in: 3}}}}", "'in' takes a non-empty list"),
    ("{now: {after: {ref: tomorrow}}}", "rules[0].when.now.after.ref: unknown field"),
    ("{now: {after: {reff: now}}}", "does not take a mapping"),
])
def test_some_and_ref_errors(tmp_path: Path, when: str, fragment: str) -> None:
    from broker.errors import PolicyError

    (tmp_path / "p.yaml").write_text(f"""\
version: 1
rules:
  - id: r
    description: broken
    when: {when}
    allow: {{privilege: ordinario}}
""")
    with pytest.raises(PolicyError) as info:
        PolicyEngine.load(tmp_path)
    assert any(p.startswith(f"{tmp_path / 'p.yaml'}:5: ") and fragment in p
               for p in info.value.problems), info.value.problems


def test_explain_renders_some(tmp_path: Path) -> None:
    from broker.policy.explain import format_evaluation

    e = engine(tmp_path, """\
  - id: r
    description: an intermediary with a valid SC65 delega
    when:
      some: {of: facts.deleghe, where: {item.form: SC65}}
    allow: {privilege: ordinario}
""")
    i = inp(facts={"deleghe": DELEGHE})
    text = format_evaluation(i, e.evaluate(i))
    assert "some of facts.deleghe ✓" in text
    assert "[0] ✗" in text and "[1] ✓" in text
    assert "item.form = 'SC65' ✓ (is 'SC65')" in text
