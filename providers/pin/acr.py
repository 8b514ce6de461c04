"""The acr value a PIN login asserts: Varco's own, the lowest rank (DOMAIN.md)."""

from broker.model import RANK_LOW, AcrLevel

ACR_PIN = "urn:varco:acr:pin"
PIN_LEVELS = (AcrLevel(uri=ACR_PIN, rank=RANK_LOW, aliases=("pin",)),)
