"""The outbox table: enqueue inside the caller's transaction, claim due rows, record outcomes.

Delivery is at-least-once: a worker claims due rows by pushing their ``next_attempt_at``
forward by a lease (so a second worker, or a second process, leaves them alone), then
records success or schedules the next try with exponential backoff. All times come from
the injected clock, so tests move time instead of sleeping.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    Identity,
    Index,
    Integer,
    LargeBinary,
    Table,
    Text,
    text,
)

from broker.outbox.model import NewMessage, OutboxRecord, Status
from broker.outbox.sealing import Sealer
from broker.store.base import Connection, Database, Row, serialize
from broker.store.schema import BROKER, ID

OUTBOX = Table(
    "outbox", BROKER,
    Column("id", ID, Identity(), primary_key=True),
    Column("channel", Text, CheckConstraint("channel IN ('email', 'pec', 'sms', 'letter')"),
           nullable=False),
    Column("recipient", Text, nullable=False),
    Column("template", Text, nullable=False),
    Column("params", Text, nullable=False),
    Column("sealed", LargeBinary),  # the message's secrets, encrypted until delivered
    Column("fiscal_code", Text),
    Column("reference", Text),
    Column("status", Text, CheckConstraint("status IN ('pending', 'sent', 'failed')"),
           nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", Text, nullable=False),
    Column("last_error", Text),
    Column("created_at", Text, nullable=False),
    Column("sent_at", Text),
    sqlite_autoincrement=True,  # AUTOINCREMENT, as ever: an id is never handed out twice
)
Index("outbox_due", OUTBOX.c.status, OUTBOX.c.next_attempt_at)  # what ``claim`` scans
Index("outbox_person", OUTBOX.c.fiscal_code)
Index("outbox_reference", OUTBOX.c.reference)

LEASE = timedelta(minutes=5)


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def aad(message_id: int) -> str:
    return f"varco-outbox:{message_id}"


class Outbox:
    """Repository of outgoing messages on a ``Database``."""

    def __init__(self, db: Database, sealer: Sealer):
        self.db = db
        self.sealer = sealer
        db.create_tables((OUTBOX,))

    def enqueue(self, conn: Connection, message: NewMessage, now: datetime) -> int:
        """Write ``message`` with the caller's open transaction ``conn``; returns its id.

        The caller's state change and this row commit or roll back together.
        """
        cur = conn.execute(
            "INSERT INTO outbox(channel, recipient, template, params, fiscal_code, reference,"
            " status, next_attempt_at, created_at) VALUES (?,?,?,?,?,?,'pending',?,?)"
            " RETURNING id",
            (message.channel.value, message.recipient, message.template,
             json.dumps(message.params, sort_keys=True, ensure_ascii=False),
             message.fiscal_code, message.reference, _ts(now), _ts(now)))
        row = cur.fetchone()
        assert row is not None  # RETURNING of one inserted row
        message_id = int(row[0])
        if message.secrets:
            conn.execute("UPDATE outbox SET sealed = ? WHERE id = ?",
                         (self.sealer.seal(message.secrets, aad(message_id)), message_id))
        return message_id

    def claim_due(self, now: datetime, limit: int = 20) -> list[int]:
        """Ids of pending messages due at ``now``, leased to this caller."""
        # A read first: an idle outbox never takes the writer lock.
        if not list(self.db.query("SELECT 1 FROM outbox WHERE status = 'pending'"
                                  " AND next_attempt_at <= ? LIMIT 1", (_ts(now),))):
            return []
        with self.db.transaction() as c:
            serialize(c, "outbox.claim")  # one claimer at a time, in any process
            rows = c.execute("SELECT id FROM outbox WHERE status = 'pending'"
                             " AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
                             (_ts(now), limit)).fetchall()
            ids = [int(r[0]) for r in rows]
            for message_id in ids:
                c.execute("UPDATE outbox SET next_attempt_at = ? WHERE id = ?",
                          (_ts(now + LEASE), message_id))
        return ids

    def load(self, message_id: int) -> tuple[OutboxRecord, dict[str, Any], dict[str, str]]:
        """The record, its params, and its opened secrets (in memory only)."""
        row = next(self.db.query("SELECT * FROM outbox WHERE id = ?", (message_id,)))
        secrets = self.sealer.open(row["sealed"], aad(message_id)) if row["sealed"] else {}
        return _record(row), json.loads(row["params"]), secrets

    def mark_sent(self, message_id: int, now: datetime) -> None:
        """Delivered: the sealed secrets are wiped, the row stays as the delivery record."""
        with self.db.transaction() as c:
            c.execute("UPDATE outbox SET status = 'sent', sent_at = ?, sealed = NULL,"
                      " attempts = attempts + 1, last_error = NULL WHERE id = ?",
                      (_ts(now), message_id))

    def mark_failed(self, message_id: int, now: datetime, error: str, *, max_attempts: int,
                    base: int, cap: int) -> Status:
        """One failed attempt: retry after ``base * 2**(n-1)`` seconds (at most ``cap``)."""
        with self.db.transaction() as c:
            serialize(c, f"outbox.{message_id}")
            row = c.execute("SELECT attempts FROM outbox WHERE id = ?", (message_id,)).fetchone()
            assert row is not None  # a message this worker claimed
            attempts = int(row[0]) + 1
            status = Status.FAILED if attempts >= max_attempts else Status.PENDING
            delay = min(cap, base * 2 ** (attempts - 1))
            c.execute("UPDATE outbox SET attempts = ?, status = ?, last_error = ?,"
                      " next_attempt_at = ? WHERE id = ?",
                      (attempts, status.value, error[:300], _ts(now + timedelta(seconds=delay)),
                       message_id))
        return status

    def retry(self, message_id: int, now: datetime) -> bool:
        """Back office: a failed (or waiting) message is due again now. False if unknown/sent."""
        with self.db.transaction() as c:
            cur = c.execute("UPDATE outbox SET status = 'pending', next_attempt_at = ?"
                            " WHERE id = ? AND status IN ('pending', 'failed')",
                            (_ts(now), message_id))
            return cur.rowcount == 1

    def list(self, *, status: Status | None = None, fiscal_code: str | None = None,
             reference: str | None = None, limit: int = 100) -> list[OutboxRecord]:
        sql, params = "SELECT * FROM outbox WHERE 1=1", []
        for column, value in (("status", status.value if status else None),
                              ("fiscal_code", fiscal_code), ("reference", reference)):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        sql += " ORDER BY id DESC LIMIT ?"
        return [_record(r) for r in self.db.query(sql, (*params, limit))]

    def counts(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.db.query(
            "SELECT status, COUNT(*) FROM outbox GROUP BY status")}


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _record(row: Row) -> OutboxRecord:
    from broker.outbox.model import Channel

    return OutboxRecord(
        id=row["id"], channel=Channel(row["channel"]), recipient=row["recipient"],
        template=row["template"], fiscal_code=row["fiscal_code"], reference=row["reference"],
        status=Status(row["status"]), attempts=row["attempts"],
        next_attempt_at=_dt(row["next_attempt_at"]) or datetime.min.replace(tzinfo=UTC),
        last_error=row["last_error"],
        created_at=_dt(row["created_at"]) or datetime.min.replace(tzinfo=UTC),
        sent_at=_dt(row["sent_at"]), sealed=row["sealed"] is not None)
