"""The eIDAS provider's part of the durable schema: the links the back office makes.

Registered with ``broker.store.schema`` when the package is imported; PostgreSQL's
migrations are the Alembic branch ``eidas`` in ``migrations/versions``.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Column, Index, MetaData, Table, Text

EIDAS = MetaData()
VERSIONS = Path(__file__).with_name("migrations") / "versions"

LINKS = Table(
    "eidas_link", EIDAS,
    Column("person_identifier", Text, primary_key=True),
    Column("fiscal_code", Text, nullable=False),
    Column("linked_at", Text, nullable=False),
    Column("operator", Text, nullable=False),
    Column("reason", Text, nullable=False),
)
Index("eidas_link_person", LINKS.c.fiscal_code)


def eidas_schema() -> tuple[MetaData, Path]:
    return EIDAS, VERSIONS
