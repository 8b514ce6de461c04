"""The CNS provider: login with the Carta Nazionale dei Servizi (a TLS client certificate).

nginx terminates TLS on a dedicated card endpoint and forwards the certificate; the broker
verifies it itself (chain, dates, CRL/OCSP, codice fiscale). ``PROVIDER_TYPE`` is found
through the ``varco.providers`` entry point.
"""

from providers.cns.acr import ACR_CNS, CNS_LEVELS
from providers.cns.cli import register as register_cli
from providers.cns.config import CnsConfig
from providers.cns.provider import AMR, CnsProvider, create_cns_provider
from providers.types import ProviderType

PROVIDER_TYPE = ProviderType(
    name="cns", label=CnsProvider.label, config=CnsConfig, factory=create_cns_provider,
    acr_levels=CNS_LEVELS, default_acr=ACR_CNS, amr=AMR,
    facts={"cert_serial": "the card certificate's serial number",
           "issuer": "the certification authority that issued the card"},
    cli=register_cli)

__all__ = ["ACR_CNS", "PROVIDER_TYPE", "CnsConfig", "CnsProvider", "create_cns_provider"]
