"""The outbox against real peers: SMTP (aiosmtpd), an HTTP SMS gateway, PDF letters.

Asserted: what arrives at the peer, what the database keeps (never a secret in clear,
nothing after delivery), and that a channel that is down loses nothing: retries follow
the injected clock with exponential backoff.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from broker.clock import FixedClock
from broker.outbox import Channel, NewMessage, Outbox, OutboxConfig, Rendered, Sealer, Status
from broker.outbox.model import Letter
from broker.outbox.worker import build_worker
from broker.store import SqliteDatabase
from tests.outbox.outbox_sinks import SmsGateway, SmtpSink, body

pytestmark = pytest.mark.integration
HALF = "K7QX3MZP"


def _template(mid: int, channel: Channel, to: str, params: dict[str, Any],
              secrets: dict[str, str]) -> Rendered:
    text = f"Ciao {params['name']}, la prima metà del PIN è {secrets.get('half', '-')}"
    letter = None
    if channel is Channel.LETTER:
        letter = Letter(tuple(to.split("\n")), params["practice"], (text,), secrets.get("half"))
    return Rendered(mid, channel, to, "Il tuo PIN", text, letter)


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def gateway() -> Iterator[SmsGateway]:
    gw = SmsGateway().start()
    yield gw
    gw.stop()


def _setup(tmp_path: Path, smtp: SmtpSink, gateway: SmsGateway, **over: Any):
    clock = FixedClock(datetime(2025, 3, 1, 9, 0, tzinfo=UTC))
    db = SqliteDatabase(tmp_path / "varco.db")
    outbox = Outbox(db, Sealer.from_environment(tmp_path))
    config = OutboxConfig.model_validate({"email": smtp.channel(), "pec": smtp.channel(),
                                          "sms": gateway.channel(), **over})
    worker = build_worker(outbox, config, tmp_path, clock, {"pin": _template})
    return clock, db, outbox, worker


def _enqueue(db: SqliteDatabase, outbox: Outbox, clock: FixedClock, *messages: NewMessage
             ) -> list[int]:
    with db.transaction() as c:
        return [outbox.enqueue(c, m, clock.now()) for m in messages]


def test_email_sms_and_letter_arrive_and_no_half_stays_in_the_database(
        tmp_path: Path, smtp: SmtpSink, gateway: SmsGateway) -> None:
    clock, db, outbox, worker = _setup(tmp_path, smtp, gateway)
    _enqueue(db, outbox, clock,
             NewMessage(Channel.EMAIL, "laura@example.org", "pin", {"name": "Laura"},
                        {"half": HALF}),
             NewMessage(Channel.SMS, "+15550100001", "pin", {"name": "Laura"}, {"half": HALF}),
             NewMessage(Channel.LETTER, "Laura Bianchi\n1 Main St\nBoston MA\nUSA", "pin",
                        {"name": "Laura", "practice": "PIN-2025-0001"}, {"half": HALF}))
    raw = (tmp_path / "varco.db").read_bytes()
    assert HALF.encode() not in raw  # sealed, not in clear, before delivery

    assert worker.run_once() == 3
    [mail] = smtp.wait_for("laura@example.org")
    assert HALF in body(mail) and mail["Subject"] == "Il tuo PIN"
    [sms] = gateway.wait_for("+15550100001")
    assert HALF in sms["text"]
    [pdf] = (tmp_path / "outbox/letters").glob("*.pdf")
    text = PdfReader(pdf).pages[0].extract_text()
    assert "Boston MA" in text and "PIN-2025-0001" in text
    assert HALF in text.replace(" ", "")
    assert oct(pdf.stat().st_mode & 0o777) == "0o600"

    records = outbox.list()
    assert {r.status for r in records} == {Status.SENT}
    assert not any(r.sealed for r in records)  # wiped once delivered
    db.execute_script("VACUUM")
    assert HALF.encode() not in (tmp_path / "varco.db").read_bytes()


def test_a_channel_that_fails_then_recovers_loses_nothing(
        tmp_path: Path, smtp: SmtpSink, gateway: SmsGateway) -> None:
    clock, db, outbox, worker = _setup(tmp_path, smtp, gateway)
    gateway.failing = True
    [mid] = _enqueue(db, outbox, clock, NewMessage(Channel.SMS, "+15550100002", "pin",
                                                   {"name": "G"}, {"half": HALF}))
    assert worker.run_once() == 0
    [rec] = outbox.list()
    assert rec.status is Status.PENDING and rec.attempts == 1 and rec.sealed
    assert rec.next_attempt_at == clock.now() + timedelta(seconds=30)
    assert "503" in (rec.last_error or "")

    clock.advance(seconds=29)
    assert worker.run_once() == 0 and gateway.refused == 1  # not due yet: not even tried
    clock.advance(seconds=1)
    assert worker.run_once() == 0 and gateway.refused == 2
    [rec] = outbox.list()
    assert rec.attempts == 2 and rec.next_attempt_at == clock.now() + timedelta(seconds=60)

    gateway.failing = False
    clock.advance(seconds=60)
    assert worker.run_once() == 1
    [sms] = gateway.to("+15550100002")
    assert HALF in sms["text"] and sms["reference"] == f"varco-outbox-{mid}"
    [rec] = outbox.list()
    assert rec.status is Status.SENT and rec.attempts == 3 and not rec.sealed


def test_smtp_server_down_then_up(tmp_path: Path, smtp: SmtpSink, gateway: SmsGateway) -> None:
    port = smtp.port
    smtp.stop()
    clock, db, outbox, worker = _setup(tmp_path, smtp, gateway)
    _enqueue(db, outbox, clock, NewMessage(Channel.PEC, "laura@pec.example.it", "pin",
                                           {"name": "Laura"}, {"half": HALF}))
    assert worker.run_once() == 0
    smtp.controller = None
    restarted = SmtpSink()
    from aiosmtpd.controller import Controller

    from tests.outbox.outbox_sinks import _Keep

    restarted.port = port
    restarted.controller = Controller(_Keep(restarted), hostname="127.0.0.1", port=port)
    restarted.controller.start()
    try:
        clock.advance(seconds=30)
        assert worker.run_once() == 1
        [mail] = restarted.to("laura@pec.example.it")
        assert HALF in body(mail)
    finally:
        restarted.stop()


def test_gives_up_after_max_attempts_and_the_back_office_can_retry(
        tmp_path: Path, smtp: SmtpSink, gateway: SmsGateway) -> None:
    clock, db, outbox, worker = _setup(tmp_path, smtp, gateway, max_attempts=2,
                                       retry_base_seconds=10)
    gateway.failing = True
    [mid] = _enqueue(db, outbox, clock, NewMessage(Channel.SMS, "+15550100003", "pin",
                                                   {"name": "A"}, {"half": HALF}))
    worker.run_once()
    clock.advance(seconds=10)
    worker.run_once()
    [rec] = outbox.list()
    assert rec.status is Status.FAILED and rec.attempts == 2 and rec.sealed
    clock.advance(days=1)
    assert worker.run_once() == 0  # failed messages are not retried by themselves
    gateway.failing = False
    assert outbox.retry(mid, clock.now())
    assert worker.run_once() == 1
    assert gateway.to("+15550100003")


def test_rolled_back_change_leaves_no_message(tmp_path: Path, smtp: SmtpSink,
                                              gateway: SmsGateway) -> None:
    clock, db, outbox, worker = _setup(tmp_path, smtp, gateway)
    with pytest.raises(RuntimeError), db.transaction() as c:
        outbox.enqueue(c, NewMessage(Channel.EMAIL, "x@example.org", "pin", {"name": "X"}),
                       clock.now())
        raise RuntimeError("the state change failed")
    assert outbox.list() == []
    assert worker.run_once() == 0


def test_a_sealed_payload_moved_to_another_row_does_not_open(
        tmp_path: Path, smtp: SmtpSink, gateway: SmsGateway) -> None:
    clock, db, outbox, worker = _setup(tmp_path, smtp, gateway)
    first, second = _enqueue(
        db, outbox, clock,
        NewMessage(Channel.EMAIL, "a@example.org", "pin", {"name": "A"}, {"half": HALF}),
        NewMessage(Channel.EMAIL, "b@example.org", "pin", {"name": "B"}, {"half": "ZZZZZZZZ"}))
    with db.transaction() as c:  # an attacker with write access copies A's seal onto B
        c.execute("UPDATE outbox SET sealed = (SELECT sealed FROM outbox WHERE id = ?)"
                  " WHERE id = ?", (first, second))
    worker.run_once()
    assert smtp.wait_for("a@example.org")
    assert smtp.to("b@example.org") == []
    rec = next(r for r in outbox.list() if r.id == second)
    assert rec.status is Status.PENDING and "does not open" in (rec.last_error or "")


def test_file_channels_for_the_demo(tmp_path: Path) -> None:
    clock = FixedClock(datetime(2025, 3, 1, 9, 0, tzinfo=UTC))
    db = SqliteDatabase(tmp_path / "varco.db")
    outbox = Outbox(db, Sealer.from_environment(tmp_path))
    worker = build_worker(outbox, OutboxConfig(), tmp_path, clock, {"pin": _template})
    _enqueue(db, outbox, clock,
             NewMessage(Channel.EMAIL, "a@example.org", "pin", {"name": "A"}, {"half": HALF}),
             NewMessage(Channel.SMS, "+15550100004", "pin", {"name": "A"}, {"half": HALF}))
    assert worker.run_once() == 2
    [eml] = (tmp_path / "outbox/email").glob("*.eml")
    [sms] = (tmp_path / "outbox/sms").glob("*.json")
    assert HALF in eml.read_text() and HALF in sms.read_text()


def test_worker_thread_delivers_when_kicked_and_stops(tmp_path: Path, smtp: SmtpSink,
                                                      gateway: SmsGateway) -> None:
    clock, db, outbox, worker = _setup(tmp_path, smtp, gateway, poll_seconds=30)
    worker.start()
    try:
        _enqueue(db, outbox, clock, NewMessage(Channel.EMAIL, "k@example.org", "pin",
                                               {"name": "K"}))
        worker.kick()
        smtp.wait_for("k@example.org", timeout=5)
    finally:
        worker.stop()
    assert worker._thread is None
