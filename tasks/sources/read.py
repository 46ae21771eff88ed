"""Discover and read inputs: files, directories, globs, gzip, JSONL, WARC and URLs, into `RawDocument`s.

Plain Python, no Prefect: the Prefect task in `tasks/ingest.py` only wraps `discover` and `read_path`.
Every input ends as a document or a `Rejection` with a reason; nothing is dropped silently and no
input, however broken, makes these functions raise.

Limits are per *document*, not per file: a JSONL dump or a WARC of several GB is streamed record
by record (memory bounded by one record), while a single .txt/.html file, one JSONL line, one WARC
payload and one HTTP body are each refused above `ReadConfig.max_bytes`. Decompression is bounded
the same way, so a gzip bomb is stopped after max_bytes, never inflated in full.
"""

from __future__ import annotations

import codecs
import errno
import glob
import gzip
import hashlib
import io
import json
import os
import stat
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

from schemas.records import STAGE_DECODE, STAGE_DISCOVER, STAGE_READ, RawDocument, Rejection
from tasks.sources import http as _http
from tasks.sources.decode import DecodeError, bom_encoding, clean_decoded, decode_bytes, looks_binary
from tasks.sources.http import HttpConfig

# Rejection reasons (snake_case constants, counted in run summaries).
NOT_FOUND = "not_found"
UNREADABLE = "unreadable"
NOT_REGULAR_FILE = "not_regular_file"
UNSUPPORTED_KIND = "unsupported_kind"
EMPTY_INPUT = "empty_input"
BINARY_CONTENT = "binary_content"
UNDECODABLE = "undecodable"
BAD_GZIP = "bad_gzip"
TOO_LARGE = "too_large"
BAD_JSON = "bad_json"
BAD_RECORD = "bad_record"
DUPLICATE_RECORD = "duplicate_record"
BAD_SOURCES_FILE = "bad_sources_file"
WARC_BAD = "bad_warc"
WARC_NOT_HTML = "warc_record_not_html"  # a capture of an image, script, style sheet, PDF...
WARC_HTTP_STATUS = "warc_http_status"  # a capture of a redirect or an error page
WARC_REVISIT = "warc_revisit"  # a duplicate capture recorded without payload

TEXT_SUFFIXES = {".txt", ".text"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml", ".shtml"}
JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}
WARC_SUFFIXES = {".warc", ".arc"}
KNOWN_FIELDS = {"id", "url", "title", "published_at", "html", "text", "publisher"}
URL_PREFIXES = ("http://", "https://")

# File signatures of formats that are never articles: refused with their name, not "looks binary".
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or docx/xlsx/epub)"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"BZh", "a bzip2 stream"),
    (b"\xfd7zXZ\x00", "an xz stream"),
    (b"\x28\xb5\x2f\xfd", "a zstd stream"),
    (b"\x7fELF", "an ELF executable"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"RIFF", "a RIFF media file"),
    (b"\x00\x00\x00 ftyp", "an MP4/MOV video"),
    (b"\x1aE\xdf\xa3", "a Matroska/WebM video"),
    (b"OggS", "an Ogg media file"),
    (b"wOFF", "a web font"),
    (b"wOF2", "a web font"),
)
_GZIP_MAGIC = b"\x1f\x8b"
# White space plus the invisible characters str.strip() keeps: a file of only these holds no text.
_INVISIBLE = (
    " \t\n\r\f\v\x1c\x1d\x1e\x1f\x85\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u200b\u200c\u200d\u2028\u2029\u202f\u205f\u2060\u3000\ufeff"
)
_HTML_START = (b"<!doctype html", b"<html")


@dataclass(frozen=True)
class ReadConfig:
    # One document (a .txt/.html file, a JSONL line, a WARC payload, an HTTP body) larger than this,
    # after decompression, is refused: bounds gzip bombs, runaway files and memory per document.
    max_bytes: int = 32 * 1024 * 1024
    # Plain text longer than this is not an article (the longest news features are ~200 k chars);
    # downstream stages are linear but slow on such texts, so refuse them here with a clear reason.
    max_text_chars: int = 2_000_000
    # Total decompressed bytes read from one container file (JSONL/WARC): bounds a bomb of many
    # small records. Real dumps are far below it.
    max_container_bytes: int = 8 * 1024 * 1024 * 1024
    # Gzip is inflated in chunks of this size so a bomb is stopped early, not after allocating it all.
    chunk_bytes: int = 1024 * 1024
    http: HttpConfig = field(default_factory=HttpConfig)


