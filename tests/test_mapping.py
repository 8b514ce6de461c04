"""Mapping files: each shipped provider mapping, and broken mapping files an admin might write."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from broker.errors import InvalidFiscalCode, PolicyError, ProviderError
from broker.mapping import MappingSet
from broker.model import AuthEvent
from broker.paths import project_dir

NOW = datetime(2024, 5, 10, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def shipped() -> MappingSet:
    return MappingSet.load(project_dir("mappings"))


def event(provider: str, **attributes: Any) -> AuthEvent:
    return AuthEvent(provider=provider, subject="s", attributes=attributes, acr="x",
                     amr=(provider,), auth_time=NOW)


def test_shipped_mappings_cover_every_provider(shipped: MappingSet) -> None:
    assert shipped.providers == ("cie", "cns", "eidas", "pin", "spid")


def test_pin_mapping(shipped: MappingSet) -> None:
    identity = shipped.map(event(
        "pin", fiscal_code="bnclra85m41z404w", given_name="Laura", family_name="Bianchi",
        email=" Laura.Bianchi@Example.org ", mobile_phone="+15550100001", residence="abroad",
        italian_document=False, pin_privilege="dispositivo", pin_kind="standard"))
    assert identity.fiscal_code == "BNCLRA85M41Z404W"
    assert (identity.given_name, identity.family_name) == ("Laura", "Bianchi")
    assert identity.email == "laura.bianchi@example.org"
    assert identity.residence == "abroad"
    assert identity.italian_document is False
    assert identity.extra == {"pin_privilege": "dispositivo", "pin_kind": "standard"}


def test_pin_mapping_resident_in_italy(shipped: MappingSet) -> None:
    identity = shipped.map(event("pin", fiscal_code="RSSMRA80A01H501U", residence="italy",
                                 italian_document=True, pin_privilege="ordinario"))
    assert identity.residence == "italy"
    assert identity.italian_document is True


def test_pin_unknown_residence_refused(shipped: MappingSet) -> None:
    with pytest.raises(ProviderError) as info:
        shipped.map(event("pin", fiscal_code="RSSMRA80A01H501U", residence="mars"))
    assert "residence" in info.value.detail


SPID_ATTRS = {
    "fiscalNumber": "TINIT-RSSMRA80A01H501U", "name": "Mario", "familyName": "Rossi",
    "email": "mario.rossi@example.it", "dateOfBirth": "1980-01-01", "placeOfBirth": "H501",
    "address": "Via Roma 1 00100 Roma RM", "mobilePhone": "+393330000003",
    "spidCode": "SPID-0001", "domicileNation": "not mapped",
}


def test_spid_mapping(shipped: MappingSet) -> None:
    identity = shipped.map(event("spid", **SPID_ATTRS))
    assert identity.fiscal_code == "RSSMRA80A01H501U"
    assert identity.given_name == "Mario"
    assert identity.family_name == "Rossi"
    assert identity.date_of_birth == date(1980, 1, 1)
    assert identity.place_of_birth == "H501"
    assert identity.address == "Via Roma 1 00100 Roma RM"
    assert identity.mobile_phone == "+393330000003"
    assert identity.extra == {"spidCode": "SPID-0001"}  # only what the file lists


def test_spid_multivalued_attributes_and_italian_dates(shipped: MappingSet) -> None:
    """pysaml2 gives every attribute as a list; dates may come as dd/mm/yyyy."""
    identity = shipped.map(event("spid", fiscalNumber=["TINIT-RSSMRA80A01H501U"],
                                 name=["Mario"], dateOfBirth=["01/01/1980"]))
    assert identity.given_name == "Mario"
    assert identity.date_of_birth == date(1980, 1, 1)


@pytest.mark.parametrize(("attrs", "error", "fragment"), [
    ({}, ProviderError, "fiscal_code (from fiscalNumber): missing"),
    ({"fiscalNumber": ""}, ProviderError, "missing"),
    ({"fiscalNumber": "TINIT-RSSMRA80A01H501X"}, InvalidFiscalCode, "wrong check character"),
    ({"fiscalNumber": "TINIT-RSSMRA80A01H501U", "dateOfBirth": "yesterday"},
     ProviderError, "transform date"),
])
def test_spid_bad_attributes(shipped: MappingSet, attrs: dict[str, Any],
                             error: type[Exception], fragment: str) -> None:
    with pytest.raises(error) as info:
        shipped.map(event("spid", **attrs))
    assert fragment in info.value.detail  # type: ignore[attr-defined]
    assert "RSSMRA80A01H501" not in info.value.detail  # type: ignore[attr-defined]
    assert "gestore dell'identità" in info.value.message.it  # type: ignore[attr-defined]


def test_cie_mapping(shipped: MappingSet) -> None:
    identity = shipped.map(event("cie", fiscalNumber="TINIT-VRDGPP70C15Z110R",
                                 name="Giuseppe", familyName="Verdi", dateOfBirth="1970-03-15"))
    assert identity.fiscal_code == "VRDGPP70C15Z110R"
    assert identity.date_of_birth == date(1970, 3, 15)
    # a CIE without the TINIT- prefix works too
    assert shipped.map(event("cie", fiscalNumber="VRDGPP70C15Z110R")).fiscal_code == \
        "VRDGPP70C15Z110R"


def test_cns_mapping(shipped: MappingSet) -> None:
    identity = shipped.map(event("cns", fiscal_code="IT:RSSMRA80A01H501U",
                                 given_name="MARIO", family_name="ROSSI"))
    assert identity.fiscal_code == "RSSMRA80A01H501U"
    assert identity.given_name == "MARIO"
    assert shipped.map(event("cns", fiscal_code="RSSMRA80A01H501U")).fiscal_code == \
        "RSSMRA80A01H501U"


def test_unknown_provider(shipped: MappingSet) -> None:
    with pytest.raises(PolicyError):
        shipped.map(event("fax", fiscal_code="RSSMRA80A01H501U"))


# --- broken mapping files ---------------------------------------------------------------

def write(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path


def problems_of(directory: Path) -> list[str]:
    with pytest.raises(PolicyError) as info:
        MappingSet.load(directory)
    return info.value.problems


@pytest.mark.parametrize(("text", "want"), [
    ("version: 1\nfields:\n  fiscal_code: cf\n  nickname: nick\n",
     "x.yaml:4: fields.nickname: not an identity field"),
    ("version: 1\nfields:\n  fiscal_code: {from: cf, transfrom: [upper]}\n",
     "x.yaml:3: fields.fiscal_code.transfrom: unknown key"),
    ("version: 1\nfields:\n  fiscal_code: {from: cf, transform: [upper, rot13]}\n",
     "x.yaml:3: fields.fiscal_code.transform[1]: unknown transform 'rot13'"),
    ("version: 1\nfields:\n  fiscal_code:\n    from: cf\n    transform:\n      - strip_prefix\n",
     "x.yaml:6: fields.fiscal_code.transform[0]: transform 'strip_prefix' needs an argument"),
    ("version: 1\nfields:\n  fiscal_code: {from: cf, transform: [{strip_prefix: 3}]}\n",
     "fields.fiscal_code.transform[0].strip_prefix: argument must be a non-empty text"),
    ("version: 1\nfields:\n  given_name: name\n",
     "x.yaml:2: fields: fiscal_code must be mapped"),
    ("version: 2\nfields:\n  fiscal_code: cf\n", "x.yaml:1: version: unsupported version 2"),
    ("version: 1\nfields:\n  fiscal_code: {from: cf, const: X}\n",
     "x.yaml:3: fields.fiscal_code: Value error, give exactly one of"),
    ("version: 1\nfields:\n  fiscal_code: cf\n  fiscal_code: cf2\n",
     "x.yaml:4: duplicate key 'fiscal_code'"),
    ("version: 1\nfields: [\n", "x.yaml:3: while parsing a flow node"),
    ("version: 1\nfeilds: {}\n", "x.yaml:2: feilds: unknown key"),
    ("- just a list\n", "x.yaml:1: (top): expected a mapping"),
])
def test_broken_mapping_file(tmp_path: Path, text: str, want: str) -> None:
    problems = problems_of(write(tmp_path, "x.yaml", text))
    assert any(want in p for p in problems), problems


def test_every_problem_reported_at_once(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "version: 1\nfields:\n  fiscal_code: cf\n  nick: n\n")
    write(tmp_path, "b.yaml", "version: 1\nfields:\n  fiscal_code: {from: cf, transform: [x]}\n")
    problems = problems_of(tmp_path)
    assert len(problems) == 2
    assert problems[0].startswith(f"{tmp_path / 'a.yaml'}:4:")
    assert problems[1].startswith(f"{tmp_path / 'b.yaml'}:3:")


def test_empty_or_missing_folder(tmp_path: Path) -> None:
    assert "no mapping files" in problems_of(tmp_path)[0]
    assert "not found" in problems_of(tmp_path / "nope")[0]


def test_const_and_first_non_empty_and_map(tmp_path: Path) -> None:
    write(tmp_path, "demo.yaml", """\
