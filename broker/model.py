"""The value objects that travel between the stages of a login.

OIDC front -> ``AuthRequest`` -> provider -> ``AuthEvent`` -> mapping -> ``Identity``
-> policy -> ``Decision`` -> session -> tokens. Each is a frozen pydantic model so it
can be stored (sessions, pending logins) and compared, and nothing downstream reads
magic keys out of dicts.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Privilege(StrEnum):
    """What a person may do for themselves: read (ordinario) or request benefits (dispositivo)."""

    ORDINARIO = "ordinario"
    DISPOSITIVO = "dispositivo"

    @property
    def rank(self) -> int:
        return 1 if self is Privilege.ORDINARIO else 2

    def satisfies(self, required: Privilege | None) -> bool:
        return required is None or self.rank >= required.rank


# Authentication context class references (acr). The core knows no provider's values:
# each provider type declares its own (``providers.types.ProviderType.acr_levels``), ranked
# on the eIDAS scale of assurance, and they are registered here when the types load.
RANK_LOW = 1  # a login of low assurance (the PIN, SPID level 1)
RANK_SUBSTANTIAL = 2  # substantial (SPID level 2): what ``dispositivo`` needs
RANK_HIGH = 3  # high (CIE, CNS, SPID level 3)


class AcrLevel(Frozen):
    """One acr value a provider type asserts, ranked for step-up and the claims request.

    ``level`` is the number a profile calls it by (SPID ``SpidL2`` is 2), which policies
    test as ``level``; ``aliases`` are the short names admins may type (``L2``, ``2``).
    """

    uri: str
    rank: int = Field(ge=RANK_LOW, le=RANK_HIGH)
    level: int | None = None
    aliases: tuple[str, ...] = ()


ACR_LEVELS: dict[str, AcrLevel] = {}  # every registered acr value, by URI


def register_acr_levels(levels: tuple[AcrLevel, ...] | list[AcrLevel]) -> None:
    """Add a provider type's acr values; the same URI declared twice must agree."""
    for level in levels:
        known = ACR_LEVELS.get(level.uri)
        if known is not None and (known.rank, known.level) != (level.rank, level.level):
            raise ValueError(f"acr {level.uri} declared with two ranks or levels")
        if known is None or len(level.aliases) > len(known.aliases):
            ACR_LEVELS[level.uri] = level


def _levels() -> dict[str, AcrLevel]:
    if not ACR_LEVELS:  # the provider types declare them: load the types once
        from providers.types import provider_types

        provider_types()
    return ACR_LEVELS


def acr_rank(acr: str | None) -> int:
    """Rank of an acr value; unknown values rank 0 so they never satisfy anything."""
    found = _levels().get(acr or "")
    return found.rank if found is not None else 0


def acr_level(acr: str | None) -> int | None:
    """The profile's level number of an acr (SPID/CIE 1-3), None when it has none."""
    found = _levels().get(acr or "")
    return found.level if found is not None else None


def known_acrs() -> list[str]:
    """Every registered acr value, lowest rank first (discovery, policy validation)."""
    return sorted(_levels(), key=lambda uri: (ACR_LEVELS[uri].rank, uri))


class AuthRequest(Frozen):
    """What the RP asked for, as far as the login page and providers need to know.

    Built by the OIDC front after it has validated the request; the providers never
    see OIDC parameters beyond these.
    """

    tx_id: str
    client_id: str
    client_name: str
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None = None
    nonce: str | None = None
    response_mode: str | None = None
    prompt: tuple[str, ...] = ()
    max_age: int | None = None
    acr_values: tuple[str, ...] = ()
    claims: dict[str, Any] | None = None
    login_hint: str | None = None
    ui_locales: tuple[str, ...] = ()
    idp_hint: str | None = None
    code_challenge: str
    code_challenge_method: Literal["S256"] = "S256"
    # What the request, the claims parameter and the client registration require together.
    required_privilege: Privilege | None = None
    required_acr: str | None = None
    # The client accepts an application *filed* with an ordinario PIN awaiting conversion.
    accept_filed_with_ordinario: bool = False
    # What the client's registration asks of a login method, by provider (its own keys).
    provider_options: dict[str, dict[str, str]] = Field(default_factory=dict)
    created_at: datetime
    # Raw request parameters as received, so the authorization can be resumed exactly.
    params: dict[str, str] = Field(default_factory=dict)


class SingleUse(Frozen):
    """A value that may serve one login only (a SAML assertion ID, an answered request).

    A provider hands these to the hub with the event; the hub marks them spent in the
    same commit as the login, so a replay is refused and a crash before the commit
    leaves the value usable for the retry.
    """

    ns: str
    key: str
    ttl: int


