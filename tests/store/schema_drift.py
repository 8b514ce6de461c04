"""How the drift tests read a schema: from the declaration, or from a real database.

Two views, because neither sees everything:

* ``metadata_diffs``: Alembic's ``compare_metadata`` of a database against the declared
  ``MetaData`` (tables, columns with type, nullability and default, foreign keys,
  unique constraints, indexes), without the differences the declaration itself says are
  one dialect's (SQLite's implicit ``rowid``; identity columns, which SQLite spells
  AUTOINCREMENT: ``describe`` checks that instead).
* ``describe``: one line per column, key, check, index, trigger, function and table
  option, read back from the database's catalog. Two databases of the same dialect are
  compared this way: one made the way the code makes it (the start-up DDL, or the
  migrations) and one made by ``create_all`` straight from the declaration. That covers
  what ``compare_metadata`` does not: primary keys, check constraints, the WHERE of a
  partial index, triggers, functions, AUTOINCREMENT and WITHOUT ROWID.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, Identity, Index, MetaData, UniqueConstraint, inspect, text
from sqlalchemy.schema import SchemaItem

from broker.store.schema import is_implicit_rowid, schemas
from broker.store.sqlite import EPHEMERAL


def durable_metadata() -> list[MetaData]:
    """Every registered part of the durable schema: what PostgreSQL must hold."""
    return [s.metadata for s in schemas()]


def sqlite_metadata() -> list[MetaData]:
    """What the embedded file must hold: the durable schema and the ephemeral table."""
    return [*durable_metadata(), EPHEMERAL]


def create_declared(conn: Connection, metadatas: Sequence[MetaData]) -> None:
    """A database made by nothing but the declaration (tables, indexes, triggers)."""
    for metadata in metadatas:
        metadata.create_all(conn)


def _include(obj: SchemaItem, name: str | None, type_: str, reflected: bool,
             compare_to: SchemaItem | None) -> bool:
    """Leave out what the declaration says SQLite has without declaring it."""
    if reflected:
        return True
    if type_ == "column":
        return not is_implicit_rowid(obj)  # type: ignore[arg-type]
    if type_ == "unique_constraint":
        assert isinstance(obj, UniqueConstraint)
        table = obj.table
        return not all(is_implicit_rowid(table.c[c.name]) for c in obj.columns)
    return True


def metadata_diffs(conn: Connection, metadatas: Sequence[MetaData]) -> list[str]:
    """``compare_metadata`` of the database on ``conn`` against ``metadatas``, one line
    per difference."""
    sqlite = conn.dialect.name == "sqlite"
    opts: dict[str, Any] = {"compare_type": True, "compare_server_default": True,
                            "include_object": _include if sqlite else None}
    context = MigrationContext.configure(conn, opts=opts)
    out: list[str] = []
    for diff in compare_metadata(context, list(metadatas)):
        for item in diff if isinstance(diff, list) else [diff]:
            if sqlite and item[0] == "modify_default" and isinstance(item[-1], Identity):
                continue  # SQLite has no identity columns: AUTOINCREMENT, in ``describe``
            out.append(_render(item))
    return sorted(out)


def _render(item: tuple[Any, ...]) -> str:
    kind = item[0]
    if kind in ("add_table", "remove_table"):
        return f"{kind} {item[1].name}"
    if kind in ("add_column", "remove_column"):
        return f"{kind} {item[2]}.{item[3].name}"
    if kind in ("add_index", "remove_index"):
        index: Index = item[1]
        return f"{kind} {index.table.name if index.table is not None else '?'}: {index.name}" \
               f" ({', '.join(c.name for c in index.columns)})"
    if kind in ("add_constraint", "remove_constraint", "add_fk", "remove_fk"):
        constraint = item[1]
        return f"{kind} {constraint.table.name}: {constraint.name}" \
               f" ({', '.join(c.name for c in constraint.columns)})"
    if kind.startswith("modify_"):
        return f"{kind} {item[2]}.{item[3]}: {item[5]!r} -> {item[6]!r}"
    return repr(item)


def _norm(sql: object) -> str:
    """SQL text without layout and without the idempotence the start-up DDL adds."""
    return " ".join(str(sql).replace("IF NOT EXISTS ", "").split())


def describe(conn: Connection, tables: Iterable[str]) -> set[str]:
    """One line per column, key, check, index, trigger and table option of ``tables``,
    and per function the schema holds (PostgreSQL), as the database's catalog has them."""
    inspector = inspect(conn)
    dialect = conn.dialect.name
    lines: set[str] = set()
    for table in tables:
        for col in inspector.get_columns(table):
            computed = col.get("computed")
            identity = col.get("identity")
            lines.add(
                f"{table}.{col['name']} {col['type']}"
                f" {'null' if col['nullable'] else 'not null'}"
                f" default={_norm(col['default']) if col['default'] is not None else None}"
                + (f" generated={_norm(computed['sqltext'])}"
                   f" stored={computed.get('persisted')}" if computed else "")
                + (f" identity always={identity['always']}" if identity else ""))
        pk = inspector.get_pk_constraint(table)
        lines.add(f"{table}: primary key ({', '.join(pk['constrained_columns'])})")
        for fk in inspector.get_foreign_keys(table):
            lines.add(f"{table}: foreign key ({', '.join(fk['constrained_columns'])})"
                      f" -> {fk['referred_table']} ({', '.join(fk['referred_columns'])})")
        for unique in inspector.get_unique_constraints(table):
            lines.add(f"{table}: unique {unique['name'] if dialect != 'sqlite' else ''}"
                      f" ({', '.join(unique['column_names'])})")
        for index in inspector.get_indexes(table):
            if index.get("duplicates_constraint"):
                continue  # the index of a unique constraint, listed above
            options = index.get("dialect_options", {})
            where = options.get("sqlite_where", options.get("postgresql_where"))
            lines.add(f"{table}: {'unique ' if index['unique'] else ''}index {index['name']}"
                      f" ({', '.join(str(c) for c in index['column_names'])})"
                      + (f" where {_norm(where)}" if where is not None else ""))
        if dialect == "sqlite":
            for check in inspector.get_check_constraints(table):
                lines.add(f"{table}: check {_norm(check['sqltext'])}")
            lines |= _sqlite_extras(conn, table)
        else:
            lines |= _postgres_extras(conn, table)
    if dialect != "sqlite":
        for name, definition in conn.execute(text(
                "SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p"
                " JOIN pg_namespace n ON n.oid = p.pronamespace"
                " WHERE n.nspname = current_schema()")):
            lines.add(f"function {name}: {_norm(definition)}")
    return lines


