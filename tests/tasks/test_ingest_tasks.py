"""tasks/ingest.py: reading in bounded pieces."""

from __future__ import annotations

import json
from pathlib import Path

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
