"""How the ingest bounds what it holds: read groups by bytes as held (gzip inflated), batches by
documents and by raw bytes. Real files, real gzip."""

from __future__ import annotations

import gzip
import itertools
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from newsetl.schemas.records import RawDocument
from newsetl.sources.files import held_size
from newsetl.tasks.batching import batches, file_groups


def _doc(i: int, size: int) -> RawDocument:
    raw = b"x" * size
    return RawDocument(doc_id=str(i), source_uri=f"d{i}", kind="txt", content_type="text", raw=raw,
                       content=raw.decode())


def test_a_gzip_file_is_counted_inflated(tmp_path: Path) -> None:
    page = tmp_path / "p.html.gz"
    page.write_bytes(gzip.compress(b"<p>news</p>" * 100_000))
    plain = tmp_path / "p.html"
    plain.write_bytes(b"<p>news</p>" * 10)
    assert held_size(str(page)) == 1_100_000 > os.stat(page).st_size
    assert held_size(str(plain)) == 110
    assert held_size(str(tmp_path / "missing.html")) == 0


def test_many_member_gzip_counts_at_least_its_size_on_disk(tmp_path: Path) -> None:
    warc = tmp_path / "a.warc.gz"  # a WARC: one gzip member per record; the trailer speaks of the last
    warc.write_bytes(gzip.compress(os.urandom(50_000)) + gzip.compress(b"tiny"))
    assert held_size(str(warc)) == os.stat(warc).st_size


def test_read_groups_follow_the_inflated_size(tmp_path: Path) -> None:
    paths = []
    for i in range(6):
        p = tmp_path / f"{i}.html.gz"
        p.write_bytes(gzip.compress(b"a" * 400_000))  # ~400 bytes on disk, 400 KB held
        paths.append(str(p))
    groups = list(file_groups(paths, max_files=100, max_bytes=1_000_000))
    assert [len(g) for g in groups] == [2, 2, 2]
    assert [p for g in groups for p in g] == paths


@given(st.lists(st.integers(min_value=0, max_value=50), max_size=40), st.integers(1, 7), st.integers(1, 120))
def test_batches_keep_order_and_both_bounds(sizes: list[int], max_docs: int, max_bytes: int) -> None:
    docs = [_doc(i, n) for i, n in enumerate(sizes)]
    out = list(batches(docs, max_docs, max_bytes))
    assert [d for b in out for d in b] == docs  # nothing lost, nothing reordered
    for b in out:
        assert 1 <= len(b) <= max_docs
        # Over the byte bound only as a single document larger than it.
        assert sum(len(d.raw) for d in b) <= max_bytes or len(b) == 1
    # Greedy: a batch ends only when the next document would break a bound.
    for b, nxt in itertools.pairwise(out):
        assert len(b) == max_docs or sum(len(d.raw) for d in b) + len(nxt[0].raw) > max_bytes


def test_a_gzip_file_that_inflates_past_a_piece_is_streamed_in_pieces(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A group of one file larger than a piece is read in pieces. Larger as held: by its size on disk a
    small .jsonl.gz that inflates past the bound was read whole (the 600 MB dump the pieces are for)."""
    from newsetl.tasks import batching

    record = '{"id": "%d", "title": "Council vote", "text": "%s"}\n'
    dump = tmp_path / "feed.jsonl.gz"
    dump.write_bytes(gzip.compress("".join(record % (i, "The council met. " * 300) for i in range(60)).encode()))
    assert os.stat(dump).st_size < 100_000 < held_size(str(dump))
    monkeypatch.setattr(batching, "READ_PIECE_BYTES", 100_000)
    pieces = list(batching.read_group([str(dump)], batching.READ_CONFIG))
    assert len(pieces) > 1
    assert all(sum(len(o.raw or b"") for o in p.outcomes) <= 100_000 + 6_000 for p in pieces)
    assert [o.source_uri for p in pieces for o in p.outcomes] == [f"{dump}#{i}" for i in range(60)]
    # the file is recorded as read once, with its last document's piece
    assert [len(p.inputs) for p in pieces] == [0] * (len(pieces) - 1) + [1]
