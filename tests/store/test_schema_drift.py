"""The schema each database really has is the one the code declares (``broker.store.schema``).

SQLite: the file a starting broker makes, and a file made before the declaration by the
old hand-written DDL once a broker has started on it. PostgreSQL: a database brought up
by ``varco db upgrade``, and one migrated by the broker's revision 0001 before the PIN
tables moved to their own branch. Each is compared with the declaration twice (see
``tests/store/schema_drift.py``): Alembic's ``compare_metadata``, and the catalog
against a database made by ``create_all`` from the declaration alone.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Connection, Engine, create_engine, text

from broker.app import create_app
from broker.store.migrate import head_revisions
from tests.harness import demo_settings
from tests.store.postgres_env import PostgresServer, db_upgrade
from tests.store.schema_drift import (
    create_declared,
    describe,
    durable_metadata,
    metadata_diffs,
    sqlite_metadata,
    tables_of,
)

HERE = Path(__file__).parent


def _sqlite(path: Path) -> Engine:
    return create_engine(f"sqlite:///{path}")


def _postgres(url: str) -> Engine:
    return create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


def _start_broker(data_dir: Path) -> None:
    """What a broker does to its data folder at start, the schema included."""
    app = create_app(demo_settings(data_dir))
    app.state.broker.stores.close()


@pytest.fixture(scope="module")
def declared_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Connection]:
    """An embedded file made by ``create_all`` from the declaration alone."""
    engine = _sqlite(tmp_path_factory.mktemp("declared") / "varco.db")
    with engine.begin() as conn:
        create_declared(conn, sqlite_metadata())
    with engine.connect() as conn:
        yield conn
    engine.dispose()


@pytest.fixture(scope="module")
def started_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Connection]:
    """The embedded file a broker made when it first started."""
    data_dir = tmp_path_factory.mktemp("started")
    _start_broker(data_dir)
    engine = _sqlite(data_dir / "varco.db")
    with engine.connect() as conn:
        yield conn
    engine.dispose()


@pytest.fixture(scope="module")
def declared_postgres(postgres_server: PostgresServer) -> Iterator[Connection]:
    """A PostgreSQL database made by ``create_all`` from the declaration alone."""
    url = postgres_server.create_database(template=None)
    engine = _postgres(url)
    with engine.begin() as conn:
        create_declared(conn, durable_metadata())
    with engine.connect() as conn:
        yield conn
    engine.dispose()
    postgres_server.drop_database(url)


@pytest.fixture
def migrated_postgres(postgres_url: str) -> Iterator[Connection]:
    """A database brought to the heads by ``varco db upgrade`` (the session template)."""
    engine = _postgres(postgres_url)
    with engine.connect() as conn:
        yield conn
    engine.dispose()


# --- SQLite -----------------------------------------------------------------------------


def test_a_new_embedded_file_has_every_table_column_and_index_the_code_declares(
        started_sqlite: Connection) -> None:
    assert metadata_diffs(started_sqlite, sqlite_metadata()) == []


def test_a_new_embedded_file_has_the_declared_keys_checks_triggers_and_table_options(
        started_sqlite: Connection, declared_sqlite: Connection) -> None:
    tables = tables_of(sqlite_metadata())
    assert describe(started_sqlite, tables) == describe(declared_sqlite, tables)


def test_an_embedded_file_made_by_the_old_hand_written_ddl_keeps_working_as_declared(
        tmp_path: Path, declared_sqlite: Connection) -> None:
    """Same tables, columns, keys, checks, indexes and triggers, and the data kept.

    One known difference is accepted, and only that one: the old DDL declared a
    single-column primary key without NOT NULL (``code TEXT PRIMARY KEY``), where the
    declaration renders it NOT NULL. SQLite has no way to add it to an existing table; an
    INTEGER one is the rowid and never NULL anyway.
    """
    import sqlite3

    path = tmp_path / "varco.db"
    with sqlite3.connect(path) as old:
        old.executescript((HERE / "sqlite_before_declaration.sql").read_text())
        old.execute("INSERT INTO dir_comune (code, name) VALUES ('H501', 'Roma')")
    old.close()
    _start_broker(tmp_path)
    engine = _sqlite(path)
    with engine.connect() as conn:
        metadata = sqlite_metadata()
        single_keys = {f"{t.name}.{t.primary_key.columns[0].name}" for m in metadata
                       for t in m.tables.values() if len(t.primary_key.columns) == 1}
        assert [d for d in metadata_diffs(conn, metadata)
                if not (d.startswith("modify_nullable") and d.split()[1].rstrip(":")
                        in single_keys)] == []
        tables = tables_of(metadata)
        actual = {line.replace(" null ", " not null ", 1)
                  if line.split()[0] in single_keys and " not null " not in line else line
                  for line in describe(conn, tables)}
        assert actual == describe(declared_sqlite, tables)
        assert conn.execute(text("SELECT name FROM dir_comune")).scalar() == "Roma"
    engine.dispose()


# --- PostgreSQL -------------------------------------------------------------------------


def test_a_migrated_postgres_has_every_table_column_and_index_the_code_declares(
        migrated_postgres: Connection) -> None:
    assert metadata_diffs(migrated_postgres, durable_metadata()) == []


def test_a_migrated_postgres_has_the_declared_keys_checks_triggers_and_functions(
        migrated_postgres: Connection, declared_postgres: Connection) -> None:
    tables = tables_of(durable_metadata())
    assert describe(migrated_postgres, tables) == describe(declared_postgres, tables)


def test_the_broker_migrations_name_no_provider_table() -> None:
    """The broker's revisions create only the broker's tables; a provider's come from its
    own branch (``varco db upgrade`` runs both)."""
    broker_tables = set(tables_of([durable_metadata()[0]]))
    revisions = sorted((HERE.parents[1] / "broker/store/migrations/versions").glob("*.py"))
    for provider_table in set(tables_of(durable_metadata())) - broker_tables:
        for revision in revisions:
            assert provider_table not in revision.read_text(), revision.name


def _load_pre_split_0001() -> object:
    spec = importlib.util.spec_from_file_location("pre_split_0001",
                                                  HERE / "pre_split_0001.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_postgres_migrated_before_the_pin_split_upgrades_to_the_declared_schema(
        postgres_server: PostgresServer, declared_postgres: Connection) -> None:
    """A database at revision 0001 as released (PIN tables included) upgrades in place:
    the PIN branch adopts the tables it finds, with their rows, and creates nothing twice."""
    old = _load_pre_split_0001()
    url = postgres_server.create_database(template=None)
    engine = _postgres(url)
    try:
        with psycopg.connect(url) as conn:  # what Alembic did then, and a row since
            conn.execute(old.TABLES + old._exclusive_trigger())  # type: ignore[attr-defined]
            conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL"
                         " PRIMARY KEY); INSERT INTO alembic_version VALUES ('0001')")
            conn.execute("INSERT INTO pin_person (fiscal_code, created_at, updated_at)"
                         " VALUES ('BNCLRA85M41Z404W', 'then', 'then')")
        upgraded = db_upgrade(url)
        assert upgraded.returncode == 0, upgraded.stderr
        with engine.connect() as conn:
            versions = sorted(conn.execute(text("SELECT version_num FROM alembic_version"))
                              .scalars())
            assert tuple(versions) == head_revisions()
            assert metadata_diffs(conn, durable_metadata()) == []
            tables = tables_of(durable_metadata())
            assert describe(conn, tables) == describe(declared_postgres, tables)
            assert conn.execute(text("SELECT fiscal_code FROM pin_person")).scalar() \
                == "BNCLRA85M41Z404W"
    finally:
        engine.dispose()
        postgres_server.drop_database(url)


# --- the comparison itself --------------------------------------------------------------


def test_a_dropped_index_or_unique_constraint_is_drift_on_either_database(
        migrated_postgres: Connection, declared_postgres: Connection,
        declared_sqlite: Connection, tmp_path: Path) -> None:
    """The checks above would pass on a comparison that saw nothing; this one must not."""
    pg_tables = tables_of(durable_metadata())
    migrated_postgres.exec_driver_sql("DROP INDEX outbox_due")
    migrated_postgres.exec_driver_sql(
        "ALTER TABLE pin_practice DROP CONSTRAINT pin_practice_rowid_key")
    assert metadata_diffs(migrated_postgres, durable_metadata()) == [
        "add_constraint pin_practice: None (rowid)",
        "add_index outbox: outbox_due (status, next_attempt_at)"]
    missing = describe(declared_postgres, pg_tables) - describe(migrated_postgres, pg_tables)
    assert {line.split(":")[0] for line in missing} == {"outbox", "pin_practice"}

    _start_broker(tmp_path)
    engine = _sqlite(tmp_path / "varco.db")
    with engine.connect() as conn:
        conn.exec_driver_sql("DROP INDEX pin_credential_one_active")  # one active PIN each
        assert metadata_diffs(conn, sqlite_metadata()) == [
            "add_index pin_credential: pin_credential_one_active (fiscal_code, channel)"]
        sqlite_tables = tables_of(sqlite_metadata())
        assert describe(declared_sqlite, sqlite_tables) - describe(conn, sqlite_tables) == {
            "pin_credential: unique index pin_credential_one_active (fiscal_code, channel)"
            " where status = 'active'"}
    engine.dispose()
