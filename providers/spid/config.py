"""The typed config of the SPID provider (``providers.spid`` in the settings file).

Example (``config/demo.yaml``)::

    providers:
      spid:
        entity_id: http://127.0.0.1:8000/spid/metadata   # default: <issuer>/spid/metadata
        profile: public                  # public (IPACode) | private (VATNumber/FiscalCode)
        ipa_code: inps                   # public profile only
        # vat_number: IT12345678901      # private profile: this and/or fiscal_code
        organization:
          name: Istituto Nazionale della Previdenza Sociale
          display_name: INPS
          url: https://www.inps.it
        contact:
          email: spid@example.it
          phone: "+390600000000"
        # billing: {...}                 # private profile only, see BillingConfig
        idp_metadata_dir: spid-idps      # relative to the settings file's folder
        locality: Roma                   # for the generated SP certificate
        # key_path / cert_path: default <data_dir>/spid/sp.key, sp.crt (made on first start)
        attributes: [spidCode, name, familyName, fiscalNumber, email, dateOfBirth,
                     placeOfBirth, address, mobilePhone]
        binding: redirect                # AuthnRequest binding: redirect | post
        test_idp: true                   # demo only: the pysaml2 test IdP at /test-idp

Every key is checked at load; unknown keys are errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from providers.saml.sp_config import ContactConfig, OrganizationConfig, SamlSpConfig, _Section

SPID_ATTRIBUTES = frozenset({
    "spidCode", "name", "familyName", "placeOfBirth", "countyOfBirth", "dateOfBirth",
    "gender", "companyName", "registeredOffice", "fiscalNumber", "ivaCode", "idCard",
    "mobilePhone", "email", "address", "expirationDate", "digitalAddress",
    "domicileStreetAddress", "domicilePostalCode", "domicileMunicipality",
    "domicileProvince", "domicileNation", "companyFiscalNumber",
})


class BillingConfig(_Section):
    """The ``billing`` ContactPerson of private SPs (``fpa:CessionarioCommittente``)."""

    email: str
    phone: str | None = Field(None, pattern=r"^\+39\d{6,12}$")
    company: str
    vat_number: str = Field(pattern=r"^\d{11}$", description="IdCodice, without 'IT'.")
    denomination: str
    address: str
    number: str
    cap: str = Field(pattern=r"^\d{5}$")
    city: str
    province: str = Field(pattern=r"^[A-Z]{2}$")
    country: str = "IT"


class SpidClientOptions(_Section):
    """What an RP's registration may ask of a SPID login (``provider_options.spid``).

    ``purpose`` (Avviso SPID n.18 v2): the kind of identity the RP wants, sent as
    ``spid:Purpose``: ``P`` a natural person's professional identity (or one for a legal
    person), ``LP`` a legal person's (or a professional one for it), ``PG`` a natural
    person's professional identity for a legal person, ``PF`` a natural person's
    professional identity, ``PX`` any of the professional ones. A citizen whose identity
    is not of that kind gets the IdP's error 30 as a page that says so.
    """

    purpose: Literal["P", "LP", "PG", "PF", "PX"] | None = None


class SpidConfig(SamlSpConfig):
    """The SPID service provider (the shared keys are documented in ``SamlSpConfig``)."""

    KNOWN_ATTRIBUTES: ClassVar[frozenset[str]] = SPID_ATTRIBUTES

    billing: BillingConfig | None = None
    idp_metadata_dir: Path = Field(Path("spid-idps"),
                                   description="Folder of IdP metadata, relative to config.")
    attributes: tuple[str, ...] = ("spidCode", "name", "familyName", "fiscalNumber", "email",
                                   "dateOfBirth", "placeOfBirth", "address", "mobilePhone")
    test_idp: bool = Field(False, description="Demo only: serve the pysaml2 test IdP at "
                                              "/test-idp and trust it (never in production).")

    def problems(self) -> list[str]:
        problems = super().problems()
        if self.profile == "private" and self.billing is None:
            problems.append("profile private needs billing")
        return problems


__all__ = [
    "SPID_ATTRIBUTES",
    "BillingConfig",
    "ContactConfig",
    "OrganizationConfig",
    "SpidClientOptions",
    "SpidConfig",
]
