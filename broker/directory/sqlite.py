"""The embedded directory: tables in the broker's own SQLite database (the default, and the demo).

Integrity lives in the schema as well as in code: one row per (official, comune, service),
and a trigger that refuses the second service of an exclusive pair, so not even a
hand-written INSERT can store both.
"""

from __future__ import annotations

from datetime import date, datetime

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

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dir_comune (
  code TEXT PRIMARY KEY, name TEXT NOT NULL,
  conv_from TEXT, conv_until TEXT, conv_status TEXT
);
CREATE TABLE IF NOT EXISTS dir_delega (
  cf TEXT NOT NULL, kind TEXT NOT NULL, company_cf TEXT NOT NULL, company_name TEXT,
  valid_from TEXT NOT NULL, valid_until TEXT, form TEXT NOT NULL,
  PRIMARY KEY (cf, kind, company_cf)
);
CREATE TABLE IF NOT EXISTS dir_operator (
  cf TEXT NOT NULL, comune TEXT NOT NULL REFERENCES dir_comune(code), service TEXT NOT NULL,
  PRIMARY KEY (cf, comune, service)
);
CREATE TABLE IF NOT EXISTS dir_operator_meta (
  cf TEXT NOT NULL, comune TEXT NOT NULL, granted_at TEXT NOT NULL,
  granted_by TEXT NOT NULL, reason TEXT NOT NULL, PRIMARY KEY (cf, comune)
);
CREATE TABLE IF NOT EXISTS dir_delegation (
  delegator_cf TEXT NOT NULL, delegate_cf TEXT NOT NULL, valid_from TEXT NOT NULL,
  valid_until TEXT, scope TEXT NOT NULL, circular TEXT NOT NULL,
  PRIMARY KEY (delegator_cf, delegate_cf)
);
CREATE INDEX IF NOT EXISTS dir_delegation_delegate ON dir_delegation(delegate_cf);
"""


def _exclusive_trigger() -> str:
    """One trigger per pair direction: the second half of a pair is refused at INSERT."""
    out = []
    for a, b in EXCLUSIVE_PAIRS:
        for new, other in ((a, b), (b, a)):
            name = f"dir_excl_{new.replace('.', '_')}"
            # Only constants from EXCLUSIVE_PAIRS go into this DDL, never input.
            out.append(f"""
CREATE TRIGGER IF NOT EXISTS {name} BEFORE INSERT ON dir_operator
WHEN NEW.service = '{new}' AND EXISTS (SELECT 1 FROM dir_operator
  WHERE cf = NEW.cf AND comune = NEW.comune AND service = '{other}')
BEGIN SELECT RAISE(ABORT, 'exclusive abilitazioni: {new} / {other}'); END;""")  # noqa: S608
    return "\n".join(out)


def _d(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


class SqliteDirectory:
    """``Directory`` on the broker's database. Thread-safe through ``Database``."""

    name = "embedded"

    def __init__(self, db: Database):
        self.db = db
        db.execute_script(_SCHEMA + _exclusive_trigger())

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
        intermediary = tuple(Intermediary(fiscal_code=cf, kind=k, deleghe=tuple(v))  # type: ignore[arg-type]
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
            left = conn.execute("SELECT COUNT(*) FROM dir_operator WHERE cf=? AND comune=?",
                                (cf, comune)).fetchone()[0]
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
