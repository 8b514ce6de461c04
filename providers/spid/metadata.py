"""The SPID SP metadata: the shared SP descriptor plus the SPID ContactPerson extensions.

Built with lxml (so every value is escaped) and signed with the SP key. The same
document is served at ``/spid/metadata`` and handed to the test IdP.
"""

from __future__ import annotations

from lxml import etree

from providers.saml.keys import KeyPair
from providers.saml.signing import sign_xml
from providers.saml.sp_metadata import AttributeService, SpEndpoints, sp_entity
from providers.saml.sp_metadata import ext as _ext
from providers.saml.sp_metadata import md as _md
from providers.spid.config import SpidConfig

SPID_NS = "https://spid.gov.it/saml-extensions"
FPA_NS = "https://spid.gov.it/invoicing-extensions"

__all__ = ["FPA_NS", "SPID_NS", "SpEndpoints", "build_metadata"]


def build_metadata(cfg: SpidConfig, ep: SpEndpoints, keys: KeyPair,
                   more_services: tuple[AttributeService, ...] = ()) -> bytes:
    """The signed metadata document (``more_services``: those of the login methods riding
    on this SP, e.g. FICEP's eIDAS attribute sets)."""
    extra_ns = {"spid": SPID_NS}
    if cfg.profile == "private":
        extra_ns["fpa"] = FPA_NS
    root = sp_entity(ep, keys, extra_ns=extra_ns, service_name=cfg.service_name,
                     attributes=cfg.attributes, organization=cfg.organization,
                     more_services=more_services)

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
