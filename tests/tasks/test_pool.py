"""Worker processes: same results as in-process, and a pathological page cannot stall a batch."""

from __future__ import annotations

import time

from newsetl.schemas.records import Article, RawDocument, Rejection
from newsetl.sources.document import document_from_bytes
from newsetl.tasks.pool import TIME_LIMIT_EXCEEDED, PoolConfig, WorkerPool, process_limited
from newsetl.text.pipeline import ProcessConfig, make_context
from newsetl.text.sign import SignConfig

STORY = ("Ferry timetable approved\n\nThe harbour council approved a new ferry timetable on Tuesday after a "
         "long public consultation that ran for most of the spring.\n\n- Advertisement -\n\nResidents had "
         "asked for an earlier first crossing for years, the council chair said at the meeting.\n")


def doc(name: str, data: bytes, kind: str) -> RawDocument:
    out = document_from_bytes(f"/in/{name}", data, kind)
    assert isinstance(out, RawDocument)
    return out


def slow_page(paragraphs: int = 60_000) -> bytes:
    # trafilatura needs seconds for a page of tens of thousands of paragraphs (measured: 22 s for 100k).
    body = "".join(f"<p>Paragraph {i} of a page that never ends, with a few more words.</p>" for i in range(paragraphs))
    return f"<html><body><article>{body}</article></body></html>".encode()


def test_pool_matches_in_process_and_stops_a_pathological_page() -> None:
    ctx = make_context(ProcessConfig())
    docs = [doc(f"s{i}.txt", STORY.replace("Tuesday", f"day {i}").encode(), "txt") for i in range(20)]
    docs.insert(7, doc("slow.html", slow_page(), "html"))
    pool = WorkerPool(ctx, PoolConfig(workers=2, doc_seconds=1.0, min_docs_per_worker=4))
    try:
        started = time.monotonic()
        chunk = pool.run(docs, SignConfig())
        took = time.monotonic() - started
    finally:
        pool.close()
    arts = chunk.prepared.articles
    # Order kept: the articles come back in document order, the slow page is the one rejection.
    assert arts.column("source_uri").to_pylist() == [d.source_uri for i, d in enumerate(docs) if i != 7]
    assert len(chunk.rejections) == 1
    slow = chunk.rejections[0]
    assert slow.reason == TIME_LIMIT_EXCEEDED and slow.raw == docs[7].raw
    assert chunk.prepared.quarantine.column("reason").to_pylist() == [TIME_LIMIT_EXCEEDED]
    assert chunk.articles == 20 and chunk.prepared.signatures.minhash.shape[0] == 20
    assert chunk.prepared.documents.num_rows == 21  # the rejected page's bytes are kept too
    bodies = arts.column("body").to_pylist()
    assert all("Advertisement" not in b for b in bodies)
    assert chunk.removed and sum(chunk.removed.values()) == chunk.prepared.removals.num_rows
    assert took < 60, f"the limit did not stop the slow page in time ({took:.1f} s)"
    # In-process gives the same articles.
    serial = [process_limited(d, ctx, 0) for i, d in enumerate(docs) if i != 7]
    assert [a.body for a in serial if isinstance(a, Article)] == bodies


def test_time_limit_on_the_main_thread() -> None:
    ctx = make_context(ProcessConfig())
    out = process_limited(doc("slow.html", slow_page(), "html"), ctx, 0.5)
    assert isinstance(out, Rejection) and out.reason == TIME_LIMIT_EXCEEDED
    fine = process_limited(doc("ok.txt", STORY.encode(), "txt"), ctx, 5.0)
    assert isinstance(fine, Article)
