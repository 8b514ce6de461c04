"""Is a card certificate revoked? CRL files (re-read when they change) and OCSP.

Each answer is one of three: ``GOOD`` (a current, correctly signed source vouches for the
certificate), ``REVOKED`` (any correctly signed source lists it, current or not: a
revocation is never undone by an old file), ``UNKNOWN`` (no usable source). What to do
with ``UNKNOWN`` is the caller's policy (``revocation: require`` refuses).

CRLs are read from files and folders, indexed by issuer name, and reloaded when any file's
size or modification time changes, so a cron job that downloads fresh CRLs needs no
restart. A CRL is used only if its signature verifies with the issuer's key from the
validated chain and the broker's clock is inside its thisUpdate..nextUpdate window.

OCSP (RFC 6960) is asked only when enabled and when the certificate names a responder in
its Authority Information Access. The response must be signed by the issuer or by a
responder certificate the issuer signed for ``id-kp-OCSPSigning``, must be about this
very certificate, must echo our nonce if it carries one, and must be current.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

log = logging.getLogger("varco.providers.cns")


# The key types a CRL issuer can sign with (the classic ones; CNS CAs use RSA).
_CRL_SIGNER_KEYS = (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, dsa.DSAPublicKey,
                    ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)


class Status(StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


def _signed_by(issuer: x509.Certificate, signature: bytes, data: bytes,
               algorithm: hashes.HashAlgorithm | None) -> bool:
    """True when ``signature`` over ``data`` verifies with ``issuer``'s public key."""
    key = issuer.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, data)
        else:
            return False
    except InvalidSignature:
        return False
    return True


# -- CRL files -----------------------------------------------------------------------


class CrlSet:
    """The CRLs found in the configured files and folders, reloaded when they change."""

    def __init__(self, paths: tuple[Path, ...] | list[Path]):
        self.paths = tuple(Path(p) for p in paths)
        self._lock = threading.Lock()
        self._signature: tuple[tuple[str, int, int], ...] | None = None
        self._by_issuer: dict[bytes, list[x509.CertificateRevocationList]] = {}

    def _files(self) -> list[Path]:
        files: list[Path] = []
        for path in self.paths:
            if path.is_dir():
                files.extend(sorted(p for p in path.iterdir() if p.is_file()))
            elif path.exists():
                files.append(path)
        return files

    def refresh(self) -> None:
        """Re-read every file if any was added, removed or changed since the last look."""
        files = self._files()
        signature = []
        for f in files:
            try:
                st = f.stat()
            except OSError:
                continue
            signature.append((str(f), st.st_mtime_ns, st.st_size))
        key = tuple(signature)
        with self._lock:
            if key == self._signature:
                return
            by_issuer: dict[bytes, list[x509.CertificateRevocationList]] = {}
            for f in files:
                crl = _load_crl(f)
                if crl is not None:
                    by_issuer.setdefault(crl.issuer.public_bytes(), []).append(crl)
            self._by_issuer, self._signature = by_issuer, key
            log.info("cns: %d CRL(s) loaded from %d file(s)",
                     sum(len(v) for v in by_issuer.values()), len(files))

    def status(self, cert: x509.Certificate, issuer: x509.Certificate, now: datetime) -> Status:
        """What the CRLs of ``issuer`` say about ``cert`` at ``now``."""
        self.refresh()
        with self._lock:
            crls = list(self._by_issuer.get(issuer.subject.public_bytes(), ()))
        result = Status.UNKNOWN
        for crl in crls:
            key = issuer.public_key()
            if (not isinstance(key, _CRL_SIGNER_KEYS)  # X25519, X448 and ML-KEM sign nothing
                    or not crl.is_signature_valid(key)):
                log.warning("cns: CRL of %s has a bad signature, ignored",
                            issuer.subject.rfc4514_string())
                continue
            if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
                return Status.REVOKED
            next_update = crl.next_update_utc
            if crl.last_update_utc <= now and (next_update is None or now < next_update):
                result = Status.GOOD
            else:
                log.warning("cns: CRL of %s is not current (next update %s)",
                            issuer.subject.rfc4514_string(), next_update)
        return result


def _load_crl(path: Path) -> x509.CertificateRevocationList | None:
    try:
        data = path.read_bytes()
    except OSError as exc:
        log.warning("cns: cannot read CRL %s: %s", path, exc.strerror)
        return None
    try:
        if b"-----BEGIN X509 CRL-----" in data:
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError:
        log.warning("cns: %s is not a CRL, ignored", path)
        return None


# -- OCSP ----------------------------------------------------------------------------


