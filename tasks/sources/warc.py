"""WARC reader: HTML response records become documents; other records are skipped and counted."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import datetime

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from schemas.records import STAGE_READ, RawDocument, Rejection
from tasks.sources.decode import looks_binary

BAD_WARC = "bad_warc"
NOT_HTML = "warc_record_not_html"


def _charset(content_type: str) -> str | None:
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            return value.strip("\"' ")
    return None


def read_warc(path: str, data: bytes) -> Iterator[RawDocument | Rejection]:
    # Imported here, not at module level, to keep read.py <-> warc.py free of an import cycle.
    from tasks.sources.read import document_from_bytes, sha256_hex

    try:
        for record in ArchiveIterator(io.BytesIO(data)):
            if record.rec_type != "response":
                continue  # request, metadata, warcinfo records carry no article
            uri = record.rec_headers.get_header("WARC-Target-URI") or ""
            record_id = record.rec_headers.get_header("WARC-Record-ID") or uri
            source_uri = f"{path}#{record_id}"
            ctype = (record.http_headers.get_header("Content-Type") if record.http_headers else "") or ""
            payload = record.content_stream().read()
            if "html" not in ctype.lower() or looks_binary(payload):
                yield Rejection(source_uri=source_uri, stage=STAGE_READ, reason=NOT_HTML,
                                detail=f"WARC response is {ctype or 'untyped'}, not HTML; skipped",
                                doc_id=sha256_hex(payload, record_id.encode()))
                continue
            date = record.rec_headers.get_header("WARC-Date")
            fetched = datetime.fromisoformat(date.replace("Z", "+00:00")) if date else None
            doc = document_from_bytes(source_uri, payload, "html", url=uri or None, fetched_at=fetched,
                                      declared_encoding=_charset(ctype))
            if isinstance(doc, RawDocument):
                doc = RawDocument(**{**doc.__dict__, "doc_id": sha256_hex(payload, record_id.encode()),
                                     "kind": "warc", "external_id": record_id})
            yield doc
    except (ArchiveLoadFailed, ValueError, OSError) as exc:
        yield Rejection(source_uri=path, stage=STAGE_READ, reason=BAD_WARC, detail=f"cannot read WARC: {exc}")
