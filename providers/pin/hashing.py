"""argon2id hashing of PINs, with a dummy hash so an unknown codice fiscale costs the same.

Verification is CPU work (tens of milliseconds by design): callers on the event loop run
it in the thread pool. ``verify`` always performs exactly one argon2id verification, against
the stored hash or, when there is none, against a dummy hash made with the same parameters,
so response time does not tell a wrong PIN from an unknown codice fiscale.
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from providers.pin.config import PinConfig

# Longer inputs are refused as wrong without changing the cost (the dummy is verified).
MAX_PIN_LENGTH = 64


class PinHasher:
    """argon2id with the configured cost; never logs or keeps the PIN."""

    def __init__(self, time_cost: int = 2, memory_cost: int = 19456, parallelism: int = 1):
        self._ph = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost,
                                  parallelism=parallelism, hash_len=32, salt_len=16,
                                  type=Type.ID)
        # Nobody knows this secret, so nothing ever verifies against the dummy.
        self._dummy = self._ph.hash(secrets.token_urlsafe(24))

    @classmethod
    def from_config(cls, config: PinConfig) -> PinHasher:
        return cls(config.time_cost, config.memory_cost, config.parallelism)

    def hash(self, pin: str) -> str:
        """A fresh argon2id hash (random salt) in PHC string form."""
        return self._ph.hash(pin)

    def verify(self, stored: str | None, pin: str) -> bool:
        """True when ``pin`` matches ``stored``; one argon2id run whatever the input.

        ``stored`` is None for an unknown or revoked codice fiscale: the dummy hash is
        verified instead and the answer is False. argon2 compares digests in constant time.
        """
        too_long = len(pin) > MAX_PIN_LENGTH
        target = self._dummy if stored is None or too_long else stored
        candidate = pin[:MAX_PIN_LENGTH]
        try:
            ok = self._ph.verify(target, candidate)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return ok and stored is not None and not too_long

    def needs_rehash(self, stored: str) -> bool:
        """True when ``stored`` was made with other parameters than the configured ones."""
        try:
            return self._ph.check_needs_rehash(stored)
        except InvalidHashError:
            return True
