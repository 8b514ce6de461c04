"""argon2id PIN hashing: the format, and an unknown codice fiscale costing a wrong PIN."""

from __future__ import annotations

import statistics
import time

from providers.pin.hashing import MAX_PIN_LENGTH, PinHasher


def test_hash_is_argon2id_with_the_configured_cost_and_a_random_salt() -> None:
    hasher = PinHasher()
    first, second = hasher.hash("Abroad01"), hasher.hash("Abroad01")
    assert first.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert first != second, "each hash has its own salt"
    assert "Abroad01" not in first


def test_verify_right_wrong_unknown_and_oversized() -> None:
    hasher = PinHasher()
    stored = hasher.hash("Abroad01")
    assert hasher.verify(stored, "Abroad01")
    assert not hasher.verify(stored, "abroad01"), "PINs are case-sensitive"
    assert not hasher.verify(stored, "Abroad0")
    assert not hasher.verify(None, "Abroad01"), "no credential: never verifies"
    assert not hasher.verify("not-a-hash", "Abroad01")
    long_pin = "A" * (MAX_PIN_LENGTH + 1)
    assert not hasher.verify(hasher.hash(long_pin), long_pin)


def test_needs_rehash_when_the_cost_changes() -> None:
    old = PinHasher(time_cost=1, memory_cost=8192)
    new = PinHasher()
    stored = old.hash("Abroad01")
    assert new.needs_rehash(stored)
    assert not new.needs_rehash(new.hash("Abroad01"))
    assert new.verify(stored, "Abroad01"), "old hashes still verify until upgraded"


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def test_unknown_fiscal_code_costs_the_same_as_a_wrong_pin() -> None:
    """Interleaved runs, so a busy machine slows all three cases alike; medians compared."""
    hasher = PinHasher()
    stored = hasher.hash("Abroad01")
    cases = {
        "wrong": lambda: hasher.verify(stored, "Wrong123"),
        "unknown": lambda: hasher.verify(None, "Wrong123"),
        "oversized": lambda: hasher.verify(stored, "x" * 500),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(11):
        for name, fn in cases.items():
            times[name].append(_timed(fn))
    wrong, unknown, oversized = (statistics.median(times[n]) for n in cases)
    assert wrong > 0.005, "argon2id with the OWASP cost takes milliseconds, not microseconds"
    assert 0.6 < unknown / wrong < 1.6
    assert 0.6 < oversized / wrong < 1.6
