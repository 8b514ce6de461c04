"""The eIDAS links: a person identifier of another EU state linked to a codice fiscale.

The first revision of the ``eidas`` branch; the same table and index as ``LINKS`` in
``providers.eidas.schema`` (``tests/store/test_schema_drift.py`` compares them).

Revision ID: eidas_0001
Revises:
Create Date: 2026-12-02
"""

from alembic import op

revision = "eidas_0001"
down_revision = None
branch_labels = ("eidas",)
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE eidas_link (
  person_identifier TEXT PRIMARY KEY,
  fiscal_code TEXT NOT NULL,
  linked_at TEXT NOT NULL,
  operator TEXT NOT NULL,
  reason TEXT NOT NULL
);
CREATE INDEX eidas_link_person ON eidas_link(fiscal_code);
""")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS eidas_link")
