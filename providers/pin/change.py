"""The first-login step: the 16-character initial PIN is replaced by an 8-character one.

After the initial PIN verifies, the state of the step (which login, which person, which
credential) is kept server-side in the ephemeral store under a random id; the browser only
holds an unguessable token. The rule "the new PIN may not be either half of the initial
one" needs the halves: they are kept as HMACs under a random key that lives *only in the
browser's token*, so the database never holds anything from which a half could be
brute-forced, and a forged token finds nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass

from broker.errors import Text
from broker.store.base import EphemeralStore

NS = "pin_change"
NEW_PIN_LENGTH = 8
_ALNUM = re.compile(r"[A-Za-z0-9]+")

MISMATCH = Text("I due PIN inseriti non coincidono.", "The two PINs you entered do not match.")
WRONG_LENGTH = Text(f"Il nuovo PIN deve avere esattamente {NEW_PIN_LENGTH} caratteri.",
                    f"The new PIN must have exactly {NEW_PIN_LENGTH} characters.")
WRONG_CHARS = Text(
    "Il nuovo PIN può contenere solo lettere e cifre (niente spazi, accenti o simboli) "
    "e deve contenere almeno una lettera e almeno una cifra.",
    "The new PIN may contain only letters and digits (no spaces, accents or symbols) "
    "and must contain at least one letter and at least one digit.")
SAME_AS_HALF = Text(
    "Il nuovo PIN non può essere uguale a una delle due metà del PIN iniziale.",
    "The new PIN cannot be the same as either half of the initial PIN.")


@dataclass(frozen=True)
class PendingChange:
    """A first login waiting for the new PIN. ``key`` comes from the browser's token."""

    token_id: str
    tx: str
    fiscal_code: str
    credential_id: int
    half_digests: tuple[str, str]
    key: bytes

    def is_old_half(self, new_pin: str) -> bool:
        """True when ``new_pin`` equals a half of the initial PIN (case-insensitively)."""
        digest = _digest(self.key, new_pin)
        hits = [hmac.compare_digest(digest, d) for d in self.half_digests]
        return any(hits)


def _digest(key: bytes, value: str) -> str:
    return hmac.new(key, value.casefold().encode(), hashlib.sha256).hexdigest()


def begin_change(store: EphemeralStore, *, tx: str, fiscal_code: str, credential_id: int,
                 initial_pin: str, ttl: int) -> str:
    """Remember the step; returns the token to put in the form (id and key, never stored)."""
    token_id = secrets.token_urlsafe(18)
    key = secrets.token_bytes(32)
    half = len(initial_pin) // 2
    state = {
        "tx": tx, "fiscal_code": fiscal_code, "credential_id": credential_id,
        "halves": [_digest(key, initial_pin[:half]), _digest(key, initial_pin[half:])],
    }
    store.put(NS, token_id, json.dumps(state), ttl)
    return f"{token_id}.{base64.urlsafe_b64encode(key).decode().rstrip('=')}"


def load_change(store: EphemeralStore, token: str, tx: str) -> PendingChange | None:
    """The pending step for ``token`` if it exists and belongs to login ``tx``; else None."""
    token_id, _, key_text = (token or "").partition(".")
    if not token_id or not key_text or len(token) > 200:
        return None
    try:
        key = base64.urlsafe_b64decode(key_text + "=" * (-len(key_text) % 4))
    except (binascii.Error, ValueError):
        return None
    raw = store.get(NS, token_id)
    if raw is None:
        return None
    state = json.loads(raw)
    if not hmac.compare_digest(str(state["tx"]).encode(), (tx or "").encode()):
        return None
    return PendingChange(token_id, state["tx"], state["fiscal_code"], int(state["credential_id"]),
                         (state["halves"][0], state["halves"][1]), key)


def consume_change(store: EphemeralStore, change: PendingChange) -> bool:
    """End the step exactly once (a double submit gets False)."""
    return store.take(NS, change.token_id) is not None


def check_new_pin(new_pin: str, confirm: str, change: PendingChange) -> Text | None:
    """The first rule the new PIN breaks, as a message for the citizen; None if it is fine."""
    if len(new_pin) != NEW_PIN_LENGTH:
        return WRONG_LENGTH
    if not (_ALNUM.fullmatch(new_pin) and re.search(r"[A-Za-z]", new_pin)
            and re.search(r"[0-9]", new_pin)):
        return WRONG_CHARS
    if not hmac.compare_digest(new_pin.encode(), confirm.encode()):
        return MISMATCH
    if change.is_old_half(new_pin):
        return SAME_AS_HALF
    return None
