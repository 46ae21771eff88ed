"""One whole document from bytes (a .txt/.html file, a WARC payload, an HTTP body): checked and decoded.

Every refusal is a `Rejection` with a reason, and the bytes are kept on it where we have them.
"""

from __future__ import annotations

import codecs
import dataclasses
from collections.abc import Sequence
from datetime import datetime

from newsetl.schemas.records import STAGE_DECODE, STAGE_READ, RawDocument, Rejection
from newsetl.sources.config import ReadConfig
from newsetl.sources.decode import DecodeError, decode_bytes, looks_binary
from newsetl.sources.files import inflate, magic_name, sha256_hex
from newsetl.sources.reasons import BINARY_CONTENT, EMPTY_INPUT, TOO_LARGE, UNDECODABLE, reject

# White space plus the invisible characters str.strip() keeps: a file of only these holds no text.
_INVISIBLE = (
    " \t\n\r\f\v\x1c\x1d\x1e\x1f\x85\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u200b\u200c\u200d\u2028\u2029\u202f\u205f\u2060\u3000\ufeff"
)
_HTML_START = (b"<!doctype html", b"<html")


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
    data_or_rejection = _bytes_to_read(source_uri, data, config)
    if isinstance(data_or_rejection, Rejection):
        return data_or_rejection
    data = data_or_rejection
    doc_id = doc_id or sha256_hex(data)
    binary = _binary_rejection(source_uri, data, doc_id)
    if binary is not None:
        return binary
    sniffed_html = data.removeprefix(codecs.BOM_UTF8).lstrip()[:20].lower().startswith(_HTML_START)
    is_html = kind == "html" or (kind in {"txt", "url", "warc"} and sniffed_html)
    doc = RawDocument(
        doc_id=doc_id,
        source_uri=source_uri,
        kind=kind,
        content_type="html" if is_html else "text",
        raw=data,
        content=None,
        url=url,
        fetched_at=fetched_at,
        declared_encoding=declared_encoding,
    )
    return doc if config.defer_decode else decode_document(doc, config)


def decode_document(doc: RawDocument, config: ReadConfig | None = None) -> RawDocument | Rejection:
    """`doc` with its bytes decoded (`content` and `encoding` set), or why it holds no article text.
    A document already decoded (or given as str, as a JSONL record's text is) is returned as it is."""
    if doc.content is not None:
        return doc
    config = config or ReadConfig()
    try:
        content, encoding = decode_bytes(doc.raw, html=doc.content_type == "html", declared=doc.declared_encoding)
    except DecodeError as exc:  # decode_bytes is total today; kept so a stricter one cannot crash us
        return reject(doc.source_uri, STAGE_DECODE, UNDECODABLE, str(exc), doc_id=doc.doc_id, raw=doc.raw)
    if not content.strip(_INVISIBLE):
        return reject(doc.source_uri, STAGE_DECODE, EMPTY_INPUT, "the input holds no text once decoded",
                      doc_id=doc.doc_id, raw=doc.raw)
    if doc.content_type != "html" and len(content) > config.max_text_chars:
        return reject(doc.source_uri, STAGE_READ, TOO_LARGE,
                      f"the text is {len(content)} characters, over the limit of {config.max_text_chars} "
                      "for one article", doc_id=doc.doc_id)
    return dataclasses.replace(doc, content=content, encoding=encoding)


def decode_pending(docs: Sequence[RawDocument],
                   config: ReadConfig | None = None) -> tuple[list[RawDocument], list[Rejection]]:
    """`decode_document` over a batch: the documents ready to process, in order, and the rejections of
    those that hold no article text."""
    ready: list[RawDocument] = []
    rejected: list[Rejection] = []
    for doc in docs:
        out = decode_document(doc, config)
        if isinstance(out, RawDocument):
            ready.append(out)
        else:
            rejected.append(out)
    return ready, rejected


def _bytes_to_read(source_uri: str, data: bytes, config: ReadConfig) -> bytes | Rejection:
    """The document's bytes within the size limit, inflated if they are gzip, and not empty."""
    if len(data) > config.max_bytes:
        return reject(source_uri, STAGE_READ, TOO_LARGE,
                      f"the input is {len(data)} bytes, over the limit of {config.max_bytes}")
    inflated = inflate(data, config.max_bytes, config.chunk_bytes, source_uri)
    if isinstance(inflated, Rejection):
        return inflated
    if not inflated.removeprefix(codecs.BOM_UTF8).strip():
        return reject(source_uri, STAGE_READ, EMPTY_INPUT, "the input is empty or white space only", raw=inflated)
    return inflated


def _binary_rejection(source_uri: str, data: bytes, doc_id: str) -> Rejection | None:
    """A rejection for bytes that are an image, an archive or otherwise not text; None for text."""
    magic = magic_name(data)
    if magic:
        return reject(source_uri, STAGE_DECODE, BINARY_CONTENT, f"the input is {magic}, not text or HTML",
                      doc_id=doc_id, raw=data)
    if looks_binary(data):
        return reject(source_uri, STAGE_DECODE, BINARY_CONTENT,
                      "the input looks binary (NUL bytes, control characters, or no text after a UTF-16/32 byte-order "
                      "mark), not text or HTML",
                      doc_id=doc_id, raw=data)
    return None
