"""WARC reader: HTML response records become documents; other captures are skipped and counted.

Streams the archive record by record with warcio (Common Crawl, Browsertrix and `wget --warc-file`
archives are gigabytes: never read whole). warcio inflates per-record gzip, undoes chunked transfer
encoding and Content-Encoding, and reads old ARC files as WARC (`arc2warc`).

What becomes what:
- `response` (and `resource`) records of an HTML or plain-text type with a 2xx status: a document.
  The record's target URI is the URL, the WARC-Date the fetch time, the HTTP charset the declared
  encoding.
- A capture served under a type that says nothing (`application/octet-stream` and the like): read when
  its bytes start as HTML, else skipped as not HTML.
- `response` records of another type (images, CSS, scripts, PDFs), non-2xx captures (redirects,
  404 pages) and `revisit` records: a `Rejection` whose reason is in `SKIP_REASONS`, without the
  payload: counted, never silently lost, but the flow may count them as skipped, not quarantined.
- A page capture that holds only part of the page: marked `WARC-Truncated` by the crawler (Common Crawl
  cuts at 1 MiB), a payload shorter than its HTTP Content-Length, or a `206 Partial Content`: quarantined
  as `warc_truncated` with the bytes it holds, never loaded as an article (as `http.py` refuses a body
  shorter than announced).
- A capture without a `WARC-Target-URI` (which WARC requires of it): quarantined as `bad_warc` with its
  bytes; the records after it are read.
- `request`, `metadata`, `warcinfo`, `conversion`, `continuation` records: bookkeeping of the
  crawler, not captures of anything; ignored.
- A corrupt or truncated archive: the records before the damage are kept and one `bad_warc`
  rejection says where reading stopped.
"""

from __future__ import annotations

import io
import os
import zlib
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed
from warcio.recordloader import ArcWarcRecordLoader

from newsetl.schemas.records import STAGE_READ, RawDocument, Rejection
from newsetl.sources.config import ReadConfig
from newsetl.sources.document import document_from_bytes, starts_as_html
from newsetl.sources.files import GZIPMAGIC, sha256_hex
from newsetl.sources.http import parse_content_type
from newsetl.sources.reasons import (
    EMPTY_INPUT,
    SKIP_REASONS,
    TOO_LARGE,
    WARC_BAD,
    WARC_HTTP_STATUS,
    WARC_NOT_HTML,
    WARC_REVISIT,
    WARC_TRUNCATED,
)

# Short names of the WARC reasons (reasons.py holds them with every other reason).
BAD_WARC = WARC_BAD
NOT_HTML = WARC_NOT_HTML
HTTP_STATUS = WARC_HTTP_STATUS
REVISIT = WARC_REVISIT
TRUNCATED = WARC_TRUNCATED
__all__ = ["BAD_WARC", "HTTP_STATUS", "NOT_HTML", "REVISIT", "SKIP_REASONS", "TRUNCATED", "read_warc"]

_DOCUMENT_TYPES = ("text/html", "application/xhtml+xml", "text/plain")
# Content types that say nothing about the bytes: a misconfigured server sends its pages as one of them (or
# none). Such a capture is read when its bytes are HTML, and skipped as not HTML otherwise (an image, a zip).
_GENERIC_TYPES = frozenset({"application/octet-stream", "binary/octet-stream", "application/unknown",
                            "unknown/unknown", "application/x-unknown", "content/unknown"})
_IGNORED = frozenset({"request", "metadata", "warcinfo", "conversion", "continuation"})
# Records that capture something at a URI: the WARC standard requires their WARC-Target-URI.
_CAPTURES = frozenset({"response", "resource", "revisit"})


class _RecordLoader(ArcWarcRecordLoader):
    """warcio's record loader, except that a record without WARC-Target-URI is one bad record, not the end.

    warcio 1.8 calls `uri.startswith` on the missing header while it reads the record's HTTP headers, inside
    its iterator's generator: the AttributeError ends the generator, and every record after it was lost
    (an unmerged warcio bug). Such a record comes out here without HTTP headers and is refused on its own.
    """

    def load_http_headers(self, rec_type: str | None, uri: str | None, stream: Any, length: int | None) -> Any:
        if uri is None and rec_type in self.HTTP_RECORDS and length != 0:  # where warcio reads the uri
            if length is None:
                # Without Content-Length either, nothing says where the record ends and the next begins.
                raise ArchiveLoadFailed(
                    "damaged WARC headers: a record with neither WARC-Target-URI nor Content-Length"
                )
            return None  # the stream is bounded to the record's length: the next record is found as usual
        return super().load_http_headers(rec_type, uri, stream, length)


