"""Random PINs, practice numbers and recovery codes, from an alphabet people cannot misread.

``secrets`` (the OS CSPRNG) only. The alphabet leaves out 0/O, 1/I and lower case, so a
half read from a letter or an SMS cannot be mistyped into another valid half; 32 symbols
give 5 bits each: 80 bits for the 16-character initial PIN, 40 for each half.
"""

from __future__ import annotations

import secrets

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
INITIAL_LENGTH = 16
HALF = INITIAL_LENGTH // 2


def random_text(length: int, alphabet: str = ALPHABET) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def initial_pin() -> str:
    """A 16-character initial PIN; its first 8 and last 8 characters travel separately."""
    return random_text(INITIAL_LENGTH)


def halves(pin: str) -> tuple[str, str]:
    return pin[:HALF], pin[HALF:]


def practice_number(year: int) -> str:
    """``PIN-2025-7K3QX9MZ``: unguessable, because with the codice fiscale it asks for a
    duplicate letter."""
    return f"PIN-{year}-{random_text(8)}"


def recovery_code() -> str:
    return random_text(10)


def telephone_pin() -> str:
    """Ten digits: easy to read out on the phone; verification is rate limited."""
    return random_text(10, "0123456789")
