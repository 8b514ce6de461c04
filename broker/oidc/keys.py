"""The broker's signing keys: generated on first start, parsed once, published as JWKS.

Keys live as PEM files (mode 0600) under ``<data_dir>/keys``, one file per key, named
``<alg>-<unix time from which it signs>.pem``. The ``kid`` of each key is its RFC 7638
JWK thumbprint, so it is stable across restarts and processes that share the folder.

Rollover (``varco keys rotate``, ``broker.cli.keys``) drops in a file whose time is in
the future (now + a publication delay longer than the JWKS cache lifetime): until then
the key is *pending*, published but not signing, so every RP has it before it sees a
token it signed. For each algorithm the newest key whose time has come is *active* and
signs. An older key is *previous* (published, still verifies) until every token it
could have signed has expired, ``retire_after`` seconds after a newer key took over;
then it is *retired*: gone from JWKS and refused for verification. Every broker process
re-reads the folder when it changes (``reload_if_changed``, polled off the hot path),
so all of them sign with the same key at the same time.

Nothing here ever logs or reprs key material.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from broker.errors import ConfigError

log = logging.getLogger("varco.keys")
SUPPORTED_ALGS = ("ES256", "RS256")
JWKS_MAX_AGE = 300  # Cache-Control max-age of /jwks, seconds
ROTATION_DELAY = 2 * JWKS_MAX_AGE  # a new key is published this long before it signs
KEY_RELOAD_INTERVAL = 2.0  # seconds between checks of the key folder
# Without the broker's token settings (tests, tools): keep superseded keys a day.
DEFAULT_RETIRE_AFTER = 24 * 3600
RSA_BITS = 3072
# The key types of SUPPORTED_ALGS (ES256: P-256, RS256: RSA).
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey
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


def public_jwk_of(private_key: PrivateKey) -> dict[str, Any]:
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        jwk = ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    else:
        jwk = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    return {k: v for k, v in jwk.items() if k in ("kty", "crv", "x", "y", "n", "e")}


@dataclass(frozen=True)
class SigningKey:
    """One private key with its algorithm and ``kid``; repr never shows the key."""

    alg: str
    kid: str
    created: int
    private_key: PrivateKey = field(repr=False, compare=False)

    @property
    def public_key(self) -> PublicKey:
        return self.private_key.public_key()

    def public_jwk(self) -> dict[str, Any]:
        return {**public_jwk_of(self.private_key), "kid": self.kid,
                "alg": self.alg, "use": "sig"}

    @classmethod
    def from_private(cls, alg: str, private_key: PrivateKey, created: int) -> SigningKey:
        return cls(alg=alg, kid=thumbprint(public_jwk_of(private_key)),
                   created=created, private_key=private_key)


def generate(alg: str) -> PrivateKey:
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    raise ValueError(f"unsupported alg {alg}")


class KeyState(StrEnum):
    PENDING = "pending"  # published, not signing yet
    ACTIVE = "active"  # signs
    PREVIOUS = "previous"  # published, verifies tokens it signed before
    RETIRED = "retired"  # every token it signed has expired: unpublished


@dataclass(frozen=True)
class KeyStatus:
    key: SigningKey
    state: KeyState
    retires_at: int | None  # for previous and retired keys


def key_states(keys: Iterable[SigningKey], now: float, retire_after: int) -> list[KeyStatus]:
    """Where each key stands at ``now`` (see the module docstring), oldest first per alg."""
    out: list[KeyStatus] = []
    by_alg: dict[str, list[SigningKey]] = {}
    for key in sorted(keys, key=lambda k: (k.alg, k.created)):
        by_alg.setdefault(key.alg, []).append(key)
    for group in by_alg.values():
        started = [k for k in group if k.created <= now]
        active = started[-1] if started else None
        for i, key in enumerate(group):
            if key.created > now:
                out.append(KeyStatus(key, KeyState.PENDING, None))
            elif key is active:
                out.append(KeyStatus(key, KeyState.ACTIVE, None))
            else:
                retires = group[i + 1].created + retire_after
                state = KeyState.PREVIOUS if now < retires else KeyState.RETIRED
                out.append(KeyStatus(key, state, retires))
    return out


def folder_signature(folder: Path) -> tuple[tuple[str, int, int], ...]:
    out = []
    for path in sorted(folder.glob("*.pem")):
        try:
            st = path.stat()
        except OSError:
            continue
        out.append((path.name, st.st_mtime_ns, st.st_size))
    return tuple(out)


class KeyStore:
    """Every key the broker holds; which one signs and which are published depends on now.

    ``clock`` returns the current unix time (the broker's injected clock). The key list
    is swapped as one attribute on reload, so readers never see half a folder.
    """

    def __init__(self, keys: Iterable[SigningKey], *, clock: Callable[[], float] = time.time,
                 retire_after: int = DEFAULT_RETIRE_AFTER, folder: Path | None = None):
        self._keys: tuple[SigningKey, ...] = tuple(keys)
        self._clock = clock
        self.retire_after = retire_after
        self.folder = folder
        self._signature = folder_signature(folder) if folder else ()
        self._reload_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"KeyStore(kids={sorted(k.kid for k in self._keys)})"

    def states(self) -> list[KeyStatus]:
        return key_states(self._keys, self._clock(), self.retire_after)

    def _published(self) -> list[SigningKey]:
        return [s.key for s in self.states() if s.state is not KeyState.RETIRED]

    def signing_key(self, alg: str) -> SigningKey:
        """The active key for ``alg``: the newest whose time has come."""
        now = self._clock()
        best: SigningKey | None = None
        for key in self._keys:
            if key.alg == alg and key.created <= now and (best is None
                                                          or key.created > best.created):
                best = key
        if best is None:
            raise KeyError(f"no signing key for {alg}")
        return best

    def by_kid(self, kid: str) -> SigningKey | None:
        """A published key (pending, active or previous); retired keys verify nothing."""
        return next((k for k in self._published() if k.kid == kid), None)

    def all(self) -> list[SigningKey]:
        return list(self._keys)

    def jwks(self) -> dict[str, Any]:
        """The public JWK Set: pending, active and previous keys of every algorithm."""
        return {"keys": [k.public_jwk() for k in
                         sorted(self._published(), key=lambda k: (k.alg, -k.created))]}

    def reload_if_changed(self) -> bool:
        """Re-read the folder if a file was added, removed or changed; True if reloaded.

        A folder that does not load (a broken file) leaves the current keys in force
        and is logged; the next change is tried again.
        """
        if self.folder is None:
            return False
        with self._reload_lock:
            signature = folder_signature(self.folder)
            if signature == self._signature:
                return False
            self._signature = signature
            try:
                keys = read_folder(self.folder)
            except ConfigError as exc:
                log.error("key folder reload refused, current keys stay: %s",
                          "; ".join(exc.problems))
                return False
            self._keys = tuple(keys)
            log.info("key folder reloaded: %d keys", len(keys))
            return True

    @classmethod
    def load_or_create(cls, folder: Path, algs: Iterable[str] = SUPPORTED_ALGS,
                       *, now: float | None = None, clock: Callable[[], float] | None = None,
                       retire_after: int = DEFAULT_RETIRE_AFTER) -> KeyStore:
        """Load every ``<alg>-<time>.pem`` in ``folder``; create a key for a missing alg.

        Parsed here once; ``reload_if_changed`` picks up later changes. ``now`` (unix
        time) stamps created keys and, without a ``clock``, is the store's fixed time.
        """
        if clock is None:
            fixed = now
            clock = (lambda: fixed) if fixed is not None else time.time
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        keys = read_folder(folder)
        have = {k.alg for k in keys}
        stamp = int(now if now is not None else clock())
        for alg in algs:
            if alg not in have:
                private_key = generate(alg)
                try:
                    _write_private(folder / f"{alg}-{stamp}.pem", private_key)
                except FileExistsError:  # another process, same second: use its key
                    return cls.load_or_create(folder, algs, now=now, clock=clock,
                                              retire_after=retire_after)
                keys.append(SigningKey.from_private(alg, private_key, stamp))
        return cls(keys, clock=clock, retire_after=retire_after, folder=folder)


def read_folder(folder: Path) -> list[SigningKey]:
    """Parse every key file; ``ConfigError`` naming each file that is not a usable key."""
    keys: list[SigningKey] = []
    problems: list[str] = []
    for path in sorted(folder.glob("*.pem")):
        alg, _, created = path.stem.partition("-")
        if alg not in SUPPORTED_ALGS or not created.isdigit():
            problems.append(f"{path}: expected a name like ES256-<unix time>.pem")
            continue
        try:
            private_key = serialization.load_pem_private_key(path.read_bytes(), password=None)
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
    return keys


def add_key(folder: Path, alg: str, not_before: int) -> SigningKey:
    """Generate a key that signs from ``not_before`` on; written atomically (tmp + rename)
    so a process reloading the folder never reads half a file."""
    private_key = generate(alg)
    final = folder / f"{alg}-{int(not_before)}.pem"
    if final.exists():
        raise FileExistsError(f"{final} exists")
    tmp = folder / f".{final.name}.{os.getpid()}.tmp"
    _write_private(tmp, private_key)
    try:
        os.link(tmp, final)  # never replaces an existing key
    finally:
        tmp.unlink()
    return SigningKey.from_private(alg, private_key, int(not_before))


def _write_private(path: Path, private_key: PrivateKey) -> None:
    pem = private_key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
