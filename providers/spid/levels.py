"""SPID authentication levels (CIE asserts the same URIs) and the level to request."""

from __future__ import annotations

from broker.model import RANK_HIGH, RANK_LOW, RANK_SUBSTANTIAL, AcrLevel, AuthRequest

ACR_SPID_L1 = "https://www.spid.gov.it/SpidL1"
ACR_SPID_L2 = "https://www.spid.gov.it/SpidL2"
ACR_SPID_L3 = "https://www.spid.gov.it/SpidL3"
SPID_LEVELS = {ACR_SPID_L1: 1, ACR_SPID_L2: 2, ACR_SPID_L3: 3}
LEVEL_ACR = {v: k for k, v in SPID_LEVELS.items()}
# What the core ranks them as (the eIDAS scale) and what admins may type for them.
SPID_ACR_LEVELS = tuple(
    AcrLevel(uri=uri, rank=rank, level=level, aliases=(str(level), f"L{level}", f"SpidL{level}"))
    for (uri, level), rank in zip(SPID_LEVELS.items(), (RANK_LOW, RANK_SUBSTANTIAL, RANK_HIGH),
                                  strict=True))


def required_acr(auth: AuthRequest, floor: int = 2) -> str:
    """The SPID level the RP asked for, never below ``floor`` (SPID: 2, the minimum here)."""
    wanted = SPID_LEVELS.get(auth.required_acr or "", 0)
    return LEVEL_ACR[max(wanted, floor)]
