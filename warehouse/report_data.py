"""The numbers behind the run report (`newsetl report`, and the report each run writes).

Every query reads the analyst views and the contract tables by name only, so it runs the same on the
warehouse and on its snapshot (`<stem>.snapshot.duckdb`, same names): the end-of-run report is
rendered from the snapshot just published, without holding the warehouse.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import duckdb

Rows = list[dict[str, Any]]

# How many publishers and clusters the charts show by name (the rest are summed as "others" or left out).
TOP_PUBLISHERS = 15
TOP_CLUSTERS = 15
# Runs the run-health chart draws, the latest: an hourly schedule makes 8,760 a year.
RUNS_SHOWN = 500


@dataclass
class ReportData:
    totals: dict[str, Any] = field(default_factory=dict)
    daily: Rows = field(default_factory=list)             # day, articles, stories (dated articles only)
    monthly: Rows = field(default_factory=list)           # month (first day), articles, stories
    date_sources: Rows = field(default_factory=list)      # date_source, articles
    publishers: Rows = field(default_factory=list)        # publisher, articles, stories, duplicates, rate
    clusters: Rows = field(default_factory=list)          # biggest clusters with their publishers
    removals_by_category: Rows = field(default_factory=list)
    removals_by_publisher: Rows = field(default_factory=list)  # publisher, category, removals
    quarantine: Rows = field(default_factory=list)        # stage, reason, inputs, still_open
    runs: Rows = field(default_factory=list)              # one row per run, oldest first, with stage seconds


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Rows:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _removal_tables(by_publisher: Rows) -> tuple[Rows, Rows]:
    """From removals_by_publisher's rows: the removals per category (most first) and the rows of the
    TOP_PUBLISHERS publishers with the most removals (by publisher, then category)."""
    per_category: dict[str, list[int]] = {}
    per_publisher: dict[str, int] = {}
    for r in by_publisher:
        totals = per_category.setdefault(r["category"], [0, 0])
        totals[0] += r["removals"]
        totals[1] += r["chars_removed"] or 0
        per_publisher[r["publisher"]] = per_publisher.get(r["publisher"], 0) + r["removals"]
    categories = [{"category": c, "removals": n, "chars": chars}
                  for c, (n, chars) in sorted(per_category.items(), key=lambda kv: (-kv[1][0], kv[0]))]
    top = set(sorted(per_publisher, key=lambda p: (-per_publisher[p], p))[:TOP_PUBLISHERS])
    rows = sorted(({"publisher": r["publisher"], "category": r["category"], "removals": r["removals"]}
                   for r in by_publisher if r["publisher"] in top), key=lambda r: (r["publisher"], r["category"]))
    return categories, rows


def report_data(con: duckdb.DuckDBPyConnection) -> ReportData:
    data = ReportData()
    data.totals = _rows(con, """
        SELECT (SELECT count(*) FROM articles) AS articles,
               (SELECT count(*) FROM clusters) AS stories,
               (SELECT count(*) FROM canonical_articles WHERE is_empty) AS empty_stories,
               (SELECT count(*) FROM articles WHERE article_id <> cluster_id) AS duplicates,
               (SELECT count(DISTINCT publisher) FROM articles) AS publishers,  -- outlets named: no (unknown)
               (SELECT count(*) FROM removals) AS removals,
               (SELECT count(*) FROM quarantine) AS quarantined,
               (SELECT count(*) FROM runs) AS runs,
               (SELECT count(*) FROM runs WHERE status IN ('failed', 'crashed')) AS failed_runs,
               (SELECT count(*) FROM runs WHERE status = 'cancelled') AS stopped_runs
    """)[0]
    # Stories per day are distinct clusters over all publishers (a syndicated story counts once a day).
    data.daily = _rows(con, """
        SELECT day, count(*) AS articles, count(DISTINCT cluster_id) AS stories
        FROM article_days WHERE day IS NOT NULL GROUP BY day ORDER BY day
    """)
    data.monthly = _rows(con, """
        SELECT date_trunc('month', day) AS month, count(*) AS articles, count(DISTINCT cluster_id) AS stories
        FROM article_days WHERE day IS NOT NULL GROUP BY ALL ORDER BY month
    """)
    data.date_sources = _rows(con, """
        SELECT date_source, count(*) AS articles FROM article_days GROUP BY ALL ORDER BY articles DESC
    """)
    data.publishers = _rows(con, f"""
        SELECT d.publisher, d.articles, s.stories, d.duplicates, d.duplicate_rate
        FROM duplicate_rate d
        JOIN (SELECT publisher, count(DISTINCT cluster_id) AS stories FROM article_days GROUP BY ALL) s
          USING (publisher)
        ORDER BY d.articles DESC, d.publisher LIMIT {TOP_PUBLISHERS}
    """)
    # The biggest clusters are chosen from `clusters` first, then only they are read through
    # canonical_articles: ranking that view read every cluster's canonical body (4.3 s of a 1M-article
    # snapshot's report; 1.4 s so).
    data.clusters = _rows(con, f"""
        WITH top AS (
            SELECT c.cluster_id FROM clusters c JOIN articles a ON a.article_id = c.canonical_article_id
            WHERE c.size > 1 AND a.word_count <> 0  -- canonical_articles' copies > 1 AND NOT is_empty
            ORDER BY c.size DESC, c.cluster_id LIMIT {TOP_CLUSTERS}),
        pubs AS (  -- as listed, (unknown) too
            SELECT cluster_id,
                   string_agg(DISTINCT COALESCE(publisher, '(unknown)'), ', '
                              ORDER BY COALESCE(publisher, '(unknown)')) AS publishers,
                   count(DISTINCT COALESCE(publisher, '(unknown)')) AS n_publishers
            FROM articles WHERE cluster_id IN (SELECT cluster_id FROM top) GROUP BY cluster_id)
        SELECT c.cluster_id, c.copies, COALESCE(c.title, left(c.body, 80)) AS title,
               COALESCE(c.publisher, '(unknown)') AS canonical_publisher, p.publishers, p.n_publishers
        FROM canonical_articles c JOIN pubs p USING (cluster_id)
        WHERE c.cluster_id IN (SELECT cluster_id FROM top)
        ORDER BY c.copies DESC, c.cluster_id
    """)
    # The view once, summed here both ways: each of three readings joined every removal to its article
    # (5.4 of a 1M-article snapshot's 10 s of report queries).
    by_publisher = _rows(con, "SELECT publisher, category, removals, chars_removed FROM removals_by_publisher")
    data.removals_by_category, data.removals_by_publisher = _removal_tables(by_publisher)
    # `*`: a warehouse that no run opened since 2026-12-06 has the view without `still_open` (a report
    # opens it read-only: its views are as the last run left them); every input counts as open there.
    data.quarantine = _rows(con, "SELECT * EXCLUDE (last_seen) FROM quarantine_summary "
                                 "ORDER BY inputs DESC, stage, reason")
    for row in data.quarantine:
        row.setdefault("still_open", row["inputs"])
    data.runs = _rows(con, f"""
        SELECT * FROM (
            SELECT h.run_id, h.status, h.started_at, h.seconds, h.read, h.loaded, h.quarantined, h.message,
                   CAST(r.counts AS VARCHAR) AS counts
            FROM run_health h JOIN runs r USING (run_id) ORDER BY h.started_at DESC, h.run_id LIMIT {RUNS_SHOWN})
        ORDER BY started_at, run_id
    """)
    for run in data.runs:
        counts = json.loads(run.pop("counts") or "{}")
        stages = counts.get("seconds") or {}
        run["stages"] = {k: float(v) for k, v in stages.items() if k != "total"}
        total = run["seconds"] or stages.get("total")
        # Inputs handled per second (loaded, skipped or quarantined): a re-run that loads nothing is fast, not idle.
        # A stopped run read ahead what it never handled (`not_loaded`): not counted as done.
        handled = (run["read"] or 0) - int(counts.get("not_loaded") or 0)
        run["docs_per_second"] = round(handled / total, 2) if handled > 0 and total else None
    return data
