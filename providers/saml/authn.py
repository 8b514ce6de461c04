"""The AuthnRequest of the SPID and CIE profiles and its two bindings (Redirect and POST).

Per the SPID technical rules, which CIE follows: Issuer with ``Format=entity`` and
``NameQualifier``, ``AttributeConsumingServiceIndex``, ``AssertionConsumerServiceIndex``
0, NameIDPolicy transient without AllowCreate, exactly one RequestedAuthnContext
(``Comparison`` minimum for SPID, exact or minimum for CIE), ``ForceAuthn="true"``,
Destination the IdP's SSO location. Signed in process.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote_plus

from lxml import etree

from providers.saml.keys import KeyPair
from providers.saml.signing import sign_query, sign_xml
from providers.saml.xmlutil import (
    BINDING_POST,
    BINDING_REDIRECT,
    NAMEID_ENTITY,
    NAMEID_TRANSIENT,
    NS,
    RSA_SHA256,
    deflate_b64,
    format_time,
)


@dataclass(frozen=True)
class OutgoingRequest:
    """A signed AuthnRequest ready for the browser, and what the ACS must remember."""

    request_id: str
    issue_instant: datetime
    binding: str
    url: str  # Redirect: full URL with signature; POST: the form action
    saml_request: str  # base64 (POST) or deflated base64 (Redirect)
    relay_state: str


SPID_EXTENSIONS = "https://spid.gov.it/saml-extensions"


def build_authn_request(*, request_id: str, now: datetime, sp_entity_id: str,
                        destination: str, acr: str, acs_index: int = 0,
                        attr_index: int = 0, comparison: str = "minimum",
                        purpose: str | None = None) -> bytes:
    """The unsigned AuthnRequest XML.

    ``purpose``: SPID's ``spid:Purpose`` extension (Avviso SPID n.18 v2), the kind of
    identity asked for: a natural person's professional identity or a legal person's.
    It follows the Issuer (and the signature the Redirect binding leaves out).
    """
    p, s = NS["samlp"], NS["saml"]
    root = etree.Element(f"{{{p}}}AuthnRequest", nsmap={"samlp": p, "saml": s}, attrib={
        "ID": request_id, "Version": "2.0", "IssueInstant": format_time(now),
        "Destination": destination, "ForceAuthn": "true",
        "AssertionConsumerServiceIndex": str(acs_index),
        "AttributeConsumingServiceIndex": str(attr_index),
    })
    issuer = etree.SubElement(root, f"{{{s}}}Issuer", Format=NAMEID_ENTITY,
                              NameQualifier=sp_entity_id)
    issuer.text = sp_entity_id
    if purpose is not None:
        extensions = etree.SubElement(root, f"{{{p}}}Extensions",
                                      nsmap={"spid": SPID_EXTENSIONS})
        etree.SubElement(extensions, f"{{{SPID_EXTENSIONS}}}Purpose").text = purpose
    etree.SubElement(root, f"{{{p}}}NameIDPolicy", Format=NAMEID_TRANSIENT)
    rac = etree.SubElement(root, f"{{{p}}}RequestedAuthnContext", Comparison=comparison)
    etree.SubElement(rac, f"{{{s}}}AuthnContextClassRef").text = acr
    return etree.tostring(root, encoding="utf-8")


def encode_redirect(xml: bytes, location: str, relay_state: str, keys: KeyPair,
                    param: str = "SAMLRequest") -> str:
    """Deflate, sign the query per the Redirect binding, return the URL."""
    msg = deflate_b64(xml)
    query = f"{param}={quote_b64(msg)}"
    if relay_state:
        query += f"&RelayState={quote_plus(relay_state)}"
    query += f"&SigAlg={_SIG_ALG_QUOTED}"
    signature = sign_query(query, keys)
    sep = "&" if "?" in location else "?"
    return f"{location}{sep}{query}&Signature={quote_b64(signature)}"


_SIG_ALG_QUOTED = quote_plus(RSA_SHA256)


def quote_b64(value: str) -> str:
    """``quote_plus`` for a base64 string: only ``+``, ``/`` and ``=`` need escaping.

    ``quote_plus`` maps the string byte by byte in Python (~60 us for an AuthnRequest).
    """
    return value.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")


def encode_post(xml: bytes, keys: KeyPair) -> str:
    """Embed the signature (after the Issuer) and base64 the document."""
    import base64

    return base64.b64encode(sign_xml(xml, keys)).decode()


def post_form(action: str, fields: dict[str, str], title: str = "SPID") -> str:
    """A self-submitting form for the POST binding (a button when scripts are off)."""
    inputs = "\n".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in fields.items())
    return (
        '<!DOCTYPE html><html lang="it"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>"
        '<body onload="document.forms[0].submit()">'
        f'<form method="post" action="{html.escape(action)}">{inputs}'
        '<noscript><p>Premi "Continua" per proseguire. / Press "Continue" to go on.</p>'
        '<button type="submit">Continua / Continue</button></noscript></form></body></html>')


def choose_sso(sso: dict[str, str], preferred: str) -> tuple[str, str]:
    """The IdP SSO endpoint for the preferred binding, falling back to the other one."""
    want = BINDING_REDIRECT if preferred == "redirect" else BINDING_POST
    other = BINDING_POST if want == BINDING_REDIRECT else BINDING_REDIRECT
    for binding in (want, other):
        if sso.get(binding):
            return binding, sso[binding]
    raise LookupError("IdP has no usable SingleSignOnService")
