"""The PIN provider's part of the durable schema: its tables' ``MetaData`` and migrations.

The tables are declared beside the SQL that uses them (``providers.pin.store`` and
``providers.pin.records``) on ``PIN``; their PostgreSQL migrations are an Alembic branch
labelled ``pin`` in ``migrations/versions``, so the broker's own migrations name none of
them. ``pin_schema`` is what the package registers with ``broker.store.schema`` when
imported (the provider-type refactor will make it part of the provider type).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import MetaData

PIN = MetaData()
VERSIONS = Path(__file__).with_name("migrations") / "versions"


def pin_schema() -> tuple[MetaData, Path]:
    """Every PIN table, and the folder of their PostgreSQL migrations."""
    from providers.pin import records, store  # noqa: F401  (they declare the tables on PIN)

    return PIN, VERSIONS
