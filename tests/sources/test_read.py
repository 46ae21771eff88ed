"""Discover and read: every input format of the sample corpus, JSONL/JSON records, WARC archives."""

from __future__ import annotations

import gzip
import io
import json
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from newsetl.schemas.records import Article, RawDocument, Rejection
from newsetl.sources import warc as warc_mod
from newsetl.sources.config import ReadConfig
from newsetl.sources.discover import discover, kind_of, settling
from newsetl.sources.document import document_from_bytes, saved_response
from newsetl.sources.files import sha256_hex
from newsetl.sources.jsonl import read_jsonl
from newsetl.sources.read import read_path
from newsetl.sources.reasons import BAD_RECORD, DUPLICATE_RECORD, NOT_FOUND, UNSUPPORTED_KIND, display_path
from newsetl.text.pipeline import ProcessConfig, make_context, process_document

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples" / "corpus"
PAGE = (
    b"<html><head><title>Harbour reopens</title></head><body><article><p>The harbour reopened on "
    b"Monday after a three-week closure, the port authority said.</p></article></body></html>"
)


def read_all(path: Path | str, config: ReadConfig | None = None) -> list[RawDocument | Rejection]:
    return list(read_path(str(path), config or ReadConfig()))


def only_doc(path: Path | str) -> RawDocument:
    out = read_all(path)
    assert len(out) == 1 and isinstance(out[0], RawDocument), out
    return out[0]


# -- identity ------------------------------------------------------------------------------------


def test_sha256_hex_separates_parts() -> None:
    assert sha256_hex(b"ab", b"c") != sha256_hex(b"a", b"bc")
    assert sha256_hex(b"x") == sha256_hex(b"x")
    assert len(sha256_hex(b"")) == 64


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.txt", ("txt", False)),
        ("A.TXT.GZ", ("txt", True)),
        ("page.htm", ("html", False)),
        ("page.xhtml.gz", ("html", True)),
        ("d.jsonl", ("jsonl", False)),
        ("d.ndjson.gz", ("jsonl", True)),
        ("d.json", ("jsonl", False)),
        ("crawl.warc.gz", ("warc", True)),
        ("https://example.com/x.pdf", ("url", False)),
        ("report.pdf", ("unknown", False)),
        ("noext", ("unknown", False)),
    ],
)
def test_kind_of(name: str, expected: tuple[str, bool]) -> None:
    assert kind_of(name) == expected


# -- the sample corpus ---------------------------------------------------------------------------


def test_sample_corpus_reads_without_rejections() -> None:
    paths, rejections = discover([str(SAMPLES)])
    assert rejections == []
    outcomes = [o for p in paths for o in read_path(p)]
    assert all(isinstance(o, RawDocument) for o in outcomes), [
        o for o in outcomes if isinstance(o, Rejection)
    ]
    docs = {
        Path(o.source_uri.split("#")[0]).name
        + ("#" + o.source_uri.split("#")[1] if "#" in o.source_uri else ""): o
        for o in outcomes
        if isinstance(o, RawDocument)
    }
    assert len(docs) == 19
    # The exact re-scrape has the same identity; the near-duplicate does not.
    assert (
        docs["01_council_budget_donation.txt"].doc_id == docs["11_council_budget_exact_rescrape.txt"].doc_id
    )
    assert (
        docs["04_tram_strike_notifications_byline.txt"].doc_id
        != docs["05_tram_strike_rescrape_near_dup.txt"].doc_id
    )
    assert len({d.doc_id for d in docs.values()}) == 18


@pytest.mark.parametrize(
    ("name", "encoding", "snippet"),
    [
        ("09_ferry_timetable_cp1252.txt", "cp1252", "“We would not take a ship off the water"),
        ("09_ferry_timetable_cp1252.txt", "cp1252", "Bríd Ó Conaill"),
        ("10_library_reopening_utf16.txt", "utf-16-le", "Central library reopens after £3m"),
        ("12_observatory_funding.txt.gz", "utf-8", "“Every clear Friday night"),
        ("22_school_orchestra_cp1252.html", "cp1252", "School orchestra’s trip to Vienna"),
        ("08_bakery_mojibake_entities.txt", "utf-8", "â€œWe kept thinking"),  # mojibake is repair's job
    ],
)
def test_sample_encodings(name: str, encoding: str, snippet: str) -> None:
    doc = only_doc(SAMPLES / name)
    assert doc.encoding == encoding
    assert snippet in doc.content
    assert not doc.content.startswith("\ufeff")


def test_sample_kinds_and_raw_bytes() -> None:
    html = only_doc(SAMPLES / "20_flood_barrier.html")
    assert (html.kind, html.content_type) == ("html", "html")
    assert html.raw == (SAMPLES / "20_flood_barrier.html").read_bytes()
    gz = only_doc(SAMPLES / "12_observatory_funding.txt.gz")
    assert gz.raw == gzip.decompress((SAMPLES / "12_observatory_funding.txt.gz").read_bytes())
    assert gz.source_uri == str(SAMPLES / "12_observatory_funding.txt.gz")
    assert gz.fetched_at is not None and gz.fetched_at.tzinfo is not None


