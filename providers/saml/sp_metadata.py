"""The part of our SP metadata that SPID and CIE share: EntityDescriptor, SPSSODescriptor
(signing key, SLO, transient NameID, the POST ACS, requested attributes), Organization.

Built with lxml (so every value is escaped); the profiles add their ContactPerson
elements and sign the whole document with ``providers.saml.signing.sign_xml``.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from providers.saml.keys import KeyPair
from providers.saml.sp_config import OrganizationConfig
from providers.saml.xmlutil import BINDING_POST, BINDING_REDIRECT, NAMEID_TRANSIENT, NS, new_id

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


@dataclass(frozen=True)
class SpEndpoints:
    """Where our SP lives: entityID and the absolute ACS / SLO URLs."""

    entity_id: str
    acs_url: str
    slo_url: str


def md(parent: etree._Element, local: str, text: str | None = None,
       **attrs: str) -> etree._Element:
    """A ``md:`` child with optional text."""
    el = etree.SubElement(parent, f"{{{NS['md']}}}{local}", attrib=attrs)
    if text is not None:
        el.text = text
    return el


def ext(parent: etree._Element, ns: str, local: str, text: str | None = None) -> etree._Element:
    """A child in a profile's extension namespace."""
    el = etree.SubElement(parent, f"{{{ns}}}{local}")
    if text is not None:
        el.text = text
    return el


AttributeService = tuple[int, str, tuple[str, ...]]  # index, ServiceName, RequestedAttribute


def sp_entity(ep: SpEndpoints, keys: KeyPair, *, extra_ns: dict[str, str], service_name: str,
              attributes: tuple[str, ...], organization: OrganizationConfig,
              more_services: tuple[AttributeService, ...] = ()) -> etree._Element:
    """The EntityDescriptor with its SPSSODescriptor and Organization, ready for contacts.

    ``more_services``: further AttributeConsumingServices (FICEP's eIDAS sets, 99 and 100).
    """
    root = etree.Element(f"{{{NS['md']}}}EntityDescriptor",
                         nsmap={"md": NS["md"], "ds": NS["ds"], **extra_ns},
                         entityID=ep.entity_id, ID=new_id())
    sp = md(root, "SPSSODescriptor",
            protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol",
            AuthnRequestsSigned="true", WantAssertionsSigned="true")
    for cert in keys.published_b64:  # the current certificate, then any in rollover
        kd = md(sp, "KeyDescriptor", use="signing")
        ki = etree.SubElement(kd, f"{{{NS['ds']}}}KeyInfo")
        xd = etree.SubElement(ki, f"{{{NS['ds']}}}X509Data")
        etree.SubElement(xd, f"{{{NS['ds']}}}X509Certificate").text = cert
    md(sp, "SingleLogoutService", Binding=BINDING_POST, Location=ep.slo_url)
    md(sp, "SingleLogoutService", Binding=BINDING_REDIRECT, Location=ep.slo_url)
    md(sp, "NameIDFormat", NAMEID_TRANSIENT)
    md(sp, "AssertionConsumerService", index="0", isDefault="true", Binding=BINDING_POST,
       Location=ep.acs_url)
    acs = md(sp, "AttributeConsumingService", index="0")
    md(acs, "ServiceName", service_name).set(XML_LANG, "it")
    for name in attributes:
        md(acs, "RequestedAttribute", Name=name)
    for index, name, wanted in more_services:
        more = md(sp, "AttributeConsumingService", index=str(index))
        md(more, "ServiceName", name).set(XML_LANG, "it")
        for attribute in wanted:
            md(more, "RequestedAttribute", Name=attribute)

    org = md(root, "Organization")
    md(org, "OrganizationName", organization.name).set(XML_LANG, "it")
    md(org, "OrganizationDisplayName", organization.display_name).set(XML_LANG, "it")
    md(org, "OrganizationURL", organization.url).set(XML_LANG, "it")
    return root
