"""The audit chain's append as one server-side call.

``AuditLog.record`` on PostgreSQL took five round trips (BEGIN, the advisory lock, the
last hash, the INSERT, COMMIT) for every entry, one per token grant among others.
``varco_audit_append`` does the same in one statement: it takes the same
transaction-scoped advisory lock, then reads the newest hash (a PL/pgSQL statement sees
what committed before it ran, so after the lock) and inserts the entry with
``sha256(prev 0x1F at 0x1F kind 0x1F data)``, the digest ``broker.audit`` computes and
``varco audit verify`` checks.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE FUNCTION varco_audit_append(p_at TEXT, p_kind TEXT, p_data TEXT, p_lock BIGINT)
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
END $$;
""")


def downgrade() -> None:
    op.execute("DROP FUNCTION varco_audit_append(TEXT, TEXT, TEXT, BIGINT)")
