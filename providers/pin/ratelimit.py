"""Rate limits per codice fiscale and per client address, on the ephemeral store's atomic INCR.

Counters live ``window`` seconds from their first hit (fixed window); the count goes up
even when the answer is no, so hammering does not reset anything. Both counters are
checked, so neither rotating addresses nor rotating codici fiscali gets around it.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from broker.errors import BrokerError, Text
from broker.store.base import EphemeralStore

NS = "pin_rate"


class RateLimited(BrokerError):
    status = 429
    code = "rate_limited"
    message = Text(
        "Troppe richieste in poco tempo. Riprova tra un'ora.",
        "Too many requests in a short time. Please try again in an hour.")


@dataclass(frozen=True)
class RateLimiter:
    store: EphemeralStore
    per_fiscal_code: int
    per_address: int
    window: int

    def check(self, action: str, fiscal_code: str | None, address: str) -> None:
        """Count one ``action``; raise ``RateLimited`` once either counter is over."""
        by_address = self.store.incr(NS, f"{action}|ip|{address}", self.window)
        by_cf = self.store.incr(NS, f"{action}|cf|{fiscal_code}", self.window) \
            if fiscal_code else 0
        if by_address > self.per_address or by_cf > self.per_fiscal_code:
            raise RateLimited(f"{action} over the limit (cf {by_cf}, address {by_address})")


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
