"""The directory's facts as frozen models, the catalogue of abilitazioni and its exclusive pairs.

These are the *facts* policies decide on (DOMAIN.md, "Roles and authorisations"); they are
not yet permissions. ``DirectoryFacts.as_policy_facts`` turns them into the plain lists
the condition language reads (``facts.deleghe``, ``facts.operatore``,
``facts.delegations``). Expired items are kept here on purpose: the policy ignores them,
so ``explain`` can show *why* an expired delega gave nothing.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal, get_args

from pydantic import Field, field_validator, model_validator

from broker.fiscal_code import normalize_company, normalize_person
from broker.model import Frozen

IntermediaryKind = Literal[
    "avvocato", "commercialista", "consulente_lavoro", "patronato",
    "associazione_categoria", "azienda_titolare", "dipendente_delegato"]
INTERMEDIARY_KINDS: tuple[str, ...] = get_args(IntermediaryKind)

# The forms a delega arrives on (DOMAIN.md 000/003): SC64 lawyers by PEC, SC65 companies
# and employers, SC62 employees delegated by a company; PEC census and conventions for the rest.
DelegaForm = Literal["SC64", "SC65", "SC62", "PEC", "CONVENZIONE"]

# The abilitazioni a municipal operator can hold: id -> (Italian, English) label.
SERVICES: dict[str, tuple[str, str]] = {
    "isee.consultazione": ("ISEE: solo consultazione attestazioni",
                           "ISEE: consult certificates only"),
    "isee.acquisizione": ("ISEE: acquisizione e consultazione",
                          "ISEE: file and consult"),
    "prestazioni_sociali.consultazione": ("Prestazioni sociali: consultazione domande",
                                          "Social benefits: consult applications"),
    "prestazioni_sociali.acquisizione": (
        "Prestazioni sociali: consultazione e acquisizione domande",
        "Social benefits: consult and file applications"),
    "variazioni_anagrafiche": ("Variazioni anagrafiche", "Registry changes"),
    "pensioni.casellario": ("Pensioni: Casellario pensionati", "Pensions: pensioners' register"),
    "cittadino.domus": ("Servizi al cittadino: DOMUS", "Citizen services: DOMUS"),
    "cittadino.cud": ("Servizi al cittadino: CUD", "Citizen services: CUD"),
    "cittadino.obism": ("Servizi al cittadino: ObisM", "Citizen services: ObisM"),
    "cittadino.estratto_conto": ("Servizi al cittadino: Estratto conto contributivo",
                                 "Citizen services: contribution statement"),
    "cittadino.estratto_pagamenti": (
        "Servizi al cittadino: Estratto dei pagamenti delle prestazioni",
        "Citizen services: benefit payments statement"),
    "servizi_personali": ("Servizi personali per il cittadino",
                          "The official's own citizen services"),
}

# Pairs that can never both hold for one operator in one comune.
EXCLUSIVE_PAIRS: tuple[tuple[str, str], ...] = (
    ("isee.consultazione", "isee.acquisizione"),
    ("prestazioni_sociali.consultazione", "prestazioni_sociali.acquisizione"),
)


def exclusive_conflicts(services: set[str] | frozenset[str] | tuple[str, ...]
                        ) -> list[tuple[str, str]]:
    """The exclusive pairs fully present in ``services`` ([] when none)."""
    have = set(services)
    return [pair for pair in EXCLUSIVE_PAIRS if set(pair) <= have]


def check_services(services: tuple[str, ...] | list[str] | set[str]) -> tuple[str, ...]:
    """Sorted, known, non-exclusive services; ``ValueError`` otherwise."""
    unknown = sorted(set(services) - set(SERVICES))
    if unknown:
        raise ValueError(f"unknown abilitazioni {unknown}; known: {sorted(SERVICES)}")
    clash = exclusive_conflicts(set(services))
    if clash:
        a, b = clash[0]
        raise ValueError(f"{a!r} and {b!r} exclude each other: an operator holds one or the "
                         "other, never both")
    return tuple(sorted(set(services)))


def _period(valid_from: date, valid_until: date | None) -> None:
    if valid_until is not None and valid_until < valid_from:
        raise ValueError("valid_until is before valid_from")


class Delega(Frozen):
    """A company's delega to an intermediary: the company, the dates, the form it came on."""

    company_cf: str
    company_name: str | None = None
    valid_from: date
    valid_until: date | None = None
    form: DelegaForm

    @field_validator("company_cf")
    @classmethod
    def _company(cls, value: str) -> str:
        return normalize_company(value)

    @model_validator(mode="after")
    def _dates(self) -> Delega:
        _period(self.valid_from, self.valid_until)
        return self


