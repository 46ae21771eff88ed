"""Read one input into `RawDocument`s or `Rejection`s: the dispatch over the kinds of input.

Plain Python, no Prefect: `tasks/ingest.py` wraps `discover` and `read_path` (a Prefect task per group of
small files; a large file streamed in pieces by `read_pieces`).
Every input ends as a document or a `Rejection` with a reason; nothing is dropped silently and no
input, however broken, makes these functions raise.

Limits are per *document*, not per file: a JSONL dump or a WARC of several GB is streamed record
by record (memory bounded by one record), while a single .txt/.html file, one JSONL line, one WARC
payload and one HTTP body are each refused above `ReadConfig.max_bytes`.
"""

from __future__ import annotations

import gzip
import traceback
import zlib
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import IO

from newsetl.schemas.records import STAGE_DISCOVER, STAGE_READ, RawDocument, Rejection
from newsetl.sources.config import ReadConfig
from newsetl.sources.discover import kind_of
from newsetl.sources.document import document_from_bytes
from newsetl.sources.files import Refused, TooLarge, maybe_gunzip, open_regular, read_bounded
from newsetl.sources.jsonl import read_jsonl
from newsetl.sources.reasons import (
    BAD_GZIP,
    READ_ERROR,
    TOO_LARGE,
    UNREADABLE,
    UNSUPPORTED_KIND,
    display_path,
    reject,
)
from newsetl.sources.urls import read_url


def read_path(path: str, config: ReadConfig = ReadConfig()) -> Iterator[RawDocument | Rejection]:
    """Read one input into documents (one per txt/html/URL page, one per JSONL/WARC record or feed
    item) or rejections. A generator: a multi-GB container is streamed, never held whole.

    Never raises for anything the input contains or for the file system misbehaving (vanished,
    unreadable, special files). An error nothing below foresaw (a bug met on this input) ends this
    input only: what it gave before stands, and a `read_error` refusal says where it was raised.
    """
    try:
        yield from _read_path(path, config)
    except Exception as exc:
        # One page's charset="base64" raised LookupError here and ended the whole run (a user trial):
        # whatever the input, the run goes on with the next one.
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        at = f" (at {where.filename}:{where.lineno})" if where else ""
        yield reject(display_path(path), STAGE_READ, READ_ERROR,
                     f"reading stopped on an unexpected error: {type(exc).__name__}: {exc}{at}")


def _read_path(path: str, config: ReadConfig) -> Iterator[RawDocument | Rejection]:
    uri = display_path(path)
    kind, _ = kind_of(path)  # gzip is recognised by its bytes, not by the name
    if kind == "url":
        yield from read_url(path, config)
        return
    if kind == "unknown":
        yield reject(
            uri,
            STAGE_DISCOVER,
            UNSUPPORTED_KIND,
            "not a supported input (.txt, .html, .htm, .jsonl, .json, .warc, optionally .gz)",
        )
        return
    try:
        fh, st = open_regular(path)
    except Refused as refused:
        yield refused.rejection
        return
    with fh:
        fetched_at = datetime.fromtimestamp(st.st_mtime, tz=UTC)
        if kind in ("txt", "html") and _is_warc(fh):
            # A WARC saved under another name (`crawl.txt`) loaded as one "article" holding every record and
            # its headers (a user trial): the bytes say what it is.
            kind = "warc"
        if kind == "warc":
            from newsetl.sources.warc import read_warc  # warcio is imported only when a WARC is read

            yield from _with_file_bytes(read_warc(uri, fh, config), uri, fh, config.max_bytes)
            return
        try:
            stream = maybe_gunzip(fh)
        except OSError as exc:
            yield reject(uri, STAGE_READ, UNREADABLE, f"cannot read {uri}: {exc}")
            return
        if kind == "jsonl":
            yield from _with_file_bytes(read_jsonl(uri, stream, fetched_at, config), uri, fh, config.max_bytes)
            return
        try:
            data = read_bounded(stream, config.max_bytes, config.chunk_bytes)
        except TooLarge as exc:
            yield reject(uri, STAGE_READ, TOO_LARGE, str(exc))
            return
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            # The file's own bytes go with the rejection (within the limit), as every refused input's do.
            yield reject(uri, STAGE_READ, BAD_GZIP, f"corrupt or truncated gzip data in {uri}: {exc}",
                         raw=_bytes_on_disk(fh, config.max_bytes))
            return
        except OSError as exc:
            yield reject(uri, STAGE_READ, UNREADABLE, f"cannot read {uri}: {exc}")
            return
        yield document_from_bytes(uri, data, kind, fetched_at=fetched_at, config=config)


def _is_warc(fh: IO[bytes]) -> bool:
    """Do the file's bytes (gzipped or not) start as a WARC record? The file is left at its start."""
    try:
        head = fh.read(512)
        fh.seek(0)
    except OSError:
        return False  # the read below meets it again and says so (unreadable)
    if head[:2] == b"\x1f\x8b":
        try:
            head = zlib.decompressobj(31).decompress(head, 16)
        except zlib.error:
            return False
    # The version line and a WARC- header after it: a text that begins "WARC/1.0 is a format..." is text.
    return head.startswith(b"WARC/") and b"\nWARC-" in head


def _with_file_bytes(outcomes: Iterator[RawDocument | Rejection], uri: str, fh: IO[bytes],
                     limit: int) -> Iterator[RawDocument | Rejection]:
    """A container's outcomes, its rejections of the whole file (a WARC that is not one, a JSON array cut
    off, a read error) with the file's bytes as stored, within `limit`: the records before the failure
    are documents of their own, but what came after them was in no row (an audit found raw NULL)."""
    for outcome in outcomes:
        if (isinstance(outcome, Rejection) and outcome.raw is None and outcome.source_uri == uri
                and outcome.reason != TOO_LARGE):
            at = fh.tell()
            outcome = replace(outcome, raw=_bytes_on_disk(fh, limit))
            fh.seek(at)  # where the reader was, should it read on
        yield outcome


def _bytes_on_disk(fh: IO[bytes], limit: int) -> bytes | None:
    """The whole file as stored (None when it is over `limit` or cannot be read again)."""
    try:
        fh.seek(0)
        data = fh.read(limit + 1)
    except OSError:
        return None
    return data if len(data) <= limit else None
