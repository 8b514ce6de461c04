"""Validate a SAML ``Response`` from an IdP, every check in one pass, fail closed.

The profile (SPID, CIE) passes an ``Expected``: what the pending request said and
what the profile demands. The result is either a ``SamlAssertion`` (a login) or a
``SamlStatus`` (the IdP reported a failure, e.g. the citizen cancelled); anything
else raises a ``SamlError`` (``providers.saml.errors``: ``XmlError``, ``SignatureError``,
``LevelTooLow``) with a reason for the log, and nothing else escapes, however the
message is mangled. All values are read from the one assertion whose signature was
verified, located structurally (a direct child of the root), so signature-wrapping
variants have nowhere to hide.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

from lxml import etree

from providers.saml.errors import LevelTooLow as LevelTooLow  # re-exported
from providers.saml.errors import SamlError as SamlError  # re-exported
from providers.saml.errors import SignatureError, XmlError
from providers.saml.idp_registry import IdpInfo
from providers.saml.signing import signature_of, verify_element
from providers.saml.xmlutil import (
    CM_BEARER,
    NAMEID_ENTITY,
    NAMEID_TRANSIENT,
    NS,
    STATUS_SUCCESS,
    parse,
    parse_time,
    q,
    text_of,
)

# Compiled once: ``elem.xpath(...)`` would compile the expression on every response.
_ALL_ASSERTIONS = etree.XPath("//saml:Assertion | //saml:EncryptedAssertion", namespaces=NS)
_ALL_SIGNATURES = etree.XPath("//ds:Signature", namespaces=NS)
_COMMENTS_OR_PIS = etree.XPath(".//comment() | .//processing-instruction()")


def _nodes(path: etree.XPath, node: etree._Element) -> list[etree._Element]:
    """The nodes an XPath above selects: elements (comments and PIs are elements too in
    lxml), never strings or numbers, which lxml's types cannot tell."""
    return cast("list[etree._Element]", path(node))


@dataclass(frozen=True)
class Expected:
    """What a valid response must match."""

    request_id: str
    request_instant: datetime
    acs_url: str
    sp_entity_id: str
    idp: IdpInfo
    now: datetime
    acr_levels: dict[str, int]
    min_level: int
    requested_attributes: frozenset[str]
    required_attributes: frozenset[str] = frozenset()
    assertion_issuer_format_required: bool = True
    skew: timedelta = timedelta(seconds=60)


@dataclass(frozen=True)
class SamlStatus:
    """A non-success answer: top-level code, second-level code and message."""

    code: str
    sub_code: str | None
    message: str | None


@dataclass(frozen=True)
class SamlAssertion:
    """What a verified assertion says."""

    response_id: str
    assertion_id: str
    issuer: str
    name_id: str
    name_qualifier: str
    session_index: str | None
    acr: str
    authn_instant: datetime
    not_on_or_after: datetime
    attributes: dict[str, str | list[str]] = field(default_factory=dict)


def _one(parent: etree._Element, prefix: str, local: str, what: str) -> etree._Element:
    found = parent.findall(q(prefix, local))
    if len(found) != 1:
        raise SamlError(f"{what}: {'missing' if not found else 'repeated'}")
    return found[0]


def _time(elem: etree._Element, attr: str, what: str) -> datetime:
    try:
        return parse_time(elem.get(attr))
    except XmlError as exc:
        raise XmlError(f"{what}: {exc}") from exc


def _issuer(parent: etree._Element, exp: Expected, what: str, format_required: bool) -> str:
    issuer = _one(parent, "saml", "Issuer", what)
    if text_of(issuer) != exp.idp.entity_id:
        raise SamlError(f"{what}: not the IdP the request went to")
    fmt = issuer.get("Format")
    if fmt is None and format_required:
        raise SamlError(f"{what}: Format missing")
    if fmt is not None and fmt != NAMEID_ENTITY:
        raise SamlError(f"{what}: Format is not entity")
    return exp.idp.entity_id


