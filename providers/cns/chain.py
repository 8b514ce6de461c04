"""Path validation of a card certificate against the configured CNS CAs.

Uses ``cryptography``'s own X.509 path validation (``x509.verification.PolicyBuilder``
-> ``ClientVerifier``, RFC 5280 path building with signatures, validity, basicConstraints,
keyUsage, name constraints and EKU checked by the library). Two deliberate choices:

* the end-entity profile is the library's Web PKI one with ``subjectAltName`` made
  optional, because CNS authentication certificates name the holder in the subject, not
  in a SAN (the library's default client profile demands a SAN);
* the validation time is the broker's injected clock, never the wall clock, and the leaf's
  own dates are compared first so that "expired" and "not yet valid" get their own pages
  instead of a generic "untrusted".

nginx passes only the card's own certificate, so intermediates come from the config.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.x509 import verification as xv

from broker.errors import ConfigError
from providers.cns.errors import CnsExpired, CnsNotYetValid, CnsUnknownIssuer

log = logging.getLogger("varco.providers.cns")


def load_pem_bundle(path: Path, what: str) -> list[x509.Certificate]:
    """Every certificate in a PEM file; a missing, unreadable or empty file is a config error."""
    try:
        certs = x509.load_pem_x509_certificates(path.read_bytes())
    except OSError as exc:
        raise ConfigError([f"providers.cns.{what}: cannot read {path}: {exc.strerror}"]) from exc
    except ValueError as exc:
        raise ConfigError([f"providers.cns.{what}: {path} is not a PEM certificate bundle"]) \
            from exc
    if not certs:
        raise ConfigError([f"providers.cns.{what}: {path} holds no certificate"])
    return certs


class ChainVerifier:
    """Builds and checks leaf -> intermediates -> trusted CA, at a given time."""

    def __init__(self, anchors: list[x509.Certificate],
                 intermediates: list[x509.Certificate] | None = None, *,
                 max_chain_depth: int = 4):
        if not anchors:
            raise ConfigError(["providers.cns.ca_bundle: no trusted CA"])
        self.anchors = list(anchors)
        self.intermediates = list(intermediates or [])
        self.max_chain_depth = max_chain_depth
        self._store = xv.Store(self.anchors)
        self._ee_policy = xv.ExtensionPolicy.webpki_defaults_ee().may_be_present(
            x509.SubjectAlternativeName, xv.Criticality.AGNOSTIC, None)
        self._ca_policy = xv.ExtensionPolicy.webpki_defaults_ca()

    def verify(self, leaf: x509.Certificate, now: datetime) -> list[x509.Certificate]:
        """The validated chain, leaf first and trust anchor last; raises a ``CnsError``."""
        if now < leaf.not_valid_before_utc:
            raise CnsNotYetValid(f"leaf valid from {leaf.not_valid_before_utc.isoformat()}")
        if now > leaf.not_valid_after_utc:
            raise CnsExpired(f"leaf expired at {leaf.not_valid_after_utc.isoformat()}")
        verifier = (xv.PolicyBuilder().store(self._store).time(now)
                    .max_chain_depth(self.max_chain_depth)
                    .extension_policies(ca_policy=self._ca_policy, ee_policy=self._ee_policy)
                    .build_client_verifier())
        try:
            return list(verifier.verify(leaf, self.intermediates).chain)
        except xv.VerificationError as exc:
            reason = str(exc)
            if "not valid at validation time" in reason:
                # The leaf's dates passed above, so a CA on the path is out of its validity.
                raise CnsExpired(f"a CA on the path is not valid now: {reason[:200]}") from exc
            raise CnsUnknownIssuer(f"no valid path to a trusted CNS CA (issuer "
                                   f"{leaf.issuer.rfc4514_string()}): {reason[:300]}") from exc
