"""The dashboard snapshot on real files: views over Parquet, any working directory, atomic swap, readers
that hold an old generation, garbage collection of generations nobody holds."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from newsetl.warehouse import snapshot as snapshot_mod
from newsetl.warehouse.snapshot import generations_dir, publish_snapshot, snapshot_path


def publish(db: Path, run_id: str = "run") -> object:
    with duckdb.connect(str(db)) as con:
        return publish_snapshot(con, db, run_id)


def test_snapshot_has_the_warehouse_views_over_parquet(filled_db: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    info = publish(filled_db)
    snap = snapshot_path(filled_db)
    assert snap == filled_db.with_name("news.snapshot.duckdb") and snap.exists()
    assert not info.skipped_views  # type: ignore[attr-defined]
    # Opened from another working directory: the views' paths do not depend on the cwd.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with duckdb.connect(str(snap), read_only=True) as s, duckdb.connect(str(filled_db), read_only=True) as w:
        for view in ("articles", "clusters", "canonical_articles", "publisher_daily_counts", "duplicate_rate",
                     "removals_by_publisher", "quarantine_summary", "quarantine_status", "run_health", "article_days"):
            q = f"SELECT * FROM {view} ORDER BY ALL"
            assert s.execute(q).fetchall() == w.execute(q).fetchall(), view
        # Raw bytes are not copied (documents.raw, quarantine.raw): dashboards do not need them.
        cols = {r[0] for r in s.execute("DESCRIBE documents").fetchall()}
        assert "raw" not in cols and "kind" in cols
        # The dedup internals are not exported.
        assert not s.execute("SELECT * FROM duckdb_views() WHERE view_name = 'lsh_bands'").fetchall()


def test_views_added_to_the_warehouse_elsewhere_come_along(filled_db: Path) -> None:
    with duckdb.connect(str(filled_db)) as con:
        con.execute("CREATE VIEW big_stories AS SELECT cluster_id, copies FROM canonical_articles WHERE copies > 2")
    info = publish(filled_db)
    assert "big_stories" in info.views  # type: ignore[attr-defined]
    with duckdb.connect(str(snapshot_path(filled_db)), read_only=True) as s:
        assert s.execute("SELECT * FROM big_stories").fetchall() == [("a1", 3)]


def test_parquet_files_are_plain_parquet_partitioned_by_month(filled_db: Path) -> None:
    info = publish(filled_db)
    # The DuckDB file has the storage format number of DuckDB 1.0 (64), which 1.x clients open; a 2.0
    # default file is refused by them. (Checked by hand with a DuckDB 1.5 client: docs/operations.md.)
    header = snapshot_path(filled_db).read_bytes()[:20]
    assert header[8:12] == b"DUCK" and int.from_bytes(header[12:20], "little") == 64
    gen = info.generation  # type: ignore[attr-defined]
    months = sorted(p.name for p in (gen / "articles").iterdir())
    assert months == ["month=2025-11", "month=undated"]
    # The tables that grow with every run, by the month of the run that wrote the row.
    for table in ("removals", "documents", "quarantine"):  # (sources: no rows here, one file)
        assert [p.name for p in (gen / table).iterdir()] == ["month=2026-01"], table
    # pyarrow, not DuckDB, reads them back (any Parquet client can).
    table = pq.read_table(gen / "articles")
    assert table.num_rows == 6 and "body" in table.column_names
    assert pq.read_table(gen / "clusters.parquet").num_rows == 3


def test_a_held_snapshot_stays_consistent_and_generations_are_collected(filled_db: Path) -> None:
    first = publish(filled_db, "first").generation  # type: ignore[attr-defined]
    snap = snapshot_path(filled_db)
    # A reader in another process holds the first generation open.
    code = textwrap.dedent(f"""
        import duckdb, sys
        con = duckdb.connect({str(snap)!r}, read_only=True)
        print(con.execute("SELECT count(*) FROM articles").fetchall()[0][0], flush=True)
        sys.stdin.readline()
        print(con.execute("SELECT count(*) FROM articles").fetchall()[0][0], flush=True)
    """)
    reader = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert reader.stdout is not None and reader.stdin is not None
        assert reader.stdout.readline().strip() == "6"
        with duckdb.connect(str(filled_db)) as con:
            con.execute("DELETE FROM articles WHERE article_id = 'a6'")
        second = publish(filled_db, "second").generation  # type: ignore[attr-defined]
        third = publish(filled_db, "third")
        # The held first generation survives two publications; nothing unheld older than the previous does.
        assert first.exists() and second.exists()
        with duckdb.connect(str(snap), read_only=True) as con:
            assert con.execute("SELECT count(*) FROM articles").fetchall() == [(5,)]
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == "6"  # still the old, consistent snapshot
    finally:
        reader.communicate(timeout=60)
    fourth = publish(filled_db, "fourth")
    names = sorted(p.name for p in generations_dir(filled_db).iterdir())
    # The reader is gone: only the current (fourth) and previous (third) generations remain.
    assert names == sorted([third.generation.name, fourth.generation.name])  # type: ignore[attr-defined]
    assert os.stat(snap).st_ino == os.stat(fourth.generation / "snapshot.duckdb").st_ino  # type: ignore[attr-defined]


def test_unchanged_months_are_linked_from_the_previous_generation(filled_db: Path) -> None:
    def inodes(gen: Path) -> dict[str, int]:
        return {p.parent.name: os.stat(p).st_ino for p in (gen / "articles").glob("*/*.parquet")}

    first = inodes(publish(filled_db, "one").generation)  # type: ignore[attr-defined]
    with duckdb.connect(str(filled_db)) as con:
        con.execute("UPDATE articles SET title = 'Rates rise again' WHERE article_id = 'a1'")  # month 2025-11
    second_gen = publish(filled_db, "two").generation  # type: ignore[attr-defined]
    second = inodes(second_gen)
    assert second["month=undated"] == first["month=undated"]  # not rewritten: the same file
    assert second["month=2025-11"] != first["month=2025-11"]
    with duckdb.connect(str(snapshot_path(filled_db)), read_only=True) as s:
        assert s.execute("SELECT title FROM articles WHERE article_id = 'a1'").fetchall() == [("Rates rise again",)]
        assert s.execute("SELECT count(*) FROM articles").fetchall() == [(6,)]


def test_a_month_larger_than_the_memory_limit_is_published(filled_db: Path) -> None:
    # 200 MB of bodies in one month (undated) under a 150 MB limit: the publication streams each month
    # in row groups of bounded bytes (a COPY ... PARTITION_BY held the whole month, and failed here).
    with duckdb.connect(str(filled_db)) as con:
        con.execute("""
            INSERT INTO articles SELECT a.* REPLACE (a.article_id || '-' || i AS article_id,
                                                     repeat('Council budget vote ', 500) || i AS body,
                                                     NULL AS published_at)
            FROM articles a, range(20000) r(i) WHERE a.article_id = 'a1'""")
    with duckdb.connect(str(filled_db), config={"memory_limit": "150MB", "threads": "2"}) as con:
        info = publish_snapshot(con, filled_db, "big")
    assert info.tables["articles"] == 6 + 20000
    with duckdb.connect(str(snapshot_path(filled_db)), read_only=True) as s:
        assert s.execute("SELECT count(*), sum(length(body)) > 200e6 FROM articles").fetchall() == [(20006, True)]


def test_months_written_in_groups_or_alone_are_the_same_snapshot(filled_db: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # Months are written by one partitioned COPY per group of at most PARTITION_GROUP_ROWS rows, a larger
    # month alone: whatever the split, the same month folders and rows.
    with duckdb.connect(str(filled_db)) as con:
        con.execute("""INSERT INTO articles SELECT a.* REPLACE (a.article_id || '-' || i AS article_id,
                           TIMESTAMPTZ '2024-01-15 12:00:00+00' + to_months(i::INT) AS published_at)
                       FROM articles a, range(5) r(i) WHERE a.article_id = 'a1'""")
    expected = None
    for limit in (1, 2, 100):
        monkeypatch.setattr(snapshot_mod, "PARTITION_GROUP_ROWS", limit)
        # From nothing published, so every month is written (none linked from a previous generation).
        shutil.rmtree(generations_dir(filled_db), ignore_errors=True)
        snapshot_path(filled_db).unlink(missing_ok=True)
        gen = publish(filled_db, f"g{limit}").generation  # type: ignore[attr-defined]
        months = sorted(p.name for p in (gen / "articles").iterdir())
        rel = duckdb.sql(f"SELECT * FROM read_parquet('{gen}/articles/*/*.parquet', hive_partitioning = true)")
        assert rel is not None
        rows = sorted(map(str, rel.fetchall()))
        assert len(months) == 7 and len(rows) == 11
        assert expected is None or (months, rows) == expected
        expected = (months, rows)


def query(sql: str) -> list[tuple[Any, ...]]:
    """`sql` on a connection of its own (Parquet files read by path)."""
    with duckdb.connect() as c:
        return c.execute(sql).fetchall()


def test_what_did_not_change_is_linked_from_the_previous_generation_and_what_did_is_written(
        filled_db: Path) -> None:
    """A publication with nothing new links every file of the previous generation but the changed `runs`:
    a scheduled run that found nothing still publishes (dashboards see it in `run_health`) at little cost.
    A changed row of a small table, a changed month of articles, a changed column list and two equal rows
    replaced by two equal others (they cancel in an XOR of hashes) are each written anew."""
    def inode(gen: Path, rel: str) -> int:
        files = sorted((gen / rel).rglob("*.parquet")) if (gen / rel).is_dir() else [gen / rel]
        return files[0].stat().st_ino

    with duckdb.connect(str(filled_db)) as con:
        first = publish_snapshot(con, filled_db, "r1").generation
        con.execute("INSERT INTO runs VALUES ('r9', 'f9', TIMESTAMPTZ '2026-02-09 10:00:00+00', NULL, "
                    "'completed', '{}', '{\"read\": 0}', NULL, NULL)")
        second = publish_snapshot(con, filled_db, "r9").generation
        assert inode(second, "runs.parquet") != inode(first, "runs.parquet")
        for rel in ("clusters.parquet", "removals", "quarantine", "articles"):
            assert inode(second, rel) == inode(first, rel), rel
        # A run's new rows are a part of their own: the earlier runs' parts are linked, not rewritten.
        con.execute("INSERT INTO removals VALUES ('a1', 1, 'share', 'share-2', 'Share on X', 9, 'r9', 'repaired_text')")
        later = publish_snapshot(con, filled_db, "r9b").generation
        assert sorted(p.name for p in (later / "removals").iterdir()) == ["month=2026-01", "month=2026-02"]
        assert inode(later, "removals/month=2026-01") == inode(second, "removals/month=2026-01")
        with duckdb.connect(str(snapshot_path(filled_db)), read_only=True) as snap:
            assert ("r9",) in snap.execute("SELECT run_id FROM run_health").fetchall()

        month, = con.execute("SELECT strftime(min(published_at), '%Y-%m') FROM articles").fetchone() or ("",)
        con.execute("UPDATE articles SET title = title || ' (corrected)' "
                    "WHERE strftime(published_at, '%Y-%m') = ?", [month])
        third = publish_snapshot(con, filled_db, "r10").generation
        changed = {p.parent.name for p in (third / "articles").rglob("*.parquet")
                   if all(p.stat().st_ino != q.stat().st_ino for q in (later / "articles").rglob("*.parquet"))}
        assert changed == {f"month={month}"}
        # A body is fingerprinted through its body_hash (FINGERPRINTED_BY): the re-clean writes both.
        con.execute("UPDATE articles SET body = body || '\nRead more of our coverage', body_hash = sha256(body) "
                    "WHERE published_at IS NULL")
        recleaned = publish_snapshot(con, filled_db, "r10b").generation
        changed = {p.parent.name for p in (recleaned / "articles").rglob("*.parquet")
                   if all(p.stat().st_ino != q.stat().st_ino for q in (third / "articles").rglob("*.parquet"))}
        assert changed == {"month=undated"}

        # Two equal rows become two other equal rows: same count, same XOR of hashes.
        con.execute("CREATE TABLE pairs (v VARCHAR)")
        con.execute("INSERT INTO pairs VALUES ('a'), ('a')")
        fourth = publish_snapshot(con, filled_db, "r11").generation
        con.execute("UPDATE pairs SET v = 'b'")
        fifth = publish_snapshot(con, filled_db, "r12").generation
        assert inode(fifth, "pairs.parquet") != inode(fourth, "pairs.parquet")
        con.execute("ALTER TABLE pairs ADD COLUMN w VARCHAR")
        sixth = publish_snapshot(con, filled_db, "r13").generation
        assert inode(sixth, "pairs.parquet") != inode(fifth, "pairs.parquet")
        # A changed type hashes alike (INTEGER and BIGINT, TIMESTAMP and TIMESTAMPTZ): the type is compared.
        con.execute("CREATE TABLE counts (n INTEGER)")
        con.execute("INSERT INTO counts VALUES (1), (2)")
        publish_snapshot(con, filled_db, "r14")
        con.execute("ALTER TABLE counts ALTER n TYPE BIGINT")
        eighth = publish_snapshot(con, filled_db, "r15").generation
        assert query(f"DESCRIBE SELECT * FROM '{eighth}/counts.parquet'")[0][1] == "BIGINT"
        # An empty table that gains a column, or a table that becomes empty, is written, not linked.
        con.execute("CREATE TABLE empty_one (v VARCHAR)")
        publish_snapshot(con, filled_db, "r16")
        con.execute("ALTER TABLE empty_one ADD COLUMN w VARCHAR")
        con.execute("DELETE FROM counts")
        last = publish_snapshot(con, filled_db, "r17").generation
        assert [c for c, *_ in query(f"DESCRIBE SELECT * FROM '{last}/empty_one.parquet'")] == ["v", "w"]
        assert query(f"SELECT count(*) FROM '{last}/counts.parquet'") == [(0,)]
    with duckdb.connect(str(snapshot_path(filled_db)), read_only=True) as snap:
        assert snap.execute("SELECT * FROM pairs").fetchall() == [("b", None), ("b", None)]
        assert snap.execute("SELECT count(*) FROM articles WHERE title LIKE '%(corrected)'").fetchall()[0][0] > 0
        assert snap.execute("SELECT count(*) FROM articles WHERE body LIKE '%Read more of our coverage'"
                            ).fetchall()[0][0] > 0


def test_a_publication_copies_what_it_would_link_where_the_filesystem_has_no_hard_links(
        filled_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where `os.link` fails, a publication copies what it would link (the unchanged tables and months of
    the previous generation, the public file); it used to fail on the months."""
    def no_links(*args: object, **kw: object) -> None:
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    copied: list[str] = []
    real_copy = snapshot_mod._link_or_copy

    def spy(source: Path, target: Path) -> None:
        copied.append(target.name)
        real_copy(source, target)

    monkeypatch.setattr(snapshot_mod, "_link_or_copy", spy)
    first = publish(filled_db, "first").generation  # type: ignore[attr-defined]
    second = publish(filled_db, "second").generation  # type: ignore[attr-defined]
    assert not os.path.samefile(snapshot_path(filled_db), second / snapshot_mod.SNAPSHOT_FILE)
    assert second != first
    # The unchanged whole tables were copied, not linked and not written anew: same bytes, another file.
    for table in ("clusters.parquet", "runs.parquet"):
        assert (second / table).read_bytes() == (first / table).read_bytes()
        assert (second / table).stat().st_ino != (first / table).stat().st_ino
        assert table in copied
    with duckdb.connect(str(filled_db)) as con:
        stored = con.execute("SELECT count(*) FROM articles").fetchall()
    with duckdb.connect(str(snapshot_path(filled_db)), read_only=True) as snap:
        assert snap.execute("SELECT count(*) FROM articles").fetchall() == stored


