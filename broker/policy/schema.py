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

A rule has exactly one effect. Issue 5 adds a third one (``grant`` of abilitazioni)
beside ``allow`` and ``deny``; the ``when`` language stays the same.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from broker.model import ACR_RANK, Privilege

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
        if value is not None and value not in ACR_RANK:
            raise ValueError(f"unknown acr (known: {', '.join(ACR_RANK)})")
        return value


class Deny(_Strict):
    reason: str = Field(pattern=REASON, description="stable code for logs and RPs")
    message: Message


class Rule(_Strict):
    id: str = Field(pattern=RULE_ID)
    description: str = Field(min_length=1)
    when: dict[str, Any] | None = None
    allow: Allow | None = None
    deny: Deny | None = None

    @model_validator(mode="after")
    def _one_effect(self) -> Rule:
        if (self.allow is None) == (self.deny is None):
            raise ValueError("a rule needs exactly one effect: 'allow' or 'deny'")
        return self

    @property
    def effect(self) -> str:
        return "allow" if self.allow is not None else "deny"


class PolicyFile(_Strict):
    """The top level; each rule is validated on its own so one broken rule hides no other."""

    version: int
    description: str | None = None
    rules: list[dict[str, Any]]