def test_sample_jsonl_records() -> None:
    path = SAMPLES / "30_valley_feed.jsonl"
    docs = read_all(path)
    assert [d.external_id for d in docs if isinstance(d, RawDocument)] == [
        "vg-2024-0611-lifeboat",
        "vg-2024-0612-bypass",
        "ap-2024-0613-orchard",
        "vg-2024-0613-orchard-copy",
    ]
    first, second = docs[0], docs[1]
    assert isinstance(first, RawDocument) and isinstance(second, RawDocument)
    assert first.source_uri == f"{path}#vg-2024-0611-lifeboat"
    assert first.content_type == "text" and second.content_type == "html"
    assert first.title == "Lifeboat crew rescues two kayakers swept out of Bramwell Bay"
    assert first.published_at == "2024-06-11T19:05:00+01:00"
    assert first.publisher == "The Valley Gazette"
    assert first.extra == {"section": "News", "tags": ["lifeboat", "coast"]}  # unknown fields kept
    assert first.raw == path.read_bytes().splitlines()[0]  # the exact bytes of the line


# -- discover ------------------------------------------------------------------------------------


def test_discover_dirs_globs_and_hidden_files(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.txt").write_text("one")
    (tmp_path / "a" / ".swp.txt").write_text("hidden")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.txt").write_text("hidden dir")
    (tmp_path / "two.html").write_text("<p>two</p>")
    paths, rejections = discover([str(tmp_path)])
    assert paths == [str(tmp_path / "a" / "one.txt"), str(tmp_path / "two.html")]
    assert rejections == []
    paths, _ = discover([str(tmp_path / "**" / "*.txt")])
    assert paths == [str(tmp_path / "a" / "one.txt")]


def test_discover_reports_missing_sources(tmp_path: Path) -> None:
    paths, rejections = discover([str(tmp_path / "nope.txt"), str(tmp_path / "*.none")])
    assert paths == []
    assert [r.reason for r in rejections] == [NOT_FOUND, NOT_FOUND]
    assert all(r.stage == "discover" for r in rejections)


def test_discover_lists_a_file_reached_twice_once(tmp_path: Path) -> None:
    (tmp_path / "story.txt").write_text("story")
    (tmp_path / "zz_link.txt").symlink_to(tmp_path / "story.txt")
    paths, _ = discover([str(tmp_path), str(tmp_path / "story.txt")])
    assert paths == [str(tmp_path / "story.txt")]


def test_a_recursive_glob_does_not_follow_symlinked_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Python's `**` follows folder links: two links to "." made `in/**/*.txt` grow exponentially (a user
    trial: 10 minutes, 1.2 GB, nothing found). A `**` glob now finds what walking the folder finds."""
    import glob as pyglob
    import threading

    from newsetl.sources.discover import expand_glob

    d = tmp_path / "in"
    (d / "sub" / ".hidden").mkdir(parents=True)
    (d / "a.txt").write_text("a")
    (d / "sub" / "b.txt").write_text("b")
    (d / "sub" / ".hidden" / "c.txt").write_text("c")
    (d / "sub" / "d.html").write_text("<p>d</p>")
    for name in ("self", "again"):
        (d / name).symlink_to(".")
    (d / "sub" / "up").symlink_to("..")
    found: list[list[str]] = []
    worker = threading.Thread(target=lambda: found.append(discover([f"{d}/**/*.txt"])[0]), daemon=True)
    worker.start()
    worker.join(20)
    assert found == [[str(d / "a.txt"), str(d / "sub" / "b.txt")]], "the ** glob did not end (or found other files)"
    assert discover([f"{d}/**/*.txt"])[0] == [p for p in discover([str(d)])[0] if p.endswith(".txt")]
    # Without loops, what glob.glob finds (relative patterns too)
    monkeypatch.chdir(tmp_path)
    for name in ("self", "again"):
        (d / name).unlink()
    (d / "sub" / "up").unlink()
    for pattern in ("in/**/*.txt", "**/*.html", "in/**/sub/*.txt", "in/*/*.txt", f"{d}/**/*.txt"):
        assert sorted(expand_glob(pattern)) == sorted(pyglob.glob(pattern, recursive=True)), pattern


def test_discover_names_a_file_the_same_however_it_was_reached(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """`../in` from one folder and the absolute path from another are one source (a user trial: the
    stored path kept the "..", so the next run with the absolute path read every file again as new
    inputs). Through a symlinked folder, a ".." names the link target's parent: that path stays as given."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("a")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    want = [str(tmp_path / "in" / "a.txt")]
    assert discover(["../in"])[0] == want
    assert discover(["../in/a.txt"])[0] == want
    assert discover([f"{tmp_path}/work/../in/./a.txt"])[0] == want
    (tmp_path / "elsewhere" / "deep").mkdir(parents=True)
    (tmp_path / "elsewhere" / "b.txt").write_text("b")
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere" / "deep")
    assert discover([f"{tmp_path}/link/../b.txt"]) == ([f"{tmp_path}/link/../b.txt"], [])


