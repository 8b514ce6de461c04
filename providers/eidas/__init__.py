"""The eIDAS provider: citizens of other EU states sign in with their own eID through FICEP.

``PROVIDER_TYPE`` is found through the ``varco.providers`` entry point; it rides on the
SPID SP (``requires``). Importing the package registers its table (the links the back
office makes) and migrations with ``broker.store.schema``.
"""

from broker.store.schema import register_schema
from providers.eidas.cli import register as register_cli
from providers.eidas.config import EidasConfig
from providers.eidas.levels import EIDAS_LEVELS, LOA_SUBSTANTIAL
from providers.eidas.provider import EidasProvider, create_eidas_provider
from providers.eidas.schema import eidas_schema
from providers.types import ProviderType

PROVIDER_TYPE = ProviderType(
    name="eidas", label=EidasProvider.label, config=EidasConfig,
    factory=create_eidas_provider, acr_levels=EIDAS_LEVELS, default_acr=LOA_SUBSTANTIAL,
    amr=("eidas",), identifier_schemes=("eidas",), requires=("spid",), cli=register_cli,
    admin_scopes=("admin:eidas",),
    facts={"linked": "true when the back office has linked the person identifier to a "
                     "codice fiscale (identity.linked)",
           "spidCode": "the eIDAS person identifier, CC/IT/identifier"})
register_schema("eidas", *eidas_schema())

__all__ = ["PROVIDER_TYPE", "EidasConfig", "EidasProvider", "create_eidas_provider"]
