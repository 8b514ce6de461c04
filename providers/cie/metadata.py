"""The CIE SP metadata: the shared SP descriptor plus the CIE ``administrative`` contact.

Per the CIE profile (``https://www.cartaidentita.interno.gov.it/saml-extensions``):
one ContactPerson ``administrative`` whose Extensions hold ``cie:Public`` + ``IPACode``
or ``cie:Private`` + ``VATNumber``, ``FiscalCode`` and ``NACE2Code``, and always
``Municipality``; then Company (the organization's name), e-mail and phone. The
RequestedAttributes are the four CIE gives. The CIE metadata schema requires a
SingleLogoutService, so ``/cie/slo`` is declared, although the CIE provider does not
do SAML logout (that endpoint answers with a readable page). Signed like SPID's.
"""

from __future__ import annotations

from lxml import etree

from providers.cie.config import CieConfig
from providers.saml.keys import KeyPair
from providers.saml.signing import sign_xml
from providers.saml.sp_metadata import SpEndpoints, ext, md, sp_entity

CIE_NS = "https://www.cartaidentita.interno.gov.it/saml-extensions"


def build_metadata(cfg: CieConfig, ep: SpEndpoints, keys: KeyPair) -> bytes:
    """The signed metadata document."""
    root = sp_entity(ep, keys, extra_ns={"cie": CIE_NS}, service_name=cfg.service_name,
                     attributes=cfg.attributes, organization=cfg.organization)
    admin = md(root, "ContactPerson", contactType="administrative")
    extensions = md(admin, "Extensions")
    if cfg.profile == "public":
        ext(extensions, CIE_NS, "Public")
        ext(extensions, CIE_NS, "IPACode", cfg.ipa_code)
    else:
        ext(extensions, CIE_NS, "Private")
        ext(extensions, CIE_NS, "VATNumber", cfg.vat_number)
    if cfg.fiscal_code:
        ext(extensions, CIE_NS, "FiscalCode", cfg.fiscal_code)
    if cfg.nace2_code:
        ext(extensions, CIE_NS, "NACE2Code", cfg.nace2_code)
    ext(extensions, CIE_NS, "Municipality", cfg.municipality)
    if cfg.province:
        ext(extensions, CIE_NS, "Province", cfg.province)
    md(admin, "Company", cfg.contact.company or cfg.organization.name)
    md(admin, "EmailAddress", cfg.contact.email)
    if cfg.contact.phone:
        md(admin, "TelephoneNumber", cfg.contact.phone)
    return sign_xml(etree.tostring(root, encoding="utf-8"), keys)
