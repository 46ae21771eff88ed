"""Learned boilerplate, the warehouse side: counts of short lines per publisher and story cluster.

What a sighting is, and the thresholds, are the text core's (`newsetl.text.learned`); the removal is the
cleaner's learned pass; this module stores and queries the counts. Tables (created by the migrations,
`newsetl.schemas.tables`):

- `boilerplate_sightings(publisher, line_key, cluster_id, article_id)`: one row per (article, short
  line); the exact, idempotent record of where a line was seen (re-recording an article adds nothing).
- `boilerplate_line_clusters(publisher, line_key, cluster_id)` and `boilerplate_line_counts(publisher,
  line_key, clusters, articles)`: the distinct clusters of each key, and every key's exact counts, kept
  running (a batch adds what it saw new), so recording a batch never recounts past sightings.
- `boilerplate_lines(publisher, line_key, clusters, articles, words, story_like, sample_text,
  first_seen, updated_at)`: the candidates, i.e. keys seen in two or more distinct clusters of a
  publisher, with their exact distinct cluster and article counts (copied from the running counts for
  the keys each `record_lines` call sees). Lines seen once stay in the sightings only, so this table stays small.
- `boilerplate_publisher_clusters(publisher, cluster_id)` and `boilerplate_publishers(publisher,
  clusters, ...)`: the distinct clusters recorded per publisher (the denominator of `min_share`).
- `boilerplate_applied(article_id, line_key)`: pairs a reclean has handled, so a later run looks only
  at articles with a newly learned line, not at every article that ever had one.

Flow: the worker processes build each batch's `sightings_table` (warehouse/rows.py) and the batch load
records it with `record_sightings`, in the batch's own transaction; `learned_keys_by_publisher(con, cfg)`
gives the keys to pass to `clean_text(..., learned=...)`; `reclean_candidates` and `apply_reclean` are the
two warehouse halves of re-cleaning stored articles whose bodies hold lines that became known boilerplate
(`newsetl.tasks.reclean` runs the cleaner between them). `record_articles` / `record_lines` (bodies read
back or given) and `learned_keys` / `learned_summary` (one publisher's keys, a summary) serve the tests
and interactive checks, not the flow.

Publishers are matched by `publisher_key` (the outlet key: every spelling of one outlet shares it);
articles without a publisher are never
learned from nor re-cleaned.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import pyarrow as pa

from newsetl.schemas.tables import REMOVALS
from newsetl.text.learned import COUNTED_REMOVALS, LEARNED, LearnedConfig, publisher_key
from newsetl.warehouse.connect import transaction as in_transaction
from newsetl.warehouse.connect import unregister
from newsetl.warehouse.rows import rows_table, sightings_table

_Work = Callable[[], int]
def record_lines(con: duckdb.DuckDBPyConnection, rows: Sequence[tuple[str, str | None, str | None, str]],
                 cfg: LearnedConfig = LearnedConfig(), *, own_transaction: bool = True) -> int:
    """Record the short lines of article bodies: rows are (article_id, publisher, cluster_id, body).

    Pass the body as the patterns left it (before learned removal), so that lines keep being counted.
    An article without a cluster counts as its own cluster. Idempotent: a line of an article already
    recorded adds nothing. Returns the number of new sightings. With `own_transaction=False` it runs
    inside the caller's open transaction (e.g. the batch load), else in a transaction of its own.
    """
    table = sightings_table([(a, p, c or f"article:{a}", b) for a, p, c, b in rows], cfg)
    if not table.num_rows:
        return 0
    con.register("_bl_new", table)
    try:
        return transaction(con, lambda: _record(con, "_bl_new"), own_transaction)
    finally:
        unregister(con, "_bl_new")


def record_sightings(con: duckdb.DuckDBPyConnection, table: pa.Table, *, own_transaction: bool = True,
                     new_articles: bool = False) -> int:
    """Record a `sightings_table` built elsewhere (a worker process); rows without a cluster_id take their
    article's current cluster (set by the batch's dedup), so copies of one story count once.
    `new_articles=True`: the caller knows none of these articles was recorded before (the batch load,
    which records only articles it inserted in the same transaction)."""
    if not table.num_rows:
        return 0
    con.register("_bl_in", table)
    try:
        # Filled in SQL, into the table `_record` reads (no round trip through Arrow); only the batch's
        # articles are looked up (a semi-join whose build side is the batch).
        con.execute("""
            CREATE OR REPLACE TEMP TABLE _bl_filled AS
            SELECT n.* REPLACE (coalesce(n.cluster_id, a.cluster_id, 'article:' || n.article_id) AS cluster_id)
            FROM _bl_in n LEFT JOIN (SELECT article_id, cluster_id FROM articles
                                     SEMI JOIN (SELECT DISTINCT article_id FROM _bl_in) k USING (article_id)) a
                USING (article_id)
        """)
    finally:
        unregister(con, "_bl_in")
    try:
        return transaction(con, lambda: _record(con, "_bl_filled", fresh=new_articles), own_transaction)
    finally:
        with contextlib.suppress(duckdb.Error):
            con.execute("DROP TABLE IF EXISTS _bl_filled")


def _record(con: duckdb.DuckDBPyConnection, new: str, fresh: bool = False) -> int:
    """Add a batch's sightings to the running counts. Set work whose cost follows the batch, not the
    corpus: the exact distinct cluster and article counts of a key are kept in `boilerplate_line_counts`
    and grown by what this batch adds (its new (key, cluster) pairs and new (key, article) sightings),
    instead of recounting every past sighting of each key the batch saw (a story's lines are seen once
    per copy, so that recount grew with the square of its copies). Sightings are never updated or
    deleted, so the running counts equal the recount. `new`: the table or view of the sightings; `fresh`:
    none of their articles was recorded before (no look-up of past sightings at all)."""
    now = datetime.now(UTC)
    # The batch's lines not recorded yet for their article (re-recording an article adds nothing).
    # First which of its articles were recorded before (one column scanned, every batch: skipped when
    # the caller knows its articles are new), and only their sightings are compared line by line.
    old = ""
    if not fresh:
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _bl_had AS
            SELECT DISTINCT article_id FROM boilerplate_sightings WHERE article_id IN (SELECT article_id FROM {new})
        """)
        if _count(con, "_bl_had"):
            old = ("ANTI JOIN (SELECT publisher, article_id, line_key FROM boilerplate_sightings "
                   "SEMI JOIN _bl_had USING (article_id)) s USING (publisher, article_id, line_key)")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _bl_fresh AS
        SELECT DISTINCT n.publisher, n.line_key, n.cluster_id, n.article_id FROM {new} n {old}
    """)
    con.execute("DROP TABLE IF EXISTS _bl_had")
    added = _count(con, "_bl_fresh")
    if not added:
        con.execute("DROP TABLE IF EXISTS _bl_fresh")
        return 0
    # The (key, cluster) and (publisher, cluster) pairs this batch sees first: what the counts grow by.
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _bl_pairs AS
        SELECT DISTINCT publisher, line_key, cluster_id FROM _bl_fresh
        ANTI JOIN boilerplate_line_clusters USING (publisher, line_key, cluster_id)
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _bl_pubclusters AS
        SELECT DISTINCT publisher, cluster_id FROM _bl_fresh
        ANTI JOIN boilerplate_publisher_clusters USING (publisher, cluster_id)
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _bl_delta AS
        SELECT f.publisher, f.line_key, coalesce(any_value(p.clusters), 0)::INTEGER AS clusters,
               count(DISTINCT f.article_id)::INTEGER AS articles
        FROM _bl_fresh f
        LEFT JOIN (SELECT publisher, line_key, count(*) AS clusters FROM _bl_pairs GROUP BY ALL) p
            USING (publisher, line_key)
        GROUP BY f.publisher, f.line_key
    """)
    con.execute("INSERT INTO boilerplate_sightings SELECT * FROM _bl_fresh")
    con.execute("INSERT INTO boilerplate_line_clusters SELECT * FROM _bl_pairs")
    con.execute("INSERT INTO boilerplate_publisher_clusters SELECT * FROM _bl_pubclusters")
    con.execute("""
        UPDATE boilerplate_line_counts c
        SET clusters = c.clusters + d.clusters, articles = c.articles + d.articles
        FROM _bl_delta d WHERE c.publisher = d.publisher AND c.line_key = d.line_key
    """)
    con.execute("""
        INSERT INTO boilerplate_line_counts
        SELECT publisher, line_key, clusters, articles FROM _bl_delta
        ANTI JOIN boilerplate_line_counts USING (publisher, line_key)
    """)
    # Only keys in two or more clusters are candidates (most lines are story lines seen in one
    # cluster: they stay in the counts only). Upserted in one statement (no round trip through Python).
    con.execute(f"""
        INSERT OR REPLACE INTO boilerplate_lines BY NAME
        SELECT * FROM (
            WITH counts AS (
                SELECT c.publisher, c.line_key, c.clusters, c.articles
                FROM boilerplate_line_counts c SEMI JOIN _bl_delta USING (publisher, line_key)
                WHERE c.clusters >= 2
            ), sample AS (
                SELECT publisher, line_key, arg_min(sample_text, article_id) AS sample_text,
                       arg_min(story_like, article_id) AS story_like, max(words) AS words
                FROM {new} SEMI JOIN counts USING (publisher, line_key) GROUP BY publisher, line_key
            )
            SELECT c.publisher, c.line_key, c.clusters::INTEGER AS clusters, c.articles::INTEGER AS articles,
                   coalesce(old.words, sample.words)::INTEGER AS words,
                   coalesce(old.story_like, sample.story_like, false) AS story_like,
                   coalesce(old.sample_text, sample.sample_text) AS sample_text,
                   coalesce(old.first_seen, $now) AS first_seen, $now AS updated_at
            FROM counts c LEFT JOIN sample USING (publisher, line_key)
            LEFT JOIN boilerplate_lines old USING (publisher, line_key)
        )
    """, {"now": now})
    # A publisher's cluster count grows by its clusters new to this batch (not recounted).
    con.execute("""
        INSERT OR REPLACE INTO boilerplate_publishers
        SELECT f.publisher, (coalesce(p.clusters, 0) + coalesce(n.clusters, 0))::INTEGER, 0, ?
        FROM (SELECT DISTINCT publisher FROM _bl_fresh) f
        LEFT JOIN boilerplate_publishers p USING (publisher)
        LEFT JOIN (SELECT publisher, count(*) AS clusters FROM _bl_pubclusters GROUP BY publisher) n
            USING (publisher)
    """, [now])
    con.execute("DROP TABLE _bl_fresh; DROP TABLE _bl_pairs; DROP TABLE _bl_pubclusters; DROP TABLE _bl_delta")
    return added


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


