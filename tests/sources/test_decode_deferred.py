"""Decoding left to the process that processes a document (`ReadConfig.defer_decode`): the same
documents and the same rejections as decoding at read, only later and elsewhere."""

from __future__ import annotations

import pytest

from newsetl.schemas.records import RawDocument, Rejection
from newsetl.sources.config import ReadConfig
from newsetl.sources.document import decode_document, decode_pending, document_from_bytes
from newsetl.sources.reasons import EMPTY_INPUT, TOO_LARGE

PAGES = [
    ("utf8.html", "<html><head><meta charset='utf-8'></head><body><p>Crème brûlée à Genève — « oui »</p></body></html>"
     .encode(), "html", None),
    ("latin1.html", "<html><head><meta charset='iso-8859-1'></head><body><p>Übergrößenträger</p></body></html>"
     .encode("latin-1"), "html", None),
    ("declared.txt", "Zürich stimmt ab".encode("cp1252"), "txt", "windows-1252"),
    ("sniffed.txt", b"<!DOCTYPE html><html><body><p>A page saved as .txt</p></body></html>", "txt", None),
    ("bom.txt", "\ufeffA text with a byte-order mark.".encode("utf-8"), "txt", None),
]


@pytest.mark.parametrize(("name", "data", "kind", "declared"), PAGES)
def test_deferred_then_decoded_equals_decoded_at_read(name: str, data: bytes, kind: str,
                                                      declared: str | None) -> None:
    now = document_from_bytes(name, data, kind, declared_encoding=declared)
    later = document_from_bytes(name, data, kind, declared_encoding=declared,
                                config=ReadConfig(defer_decode=True))
    assert isinstance(now, RawDocument) and isinstance(later, RawDocument)
    assert later.content is None and later.encoding is None  # bytes only, until processed
    assert later.raw == now.raw and later.doc_id == now.doc_id and later.content_type == now.content_type
    assert decode_document(later) == now


def test_rejections_come_from_the_decode_step_with_the_same_reasons() -> None:
    deferred = ReadConfig(defer_decode=True, max_text_chars=20)
    empty = "\u200b\u00a0\u3000".encode()  # invisible characters only: no text once decoded
    long_text = b"word " * 10
    ok = b"short text"
    for data, reason in ((empty, EMPTY_INPUT), (long_text, TOO_LARGE)):
        at_read = document_from_bytes("x.txt", data, "txt", config=ReadConfig(max_text_chars=20))
        assert isinstance(at_read, Rejection) and at_read.reason == reason
        pending = document_from_bytes("x.txt", data, "txt", config=deferred)
        assert isinstance(pending, RawDocument)
        later = decode_document(pending, deferred)
        assert isinstance(later, Rejection)
        assert (later.stage, later.reason, later.doc_id, later.raw) == (at_read.stage, at_read.reason,
                                                                        at_read.doc_id, at_read.raw)
    docs = [document_from_bytes(f"{i}.txt", d, "txt", config=deferred) for i, d in enumerate((ok, empty, ok + b"!"))]
    ready, rejected = decode_pending([d for d in docs if isinstance(d, RawDocument)], deferred)
    assert [d.content for d in ready] == ["short text", "short text!"]
    assert [r.source_uri for r in rejected] == ["1.txt"]
