"""Namespaces, hardened parsing and strict SAML time handling.

Parsing refuses any DTD (so no entity can be declared, let alone expanded), never
touches the network, and drops comments and processing instructions while parsing: a
comment inside a signed value (``TINIT-AAA<!---->BBB``) cannot cut the text we read
short of what the IdP signed (exclusive c14n without comments signs ``AAABBB``). This
is python3-saml's defusedxml policy in lxml's own parser options: its element class
filters every child iteration in Python, ~0.15 ms per SAML response. Times are parsed
with one strict pattern because the SPID conformance suite sends malformed ones
(``2018-09-04``, ``2018.09.18``) that a lenient parser would accept.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import threading
import zlib
from datetime import UTC, datetime

from lxml import etree

from providers.saml.errors import XmlError as XmlError  # re-exported

NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "md": "urn:oasis:names:tc:SAML:2.0:metadata",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "xs": "http://www.w3.org/2001/XMLSchema",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "mdrpi": "urn:oasis:names:tc:SAML:metadata:rpi",
}

BINDING_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
NAMEID_TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
NAMEID_ENTITY = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"
CM_BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
STATUS_REQUESTER = "urn:oasis:names:tc:SAML:2.0:status:Requester"
STATUS_RESPONDER = "urn:oasis:names:tc:SAML:2.0:status:Responder"
STATUS_AUTHN_FAILED = "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"

MAX_MESSAGE_BYTES = 256 * 1024

# ASCII digits only: ``\d`` alone also matches other scripts' digits (``٢٠١٨``), which
# ``int`` reads, so a lenient pattern would let them through.
_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?Z$",
                   re.ASCII)


def q(prefix: str, local: str) -> str:
    """Clark notation for ``prefix:local``."""
    return f"{{{NS[prefix]}}}{local}"


_PARSERS = threading.local()  # an lxml parser is not to be shared between threads


def _parser() -> etree.XMLParser:
    parser = getattr(_PARSERS, "parser", None)
    if parser is None:
        parser = _PARSERS.parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
            remove_comments=True, remove_pis=True, huge_tree=False)
    return parser


def parse(xml: bytes | str) -> etree._Element:
    """Parse untrusted XML safely; raise ``XmlError`` on anything odd (a DTD included)."""
    data = xml.encode() if isinstance(xml, str) else xml
    if len(data) > MAX_MESSAGE_BYTES:
        raise XmlError("message too large")
    try:
        root = etree.fromstring(data, _parser())
    except (etree.LxmlError, ValueError) as exc:
        raise XmlError(f"not well-formed XML: {type(exc).__name__}") from exc
    info = root.getroottree().docinfo
    if info.doctype or info.internalDTD is not None:  # type: ignore[union-attr]  # stub lacks it
        raise XmlError("DTD not allowed")
    return root


def b64_xml(value: str) -> bytes:
    """Decode a base64 POST-binding parameter."""
    try:
        data = base64.b64decode(value.encode(), validate=False)
    except (binascii.Error, ValueError) as exc:
        raise XmlError("not base64") from exc
    if len(data) > MAX_MESSAGE_BYTES:
        raise XmlError("message too large")
    return data


def inflate_b64(value: str) -> bytes:
    """Decode a Redirect-binding parameter (base64 of raw DEFLATE), bounded in size."""
    try:
        raw = base64.b64decode(value.encode())
        out = zlib.decompressobj(-15)
        data = out.decompress(raw, MAX_MESSAGE_BYTES + 1)
    except (binascii.Error, ValueError, zlib.error) as exc:
        raise XmlError("not a deflated base64 message") from exc
    if len(data) > MAX_MESSAGE_BYTES:
        raise XmlError("message too large")
    return data


def deflate_b64(xml: bytes) -> str:
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    return base64.b64encode(comp.compress(xml) + comp.flush()).decode()


def parse_time(value: str | None) -> datetime:
    """Strict ``xs:dateTime`` in UTC (``Z``), optional fraction; ``XmlError`` otherwise."""
    if not value:
        raise XmlError("missing time")
    m = _TIME.match(value.strip())
    if not m:
        raise XmlError("badly formatted time")
    y, mo, d, h, mi, s, frac = m.groups()
    micro = int((frac or ".0")[1:7].ljust(6, "0"))
    try:
        return datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), micro, tzinfo=UTC)
    except ValueError as exc:
        raise XmlError("impossible time") from exc


def format_time(at: datetime) -> str:
    """SAML time with second precision, as SPID IdPs expect."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id() -> str:
    """A message ID: starts with a letter/underscore (xs:ID), 160+ bits of randomness."""
    return "_" + secrets.token_hex(20)


def text_of(node: etree._Element | None) -> str:
    """Element text with surrounding whitespace removed; '' when absent."""
    if node is None or node.text is None:
        return ""
    return node.text.strip()


def to_bytes(node: etree._Element) -> bytes:
    return etree.tostring(node, encoding="utf-8", xml_declaration=False)
