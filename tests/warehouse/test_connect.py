"""Warehouse plumbing on real temporary DuckDB files: migrations, views, locks, busy readers."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

import newsetl.warehouse.connect as connect_module
from newsetl.schemas.tables import MIGRATIONS
from newsetl.sources.reasons import BAD_JSON, TOO_LARGE
from newsetl.warehouse.connect import (
    MEMORY_ENV,
    HeldWriter,
    WarehouseBusy,
    WarehouseError,
    connect,
    fold_wal_into_file,
    migrate,
    run_lock,
    writer,
)
from newsetl.warehouse.load import record_inputs, unchanged_inputs
from newsetl.warehouse.views import VIEWS

CONTRACT = {
    "runs": {"run_id", "flow_run_id", "started_at", "finished_at", "status", "params", "counts"},
    "documents": {"doc_id", "source_uri", "kind", "raw", "bytes", "first_run_id"},
    "articles": {"article_id", "doc_id", "source_uri", "external_id", "url", "publisher", "original_publisher",
                 "title", "byline", "published_at", "language", "body", "word_count", "cluster_id",
                 "is_canonical", "run_id"},
    "removals": {"article_id", "category", "rule", "text", "position"},
    "quarantine": {"source_uri", "run_id", "stage", "reason", "detail"},
    "clusters": {"cluster_id", "canonical_article_id", "size"},
}


def columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    rows = con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]).fetchall()
    return {r[0] for r in rows}


def test_migrate_creates_contract_tables_and_views_once(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    with writer(db) as con:
        assert migrate(con) == [m[0] for m in MIGRATIONS]
        assert migrate(con) == []  # applied once, recorded
        for table, cols in CONTRACT.items():
            missing = cols - columns(con, table)
            assert not missing, f"{table} lacks {missing}"
        for view in VIEWS:
            con.execute(f"SELECT * FROM {view} LIMIT 0").fetchall()


def test_a_duckdb_file_of_someone_elses_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    db = tmp_path / "sales.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE articles (id INT, name VARCHAR); INSERT INTO articles VALUES (1, 'x')")
        con.execute("CREATE SCHEMA crm; CREATE VIEW crm.people AS SELECT 1 AS id")
    with writer(db) as con, pytest.raises(WarehouseError, match=r"not a newsetl warehouse \(it holds crm\.people, "
                                                                 r"articles\).*give a new file with --db"):
        migrate(con, db)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT table_name FROM duckdb_tables()").fetchall() == [("articles",)]
        assert columns(con, "articles") == {"id", "name"}  # no newsetl column added to the user's table
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()  # an empty file (an ingest stopped before it migrated) is fine
    with writer(empty) as con:
        assert migrate(con, empty) == [m[0] for m in MIGRATIONS]


def test_a_warehouse_a_newer_newsetl_upgraded_is_not_written_by_this_one(tmp_path: Path) -> None:
    # An old install's cron job beside an upgraded one: it put its own view definitions back over the newer
    # ones and loaded rows without the newer columns (a user trial).
    db = tmp_path / "w.duckdb"
    newer = MIGRATIONS[-1][0] + 1
    with writer(db) as con:
        migrate(con, db)
        con.execute("CREATE OR REPLACE VIEW canonical_articles AS SELECT 'newer definition' AS marker")
        con.execute("INSERT INTO schema_migrations (version, name) VALUES (?, 'from the future')", [newer])
    with writer(db) as con, pytest.raises(WarehouseError, match=rf"upgraded by a newer newsetl \(schema version "
                                                                 rf"{newer}; this newsetl knows up to {newer - 1}\)"):
        migrate(con, db)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT marker FROM canonical_articles").fetchall() == [("newer definition",)]


def test_inputs_are_remembered_by_size_and_mtime(tmp_path: Path) -> None:
    with writer(tmp_path / "w.duckdb") as con:
        migrate(con)
        record_inputs(con, [("/a.txt", 10, 111, 1, None), ("/b.jsonl", 20, 222, 7, None)], "r1")
        record_inputs(con, [("/a.txt", 10, 111, 1, None)], "r2")  # re-recording is an upsert
        got = unchanged_inputs(con, [("/a.txt", 10, 111, None), ("/b.jsonl", 20, 999, None), ("/c.txt", 1, 1, None)])
        assert got == {"/a.txt": 1}  # b changed (mtime), c never seen
        assert con.execute("SELECT count(*) FROM inputs").fetchall()[0][0] == 2


def test_an_input_with_another_ctime_is_not_unchanged_and_one_recorded_without_is_compared_without(
        tmp_path: Path) -> None:
    with writer(tmp_path / "w.duckdb") as con:
        migrate(con)
        record_inputs(con, [("/a.txt", 10, 111, 1, None, 5000), ("/old.txt", 10, 111, 1, None)], "r1")
        got = unchanged_inputs(con, [("/a.txt", 10, 111, None, 5000), ("/old.txt", 10, 111, None, 7000)])
        assert got == {"/a.txt": 1, "/old.txt": 1}  # /old.txt: recorded before version 12, no ctime
        assert unchanged_inputs(con, [("/a.txt", 10, 111, None, 6000)]) == {}  # replaced: same size and mtime


def test_an_input_read_under_another_field_mapping_is_not_unchanged(tmp_path: Path) -> None:
    """A mapping, or another one, may read more of a file: read again. No mapping after one reads nothing
    the mapped read did not (a mapped path only comes first), and read again it quarantined the records
    that needed the mapping: unchanged."""
    with writer(tmp_path / "w.duckdb") as con:
        migrate(con)
        record_inputs(con, [("/d.jsonl", 20, 222, 7, None), ("/m.jsonl", 20, 222, 7, "text=story")], "r1")
        assert unchanged_inputs(con, [("/d.jsonl", 20, 222, "text=story"), ("/m.jsonl", 20, 222, "text=body")]) == {}
        assert unchanged_inputs(con, [("/m.jsonl", 20, 222, None)]) == {"/m.jsonl": 7}
        assert unchanged_inputs(con, [("/d.jsonl", 20, 222, None), ("/m.jsonl", 20, 222, "text=story")]) == {
            "/d.jsonl": 7, "/m.jsonl": 7}
        record_inputs(con, [("/d.jsonl", 20, 222, 7, "text=story")], "r2")  # read again under the mapping
        assert unchanged_inputs(con, [("/d.jsonl", 20, 222, "text=story")]) == {"/d.jsonl": 7}


def test_migration_10_forgets_json_inputs_the_old_reader_refused(tmp_path: Path) -> None:
    # A warehouse made before version 10: a .json refused whole as too large and one whose lines were
    # quarantined as broken JSON (a cut-off array read line by line) are recorded as read. The reader now
    # streams both, so the migration forgets them and the next run reads them again; other inputs stay.
    with writer(tmp_path / "w.duckdb") as con:
        migrate(con)
        con.execute("DELETE FROM schema_migrations WHERE version = 10")
        record_inputs(con, [("/in/big.json", 9, 1, 1, None), ("/in/cut.JSON.gz", 9, 1, 3, None),
                            ("/in/fine.json", 9, 1, 2, None), ("/in/big.txt", 9, 1, 1, None),
                            ("/in/lines.jsonl", 9, 1, 4, None), ("/in/id.json", 9, 1, 1, None),
                            ("/in/wide.NDJSON.gz", 9, 1, 1, None), ("/in/x.jsonl.bak", 9, 1, 1, None),
                            ("/in/two.json", 9, 1, 1, None), ("/in/bodiless.json", 9, 1, 3, None)], "r0")
        rows = [("/in/big.json", "too_large"), ("/in/cut.JSON.gz#1", "bad_json"), ("/in/cut.JSON.gz#2", "bad_json"),
                ("/in/big.txt", "too_large"), ("/in/lines.jsonl#3", "bad_json"), ("/in/id.json#x7", "bad_json"),
                ("/in/fine.json#4", "bad_record"), ("/in/lines.jsonl#5", "too_large"),
                ("/in/wide.NDJSON.gz", "too_large"), ("/in/x.jsonl.bak", "too_large"),
                ("/in/two.json#1", "bad_record"), ("/in/bodiless.json#2", "bad_record")]
        no_body = "line {} has no non-empty string body in html/text; its fields: a, b"
        for n, (uri, reason) in enumerate(rows):
            detail = no_body.format(uri.rsplit("#", 1)[-1]) if reason == "bad_record" else ""
            con.execute("INSERT INTO quarantine (quarantine_id, source_uri, run_id, stage, reason, detail, "
                        "quarantined_at) VALUES (?, ?, 'r0', 'read', ?, ?, now())", [f"q{n}", uri, reason, detail])
        assert migrate(con) == [10]
        kept = {r[0] for r in con.execute("SELECT path FROM inputs").fetchall()}
        # JSON lines with one line over the limit ("#5") or a broken line were read whole; wide JSON lines
        # refused whole are read again; "#x7" is a record id, not a line of a cut-off array; the bodiless
        # second record of an array is not a whole response taken as one record
        assert kept == {"/in/fine.json", "/in/big.txt", "/in/lines.jsonl", "/in/id.json", "/in/x.jsonl.bak",
                        "/in/bodiless.json"}
    # the migration names the reasons as literals (schemas imports nothing of ours): the reader's still
    assert (TOO_LARGE, BAD_JSON) == ("too_large", "bad_json")


def test_migration_13_rekeys_the_sources_rows_of_refusals_without_a_doc_id(tmp_path: Path) -> None:
    """Before version 13 a doc-less refusal's sources row was keyed by its uri alone; the loader now keys it
    by its quarantine row. Re-keyed by the migration, the refusal met again adds no second row."""
    from newsetl.schemas.records import Rejection
    from newsetl.text.sign import SignConfig, sign_words
    from newsetl.warehouse.dedup import DedupConfig
    from newsetl.warehouse.load import load_batch
    from newsetl.warehouse.rows import quarantine_ids

    pipe = Rejection("/in/pipe.fifo", "read", "not_regular_file", "a FIFO")
    with writer(tmp_path / "w.duckdb") as con:
        migrate(con)
        con.execute("DELETE FROM schema_migrations WHERE version = 13")
        (qid,) = quarantine_ids([pipe])
        con.execute("INSERT INTO quarantine (quarantine_id, source_uri, run_id, stage, reason, detail, quarantined_at) "
                    "VALUES (?, '/in/pipe.fifo', 'r0', 'read', 'not_regular_file', 'a FIFO', now())", [qid])
        old_key = hashlib.sha256(b"/in/pipe.fifo\x00").hexdigest()  # as the loader keyed it before
        con.execute("INSERT INTO sources VALUES (?, '/in/pipe.fifo', NULL, 'quarantined', 'read:not_regular_file', "
                    "'r0', now())", [old_key])
        assert migrate(con) == [13]
        (key,), = con.execute("SELECT source_key FROM sources").fetchall()
        assert key == hashlib.sha256(f"/in/pipe.fifo\x00\x00{qid}".encode()).hexdigest()
        load_batch(con, "r1", docs=[], articles=[], signatures=sign_words([], SignConfig()),
                   dedup=DedupConfig(sign=SignConfig()), rejections=[pipe])
        assert con.execute("SELECT count(*) FROM sources").fetchall() == [(1,)]


def test_migration_14_rekeys_refusals_with_a_doc_id_and_records_the_loads_they_hid(tmp_path: Path) -> None:
    """Before version 14 a refusal with a doc_id (the time limit) was keyed by (uri, doc_id), the key of
    the retry's load of the same document: the load was never recorded and quarantine_status kept the
    refusal open. The migration re-keys the refusal and records the load as its run's."""
    from newsetl.schemas.records import Rejection
    from newsetl.warehouse.rows import quarantine_ids

    slow = Rejection("/in/slow.html", "process", "time_limit", "over 60 s", doc_id="d1")
    with writer(tmp_path / "w.duckdb") as con:
        migrate(con)
        con.execute("DELETE FROM schema_migrations WHERE version = 14")
        (qid,) = quarantine_ids([slow])
        con.execute("INSERT INTO runs (run_id, started_at, finished_at, status) VALUES "
                    "('r0', TIMESTAMPTZ '2026-12-01 10:00:00+00', TIMESTAMPTZ '2026-12-01 10:05:00+00', 'completed'), "
                    "('r1', TIMESTAMPTZ '2026-12-02 10:00:00+00', TIMESTAMPTZ '2026-12-02 10:05:00+00', 'completed')")
        con.execute("INSERT INTO quarantine (quarantine_id, source_uri, doc_id, run_id, stage, reason, detail, "
                    "quarantined_at) VALUES (?, '/in/slow.html', 'd1', 'r0', 'process', 'time_limit', 'over 60 s', "
                    "TIMESTAMPTZ '2026-12-01 10:01:00+00')", [qid])
        old_key = hashlib.sha256(b"/in/slow.html\x00d1").hexdigest()  # as the loader keyed it before
        con.execute("INSERT INTO sources VALUES (?, '/in/slow.html', 'd1', 'quarantined', 'process:time_limit', "
                    "'r0', TIMESTAMPTZ '2026-12-01 10:01:00+00')", [old_key])
        # the retry in r1 loaded it; its sources row collided with the refusal's key and was not recorded
        con.execute("INSERT INTO articles (article_id, doc_id, source_uri, body, word_count, body_hash, run_id) "
                    "VALUES ('a1', 'd1', '/in/slow.html', 'Body.', 1, 'h', 'r1')")
        assert con.execute("SELECT resolved_at FROM quarantine_status").fetchall() == [(None,)]
        assert migrate(con) == [14]
        rows = con.execute("SELECT source_key, outcome, run_id FROM sources ORDER BY run_id").fetchall()
        assert rows == [(hashlib.sha256(f"/in/slow.html\x00d1\x00{qid}".encode()).hexdigest(), "quarantined", "r0"),
                        (old_key, "loaded", "r1")]
        (resolved,) = con.execute("SELECT resolved_run_id FROM quarantine_status").fetchall()
        assert resolved == ("r1",)
        # the loader keys both the same way now: recording them again adds nothing
        from newsetl.warehouse.lineage import _sources_rows, record_sources

        again = _sources_rows("r2", [("/in/slow.html", "d1", "quarantined", "process:time_limit", qid),
                                     ("/in/slow.html", "d1", "loaded", None, None)])
        assert record_sources(con, again) == 0
        assert migrate(con) == []


