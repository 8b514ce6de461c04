"""Config keys every SAML service provider of ours has (SPID and CIE extend it).

Who we are (public body with an IPA code, or private with VAT number / codice
fiscale), our organization and contact, where IdP metadata and our key live, what
we request, and the timing limits. Every mistake is reported at load, all at once.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from providers.base import ProviderConfig


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OrganizationConfig(_Section):
    """``md:Organization``, in Italian (``xml:lang="it"``)."""

    name: str
    display_name: str
    url: str


class ContactConfig(_Section):
    """The contact in the metadata (e-mail required; phone must start with +39)."""

    email: str
    phone: str | None = Field(None, pattern=r"^\+39\d{6,12}$")
    company: str | None = None


class SamlSpConfig(ProviderConfig):
    """What SPID and CIE service providers share; subclasses set defaults and extra rules."""

    KNOWN_ATTRIBUTES: ClassVar[frozenset[str]] = frozenset()

    entity_id: str | None = Field(None, description="Default: <issuer>/<provider>/metadata.")
    profile: Literal["public", "private"] = "public"
    ipa_code: str | None = Field(None, description="IPA code (public profile).")
    vat_number: str | None = Field(None, pattern=r"^IT\d{11}$")
    fiscal_code: str | None = Field(None, pattern=r"^[A-Z0-9]{11,16}$")
    organization: OrganizationConfig
    contact: ContactConfig
    idp_metadata_dir: Path = Field(Path("idps"),
                                   description="Folder of IdP metadata, relative to config.")
    key_path: Path | None = None
    cert_path: Path | None = None
    rollover_cert_paths: tuple[Path, ...] = Field(
        (), description="Certificate rollover: extra SP certificates listed in the metadata "
                        "(the next one before switching key_path/cert_path to it, then the "
                        "previous one until every IdP has refreshed); they never sign.")
    locality: str = "Roma"
    key_size: int = Field(3072, ge=2048)
    attributes: tuple[str, ...] = ()
    required_attributes: tuple[str, ...] = ("fiscalNumber",)
    service_name: str = "Varco"
    binding: Literal["redirect", "post"] = "redirect"
    clock_skew: int = Field(60, ge=0, le=300, description="Seconds of tolerated clock skew.")
    request_ttl: int = Field(900, gt=0, le=3600, description="Seconds a login at the IdP may take.")
    test_idp: bool = Field(False, description="Demo only: serve the pysaml2 test IdP in the "
                                              "broker and trust it (never in production).")

    def problems(self) -> list[str]:
        """Every inconsistency between keys; subclasses add theirs to this list."""
        problems = []
        if self.profile == "public" and not self.ipa_code:
            problems.append("profile public needs ipa_code")
        if self.profile == "private":
            if not (self.vat_number or self.fiscal_code):
                problems.append("profile private needs vat_number or fiscal_code")
            if self.ipa_code:
                problems.append("ipa_code is for the public profile only")
        unknown = set(self.attributes) - self.KNOWN_ATTRIBUTES
        if unknown:
            problems.append(f"unknown attributes: {sorted(unknown)}")
        if not set(self.required_attributes) <= set(self.attributes):
            problems.append("required_attributes must be among attributes")
        if self.ipa_code and not re.fullmatch(r"\S{1,11}", self.ipa_code):
            problems.append("ipa_code: 1 to 11 characters, no spaces")
        return problems

    @model_validator(mode="after")
    def _consistent(self) -> SamlSpConfig:
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def organization_identifier(self) -> str:
        """The certificate's organizationIdentifier per the AgID certificate rules."""
        if self.profile == "public":
            return f"PA:IT-{self.ipa_code}"
        if self.vat_number:
            return f"VATIT-{self.vat_number.removeprefix('IT')}"
        return f"CF:IT-{self.fiscal_code}"
