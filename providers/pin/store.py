"""The PIN credential store: people, their PIN credentials, and the lockout counters, in SQL.

Three tables, so the PIN lifecycle (issue 6) grows into them without a migration of meaning:

* ``pin_person``: who holds a PIN, with the data the login hands to the mapping
  (names, contacts, residence, Italian document). One row per codice fiscale.
* ``pin_credential``: every PIN ever issued, never deleted (history). At most one
  ``active`` web-login credential (``initial16`` or ``standard8``) per codice fiscale, and
  at most one active ``telephone`` PIN, enforced by a partial unique index. Replacing a
  PIN marks the old row ``replaced`` and inserts a new one in the same transaction.
  ``practice_number`` ties a credential to the request that produced it.
* ``pin_attempts``: consecutive failures and the lock, keyed by the codice fiscale as
  typed, *whether or not a credential exists*, so an unknown codice fiscale locks exactly
  like a real one and the lockout does not reveal who holds a PIN.

Only argon2id hashes are stored, never a PIN. Times are UTC ISO 8601 text. Every method
is synchronous (SQLite); web code calls them from the thread pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Literal

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Table,
    Text,
    text,
)

from broker.model import Privilege
from broker.store.base import Connection, Database, Row, serialize
from broker.store.schema import ID, Generated
from providers.pin.schema import PIN

PERSON = Table(
    "pin_person", PIN,
    Column("fiscal_code", Text, primary_key=True),
    Column("given_name", Text),
    Column("family_name", Text),
    Column("email", Text),
    Column("mobile_phone", Text),
    Column("pec", Text),
    Column("residence", Text, CheckConstraint("residence IN ('italy', 'abroad')")),
    Column("italian_document", Integer, CheckConstraint("italian_document IN (0, 1)"),
           nullable=False, server_default=text("0")),
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
)
CREDENTIAL = Table(
    "pin_credential", PIN,
    Column("id", ID, Identity(), primary_key=True),
    Column("fiscal_code", Text, ForeignKey(PERSON.c.fiscal_code), nullable=False),
    Column("kind", Text, CheckConstraint("kind IN ('initial16', 'standard8', 'telephone')"),
           nullable=False),
    # What the one-active-PIN index is per: web logins (initial16, standard8) or telephone.
    Column("channel", Text,
           Generated("CASE kind WHEN 'telephone' THEN 'telephone' ELSE 'web' END"),
           nullable=False),
    Column("privilege", Text, CheckConstraint("privilege IN ('ordinario', 'dispositivo')"),
           nullable=False),
    Column("pin_hash", Text, CheckConstraint("pin_hash LIKE '$argon2id$%'"), nullable=False),
    Column("status", Text,
           CheckConstraint("status IN ('pending', 'active', 'replaced', 'revoked')"),
           nullable=False),
    Column("practice_number", Text),
    Column("issued_at", Text, nullable=False),
    Column("changed_at", Text, nullable=False),
    Column("expires_at", Text, nullable=False),
    Column("ended_at", Text),
    Column("end_reason", Text),
    sqlite_autoincrement=True,  # AUTOINCREMENT, as ever: an id is never handed out twice
)
Index("pin_credential_one_active", CREDENTIAL.c.fiscal_code, CREDENTIAL.c.channel,
      unique=True, sqlite_where=text("status = 'active'"),
      postgresql_where=text("status = 'active'"))
Index("pin_credential_practice", CREDENTIAL.c.practice_number)
ATTEMPTS = Table(
    "pin_attempts", PIN,
    Column("fiscal_code", Text, primary_key=True),
    Column("failed_count", Integer, nullable=False, server_default=text("0")),
    Column("locked_until", Text),
    Column("updated_at", Text, nullable=False),
    sqlite_with_rowid=False,  # WITHOUT ROWID, as ever: the row lives in its key's b-tree
)
TABLES = (PERSON, CREDENTIAL, ATTEMPTS)


class PinKind(StrEnum):
    """The shape of a PIN: the 16-character initial one, the 8-character one, a phone one."""

    INITIAL16 = "initial16"
    STANDARD8 = "standard8"
    TELEPHONE = "telephone"


class PinStatus(StrEnum):
    """``pending``: issued, not yet activated (issue 6); only ``active`` logs in."""

    PENDING = "pending"
    ACTIVE = "active"
    REPLACED = "replaced"
    REVOKED = "revoked"


class PinStateError(Exception):
    """The credential is not in the state the operation needs (a race or a stale page)."""


@dataclass(frozen=True)
class PinPerson:
    """A PIN holder as the institute knows them; what the login reports as attributes."""

    fiscal_code: str
    given_name: str | None = None
    family_name: str | None = None
    email: str | None = None
    mobile_phone: str | None = None
    pec: str | None = None
    residence: Literal["italy", "abroad"] | None = None
    italian_document: bool = False


@dataclass(frozen=True)
class PinCredential:
    """One issued PIN (its hash only)."""

    id: int
    fiscal_code: str
    kind: PinKind
    privilege: Privilege
    pin_hash: str
    status: PinStatus
    practice_number: str | None
    issued_at: datetime
    changed_at: datetime
    expires_at: datetime

    def expired(self, now: datetime) -> bool:
        """Six months have passed (``expires_at <= now``): refused even with the right PIN."""
        return self.expires_at <= now


@dataclass(frozen=True)
class PinAccount:
    """A person with their active web-login credential: what ``PinStore.get`` returns."""

    person: PinPerson
    credential: PinCredential


@dataclass(frozen=True)
class Lockout:
    """The failure counter of one codice fiscale after an attempt was counted (or refused).

    ``refused`` means the login was already locked: the attempt was not counted and the
    PIN must not be checked. ``locked_until`` is set once ``failed_count`` reached the limit.
    """

    failed_count: int
    locked_until: datetime | None
    refused: bool = False

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until


def _ts(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive datetime: the clock must give aware UTC times")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class PinStore:
    """Repository of PIN holders, credentials and lockout counters on a ``Database``."""

    def __init__(self, db: Database, *, max_failures: int = 10, lockout_seconds: int = 300):
        self.db = db
        self.max_failures = max_failures
        self.lockout = timedelta(seconds=lockout_seconds)
        db.create_tables(TABLES)

    # -- reading ---------------------------------------------------------------------

    def get(self, fiscal_code: str) -> PinAccount | None:
        """The person and their active web-login PIN, or None (unknown, revoked, pending)."""
        rows = list(self.db.query(
            "SELECT p.*, c.id, c.kind, c.privilege, c.pin_hash, c.status, c.practice_number,"
            " c.issued_at, c.changed_at, c.expires_at"
            " FROM pin_person p JOIN pin_credential c ON c.fiscal_code = p.fiscal_code"
            " WHERE p.fiscal_code = ? AND c.channel = 'web' AND c.status = 'active'",
            (fiscal_code,)))
        if not rows:
            return None
        row = rows[0]
        return PinAccount(_person(row), _credential(row))

    def get_person(self, fiscal_code: str) -> PinPerson | None:
        rows = list(self.db.query("SELECT * FROM pin_person WHERE fiscal_code = ?",
                                  (fiscal_code,)))
        return _person(rows[0]) if rows else None

    def history(self, fiscal_code: str) -> list[PinCredential]:
        """Every credential ever issued to this person, oldest first."""
        return [_credential(r) for r in self.db.query(
            "SELECT * FROM pin_credential WHERE fiscal_code = ? ORDER BY id", (fiscal_code,))]

    def attempts(self, fiscal_code: str) -> Lockout:
        """The current counter, without counting anything."""
        rows = list(self.db.query(
            "SELECT failed_count, locked_until FROM pin_attempts WHERE fiscal_code = ?",
            (fiscal_code,)))
        if not rows:
            return Lockout(0, None)
        return Lockout(rows[0]["failed_count"], _dt(rows[0]["locked_until"]))

    # -- writing ---------------------------------------------------------------------

    def upsert_person(self, person: PinPerson, now: datetime) -> None:
        """Create or update the person's data (names, contacts, residence)."""
        with self.db.transaction() as c:
            _upsert_person(c, person, now)

    def create(self, person: PinPerson, *, pin_hash: str, kind: PinKind, privilege: Privilege,
               now: datetime, validity: timedelta, practice_number: str | None = None,
               status: PinStatus = PinStatus.ACTIVE) -> PinCredential:
        """Issue a credential: store the person, end any active one of the same channel.

        One transaction: the old PIN stops working exactly when the new one starts.
        """
        channel = "telephone" if kind is PinKind.TELEPHONE else "web"
        with self.db.transaction() as c:
            serialize(c, f"pin.{person.fiscal_code}")
            _upsert_person(c, person, now)
            c.execute("UPDATE pin_credential SET status = 'replaced', ended_at = ?,"
                      " end_reason = 'reissued' WHERE fiscal_code = ? AND channel = ?"
                      " AND status IN ('active', 'pending')",
                      (_ts(now), person.fiscal_code, channel))
            return _insert_credential(c, person.fiscal_code, kind, privilege, pin_hash, status,
                                      practice_number, now, now + validity)

    def record_failure(self, fiscal_code: str, now: datetime) -> Lockout:
        """Count one attempt against ``fiscal_code``, atomically; lock at the limit.

        The login calls this *before* checking the PIN and ``record_success`` when it was
        right: an attempt is a failure until proven otherwise, so parallel guesses cannot
        exceed the limit. If the lock is in force, nothing is counted and ``refused`` is
        True. A lock that has run out starts a fresh count. Works the same for a
        codice fiscale that holds no PIN.
        """
        with self.db.transaction() as c:
            serialize(c, f"pin_attempts.{fiscal_code}")  # parallel guesses take turns
            row = c.execute("SELECT failed_count, locked_until FROM pin_attempts"
                            " WHERE fiscal_code = ?", (fiscal_code,)).fetchone()
            count, until = (row[0], _dt(row[1])) if row else (0, None)
            if until is not None and now < until:
                return Lockout(count, until, refused=True)
            if until is not None:  # the lock ran out: ten more tries
                count, until = 0, None
            count += 1
            if count >= self.max_failures:
                until = now + self.lockout
            c.execute("INSERT INTO pin_attempts(fiscal_code, failed_count, locked_until,"
                      " updated_at) VALUES (?, ?, ?, ?) ON CONFLICT(fiscal_code) DO UPDATE SET"
                      " failed_count = excluded.failed_count,"
                      " locked_until = excluded.locked_until, updated_at = excluded.updated_at",
                      (fiscal_code, count, _ts(until) if until else None, _ts(now)))
            return Lockout(count, until)

    def record_success(self, fiscal_code: str) -> None:
        """The right PIN was given: the consecutive-failure count starts again from zero."""
        with self.db.transaction() as c:
            c.execute("DELETE FROM pin_attempts WHERE fiscal_code = ?", (fiscal_code,))

    def replace_initial(self, fiscal_code: str, new_hash: str, now: datetime, *,
                        validity: timedelta, expected_id: int | None = None) -> PinCredential:
        """First login: the active 16-character initial PIN becomes an 8-character one.

        The new PIN keeps the privilege and practice number and is valid ``validity`` from
        ``now``. ``expected_id`` is the credential the citizen proved: if it is no longer
        the active initial PIN (a second tab, a revocation), ``PinStateError``.
        """
        with self.db.transaction() as c:
            serialize(c, f"pin.{fiscal_code}")
            row = c.execute("SELECT * FROM pin_credential WHERE fiscal_code = ?"
                            " AND channel = 'web' AND status = 'active'",
                            (fiscal_code,)).fetchone()
            if row is None or row["kind"] != PinKind.INITIAL16 or (
                    expected_id is not None and row["id"] != expected_id):
                raise PinStateError("no active initial PIN to replace")
            c.execute("UPDATE pin_credential SET status = 'replaced', ended_at = ?,"
                      " end_reason = 'first_login' WHERE id = ?", (_ts(now), row["id"]))
            return _insert_credential(c, fiscal_code, PinKind.STANDARD8,
                                      Privilege(row["privilege"]), new_hash, PinStatus.ACTIVE,
                                      row["practice_number"], now, now + validity)

    def update_hash(self, credential_id: int, expected_hash: str, new_hash: str) -> bool:
        """Re-hash with new argon2 parameters after a successful login; False if it changed."""
        with self.db.transaction() as c:
            cur = c.execute("UPDATE pin_credential SET pin_hash = ? WHERE id = ?"
                            " AND pin_hash = ? AND status = 'active'",
                            (new_hash, credential_id, expected_hash))
            return cur.rowcount == 1

    def set_privilege(self, fiscal_code: str, privilege: Privilege, now: datetime) -> None:
        """Conversion ordinario -> dispositivo (or back) of the active web PIN."""
        with self.db.transaction() as c:
            cur = c.execute("UPDATE pin_credential SET privilege = ?, changed_at = ?"
                            " WHERE fiscal_code = ? AND channel = 'web' AND status = 'active'",
                            (privilege.value, _ts(now), fiscal_code))
            if cur.rowcount != 1:
                raise PinStateError("no active PIN")

    def revoke(self, fiscal_code: str, now: datetime, reason: str,
               kind: Literal["web", "telephone"] = "web") -> bool:
        """End the active (or pending) PIN of that channel; False when there was none."""
        with self.db.transaction() as c:
            cur = c.execute("UPDATE pin_credential SET status = 'revoked', ended_at = ?,"
                            " end_reason = ? WHERE fiscal_code = ? AND channel = ?"
                            " AND status IN ('active', 'pending')",
                            (_ts(now), reason, fiscal_code, kind))
            return cur.rowcount > 0


    # -- inside a caller's transaction (the lifecycle adds outbox rows to the same one) --

    def issue_in(self, c: Connection, person: PinPerson | None, fiscal_code: str, *,
                 pin_hash: str, kind: PinKind, privilege: Privilege, status: PinStatus,
                 practice_number: str | None, now: datetime, validity: timedelta,
                 end_reason: str) -> PinCredential:
        """Like ``create`` on the open connection ``c``; ``person`` None keeps the record.

        With ``person`` None a bare person row is created only if none exists (a telephone
        PIN for someone who never held a web PIN): the residence and contacts of an
        existing PIN holder are never overwritten by a side channel.
        """
        channel = "telephone" if kind is PinKind.TELEPHONE else "web"
        serialize(c, f"pin.{fiscal_code}")
        if person is not None:
            _upsert_person(c, person, now)
        else:
            c.execute("INSERT INTO pin_person(fiscal_code, created_at, updated_at)"
                      " VALUES (?, ?, ?) ON CONFLICT(fiscal_code) DO NOTHING",
                      (fiscal_code, _ts(now), _ts(now)))
        c.execute("UPDATE pin_credential SET status = 'replaced', ended_at = ?,"
                  " end_reason = ? WHERE fiscal_code = ? AND channel = ?"
                  " AND status IN ('active', 'pending')",
                  (_ts(now), end_reason, fiscal_code, channel))
        return _insert_credential(c, fiscal_code, kind, privilege, pin_hash, status,
                                  practice_number, now, now + validity)

    def current_in(self, c: Connection, fiscal_code: str,
                   channel: Literal["web", "telephone"] = "web") -> PinCredential | None:
        """The active or pending credential of that channel (at most one of them exists).

        The lifecycle reads this before changing it: the person's PIN changes take turns
        from here to the end of the caller's transaction (see ``serialize``).
        """
        serialize(c, f"pin.{fiscal_code}")
        row = c.execute("SELECT * FROM pin_credential WHERE fiscal_code = ? AND channel = ?"
                        " AND status IN ('active', 'pending') ORDER BY id DESC LIMIT 1",
                        (fiscal_code, channel)).fetchone()
        return _credential(row) if row else None

    def activate_in(self, c: Connection, credential_id: int, now: datetime) -> bool:
        """A pending initial PIN becomes active (activation with the first half)."""
        cur = c.execute("UPDATE pin_credential SET status = 'active', changed_at = ?"
                        " WHERE id = ? AND status = 'pending'", (_ts(now), credential_id))
        return cur.rowcount == 1

    def end_in(self, c: Connection, fiscal_code: str, now: datetime, reason: str,
               channel: Literal["web", "telephone"] = "web") -> int:
        """Revoke the active or pending credential of that channel; how many were ended."""
        cur = c.execute("UPDATE pin_credential SET status = 'revoked', ended_at = ?,"
                        " end_reason = ? WHERE fiscal_code = ? AND channel = ?"
                        " AND status IN ('active', 'pending')",
                        (_ts(now), reason, fiscal_code, channel))
        return cur.rowcount

    def set_privilege_in(self, c: Connection, fiscal_code: str, privilege: Privilege,
                         now: datetime) -> bool:
        """Conversion: the active web PIN's privilege (pending initial PINs included)."""
        cur = c.execute("UPDATE pin_credential SET privilege = ?, changed_at = ?"
                        " WHERE fiscal_code = ? AND channel = 'web'"
                        " AND status IN ('active', 'pending')",
                        (privilege.value, _ts(now), fiscal_code))
        return cur.rowcount >= 1


