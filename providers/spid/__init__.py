"""The SPID provider: a SAML2 service provider for SPID level 2/3 logins at accredited IdPs.

Importing this package registers the ``spid`` provider type with ``providers.base``.
"""

from providers.base import register
from providers.spid.config import SpidConfig
from providers.spid.provider import SpidProvider, create_spid_provider

register("spid", SpidConfig, create_spid_provider)

__all__ = ["SpidConfig", "SpidProvider", "create_spid_provider"]
