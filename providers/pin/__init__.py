"""The PIN provider: the institute's own PIN (codice fiscale + PIN), its store and login pages.

Importing this package registers the ``pin`` provider type with ``providers.base`` and
its tables and migrations with ``broker.store.schema``.
"""

from broker.store.schema import register_schema
from providers.base import register
from providers.pin.config import PinConfig
from providers.pin.provider import PinProvider, create_pin_provider
from providers.pin.schema import pin_schema

register("pin", PinConfig, create_pin_provider)
register_schema("pin", *pin_schema())

__all__ = ["PinConfig", "PinProvider", "create_pin_provider"]
