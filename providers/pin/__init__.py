"""The PIN provider: the institute's own PIN (codice fiscale + PIN), its store and login pages.

``PROVIDER_TYPE`` is found through the ``varco.providers`` entry point; importing this
package also registers its tables and migrations with ``broker.store.schema``.
"""

from broker.store.schema import register_schema
from providers.pin.acr import ACR_PIN, PIN_LEVELS
from providers.pin.cli import register as register_cli
from providers.pin.config import PinConfig
from providers.pin.provider import PinProvider, create_pin_provider
from providers.pin.schema import pin_schema
from providers.types import ProviderType

PROVIDER_TYPE = ProviderType(
    name="pin", label=PinProvider.label, config=PinConfig, factory=create_pin_provider,
    acr_levels=PIN_LEVELS, default_acr=ACR_PIN, amr=("pin",),
    facts={
        "pin_privilege": "ordinario | dispositivo: what this PIN was issued as",
        "pin_kind": "standard | telephone: a telephone PIN is for the contact center only",
        "pin_conversion": "pending while an ordinario->dispositivo conversion awaits review",
        "pin_conversion_id": "the pending conversion's id",
    },
    cli=register_cli, policy_names=("pin_request",),
    admin_scopes=("admin:pin", "contact-center"))
register_schema("pin", *pin_schema())

__all__ = ["ACR_PIN", "PROVIDER_TYPE", "PinConfig", "PinProvider",
           "create_pin_provider"]
