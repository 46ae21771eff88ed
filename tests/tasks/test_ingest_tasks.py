"""tasks/ingest.py: reading in bounded pieces; what discovery leaves out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from newsetl.schemas.records import RawDocument
from newsetl.sources.config import ReadConfig
from newsetl.tasks.ingest import read_documents, read_pieces


def test_a_large_file_is_read_in_bounded_pieces_and_recorded_after_its_last_document(tmp_path: Path) -> None:
    big = tmp_path / "big.jsonl"
    big.write_text("".join(json.dumps({"id": f"r{i}", "text": f"Story number {i} " * 20}) + "\n" for i in range(23)))
    small = tmp_path / "small.txt"
    small.write_text("A short story about the harbour council and its new ferry timetable.\n")
    pieces = list(read_pieces([str(big), str(small)], ReadConfig(), max_docs=5, max_bytes=10**9))
    assert [len(p.outcomes) for p in pieces] == [5, 5, 5, 5, 4]
    assert all(isinstance(o, RawDocument) for p in pieces for o in p.outcomes)
    # big.jsonl is complete in piece 4 (its 23rd record): listed there or later, never before.
    listed = [[i[0] for i in p.inputs] for p in pieces]
    assert listed[:4] == [[], [], [], []] and listed[4] == [str(big), str(small)]
    assert [i[3] for i in pieces[4].inputs] == [23, 1]
    # Bytes bound a piece too.
    by_bytes = list(read_pieces([str(big)], ReadConfig(), max_docs=10**9, max_bytes=1000))
    assert len(by_bytes) > 3 and sum(len(p.outcomes) for p in by_bytes) == 23
    # The task reads the whole group at once, with the same outcomes.
    whole = read_documents.fn([str(big), str(small)], ReadConfig())
    assert [o.doc_id for o in whole.outcomes] == [o.doc_id for p in pieces for o in p.outcomes]
    assert whole.inputs == pieces[4].inputs


def test_a_warehouse_inside_an_ingested_folder_is_not_read_as_input(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`newsetl ingest inbox --db inbox/w.duckdb`: the run's own files are no inputs (a user trial: the
    report was loaded as an article every run, the rest quarantined as unsupported every run). A file
    named as a source is still read, and so is another file that merely starts with the same name."""
    from newsetl.sources.discover import discover
    from newsetl.tasks.ingest import written_beside

    inbox = tmp_path / "inbox"
    for name in ("story.txt", "w-notes.txt", "w.duckdb", "w.duckdb.wal", "w.duckdb.lock", "w.duckdb.serve.lock",
                 "w.snapshot.duckdb", "w.report.html", "w.snapshot/g-1/articles/month=2026-12/data_0.parquet",
                 "w.snapshot/g-1/manifest.json", "w.runs/r1.md", "sub/w.report.html"):
        (inbox / name).parent.mkdir(parents=True, exist_ok=True)
        (inbox / name).write_text("x")
    monkeypatch.chdir(tmp_path)
    for db in ("inbox/w.duckdb", str(inbox / "w.duckdb")):
        leave_out = written_beside(db)
        for sources in ([str(inbox)], [f"{inbox}/**/*"], ["inbox"]):
            paths, rejections = discover(sources, leave_out=leave_out)
            assert paths == [str(inbox / n) for n in ("story.txt", "sub/w.report.html", "w-notes.txt")], sources
            assert rejections == []
        assert discover([str(inbox / "w.report.html")], leave_out=leave_out)[0] == [str(inbox / "w.report.html")]
