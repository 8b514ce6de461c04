"""The embedded directory: tables in the broker's own SQLite database (the default, and the demo).

Integrity lives in the schema as well as in code: one row per (official, comune, service),
and a trigger that refuses the second service of an exclusive pair, so not even a
hand-written INSERT can store both.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, ForeignKey, Index, Table, Text

from broker.directory.base import DirectoryError
from broker.directory.model import (
    EXCLUSIVE_PAIRS,
    Comune,
    Convenzione,
    Delega,
    Delegation,
    DirectoryFacts,
    Intermediary,
    IntermediaryKind,
    OperatorGrant,
    check_services,
    exclusive_conflicts,
)
from broker.fiscal_code import normalize_company, normalize_person
from broker.store.base import Database, serialize
from broker.store.schema import BROKER, postgres_ddl, sqlite_ddl

COMUNE = Table(
    "dir_comune", BROKER,
    Column("code", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("conv_from", Text),
    Column("conv_until", Text),
    Column("conv_status", Text),
)
DELEGA = Table(
    "dir_delega", BROKER,
    Column("cf", Text, primary_key=True),
    Column("kind", Text, primary_key=True),
    Column("company_cf", Text, primary_key=True),
    Column("company_name", Text),
    Column("valid_from", Text, nullable=False),
    Column("valid_until", Text),
    Column("form", Text, nullable=False),
)
OPERATOR = Table(
    "dir_operator", BROKER,  # one row per (official, comune, service)
    Column("cf", Text, primary_key=True),
    Column("comune", Text, ForeignKey(COMUNE.c.code), primary_key=True),
    Column("service", Text, primary_key=True),
)
OPERATOR_META = Table(
    "dir_operator_meta", BROKER,
    Column("cf", Text, primary_key=True),
    Column("comune", Text, primary_key=True),
    Column("granted_at", Text, nullable=False),
    Column("granted_by", Text, nullable=False),
    Column("reason", Text, nullable=False),
)
DELEGATION = Table(
    "dir_delegation", BROKER,
    Column("delegator_cf", Text, primary_key=True),
    Column("delegate_cf", Text, primary_key=True),
    Column("valid_from", Text, nullable=False),
    Column("valid_until", Text),
    Column("scope", Text, nullable=False),
    Column("circular", Text, nullable=False),
)
Index("dir_delegation_delegate", DELEGATION.c.delegate_cf)
TABLES = (COMUNE, DELEGA, OPERATOR, OPERATOR_META, DELEGATION)


def _sqlite_exclusive_triggers() -> list[str]:
    """One trigger per pair direction: the second half of a pair is refused at INSERT."""
    out = []
    for a, b in EXCLUSIVE_PAIRS:
        for new, other in ((a, b), (b, a)):
            name = f"dir_excl_{new.replace('.', '_')}"
            # Only constants from EXCLUSIVE_PAIRS go into this DDL, never input.
            out.append(f"""CREATE TRIGGER IF NOT EXISTS {name} BEFORE INSERT ON dir_operator
WHEN NEW.service = '{new}' AND EXISTS (SELECT 1 FROM dir_operator
  WHERE cf = NEW.cf AND comune = NEW.comune AND service = '{other}')
BEGIN SELECT RAISE(ABORT, 'exclusive abilitazioni: {new} / {other}'); END""")  # noqa: S608
    return out


def _postgres_exclusive_trigger() -> list[str]:
    """The same refusal on PostgreSQL, where two grants can run at once.

    The check locks the official's rows of that comune first, so two concurrent grants
    of the two halves cannot both pass (SQLite needs no lock: one writer at a time).
    """
    cases = "\n".join(
        f"    WHEN '{new}' THEN '{other}'"
        for a, b in EXCLUSIVE_PAIRS for new, other in ((a, b), (b, a)))
    # Only constants from EXCLUSIVE_PAIRS go into this DDL, never input.
    return [f"""CREATE FUNCTION dir_operator_exclusive() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE other TEXT;
BEGIN
  other := CASE NEW.service
{cases}
    ELSE NULL END;
  IF other IS NULL THEN RETURN NEW; END IF;
  PERFORM pg_advisory_xact_lock(hashtext('dir_operator|' || NEW.cf || '|' || NEW.comune));
  IF EXISTS (SELECT 1 FROM dir_operator
             WHERE cf = NEW.cf AND comune = NEW.comune AND service = other) THEN
    RAISE EXCEPTION 'exclusive abilitazioni: % / %', NEW.service, other;
  END IF;
  RETURN NEW;