def test_discover_sources_file(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("a")
    listing = tmp_path / "sources.list"
    listing.write_text("# feeds and folders\nin\n\nhttps://example.com/feed.xml\n@other.list\n")
    paths, rejections = discover([f"@{listing}"])
    assert paths == [str(tmp_path / "in" / "a.txt"), "https://example.com/feed.xml"]
    assert [r.reason for r in rejections] == ["bad_sources_file"]  # nested lists are refused
    _, missing = discover([f"@{tmp_path / 'absent.list'}"])
    assert missing[0].reason == "bad_sources_file"


def test_a_comment_after_a_url_in_a_sources_file_is_a_comment(tmp_path: Path) -> None:
    # It was fetched as "/p/61.html%20#%20..." (a user trial). A path may hold " #": it is taken whole.
    (tmp_path / "Notes #2.txt").write_text("n")
    listing = tmp_path / "sources.list"
    listing.write_text("https://example.com/p/61.html   # the mayor's interview\nNotes #2.txt\n")
    paths, rejections = discover([f"@{listing}"])
    assert sorted(paths) == sorted(["https://example.com/p/61.html", str(tmp_path / "Notes #2.txt")])
    assert rejections == []


def test_unsupported_kind_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    path.write_bytes(b"%PDF-1.4")
    out = read_all(path)
    assert [(o.stage, o.reason) for o in out if isinstance(o, Rejection)] == [("discover", UNSUPPORTED_KIND)]


# -- plain files ---------------------------------------------------------------------------------


def test_txt_holding_an_html_page_is_read_as_html(tmp_path: Path) -> None:
    path = tmp_path / "saved.txt"
    path.write_bytes(b"\xef\xbb\xbf  <!DOCTYPE html>" + PAGE)
    doc = only_doc(path)
    assert (doc.kind, doc.content_type) == ("txt", "html")


def test_plain_text_is_not_mistaken_for_html(tmp_path: Path) -> None:
    path = tmp_path / "story.txt"
    path.write_text("The <html> tag was discussed at the meeting, officials said.\n", encoding="utf-8")
    assert only_doc(path).content_type == "text"


def test_gz_name_without_gzip_bytes_and_gzip_bytes_without_gz_name(tmp_path: Path) -> None:
    plain = tmp_path / "plain.txt.gz"
    plain.write_text("not actually compressed", encoding="utf-8")
    assert only_doc(plain).content == "not actually compressed"
    hidden = tmp_path / "hidden.txt"
    hidden.write_bytes(gzip.compress(b"compressed under a .txt name"))
    assert only_doc(hidden).content == "compressed under a .txt name"


def test_multi_member_gzip_reads_every_member(tmp_path: Path) -> None:
    path = tmp_path / "two.txt.gz"
    path.write_bytes(gzip.compress(b"first half, ") + gzip.compress(b"second half."))
    assert only_doc(path).content == "first half, second half."


def test_document_from_bytes_keeps_url_and_declared_encoding() -> None:
    doc = document_from_bytes(
        "https://example.com/a",
        "caf\xe9".encode("latin-1"),
        "html",
        url="https://example.com/a",
        declared_encoding="iso-8859-1",
    )
    assert isinstance(doc, RawDocument)
    assert doc.content == "café" and doc.encoding == "cp1252" and doc.url == "https://example.com/a"


def test_display_path_escapes_undecodable_file_names() -> None:
    name = os.fsdecode(b"/tmp/caf\xe9.txt")
    shown = display_path(name)
    shown.encode("utf-8")  # storable
    assert shown == "/tmp/caf\\xe9.txt"
    assert display_path("/tmp/café.txt") == "/tmp/café.txt"


# -- JSONL and JSON ------------------------------------------------------------------------------


def _jsonl(tmp_path: Path, lines: Iterable[str], name: str = "d.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_jsonl_ids_line_numbers_and_doc_ids(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path,
        [
            json.dumps({"id": 7, "text": "numeric id"}),
            "",
            json.dumps({"text": "no id"}),
            json.dumps({"id": "x", "text": "same text", "title": 2024}),
        ],
    )
    docs = [d for d in read_all(path) if isinstance(d, RawDocument)]
    assert [d.source_uri.rsplit("#", 1)[1] for d in docs] == ["7", "3", "x"]  # id, else line number
    assert docs[0].external_id == "7" and docs[1].external_id is None
    assert docs[2].title == "2024"  # numbers are accepted as strings
    assert len({d.doc_id for d in docs}) == 3


def test_jsonl_same_line_in_two_files_has_same_doc_id(tmp_path: Path) -> None:
    line = json.dumps({"id": "a1", "text": "The same record."})
    one = _jsonl(tmp_path, [line], "one.jsonl")
    two = _jsonl(tmp_path, ["", line], "two.jsonl")
    (d1,), (d2,) = read_all(one), read_all(two)
    assert isinstance(d1, RawDocument) and isinstance(d2, RawDocument)
    assert d1.doc_id == d2.doc_id


def test_jsonl_wrong_metadata_types_are_kept_aside_not_fatal(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path, [json.dumps({"id": "r", "text": "Body.", "title": {"en": "T"}, "url": ["a", "b"]})]
    )
    (doc,) = read_all(path)
    assert isinstance(doc, RawDocument)
    assert doc.title is None and doc.url is None
    assert set(doc.extra["_invalid_fields"]) == {"title", "url"}


def test_jsonl_duplicate_id_and_missing_body(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path,
        [
            json.dumps({"id": "a", "text": "first"}),
            json.dumps({"id": "a", "text": "second"}),
            json.dumps({"id": "b", "text": ["not", "a", "string"]}),
            json.dumps({"id": "c", "html": "   ", "text": None}),
        ],
    )
    out = read_all(path)
    assert isinstance(out[0], RawDocument) and out[0].content == "first"
    assert [(o.reason, o.source_uri.rsplit("#", 1)[1]) for o in out[1:] if isinstance(o, Rejection)] == [
        (DUPLICATE_RECORD, "a"),
        (BAD_RECORD, "b"),
        (BAD_RECORD, "c"),
    ]
    assert isinstance(out[2], Rejection) and "an array" in out[2].detail  # says what it got


def test_json_array_and_single_object_files(tmp_path: Path) -> None:
    arr = tmp_path / "a.json"
    arr.write_text(json.dumps([{"id": "1", "text": "one"}, {"id": "2", "html": "<p>two</p>"}]))
    docs = read_all(arr)
    assert [d.content for d in docs if isinstance(d, RawDocument)] == ["one", "<p>two</p>"]
    single = tmp_path / "s.json"
    single.write_text(json.dumps({"id": "only", "text": "single record"}, indent=2))
    (doc,) = read_all(single)
    assert isinstance(doc, RawDocument) and doc.external_id == "only"
    lines = _jsonl(
        tmp_path, [json.dumps({"id": "l1", "text": "x"}), json.dumps({"id": "l2", "text": "y"})], "l.json"
    )
    assert len([d for d in read_all(lines) if isinstance(d, RawDocument)]) == 2


def test_jsonl_gz_is_streamed(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl.gz"
    lines = [json.dumps({"id": str(i), "text": f"record {i}"}) for i in range(500)]
    path.write_bytes(gzip.compress("\n".join(lines).encode()))
    docs = read_all(path)
    assert len(docs) == 500 and all(isinstance(d, RawDocument) for d in docs)


def test_read_jsonl_accepts_bytes() -> None:
    out = list(read_jsonl("mem.jsonl", b'{"id": "m", "text": "from memory"}\n', None))
    assert isinstance(out[0], RawDocument) and out[0].content == "from memory"


# -- WARC ----------------------------------------------------------------------------------------


def write_warc(path: Path, records: list[tuple[str, str, str, bytes, str]], gz: bool = True) -> None:
    """records: (warc type, uri, http status line or '', payload, content type)."""
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=gz)
        for rec_type, uri, status, payload, ctype in records:
            if rec_type == "revisit":
                rec = writer.create_revisit_record(uri, "sha1:AAAA", uri, "2024-01-01T00:00:00Z")
            else:
                http = (
                    StatusAndHeaders(status, [("Content-Type", ctype)], protocol="HTTP/1.1")
                    if status
                    else None
                )
                rec = writer.create_warc_record(
                    uri,
                    rec_type,
                    payload=io.BytesIO(payload),
                    http_headers=http,
                    warc_content_type=None if status else ctype,
                )
            writer.write_record(rec)


@pytest.mark.parametrize("gz", [True, False])
def test_warc_html_responses_become_documents_and_the_rest_is_counted(tmp_path: Path, gz: bool) -> None:
    path = tmp_path / ("crawl.warc.gz" if gz else "crawl.warc")
    write_warc(
        path,
        [
            ("request", "https://news.example/a", "", b"GET /a HTTP/1.1\r\n\r\n", "application/http"),
            ("response", "https://news.example/a", "200 OK", PAGE, "text/html; charset=utf-8"),
            ("response", "https://news.example/logo.png", "200 OK", b"\x89PNG\r\n\x1a\n", "image/png"),
            (
                "response",
                "https://news.example/gone",
                "404 Not Found",
                b"<html>not found</html>",
                "text/html",
            ),
            (
                "response",
                "https://news.example/b",
                "200 OK",
                "caf\xe9".encode("cp1252") + PAGE,
                "text/html; charset=windows-1252",
            ),
            ("metadata", "https://news.example/a", "", b"outlinks: ...", "application/warc-fields"),
        ],
        gz=gz,
    )
    out = read_all(path)
    docs = [o for o in out if isinstance(o, RawDocument)]
    skipped = [o for o in out if isinstance(o, Rejection)]
    assert [d.url for d in docs] == ["https://news.example/a", "https://news.example/b"]
    assert all(d.kind == "warc" and d.content_type == "html" for d in docs)
    assert docs[0].source_uri.startswith(f"{path}#urn:uuid:") and docs[0].external_id
    assert docs[0].fetched_at is not None
    assert docs[1].content.startswith("café") and docs[1].encoding == "cp1252"
    assert sorted(r.reason for r in skipped) == sorted([warc_mod.NOT_HTML, warc_mod.HTTP_STATUS])
    assert all(r.reason in warc_mod.SKIP_REASONS and r.raw is None for r in skipped)
    # Same archive read twice: same doc_ids (identity is stable).
    assert [d.doc_id for d in read_all(path) if isinstance(d, RawDocument)] == [d.doc_id for d in docs]


def test_a_page_served_as_octet_stream_is_read_when_its_bytes_are_html(tmp_path: Path) -> None:
    # A misconfigured server sends its pages as application/octet-stream: the capture is the page all the
    # same. Under that type an image or an archive stays a skipped capture, as under its own type.
    path = tmp_path / "generic.warc.gz"
    write_warc(path, [
        ("response", "https://news.example/a", "200 OK", PAGE, "application/octet-stream"),
        ("response", "https://news.example/b", "200 OK", b"\xef\xbb\xbf<!-- cms -->\n" + PAGE,
         "binary/octet-stream"),
        ("response", "https://news.example/c.png", "200 OK", b"\x89PNG\r\n\x1a\n" + bytes(64),
         "application/octet-stream"),
        ("response", "https://news.example/d", "200 OK", b"PK\x03\x04" + bytes(64), "application/unknown"),
    ])
    out = read_all(path)
    assert [o.url for o in out if isinstance(o, RawDocument)] == ["https://news.example/a", "https://news.example/b"]
    skipped = [o for o in out if isinstance(o, Rejection)]
    assert [r.reason for r in skipped] == [warc_mod.NOT_HTML, warc_mod.NOT_HTML]
    assert "application/octet-stream and its bytes do not start as HTML" in skipped[0].detail


@pytest.mark.parametrize("gz", [True, False])
def test_a_warc_under_another_name_is_read_as_a_warc(tmp_path: Path, gz: bool) -> None:
    # Saved as crawl.txt, an archive loaded as one "article" of 2,719 words holding every record and its
    # headers (a user trial): its bytes say what it is.
    path = tmp_path / ("crawl.txt.gz" if gz else "crawl.txt")
    write_warc(path, [("response", f"https://news.example/{i}", "200 OK", PAGE, "text/html") for i in range(2)],
               gz=gz)
    out = read_all(path)
    assert [(o.kind, o.url) for o in out if isinstance(o, RawDocument)] == [
        ("warc", "https://news.example/0"), ("warc", "https://news.example/1")]
    assert len(out) == 2
    # a text file that merely mentions WARC stays a text file
    note = tmp_path / "note.txt"
    note.write_text("WARC files hold web captures; this note is about them.\n", encoding="utf-8")
    (doc,) = read_all(note)
    assert isinstance(doc, RawDocument) and doc.kind == "txt"


def test_truncated_warc_keeps_the_records_before_the_damage(tmp_path: Path) -> None:
    path = tmp_path / "cut.warc.gz"
    write_warc(
        path,
        [
            ("response", f"https://news.example/{i}", "200 OK", PAGE + str(i).encode(), "text/html")
            for i in range(3)
        ],
    )
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])
    out = read_all(path)
    assert len([o for o in out if isinstance(o, RawDocument)]) == 2
    assert isinstance(out[-1], Rejection) and out[-1].reason == warc_mod.BAD_WARC
    assert "after 2 records" in out[-1].detail or "truncated" in out[-1].detail


