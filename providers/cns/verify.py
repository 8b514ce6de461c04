"""From the certificate nginx saw to a verified card holder: parse, path, revocation, subject.

Runs in the thread pool (signature checks, file reads, OCSP over HTTP). The order is the
cheapest refusal first, and the subject is read only from a certificate that a trusted
CA vouches for and that is not revoked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from urllib.parse import unquote

from cryptography import x509

from providers.cns.chain import ChainVerifier
from providers.cns.errors import (
    CnsMalformedCertificate,
    CnsNoCertificate,
    CnsRevocationUnknown,
    CnsRevoked,
)
from providers.cns.revocation import CrlSet, OcspChecker, Status
from providers.cns.subject import Holder, holder_of

log = logging.getLogger("varco.providers.cns")
MAX_HEADER = 16384  # a PEM certificate, URL-escaped; CNS certificates are ~2-3 kB


@dataclass(frozen=True)
class VerifiedCard:
    """A card certificate that passed every check, and its holder."""

    holder: Holder
    serial: str  # the certificate serial, hex
    issuer: str  # RFC 4514 issuer name
    chain: tuple[x509.Certificate, ...]


def parse_escaped_cert(value: str | None) -> x509.Certificate:
    """nginx's ``$ssl_client_escaped_cert``: the URL-escaped PEM of the client certificate."""
    if not value or value.strip() in ("", "-"):
        raise CnsNoCertificate("no client certificate in the proxy header")
    if len(value) > MAX_HEADER:
        raise CnsMalformedCertificate(f"certificate header of {len(value)} bytes")
    pem = unquote(value).encode("ascii", "replace")
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise CnsMalformedCertificate("certificate header is not a PEM certificate")
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise CnsMalformedCertificate("certificate header does not parse") from exc


class CardVerifier:
    """Chain to a trusted CA at the clock's time, then revocation, then the subject."""

    def __init__(self, chain: ChainVerifier, crls: CrlSet, ocsp: OcspChecker | None, *,
                 require_revocation: bool):
        self.chain = chain
        self.crls = crls
        self.ocsp = ocsp
        self.require_revocation = require_revocation

    def verify(self, leaf: x509.Certificate, now: datetime) -> VerifiedCard:
        path = self.chain.verify(leaf, now)
        # Every certificate below the trust anchor is checked against its issuer.
        for cert, issuer in pairwise(path):
            self._check_revocation(cert, issuer, now)
        holder = holder_of(leaf)
        return VerifiedCard(holder=holder, serial=format(leaf.serial_number, "x"),
                            issuer=leaf.issuer.rfc4514_string(), chain=tuple(path))

    def _check_revocation(self, cert: x509.Certificate, issuer: x509.Certificate,
                          now: datetime) -> None:
        serial = format(cert.serial_number, "x")
        status = self.crls.status(cert, issuer, now)
        if status is Status.REVOKED:
            raise CnsRevoked(f"serial {serial} listed in a CRL of "
                             f"{issuer.subject.rfc4514_string()}")
        if self.ocsp is not None:
            answer = self.ocsp.status(cert, issuer, now)
            if answer is Status.REVOKED:
                raise CnsRevoked(f"serial {serial} revoked per OCSP")
            if answer is Status.GOOD:
                status = Status.GOOD
        if status is Status.UNKNOWN:
            if self.require_revocation:
                raise CnsRevocationUnknown(
                    f"no current CRL or OCSP answer for serial {serial} of "
                    f"{issuer.subject.rfc4514_string()}")
            log.warning("cns: revocation status of serial %s unknown, accepted (best_effort)",
                        serial)