_COUNTED = ", ".join(f"'{c}'" for c in COUNTED_REMOVALS)  # as SQL literals


def record_articles(con: duckdb.DuckDBPyConnection, article_ids: Sequence[str],
                    cfg: LearnedConfig = LearnedConfig(), *, own_transaction: bool = True) -> int:
    """Record stored articles (e.g. the batch just loaded): their body plus the lines the learned pass
    and the line model took from it (`COUNTED_REMOVALS`: so a learned line keeps being counted)."""
    if not article_ids:
        return 0
    con.register("_bl_ids", pa.table({"article_id": pa.array(list(article_ids), pa.string())}))
    try:
        rows = con.execute(f"""
            SELECT a.article_id, a.publisher, a.cluster_id,
                   a.body || coalesce((SELECT chr(10) || string_agg(r.text, chr(10) ORDER BY r.seq)
                                       FROM removals r
                                       WHERE r.article_id = a.article_id
                                         AND r.category IN ({_COUNTED})), '')
            FROM articles a SEMI JOIN _bl_ids USING (article_id)
        """).fetchall()
    finally:
        unregister(con, "_bl_ids")
    return record_lines(con, [(r[0], r[1], r[2], r[3]) for r in rows], cfg, own_transaction=own_transaction)


def _learned_where(cfg: LearnedConfig) -> tuple[str, list[object]]:
    # max_words and min_key_chars also keep lines from being recorded at all (text.learned.line_sightings,
    # to save the space); checked again here so that the settings in force when lines are learned apply
    # to sightings recorded under other ones.
    sql = """
        l.clusters >= ? AND l.words <= ? AND length(l.line_key) >= ?
        AND l.clusters >= ? * p.clusters
        AND (NOT l.story_like OR l.clusters >= ? * p.clusters)
    """
    return sql, [cfg.min_clusters, cfg.max_words, cfg.min_key_chars, cfg.min_share, cfg.story_min_share]