def test_a_warc_header_line_and_then_garbage_is_quarantined_not_skipped(tmp_path: Path) -> None:
    """"WARC/1.0" and then nothing warcio can read as headers: counted as a skipped capture with no
    quarantine row, or failed with an AttributeError for its detail (a user trial)."""
    for name, data in (("garbage.warc", b"WARC/1.0\r\nthis is garbage\r\n\r\nmore garbage\r\n\r\n"),
                       ("bare.warc", b"WARC/1.0\r\n\r\n\r\n")):
        path = tmp_path / name
        path.write_bytes(data)
        out = read_all(path)
        assert [(type(o).__name__, getattr(o, "reason", None)) for o in out] == [("Rejection", warc_mod.BAD_WARC)]
        assert isinstance(out[0], Rejection) and "no WARC-Type header" in out[0].detail


def test_warc_resource_record_and_revisit(tmp_path: Path) -> None:
    path = tmp_path / "r.warc"
    write_warc(
        path,
        [
            ("resource", "https://news.example/r", "", PAGE, "text/html"),
            ("revisit", "https://news.example/r", "", b"", ""),
            ("resource", "https://news.example/s.css", "", b"body{}", "text/css"),
        ],
        gz=False,
    )
    doc, revisit, css = read_all(path)
    assert isinstance(doc, RawDocument) and doc.url == "https://news.example/r"
    assert isinstance(revisit, Rejection) and revisit.reason == warc_mod.REVISIT
    assert isinstance(css, Rejection) and css.reason == warc_mod.NOT_HTML and "text/css" in css.detail


