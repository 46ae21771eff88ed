"""JSON documents over `max_bytes` stream record by record (sources/jsonl.py `_large_json`): the same
records as a whole parse would give, each record bounded, a cut-off end quarantined after the records
before it. The limit is set small here so that small files take the streaming path."""

from __future__ import annotations

import gzip
import io
import json
import tracemalloc
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from newsetl.schemas.records import RawDocument, Rejection
from newsetl.sources.config import ReadConfig
from newsetl.sources.jsonl import read_jsonl
from newsetl.sources.read import read_path
from newsetl.sources.reasons import BAD_JSON, BAD_RECORD, TOO_LARGE

SMALL = ReadConfig(max_bytes=4096, chunk_bytes=1024)  # every file below is larger: they stream
WHOLE = ReadConfig()  # the same files fit: parsed whole


def _records(n: int, words: int = 40) -> list[dict[str, Any]]:
    return [{"id": f"r{i}", "title": f"Story {i}", "text": f"Sentence {i} of the story. " * words,
             "meta": {"tags": ["a", "b"], "score": i / 7, "rank": [i, {"deep": None}]}} for i in range(n)]


def _read(path: Path, config: ReadConfig) -> tuple[list[RawDocument], list[Rejection]]:
    out = list(read_path(str(path), config))
    return ([o for o in out if isinstance(o, RawDocument)], [o for o in out if isinstance(o, Rejection)])


def _whole_documents(path: Path) -> list[RawDocument]:
    docs, rejected = _read(path, WHOLE)
    assert rejected == []
    return docs


def _same_documents(path: Path, *, same_encoding: bool = True) -> list[RawDocument]:
    """The file read streaming and read whole: the same documents (ids, bodies, fields, the encoding they
    record unless not `same_encoding`), no rejection."""
    streamed, rejected = _read(path, SMALL)
    whole, rejected_whole = _read(path, WHOLE)
    assert rejected == [] and rejected_whole == []
    assert [(d.doc_id, d.external_id, d.content, d.title, d.extra) for d in streamed] == \
        [(d.doc_id, d.external_id, d.content, d.title, d.extra) for d in whole]
    if same_encoding:
        assert [d.encoding for d in streamed] == [d.encoding for d in whole]
    return streamed