class Intermediary(Frozen):
    """A person acting for companies as one kind of intermediary, with their deleghe."""

    fiscal_code: str
    kind: IntermediaryKind
    deleghe: tuple[Delega, ...] = ()

    @field_validator("fiscal_code")
    @classmethod
    def _person(cls, value: str) -> str:
        return normalize_person(value)


class Convenzione(Frozen):
    """The agreement a comune signed with the institute: no convenzione, no abilitazione."""

    valid_from: date
    valid_until: date | None = None
    status: Literal["active", "suspended", "revoked"] = "active"

    @model_validator(mode="after")
    def _dates(self) -> Convenzione:
        _period(self.valid_from, self.valid_until)
        return self


class Comune(Frozen):
    """A comune by its cadastral (Belfiore) code, e.g. H501 Roma."""

    code: str = Field(pattern=r"^[A-Z][0-9]{3}$")
    name: str = Field(min_length=1, max_length=200)
    convenzione: Convenzione | None = None


class OperatorGrant(Frozen):
    """The abilitazioni one official holds for one comune, and the last change's who and why."""

    fiscal_code: str
    comune: str = Field(pattern=r"^[A-Z][0-9]{3}$")
    abilitazioni: tuple[str, ...]
    granted_at: datetime
    granted_by: str = Field(min_length=1)
    reason: str = Field(min_length=1)

    @field_validator("fiscal_code")
    @classmethod
    def _person(cls, value: str) -> str:
        return normalize_person(value)

    @field_validator("abilitazioni")
    @classmethod
    def _services(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_services(value)


class Delegation(Frozen):
    """A delegation of digital identity (circular 127/2021): the delegate acts for the delegator."""

    delegator_cf: str
    delegate_cf: str
    valid_from: date
    valid_until: date | None = None
    scope: str = Field("all", min_length=1, max_length=200)
    circular: str = "127/2021"

    @field_validator("delegator_cf", "delegate_cf")
    @classmethod
    def _person(cls, value: str) -> str:
        return normalize_person(value)

    @model_validator(mode="after")
    def _coherent(self) -> Delegation:
        _period(self.valid_from, self.valid_until)
        if self.delegator_cf == self.delegate_cf:
            raise ValueError("a person cannot delegate themselves")
        return self


class DirectoryFacts(Frozen):
    """Everything the directory knows about one person, for the policy engine."""

    fiscal_code: str
    intermediary: tuple[Intermediary, ...] = ()
    operator: tuple[tuple[OperatorGrant, Comune | None], ...] = ()
    delegations: tuple[Delegation, ...] = ()  # where this person is the delegate

    @property
    def empty(self) -> bool:
        return not (self.intermediary or self.operator or self.delegations)

    def as_policy_facts(self) -> dict[str, Any]:
        """The plain lists the condition language quantifies over with ``some``."""
        deleghe = [
            {"intermediary_kind": i.kind, "company_cf": d.company_cf,
             "company_name": d.company_name, "form": d.form, "valid_from": d.valid_from,
             "valid_until": d.valid_until}
            for i in self.intermediary for d in i.deleghe]
        operatore = []
        for grant, comune in self.operator:
            conv = comune.convenzione if comune else None
            operatore.append({
                "comune": grant.comune, "comune_name": comune.name if comune else None,
                "abilitazioni": list(grant.abilitazioni), "granted_at": grant.granted_at,
                "convenzione": None if conv is None else {
                    "status": conv.status, "valid_from": conv.valid_from,
                    "valid_until": conv.valid_until}})
        delegations = [
            {"delegator_cf": d.delegator_cf, "valid_from": d.valid_from,
             "valid_until": d.valid_until, "scope": d.scope, "circular": d.circular}
            for d in self.delegations]
        return {"deleghe": deleghe, "operatore": operatore, "delegations": delegations}
