"""Nothing lost, proven: random folders of good, bad and repeated inputs, ingested by the real flow into a
real warehouse. Every record read must end as an article, a quarantine row with its bytes, or a counted
skip with a recorded source; the run's counts must balance; a re-run (also of re-touched files) must
add nothing."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

STORIES = [
    "Ferry timetable approved\n\nThe harbour council approved a new ferry timetable on Tuesday after a long "
    "public consultation. Residents had asked for an earlier first crossing for years, the council chair said.",
    "Library reopens\n\nThe city library reopened on Monday after a two-year renovation, with a new reading "
    "room, longer opening hours for students and a children's corner on the ground floor.",
    "Wildfire forces evacuations\n\nA wildfire burned through the northern valley overnight, forcing hundreds "
    "of residents to leave their homes, fire officials said on Wednesday morning.",
    "Tram strike ends\n\nTram drivers returned to work on Friday after the union accepted a new pay offer, "
    "ending a strike that had disrupted the city's transport network for nine days.",
]
HUGE = "word " * 420_000  # 2.1 M characters: over ReadConfig.max_text_chars, under max_bytes

# One JSONL record: (kind, story, variant, id). Few ids, so that ids repeat within a file; few variants,
# so that bytes repeat across records and files.
RECORD = st.tuples(st.sampled_from(["good", "good", "good", "broken", "empty", "array", "huge"]),
                   st.integers(0, len(STORIES) - 1), st.integers(0, 1), st.sampled_from(["a", "b", "c", None]))
TXT = st.tuples(st.just("txt"), st.sampled_from(["good", "good", "empty", "binary"]),
                st.integers(0, len(STORIES) - 1), st.integers(0, 1))
JSONL = st.tuples(st.just("jsonl"), st.lists(RECORD, min_size=1, max_size=6))
WARC = st.tuples(st.just("warc"), st.lists(st.tuples(st.sampled_from(["html", "png"]),
                                                     st.integers(0, len(STORIES) - 1)), min_size=1, max_size=3))
FOLDER = st.lists(st.one_of(TXT, JSONL, WARC), min_size=1, max_size=6)


def story(i: int, variant: int) -> str:
    return STORIES[i] + ("" if variant == 0 else "\n\nThe decision takes effect next month.")


@dataclass
class Expected:
    """What the folder holds: every record's bytes (to find again), and what only a source row can show."""

    raws: list[tuple[str, bytes]] = field(default_factory=list)  # (where, bytes) to find in the warehouse
    empty_files: list[str] = field(default_factory=list)  # no bytes to keep: a quarantine row names them
    warc_skips: int = 0  # captures that are not pages: a recorded source each


def jsonl_line(kind: str, i: int, variant: int, rid: str | None) -> bytes:
    rec: dict[str, Any] = {"title": f"t{i}"}
    if rid is not None:
        rec["id"] = rid
    if kind == "good":
        rec["text"] = story(i, variant)
    elif kind == "empty":
        rec["text"] = "   "
    elif kind == "huge":
        rec["text"] = HUGE
    elif kind == "array":
        return json.dumps([story(i, variant)]).encode()
    line = json.dumps(rec).encode()
    return line[: len(line) // 2] if kind == "broken" else line


def write_warc(path: Path, records: list[tuple[str, int]]) -> list[bytes]:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    payloads = []
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for n, (kind, i) in enumerate(records):
            if kind == "html":
                body = f"<html><body><article><p>{story(i, 0)}</p></article></body></html>".encode()
                ctype = "text/html; charset=utf-8"
                payloads.append(body)
            else:
                body, ctype = b"\x89PNG\r\n\x1a\n" + bytes(64), "image/png"
            http = StatusAndHeaders("200 OK", [("Content-Type", ctype)], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(f"https://n.example/{n}", "response",
                                                          payload=BytesIO(body), http_headers=http))
    return payloads


def build(folder: Path, plan: list[Any]) -> Expected:
    exp = Expected()
    for n, item in enumerate(plan):
        if item[0] == "txt":
            _, kind, i, variant = item
            data = {"good": story(i, variant).encode(), "empty": b"", "binary": bytes(range(256)) * 4}[kind]
            path = folder / f"{n:02d}.txt"
            path.write_bytes(data)
            if data:
                exp.raws.append((str(path), data))
            else:
                exp.empty_files.append(str(path))
        elif item[0] == "jsonl":
            lines = [jsonl_line(*rec) for rec in item[1]]
            path = folder / f"{n:02d}.jsonl"
            path.write_bytes(b"\n".join(lines) + b"\n")
            exp.raws.extend((f"{path} line {k + 1}", line) for k, line in enumerate(lines))
        else:
            path = folder / f"{n:02d}.warc.gz"
            exp.raws.extend((str(path), p) for p in write_warc(path, item[1]))
            exp.warc_skips += sum(kind == "png" for kind, _ in item[1])
    return exp


def tables(db: Path) -> dict[str, int]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
                for t in ("documents", "articles", "quarantine", "sources")}


