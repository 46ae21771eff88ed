"""JSON lines (and .json arrays/objects): one document per record, streamed line by line.

A broken line is quarantined and the rest still load; every line is bounded by `max_bytes`, the file
by `max_container_bytes`. Unknown fields are kept in `extra`.

A `.json` document is parsed whole when it fits in `max_bytes`. A larger one (a scraper's JSON array
export, an API response saved whole) is streamed record by record (`sources.jsonstream`): each record is
bounded by `max_bytes`, and a syntax error or a cut-off end quarantines the rest after the records before
it loaded. Either way a file gives the same records: this module turns each record's bytes into a
document or a rejection."""

from __future__ import annotations

import codecs
import io
import json
import zlib
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import IO, Any

from newsetl.schemas.records import STAGE_DECODE, STAGE_READ, RawDocument, Rejection
from newsetl.sources.config import ReadConfig
from newsetl.sources.decode import bom_encoding, clean_decoded, decode_bytes, looks_binary
from newsetl.sources.fields import (
    FIELDS,
    candidates,
    fits,
    is_scalar,
    looks_like_markup,
    lookup,
    mapping_key,
    mapping_reaches,
    names_list,
    parse_time,
)
from newsetl.sources.files import magic_name, read_upto, sha256_hex
from newsetl.sources.jsonstream import (
    LineTooLong,
    StreamError,
    cut_off_array,
    dumps,
    large_file_encoding,
    large_records,
    loads,
    read_lines,
)
from newsetl.sources.reasons import (
    BAD_JSON,
    BAD_RECORD,
    BINARY_CONTENT,
    DUPLICATE_RECORD,
    EMPTY_INPUT,
    TOO_LARGE,
    reject,
)


def read_jsonl(
    path: str, data: bytes | IO[bytes], fetched_at: datetime | None, config: ReadConfig | None = None
) -> Iterator[RawDocument | Rejection]:
    """One document per JSON record; a broken line is quarantined and the rest still load.

    `data` is the file's bytes or a binary stream (streamed line by line, each line bounded).
    A `.json` file may also hold one JSON array of records or a single record object. The record's
    fields are found under the names of `sources.fields` or those `config.jsonl_fields` maps.
    """
    config = config or ReadConfig()
    stream: IO[bytes] = io.BufferedReader(io.BytesIO(data)) if isinstance(data, bytes | bytearray) else data
    try:
        head = stream.peek(8192)[:8192] if hasattr(stream, "peek") else b""
    except (EOFError, OSError, zlib.error) as exc:
        yield StreamError.read_failed(path, exc).rejection(path)
        return
    magic = magic_name(head)
    if magic or looks_binary(head):
        # Without this a ZIP or an image named .jsonl would become one bad_json row per "line".
        yield reject(
            path, STAGE_DECODE, BINARY_CONTENT, f"the file is {magic or 'binary data'}, not JSON lines"
        )
        return
    count = 0
    for outcome in _jsonl_outcomes(path, stream, head, fetched_at, config):
        count += 1
        yield outcome
    if count == 0:  # an empty file must still be accounted for
        yield reject(path, STAGE_READ, EMPTY_INPUT, "the file holds no JSON records")

