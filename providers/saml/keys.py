"""SP key pairs and X.509 helpers shared by the SAML profiles.

A ``KeyPair`` is read once at start and kept in memory as PEM text, the form xmlsec
wants; certificate checks (expiry, key size, digest) use ``cryptography``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa


@dataclass(frozen=True)
class KeyPair:
    """A private key and its certificate, PEM encoded."""

    key_pem: str
    cert_pem: str
    # Certificate rollover: more certificates published in the metadata (the next one
    # before the switch, the previous one after it); only ``key_pem`` ever signs.
    rollover_certs_pem: tuple[str, ...] = ()

    @classmethod
    def load(cls, key_path: Path, cert_path: Path) -> KeyPair:
        return cls(key_path.read_text(encoding="ascii"), cert_path.read_text(encoding="ascii"))

    @property
    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem.encode())

    @property
    def cert_b64(self) -> str:
        """The certificate as the base64 DER text that goes into ``ds:X509Certificate``."""
        return cert_b64(self.cert)

    @property
    def published_b64(self) -> tuple[str, ...]:
        """Every certificate the metadata lists for signing: the current one first."""
        extra = (cert_b64(x509.load_pem_x509_certificate(p.encode()))
                 for p in self.rollover_certs_pem)
        return (self.cert_b64, *dict.fromkeys(c for c in extra if c != self.cert_b64))


def cert_b64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def cert_from_b64(text: str) -> x509.Certificate:
    """Parse the base64 DER of a ``ds:X509Certificate`` element (whitespace allowed)."""
    der = base64.b64decode("".join(text.split()))
    return x509.load_der_x509_certificate(der)


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def cert_problems(cert: x509.Certificate, now: datetime) -> list[str]:
    """Why a signing certificate must not be trusted at ``now`` (empty list: usable)."""
    problems = []
    if now < cert.not_valid_before_utc:
        problems.append("certificate not yet valid")
    if now >= cert.not_valid_after_utc:
        problems.append(f"certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}")
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        problems.append("certificate key is not RSA")
    elif key.key_size < 2048:
        problems.append(f"RSA key of {key.key_size} bits (2048 at least)")
    return problems


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()
