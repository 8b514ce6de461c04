"""The durable repositories behave the same on the embedded SQLite file and on PostgreSQL.

Every test runs twice (``durable`` is parametrized): audit trail, PIN store, outbox and
embedded directory through their public methods. Concurrency tests open one database
handle per thread, as separate broker processes would, so the per-instance Python locks
do not help: only the database's own serialization keeps the audit chain and the lockout
counter right.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from broker.audit import AuditLog
from broker.clock import FixedClock
from broker.directory.base import DirectoryError
from broker.directory.model import Comune, Convenzione
from broker.directory.sqlite import SqliteDirectory
from broker.model import Privilege
from broker.outbox.model import Channel, NewMessage, Status
from broker.outbox.sealing import Sealer
from broker.outbox.store import Outbox
from broker.store.base import Database
from broker.store.postgres import PostgresDatabase
from broker.store.sqlite import SqliteDatabase
from providers.pin.store import PinKind, PinPerson, PinStatus, PinStore

T0 = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
CF = "BNCLRA85M41Z404W"
OTHER = "RSSMRA80A01H501U"
FAKE_HASH = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
SIX_MONTHS = timedelta(days=183)


@dataclass
class Backend:
    """One storage (a file or a database) and a way to open more handles on it."""

    name: str
    opener: Callable[[], Database]
    opened: list[Database] = field(default_factory=list)

    def open(self) -> Database:
        db = self.opener()
        self.opened.append(db)
        return db


@pytest.fixture(params=["sqlite", "postgres"])
def durable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        backend = Backend("sqlite", lambda: SqliteDatabase(tmp_path / "varco.db"))
    else:
        url = request.getfixturevalue("postgres_url")
        backend = Backend("postgres", lambda: PostgresDatabase(url, pool_size=4))
    yield backend
    for db in backend.opened:
        close = getattr(db, "close", None)
        if close is not None:
            close()


def _run_threads(count: int, target: Callable[[int], None]) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def run(i: int) -> None:
        try:
            start.wait()
            target(i)
        except BaseException as exc:  # reported below, with the thread's failure
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors


def _person(cf: str = CF) -> PinPerson:
    return PinPerson(cf, "Laura", "Bianchi", "laura@example.org", "+15550100001",
                     residence="abroad", italian_document=True)


# --- audit trail ------------------------------------------------------------------------

def test_audit_appends_in_order_and_the_chain_verifies(durable: Backend) -> None:
    audit = AuditLog(durable.open(), FixedClock(T0))
    audit.record("pin.login", fiscal_code=CF, ok=True)
    audit.record("pin.lockout", fiscal_code=CF, attempts=10)
    audit.record("directory.grant", fiscal_code=OTHER, comune="H501", name="Forlì-Cesena")
    newest, *_ = audit.entries()
    assert [e.kind for e in audit.entries()] == ["directory.grant", "pin.lockout", "pin.login"]
    assert newest.data == {"fiscal_code": OTHER, "comune": "H501", "name": "Forlì-Cesena"}
    assert [e.kind for e in audit.entries(kind="pin.lockout")] == ["pin.lockout"]
    assert audit.verify() == (True, "audit chain intact: 3 entries")
    with pytest.raises(ValueError):
        audit.record("pin.login", pin="12345678")
    assert audit.verify() == (True, "audit chain intact: 3 entries")


def test_audit_rows_cannot_be_edited_or_deleted(durable: Backend) -> None:
    db = durable.open()
    audit = AuditLog(db, FixedClock(T0))
    audit.record("pin.login", fiscal_code=CF, ok=True)
    for sql in ("UPDATE audit SET data = '{}'", "DELETE FROM audit"):
        with pytest.raises(Exception, match="append-only"), db.transaction() as c:
            c.execute(sql)
    [entry] = audit.entries()
    assert entry.data == {"fiscal_code": CF, "ok": True}


def test_a_tampered_entry_breaks_the_chain_where_it_was_changed(durable: Backend) -> None:
    db = durable.open()
    audit = AuditLog(db, FixedClock(T0))
    for n in range(3):
        audit.record("pin.login", fiscal_code=CF, n=n)
    # Someone with the database's owner rights switches the guard off and edits.
    with db.transaction() as c:
        if durable.name == "sqlite":
            c.execute("DROP TRIGGER audit_no_update")
        else:
            c.execute("ALTER TABLE audit DISABLE TRIGGER audit_no_update")
        second = c.execute("SELECT seq FROM audit ORDER BY seq LIMIT 1 OFFSET 1").fetchone()[0]
        c.execute("UPDATE audit SET data = ? WHERE seq = ?",
                  (json.dumps({"fiscal_code": OTHER, "n": 1}), second))
    assert audit.verify() == (False, f"audit chain broken at entry {second}")


def test_concurrent_appends_from_many_writers_keep_one_valid_chain(durable: Backend) -> None:
    writers = [AuditLog(durable.open(), FixedClock(T0)) for _ in range(8)]

    def append(i: int) -> None:
        for n in range(15):
            writers[i].record("pin.login", writer=i, n=n)

    _run_threads(len(writers), append)
    assert writers[0].verify() == (True, "audit chain intact: 120 entries")
    entries = writers[0].entries(limit=500)
    assert len({e.prev for e in entries}) == 120, "two entries claim the same predecessor"


# --- PIN store ------------------------------------------------------------------------------

def test_pin_create_get_reissue_and_history(durable: Backend) -> None:
    store = PinStore(durable.open())
    first = store.create(_person(), pin_hash=FAKE_HASH, kind=PinKind.INITIAL16,
                         privilege=Privilege.ORDINARIO, now=T0, validity=SIX_MONTHS,
                         practice_number="P-1")
    account = store.get(CF)
    assert account is not None and account.credential.id == first.id > 0
    assert account.person == _person()
    second = store.create(_person(), pin_hash=FAKE_HASH, kind=PinKind.STANDARD8,
                          privilege=Privilege.DISPOSITIVO, now=T0 + timedelta(days=1),
                          validity=SIX_MONTHS)
    assert second.id > first.id
    history = store.history(CF)
    assert [(c.id, c.status) for c in history] == [(first.id, PinStatus.REPLACED),
                                                    (second.id, PinStatus.ACTIVE)]
    assert store.get(CF).credential.privilege is Privilege.DISPOSITIVO
    assert store.revoke(CF, T0 + timedelta(days=2), "lost") is True
    assert store.get(CF) is None and store.revoke(CF, T0, "again") is False


def test_pin_expires_after_its_validity(durable: Backend) -> None:
    store = PinStore(durable.open())
    store.create(_person(), pin_hash=FAKE_HASH, kind=PinKind.STANDARD8,
                 privilege=Privilege.ORDINARIO, now=T0, validity=SIX_MONTHS)
    credential = store.get(CF).credential
    assert credential.expires_at == T0 + SIX_MONTHS
    assert not credential.expired(T0 + SIX_MONTHS - timedelta(seconds=1))
    assert credential.expired(T0 + SIX_MONTHS)


def test_lockout_after_the_limit_and_a_fresh_count_when_it_ends(durable: Backend) -> None:
    store = PinStore(durable.open(), max_failures=3, lockout_seconds=300)
    assert [store.record_failure(CF, T0).failed_count for _ in range(3)] == [1, 2, 3]
    assert store.attempts(CF).locked_until == T0 + timedelta(minutes=5)
    assert store.record_failure(CF, T0 + timedelta(minutes=4)).refused
    after = store.record_failure(CF, T0 + timedelta(minutes=5))
    assert (after.failed_count, after.locked_until, after.refused) == (1, None, False)
    store.record_success(CF)
    assert store.attempts(CF).failed_count == 0


def test_parallel_guesses_never_get_more_tries_than_the_limit(durable: Backend) -> None:
    stores = [PinStore(durable.open(), max_failures=10) for _ in range(6)]
    results: list[tuple[int, bool]] = []
    lock = threading.Lock()

    def guess(i: int) -> None:
        for _ in range(5):
            r = stores[i].record_failure(OTHER, T0)
            with lock:
                results.append((r.failed_count, r.refused))

    _run_threads(len(stores), guess)
    counted = sorted(n for n, refused in results if not refused)
    assert counted == list(range(1, 11)), "each attempt must see the one before it"
    assert sum(refused for _, refused in results) == 20
    assert stores[0].attempts(OTHER).locked(T0)


def test_parallel_reissues_leave_exactly_one_active_pin(durable: Backend) -> None:
    stores = [PinStore(durable.open()) for _ in range(6)]

    def reissue(i: int) -> None:
        for n in range(3):
            stores[i].create(_person(), pin_hash=FAKE_HASH, kind=PinKind.STANDARD8,
                             privilege=Privilege.ORDINARIO, now=T0 + timedelta(seconds=n),
                             validity=SIX_MONTHS)

    _run_threads(len(stores), reissue)
    statuses = [c.status for c in stores[0].history(CF)]
    assert len(statuses) == 18 and statuses.count(PinStatus.ACTIVE) == 1
    assert statuses[-1] is PinStatus.ACTIVE, "the last one issued is the one that works"


# --- outbox -------------------------------------------------------------------------------

def _letter(cf: str = CF) -> NewMessage:
    return NewMessage(Channel.LETTER, "Via Roma 1, 00100 Roma", "pin_letter",
                      {"given_name": "Laura"}, secrets={"half": "ABCD1234"},
                      fiscal_code=cf, reference="P-1")


def test_outbox_row_commits_with_the_change_that_caused_it(durable: Backend,
                                                            tmp_path: Path) -> None:
    db = durable.open()
    store, outbox = PinStore(db), Outbox(db, Sealer.from_environment(tmp_path))
    with db.transaction() as c:
        store.issue_in(c, _person(), CF, pin_hash=FAKE_HASH, kind=PinKind.INITIAL16,
                       privilege=Privilege.ORDINARIO, status=PinStatus.PENDING,
                       practice_number="P-1", now=T0, validity=SIX_MONTHS,
                       end_reason="reissued")
        message_id = outbox.enqueue(c, _letter(), T0)
    assert message_id > 0
    record, params, secrets = outbox.load(message_id)
    assert (record.status, params, secrets) == (Status.PENDING, {"given_name": "Laura"},
                                                {"half": "ABCD1234"})
    assert [c.status for c in store.history(CF)] == [PinStatus.PENDING]
    assert outbox.claim_due(T0) == [message_id]
    assert outbox.claim_due(T0) == [], "a claimed message is leased, not handed out twice"
    outbox.mark_sent(message_id, T0)
    record, _params, secrets = outbox.load(message_id)
    assert record.status is Status.SENT and secrets == {}, "the sealed half is wiped"


def test_outbox_rollback_loses_the_message_and_the_change(durable: Backend,
                                                          tmp_path: Path) -> None:
    db = durable.open()
    store, outbox = PinStore(db), Outbox(db, Sealer.from_environment(tmp_path))
    with pytest.raises(RuntimeError, match="printer on fire"), db.transaction() as c:
        store.issue_in(c, _person(), CF, pin_hash=FAKE_HASH, kind=PinKind.INITIAL16,
                       privilege=Privilege.ORDINARIO, status=PinStatus.PENDING,
                       practice_number="P-1", now=T0, validity=SIX_MONTHS,
                       end_reason="reissued")
        outbox.enqueue(c, _letter(), T0)
        raise RuntimeError("printer on fire")
    assert store.history(CF) == [] and store.get_person(CF) is None
    assert outbox.list() == [] and outbox.claim_due(T0) == []


def test_outbox_failures_back_off_then_give_up(durable: Backend, tmp_path: Path) -> None:
    db = durable.open()
    outbox = Outbox(db, Sealer.from_environment(tmp_path))
    with db.transaction() as c:
        message_id = outbox.enqueue(c, _letter(), T0)
    assert outbox.mark_failed(message_id, T0, "smtp 451", max_attempts=2, base=60,
                              cap=3600) is Status.PENDING
    assert outbox.claim_due(T0 + timedelta(seconds=59)) == []
    assert outbox.claim_due(T0 + timedelta(seconds=60)) == [message_id]
    assert outbox.mark_failed(message_id, T0, "smtp 451", max_attempts=2, base=60,
                              cap=3600) is Status.FAILED
    assert outbox.retry(message_id, T0) is True
    assert outbox.claim_due(T0) == [message_id]


def test_parallel_claimers_never_share_a_message(durable: Backend, tmp_path: Path) -> None:
    db = durable.open()
    sealer = Sealer.from_environment(tmp_path)
    outbox = Outbox(db, sealer)
    with db.transaction() as c:
        wanted = {outbox.enqueue(c, _letter(), T0) for _ in range(40)}
    workers = [Outbox(durable.open(), sealer) for _ in range(4)]
    claimed: list[int] = []
    lock = threading.Lock()

    def claim(i: int) -> None:
        while ids := workers[i].claim_due(T0, limit=3):
            with lock:
                claimed.extend(ids)

    _run_threads(len(workers), claim)
    assert sorted(claimed) == sorted(wanted)


# --- embedded directory ----------------------------------------------------------------------

def _directory(db: Database) -> SqliteDirectory:
    directory = SqliteDirectory(db)
    directory.put_comune(Comune(code="H501", name="Roma", convenzione=Convenzione(
        valid_from=date(2020, 1, 1), valid_until=date(2035, 12, 31))))
    return directory


def test_directory_grant_extend_and_revoke(durable: Backend) -> None:
    directory = _directory(durable.open())
    now = T0
    grant = directory.grant(CF, "H501", ("isee.acquisizione",), by="op1", reason="delibera 1",
                            now=now)
    assert grant.abilitazioni == ("isee.acquisizione",)
    grant = directory.grant(CF, "H501", ("variazioni_anagrafiche", "isee.acquisizione"),
                            by="op2", reason="delibera 2", now=now)
    assert grant.abilitazioni == ("isee.acquisizione", "variazioni_anagrafiche")
    assert grant.granted_by == "op2"
    assert [g.fiscal_code for g in directory.operators("H501")] == [CF]
    left = directory.revoke(CF, "H501", ("isee.acquisizione",), by="op3", reason="fine",
                            now=now)
    assert left is not None and left.abilitazioni == ("variazioni_anagrafiche",)
    assert directory.revoke(CF, "H501", None, by="op3", reason="fine", now=now) is None
    assert directory.facts(CF).operator == ()


def test_directory_refuses_the_second_half_of_an_exclusive_pair(durable: Backend) -> None:
    db = durable.open()
    directory = _directory(db)
    directory.grant(CF, "H501", ("isee.consultazione",), by="op1", reason="r", now=T0)
    with pytest.raises(DirectoryError, match="exclude each other"):
        directory.grant(CF, "H501", ("isee.acquisizione",), by="op1", reason="r", now=T0)
    # Not even a hand-written INSERT gets past the schema.
    with pytest.raises(Exception, match="exclusive abilitazioni"), db.transaction() as c:
        c.execute("INSERT INTO dir_operator (cf, comune, service) VALUES (?,?,?)",
                  (CF, "H501", "isee.acquisizione"))
    assert directory.facts(CF).operator[0][0].abilitazioni == ("isee.consultazione",)
