"""The PIN's life as the institute runs it: issue, activate, renew, recover, reissue, revoke.

Every operation is one database transaction holding the state change, the practice
history event, the audit entry and the outbox messages it causes, so a crash never
leaves a PIN issued without its halves on their way, or a half sent for a PIN that does
not exist. The 16-character PIN exists in clear only inside ``_issue``: its hash (and
the first half's, for activation) is stored, each half is sealed into its outbox
message, and the variable is dropped. Web pages, the admin API and the CLI all call
this class; it knows nothing of HTTP.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal, get_args

from broker.audit import AuditLog
from broker.clock import Clock
from broker.fiscal_code import mask
from broker.model import Privilege
from broker.outbox import Channel, NewMessage, Outbox
from broker.store.base import Connection
from providers.pin import records
from providers.pin.generate import halves, initial_pin, practice_number
from providers.pin.hashing import PinHasher
from providers.pin.records import Address, Practice
from providers.pin.store import PinCredential, PinKind, PinPerson, PinStatus, PinStore

log = logging.getLogger("varco.providers.pin.lifecycle")

FirstChannel = Literal["sms", "email", "pec"]
FIRST_CHANNELS: tuple[FirstChannel, ...] = get_args(FirstChannel)
_DIGITS = re.compile(r"[^0-9+]")


def _first_channel(stored: str) -> FirstChannel:
    """A practice's stored channel (``pin_practice`` CHECKs it is one of these)."""
    for channel in FIRST_CHANNELS:
        if stored == channel:
            return channel
    raise ValueError(f"unknown first-half channel {stored!r}")


