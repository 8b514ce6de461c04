"""The audit trail: append-only, every decision and every change, tamper-evident.

Each entry stores the SHA-256 of the previous entry's hash and its own content, so
deleting or editing a row breaks the chain and ``verify`` says where. Unlike the
ordinary log, the audit trail names the person (it is the legal record); it never holds
a PIN, a secret or a token.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Identity, Table, Text

from broker.clock import Clock
from broker.store.base import AUDIT_GENESIS, Database, audit_digest
from broker.store.schema import BROKER, ID, postgres_ddl, sqlite_ddl

# The chain, one row per entry. Neither database lets a row change or go once written:
# SQLite's triggers abort UPDATE and DELETE; PostgreSQL's also refuse TRUNCATE, and
# ``varco_audit_append`` is ``PostgresDatabase.audit_append`` in one round trip.
AUDIT = Table(
    "audit", BROKER,
    Column("seq", ID, Identity(), primary_key=True),
    Column("at", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("data", Text, nullable=False),
    Column("prev", Text, nullable=False),
    Column("hash", Text, nullable=False),
    sqlite_autoincrement=True,  # AUTOINCREMENT, as ever: a seq is never handed out twice
)
sqlite_ddl(
    AUDIT,
    """CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END""")
postgres_ddl(
    AUDIT,
    """CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'audit is append-only'; END $$""",
    """CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
  FOR EACH ROW EXECUTE FUNCTION audit_append_only()""",
    """CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
  FOR EACH ROW EXECUTE FUNCTION audit_append_only()""",
    """CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
  FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()""",
    # The digest is ``audit_digest``'s: sha256 over prev, at, kind and data joined by 0x1F.
    """CREATE FUNCTION varco_audit_append(p_at TEXT, p_kind TEXT, p_data TEXT, p_lock BIGINT)
RETURNS VOID LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  v_prev TEXT;
BEGIN
  PERFORM pg_advisory_xact_lock(p_lock);
  SELECT hash INTO v_prev FROM audit ORDER BY seq DESC LIMIT 1;
  v_prev := coalesce(v_prev, repeat('0', 64));
  INSERT INTO audit (at, kind, data, prev, hash) VALUES (p_at, p_kind, p_data, v_prev,
    encode(sha256(convert_to(
      v_prev || chr(31) || p_at || chr(31) || p_kind || chr(31) || p_data, 'UTF8')), 'hex'));
END $$""")

FORBIDDEN_KEYS = frozenset({"pin", "password", "secret", "token", "code", "client_secret"})


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: str
    kind: str
    data: dict[str, Any]
    prev: str
    hash: str


class AuditLog:
    """Appends hash-chained entries to the durable database."""

    def __init__(self, db: Database, clock: Clock):
        self.db = db
        self.clock = clock
        db.create_tables((AUDIT,))

    def record(self, kind: str, **fields: Any) -> None:
        """Append one entry. Keys that look like secrets are refused outright."""
        bad = FORBIDDEN_KEYS.intersection(k.lower() for k in fields)
        if bad:
            raise ValueError(f"audit entries never hold secrets: {sorted(bad)}")
        data = json.dumps(fields, sort_keys=True, default=str, ensure_ascii=False)
        # One statement on either database: the last hash is read and the entry chained to
        # it under the database's own lock (SQLite's single writer, an advisory lock on
        # PostgreSQL), so concurrent writers in any process keep one chain.
        self.db.audit_append(self.clock.now().isoformat(), kind, data, "audit")

    def entries(self, kind: str | None = None, limit: int = 1000) -> list[AuditEntry]:
        sql = "SELECT seq, at, kind, data, prev, hash FROM audit"
        params: tuple[Any, ...] = ()
        if kind:
            sql += " WHERE kind=?"
            params = (kind,)
        sql += " ORDER BY seq DESC LIMIT ?"
        rows = self.db.query(sql, (*params, limit))
        return [AuditEntry(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5]) for r in rows]

    def verify(self) -> tuple[bool, str]:
        """Walk the whole chain; (True, summary) or (False, the first broken entry)."""
        prev = AUDIT_GENESIS
        count = 0
        for seq, at, kind, data, stored_prev, stored_hash in self.db.query(
                "SELECT seq, at, kind, data, prev, hash FROM audit ORDER BY seq"):
            if stored_prev != prev or audit_digest(prev, at, kind, data) != stored_hash:
                return False, f"audit chain broken at entry {seq}"
            prev = stored_hash
            count += 1
        return True, f"audit chain intact: {count} entries"