def learned_keys(con: duckdb.DuckDBPyConnection, publisher: str | None,
                 cfg: LearnedConfig = LearnedConfig()) -> frozenset[str]:
    """The normalize_line keys known to be boilerplate for this publisher (for clean_text's `learned`)."""
    pub = publisher_key(publisher)
    if not pub:
        return frozenset()
    where, params = _learned_where(cfg)
    rows = con.execute(f"""
        SELECT l.line_key FROM boilerplate_lines l JOIN boilerplate_publishers p USING (publisher)
        WHERE l.publisher = ? AND {where}
    """, [pub, *params]).fetchall()
    return frozenset(r[0] for r in rows)


def learned_keys_by_publisher(con: duckdb.DuckDBPyConnection,
                              cfg: LearnedConfig = LearnedConfig()) -> dict[str, frozenset[str]]:
    """publisher_key -> learned keys, for every publisher that has any (the pipeline's `learned` map)."""
    where, params = _learned_where(cfg)
    rows = con.execute(f"""
        SELECT l.publisher, list(l.line_key)
        FROM boilerplate_lines l JOIN boilerplate_publishers p USING (publisher)
        WHERE {where} GROUP BY l.publisher
    """, params).fetchall()
    return {pub: frozenset(keys) for pub, keys in rows}


