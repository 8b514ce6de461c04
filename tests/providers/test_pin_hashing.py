"""argon2id PIN hashing: the format, and an unknown codice fiscale costing a wrong PIN."""

from __future__ import annotations

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


def test_unknown_fiscal_code_costs_the_same_as_a_wrong_pin() -> None:
    """Every verify runs exactly one argon2id verification with the same parameters.

    Counted, not timed (timings belong in bench/): an unknown codice fiscale and an
    oversized PIN are checked against a dummy hash made with the configured cost.
    """
    hasher = PinHasher()
    stored = hasher.hash("Abroad01")
    calls: list[str] = []
    real = hasher._ph

    class Counting:
        def verify(self, target: str, candidate: str) -> bool:
            calls.append(target.rsplit("$", 2)[0])  # algorithm, version and cost, no salt
            return real.verify(target, candidate)

    hasher._ph = Counting()  # type: ignore[assignment]
    assert not hasher.verify(stored, "Wrong123")
    assert not hasher.verify(None, "Wrong123")
    assert not hasher.verify(stored, "x" * 500)
    assert len(calls) == 3, "one argon2id run per attempt, whatever the input"
    assert len(set(calls)) == 1, "the dummy hash has the same cost as a real one"
    assert calls[0].startswith("$argon2id$v=19$m=19456,t=2,p=1")
