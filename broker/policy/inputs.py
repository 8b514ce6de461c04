"""What the policy engine decides on, and how tools build it from a few plain facts."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import Field

from broker.fiscal_code import normalize_person
from broker.model import (
    AuthEvent,
    ClientInfo,
    Frozen,
    Identity,
    Privilege,
    acr_level,
)

if TYPE_CHECKING:
    from providers.types import ProviderType


class PolicyInput(Frozen):
    """Everything a decision may depend on. ``facts`` will hold directory facts (issue 5)."""

    event: AuthEvent
    identity: Identity
    client: ClientInfo
    now: datetime
    facts: dict[str, Any] = Field(default_factory=dict)


def level_of(acr: str | None) -> int | None:
    """The profile's level 1-3 of an acr (SPID, CIE), None for others (PIN, CNS)."""
    return acr_level(acr)


def acr_for(provider: str, level: str | int | None) -> str:
    """The acr for a ``--level`` as an admin types it (1/2/3, L2, SpidL2, the URI), by the
    provider type's own declaration. Raises ``ValueError`` for anything else."""
    return _type(provider).acr_for(level)


def _names() -> set[str]:
    from providers.types import policy_provider_names

    return policy_provider_names()


def _type(provider: str) -> ProviderType:
    from providers.types import policy_provider_names, provider_types

    types = provider_types()
    kind = types.get(provider)
    if kind is None:
        owner = next((k for k in types.values() if provider in k.policy_names), None)
        if owner is None:
            raise ValueError(f"unknown provider {provider!r} (known: "
                             f"{', '.join(sorted(policy_provider_names()))})")
        kind = owner
    return kind


def make_input(*, provider: str, now: datetime, fiscal_code: str | None,
               acr: str | None = None,
               attributes: dict[str, Any] | None = None, identity: dict[str, Any] | None = None,
               client: dict[str, Any] | None = None, facts: dict[str, Any] | None = None,
               idp: str | None = None) -> PolicyInput:
    """A ``PolicyInput`` from plain values, as ``explain`` and the YAML policy tests give them.

    Raises ``InvalidFiscalCode``, pydantic's ``ValidationError`` or ``ValueError`` (an
    unknown provider without an acr) on bad values.
    """
    cf = normalize_person(fiscal_code) if fiscal_code is not None else None
    if acr:  # a provider no type declares may be tested too (deny by default), acr given
        kind = _type(provider) if provider in _names() else None
    else:
        kind = _type(provider)
        acr = kind.default_acr
    person = Identity(**{**(identity or {}), "fiscal_code": cf})
    event = AuthEvent(
        provider=provider, subject=person.subject, attributes=dict(attributes or {}),
        acr=acr, amr=kind.amr if kind is not None else (provider,), auth_time=now, idp=idp,
    )
    rp = dict(client or {})
    rp.setdefault("client_id", "demo-rp")
    rp.setdefault("name", rp["client_id"])
    if rp.get("required_privilege") is not None:
        rp["required_privilege"] = Privilege(rp["required_privilege"])
    if "tags" in rp:
        rp["tags"] = tuple(rp["tags"])
    return PolicyInput(event=event, identity=person, client=ClientInfo(**rp), now=now,
                       facts=dict(facts or {}))
