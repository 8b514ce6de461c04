"""The PIN store on a real SQLite file: lockout, expiry, initial-PIN replacement, history."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broker.clock import FixedClock
from broker.model import Privilege
from broker.store import SqliteDatabase
from providers.pin.demo import DEMO_USERS, seed_demo_users
from providers.pin.hashing import PinHasher
from providers.pin.store import (
    PinKind,
    PinPerson,
    PinStateError,
    PinStatus,
    PinStore,
)

T0 = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
CF = "BNCLRA85M41Z404W"
UNKNOWN = "NRENNA90H52Z600M"
SIX_MONTHS = timedelta(days=183)
FAKE_HASH = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "varco.db"


@pytest.fixture
def store(db_path: Path) -> PinStore:
    return PinStore(SqliteDatabase(db_path))


def person(cf: str = CF) -> PinPerson:
    return PinPerson(cf, "Laura", "Bianchi", "laura@example.org", "+15550100001",
                     residence="abroad", italian_document=False)


def test_tenth_consecutive_failure_locks_for_five_minutes(store: PinStore) -> None:
    for n in range(1, 10):
        lock = store.record_failure(CF, T0)
        assert (lock.failed_count, lock.locked_until, lock.refused) == (n, None, False)
    tenth = store.record_failure(CF, T0)
    assert tenth.failed_count == 10
    assert tenth.locked_until == T0 + timedelta(minutes=5)
    assert not tenth.refused
    eleventh = store.record_failure(CF, T0 + timedelta(minutes=4, seconds=59))
    assert eleventh.refused, "while locked, attempts are refused and not even checked"
    assert eleventh.failed_count == 10 and eleventh.locked_until == T0 + timedelta(minutes=5)


def test_lock_ends_after_five_minutes_and_counting_starts_again(store: PinStore) -> None:
    for _ in range(10):
        store.record_failure(CF, T0)
    clock = FixedClock(T0)
    clock.advance(minutes=5)
    after = store.record_failure(CF, clock.now())
    assert (after.failed_count, after.locked_until, after.refused) == (1, None, False)


def test_counts_and_lock_survive_reopening_the_database(db_path: Path) -> None:
    first = PinStore(SqliteDatabase(db_path))
    for _ in range(7):
        first.record_failure(CF, T0)
    reopened = PinStore(SqliteDatabase(db_path))
    assert reopened.attempts(CF).failed_count == 7
    for _ in range(3):
        last = reopened.record_failure(CF, T0)
    assert last.locked_until == T0 + timedelta(minutes=5)
    again = PinStore(SqliteDatabase(db_path))
    assert again.record_failure(CF, T0 + timedelta(minutes=1)).refused


def test_success_resets_the_consecutive_count(store: PinStore) -> None:
    for _ in range(9):
        store.record_failure(CF, T0)
    store.record_success(CF)
    assert store.attempts(CF).failed_count == 0
    assert store.record_failure(CF, T0).failed_count == 1


def test_unknown_fiscal_code_locks_exactly_like_a_real_one(store: PinStore) -> None:
    store.create(person(), pin_hash=FAKE_HASH, kind=PinKind.STANDARD8,
                 privilege=Privilege.DISPOSITIVO, now=T0, validity=SIX_MONTHS)
    real = [store.record_failure(CF, T0) for _ in range(11)]
    unknown = [store.record_failure(UNKNOWN, T0) for _ in range(11)]
    assert store.get(UNKNOWN) is None
    assert real == unknown


def test_limits_come_from_the_config(db_path: Path) -> None:
    store = PinStore(SqliteDatabase(db_path), max_failures=3, lockout_seconds=60)
    store.record_failure(CF, T0)
    store.record_failure(CF, T0)
    assert store.record_failure(CF, T0).locked_until == T0 + timedelta(seconds=60)


def test_pin_expires_six_months_after_issue(store: PinStore) -> None:
    cred = store.create(person(), pin_hash=FAKE_HASH, kind=PinKind.STANDARD8,
                        privilege=Privilege.ORDINARIO, now=T0, validity=SIX_MONTHS)
    loaded = store.get(CF)
    assert loaded is not None and loaded.credential == cred
    assert not cred.expired(T0 + SIX_MONTHS - timedelta(seconds=1))
    assert cred.expired(T0 + SIX_MONTHS)
    assert cred.expired(T0 + SIX_MONTHS + timedelta(days=1))


def test_replace_initial_gives_an_eight_character_pin_with_a_new_expiry(
        store: PinStore) -> None:
    initial = store.create(person(), pin_hash=FAKE_HASH, kind=PinKind.INITIAL16,
                           privilege=Privilege.DISPOSITIVO, now=T0, validity=SIX_MONTHS,
                           practice_number="P-1")
    later = T0 + timedelta(days=20)
    new_hash = FAKE_HASH.replace("aGFz", "bmV3")
    new = store.replace_initial(CF, new_hash, later, validity=SIX_MONTHS,
                                expected_id=initial.id)
    assert new.kind is PinKind.STANDARD8
    assert new.privilege is Privilege.DISPOSITIVO and new.practice_number == "P-1"
    assert new.expires_at == later + SIX_MONTHS
    account = store.get(CF)
    assert account is not None and account.credential.id == new.id
    assert account.credential.pin_hash == new_hash
    history = store.history(CF)
    assert [(c.kind, c.status) for c in history] == [
        (PinKind.INITIAL16, PinStatus.REPLACED), (PinKind.STANDARD8, PinStatus.ACTIVE)]


def test_replace_initial_refuses_twice_or_a_stale_credential(store: PinStore) -> None:
    initial = store.create(person(), pin_hash=FAKE_HASH, kind=PinKind.INITIAL16,
                           privilege=Privilege.ORDINARIO, now=T0, validity=SIX_MONTHS)
    store.replace_initial(CF, FAKE_HASH, T0, validity=SIX_MONTHS, expected_id=initial.id)
    with pytest.raises(PinStateError):
        store.replace_initial(CF, FAKE_HASH, T0, validity=SIX_MONTHS, expected_id=initial.id)
    with pytest.raises(PinStateError):  # the active PIN is a standard one now
        store.replace_initial(CF, FAKE_HASH, T0, validity=SIX_MONTHS)
    reissued = store.create(person(), pin_hash=FAKE_HASH, kind=PinKind.INITIAL16,
                            privilege=Privilege.ORDINARIO, now=T0, validity=SIX_MONTHS)
    with pytest.raises(PinStateError):  # the page was for an older initial PIN
        store.replace_initial(CF, FAKE_HASH, T0, validity=SIX_MONTHS,
                              expected_id=reissued.id - 1)
    with pytest.raises(PinStateError):
        store.replace_initial(UNKNOWN, FAKE_HASH, T0, validity=SIX_MONTHS)


def test_reissue_ends_the_old_pin_and_revocation_ends_login(store: PinStore) -> None:
    first = store.create(person(), pin_hash=FAKE_HASH, kind=PinKind.STANDARD8,
                         privilege=Privilege.ORDINARIO, now=T0, validity=SIX_MONTHS)
    second = store.create(person(), pin_hash=FAKE_HASH, kind=PinKind.INITIAL16,
                          privilege=Privilege.ORDINARIO, now=T0, validity=SIX_MONTHS)
    account = store.get(CF)
    assert account is not None and account.credential.id == second.id != first.id
    assert store.revoke(CF, T0, "lost")
    assert store.get(CF) is None
    assert store.get_person(CF) == person(), "the person stays, only the PIN ends"
    assert not store.revoke(CF, T0, "lost")


def test_at_most_one_active_web_pin_per_person_even_in_raw_sql(store: PinStore) -> None:
    store.create(person(), pin_hash=FAKE_HASH, kind=PinKind.STANDARD8,
                 privilege=Privilege.ORDINARIO, now=T0, validity=SIX_MONTHS)
    with pytest.raises(sqlite3.IntegrityError), store.db.transaction() as c:
        c.execute("INSERT INTO pin_credential(fiscal_code, kind, privilege, pin_hash, status,"
                  " issued_at, changed_at, expires_at) VALUES (?, 'initial16', 'ordinario', ?,"
                  " 'active', 'x', 'x', 'x')", (CF, FAKE_HASH))
    # A telephone PIN is another channel: it may be active beside the web PIN.
    store.create(person(), pin_hash=FAKE_HASH, kind=PinKind.TELEPHONE,
                 privilege=Privilege.ORDINARIO, now=T0, validity=timedelta(days=1))
    account = store.get(CF)
    assert account is not None and account.credential.kind is PinKind.STANDARD8


def test_store_refuses_anything_but_an_argon2id_hash(store: PinStore) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        store.create(person(), pin_hash="Abroad01", kind=PinKind.STANDARD8,
                     privilege=Privilege.ORDINARIO, now=T0, validity=SIX_MONTHS)
    assert store.get(CF) is None and store.get_person(CF) is None, "nothing half-written"


def test_conversion_to_dispositivo(store: PinStore) -> None:
    store.create(person(), pin_hash=FAKE_HASH, kind=PinKind.STANDARD8,
                 privilege=Privilege.ORDINARIO, now=T0, validity=SIX_MONTHS)
    store.set_privilege(CF, Privilege.DISPOSITIVO, T0)
    account = store.get(CF)
    assert account is not None and account.credential.privilege is Privilege.DISPOSITIVO
    with pytest.raises(PinStateError):
        store.set_privilege(UNKNOWN, Privilege.DISPOSITIVO, T0)


def test_demo_users_are_argon2id_and_no_pin_is_in_the_database_file(db_path: Path) -> None:
    hasher = PinHasher()
    store = PinStore(SqliteDatabase(db_path))
    created = seed_demo_users(store, FixedClock(T0), hasher)
    assert created == [u.person.fiscal_code for u in DEMO_USERS]
    for user in DEMO_USERS:
        account = store.get(user.person.fiscal_code)
        assert account is not None
        assert account.credential.pin_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
        assert account.credential.kind is user.kind
        assert account.person == user.person
        assert hasher.verify(account.credential.pin_hash, user.pin)
    store.replace_initial(DEMO_USERS[3].person.fiscal_code, hasher.hash("Nuovo123"), T0,
                          validity=SIX_MONTHS)
    raw = b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))
    assert b"argon2id" in raw
    for secret in [u.pin for u in DEMO_USERS] + ["Iniziale", "12345678", "Nuovo123"]:
        for form in (secret, secret.lower(), secret.upper()):
            assert form.encode() not in raw, f"{form!r} in clear in the database"
            assert form.encode("utf-16-le") not in raw


def test_demo_seeding_is_idempotent_and_keeps_changes(db_path: Path) -> None:
    hasher = PinHasher()
    store = PinStore(SqliteDatabase(db_path))
    seed_demo_users(store, FixedClock(T0), hasher)
    anna = DEMO_USERS[3].person.fiscal_code
    store.replace_initial(anna, hasher.hash("Nuovo123"), T0, validity=SIX_MONTHS)
    again = seed_demo_users(PinStore(SqliteDatabase(db_path)), FixedClock(T0), hasher)
    assert again == []
    account = store.get(anna)
    assert account is not None and account.credential.kind is PinKind.STANDARD8
    assert len(store.history(anna)) == 2