def _jsonl_outcomes(
    path: str, stream: IO[bytes], head: bytes, fetched_at: datetime | None, config: ReadConfig
) -> Iterator[RawDocument | Rejection]:
    is_json = path.lower().removesuffix(".gz").endswith(".json")
    enc = bom_encoding(head)
    if is_json or (enc and enc != "utf-8"):
        # A whole-document JSON, or UTF-16/32 lines: these cannot be split on b"\n"; read bounded.
        try:
            whole, complete = read_upto(stream, config.max_bytes, config.chunk_bytes)
        except (EOFError, OSError, zlib.error) as exc:
            yield StreamError.read_failed(path, exc).rejection(path)
            return
        # The records below are handed on re-encoded as UTF-8: each records the file's encoding.
        if not complete:
            encoding = large_file_encoding(whole)
            records = large_records(path, whole, stream, config, is_json=is_json, encoding=encoding)
            del whole  # held from here by the stream only, which lets go of it once read on
            yield from _records(path, records, fetched_at, config, encoding, "record" if is_json else "line")
            return
        text, encoding = decode_bytes(whole)
        if is_json and text.lstrip()[:1] in {"[", "{"}:
            parsed = loads(text)
            if isinstance(parsed, list):
                items = (dumps(item) for item in parsed)
                yield from _records(path, items, fetched_at, config, encoding, "record")
                return
            if isinstance(parsed, dict):
                inner = _envelope_records(parsed, config)
                if inner is not None:  # {"status": "ok", "articles": [...]}: the records are the list
                    items = (dumps(item) for item in inner)
                    yield from _records(path, items, fetched_at, config, encoding, "record")
                    return
                yield from _records(path, [text.strip().encode("utf-8", "replace")], fetched_at, config, encoding,
                                    "record")
                return
            if text.lstrip("\ufeff \t\r\n")[:1] == "[":  # a broken array: the records before the break load
                yield from _records(path, cut_off_array(path, text, config), fetched_at, config, encoding, "record")
                return
        lines = (line.encode("utf-8", "replace") for line in text.splitlines())
        yield from _records(path, lines, fetched_at, config, encoding)
        return
    yield from _records(path, read_lines(path, stream, config), fetched_at, config)

def _records(
    path: str,
    lines: Iterable[bytes | LineTooLong | StreamError],
    fetched_at: datetime | None,
    config: ReadConfig,
    file_encoding: str = "utf-8",
    unit: str = "line",
) -> Iterator[RawDocument | Rejection]:
    """The documents (or rejections) of a file's records, one per line of `lines`. `file_encoding`: how the
    whole file was decoded when its lines come re-encoded as UTF-8 (a `.json` file, UTF-16 lines). `unit`:
    what a record's number counts in messages: "line" in JSON lines, "record" in a JSON array or response
    (its whole file may be one line)."""
    seen: set[str] = set()
    for lineno, line in enumerate(lines, start=1):
        if isinstance(line, StreamError):
            yield line.rejection(path)
            return
        if isinstance(line, LineTooLong):
            yield reject(
                f"{path}#{lineno}",
                STAGE_READ,
                TOO_LARGE,
                f"{unit} {lineno} is {line.size} bytes, over the limit of {config.max_bytes} for one record",
            )
            continue
        raw = line.rstrip(b"\r\n")
        if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        if not raw.strip():
            continue  # blank lines separate nothing and are not records
        yield _record_document(path, raw, lineno, seen, fetched_at, config, file_encoding, unit)


def _record_document(
    path: str, raw: bytes, lineno: int, seen: set[str], fetched_at: datetime | None, config: ReadConfig,
    file_encoding: str = "utf-8", unit: str = "line",
) -> RawDocument | Rejection:
    where = f"{path}#{lineno}"
    parsed = _parse_record(raw, lineno, where, unit)
    if isinstance(parsed, Rejection):
        return parsed
    record, encoding = parsed
    if encoding == "utf-8":
        # Lines re-encoded from a whole file read otherwise are UTF-8 here; the record's text was not (a user
        # trial found "utf-8" on the records of a cp1252 `.json` file).
        encoding = file_encoding
    invalid: dict[str, str] = {}
    used: set[str] = set()  # the top-level keys read into fields (the rest goes to `extra`)
    mapping = config.jsonl_fields
    external_id = _field(record, "id", mapping, invalid, used)
    source_uri = f"{path}#{external_id}" if external_id is not None else where
    if external_id is not None:
        if external_id in seen:
            return reject(source_uri, STAGE_READ, DUPLICATE_RECORD,
                          f"{unit} {lineno} repeats id {external_id!r} seen earlier in this file", raw=raw)
        seen.add(external_id)
    # A record read under a field mapping is another document than the same line read without one: a
    # re-run with `--field` after a run that quarantined the file's records must load them, not skip
    # them as known. A record that holds no mapped path reads as it would without the mapping, and keeps
    # the id it always had: the run's other dumps, read again under the mapping, are known, not copies.
    read_as = mapping_key(mapping) if mapping_reaches(record, mapping) else ""
    doc_id = sha256_hex(raw, (external_id or str(lineno)).encode("utf-8", "replace"),
                        *((read_as.encode("utf-8"),) if read_as else ()))
    body = _record_body(record, source_uri, lineno, doc_id, raw, config, used, unit)
    if isinstance(body, Rejection):
        return body
    text, content_type = body
    fields = {name: _field(record, name, mapping, invalid, used)
              for name in ("url", "title", "published_at", "publisher", "byline", "fetched_at")}
    # The record's own fetch time, when it gives one, over the file's modification time.
    fetched = parse_time(fields["fetched_at"]) if fields["fetched_at"] else None
    if fields["fetched_at"] and fetched is None:
        invalid["fetched_at"] = f"not a time: {fields['fetched_at'][:200]}"
    # As before aliases: the fields' own names never go to `extra` (an unusable value is in
    # `_invalid_fields`), nor do the keys read under an alias or a mapping.
    extra = {k: v for k, v in record.items() if k not in FIELDS and k not in used}
    if invalid:
        # Keep what we could not use, so nothing of the record is lost and the operator can see why.
        extra["_invalid_fields"] = invalid
    return RawDocument(
        doc_id=doc_id,
        source_uri=source_uri,
        kind="jsonl",
        content_type=content_type,
        raw=raw,
        content=text,
        encoding=encoding,
        external_id=external_id,
        url=fields["url"],
        title=fields["title"],
        published_at=fields["published_at"],
        publisher=fields["publisher"],
        author=fields["byline"],
        fetched_at=fetched or fetched_at,
        extra=_clean_json(extra),
    )