def _sqlite_extras(conn: Connection, table: str) -> set[str]:
    lines = set()
    (sql,) = conn.execute(text("SELECT sql FROM sqlite_master WHERE type = 'table'"
                               " AND name = :t"), {"t": table}).one()
    if re.search(r"\bAUTOINCREMENT\b", sql, re.IGNORECASE):
        lines.add(f"{table}: AUTOINCREMENT")
    if re.search(r"\bWITHOUT\s+ROWID\b", sql, re.IGNORECASE):
        lines.add(f"{table}: WITHOUT ROWID")
    for name, trigger in conn.execute(text("SELECT name, sql FROM sqlite_master"
                                           " WHERE type = 'trigger' AND tbl_name = :t"),
                                      {"t": table}):
        lines.add(f"{table}: trigger {name}: {_norm(trigger)}")
    return lines


def _postgres_extras(conn: Connection, table: str) -> set[str]:
    lines = set()
    for name, definition in conn.execute(text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = CAST(:t AS regclass) AND contype = 'c'"), {"t": table}):
        lines.add(f"{table}: check {name} {definition}")
    for definition, in conn.execute(text(
            "SELECT pg_get_indexdef(indexrelid) FROM pg_index"
            " WHERE indrelid = CAST(:t AS regclass)"), {"t": table}):
        lines.add(f"{table}: {definition}")
    for name, definition in conn.execute(text(
            "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger"
            " WHERE tgrelid = CAST(:t AS regclass) AND NOT tgisinternal"), {"t": table}):
        lines.add(f"{table}: trigger {name}: {definition}")
    return lines


def tables_of(metadatas: Sequence[MetaData]) -> list[str]:
    """The names of every table ``metadatas`` declare."""
    return sorted(name for metadata in metadatas for name in metadata.tables)
