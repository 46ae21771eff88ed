"""JSON text read as it streams: JSON lines, and arrays and API responses too large to parse whole.

`sources.jsonl` reads records; this module hands it their bytes one by one, bounded, from a stream:
- `read_lines`: JSON lines, each bounded by `max_bytes`, the file by `max_container_bytes`;
- `large_records`: a `.json` over `max_bytes` (a scraper's array export, an API response saved whole),
  parsed as it streams with ijson, or wide (UTF-16/32) JSON lines; the file is decoded on the way with
  the codec a whole read would choose (`large_file_encoding`);
- `cut_off_array`: the records of a small array cut off mid-write, before the cut.
A line or record over the limit comes as a `LineTooLong`, and a stop (a syntax error, a read error, the
file limit) as a `StreamError`, which ends the stream after the records before it.
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
import re
import secrets
import zlib
from collections.abc import Iterator
from decimal import Decimal
from typing import IO, Any

import ijson

from newsetl.schemas.records import STAGE_READ, Rejection
from newsetl.sources.config import ReadConfig
from newsetl.sources.decode import Utf8Stream, stream_decoder, stream_encoding
from newsetl.sources.fields import candidates
from newsetl.sources.files import Rewritten, read_upto
from newsetl.sources.reasons import BAD_GZIP, BAD_JSON, TOO_LARGE, UNREADABLE, reject


class LineTooLong:
    """A stand-in for a line over the limit: its size, so the record can be refused by number."""

    def __init__(self, size: int) -> None:
        self.size = size

class StreamError:
    """Why a stream of records stopped: the rejection's reason and detail."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail

    def rejection(self, path: str) -> Rejection:
        return reject(path, STAGE_READ, self.reason, self.detail)

    @classmethod
    def read_failed(cls, path: str, exc: BaseException) -> StreamError:
        if isinstance(exc, EOFError | zlib.error | gzip.BadGzipFile):
            return cls(BAD_GZIP, f"corrupt or truncated gzip data in {path}: {exc}")
        return cls(UNREADABLE, f"read error in {path}: {exc}")

    @classmethod
    def over_container_limit(cls, total: int, config: ReadConfig) -> StreamError:
        return cls(UNREADABLE, f"stopped after {total} bytes: over the limit of {config.max_container_bytes} "
                               "bytes for one container file")

def read_lines(path: str, stream: IO[bytes], config: ReadConfig) -> Iterator[bytes | LineTooLong | StreamError]:
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
                yield LineTooLong(size)
            else:
                yield line
            if total > config.max_container_bytes:
                yield StreamError.over_container_limit(total, config)
                return
    except (EOFError, OSError, zlib.error) as exc:
        yield StreamError.read_failed(path, exc)

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
                ) -> Iterator[bytes | LineTooLong | StreamError]:
    """The records of a .json over `max_bytes`: a top-level array's items, an envelope object's lists of
    records (as `_envelope_records` reads a small one), or lines when the file is JSON lines so named."""
    start = head.removeprefix(codecs.BOM_UTF8)
    first = start.lstrip()[:1]
    if first == b"{":
        line, _, after = start.lstrip().partition(b"\n")
        if after.strip() and isinstance(loads(line.decode("utf-8", "replace")), dict):
            first = b""  # a whole object on the first line and more after it: JSON lines in a .json file
    source = _Prefixed(start, rest)
    if first not in (b"[", b"{"):
        return read_lines(path, io.BufferedReader(source, config.chunk_bytes), config)
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


class _NonFinite(Rewritten):
    """The JSON text of `raw` with NaN, Infinity and -Infinity outside strings written as marker strings,
    which yajl reads. Strings are told by their quotes and escapes, across read blocks. A marker carries a
    random part, so no string of the file can be taken for one."""

    def __init__(self, raw: io.RawIOBase, block: int) -> None:
        super().__init__(raw, block)
        nonce = secrets.token_hex(8)
        self._marks = {token: json.dumps(f"\x00{token.decode()}:{nonce}").encode() for token in _NON_FINITE}
        self._numbers = {f"\x00{token.decode()}:{nonce}": number for token, number in _NON_FINITE.items()}
        self._in_string = False
        self._carry = b""  # a token or an escape cut by the end of a block
        self.replaced = 0

    def _rewrite(self, chunk: bytes, *, final: bool) -> bytes:
        data, self._carry = self._carry + chunk, b""
        out: list[bytes] = []
        i, n = 0, len(data)
        while i < n:
            if self._in_string:
                body = _STRING_REST.match(data, i)
                j = body.end() if body else i
                if j < n and data[j] == ord('"'):
                    self._in_string = False
                    j += 1
                elif j < n:  # a backslash whose escaped byte is in the next block (or that ends the file)
                    out.append(data[i:j])
                    if final:
                        out.append(data[j:])  # broken JSON: yajl says so
                    else:
                        self._carry = data[j:]
                    break
                out.append(data[i:j])
                i = j
                continue
            found = _OUTSIDE_STRINGS.search(data, i)
            if found is None:
                tail = b"" if final else next((t for t in _TOKEN_STARTS if data.endswith(t)), b"")
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


