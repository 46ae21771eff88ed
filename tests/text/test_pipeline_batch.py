"""The batch path of the per-document pipeline (`process_documents`, one `clean_batch` call) gives the
same outcomes as `process_document` one by one, failures included."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsetl.schemas.records import Article, RawDocument, Rejection
from newsetl.text import pipeline
from newsetl.text.pipeline import ProcessConfig, make_context, process_document, process_documents

SHARED = Path(__file__).resolve().parents[3] / "shared"


def _doc(n: int, content: str, content_type: str = "text", title: str | None = None) -> RawDocument:
    return RawDocument(doc_id=f"d{n}", source_uri=f"mem://{n}", kind="txt" if content_type == "text" else "html",
                       content_type=content_type, raw=content.encode(), content=content, title=title)


def _docs() -> list[RawDocument]:
    texts = [p.read_text(encoding="utf-8") for p in sorted((SHARED / "seeds").glob("*.txt"))]
    texts += [p.read_text(encoding="utf-8") for p in sorted((SHARED / "eval" / "aeb-dev" / "text").glob("*.txt"))[:20]]
    docs = [_doc(n, t, title=t.split("\n", 1)[0] if n % 2 else None) for n, t in enumerate(texts)]
    docs.append(_doc(900, "<html><body><article><p>The council approved the budget on Tuesday after a long "
                          "debate, officials said.</p><p>Share this article</p></article></body></html>", "html"))
    docs.append(_doc(901, "<html><body></body></html>", "html"))  # nothing to extract: a rejection
    docs.append(_doc(902, ""))
    return docs


@pytest.mark.skipif(not (SHARED / "seeds").is_dir(), reason="../shared is not next to the repo")
def test_batch_outcomes_equal_one_by_one() -> None:
    ctx = make_context(ProcessConfig())
    docs = _docs()
    batch = process_documents(docs, ctx)
    assert batch == [process_document(d, ctx) for d in docs]
    assert any(isinstance(o, Rejection) for o in batch)


def test_a_failing_batch_clean_falls_back_to_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = make_context(ProcessConfig(line_model=False))
    docs = [_doc(1, "The council approved the budget on Tuesday, officials said.\nShare this article"),
            _doc(2, "A second story about the vote.")]
    expected = [process_document(d, ctx) for d in docs]

    def broken(*args: object, **kwargs: object) -> list[object]:
        raise RuntimeError("batch failed")

    monkeypatch.setattr(pipeline, "clean_batch", broken)
    assert process_documents(docs, ctx) == expected


def test_a_date_the_input_gave_and_no_parser_reads_is_kept_as_invalid() -> None:
    """A JSON record's `published_at` of "2024-13-45" became NULL without a trace (a user trial); it is kept
    in `extra._invalid_fields`, as the record's other unusable values are. A date that parses is not."""
    ctx = make_context(ProcessConfig())
    text = "The council approved the new ferry timetable on Tuesday after a long public consultation.\n" * 3

    def article(published_at: str) -> Article | Rejection:
        doc = RawDocument(doc_id="d", source_uri="mem://d", kind="jsonl", content_type="text", raw=text.encode(),
                          content=text, published_at=published_at, extra={"_invalid_fields": {"url": "a list"}})
        return process_document(doc, ctx)

    bad = article("2024-13-45")
    assert not isinstance(bad, Rejection) and bad.published_at is None
    assert bad.extra["_invalid_fields"] == {"url": "a list", "published_at": "not a date newsetl reads: 2024-13-45"}
    good = article("2024-03-05T10:00:00Z")
    assert not isinstance(good, Rejection) and good.published_at is not None
    assert good.extra["_invalid_fields"] == {"url": "a list"}
