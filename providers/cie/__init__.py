"""The CIE provider: a SAML2 service provider for logins with the Electronic Identity Card (CIE ID).

``PROVIDER_TYPE`` is found through the ``varco.providers`` entry point. CIE ID asserts the
SPID level URIs.
"""

from providers.cie.config import CieConfig
from providers.cie.provider import CieProvider, create_cie_provider
from providers.spid.levels import ACR_SPID_L3, SPID_ACR_LEVELS
from providers.types import ProviderType

PROVIDER_TYPE = ProviderType(
    name="cie", label=CieProvider.label, config=CieConfig, factory=create_cie_provider,
    acr_levels=SPID_ACR_LEVELS, default_acr=ACR_SPID_L3, amr=("cie",))

__all__ = ["PROVIDER_TYPE", "CieConfig", "CieProvider", "create_cie_provider"]
