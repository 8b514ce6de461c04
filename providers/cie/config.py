"""The typed config of the CIE provider (``providers.cie`` in the settings file).

Example (``config/demo.yaml``)::

    providers:
      cie:
        entity_id: http://127.0.0.1:8000/cie/metadata   # default: <issuer>/cie/metadata
        profile: public                  # public (IPACode) | private (VATNumber, FiscalCode,
        ipa_code: inps                   #   NACE2Code)
        # vat_number: IT12345678901      # private profile: vat_number, fiscal_code and
        # fiscal_code: "12345678901"     #   nace2_code all required
        # nace2_code: "84.11"
        municipality: H501               # ISTAT/cadastral code of the seat (always)
        # province: RM                   # optional
        organization:
          name: Istituto Nazionale della Previdenza Sociale
          display_name: INPS
          url: https://www.inps.it
        contact:                         # the administrative ContactPerson
          email: cie@example.it
          phone: "+390600000000"
        idp_metadata_dir: cie-idps       # relative to the settings file's folder
        # idp_entity_id: https://idserver.servizicie.interno.gov.it/idp/profile/SAML2/POST/SSO
        comparison: minimum              # minimum | exact
        level: 2                         # lowest level requested (1-3); the policy decides
        binding: redirect                # AuthnRequest binding: redirect | post
        test_idp: true                   # demo only: the test IdP also plays CIE at /test-idp-cie

The requested attributes are the four CIE gives (``name``, ``familyName``,
``dateOfBirth``, ``fiscalNumber``). Every key is checked at load; unknown keys are errors.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from providers.saml.sp_config import SamlSpConfig

CIE_ATTRIBUTES = ("name", "familyName", "dateOfBirth", "fiscalNumber")


class CieConfig(SamlSpConfig):
    """The CIE (CIE ID) service provider; shared keys are documented in ``SamlSpConfig``."""

    KNOWN_ATTRIBUTES: ClassVar[frozenset[str]] = frozenset(CIE_ATTRIBUTES)

    municipality: str = Field(description="cie:Municipality, the seat's municipality code.")
    province: str | None = Field(None, pattern=r"^[A-Z]{2}$")
    nace2_code: str | None = Field(None, description="cie:NACE2Code (private profile).")
    idp_metadata_dir: Path = Field(Path("cie-idps"),
                                   description="Folder of the CIE IdP metadata, relative to "
                                               "config.")
    idp_entity_id: str | None = Field(
        None, description="The CIE IdP to use; default: the only one in the metadata folders.")
    attributes: tuple[str, ...] = CIE_ATTRIBUTES
    comparison: Literal["exact", "minimum"] = "minimum"
    level: int = Field(2, ge=1, le=3, description="Lowest CIE level requested (SpidL<n>).")
    test_idp: bool = Field(False, description="Demo only: the test IdP also plays the CIE IdP "
                                              "at /test-idp-cie (never in production).")

    def problems(self) -> list[str]:
        problems = super().problems()
        if self.profile == "private":
            for key in ("vat_number", "fiscal_code", "nace2_code"):
                if not getattr(self, key):
                    problems.append(f"profile private needs {key}")
        if not re.fullmatch(r"[A-Z0-9]{1,8}", self.municipality):
            problems.append("municipality: the ISTAT or cadastral code (e.g. H501 or 058091)")
        if self.nace2_code and not re.fullmatch(r"\d{2}(\.\d{1,2}){0,2}", self.nace2_code):
            problems.append("nace2_code: a NACE rev.2 code such as 84.11")
        return problems
