"""The shape of a policy file (version 1), validated with pydantic; unknown keys are errors.

::

    version: 1
    description: what this file is about
    rules:
      - id: spid-l2
        description: SPID level 2 or 3 gives dispositivo
        when: {provider: spid, level: [2, 3]}
        allow: {privilege: dispositivo}          # acr defaults to the event's
      - id: spid-l1
        description: SPID level 1 is not enough
        when: {provider: spid, level: 1}
        deny:
          reason: spid_level_too_low
          message: {it: "...", en: "..."}

A rule has exactly one effect: ``allow``, ``deny``, ``grant`` (abilitazioni from directory
facts) or ``refuse`` (takes abilitazioni away: refusals override grants)::

      - id: operator-abilitazioni
        description: an operator of a comune with a valid convenzione
        grant:
          kind: municipal_operator
          for_each: facts.operatore              # one abilitazione per matching item
          where: {item.convenzione.status: active}
          scope: {comune: {ref: item.comune}}    # text, or {ref: field}
          services: {ref: item.abilitazioni}     # a list of service ids, or {ref: field}
          requires_privilege: dispositivo        # the credential strength it needs

A file may also carry ``requirements``: what a relying party needs of a login beyond
its registration (privilege, an abilitazione of some kind and services).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from broker.directory.model import SERVICES
from broker.model import Privilege, known_acrs

SUPPORTED_VERSIONS = (1,)

RULE_ID = r"^[a-z0-9][a-z0-9_.-]*$"
REASON = r"^[a-z0-9_]+$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Message(_Strict):
    """What a denied citizen reads: Italian first, English too."""

    it: str = Field(min_length=1)
    en: str = Field(min_length=1)


class Allow(_Strict):
    privilege: Privilege
    acr: str | None = None

    @field_validator("acr")
    @classmethod
    def _known_acr(cls, value: str | None) -> str | None:
        if value is not None and value not in known_acrs():
            raise ValueError(f"unknown acr (known: {', '.join(known_acrs())})")
        return value


class Deny(_Strict):
    reason: str = Field(pattern=REASON, description="stable code for logs and RPs")
    message: Message


AbilitazioneKind = Literal["intermediary", "municipal_operator", "delegate"]
ABILITAZIONE_KINDS: tuple[str, ...] = get_args(AbilitazioneKind)


def _known_services(value: list[str]) -> list[str]:
    unknown = sorted(set(value) - set(SERVICES))
    if unknown:
        raise ValueError(f"unknown services {unknown} (known: {', '.join(SERVICES)})")
    return value


class Refuse(_Strict):
    """Take abilitazioni of ``kind`` away (for the matching items' scope, or all of them)."""

    kind: AbilitazioneKind
    for_each: str | None = Field(None, description="a list field, e.g. facts.operatore")
    where: dict[str, Any] | None = None
    scope: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _where_needs_list(self) -> Refuse:
        if self.where is not None and self.for_each is None:
            raise ValueError("'where' tests item.* and needs 'for_each'")
        return self


class Grant(Refuse):
    """Give abilitazioni of ``kind``: one per matching item of ``for_each`` (or one)."""

    services: list[str] | dict[str, Any] = Field(default_factory=list)
    requires_privilege: Privilege | None = None

    @field_validator("services")
    @classmethod
    def _services(cls, value: list[str] | dict[str, Any]) -> list[str] | dict[str, Any]:
        if isinstance(value, dict):
            if set(value) != {"ref"} or not isinstance(value["ref"], str):
                raise ValueError("services: a list of service ids or {ref: <field>}")
            return value
        return _known_services(value)


EFFECTS = ("allow", "deny", "grant", "refuse")


class Rule(_Strict):
    id: str = Field(pattern=RULE_ID)
    description: str = Field(min_length=1)
    when: dict[str, Any] | None = None
    allow: Allow | None = None
    deny: Deny | None = None
    grant: Grant | None = None
    refuse: Refuse | None = None

    @model_validator(mode="after")
    def _one_effect(self) -> Rule:
        if sum(getattr(self, e) is not None for e in EFFECTS) != 1:
            raise ValueError("a rule needs exactly one effect: 'allow', 'deny', 'grant' or "
                             "'refuse'")
        return self

    @property
    def effect(self) -> str:
        return next(e for e in EFFECTS if getattr(self, e) is not None)


class NeedAbilitazione(_Strict):
    kind: AbilitazioneKind
    services_any: list[str] = Field(default_factory=list,
                                    description="at least one of these services")

    @field_validator("services_any")
    @classmethod
    def _services(cls, value: list[str]) -> list[str]:
        return _known_services(value)


class Requirement(_Strict):
    """What relying party ``client`` needs of every login, with the citizen's message."""

    client: str = Field(min_length=1)
    description: str = Field(min_length=1)
    privilege: Privilege | None = None
    abilitazione: NeedAbilitazione | None = None
    reason: str = Field("rp_requirement_not_met", pattern=REASON)
    message: Message


class PolicyFile(_Strict):
    """The top level; each rule is validated on its own so one broken rule hides no other."""

    version: int
    description: str | None = None
    rules: list[dict[str, Any]]
    requirements: list[dict[str, Any]] = Field(default_factory=list)
