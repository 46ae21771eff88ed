"""JSON records from other exporters: field aliases, `--field` mappings, and what a mapping changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from newsetl.schemas.records import RawDocument, Rejection
from newsetl.sources.config import ReadConfig
from newsetl.sources.fields import FieldMappingError, lookup, parse_field_mapping
from newsetl.sources.jsonl import read_jsonl
from newsetl.sources.reasons import BAD_RECORD

BODY = "The harbour council approved a new ferry timetable on Tuesday after a long public consultation."


def read(records: list[dict[str, Any]], fields: tuple[tuple[str, str], ...] = ()) -> list[RawDocument | Rejection]:
    data = "".join(json.dumps(r) + "\n" for r in records).encode()
    return list(read_jsonl("dump.jsonl", data, None, ReadConfig(jsonl_fields=fields)))


def one_doc(records: list[dict[str, Any]], fields: tuple[tuple[str, str], ...] = ()) -> RawDocument:
    (doc,) = read(records, fields)
    assert isinstance(doc, RawDocument), doc
    return doc


def test_a_news_please_record_reads_without_a_mapping() -> None:
    doc = one_doc([{"title": "Ferry timetable approved", "maintext": BODY, "date_publish": "2019-11-19 04:19:00",
                    "source_domain": "harbour-news.example", "url": "https://harbour-news.example/a",
                    "authors": ["A. Writer"], "language": "en"}])
    assert (doc.content, doc.content_type) == (BODY, "text")
    assert doc.published_at == "2019-11-19 04:19:00" and doc.publisher == "harbour-news.example"
    assert doc.title == "Ferry timetable approved" and doc.url == "https://harbour-news.example/a"
    assert doc.author == "A. Writer"
    assert doc.extra == {"language": "en"}  # read fields are not kept twice


def test_nested_metadata_of_datatrove_and_hugging_face_dumps() -> None:
    doc = one_doc([{"id": "cc-1", "text": BODY, "metadata": {"url": "https://x.example/1", "date": "2024-03-05"}}])
    assert (doc.external_id, doc.url, doc.published_at) == ("cc-1", "https://x.example/1", "2024-03-05")
    assert doc.extra == {"metadata": {"url": "https://x.example/1", "date": "2024-03-05"}}  # may hold more


def test_trafilatura_json_output_reads_without_a_mapping() -> None:
    doc = one_doc([{"title": "T", "author": "A. Writer", "hostname": "news.example", "date": "2019-11-19",
                    "id": None, "raw_text": "raw", "text": BODY, "source": "https://news.example/t",
                    "source-hostname": "The News", "language": "en"}])
    assert (doc.content, doc.url, doc.publisher, doc.published_at, doc.author) == (
        BODY, "https://news.example/t", "news.example", "2019-11-19", "A. Writer")
    # `source` as a name (Hugging Face news sets) is not a URL: passed over, kept
    doc = one_doc([{"text": BODY, "source": "CNN", "link": "ftp://x"}])
    assert doc.url is None and doc.extra == {"source": "CNN", "link": "ftp://x"}


def test_a_newsapi_article_reads_without_a_mapping() -> None:
    doc = one_doc([{"source": {"id": None, "name": "Harbour News"}, "author": "A. Writer", "title": "T",
                    "url": "https://harbour.example/t", "publishedAt": "2024-03-05T10:00:00Z", "content": BODY}])
    assert (doc.content, doc.publisher, doc.published_at) == (BODY, "Harbour News", "2024-03-05T10:00:00Z")
    assert doc.author == "A. Writer"
    assert doc.extra == {"source": {"id": None, "name": "Harbour News"}}


def test_the_fields_own_name_wins_over_an_alias() -> None:
    doc = one_doc([{"text": BODY, "content": "other", "url": "https://a.example/", "link": "https://b.example/"}])
    assert doc.content == BODY and doc.url == "https://a.example/"
    assert doc.extra == {"content": "other", "link": "https://b.example/"}


def test_markup_under_content_or_body_is_read_as_html_but_text_stays_text() -> None:
    html = "<div class='story'><p>" + BODY + "</p></div>"
    assert one_doc([{"content": html}]).content_type == "html"
    assert one_doc([{"body": "  <p>" + BODY + "</p>"}]).content_type == "html"
    assert one_doc([{"content": "<3 this story. " + BODY}]).content_type == "text"  # not a tag
    assert one_doc([{"text": html}]).content_type == "text"  # `text` is plain text by contract
    assert one_doc([{"raw_html": html}]).content_type == "html"


def test_an_alias_of_another_type_is_passed_over_and_kept() -> None:
    doc = one_doc([{"content": {"rendered": BODY}, "article": BODY, "date": {"$date": 1}}])
    assert doc.content == BODY and doc.published_at is None
    assert "_invalid_fields" not in doc.extra  # not written for us: no complaint
    assert doc.extra["content"] == {"rendered": BODY} and doc.extra["date"] == {"$date": 1}


def test_a_mapping_reads_a_dump_the_aliases_do_not_know() -> None:
    record = {"uid": "s-9", "story": BODY, "meta": {"link": "https://y.example/s-9", "when": "2024-01-02"}}
    (refused,) = read([record])
    assert isinstance(refused, Rejection) and refused.reason == BAD_RECORD
    # the message names the fields looked in, the record's own fields and the way out
    assert "meta, story, uid" in refused.detail and "--field text=FIELD" in refused.detail
    doc = one_doc([record], parse_field_mapping(["text=story", "url=meta.link", "published_at=meta.when"]))
    assert (doc.content, doc.url, doc.published_at) == (BODY, "https://y.example/s-9", "2024-01-02")
    # the same line under a mapping is another document: a re-run with --field loads it, not skips it
    assert doc.doc_id != refused.doc_id and doc.source_uri == refused.source_uri == "dump.jsonl#1"
    doc = one_doc([record], parse_field_mapping(["text=story", "id=uid"]))
    assert doc.external_id == "s-9" and doc.source_uri == "dump.jsonl#s-9"


def test_a_mapped_path_comes_before_the_usual_names_and_reports_a_wrong_type() -> None:
    fields = parse_field_mapping(["text=body.plain", "title=head"])
    doc = one_doc([{"text": "not this", "body": {"plain": BODY}, "head": ["a", "list"]}], fields)
    assert doc.content == BODY and doc.title is None
    assert "list" in doc.extra["_invalid_fields"]["title"]
    # an explicitly mapped text field is never sniffed for markup: the user said it is text
    fields = parse_field_mapping(["text=content"])
    assert one_doc([{"content": "<p>" + BODY + "</p>"}], fields).content_type == "text"


def test_a_record_the_mapping_does_not_reach_reads_and_is_keyed_as_without_it() -> None:
    """One run's `--field text=story` applies to every JSON file it reads. It replaced the usual names, so
    the drop folder's other dumps, read again under it, had every record quarantined for want of a `story`
    (a user trial). A record without a mapped path now reads by the usual names and keeps its doc_id: known,
    not loaded again as a copy of itself."""
    fields = parse_field_mapping(["text=story"])
    plain = {"id": "a1", "text": BODY}
    assert one_doc([plain], fields).doc_id == one_doc([plain]).doc_id
    assert one_doc([plain], fields).content == BODY
    mapped = {"id": "a2", "story": BODY, "text": "a teaser"}
    doc = one_doc([mapped], fields)
    assert doc.content == BODY and doc.doc_id != one_doc([mapped]).doc_id
    # a record with neither is refused, naming every place looked in
    (refused,) = read([{"id": "a3", "summary": BODY}], fields)
    assert isinstance(refused, Rejection) and refused.reason == BAD_RECORD
    assert "story/text/maintext" in refused.detail, refused.detail


def test_without_a_mapping_doc_ids_are_as_before() -> None:
    # sha256 over the line and its id (or line number): warehouses written before aliases keep theirs
    from newsetl.sources.files import sha256_hex

    line = json.dumps({"id": "a1", "text": BODY})
    doc = one_doc([json.loads(line)])
    assert doc.doc_id == sha256_hex(line.encode(), b"a1")


@pytest.mark.parametrize(("specs", "message"), [
    (["text"], "expected NAME=PATH"),
    (["body=story"], "unknown field 'body'"),
    (["text="], "must name a key"),
    (["text=a..b"], "must name a key"),
    (["text=a", "text=b"], "more than once"),
])
def test_bad_mappings_are_refused_with_the_reason(specs: list[str], message: str) -> None:
    with pytest.raises(FieldMappingError, match=message):
        parse_field_mapping(specs)


def test_mapping_is_sorted_and_accepts_a_dict() -> None:
    assert parse_field_mapping({"url": "m.u", "text": "s"}) == (("text", "s"), ("url", "m.u"))
    assert parse_field_mapping(None) == () == parse_field_mapping([])


def test_lookup_prefers_a_key_with_a_dot_in_its_name() -> None:
    assert lookup({"a.b": 1, "a": {"b": 2}}, "a.b") == 1
    assert lookup({"a": {"b": 2}}, "a.b") == 2
    assert lookup({"a": [1]}, "a.b") is None


def test_read_as_names_the_mapping_of_json_files_only(tmp_path: Path) -> None:
    mapped = ReadConfig(jsonl_fields=parse_field_mapping(["text=story"]))
    assert mapped.read_as("/in/d.jsonl.gz") == "text=story" and mapped.read_as("/in/a.json") == "text=story"
    assert mapped.read_as("/in/a.txt") is None and mapped.read_as("/in/a.warc") is None
    assert ReadConfig().read_as("/in/d.jsonl") is None


def test_an_api_response_saved_whole_reads_its_list_of_records(tmp_path: Path) -> None:
    from newsetl.sources.read import read_path

    articles = [{"source": {"name": "Harbour News"}, "title": f"T{i}", "url": f"https://h.example/{i}",
                 "publishedAt": "2024-03-05T10:00:00Z", "content": f"{BODY} ({i})"} for i in range(3)]
    response = tmp_path / "top-headlines.json"
    response.write_text(json.dumps({"status": "ok", "totalResults": 3, "articles": articles}), encoding="utf-8")
    docs = list(read_path(str(response), ReadConfig()))
    assert [d.title for d in docs if isinstance(d, RawDocument)] == ["T0", "T1", "T2"]
    # an object with a body of its own is one record, whatever lists it holds
    single = tmp_path / "one.json"
    single.write_text(json.dumps({"text": BODY, "tags": [{"name": "ferry"}]}), encoding="utf-8")
    (doc,) = read_path(str(single), ReadConfig())
    assert isinstance(doc, RawDocument) and doc.extra == {"tags": [{"name": "ferry"}]}
    # two lists of objects (a site's posts and pages; JSON:API's data and included): every item is a record,
    # and one without a body is quarantined on its own, naming its fields
    two = tmp_path / "two.json"
    two.write_text(json.dumps({"posts": [{"text": f"{BODY} (post)"}], "pages": [{"text": f"{BODY} (page)"}],
                               "included": [{"type": "author", "name": "Ann"}, 7]}), encoding="utf-8")
    out = list(read_path(str(two), ReadConfig()))
    assert [d.content for d in out if isinstance(d, RawDocument)] == [f"{BODY} (post)", f"{BODY} (page)"]
    refused = [r for r in out if isinstance(r, Rejection)]
    assert [r.reason for r in refused] == [BAD_RECORD, BAD_RECORD] and "its fields: name, type" in refused[0].detail
    # numbered as records of the response, not as lines (the file is one line)
    assert [r.detail.split(" has ")[0].split(" is ")[0] for r in refused] == ["record 3", "record 4"]


def test_an_empty_api_page_holds_no_record_but_an_article_with_empty_tags_is_one(tmp_path: Path) -> None:
    from newsetl.sources.read import read_path
    from newsetl.sources.reasons import EMPTY_INPUT

    empty = tmp_path / "page-7.json"
    empty.write_text(json.dumps({"status": "ok", "totalResults": 0, "articles": []}), encoding="utf-8")
    (refused,) = read_path(str(empty), ReadConfig())
    # as `[]` is: no record, not one record without a body ("line 1 has no non-empty string body")
    assert isinstance(refused, Rejection) and refused.reason == EMPTY_INPUT
    assert "no JSON records" in refused.detail
    # an object that is itself a record keeps being one, its empty list a field of it
    tagged = tmp_path / "one.json"
    tagged.write_text(json.dumps({"title": "T", "tags": []}), encoding="utf-8")
    (no_body,) = read_path(str(tagged), ReadConfig())
    assert isinstance(no_body, Rejection) and no_body.reason == BAD_RECORD


def test_author_names_are_the_byline() -> None:
    # news-please's `authors` list, a plain `byline`, or a mapped path; a list of anything else is no byline
    doc = one_doc([{"text": BODY, "authors": ["Ann Lee", " Bo Park "]}])
    assert doc.author == "Ann Lee; Bo Park"
    assert one_doc([{"text": BODY, "byline": "Ann Lee"}]).author == "Ann Lee"
    assert one_doc([{"text": BODY, "meta": {"writer": "Ann Lee"}}], (("byline", "meta.writer"),)).author == "Ann Lee"
    odd = one_doc([{"text": BODY, "authors": [{"name": "Ann"}]}])
    assert odd.author is None and odd.extra == {"authors": [{"name": "Ann"}]}


def test_a_records_own_fetch_time_is_its_fetched_at() -> None:
    # A scrape log holds many fetches of a page in one file: each record's time, not the file's, says which
    # came later (a user trial found two versions of a page tied on the file's modification time).
    from datetime import UTC, datetime

    assert one_doc([{"text": BODY, "scraped_at": "2026-03-10T08:30:00Z"}]).fetched_at == \
        datetime(2026, 3, 10, 8, 30, tzinfo=UTC)
    assert one_doc([{"text": BODY, "date_download": "2026-03-10 08:30:00"}]).fetched_at == \
        datetime(2026, 3, 10, 8, 30, tzinfo=UTC)  # news-please; no offset: UTC
    assert one_doc([{"text": BODY, "crawled_at": 1773131400000}]).fetched_at == \
        datetime(2026, 3, 10, 8, 30, tzinfo=UTC)  # Unix milliseconds
    assert one_doc([{"text": BODY, "meta": {"when": "2026-03-10T09:30:00+01:00"}}],
                   (("fetched_at", "meta.when"),)).fetched_at == datetime(2026, 3, 10, 8, 30, tzinfo=UTC)
    # an alias holding no time is left alone (kept in extra); the field's own name holding none is said
    odd = one_doc([{"text": BODY, "scraped_at": "yesterday"}])
    assert odd.fetched_at is None and odd.extra == {"scraped_at": "yesterday"}
    bad = one_doc([{"text": BODY, "fetched_at": "soon"}])
    assert bad.fetched_at is None and bad.extra == {"_invalid_fields": {"fetched_at": "not a time: soon"}}