def test_large_array_streams_the_same_records(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_text(json.dumps(_records(60)))
    assert path.stat().st_size > 15 * SMALL.max_bytes
    docs = _same_documents(path)
    assert [d.external_id for d in docs] == [f"r{i}" for i in range(60)]


def test_large_envelope_streams_its_list_of_records(tmp_path: Path) -> None:
    # an API response saved whole: metadata around one list of records; metadata lists (of strings) and
    # objects (even one with an "item" key, which ijson's prefixes would confuse with a list) are not records
    path = tmp_path / "response.json"
    path.write_text(json.dumps({"status": "ok", "totalResults": 40, "sources": ["wire", "site"],
                                "page": {"item": 3, "next": [1, 2]}, "articles": _records(40)}, indent=2))
    docs = _same_documents(path)
    assert len(docs) == 40


def test_large_gzipped_array(tmp_path: Path) -> None:
    path = tmp_path / "export.json.gz"
    path.write_bytes(gzip.compress(json.dumps(_records(30)).encode()))
    assert len(_same_documents(path)) == 30


def test_large_json_lines_named_json_read_as_lines(tmp_path: Path) -> None:
    path = tmp_path / "dump.json"
    path.write_text("\n".join(json.dumps(r) for r in _records(30)) + "\n")
    assert len(_same_documents(path)) == 30


def test_cut_off_array_keeps_the_records_before_the_cut(tmp_path: Path) -> None:
    data = json.dumps(_records(30))
    cut = data.index('{"id": "r20"') + 30  # inside record 21
    for name, config in (("big.json", SMALL), ("small.json", WHOLE)):  # streamed, or after a whole parse fails
        path = tmp_path / name
        path.write_text(data[:cut])
        docs, rejected = _read(path, config)
        assert [d.external_id for d in docs] == [f"r{i}" for i in range(20)]
        (rej,) = rejected
        assert rej.reason == BAD_JSON and "after record 20" in rej.detail, rej.detail


def test_scrapy_export_without_closing_bracket(tmp_path: Path) -> None:
    # Scrapy's JSON exporter writes "[" then one record per line, and "]" only when the crawl ends
    path = tmp_path / "items.json"
    path.write_text("[\n" + ",\n".join(json.dumps(r) for r in _records(5)))
    docs, rejected = _read(path, WHOLE)
    assert len(docs) == 5 and [r.reason for r in rejected] == [BAD_JSON]


def test_one_oversized_record_is_refused_and_the_rest_load(tmp_path: Path) -> None:
    records = _records(12)
    records[4]["text"] = "Far too long. " * 2000  # 28 KB: over 4 KB plus one read block
    path = tmp_path / "export.json"
    path.write_text(json.dumps(records))
    docs, rejected = _read(path, SMALL)
    assert [d.external_id for d in docs] == [f"r{i}" for i in range(12) if i != 4]
    (rej,) = rejected
    # a record of a JSON array, counted as one (the whole file may be one line), not "line 5"
    assert rej.reason == TOO_LARGE and rej.source_uri.endswith("#5") and rej.detail.startswith("record 5 ")


def test_large_single_object_is_refused_by_size(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text(json.dumps({"id": "x", "text": "A very long story. " * 1000}))
    docs, rejected = _read(path, SMALL)
    assert docs == [] and [r.reason for r in rejected] == [TOO_LARGE]
    assert "one JSON record (its body is 'text')" in rejected[0].detail
    path.write_text(json.dumps({"id": "x", "story": "A very long story. " * 1000}))  # no body we know of
    docs, rejected = _read(path, SMALL)
    assert docs == [] and [r.reason for r in rejected] == [TOO_LARGE]
    assert "no list of records" in rejected[0].detail


def test_a_large_record_with_a_body_and_lists_is_one_record_not_a_response(tmp_path: Path) -> None:
    # a live blog saved whole: its comments are the record's, not articles (a small one is one record too)
    path = tmp_path / "liveblog.json"
    comments = [{"user": f"u{i}", "text": f"Comment {i} on the story, with a few words more."} for i in range(200)]
    path.write_text(json.dumps({"id": "blog", "title": "Live", "text": "The story. " * 50, "comments": comments}))
    docs, (rej,) = _read(path, SMALL)
    assert docs == [] and rej.reason == TOO_LARGE and "one JSON record (its body is 'text')" in rej.detail
    (doc,) = _whole_documents(path)
    assert doc.extra["comments"] == comments


def test_scalars_in_a_large_array_are_refused_one_by_one(tmp_path: Path) -> None:
    path = tmp_path / "mixed.json"
    records: list[Any] = _records(6)
    records[2:2] = ["a string", 7]
    path.write_text(json.dumps(records))
    docs, rejected = _read(path, SMALL)
    assert len(docs) == 6 and [r.reason for r in rejected] == [BAD_RECORD, BAD_RECORD]


def test_streaming_memory_is_bounded_by_the_record_not_the_file(tmp_path: Path) -> None:
    config = ReadConfig(max_bytes=256 * 1024, chunk_bytes=64 * 1024)
    path = tmp_path / "big.json"
    with path.open("w") as f:  # ~12 MB: 48x the limit
        f.write("[")
        for i in range(3000):
            f.write(("," if i else "") + json.dumps({"id": str(i), "text": f"Paragraph {i}. " * 250}))
        f.write("]")
    tracemalloc.start()
    try:
        count = 0
        for out in read_path(str(path), config):
            assert isinstance(out, RawDocument), out
            count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 3000
    assert peak < 8 * config.max_bytes, f"peak {peak / 1e6:.1f} MB for a 12 MB file"


def test_the_first_part_read_whole_is_let_go_once_streamed_past(tmp_path: Path) -> None:
    # A large file's first max_bytes are read whole (to choose its codec and its shape): once the stream is
    # past them, nothing may keep them (32 MB with the default limit, held for the whole file before).
    config = ReadConfig(max_bytes=1024 * 1024, chunk_bytes=64 * 1024)
    path = tmp_path / "big.json"
    path.write_text(json.dumps([{"id": str(i), "text": f"Paragraph {i}. " * 250} for i in range(3000)]))
    tracemalloc.start()
    try:
        held = [tracemalloc.get_traced_memory()[0] for n, _ in enumerate(read_path(str(path), config)) if n == 2000]
    finally:
        tracemalloc.stop()
    # 0.47 MB measured; 1.4-2.7 MB when the first part (or its raw bytes too) is kept; the margin is for
    # other threads' allocations, which tracemalloc counts too
    assert held[0] < config.max_bytes, f"{held[0] / 1e6:.2f} MB held past the first {config.max_bytes} bytes"


JSON_VALUES = st.recursive(
    # any integer (yajl refused those outside 64 bits while it read floats), any finite float
    st.none() | st.booleans() | st.integers()
    | st.floats() | st.sampled_from([float("nan"), float("inf"), -float("inf")])  # json.dump writes them
    | st.text(max_size=20) | st.sampled_from(["NaN", "-Infinity", 'a "NaN" \\ Infinity']),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.fixed_dictionaries({"text": st.text(min_size=1, max_size=300).filter(str.strip)},
                                      optional={"id": st.text(min_size=1, max_size=8), "extra": JSON_VALUES}),
                min_size=1, max_size=12),
       st.sampled_from(["bare", "envelope", "two lists"]), st.sampled_from(["ascii", "utf-8", "utf-16"]))
def test_streamed_records_equal_a_whole_parse(records: list[dict[str, Any]], shape: str, encoding: str) -> None:
    document: Any = {
        "bare": records,
        "envelope": {"status": "ok", "results": records},
        "two lists": {"posts": records[::2], "meta": {"n": 3}, "tags": ["x"], "pages": records[1::2] or [{}]},
    }[shape]
    # "utf-16" writes a BOM; its 16-byte reads below split characters and surrogate pairs
    data = json.dumps(document, ensure_ascii=encoding == "ascii").encode(encoding)

    def outcomes(config: ReadConfig) -> list[tuple[str, str]]:
        out = list(read_jsonl("t.json", data, None, config))
        return [(o.reason, o.source_uri) if isinstance(o, Rejection) else ("doc", o.doc_id) for o in out]

    # one byte under the file's size: it streams (in 16-byte reads, so records straddle them), while
    # every record still fits the record bound; then the whole parse
    streamed = outcomes(ReadConfig(max_bytes=len(data) - 1, chunk_bytes=16))
    assert streamed == outcomes(ReadConfig(max_bytes=len(data), chunk_bytes=16 * 1024))


def test_a_legacy_paragraph_deep_in_a_large_utf8_file_is_read_as_cp1252(tmp_path: Path) -> None:
    # A UTF-8 export with one record pasted from a cp1252 source: it used to end the stream there (yajl
    # reads UTF-8 only); now those bytes read as a small file's would.
    data = json.dumps(_records(12)).encode()
    cut = data.index(b'{"id": "r6"')
    path = tmp_path / "mixed.json"
    path.write_bytes(data[:cut] + b'{"id": "x", "text": "Caf\xe9 \x93cr\xe8me\x94 at \x80 3"}, ' + data[cut:])
    # Read whole, the file is named "utf-8+cp1252"; streamed, its encoding is named from the first MB, which
    # is UTF-8 here (the stream reads on with the same cp1252 fallback), so the names differ.
    docs = _same_documents(path, same_encoding=False)
    assert [d.external_id for d in docs] == [f"r{i}" for i in range(6)] + ["x"] + [f"r{i}" for i in range(6, 12)]
    assert docs[6].content == "Caf\u00e9 \u201ccr\u00e8me\u201d at \u20ac 3"


def test_large_legacy_and_utf16_files_stream_as_a_whole_read_decodes_them(tmp_path: Path) -> None:
    records = [{**r, "title": f"M\u00fcller sagt \u201e{i}\u201c \u2013 \u20ac"} for i, r in enumerate(_records(10))]
    text = json.dumps(records, ensure_ascii=False)
    for name, data, read_as in [("cp1252.json", text.encode("cp1252"), "cp1252"),
                                ("utf16.json", text.encode("utf-16"), "utf-16-le"),
                                ("utf16-lines.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in records)
                                 .encode("utf-16"), "utf-16-le")]:  # (the BOM names the byte order)
        path = tmp_path / name
        path.write_bytes(data)
        docs = _same_documents(path)  # these used to be refused whole as too large
        assert [d.title for d in docs] == [r["title"] for r in records], name
        # each record says how the file was read (they said "utf-8", the encoding of their re-encoded lines)
        assert {d.encoding for d in docs} == {read_as}, name


def test_a_cut_off_utf16_array_points_at_the_files_byte(tmp_path: Path) -> None:
    data = json.dumps(_records(12)).encode("utf-16")
    path = tmp_path / "cut16.json"
    path.write_bytes(data[: len(data) * 2 // 3])
    docs, (rej,) = _read(path, SMALL)
    assert [d.external_id for d in docs] == [f"r{i}" for i in range(len(docs))] and 6 <= len(docs) < 12
    # the parser counts UTF-8 bytes, half of UTF-16's here: the message names the byte of the file
    assert rej.reason == BAD_JSON and f"near byte {len(data) * 2 // 3} " in rej.detail, rej.detail


def test_nan_and_infinity_from_python_json_dump_stream_as_a_whole_parse_reads_them(tmp_path: Path) -> None:
    # Python's json.dump writes NaN and Infinity (allow_nan is its default); yajl refuses them, so the
    # stream rewrites them outside strings and turns them back into floats
    records = [{**r, "score": [float("nan"), float("inf"), -float("inf"), 1.5][i % 4],
                "note": 'NaN "Infinity" \\" -Infinity'} for i, r in enumerate(_records(12))]
    path = tmp_path / "scores.json"
    path.write_text(json.dumps(records))
    streamed, rejected = _read(path, SMALL)
    whole, _ = _read(path, WHOLE)
    assert rejected == [] and len(streamed) == 12
    assert [(d.doc_id, json.dumps(d.extra)) for d in streamed] == [(d.doc_id, json.dumps(d.extra)) for d in whole]
    assert [json.dumps(d.extra["score"]) for d in streamed[:4]] == ["NaN", "Infinity", "-Infinity", "1.5"]


def test_a_read_error_is_unreadable_even_when_the_path_says_gzip() -> None:
    # The reason is the exception's kind: it used to be guessed from the detail, where the path stands too.
    class FailsMidway(io.RawIOBase):
        def __init__(self) -> None:
            self.left = [json.dumps({"id": "1", "text": "first record"}).encode() + b"\n"]

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            if not self.left:
                raise OSError(5, "Input/output error")
            block = self.left.pop()
            buffer[: len(block)] = block
            return len(block)

    out = list(read_jsonl("/data/gzip-dumps/feed.jsonl", io.BufferedReader(FailsMidway()), None))
    assert isinstance(out[0], RawDocument)
    assert isinstance(out[1], Rejection) and out[1].reason == "unreadable", out[1]
    assert "read error" in out[1].detail


def test_a_line_that_is_no_object_is_named_in_json_words(tmp_path: Path) -> None:
    path = tmp_path / "odd.jsonl"
    path.write_text('null\n[1, 2]\n"text"\n3.5\ntrue\n')
    _, rejections = _read(path, ReadConfig())
    assert [r.detail for r in rejections] == [
        f"line {n} is {kind}, not an object"
        for n, kind in enumerate(("null", "an array", "a string", "a number", "true"), start=1)
    ]
    assert {r.reason for r in rejections} == {BAD_RECORD}


def test_a_line_not_in_utf8_says_how_it_was_read(tmp_path: Path) -> None:
    """JSON lines must be UTF-8; a line a legacy exporter wrote in cp1252 is read all the same, and its
    document says so (it said "utf-8": a user trial)."""
    dump = tmp_path / "feed.jsonl"
    dump.write_bytes(b'{"id": "1", "text": "Caf\xe9 owners met the mayor on Monday."}\n'
                     + '{"id": "2", "text": "Café owners met again on Tuesday."}\n'.encode())
    first, second = [d for d in read_path(str(dump)) if isinstance(d, RawDocument)]
    assert "Café owners" in first.content and first.encoding == "cp1252"
    assert "Café owners" in second.content and second.encoding == "utf-8"