def sha256_hex(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
        h.update(b"\x00")  # separator, so ("ab","c") and ("a","bc") differ
    return h.hexdigest()


def display_path(path: str) -> str:
    """A path safe to store: file names that are not valid UTF-8 get their bad bytes escaped.

    os.listdir hands such names back with lone surrogates, which Arrow and DuckDB cannot encode.
    """
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


# -- discover ---------------------------------------------------------------------------------


def discover(sources: Iterable[str]) -> tuple[list[str], list[Rejection]]:
    """Expand paths, directories (recursive), globs and `@list` files into a sorted list of inputs.

    URLs are passed through unchanged (fetched by `read_path`). `@FILE` names a sources file: one
    path, glob or URL per line, `#` comments, relative paths relative to that file (like
    `wget -i`). A file reached twice (through symlinks, overlapping globs) is listed once, under
    its first path in sorted order. A source that matches nothing is a rejection, not a silent
    no-op: a typo in a schedule's parameters must show up somewhere.
    """
    found: dict[str, str] = {}  # identity (real path or URL) -> path as given, made absolute
    rejections: list[Rejection] = []
    for source in _expand_lists(sources, rejections):
        if source.startswith(URL_PREFIXES):
            found.setdefault(source, source)
            continue
        matches = glob.glob(source, recursive=True) if glob.has_magic(source) else [source]
        if not matches:
            rejections.append(_reject(source, STAGE_DISCOVER, NOT_FOUND, f"no file matches {source!r}"))
            continue
        for match in sorted(matches):
            path = Path(match).absolute()
            if path.is_dir():
                for name, identity in _walk(path):
                    _add(found, name, identity)
            elif path.exists() or path.is_symlink():
                _add(found, str(path))  # dangling links and special files are refused by read_path
            else:
                rejections.append(_reject(str(path), STAGE_DISCOVER, NOT_FOUND, f"{path} does not exist"))
    return sorted(set(found.values())), rejections


def _add(found: dict[str, str], path: str, identity: str | None = None) -> None:
    if identity is None:
        try:
            identity = os.path.realpath(path)
        except (OSError, ValueError):
            identity = path
    if identity not in found or path < found[identity]:
        found[identity] = path


def _expand_lists(sources: Iterable[str], rejections: list[Rejection]) -> Iterator[str]:
    for source in sources:
        if not source.startswith("@"):
            yield source
            continue
        list_path = Path(source[1:]).absolute()
        try:
            lines = list_path.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            rejections.append(
                _reject(
                    str(list_path),
                    STAGE_DISCOVER,
                    BAD_SOURCES_FILE,
                    f"cannot read the sources file {list_path}: {exc}",
                )
            )
            continue
        for line in lines:
            entry = line.strip()
            if not entry or entry.startswith("#"):
                continue
            if entry.startswith("@"):  # no nesting: a list naming itself would never end
                rejections.append(
                    _reject(
                        entry,
                        STAGE_DISCOVER,
                        BAD_SOURCES_FILE,
                        f"{list_path} names another sources file {entry!r}; not supported",
                    )
                )
            elif entry.startswith(URL_PREFIXES) or os.path.isabs(entry):
                yield entry
            else:
                yield str(list_path.parent / entry)


def _walk(root: Path) -> Iterator[tuple[str, str]]:
    """(path, identity) of every file below root. The identity (real path) is resolved once per
    directory, and per file only for symlinks: realpath on every file of a 100,000-file drop folder
    was most of a re-run's time (4 of 13 s)."""
    # followlinks=False: a symlink loop cannot recurse forever; linked *files* are still read.
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        base = str(Path(dirpath).absolute())
        real_base = os.path.realpath(dirpath)
        try:
            with os.scandir(dirpath) as entries:
                links = {e.name for e in entries if e.is_symlink()}
        except OSError:
            links = set(filenames)  # cannot tell: resolve each one
        for name in sorted(filenames):
            if not name.startswith("."):  # editor swap files, .DS_Store: not inputs
                path = os.path.join(base, name)
                yield path, (os.path.realpath(path) if name in links else os.path.join(real_base, name))


def kind_of(path: str) -> tuple[str, bool]:
    """Return (kind, gzipped) from the name: kind is txt | html | jsonl | warc | url | unknown."""
    if path.startswith(URL_PREFIXES):
        return "url", False
    name = path.lower()
    gz = name.endswith(".gz")
    if gz:
        name = name[:-3]
    suffix = os.path.splitext(name)[1]
    if suffix in TEXT_SUFFIXES:
        return "txt", gz
    if suffix in HTML_SUFFIXES:
        return "html", gz
    if suffix in JSONL_SUFFIXES:
        return "jsonl", gz
    if suffix in WARC_SUFFIXES:
        return "warc", gz
    return "unknown", gz


# -- read -------------------------------------------------------------------------------------


class _TooLarge(Exception):
    pass


class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


def read_path(path: str, config: ReadConfig = ReadConfig()) -> Iterator[RawDocument | Rejection]:
    """Read one input into documents (one per txt/html/URL page, one per JSONL/WARC record or feed
    item) or rejections. A generator: a multi-GB container is streamed, never held whole.

    Never raises for anything the input contains or for the file system misbehaving (vanished,
    unreadable, special files); only programming errors would escape.
    """
    uri = display_path(path)
    kind, _ = kind_of(path)  # gzip is recognised by its bytes, not by the name
    if kind == "url":
        yield from read_url(path, config)
        return
    if kind == "unknown":
        yield _reject(
            uri,
            STAGE_DISCOVER,
            UNSUPPORTED_KIND,
            "not a supported input (.txt, .html, .htm, .jsonl, .json, .warc, optionally .gz)",
        )
        return
    try:
        fh, st = _open_regular(path)
    except _Refused as refused:
        yield refused.rejection
        return
    with fh:
        fetched_at = datetime.fromtimestamp(st.st_mtime, tz=UTC)
        if kind == "warc":
            from tasks.sources.warc import read_warc  # warcio is imported only when a WARC is read

            yield from read_warc(uri, fh, config)
            return
        try:
            stream = _maybe_gunzip(fh)
        except OSError as exc:
            yield _reject(uri, STAGE_READ, UNREADABLE, f"cannot read {uri}: {exc}")
            return
        if kind == "jsonl":
            yield from read_jsonl(uri, stream, fetched_at, config)
            return
        try:
            data = _read_bounded(stream, config.max_bytes, config.chunk_bytes)
        except _TooLarge as exc:
            yield _reject(uri, STAGE_READ, TOO_LARGE, str(exc))
            return
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            yield _reject(uri, STAGE_READ, BAD_GZIP, f"corrupt or truncated gzip data in {uri}: {exc}")
            return
        except OSError as exc:
            yield _reject(uri, STAGE_READ, UNREADABLE, f"cannot read {uri}: {exc}")
            return
        yield document_from_bytes(uri, data, kind, fetched_at=fetched_at, config=config)


class _Refused(Exception):
    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.detail)
        self.rejection = rejection