def dumps(value: Any) -> bytes:
    """A record's bytes, as its document id is taken from them: the one writer for a record streamed here
    and one parsed whole (sources.jsonl), so that a file gives the same ids whatever its size."""
    return json.dumps(value, ensure_ascii=False, default=_as_float).encode("utf-8", "replace")


def _may_write_non_finite(head: bytes) -> bool:
    """Whether a JSON text's first part holds NaN or Infinity, perhaps outside strings: Python's
    json.dump writes them (allow_nan is its default), a whole parse reads them, yajl refuses them."""
    return b"NaN" in head or b"Infinity" in head


class _RecordWalk:
    """The state of `_streamed_records`' walk over a JSON document's parse events: where it is (how many
    containers enclose the event, the envelope's current key, whether it is in a list of records) and the
    record being built. `step` takes one event and gives what it completes: a record's bytes, a
    `LineTooLong` for a record refused by size, or a `StreamError` that ends the walk."""

    def __init__(self, config: ReadConfig, *, in_envelope: bool, block: int, marked: _NonFinite | None) -> None:
        self.config, self.in_envelope, self.block, self.marked = config, in_envelope, block, marked
        self.item_depth = 2 if in_envelope else 1  # how many containers enclose a record
        self.depth = 0  # containers enclosing the current event's value (for an end event: the one it ends)
        self.in_list: bool | None = not in_envelope  # in a list of records; None: the list's first item decides
        self.builder: ijson.ObjectBuilder | None = None
        self.skipping = False  # inside a record already refused as too large
        self.started = 0  # where the record being built started (bytes read)
        self.records = 0  # records given so far (refused ones too)
        self.key: str | None = None  # the envelope's current top-level key
        # An envelope with a body of its own is one record, as a small one is (`_envelope_records`): its
        # lists are that record's (comments, tags), not records. Told while no record has been given yet,
        # which holds when the body comes before the lists, as the usual writers put it, and only for a
        # body at the top (a `--field text=a.b` path inside an object is not watched for).
        self.body_keys = {p for name in ("html", "text") for p in candidates(name, config.jsonl_fields)[0]
                          if "." not in p}

    def step(self, event: str, value: Any, pos: int) -> Iterator[bytes | LineTooLong | StreamError]:
        """One parse event, `pos` bytes into the document."""
        opens, closes = event in ("start_map", "start_array"), event in ("end_map", "end_array")
        self.depth -= closes
        if self.builder is not None or self.skipping:
            yield from self._in_record(event, value, closes, pos)
        elif self.in_envelope and self.depth == 1:
            yield from self._envelope_event(event, value, opens)
        elif self.depth == self.item_depth and self.in_list is not False and not closes and event != "map_key":
            yield from self._item(event, value, opens, pos)
        self.depth += opens

    def _in_record(self, event: str, value: Any, closes: bool, pos: int) -> Iterator[bytes | LineTooLong]:
        done = closes and self.depth == self.item_depth
        if self.builder is not None:
            self.builder.event(event, value)
            if done:
                self.records += 1
                yield self._bytes(self.builder.value)
                self.builder = None
            elif pos - self.started > self.config.max_bytes + self.block:
                self.builder, self.skipping = None, True  # drop what was built; read on to the record's end
        elif done:
            self.records += 1
            self.skipping = False
            yield LineTooLong(pos - self.started)

    def _envelope_event(self, event: str, value: Any, opens: bool) -> Iterator[StreamError]:
        """An event of the envelope's own top level: a list opens or ends, a key, a body of its own."""
        if event in ("start_array", "end_array"):
            self.in_list = None if opens else False
        elif event == "map_key":
            self.key = value
        elif self.key in self.body_keys and isinstance(value, str) and value.strip() and self.records == 0:
            yield StreamError(TOO_LARGE, f"the file is one JSON record (its body is {self.key!r}) over the limit "
                                         f"of {self.config.max_bytes} bytes for one record")

    def _item(self, event: str, value: Any, opens: bool, pos: int) -> Iterator[bytes]:
        """An item of a list, where records are: an object starts one; a scalar is passed on as it is (and
        `_records` refuses it as not an object); the first item tells whether the list holds records."""
        if self.in_list is None:
            self.in_list = event == "start_map"
        if self.in_list and opens:
            self.builder, self.started = ijson.ObjectBuilder(), pos
            self.builder.event(event, value)
        elif self.in_list:
            self.records += 1
            yield self._bytes(value)

    def _bytes(self, value: Any) -> bytes:
        return dumps(self.marked.unmarked(value) if self.marked else value)


