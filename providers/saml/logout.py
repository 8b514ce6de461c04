"""SAML Single Logout messages: build LogoutRequest/LogoutResponse, read and check them.

Signatures: the Redirect binding signs the query string (verified over the raw,
still-encoded parameters as received, per SAML bindings 3.4.4.1); the POST binding
embeds the signature, verified like a Response's. The key is always the IdP's
metadata certificate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from lxml import etree

from providers.saml.errors import LogoutError as LogoutError  # re-exported
from providers.saml.errors import SignatureError
from providers.saml.idp_registry import IdpInfo
from providers.saml.signing import verify_element, verify_query
from providers.saml.xmlutil import (
    NAMEID_ENTITY,
    NAMEID_TRANSIENT,
    NS,
    XmlError,
    format_time,
    parse,
    parse_time,
    q,
    text_of,
)


@dataclass(frozen=True)
class LogoutMessage:
    """A verified LogoutRequest or LogoutResponse."""

    kind: str  # "LogoutRequest" | "LogoutResponse"
    id: str
    issuer: str
    in_response_to: str | None
    name_id: str | None
    status: str | None


def build_logout_request(*, request_id: str, now: datetime, sp_entity_id: str,
                         destination: str, name_id: str, name_qualifier: str,
                         session_index: str | None) -> bytes:
    p, s = NS["samlp"], NS["saml"]
    root = etree.Element(f"{{{p}}}LogoutRequest", nsmap={"samlp": p, "saml": s}, attrib={
        "ID": request_id, "Version": "2.0", "IssueInstant": format_time(now),
        "Destination": destination})
    issuer = etree.SubElement(root, f"{{{s}}}Issuer", Format=NAMEID_ENTITY,
                              NameQualifier=sp_entity_id)
    issuer.text = sp_entity_id
    nid = etree.SubElement(root, f"{{{s}}}NameID", Format=NAMEID_TRANSIENT,
                           NameQualifier=name_qualifier)
    nid.text = name_id
    if session_index:
        etree.SubElement(root, f"{{{p}}}SessionIndex").text = session_index
    return etree.tostring(root, encoding="utf-8")


def build_logout_response(*, response_id: str, now: datetime, sp_entity_id: str,
                          destination: str, in_response_to: str, status: str) -> bytes:
    p, s = NS["samlp"], NS["saml"]
    root = etree.Element(f"{{{p}}}LogoutResponse", nsmap={"samlp": p, "saml": s}, attrib={
        "ID": response_id, "Version": "2.0", "IssueInstant": format_time(now),
        "Destination": destination, "InResponseTo": in_response_to})
    issuer = etree.SubElement(root, f"{{{s}}}Issuer", Format=NAMEID_ENTITY,
                              NameQualifier=sp_entity_id)
    issuer.text = sp_entity_id
    st = etree.SubElement(root, f"{{{p}}}Status")
    etree.SubElement(st, f"{{{p}}}StatusCode", Value=status)
    return etree.tostring(root, encoding="utf-8")


def read_logout(xml: bytes, *, idp: IdpInfo, slo_url: str, now: datetime,
                skew: timedelta, signed_query: tuple[str, str, str] | None) -> LogoutMessage:
    """Check a logout message from ``idp``; ``signed_query`` is (query, sig, alg) for Redirect."""
    try:
        root = parse(xml)
    except XmlError as exc:
        raise LogoutError(str(exc)) from exc
    kind = etree.QName(root).localname
    if root.tag not in (q("samlp", "LogoutRequest"), q("samlp", "LogoutResponse")):
        raise LogoutError("not a logout message")
    try:
        if signed_query is not None:
            verify_query(signed_query[0], signed_query[1], signed_query[2], idp.certs)
        else:
            verify_element(root, idp.certs)
    except SignatureError as exc:
        raise LogoutError(f"signature: {exc}") from exc
    if root.get("Version") != "2.0" or not root.get("ID"):
        raise LogoutError("Version or ID")
    if root.get("Destination") != slo_url:
        raise LogoutError("Destination is not our SLO endpoint")
    try:
        at = parse_time(root.get("IssueInstant"))
    except XmlError as exc:
        raise LogoutError(f"IssueInstant: {exc}") from exc
    if abs((at - now).total_seconds()) > 600 + skew.total_seconds():
        raise LogoutError("IssueInstant too far from now")
    issuer = root.find(q("saml", "Issuer"))
    if text_of(issuer) != idp.entity_id:
        raise LogoutError("Issuer is not the IdP")
    name_id = root.find(q("saml", "NameID"))
    code = root.find(f"{q('samlp', 'Status')}/{q('samlp', 'StatusCode')}")
    if kind == "LogoutRequest" and name_id is None:
        raise LogoutError("LogoutRequest without NameID")
    return LogoutMessage(kind=kind, id=root.get("ID") or "", issuer=idp.entity_id,
                         in_response_to=root.get("InResponseTo"),
                         name_id=text_of(name_id) if name_id is not None else None,
                         status=code.get("Value") if code is not None else None)


def peek_issuer(xml: bytes) -> str:
    """The Issuer, read before verification only to pick the IdP whose key verifies."""
    try:
        return text_of(parse(xml).find(q("saml", "Issuer")))
    except XmlError as exc:
        raise LogoutError(str(exc)) from exc