class LifecycleError(Exception):
    """An operation that cannot be done in the current state; ``code`` for the caller."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class NewRequest:
    """A validated PIN request (the web form checks shapes; policy checked eligibility)."""

    person: PinPerson
    address: Address
    first_half_channel: FirstChannel
    health_card_number: str
    health_card_expiry: date


@dataclass(frozen=True)
class Issued:
    practice_number: str
    credential: PinCredential


def normalize_phone(value: str | None) -> str:
    return _DIGITS.sub("", value or "")


def normalize_email(value: str | None) -> str:
    return (value or "").strip().casefold()


def _same(stored: str | None, given: str) -> bool:
    """Constant-time equality of two normalized contacts (SHA-256 first: equal lengths)."""
    a = hashlib.sha256((stored or "\x00").encode()).digest()
    b = hashlib.sha256(given.encode()).digest()
    return hmac.compare_digest(a, b) and bool(stored)


class PinLifecycle:
    """The operations on PINs that change state; each one audited and notified.

    ``audit`` is this class's own ``AuditLog`` on the same database, and it is only ever
    called *inside* one of our transactions: the entry commits with the change, and the
    lock order (database writer, then audit) is always the same.
    """

    def __init__(self, store: PinStore, outbox: Outbox, hasher: PinHasher, clock: Clock,
                 audit: AuditLog, *, validity: timedelta, kick: Callable[[], None]):
        self.store = store
        self.db = store.db
        self.outbox = outbox
        self.hasher = hasher
        self.clock = clock
        self.audit = audit
        self.validity = validity
        self.kick = kick
        self.db.create_tables(records.TABLES)

    # -- issuing -------------------------------------------------------------------------

    def _issue(self, c: Connection, person: PinPerson, *, kind: str,
               address: Address, first: FirstChannel, second: Literal["letter", "email"],
               status: PinStatus, privilege: Privilege, card: tuple[str | None, date | None],
               actor: str, reason: str | None, now: datetime) -> Issued:
        pin = initial_pin()
        first_half, second_half = halves(pin)
        number = practice_number(now.year)
        credential = self.store.issue_in(
            c, person, person.fiscal_code, pin_hash=self.hasher.hash(pin),
            kind=PinKind.INITIAL16, privilege=privilege, status=status,
            practice_number=number, now=now, validity=self.validity, end_reason=kind)
        if status is PinStatus.PENDING:
            records.set_half(c, credential.id, self.hasher.hash(first_half))
        records.insert_practice(c, Practice(number, person.fiscal_code, kind, first, address,
                                            card[0], card[1], now))
        params = {"practice_number": number, "given_name": person.given_name or "",
                  "kind": kind, "second_by": second}
        self.outbox.enqueue(c, NewMessage(
            Channel(first), _recipient(person, first), "pin.first_half", params,
            {"half": first_half}, person.fiscal_code, number), now)
        if second == "letter":
            self.outbox.enqueue(c, NewMessage(
                Channel.LETTER, "\n".join(address.lines()), "pin.letter", params,
                {"half": second_half}, person.fiscal_code, number), now)
        else:
            self.outbox.enqueue(c, NewMessage(
                Channel(_second_email(person)), _recipient(person, _second_email(person)),
                "pin.second_half_email", params, {"half": second_half}, person.fiscal_code,
                number), now)
        records.add_event(c, person.fiscal_code, number, now, f"issued.{kind}", actor, reason)
        self.audit.record(f"pin.issued.{kind}", fiscal_code=person.fiscal_code,
                          practice_number=number, actor=actor, reason=reason,
                          first_half_channel=first, second_half_channel=second,
                          status=status.value, privilege=privilege.value)
        del pin, first_half, second_half
        return Issued(number, credential)

    def request(self, req: NewRequest) -> Issued:
        """A new PIN: pending until activated; first half by the chosen channel, second by post.

        Raises ``LifecycleError('exists')`` when a usable PIN or a pending request exists:
        an unauthenticated form must never replace someone's working PIN.
        """
        now = self.clock.now()
        cf = req.person.fiscal_code
        with self.db.transaction() as c:
            current = self.store.current_in(c, cf)
            if current is not None and not current.expired(now):
                raise LifecycleError("exists")
            issued = self._issue(
                c, req.person, kind="request", address=req.address,
                first=req.first_half_channel, second="letter", status=PinStatus.PENDING,
                privilege=Privilege.ORDINARIO,
                card=(records.health_card_digest(req.health_card_number),
                      req.health_card_expiry), actor="citizen", reason=None, now=now)
        self.kick()
        log.info("pin request for %s: practice issued", mask(cf))
        return issued

    def activate(self, fiscal_code: str, first_half: str, card_number: str,
                 card_expiry: date) -> bool:
        """First half + health card: the pending PIN becomes usable. One argon2id run always.

        The caller has counted the attempt against the lockout; False says nothing about
        which datum was wrong.
        """
        now = self.clock.now()
        with self.db.transaction() as c:
            current = self.store.current_in(c, fiscal_code)
            pending = current if current and current.status is PinStatus.PENDING else None
            stored = records.get_half(c, pending.id) if pending else None
            practice = (records.get_practice(c, pending.practice_number)
                        if pending and pending.practice_number else None)
        ok = self.hasher.verify(stored, first_half.upper())
        card_ok = practice is not None and records.health_card_matches(
            practice.health_card_digest, card_number) and practice.health_card_expiry == \
            card_expiry
        if not (ok and card_ok and pending is not None):
            return False
        with self.db.transaction() as c:
            if not self.store.activate_in(c, pending.id, now):
                return False
            records.drop_half(c, pending.id)
            records.add_event(c, fiscal_code, pending.practice_number, now, "activated",
                              "citizen")
            self.audit.record("pin.activated", fiscal_code=fiscal_code,
                              practice_number=pending.practice_number)
        return True

    def renew(self, fiscal_code: str, *, actor: str = "citizen") -> Issued:
        """After expiry (the citizen proved the expired PIN): a new initial PIN, active,
        halves to the contact and the address on record."""
        return self._reissue_from_record(fiscal_code, kind="renewal", actor=actor, reason=None,
                                         status=PinStatus.ACTIVE, second="letter")

    def recover(self, fiscal_code: str) -> Issued:
        """Ripristino after the recovery code: first half by SMS, second by email."""
        return self._reissue_from_record(fiscal_code, kind="recovery", actor="citizen",
                                         reason=None, status=PinStatus.ACTIVE, second="email",
                                         first="sms")

    def reissue_letter(self, fiscal_code: str, practice: str | None, *, actor: str,
                       reason: str | None) -> Issued:
        """Card not received: the halves cannot be printed again (they were never kept), so a
        new initial PIN replaces the undelivered one, same status, on the same record.

        ``practice`` (the citizen's duplicate form) must be the current PIN's practice.
        Raises ``LifecycleError('no_initial_pin')`` when there is no initial PIN to replace.
        """
        with self.db.transaction() as c:
            current = self.store.current_in(c, fiscal_code)
        if (current is None or current.kind is not PinKind.INITIAL16
                or (practice is not None and not hmac.compare_digest(
                    (current.practice_number or "").encode(), practice.encode()))):
            raise LifecycleError("no_initial_pin")
        return self._reissue_from_record(fiscal_code, kind="reissue", actor=actor,
                                         reason=reason, status=current.status,
                                         second="letter")

    def _reissue_from_record(self, fiscal_code: str, *, kind: str, actor: str,
                             reason: str | None, status: PinStatus,
                             second: Literal["letter", "email"],
                             first: FirstChannel | None = None) -> Issued:
        now = self.clock.now()
        with self.db.transaction() as c:
            person = self.store.get_person(fiscal_code)
            last = records.latest_practice(c, fiscal_code)
            current = self.store.current_in(c, fiscal_code)
            if person is None or last is None:
                raise LifecycleError("no_record")
            privilege = current.privilege if current else Privilege.ORDINARIO
            channel = first or _first_channel(last.first_half_channel)
            if channel == "sms" and not person.mobile_phone:
                channel = "pec" if person.pec else "email"
            issued = self._issue(
                c, person, kind=kind, address=last.address, first=channel,
                second=second, status=status, privilege=privilege,
                card=(last.health_card_digest, last.health_card_expiry), actor=actor,
                reason=reason, now=now)
        self.kick()
        return issued

    # -- recovery and revocation -------------------------------------------------------

    def contacts_match(self, fiscal_code: str, *, mobile: str, email: str, pec: str) -> bool:
        """At least two contacts given and every one given equals the one on record."""
        person = self.store.get_person(fiscal_code)
        given = [(normalize_phone(mobile), normalize_phone(person.mobile_phone if person
                                                           else None)),
                 (normalize_email(email), normalize_email(person.email if person else None)),
                 (normalize_email(pec), normalize_email(person.pec if person else None))]
        results = [_same(stored, value) for value, stored in given if value]
        return person is not None and len(results) >= 2 and all(results)

    def send_recovery_code(self, fiscal_code: str, code_value: str) -> None:
        """The recovery code goes to the registered email (else mobile, else PEC)."""
        now = self.clock.now()
        person = self.store.get_person(fiscal_code)
        if person is None:
            return
        channel: FirstChannel = "email" if person.email else (
            "sms" if person.mobile_phone else "pec")
        with self.db.transaction() as c:
            self.outbox.enqueue(c, NewMessage(
                Channel(channel), _recipient(person, channel), "pin.recovery_code",
                {"given_name": person.given_name or ""}, {"recovery": code_value},
                fiscal_code, None), now)
            records.add_event(c, fiscal_code, None, now, "recovery.code_sent", "citizen")
            self.audit.record("pin.recovery.code_sent", fiscal_code=fiscal_code,
                              channel=channel)
        self.kick()

    def revoke(self, fiscal_code: str, *, actor: str, reason: str,
               channel: Literal["web", "telephone"] = "web") -> bool:
        """End the PIN (lost, stolen, operator decision); a notice goes to the email."""
        now = self.clock.now()
        with self.db.transaction() as c:
            current = self.store.current_in(c, fiscal_code, channel)
            if current is None or self.store.end_in(c, fiscal_code, now, reason, channel) == 0:
                return False
            records.add_event(c, fiscal_code, current.practice_number, now,
                              f"revoked.{channel}", actor, reason)
            self.audit.record("pin.revoked", fiscal_code=fiscal_code, channel=channel,
                              practice_number=current.practice_number, actor=actor,
                              reason=reason)
            person = self.store.get_person(fiscal_code)
            if channel == "web" and person is not None and person.email:
                self._notice(c, person, current.practice_number, now,
                             "PIN revocato / PIN revoked",
                             "il tuo PIN è stato revocato e non può più essere usato. Per "
                             "averne uno nuovo presenta una nuova richiesta.",
                             "your PIN has been revoked and can no longer be used. To get a "
                             "new one, submit a new request.")
        self.kick()
        return True

    def _notice(self, c: Connection, person: PinPerson, practice: str | None,
                now: datetime, subject: str, it: str, en: str) -> None:
        if not person.email:
            return
        self.outbox.enqueue(c, NewMessage(
            Channel.EMAIL, person.email, "pin.notice",
            {"given_name": person.given_name or "", "subject": subject, "it": it, "en": en},
            {}, person.fiscal_code, practice), now)


    # -- conversion ordinario -> dispositivo ----------------------------------------------

    def pending_conversion(self, fiscal_code: str) -> int | None:
        with self.db.transaction() as c:
            found = records.conversions(c, fiscal_code=fiscal_code, status="pending")
        return found[0].id if found else None

    def submit_conversion(self, fiscal_code: str, form: tuple[str, str],
                          document: tuple[str, str]) -> int:
        """Files stored; the back office decides. ``LifecycleError('pending')`` if one waits."""
        now = self.clock.now()
        with self.db.transaction() as c:
            current = self.store.current_in(c, fiscal_code)
            if current is None or current.status is not PinStatus.ACTIVE:
                raise LifecycleError("no_pin")
            if current.privilege is Privilege.DISPOSITIVO:
                raise LifecycleError("already_dispositivo")
            if records.conversions(c, fiscal_code=fiscal_code, status="pending"):
                raise LifecycleError("pending")
            conversion_id = records.insert_conversion(c, fiscal_code, current.practice_number,
                                                      form, document, now)
            records.add_event(c, fiscal_code, current.practice_number, now,
                              "conversion.submitted", "citizen")
            self.audit.record("pin.conversion.submitted", fiscal_code=fiscal_code,
                              conversion_id=conversion_id, form_type=form[1],
                              document_type=document[1])
        return conversion_id

    def decide_conversion(self, conversion_id: int, *, approve: bool, operator: str,
                          reason: str) -> records.Conversion:
        """The back office's decision; on approval the PIN becomes dispositivo, same transaction.

        ``LifecycleError``: ``unknown``, ``decided`` (not pending any more), ``no_pin``.
        """
        now = self.clock.now()
        status = "approved" if approve else "rejected"
        with self.db.transaction() as c:
            conversion = records.get_conversion(c, conversion_id)
            if conversion is None:
                raise LifecycleError("unknown")
            if not records.decide_conversion(c, conversion_id, status, now, operator, reason):
                raise LifecycleError("decided")
            cf = conversion.fiscal_code
            if approve and not self.store.set_privilege_in(c, cf, Privilege.DISPOSITIVO, now):
                raise LifecycleError("no_pin")
            records.add_event(c, cf, conversion.practice_number, now, f"conversion.{status}",
                              operator, reason)
            self.audit.record(f"pin.conversion.{status}", fiscal_code=cf,
                              conversion_id=conversion_id, operator=operator, reason=reason)
            person = self.store.get_person(cf)
            if person is not None:
                it, en = (("il tuo PIN è ora dispositivo: puoi presentare domande di "
                           "prestazione.", "your PIN is now dispositivo: you can apply for "
                           "benefits.") if approve else
                          (f"la richiesta di conversione del PIN non è stata accolta: {reason}",
                           f"the request to convert your PIN was not accepted: {reason}"))
                self._notice(c, person, conversion.practice_number, now,
                             "Conversione del PIN / PIN conversion", it, en)
            decided = records.get_conversion(c, conversion_id)
        self.kick()
        assert decided is not None
        return decided

    # -- telephone PIN -------------------------------------------------------------------

    def issue_telephone(self, fiscal_code: str, days: int, *, actor: str) -> tuple[str,
                                                                                    datetime]:
        """A new telephone PIN (replacing any other), shown once: only its hash is kept."""
        from providers.pin.generate import telephone_pin

        now = self.clock.now()
        pin = telephone_pin()
        with self.db.transaction() as c:
            credential = self.store.issue_in(
                c, None, fiscal_code, pin_hash=self.hasher.hash(pin), kind=PinKind.TELEPHONE,
                privilege=Privilege.ORDINARIO, status=PinStatus.ACTIVE, practice_number=None,
                now=now, validity=timedelta(days=days), end_reason="telephone_reissued")
            records.add_event(c, fiscal_code, None, now, "telephone.issued", actor,
                              f"{days} days")
            self.audit.record("pin.telephone.issued", fiscal_code=fiscal_code, days=days,
                              actor=actor, expires_at=credential.expires_at.isoformat())
        return pin, credential.expires_at

    def telephone_status(self, fiscal_code: str) -> datetime | None:
        """When the active telephone PIN expires (None: there is none, or it expired)."""
        with self.db.transaction() as c:
            current = self.store.current_in(c, fiscal_code, "telephone")
        if current is None or current.expired(self.clock.now()):
            return None
        return current.expires_at

    def verify_telephone(self, fiscal_code: str, pin: str, *, operator: str) -> bool:
        """Contact center: does this caller hold this telephone PIN now? One argon2id run."""
        now = self.clock.now()
        with self.db.transaction() as c:
            current = self.store.current_in(c, fiscal_code, "telephone")
        stored = current.pin_hash if current and not current.expired(now) else None
        ok = self.hasher.verify(stored, pin)
        with self.db.transaction() as c:
            self.audit.record("pin.telephone.verified", fiscal_code=fiscal_code,
                              operator=operator, match=ok)
        return ok

    # -- back office -----------------------------------------------------------------------

    def history(self, fiscal_code: str) -> dict[str, object]:
        """Everything the back office may see of one person's PINs (hashes excluded)."""
        person = self.store.get_person(fiscal_code)
        with self.db.transaction() as c:
            practice_list = [p.public() for p in records.practices(c, fiscal_code)]
            events = records.events(c, fiscal_code)
            convs = [v.public() for v in records.conversions(c, fiscal_code=fiscal_code)]
        credentials = [{"id": k.id, "kind": k.kind.value, "status": k.status.value,
                        "privilege": k.privilege.value, "practice_number": k.practice_number,
                        "issued_at": k.issued_at.isoformat(),
                        "expires_at": k.expires_at.isoformat()}
                       for k in self.store.history(fiscal_code)]
        return {"fiscal_code": fiscal_code, "known": person is not None,
                "credentials": credentials, "practices": practice_list,
                "conversions": convs, "events": events,
                "outbox": [m.public() for m in self.outbox.list(fiscal_code=fiscal_code)]}


def _recipient(person: PinPerson, channel: str) -> str:
    value = {"sms": person.mobile_phone, "email": person.email, "pec": person.pec}[channel]
    if not value:
        raise LifecycleError(f"no_{channel}")
    return value


def _second_email(person: PinPerson) -> FirstChannel:
    return "email" if person.email else "pec"