version: 1
fields:
  fiscal_code: {from: [cf_new, cf_old], transform: [fiscal_code]}
  residence: {const: abroad}
  italian_document: {from: doc, transform: [boolean]}
  given_name: {from: [nome, name], transform: [strip, upper]}
extra:
  kind: {from: kind, transform: [{map: {A: alpha, B: beta}}]}
""")
    mappings = MappingSet.load(tmp_path)
    identity = mappings.map(event("demo", cf_new="", cf_old="rssmra80a01h501u", doc="sì",
                                  name=" mario ", kind="b"))
    assert identity.fiscal_code == "RSSMRA80A01H501U"
    assert identity.residence == "abroad"
    assert identity.italian_document is True
    assert identity.given_name == "MARIO"
    assert identity.extra == {"kind": "beta"}
    with pytest.raises(ProviderError) as info:
        mappings.map(event("demo", cf_old="RSSMRA80A01H501U", doc="maybe"))
    assert "transform boolean" in info.value.detail


def _one(tmp_path: Path, text: str) -> MappingSet:
    (tmp_path / "foreign.yaml").write_text(text)
    return MappingSet.load(tmp_path)


FOREIGN = """version: 1
fields:
  fiscal_code: {from: fiscalNumber, transform: [{strip_prefix: "TINIT-"}, fiscal_code]}
  given_name: name