def write_captures(path: Path, captures: list[tuple[str, str, list[tuple[str, str]], bytes, dict[str, str]]]) -> None:
    """captures: (uri, HTTP status line, HTTP headers, payload as stored, extra WARC headers) of response records,
    written as given: warcio's writer keeps the HTTP headers (a Content-Length too) whatever the payload holds.
    A uri of '' writes the record without a WARC-Target-URI header."""
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=path.suffix == ".gz")
        for uri, status, headers, payload, warc_headers in captures:
            rec = writer.create_warc_record(
                uri or "https://placeholder.example/",
                "response",
                payload=io.BytesIO(payload),
                http_headers=StatusAndHeaders(status, headers, protocol="HTTP/1.1"),
                warc_headers_dict=warc_headers,
            )
            if not uri:
                rec.rec_headers.remove_header("WARC-Target-URI")
            writer.write_record(rec)


HTML = [("Content-Type", "text/html; charset=utf-8")]


@pytest.mark.parametrize("mark", ["length", "time", "disconnect", "unspecified"])
def test_a_capture_its_crawler_marked_truncated_is_quarantined_with_its_bytes(tmp_path: Path, mark: str) -> None:
    """Common Crawl cuts captures at 1 MiB and says so with WARC-Truncated: half a page, with a cut tag in its
    body, loaded as a complete article with no flag (a user trial)."""
    path = tmp_path / "cc.warc.gz"
    half = PAGE[: len(PAGE) // 2]
    write_captures(path, [("https://news.example/cut", "200 OK", HTML, half, {"WARC-Truncated": mark}),
                          ("https://news.example/whole", "200 OK", HTML, PAGE, {})])
    cut, whole = read_all(path)
    assert isinstance(cut, Rejection) and cut.reason == warc_mod.TRUNCATED, cut
    assert cut.reason not in warc_mod.SKIP_REASONS  # quarantined, not skipped
    assert f"WARC-Truncated: {mark}" in cut.detail and "https://news.example/cut" in cut.detail
    assert cut.raw == half and cut.source_uri.startswith(f"{path}#urn:uuid:")
    assert cut.url == "https://news.example/cut"  # the page it refused a capture of (quarantine.url)
    assert isinstance(whole, RawDocument) and whole.url == "https://news.example/whole"


def test_a_capture_shorter_than_its_content_length_or_partial_is_quarantined(tmp_path: Path) -> None:
    """A payload short of its HTTP Content-Length (counted before Content-Encoding is undone, as the stored
    payload is) or a 206 is part of a page; an encoded or chunked page stored whole is not."""
    encoded = gzip.compress(PAGE)
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(PAGE), PAGE)
    path = tmp_path / "cut.warc"
    write_captures(path, [
        ("https://news.example/short", "200 OK", [*HTML, ("Content-Length", str(len(PAGE)))], PAGE[:90], {}),
        ("https://news.example/gz", "200 OK",
         [*HTML, ("Content-Encoding", "gzip"), ("Content-Length", str(len(encoded)))], encoded, {}),
        ("https://news.example/gz-short", "200 OK",
         [*HTML, ("Content-Encoding", "gzip"), ("Content-Length", str(len(encoded)))], encoded[:-30], {}),
        # Content-Length beside chunked transfer encoding means nothing (RFC 9112): no cut is read into it
        ("https://news.example/chunked", "200 OK",
         [*HTML, ("Transfer-Encoding", "chunked"), ("Content-Length", str(len(chunked) + 500))], chunked, {}),
        ("https://news.example/range", "206 Partial Content",
         [*HTML, ("Content-Range", f"bytes 0-89/{len(PAGE)}"), ("Content-Length", "90")], PAGE[:90], {}),
        ("https://news.example/whole", "200 OK", [*HTML, ("Content-Length", str(len(PAGE)))], PAGE, {}),
    ])
    out = read_all(path)
    got = [(o.url if isinstance(o, RawDocument) else o.reason) for o in out]
    assert got == [warc_mod.TRUNCATED, "https://news.example/gz", warc_mod.TRUNCATED, "https://news.example/chunked",
                   warc_mod.TRUNCATED, "https://news.example/whole"], out
    short, gz, gz_short, chunk, partial, _ = out
    assert isinstance(short, Rejection) and f"holds 90 of the {len(PAGE)} bytes" in short.detail
    assert short.raw == PAGE[:90]
    assert isinstance(gz_short, Rejection) and gz_short.raw == encoded[:-30]  # as stored: still gzip
    assert isinstance(partial, Rejection) and "206 Partial Content" in partial.detail and partial.raw == PAGE[:90]
    assert isinstance(gz, RawDocument) and gz.content == PAGE.decode()
    assert isinstance(chunk, RawDocument) and chunk.content == PAGE.decode()


