"""Learned boilerplate: lines that recur across many different stories of one publisher.

CCNet and Dolma drop lines that repeat verbatim across a shard; news needs one refinement: copies of
the *same* story (syndication, re-scrapes) share every line, and those lines are content. So a line is
counted once per story cluster (`cluster_id`), never once per article, and it becomes boilerplate for a
publisher only when it recurs in at least `min_clusters` distinct clusters making up at least
`min_share` of that publisher's clusters. A line that reads as a story sentence needs more
(`story_min_share`): a stock phrase like "He declined to comment." must not go because it is common.

Tables (created by `ensure_schema`; the lead may fold them into a schemas/ddl.py migration):

- `boilerplate_sightings(publisher, line_key, cluster_id, article_id)`: one row per (article, short
  line); the exact, idempotent record of where a line was seen (re-recording an article adds nothing).
- `boilerplate_lines(publisher, line_key, clusters, articles, words, story_like, sample_text,
  first_seen, updated_at)`: the candidates, i.e. keys seen in two or more distinct clusters of a
  publisher, with their exact distinct cluster and article counts (refreshed for the keys each
  `record_lines` call sees). Lines seen once stay in the sightings only, so this table stays small.
- `boilerplate_publisher_clusters(publisher, cluster_id)` and `boilerplate_publishers(publisher,
  clusters, ...)`: the distinct clusters recorded per publisher (the denominator of `min_share`).
- `boilerplate_applied(article_id, line_key)`: pairs `reclean` has handled, so a later run looks only
  at articles with a newly learned line, not at every article that ever had one.

Flow: after a batch is loaded, `record_articles(con, article_ids)` (or `record_lines` with bodies);
`learned_keys(con, publisher, cfg)` / `learned_keys_by_publisher(con, cfg)` give the keys to pass to
`clean_text(..., learned=...)`; `reclean(con, run_id, cfg)` re-cleans stored articles whose bodies hold
lines that became known boilerplate (articles.body, word_count, body_hash updated; `removals` rows with
category and rule 'learned'); running it again changes nothing.

Publishers are matched by `publisher_key` (casefolded, trimmed); articles without a publisher are never
learned from nor re-cleaned.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import pyarrow as pa

from tasks.text.clean import Ruleset, clean_text, is_story_line, load_rules, normalize_line
from tasks.text.sign import body_hash
from warehouse.connect import rollback

LEARNED = "learned"
_WORD = re.compile(r"\w+")
_Work = Callable[[], int]


@dataclass(frozen=True)
class LearnedConfig:
    """When a recurring line counts as a publisher's boilerplate. Every field has a working default."""

    min_clusters: int = 5  # distinct story clusters the line must appear in
    min_share: float = 0.1  # ... and at least this share of the publisher's recorded clusters
    story_min_share: float = 0.5  # a line that reads as a story sentence must be in this share
    max_words: int = 40  # longer lines are paragraphs: never recorded, never learned
    min_key_chars: int = 6  # shorter normalized keys ("by", "ap") are too generic to learn
    batch_rows: int = 50_000  # sightings inserted per Arrow chunk


DDL = """
CREATE TABLE IF NOT EXISTS boilerplate_sightings (
    publisher   VARCHAR NOT NULL,
    line_key    VARCHAR NOT NULL,
    cluster_id  VARCHAR NOT NULL,
    article_id  VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS boilerplate_lines (
    publisher   VARCHAR NOT NULL,
    line_key    VARCHAR NOT NULL,
    clusters    INTEGER NOT NULL,     -- distinct story clusters the line was seen in
    articles    INTEGER NOT NULL,     -- distinct articles
    words       INTEGER NOT NULL,
    story_like  BOOLEAN NOT NULL,     -- reads as a story sentence: needs story_min_share
    sample_text VARCHAR NOT NULL,     -- one verbatim occurrence, for people reading the table
    first_seen  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (publisher, line_key)
);
CREATE TABLE IF NOT EXISTS boilerplate_applied (
    article_id  VARCHAR NOT NULL,     -- reclean already handled this learned key for this article
    line_key    VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS boilerplate_publisher_clusters (
    publisher   VARCHAR NOT NULL,
    cluster_id  VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS boilerplate_publishers (
    publisher   VARCHAR PRIMARY KEY,
    clusters    INTEGER NOT NULL,     -- distinct story clusters recorded for the publisher
    articles    INTEGER NOT NULL,     -- reserved (0): articles are counted per line in boilerplate_lines
    updated_at  TIMESTAMPTZ NOT NULL
);
"""

