"""Discover and read inputs: files, directories, globs, gzip, JSONL, into `RawDocument`s.

Plain Python, no Prefect: the Prefect task in `tasks/ingest.py` only wraps `read_sources`.
Every input ends as a document or a `Rejection` with a reason; nothing is dropped silently.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import json
import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from schemas.records import STAGE_DECODE, STAGE_DISCOVER, STAGE_READ, RawDocument, Rejection
from tasks.sources.decode import DecodeError, decode_bytes, looks_binary

# Rejection reasons (snake_case constants, counted in run summaries).
NOT_FOUND = "not_found"
UNREADABLE = "unreadable"
UNSUPPORTED_KIND = "unsupported_kind"
EMPTY_INPUT = "empty_input"
BINARY_CONTENT = "binary_content"
UNDECODABLE = "undecodable"
BAD_GZIP = "bad_gzip"
TOO_LARGE = "too_large"
BAD_JSON = "bad_json"
BAD_RECORD = "bad_record"
DUPLICATE_RECORD = "duplicate_record"

TEXT_SUFFIXES = {".txt", ".text"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}
KNOWN_FIELDS = {"id", "url", "title", "published_at", "html", "text", "publisher"}


@dataclass(frozen=True)
class ReadConfig:
    # A decompressed input larger than this is refused: bounds gzip bombs and runaway files.
    max_bytes: int = 64 * 1024 * 1024
    # Gzip is inflated in chunks of this size so a bomb is stopped early, not after allocating it all.
    chunk_bytes: int = 1024 * 1024


def sha256_hex(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
        h.update(b"\x00")  # separator, so ("ab","c") and ("a","bc") differ
    return h.hexdigest()


def discover(sources: Iterable[str]) -> tuple[list[str], list[Rejection]]:
    """Expand paths, directories (recursive) and globs into a sorted list of absolute file paths.

    URLs are passed through unchanged (fetched by the HTTP reader). A source that matches nothing is
    a rejection, not a silent no-op: a typo in a schedule's parameters must show up somewhere.
    """
    files: set[str] = set()
    rejections: list[Rejection] = []
    for source in sources:
        if source.startswith(("http://", "https://")):
            files.add(source)
            continue
        matches = glob.glob(source, recursive=True) if glob.has_magic(source) else [source]
        if not matches:
            rejections.append(_reject(source, STAGE_DISCOVER, NOT_FOUND, f"no file matches {source!r}"))
            continue
        for match in matches:
            path = Path(match).absolute()
            if path.is_dir():
                files.update(_walk(path))
            elif path.exists() or path.is_symlink():
                files.add(str(path))
            else:
                rejections.append(_reject(str(path), STAGE_DISCOVER, NOT_FOUND, f"{path} does not exist"))
    return sorted(files), rejections


def _walk(root: Path) -> Iterator[str]:
    # followlinks=False: a symlink loop cannot recurse forever; linked files are still read.
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            if not name.startswith("."):  # editor swap files, .DS_Store: not inputs
                yield str(Path(dirpath, name).absolute())


def kind_of(path: str) -> tuple[str, bool]:
    """Return (kind, gzipped) from the file name: kind is txt | html | jsonl | warc | unknown."""
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
    if suffix in {".warc", ".arc"}:
        return "warc", gz
    return "unknown", gz


def read_path(path: str, config: ReadConfig = ReadConfig()) -> Iterator[RawDocument | Rejection]:
    """Read one file into documents (one for txt/html, one per record for jsonl) or rejections."""
    kind, gz = kind_of(path)
    if kind == "unknown":
        yield _reject(path, STAGE_DISCOVER, UNSUPPORTED_KIND,
                      "not a supported input (.txt, .html, .htm, .jsonl, .json, .warc, optionally .gz)")
        return
    try:
        stat = os.stat(path)
        with open(path, "rb") as fh:
            data = _read_bounded(fh, gz, config)
    except _TooLarge as exc:
        yield _reject(path, STAGE_READ, TOO_LARGE, str(exc))
        return
    except (EOFError, OSError, zlib.error) as exc:
        is_gzip_error = gz and not isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError)
        reason = BAD_GZIP if is_gzip_error else UNREADABLE
        yield _reject(path, STAGE_READ, reason, f"cannot read {path}: {exc}")
        return
    fetched_at = datetime.fromtimestamp(stat.st_mtime, tz=UTC)
    if kind == "jsonl":
        yield from read_jsonl(path, data, fetched_at)
    elif kind == "warc":
        from tasks.sources.warc import read_warc  # optional reader, imported on use

        yield from read_warc(path, data)
    else:
        yield document_from_bytes(path, data, kind, fetched_at=fetched_at)


class _TooLarge(Exception):
    pass


def _read_bounded(fh: Any, gz: bool, config: ReadConfig) -> bytes:
    if not gz:
        data = fh.read(config.max_bytes + 1)
        if len(data) > config.max_bytes:
            raise _TooLarge(f"input is larger than the limit of {config.max_bytes} bytes")
        return bytes(data)
    # Decompress chunk by chunk: a gzip bomb is stopped at max_bytes, never inflated in full.
    out = bytearray()
    with gzip.GzipFile(fileobj=fh) as gzf:
        while chunk := gzf.read(config.chunk_bytes):
            out += chunk
            if len(out) > config.max_bytes:
                raise _TooLarge(f"decompressed input exceeds the limit of {config.max_bytes} bytes")
    return bytes(out)


def document_from_bytes(
    source_uri: str,
    data: bytes,
    kind: str,
    *,
    url: str | None = None,
    fetched_at: datetime | None = None,
    declared_encoding: str | None = None,
) -> RawDocument | Rejection:
    """Decode a whole-file input (txt or html) into a document, or say why it cannot be one."""
    if not data.strip():
        return _reject(source_uri, STAGE_READ, EMPTY_INPUT, "the input is empty or white space only",
                       raw=data)
    doc_id = sha256_hex(data)
    if looks_binary(data):
        return _reject(source_uri, STAGE_DECODE, BINARY_CONTENT,
                       "the input looks binary (NUL bytes or control characters), not text or HTML",
                       doc_id=doc_id, raw=data)
    try:
        content, encoding = decode_bytes(data, html=kind == "html", declared=declared_encoding)
    except DecodeError as exc:
        return _reject(source_uri, STAGE_DECODE, UNDECODABLE, str(exc), doc_id=doc_id, raw=data)
    return RawDocument(
        doc_id=doc_id,
        source_uri=source_uri,
        kind=kind,
        content_type="html" if kind == "html" else "text",
        raw=data,
        content=content,
        encoding=encoding,
        url=url,
        fetched_at=fetched_at,
    )


def read_jsonl(path: str, data: bytes, fetched_at: datetime | None) -> Iterator[RawDocument | Rejection]:
    """One document per JSON record; a broken line is quarantined and the rest still load."""
    try:
        text, _ = decode_bytes(data, html=False)
    except DecodeError as exc:
        yield _reject(path, STAGE_DECODE, UNDECODABLE, str(exc), doc_id=sha256_hex(data), raw=data)
        return
    stripped = text.lstrip()
    if path.lower().removesuffix(".gz").endswith(".json") and stripped.startswith("["):
        yield from _read_json_array(path, text, fetched_at)
        return
    seen: set[str] = set()
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        yield _record_document(path, line, lineno, seen, fetched_at)


def _read_json_array(path: str, text: str, fetched_at: datetime | None) -> Iterator[RawDocument | Rejection]:
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        yield _reject(path, STAGE_READ, BAD_JSON, f"invalid JSON: {exc}", raw=text.encode())
        return
    seen: set[str] = set()
    for index, item in enumerate(items, start=1):
        yield _record_document(path, json.dumps(item, ensure_ascii=False), index, seen, fetched_at)


def _record_document(
    path: str, line: str, lineno: int, seen: set[str], fetched_at: datetime | None
) -> RawDocument | Rejection:
    raw = line.encode("utf-8", "surrogatepass")
    where = f"{path}#{lineno}"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return _reject(where, STAGE_READ, BAD_JSON, f"line {lineno} is not valid JSON: {exc}", raw=raw)
    if not isinstance(record, dict):
        return _reject(where, STAGE_READ, BAD_RECORD,
                       f"line {lineno} is a JSON {type(record).__name__}, not an object", raw=raw)
    rec_id = record.get("id")
    external_id = None if rec_id is None else str(rec_id)
    source_uri = f"{path}#{external_id}" if external_id is not None else where
    if external_id is not None:
        if external_id in seen:
            return _reject(source_uri, STAGE_READ, DUPLICATE_RECORD,
                           f"line {lineno} repeats id {external_id!r} seen earlier in this file", raw=raw)
        seen.add(external_id)
    doc_id = sha256_hex(raw, (external_id or str(lineno)).encode())
    html, text = record.get("html"), record.get("text")
    body = html if isinstance(html, str) and html.strip() else text
    if not isinstance(body, str) or not body.strip():
        return _reject(source_uri, STAGE_READ, BAD_RECORD,
                       f"line {lineno} has no non-empty string field 'text' or 'html'", doc_id=doc_id, raw=raw)
    fields: dict[str, str | None] = {}
    for key in ("url", "title", "published_at", "publisher"):
        value = record.get(key)
        fields[key] = None if value is None else str(value)
    return RawDocument(
        doc_id=doc_id,
        source_uri=source_uri,
        kind="jsonl",
        content_type="html" if body is html else "text",
        raw=raw,
        content=body,
        encoding=None,
        external_id=external_id,
        url=fields["url"],
        title=fields["title"],
        published_at=fields["published_at"],
        publisher=fields["publisher"],
        fetched_at=fetched_at,
        extra={k: v for k, v in record.items() if k not in KNOWN_FIELDS},
    )


def _reject(
    source_uri: str, stage: str, reason: str, detail: str, *, doc_id: str | None = None,
    raw: bytes | None = None,
) -> Rejection:
    return Rejection(source_uri=source_uri, stage=stage, reason=reason, detail=detail, doc_id=doc_id, raw=raw)