END $$""",  # noqa: S608
            """CREATE TRIGGER dir_operator_exclusive BEFORE INSERT ON dir_operator
  FOR EACH ROW EXECUTE FUNCTION dir_operator_exclusive()"""]


sqlite_ddl(OPERATOR, *_sqlite_exclusive_triggers())
postgres_ddl(OPERATOR, *_postgres_exclusive_trigger())


def _d(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


class SqliteDirectory:
    """``Directory`` on the broker's database. Thread-safe through ``Database``."""

    name = "embedded"

    def __init__(self, db: Database):
        self.db = db
        db.create_tables(TABLES)

    # --- reads -----------------------------------------------------------------------
    def facts(self, fiscal_code: str) -> DirectoryFacts:
        cf = normalize_person(fiscal_code)
        by_kind: dict[str, list[Delega]] = {}
        for r in self.db.query("SELECT kind, company_cf, company_name, valid_from, valid_until,"
                               " form FROM dir_delega WHERE cf=? ORDER BY kind, company_cf",
                               (cf,)):
            by_kind.setdefault(r[0], []).append(Delega(
                company_cf=r[1], company_name=r[2], valid_from=date.fromisoformat(r[3]),
                valid_until=_d(r[4]), form=r[5]))
        intermediary = tuple(Intermediary(fiscal_code=cf, kind=k, deleghe=tuple(v))
                             for k, v in by_kind.items())
        operator = []
        for code in sorted({r[0] for r in self.db.query(
                "SELECT comune FROM dir_operator WHERE cf=?", (cf,))}):
            grant = self._grant(cf, code)
            if grant is not None:
                operator.append((grant, self.comune(code)))
        delegations = tuple(
            Delegation(delegator_cf=r[0], delegate_cf=cf, valid_from=date.fromisoformat(r[1]),
                       valid_until=_d(r[2]), scope=r[3], circular=r[4])
            for r in self.db.query("SELECT delegator_cf, valid_from, valid_until, scope, "
                                   "circular FROM dir_delegation WHERE delegate_cf=? "
                                   "ORDER BY delegator_cf", (cf,)))
        return DirectoryFacts(fiscal_code=cf, intermediary=intermediary,
                              operator=tuple(operator), delegations=delegations)

    def comune(self, code: str) -> Comune | None:
        rows = list(self.db.query("SELECT code, name, conv_from, conv_until, conv_status "
                                  "FROM dir_comune WHERE code=?", (code,)))
        if not rows:
            return None
        r = rows[0]
        conv = None
        if r[2]:
            conv = Convenzione(valid_from=date.fromisoformat(r[2]), valid_until=_d(r[3]),
                               status=r[4] or "active")
        return Comune(code=r[0], name=r[1], convenzione=conv)

    def _grant(self, cf: str, comune: str) -> OperatorGrant | None:
        services = [r[0] for r in self.db.query(
            "SELECT service FROM dir_operator WHERE cf=? AND comune=? ORDER BY service",
            (cf, comune))]
        meta = list(self.db.query("SELECT granted_at, granted_by, reason FROM "
                                  "dir_operator_meta WHERE cf=? AND comune=?", (cf, comune)))
        if not services or not meta:
            return None
        m = meta[0]
        return OperatorGrant(fiscal_code=cf, comune=comune, abilitazioni=tuple(services),
                             granted_at=datetime.fromisoformat(m[0]), granted_by=m[1],
                             reason=m[2])

    def operators(self, comune: str) -> list[OperatorGrant]:
        cfs = sorted({r[0] for r in self.db.query(
            "SELECT cf FROM dir_operator WHERE comune=?", (comune,))})
        return [g for cf in cfs if (g := self._grant(cf, comune)) is not None]

    # --- changes ---------------------------------------------------------------------
    def put_comune(self, comune: Comune) -> None:
        conv = comune.convenzione
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO dir_comune (code, name, conv_from, conv_until, conv_status) "
                "VALUES (?,?,?,?,?) ON CONFLICT(code) DO UPDATE SET name=excluded.name, "
                "conv_from=excluded.conv_from, conv_until=excluded.conv_until, "
                "conv_status=excluded.conv_status",
                (comune.code, comune.name, _iso(conv.valid_from) if conv else None,
                 _iso(conv.valid_until) if conv else None, conv.status if conv else None))

    def grant(self, fiscal_code: str, comune: str, services: tuple[str, ...], *,
              by: str, reason: str, now: datetime) -> OperatorGrant:
        cf = normalize_person(fiscal_code)
        try:
            wanted = check_services(services)
        except ValueError as exc:
            raise DirectoryError(str(exc)) from exc
        if not wanted:
            raise DirectoryError("no abilitazioni given")
        if not reason.strip():
            raise DirectoryError("a reason is required")
        if self.comune(comune) is None:
            raise DirectoryError(f"unknown comune {comune!r}")
        with self.db.transaction() as conn:
            serialize(conn, f"dir_operator.{cf}.{comune}")
            held = {r[0] for r in conn.execute(
                "SELECT service FROM dir_operator WHERE cf=? AND comune=?", (cf, comune))}
            clash = exclusive_conflicts(held | set(wanted))
            if clash:
                a, b = clash[0]
                raise DirectoryError(
                    f"{a!r} and {b!r} exclude each other; revoke the one held first")
            for service in wanted:  # extends: what is held stays
                conn.execute("INSERT INTO dir_operator (cf, comune, service) VALUES (?,?,?)"
                             " ON CONFLICT DO NOTHING", (cf, comune, service))
            conn.execute(
                "INSERT INTO dir_operator_meta (cf, comune, granted_at, granted_by, reason) "
                "VALUES (?,?,?,?,?) ON CONFLICT(cf, comune) DO UPDATE SET "
                "granted_at=excluded.granted_at, granted_by=excluded.granted_by, "
                "reason=excluded.reason", (cf, comune, now.isoformat(), by, reason))
        grant = self._grant(cf, comune)
        assert grant is not None
        return grant

    def revoke(self, fiscal_code: str, comune: str, services: tuple[str, ...] | None, *,
               by: str, reason: str, now: datetime) -> OperatorGrant | None:
        cf = normalize_person(fiscal_code)
        if not reason.strip():
            raise DirectoryError("a reason is required")
        with self.db.transaction() as conn:
            if services is None:
                conn.execute("DELETE FROM dir_operator WHERE cf=? AND comune=?", (cf, comune))
            else:
                for service in services:
                    conn.execute("DELETE FROM dir_operator WHERE cf=? AND comune=? AND "
                                 "service=?", (cf, comune, service))
            count = conn.execute("SELECT COUNT(*) FROM dir_operator WHERE cf=? AND comune=?",
                                 (cf, comune)).fetchone()
            assert count is not None  # COUNT(*) always gives a row
            left = count[0]
            if left:
                conn.execute("UPDATE dir_operator_meta SET granted_at=?, granted_by=?, "
                             "reason=? WHERE cf=? AND comune=?",
                             (now.isoformat(), by, reason, cf, comune))
            else:
                conn.execute("DELETE FROM dir_operator_meta WHERE cf=? AND comune=?",
                             (cf, comune))
        return self._grant(cf, comune)

    def add_delega(self, fiscal_code: str, kind: IntermediaryKind, delega: Delega) -> None:
        Intermediary(fiscal_code=fiscal_code, kind=kind)  # validates cf and kind
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO dir_delega (cf, kind, company_cf, company_name, valid_from, "
                "valid_until, form) VALUES (?,?,?,?,?,?,?) ON CONFLICT(cf, kind, company_cf) "
                "DO UPDATE SET company_name=excluded.company_name, "
                "valid_from=excluded.valid_from, valid_until=excluded.valid_until, "
                "form=excluded.form",
                (normalize_person(fiscal_code), kind, delega.company_cf, delega.company_name,
                 _iso(delega.valid_from), _iso(delega.valid_until), delega.form))

    def revoke_delega(self, fiscal_code: str, kind: IntermediaryKind, company_cf: str) -> bool:
        with self.db.transaction() as conn:
            cur = conn.execute("DELETE FROM dir_delega WHERE cf=? AND kind=? AND company_cf=?",
                               (normalize_person(fiscal_code), kind,
                                normalize_company(company_cf)))
            return cur.rowcount > 0

    def add_delegation(self, delegation: Delegation) -> None:
        d = delegation
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO dir_delegation (delegator_cf, delegate_cf, valid_from, "
                "valid_until, scope, circular) VALUES (?,?,?,?,?,?) ON CONFLICT(delegator_cf, "
                "delegate_cf) DO UPDATE SET valid_from=excluded.valid_from, "
                "valid_until=excluded.valid_until, scope=excluded.scope, "
                "circular=excluded.circular",
                (d.delegator_cf, d.delegate_cf, _iso(d.valid_from), _iso(d.valid_until),
                 d.scope, d.circular))

    def revoke_delegation(self, delegator_cf: str, delegate_cf: str) -> bool:
        with self.db.transaction() as conn:
            cur = conn.execute("DELETE FROM dir_delegation WHERE delegator_cf=? AND "
                               "delegate_cf=?", (normalize_person(delegator_cf),
                                                 normalize_person(delegate_cf)))
            return cur.rowcount > 0
