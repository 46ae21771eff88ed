"""The warehouse's rows as Arrow tables, built where the CPU is: no DuckDB here.

The ingest's worker processes build a batch's tables (`prepare_batch`) and the writer only appends them
(`newsetl.warehouse.load`). This module is what the workers import of the warehouse: with the tables'
schemas and pyarrow only, a worker (and the fork server every worker starts from) does not load DuckDB,
which it never uses (~26 MB of resident memory in each of those processes).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from newsetl.schemas.records import Article, RawDocument, Rejection
from newsetl.schemas.tables import ARTICLES, DOCUMENTS, QUARANTINE, REMOVALS, Table, arrow_schema
from newsetl.text.learned import COUNTED_REMOVALS, LearnedConfig, line_sightings, publisher_key
from newsetl.text.sign import Signatures, body_hash, concat_signatures


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_json(value: Any) -> str:
    """`value` as strict JSON text: NaN and the infinities (which a JSON input may carry and Python's json
    reads) become null. Written as `NaN`, an `articles.extra` exported as JSON failed JSON.parse and every
    strict reader (a user trial); the input's own bytes, NaN and all, stay in `documents.raw`."""
    return json.dumps(_finite(value), ensure_ascii=False, sort_keys=True, default=str, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def occurrence_keys(parts: Iterable[Sequence[str]]) -> list[str]:
    """A sha256 key per item of `parts`; the n-th repeat of the same parts (n >= 1) gets n in its key.

    The first occurrence hashes its parts alone, so keys written before occurrences existed (one per
    distinct parts) stay what they were.
    """
    seen: Counter[tuple[str, ...]] = Counter()
    keys: list[str] = []
    for item in parts:
        t = tuple(item)
        n = seen[t]
        seen[t] += 1
        key = "\x00".join(t) if n == 0 else "\x00".join((*t, f"#{n}"))
        keys.append(hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest())
    return keys


def quarantine_ids(rejections: Sequence[Rejection]) -> list[str]:
    # Deterministic, so a re-run that meets the same bad input records nothing new; the n-th rejection
    # of one kind from one source (three records sharing an id in one file) has n in its key, so no
    # two rejections of a batch collide (they all used to get one key, and one row).
    return occurrence_keys((r.source_uri, r.stage, r.reason, r.doc_id or "") for r in rejections)


def clean_str(value: str | None) -> str | None:
    # Lone surrogates cannot be stored as UTF-8: replace, don't crash the batch. The readers already
    # replace them in what they read (sources.decode); this is the storage side's own guard, for values
    # made elsewhere (a file name escaped for display, a caller of the load API).
    if value is None:
        return None
    return value.encode("utf-8", "replace").decode("utf-8") if _has_surrogate(value) else value


def _has_surrogate(value: str) -> bool:
    try:
        value.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


def rows_table(table: Table, rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """An Arrow table of `rows` (one mapping per row, keyed by column name) against the table's schema."""
    schema = arrow_schema(table)
    return pa.table({name: [row[name] for row in rows] for name in schema.names}, schema=schema)


def documents_table(docs: Sequence[RawDocument], rejections: Sequence[Rejection], run_id: str,
                    raw: bool = True) -> pa.Table:
    """`raw=False`: the `raw` column is left empty (null), for `with_raw` to fill where the bytes are."""
    rows: dict[str, dict[str, Any]] = {}  # doc_id -> row: the same bytes twice are one document
    for d in docs:
        rows.setdefault(d.doc_id, {
            "doc_id": d.doc_id, "source_uri": clean_str(d.source_uri), "kind": d.kind,
            "content_type": d.content_type, "encoding": d.encoding, "raw": d.raw if raw else None,
            "bytes": len(d.raw),
            "external_id": clean_str(d.external_id), "url": clean_str(d.url), "fetched_at": d.fetched_at,
            "first_run_id": run_id})
    # A rejected input whose bytes we have is kept too: nothing lost, and its doc_id marks it known.
    for r in rejections:
        if r.doc_id and r.raw is not None:
            rows.setdefault(r.doc_id, {
                "doc_id": r.doc_id, "source_uri": clean_str(r.source_uri), "kind": "rejected",
                "content_type": None, "encoding": None, "raw": r.raw if raw else None, "bytes": len(r.raw),
                "external_id": None,
                "url": None, "fetched_at": None, "first_run_id": run_id})
    return rows_table(DOCUMENTS, list(rows.values()))


def articles_table(articles: Sequence[Article], hashes: Sequence[str], run_id: str) -> pa.Table:
    """`hashes`: the body_hash of each article's body (mostly its signature's, computed where it was signed)."""
    if len(hashes) != len(articles):
        raise ValueError(f"{len(articles)} articles but {len(hashes)} body hashes")
    rows = [{
        "article_id": a.article_id, "doc_id": a.doc_id, "source_uri": clean_str(a.source_uri),
        "external_id": clean_str(a.external_id), "url": clean_str(a.url),
        "publisher": clean_str(a.publisher), "original_publisher": clean_str(a.original_publisher),
        "title": clean_str(a.title), "subtitle": clean_str(a.subtitle), "byline": clean_str(a.byline),
        "published_at": a.published_at, "fetched_at": a.fetched_at, "language": a.language,
        "body": clean_str(a.body), "word_count": a.word_count, "content_type": a.content_type,
        "body_hash": digest, "repairs": to_json(dict(a.repairs)),
        "extra": to_json(dict(a.extra)) if a.extra else None, "run_id": run_id,
        # The outlet is resolved against the warehouse's alias table at load (resolve_publishers).
        "publisher_raw": clean_str(a.publisher), "publisher_key": None,
    } for a, digest in zip(articles, hashes, strict=True)]
    return rows_table(ARTICLES, rows)


def removals_table(articles: Sequence[Article], run_id: str) -> pa.Table:
    rows = [{"article_id": a.article_id, "seq": seq, "category": r.category, "rule": r.rule,
             "text": clean_str(r.text), "position": r.position, "run_id": run_id, "offset_in": r.offset_in}
            for a in articles for seq, r in enumerate(a.removals)]
    return rows_table(REMOVALS, rows)


def quarantine_table(rejections: Sequence[Rejection], run_id: str) -> pa.Table:
    now = utc_now()
    rows: dict[str, dict[str, Any]] = {}
    for qid, r in zip(quarantine_ids(rejections), rejections, strict=True):
        rows.setdefault(qid, {
            "quarantine_id": qid, "source_uri": clean_str(r.source_uri), "doc_id": r.doc_id, "run_id": run_id,
            "stage": r.stage, "reason": r.reason, "detail": clean_str(r.detail), "raw": r.raw,
            "quarantined_at": now, "url": clean_str(r.url)})
    return rows_table(QUARANTINE, list(rows.values()))


# The run_id of rows built before the writer knows the run (in worker processes): set when appended.
_RUN = ""


@dataclass(frozen=True)
class PreparedBatch:
    """One batch as the Arrow tables the writer appends, built where the CPU is (`prepare_batch`, in the
    ingest's worker processes): the writer does no per-row Python work but putting in the documents'
    bytes, which it holds already (`with_raw`). Row i of `articles` is signed by
    row i of `signatures`. run_id columns are filled in when the batch is loaded."""

    documents: pa.Table
    articles: pa.Table
    removals: pa.Table
    quarantine: pa.Table
    sightings: pa.Table  # learned-boilerplate line sightings of the articles (cluster_id filled on load)
    signatures: Signatures

    @staticmethod
    def concat(parts: Sequence[PreparedBatch]) -> PreparedBatch:
        """Row-wise concatenation (a batch prepared in chunks by several workers); `parts` not empty."""
        if len(parts) == 1:
            return parts[0]
        return PreparedBatch(
            documents=pa.concat_tables([p.documents for p in parts]),
            articles=pa.concat_tables([p.articles for p in parts]),
            removals=pa.concat_tables([p.removals for p in parts]),
            quarantine=pa.concat_tables([p.quarantine for p in parts]),
            sightings=pa.concat_tables([p.sightings for p in parts]),
            signatures=concat_signatures([p.signatures for p in parts]),
        )


def prepare_batch(docs: Sequence[RawDocument], articles: Sequence[Article], signatures: Signatures,
                  rejections: Sequence[Rejection], learned: LearnedConfig | None = None,
                  raw: bool = True) -> PreparedBatch:
    """Build a batch's Arrow tables (pure: no warehouse). Repeated article ids keep their first row.
    `raw=False`: the documents' bytes are not copied into the tables (see `with_raw`)."""
    unique: dict[str, int] = {}
    for i, art in enumerate(articles):
        unique.setdefault(art.article_id, i)
    if len(unique) != len(articles):
        idx = sorted(unique.values())
        articles = [articles[i] for i in idx]
        signatures = signatures.take(idx)
    # What learned boilerplate counts: the body as the patterns left it, with the lines the learned pass
    # and the line model took from it (COUNTED_REMOVALS; the same text `record_articles` reads back from a
    # stored article).
    bodies = []
    for a in articles:
        learned_lines = [r.text for r in a.removals if r.category in COUNTED_REMOVALS]
        body = clean_str(a.body) or ""
        bodies.append((a.article_id, clean_str(a.publisher), None,
                       body + "".join("\n" + (clean_str(t) or "") for t in learned_lines)))
    return PreparedBatch(
        documents=documents_table(docs, rejections, _RUN, raw=raw),
        # The signature's hash is of the text dedup signed; an article the learned pass took lines from
        # stores the hash of its body as stored (the few such articles are hashed again here).
        articles=articles_table(articles, [h if a.signed_text is None else body_hash(clean_str(a.body) or "")
                                           for a, h in zip(articles, signatures.body_hash.tolist(), strict=True)],
                                _RUN),
        removals=removals_table(articles, _RUN),
        quarantine=quarantine_table(rejections, _RUN),
        sightings=sightings_table(bodies, learned or LearnedConfig()),
        signatures=signatures,
    )


def with_raw(batch: PreparedBatch, docs: Sequence[RawDocument]) -> PreparedBatch:
    """`batch` with its documents' bytes, from `docs` (by doc_id, which is the hash of the bytes), when it
    was prepared without them (`prepare_batch(raw=False)`, as the workers do): the ingest holds them
    already, and a copy in the tables the workers hand back was a third copy of every page in the
    writer's process (with the one it read and the one DuckDB holds until the WAL is folded), pickled on
    the way: the 735 dev pages' run peaked ~85 MB lower over all processes without it. Filling the column
    copies the bytes once: 0.28 s of the ingest process's CPU over those pages' 109 MB (py-spy), most of
    it the first touch of the new buffer's pages, which unpickling the workers' copy paid before."""
    documents = batch.documents
    if documents.num_rows == 0 or documents.column("raw").null_count == 0:
        return batch
    by_id = {d.doc_id: d.raw for d in docs}
    ids = documents.column("doc_id").to_pylist()
    missing = [doc_id for doc_id in ids if doc_id not in by_id]
    if missing:
        raise ValueError(f"no bytes for {len(missing)} document(s) of the batch, e.g. {missing[0]}")
    field = documents.schema.field("raw")
    filled = pa.array([by_id[doc_id] for doc_id in ids], type=field.type)
    return dataclasses.replace(batch, documents=documents.set_column(documents.schema.get_field_index("raw"),
                                                                     field, filled))


_SIGHTINGS_SCHEMA = pa.schema([("publisher", pa.string()), ("line_key", pa.string()),
                               ("cluster_id", pa.string()), ("article_id", pa.string()),
                               ("sample_text", pa.string()), ("words", pa.int32()), ("story_like", pa.bool_())])


def sightings_table(rows: Sequence[tuple[str, str | None, str | None, str]],
                    cfg: LearnedConfig = LearnedConfig()) -> pa.Table:
    """The short lines of article bodies as rows to record: rows are (article_id, publisher, cluster_id,
    body); a cluster_id of None is filled in when recorded (`record_sightings`). Pure: the ingest's worker
    processes build it, so the single writer only appends."""
    cols: dict[str, list[object]] = {name: [] for name in _SIGHTINGS_SCHEMA.names}
    for article_id, publisher, cluster_id, body in rows:
        pub = publisher_key(publisher)
        if not pub or not body:
            continue
        for seen in line_sightings(body, cfg):
            for name, value in (("publisher", pub), ("line_key", seen.line_key), ("cluster_id", cluster_id),
                                ("article_id", article_id), ("sample_text", seen.sample_text),
                                ("words", seen.words), ("story_like", seen.story_like)):
                cols[name].append(value)
    return pa.table(cols, schema=_SIGHTINGS_SCHEMA)
