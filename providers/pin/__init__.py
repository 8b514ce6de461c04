"""The PIN provider: the institute's own PIN (codice fiscale + PIN), its store and login pages.

Importing this package registers the ``pin`` provider type with ``providers.base``.
"""

from providers.base import register
from providers.pin.config import PinConfig
from providers.pin.provider import PinProvider, create_pin_provider

register("pin", PinConfig, create_pin_provider)

__all__ = ["PinConfig", "PinProvider", "create_pin_provider"]