def _parse_record(raw: bytes, lineno: int, where: str, unit: str = "line") -> tuple[dict[str, Any], str] | Rejection:
    """The line as a JSON object and how its bytes were decoded, or why it is not one."""
    encoding = "utf-8"
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        # JSON must be UTF-8; repair what a legacy exporter wrote, and say how (`documents.encoding`: a
        # user trial found "utf-8" on a line whose bytes were read as cp1252)
        line, encoding = decode_bytes(raw)
    try:
        record = json.loads(line)
    except RecursionError:
        return reject(where, STAGE_READ, BAD_JSON, f"{unit} {lineno} nests JSON too deeply to parse", raw=raw)
    except ValueError as exc:
        return reject(where, STAGE_READ, BAD_JSON, f"{unit} {lineno} is not valid JSON: {exc}", raw=raw)
    if not isinstance(record, dict):
        return reject(where, STAGE_READ, BAD_RECORD, f"{unit} {lineno} is {json_kind(record)}, not an object", raw=raw)
    return record, encoding


def json_kind(value: object) -> str:
    """What a JSON value is, in JSON's own words ("null", "an array"), not Python's ("NoneType", "list")."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    kinds = ((dict, "an object"), (list, "an array"), (str, "a string"), ((int, float), "a number"))
    return next((name for kind, name in kinds if isinstance(value, kind)), type(value).__name__)


def _record_body(record: dict[str, Any], source_uri: str, lineno: int, doc_id: str, raw: bytes,
                 config: ReadConfig, used: set[str], unit: str = "line") -> tuple[str, str] | Rejection:
    """(body, content type) of a record: its first non-empty HTML field, else its first text field
    (read as HTML when it is markup under a name other than `text`), within the limits."""
    found = _body_field(record, config.jsonl_fields)
    if found is None:
        return reject(source_uri, STAGE_READ, BAD_RECORD, _no_body(record, lineno, config.jsonl_fields, unit),
                      doc_id=doc_id, raw=raw)
    body, content_type, key = found
    used.add(key)
    body = clean_decoded(body)
    if len(body.encode("utf-8", "replace")) > config.max_bytes or (
        content_type == "text" and len(body) > config.max_text_chars
    ):
        limit = config.max_bytes if content_type == "html" else config.max_text_chars
        return reject(source_uri, STAGE_READ, TOO_LARGE,
                      f"{unit} {lineno}: field {key!r} has {len(body)} characters, over the limit of {limit}",
                      doc_id=doc_id, raw=raw)  # the line itself is within max_bytes: keep it, nothing lost
    if not body.strip():
        return reject(source_uri, STAGE_READ, BAD_RECORD, f"{unit} {lineno}: the body holds no text",
                      doc_id=doc_id, raw=raw)
    return body, content_type


def _body_field(record: dict[str, Any], mapping: tuple[tuple[str, str], ...]) -> tuple[str, str, str] | None:
    """(value, content type, top-level key) of the record's body, or None."""
    for name in ("html", "text"):
        paths, _ = candidates(name, mapping)
        for path in paths:
            value = lookup(record, path)
            if isinstance(value, str) and value.strip():
                markup = name == "html" or (path != "text" and (name, path) not in mapping
                                            and looks_like_markup(value))
                return value, "html" if markup else "text", _top_key(record, path)
    return None