def _open_regular(path: str) -> tuple[IO[bytes], os.stat_result]:
    """Open a regular file for reading, refusing FIFOs, devices, sockets and directories.

    O_NONBLOCK: opening a FIFO for reading would otherwise block until a writer appears, which
    stalls the run forever. The type is checked on the open descriptor (fstat), so a file swapped
    for something else between listing and opening is caught too.
    """
    uri = display_path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise _Refused(
            _reject(
                uri,
                STAGE_READ,
                NOT_FOUND,
                f"{uri} does not exist (removed after it was listed, or a dangling link)",
            )
        ) from None
    except PermissionError as exc:
        raise _Refused(
            _reject(uri, STAGE_READ, UNREADABLE, f"permission denied reading {uri}: {exc}")
        ) from None
    except IsADirectoryError:
        raise _Refused(_reject(uri, STAGE_READ, NOT_REGULAR_FILE, f"{uri} is a directory")) from None
    except OSError as exc:
        reason = UNREADABLE
        detail = f"cannot open {uri}: {exc.strerror or exc}"
        if exc.errno == errno.ELOOP:
            detail = f"cannot open {uri}: symbolic link loop"
        raise _Refused(_reject(uri, STAGE_READ, reason, detail)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            what = (
                "a directory"
                if stat.S_ISDIR(st.st_mode)
                else "a named pipe"
                if stat.S_ISFIFO(st.st_mode)
                else "a device"
                if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
                else "a socket"
                if stat.S_ISSOCK(st.st_mode)
                else "not a regular file"
            )
            raise _Refused(
                _reject(uri, STAGE_READ, NOT_REGULAR_FILE, f"{uri} is {what}; only regular files are read")
            )
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb", closefd=True), st
    except BaseException:
        os.close(fd)
        raise


def _maybe_gunzip(fh: IO[bytes]) -> IO[bytes]:
    """A stream of the file's content: gunzipped when it starts with the gzip magic.

    The magic decides, not the name: a `.txt.gz` that is plain text is read as text, and a `.txt`
    that is really gzip (a server's Content-Encoding saved to disk) is inflated.
    """
    head = fh.peek(2)[:2] if hasattr(fh, "peek") else b""
    if head == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=fh)  # type: ignore[return-value]
    return fh


