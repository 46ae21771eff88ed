"""The batch path of the per-document pipeline (`process_documents`, one `clean_batch` call) gives the
same outcomes as `process_document` one by one, failures included."""

from __future__ import annotations

from datetime import UTC, datetime
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


def test_a_date_the_input_gave_that_reads_but_is_not_taken_says_why() -> None:
    """README: `extra._invalid_fields` holds a value newsetl cannot use "with why". A record's `published_at` of
    "2024-01-02" with a `scraped_at` of 2023-11-14 was said to be "not a date newsetl reads" (user trial 10):
    it reads; it is later than the record's fetch, so no publication date. Nor is a date before 1990."""
    ctx = make_context(ProcessConfig(line_model=False))
    text = "The council approved the new ferry timetable on Tuesday after a long public consultation.\n" * 3

    def why(published_at: str) -> str:
        doc = RawDocument(doc_id="d", source_uri="mem://d", kind="jsonl", content_type="text", raw=text.encode(),
                          content=text, published_at=published_at,
                          fetched_at=datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC))
        article = process_document(doc, ctx)
        assert not isinstance(article, Rejection) and article.published_at is None
        return str(article.extra["_invalid_fields"]["published_at"])

    later = why("2024-01-02")
    assert "not a date newsetl reads" not in later
    assert "later than the record was fetched (2023-11-14T22:13:20+00:00)" in later and later.endswith("2024-01-02")
    old = why("1985-03-01")
    assert "not a date newsetl reads" not in old and "before 1990" in old and old.endswith("1985-03-01")
    assert why("2024-13-45") == "not a date newsetl reads: 2024-13-45"


def test_a_page_keeps_its_own_date_when_the_container_gives_one_no_parser_reads() -> None:
    """A feed item's pubDate (or a JSON record's date) that does not parse left the article undated, its page's
    own date unread (a user trial): the page's date is read then, and the container's is kept as invalid."""
    ctx = make_context(ProcessConfig())
    page = ("<html><head><title>Ferry timetable approved</title>"
            "<meta property='article:published_time' content='2019-11-19T10:00:00+00:00'></head><body><article>"
            + "<p>The council approved the new ferry timetable on Tuesday after a long public consultation.</p>" * 3
            + "</article></body></html>")

    def article(published_at: str | None) -> Article | Rejection:
        doc = RawDocument(doc_id="d", source_uri="http://n.example/a/1", kind="url", content_type="html",
                          raw=page.encode(), content=page, url="http://n.example/a/1", published_at=published_at)
        return process_document(doc, ctx)

    unread = article("not a date")
    assert not isinstance(unread, Rejection) and unread.published_at is not None
    assert unread.published_at.date().isoformat() == "2019-11-19"
    assert unread.extra["_invalid_fields"] == {"published_at": "not a date newsetl reads: not a date"}
    given = article("Tue, 11 Jun 2024 19:05:00 +0100")  # the container's date, when it parses, still wins
    assert not isinstance(given, Rejection) and given.published_at is not None
    assert given.published_at.date().isoformat() == "2024-06-11" and "_invalid_fields" not in given.extra
    own = article(None)
    assert not isinstance(own, Rejection) and own.published_at == unread.published_at


def test_each_removal_is_found_at_its_position_in_the_text_it_names() -> None:
    """A removal's position is an offset in the input of the pass that removed it: the repaired text (the
    cleaner), the cleaned body (describe's head lines) or the described body (the publisher's learned lines);
    `offset_in` names which (an audit could not tell them apart from the rows). Each span is checked where
    its row says it is."""
    from newsetl.schemas.records import OFFSET_IN_CLEANED, OFFSET_IN_DESCRIBED, OFFSET_IN_REPAIRED
    from newsetl.text.describe import describe_article
    from newsetl.text.learned import publisher_key
    from newsetl.text.lines import normalize_line
    from newsetl.text.pipeline import clean_document, finish_document, prepare_document

    footer = "The Daily Bugle thanks its readers for staying with us through the winter"
    text = ("Ferry timetable approved\nBy Jane Smith\nMarch 3, 2024\n\n"
            "The harbour council approved a new ferry timetable on Tuesday after a long consultation.\n\n"
            "Advertisement\n\nResidents had asked for an earlier first crossing for years, the chair said.\n\n"
            f"{footer}\n")
    ctx = make_context(ProcessConfig(), learned={publisher_key("The Daily Bugle"): frozenset({normalize_line(footer)})})
    doc = RawDocument(doc_id="d1", source_uri="mem://1", kind="txt", content_type="text", raw=text.encode(),
                      content=text, title="Ferry timetable approved", publisher="The Daily Bugle")
    p = prepare_document(doc, ctx)
    assert not isinstance(p, Rejection)
    cleaned = clean_document(doc, p, ctx)
    assert not isinstance(cleaned, Rejection)
    article = finish_document(doc, ctx, p, cleaned)
    assert isinstance(article, Article) and article == process_document(doc, ctx)
    texts = {OFFSET_IN_REPAIRED: p.repaired.text, OFFSET_IN_CLEANED: cleaned.body,
             OFFSET_IN_DESCRIBED: describe_article(cleaned.body, cleaned.removals, p.hints).body.strip()}
    for r in article.removals:
        assert texts[r.offset_in][r.position:r.position + len(r.text)] == r.text, r
    # each of the three passes removed something here
    assert {r.offset_in for r in article.removals} == set(texts), article.removals
    assert footer not in article.body and "Advertisement" not in article.body


def test_the_stored_body_has_no_line_indentation_and_says_how_many_lines_it_took_it_from() -> None:
    # Plain text scraped from a rendered page keeps its paragraph indents: 74 of 735 dev bodies began a line
    # with spaces or tabs. The cleaner sees them (the line model reads indentation), the stored body does not.
    story = ("The council approved the budget on Tuesday after a long debate, officials said, and the vote "
             "was closer than expected.")
    text = f"{story}\n\n\t{story.replace('Tuesday', 'Monday')}\n\n    {story.replace('budget', 'plan')}\n"
    article = process_document(_doc(1, text), make_context(ProcessConfig()))
    assert isinstance(article, Article), article
    assert article.body.split("\n\n") == [story, story.replace("Tuesday", "Monday"), story.replace("budget", "plan")]
    assert article.repairs.get("line_indent") == 2
