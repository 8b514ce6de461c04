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

from broker.clock import Clock
from broker.store.base import AUDIT_GENESIS, Database, audit_digest

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  at TEXT NOT NULL,
  kind TEXT NOT NULL,
  data TEXT NOT NULL,
  prev TEXT NOT NULL,
  hash TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
"""

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
        db.execute_script(_SCHEMA)

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
        params: tuple = ()
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