@dataclass(frozen=True)
class RecleanRow:
    """A stored article that holds a line learned since it was cleaned."""

    article_id: str
    publisher: str | None
    title: str | None
    body: str
    last_seq: int  # its highest removals.seq (-1 when none)


def reclean_candidates(con: duckdb.DuckDBPyConnection,
                       cfg: LearnedConfig = LearnedConfig()) -> dict[str, frozenset[str]]:
    """The learned keys by publisher. The stored articles with a sighting of one not handled before (a
    join, not a scan of all bodies) are left in temp tables: `_bl_todo` (article, key) pairs and `_bl_candidates`
    (article, its highest removals.seq), which `reclean_rows` reads a slice at a time and `apply_reclean`
    marks handled. Temp tables outlive a transaction, so each slice can be one of its own."""
    con.execute("DROP TABLE IF EXISTS _bl_todo; DROP TABLE IF EXISTS _bl_candidates")
    learned = learned_keys_by_publisher(con, cfg)
    if not learned:
        return learned
    keys_table = pa.table({
        "publisher": pa.array([p for p, ks in learned.items() for _ in ks], pa.string()),
        "line_key": pa.array([k for ks in learned.values() for k in ks], pa.string()),
    })
    con.register("_bl_learned", keys_table)
    try:
        con.execute("""
            CREATE OR REPLACE TEMP TABLE _bl_todo AS
            SELECT DISTINCT s.article_id, s.line_key FROM boilerplate_sightings s
            SEMI JOIN _bl_learned k USING (publisher, line_key)
            ANTI JOIN boilerplate_applied a USING (article_id, line_key)
        """)
        # The seq each article's new removals follow, taken once: a slice updates only its own articles.
        con.execute("""
            CREATE OR REPLACE TEMP TABLE _bl_candidates AS
            SELECT t.article_id, coalesce(max(r.seq), -1) AS last_seq
            FROM (SELECT DISTINCT article_id FROM _bl_todo) t LEFT JOIN removals r USING (article_id)
            GROUP BY t.article_id
        """)
    finally:
        unregister(con, "_bl_learned")
    return learned


def reclean_rows(con: duckdb.DuckDBPyConnection, after: str, limit: int) -> list[RecleanRow]:
    """The next `limit` candidates of `reclean_candidates` with an article_id above `after` ("" for the
    first), in article_id order: a slice at a time, because a line learned across a large publisher can
    make every one of its stored bodies a candidate at once."""
    # The slice is cut from the candidate list, then joined to the bodies: cutting it from the bodies
    # joined to all candidates sorted every remaining candidate per slice (82 s for 200k; 3.4 s so).
    rows = con.execute("""
        SELECT a.article_id, a.publisher, a.title, a.body, i.last_seq
        FROM (SELECT * FROM _bl_candidates WHERE article_id > ? ORDER BY article_id LIMIT ?) i
        JOIN articles a USING (article_id)
        ORDER BY a.article_id
    """, [after, limit]).fetchall()
    return [RecleanRow(r[0], r[1], r[2], r[3], int(r[4])) for r in rows]


def stored_rows(con: duckdb.DuckDBPyConnection, after: str, limit: int) -> list[RecleanRow]:
    """The next `limit` stored articles with an article_id above `after` ("" for the first), in article_id
    order, each with its highest removals.seq: every article, for a re-clean that applies a user's rules
    files (`newsetl reclean --apply-rules`), which any stored body may hold a line of."""
    rows = con.execute("""
        SELECT a.article_id, a.publisher, a.title, a.body, coalesce(max(r.seq), -1)
        FROM (SELECT article_id, publisher, title, body FROM articles WHERE article_id > ?
              ORDER BY article_id LIMIT ?) a
        LEFT JOIN removals r USING (article_id)
        GROUP BY ALL ORDER BY a.article_id
    """, [after, limit]).fetchall()
    return [RecleanRow(r[0], r[1], r[2], r[3], int(r[4])) for r in rows]


