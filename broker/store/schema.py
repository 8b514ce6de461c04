"""The durable schema, declared once and rendered for each database.

Every durable table is declared once, as a SQLAlchemy Core ``Table``, beside the
repository whose SQL uses it: the broker's tables on ``BROKER``, a provider's on a
``MetaData`` of its own that its package hands to ``register_schema`` when imported.
From that one declaration:

* the embedded SQLite file creates what it lacks at start: ``sqlite_script`` renders
  ``CREATE TABLE/INDEX IF NOT EXISTS`` plus the tables' SQLite-only DDL (triggers), once
  per process, and ``SqliteDatabase.create_tables`` runs it;
* PostgreSQL gets there through Alembic migrations (``varco db upgrade``): the broker's in
  ``broker/store/migrations/versions``, each provider's in its own version location and
  branch, so nothing under ``broker/`` names a provider's table. The migration env targets
  every registered ``MetaData`` (``schemas()``);
* ``tests/store/test_schema_drift.py`` checks that both databases end where the
  declaration says: tables, columns, keys, checks, indexes and triggers.

Migrations stay frozen SQL rather than ``create_all`` of the current declaration, because
a revision must keep its meaning when the declaration moves on; the drift test is what
ties the two. SQLAlchemy serves only DDL and reflection: repositories keep their
hand-written SQL in the dialect SQLite and PostgreSQL share.

Where the two databases differ, the declaration says so in one of four ways:

* a type with a dialect variant (``ID``, ``DOUBLE``): SQLite's own spelling where it
  matters (only a column declared exactly ``INTEGER PRIMARY KEY`` is SQLite's rowid);
* table options of one dialect (``sqlite_autoincrement``, ``sqlite_with_rowid=False``);
* ``Generated`` (a VIRTUAL column on SQLite, STORED on PostgreSQL) and
  ``implicit_rowid()`` (SQLite's implicit rowid, a real column on PostgreSQL);
* ``sqlite_ddl`` / ``postgres_ddl``: triggers and functions written in each database's
  own language, run right after their table is created.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    DDL,
    BigInteger,
    Column,
    Computed,
    Double,
    Identity,
    Integer,
    MetaData,
    Table,
    UniqueConstraint,
    create_mock_engine,
    event,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import CreateColumn, CreateIndex, CreateTable, ExecutableDDLElement
from sqlalchemy.sql.compiler import DDLCompiler

#: An id the database assigns or refers to: BIGINT on PostgreSQL, INTEGER on SQLite,
#: where only a column declared exactly ``INTEGER PRIMARY KEY`` is the table's rowid.
ID = BigInteger().with_variant(Integer(), "sqlite")

#: A float: DOUBLE PRECISION on PostgreSQL, REAL (SQLite's own name) on SQLite.
DOUBLE: Double[float] = Double().with_variant(sqlite.REAL(), "sqlite")

#: The broker's own durable tables (audit, outbox, directory, logout watch).
BROKER = MetaData()

_BROKER_VERSIONS = Path(__file__).with_name("migrations") / "versions"

# The broker modules that declare tables on ``BROKER``. A module missing here leaves its
# table out of the migration env's target, and the drift test says so.
_BROKER_REPOSITORIES = ("broker.audit", "broker.directory.sqlite", "broker.oidc.backchannel",
                        "broker.outbox.store")

_IMPLICIT_ROWID = "varco.implicit_rowid"


class Generated(Computed):
    """A column computed from others: VIRTUAL on SQLite, STORED on PostgreSQL.

    SQLite computes a VIRTUAL column when it is read, and files made before this
    declaration have it so; PostgreSQL before version 18 has only STORED columns.
    """

    def __init__(self, sqltext: str):
        super().__init__(sqltext, persisted=True)


@compiles(Generated, "sqlite")
def _virtual_on_sqlite(element: Generated, compiler: DDLCompiler, **kw: Any) -> str:
    expression = compiler.sql_compiler.process(element.sqltext, include_table=False,
                                               literal_binds=True)
    return f"GENERATED ALWAYS AS ({expression}) VIRTUAL"


def implicit_rowid() -> Column[int]:
    """``rowid``: implicit in every SQLite table (not WITHOUT ROWID), so SQL can order by
    insertion; PostgreSQL has no such thing, so there it is a real identity column.

    The SQLite rendering leaves the column and its unique constraint out.
    """
    return Column("rowid", BigInteger, Identity(always=True), nullable=False, unique=True,
                  info={_IMPLICIT_ROWID: True})


def is_implicit_rowid(column: Column[Any]) -> bool:
    """True for the ``implicit_rowid()`` column, which SQLite has without declaring it."""
    return bool(column.info.get(_IMPLICIT_ROWID))


@compiles(CreateColumn, "sqlite")
def _sqlite_column(element: CreateColumn, compiler: DDLCompiler, **kw: Any) -> str | None:
    if is_implicit_rowid(element.element):
        return None  # SQLAlchemy leaves a column out of CREATE TABLE when this is None
    rendered: str | None = compiler.visit_create_column(element, **kw)  # type: ignore[no-untyped-call]
    return rendered


@compiles(UniqueConstraint, "sqlite")
def _sqlite_unique(element: UniqueConstraint, compiler: DDLCompiler, **kw: Any) -> str | None:
    if any(is_implicit_rowid(c) for c in element.columns):
        return None  # SQLite's rowid is unique already
    return compiler.visit_unique_constraint(element, **kw)


def sqlite_ddl(table: Table, *statements: str) -> None:
    """SQLite-only DDL that belongs to ``table`` (its triggers), run right after it is
    created. It runs at every start, so write it idempotent (``IF NOT EXISTS``)."""
    _after_create(table, "sqlite", statements)


def postgres_ddl(table: Table, *statements: str) -> None:
    """PostgreSQL-only DDL that belongs to ``table`` (trigger functions and triggers).

    Part of the declaration the drift test compares a migrated database with; the
    migrations hold their own frozen copy, as they do of the tables.
    """
    _after_create(table, "postgresql", statements)


def _after_create(table: Table, dialect: str, statements: Iterable[str]) -> None:
    for statement in statements:
        # ``DDL`` formats its text with ``%``: a literal one (plpgsql's RAISE) is doubled.
        ddl = DDL(statement.replace("%", "%%")).execute_if(  # type: ignore[no-untyped-call]
            dialect=dialect)
        event.listen(table, "after_create", ddl)


@functools.cache
def sqlite_script(tables: tuple[Table, ...]) -> str:
    """The SQLite DDL that creates ``tables`` where missing, in order, with their indexes
    and SQLite-only DDL: one script, rendered once per process for each repository."""
    statements: list[str] = []
    dialect = sqlite.dialect()

    def collect(element: ExecutableDDLElement, *args: Any, **kwargs: Any) -> None:
        if isinstance(element, CreateTable):
            element = CreateTable(element.element, if_not_exists=True)
        elif isinstance(element, CreateIndex):
            element = CreateIndex(element.element, if_not_exists=True)
        statements.append(str(element.compile(dialect=dialect)).strip() + ";")

    engine = create_mock_engine("sqlite://", collect)
    for table in tables:
        table.create(engine, checkfirst=False)
    return "\n".join(statements) + "\n"


@dataclass(frozen=True)
class Schema:
    """A part of the durable schema with its own migrations: the broker's or a provider's."""

    name: str  # "broker", or the provider's: its Alembic branch label
    metadata: MetaData
    versions: Path  # its Alembic version location


_registered: dict[str, Schema] = {}


def register_schema(name: str, metadata: MetaData, versions_dir: Path) -> None:
    """Declare a provider's tables and the folder of their PostgreSQL migrations.

    A provider package calls this when it is imported; ``versions_dir`` holds Alembic
    revisions on a branch labelled ``name``. Registering the same thing twice is allowed
    (a module imported again), a different schema under a taken name is not.
    """
    schema = Schema(name, metadata, versions_dir)
    current = _registered.get(name)
    if name == "broker" or (current is not None and current != schema):
        raise ValueError(f"schema {name!r} is already registered")
    _registered[name] = schema


def schemas() -> tuple[Schema, ...]:
    """Every part of the durable schema: the broker's first, then each provider's.

    Loads what declares them: the broker's repositories, then the provider packages,
    which register their schemas on import. (The provider-type refactor moves this into
    the provider type declarations.)
    """
    import importlib

    from providers.types import provider_types

    for module in _BROKER_REPOSITORIES:
        importlib.import_module(module)
    provider_types()
    return (Schema("broker", BROKER, _BROKER_VERSIONS), *_registered.values())