def _read_bounded(stream: _Readable, limit: int, chunk: int) -> bytes:
    out = bytearray()
    while block := stream.read(chunk):
        out += block
        if len(out) > limit:
            raise _TooLarge(f"the input is larger than the limit of {limit} bytes (after decompression)")
    return bytes(out)


def _magic_name(data: bytes) -> str | None:
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    if data[4:8] == b"ftyp":
        return "an MP4/MOV video"
    return None


def document_from_bytes(
    source_uri: str,
    data: bytes,
    kind: str,
    *,
    url: str | None = None,
    fetched_at: datetime | None = None,
    declared_encoding: str | None = None,
    config: ReadConfig | None = None,
    doc_id: str | None = None,
) -> RawDocument | Rejection:
    """Decode a whole-document input (txt, html, a WARC payload, an HTTP body) or say why it is not one.

    `kind` is the container kind stored with the document; the content type ("text" | "html") is
    taken from it and, for text, corrected when the bytes are plainly an HTML page. `doc_id` is
    given by containers whose records are identified by more than their bytes (WARC record ids).
    """
    config = config or ReadConfig()
    if len(data) > config.max_bytes:
        return _reject(
            source_uri,
            STAGE_READ,
            TOO_LARGE,
            f"the input is {len(data)} bytes, over the limit of {config.max_bytes}",
        )
    if data.startswith(_GZIP_MAGIC):  # gzip bytes inside a non-gzip name: inflate, bounded
        try:
            data = _read_bounded(
                gzip.GzipFile(fileobj=io.BytesIO(data)), config.max_bytes, config.chunk_bytes
            )
        except _TooLarge as exc:
            return _reject(source_uri, STAGE_READ, TOO_LARGE, str(exc))
        except (EOFError, OSError, zlib.error) as exc:
            return _reject(source_uri, STAGE_READ, BAD_GZIP, f"corrupt or truncated gzip data: {exc}")
    if not data.removeprefix(codecs.BOM_UTF8).strip():
        return _reject(
            source_uri, STAGE_READ, EMPTY_INPUT, "the input is empty or white space only", raw=data
        )
    doc_id = doc_id or sha256_hex(data)
    magic = _magic_name(data)
    if magic:
        return _reject(
            source_uri,
            STAGE_DECODE,
            BINARY_CONTENT,
            f"the input is {magic}, not text or HTML",
            doc_id=doc_id,
            raw=data,
        )
    if looks_binary(data):
        return _reject(
            source_uri,
            STAGE_DECODE,
            BINARY_CONTENT,
            "the input looks binary (NUL bytes or control characters), not text or HTML",
            doc_id=doc_id,
            raw=data,
        )
    sniffed_html = data.removeprefix(codecs.BOM_UTF8).lstrip()[:20].lower().startswith(_HTML_START)
    is_html = kind == "html" or (kind in {"txt", "url", "warc"} and sniffed_html)
    try:
        content, encoding = decode_bytes(data, html=is_html, declared=declared_encoding)
    except DecodeError as exc:  # decode_bytes is total today; kept so a stricter one cannot crash us
        return _reject(source_uri, STAGE_DECODE, UNDECODABLE, str(exc), doc_id=doc_id, raw=data)
    if not content.strip(_INVISIBLE):
        return _reject(
            source_uri,
            STAGE_DECODE,
            EMPTY_INPUT,
            "the input holds no text once decoded",
            doc_id=doc_id,
            raw=data,
        )
    if not is_html and len(content) > config.max_text_chars:
        return _reject(
            source_uri,
            STAGE_READ,
            TOO_LARGE,
            f"the text is {len(content)} characters, over the limit of {config.max_text_chars} "
            "for one article",
            doc_id=doc_id,
        )
    return RawDocument(
        doc_id=doc_id,
        source_uri=source_uri,
        kind=kind,
        content_type="html" if is_html else "text",
        raw=data,
        content=content,
        encoding=encoding,
        url=url,
        fetched_at=fetched_at,
    )