def run_row(db: Path, run_id: str) -> tuple[str, dict[str, Any]]:
    with duckdb.connect(str(db), read_only=True) as con:
        status, counts = con.execute("SELECT status, counts FROM runs WHERE run_id = ?", [run_id]).fetchall()[0]
    return status, json.loads(counts)


def assert_balanced(db: Path, summary: dict[str, Any]) -> None:
    status, counts = run_row(db, summary["run_id"])
    assert status == "completed"
    assert counts["read"] == (counts["loaded"] + counts["skipped_known"] + counts["skipped_other"]
                              + counts["quarantined"]), counts
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT count(*) FROM quarantine WHERE run_id = ?", [summary["run_id"]]).fetchall()
    assert rows[0][0] == counts["quarantined"]


def check_folder(plan: list[Any], ingest: Callable[..., dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        exp = build(folder, plan)
        db = Path(tmp) / "w.duckdb"
        first = ingest(sources=[str(folder)], db=str(db), workers=0, batch_size=4)
        assert_balanced(db, first)
        with duckdb.connect(str(db), read_only=True) as con:
            kept = {r[0] for r in con.execute("SELECT raw FROM documents UNION ALL SELECT raw FROM quarantine "
                                              "WHERE raw IS NOT NULL").fetchall()}
            quarantined_uris = {r[0] for r in con.execute("SELECT source_uri FROM quarantine").fetchall()}
            sources = con.execute("SELECT count(*), count(*) FILTER (WHERE reason = 'warc_record_not_html') "
                                  "FROM sources").fetchall()[0]
        lost = [where for where, raw in exp.raws if raw not in kept]
        assert not lost, f"records whose bytes the warehouse does not hold: {lost}"
        assert set(exp.empty_files) <= quarantined_uris
        # One lineage row per record read, known or new.
        assert sources == (first["read"], exp.warc_skips), (sources, first)
        before = tables(db)
        # A re-run changes nothing: unchanged files are not read again...
        again = ingest(sources=[str(folder)], db=str(db), workers=0, batch_size=4)
        assert_balanced(db, again)
        assert again["loaded"] == again["quarantined"] == 0 and tables(db) == before
        # ...and files read again (new mtime, same bytes) find every record known or already quarantined.
        for path in folder.iterdir():
            os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
        touched = ingest(sources=[str(folder)], db=str(db), workers=0, batch_size=4)
        assert_balanced(db, touched)
        assert touched["read"] == first["read"] and touched["loaded"] == touched["quarantined"] == 0, touched
        assert tables(db) == before


@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large])
@given(plan=FOLDER)
def test_every_record_is_accounted_for_and_a_rerun_adds_nothing(prefect_harness: None, plan: list[Any]) -> None:
    from newsetl.flows.ingest import ingest

    check_folder(plan, ingest)