@pytest.mark.parametrize("gz", [True, False])
def test_a_record_without_target_uri_is_refused_alone_and_the_rest_is_read(tmp_path: Path, gz: bool) -> None:
    """warcio fails on a response record without WARC-Target-URI (an AttributeError of its own): newsetl stopped
    reading there, every later record lost behind one `bad_warc` row of "damaged WARC headers" (a user trial)."""
    path = tmp_path / ("n.warc.gz" if gz else "n.warc")
    pages = [PAGE.replace(b"harbour", word) for word in (b"port", b"quay", b"pier")]
    write_captures(path, [("https://news.example/1", "200 OK", HTML, pages[0], {}),
                          ("", "200 OK", HTML, pages[1], {}),
                          ("https://news.example/3", "200 OK", HTML, pages[2], {})])
    first, nouri, third = read_all(path)
    assert isinstance(first, RawDocument) and first.url == "https://news.example/1"
    assert isinstance(third, RawDocument) and third.url == "https://news.example/3" and "pier" in third.content
    assert isinstance(nouri, Rejection) and nouri.reason == warc_mod.BAD_WARC, nouri
    assert "no WARC-Target-URI" in nouri.detail and "record 2" in nouri.detail
    # the record's block as stored, its HTTP headers unparsed: what it captured, to look at
    assert nouri.raw is not None and nouri.raw.startswith(b"HTTP/1.1 200 OK") and nouri.raw.endswith(pages[1])
    assert nouri.source_uri.startswith(f"{path}#urn:uuid:")