def _instant(elem: etree._Element, exp: Expected, what: str) -> datetime:
    at = _time(elem, "IssueInstant", f"{what} IssueInstant")
    if at < exp.request_instant - exp.skew:
        raise SamlError(f"{what} IssueInstant before the request")
    if at > exp.now + exp.skew:
        raise SamlError(f"{what} IssueInstant in the future")
    return at


def validate_response(xml: bytes | etree._Element, exp: Expected
                      ) -> SamlAssertion | SamlStatus:
    """Check everything; return the assertion or the IdP's failure status.

    ``xml`` is the message, or its root already parsed by ``xmlutil.parse`` (the ACS
    reads ``InResponseTo`` first and passes its tree on rather than parse twice).
    """
    root = xml if isinstance(xml, etree._Element) else parse(xml)
    if root.tag != q("samlp", "Response"):
        raise SamlError("not a samlp:Response")
    if root.get("Version") != "2.0":
        raise SamlError("Version is not 2.0")
    if not root.get("ID"):
        raise SamlError("Response ID missing")
    _instant(root, exp, "Response")
    if root.get("InResponseTo") != exp.request_id:
        raise SamlError("InResponseTo does not match the pending request")
    if root.get("Destination") != exp.acs_url:
        raise SamlError("Destination is not our ACS")
    _issuer(root, exp, "Response Issuer", format_required=False)

    ids = [e.get("ID") for e in root.iter() if isinstance(e.tag, str) and e.get("ID") is not None]
    if len(ids) != len(set(ids)):
        raise SamlError("duplicate ID attributes")
    assertions = _nodes(_ALL_ASSERTIONS, root)
    sigs = _nodes(_ALL_SIGNATURES, root)
    allowed_sig_parents = {id(root)} | {id(a) for a in assertions}
    if any(id(s.getparent()) not in allowed_sig_parents for s in sigs):
        raise SamlError("signature in an unexpected place")
    try:
        if signature_of(root) is not None:
            verify_element(root, exp.idp.certs)
    except SignatureError as exc:
        raise SignatureError(f"Response signature: {exc}") from exc

    status = root.findall(q("samlp", "Status"))
    if len(status) != 1:
        raise SamlError("Status missing")
    code_el = status[0].find(q("samlp", "StatusCode"))
    code = code_el.get("Value") if code_el is not None else None
    if code_el is None or not code:
        raise SamlError("StatusCode missing")
    if code != STATUS_SUCCESS:
        sub = code_el.find(q("samlp", "StatusCode"))
        msg = status[0].find(q("samlp", "StatusMessage"))
        if assertions:
            raise SamlError("assertion in a failed response")
        return SamlStatus(code, sub.get("Value") if sub is not None else None,
                          text_of(msg) or None)

    if len(assertions) != 1:
        raise SamlError("exactly one assertion expected")
    assertion = assertions[0]
    if assertion.tag != q("saml", "Assertion") or assertion.getparent() is not root:
        raise SamlError("assertion not where expected (encrypted or wrapped)")
    try:
        verify_element(assertion, exp.idp.certs)
    except SignatureError as exc:
        raise SignatureError(f"Assertion signature: {exc}") from exc
    return _assertion(root, assertion, exp)


