"""The broker's signing keys: generated on first start, parsed once, published as JWKS.

Keys live as PEM files (mode 0600) under ``<data_dir>/keys``, one file per key, named
``<alg>-<unix time of creation>.pem``. For each algorithm the newest file signs and
every older one stays published for verification, so a later ``varco keys rotate``
(issue 7) only has to drop a new file in and, when old tokens have expired, remove the
old one. The ``kid`` of each key is its RFC 7638 JWK thumbprint, so it is stable across
restarts and processes that share the folder.

Nothing here ever logs or reprs key material.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from broker.errors import ConfigError

SUPPORTED_ALGS = ("ES256", "RS256")
RSA_BITS = 3072
# The members RFC 7638 hashes, per key type.
_THUMBPRINT_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n")}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def thumbprint(public_jwk: dict[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint of a public JWK."""
    members = _THUMBPRINT_MEMBERS[public_jwk["kty"]]
    canonical = json.dumps({k: public_jwk[k] for k in members}, separators=(",", ":"),
                           sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


def public_jwk_of(alg: str, private_key: Any) -> dict[str, Any]:
    pub = private_key.public_key()
    jwk = (ECAlgorithm if alg == "ES256" else RSAAlgorithm).to_jwk(pub, as_dict=True)
    return {k: v for k, v in jwk.items() if k in ("kty", "crv", "x", "y", "n", "e")}


@dataclass(frozen=True)
class SigningKey:
    """One private key with its algorithm and ``kid``; repr never shows the key."""

    alg: str
    kid: str
    created: int
    private_key: Any = field(repr=False, compare=False)

    @property
    def public_key(self) -> Any:
        return self.private_key.public_key()

    def public_jwk(self) -> dict[str, Any]:
        return {**public_jwk_of(self.alg, self.private_key), "kid": self.kid,
                "alg": self.alg, "use": "sig"}

    @classmethod
    def from_private(cls, alg: str, private_key: Any, created: int) -> SigningKey:
        return cls(alg=alg, kid=thumbprint(public_jwk_of(alg, private_key)),
                   created=created, private_key=private_key)


def generate(alg: str) -> Any:
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    raise ValueError(f"unsupported alg {alg}")


class KeyStore:
    """Every key the broker holds, by algorithm (newest signs) and by ``kid``."""

    def __init__(self, keys: Iterable[SigningKey]):
        self._by_kid: dict[str, SigningKey] = {}
        self._by_alg: dict[str, list[SigningKey]] = {}
        for key in sorted(keys, key=lambda k: k.created, reverse=True):
            self._by_kid[key.kid] = key
            self._by_alg.setdefault(key.alg, []).append(key)

    def __repr__(self) -> str:
        return f"KeyStore(kids={sorted(self._by_kid)})"

    def signing_key(self, alg: str) -> SigningKey:
        """The current (newest) key for ``alg``."""
        try:
            return self._by_alg[alg][0]
        except (KeyError, IndexError):
            raise KeyError(f"no signing key for {alg}") from None

    def by_kid(self, kid: str) -> SigningKey | None:
        return self._by_kid.get(kid)

    def all(self) -> list[SigningKey]:
        return list(self._by_kid.values())

    def jwks(self) -> dict[str, Any]:
        """The public JWK Set: current and previous keys of every algorithm."""
        return {"keys": [k.public_jwk() for keys in self._by_alg.values() for k in keys]}

    @classmethod
    def load_or_create(cls, folder: Path, algs: Iterable[str] = SUPPORTED_ALGS,
                       *, now: float | None = None) -> KeyStore:
        """Load every ``<alg>-<time>.pem`` in ``folder``; create a key for a missing alg.

        Parsed here once; callers keep the returned store for the process lifetime.
        """
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        keys: list[SigningKey] = []
        problems: list[str] = []
        for path in sorted(folder.glob("*.pem")):
            alg, _, created = path.stem.partition("-")
            if alg not in SUPPORTED_ALGS or not created.isdigit():
                problems.append(f"{path}: expected a name like ES256-<unix time>.pem")
                continue
            try:
                private_key = serialization.load_pem_private_key(path.read_bytes(),
                                                                 password=None)
            except (ValueError, TypeError, OSError) as exc:
                problems.append(f"{path}: not a readable unencrypted private key "
                                f"({type(exc).__name__})")
                continue
            expected = ec.EllipticCurvePrivateKey if alg == "ES256" else rsa.RSAPrivateKey
            if not isinstance(private_key, expected):
                problems.append(f"{path}: key type does not match {alg}")
                continue
            keys.append(SigningKey.from_private(alg, private_key, int(created)))
        if problems:
            raise ConfigError(problems)
        have = {k.alg for k in keys}
        stamp = int(now if now is not None else time.time())
        for alg in algs:
            if alg not in have:
                private_key = generate(alg)
                _write_private(folder / f"{alg}-{stamp}.pem", private_key)
                keys.append(SigningKey.from_private(alg, private_key, stamp))
        return cls(keys)


def _write_private(path: Path, private_key: Any) -> None:
    pem = private_key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
