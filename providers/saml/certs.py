"""SP key and certificate per the AgID certificate rules (Avviso SPID n.29 v3), which CIE reuses.

Self-signed RSA (3072 bits by default, 2048 minimum), SHA-256, subject with
commonName, organizationName, organizationIdentifier (``PA:IT-<IPA>`` public,
``VATIT-<n>`` or ``CF:IT-<cf>`` private), uri (the entityID), countryName ``IT``,
localityName; keyUsage digitalSignature + nonRepudiation (critical), basicConstraints
CA false, certificatePolicies agIDroot/agIDcert plus the public or private SP policy.
SPID and CIE service providers call ``ensure_keys`` at start, which creates the pair
in the data folder when none exists (mode 0600 for the key).
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID, ObjectIdentifier

from broker.errors import ConfigError
from providers.saml.keys import KeyPair

OID_URI = ObjectIdentifier("2.5.4.83")
OID_ORG_ID = ObjectIdentifier("2.5.4.97")
POLICY_ROOT = "1.3.76.16"
POLICY_CERT = "1.3.76.16.6"
POLICY_SP = {"public": "1.3.76.16.4.2.1", "private": "1.3.76.16.4.3.1"}
_ORG_ID = {"public": r"PA:IT-\S{1,11}", "private": r"(CF:IT-[A-Z0-9]{16}|VATIT-\d{11})"}


def make_certificate(*, entity_id: str, profile: str, org_id: str, org_name: str,
                     common_name: str, locality: str, now: datetime, days: int = 730,
                     key_size: int = 3072) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A fresh key and a self-signed SPID SP certificate."""
    if profile not in POLICY_SP:
        raise ValueError("profile must be public or private")
    if not re.fullmatch(_ORG_ID[profile], org_id):
        raise ValueError(f"organizationIdentifier {org_id!r} does not fit the {profile} profile")
    if key_size < 2048:
        raise ValueError("RSA keys of 2048 bits at least")
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org_name),
        x509.NameAttribute(OID_ORG_ID, org_id),
        x509.NameAttribute(OID_URI, entity_id),
        x509.NameAttribute(NameOID.COUNTRY_NAME, "IT"),
        x509.NameAttribute(NameOID.LOCALITY_NAME, locality),
    ])
    policies = x509.CertificatePolicies([
        x509.PolicyInformation(ObjectIdentifier(POLICY_ROOT), [x509.UserNotice(None, "AgIDroot")]),
        x509.PolicyInformation(ObjectIdentifier(POLICY_CERT), [x509.UserNotice(None, "agIDcert")]),
        x509.PolicyInformation(ObjectIdentifier(POLICY_SP[profile]), [
            x509.UserNotice(None, "cert_SP_Pub" if profile == "public" else "cert_SP_Priv")]),
    ])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=False)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=True, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False,
            crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(policies, critical=False)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def write_pair(key: rsa.RSAPrivateKey, cert: x509.Certificate, key_out: Path,
               cert_out: Path) -> None:
    """Write the key (0600, never overwriting) and the certificate."""
    key_out.parent.mkdir(parents=True, exist_ok=True)
    cert_out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM,
                                   serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    cert_out.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def ensure_keys(*, key_path: Path, cert_path: Path, entity_id: str, profile: str, org_id: str,
                org_name: str, common_name: str, locality: str, now: datetime,
                key_size: int = 3072) -> KeyPair:
    """Load the SP pair, generating it first when neither file exists."""
    if not key_path.exists() and not cert_path.exists():
        key, cert = make_certificate(entity_id=entity_id, profile=profile, org_id=org_id,
                                     org_name=org_name, common_name=common_name,
                                     locality=locality, now=now, key_size=key_size)
        write_pair(key, cert, key_path, cert_path)
    return KeyPair.load(key_path, cert_path)


def load_rollover_certs(paths: list[Path], now: datetime) -> tuple[str, ...]:
    """The rollover certificates as PEM, refusing unreadable or expired ones at start."""
    problems: list[str] = []
    pems: list[str] = []
    for path in paths:
        try:
            pem = path.read_text(encoding="ascii")
            cert = x509.load_pem_x509_certificate(pem.encode())
        except (OSError, ValueError) as exc:
            problems.append(f"rollover_cert_paths: {path}: not a readable PEM certificate "
                            f"({type(exc).__name__})")
            continue
        if cert.not_valid_after_utc <= now:
            problems.append(f"rollover_cert_paths: {path}: expired")
            continue
        pems.append(pem)
    if problems:
        raise ConfigError(problems)
    return tuple(pems)