def test_a_record_without_target_uri_or_length_still_stops_the_archive(tmp_path: Path) -> None:
    """Without Content-Length too, nothing says where the record ends: reading stops there, said as damage."""
    path = tmp_path / "n.warc"
    write_captures(path, [("https://news.example/1", "200 OK", HTML, PAGE, {})])
    with open(path, "ab") as fh:
        fh.write(b"WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:x>\r\n\r\nHTTP/1.1 200 OK\r\n\r\n")
    first, bad = read_all(path)
    assert isinstance(first, RawDocument) and first.url == "https://news.example/1"
    assert isinstance(bad, Rejection) and bad.reason == warc_mod.BAD_WARC
    assert "after 1 records" in bad.detail and "neither WARC-Target-URI nor Content-Length" in bad.detail


# -- pages saved with their HTTP response head (curl -i) ---------------------------------------------

DATELESS_PAGE = (
    b"<html><head><title>Harbour reopens after closure</title></head><body><article>"
    + b"".join(b"<p>The harbour reopened on Monday after a three-week closure, the port authority said, and "
               b"fishing boats returned to the quay before dawn to unload their first catch. %d</p>" % i
               for i in range(6))
    + b"</article></body></html>"
)


def curl_i(body: bytes, content_type: str = "text/html; charset=iso-8859-1", redirect: bool = False) -> bytes:
    head = (b"HTTP/1.1 200 OK\r\nDate: Tue, 01 Dec 2026 08:30:00 GMT\r\nContent-Type: "
            + content_type.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(body))
    if redirect:  # curl -iL writes the redirect's head too, first
        head = b"HTTP/2 301\r\nlocation: https://news.example/a\r\ndate: Mon, 30 Nov 2026 00:00:00 GMT\r\n\r\n" + head
    return head + body


def test_saved_response_reads_the_last_head_and_leaves_other_bytes_alone() -> None:
    data = curl_i(b"<p>caf\xe9</p>", redirect=True)
    head = saved_response(data)
    assert head is not None and data[head.body_offset:] == b"<p>caf\xe9</p>"
    assert (head.content_type, head.charset) == ("text/html", "iso-8859-1")
    assert head.date == datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
    assert saved_response(PAGE) is None
    assert saved_response(b"HTTP/1.1 is a protocol, and this text is about it.\n\nMore text.") is None
    assert saved_response(b"HTTP/1.1 200 OK\r\nDate: x\r\n") is None  # no end of head: not taken as one