def test_records_sharing_an_id_are_one_article_and_two_quarantine_rows(prefect_harness: None,
                                                                       tmp_path: Path) -> None:
    """The user's report: three stories under one id gave one article and ONE quarantine row."""
    from newsetl.flows.ingest import ingest

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "dup.jsonl").write_text("".join(json.dumps({"id": "dup-1", "text": s}) + "\n" for s in STORIES[:3]))
    db = tmp_path / "w.duckdb"
    summary = ingest(sources=[str(folder)], db=str(db), workers=0)
    assert (summary["read"], summary["loaded"], summary["quarantined"]) == (3, 1, 2)
    assert_balanced(db, summary)
    counts = tables(db)
    assert (counts["articles"], counts["quarantine"], counts["sources"]) == (1, 2, 3)


@pytest.mark.parametrize("copies", [2])
def test_known_bytes_leave_a_lineage_row(prefect_harness: None, tmp_path: Path, copies: int) -> None:
    """A file whose bytes are already known is recorded as a source of that document."""
    from newsetl.flows.ingest import ingest

    folder = tmp_path / "in"
    folder.mkdir()
    for k in range(copies):
        (folder / f"copy{k}.txt").write_text(STORIES[0])
    db = tmp_path / "w.duckdb"
    summary = ingest(sources=[str(folder)], db=str(db), workers=0)
    assert (summary["loaded"], summary["skipped_known"]) == (1, copies - 1)
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT s.source_uri, s.outcome FROM sources s JOIN articles a USING (doc_id) "
                           "ORDER BY 1").fetchall()
    assert [(Path(uri).name, outcome) for uri, outcome in rows] == \
        [("copy0.txt", "loaded")] + [(f"copy{k}.txt", "skipped") for k in range(1, copies)]


def test_the_flow_still_pickles_for_served_runs() -> None:
    """`newsetl serve`'s Runner cloudpickles the flow function by value with the globals it names: the
    stop machinery (threading objects) must stay out of the flow's body, or every served run crashes."""
    import cloudpickle

    from newsetl.flows.ingest import ingest

    assert cloudpickle.loads(cloudpickle.dumps(ingest.fn)).__name__ == "ingest"


def test_a_document_refused_for_the_time_limit_and_loaded_on_retry_is_resolved(
        prefect_harness: None, tmp_path: Path) -> None:
    """The README's retry: a page quarantined `time_limit_exceeded` is loaded once the limit is raised and
    the file touched. The same bytes keep their doc_id, and the lineage row of the load had the key of the
    refusal's row, so it was dropped: `sources` still said quarantined and quarantine_status never marked
    the refusal resolved (a user trial). Both outcomes are rows now, and the refusal is resolved."""
    from newsetl.flows.ingest import ingest

    folder = tmp_path / "in"
    folder.mkdir()
    # trafilatura needs seconds for a page of many thousand paragraphs: over a limit of 0.2 s on any machine
    body = "".join(f"<p>Paragraph {i} of a page that never ends, with a few more words.</p>" for i in range(12_000))
    slow = folder / "slow.html"
    slow.write_text(f"<html><body><article>{body}</article></body></html>", encoding="utf-8")
    db = tmp_path / "w.duckdb"
    first = ingest(sources=[str(folder)], db=str(db), workers=0, doc_seconds=0.2)
    assert first["quarantine_reasons"] == {"process:time_limit_exceeded": 1} and first["loaded"] == 0
    os.utime(slow, (slow.stat().st_atime, slow.stat().st_mtime + 5))
    second = ingest(sources=[str(folder)], db=str(db), workers=0, doc_seconds=0)
    assert second["loaded"] == 1
    with duckdb.connect(str(db), read_only=True) as con:
        outcomes = con.execute("SELECT outcome FROM sources ORDER BY 1").fetchall()
        still_open = con.execute("SELECT count(*) FROM quarantine_status WHERE resolved_at IS NULL").fetchall()
    assert outcomes == [("loaded",), ("quarantined",)]
    assert still_open == [(0,)]
    third = ingest(sources=[str(folder)], db=str(db), workers=0)  # nothing new: an unchanged file
    assert third["loaded"] == 0 and third["quarantined"] == 0
