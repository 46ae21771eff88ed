"""JSON lines (and .json arrays/objects): one document per record, streamed line by line.

A broken line is quarantined and the rest still load; every line is bounded by `max_bytes`, the file
by `max_container_bytes`. Unknown fields are kept in `extra`.
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
import zlib
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import IO, Any

from newsetl.schemas.records import STAGE_DECODE, STAGE_READ, RawDocument, Rejection
from newsetl.sources.config import ReadConfig
from newsetl.sources.decode import bom_encoding, clean_decoded, decode_bytes, looks_binary
from newsetl.sources.files import TooLarge, magic_name, read_bounded, sha256_hex
from newsetl.sources.reasons import (
    BAD_GZIP,
    BAD_JSON,
    BAD_RECORD,
    BINARY_CONTENT,
    DUPLICATE_RECORD,
    EMPTY_INPUT,
    TOO_LARGE,
    UNREADABLE,
    reject,
)

KNOWN_FIELDS = {"id", "url", "title", "published_at", "html", "text", "publisher"}


def read_jsonl(
    path: str, data: bytes | IO[bytes], fetched_at: datetime | None, config: ReadConfig | None = None
) -> Iterator[RawDocument | Rejection]:
    """One document per JSON record; a broken line is quarantined and the rest still load.

    `data` is the file's bytes or a binary stream (streamed line by line, each line bounded).
    A `.json` file may also hold one JSON array of records or a single record object.
    """
    config = config or ReadConfig()
    stream: IO[bytes] = io.BufferedReader(io.BytesIO(data)) if isinstance(data, bytes | bytearray) else data
    try:
        head = stream.peek(8192)[:8192] if hasattr(stream, "peek") else b""
    except (EOFError, OSError, zlib.error) as exc:
        yield reject(path, STAGE_READ, BAD_GZIP, f"corrupt or truncated gzip data in {path}: {exc}")
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
            whole = read_bounded(stream, config.max_bytes, config.chunk_bytes)
        except TooLarge as exc:
            yield reject(path, STAGE_READ, TOO_LARGE, str(exc))
            return
        except (EOFError, OSError, zlib.error) as exc:
            yield reject(path, STAGE_READ, BAD_GZIP, f"corrupt or truncated data in {path}: {exc}")
            return
        text, _ = decode_bytes(whole)
        if is_json and text.lstrip()[:1] in {"[", "{"}:
            parsed = _loads(text)
            if isinstance(parsed, list):
                items = (json.dumps(item, ensure_ascii=False).encode("utf-8", "replace") for item in parsed)
                yield from _records(path, items, fetched_at, config)
                return
            if isinstance(parsed, dict):
                yield from _records(path, [text.strip().encode("utf-8", "replace")], fetched_at, config)
                return
        lines = (line.encode("utf-8", "replace") for line in text.splitlines())
        yield from _records(path, lines, fetched_at, config)
        return
    yield from _records(path, _lines(path, stream, config), fetched_at, config)

class _LineTooLong:
    """A stand-in for a line over the limit: its size, so the record can be refused by number."""

    def __init__(self, size: int) -> None:
        self.size = size

class _StreamError:
    def __init__(self, detail: str) -> None:
        self.detail = detail

def _lines(path: str, stream: IO[bytes], config: ReadConfig) -> Iterator[bytes | _LineTooLong | _StreamError]:
    """Lines of a stream, each bounded by max_bytes; the file as a whole by max_container_bytes."""
    total = 0
    try:
        while True:
            line = stream.readline(config.max_bytes + 1)
            if not line:
                return
            total += len(line)
            if len(line) > config.max_bytes and not line.endswith(b"\n"):
                size = len(line)
                while True:  # skip the rest of the oversized line, still bounded by the file limit
                    rest = stream.readline(config.chunk_bytes)
                    size += len(rest)
                    total += len(rest)
                    if not rest or rest.endswith(b"\n") or total > config.max_container_bytes:
                        break
                yield _LineTooLong(size)
            else:
                yield line
            if total > config.max_container_bytes:
                yield _StreamError(
                    f"stopped after {total} bytes: over the limit of "
                    f"{config.max_container_bytes} bytes for one container file"
                )
                return
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        yield _StreamError(f"corrupt or truncated gzip data in {path}: {exc}")
    except OSError as exc:
        yield _StreamError(f"read error in {path}: {exc}")

def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None

def _records(
    path: str,
    lines: Iterable[bytes | _LineTooLong | _StreamError],
    fetched_at: datetime | None,
    config: ReadConfig,
) -> Iterator[RawDocument | Rejection]:
    seen: set[str] = set()
    for lineno, line in enumerate(lines, start=1):
        if isinstance(line, _StreamError):
            yield reject(path, STAGE_READ, BAD_GZIP if "gzip" in line.detail else UNREADABLE, line.detail)
            return
        if isinstance(line, _LineTooLong):
            yield reject(
                f"{path}#{lineno}",
                STAGE_READ,
                TOO_LARGE,
                f"line {lineno} is {line.size} bytes, over the limit of {config.max_bytes} for one record",
            )
            continue
        raw = line.rstrip(b"\r\n")
        if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        if not raw.strip():
            continue  # blank lines separate nothing and are not records
        yield _record_document(path, raw, lineno, seen, fetched_at, config)


def _record_document(
    path: str, raw: bytes, lineno: int, seen: set[str], fetched_at: datetime | None, config: ReadConfig
) -> RawDocument | Rejection:
    where = f"{path}#{lineno}"
    record = _parse_record(raw, lineno, where)
    if isinstance(record, Rejection):
        return record
    invalid: dict[str, str] = {}
    external_id = _scalar(record, "id", invalid)
    source_uri = f"{path}#{external_id}" if external_id is not None else where
    if external_id is not None:
        if external_id in seen:
            return reject(source_uri, STAGE_READ, DUPLICATE_RECORD,
                          f"line {lineno} repeats id {external_id!r} seen earlier in this file", raw=raw)
        seen.add(external_id)
    doc_id = sha256_hex(raw, (external_id or str(lineno)).encode("utf-8", "replace"))
    body = _record_body(record, source_uri, lineno, doc_id, raw, config)
    if isinstance(body, Rejection):
        return body
    text, content_type = body
    fields = {key: _scalar(record, key, invalid) for key in ("url", "title", "published_at", "publisher")}
    extra = {k: v for k, v in record.items() if k not in KNOWN_FIELDS}
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
        encoding="utf-8",
        external_id=external_id,
        url=fields["url"],
        title=fields["title"],
        published_at=fields["published_at"],
        publisher=fields["publisher"],
        fetched_at=fetched_at,
        extra=_clean_json(extra),
    )


def _parse_record(raw: bytes, lineno: int, where: str) -> dict[str, Any] | Rejection:
    """The line as a JSON object, or why it is not one."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        line, _ = decode_bytes(raw)  # JSON must be UTF-8; repair what a legacy exporter wrote
    try:
        record = json.loads(line)
    except RecursionError:
        return reject(where, STAGE_READ, BAD_JSON, f"line {lineno} nests JSON too deeply to parse", raw=raw)
    except ValueError as exc:
        return reject(where, STAGE_READ, BAD_JSON, f"line {lineno} is not valid JSON: {exc}", raw=raw)
    if not isinstance(record, dict):
        return reject(where, STAGE_READ, BAD_RECORD,
                      f"line {lineno} is a JSON {type(record).__name__}, not an object", raw=raw)
    return record


def _record_body(record: dict[str, Any], source_uri: str, lineno: int, doc_id: str, raw: bytes,
                 config: ReadConfig) -> tuple[str, str] | Rejection:
    """(body, content type) of a record: its non-empty `html`, else its `text`, within the limits."""
    html, text = record.get("html"), record.get("text")
    body: str | None = None
    content_type = "text"
    if isinstance(html, str) and html.strip():
        body, content_type = html, "html"
    elif isinstance(text, str) and text.strip():
        body = text
    if body is None:
        got = ", ".join(f"{k}: {_type_name(record[k])}" for k in ("text", "html") if k in record) or "neither"
        return reject(source_uri, STAGE_READ, BAD_RECORD,
                      f"line {lineno} has no non-empty string field 'text' or 'html' ({got})", doc_id=doc_id, raw=raw)
    body = clean_decoded(body)
    if len(body.encode("utf-8", "replace")) > config.max_bytes or (
        content_type == "text" and len(body) > config.max_text_chars
    ):
        limit = config.max_bytes if content_type == "html" else config.max_text_chars
        return reject(source_uri, STAGE_READ, TOO_LARGE,
                      f"line {lineno}: field '{content_type}' has {len(body)} characters, over the limit of {limit}",
                      doc_id=doc_id, raw=raw)  # the line itself is within max_bytes: keep it, nothing lost
    if not body.strip():
        return reject(source_uri, STAGE_READ, BAD_RECORD, f"line {lineno}: the body holds no text",
                      doc_id=doc_id, raw=raw)
    return body, content_type


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__

def _scalar(record: dict[str, Any], key: str, invalid: dict[str, str]) -> str | None:
    """A metadata field as a string: strings and numbers are accepted, other types are set aside."""
    value = record.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        value = clean_decoded(value).strip()
        return value or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    invalid[key] = (
        f"expected a string, got {_type_name(value)}: {json.dumps(value, ensure_ascii=False)[:200]}"
    )
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
