"""The schema written once (schemas/tables.py): what the migrations create, what the loader builds,
and the upgrade of a warehouse made by the previous release."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import duckdb

from newsetl.schemas.records import Article, RawDocument
from newsetl.schemas.tables import ARTICLES, DOCUMENTS, MIGRATIONS, TABLES, arrow_schema, migration_sql
from newsetl.warehouse.connect import migrate

DATA = Path(__file__).resolve().parents[1] / "data"


def _columns(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str, bool]]]:
    rows = con.execute(
        "SELECT table_name, column_name, data_type, is_nullable FROM duckdb_columns() "
        "WHERE schema_name = 'main' ORDER BY table_name, column_index").fetchall()
    out: dict[str, list[tuple[str, str, bool]]] = {}
    for table, column, dtype, nullable in rows:
        out.setdefault(table, []).append((column, dtype, bool(nullable)))
    return out


def test_fresh_warehouse_has_every_table_as_declared(tmp_path: Path) -> None:
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        migrate(con)
        have = _columns(con)
    for table in TABLES:
        assert [c[0] for c in have[table.name]] == table.names, table.name
        for column, (name, dtype, nullable) in zip(table.columns, have[table.name], strict=True):
            assert dtype == {"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE"}.get(column.duck_type, column.duck_type), name
            assert nullable == column.nullable, (table.name, name)


def test_a_warehouse_of_the_previous_release_upgrades_to_the_same_schema(tmp_path: Path) -> None:
    """Version 2 had the contract tables and `inputs`; dedup and learned tables came from their modules.
    Migrating it must give exactly what a fresh warehouse has, and keep its rows."""
    old = tmp_path / "old.duckdb"
    with duckdb.connect(str(old)) as con:
        con.execute((DATA / "schema_v2.sql").read_text(encoding="utf-8"))
        con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR, "
                    "applied_at TIMESTAMPTZ DEFAULT now())")
        con.execute("INSERT INTO schema_migrations (version, name) VALUES (1, 'contract tables'), (2, 'inputs')")
        con.execute("INSERT INTO runs (run_id, started_at, status) VALUES ('r1', now(), 'completed')")
        assert migrate(con) == [v for v, _ in MIGRATIONS if v > 2]
        assert con.execute("SELECT run_id FROM runs").fetchall() == [("r1",)]
        upgraded = _columns(con)
    with duckdb.connect(str(tmp_path / "new.duckdb")) as con:
        assert migrate(con) == [v for v, _ in MIGRATIONS]
        fresh = _columns(con)
    assert upgraded.keys() == fresh.keys()
    for table in fresh:
        assert upgraded[table] == fresh[table], table


def test_migrations_are_numbered_in_order_and_each_creates_something() -> None:
    versions = [v for v, _ in MIGRATIONS]
    # Increasing and unique; gaps are versions reserved by work on other branches (applied in order
    # once merged: a warehouse records each version it applied, not the highest).
    assert versions == sorted(set(versions)) and versions[0] == 1
    for v in versions:  # a migration creates a table or a column, or (data only) changes rows
        sql = migration_sql(v)
        data_only = sql.lstrip().startswith(("INSERT", "DELETE", "CREATE TEMP TABLE"))
        assert "CREATE TABLE" in sql or "ADD COLUMN" in sql or data_only, v
    assert {t.since for t in TABLES} <= set(versions)


def test_loader_schemas_are_the_table_columns_it_writes() -> None:
    assert arrow_schema(ARTICLES).names == [c.name for c in ARTICLES.columns if c.loaded]
    assert "cluster_id" not in arrow_schema(ARTICLES).names  # set by dedup, in SQL
    # Every field of the pipeline's records that the loader stores has its column.
    stored = {"article_id", "doc_id", "source_uri", "external_id", "url", "publisher", "original_publisher",
              "title", "subtitle", "byline", "published_at", "fetched_at", "language", "body", "word_count",
              "content_type", "repairs", "extra"}
    assert stored <= {f.name for f in fields(Article)}
    assert stored <= set(ARTICLES.names)
    assert {"doc_id", "source_uri", "kind", "content_type", "encoding", "raw", "external_id", "url",
            "fetched_at"} <= {f.name for f in fields(RawDocument)} & set(DOCUMENTS.names)


def test_columns_carry_their_comments(con: duckdb.DuckDBPyConnection) -> None:
    comment = con.execute("SELECT comment FROM duckdb_columns() WHERE table_name = 'documents' "
                          "AND column_name = 'raw'").fetchall()[0][0]
    assert comment.startswith("the bytes as received: a file's (inflated when gzipped)")


def test_the_analysts_tables_and_every_view_say_what_they_hold(con: duckdb.DuckDBPyConnection) -> None:
    """An analyst reads the schema with SQL (`DESCRIBE`, duckdb_columns(), duckdb_views()): the views had no
    comment and a third of the articles' columns none either (a user trial)."""
    bare = con.execute("SELECT table_name, column_name FROM duckdb_columns() WHERE comment IS NULL AND table_name "
                       "IN ('articles', 'clusters') ORDER BY ALL").fetchall()
    assert bare == [], bare
    views = dict(con.execute("SELECT view_name, comment FROM duckdb_views() WHERE NOT internal").fetchall())
    assert views and all(views.values()), views
