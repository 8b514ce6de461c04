"""The ``eidas`` provider's settings (``providers.eidas`` in the settings file)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from providers.base import ProviderConfig

# FICEP, Italy's eIDAS node, as a SPID IdP (AgID, github.com/AgID/eidas-italian-node).
FICEP_QA = "https://sp-proxy.pre.eid.gov.it/spproxy/idpit"
FICEP_PRODUCTION = "https://sp-proxy.eid.gov.it/spproxy/idpit"


class EidasConfig(ProviderConfig):
    """Login with the eID of another EU state through FICEP, on the SPID SP.

    Example::

        eidas:
          ficep_metadata_dir: eidas-idps   # FICEP's metadata (QA or production)
          attribute_set: minimum           # 99, or full: 100 (adds address, gender, ...)
          level: substantial               # the least level asked (high when the RP needs)
    """

    ficep_metadata_dir: Path = Field(
        Path("eidas-idps"), description="Folder of FICEP's metadata, relative to the "
                                        "settings file (FICEP's QA and production entities "
                                        "are documented in the README)")
    ficep_entity_id: str | None = Field(
        None, description="FICEP's entityID; by default the only IdP of the folder")
    attribute_set: Literal["minimum", "full"] = Field(
        "minimum", description="eIDAS Natural Person Minimum (index 99) or Full (100) "
                               "Attribute Set")
    level: Literal["substantial", "high"] = Field(
        "substantial", description="The least eIDAS level asked for (an RP that needs "
                                   "high assurance asks for high)")
    test_idp: bool = Field(False, description="Demo only: the test IdP plays FICEP at "
                                              "/test-idp-eidas")
    demo_links: bool = Field(False, description="Demo only: link the test FICEP user "
                                                "eidas.bianchi to Laura Bianchi's codice "
                                                "fiscale (the PIN demo user)")
