"""The ingest flow under a real (temporary) Prefect API, on real DuckDB files."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

# Subprocesses, servers and whole flow runs: part of CI, not of the `-m "not slow"` inner loop.
pytestmark = pytest.mark.slow

TABLES = ("documents", "articles", "removals", "quarantine", "clusters")

STORY = (
    "Harbour council approves new ferry timetable\n\n"
    "The harbour council approved a new ferry timetable on Tuesday after a long public consultation.\n\n"
    "- Advertisement -\n\n"
    "Residents of the island had asked for an earlier first crossing and a later last one for years.\n\n"
    "The new timetable adds two sailings on weekdays and moves the Sunday service forward by an hour, "
    "which the operator says will cost less than expected because the older vessel stays in reserve.\n\n"
    "“We listened, and this timetable is the result,” the council chair said at the meeting.\n\n"
    "Join our commenting forum\n"
)


def counts(db: Path) -> dict[str, int]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in (*TABLES, "runs")}


def run(sources: list[str], db: Path, **kw: Any) -> dict[str, Any]:
    from newsetl.flows.ingest import ingest

    return ingest(sources=sources, db=str(db), **kw)


def write_inputs(folder: Path) -> None:
    folder.mkdir()
    (folder / "story.txt").write_text(STORY, encoding="utf-8")
    (folder / "copy.txt").write_text(STORY + "Share this article\n", encoding="utf-8")
    (folder / "cp1252.txt").write_bytes(STORY.replace("Harbour", "Café").encode("cp1252"))
    (folder / "empty.txt").write_bytes(b"")
    (folder / "binary.html").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (folder / "story.txt.gz").write_bytes(gzip.compress(STORY.replace("ferry", "bus").encode()))
    records = [
        {"id": "r1", "url": "https://example.org/a", "title": "A title", "text": "One two three. " * 40},
        {"id": "r2", "text": ""},
    ]
    (folder / "feed.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n{broken\n")


def test_ingest_loads_quarantines_and_rerun_changes_nothing(prefect_harness: None, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    write_inputs(inputs)
    db = tmp_path / "w.duckdb"
    summary = run([str(inputs)], db, batch_size=2)
    # Every input accounted for: read = loaded + skipped + quarantined.
    assert summary["read"] == summary["loaded"] + summary["skipped_known"] + summary["quarantined"]
    assert summary["skipped_other"] == 0
    assert summary["loaded"] == 5  # story, copy, cp1252, gz, r1
    reasons = summary["quarantine_reasons"]
    assert reasons.get("read:empty_input") == 1
    assert reasons.get("decode:binary_content") == 1
    assert reasons.get("read:bad_json") == 1
    assert reasons.get("read:bad_record") == 1
    first = counts(db)
    assert first["articles"] == 5 and first["quarantine"] == 4 and first["runs"] == 1

    with duckdb.connect(str(db), read_only=True) as con:
        run_row = con.execute("SELECT status, flow_run_id, counts->>'loaded' FROM runs").fetchall()[0]
        assert run_row[0] == "completed" and run_row[1] and run_row[2] == "5"
        # Raw input is kept byte for byte.
        raw = con.execute("SELECT raw FROM documents WHERE source_uri LIKE '%cp1252.txt'").fetchall()[0][0]
        assert raw == (inputs / "cp1252.txt").read_bytes()
        title, body = con.execute(
            "SELECT title, body FROM articles WHERE source_uri LIKE '%cp1252.txt'").fetchall()[0]
        # cp1252 decoded right: the accent in the headline and the curly quotes in the body survive.
        assert title == "Café council approves new ferry timetable"
        assert "“We listened, and this timetable is the result,”" in body
        # Boilerplate removed and recorded; the story kept.
        story = con.execute("SELECT article_id, body FROM articles WHERE source_uri LIKE '%/story.txt'").fetchall()[0]
        assert "Advertisement" not in story[1] and "commenting forum" not in story[1]
        assert "“We listened, and this timetable is the result,” the council chair said" in story[1]
        cats = {r[0] for r in con.execute("SELECT category FROM removals WHERE article_id = ?", [story[0]]).fetchall()}
        assert {"ad_marker", "comment_prompt"} <= cats
        # The copy with extra boilerplate, the cp1252 copy (whose only difference, the headline, is
        # metadata) and the gzipped copy with one word edited are one story: one cluster, one canonical.
        clusters = con.execute(
            "SELECT list(regexp_extract(source_uri, '[^/]+$') ORDER BY source_uri), sum(is_canonical::INT) "
            "FROM articles WHERE external_id IS NULL GROUP BY cluster_id ORDER BY 1").fetchall()
        assert clusters == [(["copy.txt", "cp1252.txt", "story.txt", "story.txt.gz"], 1)]
        methods = {r[0] for r in con.execute("SELECT method FROM duplicate_pairs").fetchall()}
        assert "exact_body" in methods and methods - {"exact_body"}  # both tiers at work
        jsonl = con.execute("SELECT external_id, url, title FROM articles WHERE external_id = 'r1'").fetchall()[0]
        assert jsonl == ("r1", "https://example.org/a", "A title")

    again = run([str(inputs)], db, batch_size=3)
    # Unchanged files are not even read again: all 9 inputs (5 loaded, 4 quarantined) are known.
    assert again["read"] == 9 and again["loaded"] == 0 and again["skipped_known"] == 9
    assert again["unchanged"] == 9  # ... and the summary says they were counted, not read
    assert again["quarantined"] == 0
    second = counts(db)
    assert {k: v for k, v in second.items() if k != "runs"} == {k: v for k, v in first.items() if k != "runs"}
    assert second["runs"] == 2


def test_odd_files_in_a_folder_neither_stop_nor_hang_the_run(prefect_harness: None, tmp_path: Path) -> None:
    import os

    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "story.txt").write_text(STORY, encoding="utf-8")
    # A name that is not UTF-8 (written by a Latin-1 system): stored with its byte escaped, read as any file.
    with open(os.path.join(os.fsencode(inputs), b"caf\xe9.txt"), "wb") as fh:
        fh.write(STORY.replace("ferry", "bus").encode())
    os.mkfifo(inputs / "pipe.txt")  # opened naively, it would wait for a writer forever
    db = tmp_path / "w.duckdb"
    first = run([str(inputs)], db, workers=0)
    assert (first["loaded"], first["quarantine_reasons"]) == (2, {"read:not_regular_file": 1})
    with duckdb.connect(str(db), read_only=True) as con:
        uris = sorted(r[0] for r in con.execute("SELECT source_uri FROM articles").fetchall())
        assert uris == [f"{inputs}/caf\\xe9.txt", f"{inputs}/story.txt"]
        # the pipe's bytes were never read: not recorded as a read input, so each run looks at it again
        assert sorted(r[0] for r in con.execute("SELECT path FROM inputs").fetchall()) == uris
    again = run([str(inputs)], db, workers=0)
    # the pipe is met again, and its refusal is known (a quarantine row with a fixed id): nothing is new, but
    # the run says it was refused again (a feed still down read as a clean run: a user trial), as does
    # run_health for dashboards
    assert (again["loaded"], again["skipped_known"], again["quarantined"], again["refused_again"]) == (0, 3, 0, 1)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT refused_again FROM run_health ORDER BY started_at").fetchall() == [(0,), (1,)]
    assert {k: v for k, v in counts(db).items() if k != "runs"} == {
        "documents": 2, "articles": 2, "removals": counts(db)["removals"], "quarantine": 1, "clusters": 1}


def test_a_run_into_a_warehouse_cut_short_writes_nothing_into_it(prefect_harness: None, tmp_path: Path) -> None:
    """A served run (or a flow called from Python: no CLI checks first) given a warehouse cut short refuses it
    before its first write: the file's bytes as they were (it rewrote the header and added a `runs` row: a
    user trial), and the run report file says why."""
    import hashlib

    from newsetl.tasks.books import report_dir
    from newsetl.warehouse.connect import WarehouseError

    db = tmp_path / "w.duckdb"
    (tmp_path / "a.txt").write_text(STORY)
    run([str(tmp_path / "a.txt")], db, workers=0)
    whole = db.read_bytes()
    db.write_bytes(whole[: len(whole) // 3])
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    (tmp_path / "b.txt").write_text(STORY.replace("ferry", "tram"))
    with pytest.raises(WarehouseError, match="is damaged: the file is cut short"):
        run([str(tmp_path / "b.txt")], db, workers=0)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert any("not started" in p.read_text(encoding="utf-8") and "cut short" in p.read_text(encoding="utf-8")
               for p in report_dir(str(db)).glob("*.md"))


def test_a_run_that_cannot_record_its_start_says_why_in_its_run_report_file(
        prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader holding the warehouse file past the wait: the run's start cannot be written, so there is no
    `runs` row; the run report file beside the warehouse says why (a served run that found the warehouse
    busy left no trace at all: a user trial)."""
    import subprocess
    import sys

    from newsetl.tasks.books import report_dir
    from newsetl.warehouse.connect import WRITE_WAIT_ENV, WarehouseBusy

    db = tmp_path / "w.duckdb"
    (tmp_path / "a.txt").write_text(STORY)
    run([str(tmp_path / "a.txt")], db, workers=0)
    (tmp_path / "b.txt").write_text(STORY.replace("ferry", "tram"))
    hold = ("import duckdb, sys, time; con = duckdb.connect(sys.argv[1], read_only=True); print('held', flush=True); "
            "time.sleep(120)")
    holder = subprocess.Popen([sys.executable, "-c", hold, str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        monkeypatch.setenv(WRITE_WAIT_ENV, "0")
        with pytest.raises(WarehouseBusy):
            run([str(tmp_path / "b.txt")], db, workers=0)
    finally:
        holder.kill()
        holder.wait()
    (report,) = [p for p in report_dir(str(db)).glob("*.md")
                 if "not started" in p.read_text(encoding="utf-8")]
    text = report.read_text(encoding="utf-8")
    assert "has no row for it: WarehouseBusy" in text and f"pid {holder.pid}" in text, text
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [report.stem]).fetchall() == [(0,)]


def test_second_ingest_on_a_locked_warehouse_refuses(prefect_harness: None, tmp_path: Path) -> None:
    from newsetl.warehouse.connect import WarehouseBusy, run_lock

    db = tmp_path / "w.duckdb"
    (tmp_path / "a.txt").write_text(STORY)
    with run_lock(db), pytest.raises(WarehouseBusy, match="another newsetl ingest or reclean is running"):
        run([str(tmp_path / "a.txt")], db)


@pytest.mark.slow
def test_seeds_pass_check_seeds(prefect_harness: None, tmp_path: Path, shared_path: Callable[..., Path]) -> None:
    import subprocess
    import sys

    seeds = shared_path("seeds")
    checker = shared_path("eval", "check_seeds.py")
    db = tmp_path / "seeds.duckdb"
    run([str(seeds)], db)
    proc = subprocess.run([sys.executable, str(checker), "--db", str(db)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_sample_corpus_ingests(prefect_harness: None, tmp_path: Path, samples: Path) -> None:
    db = tmp_path / "s.duckdb"
    summary = run([str(samples)], db)
    assert summary["loaded"] >= 12
    assert summary["quarantined"] == 0, summary["quarantine_reasons"]
    with duckdb.connect(str(db), read_only=True) as con:
        stories, articles = con.execute("SELECT count(DISTINCT cluster_id), count(*) FROM articles").fetchall()[0]
        # samples/README: 18 distinct documents, 16 stories (04/05 a re-scrape, the JSONL wire story twice)
        assert (stories, articles) == (16, 18)
        bad = con.execute("SELECT count(*) FROM (SELECT cluster_id FROM articles GROUP BY 1 "
                          "HAVING sum(is_canonical::INT) <> 1)").fetchall()[0][0]
        assert bad == 0
        # A wire story and its reprint (which names the wire as original publisher) are one story,
        # and the wire's own copy is the canonical one.
        orchard = con.execute("SELECT external_id, is_canonical, original_publisher FROM articles "
                              "WHERE external_id LIKE '%orchard%' ORDER BY 1").fetchall()
        assert orchard == [("ap-2024-0613-orchard", True, None),
                           ("vg-2024-0613-orchard-copy", False, "Associated Press")]


Rows = Callable[[Path, str], list[tuple[object, ...]]]


def test_worker_processes_give_the_same_warehouse_as_in_process(prefect_harness: None, tmp_path: Path, samples: Path,
                                                                 table_rows: Rows) -> None:
    serial, parallel = tmp_path / "serial.duckdb", tmp_path / "parallel.duckdb"
    run([str(samples)], serial, workers=0, batch_size=4)
    run([str(samples)], parallel, workers=2, batch_size=4)
    # Run ids and times aside, every table must be identical.
    queries = (
        "SELECT article_id, title, byline, publisher, original_publisher, published_at, body, word_count, "
        "cluster_id, is_canonical FROM articles",
        "SELECT article_id, seq, category, rule, text, position FROM removals",
        "SELECT cluster_id, canonical_article_id, size FROM clusters",
        "SELECT source_uri, stage, reason, detail FROM quarantine",
        "SELECT doc_id, source_uri, raw FROM documents",
    )
    for sql in queries:
        assert table_rows(serial, sql) == table_rows(parallel, sql), sql


def test_a_document_over_the_time_limit_is_processed_again_when_its_file_is_read_again(
        prefect_harness: None, tmp_path: Path) -> None:
    import os

    inputs = tmp_path / "in"
    inputs.mkdir()
    page = inputs / "page.html"
    page.write_text("<html><body><article>" + "".join(f"<p>{line}</p>" for line in STORY.splitlines())
                    + "</article></body></html>", encoding="utf-8")
    db = tmp_path / "w.duckdb"
    tight = run([str(inputs)], db, workers=1, doc_seconds=1e-6)  # the limit of the run, not of the page
    assert tight["quarantine_reasons"] == {"process:time_limit_exceeded": 1}
    # Unchanged and under the same limit: not read again. (Unchanged with a higher limit is: below.)
    same = run([str(inputs)], db, workers=1, doc_seconds=1e-6)
    assert (same["skipped_known"], same["unchanged"], same["quarantined"]) == (1, 1, 0)
    os.utime(page)  # touched: read again, and the page is no longer "known" for a refusal of the run's
    again = run([str(inputs)], db, workers=1)
    assert (again["loaded"], again["skipped_known"], again["quarantined"], again["unchanged"]) == (1, 0, 0, 0)
    assert again["read"] == again["loaded"] + again["skipped_known"] + again["quarantined"]
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM documents").fetchone() == (1,)
        assert con.execute("SELECT count(*) FROM articles").fetchone() == (1,)
        ((detail,),) = con.execute("SELECT detail FROM quarantine").fetchall()  # the refusal stays, as history
        assert "processed again when its source is next read" in detail
    os.utime(page)  # once loaded it is known like any other document
    assert run([str(inputs)], db, workers=1)["skipped_known"] == 1


def test_raising_the_time_limit_retries_an_unchanged_file_without_touching_it(
        prefect_harness: None, tmp_path: Path) -> None:
    # README said: raise --doc-seconds, then touch the file. A user raised the limit and saw the file skipped
    # as unchanged, the page still quarantined. The limit each run had is in runs.params now.
    inputs = tmp_path / "in"
    inputs.mkdir()
    # Long texts no other test processes: a short one (or a result cached in this process) can be done
    # before the limit's timer first fires, a few milliseconds in.
    story = STORY.replace("harbour", "lakeside").replace("Harbour", "Lakeside")
    long = "\n\n".join(story.replace("Tuesday", f"day {i}") for i in range(80))
    (inputs / "page.html").write_text("<html><body><article>" + "".join(f"<p>{line}</p>" for line in
                                      long.splitlines() if line) + "</article></body></html>", encoding="utf-8")
    (inputs / "other.txt").write_text(long.replace("ferry", "bus"), encoding="utf-8")
    records = [{"id": "r1", "text": long.replace("ferry", "tram")}]
    (inputs / "dump.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    db = tmp_path / "w.duckdb"
    tight = run([str(inputs)], db, workers=1, doc_seconds=1e-6)
    assert tight["quarantine_reasons"] == {"process:time_limit_exceeded": 3}
    lower = run([str(inputs)], db, workers=1, doc_seconds=1e-7)  # not higher: the files are unchanged
    assert (lower["read"], lower["unchanged"], lower["loaded"]) == (3, 3, 0)
    raised = run([str(inputs)], db, workers=1, doc_seconds=0)  # no limit: every refused file read again
    assert (raised["loaded"], raised["unchanged"], raised["quarantined"]) == (3, 0, 0)
    after = run([str(inputs)], db, workers=1)  # loaded now: unchanged files again
    assert (after["loaded"], after["unchanged"]) == (0, 3)


def write_warc(path: Path) -> None:
    from io import BytesIO

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    page = ("<html><head><title>Ferry timetable approved</title></head><body><nav>Home News Sport</nav>"
            "<article><h1>Ferry timetable approved</h1>"
            + "".join(f"<p>{line}</p>" for line in STORY.splitlines() if line.strip()) + "</article></body></html>")
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        req = writer.create_warc_record("https://news.example.org/ferry", "request",
                                        payload=BytesIO(b"GET /ferry HTTP/1.1\r\n\r\n"))
        writer.write_record(req)
        for uri, ctype, body in (("https://news.example.org/ferry", "text/html; charset=utf-8", page.encode()),
                                 ("https://news.example.org/logo.png", "image/png", b"\x89PNG\r\n\x1a\n" + bytes(64))):
            headers = StatusAndHeaders("200 OK", [("Content-Type", ctype)], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(uri, "response", payload=BytesIO(body),
                                                          http_headers=headers))


def test_warc_pages_load_and_other_records_are_counted_as_skipped(prefect_harness: None, tmp_path: Path) -> None:
    warc = tmp_path / "crawl.warc.gz"
    write_warc(warc)
    db = tmp_path / "w.duckdb"
    summary = run([str(warc)], db, workers=0)
    assert summary["loaded"] == 1 and summary["quarantined"] == 0
    assert summary["skipped_other"] >= 1  # the PNG capture (and the request record, if counted)
    assert summary["read"] == (summary["loaded"] + summary["skipped_known"] + summary["skipped_other"]
                               + summary["quarantined"])
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute("SELECT url, title, publisher, body FROM articles").fetchall()[0]
        # A dashboard's run_health adds up too (it had no skipped_other: read was more than its parts)
        (health,) = con.execute("SELECT read, loaded, skipped_known, skipped_other, quarantined, not_loaded "
                                "FROM run_health").fetchall()
    assert health[0] == sum(health[1:]) and health[3] == summary["skipped_other"] >= 1, health
    assert row[0] == "https://news.example.org/ferry" and row[1] == "Ferry timetable approved"
    assert "Home News" not in row[3] and "Advertisement" not in row[3]
    assert "approved a new ferry timetable" in row[3]


def test_warc_part_pages_and_records_without_uri_are_quarantined_and_the_counts_add_up(
    prefect_harness: None, tmp_path: Path
) -> None:
    """A capture marked WARC-Truncated loaded as a whole article; a record without WARC-Target-URI stopped the
    archive, the pages after it never read (a user trial). Now each is one quarantine row with its bytes."""
    from io import BytesIO

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    warc = tmp_path / "crawl.warc.gz"
    topics = ("ferry", "bridge", "tram", "library")
    with open(warc, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for n, topic in enumerate(topics):
            page = ("<html><body><article>" + "".join(f"<p>{line}</p>" for line in STORY.replace("ferry", topic)
                                                      .splitlines() if line.strip()) + "</article></body></html>")
            body = page.encode()
            rec = writer.create_warc_record(
                f"https://news.example.org/{topic}", "response",
                payload=BytesIO(body[: len(body) // 2] if n == 1 else body),
                http_headers=StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1"),
                warc_headers_dict={"WARC-Truncated": "length"} if n == 1 else {},
            )
            if n == 2:
                rec.rec_headers.remove_header("WARC-Target-URI")
            writer.write_record(rec)
    db = tmp_path / "w.duckdb"
    summary = run([str(warc)], db, workers=0)
    assert (summary["loaded"], summary["quarantined"]) == (2, 2), summary
    assert summary["read"] == (summary["loaded"] + summary["skipped_known"] + summary["skipped_other"]
                               + summary["quarantined"])
    with duckdb.connect(str(db), read_only=True) as con:
        urls = [u for (u,) in con.execute("SELECT url FROM articles ORDER BY url").fetchall()]
        rows = con.execute("SELECT reason, detail, raw IS NOT NULL FROM quarantine ORDER BY reason").fetchall()
    assert urls == ["https://news.example.org/ferry", "https://news.example.org/library"]
    assert [(reason, kept) for reason, _, kept in rows] == [("bad_warc", True), ("warc_truncated", True)], rows
    assert "no WARC-Target-URI" in rows[0][1] and "WARC-Truncated: length" in rows[1][1]


def ledger_feed(folder: Path) -> tuple[Path, list[str], str]:
    """60 stories and 5 copies of one more from one publisher, each ending in the same 3 footer lines that
    no pattern knows (learned once two clusters have them). Returns (feed, footer, the copied story)."""
    import random

    rng = random.Random(5)
    words = ["council", "harbour", "ferry", "budget", "school", "river", "bridge", "market", "library", "museum",
             "station", "tram", "court", "festival", "hospital", "park", "storm", "vote", "road", "farm"]
    # Footer lines no pattern in the library knows: a house signature of one publisher.
    footer = ["Kestrel Valley Ledger – independent since 1894", "Tip line: 0800 555 0199 any hour",
              "Printed on recycled paper at our Millbrook works"]

    def story(i: int) -> str:
        paras = []
        for p in range(6):
            topic = rng.sample(words, 3)
            paras.append(f"The {topic[0]} plan number {i}-{p} went before {topic[1]} officials on day {p}, who said "
                         f"the {topic[2]} costs of {rng.randint(2, 900)} thousand would be reviewed by {i % 7 + 1} "
                         f"independent experts before a final vote next month.")
        return "\n\n".join(paras)

    records = [{"id": f"s{i}", "publisher": "Kestrel Valley Ledger", "text": story(i) + "\n\n" + "\n".join(footer)}
               for i in range(60)]
    syndicated = story(999)
    records += [{"id": f"copy{k}", "publisher": "Kestrel Valley Ledger",
                 "text": syndicated + "\n\n" + "\n".join(footer)} for k in range(5)]
    feed = folder / "ledger.jsonl"
    feed.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return feed, footer, syndicated


def test_learned_boilerplate_is_removed_from_every_story_after_ingest(prefect_harness: None, tmp_path: Path) -> None:
    feed, footer, syndicated = ledger_feed(tmp_path)
    db = tmp_path / "w.duckdb"
    # The learned mechanism alone: the line model would take most of these footers by itself (category
    # "model"; counted as sightings all the same), and the removals counted below would be split.
    summary = run([str(feed)], db, workers=0, batch_size=20, line_model=False)
    assert summary["loaded"] == 65 and summary["recleaned"] > 0
    # the re-clean is in the run report too (its removals are not among the new articles' spans)
    report = Path(summary["run_report"]).read_text(encoding="utf-8")
    assert f"Stored articles re-cleaned of lines learned as boilerplate: {summary['recleaned']}" in report
    with duckdb.connect(str(db), read_only=True) as con:
        bodies = dict(con.execute("SELECT external_id, body FROM articles").fetchall())
        learned = con.execute("SELECT count(*) FROM removals WHERE category = 'learned'").fetchall()[0][0]
    assert all(line not in body for body in bodies.values() for line in footer)
    assert learned == 65 * len(footer)
    for k in range(5):  # the syndicated story's own lines are content, shared by copies of one story
        assert all(p in bodies[f"copy{k}"] for p in syndicated.split("\n\n"))


def test_a_run_after_one_stopped_before_its_re_clean_re_cleans(prefect_harness: None, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # Ctrl-C as the last batch commits (or kill -9 in the re-clean): every article is in, the re-clean never
    # ran. The next run loads nothing, and must still leave the bodies as one clean run does.
    import newsetl.flows.ingest as ingest_flow
    from newsetl.tasks.stop import INTERRUPTED, IngestInterrupted

    feed, footer, _ = ledger_feed(tmp_path)
    db = tmp_path / "w.duckdb"

    def stopped(*_: object) -> int:
        raise IngestInterrupted(INTERRUPTED)

    with monkeypatch.context() as m:
        m.setattr(ingest_flow, "reclean_task", stopped)
        with pytest.raises(IngestInterrupted):
            run([str(feed)], db, workers=0, batch_size=20, line_model=False)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT status FROM runs").fetchall() == [("cancelled",)]
        left = con.execute("SELECT count(*) FROM articles WHERE body LIKE ?", [f"%{footer[0]}%"]).fetchall()[0][0]
    assert left > 0  # the footers learned by that run are still in the bodies it loaded
    summary = run([str(feed)], db, workers=0, batch_size=20, line_model=False)
    assert summary["loaded"] == 0 and summary["recleaned"] == left
    with duckdb.connect(str(db), read_only=True) as con:
        bodies = [b for (b,) in con.execute("SELECT body FROM articles").fetchall()]
    assert all(line not in body for body in bodies for line in footer)
    assert run([str(feed)], db, workers=0, batch_size=20, line_model=False)["recleaned"] == 0


def test_signatures_and_stories_do_not_depend_on_when_a_line_was_learned(prefect_harness: None,
                                                                       tmp_path: Path) -> None:
    """One run of the whole feed: the footers are learned after every story was loaded, and a re-clean
    takes them from the stored bodies. Two runs (the first 30 records, then the rest): the second run
    knows the footers from the start and takes them at load. Both end with the same bodies, and dedup's
    tables must not differ either: it signs the body before the learned pass, so an article's signature
    and its story's canonical do not depend on which lines were known when it arrived."""
    feed, _, _ = ledger_feed(tmp_path)
    lines = feed.read_text(encoding="utf-8").splitlines(keepends=True)
    first, rest = tmp_path / "first.jsonl", tmp_path / "rest.jsonl"
    first.write_text("".join(lines[:30]), encoding="utf-8")
    rest.write_text("".join(lines[30:]), encoding="utf-8")
    queries = {
        "articles": "SELECT article_id, body, body_hash, word_count, cluster_id, is_canonical FROM articles",
        "signatures": "SELECT article_id, body_hash, body_key, n_shingles, n_words, banded, md5(minhash), "
                      "md5(shingles) FROM signatures",
        "clusters": "SELECT cluster_id, canonical_article_id, size FROM clusters",
        "pairs": "SELECT article_a, article_b, jaccard, containment, method FROM duplicate_pairs",
        "bands": "SELECT b.key, s.article_id FROM lsh_bands b JOIN signatures s USING (sid)",
        "learned": "SELECT article_id, text FROM removals WHERE category = 'learned'",
    }
    states = []
    for name, runs in (("one", [[first, rest]]), ("two", [[first], [rest]])):
        db = tmp_path / f"{name}.duckdb"
        for sources in runs:
            run([str(p) for p in sources], db, workers=0, batch_size=20, line_model=False)
        with duckdb.connect(str(db), read_only=True) as con:
            states.append({k: sorted(con.execute(q).fetchall()) for k, q in queries.items()})
            # The second run took the footers at load: its articles' stored hash is of the body as stored.
            assert con.execute("SELECT count(*) FROM articles a JOIN signatures s USING (article_id) "
                               "WHERE a.body_hash <> s.body_hash").fetchall()[0][0] == 65
    one_run, two_runs = states
    assert len(one_run["learned"]) == 65 * 3
    for table in queries:
        assert one_run[table] == two_runs[table], table


def test_every_run_publishes_and_a_failed_publication_is_made_up_by_the_next_run_with_nothing_new(
        prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A publication that fails is logged and leaves the run completed; the next run, even with nothing
    new, publishes the rows the snapshot for dashboards misses (it used to skip: dashboards stayed stale
    until something new arrived). A run with nothing new publishes all the same, so the snapshot's
    `run_health` lists every run (it used to skip it: a dashboard could not tell a quiet schedule from
    a dead one)."""
    from newsetl.tasks import publish as publish_mod
    from newsetl.warehouse.snapshot import snapshot_path

    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "one.txt").write_text(STORY, encoding="utf-8")
    db = tmp_path / "w.duckdb"

    def published_articles() -> int:
        with duckdb.connect(str(snapshot_path(db)), read_only=True) as snap:
            return int(snap.execute("SELECT count(*) FROM articles").fetchall()[0][0])

    assert run([str(inputs)], db, workers=0)["published"] is not None
    assert published_articles() == 1

    (inputs / "two.txt").write_text(STORY.replace("ferry", "tram"), encoding="utf-8")
    real = publish_mod.publish

    def disk_full(*args: Any, **kw: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(publish_mod, "publish", disk_full)
    second = run([str(inputs)], db, workers=0)
    assert second["loaded"] == 1 and second["published"] == {"error": "OSError: [Errno 28] No space left on device"}
    assert published_articles() == 1  # stale: the run completed, and its summary says why
    assert "**not published**: OSError: [Errno 28] No space left on device" in Path(second["run_report"]).read_text()

    monkeypatch.setattr(publish_mod, "publish", real)
    third = run([str(inputs)], db, workers=0)
    assert third["loaded"] == 0 and third["published"] is not None
    assert published_articles() == 2
    fourth = run([str(inputs)], db, workers=0)  # nothing new: published, for run_health
    assert fourth["published"] is not None
    with duckdb.connect(str(snapshot_path(db)), read_only=True) as snap:
        runs = snap.execute("SELECT run_id, loaded FROM run_health ORDER BY started_at").fetchall()
    assert len(runs) == 4 and runs[-3:] == [(second["run_id"], 1), (third["run_id"], 0), (fourth["run_id"], 0)]


def test_a_dump_quarantined_for_want_of_a_body_loads_when_rerun_with_a_field_mapping(
        prefect_harness: None, tmp_path: Path) -> None:
    """A scraper's dump under names newsetl does not know: the first run quarantines every record with
    a reason that says how to map the field; a re-run with `jsonl_fields` reads the unchanged file again
    and loads them (the mapping is part of the records' identity and of the file's record), and a third
    run with the same mapping reads nothing again."""
    dump = tmp_path / "scraper.jsonl"
    records = [{"uid": f"u{i}", "story": f"Story {i}. " + "One two three four five. " * 30,
                "meta": {"link": f"https://dump.example/{i}", "when": f"2024-05-0{i + 1}"}}
               for i in range(3)]
    dump.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    db = tmp_path / "w.duckdb"
    first = run([str(dump)], db, workers=0)
    assert (first["loaded"], first["quarantined"]) == (0, 3)
    with duckdb.connect(str(db), read_only=True) as con:
        reasons = con.execute("SELECT DISTINCT reason, detail FROM quarantine").fetchall()
    assert len(reasons) == 3 and {r for r, _ in reasons} == {"bad_record"}
    assert all("--field text=FIELD" in d for _, d in reasons)

    fields = {"text": "story", "url": "meta.link", "published_at": "meta.when", "id": "uid"}
    second = run([str(dump)], db, workers=0, jsonl_fields=fields)
    assert (second["loaded"], second["quarantined"], second["skipped_known"]) == (3, 0, 0)
    with duckdb.connect(str(db), read_only=True) as con:
        rows = sorted(con.execute("SELECT external_id, url, published_at::DATE::VARCHAR FROM articles").fetchall())
        read_as = con.execute("SELECT read_as FROM inputs").fetchall()
        params = json.loads(con.execute("SELECT params FROM runs ORDER BY started_at DESC LIMIT 1").fetchall()[0][0])
    assert rows == [(f"u{i}", f"https://dump.example/{i}", f"2024-05-0{i + 1}") for i in range(3)]
    assert read_as == [("id=uid,published_at=meta.when,text=story,url=meta.link",)]
    assert params["jsonl_fields"] == fields

    third = run([str(dump)], db, workers=0, jsonl_fields=fields)
    assert (third["read"], third["loaded"], third["skipped_known"]) == (3, 0, 3)  # the file was not read again
    assert counts(db)["articles"] == 3


def test_one_runs_field_mapping_leaves_the_folders_other_dumps_alone(prefect_harness: None, tmp_path: Path) -> None:
    """A run's `jsonl_fields` applies to every JSON file it reads. A drop folder holds a dump already loaded
    under the usual names; a new file needs `--field text=story`. The mapped run loads the new file and
    finds the old dump's records known (it quarantined all of them: the mapping replaced the usual names,
    and they had no `story`); a later run without the mapping does not read the mapped files again (it
    quarantined the records that needed the mapping, loaded already). A user trial."""
    folder = tmp_path / "drop"
    folder.mkdir()
    story = "One two three four five six seven eight nine ten. " * 20
    (folder / "usual.jsonl").write_text("".join(json.dumps({"id": f"a{i}", "text": f"Usual {i}. {story}"}) + "\n"
                                                for i in range(3)), encoding="utf-8")
    db = tmp_path / "w.duckdb"
    first = run([str(folder)], db, workers=0)
    assert (first["loaded"], first["quarantined"]) == (3, 0)
    (folder / "feed.jsonl").write_text(json.dumps({"id": "q1", "story": f"Mapped. {story}"}) + "\n"
                                       + json.dumps({"id": "q2", "text": f"Plain. {story}"}) + "\n", encoding="utf-8")
    mapped = run([str(folder)], db, workers=0, jsonl_fields={"text": "story"})
    assert (mapped["loaded"], mapped["quarantined"], mapped["skipped_known"]) == (2, 0, 3)
    plain = run([str(folder)], db, workers=0)
    assert (plain["loaded"], plain["quarantined"], plain["skipped_known"]) == (0, 0, 5)
    c = counts(db)
    assert (c["articles"], c["quarantine"]) == (5, 0)


def test_a_syndicated_copy_with_a_credit_line_does_not_displace_the_original(prefect_harness: None,
                                                                             tmp_path: Path) -> None:
    """The canonical is the most complete copy, then an original over a syndicated copy. A copy whose only
    difference was its two-sentence credit line ("Distributed by … Originally published by …") kept the
    line in its body, counted ten words more and became the canonical (a user trial). The line is now the
    cleaner's (`syndication.original`): the copy names its original and the original stays canonical."""
    body = ("The county council agreed on Tuesday to pay for the repair of the hill observatory's dome.\n\n"
            "Volunteers who run the open nights said the telescope had been closed since a storm in March.\n\n"
            "The work will cost 850,000 pounds and should be finished before the winter meteor showers.\n\n"
            "Councillors voted 31 to 4 after a short debate about the cost of heating the old building.\n\n"
            "Schools in the valley use the observatory for astronomy lessons, and many pupils joined the appeal.\n\n"
            "The trust that owns the site thanked residents who wrote letters and raised money at summer fairs.")
    credit = "Distributed by Wirecopy Syndicate. Originally published by The Valley Gazette."
    dump = tmp_path / "feed.jsonl"
    dump.write_text(json.dumps({"id": "orig", "text": body, "publisher": "The Valley Gazette",
                                "published_at": "2024-06-11"}) + "\n"
                    + json.dumps({"id": "copy", "text": body + "\n\n" + credit, "publisher": "Wirecopy News",
                                  "published_at": "2024-06-11"}) + "\n", encoding="utf-8")
    db = tmp_path / "w.duckdb"
    run([str(dump)], db, workers=0)
    with duckdb.connect(str(db), read_only=True) as con:
        rows = dict(con.execute("SELECT external_id, (cluster_id, is_canonical, original_publisher, body) "
                                "FROM articles").fetchall())
        reasons = con.execute("SELECT rule FROM removals JOIN articles USING (article_id) "
                              "WHERE external_id = 'copy'").fetchall()
    assert rows["orig"][0] == rows["copy"][0]  # one story
    assert rows["orig"][1] is True and rows["copy"][1] is False, rows
    assert rows["copy"][2] == "The Valley Gazette" and credit not in rows["copy"][3]
    assert ("syndication.original",) in reasons


def test_copies_of_a_thai_story_are_one_story_and_counted_in_words(prefect_harness: None, tmp_path: Path) -> None:
    """Thai writes no space between words: a ~300-character story counted 5 to 8 words (its phrases and
    numbers), and its signature was cut at every vowel sign and tone mark. Counted and signed in ICU's words, a
    copy with one word edited joins the story and another story on the same flood stays apart."""
    data = Path(__file__).resolve().parents[1] / "data" / "sea_stories.json"
    stories = json.loads(data.read_text(encoding="utf-8"))
    dump = tmp_path / "feed.jsonl"
    dump.write_text("".join(json.dumps({"id": k, "text": stories[k], "published_at": "2024-10-12"}) + "\n"
                            for k in ("th", "th_edited", "th_other")), encoding="utf-8")
    db = tmp_path / "w.duckdb"
    run([str(dump)], db, workers=0)
    with duckdb.connect(str(db), read_only=True) as con:
        rows = dict(con.execute("SELECT external_id, (cluster_id, word_count) FROM articles").fetchall())
    assert rows["th"][0] == rows["th_edited"][0] != rows["th_other"][0], rows
    assert all(70 <= words <= 80 for _, words in rows.values()), rows  # ICU: 75, 75, 78


def test_an_input_a_later_run_loads_is_resolved_in_quarantine_status_and_the_summary(
        prefect_harness: None, tmp_path: Path) -> None:
    """A JSON lines file caught half-copied quarantines its cut line (`bad_json`); once the copy is complete
    the next run loads that record. The quarantine row stays (what that run refused), and
    `quarantine_status` / `quarantine_summary` say a later run loaded it, so dashboards stop counting it as
    a missing input. An input still bad stays open; a file refused whole in the same run its good records
    loaded is not resolved by them."""
    import json as _json

    inputs = tmp_path / "in"
    inputs.mkdir()
    first = _json.dumps({"url": "https://example.org/a", "text": STORY})
    second = _json.dumps({"url": "https://example.org/b", "text": STORY.replace("ferry", "tram")})
    (inputs / "feed.jsonl").write_text(first + "\n" + second[:70], encoding="utf-8")
    (inputs / "broken.jsonl").write_text(first.replace("ferry", "bus") + "\n{not json\n", encoding="utf-8")
    db = tmp_path / "w.duckdb"
    one = run([str(inputs)], db, workers=0)
    assert one["loaded"] == 2 and one["quarantined"] == 2

    (inputs / "feed.jsonl").write_text(first + "\n" + second + "\n", encoding="utf-8")
    two = run([str(inputs)], db, workers=0)
    assert two["loaded"] == 1 and two["quarantined"] == 0
    with duckdb.connect(str(db), read_only=True) as con:
        status = con.execute("SELECT source_uri, reason, resolved_run_id FROM quarantine_status "
                             "ORDER BY source_uri").fetchall()
        summary = con.execute("SELECT reason, inputs, still_open FROM quarantine_summary").fetchall()
    assert [(Path(u).name, r, w) for u, r, w in status] == [
        ("broken.jsonl#2", "bad_json", None), ("feed.jsonl#2", "bad_json", two["run_id"])]
    assert summary == [("bad_json", 2, 1)]


def _warc_captures(path: Path, captures: list[tuple[str, bytes, dict[str, str]]]) -> None:
    """(target URI, HTML payload, extra WARC headers) as response records of a WARC file."""
    import io

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=path.suffix == ".gz")
        for uri, payload, extra in captures:
            head = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(uri, "response", payload=io.BytesIO(payload),
                                                          http_headers=head, warc_headers_dict=extra))


def test_a_truncated_capture_is_resolved_by_a_later_whole_capture_of_its_page(
        prefect_harness: None, tmp_path: Path) -> None:
    """A crawl cuts a capture short (WARC-Truncated): quarantined with its bytes. The next crawl's WARC holds
    the page whole and loads it; `quarantine_status` kept the refusal open, as no later source had the
    refused record's uri (another file's record). The refusal names its page (`quarantine.url`) and a later
    load of that page resolves it; a cut page never captured again stays open."""
    paras = "".join(f"<p>{p}</p>" for p in STORY.split("\n\n")[1:5])
    page = f"<html><head><title>Ferry timetable</title></head><body><article>{paras}</article></body></html>"
    other = page.replace("ferry", "tram").replace("Ferry", "Tram")
    crawl = tmp_path / "crawl"
    crawl.mkdir()
    cut = {"WARC-Truncated": "length"}
    _warc_captures(crawl / "one.warc.gz", [("https://news.example/ferry", page.encode()[:300], cut),
                                           ("https://news.example/tram", other.encode()[:300], cut)])
    db = tmp_path / "w.duckdb"
    one = run([str(crawl)], db, workers=0)
    assert one["loaded"] == 0 and one["quarantined"] == 2
    _warc_captures(crawl / "two.warc.gz", [("https://news.example/ferry", page.encode(), {})])
    two = run([str(crawl)], db, workers=0)
    assert two["loaded"] == 1 and two["quarantined"] == 0
    with duckdb.connect(str(db), read_only=True) as con:
        status = con.execute("SELECT url, reason, resolved_run_id FROM quarantine_status ORDER BY url").fetchall()
        summary = con.execute("SELECT reason, inputs, still_open FROM quarantine_summary").fetchall()
    assert status == [("https://news.example/ferry", "warc_truncated", two["run_id"]),
                      ("https://news.example/tram", "warc_truncated", None)]
    assert summary == [("warc_truncated", 2, 1)]


def test_a_file_replaced_with_the_same_size_and_mtime_is_read_again(prefect_harness: None, tmp_path: Path) -> None:
    """`cp -p`, `rsync -a`, `tar x` and `curl -R` keep a file's modification time: a corrected story of the
    same length put in place of the old one looked unchanged (size and mtime) and was never read. The
    inode's change time, which no such tool sets, tells it apart."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    story = inputs / "story.txt"
    story.write_text(STORY, encoding="utf-8")
    os.utime(story, ns=(10**18, 10**18))
    db = tmp_path / "w.duckdb"
    assert run([str(inputs)], db, workers=0)["loaded"] == 1
    assert run([str(inputs)], db, workers=0)["unchanged"] == 1  # untouched: not read again
    corrected = tmp_path / "corrected.txt"
    corrected.write_text(STORY.replace("ferry", "FERRY"), encoding="utf-8")
    os.utime(corrected, ns=(10**18, 10**18))
    os.replace(corrected, story)
    assert (story.stat().st_size, story.stat().st_mtime_ns) == (len(STORY.encode()), 10**18)
    again = run([str(inputs)], db, workers=0)
    assert again["loaded"] == 1 and again["unchanged"] == 0, again
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM documents WHERE CAST(raw AS VARCHAR) LIKE '%FERRY%'"
                           ).fetchall() == [(1,)]


def test_each_removal_reads_as_the_rule_that_made_it_even_after_the_rules_change(prefect_harness: None,
                                                                                tmp_path: Path) -> None:
    # An analyst asks why a span went: `removal_rules` joins it to the rule as it was in its run, so a
    # rules file edited later (same id, another pattern) does not rewrite what an old removal says.
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "story.txt").write_text(STORY, encoding="utf-8")
    db = tmp_path / "w.duckdb"
    mine = tmp_path / "mine.json"

    def user_rule(pattern: str) -> None:
        mine.write_text(json.dumps({"rules": [{"id": "mine.prompt", "category": "comment_prompt",
                                               "pattern": pattern, "keywords": ["chat", "talk"]}]}))

    run([str(inputs)], db, workers=1)
    run([str(inputs)], db, workers=1)  # same rules: the run names them, no row is added
    user_rule("chat with the newsroom tonight")
    (inputs / "later.txt").write_text(STORY.replace("ferry", "tram") + "Chat with the newsroom tonight\n",
                                      encoding="utf-8")
    run([str(inputs)], db, workers=1, rules_files=[str(mine)])
    user_rule("talk to us")  # the same id, edited
    (inputs / "last.txt").write_text(STORY.replace("ferry", "bus") + "Talk to us\n", encoding="utf-8")
    run([str(inputs)], db, workers=1, rules_files=[str(mine)])

    with duckdb.connect(str(db), read_only=True) as con:
        digests = [r[0] for r in con.execute("SELECT ruleset_sha256 FROM runs ORDER BY started_at").fetchall()]
        assert None not in digests and digests[0] == digests[1] and len(set(digests)) == 3
        n_library = con.execute("SELECT count(*) FROM rules WHERE ruleset_sha256 = ?", [digests[0]]).fetchall()[0][0]
        assert n_library > 50
        # Each ruleset once, whole: the library, then the library and the user's rule (twice).
        assert con.execute("SELECT count(*) FROM rules").fetchall()[0][0] == 3 * n_library + 2
        assert con.execute("SELECT DISTINCT source FROM rules WHERE rule_id = 'mine.prompt'").fetchall() == [
            (str(mine),)]
        why = con.execute("""
            SELECT a.source_uri, v.decided_by, v.pattern, v.rule_source FROM removal_rules v
            JOIN articles a USING (article_id) WHERE v.rule = 'mine.prompt' ORDER BY a.source_uri""").fetchall()
        assert [(Path(u).name, d, p, s) for u, d, p, s in why] == [
            ("last.txt", "pattern_rule", "talk to us", str(mine)),
            ("later.txt", "pattern_rule", "chat with the newsroom tonight", str(mine)),
        ]
        # The first story's prompt went by the library's rule, which the view names with its pattern.
        lib = con.execute("""
            SELECT v.rule, v.decided_by, v.rule_source, v.pattern IS NOT NULL FROM removal_rules v
            JOIN articles a USING (article_id)
            WHERE a.source_uri LIKE '%story.txt' AND v.text LIKE 'Join our%'""").fetchall()
        assert len(lib) == 1 and lib[0][1:] == ("pattern_rule", "library", True)
        # Every removal is explained by one of the passes (none is NULL: every run recorded its rules).
        assert con.execute("SELECT count(*) FROM removal_rules WHERE decided_by IS NULL").fetchall() == [(0,)]
        assert con.execute("SELECT count(*) FROM removal_rules").fetchall() == \
            con.execute("SELECT count(*) FROM removals").fetchall()
