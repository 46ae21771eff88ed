"""Views for analysts and dashboards. Recreated on every migrate, so they always match the code.

Dashboards should read these views rather than the tables: the views are the stable surface
(../shared/DESIGN.md §4) while table internals may gain columns.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

from newsetl.schemas.tables import sql_literal

VIEWS: dict[str, str] = {
    # The day each article belongs to, and where that day came from (date_source), so that no chart
    # dates an article by a file's modification time without saying so:
    #   'published'  the article's own publication date;
    #   'fetched'    no publication date, but a real fetch time (an HTTP fetch, a WARC capture's WARC-Date);
    #   'undated'    neither: day is NULL. For files read from disk (txt, html, jsonl) fetched_at is the
    #                file's modification time, which says when the file was copied, not when the story ran
    #                (all 2,073 dedup-dev records "ran" on the day the set was unpacked).
    # The day is the UTC date: a plain CAST of a TIMESTAMPTZ converts in the client session's time zone,
    # which moved 209 of 213 articles a day back for an analyst in New York (a date-only publication date
    # is stored as midnight UTC).
    "article_days": """
        SELECT a.article_id, a.cluster_id, a.is_canonical, a.word_count,
               COALESCE(a.publisher, '(unknown)') AS publisher,
               CASE WHEN a.published_at IS NOT NULL THEN CAST(timezone('UTC', a.published_at) AS DATE)
                    WHEN d.kind IN ('url', 'warc') AND a.fetched_at IS NOT NULL
                    THEN CAST(timezone('UTC', a.fetched_at) AS DATE)
               END AS day,
               CASE WHEN a.published_at IS NOT NULL THEN 'published'
                    WHEN d.kind IN ('url', 'warc') AND a.fetched_at IS NOT NULL THEN 'fetched'
                    ELSE 'undated'
               END AS date_source
        FROM articles a LEFT JOIN documents d USING (doc_id)
    """,
    # One row per story (cluster): its canonical copy and how many copies it arrived in. Every cluster
    # has a row, so count(*) here equals count(*) FROM clusters. Clusters whose canonical copy is empty
    # (word_count 0: the document was boilerplate only, e.g. a cookie notice) are kept and flagged
    # `is_empty`: filter them out for "real" stories, but they are not silently missing.
    # The canonical is the most complete copy (signatures.completeness), sometimes a plain-text scrape
    # without metadata while an HTML copy of the same story had them: a title, a publication date or a
    # publisher it lacks is taken from its story's other copies, and `metadata_from_copies` says that it
    # was. The date and the publisher are what most copies say (ties: the earlier date, the first-seen
    # copy's publisher): a teaser's date in one copy's sidebar is no story's date. The title is the
    # longest titled copy's: on dedup-dev that named the page's headline for 71 of 94 stories, the
    # most frequent title for 66 (the four full-page dumps of a page share a first line, "Skip to
    # Article") and the most complete copy's for 65 (article extractors often drop the headline).
    "canonical_articles": """
        SELECT a.* REPLACE (COALESCE(a.title, t.title) AS title,
                            COALESCE(a.published_at, d.published_at) AS published_at,
                            COALESCE(a.publisher, p.publisher) AS publisher),
               c.size AS copies, a.word_count = 0 AS is_empty,
               -- the story's UTC publication day (as article_days: not the client's time zone)
               CAST(timezone('UTC', COALESCE(a.published_at, d.published_at)) AS DATE) AS day,
               (a.title IS NULL AND t.title IS NOT NULL)
               OR (a.published_at IS NULL AND d.published_at IS NOT NULL)
               OR (a.publisher IS NULL AND p.publisher IS NOT NULL)
                   AS metadata_from_copies
        FROM clusters c JOIN articles a ON a.article_id = c.canonical_article_id
        LEFT JOIN (
            SELECT cluster_id, arg_max(title, (word_count, title)) AS title
            FROM articles WHERE title IS NOT NULL
              AND cluster_id IN (SELECT cluster_id FROM clusters WHERE size > 1)
            GROUP BY cluster_id
        ) t ON t.cluster_id = c.cluster_id
        LEFT JOIN (
            SELECT cluster_id, arg_max(published_at, (n, -epoch_us(published_at))) AS published_at
            FROM (SELECT cluster_id, published_at, count(*) AS n
                  FROM articles WHERE published_at IS NOT NULL
                    AND cluster_id IN (SELECT cluster_id FROM clusters WHERE size > 1)
                  GROUP BY ALL)
            GROUP BY cluster_id
        ) d ON d.cluster_id = c.cluster_id
        LEFT JOIN (
            SELECT cluster_id, arg_max(publisher, (n, first, publisher)) AS publisher
            FROM (SELECT cluster_id, publisher, count(*) AS n, bool_or(article_id = cluster_id) AS first
                  FROM articles WHERE publisher IS NOT NULL
                    AND cluster_id IN (SELECT cluster_id FROM clusters WHERE size > 1)
                  GROUP BY ALL)
            GROUP BY cluster_id
        ) p ON p.cluster_id = c.cluster_id
    """,
    # Articles per publisher per day, with the stories they belong to (distinct clusters: a publisher
    # that only carries syndicated copies still covers stories) and how the day was found (see
    # article_days; day is NULL for 'undated' articles).
    "publisher_daily_counts": """
        SELECT day, date_source, publisher,
               count(*) AS articles,
               count(DISTINCT cluster_id) AS stories,
               count(*) FILTER (WHERE is_canonical) AS canonical_copies
        FROM article_days
        GROUP BY ALL
    """,
    # Share of loaded articles that repeat a story already present, per publisher: every copy but the
    # story's first seen (whose id the story's cluster_id is). Not "not canonical": the canonical is the
    # most complete copy, and an aggregator's fuller copy would make the original's publisher the duplicator.
    "duplicate_rate": """
        SELECT COALESCE(publisher, '(unknown)') AS publisher,
               count(*) AS articles,
               count(*) FILTER (WHERE article_id <> cluster_id) AS duplicates,
               round(count(*) FILTER (WHERE article_id <> cluster_id) / count(*), 4) AS duplicate_rate
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
    # Every quarantine row (without its raw bytes) and whether a later run loaded that source after all:
    # the same path, URL or record (`sources`, loaded or known), or a record of the quarantined file
    # ("path#N", the file's part before the last "#": string functions, a regexp took seconds over millions
    # of sources rows). A row stays as the history of the run that refused the input; `resolved_at` says the
    # input is no longer missing (a half-copied JSON line completed, an unreadable file made readable, a
    # URL that answered, a dump re-run with a field mapping, a truncated WARC capture of a page that another
    # capture holds whole: `quarantine.url`, the page's). Only a later run resolves: a file refused
    # whole while some of its records loaded in the same run stays open. Not resolved: a cut line whose
    # record has an `id` (refused as "path#<line>", it loads as "path#<id>"; nothing ties the two).
    "quarantine_status": """
        WITH later AS (
            SELECT source_uri AS uri, run_id, recorded_at FROM sources
            WHERE outcome = 'loaded' OR (outcome = 'skipped' AND reason = 'known')
        ), matched AS (
            SELECT q.quarantine_id, l.run_id, l.recorded_at
            FROM quarantine q JOIN later l ON l.uri = q.source_uri
            WHERE l.run_id <> q.run_id AND l.recorded_at > q.quarantined_at
            UNION ALL
            SELECT q.quarantine_id, l.run_id, l.recorded_at
            FROM quarantine q
            JOIN (SELECT substr(uri, 1, length(uri) - strpos(reverse(uri), '#')) AS file, run_id, recorded_at
                  FROM later WHERE contains(uri, '#')) l ON l.file = q.source_uri
            WHERE l.run_id <> q.run_id AND l.recorded_at > q.quarantined_at
            UNION ALL
            -- A folder that could not be listed: resolved once a later run read any source inside it
            -- (whatever became of that source: the folder itself was listed then).
            SELECT q.quarantine_id, s.run_id, s.recorded_at
            FROM (SELECT * FROM quarantine WHERE stage = 'discover' AND reason = 'unreadable') q
            JOIN sources s ON starts_with(s.source_uri, q.source_uri || '/')
            WHERE s.run_id <> q.run_id AND s.recorded_at > q.quarantined_at
            UNION ALL
            -- A refused capture of a page (a truncated WARC record): resolved once the warehouse holds that
            -- page from another capture, loaded before or after it (then from the refusal's own time on).
            SELECT q.quarantine_id, s.run_id, greatest(s.recorded_at, q.quarantined_at)
            FROM (SELECT * FROM quarantine WHERE url IS NOT NULL) q
            JOIN documents d ON d.url = q.url
            JOIN sources s ON s.doc_id = d.doc_id AND s.outcome = 'loaded'
            WHERE s.source_uri <> q.source_uri
        ), first_resolution AS (
            SELECT quarantine_id, min(recorded_at) AS resolved_at,
                   arg_min(run_id, recorded_at) AS resolved_run_id
            FROM matched GROUP BY quarantine_id
        )
        SELECT q.quarantine_id, q.source_uri, q.doc_id, q.run_id, q.stage, q.reason, q.detail,
               q.quarantined_at, f.resolved_at, f.resolved_run_id, q.url
        FROM quarantine q LEFT JOIN first_resolution f USING (quarantine_id)
    """,
    # Rejected inputs by stage and reason; `still_open`: those no later run has loaded (quarantine_status).
    "quarantine_summary": """
        SELECT stage, reason, count(*) AS inputs, count(*) FILTER (WHERE resolved_at IS NULL) AS still_open,
               max(quarantined_at) AS last_seen
        FROM quarantine_status
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
    # The versions of a page: the articles of one story (cluster) at one URL, oldest first, so that a
    # correction or an edit re-scraped later reads as the newer version of the page rather than as one more
    # copy. Ordered by fetch time (a capture's or a fetch's; a file's modification time otherwise), then by
    # the start of the run that loaded it, then by arrival (signatures.sid: the order the run read them in,
    # so two scrapes in one dump file, which share the file's time, keep the file's order; a user trial
    # found the id, a hash, ordering them), then by id. The story's canonical stays its most complete copy
    # (canonical_articles): `WHERE is_latest` gives each page as it last read. Articles without a URL are
    # not here: nothing says which of them are the same page.
    "article_versions": """
        SELECT a.article_id, a.cluster_id, a.url, a.publisher, a.title, a.published_at, a.fetched_at,
               a.word_count, a.is_canonical, a.run_id, r.started_at AS loaded_at,
               row_number() OVER w AS version,
               count(*) OVER page AS versions,
               lag(a.article_id) OVER w AS previous_article_id,
               row_number() OVER w = count(*) OVER page AS is_latest
        FROM articles a LEFT JOIN runs r USING (run_id) LEFT JOIN signatures s USING (article_id)
        WHERE a.url IS NOT NULL AND a.cluster_id IS NOT NULL
        WINDOW page AS (PARTITION BY a.cluster_id, a.url),
               w AS (page ORDER BY a.fetched_at ASC NULLS FIRST, r.started_at ASC NULLS FIRST,
                     s.sid ASC NULLS FIRST, a.article_id)
    """,
    # Every removal with what decided it. A pattern rule's id is read as the rule was in the run that
    # removed the span (runs.ruleset_sha256 -> rules): a rules file edited later, or a user file of the
    # same id, does not change what an old removal says. The other removals name their pass in `rule`:
    # the line model (category model, 'linemodel-vN:score'), a publisher's learned lines ('learned'), the
    # structural passes (sandwich, tail_list ...) and describe's head lines (offset_in cleaned_body).
    "removal_rules": """
        SELECT r.article_id, r.seq, r.category, r.rule, r.text, r.run_id,
               CASE WHEN ru.rule_id IS NOT NULL THEN 'pattern_rule'
                    WHEN r.category = 'model' THEN 'line_model'
                    WHEN r.rule = 'learned' THEN 'learned_line'
                    WHEN r.offset_in = 'cleaned_body' THEN 'describe'
                    WHEN runs.ruleset_sha256 IS NULL THEN NULL
                    ELSE 'structural_pass'
               END AS decided_by,
               CASE WHEN r.category = 'model' THEN TRY_CAST(split_part(r.rule, ':', 2) AS DOUBLE) END AS model_score,
               ru.scope, ru.match, ru.pattern, ru.source AS rule_source
        FROM removals r LEFT JOIN runs USING (run_id)
        LEFT JOIN rules ru ON ru.ruleset_sha256 = runs.ruleset_sha256 AND ru.rule_id = r.rule
    """,
    "run_health": """
        SELECT run_id, flow_run_id, status, started_at, finished_at,
               date_diff('millisecond', started_at, finished_at) / 1000.0 AS seconds,
               CAST(counts->>'read' AS BIGINT) AS read,
               CAST(counts->>'loaded' AS BIGINT) AS loaded,
               CAST(counts->>'skipped_known' AS BIGINT) AS skipped_known,
               -- of skipped_known: read again and refused again as an earlier run quarantined them (a feed
               -- still down); 0 in the rows of runs from before it was counted
               COALESCE(CAST(counts->>'refused_again' AS BIGINT), 0) AS refused_again,
               -- inputs that are not articles (WARC request records, HTTP 304s): without them `read` did not
               -- add up on a dashboard; 0 in the rows of runs from before it was counted
               COALESCE(CAST(counts->>'skipped_other' AS BIGINT), 0) AS skipped_other,
               CAST(counts->>'quarantined' AS BIGINT) AS quarantined,
               -- read but neither loaded, skipped nor quarantined when a failed or stopped run ended; NULL for a
               -- crashed run: not known (its `read` is what its rows record, docs/operations.md)
               CASE WHEN status = 'crashed' THEN CAST(counts->>'not_loaded' AS BIGINT)
                    ELSE COALESCE(CAST(counts->>'not_loaded' AS BIGINT), 0) END AS not_loaded,
               message
        FROM runs
    """,
}


# What each view is for, as `COMMENT ON VIEW` (duckdb_views().comment): an analyst finds it with SQL.
VIEW_COMMENTS: dict[str, str] = {
    "article_days": "one row per article: the UTC day it belongs to and where that day came from (date_source: "
                    "published | fetched | undated)",
    "canonical_articles": "one row per story: its canonical copy, with copies (how many) and a title, date or "
                          "publisher it lacked taken from its other copies (metadata_from_copies)",
    "publisher_daily_counts": "per UTC day and publisher: articles, distinct stories and canonical copies",
    "duplicate_rate": "per publisher: articles, how many repeat a story already present (every copy but the "
                      "story's first seen) and their share",
    "removals_by_publisher": "per publisher and boilerplate category: spans removed, articles they came from, "
                             "characters removed",
    "quarantine_status": "one row per refusal (no raw bytes): resolved_at when a later run loaded that input, "
                         "NULL while it is still missing",
    "quarantine_summary": "per stage and reason: refusals, how many are still open, the last one's time",
    "duplicate_pairs_view": "verified near-duplicate pairs with both sides' titles, publishers and sizes",
    "run_health": "one row per run: status, seconds and its counts as columns (read, loaded, skipped, quarantined)",
    "article_versions": "one row per article with a URL: its version among its story's articles at that URL "
                        "(oldest first by fetch time), the previous one, and is_latest",
    "removal_rules": "one row per removal with what decided it (decided_by: pattern_rule | line_model | learned_line "
                     "| structural_pass | describe; NULL: a run that recorded no rules, before version 16 or by an "
                     "older newsetl), the line model's score (model_score), and for a pattern rule its scope, "
                     "pattern and source as they were in that run",
}


# The columns of the views whose meaning their name does not say (the columns a view takes from a table
# are described on the table).
VIEW_COLUMN_COMMENTS: dict[str, dict[str, str]] = {
    "article_versions": {
        "version": "1 for the page's first capture, counting up by fetch time, then the loading run's start, "
                   "then arrival",
        "versions": "captures of this page (URL) in this story",
        "previous_article_id": "the version before this one (NULL for the first)",
        "is_latest": "the page as it last read: its newest version",
        "loaded_at": "when the run that loaded this version started",
    },
    "removal_rules": {
        "decided_by": "pattern_rule | line_model | learned_line | structural_pass | describe; NULL: a run that "
                      "recorded no rules (before version 16, or an older newsetl)",
        "model_score": "the line model's score of the removed line (category model), else NULL",
        "pattern": "the pattern rule's regular expression as it was in the removal's run",
        "rule_source": "library, or the path of the --rules file that defined the rule",
    },
}


def comment_views(con: duckdb.DuckDBPyConnection, names: Iterable[str]) -> None:
    """The comments of the views `names` (those VIEW_COMMENTS knows) and of their columns."""
    for name in names:
        if name in VIEW_COMMENTS:
            con.execute(f'COMMENT ON VIEW "{name}" IS {sql_literal(VIEW_COMMENTS[name])}')
        for column, text in VIEW_COLUMN_COMMENTS.get(name, {}).items():
            con.execute(f'COMMENT ON COLUMN "{name}"."{column}" IS {sql_literal(text)}')


def create_views(con: duckdb.DuckDBPyConnection) -> None:
    for name, sql in VIEWS.items():
        con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")
    comment_views(con, VIEWS)