def _upsert_person(c: Connection, p: PinPerson, now: datetime) -> None:
    c.execute(
        "INSERT INTO pin_person(fiscal_code, given_name, family_name, email, mobile_phone, pec,"
        " residence, italian_document, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(fiscal_code) DO UPDATE SET"
        " given_name = excluded.given_name, family_name = excluded.family_name,"
        " email = excluded.email, mobile_phone = excluded.mobile_phone, pec = excluded.pec,"
        " residence = excluded.residence, italian_document = excluded.italian_document,"
        " updated_at = excluded.updated_at",
        (p.fiscal_code, p.given_name, p.family_name, p.email, p.mobile_phone, p.pec,
         p.residence, int(p.italian_document), _ts(now), _ts(now)))


def _insert_credential(c: Connection, fiscal_code: str, kind: PinKind,
                       privilege: Privilege, pin_hash: str, status: PinStatus,
                       practice_number: str | None, now: datetime,
                       expires_at: datetime) -> PinCredential:
    cur = c.execute(
        "INSERT INTO pin_credential(fiscal_code, kind, privilege, pin_hash, status,"
        " practice_number, issued_at, changed_at, expires_at) VALUES (?,?,?,?,?,?,?,?,?)"
        " RETURNING id",
        (fiscal_code, kind.value, privilege.value, pin_hash, status.value, practice_number,
         _ts(now), _ts(now), _ts(expires_at)))
    row = cur.fetchone()
    assert row is not None  # RETURNING of one inserted row
    return PinCredential(int(row[0]), fiscal_code, kind, privilege, pin_hash, status,
                         practice_number, now, now, expires_at)


def _person(row: Row) -> PinPerson:
    return PinPerson(
        fiscal_code=row["fiscal_code"], given_name=row["given_name"],
        family_name=row["family_name"], email=row["email"], mobile_phone=row["mobile_phone"],
        pec=row["pec"], residence=row["residence"], italian_document=bool(row["italian_document"]))


def _credential(row: Row) -> PinCredential:
    return PinCredential(
        id=row["id"], fiscal_code=row["fiscal_code"], kind=PinKind(row["kind"]),
        privilege=Privilege(row["privilege"]), pin_hash=row["pin_hash"],
        status=PinStatus(row["status"]), practice_number=row["practice_number"],
        issued_at=_dt(row["issued_at"]) or datetime.min.replace(tzinfo=UTC),
        changed_at=_dt(row["changed_at"]) or datetime.min.replace(tzinfo=UTC),
        expires_at=_dt(row["expires_at"]) or datetime.min.replace(tzinfo=UTC))