def lock_in_another_process(db: Path) -> str:
    """What a second process taking the run lock of `db` prints: "acquired" or "busy: <why>". (flock is per
    open file description, so a second process is the honest test.)"""
    code = textwrap.dedent(f"""
        from newsetl.warehouse.connect import run_lock, WarehouseBusy
        try:
            with run_lock({str(db)!r}):
                print("acquired")
        except WarehouseBusy as exc:
            print("busy:", exc)
    """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout


def test_run_lock_refuses_a_second_holder(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    with run_lock(db):
        out = lock_in_another_process(db)
        assert out.startswith("busy:") and "another newsetl ingest or reclean is running" in out
        # the holder is named, as a reader holding the file is: the pid it wrote and its command line
        assert f"(pid {os.getpid()} (" in out and "pytest" in out, out
    with run_lock(db):  # released on exit
        pass


def _hold_run_lock(db: str, held: Any, release: Any) -> None:
    with run_lock(db):
        held.set()
        release.wait(60)


def test_a_holder_that_multiprocessing_started_is_named_by_its_parent(tmp_path: Path) -> None:
    """A served run holds the lock in a process Prefect spawned, whose command line says only `python3 -B -c
    from multiprocessing.spawn import spawn_main ...` (a user trial): the message names who started it."""
    import multiprocessing

    db = tmp_path / "w.duckdb"
    ctx = multiprocessing.get_context("spawn")
    held, release = ctx.Event(), ctx.Event()
    child = ctx.Process(target=_hold_run_lock, args=(str(db), held, release))
    child.start()
    try:
        assert held.wait(60)
        out = lock_in_another_process(db)
    finally:
        release.set()
        child.join(60)
    assert out.startswith("busy:") and f"pid {child.pid} (started by pid {os.getpid()}: " in out, out
    assert "pytest" in out and "spawn_main" not in out, out


def test_run_lock_holds_the_file_whatever_name_it_is_given_by(tmp_path: Path) -> None:
    """A symlink to the warehouse (or a path through one) is the same warehouse: two runs given it by two
    names took two locks and interleaved their batches."""
    db = tmp_path / "w.duckdb"
    db.touch()
    (tmp_path / "alias").mkdir()
    (tmp_path / "alias" / "w.duckdb").symlink_to(db)
    (tmp_path / "linkdir").symlink_to(tmp_path)
    with run_lock(db):
        for other in (tmp_path / "alias" / "w.duckdb", tmp_path / "linkdir" / "w.duckdb"):
            out = lock_in_another_process(other)
            assert out.startswith("busy:"), (other, out)


def _opened_by(pid: int, path: Path) -> bool:
    """Whether process `pid` has `path` open (one of its descriptors names it)."""
    import psutil

    with contextlib.suppress(psutil.Error):
        return any(f.path == str(path) for f in psutil.Process(pid).open_files())
    return False


def test_a_discarded_lock_file_is_removed_only_if_made_here_and_never_from_under_a_waiter(tmp_path: Path) -> None:
    """A refused command removes the `<db>.lock` it made (a user trial found one beside every path given by
    mistake), while it holds it. A second process that had opened that file and waits for its flock then
    gets the flock of a file no path names: it must notice and lock the path's file instead, or a third
    process would make a new lock file and run beside it. A lock file that was there before stays."""
    db = tmp_path / "w.duckdb"
    lock_path = Path(f"{db}.lock")
    wait = textwrap.dedent(f"""
        import sys
        from newsetl.warehouse.connect import run_lock
        with run_lock({str(db)!r}, wait_seconds=60):
            print("holding", flush=True)
            sys.stdin.read()
    """)
    with run_lock(db) as lock:
        assert lock.created
        waiter = subprocess.Popen([sys.executable, "-c", wait], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)
        try:
            deadline = time.monotonic() + 60
            while not _opened_by(waiter.pid, lock_path):  # it opened this file and polls its flock
                assert waiter.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
            lock.discard()
        except BaseException:
            waiter.kill()
            raise
    try:
        assert waiter.stdout is not None and waiter.stdout.readline().strip() == "holding"
        # it holds the file the path names now (made again), and a third process is refused
        assert lock_path.read_text().split() == [str(waiter.pid)]
        out = lock_in_another_process(db)
        assert out.startswith("busy:") and f"pid {waiter.pid}" in out, out
    finally:
        waiter.communicate("", timeout=60)
    with run_lock(db) as lock:  # there before this process took it: stays
        assert not lock.created
        lock.discard()
    assert lock_path.exists()
    with run_lock(db):  # not discarded: stays, as every run's lock file does
        pass
    assert lock_path.exists()


def _hold_in_another_process(db: Path, seconds: float) -> subprocess.Popen[str]:
    """A process that opens `db` (DuckDB's lock: no other process can open it) and keeps it `seconds`;
    returns once it holds the file. The caller waits for it."""
    hold = textwrap.dedent(f"""
        import duckdb, time
        con = duckdb.connect({str(db)!r})
        print("holding", flush=True)
        time.sleep({seconds})
        con.close()
    """)
    proc = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
    return proc


def test_reader_retries_while_a_writer_process_holds_the_file(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    with writer(db) as con:
        migrate(con)
    proc = _hold_in_another_process(db, 2.0)
    try:
        messages: list[str] = []
        with pytest.raises(WarehouseBusy, match="busy"):
            connect(db, read_only=True, wait_seconds=0.3, say=messages.append)
        started = time.monotonic()
        con = connect(db, read_only=True, wait_seconds=30, say=messages.append)
        waited = time.monotonic() - started
        assert con.execute("SELECT count(*) FROM articles").fetchall() == [(0,)]
        con.close()
        assert waited > 0.2 and any("busy" in m and "retrying" in m for m in messages)
    finally:
        proc.wait(timeout=30)


def test_quiet_busy_notices_waits_without_a_word(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """`newsetl ingest --quiet` prints errors only: a wait for a busy warehouse that ends by itself printed
    "busy, retrying" all the same (a user trial; cron mails whatever a job prints)."""
    from newsetl.warehouse import connect as connect_mod

    monkeypatch.setattr(connect_mod, "_busy_notice", connect_mod._busy_notice)  # restored after the test
    db = tmp_path / "w.duckdb"
    with writer(db) as con:
        migrate(con)

    def wait_once() -> str:
        proc = _hold_in_another_process(db, 1.5)
        try:
            connect(db, read_only=True, wait_seconds=30).close()
        finally:
            proc.wait(timeout=30)
        return capsys.readouterr().err

    assert "retrying" in wait_once()
    connect_mod.quiet_busy_notices()
    assert wait_once() == ""


def _reader_can_open(db: Path) -> bool:
    """Whether another process can open `db` read-only right now (DuckDB's lock is per process)."""
    probe = textwrap.dedent(f"""
        import duckdb, sys
        try:
            duckdb.connect({str(db)!r}, read_only=True).close()
        except duckdb.IOException:
            sys.exit(1)
    """)
    return subprocess.run([sys.executable, "-c", probe], timeout=60).returncode == 0


def test_held_writer_shares_one_connection_then_lets_readers_in(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    with writer(db) as con:
        migrate(con)
    held = HeldWriter(db, hold_seconds=3600, threads=1)
    for i in range(3):  # three loads, one connection; each its own transaction
        with held.use() as con:
            con.execute("BEGIN TRANSACTION")
            con.execute("INSERT INTO inputs (path, size, mtime_ns, documents, last_run_id, recorded_at) "
                        "VALUES (?, 1, 1, 1, ?, now())",
                        [f"p{i}", "r"])
            con.execute("COMMIT")
    assert held.opens == 1
    assert not _reader_can_open(db)  # held between loads
    # A failed load lets go of the connection; the next one opens a fresh one and sees the commits.
    with pytest.raises(duckdb.Error), held.use() as con:
        con.execute("SELECT * FROM no_such_table")
    assert _reader_can_open(db)
    with held.use() as con:
        assert con.execute("SELECT count(*) FROM inputs").fetchall() == [(3,)]
    assert held.opens == 2
    held.close()
    assert _reader_can_open(db)
    # Held for no time at all: every load lets go at its end, as a short writer does.
    brief = HeldWriter(db, hold_seconds=0.0)
    with brief.use():
        pass
    assert _reader_can_open(db)


def test_held_writer_pauses_keep_the_file_unless_a_reader_waits(tmp_path: Path) -> None:
    # `idle` (the writer is about to wait for its workers) keeps the connection while nobody waits, so
    # the next load does not reopen the warehouse; a reader retrying through `connect` (another process)
    # marks that it waits, and the next pause lets it in.
    db = tmp_path / "w.duckdb"
    with writer(db) as con:
        migrate(con)
    held = HeldWriter(db, hold_seconds=3600, threads=1)
    with held.use():
        pass
    held.idle()
    assert not _reader_can_open(db)  # a bare DuckDB probe does not ask: still held
    with held.use():
        pass
    assert held.opens == 1
    reader = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        from newsetl.warehouse.connect import connect
        con = connect({str(db)!r}, read_only=True, wait_seconds=60)
        print(con.execute("SELECT count(*) FROM inputs").fetchall()[0][0], flush=True)
        con.close()
    """)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not held._reader_waiting():  # the reader has met the held file and retries
            assert time.monotonic() < deadline and reader.poll() is None, "the reader never asked"
            time.sleep(0.05)
        held.idle()
        out, _ = reader.communicate(timeout=60)
        assert reader.returncode == 0 and out.strip() == "0"
        assert not Path(f"{db}.waiting").exists()  # the reader took its mark away once in
    finally:
        if reader.poll() is None:
            reader.kill()
    with held.use():  # the next load opens the file again
        pass
    assert held.opens == 2
    held.close()


def test_clear_errors_for_missing_or_unwritable_warehouse(tmp_path: Path) -> None:
    with pytest.raises(WarehouseError, match="no warehouse"):
        connect(tmp_path / "nope.duckdb", read_only=True)
    not_db = tmp_path / "text.duckdb"
    not_db.write_text("this is not a database")
    with pytest.raises(WarehouseError, match="cannot open"):
        connect(not_db)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(WarehouseError):
        connect(blocker / "sub" / "w.duckdb")  # parent is a file: cannot create the directory


def test_a_batch_records_its_files_in_its_own_transaction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The files a batch completes are recorded as read in that batch's transaction: if the load fails,
    neither its articles nor the files are in, so the next run reads them again."""
    import newsetl.warehouse.load as load
    from newsetl.schemas.records import Article, RawDocument
    from newsetl.sources.document import document_from_bytes
    from newsetl.tasks.pool import process_and_sign
    from newsetl.text.lsh import DedupConfig
    from newsetl.text.pipeline import ProcessConfig, make_context
    from newsetl.text.sign import SignConfig
    from newsetl.warehouse.dedup import check_scheme

    story = ("Harbour council approves the ferry timetable\n\nThe harbour council approved a new ferry timetable "
             "on Tuesday after a long public consultation that ran for most of the spring. Residents had asked "
             "for an earlier first crossing for years, the council chair said at the meeting on the quay.\n")
    docs = []
    for i in range(3):
        doc = document_from_bytes(f"/in/{i}.txt", story.replace("Tuesday", f"day {i}").encode(), "txt")
        assert isinstance(doc, RawDocument)
        docs.append(doc)
    outcomes, sigs = process_and_sign(docs, make_context(ProcessConfig()), 0, SignConfig())
    articles = [o for o in outcomes if isinstance(o, Article)]
    assert len(articles) == 3
    files = [(f"/in/{i}.txt", 300, 1_000 + i, 1, None) for i in range(3)]
    dedup = DedupConfig()
    with writer(tmp_path / "w.duckdb") as con:
        migrate(con)
        check_scheme(con, dedup)

        def fail(*args: object, **kwargs: object) -> None:
            raise RuntimeError("injected: the load fails after its inserts")

        with monkeypatch.context() as patch:
            patch.setattr(load, "record_sightings", fail)
            with pytest.raises(RuntimeError, match="injected"):
                load.load_batch(con, "r1", docs, articles, sigs, [], dedup, inputs=files)
        assert con.execute("SELECT count(*) FROM inputs").fetchall()[0][0] == 0
        assert con.execute("SELECT count(*) FROM articles").fetchall()[0][0] == 0
        load.load_batch(con, "r2", docs, articles, sigs, [], dedup, inputs=files)
        stats = [(p, size, mtime, None) for p, size, mtime, *_ in files]
        assert unchanged_inputs(con, stats) == {p: 1 for p, *_ in files}
        assert con.execute("SELECT count(*) FROM articles").fetchall()[0][0] == 3


def limit(con: duckdb.DuckDBPyConnection) -> str:
    """The connection's memory limit as DuckDB shows it (MiB: "286.1 MiB" for 300MB)."""
    return str(con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])


def test_load_connections_take_their_memory_limit_unless_the_user_set_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "w.duckdb"
    monkeypatch.delenv(MEMORY_ENV, raising=False)
    with writer(db) as con:
        default = limit(con)
    with writer(db, memory_limit="300MB") as con:
        assert limit(con) != default and limit(con).startswith(("286", "300"))  # DuckDB shows MiB
    held = HeldWriter(db, hold_seconds=0.0, memory_limit="300MB")
    with held.use() as con:
        assert limit(con).startswith(("286", "300"))
    monkeypatch.setenv(MEMORY_ENV, "700MB")  # the user's setting wins over the caller's
    with writer(db, memory_limit="300MB") as con:
        assert limit(con).startswith(("667", "700"))


def test_a_wal_fold_runs_under_the_fold_memory_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The fold runs under its own limit (the cache is evicted first, so a merge of row groups has the room);
    # the WAL is folded into the file; the user's NEWSETL_DUCKDB_MEMORY still wins.
    db = tmp_path / "w.duckdb"
    monkeypatch.delenv(MEMORY_ENV, raising=False)
    with writer(db) as con:
        migrate(con)
    held = HeldWriter(db, hold_seconds=3600, memory_limit="800MB", fold_memory_limit="300MB")
    with held.use() as con:
        con.execute("CREATE TABLE t AS SELECT range AS i, repeat('x', 200) AS s FROM range(50000)")
        assert limit(con).startswith(("762", "800"))
        assert Path(f"{db}.wal").stat().st_size > 0
        fold_wal_into_file(con, held.fold_memory_limit)
        assert limit(con).startswith(("286", "300"))
        assert not Path(f"{db}.wal").exists() or Path(f"{db}.wal").stat().st_size == 0
    held.close()
    monkeypatch.setenv(MEMORY_ENV, "700MB")
    with writer(db, memory_limit="800MB", fold_memory_limit="300MB") as con:
        fold_wal_into_file(con, "300MB")
        assert limit(con).startswith(("667", "700"))


def _row_groups(db: Path, table: str) -> int:
    with writer(db) as con:
        return int(con.execute(f"SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('{table}')")
                   .fetchall()[0][0])


def test_a_large_runs_folds_leave_its_row_groups_a_small_runs_merge(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # Each fold puts its rows in a new row group. A run that has folded more than SMALL_RUN_WAL_BYTES
    # keeps them (merging rewrote every row several times on long runs); a small run's folds merge them
    # as DuckDB's checkpoints do (tiny row groups bloat the file).
    monkeypatch.setattr(connect_module, "WAL_CHECKPOINT_BYTES", 0)  # every close folds
    groups = {}
    for small in (True, False):
        monkeypatch.setattr(connect_module, "SMALL_RUN_WAL_BYTES", 1 << 40 if small else 0)
        db = tmp_path / f"small-{small}.duckdb"
        with writer(db) as con:
            con.execute("CREATE TABLE t (i BIGINT, s VARCHAR)")
        held = HeldWriter(db, hold_seconds=0)  # lets go (and folds) after every load
        for k in range(12):
            with held.use() as con:
                con.execute("INSERT INTO t SELECT range + ?, repeat('x', 100) FROM range(500)", [k * 500])
        held.close(final=True)
        assert held.folded_bytes > 0
        # A write after the run (the run row, a re-clean) checkpoints as it closes: after a large run it
        # leaves the run's row groups too.
        with writer(db) as con:
            con.execute("INSERT INTO t VALUES (6000, 'after')")
        groups[small] = _row_groups(db, "t")
        with writer(db) as con:
            assert con.execute("SELECT count(*), sum(i) FROM t").fetchall()[0] == (6001, 6001 * 6000 // 2)
    assert groups[True] <= 2 and groups[False] == 13, groups
    # The next run starts small again: once its batch loads start, a write merges what there is to merge.
    db = tmp_path / "small-False.duckdb"
    HeldWriter(db, hold_seconds=0)  # as `holding_writes` does when a run's batch loads begin
    with writer(db) as con:
        con.execute("INSERT INTO t VALUES (6001, 'next run')")
    assert _row_groups(db, "t") <= 2


def test_the_runs_last_close_folds_what_is_left(tmp_path: Path) -> None:
    # Below WAL_CHECKPOINT_BYTES a close leaves the WAL for the next connection; the run's last close folds
    # it, under the run's rule, so that no later write of the run merges the run's row groups after all.
    db = tmp_path / "w.duckdb"
    with writer(db) as con:
        con.execute("CREATE TABLE t (i BIGINT)")
    held = HeldWriter(db, hold_seconds=3600)
    for final in (False, True):
        with held.use() as con:
            con.execute("INSERT INTO t SELECT range FROM range(1000)")
        held.close(final=final)
        wal = Path(f"{db}.wal")
        assert (wal.exists() and wal.stat().st_size > 0) is not final


def test_a_held_connection_folds_a_large_wal_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Held for its whole run (long hold), a connection whose WAL passes HELD_FOLD_BYTES folds it into the
    # file after the load and keeps going on the same connection: DuckDB does not hold every load of the
    # run until the end. Below the threshold the WAL stays for the hold's end.
    db = tmp_path / "w.duckdb"
    with writer(db) as con:
        con.execute("CREATE TABLE t (i BIGINT, s VARCHAR)")
    monkeypatch.setattr(connect_module, "HELD_FOLD_BYTES", 1 << 20)
    held = HeldWriter(db, hold_seconds=3600)
    wal = Path(f"{db}.wal")
    sizes = []
    for k in range(4):
        with held.use() as con:
            con.execute("INSERT INTO t SELECT range + ?, repeat('x', 100) || range FROM range(5000)", [k * 5000])
        sizes.append(wal.stat().st_size if wal.exists() else 0)
    assert held.opens == 1
    assert max(sizes) < 1 << 20 and held.folded_bytes > 1 << 20, (sizes, held.folded_bytes)
    with held.use() as con:
        con.execute("INSERT INTO t VALUES (-1, 'small')")  # a load below the threshold is not folded
    assert wal.stat().st_size > 0
    held.close(final=True)
    with writer(db) as con:
        assert con.execute("SELECT count(*), sum(i) FROM t").fetchall()[0] == (20001, 20000 * 19999 // 2 - 1)


def test_an_error_inside_a_transaction_is_not_masked_by_the_unregister_after_it(tmp_path: Path) -> None:
    """DuckDB refuses even `unregister` in a transaction an error aborted; every register's `finally`
    used to raise that TransactionException instead of the error itself (a re-clean out of memory was
    reported as an unwritable warehouse). The batch load's sightings step, its table gone, shows it."""
    from newsetl.warehouse.learned import record_sightings
    from newsetl.warehouse.rows import sightings_table

    db = tmp_path / "w.duckdb"
    with writer(db) as con:
        migrate(con, str(db))
        con.execute("DROP TABLE articles CASCADE")
        table = sightings_table([("a1", "Gazette", None, "Sign up for our newsletter today")])
        assert table.num_rows
        con.execute("BEGIN")
        with pytest.raises(duckdb.CatalogException, match="articles"):
            record_sightings(con, table, own_transaction=False)
        con.execute("ROLLBACK")


def test_migration_15_names_the_text_of_each_removals_position(tmp_path: Path) -> None:
    """Version 15 adds `removals.offset_in`; rows recorded before get it where their rule tells: describe's
    head lines the cleaned body, a re-clean's learned line (a later run than its article's) the stored
    body, any other rule the repaired text. A learned line of the article's own run stays NULL (taken at
    load or by that run's re-clean: the row cannot tell)."""
    with writer(tmp_path / "w.duckdb") as con:
        migrate(con)
        con.execute("DELETE FROM schema_migrations WHERE version = 15")
        con.execute("INSERT INTO articles (article_id, doc_id, source_uri, body, word_count, body_hash, run_id) "
                    "VALUES ('a1', 'd1', '/in/a.txt', 'Body.', 1, 'h', 'r1')")
        con.execute("""INSERT INTO removals (article_id, seq, category, rule, text, position, run_id) VALUES
            ('a1', 0, 'ad_marker', 'ad.marker', 'Advertisement', 10, 'r1'),
            ('a1', 1, 'title', 'head_title', 'Ferry timetable', 0, 'r1'),
            ('a1', 2, 'model', 'linemodel-v5:0.91', 'Read more', 40, 'r1'),
            ('a1', 3, 'learned', 'learned', 'A footer', 60, 'r1'),
            ('a1', 4, 'learned', 'learned', 'Another footer', 61, 'r2')""")
        assert migrate(con) == [15]
        rows = con.execute("SELECT seq, offset_in FROM removals ORDER BY seq").fetchall()
        assert rows == [(0, "repaired_text"), (1, "cleaned_body"), (2, "repaired_text"), (3, None),
                        (4, "stored_body")]
        assert migrate(con) == []


def test_migration_17_names_the_page_of_each_refused_capture(tmp_path: Path) -> None:
    """Version 17 adds `quarantine.url`, which a later load of the page resolves (quarantine_status); rows
    refused before get it from the detail their WARC refusal wrote, or their uri when it is a fetched URL.
    Other refusals have no page: NULL."""
    with writer(tmp_path / "w.duckdb") as con:
        migrate(con)
        con.execute("DELETE FROM schema_migrations WHERE version = 17")
        con.execute("""INSERT INTO quarantine (quarantine_id, source_uri, run_id, stage, reason, detail,
                                               quarantined_at) VALUES
            ('q1', '/c/one.warc.gz#urn:uuid:1', 'r1', 'read', 'bad_warc',
             'record for https://news.example/a is truncated: 120 bytes missing', now()),
            ('q2', '/c/one.warc.gz#urn:uuid:2', 'r1', 'read', 'too_large',
             'payload of https://news.example/b is over the limit of 10 bytes', now()),
            ('q3', 'https://news.example/c', 'r1', 'read', 'http_error', 'HTTP 503 Service Unavailable', now()),
            ('q4', '/in/a.jsonl#3', 'r1', 'read', 'bad_json', 'line 3 is not valid JSON', now()),
            ('q5', '/c/two.warc#urn:uuid:5', 'r1', 'read', 'warc_truncated',
             'capture of https://news.example/e is marked WARC-Truncated: length (cut by the crawler)', now()),
            ('q6', '/c/two.warc#urn:uuid:6', 'r1', 'read', 'warc_truncated',
             'capture of https://news.example/f holds 90 of the 300 bytes its HTTP Content-Length says', now())""")
        assert migrate(con) == [17]
        rows = con.execute("SELECT quarantine_id, url FROM quarantine ORDER BY 1").fetchall()
        assert rows == [("q1", "https://news.example/a"), ("q2", "https://news.example/b"),
                        ("q3", "https://news.example/c"), ("q4", None), ("q5", "https://news.example/e"),
                        ("q6", "https://news.example/f")]
        assert migrate(con) == []