class _Archive(ArchiveIterator):
    """warcio's ArchiveIterator (ARC read as WARC) reading records with `_RecordLoader`."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__(stream, arc2warc=True)
        self.loader = _RecordLoader(verify_http=False, arc2warc=True)  # the arguments warcio's own gets


def _fetch_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None  # a malformed WARC-Date loses the fetch time, not the document


def read_warc(
    path: str, source: bytes | IO[bytes], config: ReadConfig | None = None
) -> Iterator[RawDocument | Rejection]:
    """Documents and skip/failure rejections of one WARC/ARC file (plain or gzipped)."""
    config = config or ReadConfig()
    stream = io.BufferedReader(io.BytesIO(source)) if isinstance(source, bytes | bytearray) else source
    size = _size(stream)
    start = _head(stream)
    if start is not None and not start.startswith(_WARC_STARTS):
        # warcio would try to read any text as an old ARC file and yield nonsense records.
        if not start.strip():
            yield Rejection(source_uri=path, stage=STAGE_READ, reason=EMPTY_INPUT, detail="the file is empty")
        else:
            yield _bad(path, 0, f"not a WARC or ARC file (it starts with {start[:24]!r})")
        return
    records = 0
    archive = _Archive(stream)
    iterator = iter(archive)
    while True:
        try:
            record = next(iterator)
        except StopIteration:
            break
        except Exception as exc:  # warcio raises many types on damaged archives; all mean "stop here"
            # Its own errors say what it found; any other (an AttributeError on a header line it could not
            # parse: an audit) is warcio tripping over damage, said as such, with the error for a bug report.
            why = (f"{type(exc).__name__}: {exc}" if type(exc).__module__.startswith("warcio")
                   else f"damaged WARC headers (warcio: {type(exc).__name__}: {exc})")
            yield _bad(path, records, why)
            return
        records += 1
        try:
            outcome = _record_outcome(path, record, records, config)
        except Exception as exc:  # a corrupt payload (bad chunking, bad gzip) spoils one record only
            outcome = Rejection(
                source_uri=f"{path}#record-{records}",
                stage=STAGE_READ,
                reason=BAD_WARC,
                detail=f"record {records} is corrupt: {type(exc).__name__}: {exc}",
            )
        if outcome is not None:
            yield outcome
    if records == 0:
        yield Rejection(
            source_uri=path, stage=STAGE_READ, reason=EMPTY_INPUT, detail="the file holds no WARC records"
        )
    elif size is not None and archive.offset < size:
        # warcio stops quietly at a truncated gzip member: unread bytes at the end are the only trace.
        yield _bad(
            path,
            records,
            f"{size - archive.offset} bytes at the end are not a readable record (truncated or corrupt)",
        )


_WARC_STARTS = (b"WARC/", b"filedesc://")


def _head(stream: IO[bytes]) -> bytes | None:
    """The first bytes of the archive, inflated if gzipped; None when the stream cannot peek."""
    peek = getattr(stream, "peek", None)
    if peek is None:
        return None
    head = bytes(peek(4096)[:4096])
    if head.startswith(GZIPMAGIC):
        try:
            head = zlib.decompressobj(wbits=47).decompress(head, 64)
        except zlib.error:
            return GZIPMAGIC + b" (corrupt gzip)"
    return head[:64]


def _bad(path: str, records: int, why: str) -> Rejection:
    where = f"after {records} records" if records else "at the first record"
    return Rejection(
        source_uri=path, stage=STAGE_READ, reason=BAD_WARC, detail=f"WARC unreadable {where}: {why}"
    )


def _size(stream: IO[bytes]) -> int | None:
    try:
        return os.fstat(stream.fileno()).st_size
    except (AttributeError, OSError, io.UnsupportedOperation):
        if isinstance(stream, io.BytesIO):
            return len(stream.getbuffer())
        return None


def _record_outcome(
    path: str, record: Any, number: int, config: ReadConfig
) -> RawDocument | Rejection | None:
    if record.rec_type is None or record.rec_headers is None:
        # "WARC/1.0" and then no header warcio can read: it passed this on as a record of no type, which
        # was counted as a skipped capture (or failed on its missing headers), with no quarantine row.
        return Rejection(source_uri=f"{path}#record-{number}", stage=STAGE_READ, reason=BAD_WARC,
                         detail=f"record {number} has no WARC-Type header: damaged, or not a WARC record")
    if record.rec_type in _IGNORED:
        return None
    headers = record.rec_headers
    uri = (headers.get_header("WARC-Target-URI") or "").strip().strip("<>")
    record_id = (headers.get_header("WARC-Record-ID") or "").strip().strip("<>") or f"record-{number}"
    source_uri = f"{path}#{record_id}"
    if record.rec_type in _CAPTURES and not (headers.get_header("Content-Length") or "").strip().isdigit():
        # Nothing says where the record ends, so warcio reads to the end of the file (of its gzip member in a
        # .warc.gz): every record after it became part of this one's page (a user trial). Refused with those
        # bytes, said as what it is.
        return _refuse(
            record, source_uri, uri, BAD_WARC,
            f"{record.rec_type} record {number} ({uri or record_id}) has no valid Content-Length: where it ends "
            "cannot be told (in an uncompressed WARC every record after it is read as part of it, and refused "
            "with it); refused with its bytes",
            config, keep=True,
        )
    if not uri and record.rec_type in _CAPTURES:
        # A capture of no known URL: not an article anyone can cite or deduplicate by URL, and a sign of a
        # damaged or hand-edited archive. Its bytes (HTTP headers unparsed, see _RecordLoader) go along.
        return _refuse(
            record, source_uri, uri, BAD_WARC,
            f"{record.rec_type} record {number} ({record_id}) has no WARC-Target-URI: "
            "the URL it captured is unknown (damaged or not a valid WARC record); refused",
            config, keep=True,
        )
    ctype, skip = _classify(record, uri)
    if skip is not None:
        # warcio reads through the skipped payload anyway to reach the next record; draining it
        # here costs nothing more and is the only way to notice that it was cut off.
        return _refuse(record, source_uri, uri, skip[0], skip[1], config, keep=False)
    partial = _partial(record, uri)
    if partial is not None:
        # Half a page would load as a short article with a cut tag in its body: quarantined with what it
        # holds, so that it is seen, as http.py refuses a body shorter than announced.
        return _refuse(record, source_uri, uri, TRUNCATED, partial, config, keep=True)
    payload = record.content_stream().read(config.max_bytes + 1)
    if len(payload) > config.max_bytes:
        return Rejection(
            source_uri=source_uri,
            stage=STAGE_READ,
            reason=TOO_LARGE,
            detail=f"payload of {uri} is over the limit of {config.max_bytes} bytes",
            url=uri or None,
        )
    rest, missing = _drain(record, config.max_bytes - len(payload))
    if missing:
        return _truncated(source_uri, uri, missing, None if rest is None else b"".join([payload, *rest]))
    mime = ctype.split(";")[0].strip().lower()
    if mime in _GENERIC_TYPES and not starts_as_html(payload):
        return Rejection(source_uri=source_uri, stage=STAGE_READ, reason=NOT_HTML,
                         detail=f"capture of {uri} is {mime} and its bytes do not start as HTML; skipped")
    doc_id = sha256_hex(payload, record_id.encode("utf-8", "replace"))
    doc = document_from_bytes(
        source_uri,
        payload,
        "txt" if mime == "text/plain" else "html",
        url=uri or None,
        fetched_at=_fetch_time(headers.get_header("WARC-Date")),
        declared_encoding=parse_content_type(ctype)[1],
        config=config,
        doc_id=doc_id,
    )
    if isinstance(doc, RawDocument):
        return RawDocument(**{**doc.__dict__, "kind": "warc", "external_id": record_id})
    return doc


def _classify(record: Any, uri: str) -> tuple[str, tuple[str, str] | None]:
    """(content type, None) for a capture to read, or (content type, (skip reason, detail))."""
    rec_type = record.rec_type
    if rec_type == "revisit":
        return "", (REVISIT, f"revisit record for {uri}: a duplicate capture without payload; skipped")
    if rec_type not in {"response", "resource"}:
        return "", (NOT_HTML, f"WARC {rec_type} record; skipped")
    http_headers = record.http_headers if rec_type == "response" else None
    if http_headers is not None:
        ctype = http_headers.get_header("Content-Type") or ""
        status = http_headers.get_statuscode() or ""
        if not status.startswith("2"):
            return ctype, (HTTP_STATUS, f"capture of {uri} has HTTP status {status or 'unknown'}; skipped")
    else:
        ctype = record.rec_headers.get_header("Content-Type") or ""
    mime = ctype.split(";")[0].strip().lower()
    if mime and mime not in _DOCUMENT_TYPES and mime not in _GENERIC_TYPES:
        return ctype, (NOT_HTML, f"capture of {uri} is {mime}, not HTML or text; skipped")
    return ctype, None


def _partial(record: Any, uri: str) -> str | None:
    """Why a page capture holds only part of the page, or None when nothing says it does."""
    truncated = record.rec_headers.get_header("WARC-Truncated")
    if truncated is not None:  # "length", "time", "disconnect", "unspecified": any value means cut off
        return (f"capture of {uri} is marked WARC-Truncated: {truncated.strip() or 'unspecified'} "
                "by its crawler: part of the page; refused")
    http_headers = record.http_headers if record.rec_type == "response" else None
    if http_headers is None:
        return None
    if http_headers.get_statuscode() == "206":
        return f"capture of {uri} is HTTP 206 Partial Content: a byte range, not the whole page; refused"
    # Content-Length counts the bytes sent, before Content-Encoding is undone; warcio's payload_length counts
    # the payload as stored, also still encoded (it inflates only in content_stream), so the two compare. With
    # chunked transfer encoding the stored bytes include the chunk framing and Content-Length means nothing.
    # A crawler that stored the body decoded (a few do) stored more than was announced: not taken for a cut.
    announced = (http_headers.get_header("Content-Length") or "").strip()
    chunked = "chunked" in (http_headers.get_header("Transfer-Encoding") or "").lower()
    stored = int(record.payload_length)
    if announced.isdigit() and not chunked and 0 <= stored < int(announced):
        return (f"capture of {uri} holds {stored} of the {int(announced)} bytes its HTTP Content-Length "
                "announced: cut off; refused")
    return None


def _refuse(
    record: Any, source_uri: str, uri: str, reason: str, detail: str, config: ReadConfig, *, keep: bool
) -> Rejection:
    """A rejection of the record, its payload read to the end (with it when `keep` and within the read limit);
    a record the file holds only part of is `_truncated` instead, whatever the reason was."""
    kept, missing = _drain(record, config.max_bytes)
    raw = None if kept is None else b"".join(kept)
    if missing:
        return _truncated(source_uri, uri, missing, raw)
    return Rejection(source_uri=source_uri, stage=STAGE_READ, reason=reason, detail=detail,
                     raw=raw if keep else None, url=uri or None)


def _drain(record: Any, keep: int) -> tuple[list[bytes] | None, int]:
    """Read the rest of the record: (its blocks if they hold at most `keep` bytes, else None; how many bytes
    it promised but the file did not hold). The blocks are what a truncated record's quarantine row keeps."""
    raw = record.raw_stream
    kept: list[bytes] | None = []
    size = 0
    while block := raw.read(1 << 20):
        size += len(block)
        if kept is not None and size <= keep:
            kept.append(block)
        else:
            kept = None
    return kept, int(getattr(raw, "limit", 0) or 0)


def _truncated(source_uri: str, uri: str, missing: int, raw: bytes | None) -> Rejection:
    # The record promised more bytes than the file holds: a cut-off download or a damaged disk. The bytes it
    # did hold go with the rejection (the WARC record's payload as stored, within the read limit).
    return Rejection(
        source_uri=source_uri,
        stage=STAGE_READ,
        reason=BAD_WARC,
        detail=f"record for {uri or source_uri} is truncated: {missing} bytes missing",
        raw=raw,
        url=uri or None,
    )
