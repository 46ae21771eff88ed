"""The rows the workers prepare: a batch's documents without their bytes, filled in where the bytes are."""

from __future__ import annotations

import pytest

from newsetl.schemas.records import RawDocument, Rejection
from newsetl.sources.document import document_from_bytes
from newsetl.text.sign import SignConfig, sign_words
from newsetl.warehouse.rows import prepare_batch, with_raw


def doc(name: str, data: bytes) -> RawDocument:
    out = document_from_bytes(f"/in/{name}", data, "txt")
    assert isinstance(out, RawDocument)
    return out


def test_with_raw_fills_each_documents_bytes_and_keeps_the_rest() -> None:
    docs = [doc("a.txt", b"First story.\n"), doc("b.txt", b"Second story.\n"), doc("a2.txt", b"First story.\n")]
    empty = doc("c.txt", b"\x00\x01binary")
    rejected = Rejection(empty.source_uri, "read", "binary_content", "not text", doc_id=empty.doc_id, raw=empty.raw)
    sigs = sign_words([], SignConfig())
    full = prepare_batch(docs, [], sigs, [rejected])
    bare = prepare_batch(docs, [], sigs, [rejected], raw=False)
    assert bare.documents.column("raw").null_count == bare.documents.num_rows == 3  # a and a2: one document
    filled = with_raw(bare, [*docs, empty])
    assert filled.documents.equals(full.documents)
    assert with_raw(full, []) is full  # nothing to fill
    # A document whose bytes are not given is an error, never a row stored without them.
    with pytest.raises(ValueError, match="no bytes for 1 document"):
        with_raw(bare, docs)


def test_stored_json_is_strict_json() -> None:
    """A JSON input may carry NaN and the infinities (Python's json reads them): stored as `NaN` in
    `articles.extra`, the exported JSON failed JSON.parse (a user trial). They are null; documents.raw
    keeps the input's bytes as they were."""
    import json

    from newsetl.warehouse.rows import to_json

    def strict(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    text = to_json({"score": float("nan"), "range": [float("-inf"), 1.5], "meta": {"max": float("inf")}, "n": 2})
    assert json.loads(text, parse_constant=strict) == {"score": None, "range": [None, 1.5], "meta": {"max": None},
                                                       "n": 2}