# -- JSONL ------------------------------------------------------------------------------------


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
        yield _reject(path, STAGE_READ, BAD_GZIP, f"corrupt or truncated gzip data in {path}: {exc}")
        return
    magic = _magic_name(head)
    if magic or looks_binary(head):
        # Without this a ZIP or an image named .jsonl would become one bad_json row per "line".
        yield _reject(
            path, STAGE_DECODE, BINARY_CONTENT, f"the file is {magic or 'binary data'}, not JSON lines"
        )
        return
    count = 0
    for outcome in _jsonl_outcomes(path, stream, head, fetched_at, config):
        count += 1
        yield outcome
    if count == 0:  # an empty file must still be accounted for
        yield _reject(path, STAGE_READ, EMPTY_INPUT, "the file holds no JSON records")


def _jsonl_outcomes(
    path: str, stream: IO[bytes], head: bytes, fetched_at: datetime | None, config: ReadConfig
) -> Iterator[RawDocument | Rejection]:
    is_json = path.lower().removesuffix(".gz").endswith(".json")
    enc = bom_encoding(head)
    if is_json or (enc and enc != "utf-8"):
        # A whole-document JSON, or UTF-16/32 lines: these cannot be split on b"\n"; read bounded.
        try:
            whole = _read_bounded(stream, config.max_bytes, config.chunk_bytes)
        except _TooLarge as exc:
            yield _reject(path, STAGE_READ, TOO_LARGE, str(exc))
            return
        except (EOFError, OSError, zlib.error) as exc:
            yield _reject(path, STAGE_READ, BAD_GZIP, f"corrupt or truncated data in {path}: {exc}")
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
            yield _reject(path, STAGE_READ, BAD_GZIP if "gzip" in line.detail else UNREADABLE, line.detail)
            return
        if isinstance(line, _LineTooLong):
            yield _reject(
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
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        line, _ = decode_bytes(raw)  # JSON must be UTF-8; repair what a legacy exporter wrote
    try:
        record = json.loads(line)
    except RecursionError:
        return _reject(where, STAGE_READ, BAD_JSON, f"line {lineno} nests JSON too deeply to parse", raw=raw)
    except ValueError as exc:
        return _reject(where, STAGE_READ, BAD_JSON, f"line {lineno} is not valid JSON: {exc}", raw=raw)
    if not isinstance(record, dict):
        return _reject(
            where,
            STAGE_READ,
            BAD_RECORD,
            f"line {lineno} is a JSON {type(record).__name__}, not an object",
            raw=raw,
        )
    invalid: dict[str, str] = {}
    external_id = _scalar(record, "id", invalid)
    source_uri = f"{path}#{external_id}" if external_id is not None else where
    if external_id is not None:
        if external_id in seen:
            return _reject(
                source_uri,
                STAGE_READ,
                DUPLICATE_RECORD,
                f"line {lineno} repeats id {external_id!r} seen earlier in this file",
                raw=raw,
            )
        seen.add(external_id)
    doc_id = sha256_hex(raw, (external_id or str(lineno)).encode("utf-8", "replace"))
    html, text = record.get("html"), record.get("text")
    body: str | None = None
    content_type = "text"
    if isinstance(html, str) and html.strip():
        body, content_type = html, "html"
    elif isinstance(text, str) and text.strip():
        body = text
    if body is None:
        got = ", ".join(f"{k}: {_type_name(record[k])}" for k in ("text", "html") if k in record) or "neither"
        return _reject(
            source_uri,
            STAGE_READ,
            BAD_RECORD,
            f"line {lineno} has no non-empty string field 'text' or 'html' ({got})",
            doc_id=doc_id,
            raw=raw,
        )
    body = clean_decoded(body)
    if len(body.encode("utf-8", "replace")) > config.max_bytes or (
        content_type == "text" and len(body) > config.max_text_chars
    ):
        limit = config.max_bytes if content_type == "html" else config.max_text_chars
        return _reject(
            source_uri,
            STAGE_READ,
            TOO_LARGE,
            f"line {lineno}: field '{content_type}' has {len(body)} characters, over the limit of {limit}",
            doc_id=doc_id,
        )
    if not body.strip():
        return _reject(
            source_uri,
            STAGE_READ,
            BAD_RECORD,
            f"line {lineno}: the body holds no text",
            doc_id=doc_id,
            raw=raw,
        )
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
        content=body,
        encoding="utf-8",
        external_id=external_id,
        url=fields["url"],
        title=fields["title"],
        published_at=fields["published_at"],
        publisher=fields["publisher"],
        fetched_at=fetched_at,
        extra=_clean_json(extra),
    )


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


