"""The CIE provider: a SAML2 service provider for logins with the Electronic Identity Card (CIE ID).

Importing this package registers the ``cie`` provider type with ``providers.base``.
"""

from providers.base import register
from providers.cie.config import CieConfig
from providers.cie.provider import CieProvider, create_cie_provider

register("cie", CieConfig, create_cie_provider)

__all__ = ["CieConfig", "CieProvider", "create_cie_provider"]