def test_articles_are_partitioned_by_their_utc_month_whatever_the_session_time_zone(filled_db: Path) -> None:
    """A publication from a host in New York filed an article of 2026-04-01T02:00Z under March."""
    with duckdb.connect(str(filled_db)) as con:
        con.execute("SET TimeZone = 'America/New_York'")
        con.execute("INSERT INTO articles (article_id, doc_id, source_uri, body, word_count, body_hash, cluster_id, "
                    "is_canonical, run_id, published_at) VALUES ('tz1', 'dtz', '/in/tz', 'b', 1, 'h', 'tz1', true, "
                    "'r1', TIMESTAMPTZ '2026-04-01 02:00:00+00')")
        gen = publish_snapshot(con, filled_db, "tz").generation
    months = {p.parent.name for p in (gen / "articles").rglob("*.parquet")
              if ("tz1",) in query(f"SELECT article_id FROM '{p}'")}
    assert months == {"month=2026-04"}


def test_the_snapshot_carries_the_warehouses_comments(filled_db: Path) -> None:
    # Dashboards and notebooks read the snapshot: its views of the tables, their columns and the analyst
    # views say what they hold, as the warehouse's do (a user trial found every comment NULL there).
    from newsetl.schemas.tables import ARTICLES
    from newsetl.warehouse.views import VIEW_COMMENTS

    with duckdb.connect(str(filled_db)) as con:
        publish_snapshot(con, filled_db, "r1")
    with duckdb.connect(str(filled_db.with_name("news.snapshot.duckdb")), read_only=True) as snap:
        views = dict(snap.execute("SELECT view_name, comment FROM duckdb_views() WHERE NOT internal").fetchall())
        columns = {(t, c): m for t, c, m in snap.execute(
            "SELECT table_name, column_name, comment FROM duckdb_columns() WHERE table_name = 'articles'").fetchall()}
    assert views["articles"] == ARTICLES.comment
    assert views["canonical_articles"] == VIEW_COMMENTS["canonical_articles"]
    assert all(views[v] for v in VIEW_COMMENTS if v in views)
    assert columns[("articles", "body")] == next(c.comment for c in ARTICLES.columns if c.name == "body")
    # the columns of the analyst views that their names do not explain, in the warehouse and the snapshot
    from newsetl.warehouse.views import VIEW_COLUMN_COMMENTS

    query = ("SELECT comment FROM duckdb_columns() WHERE table_name = 'removal_rules' "
             "AND column_name = 'decided_by'")
    for db in (filled_db, filled_db.with_name("news.snapshot.duckdb")):
        with duckdb.connect(str(db), read_only=True) as con:
            assert con.execute(query).fetchall() == [(VIEW_COLUMN_COMMENTS["removal_rules"]["decided_by"],)]
