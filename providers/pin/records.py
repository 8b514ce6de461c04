"""The PIN lifecycle's own tables: practices, activation halves, conversions, practice events.

* ``pin_practice``: one per request, renewal, recovery or reissue. Holds the residence
  address on record (the letter goes there, never to an address typed later), the
  channel of the first half, and the health card (tessera sanitaria) as a salted digest
  plus its expiry, which activation must match.
* ``pin_half``: for a ``pending`` initial PIN, the argon2id hash of its *first* half, so
  activation can check the half that came by SMS/email/PEC. Deleted at activation.
* ``pin_conversion``: requests to turn an ordinario PIN into dispositivo, with the two
  uploaded files (random names under the data folder) and the operator's decision.
* ``pin_event``: the practice history the back office reads (who, what, why, when),
  written in the same transaction as the change; the audit trail keeps the legal record.

Functions take an open connection so a caller can combine them with credential changes
and outbox rows in one transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import CheckConstraint, Column, ForeignKey, Identity, Index, Table, Text, text

from broker.store.base import Connection, Row
from broker.store.schema import ID, implicit_rowid
from providers.pin.schema import PIN

PRACTICE = Table(
    "pin_practice", PIN,
    Column("practice_number", Text, primary_key=True),
    Column("fiscal_code", Text, nullable=False),
    Column("kind", Text, CheckConstraint("kind IN ('request', 'renewal', 'recovery', 'reissue')"),
           nullable=False),
    Column("first_half_channel", Text,
           CheckConstraint("first_half_channel IN ('sms', 'email', 'pec')"), nullable=False),
    Column("address", Text, nullable=False),
    Column("health_card_digest", Text),
    Column("health_card_expiry", Text),
    Column("created_at", Text, nullable=False),
    implicit_rowid(),  # ``latest_practice`` breaks a tie of created_at by insertion order
)
Index("pin_practice_person", PRACTICE.c.fiscal_code)
HALF = Table(
    "pin_half", PIN,
    Column("credential_id", ID, ForeignKey("pin_credential.id"), primary_key=True,
           autoincrement=False),
    Column("first_half_hash", Text, CheckConstraint("first_half_hash LIKE '$argon2id$%'"),
           nullable=False),
)
CONVERSION = Table(
    "pin_conversion", PIN,
    Column("id", ID, Identity(), primary_key=True),
    Column("fiscal_code", Text, nullable=False),
    Column("practice_number", Text),
    Column("status", Text, CheckConstraint("status IN ('pending', 'approved', 'rejected')"),
           nullable=False),
    Column("form_file", Text, nullable=False),
    Column("form_type", Text, nullable=False),
    Column("document_file", Text, nullable=False),
    Column("document_type", Text, nullable=False),
    Column("submitted_at", Text, nullable=False),
    Column("decided_at", Text),
    Column("operator", Text),
    Column("reason", Text),
    sqlite_autoincrement=True,
)
Index("pin_conversion_one_pending", CONVERSION.c.fiscal_code, unique=True,
      sqlite_where=text("status = 'pending'"), postgresql_where=text("status = 'pending'"))
EVENT = Table(
    "pin_event", PIN,
    Column("id", ID, Identity(), primary_key=True),
    Column("fiscal_code", Text, nullable=False),
    Column("practice_number", Text),
    Column("at", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("reason", Text),
    sqlite_autoincrement=True,
)
Index("pin_event_person", EVENT.c.fiscal_code)
TABLES = (PRACTICE, HALF, CONVERSION, EVENT)


def ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Address:
    """A postal address on record: what the letter's window shows."""

    name: str
    street: str
    postal_code: str
    city: str
    country: str

    def lines(self) -> tuple[str, ...]:
        return (self.name, self.street, f"{self.postal_code} {self.city}".strip(),
                self.country.upper())

    def to_json(self) -> str:
        return json.dumps(self.__dict__, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Address:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class Practice:
    practice_number: str
    fiscal_code: str
    kind: str
    first_half_channel: str
    address: Address
    health_card_digest: str | None
    health_card_expiry: date | None
    created_at: datetime

    def public(self) -> dict[str, Any]:
        return {"practice_number": self.practice_number, "kind": self.kind,
                "first_half_channel": self.first_half_channel,
                "created_at": self.created_at.isoformat()}


@dataclass(frozen=True)
class Conversion:
    id: int
    fiscal_code: str
    practice_number: str | None
    status: str
    form_file: str
    form_type: str
    document_file: str
    document_type: str
    submitted_at: datetime
    decided_at: datetime | None
    operator: str | None
    reason: str | None

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "fiscal_code": self.fiscal_code,
                "practice_number": self.practice_number, "status": self.status,
                "form_type": self.form_type, "document_type": self.document_type,
                "submitted_at": self.submitted_at.isoformat(),
                "decided_at": self.decided_at.isoformat() if self.decided_at else None,
                "operator": self.operator, "reason": self.reason}


def health_card_digest(number: str, salt: str | None = None) -> str:
    """``salt$sha256(salt|number)``: the number is checked, not kept."""
    salt = salt or secrets.token_hex(8)
    digest = hashlib.sha256(f"{salt}|{number}".encode()).hexdigest()
    return f"{salt}${digest}"


def health_card_matches(stored: str | None, number: str) -> bool:
    if not stored or "$" not in stored:
        return False
    salt = stored.split("$", 1)[0]
    return hmac.compare_digest(stored.encode(), health_card_digest(number, salt).encode())


