"""The PIN provider's decision for one codice fiscale + PIN, on a real store and hasher.

The HTTP pages around it are tested in ``test_pin_login_http.py``; here each outcome is
checked directly, with the clock moved instead of sleeping.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broker.audit import AuditLog
from broker.clock import FixedClock
from broker.store import SqliteDatabase, SqliteEphemeralStore
from providers.base import ProviderServices
from providers.pin import PinConfig, create_pin_provider
from providers.pin.acr import ACR_PIN
from providers.pin.provider import PinProvider, Result, until_text

T0 = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
LAURA, GIUSEPPE, MARIO, ANNA = ("BNCLRA85M41Z404W", "VRDGPP70C15Z110R", "RSSMRA80A01H501U",
                                "NRENNA90H52Z600M")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


def bare_services(db: SqliteDatabase, clock: FixedClock, tmp_path: Path) -> ProviderServices:
    """The stores and the clock only: these tests check PINs, they render no page."""
    return ProviderServices(
        clock=clock, db=db, ephemeral=SqliteEphemeralStore(db, clock), audit=AuditLog(db, clock),
        pages=None, sessions=None, policy=None, admin=None,  # type: ignore[arg-type]
        base_url="http://127.0.0.1", data_dir=tmp_path, config_dir=tmp_path)


@pytest.fixture
def provider(tmp_path: Path, clock: FixedClock) -> PinProvider:
    db = SqliteDatabase(tmp_path / "varco.db")
    services = bare_services(db, clock, tmp_path)
    return create_pin_provider(PinConfig(demo_users=True), services)


def test_right_pin_gives_the_event_with_exactly_the_agreed_attributes(
        provider: PinProvider) -> None:
    outcome = provider._check(LAURA, "Abroad01")
    assert outcome.result is Result.OK and outcome.account is not None
    event = provider._event(outcome.account)
    assert (event.provider, event.subject, event.acr, event.amr) == ("pin", LAURA, ACR_PIN,
                                                                     ("pin",))
    assert event.auth_time == T0
    assert event.attributes == {
        "fiscal_code": LAURA, "given_name": "Laura", "family_name": "Bianchi",
        "email": "laura.bianchi@example.org", "mobile_phone": "+15550100001",
        "residence": "abroad", "italian_document": False, "pin_privilege": "dispositivo",
        "pin_kind": "standard"}
    giuseppe = provider._check(GIUSEPPE, "Abroad02").account
    assert giuseppe is not None
    assert provider._event(giuseppe).attributes["pin_privilege"] == "ordinario"
    mario = provider._check(MARIO, "Italia01").account
    assert mario is not None
    assert provider._event(mario).attributes["residence"] == "italy"
    assert provider._event(mario).attributes["italian_document"] is True


def test_wrong_pin_and_unknown_fiscal_code_give_the_same_outcome(
        provider: PinProvider) -> None:
    unknown = "MRTLCU75E12Z112X"
    assert provider.store.get(unknown) is None
    wrong = [provider._check(LAURA, "Wrong123") for _ in range(11)]
    missing = [provider._check(unknown, "Wrong123") for _ in range(11)]
    assert wrong == missing
    assert [o.result for o in wrong] == [Result.WRONG] * 10 + [Result.LOCKED]


def test_tenth_failure_locks_even_the_right_pin_until_five_minutes_pass(
        provider: PinProvider, clock: FixedClock) -> None:
    for n in range(1, 10):
        outcome = provider._check(LAURA, "Wrong123")
        assert outcome.result is Result.WRONG and outcome.lockout.locked_until is None, n
    tenth = provider._check(LAURA, "Wrong123")
    assert tenth.result is Result.WRONG
    assert tenth.lockout.locked_until == T0 + timedelta(minutes=5)
    [locked] = provider.services.audit.entries("pin.locked")  # the lock is on the record
    assert locked.data["fiscal_code"] == LAURA and locked.data["failures"] == 10
    assert provider._check(LAURA, "Abroad01").result is Result.LOCKED
    clock.advance(minutes=4, seconds=59)
    assert provider._check(LAURA, "Abroad01").result is Result.LOCKED
    clock.advance(seconds=1)
    assert provider._check(LAURA, "Abroad01").result is Result.OK
    assert provider.store.attempts(LAURA).failed_count == 0


def test_right_pin_after_nine_failures_resets_the_count(provider: PinProvider) -> None:
    for _ in range(9):
        provider._check(LAURA, "Wrong123")
    assert provider._check(LAURA, "Abroad01").result is Result.OK
    for _ in range(9):
        assert provider._check(LAURA, "Wrong123").lockout.locked_until is None


def test_expired_pin_is_refused_only_when_right(provider: PinProvider,
                                               clock: FixedClock) -> None:
    clock.advance(days=183)
    assert provider._check(LAURA, "Abroad01").result is Result.EXPIRED
    assert provider._check(LAURA, "Wrong123").result is Result.WRONG, \
        "a wrong PIN learns nothing about expiry"
    clock.set(T0 + timedelta(days=183) - timedelta(seconds=1))
    assert provider._check(LAURA, "Abroad01").result is Result.OK


def test_initial_pin_asks_for_the_new_pin_and_its_first_half_is_not_enough(
        provider: PinProvider) -> None:
    assert provider._check(ANNA, "Iniziale").result is Result.WRONG
    assert provider._check(ANNA, "Iniziale12345678").result is Result.INITIAL


def test_old_hashes_are_upgraded_at_login(tmp_path: Path, clock: FixedClock) -> None:
    db = SqliteDatabase(tmp_path / "varco.db")
    services = bare_services(db, clock, tmp_path)
    cheap = create_pin_provider(PinConfig(demo_users=True, memory_cost=8192, time_cost=1),
                                services)
    laura = cheap.store.get(LAURA)
    assert laura is not None and "m=8192,t=1" in laura.credential.pin_hash
    stronger = create_pin_provider(PinConfig(), services)
    assert stronger._check(LAURA, "Abroad01").result is Result.OK
    laura = stronger.store.get(LAURA)
    assert laura is not None and "m=19456,t=2" in laura.credential.pin_hash


@pytest.mark.parametrize(("until", "shown"), [
    (datetime(2026, 1, 15, 9, 5, tzinfo=UTC), "10:05"),          # CET, exact minute
    (datetime(2026, 1, 15, 9, 5, 30, tzinfo=UTC), "10:06"),      # rounded up
    (datetime(2026, 7, 15, 9, 5, 0, 1, tzinfo=UTC), "11:06"),    # CEST
])
def test_lock_end_is_shown_in_italian_time_rounded_up(until: datetime, shown: str) -> None:
    assert until_text(until) == shown


def test_parallel_guesses_cannot_exceed_the_limit(provider: PinProvider) -> None:
    """Each attempt is counted before its PIN is checked: 30 at once get 10 checks at most."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=15) as pool:
        outcomes = list(pool.map(lambda _: provider._check(LAURA, "Wrong123"), range(30)))
    results = [o.result for o in outcomes]
    assert results.count(Result.WRONG) == 10
    assert results.count(Result.LOCKED) == 20
    assert provider._check(LAURA, "Abroad01").result is Result.LOCKED
