"""SPID authentication levels (CIE asserts the same URIs) and the level to request."""

from __future__ import annotations

from broker.model import ACR_SPID_L1, ACR_SPID_L2, ACR_SPID_L3, AuthRequest

SPID_LEVELS = {ACR_SPID_L1: 1, ACR_SPID_L2: 2, ACR_SPID_L3: 3}
LEVEL_ACR = {v: k for k, v in SPID_LEVELS.items()}


def required_acr(auth: AuthRequest, floor: int = 2) -> str:
    """The SPID level the RP asked for, never below ``floor`` (SPID: 2, the minimum here)."""
    wanted = SPID_LEVELS.get(auth.required_acr or "", 0)
    return LEVEL_ACR[max(wanted, floor)]
