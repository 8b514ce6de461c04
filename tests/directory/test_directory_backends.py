"""The same behaviour from the embedded directory and from a real slapd."""

from __future__ import annotations

from datetime import date

import pytest

from tests.directory.conftest import ODD_COMPANY, ODD_NAME

LAURA, GIUSEPPE, MARIO = "BNCLRA85M41Z404W", "VRDGPP70C15Z110R", "RSSMRA80A01H501U"


def test_intermediary_deleghe_with_dates_and_forms(directory):
    facts = directory.facts(LAURA)
    kinds = {i.kind: i for i in facts.intermediary}
    assert set(kinds) == {"commercialista", "azienda_titolare"}
    companies = {d.company_cf: d for d in kinds["commercialista"].deleghe}
    assert set(companies) == {"00743110157", "01234567897"}
    assert companies["00743110157"].valid_until == date(2035, 12, 31)
    assert companies["01234567897"].valid_until is None  # open ended
    old = kinds["azienda_titolare"].deleghe[0]
    assert (old.form, old.valid_until) == ("SC65", date(2020, 12, 31))  # kept: policy filters


def test_operator_grants_with_their_comune_and_convenzione(directory):
    facts = directory.facts(LAURA)
    [(grant, comune)] = facts.operator
    assert grant.comune == "H501"
    assert grant.abilitazioni == ("isee.acquisizione", "variazioni_anagrafiche")
    assert comune.name == "Roma" and comune.convenzione.status == "active"
    assert comune.convenzione.valid_until == date(2035, 12, 31)
    policy = facts.as_policy_facts()
    assert policy["operatore"][0]["convenzione"]["valid_from"] == date(2020, 1, 1)


def test_delegations_and_the_expired_convenzione(directory):
    facts = directory.facts(GIUSEPPE)
    [delegation] = facts.delegations
    assert (delegation.delegator_cf, delegation.circular) == (MARIO, "127/2021")
    [(_grant, comune)] = facts.operator
    assert comune.code == "F205" and comune.convenzione.valid_until == date(2022, 12, 31)
    assert directory.facts(MARIO).delegations == ()  # Mario is the delegator, not a delegate


def test_unknown_person_has_no_facts_and_lowercase_cf_is_the_same_person(directory):
    assert directory.facts("NRENNA90H52Z600M").empty
    assert directory.facts(LAURA.lower()) == directory.facts(LAURA)


def test_operators_of_a_comune(directory):
    assert [g.fiscal_code for g in directory.operators("H501")] == [LAURA]
    assert directory.operators("A001") == []


def test_filter_metacharacters_in_names_round_trip(directory):
    assert directory.comune("Z998").name == ODD_NAME
    [delega] = next(i for i in directory.facts(MARIO).intermediary
                    if i.kind == "avvocato").deleghe
    assert delega.company_name == ODD_COMPANY


@pytest.mark.parametrize("probe", ["*", "H5*", "*)(objectClass=*", "H501)(cn=*",
                                   "\\2a", "H501\\", "(", ")"])
def test_filter_injection_finds_nothing(directory, probe):
    assert directory.comune(probe) is None
    assert directory.operators(probe) == []