# -- URLs, feeds, sitemaps --------------------------------------------------------------------


# Rejections that are not failures: a capture or page that is deliberately not an article or is
# unchanged since the last run. The flow may count them as "skipped" rather than quarantine them.
SKIP_REASONS = frozenset({_http.NOT_MODIFIED, WARC_NOT_HTML, WARC_HTTP_STATUS, WARC_REVISIT})


def read_url(
    url: str, config: ReadConfig = ReadConfig(), *, _depth: int = 0
) -> Iterator[RawDocument | Rejection]:
    """Fetch a page, an RSS/Atom feed or a sitemap. A feed yields one document per linked page.

    Failures become rejections with the fetcher's reason (http_error for a final 4xx,
    http_unavailable after retried 5xx, timeout, redirect_loop, too_large, ...).
    """
    fetcher = _http.fetcher_for(config.http)
    result = fetcher.fetch(url)
    if isinstance(result, _http.FetchFailure):
        yield _url_rejection(result)
        return
    body = result.body
    if body.startswith(_GZIP_MAGIC):
        try:
            body = _read_bounded(
                gzip.GzipFile(fileobj=io.BytesIO(body)), config.max_bytes, config.chunk_bytes
            )
        except _TooLarge as exc:
            yield _reject(url, STAGE_READ, TOO_LARGE, str(exc))
            return
        except (EOFError, OSError, zlib.error) as exc:
            yield _reject(url, STAGE_READ, BAD_GZIP, f"corrupt gzip body from {url}: {exc}")
            return
    kind = _http.feed_kind(body) if result.mime not in _http.HTML_TYPES | _http.TEXT_TYPES else None
    if kind is not None:
        if _depth > config.http.max_sitemap_depth:  # a feed linking feeds linking feeds...
            yield _reject(
                url,
                STAGE_READ,
                _http.BAD_FEED,
                f"feeds nested deeper than {config.http.max_sitemap_depth} levels; not followed",
            )
            return
        yield from _read_feed(url, body, result.final_url, kind, config, _depth)
        return
    if result.mime in _http.FEED_TYPES | _http.GZIP_TYPES:
        yield _reject(
            url,
            STAGE_READ,
            _http.BAD_FEED,
            f"{url} is served as {result.mime} but is not an RSS/Atom feed or a sitemap",
            raw=body,
        )
        return
    kind_name = "txt" if result.mime in _http.TEXT_TYPES else "html"
    doc = document_from_bytes(
        url,
        body,
        kind_name,
        url=result.final_url,
        fetched_at=result.fetched_at,
        declared_encoding=result.charset,
        config=config,
    )
    if isinstance(doc, RawDocument):
        doc = _replace(
            doc,
            kind="url",
            extra={"http_status": result.status, "final_url": result.final_url, "content_type": result.mime},
        )
    yield doc


def _read_feed(
    url: str, body: bytes, base: str, kind: str, config: ReadConfig, depth: int
) -> Iterator[RawDocument | Rejection]:
    feed = _http.parse_feed(body, base, config.http.max_feed_items)
    if isinstance(feed, _http.FetchFailure):
        yield _reject(url, STAGE_READ, feed.reason, f"{url}: {feed.detail}", raw=body[:65536])
        return
    for item in feed.items:
        if feed.kind == "sitemapindex":
            yield from read_url(item.url, config, _depth=depth + 1)
            continue
        for doc in read_url(item.url, config, _depth=depth + 1):
            if isinstance(doc, RawDocument):
                # The feed's title and date are the publisher's own metadata: keep them as hints.
                doc = _replace(
                    doc,
                    title=doc.title or item.title,
                    published_at=doc.published_at or item.published_at,
                    extra={**doc.extra, "feed_url": url},
                )
            yield doc


def _url_rejection(failure: _http.FetchFailure) -> Rejection:
    detail = failure.detail if failure.status is None else f"{failure.detail} [status {failure.status}]"
    return _reject(failure.url, STAGE_READ, failure.reason, detail)


def _replace(doc: RawDocument, **changes: Any) -> RawDocument:
    return RawDocument(**{**doc.__dict__, **changes})


def _reject(
    source_uri: str,
    stage: str,
    reason: str,
    detail: str,
    *,
    doc_id: str | None = None,
    raw: bytes | None = None,
) -> Rejection:
    return Rejection(
        source_uri=display_path(source_uri), stage=stage, reason=reason, detail=detail, doc_id=doc_id, raw=raw
    )
