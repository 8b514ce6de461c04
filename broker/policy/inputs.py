"""What the policy engine decides on, and how tools build it from a few plain facts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from broker.fiscal_code import normalize_person
from broker.model import (
    ACR_CNS,
    ACR_PIN,
    ACR_RANK,
    ACR_SPID_L1,
    ACR_SPID_L2,
    ACR_SPID_L3,
    AuthEvent,
    ClientInfo,
    Frozen,
    Identity,
    Privilege,
)

LEVELS = {ACR_SPID_L1: 1, ACR_SPID_L2: 2, ACR_SPID_L3: 3}
LEVEL_ACR = {v: k for k, v in LEVELS.items()}
# What ``explain`` and policy tests assume when no level or acr is given.
DEFAULT_ACR = {"pin": ACR_PIN, "spid": ACR_SPID_L2, "cie": ACR_SPID_L3, "cns": ACR_CNS}
_AMR = {"cns": ("sc",)}


class PolicyInput(Frozen):
    """Everything a decision may depend on. ``facts`` will hold directory facts (issue 5)."""

    event: AuthEvent
    identity: Identity
    client: ClientInfo
    now: datetime
    facts: dict[str, Any] = Field(default_factory=dict)


def level_of(acr: str | None) -> int | None:
    """SPID/CIE level 1-3 of an acr, None for other acr values (PIN, CNS)."""
    return LEVELS.get(acr or "")


def acr_for(provider: str, level: str | int | None) -> str:
    """The acr for a ``--level`` given as 1/2/3, L2, SpidL2 or a full acr URI.

    Raises ``ValueError`` for anything else.
    """
    if level is None or level == "":
        return DEFAULT_ACR.get(provider, ACR_SPID_L2)
    text = str(level).strip()
    if text in ACR_RANK:
        return text
    digits = text.lower().removeprefix("spid").removeprefix("l")
    if digits.isdigit() and int(digits) in LEVEL_ACR:
        return LEVEL_ACR[int(digits)]
    raise ValueError(f"unknown level {text!r}: use 1, 2, 3 or one of {', '.join(ACR_RANK)}")


def make_input(*, provider: str, now: datetime, fiscal_code: str, acr: str | None = None,
               attributes: dict[str, Any] | None = None, identity: dict[str, Any] | None = None,
               client: dict[str, Any] | None = None, facts: dict[str, Any] | None = None,
               idp: str | None = None) -> PolicyInput:
    """A ``PolicyInput`` from plain values, as ``explain`` and the YAML policy tests give them.

    Raises ``InvalidFiscalCode`` or pydantic's ``ValidationError`` on bad values.
    """
    cf = normalize_person(fiscal_code)
    event = AuthEvent(
        provider=provider, subject=cf, attributes=dict(attributes or {}),
        acr=acr or DEFAULT_ACR.get(provider, ACR_SPID_L2),
        amr=_AMR.get(provider, (provider,)), auth_time=now, idp=idp,
    )
    person = Identity(**{**(identity or {}), "fiscal_code": cf})
    rp = dict(client or {})
    rp.setdefault("client_id", "demo-rp")
    rp.setdefault("name", rp["client_id"])
    if rp.get("required_privilege") is not None:
        rp["required_privilege"] = Privilege(rp["required_privilege"])
    if "tags" in rp:
        rp["tags"] = tuple(rp["tags"])
    return PolicyInput(event=event, identity=person, client=ClientInfo(**rp), now=now,
                       facts=dict(facts or {}))
