"""Who the card belongs to: the codice fiscale and the names in a CNS certificate subject.

CNS authentication certificates (DigitPA/AgID profile) name the holder in two ways, both
in use on cards still in circulation:

* ``serialNumber`` = ``IT:<codice fiscale>`` (newer cards also write ``TINIT-<cf>``, the
  ETSI EN 319 412-1 form), with ``CN`` free;
* ``CN`` = ``<codice fiscale>/<card serial>.<hash>`` (older cards).

When both are present they must name the same person; the code must pass the check
character test. Names come from ``givenName`` and ``surname``.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

from broker.errors import InvalidFiscalCode
from broker.fiscal_code import mask, normalize_person
from providers.cns.errors import CnsNoFiscalCode

_SERIAL_PREFIXES = ("IT:", "TINIT-")


@dataclass(frozen=True)
class Holder:
    """The card holder as the certificate names them."""

    fiscal_code: str
    given_name: str | None
    family_name: str | None


def _values(subject: x509.Name, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(a.value).strip() for a in subject.get_attributes_for_oid(oid)]


def _from_serial(subject: x509.Name) -> list[str]:
    found = []
    for value in _values(subject, NameOID.SERIAL_NUMBER):
        upper = value.upper()
        for prefix in _SERIAL_PREFIXES:
            if upper.startswith(prefix):
                found.append(upper[len(prefix):])
    return found


def _from_cn(subject: x509.Name) -> list[str]:
    found = []
    for value in _values(subject, NameOID.COMMON_NAME):
        head, sep, _ = value.partition("/")
        if sep and len(head.strip()) == 16:
            found.append(head.strip().upper())
    return found


def holder_of(cert: x509.Certificate) -> Holder:
    """Read and validate the holder; ``CnsNoFiscalCode`` when there is no usable code."""
    subject = cert.subject
    candidates = _from_serial(subject) + _from_cn(subject)
    if not candidates:
        raise CnsNoFiscalCode("no codice fiscale in the subject (serialNumber or CN form)")
    try:
        codes = {normalize_person(c) for c in candidates}
    except InvalidFiscalCode as exc:
        raise CnsNoFiscalCode(f"subject codice fiscale invalid: {exc.detail}") from exc
    if len(codes) != 1:
        raise CnsNoFiscalCode("subject names different codici fiscali: "
                              + ", ".join(sorted(mask(c) for c in codes)))
    given = _values(subject, NameOID.GIVEN_NAME)
    family = _values(subject, NameOID.SURNAME)
    return Holder(fiscal_code=codes.pop(), given_name=given[0] if given else None,
                  family_name=family[0] if family else None)
