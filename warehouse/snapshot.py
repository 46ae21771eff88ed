"""The read-only snapshot for dashboards: `<stem>.snapshot.duckdb` next to the warehouse.

Why: DuckDB lets one process hold the warehouse file at a time. A dashboard that polls it fails to open
while an ingest writes, and one that keeps its connection open makes the ingest fail; DuckDB 1.x clients
cannot open a 2.0 file at all. So after every completed run, newsetl publishes a
*generation*: the analyst-facing tables written as Parquet (readable by any client: DuckDB 1.x, pyarrow,
Spark, BI tools) plus a small DuckDB file whose views have the warehouse's names (`articles`,
`clusters`, `canonical_articles`, `publisher_daily_counts`, `duplicate_rate`, ...) over those files.

Layout, for a warehouse `warehouse/newsetl.duckdb`:

    warehouse/newsetl.snapshot.duckdb          hard link to the current generation's snapshot.duckdb
    warehouse/newsetl.snapshot/
        g-20260101T120000123456-<run>/         one generation, never modified once published
            articles/month=2026-01/*.parquet   (by publication month, `undated` without one)
            removals/month=2026-12/*.parquet   (documents, sources, duplicate_pairs, quarantine: by the
                                                month of the run that wrote the row)
            clusters.parquet, runs.parquet, ...
            snapshot.duckdb                    views over the Parquet files of this generation only

Publication never waits for a reader: the new generation is written beside the old one and the name
`<stem>.snapshot.duckdb` is swapped with os.replace (atomic). A reader that holds the old file keeps
the old inode, whose views name the old generation's files, so it sees one consistent old snapshot
until it reconnects. Old generations are deleted once no process has their snapshot.duckdb open: DuckDB
holds a POSIX read lock on a database file while it is open, which an OFD write lock probe sees (also
from the same process). The previous generation is always kept, for readers of the Parquet files that
hold no lock (Spark, pyarrow). On Linux, an unlinked file stays readable for a process that has it open,
but a view re-reads its Parquet files by path on every query: hence the lock probe, not just unlinking.

Views name their Parquet files by absolute path, so the snapshot opens from any working directory (DuckDB
resolves relative paths against the process's cwd, not the database file's folder). Moving the folder
breaks the views (not the Parquet files): the next publication writes them anew (`newsetl reclean` publishes
without new input), and the CLI's read commands say so on a moved snapshot (`published_folder`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypedDict

import duckdb

from newsetl.schemas.tables import comment_sql
from newsetl.warehouse.views import VIEWS, comment_views

SNAPSHOT_FILE = "snapshot.duckdb"
# Tables a dashboard has no use for (dedup and learned-boilerplate internals, the read log) or that
# would be most of the bytes (raw inputs: BLOB columns are dropped from every exported table).
INTERNAL_TABLES = frozenset({
    "schema_migrations", "inputs", "dedup_meta", "lsh_bands",
    "boilerplate_sightings", "boilerplate_applied", "boilerplate_publisher_clusters",
    "boilerplate_line_clusters", "boilerplate_line_counts",
})


# Tables of which only some columns are exported: of the dedup signatures, the arrival order (`sid`) that
# `article_versions` orders two captures of one page in one dump file by (they share the file's time).
EXPORTED_COLUMNS = {"signatures": frozenset({"sid", "article_id", "run_id"})}


def _run_month(run_id: str) -> str:
    """SQL: the UTC month the run `run_id` (a qualified column) started in, 'unknown' for no such run."""
    return (f"COALESCE((SELECT strftime(timezone('UTC', r.started_at), '%Y-%m') FROM runs r "
            f"WHERE r.run_id = {run_id}), 'unknown')")


# Tables written as one folder of `month=<part>/` files, by a SQL expression per row, so that a publication
# rewrites the parts a run changed and links the rest: articles by their UTC publication month (a
# dashboard filtering on a month reads that month's files only; `undated` without one); the tables that
# grow with every run by the month of the run that wrote the row. As whole files, every publication of a
# 1M-article warehouse rewrote their 10M rows, whatever the run added (a scale audit, 2026-12-06).
# Measured and not taken: undated articles by the month of their load run. A publication after a small
# run then wrote 1.7 s instead of 4.1-4.4 s (200k articles, 85% undated, loaded over ten months), but one
# that finds many parts stale (the first, a re-clean across months) wrote 17 s instead of 6 s: parts of
# fewer than PARTITION_GROUP_ROWS go through DuckDB's partitioned writer, one scan of every body per group.
# The months are UTC ones, as every day of the views is: strftime of a TIMESTAMPTZ uses the session's
# time zone, which a host's TZ sets (an ingest in New York filed 2026-04-01T02:00Z under March). Other
# tables are one file each.
PARTITIONED = {
    "articles": "COALESCE(strftime(timezone('UTC', articles.published_at), '%Y-%m'), 'undated')",
    "documents": _run_month("documents.first_run_id"),
    "removals": _run_month("removals.run_id"),
    "sources": _run_month("sources.run_id"),
    "duplicate_pairs": _run_month("duplicate_pairs.run_id"),
    "quarantine": _run_month("quarantine.run_id"),
    "signatures": _run_month("signatures.run_id"),
}
# A Parquet row group ends at this many rows or bytes, whichever comes first (DuckDB's default is
# 122,880 rows, whatever their size). A row group is what a writer thread holds and compresses at once and
# what a reader skips by its statistics. Measured on the 100k re-scrape warehouse (its 88k undated bodies,
# 5 KB each, were one row group compressed by one thread): 12.8 s -> 7.3 s at 20,000 rows with 1 GB of
# memory, same bytes (157 vs 156 MB of articles; 10,000 and 50,000 rows no better). The byte bound keeps
# a group of long bodies from needing 100 MB at once, so the publication fits a small memory limit
# (tasks/publish.py; a 32 MB bound still failed under 150 MB with two threads).
PARQUET_ROW_GROUP = 20_000
PARQUET_ROW_GROUP_BYTES = "16MB"
# Rows of the months one partitioned COPY writes at once (see _write_parquet).
PARTITION_GROUP_ROWS = 20_000
# Columns a table's fingerprint reads through another column that changes whenever they do. `body` is most
# of the warehouse's bytes, and every publication fingerprints every table: hashing the bodies took 4.9 of
# a no-op publication's ~6 s at 1M articles, hashing all the other columns 0.36 s. `body_hash` (the sha256
# of the body's words) is written with the body wherever one is written, at load and by the re-clean's
# UPDATE, whose removal of a learned line (words, by construction) always changes it.
FINGERPRINTED_BY = {"articles": {"body": "body_hash"}}
# The snapshot's DuckDB file is written in the storage format of DuckDB 1.0, so 1.x clients open it.
STORAGE_VERSION = "v1.0.0"


def snapshot_path(db: str | Path) -> Path:
    """`<dir>/<stem>.snapshot.duckdb` for the warehouse `<dir>/<stem>.duckdb`."""
    db = Path(db)
    return db.with_name(f"{db.stem}.snapshot.duckdb")


def generations_dir(db: str | Path) -> Path:
    db = Path(db)
    return db.with_name(f"{db.stem}.snapshot")


def folder_read_by(path: str | Path) -> Path | None:
    """The generations folder whose Parquet files the views of snapshot file `path` read (`path` is
    `snapshot_path(db)` or a generation's own snapshot.duckdb); None when `path` is not a snapshot."""
    p = Path(path).resolve()
    for folder in (p.with_suffix(""), p.parent.parent if p.name == SNAPSHOT_FILE else None):
        if folder is not None and folder.name.endswith(".snapshot") and folder.is_dir():
            return folder
    return None


# The first file a snapshot view reads: `read_parquet('<path>'...` as DuckDB keeps a view's SQL (a quote
# in the path doubled).
_VIEW_SOURCE = re.compile(r"read_parquet\('((?:[^']|'')+)'")


def published_folder(con: duckdb.DuckDBPyConnection) -> Path | None:
    """The generations folder whose Parquet files the views of the open snapshot `con` read, as they were
    written at publication (None when no view reads a file). When it is not `folder_read_by` of the file
    opened, the snapshot was moved or copied: its views name files by absolute path (see the module's
    docstring) and read another folder's generation, or nothing."""
    for (sql,) in con.execute("SELECT sql FROM duckdb_views() WHERE NOT internal").fetchall():
        m = _VIEW_SOURCE.search(sql or "")
        if m is None:
            continue
        path = Path(m.group(1).replace("''", "'"))
        for parent in path.parents:
            if parent.name.startswith("g-") and parent.parent.name.endswith(".snapshot"):
                return parent.parent
    return None


@dataclass
class SnapshotInfo:
    path: Path
    generation: Path
    tables: dict[str, int] = field(default_factory=dict)  # table -> rows exported
    views: list[str] = field(default_factory=list)
    skipped_views: dict[str, str] = field(default_factory=dict)  # view -> why it could not be created
    removed_generations: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _quote_path(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _exported_tables(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
    """Base tables to export with their non-BLOB columns (name, type), in catalog order."""
    rows = con.execute(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() "
        "WHERE database_name = current_database() AND schema_name = 'main' "
        "AND table_name IN (SELECT table_name FROM duckdb_tables() "
        "                   WHERE database_name = current_database() AND schema_name = 'main') "
        "ORDER BY table_name, column_index"
    ).fetchall()
    out: dict[str, list[tuple[str, str]]] = {}
    for table, column, dtype in rows:
        if table in INTERNAL_TABLES:
            continue
        cols = out.setdefault(table, [])
        if dtype != "BLOB" and column in EXPORTED_COLUMNS.get(table, (column,)):
            cols.append((column, dtype))
    return out


class TableManifest(TypedDict):
    """What a generation wrote of one table: its exported columns ("name TYPE": DuckDB's hash is the same
    for INTEGER and BIGINT, TIMESTAMP and TIMESTAMPTZ) and their `_fingerprints`."""

    columns: list[str]
    parts: dict[str, list[int]]


def _fingerprints(con: duckdb.DuckDBPyConnection, table: str, select: str,
                  month: str | None) -> dict[str, list[int]]:
    """Per month of `table` (one key "" when it is not partitioned): its rows and two order-independent
    hashes of the `select`ed columns (every exported column, or the one standing in for it:
    FINGERPRINTED_BY). The sum is there because equal rows cancel in the XOR: two copies of
    a row replaced by two copies of another would keep the count and the XOR."""
    key = month or "''"
    return {m: [int(n), int(x), int(s)] for m, n, x, s in con.execute(
        f"SELECT part, count(*), bit_xor(h), sum(h) "
        f'FROM (SELECT {key} AS part, hash({select}) AS h FROM "{table}") GROUP BY part').fetchall()}


def _write_parquet(con: duckdb.DuckDBPyConnection, table: str, typed_columns: list[tuple[str, str]], folder: Path,
                   previous: Path | None, manifest: dict[str, TableManifest]) -> int:
    """Write one table under `folder`; return its row count. What is unchanged since the `previous`
    generation (same columns, same rows: `_fingerprints`) is hard-linked from it rather than rewritten: a
    whole table, or a partitioned table's month. An hourly run touches this month's articles, not ten
    years of bodies, and a run with nothing new rewrites little more than `runs`, so every run can
    publish (dashboards see every run in `run_health`, not only those that loaded something)."""
    columns = [f"{name} {dtype}" for name, dtype in typed_columns]
    select = ", ".join(f'"{name}"' for name, _ in typed_columns)
    # ZSTD level 1: article bodies are most of the bytes; 57 MB for 20k synthetic articles (156 MB of
    # text) in ~4 s, vs 49 MB in ~6.6 s at the default level and 82 MB in ~2.4 s with snappy. Every
    # Parquet reader of the last years reads ZSTD.
    options = (f"FORMAT PARQUET, COMPRESSION ZSTD, COMPRESSION_LEVEL 1, ROW_GROUP_SIZE {PARQUET_ROW_GROUP}, "
               f"ROW_GROUP_SIZE_BYTES '{PARQUET_ROW_GROUP_BYTES}'")
    month = PARTITIONED.get(table)
    stand_ins = FINGERPRINTED_BY.get(table, {})
    hashed = ", ".join(f'"{name}"' for name, _ in typed_columns
                       if name not in stand_ins or stand_ins[name] not in dict(typed_columns))
    fingerprints = _fingerprints(con, table, hashed, month)
    manifest[table] = {"columns": columns, "parts": fingerprints}
    before = _read_manifest(previous).get(table) if previous else None
    # What the previous generation wrote of this table, when it exported the same columns. None when it
    # did not (or wrote no manifest of this version): an empty table's fingerprints, {}, must not match.
    old = before["parts"] if before is not None and before["columns"] == columns else None
    if month is None:
        rows = fingerprints[""][0] if fingerprints else 0
        source = previous / f"{table}.parquet" if previous else None
        if source is not None and source.is_file() and old == fingerprints:
            _link_or_copy(source, folder / f"{table}.parquet")
            return rows
        # An empty table is still written (a file with the schema), so every view has something to read.
        con.execute(f"COPY (SELECT {select} FROM \"{table}\") TO {_quote_path(folder / f'{table}.parquet')} "
                    f"({options})")
        return rows
    if not fingerprints:
        con.execute(f"COPY (SELECT {select} FROM \"{table}\") TO {_quote_path(folder / f'{table}.parquet')} "
                    f"({options})")
        return 0
    target = folder / table
    target.mkdir()
    stale = []
    for m, fp in fingerprints.items():
        source = previous / table / f"month={m}" if previous else None
        if source is not None and old is not None and old.get(m) == fp and source.is_dir():
            (target / f"month={m}").mkdir()
            for f in source.iterdir():
                _link_or_copy(f, target / f"month={m}" / f.name)
        else:
            stale.append(m)
    # The stale months in groups of at most PARTITION_GROUP_ROWS rows, one COPY ... PARTITION_BY per
    # group; a month larger than that alone, in a plain (streaming) COPY. One COPY of every stale month
    # buffered the rows of a large month before writing them: the 100k re-scrape warehouse (88k undated
    # bodies in one month) failed with "Out of Memory" under a 400 MB limit. One COPY per month instead
    # scanned the table once per month: 4.3 -> 32.9 s for 100k articles over 120 months. Grouped, both
    # publish under 400 MB. The files are the same either way: `month=.../data_0.parquet`, without the
    # month column.
    groups: list[list[str]] = []
    held = PARTITION_GROUP_ROWS
    for m in stale:
        rows_m = fingerprints[m][0]
        if rows_m > PARTITION_GROUP_ROWS:
            (target / f"month={m}").mkdir()
            con.execute(f"COPY (SELECT {select} FROM \"{table}\" WHERE {month} = ?) "
                        f"TO {_quote_path(target / f'month={m}' / 'data_0.parquet')} ({options})", [m])
            continue
        if held + rows_m > PARTITION_GROUP_ROWS:
            groups.append([])
            held = 0
        groups[-1].append(m)
        held += rows_m
    for k, group in enumerate(groups):
        staging = folder / f".{table}.new{k}"
        con.execute(
            f"COPY (SELECT {select}, {month} AS month FROM \"{table}\" "
            f"WHERE {month} IN (SELECT unnest(?))) "
            f"TO {_quote_path(staging)} ({options}, PARTITION_BY (month))", [group])
        for part in staging.iterdir():
            os.rename(part, target / part.name)
        staging.rmdir()
    return sum(fp[0] for fp in fingerprints.values())


MANIFEST = "manifest.json"
# What a generation's manifest.json holds: per table, its exported columns and `_fingerprints`. Another
# version (or none) is read as empty, so that generation's files are all written anew once.
MANIFEST_VERSION = 4  # 3: articles fingerprinted through body_hash; 4: the growing tables PARTITIONED


def _read_manifest(generation: Path) -> dict[str, TableManifest]:
    try:
        data = json.loads((generation / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION:
        return {}
    return {table: TableManifest(columns=list(entry.get("columns") or []), parts=dict(entry.get("parts") or {}))
            for table, entry in (data.get("tables") or {}).items() if isinstance(entry, dict)}


def _views_sql(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The warehouse's analyst views, as it has them now (the code's VIEWS first, then any view another
    part of newsetl created in the warehouse), so the snapshot's views mean what the warehouse's do."""
    out = dict(VIEWS)
    for name, sql in con.execute(
        "SELECT view_name, sql FROM duckdb_views() WHERE NOT internal AND database_name = current_database() "
        "AND schema_name = 'main'"
    ).fetchall():
        if name not in out and sql:
            # duckdb_views().sql is the full CREATE VIEW statement: keep what follows its AS.
            head = f"CREATE VIEW {name} AS "
            out[name] = sql[len(head):].rstrip().rstrip(";") if sql.startswith(head) else sql
    return out


def _is_open_elsewhere(path: Path) -> bool:
    """Whether any process (this one included) has the DuckDB file open: DuckDB holds a POSIX record
    lock on an open database file (a read lock when read-only); an OFD write-lock probe conflicts with it
    (OFD and POSIX locks conflict even within one process). Where OFD locks are unavailable, assume open."""
    ofd = getattr(fcntl, "F_OFD_SETLK", None)
    if ofd is None:
        return True
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    try:
        # struct flock: l_type, l_whence, l_start, l_len, l_pid (0 for OFD locks)
        lock = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        try:
            fcntl.fcntl(fd, ofd, lock)
        except OSError:
            return True
        fcntl.fcntl(fd, ofd, struct.pack("hhqqi4x", fcntl.F_UNLCK, os.SEEK_SET, 0, 0, 0))
        return False
    finally:
        os.close(fd)


def _collect(db: Path, current: Path) -> list[str]:
    """Delete generations that are neither current nor the previous one and that no process holds."""
    root = generations_dir(db)
    published = sorted(p for p in root.glob("g-*") if p.is_dir())
    keep = {current}
    older = [p for p in published if p.name < current.name]
    if older:
        keep.add(older[-1])
    removed: list[str] = []
    for gen in published:
        if gen in keep or _is_open_elsewhere(gen / SNAPSHOT_FILE):
            continue
        shutil.rmtree(gen, ignore_errors=True)
        removed.append(gen.name)
    # Half-written generations of a publication that died (only one run publishes at a time: the
    # caller holds the warehouse's run lock).
    for tmp in root.glob(".tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)
    return removed


def publish_snapshot(con: duckdb.DuckDBPyConnection, db: str | Path, run_id: str = "") -> SnapshotInfo:
    """Publish a new snapshot generation of the warehouse `db` (read through `con`) and swap it in.

    The caller holds the warehouse's run lock (only one publication at a time). Never waits for readers
    of the snapshot."""
    t0 = time.perf_counter()
    db = Path(db).resolve()
    root = generations_dir(db)
    root.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    name = f"g-{stamp}-{run_id[:8]}" if run_id else f"g-{stamp}"
    tmp = root / f".tmp-{name}"
    gen = root / name
    info = SnapshotInfo(path=snapshot_path(db), generation=gen)
    published = sorted(p for p in root.glob("g-*") if (p / SNAPSHOT_FILE).exists())
    previous = published[-1] if published else None
    tmp.mkdir()
    try:
        sources: dict[str, str] = {}
        manifest: dict[str, TableManifest] = {}
        for table, cols in _exported_tables(con).items():
            info.tables[table] = _write_parquet(con, table, cols, tmp, previous, manifest)
        (tmp / MANIFEST).write_text(json.dumps({"version": MANIFEST_VERSION, "tables": manifest}),
                                    encoding="utf-8")
        views = _views_sql(con)
        # The views name the generation's final folder: rename first (atomic), then write the views.
        os.rename(tmp, gen)
        for table in info.tables:
            partitioned = PARTITIONED.get(table) is not None and (gen / table).is_dir()
            sources[table] = (
                f"read_parquet({_quote_path(gen / table / '*' / '*.parquet')}, hive_partitioning = true)"
                if partitioned else f"read_parquet({_quote_path(gen / f'{table}.parquet')})"
            )
        _write_views(gen / SNAPSHOT_FILE, sources, views, info)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(gen, ignore_errors=True)
        raise
    _swap_in(gen / SNAPSHOT_FILE, info.path)
    info.removed_generations = _collect(db, gen)
    info.seconds = time.perf_counter() - t0
    return info


def _write_views(path: Path, sources: dict[str, str], views: dict[str, str], info: SnapshotInfo) -> None:
    snap = duckdb.connect(":memory:")
    try:
        snap.execute(f"ATTACH {_quote_path(path)} AS snap (STORAGE_VERSION '{STORAGE_VERSION}')")
        snap.execute("USE snap")
        for table, source in sources.items():
            # The month partition column is for pruning; `articles` keeps the warehouse's columns.
            select = "* EXCLUDE (month)" if "hive_partitioning" in source else "*"
            snap.execute(f'CREATE VIEW "{table}" AS SELECT {select} FROM {source}')
        # A view may use another defined after it in the dict: retry until nothing more resolves.
        pending = {k: v for k, v in views.items() if k not in sources}
        while pending:
            progressed = False
            errors: dict[str, str] = {}
            for view, sql in list(pending.items()):
                try:
                    snap.execute(f'CREATE VIEW "{view}" AS {sql}')
                except duckdb.Error as exc:
                    errors[view] = str(exc).splitlines()[0]
                    continue
                info.views.append(view)
                del pending[view]
                progressed = True
            if not progressed:
                info.skipped_views.update(errors)
                break
        _comment(snap, set(sources), info.views)
        snap.execute("USE memory")
        snap.execute("DETACH snap")
    finally:
        snap.close()


def _comment(snap: duckdb.DuckDBPyConnection, tables: set[str], views: Sequence[str]) -> None:
    """The warehouse's comments on the snapshot's views (of its tables and analyst views) and their columns:
    dashboards and notebooks read the snapshot, and found every comment NULL there (a user trial)."""
    exported = {(t, c) for t, c in snap.execute(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = 'snap'").fetchall()}
    for statement in comment_sql(on="VIEW", names=tables, columns=exported):
        snap.execute(statement)
    comment_views(snap, views)


def _swap_in(generation_file: Path, public: Path) -> None:
    """Point `public` at the generation's file atomically: a hard link under a temporary name, then
    os.replace. (A copy where the filesystem has no hard links: the file holds views only, a few KB.)"""
    staging = public.with_name(f".{public.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        staging.unlink()
    _link_or_copy(generation_file, staging)
    os.replace(staging, public)


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link to `source` at `target`, or a copy where the filesystem has no hard links (some
    network and container mounts)."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
