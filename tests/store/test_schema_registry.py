"""The schema registry and the SQLite start-up DDL: what a provider and a repository rely on."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import MetaData

from broker.store.schema import register_schema, schemas, sqlite_script
from broker.store.sqlite import SqliteDatabase
from providers.pin.schema import pin_schema
from providers.pin.store import PinStore


def test_every_schema_is_found_with_its_migrations_broker_first() -> None:
    found = schemas()
    assert [s.name for s in found][:1] == ["broker"]
    pin = next(s for s in found if s.name == "pin")
    assert (pin.metadata, pin.versions) == pin_schema()
    assert "pin_person" in pin.metadata.tables and "pin_person" not in found[0].metadata.tables
    for schema in found:  # each with revisions of its own
        assert [p for p in schema.versions.glob("*.py") if p.name != "__init__.py"], schema


def test_a_schema_cannot_take_a_name_already_taken() -> None:
    schemas()  # the PIN provider registered its own
    with pytest.raises(ValueError, match="'pin' is already registered"):
        register_schema("pin", MetaData(), Path("elsewhere"))
    with pytest.raises(ValueError, match="'broker' is already registered"):
        register_schema("broker", MetaData(), Path("elsewhere"))
    register_schema("pin", *pin_schema())  # the same one again (a re-import) is fine


def test_the_start_up_ddl_is_rendered_once_per_process(tmp_path: Path) -> None:
    PinStore(SqliteDatabase(tmp_path / "first.db"))
    before = sqlite_script.cache_info()
    PinStore(SqliteDatabase(tmp_path / "second.db"))
    after = sqlite_script.cache_info()
    assert (after.misses, after.hits) == (before.misses, before.hits + 1)
