"""The CNS provider: login with the Carta Nazionale dei Servizi (a TLS client certificate).

nginx terminates TLS on a dedicated card endpoint and forwards the certificate; the broker
verifies it itself (chain, dates, CRL/OCSP, codice fiscale). Importing this package
registers the ``cns`` provider type with ``providers.base``.
"""

from providers.base import register
from providers.cns.config import CnsConfig
from providers.cns.provider import CnsProvider, create_cns_provider

register("cns", CnsConfig, create_cns_provider)

__all__ = ["CnsConfig", "CnsProvider", "create_cns_provider"]
