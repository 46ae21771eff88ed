"""Load: Arrow tables built against explicit schemas, one transaction per batch.

A batch's documents, articles, removals, quarantine rows and dedup results become visible
together or not at all: a crash mid-batch leaves the warehouse as it was before the batch, and
the re-run loads the batch again (its doc_ids were never committed).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from schemas import arrow as S
from schemas.records import Article, RawDocument, Rejection
from tasks.text.sign import Signatures
from warehouse.connect import rollback
from warehouse.dedup import DedupConfig, cluster_batch
from warehouse.learned import LearnedConfig, record_articles


@dataclass(frozen=True)
class LoadStats:
    documents: int
    articles: int
    removals: int
    quarantined: int
    dedup: Mapping[str, int]


def _now() -> datetime:
    return datetime.now(UTC)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def start_run(con: duckdb.DuckDBPyConnection, run_id: str, flow_run_id: str | None, params: Mapping[str, Any]) -> None:
    # Called under the run lock, so no other ingest is alive: a row still 'running' belongs to a process
    # that died (kill -9, OOM) before it could finish its run.
    con.execute(
        "UPDATE runs SET status = 'crashed', message = 'the ingest process ended without finishing this run' "
        "WHERE status = 'running'"
    )
    con.execute(
        "INSERT INTO runs (run_id, flow_run_id, started_at, status, params) VALUES (?, ?, ?, 'running', ?)",
        [run_id, flow_run_id, _now(), _json(params)],
    )


def finish_run(
    con: duckdb.DuckDBPyConnection, run_id: str, status: str, counts: Mapping[str, Any], message: str | None = None
) -> None:
    con.execute(
        "UPDATE runs SET finished_at = ?, status = ?, counts = ?, message = ? WHERE run_id = ?",
        [_now(), status, _json(counts), message, run_id],
    )


def known_doc_ids(con: duckdb.DuckDBPyConnection, doc_ids: Sequence[str]) -> set[str]:
    """The subset of doc_ids already in the warehouse (loaded or quarantined with bytes)."""
    return _existing(con, "documents", "doc_id", doc_ids)


def quarantine_id(rej: Rejection) -> str:
    # Deterministic, so a re-run that meets the same bad input records nothing new.
    key = "\x00".join((rej.source_uri, rej.stage, rej.reason, rej.doc_id or ""))
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _clean_str(value: str | None) -> str | None:
    # Lone surrogates (from JSON "\ud800") cannot be stored as UTF-8: replace, don't crash the batch.
    if value is None:
        return None
    return value.encode("utf-8", "replace").decode("utf-8") if _has_surrogate(value) else value


def _has_surrogate(value: str) -> bool:
    try:
        value.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


def _insert(con: duckdb.DuckDBPyConnection, table: str, data: pa.Table, key: str | None = None) -> int:
    """Insert by column name; with `key`, rows whose key is already present are skipped."""
    if data.num_rows == 0:
        return 0
    con.register("_batch", data)
    try:
        cols = ", ".join(data.column_names)
        where = f" WHERE {key} NOT IN (SELECT {key} FROM {table})" if key else ""
        # DuckDB 2.0: fetch every result to the end (fetchone leaves it open and blocks the connection).
        inserted = con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _batch{where}").fetchall()
    finally:
        _unregister(con, "_batch")
    return int(inserted[0][0])


def _unregister(con: duckdb.DuckDBPyConnection, name: str) -> None:
    # After a failed statement the transaction is aborted and even unregister raises; the caller's
    # ROLLBACK cleans up, and the original error must be the one that propagates.
    with contextlib.suppress(duckdb.Error):
        con.unregister(name)


def documents_table(docs: Sequence[RawDocument], rejections: Sequence[Rejection], run_id: str) -> pa.Table:
    rows: dict[str, list[Any]] = {name: [] for name in S.DOCUMENTS.names}
    seen: set[str] = set()

    def add(doc_id: str, uri: str, kind: str, ctype: str | None, enc: str | None, raw: bytes,
            ext: str | None, url: str | None, fetched: datetime | None) -> None:
        if doc_id in seen:
            return
        seen.add(doc_id)
        for name, value in zip(S.DOCUMENTS.names, (doc_id, _clean_str(uri), kind, ctype, enc, raw, len(raw),
                                                    _clean_str(ext), _clean_str(url), fetched, run_id),
                               strict=True):
            rows[name].append(value)

    for d in docs:
        add(d.doc_id, d.source_uri, d.kind, d.content_type, d.encoding, d.raw, d.external_id, d.url, d.fetched_at)
    # A rejected input whose bytes we have is kept too: nothing lost, and its doc_id marks it known.
    for r in rejections:
        if r.doc_id and r.raw is not None:
            add(r.doc_id, r.source_uri, "rejected", None, None, r.raw, None, None, None)
    return pa.table(rows, schema=S.DOCUMENTS)


def articles_table(articles: Sequence[Article], hashes: Sequence[str], run_id: str) -> pa.Table:
    """`hashes`: the body_hash of each article, from its signature (computed where it was signed)."""
    if len(hashes) != len(articles):
        raise ValueError(f"{len(articles)} articles but {len(hashes)} body hashes")
    cols: dict[str, list[Any]] = {name: [] for name in S.ARTICLES.names}
    for a, digest in zip(articles, hashes, strict=True):
        values = {
            "article_id": a.article_id, "doc_id": a.doc_id, "source_uri": _clean_str(a.source_uri),
            "external_id": _clean_str(a.external_id), "url": _clean_str(a.url),
            "publisher": _clean_str(a.publisher), "original_publisher": _clean_str(a.original_publisher),
            "title": _clean_str(a.title), "subtitle": _clean_str(a.subtitle), "byline": _clean_str(a.byline),
            "published_at": a.published_at, "fetched_at": a.fetched_at, "language": a.language,
            "body": _clean_str(a.body), "word_count": a.word_count, "content_type": a.content_type,
            "body_hash": digest, "repairs": _json(dict(a.repairs)),
            "extra": _json(dict(a.extra)) if a.extra else None, "run_id": run_id,
        }
        for name in S.ARTICLES.names:
            cols[name].append(values[name])
    return pa.table(cols, schema=S.ARTICLES)


def removals_table(articles: Sequence[Article], run_id: str) -> pa.Table:
    cols: dict[str, list[Any]] = {name: [] for name in S.REMOVALS.names}
    for a in articles:
        for seq, r in enumerate(a.removals):
            for name, value in zip(S.REMOVALS.names,
                                   (a.article_id, seq, r.category, r.rule, _clean_str(r.text), r.position, run_id),
                                   strict=True):
                cols[name].append(value)
    return pa.table(cols, schema=S.REMOVALS)


def quarantine_table(rejections: Sequence[Rejection], run_id: str) -> pa.Table:
    cols: dict[str, list[Any]] = {name: [] for name in S.QUARANTINE.names}
    now = _now()
    seen: set[str] = set()
    for r in rejections:
        qid = quarantine_id(r)
        if qid in seen:
            continue
        seen.add(qid)
        values = (qid, _clean_str(r.source_uri), r.doc_id, run_id, r.stage, r.reason, _clean_str(r.detail),
                  r.raw, now)
        for name, value in zip(S.QUARANTINE.names, values, strict=True):
            cols[name].append(value)
    return pa.table(cols, schema=S.QUARANTINE)


def load_batch(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    docs: Sequence[RawDocument],
    articles: Sequence[Article],
    signatures: Signatures,
    rejections: Sequence[Rejection],
    dedup: DedupConfig,
    learned: LearnedConfig | None = None,
    inputs: Sequence[tuple[str, int, int, int]] = (),
) -> LoadStats:
    """Write one batch in one transaction; re-loading a batch already loaded changes nothing.

    `inputs`: files whose every document is loaded once this batch is (the last batch of a read group),
    recorded as read in the same transaction: they are skipped next time exactly when their documents
    are in."""
    # The same bytes twice in one batch are one article (the flow already drops them; callers of this
    # function directly may not).
    unique: dict[str, int] = {}
    for i, art in enumerate(articles):
        unique.setdefault(art.article_id, i)
    if len(unique) != len(articles):
        idx = sorted(unique.values())
        articles = [articles[i] for i in idx]
        signatures = signatures.take(idx)
    doc_t = documents_table(docs, rejections, run_id)
    art_t = articles_table(articles, signatures.body_hash.tolist(), run_id)
    rem_t = removals_table(articles, run_id)
    q_t = quarantine_table(rejections, run_id)
    con.execute("BEGIN TRANSACTION")
    try:
        n_docs = _insert(con, "documents", doc_t, key="doc_id")
        # Articles of documents loaded by an earlier (crashed, then retried) attempt are skipped, and so
        # are their removals: the article row and its removals were committed together.
        existing = _existing(con, "articles", "article_id", art_t.column("article_id").to_pylist())
        keep = [i for i, aid in enumerate(art_t.column("article_id").to_pylist()) if aid not in existing]
        art_new = art_t.take(keep) if len(keep) != art_t.num_rows else art_t
        new_ids = set(art_new.column("article_id").to_pylist())
        rem_new = rem_t.filter(pa.array([aid in new_ids for aid in rem_t.column("article_id").to_pylist()],
                                        pa.bool_())) if rem_t.num_rows else rem_t
        n_art = _insert(con, "articles", art_new)
        n_rem = _insert(con, "removals", rem_new)
        n_q = _insert(con, "quarantine", q_t, key="quarantine_id")
        stats: Mapping[str, int] = {}
        if art_new.num_rows:
            dedup_in = art_new.select(["article_id", "body_hash", "word_count", "published_at", "fetched_at",
                                       "original_publisher"])
            sigs = signatures if len(keep) == art_t.num_rows else signatures.take(keep)
            stats = dict(vars(cluster_batch(con, dedup_in, sigs, dedup, run_id)))
            # Count the batch's lines per publisher and story cluster (after dedup: copies of one
            # story count once), in the same transaction, so learned counts never drift from articles.
            record_articles(con, art_new.column("article_id").to_pylist(), learned or LearnedConfig(),
                            own_transaction=False)
        record_inputs(con, inputs, run_id, own_transaction=False)
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise
    return LoadStats(documents=n_docs, articles=n_art, removals=n_rem, quarantined=n_q, dedup=stats)


def _existing(con: duckdb.DuckDBPyConnection, table: str, key: str, values: Sequence[str]) -> set[str]:
    if not values:
        return set()
    con.register("_keys", pa.table({key: pa.array(list(values), pa.string())}))
    try:
        rows = con.execute(f"SELECT k.{key} FROM _keys k SEMI JOIN {table} t USING ({key})").fetchall()
    finally:
        _unregister(con, "_keys")
    return {r[0] for r in rows}


def unchanged_inputs(con: duckdb.DuckDBPyConnection, stats: Sequence[tuple[str, int, int]]) -> dict[str, int]:
    """Paths whose (size, mtime) match the recorded input, with the documents they produced."""
    if not stats:
        return {}
    probe = pa.table({
        "path": pa.array([s[0] for s in stats], pa.string()),
        "size": pa.array([s[1] for s in stats], pa.int64()),
        "mtime_ns": pa.array([s[2] for s in stats], pa.int64()),
    })
    con.register("_stats", probe)
    try:
        rows = con.execute(
            "SELECT i.path, i.documents FROM _stats s JOIN inputs i "
            "ON i.path = s.path AND i.size = s.size AND i.mtime_ns = s.mtime_ns"
        ).fetchall()
    finally:
        con.unregister("_stats")
    return {r[0]: int(r[1]) for r in rows}


def record_inputs(con: duckdb.DuckDBPyConnection, rows: Sequence[tuple[str, int, int, int]], run_id: str,
                  own_transaction: bool = True) -> None:
    """Remember fully read input files: (path, size, mtime_ns, documents). `own_transaction=False`
    inside a caller's transaction (the load of the files' last batch)."""
    if not rows:
        return
    table = pa.table({
        "path": pa.array([_clean_str(r[0]) for r in rows], pa.string()),
        "size": pa.array([r[1] for r in rows], pa.int64()),
        "mtime_ns": pa.array([r[2] for r in rows], pa.int64()),
        "documents": pa.array([r[3] for r in rows], pa.int32()),
        "last_run_id": pa.array([run_id] * len(rows), pa.string()),
        "recorded_at": pa.array([_now()] * len(rows), S.TS),
    })
    con.register("_inputs", table)
    try:
        if own_transaction:
            con.execute("BEGIN TRANSACTION")
        con.execute("DELETE FROM inputs WHERE path IN (SELECT path FROM _inputs)")
        con.execute("INSERT INTO inputs BY NAME SELECT * FROM _inputs")
        if own_transaction:
            con.execute("COMMIT")
    except BaseException:
        if own_transaction:
            rollback(con)
        raise
    finally:
        _unregister(con, "_inputs")