def _assertion(root: etree._Element, a: etree._Element, exp: Expected) -> SamlAssertion:
    if _nodes(_COMMENTS_OR_PIS, a):
        raise SamlError("comments inside the assertion")
    if a.get("Version") != "2.0":
        raise SamlError("Assertion Version is not 2.0")
    assertion_id = a.get("ID") or ""
    _instant(a, exp, "Assertion")
    issuer = _issuer(a, exp, "Assertion Issuer", exp.assertion_issuer_format_required)

    subject = _one(a, "saml", "Subject", "Subject")
    name_id_el = _one(subject, "saml", "NameID", "NameID")
    if name_id_el.get("Format") != NAMEID_TRANSIENT:
        raise SamlError("NameID Format is not transient")
    name_qualifier = name_id_el.get("NameQualifier") or ""
    if not name_qualifier:
        raise SamlError("NameID NameQualifier missing")
    name_id = text_of(name_id_el)
    if not name_id or len(name_id_el):
        raise SamlError("NameID empty or not plain text")
    conf = _one(subject, "saml", "SubjectConfirmation", "SubjectConfirmation")
    if conf.get("Method") != CM_BEARER:
        raise SamlError("SubjectConfirmation Method is not bearer")
    data = _one(conf, "saml", "SubjectConfirmationData", "SubjectConfirmationData")
    if data.get("Recipient") != exp.acs_url:
        raise SamlError("Recipient is not our ACS")
    if data.get("InResponseTo") != exp.request_id:
        raise SamlError("SubjectConfirmationData InResponseTo does not match")
    sc_until = _time(data, "NotOnOrAfter", "SubjectConfirmationData NotOnOrAfter")
    # The skew moves our clock, never the message's time: 9999-12-31T23:59:59Z plus
    # the skew would overflow, and an exception other than SamlError would escape.
    if exp.now - exp.skew >= sc_until:
        raise SamlError("SubjectConfirmationData expired")
    if data.get("NotBefore") and exp.now + exp.skew < _time(data, "NotBefore", "NotBefore"):
        raise SamlError("SubjectConfirmationData not yet valid")

    cond = _one(a, "saml", "Conditions", "Conditions")
    not_before = _time(cond, "NotBefore", "Conditions NotBefore")
    not_after = _time(cond, "NotOnOrAfter", "Conditions NotOnOrAfter")
    if exp.now + exp.skew < not_before:
        raise SamlError("Conditions not yet valid")
    if exp.now - exp.skew >= not_after:
        raise SamlError("Conditions expired")
    restrictions = cond.findall(q("saml", "AudienceRestriction"))
    if not restrictions:
        raise SamlError("AudienceRestriction missing")
    for r in restrictions:
        audiences = [text_of(x) for x in r.findall(q("saml", "Audience"))]
        if exp.sp_entity_id not in audiences:
            raise SamlError("Audience is not our entityID")

    stmt = _one(a, "saml", "AuthnStatement", "AuthnStatement")
    authn_instant = _time(stmt, "AuthnInstant", "AuthnInstant")
    ctx = _one(stmt, "saml", "AuthnContext", "AuthnContext")
    acr = text_of(_one(ctx, "saml", "AuthnContextClassRef", "AuthnContextClassRef"))
    level = exp.acr_levels.get(acr)
    if level is None:
        raise SamlError("AuthnContextClassRef unknown")
    if level < exp.min_level:
        raise LevelTooLow("AuthnContextClassRef below the requested level")

    attributes = _attributes(a, exp)
    return SamlAssertion(
        response_id=root.get("ID") or "", assertion_id=assertion_id, issuer=issuer,
        name_id=name_id, name_qualifier=name_qualifier,
        session_index=stmt.get("SessionIndex") or None, acr=acr,
        authn_instant=authn_instant, not_on_or_after=min(sc_until, not_after),
        attributes=attributes)


def _attributes(a: etree._Element, exp: Expected) -> dict[str, str | list[str]]:
    statements = a.findall(q("saml", "AttributeStatement"))
    if not statements and not exp.requested_attributes:
        return {}
    if len(statements) != 1:
        raise SamlError("exactly one AttributeStatement expected")
    found: dict[str, str | list[str]] = {}
    for attr in statements[0]:
        if not isinstance(attr.tag, str):
            continue
        if attr.tag != q("saml", "Attribute"):
            raise SamlError("unexpected element in AttributeStatement")
        name = attr.get("Name") or ""
        values = [text_of(v) for v in attr.findall(q("saml", "AttributeValue"))]
        if not name or not values or not all(values):
            raise SamlError("attribute without name or value")
        if name in found:
            raise SamlError("attribute repeated")
        found[name] = values[0] if len(values) == 1 else values
    if not found:
        raise SamlError("empty AttributeStatement")
    extra = set(found) - exp.requested_attributes
    if extra:
        raise SamlError(f"attributes not requested: {sorted(extra)}")
    missing = exp.required_attributes - set(found)
    if missing:
        raise SamlError(f"required attributes missing: {sorted(missing)}")
    return found