# The names APIs give their list of records (NewsAPI, GDELT, Elasticsearch, WordPress, JSON:API, feeds).
RECORD_LIST_KEYS = frozenset({"articles", "data", "items", "results", "posts", "records", "entries", "hits",
                              "documents", "docs", "stories", "news", "value"})


def _envelope_records(obj: dict[str, Any], config: ReadConfig) -> list[Any] | None:
    """The records of an API response saved whole (NewsAPI's `articles`, a `data`/`items`/`results` list):
    in an object without a body of its own, the items of each top-level list whose first item is an
    object, in the file's order; else None (the object is one record). The streaming reader of a large
    file reads the same (`_streamed_records`), so a file gives the same records whatever its size. Two
    lists (a site's `posts` and `pages`, JSON:API's `data` and `included`) both give records: an item
    without a body is quarantined with its fields named, where taking the whole object as one record lost
    every article into one rejection."""
    if _body_field(obj, config.jsonl_fields) is not None:
        return None
    lists = [v for v in obj.values() if isinstance(v, list) and v and isinstance(v[0], dict)]
    if lists:
        return [item for records in lists for item in records]
    # An API page with nothing on it ({"status": "ok", "articles": []}) holds no record: the file is then
    # refused as empty, as `[]` is, not as one record without a body ("line 1 has no body") that a poller
    # saving every page would collect. Only under the usual names of a record list: an article's own
    # empty `tags` list does not make it an envelope.
    if any(isinstance(v, list) and not v and str(k).casefold() in RECORD_LIST_KEYS for k, v in obj.items()):
        return []
    return None


def _no_body(record: dict[str, Any], lineno: int, mapping: tuple[tuple[str, str], ...], unit: str = "line") -> str:
    """Why a record has no body: the fields looked in (with what they held) and the record's keys."""
    looked = [p for name in ("html", "text") for p in candidates(name, mapping)[0]]
    held = [f"{p}: {json_kind(lookup(record, p))}" for p in looked if lookup(record, p) is not None]
    keys = ", ".join(sorted(record)[:12]) + (", ..." if len(record) > 12 else "")
    return (f"{unit} {lineno} has no non-empty string body in {'/'.join(looked)}"
            + (f" ({', '.join(held)})" if held else "")
            + f"; its fields: {keys or 'none'} (map one with --field text=FIELD or --field html=FIELD)")


def _top_key(record: dict[str, Any], path: str) -> str:
    return path if path in record else path.split(".", 1)[0]


def _field(record: dict[str, Any], name: str, mapping: tuple[tuple[str, str], ...],
           invalid: dict[str, str], used: set[str]) -> str | None:
    """A metadata field as a string: the first of its paths holding a string or a number. A value of
    another type under the field's own name or a mapped path is set aside in `invalid`; under another
    of its aliases it is passed over (it was not written for us) and stays in `extra`."""
    paths, mapped = candidates(name, mapping)
    for path in paths:
        value = lookup(record, path)
        if value is None:
            continue
        if name == "byline" and (names := names_list(value)) is not None:
            value = names
        if not is_scalar(value):
            if path in (mapped, name):
                invalid[name] = (f"expected a string, got {json_kind(value)}: "
                                 f"{json.dumps(value, ensure_ascii=False)[:200]}")
                if path in record:
                    used.add(path)  # kept in `_invalid_fields`, not twice
            continue
        text = clean_decoded(value).strip() if isinstance(value, str) else str(value)
        if text and (path in (mapped, name) or fits(name, text)):
            if "." not in path or path in record:
                used.add(path)  # a nested value leaves its object in `extra`, which may hold more
            return text
    return None


def _clean_json(value: Any) -> Any:
    """Unknown fields, with lone surrogates and NULs removed from every string inside them."""
    if isinstance(value, str):
        return clean_decoded(value)
    if isinstance(value, dict):
        return {clean_decoded(str(k)): _clean_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_json(v) for v in value]
    return value