def recleaned_articles(con: duckdb.DuckDBPyConnection, run_id: str) -> int:
    """Stored articles the re-clean of `run_id` changed: those its removals name. Also the count of a
    re-clean cut short, whose committed slices stay."""
    row = con.execute("SELECT count(DISTINCT article_id) FROM removals WHERE run_id = ? AND category = ?",
                      [run_id, LEARNED]).fetchone()
    return int(row[0]) if row else 0


def rules_recleaned_articles(con: duckdb.DuckDBPyConnection, run_id: str) -> int:
    """Stored articles a `newsetl reclean --apply-rules` run changed with the rules files' rules: those its
    removals of other categories than 'learned' name (a re-clean run has a run_id of its own)."""
    row = con.execute("SELECT count(DISTINCT article_id) FROM removals WHERE run_id = ? AND category <> ?",
                      [run_id, LEARNED]).fetchone()
    return int(row[0]) if row else 0


_UPDATES_SCHEMA = pa.schema([("article_id", pa.string()), ("body", pa.string()), ("word_count", pa.int32()),
                             ("body_hash", pa.string())])


def apply_reclean(con: duckdb.DuckDBPyConnection, updates: Sequence[Mapping[str, object]],
                  removals: Sequence[Mapping[str, object]], after: str, through: str) -> int:
    """Write re-cleaned bodies (article_id, body, word_count, body_hash) and their new `removals` rows, and
    mark the candidates of the slice (article_id above `after`, up to `through`) handled, removed or
    guarded alike. Runs in the caller's transaction: the slice's bodies, removals and marks go together."""
    update_bodies(con, updates, removals)
    con.execute("INSERT INTO boilerplate_applied SELECT article_id, line_key FROM _bl_todo "
                "WHERE article_id > ? AND article_id <= ?", [after, through])
    return len(updates)


def update_bodies(con: duckdb.DuckDBPyConnection, updates: Sequence[Mapping[str, object]],
                  removals: Sequence[Mapping[str, object]]) -> int:
    """Write re-cleaned bodies (article_id, body, word_count, body_hash) and their new `removals` rows, in the
    caller's transaction."""
    if updates:
        upd = pa.table({n: [u[n] for u in updates] for n in _UPDATES_SCHEMA.names}, schema=_UPDATES_SCHEMA)
        rem = rows_table(REMOVALS, removals)  # the table's own columns: a column added there is one here
        con.register("_bl_upd", upd)
        con.register("_bl_rem", rem)
        try:
            con.execute("""
                UPDATE articles SET body = u.body, word_count = u.word_count, body_hash = u.body_hash
                FROM _bl_upd u WHERE articles.article_id = u.article_id
            """)
            con.execute("INSERT INTO removals BY NAME SELECT * FROM _bl_rem")
        finally:
            unregister(con, "_bl_upd")
            unregister(con, "_bl_rem")
    return len(updates)


def learned_summary(con: duckdb.DuckDBPyConnection, cfg: LearnedConfig = LearnedConfig(),
                    limit: int = 20) -> list[Mapping[str, object]]:
    """The learned lines with their counts, most widespread first (for `newsetl stats` and people)."""
    where, params = _learned_where(cfg)
    cur = con.execute(f"""
        SELECT l.publisher, l.sample_text, l.clusters, p.clusters AS publisher_clusters, l.articles
        FROM boilerplate_lines l JOIN boilerplate_publishers p USING (publisher)
        WHERE {where} ORDER BY l.clusters DESC, l.publisher, l.line_key LIMIT ?
    """, [*params, limit])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def transaction(con: duckdb.DuckDBPyConnection, work: _Work, own: bool) -> int:
    """Run `work` in a transaction of its own, or as part of the caller's (DuckDB cannot tell us whether
    one is open without aborting it, so the caller says)."""
    if not own:
        return work()
    with in_transaction(con):
        return work()


__all__ = [
    "LEARNED", "LearnedConfig", "RecleanRow", "apply_reclean", "learned_keys", "learned_keys_by_publisher",
    "learned_summary", "publisher_key", "reclean_candidates", "reclean_rows", "recleaned_articles",
    "record_articles", "record_lines", "record_sightings", "rules_recleaned_articles", "sightings_table",
    "stored_rows", "update_bodies",
]
