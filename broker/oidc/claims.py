"""What an RP learns about the citizen: ``sub``, scope-to-claims table, the claims parameter.

Scopes and the claims they release (in the ID token and at userinfo alike)::

    scope           claims
    openid          sub, acr, amr, auth_time, privilege   (always, they describe the login)
    profile         given_name, family_name, birthdate
    email           email
    fiscal_number   fiscal_number   (the 16-character codice fiscale, upper case), and
                    <scheme>_person_identifier for a person known by another scheme
                    (``eidas_person_identifier``: ``DE/IT/...``); a person without a
                    codice fiscale gets no ``fiscal_number``
    abilitazioni    abilitazioni    (list of {kind, scope, services}: what the person may
                                     do for others, e.g. a municipal operator's ISEE rights)
    offline_access  no claim: allows a refresh token

``abilitazioni`` describes the *role the session acts in* (``broker.login.roles``): ``[]`` for
oneself, or the one chosen abilitazione (an intermediary for a company, an operator of a
comune with services). When a delegate of digital identity acts (circular 127/2021),
``sub`` and ``fiscal_number`` are the **delegator's**, names and email are left out (they
would be the delegate's), and ``act`` (RFC 8693 section 4.1) names the actor:
``{"sub": <pairwise id of the delegate for this RP>, "fiscal_number": <delegate's CF,
only with the fiscal_number scope>}``. ``act`` is always released when present: an RP
must never mistake a delegate for the person.

``privilege`` (``ordinario``/``dispositivo``) rides with ``openid`` because, like ``acr``,
it says what the login is worth, not who the person is; an RP needs it to decide.
The ID token additionally carries iss, aud, exp, iat, nonce, at_hash and ``sid``.

The ``claims`` request parameter (OIDC Core 5.5) can ask for single claims in
``id_token`` or ``userinfo``, but only claims whose scope the client is registered for:
the parameter never widens a client's registration.

``sub`` is pairwise by default: ``b64url(HMAC-SHA256(secret_key, "pairwise|" + sector +
"|" + subject))`` where the subject is the codice fiscale, or ``<scheme>:<identifier>``
for a person without one (``broker.model.Identity.subject``), and the sector is the
client's ``sector_identifier`` or its ``client_id``, so two RPs cannot join their users
by ``sub``. A ``public`` client gets one broker-wide HMAC of the subject: stable across
RPs, still never the raw CF.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from pydantic import Field

from broker.login.interaction import filing_pending
from broker.model import (
    RANK_HIGH,
    RANK_SUBSTANTIAL,
    BrokerSession,
    Frozen,
    Privilege,
    acr_rank,
)
from broker.oidc.keys import b64url

SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "openid": ("sub", "acr", "amr", "auth_time", "privilege"),
    "profile": ("given_name", "family_name", "birthdate"),
    "email": ("email",),
    "fiscal_number": ("fiscal_number",),
    "abilitazioni": ("abilitazioni",),
}
CLAIM_SCOPE: dict[str, str] = {c: s for s, cs in SCOPE_CLAIMS.items() for c in cs}
SUPPORTED_CLAIMS: tuple[str, ...] = (
    *(c for cs in SCOPE_CLAIMS.values() for c in cs), "iss", "aud", "exp", "iat", "nonce",
    "at_hash", "sid", "act", "application_filing")



class UserSnapshot(Frozen):
    """The session's strongest login as it was when the code was issued.

    Tokens describe this snapshot, not the live session, so a later step-up in the same
    browser does not change what an already issued token says.
    """

    fiscal_code: str | None = None
    # The person's key when it is not the codice fiscale (``Identity.subject``).
    subject_key: str | None = None
    identifiers: dict[str, str] = Field(default_factory=dict)
    given_name: str | None = None
    family_name: str | None = None
    birthdate: str | None = None
    email: str | None = None
    privilege: Privilege | None = None
    abilitazioni: tuple[dict[str, Any], ...] = ()
    acr: str
    amr: tuple[str, ...]
    auth_time: int
    provider: str
    # Set when a delegate acts: the delegate's codice fiscale and actor key (broker.login.roles).
    actor_fiscal_code: str | None = None
    actor_key: str | None = None
    # An application filed with an ordinario PIN, held until the conversion
    # (broker.login.interaction).
    application_filing: dict[str, str] | None = None

    @classmethod
    def of(cls, session: BrokerSession, *, accept_filing: bool = False) -> UserSnapshot:
        rec = session.current
        role = session.role
        # Only a role the current login still holds counts (a step-up re-decides).
        abil = role.abilitazione if role is not None else None
        if abil is not None and abil not in rec.decision.abilitazioni:
            abil = None
        person = rec.identity
        fiscal_code = person.fiscal_code
        key = person.subject
        identifiers = person.identifiers
        names: dict[str, str | None] = {
            "given_name": person.given_name, "family_name": person.family_name,
            "email": person.email,
            "birthdate": person.date_of_birth.isoformat() if person.date_of_birth else None}
        actor: dict[str, str | None] = {}
        released = abil.model_dump(mode="json") if abil is not None else None
        if abil is not None and released is not None and abil.kind == "delegate" \
                and abil.scope.get("delegator"):
            fiscal_code = key = abil.scope["delegator"]  # the delegator's; names are ours
            names = dict.fromkeys(names)
            identifiers = {}
            actor = {"actor_fiscal_code": person.fiscal_code,
                     "actor_key": role.actor_key if role else None}
            released = {**released, "scope": {k: v for k, v in abil.scope.items()
                                              if k != "delegator"}}
        return cls.model_validate({
            "fiscal_code": fiscal_code, "subject_key": None if key == fiscal_code else key,
            "identifiers": identifiers, **names, **actor,
            "privilege": rec.decision.privilege,
            "abilitazioni": (released,) if released is not None else (),
            "acr": rec.decision.acr or rec.event.acr,
            "amr": rec.event.amr,
            "auth_time": int(rec.event.auth_time.timestamp()),
            "provider": rec.event.provider,
            "application_filing": _filing(session, accept_filing),
        })


def user_key(user: UserSnapshot) -> str:
    """Whom a token is about, as ``sub`` is computed from it."""
    key = user.subject_key or user.fiscal_code
    if key is None:
        raise ValueError("a snapshot with no subject")
    return key


def _filing(session: BrokerSession, accept: bool) -> dict[str, str] | None:
    """``application_filing`` for an RP that accepts filing with an ordinario PIN."""
    conversion = filing_pending(session) if accept else None
    if conversion is None or session.current.decision.privilege is Privilege.DISPOSITIVO:
        return None
    return {"status": "held_until_conversion", "conversion_id": conversion}


def subject(secret_key: bytes, fiscal_code: str, *, subject_type: str, sector: str) -> str:
    """The ``sub`` for one client: pairwise per sector, or one broker-wide value."""
    label = f"pairwise|{sector}|{fiscal_code}" if subject_type == "pairwise" else (
        f"public|{fiscal_code}")
    return b64url(hmac.new(secret_key, label.encode(), hashlib.sha256).digest())


def released_claims(user: UserSnapshot, sub: str, scopes: tuple[str, ...],
                    requested: dict[str, Any] | None,
                    allowed_scopes: tuple[str, ...]) -> dict[str, Any]:
    """The claims this token may carry: by scope, plus single claims asked by name.

    ``requested`` is the ``id_token`` or ``userinfo`` member of the claims parameter.
    """
    names: set[str] = {c for s in scopes for c in SCOPE_CLAIMS.get(s, ())}
    for name in requested or {}:
        if CLAIM_SCOPE.get(name) in allowed_scopes:
            names.add(name)
    values: dict[str, Any] = {
        "sub": sub,
        "acr": user.acr,
        "amr": list(user.amr),
        "auth_time": user.auth_time,
        "privilege": user.privilege.value if user.privilege else None,
        "given_name": user.given_name,
        "family_name": user.family_name,
        "birthdate": user.birthdate,
        "email": user.email,
        "fiscal_number": user.fiscal_code,
        "abilitazioni": list(user.abilitazioni),
    }
    out = {n: values[n] for n in sorted(names) if n in values and values[n] is not None}
    if "fiscal_number" in names:  # the identifiers of other schemes ride with the CF's scope
        for scheme, value in sorted(user.identifiers.items()):
            out[f"{scheme}_person_identifier"] = value
    if user.actor_fiscal_code is not None:
        out["act"] = actor_claim(user, sub, "fiscal_number" in names)
    if user.application_filing is not None:  # only for clients that accept filing
        out["application_filing"] = dict(user.application_filing)
    return out


def actor_claim(user: UserSnapshot, sub: str, with_fiscal_number: bool) -> dict[str, Any]:
    """RFC 8693 ``act`` for a delegate: a pairwise actor id (per RP, as ``sub`` is)."""
    key = (user.actor_key or "").encode()
    act: dict[str, Any] = {
        "sub": b64url(hmac.new(key, b"act|" + sub.encode(), hashlib.sha256).digest())}
    if with_fiscal_number and user.actor_fiscal_code:
        act["fiscal_number"] = user.actor_fiscal_code
    return act


def requirement(acr_values: tuple[str, ...], claims: dict[str, Any] | None,
                registered: Privilege | None) -> tuple[Privilege | None, str | None]:
    """The privilege and acr an authorization request demands: ``(privilege, acr)``.

    - ``acr_values``, and an *essential* ``acr`` claim with ``value``/``values``, list
      alternatives (OIDC Core 3.1.2.1, 5.5.1.1), so the request is met by the
      lowest-ranked *known* value among them; unknown values are ignored. Varco honours
      them as requirements, not wishes: the RP never gets less than it asked for.
    - What that acr means here (DOMAIN.md, the assurance table), by the rank its
      provider type declares (``broker.model.AcrLevel``):
      low (``urn:varco:acr:pin``, ``SpidL1``): any login, no requirement;
      substantial (``SpidL2``): the ``dispositivo`` privilege, which a dispositivo PIN
      also gives (PIN holders abroad have no SPID, and the institute treats both alike);
      high (``SpidL3``, CIE, ``urn:varco:acr:cns``): ``dispositivo`` *and* that high
      assurance, returned as the required acr (a PIN or SPID L2 login does not meet it).
    - A ``privilege`` claim request whose only acceptable value is ``dispositivo``
      requires ``dispositivo`` (essential or not: it is the RP's stated need).
    - The client's registration (``required_privilege``) is a floor for every request.
    """
    wanted: list[str] = [v for v in acr_values if acr_rank(v) > 0]
    privilege_values: list[str] = []
    for member in ("id_token", "userinfo"):
        section = (claims or {}).get(member) or {}
        acr = section.get("acr")
        if isinstance(acr, dict) and acr.get("essential"):
            wanted += [v for v in _values(acr) if acr_rank(v) > 0]
        prv = section.get("privilege")
        if isinstance(prv, dict):
            privilege_values += _values(prv)
    lowest = min(wanted, key=acr_rank) if wanted else None
    privilege = registered
    if acr_rank(lowest) >= RANK_SUBSTANTIAL or (
            privilege_values and set(privilege_values) == {Privilege.DISPOSITIVO.value}):
        privilege = Privilege.DISPOSITIVO
    required_acr = lowest if acr_rank(lowest) >= RANK_HIGH else None
    return privilege, required_acr


def _values(spec: dict[str, Any]) -> list[str]:
    if isinstance(spec.get("value"), str):
        return [spec["value"]]
    values = spec.get("values")
    return [v for v in values if isinstance(v, str)] if isinstance(values, list) else []