def insert_practice(c: Connection, p: Practice) -> None:
    c.execute("INSERT INTO pin_practice(practice_number, fiscal_code, kind, first_half_channel,"
              " address, health_card_digest, health_card_expiry, created_at)"
              " VALUES (?,?,?,?,?,?,?,?)",
              (p.practice_number, p.fiscal_code, p.kind, p.first_half_channel,
               p.address.to_json(), p.health_card_digest,
               p.health_card_expiry.isoformat() if p.health_card_expiry else None,
               ts(p.created_at)))


def _practice(row: Row) -> Practice:
    expiry = row["health_card_expiry"]
    return Practice(row["practice_number"], row["fiscal_code"], row["kind"],
                    row["first_half_channel"], Address.from_json(row["address"]),
                    row["health_card_digest"], date.fromisoformat(expiry) if expiry else None,
                    datetime.fromisoformat(row["created_at"]))


def get_practice(c: Connection, practice_number: str) -> Practice | None:
    row = c.execute("SELECT * FROM pin_practice WHERE practice_number = ?",
                    (practice_number,)).fetchone()
    return _practice(row) if row else None


def latest_practice(c: Connection, fiscal_code: str) -> Practice | None:
    row = c.execute("SELECT * FROM pin_practice WHERE fiscal_code = ?"
                    " ORDER BY created_at DESC, rowid DESC LIMIT 1", (fiscal_code,)).fetchone()
    return _practice(row) if row else None


def practices(c: Connection, fiscal_code: str) -> list[Practice]:
    return [_practice(r) for r in c.execute(
        "SELECT * FROM pin_practice WHERE fiscal_code = ? ORDER BY created_at, rowid",
        (fiscal_code,))]


def set_half(c: Connection, credential_id: int, half_hash: str) -> None:
    c.execute("INSERT INTO pin_half(credential_id, first_half_hash) VALUES (?, ?)"
              " ON CONFLICT(credential_id) DO UPDATE"
              " SET first_half_hash = excluded.first_half_hash",
              (credential_id, half_hash))


def get_half(c: Connection, credential_id: int) -> str | None:
    row = c.execute("SELECT first_half_hash FROM pin_half WHERE credential_id = ?",
                    (credential_id,)).fetchone()
    return row[0] if row else None


def drop_half(c: Connection, credential_id: int) -> None:
    c.execute("DELETE FROM pin_half WHERE credential_id = ?", (credential_id,))


def add_event(c: Connection, fiscal_code: str, practice_number: str | None,
              at: datetime, kind: str, actor: str, reason: str | None = None) -> None:
    c.execute("INSERT INTO pin_event(fiscal_code, practice_number, at, kind, actor, reason)"
              " VALUES (?,?,?,?,?,?)", (fiscal_code, practice_number, ts(at), kind, actor, reason))


def events(c: Connection, fiscal_code: str) -> list[dict[str, Any]]:
    return [{"at": r["at"], "kind": r["kind"], "practice_number": r["practice_number"],
             "actor": r["actor"], "reason": r["reason"]} for r in c.execute(
        "SELECT * FROM pin_event WHERE fiscal_code = ? ORDER BY id", (fiscal_code,))]


def insert_conversion(c: Connection, fiscal_code: str, practice_number: str | None,
                      form: tuple[str, str], document: tuple[str, str], now: datetime) -> int:
    cur = c.execute(
        "INSERT INTO pin_conversion(fiscal_code, practice_number, status, form_file, form_type,"
        " document_file, document_type, submitted_at) VALUES (?,?,'pending',?,?,?,?,?)"
        " RETURNING id",
        (fiscal_code, practice_number, form[0], form[1], document[0], document[1], ts(now)))
    row = cur.fetchone()
    assert row is not None  # RETURNING of one inserted row
    return int(row[0])


def _conversion(row: Row) -> Conversion:
    decided = row["decided_at"]
    return Conversion(row["id"], row["fiscal_code"], row["practice_number"], row["status"],
                      row["form_file"], row["form_type"], row["document_file"],
                      row["document_type"], datetime.fromisoformat(row["submitted_at"]),
                      datetime.fromisoformat(decided) if decided else None, row["operator"],
                      row["reason"])


def get_conversion(c: Connection, conversion_id: int) -> Conversion | None:
    row = c.execute("SELECT * FROM pin_conversion WHERE id = ?", (conversion_id,)).fetchone()
    return _conversion(row) if row else None


def conversions(c: Connection, *, fiscal_code: str | None = None,
                status: str | None = None) -> list[Conversion]:
    sql, params = "SELECT * FROM pin_conversion WHERE 1=1", []
    if fiscal_code:
        sql += " AND fiscal_code = ?"
        params.append(fiscal_code)
    if status:
        sql += " AND status = ?"
        params.append(status)
    return [_conversion(r) for r in c.execute(sql + " ORDER BY id", params)]


def decide_conversion(c: Connection, conversion_id: int, status: str, now: datetime,
                      operator: str, reason: str) -> bool:
    cur = c.execute("UPDATE pin_conversion SET status = ?, decided_at = ?, operator = ?,"
                    " reason = ? WHERE id = ? AND status = 'pending'",
                    (status, ts(now), operator, reason, conversion_id))
    return cur.rowcount == 1
