"""Load: Arrow tables built against explicit schemas, one transaction per batch.

A batch's documents, articles, removals, quarantine rows and dedup results become visible
together or not at all: a crash mid-batch leaves the warehouse as it was before the batch, and
the re-run loads the batch again (its doc_ids were never committed).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from newsetl.schemas.records import Article, InputRow, KnownPage, RawDocument, Rejection, Skip
from newsetl.schemas.tables import INPUTS
from newsetl.text.learned import LearnedConfig
from newsetl.text.sign import Signatures
from newsetl.warehouse.connect import rollback, unregister
from newsetl.warehouse.dedup import DedupConfig, cluster_batch
from newsetl.warehouse.learned import record_sightings
from newsetl.warehouse.lineage import record_sources, sources_from_tables
from newsetl.warehouse.publishers import resolve_publishers
from newsetl.warehouse.rows import (
    PreparedBatch,
    clean_str,
    prepare_batch,
    quarantine_ids,
    rows_table,
    to_json,
    utc_now,
)

# Built by newsetl.warehouse.rows (where the workers build them); loaded here.
__all__ = ["LoadStats", "PreparedBatch", "finish_run", "known_doc_ids", "load_batch", "load_prepared",
           "prepare_batch", "quarantine_ids", "record_inputs", "record_ruleset", "start_run", "unchanged_inputs"]


@dataclass(frozen=True)
class LoadStats:
    documents: int
    articles: int
    removals: int
    quarantined: int  # quarantine rows this load added (a rejection quarantined before adds none)
    dedup: Mapping[str, int]
    quarantine_reasons: Mapping[str, int] = field(default_factory=dict)  # "stage:reason" -> rows added
    known_rejections: int = 0  # rejections quarantined by an earlier run (same source, same reason)


# The row of a run found crashed says how its counts were come by (`mark_crashed_runs`).
CRASHED_MESSAGE = ("the ingest process ended without finishing this run; its counts are those of the rows it left: "
                   "read is the inputs whose outcome it recorded, and what else it read is not known (not_loaded "
                   "NULL)")


def mark_crashed_runs(con: duckdb.DuckDBPyConnection) -> None:
    """Mark every run still `running` as `crashed`. Called under the run lock, so no other ingest is alive:
    such a row belongs to a process that died (kill -9, OOM) before it could finish its run.

    Its counts were never written: they are taken from the rows it left (each batch commits whole), so
    that the runs' `loaded` still adds up to the articles. Its `read` is the inputs whose outcome those rows
    record (its articles, quarantine rows, and the lineage rows of the inputs it skipped), so that its
    row balances as every run's does (read = loaded + skipped + quarantined); what it read besides (ahead of
    its last load, or skipped without a row of its own: a file unchanged since an earlier run, a source an
    earlier run recorded) is not known, and `not_loaded` says so with NULL, where a failed or stopped run
    that counted it has a number (a crashed row had `read` NULL and `not_loaded` 0: a user trial).
    `counts.from` says where the counts came from. Rows marked crashed before `read` was recorded get it
    too (from the counts they were given then)."""
    con.execute("""
        UPDATE runs SET status = 'crashed', message = $message, counts = COALESCE(runs.counts, json_object(
                   'read', c.loaded + c.skipped_known + c.skipped_other + c.quarantined,
                   'loaded', c.loaded, 'skipped_known', c.skipped_known, 'skipped_other', c.skipped_other,
                   'quarantined', c.quarantined, 'not_loaded', NULL,
                   'from', 'the rows the crashed run left'))
        FROM (SELECT r.run_id,
                     (SELECT count(*) FROM articles a WHERE a.run_id = r.run_id) AS loaded,
                     (SELECT count(*) FROM quarantine q WHERE q.run_id = r.run_id) AS quarantined,
                     (SELECT count(*) FROM sources s WHERE s.run_id = r.run_id AND s.outcome = 'skipped'
                                                     AND s.reason = 'known') AS skipped_known,
                     (SELECT count(*) FROM sources s WHERE s.run_id = r.run_id AND s.outcome = 'skipped'
                                                     AND s.reason IS DISTINCT FROM 'known') AS skipped_other
              FROM runs r WHERE r.status = 'running') c
        WHERE runs.run_id = c.run_id
    """, {"message": CRASHED_MESSAGE})
    con.execute("""
        UPDATE runs SET message = $message, counts = json_merge_patch(counts, json_object(
            'read', COALESCE(CAST(counts->>'loaded' AS BIGINT), 0)
                    + COALESCE(CAST(counts->>'skipped_known' AS BIGINT), 0)
                    + COALESCE(CAST(counts->>'skipped_other' AS BIGINT), 0)
                    + COALESCE(CAST(counts->>'quarantined' AS BIGINT), 0)))
        WHERE status = 'crashed' AND counts->>'from' = 'the rows the crashed run left' AND counts->>'read' IS NULL
    """, {"message": CRASHED_MESSAGE})


def start_run(con: duckdb.DuckDBPyConnection, run_id: str, flow_run_id: str | None,
              params: Mapping[str, Any]) -> bool:
    """Record the run as running, after marking the runs a dead process left running as crashed
    (`mark_crashed_runs`); returns whether the run before it completed (True for the first run).
    A run that did not (stopped, failed, crashed) may have loaded batches whose learned-line re-clean,
    the last step of a run, never happened: the caller re-cleans then, even when it loads nothing."""
    rows = con.execute("SELECT status FROM runs ORDER BY started_at DESC LIMIT 1").fetchall()
    previous_completed = not rows or rows[0][0] == "completed"
    mark_crashed_runs(con)
    con.execute(
        "INSERT INTO runs (run_id, flow_run_id, started_at, status, params) VALUES (?, ?, ?, 'running', ?)",
        [run_id, flow_run_id, utc_now(), to_json(params)],
    )
    return previous_completed


def record_ruleset(con: duckdb.DuckDBPyConnection, digest: str, defs: Sequence[Mapping[str, Any]],
                   run_id: str) -> int:
    """The pattern rules run `run_id` cleans with (`Ruleset.digest` and `Ruleset.definitions`: plain data,
    the warehouse does not load rules), so that a removal's rule id reads as the rule it was then:
    `runs.ruleset_sha256`, and the `rules` rows unless an earlier run recorded the same ruleset (a schedule
    that keeps its rules adds no row; a changed rules file adds the whole new ruleset once). Returns the
    rules rows added."""
    con.execute("UPDATE runs SET ruleset_sha256 = ? WHERE run_id = ?", [digest, run_id])
    if con.execute("SELECT 1 FROM rules WHERE ruleset_sha256 = ? LIMIT 1", [digest]).fetchall():
        return 0
    data = pa.table({
        "ruleset_sha256": pa.array([digest] * len(defs), pa.string()),
        **{k: pa.array([d[k] for d in defs], pa.int32() if k == "priority" else pa.string())
           for k in ("rule_id", "priority", "category", "scope", "match", "pattern", "source")},
        "options": pa.array([to_json(d["options"]) for d in defs], pa.string()),
        "first_run_id": pa.array([run_id] * len(defs), pa.string()),
    })
    return _append(con, "rules", data, run_id, run_col="first_run_id")


def finish_run(
    con: duckdb.DuckDBPyConnection, run_id: str, status: str, counts: Mapping[str, Any], message: str | None = None
) -> None:
    con.execute(
        "UPDATE runs SET finished_at = ?, status = ?, counts = ?, message = ? WHERE run_id = ?",
        [utc_now(), status, to_json(counts), message, run_id],
    )


def known_doc_ids(con: duckdb.DuckDBPyConnection, doc_ids: Sequence[str],
                  retry: Sequence[tuple[str, str]] = ()) -> set[str]:
    """The subset of doc_ids already in the warehouse (loaded or quarantined with bytes). `retry`: (stage,
    reason) pairs of refusals that say nothing of the document itself (a run's time limit, a crashed
    worker): a document refused only so, without an article, is not known, and is processed again."""
    known = _existing(con, "documents", "doc_id", doc_ids)
    if not known or not retry:
        return known
    con.register("_keys", pa.table({"doc_id": pa.array(sorted(known), pa.string())}))
    con.register("_retry", pa.table({"stage": [s for s, _ in retry], "reason": [r for _, r in retry]}))
    try:
        # The quarantine first (small, and such refusals are rare); articles only for what it finds.
        refused = [r[0] for r in con.execute(
            "SELECT DISTINCT q.doc_id FROM quarantine q SEMI JOIN _keys k USING (doc_id) "
            "SEMI JOIN _retry t USING (stage, reason)").fetchall()]
    finally:
        unregister(con, "_keys")
        unregister(con, "_retry")
    return known - (set(refused) - _existing(con, "articles", "doc_id", refused))


def load_batch(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    docs: Sequence[RawDocument],
    articles: Sequence[Article],
    signatures: Signatures,
    rejections: Sequence[Rejection],
    dedup: DedupConfig,
    learned: LearnedConfig | None = None,
    inputs: Sequence[InputRow] = (),
    skips: Sequence[Skip] = (),
) -> LoadStats:
    """Write one batch in one transaction; re-loading a batch already loaded changes nothing.

    `inputs`: files whose every document is loaded once this batch is (the last batch of a read group),
    recorded as read in the same transaction: they are skipped next time exactly when their documents
    are in. `skips`: sources read and skipped (known bytes, captures that are not articles), recorded
    in `sources` with the batch's articles and rejections. (Prepares the tables here; the flow prepares
    them in its workers and calls `load_prepared`.)"""
    return load_prepared(con, run_id, prepare_batch(docs, articles, signatures, rejections, learned), dedup,
                         inputs=inputs, skips=skips)


def load_prepared(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    batch: PreparedBatch,
    dedup: DedupConfig,
    inputs: Sequence[InputRow] = (),
    extra_rejections: Sequence[Rejection] = (),
    skips: Sequence[Skip] = (),
) -> LoadStats:
    """Append a prepared batch in one transaction (see `load_batch`). `extra_rejections`: rejections
    that came with the batch from elsewhere (read errors), quarantined with it."""
    parts = [batch]
    if extra_rejections:
        parts.append(prepare_batch([], [], batch.signatures.take([]), extra_rejections))
    b = PreparedBatch.concat(parts)
    con.execute("BEGIN TRANSACTION")
    try:
        b = dataclasses.replace(b, quarantine=_distinct_rejections(con, b.quarantine))
        src_t = sources_from_tables(run_id, b.articles, b.quarantine, skips)
        n_docs = _append(con, "documents", b.documents, run_id, skip_present=True, run_col="first_run_id")
        # Articles of documents loaded by an earlier (crashed, then retried) attempt are skipped, and so
        # are their removals: the article row and its removals were committed together.
        ids = b.articles.column("article_id")
        existing = _existing(con, "articles", "article_id", ids.to_pylist()) if b.articles.num_rows else set()
        if existing:
            keep = pc.invert(pc.is_in(ids, value_set=pa.array(sorted(existing), pa.string())))
            art_new, sigs = b.articles.filter(keep), b.signatures.take(np.flatnonzero(keep.to_numpy(False)))
            rem_new = b.removals.filter(pc.invert(pc.is_in(b.removals.column("article_id"),
                                                           value_set=pa.array(sorted(existing), pa.string()))))
        else:
            art_new, sigs, rem_new = b.articles, b.signatures, b.removals
        # Outlets resolved against the warehouse's alias table (in this transaction, so every batch
        # sees the names the batches before it settled).
        art_new = resolve_publishers(con, art_new, run_id)
        n_art = _append(con, "articles", art_new, run_id)
        n_rem = _append(con, "removals", rem_new, run_id)
        # Only rejections not quarantined before are counted: the run's count is its rows.
        q_t = b.quarantine
        known_q = _existing(con, "quarantine", "quarantine_id", q_t.column("quarantine_id").to_pylist()) \
            if q_t.num_rows else set()
        if known_q:
            q_t = q_t.filter(pc.invert(pc.is_in(q_t.column("quarantine_id"),
                                                value_set=pa.array(sorted(known_q), pa.string()))))
        n_q = _append(con, "quarantine", q_t, run_id)
        q_reasons = Counter(f"{st}:{re}" for st, re in zip(q_t.column("stage").to_pylist(),
                                                             q_t.column("reason").to_pylist(), strict=True))
        stats: Mapping[str, int] = {}
        if art_new.num_rows:
            # The exact tier compares the hashes of the signed texts (the signatures'), which differ
            # from `articles.body_hash` for an article the learned pass took lines from.
            dedup_in = art_new.select(["article_id", "published_at", "fetched_at", "original_publisher"]).append_column(
                "body_hash", pa.array(sigs.body_hash.tolist(), pa.string()))
            stats = dict(vars(cluster_batch(con, dedup_in, sigs, dedup, run_id)))
            # Count the batch's lines per publisher and story cluster (after dedup: copies of one
            # story count once), in the same transaction, so learned counts never drift from articles.
            # Articles this transaction inserted have no sightings yet (both are written in one
            # transaction), so past sightings are looked up only on a retried batch.
            record_sightings(con, b.sightings, own_transaction=False, new_articles=not existing)
        record_inputs(con, inputs, run_id, own_transaction=False)
        record_sources(con, src_t)
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise
    return LoadStats(documents=n_docs, articles=n_art, removals=n_rem, quarantined=n_q, dedup=stats,
                     quarantine_reasons=dict(q_reasons), known_rejections=len(known_q))


def _append(con: duckdb.DuckDBPyConnection, table: str, data: pa.Table, run_id: str, skip_present: bool = False,
            run_col: str = "run_id") -> int:
    """Insert a prepared table with its run column set to `run_id`; `skip_present`: rows whose primary key
    is already in the table are skipped."""
    if data.num_rows == 0:
        return 0
    con.register("_batch", data)
    try:
        # The primary key's index finds the present keys: `NOT IN (SELECT key FROM table)` hashed the whole
        # key column every batch, a writer cost that grew with the warehouse.
        ignore = " OR IGNORE" if skip_present else ""
        inserted = con.execute(f"INSERT{ignore} INTO {table} BY NAME SELECT * REPLACE (? AS {run_col}) FROM _batch",
                               [run_id]).fetchall()
    finally:
        unregister(con, "_batch")
    return int(inserted[0][0])


def _distinct_rejections(con: duckdb.DuckDBPyConnection, quarantine: pa.Table) -> pa.Table:
    """`quarantine` with the ids of rejections an earlier run quarantined with other bytes replaced.

    A rejection's id is its source, stage, reason and occurrence (`quarantine_ids`), so that a re-run
    meeting the same bad input writes nothing new. Without a doc_id (a broken JSON line, a repeated
    record id, a broken WARC record) that id does not change with the bytes: a re-exported file whose
    line 2 is broken in another way, or a repeat of a record id in another read piece of a big file, got
    the id of the earlier rejection, was counted known, and its bytes were kept nowhere. Such a row takes
    the id of the source's row with the same stage, reason and bytes if there is one (an occurrence
    number that shifted), else an id of its own from the old one and its bytes.

    Not for URLs: a feed that stays broken answers other bytes at every fetch (its build date), and a
    row per scheduled run would grow without end; its first rejection stands for it."""
    if quarantine.num_rows == 0:
        return quarantine
    con.register("_q", quarantine.select(["quarantine_id", "source_uri", "stage", "reason", "raw"]))
    try:
        other_bytes = dict(con.execute(
            "SELECT k.quarantine_id, (SELECT min(s.quarantine_id) FROM quarantine s WHERE s.source_uri = k.source_uri "
            "                         AND s.stage = k.stage AND s.reason = k.reason AND s.raw = k.raw) "
            "FROM _q k JOIN quarantine t USING (quarantine_id) "
            "WHERE k.raw IS NOT NULL AND t.raw IS DISTINCT FROM k.raw AND NOT contains(k.source_uri, '://')"
        ).fetchall())
    finally:
        unregister(con, "_q")
    if not other_bytes:
        return quarantine
    ids = quarantine.column("quarantine_id").to_pylist()
    raws = quarantine.column("raw").to_pylist()
    new_ids = [(other_bytes[qid] or hashlib.sha256(f"{qid}\x00{hashlib.sha256(raw).hexdigest()}".encode()).hexdigest())
               if qid in other_bytes else qid for qid, raw in zip(ids, raws, strict=True)]
    column = quarantine.schema.get_field_index("quarantine_id")
    return quarantine.set_column(column, quarantine.schema.field(column), pa.array(new_ids, pa.string()))


def _existing(con: duckdb.DuckDBPyConnection, table: str, key: str, values: Sequence[str]) -> set[str]:
    if not values:
        return set()
    con.register("_keys", pa.table({key: pa.array(list(values), pa.string())}))
    try:
        rows = con.execute(f"SELECT k.{key} FROM _keys k SEMI JOIN {table} t USING ({key})").fetchall()
    finally:
        unregister(con, "_keys")
    return {r[0] for r in rows}


def fetched_pages(con: duckdb.DuckDBPyConnection, urls: Sequence[str]) -> dict[str, KnownPage]:
    """The pages of `urls` the warehouse holds as articles (only a fetched page's source_uri is its URL: a
    record's is `path#id`): of each one's latest fetch, the document, the validators its server sent
    (`articles.extra`: etag, last_modified), the time, and the URL that answered (extra's final_url).

    Read from the articles themselves, written in the transaction that stored them: a run that stopped
    after fetching a page and before loading it left nothing, so the next one fetches it whole (the
    fetcher's own memory of validators had it get a 304 for a page never stored)."""
    if not urls:
        return {}
    con.register("_urls", pa.table({"source_uri": pa.array(sorted(set(urls)), pa.string())}))
    try:
        rows = con.execute(
            "SELECT source_uri, p.doc_id, p.etag, p.last_modified, p.fetched_at, p.final_url FROM ("
            "  SELECT a.source_uri, arg_max({'doc_id': a.doc_id, 'etag': a.extra->>'etag', "
            "      'last_modified': a.extra->>'last_modified', 'fetched_at': a.fetched_at, "
            "      'final_url': a.extra->>'final_url'}, a.fetched_at) AS p"
            "  FROM articles a SEMI JOIN _urls u USING (source_uri) GROUP BY a.source_uri)"
        ).fetchall()
    finally:
        unregister(con, "_urls")
    return {uri: KnownPage(*page) for uri, *page in rows}


def unchanged_inputs(con: duckdb.DuckDBPyConnection,
                     stats: Sequence[tuple[str, int, int, str | None] | tuple[str, int, int, str | None, int]]
                     ) -> dict[str, int]:
    """Paths whose (size, mtime, ctime, read settings) match the recorded input, with the documents they
    produced. `stats`: (path, size, mtime_ns, read_as[, ctime_ns]) with read_as as `ReadConfig.read_as`
    gives it. A ctime not known on either side (an input recorded before version 12) is not compared.
    A file read under a field mapping is unchanged for a run without one: a mapping only adds a place
    to look first (`sources.fields.candidates`), so reading it again without can yield nothing new, and
    had the records that needed the mapping, loaded already, quarantined for want of a body (a user
    trial: `ingest --field text=story`, then a plain `ingest` of the same folder)."""
    if not stats:
        return {}
    probe = pa.table({
        "path": pa.array([s[0] for s in stats], pa.string()),
        "size": pa.array([s[1] for s in stats], pa.int64()),
        "mtime_ns": pa.array([s[2] for s in stats], pa.int64()),
        "read_as": pa.array([s[3] for s in stats], pa.string()),
        "ctime_ns": pa.array([s[4] if len(s) > 4 else None for s in stats], pa.int64()),
    })
    con.register("_stats", probe)
    try:
        rows = con.execute(
            "SELECT i.path, i.documents FROM _stats s JOIN inputs i "
            "ON i.path = s.path AND i.size = s.size AND i.mtime_ns = s.mtime_ns "
            "AND (i.read_as IS NOT DISTINCT FROM s.read_as OR s.read_as IS NULL) "
            "AND (i.ctime_ns IS NULL OR s.ctime_ns IS NULL OR i.ctime_ns = s.ctime_ns)"
        ).fetchall()
    finally:
        unregister(con, "_stats")
    return {r[0]: int(r[1]) for r in rows}


def refused_under_a_lower_limit(con: duckdb.DuckDBPyConnection, paths: Sequence[str], refusal: tuple[str, str],
                                limit: float, unrecorded: float) -> set[str]:
    """Of `paths` (input files), those holding a document refused for a run's time limit (`refusal`: its
    stage and reason) and never loaded since, where every run that refused it had a lower limit than `limit`
    (0: none). `unrecorded`: the limit of a run that did not record its own (the default then)."""
    if not paths:
        return set()
    rows = con.execute(
        "SELECT q.source_uri, max(coalesce(TRY_CAST(r.params->>'doc_seconds' AS DOUBLE), ?)) "
        "FROM quarantine q JOIN runs r USING (run_id) "
        "WHERE q.stage = ? AND q.reason = ? AND q.doc_id IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM articles a WHERE a.doc_id = q.doc_id) GROUP BY q.source_uri",
        [unrecorded, *refusal]).fetchall()
    wanted = set(paths)
    out: set[str] = set()
    for uri, tried in rows:
        if limit and tried >= limit:
            continue
        # A file's own refusal is under its path; a record's under path#id (a path may hold '#' itself).
        cuts = [uri] + [uri[:i] for i, ch in enumerate(uri) if ch == "#"]
        out.update(c for c in cuts if c in wanted)
    return out


def record_inputs(con: duckdb.DuckDBPyConnection, rows: Sequence[InputRow | tuple[Any, ...]], run_id: str,
                  own_transaction: bool = True) -> None:
    """Remember fully read input files (`InputRow`s, or plain tuples of their fields). `own_transaction=False`
    inside a caller's transaction (the load of the files' last batch)."""
    if not rows:
        return
    now = utc_now()
    table = rows_table(INPUTS, [{"path": clean_str(r.path), "size": r.size, "mtime_ns": r.mtime_ns,
                                  "documents": r.documents, "last_run_id": run_id, "recorded_at": now,
                                  "read_as": r.read_as, "ctime_ns": r.ctime_ns}
                                 for r in (InputRow(*row) for row in rows)])
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
        unregister(con, "_inputs")
