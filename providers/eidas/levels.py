"""eIDAS levels of assurance, as this broker ranks them and as FICEP asserts them.

FICEP speaks SPID to a service provider: it asks the citizen's country for the level
the SPID request named and answers with the SPID URI of what it got (``SpidL2`` for
eIDAS substantial, ``SpidL3`` for high). The event carries the eIDAS URI, so policies
and RPs see what the person proved with, not which bridge carried it.
"""

from __future__ import annotations

from broker.model import RANK_HIGH, RANK_LOW, RANK_SUBSTANTIAL, AcrLevel

LOA_LOW = "http://eidas.europa.eu/LoA/low"
LOA_SUBSTANTIAL = "http://eidas.europa.eu/LoA/substantial"
LOA_HIGH = "http://eidas.europa.eu/LoA/high"
EIDAS_LEVELS = (
    AcrLevel(uri=LOA_LOW, rank=RANK_LOW, level=1, aliases=("low", "1")),
    AcrLevel(uri=LOA_SUBSTANTIAL, rank=RANK_SUBSTANTIAL, level=2,
             aliases=("substantial", "2")),
    AcrLevel(uri=LOA_HIGH, rank=RANK_HIGH, level=3, aliases=("high", "3")),
)
BY_NAME = {"substantial": LOA_SUBSTANTIAL, "high": LOA_HIGH}
SPID_TO_EIDAS = {
    "https://www.spid.gov.it/SpidL1": LOA_LOW,
    "https://www.spid.gov.it/SpidL2": LOA_SUBSTANTIAL,
    "https://www.spid.gov.it/SpidL3": LOA_HIGH,
}
EIDAS_TO_SPID = {v: k for k, v in SPID_TO_EIDAS.items()}