_SIGHTINGS_SCHEMA = pa.schema([("publisher", pa.string()), ("line_key", pa.string()),
                               ("cluster_id", pa.string()), ("article_id", pa.string()),
                               ("sample_text", pa.string()), ("words", pa.int32())])


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the learned-boilerplate tables if they are missing (idempotent)."""
    con.execute(DDL)


def publisher_key(publisher: str | None) -> str:
    """How publishers are matched: "The Independent " and "the independent" are one publisher."""
    return (publisher or "").strip().casefold()


def _line_rows(article_id: str, publisher: str, cluster_id: str, body: str,
               cfg: LearnedConfig) -> Iterable[tuple[str, str, str, str, str, int]]:
    seen: set[str] = set()
    for raw in body.split("\n"):
        line = raw.strip()
        if not line:
            continue
        words = len(line.split())
        if words > cfg.max_words:
            continue
        key = normalize_line(line)
        if len(key) < cfg.min_key_chars or key in seen:
            continue
        seen.add(key)
        yield publisher, key, cluster_id, article_id, line, words


def record_lines(con: duckdb.DuckDBPyConnection, rows: Sequence[tuple[str, str | None, str | None, str]],
                 cfg: LearnedConfig = LearnedConfig(), *, own_transaction: bool = True) -> int:
    """Record the short lines of article bodies: rows are (article_id, publisher, cluster_id, body).

    Pass the body as the patterns left it (before learned removal), so that lines keep being counted.
    An article without a cluster counts as its own cluster. Idempotent: a line of an article already
    recorded adds nothing. Returns the number of new sightings. With `own_transaction=False` it runs
    inside the caller's open transaction (e.g. the batch load), else in a transaction of its own.
    """
    ensure_schema(con)
    cols: dict[str, list[object]] = {name: [] for name in _SIGHTINGS_SCHEMA.names}
    for article_id, publisher, cluster_id, body in rows:
        pub = publisher_key(publisher)
        if not pub or not body:
            continue
        for row in _line_rows(article_id, pub, cluster_id or f"article:{article_id}", body, cfg):
            for name, value in zip(_SIGHTINGS_SCHEMA.names, row, strict=True):
                cols[name].append(value)
    if not cols["line_key"]:
        return 0
    table = pa.table(cols, schema=_SIGHTINGS_SCHEMA)
    return _transaction(con, lambda: _record(con, table), own_transaction)


def _record(con: duckdb.DuckDBPyConnection, table: pa.Table) -> int:
    now = datetime.now(UTC)
    con.register("_bl_new", table)
    try:
        # The batch's lines not recorded yet for their article (re-recording an article adds nothing).
        con.execute("""
            CREATE OR REPLACE TEMP TABLE _bl_fresh AS
            SELECT DISTINCT n.publisher, n.line_key, n.cluster_id, n.article_id FROM _bl_new n
            ANTI JOIN boilerplate_sightings s USING (publisher, article_id, line_key)
        """)
        added = _count(con, "_bl_fresh")
        con.execute("INSERT INTO boilerplate_sightings SELECT * FROM _bl_fresh")
        con.execute("""
            INSERT INTO boilerplate_publisher_clusters
            SELECT DISTINCT publisher, cluster_id FROM _bl_fresh
            ANTI JOIN boilerplate_publisher_clusters USING (publisher, cluster_id)
        """)
        # Exact distinct-cluster counts of the keys this batch saw; only keys in two or more clusters
        # are kept as candidates (most lines are story lines seen once: they stay in the sightings only).
        candidates = con.execute("""
            WITH counts AS (
                SELECT s.publisher, s.line_key, count(DISTINCT s.cluster_id) AS clusters,
                       count(DISTINCT s.article_id) AS articles
                FROM boilerplate_sightings s
                SEMI JOIN (SELECT DISTINCT publisher, line_key FROM _bl_fresh) f USING (publisher, line_key)
                GROUP BY s.publisher, s.line_key
                HAVING count(DISTINCT s.cluster_id) >= 2
            ), sample AS (
                SELECT publisher, line_key, any_value(sample_text) AS sample_text, max(words) AS words
                FROM _bl_new GROUP BY publisher, line_key
            )
            SELECT c.publisher, c.line_key, c.clusters, c.articles,
                   coalesce(old.words, sample.words), coalesce(old.sample_text, sample.sample_text),
                   old.first_seen
            FROM counts c LEFT JOIN sample USING (publisher, line_key)
            LEFT JOIN boilerplate_lines old USING (publisher, line_key)
        """).fetchall()
        if candidates:
            upsert = pa.table({
                "publisher": [c[0] for c in candidates], "line_key": [c[1] for c in candidates],
                "clusters": pa.array([c[2] for c in candidates], pa.int32()),
                "articles": pa.array([c[3] for c in candidates], pa.int32()),
                "words": pa.array([c[4] for c in candidates], pa.int32()),
                "story_like": [is_story_line(c[5]) for c in candidates],
                "sample_text": [c[5] for c in candidates],
                "first_seen": pa.array([c[6] or now for c in candidates], pa.timestamp("us", tz="UTC")),
                "updated_at": pa.array([now] * len(candidates), pa.timestamp("us", tz="UTC")),
            })
            con.register("_bl_upsert", upsert)
            try:
                con.execute("INSERT OR REPLACE INTO boilerplate_lines BY NAME SELECT * FROM _bl_upsert")
            finally:
                con.unregister("_bl_upsert")
        con.execute("""
            INSERT OR REPLACE INTO boilerplate_publishers
            SELECT publisher, count(*), 0, ? FROM boilerplate_publisher_clusters
            WHERE publisher IN (SELECT DISTINCT publisher FROM _bl_fresh)
            GROUP BY publisher
        """, [now])
        con.execute("DROP TABLE IF EXISTS _bl_fresh")
    finally:
        con.unregister("_bl_new")
    return added


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def record_articles(con: duckdb.DuckDBPyConnection, article_ids: Sequence[str],
                    cfg: LearnedConfig = LearnedConfig(), *, own_transaction: bool = True) -> int:
    """Record stored articles (e.g. the batch just loaded): their body plus the lines learned
    boilerplate already took from it (so a learned line keeps being counted)."""
    if not article_ids:
        return 0
    ensure_schema(con)
    con.register("_bl_ids", pa.table({"article_id": pa.array(list(article_ids), pa.string())}))
    try:
        rows = con.execute(f"""
            SELECT a.article_id, a.publisher, a.cluster_id,
                   a.body || coalesce((SELECT chr(10) || string_agg(r.text, chr(10) ORDER BY r.seq)
                                       FROM removals r
                                       WHERE r.article_id = a.article_id AND r.category = '{LEARNED}'), '')
            FROM articles a SEMI JOIN _bl_ids USING (article_id)
        """).fetchall()
    finally:
        con.unregister("_bl_ids")
    return record_lines(con, [(r[0], r[1], r[2], r[3]) for r in rows], cfg, own_transaction=own_transaction)


def _learned_where(cfg: LearnedConfig) -> tuple[str, list[object]]:
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
    ensure_schema(con)
    where, params = _learned_where(cfg)
    rows = con.execute(f"""
        SELECT l.line_key FROM boilerplate_lines l JOIN boilerplate_publishers p USING (publisher)
        WHERE l.publisher = ? AND {where}
    """, [pub, *params]).fetchall()
    return frozenset(r[0] for r in rows)


def learned_keys_by_publisher(con: duckdb.DuckDBPyConnection,
                              cfg: LearnedConfig = LearnedConfig()) -> dict[str, frozenset[str]]:
    """publisher_key -> learned keys, for every publisher that has any (the pipeline's `learned` map)."""
    ensure_schema(con)
    where, params = _learned_where(cfg)
    rows = con.execute(f"""
        SELECT l.publisher, list(l.line_key)
        FROM boilerplate_lines l JOIN boilerplate_publishers p USING (publisher)
        WHERE {where} GROUP BY l.publisher
    """, params).fetchall()
    return {pub: frozenset(keys) for pub, keys in rows}


def reclean(con: duckdb.DuckDBPyConnection, run_id: str, cfg: LearnedConfig = LearnedConfig(),
            rules: Ruleset | None = None, *, own_transaction: bool = True) -> int:
    """Re-clean stored articles whose bodies hold lines that are now known boilerplate.

    For each such article: the learned lines go from `articles.body` (word_count and body_hash follow),
    and each becomes a `removals` row (category and rule 'learned', position = offset in the body before
    this re-clean, seq after the article's existing removals, run_id = `run_id`). Headlines
    (`articles.title`) and the rules' protect patterns are never removed. Idempotent: a second call finds
    nothing left to remove. Returns the number of articles changed. One transaction (its own, or the
    caller's with `own_transaction=False`).
    """
    ensure_schema(con)
    learned = learned_keys_by_publisher(con, cfg)
    if not learned:
        return 0
    only = (rules or load_rules()).learned_only()
    keys_table = pa.table({
        "publisher": pa.array([p for p, ks in learned.items() for _ in ks], pa.string()),
        "line_key": pa.array([k for ks in learned.values() for k in ks], pa.string()),
    })
    con.register("_bl_learned", keys_table)
    try:
        # Only articles with a sighting of a learned key not handled before can change: a join, not a
        # scan of all bodies.
        con.execute("""
            CREATE OR REPLACE TEMP TABLE _bl_todo AS
            SELECT DISTINCT s.article_id, s.line_key FROM boilerplate_sightings s
            SEMI JOIN _bl_learned k USING (publisher, line_key)
            ANTI JOIN boilerplate_applied a USING (article_id, line_key)
        """)
        rows = con.execute("""
            SELECT a.article_id, a.publisher, a.title, a.body,
                   coalesce((SELECT max(r.seq) FROM removals r WHERE r.article_id = a.article_id), -1)
            FROM articles a SEMI JOIN _bl_todo t USING (article_id)
            ORDER BY a.article_id
        """).fetchall()
    finally:
        con.unregister("_bl_learned")
    updates: dict[str, list[object]] = {"article_id": [], "body": [], "word_count": [], "body_hash": []}
    removals: dict[str, list[object]] = {"article_id": [], "seq": [], "category": [], "rule": [], "text": [],
                                         "position": [], "run_id": []}
    for article_id, publisher, title, body, last_seq in rows:
        keys = learned.get(publisher_key(publisher))
        if not keys:
            continue
        result = clean_text(body, only, titles=[title] if title else (), learned=keys)
        if not result.removals:
            continue
        updates["article_id"].append(article_id)
        updates["body"].append(result.body)
        updates["word_count"].append(len(_WORD.findall(result.body)))
        updates["body_hash"].append(body_hash(result.body))
        for n, r in enumerate(result.removals, start=int(last_seq) + 1):
            for name, value in (("article_id", article_id), ("seq", n), ("category", r.category),
                                ("rule", r.rule), ("text", r.text), ("position", r.position),
                                ("run_id", run_id)):
                removals[name].append(value)
    if not updates["article_id"]:
        return _transaction(con, lambda: _mark_applied(con), own_transaction)
    upd = pa.table(updates, schema=pa.schema([("article_id", pa.string()), ("body", pa.string()),
                                              ("word_count", pa.int32()), ("body_hash", pa.string())]))
    rem = pa.table(removals, schema=pa.schema([("article_id", pa.string()), ("seq", pa.int32()),
                                               ("category", pa.string()), ("rule", pa.string()),
                                               ("text", pa.string()), ("position", pa.int32()),
                                               ("run_id", pa.string())]))

    def apply() -> int:
        con.register("_bl_upd", upd)
        con.register("_bl_rem", rem)
        try:
            con.execute("""
                UPDATE articles SET body = u.body, word_count = u.word_count, body_hash = u.body_hash
                FROM _bl_upd u WHERE articles.article_id = u.article_id
            """)
            con.execute("INSERT INTO removals BY NAME SELECT * FROM _bl_rem")
        finally:
            con.unregister("_bl_upd")
            con.unregister("_bl_rem")
        _mark_applied(con)
        return upd.num_rows

    return _transaction(con, apply, own_transaction)


def _mark_applied(con: duckdb.DuckDBPyConnection) -> int:
    """Remember the (article, learned key) pairs this reclean handled, removed or guarded alike."""
    con.execute("INSERT INTO boilerplate_applied SELECT article_id, line_key FROM _bl_todo")
    con.execute("DROP TABLE IF EXISTS _bl_todo")
    return 0


def learned_summary(con: duckdb.DuckDBPyConnection, cfg: LearnedConfig = LearnedConfig(),
                    limit: int = 20) -> list[Mapping[str, object]]:
    """The learned lines with their counts, most widespread first (for `newsetl stats` and people)."""
    ensure_schema(con)
    where, params = _learned_where(cfg)
    cur = con.execute(f"""
        SELECT l.publisher, l.sample_text, l.clusters, p.clusters AS publisher_clusters, l.articles
        FROM boilerplate_lines l JOIN boilerplate_publishers p USING (publisher)
        WHERE {where} ORDER BY l.clusters DESC, l.publisher, l.line_key LIMIT ?
    """, [*params, limit])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _transaction(con: duckdb.DuckDBPyConnection, work: _Work, own: bool) -> int:
    """Run `work` in a transaction of its own, or as part of the caller's (DuckDB cannot tell us whether
    one is open without aborting it, so the caller says)."""
    if not own:
        return work()
    con.execute("BEGIN TRANSACTION")
    try:
        out = work()
    except BaseException:
        rollback(con)
        raise
    con.execute("COMMIT")
    return out


__all__ = [
    "DDL", "LEARNED", "LearnedConfig", "ensure_schema", "learned_keys", "learned_keys_by_publisher",
    "learned_summary", "publisher_key", "reclean", "record_articles", "record_lines",
]