def ocsp_urls(cert: x509.Certificate) -> list[str]:
    """The http(s) OCSP responder URLs the certificate names (AIA), if any."""
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return [d.access_location.value for d in aia
            if d.access_method == AuthorityInformationAccessOID.OCSP
            and isinstance(d.access_location, x509.UniformResourceIdentifier)
            and d.access_location.value.startswith(("http://", "https://"))]


class OcspChecker:
    """Asks the responder a certificate names; any failure is ``UNKNOWN``, never ``GOOD``."""

    def __init__(self, timeout: float = 5.0, skew_seconds: int = 300):
        self.timeout = timeout
        self.skew_seconds = skew_seconds

    def status(self, cert: x509.Certificate, issuer: x509.Certificate, now: datetime) -> Status:
        urls = ocsp_urls(cert)
        if not urls:
            return Status.UNKNOWN
        nonce = os.urandom(16)
        request = (ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())  # noqa: S303 - RFC 6960 CertID
                   .add_extension(x509.OCSPNonce(nonce), critical=False).build())
        body = request.public_bytes(Encoding.DER)
        for url in urls:
            try:
                reply = httpx.post(url, content=body, timeout=self.timeout,
                                   headers={"Content-Type": "application/ocsp-request"})
            except httpx.HTTPError as exc:
                log.warning("cns: OCSP responder %s unreachable: %s", url, type(exc).__name__)
                continue
            if reply.status_code != 200:
                log.warning("cns: OCSP responder %s answered HTTP %s", url, reply.status_code)
                continue
            status = self._judge(reply.content, cert, issuer, nonce, now, url)
            if status is not Status.UNKNOWN:
                return status
        return Status.UNKNOWN

    def _judge(self, der: bytes, cert: x509.Certificate, issuer: x509.Certificate,
               nonce: bytes, now: datetime, url: str) -> Status:
        try:
            response = ocsp.load_der_ocsp_response(der)
        except ValueError:
            log.warning("cns: OCSP answer from %s is not DER OCSP", url)
            return Status.UNKNOWN
        if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            log.warning("cns: OCSP %s status %s", url, response.response_status.name)
            return Status.UNKNOWN
        signer = self._signer(response, issuer, now)
        if signer is None or not _signed_by(signer, response.signature,
                                             response.tbs_response_bytes,
                                             response.signature_hash_algorithm):
            log.warning("cns: OCSP answer from %s not signed by the issuer or its responder",
                        url)
            return Status.UNKNOWN
        try:
            echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        except x509.ExtensionNotFound:
            echoed = None
        if echoed is not None and echoed != nonce:
            log.warning("cns: OCSP answer from %s carries another request's nonce", url)
            return Status.UNKNOWN
        skew = timedelta(seconds=self.skew_seconds)
        expected_key_hash = ocsp.OCSPRequestBuilder().add_certificate(
            cert, issuer, hashes.SHA1()).build().issuer_key_hash  # noqa: S303
        for single in response.responses:
            if single.serial_number != cert.serial_number:
                continue
            if single.hash_algorithm.name != "sha1" or single.issuer_key_hash != expected_key_hash:
                continue
            if single.this_update_utc > now + skew:
                continue
            if single.certificate_status == ocsp.OCSPCertStatus.REVOKED:
                return Status.REVOKED
            if single.next_update_utc is not None and now > single.next_update_utc + skew:
                continue
            if single.certificate_status == ocsp.OCSPCertStatus.GOOD:
                return Status.GOOD
        return Status.UNKNOWN

    @staticmethod
    def _signer(response: ocsp.OCSPResponse, issuer: x509.Certificate,
                now: datetime) -> x509.Certificate | None:
        """The issuer itself, or a delegated responder the issuer certified for OCSP."""
        if response.responder_name == issuer.subject or response.responder_key_hash == \
                _key_hash(issuer):
            return issuer
        for cand in response.certificates:
            named = (response.responder_name == cand.subject
                     or response.responder_key_hash == _key_hash(cand))
            if not named or cand.issuer != issuer.subject:
                continue
            if not (cand.not_valid_before_utc <= now <= cand.not_valid_after_utc):
                continue
            try:
                eku = cand.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            except x509.ExtensionNotFound:
                continue
            if ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
                continue
            if _signed_by(issuer, cand.signature, cand.tbs_certificate_bytes,
                          cand.signature_hash_algorithm):
                return cand
        return None


def _key_hash(cert: x509.Certificate) -> bytes:
    """SHA-1 of the subjectPublicKey BIT STRING (the OCSP ResponderID byKey)."""
    return x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest
