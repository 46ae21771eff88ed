"""JSON lines (and .json arrays/objects): one document per record, streamed line by line.

A broken line is quarantined and the rest still load; every line is bounded by `max_bytes`, the file
by `max_container_bytes`. Unknown fields are kept in `extra`.

A `.json` document is parsed whole when it fits in `max_bytes`. A larger one (a scraper's JSON array
export, an API response saved whole) is streamed record by record with ijson: each record is bounded by
`max_bytes`, and a syntax error or a cut-off end quarantines the rest after the records before it loaded.
A large file (or large UTF-16 JSON lines) is decoded as it streams, with the codec a whole read would
choose (`sources.decode.stream_decoder`), so its records read as a small file's would.
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
import re
import secrets
import zlib
from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import IO, Any

import ijson

from newsetl.schemas.records import STAGE_DECODE, STAGE_READ, RawDocument, Rejection
from newsetl.sources.config import ReadConfig
from newsetl.sources.decode import (
    Utf8Stream,
    bom_encoding,
    clean_decoded,
    decode_bytes,
    looks_binary,
    stream_decoder,
)
from newsetl.sources.fields import FIELDS, candidates, fits, is_scalar, looks_like_markup, lookup, mapping_key
from newsetl.sources.files import magic_name, read_upto, sha256_hex
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
        yield _StreamError.read_failed(path, exc).rejection(path)
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
            yield _StreamError.read_failed(path, exc).rejection(path)
            return
        if not complete:
            # Too large to decode whole: decoded as it streams, with the codec decode_bytes would choose
            # from the first bytes, and handed on as UTF-8 (yajl and the line reader read nothing else).
            decoder = stream_decoder(whole[:_DECODE_SAMPLE])
            utf8 = Utf8Stream(_Prefixed(whole, stream), decoder, config.chunk_bytes)
            del whole  # _Prefixed lets go of it once it has been read on
            try:
                first, _ = read_upto(utf8, config.max_bytes, config.chunk_bytes)
            except (EOFError, OSError, zlib.error) as exc:
                yield _StreamError.read_failed(path, exc).rejection(path)
                return
            if is_json:
                yield from _records(path, _large_json(path, first, utf8, config), fetched_at, config)
            else:  # UTF-16/32 JSON lines
                wide = io.BufferedReader(_Prefixed(first, utf8), config.chunk_bytes)
                yield from _records(path, _lines(path, wide, config), fetched_at, config)
            return
        text, _ = decode_bytes(whole)
        if is_json and text.lstrip()[:1] in {"[", "{"}:
            parsed = _loads(text)
            if isinstance(parsed, list):
                items = (json.dumps(item, ensure_ascii=False).encode("utf-8", "replace") for item in parsed)
                yield from _records(path, items, fetched_at, config)
                return
            if isinstance(parsed, dict):
                inner = _envelope_records(parsed, config)
                if inner is not None:  # {"status": "ok", "articles": [...]}: the records are the list
                    items = (json.dumps(item, ensure_ascii=False).encode("utf-8", "replace") for item in inner)
                    yield from _records(path, items, fetched_at, config)
                    return
                yield from _records(path, [text.strip().encode("utf-8", "replace")], fetched_at, config)
                return
            if (start := text.lstrip("\ufeff \t\r\n"))[:1] == "[":
                # A broken array (an export cut off mid-write: Scrapy's leaves no closing "]"): the records
                # before the break load and the rest is quarantined, as in a large file
                source = _Prefixed(start.encode("utf-8", "replace"), io.BytesIO())
                yield from _records(path, _streamed_records(path, source, config, in_envelope=False,
                                                            non_finite=_may_write_non_finite(text)),
                                    fetched_at, config)
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
    """Why a stream of records stopped: the rejection's reason and detail."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail

    def rejection(self, path: str) -> Rejection:
        return reject(path, STAGE_READ, self.reason, self.detail)

    @classmethod
    def read_failed(cls, path: str, exc: BaseException) -> _StreamError:
        if isinstance(exc, EOFError | zlib.error | gzip.BadGzipFile):
            return cls(BAD_GZIP, f"corrupt or truncated gzip data in {path}: {exc}")
        return cls(UNREADABLE, f"read error in {path}: {exc}")

    @classmethod
    def over_container_limit(cls, total: int, config: ReadConfig) -> _StreamError:
        return cls(UNREADABLE, f"stopped after {total} bytes: over the limit of {config.max_container_bytes} "
                               "bytes for one container file")

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
                yield _StreamError.over_container_limit(total, config)
                return
    except (EOFError, OSError, zlib.error) as exc:
        yield _StreamError.read_failed(path, exc)

# How many of a large file's first bytes choose its codec (decode_bytes' sniffing reads at most 256 KB).
_DECODE_SAMPLE = 1 << 20


class _Prefixed(io.RawIOBase):
    """The bytes a bounded read already took, then the rest of the stream: a large .json is read once.
    `pos` counts the bytes handed on, which bounds the file (and, roughly, each record)."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = memoryview(head)
        self._rest = rest
        self.pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        want = len(buffer)
        if self._head:
            block = self._head[:want]
            # once read on, the head is let go of (an empty slice would keep the whole of it alive)
            self._head = self._head[len(block):] if len(block) < len(self._head) else memoryview(b"")
        else:
            block = memoryview(self._rest.read(want))
        buffer[: len(block)] = block
        self.pos += len(block)
        return len(block)

    def file_pos(self) -> int:
        """`pos` as a byte of the file: the same unless the rest is a file decoded on the way."""
        return self._rest.file_offset(self.pos) if isinstance(self._rest, Utf8Stream) else self.pos


def _large_json(path: str, head: bytes, rest: IO[bytes], config: ReadConfig
                ) -> Iterator[bytes | _LineTooLong | _StreamError]:
    """The records of a .json over `max_bytes`: a top-level array's items, an envelope object's lists of
    records (as `_envelope_records` reads a small one), or lines when the file is JSON lines so named."""
    start = head.removeprefix(codecs.BOM_UTF8)
    first = start.lstrip()[:1]
    if first == b"{":
        line, _, after = start.lstrip().partition(b"\n")
        if after.strip() and isinstance(_loads(line.decode("utf-8", "replace")), dict):
            first = b""  # a whole object on the first line and more after it: JSON lines in a .json file
    source = _Prefixed(start, rest)
    if first not in (b"[", b"{"):
        return _lines(path, io.BufferedReader(source, config.chunk_bytes), config)
    return _streamed_records(path, source, config, in_envelope=first == b"{",
                             non_finite=_may_write_non_finite(start))


# ijson's C backend (yajl): its buffer is one read block, where the pure-Python one's grows while long
# strings straddle its reads (24 MB for a 12 MB file). Numbers are read as ints and Decimals
# (`use_float=False`: with floats, yajl refuses an integer outside 64 bits), and a Decimal is written
# back as the float json.loads would have read (`_as_float`). NaN and Infinity are not JSON, but json.loads
# reads them and Python's json.dump writes them: see `_NonFinite`.
try:
    _IJSON: Any = ijson.get_backend("yajl2_c")
except ImportError:  # no wheel with the C backend for this platform: the best ijson has
    _IJSON = ijson


# NaN, Infinity and -Infinity outside strings, which _NonFinite rewrites for yajl as marker strings and
# `_NonFinite.unmarked` turns back into the floats json.loads reads.
_NON_FINITE = {b"NaN": float("nan"), b"Infinity": float("inf"), b"-Infinity": float("-inf")}
_OUTSIDE_STRINGS = re.compile(rb'"|NaN|-?Infinity')
_STRING_REST = re.compile(rb'(?:[^"\\]|\\.)*', re.S)  # a string's body up to its closing quote
_TOKEN_STARTS = sorted({t[:k] for t in _NON_FINITE for k in range(1, len(t))}, key=len, reverse=True)


class _NonFinite(io.RawIOBase):
    """The JSON text of `raw` with NaN, Infinity and -Infinity outside strings written as marker strings,
    which yajl reads. Strings are told by their quotes and escapes, across read blocks. A marker carries a
    random part, so no string of the file can be taken for one."""

    def __init__(self, raw: io.RawIOBase, block: int) -> None:
        nonce = secrets.token_hex(8)
        self._marks = {token: json.dumps(f"\x00{token.decode()}:{nonce}").encode() for token in _NON_FINITE}
        self._numbers = {f"\x00{token.decode()}:{nonce}": number for token, number in _NON_FINITE.items()}
        self._raw = raw
        self._block = block
        self._in_string = False
        self._carry = b""  # a token or an escape cut by the end of a block
        self._out = memoryview(b"")
        self._done = False
        self.replaced = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._out and not self._done:
            chunk = self._raw.read(self._block)
            self._done = not chunk
            self._out = memoryview(self._rewrite(self._carry + chunk))
        n = min(len(buffer), len(self._out))
        buffer[:n] = self._out[:n]
        self._out = self._out[n:]
        return n

    def _rewrite(self, data: bytes) -> bytes:
        out: list[bytes] = []
        i, n = 0, len(data)
        self._carry = b""
        while i < n:
            if self._in_string:
                body = _STRING_REST.match(data, i)
                j = body.end() if body else i
                if j < n and data[j] == ord('"'):
                    self._in_string = False
                    j += 1
                elif j < n:  # a backslash whose escaped byte is in the next block (or that ends the file)
                    out.append(data[i:j])
                    if self._done:
                        out.append(data[j:])  # broken JSON: yajl says so
                    else:
                        self._carry = data[j:]
                    break
                out.append(data[i:j])
                i = j
                continue
            found = _OUTSIDE_STRINGS.search(data, i)
            if found is None:
                tail = b"" if self._done else next((t for t in _TOKEN_STARTS if data.endswith(t)), b"")
                out.append(data[i : n - len(tail)])
                self._carry = tail
                break
            out.append(data[i : found.start()])
            token = found.group()
            if token == b'"':
                self._in_string = True
                out.append(token)
            else:
                out.append(self._marks[token])
                self.replaced += 1
            i = found.end()
        return b"".join(out)

    def unmarked(self, value: Any) -> Any:
        """`value` as parsed, with the markers turned back into NaN and the infinities."""
        if not self.replaced:
            return value
        if isinstance(value, str):
            return self._numbers.get(value, value)
        if isinstance(value, dict):
            return {k: self.unmarked(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.unmarked(v) for v in value]
        return value


def _as_float(value: object) -> float:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _dumps(value: Any) -> bytes:
    """A streamed record as bytes, written as a whole parse's record is."""
    return json.dumps(value, ensure_ascii=False, default=_as_float).encode("utf-8", "replace")


def _may_write_non_finite(head: bytes | str) -> bool:
    """Whether a JSON text's first part holds NaN or Infinity, perhaps outside strings: Python's
    json.dump writes them (allow_nan is its default), a whole parse reads them, yajl refuses them."""
    return ("NaN" in head or "Infinity" in head) if isinstance(head, str) else (b"NaN" in head or b"Infinity" in head)


def _streamed_records(path: str, source: _Prefixed, config: ReadConfig, *, in_envelope: bool,
                      non_finite: bool = False) -> Iterator[bytes | _LineTooLong | _StreamError]:
    """Each record of a JSON document, parsed as it streams by: the items of the top-level array, or of
    an envelope's top-level lists whose first item is an object (other top-level values are the
    response's own metadata and are passed over, as for a small envelope). A record over `max_bytes` is
    refused by size, counted from the bytes read: to within one read-ahead block, which is allowed for.

    `non_finite`: the text is read through `_NonFinite`, so NaN and Infinity outside strings read as a
    whole parse reads them. It costs about a second per 40 MB, so the caller asks for it only when the
    file's first part shows them; one that first appears later ends the stream as a syntax error."""
    block = min(64 * 1024, config.chunk_bytes)  # ijson's read size (its default)
    item_depth = 2 if in_envelope else 1  # how many containers enclose a record
    depth = 0  # containers enclosing the current event's value (for an end event: the one it ends)
    in_list: bool | None = not in_envelope  # in a list of records; None: the list's first item decides
    builder: ijson.ObjectBuilder | None = None
    skipping = False  # inside a record already refused as too large
    started = records = 0
    # An envelope with a body of its own is one record, as a small one is (`_envelope_records`): its
    # lists are that record's (comments, tags), not records. Told while no record has been given yet,
    # which holds when the body comes before the lists, as the usual writers put it, and only for a body
    # at the top (a `--field text=a.b` path inside an object is not watched for).
    body_keys = {p for name in ("html", "text") for p in candidates(name, config.jsonl_fields)[0] if "." not in p}
    key: str | None = None  # the envelope's current top-level key
    try:
        marked = _NonFinite(source, block) if non_finite else None
        for _prefix, event, value in _IJSON.parse(marked or source, buf_size=block, use_float=False):
            opens, closes = event in ("start_map", "start_array"), event in ("end_map", "end_array")
            depth -= closes
            if source.pos > config.max_container_bytes:
                yield _StreamError.over_container_limit(source.pos, config)
                return
            if builder is not None or skipping:  # inside a record
                done = closes and depth == item_depth
                if builder is not None:
                    builder.event(event, value)
                    if done:
                        records += 1
                        yield _dumps(marked.unmarked(builder.value) if marked else builder.value)
                        builder = None
                    elif source.pos - started > config.max_bytes + block:
                        builder, skipping = None, True  # drop what was built; read on to the record's end
                elif done:
                    records += 1
                    skipping = False
                    yield _LineTooLong(source.pos - started)
            elif in_envelope and depth == 1 and event in ("start_array", "end_array"):
                in_list = None if opens else False
            elif in_envelope and depth == 1 and event == "map_key":
                key = value
            elif in_envelope and depth == 1 and key in body_keys and isinstance(value, str) and value.strip() \
                    and records == 0:
                yield _StreamError(TOO_LARGE, f"the file is one JSON record (its body is {key!r}) over the limit "
                                              f"of {config.max_bytes} bytes for one record")
                return
            elif depth == item_depth and in_list is not False and not closes and event != "map_key":
                if in_list is None:
                    in_list = event == "start_map"
                if in_list and opens:
                    builder, started = ijson.ObjectBuilder(), source.pos
                    builder.event(event, value)
                elif in_list:  # a scalar where a record belongs: _records refuses it as not an object
                    records += 1
                    yield _dumps(marked.unmarked(value) if marked else value)
            depth += opens
    except ijson.JSONError as exc:
        arg = exc.args[0] if exc.args else ""  # yajl's messages come as bytes, with a caret picture below
        why = ((arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)).strip().splitlines()
               or ["invalid JSON"])[0]
        yield _StreamError(BAD_JSON, f"the JSON breaks off after record {records}, near byte {source.file_pos()} "
                                     f"({why}): the records before it are read")
        return
    except (EOFError, OSError, zlib.error) as exc:
        yield _StreamError.read_failed(path, exc)
        return
    if in_envelope and records == 0:
        yield _StreamError(TOO_LARGE, f"the file is one JSON object of {source.pos} bytes with no list of "
                                      f"records, over the limit of {config.max_bytes} bytes for one record")


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
            yield line.rejection(path)
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
    used: set[str] = set()  # the top-level keys read into fields (the rest goes to `extra`)
    mapping = config.jsonl_fields
    external_id = _field(record, "id", mapping, invalid, used)
    source_uri = f"{path}#{external_id}" if external_id is not None else where
    if external_id is not None:
        if external_id in seen:
            return reject(source_uri, STAGE_READ, DUPLICATE_RECORD,
                          f"line {lineno} repeats id {external_id!r} seen earlier in this file", raw=raw)
        seen.add(external_id)
    # A record read under a field mapping is another document than the same line read without one: a
    # re-run with `--field` after a run that quarantined the file's records must load them, not skip
    # them as known. Without a mapping the id is what it always was.
    read_as = mapping_key(mapping)
    doc_id = sha256_hex(raw, (external_id or str(lineno)).encode("utf-8", "replace"),
                        *((read_as.encode("utf-8"),) if read_as else ()))
    body = _record_body(record, source_uri, lineno, doc_id, raw, config, used)
    if isinstance(body, Rejection):
        return body
    text, content_type = body
    fields = {name: _field(record, name, mapping, invalid, used)
              for name in ("url", "title", "published_at", "publisher")}
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
                 config: ReadConfig, used: set[str]) -> tuple[str, str] | Rejection:
    """(body, content type) of a record: its first non-empty HTML field, else its first text field
    (read as HTML when it is markup under a name other than `text`), within the limits."""
    found = _body_field(record, config.jsonl_fields)
    if found is None:
        return reject(source_uri, STAGE_READ, BAD_RECORD, _no_body(record, lineno, config.jsonl_fields),
                      doc_id=doc_id, raw=raw)
    body, content_type, key = found
    used.add(key)
    body = clean_decoded(body)
    if len(body.encode("utf-8", "replace")) > config.max_bytes or (
        content_type == "text" and len(body) > config.max_text_chars
    ):
        limit = config.max_bytes if content_type == "html" else config.max_text_chars
        return reject(source_uri, STAGE_READ, TOO_LARGE,
                      f"line {lineno}: field {key!r} has {len(body)} characters, over the limit of {limit}",
                      doc_id=doc_id, raw=raw)  # the line itself is within max_bytes: keep it, nothing lost
    if not body.strip():
        return reject(source_uri, STAGE_READ, BAD_RECORD, f"line {lineno}: the body holds no text",
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
    return [item for records in lists for item in records] if lists else None


def _no_body(record: dict[str, Any], lineno: int, mapping: tuple[tuple[str, str], ...]) -> str:
    """Why a record has no body: the fields looked in (with what they held) and the record's keys."""
    looked = [p for name in ("html", "text") for p in candidates(name, mapping)[0]]
    held = [f"{p}: {_type_name(lookup(record, p))}" for p in looked if lookup(record, p) is not None]
    keys = ", ".join(sorted(record)[:12]) + (", ..." if len(record) > 12 else "")
    return (f"line {lineno} has no non-empty string body in {'/'.join(looked)}"
            + (f" ({', '.join(held)})" if held else "")
            + f"; its fields: {keys or 'none'} (map one with --field text=FIELD or --field html=FIELD)")


def _top_key(record: dict[str, Any], path: str) -> str:
    return path if path in record else path.split(".", 1)[0]


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__

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
        if not is_scalar(value):
            if mapped or path == name:
                invalid[name] = (f"expected a string, got {_type_name(value)}: "
                                 f"{json.dumps(value, ensure_ascii=False)[:200]}")
                if path in record:
                    used.add(path)  # kept in `_invalid_fields`, not twice
            continue
        text = clean_decoded(value).strip() if isinstance(value, str) else str(value)
        if text and (mapped or path == name or fits(name, text)):
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
