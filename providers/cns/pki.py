"""A tiny certificate factory: CNS-shaped CAs, client and server certificates, CRLs.

Used by ``varco cns demo-certs`` (the demo CA and a ready PKCS#12 for a browser) and by
the tests (valid, expired, revoked, wrong-CA and no-codice-fiscale cards). Nothing here is
used to *verify* anything: verification lives in ``providers.cns.chain`` and
``providers.cns.revocation``, so a bug here cannot hide a bug there.

Keys are ECDSA P-256 (small and fast to generate); real CNS cards mostly carry RSA 2048,
which the verifier accepts just the same.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

Key = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Issued:
    """A certificate with its private key."""

    cert: x509.Certificate
    key: Key

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())

    def write(self, cert_path: Path, key_path: Path | None = None,
              chain: tuple[Issued, ...] = ()) -> None:
        """Write the PEM certificate (followed by ``chain``) and, if asked, the key (0600)."""
        cert_path.write_bytes(self.pem + b"".join(c.pem for c in chain))
        if key_path is not None:
            key_path.touch(mode=0o600)
            key_path.write_bytes(self.key_pem)


def new_key() -> Key:
    return ec.generate_private_key(ec.SECP256R1())


def name(common_name: str, organization: str = "Varco demo") -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "IT"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=not ca, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False)


def _base(subject: x509.Name, key: Key, issuer: Issued | None, now: datetime,
          not_before: datetime | None, not_after: datetime | None,
          days: int) -> x509.CertificateBuilder:
    issuer_name = issuer.cert.subject if issuer else subject
    issuer_key = issuer.key if issuer else key
    return (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(issuer_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - timedelta(days=1))
            .not_valid_after(not_after or now + timedelta(days=days))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                issuer_key.public_key()), False))


def make_ca(common_name: str, now: datetime, *, issuer: Issued | None = None,
            path_length: int | None = None, days: int = 3650,
            not_before: datetime | None = None, not_after: datetime | None = None) -> Issued:
    """A root (``issuer`` None, self-signed) or an intermediate CA."""
    key = new_key()
    builder = (_base(name(common_name), key, issuer, now, not_before, not_after, days)
               .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), True)
               .add_extension(_key_usage(ca=True), True))
    return Issued(builder.sign(issuer.key if issuer else key, hashes.SHA256()), key)


def cns_subject(fiscal_code: str | None, given_name: str, family_name: str, *,
                form: str = "serial") -> x509.Name:
    """A CNS holder's subject: ``form`` "serial" puts ``IT:<cf>`` in serialNumber, "cn"
    writes the older ``<cf>/<serial>.<hash>`` common name; ``fiscal_code`` None gives a
    subject without any codice fiscale."""
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "IT"),
             x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Carta Nazionale dei Servizi"),
             x509.NameAttribute(NameOID.SURNAME, family_name),
             x509.NameAttribute(NameOID.GIVEN_NAME, given_name)]
    if fiscal_code is None:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, f"{family_name} {given_name}"))
    elif form == "serial":
        attrs.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, f"IT:{fiscal_code}"))
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, f"{family_name} {given_name}"))
    elif form == "cn":
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME,
                                        f"{fiscal_code}/7420091000049623.fmIW78mgkUVdmdQuXCrZbDsW9oQ="))
    else:
        raise ValueError(f"unknown subject form {form!r}")
    return x509.Name(attrs)


def make_client(subject: x509.Name, issuer: Issued, now: datetime, *, days: int = 1095,
                not_before: datetime | None = None, not_after: datetime | None = None,
                ocsp_url: str | None = None, crl_url: str | None = None) -> Issued:
    """A card holder's authentication certificate (clientAuth, digitalSignature)."""
    key = new_key()
    builder = (_base(subject, key, issuer, now, not_before, not_after, days)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
               .add_extension(_key_usage(ca=False), True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False))
    if ocsp_url:
        builder = builder.add_extension(x509.AuthorityInformationAccess([
            x509.AccessDescription(AuthorityInformationAccessOID.OCSP,
                                   x509.UniformResourceIdentifier(ocsp_url))]), False)
    if crl_url:
        builder = builder.add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            [x509.UniformResourceIdentifier(crl_url)], None, None, None)]), False)
    return Issued(builder.sign(issuer.key, hashes.SHA256()), key)


def make_ocsp_signer(issuer: Issued, now: datetime, days: int = 365) -> Issued:
    """A delegated OCSP responder certificate (id-kp-OCSPSigning) issued by ``issuer``."""
    key = new_key()
    builder = (_base(name(f"OCSP {issuer.cert.subject.rfc4514_string()}"[:64]), key, issuer,
                     now, None, None, days)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
               .add_extension(_key_usage(ca=False), True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), False))
    return Issued(builder.sign(issuer.key, hashes.SHA256()), key)


def make_server(host: str, issuer: Issued, now: datetime, days: int = 825) -> Issued:
    """A TLS server certificate for ``host`` (a DNS name or an IP address)."""
    key = new_key()
    try:
        alt: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        alt = x509.DNSName(host)
    builder = (_base(name(host), key, issuer, now, None, None, days)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
               .add_extension(x509.KeyUsage(True, False, True, False, False, False, False,
                                            False, False), True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
               .add_extension(x509.SubjectAlternativeName([alt]), False))
    return Issued(builder.sign(issuer.key, hashes.SHA256()), key)


def make_crl(issuer: Issued, revoked: list[x509.Certificate], now: datetime, *,
             next_update: timedelta = timedelta(days=7),
             encoding: serialization.Encoding = serialization.Encoding.PEM) -> bytes:
    """A CRL signed by ``issuer`` listing ``revoked``, valid from ``now``."""
    builder = (x509.CertificateRevocationListBuilder()
               .issuer_name(issuer.cert.subject)
               .last_update(now - timedelta(minutes=1)).next_update(now + next_update))
    for cert in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(cert.serial_number)
            .revocation_date(now - timedelta(minutes=1)).build())
    return builder.sign(issuer.key, hashes.SHA256()).public_bytes(encoding)


def pkcs12_bundle(client: Issued, chain: tuple[Issued, ...], password: bytes,
                  friendly_name: bytes = b"CNS demo") -> bytes:
    """The client key, certificate and chain as PKCS#12 (what a browser imports)."""
    return pkcs12.serialize_key_and_certificates(
        friendly_name, client.key, client.cert, [c.cert for c in chain],
        serialization.BestAvailableEncryption(password))
