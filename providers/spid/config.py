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

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from providers.base import ProviderConfig

SPID_ATTRIBUTES = frozenset({
    "spidCode", "name", "familyName", "placeOfBirth", "countyOfBirth", "dateOfBirth",
    "gender", "companyName", "registeredOffice", "fiscalNumber", "ivaCode", "idCard",
    "mobilePhone", "email", "address", "expirationDate", "digitalAddress",
    "domicileStreetAddress", "domicilePostalCode", "domicileMunicipality",
    "domicileProvince", "domicileNation", "companyFiscalNumber",
})


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OrganizationConfig(_Section):
    """``md:Organization``, in Italian (``xml:lang="it"``)."""

    name: str
    display_name: str
    url: str


class ContactConfig(_Section):
    """The ``other`` ContactPerson (SPID requires e-mail; phone must start with +39)."""

    email: str
    phone: str | None = Field(None, pattern=r"^\+39\d{6,12}$")
    company: str | None = None


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


class SpidConfig(ProviderConfig):
    """The SPID service provider."""

    entity_id: str | None = Field(None, description="Default: <issuer>/spid/metadata.")
    profile: Literal["public", "private"] = "public"
    ipa_code: str | None = Field(None, description="IPA code (public profile).")
    vat_number: str | None = Field(None, pattern=r"^IT\d{11}$")
    fiscal_code: str | None = Field(None, pattern=r"^[A-Z0-9]{11,16}$")
    organization: OrganizationConfig
    contact: ContactConfig
    billing: BillingConfig | None = None
    idp_metadata_dir: Path = Field(Path("spid-idps"),
                                   description="Folder of IdP metadata, relative to config.")
    key_path: Path | None = None
    cert_path: Path | None = None
    locality: str = "Roma"
    key_size: int = Field(3072, ge=2048)
    attributes: tuple[str, ...] = ("spidCode", "name", "familyName", "fiscalNumber", "email",
                                   "dateOfBirth", "placeOfBirth", "address", "mobilePhone")
    required_attributes: tuple[str, ...] = ("fiscalNumber",)
    service_name: str = "Varco"
    binding: Literal["redirect", "post"] = "redirect"
    clock_skew: int = Field(60, ge=0, le=300, description="Seconds of tolerated clock skew.")
    request_ttl: int = Field(900, gt=0, le=3600, description="Seconds a login at the IdP may take.")
    test_idp: bool = Field(False, description="Demo only: serve the pysaml2 test IdP at "
                                              "/test-idp and trust it (never in production).")

    @model_validator(mode="after")
    def _profile_fields(self) -> SpidConfig:
        problems = []
        if self.profile == "public" and not self.ipa_code:
            problems.append("profile public needs ipa_code")
        if self.profile == "private":
            if not (self.vat_number or self.fiscal_code):
                problems.append("profile private needs vat_number or fiscal_code")
            if self.billing is None:
                problems.append("profile private needs billing")
            if self.ipa_code:
                problems.append("ipa_code is for the public profile only")
        unknown = set(self.attributes) - SPID_ATTRIBUTES
        if unknown:
            problems.append(f"unknown SPID attributes: {sorted(unknown)}")
        if not set(self.required_attributes) <= set(self.attributes):
            problems.append("required_attributes must be among attributes")
        if self.ipa_code and not re.fullmatch(r"\S{1,11}", self.ipa_code):
            problems.append("ipa_code: 1 to 11 characters, no spaces")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def organization_identifier(self) -> str:
        """The certificate's organizationIdentifier per the SPID certificate rules."""
        if self.profile == "public":
            return f"PA:IT-{self.ipa_code}"
        if self.vat_number:
            return f"VATIT-{self.vat_number.removeprefix('IT')}"
        return f"CF:IT-{self.fiscal_code}"
