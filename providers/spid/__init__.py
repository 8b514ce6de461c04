"""The SPID provider: a SAML2 service provider for SPID level 2/3 logins at accredited IdPs.

``PROVIDER_TYPE`` is found through the ``varco.providers`` entry point.
"""

from providers.spid.cli import register as register_cli
from providers.spid.config import SpidClientOptions, SpidConfig
from providers.spid.levels import ACR_SPID_L2, SPID_ACR_LEVELS
from providers.spid.provider import SpidProvider, create_spid_provider
from providers.types import ProviderType

PROVIDER_TYPE = ProviderType(
    name="spid", label=SpidProvider.label, config=SpidConfig, factory=create_spid_provider,
    acr_levels=SPID_ACR_LEVELS, default_acr=ACR_SPID_L2, amr=("spid",),
    facts={"spidCode": "the identity's code at its SPID IdP",
           "purpose": "the kind of identity the RP asked for (spid:Purpose: P, LP, PG, PF, "
                      "PX), present when the login is a professional one"},
    cli=register_cli, client_options=SpidClientOptions)

__all__ = ["PROVIDER_TYPE", "SpidConfig", "SpidProvider", "create_spid_provider"]
