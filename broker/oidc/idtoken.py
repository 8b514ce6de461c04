"""ID tokens: signed with the client's algorithm and our current key; hints verified.

Signing and verification use pyjwt with the algorithm always pinned (never taken from
the token's own header), and times come from the injected clock.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import jwt

from broker.oidc.keys import KeyStore


def half_hash(value: str) -> str:
    """``at_hash``: left half of SHA-256 (ES256 and RS256 both hash with SHA-256)."""
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode("ascii")


def sign(keys: KeyStore, alg: str, claims: dict[str, Any]) -> str:
    key = keys.signing_key(alg)
    return jwt.encode(claims, key.private_key, algorithm=alg,
                      headers={"kid": key.kid, "typ": "JWT"})


class InvalidHint(Exception):
    """An id_token_hint we did not sign (tampered, foreign key, wrong issuer)."""


def verify_hint(keys: KeyStore, token: str, issuer: str) -> dict[str, Any]:
    """Verify an ``id_token_hint``: our signature and issuer, expiry ignored (OIDC RP-
    initiated logout allows expired hints). Raises ``InvalidHint``."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidHint("not a JWT") from exc
    alg = header.get("alg")
    key = keys.by_kid(str(header.get("kid", "")))
    if key is None or alg != key.alg:
        raise InvalidHint("unknown kid or alg")
    try:
        claims = jwt.decode(token, key.public_key, algorithms=[key.alg], issuer=issuer,
                            options={"verify_exp": False, "verify_aud": False,
                                     "verify_iat": False, "verify_nbf": False,
                                     "require": ["iss", "sub", "aud"]})
    except jwt.PyJWTError as exc:
        raise InvalidHint(type(exc).__name__) from exc
    return claims
