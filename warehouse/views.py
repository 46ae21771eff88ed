"""Views for analysts and dashboards. Recreated on every migrate, so they always match the code.

Dashboards should read these views rather than the tables: the views are the stable surface
(DESIGN.md §4) while table internals may gain columns.
"""

from __future__ import annotations

import duckdb

VIEWS: dict[str, str] = {
    # One row per story: the canonical copy, with how many copies the story arrived in. Documents
    # that were boilerplate only (word_count 0) are articles but not stories.
    "canonical_articles": """
        SELECT a.*, c.size AS copies
        FROM articles a LEFT JOIN clusters c USING (cluster_id)
        WHERE a.is_canonical AND a.word_count > 0
    """,
    # Articles per publisher per day (publication date, else fetch date), with unique stories.
    "publisher_daily_counts": """
        SELECT CAST(COALESCE(published_at, fetched_at) AS DATE) AS day,
               COALESCE(publisher, '(unknown)') AS publisher,
               count(*) AS articles,
               count(*) FILTER (WHERE is_canonical) AS stories
        FROM articles
        GROUP BY ALL
    """,
    # Share of loaded articles that repeat a story already present, per publisher.
    "duplicate_rate": """
        SELECT COALESCE(publisher, '(unknown)') AS publisher,
               count(*) AS articles,
               count(*) FILTER (WHERE NOT is_canonical) AS duplicates,
               round(count(*) FILTER (WHERE NOT is_canonical) / count(*), 4) AS duplicate_rate
        FROM articles
        GROUP BY ALL
    """,
    # Boilerplate removed, by publisher and category: what the cleaner is doing, site by site.
    "removals_by_publisher": """
        SELECT COALESCE(a.publisher, '(unknown)') AS publisher, r.category,
               count(*) AS removals, count(DISTINCT r.article_id) AS articles,
               sum(length(r.text)) AS chars_removed
        FROM removals r JOIN articles a USING (article_id)
        GROUP BY ALL
    """,
    # Rejected inputs by stage and reason.
    "quarantine_summary": """
        SELECT stage, reason, count(*) AS inputs, max(quarantined_at) AS last_seen
        FROM quarantine
        GROUP BY ALL
    """,
    # Verified near-duplicate pairs with the titles and publishers of both sides, for inspection.
    "duplicate_pairs_view": """
        SELECT p.article_a, p.article_b, p.jaccard, p.containment, p.method, p.run_id,
               a.cluster_id, a.title AS title_a, b.title AS title_b,
               a.publisher AS publisher_a, b.publisher AS publisher_b,
               a.word_count AS words_a, b.word_count AS words_b
        FROM duplicate_pairs p
        LEFT JOIN articles a ON a.article_id = p.article_a
        LEFT JOIN articles b ON b.article_id = p.article_b
    """,
    # Run health: one row per run with its counts flattened for dashboards.
    "run_health": """
        SELECT run_id, flow_run_id, status, started_at, finished_at,
               date_diff('millisecond', started_at, finished_at) / 1000.0 AS seconds,
               CAST(counts->>'read' AS BIGINT) AS read,
               CAST(counts->>'loaded' AS BIGINT) AS loaded,
               CAST(counts->>'skipped_known' AS BIGINT) AS skipped_known,
               CAST(counts->>'quarantined' AS BIGINT) AS quarantined,
               message
        FROM runs
    """,
}


def create_views(con: duckdb.DuckDBPyConnection) -> None:
    for name, sql in VIEWS.items():
        con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")