class AuthEvent(Frozen):
    """One successful authentication at one provider, as the provider saw it.

    ``attributes`` are raw (names as the provider sends them); the mapping file turns
    them into an ``Identity``.
    """

    provider: str
    subject: str
    attributes: dict[str, Any] = Field(default_factory=dict)
    acr: str
    amr: tuple[str, ...]
    auth_time: datetime
    idp: str | None = None
    # Opaque provider data needed later (e.g. SAML NameID and SessionIndex for logout).
    provider_state: dict[str, str] = Field(default_factory=dict)
    # Spent by the hub when the login commits; not kept in the session.
    single_use: tuple[SingleUse, ...] = Field(default=(), exclude=True)


class Identity(Frozen):
    """The person, normalised: what the mapping file produces from an AuthEvent.

    A person has a codice fiscale, or an identifier of another scheme (``identifiers``:
    an eIDAS person identifier ``DE/IT/...``), or both once the back office has linked
    them. ``subject`` is the one key the broker keeps them by (sessions, ``sub``).
    """

    fiscal_code: str | None = None
    identifiers: dict[str, str] = Field(default_factory=dict)
    given_name: str | None = None
    family_name: str | None = None
    email: str | None = None
    mobile_phone: str | None = None
    pec: str | None = None
    date_of_birth: date | None = None
    place_of_birth: str | None = None
    address: str | None = None
    residence: Literal["italy", "abroad"] | None = None
    italian_document: bool | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _someone(self) -> Identity:
        if not self.fiscal_code and not self.identifiers:
            raise ValueError("neither a codice fiscale nor another identifier")
        return self

    @property
    def subject(self) -> str:
        """The codice fiscale when there is one, else ``<scheme>:<identifier>`` (a codice
        fiscale never holds a colon, so the two never meet)."""
        if self.fiscal_code:
            return self.fiscal_code
        for scheme, value in sorted(self.identifiers.items()):
            return f"{scheme}:{value}"
        raise ValueError("an identity with no identifier")


class Abilitazione(Frozen):
    """An authorisation to act for someone else or on a service.

    ``kind`` is one of intermediary, municipal_operator, delegate; ``scope`` names the
    comune, the represented company or the delegator.
    """

    kind: str
    scope: dict[str, str] = Field(default_factory=dict)
    services: tuple[str, ...] = ()


class ActingRole(Frozen):
    """The role a session acts in, chosen after login (``broker.login.roles``).

    ``self``: the person for themselves; otherwise one of the login's abilitazioni. For a
    delegate, ``actor_key`` (derived from the broker's secret) makes the RFC 8693
    ``act.sub`` pairwise per relying party without storing the secret in the session.
    """

    kind: Literal["self", "intermediary", "municipal_operator", "delegate"] = "self"
    abilitazione: Abilitazione | None = None
    actor_key: str | None = None


class RuleTrace(Frozen):
    """One rule as the engine evaluated it: the audit log and ``explain`` print these."""

    rule: str
    source: str
    fired: bool
    effect: str
    why: str = ""


class Decision(Frozen):
    """What policy made of one authentication."""

    allow: bool
    reason: str | None = None
    message_it: str | None = None
    message_en: str | None = None
    privilege: Privilege | None = None
    abilitazioni: tuple[Abilitazione, ...] = ()
    acr: str | None = None
    trace: tuple[RuleTrace, ...] = ()
    # Set when the decision says the citizen must do something before the login
    # completes, such as replacing the initial 16-character PIN.
    action: str | None = None


class ClientInfo(Frozen):
    """What policy may know about the RP that asked (no secrets)."""

    client_id: str
    name: str
    required_privilege: Privilege | None = None
    tags: tuple[str, ...] = ()
    requires_fiscal_code: bool = False


class LoginRecord(Frozen):
    """One authentication held by a session: the event, the identity and the decision."""

    event: AuthEvent
    identity: Identity
    decision: Decision


class BrokerSession(Frozen):
    """A browser's single sign-on session. Step-up appends a record; the newest strongest wins."""

    sid: str
    created_at: datetime
    expires_at: datetime
    logins: tuple[LoginRecord, ...]
    clients: tuple[str, ...] = ()
    role: ActingRole | None = None  # None: acting for oneself

    @property
    def current(self) -> LoginRecord:
        """The strongest login held (highest privilege, then acr rank, then newest)."""

        def key(item: tuple[int, LoginRecord]) -> tuple[int, int, int]:
            i, rec = item
            prv = rec.decision.privilege.rank if rec.decision.privilege else 0
            return (prv, acr_rank(rec.decision.acr or rec.event.acr), i)

        return max(enumerate(self.logins), key=key)[1]

    @property
    def fiscal_code(self) -> str | None:
        return self.current.identity.fiscal_code

    @property
    def subject(self) -> str:
        """The person this session is about (``Identity.subject``)."""
        return self.current.identity.subject
