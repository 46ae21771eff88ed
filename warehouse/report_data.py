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
    data.clusters = _rows(con, f"""
        SELECT c.cluster_id, c.copies, COALESCE(c.title, left(c.body, 80)) AS title,
               COALESCE(c.publisher, '(unknown)') AS canonical_publisher,
               (SELECT string_agg(DISTINCT COALESCE(a.publisher, '(unknown)'), ', '
                                  ORDER BY COALESCE(a.publisher, '(unknown)'))
                FROM articles a WHERE a.cluster_id = c.cluster_id) AS publishers,
               (SELECT count(DISTINCT COALESCE(a.publisher, '(unknown)'))
                FROM articles a WHERE a.cluster_id = c.cluster_id) AS n_publishers  -- as listed, (unknown) too
        FROM canonical_articles c
        WHERE c.copies > 1 AND NOT c.is_empty
        ORDER BY c.copies DESC, c.cluster_id LIMIT {TOP_CLUSTERS}
    """)
    data.removals_by_category = _rows(con, """
        SELECT category, sum(removals) AS removals, sum(chars_removed) AS chars
        FROM removals_by_publisher GROUP BY ALL ORDER BY removals DESC, category
    """)
    data.removals_by_publisher = _rows(con, f"""
        WITH top AS (SELECT publisher FROM removals_by_publisher GROUP BY ALL
                     ORDER BY sum(removals) DESC, publisher LIMIT {TOP_PUBLISHERS})
        SELECT r.publisher, r.category, r.removals
        FROM removals_by_publisher r JOIN top USING (publisher)
        ORDER BY r.publisher, r.category
    """)
    # `*`: a warehouse that no run opened since 2026-12-06 has the view without `still_open` (a report
    # opens it read-only: its views are as the last run left them); every input counts as open there.
    data.quarantine = _rows(con, "SELECT * EXCLUDE (last_seen) FROM quarantine_summary "
                                 "ORDER BY inputs DESC, stage, reason")
    for row in data.quarantine:
        row.setdefault("still_open", row["inputs"])
    data.runs = _rows(con, """
        SELECT h.run_id, h.status, h.started_at, h.seconds, h.read, h.loaded, h.quarantined, h.message,
               CAST(r.counts AS VARCHAR) AS counts
        FROM run_health h JOIN runs r USING (run_id) ORDER BY h.started_at
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