def _streamed_records(path: str, source: _Prefixed, config: ReadConfig, *, in_envelope: bool,
                      non_finite: bool = False) -> Iterator[bytes | LineTooLong | StreamError]:
    """Each record of a JSON document, parsed as it streams by: the items of the top-level array, or of
    an envelope's top-level lists whose first item is an object (other top-level values are the
    response's own metadata and are passed over, as for a small envelope). A record over `max_bytes` is
    refused by size, counted from the bytes read: to within one read-ahead block, which is allowed for.

    `non_finite`: the text is read through `_NonFinite`, so NaN and Infinity outside strings read as a
    whole parse reads them. It costs about a second per 40 MB, so the caller asks for it only when the
    file's first part shows them; one that first appears later ends the stream as a syntax error."""
    block = min(64 * 1024, config.chunk_bytes)  # ijson's read size (its default)
    marked = _NonFinite(source, block) if non_finite else None
    walk = _RecordWalk(config, in_envelope=in_envelope, block=block, marked=marked)
    try:
        for _prefix, event, value in _IJSON.parse(marked or source, buf_size=block, use_float=False):
            if source.pos > config.max_container_bytes:
                yield StreamError.over_container_limit(source.pos, config)
                return
            for item in walk.step(event, value, source.pos):
                yield item
                if isinstance(item, StreamError):
                    return
    except ijson.JSONError as exc:
        arg = exc.args[0] if exc.args else ""  # yajl's messages come as bytes, with a caret picture below
        why = ((arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)).strip().splitlines()
               or ["invalid JSON"])[0]
        yield StreamError(BAD_JSON, f"the JSON breaks off after record {walk.records}, near byte "
                                    f"{source.file_pos()} ({why}): the records before it are read")
        return
    except (EOFError, OSError, zlib.error) as exc:
        yield StreamError.read_failed(path, exc)
        return
    if in_envelope and walk.records == 0:
        yield StreamError(TOO_LARGE, f"the file is one JSON object of {source.pos} bytes with no list of "
                                      f"records, over the limit of {config.max_bytes} bytes for one record")


def loads(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def large_file_encoding(whole: bytes) -> str:
    """The encoding to read a file too large to decode whole with (`whole`: its first bytes, as given to
    `large_records`): the codec decode_bytes would choose from them."""
    return stream_encoding(whole[:_DECODE_SAMPLE])


def large_records(path: str, whole: bytes, stream: IO[bytes], config: ReadConfig, *, is_json: bool,
                  encoding: str) -> Iterator[bytes | LineTooLong | StreamError]:
    """The records of a file too large to decode whole: `whole` is its first `max_bytes` and more,
    `stream` the rest. It is decoded as it streams, in `encoding` (`large_file_encoding`, which the caller
    also records), and handed on as UTF-8 (yajl and the line reader read nothing else): a `.json` to
    `_large_json`, wide JSON lines (UTF-16/32, told by their BOM) to `read_lines`."""
    utf8 = Utf8Stream(_Prefixed(whole, stream), stream_decoder(encoding), config.chunk_bytes)
    del whole  # _Prefixed lets go of it once it has been read on
    try:
        first, _ = read_upto(utf8, config.max_bytes, config.chunk_bytes)
    except (EOFError, OSError, zlib.error) as exc:
        yield StreamError.read_failed(path, exc)
        return
    if is_json:
        records = _large_json(path, first, utf8, config)
    else:
        records = read_lines(path, io.BufferedReader(_Prefixed(first, utf8), config.chunk_bytes), config)
    del first  # as `whole`: held by the stream only, which lets go of it once read on
    yield from records


def cut_off_array(path: str, text: str, config: ReadConfig) -> Iterator[bytes | LineTooLong | StreamError]:
    """The records of a small array that does not parse whole (an export cut off mid-write: Scrapy's
    leaves no closing "]"), read as a large one is: those before the break, then the stop."""
    data = text.lstrip("\ufeff \t\r\n").encode("utf-8", "replace")
    return _streamed_records(path, _Prefixed(data, io.BytesIO()), config, in_envelope=False,
                             non_finite=_may_write_non_finite(data))