@pytest.mark.parametrize("name", ["page.html", "page.txt"])
def test_a_page_saved_with_its_response_head_is_read_as_the_server_sent_it(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    data = curl_i(PAGE.replace(b"Harbour", b"Caf\xe9 harbour"))
    path.write_bytes(data)
    doc = only_doc(path)
    # the head's type, charset and date are the server's; the file keeps every byte it had
    assert doc.content_type == "html" and doc.encoding == "cp1252" and "Café harbour" in (doc.content or "")
    assert doc.content is not None and not doc.content.startswith("HTTP/")
    assert doc.fetched_at == datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
    assert doc.raw == data and doc.doc_id == sha256_hex(data)


def test_a_saved_plain_text_response_is_text_and_a_head_alone_is_empty(tmp_path: Path) -> None:
    text = tmp_path / "story.txt"
    text.write_bytes(curl_i(b"<p> is how a paragraph starts in HTML, this story says.", "text/plain"))
    assert only_doc(text).content_type == "text"
    bare = tmp_path / "head.html"
    bare.write_bytes(curl_i(b"", "text/html"))
    (rejected,) = read_all(bare)
    assert isinstance(rejected, Rejection) and rejected.reason == "empty_input" and rejected.raw == bare.read_bytes()


def test_a_saved_response_with_a_gzip_body_is_read_inflated(tmp_path: Path) -> None:
    # curl -i without --compressed keeps the body as the server sent it
    path = tmp_path / "page.html"
    path.write_bytes(curl_i(gzip.compress(PAGE)))
    doc = only_doc(path)
    assert doc.content_type == "html" and "harbour reopened" in (doc.content or "")
    assert doc.raw.endswith(PAGE) and doc.raw.startswith(b"HTTP/1.1 200 OK")


def test_a_saved_error_page_or_redirect_stub_is_quarantined_as_http_error(tmp_path: Path) -> None:
    for status in (b"404 Not Found", b"301 Moved Permanently"):
        path = tmp_path / "page.html"
        path.write_bytes(curl_i(PAGE).replace(b"200 OK", status))
        (rejected,) = read_all(path)
        assert isinstance(rejected, Rejection) and rejected.reason == "http_error", rejected
        assert status.decode() in rejected.detail and rejected.raw == path.read_bytes()


def test_the_response_heads_date_is_not_the_articles_publication_date(tmp_path: Path) -> None:
    # The head reached trafilatura as page text, and its Date became published_at (a user trial).
    path = tmp_path / "page.html"
    path.write_bytes(curl_i(DATELESS_PAGE, "text/html; charset=utf-8"))
    article = process_document(only_doc(path), make_context(ProcessConfig()))
    assert isinstance(article, Article), article
    assert article.published_at is None and "HTTP/1.1" not in article.body and "Content-Length" not in article.body


@pytest.mark.parametrize("gz", [True, False])
def test_a_capture_without_content_length_is_refused_not_read_with_the_records_after_it(
        tmp_path: Path, gz: bool) -> None:
    # warcio reads such a record to the end of the file: the next records' headers and pages became this
    # record's page, loaded as one article (a user trial).
    path = tmp_path / ("n.warc.gz" if gz else "n.warc")
    write_captures(path, [("https://news.example/1", "200 OK", HTML, PAGE, {})])
    record = (b"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: https://news.example/2\r\n"
              b"WARC-Record-ID: <urn:uuid:x>\r\nContent-Type: application/http; msgtype=response\r\n\r\n"
              b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + PAGE.replace(b"harbour", b"quay") + b"\r\n\r\n")
    with open(path, "ab") as fh:
        fh.write(gzip.compress(record) if gz else record)
    third = tmp_path / ("3.warc.gz" if gz else "3.warc")
    write_captures(third, [("https://news.example/3", "200 OK", HTML, PAGE.replace(b"harbour", b"pier"), {})])
    with open(path, "ab") as fh:
        fh.write(third.read_bytes())
    first, bad, *rest = read_all(path)
    assert isinstance(first, RawDocument) and first.url == "https://news.example/1"
    assert isinstance(bad, Rejection) and bad.reason == warc_mod.BAD_WARC, bad
    assert "record 2 (https://news.example/2) has no valid Content-Length" in bad.detail
    assert bad.raw is not None and b"quay" in bad.raw
    if gz:  # the gzip member ends the record: the next one is read
        (last,) = rest
        assert isinstance(last, RawDocument) and last.url == "https://news.example/3"
    else:  # the next record's bytes are in the refused one's, not lost and not an article
        assert rest == [] and b"pier" in bad.raw


def test_files_modified_within_min_age_are_held_back(tmp_path: Path) -> None:
    old, fresh, gone = tmp_path / "old.txt", tmp_path / "fresh.txt", tmp_path / "gone.txt"
    old.write_text("o")
    fresh.write_text("f")
    os.utime(old, (1_000_000.0, 1_000_000.0))
    os.utime(fresh, (1_000_590.0, 1_000_590.0))
    paths = [str(old), str(fresh), str(gone), "https://n.example/a"]
    ready, young = settling(paths, 60, now=1_000_600.0)
    # a URL, and a path that cannot be stat'ed (reading says why), are never held back
    assert (ready, young) == ([str(old), str(gone), "https://n.example/a"], [str(fresh)])
    assert settling(paths, 0, now=1_000_600.0) == (paths, [])
    assert settling(paths, 5, now=1_000_600.0) == (paths, [])