identifiers:
  eidas: spidCode
"""


def test_a_person_known_by_another_scheme_needs_no_codice_fiscale(tmp_path: Path) -> None:
    mapping = _one(tmp_path, FOREIGN)
    foreign = mapping.map(event("foreign", spidCode="DE/IT/0123456789", name="Anke"))
    assert foreign.fiscal_code is None and foreign.identifiers == {"eidas": "DE/IT/0123456789"}
    assert foreign.subject == "eidas:DE/IT/0123456789"
    both = mapping.map(event("foreign", spidCode="DE/IT/1", fiscalNumber="TINIT-RSSMRA80A01H501U"))
    assert both.subject == "RSSMRA80A01H501U"  # the codice fiscale wins when there is one


def test_a_login_with_no_identifier_at_all_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProviderError) as info:
        _one(tmp_path, FOREIGN).map(event("foreign", name="Anke"))
    assert "neither a codice fiscale nor another identifier" in info.value.detail


def test_a_mapping_must_give_a_codice_fiscale_or_an_identifier(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        _one(tmp_path, "version: 1\nfields:\n  given_name: name\n")
    assert "fiscal_code must be mapped" in str(info.value)
    with pytest.raises(PolicyError) as info:
        _one(tmp_path, "version: 1\nfields: {}\nidentifiers:\n  Bad-Scheme: spidCode\n")
    assert "a scheme is a lower-case word" in str(info.value)


def test_eidas_mapping_keeps_the_person_identifier_and_a_linked_codice_fiscale(
        shipped: MappingSet) -> None:
    foreign = shipped.map(event("eidas", spidCode="DE/IT/8472519036", name="Anke",
                                familyName="Schmidt", dateOfBirth="1979-06-21",
                                linked=False))
    assert (foreign.fiscal_code, foreign.identifiers) == (None, {"eidas": "DE/IT/8472519036"})
    assert foreign.date_of_birth == date(1979, 6, 21) and foreign.extra == {"linked": False}
    linked = shipped.map(event("eidas", spidCode="FR/IT/18508914200123", name="Laura",
                               linked=True, linked_fiscal_code="BNCLRA85M41Z404W"))
    assert linked.fiscal_code == "BNCLRA85M41Z404W" and linked.extra == {"linked": True}
    with pytest.raises(ProviderError):  # no person identifier at all
        shipped.map(event("eidas", name="Anke"))
