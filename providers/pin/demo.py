"""The demo PIN holders of ``config/demo.yaml`` (README lists them). Never enable in production.

Seeding is idempotent: a demo codice fiscale that already has any credential (even one a
tester has since changed or revoked) is left alone, so restarting the demo keeps what
happened in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from broker.clock import Clock
from broker.model import Privilege
from providers.pin import records
from providers.pin.hashing import PinHasher
from providers.pin.store import PinKind, PinPerson, PinStore


@dataclass(frozen=True)
class DemoUser:
    person: PinPerson
    pin: str
    kind: PinKind
    privilege: Privilege


DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser(PinPerson("BNCLRA85M41Z404W", "Laura", "Bianchi", "laura.bianchi@example.org",
                       "+15550100001", residence="abroad", italian_document=False),
             "Abroad01", PinKind.STANDARD8, Privilege.DISPOSITIVO),
    DemoUser(PinPerson("VRDGPP70C15Z110R", "Giuseppe", "Verdi", "giuseppe.verdi@example.org",
                       "+15550100002", residence="abroad", italian_document=False),
             "Abroad02", PinKind.STANDARD8, Privilege.ORDINARIO),
    DemoUser(PinPerson("RSSMRA80A01H501U", "Mario", "Rossi", "mario.rossi@example.org",
                       "+393330000003", residence="italy", italian_document=True),
             "Italia01", PinKind.STANDARD8, Privilege.DISPOSITIVO),
    # First login with the 16-character initial PIN: the login asks for a new 8-character one.
    DemoUser(PinPerson("NRENNA90H52Z600M", "Anna", "Neri", "anna.neri@example.org",
                       "+5491100000004", residence="abroad", italian_document=False),
             "Iniziale12345678", PinKind.INITIAL16, Privilege.ORDINARIO),
)


def seed_demo_users(store: PinStore, clock: Clock, hasher: PinHasher,
                    validity: timedelta = timedelta(days=183)) -> list[str]:
    """Create the demo users that do not exist yet; returns the codici fiscali created."""
    created = []
    now = clock.now()
    store.db.create_tables(records.TABLES)
    for user in DEMO_USERS:
        if store.history(user.person.fiscal_code):
            continue
        number = f"DEMO-{user.person.fiscal_code[:6]}"
        store.create(user.person, pin_hash=hasher.hash(user.pin), kind=user.kind,
                     privilege=user.privilege, now=now, validity=validity,
                     practice_number=number)
        # The practice on record (address for letters, first-half channel) so renewal,
        # recovery and the back office work for the demo users too.
        p = user.person
        with store.db.transaction() as c:
            records.insert_practice(c, records.Practice(
                number, p.fiscal_code, "request", "sms" if p.mobile_phone else "email",
                records.Address(f"{p.given_name} {p.family_name}", "1 Demo Street", "00000",
                                "Demo City", "Italia" if p.residence == "italy" else "USA"),
                None, None, now))
        created.append(user.person.fiscal_code)
    return created
