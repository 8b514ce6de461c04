"""The first-login step: rules for the new 8-character PIN and the server-side step state."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from broker.clock import FixedClock
from broker.store import SqliteDatabase, SqliteEphemeralStore
from providers.pin.change import (
    MISMATCH,
    SAME_AS_HALF,
    WRONG_CHARS,
    WRONG_LENGTH,
    begin_change,
    check_new_pin,
    consume_change,
    load_change,
)

INITIAL = "Iniziale12345678"
T0 = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "varco.db"


@pytest.fixture
def ephemeral(db_path: Path, clock: FixedClock) -> SqliteEphemeralStore:
    return SqliteEphemeralStore(SqliteDatabase(db_path), clock)


def _begin(ephemeral: SqliteEphemeralStore, tx: str = "tx-1") -> str:
    return begin_change(ephemeral, tx=tx, fiscal_code="NRENNA90H52Z600M", credential_id=7,
                        initial_pin=INITIAL, ttl=600)


@pytest.mark.parametrize(("new", "confirm", "want"), [
    ("Nuovo123", "Nuovo123", None),
    ("nuovo123", "nuovo123", None),
    ("Nuovo12", "Nuovo12", WRONG_LENGTH),
    ("Nuovo1234", "Nuovo1234", WRONG_LENGTH),
    ("", "", WRONG_LENGTH),
    ("Nuovissi", "Nuovissi", WRONG_CHARS),      # no digit
    ("12345679", "12345679", WRONG_CHARS),      # no letter
    ("Nuovo 12", "Nuovo 12", WRONG_CHARS),      # space
    ("Nuòvo123", "Nuòvo123", WRONG_CHARS),      # accent
    ("Nuovo12!", "Nuovo12!", WRONG_CHARS),
    ("Nuovo12\n", "Nuovo12\n", WRONG_CHARS),
    ("Nuovo123", "Nuovo124", MISMATCH),
    ("Nuovo123", "", MISMATCH),
    ("Iniziale", "Iniziale", WRONG_CHARS),      # first half (letters only) fails earlier
    ("12345678", "12345678", WRONG_CHARS),
])
def test_new_pin_rules(ephemeral: SqliteEphemeralStore, new: str, confirm: str, want) -> None:
    change = load_change(ephemeral, _begin(ephemeral), "tx-1")
    assert change is not None
    assert check_new_pin(new, confirm, change) == want


@pytest.mark.parametrize("initial", ["Abcd1234Efgh5678", "ABCD1234efgh5678"])
def test_new_pin_may_not_be_a_half_of_the_initial_pin(ephemeral: SqliteEphemeralStore,
                                                      initial: str) -> None:
    token = begin_change(ephemeral, tx="tx-1", fiscal_code="NRENNA90H52Z600M",
                         credential_id=7, initial_pin=initial, ttl=600)
    change = load_change(ephemeral, token, "tx-1")
    assert change is not None
    for half in ("Abcd1234", "abcd1234", "EFGH5678", "Efgh5678"):
        assert check_new_pin(half, half, change) == SAME_AS_HALF
    assert check_new_pin("Abcd1235", "Abcd1235", change) is None


def test_step_is_bound_to_its_login_and_used_once(ephemeral: SqliteEphemeralStore) -> None:
    token = _begin(ephemeral)
    assert load_change(ephemeral, token, "tx-other") is None
    assert load_change(ephemeral, token.split(".")[0] + ".", "tx-1") is None
    assert load_change(ephemeral, "forged." + token.split(".")[1], "tx-1") is None
    assert load_change(ephemeral, "", "tx-1") is None
    change = load_change(ephemeral, token, "tx-1")
    assert change is not None and change.credential_id == 7
    assert consume_change(ephemeral, change)
    assert not consume_change(ephemeral, change), "a double submit finds nothing"
    assert load_change(ephemeral, token, "tx-1") is None


def test_step_expires(ephemeral: SqliteEphemeralStore, clock: FixedClock) -> None:
    token = _begin(ephemeral)
    clock.advance(seconds=601)
    assert load_change(ephemeral, token, "tx-1") is None


def test_a_forged_key_cannot_learn_the_halves(ephemeral: SqliteEphemeralStore) -> None:
    """With another key the stored digests match nothing: the key only lives in the token."""
    token = _begin(ephemeral)
    token_id = token.split(".")[0]
    forged = load_change(ephemeral, token_id + ".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                         "tx-1")
    assert forged is not None
    assert not forged.is_old_half("Iniziale") and not forged.is_old_half("12345678")


def test_initial_pin_halves_are_not_stored_in_clear(ephemeral: SqliteEphemeralStore,
                                                    db_path: Path) -> None:
    token = _begin(ephemeral)
    raw = b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))
    assert token.split(".")[0].encode() in raw, "the step is in the database"
    assert token.split(".")[1].encode() not in raw, "the key is not"
    for secret in (INITIAL, "Iniziale", "12345678", "iniziale"):
        assert secret.encode() not in raw
