"""The SPID SP metadata: SPSSODescriptor, Organization and SPID ContactPerson extensions.

Built with lxml (so every value is escaped) and signed with the SP key. The same
document is served at ``/spid/metadata`` and handed to the test IdP.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from providers.saml.keys import KeyPair
from providers.saml.signing import sign_xml
from providers.saml.xmlutil import BINDING_POST, BINDING_REDIRECT, NAMEID_TRANSIENT, NS, new_id
from providers.spid.config import SpidConfig

SPID_NS = "https://spid.gov.it/saml-extensions"
FPA_NS = "https://spid.gov.it/invoicing-extensions"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


@dataclass(frozen=True)
class SpEndpoints:
    """Where our SP lives: entityID and the absolute ACS / SLO URLs."""

    entity_id: str
    acs_url: str
    slo_url: str


def _md(parent: etree._Element, local: str, text: str | None = None,
        **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, f"{{{NS['md']}}}{local}", **attrs)
    if text is not None:
        el.text = text
    return el


def _ext(parent: etree._Element, ns: str, local: str, text: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, f"{{{ns}}}{local}")
    if text is not None:
        el.text = text
    return el


def build_metadata(cfg: SpidConfig, ep: SpEndpoints, keys: KeyPair) -> bytes:
    """The signed metadata document."""
    nsmap = {"md": NS["md"], "ds": NS["ds"], "spid": SPID_NS}
    if cfg.profile == "private":
        nsmap["fpa"] = FPA_NS
    root = etree.Element(f"{{{NS['md']}}}EntityDescriptor", nsmap=nsmap,
                         entityID=ep.entity_id, ID=new_id())
    sp = _md(root, "SPSSODescriptor",
             protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol",
             AuthnRequestsSigned="true", WantAssertionsSigned="true")
    kd = _md(sp, "KeyDescriptor", use="signing")
    ki = etree.SubElement(kd, f"{{{NS['ds']}}}KeyInfo")
    xd = etree.SubElement(ki, f"{{{NS['ds']}}}X509Data")
    etree.SubElement(xd, f"{{{NS['ds']}}}X509Certificate").text = keys.cert_b64
    _md(sp, "SingleLogoutService", Binding=BINDING_POST, Location=ep.slo_url)
    _md(sp, "SingleLogoutService", Binding=BINDING_REDIRECT, Location=ep.slo_url)
    _md(sp, "NameIDFormat", NAMEID_TRANSIENT)
    _md(sp, "AssertionConsumerService", index="0", isDefault="true", Binding=BINDING_POST,
        Location=ep.acs_url)
    acs = _md(sp, "AttributeConsumingService", index="0")
    _md(acs, "ServiceName", cfg.service_name).set(XML_LANG, "it")
    for name in cfg.attributes:
        _md(acs, "RequestedAttribute", Name=name)

    org = _md(root, "Organization")
    _md(org, "OrganizationName", cfg.organization.name).set(XML_LANG, "it")
    _md(org, "OrganizationDisplayName", cfg.organization.display_name).set(XML_LANG, "it")
    _md(org, "OrganizationURL", cfg.organization.url).set(XML_LANG, "it")

    other = _md(root, "ContactPerson", contactType="other")
    ext = _md(other, "Extensions")
    if cfg.profile == "public":
        _ext(ext, SPID_NS, "IPACode", cfg.ipa_code)
        _ext(ext, SPID_NS, "Public")
    else:
        if cfg.vat_number:
            _ext(ext, SPID_NS, "VATNumber", cfg.vat_number)
        if cfg.fiscal_code:
            _ext(ext, SPID_NS, "FiscalCode", cfg.fiscal_code)
        _ext(ext, SPID_NS, "Private")
    if cfg.contact.company:
        _md(other, "Company", cfg.contact.company)
    _md(other, "EmailAddress", cfg.contact.email)
    if cfg.contact.phone:
        _md(other, "TelephoneNumber", cfg.contact.phone)

    if cfg.profile == "private" and cfg.billing is not None:
        b = cfg.billing
        billing = _md(root, "ContactPerson", contactType="billing")
        bext = _md(billing, "Extensions")
        cc = _ext(bext, FPA_NS, "CessionarioCommittente")
        da = _ext(cc, FPA_NS, "DatiAnagrafici")
        iva = _ext(da, FPA_NS, "IdFiscaleIVA")
        _ext(iva, FPA_NS, "IdPaese", b.country)
        _ext(iva, FPA_NS, "IdCodice", b.vat_number)
        an = _ext(da, FPA_NS, "Anagrafica")
        _ext(an, FPA_NS, "Denominazione", b.denomination)
        sede = _ext(cc, FPA_NS, "Sede")
        _ext(sede, FPA_NS, "Indirizzo", b.address)
        _ext(sede, FPA_NS, "NumeroCivico", b.number)
        _ext(sede, FPA_NS, "CAP", b.cap)
        _ext(sede, FPA_NS, "Comune", b.city)
        _ext(sede, FPA_NS, "Provincia", b.province)
        _ext(sede, FPA_NS, "Nazione", b.country)
        _md(billing, "Company", b.company)
        _md(billing, "EmailAddress", b.email)
        if b.phone:
            _md(billing, "TelephoneNumber", b.phone)
    return sign_xml(etree.tostring(root, encoding="utf-8"), keys)
