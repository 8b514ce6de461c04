"""The acr value a CNS login asserts: Varco's own, high assurance (a qualified card)."""

from broker.model import RANK_HIGH, AcrLevel

ACR_CNS = "urn:varco:acr:cns"
CNS_LEVELS = (AcrLevel(uri=ACR_CNS, rank=RANK_HIGH, aliases=("cns",)),)
