"""The analyst views on a small real warehouse file: days never come from a file's modification time,
stories are clusters, canonical_articles has one row per cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_days_come_from_publication_or_a_real_fetch_never_a_file_time(filled_db: Path) -> None:
    got = dict(((a, (str(d) if d else None, s)) for a, d, s in
                rows(filled_db, "SELECT article_id, day, date_source FROM article_days")))
    assert got["a1"] == ("2025-11-03", "published")
    assert got["a4"] == ("2025-12-24", "fetched")  # a WARC capture: WARC-Date is a real fetch time
    # A JSONL record and a txt file without a date: fetched_at is the file's mtime, not a date of the story.
    assert got["a2"] == (None, "undated")
    assert got["a5"] == (None, "undated")
    by_source: dict[object, object] = dict(
        rows(filled_db, "SELECT date_source, sum(articles) FROM publisher_daily_counts GROUP BY ALL"))
    assert by_source == {"published": 3, "fetched": 1, "undated": 2}


def test_stories_are_counted_per_cluster(filled_db: Path) -> None:
    # Yahoo carries only copies of Reuters' story c1: one story, zero canonical copies, on two days.
    yahoo = rows(filled_db, "SELECT day, articles, stories, canonical_copies FROM publisher_daily_counts "
                            "WHERE publisher = 'Yahoo' ORDER BY day NULLS LAST")
    assert [(str(d) if d else None, a, s, c) for d, a, s, c in yahoo] == [("2025-11-04", 1, 1, 0), (None, 1, 1, 0)]
    unknown = rows(filled_db, "SELECT stories FROM publisher_daily_counts WHERE publisher = '(unknown)'")
    assert unknown == [(1,)]


def test_canonical_articles_has_one_row_per_cluster_and_flags_empty_ones(filled_db: Path) -> None:
    stories = rows(filled_db, "SELECT count(*) FROM canonical_articles")
    assert stories == rows(filled_db, "SELECT count(*) FROM clusters")
    got = rows(filled_db, "SELECT cluster_id, article_id, copies, is_empty FROM canonical_articles ORDER BY 1")
    assert got == [("a1", "a1", 3, False), ("a5", "a5", 1, True), ("a6", "a4", 2, False)]


def test_duplicate_rate_counts_copies_of_stories_already_present(filled_db: Path) -> None:
    got = {p: (a, d) for p, a, d, _ in rows(filled_db, "SELECT * FROM duplicate_rate")}
    assert got["Yahoo"] == (2, 2) and got["Reuters"] == (1, 0)
    # The storm story was seen first from an unknown outlet (a6); BBC's later, longer copy is its canonical,
    # and still the copy: "not canonical" would make the original the duplicate.
    assert got["BBC"] == (1, 1) and got["(unknown)"] == (1, 0)


def test_a_day_is_the_utc_date_whatever_the_session_time_zone(filled_db: Path) -> None:
    # a6 was published 2025-11-03 20:00 UTC: in Tokyo that is already the 4th, but its day is the UTC date
    for zone in ("UTC", "Asia/Tokyo", "America/Los_Angeles"):
        with duckdb.connect(str(filled_db), read_only=True) as con:
            con.execute(f"SET TimeZone = '{zone}'")
            day = con.execute("SELECT day FROM article_days WHERE article_id = 'a6'").fetchall()
        assert [str(d) for (d,) in day] == ["2025-11-03"], zone


def test_a_canonical_without_metadata_takes_its_story_copies(filled_db: Path) -> None:
    # The storm story's canonical (a4, a WARC capture) has no publication date; its first copy (a6) has one.
    got = rows(filled_db, "SELECT cluster_id, title, CAST(timezone('UTC', published_at) AS VARCHAR), publisher, "
                          "metadata_from_copies "
                          "FROM canonical_articles ORDER BY 1")
    assert got == [("a1", "Rates rise", "2025-11-03 08:00:00", "Reuters", False),
                   ("a5", None, None, "Site", False),  # a story of one copy: nothing to take
                   ("a6", "Storm warning", "2025-11-03 20:00:00", "BBC", True)]
    # the articles table itself is what each copy said
    assert rows(filled_db, "SELECT published_at FROM articles WHERE article_id = 'a4'") == [(None,)]


def test_a_story_s_missing_metadata_is_what_most_of_its_copies_say(filled_db: Path) -> None:
    # A sidebar teaser's date is in one copy, the longest: the story's date and publisher are what most
    # copies say; its title is the longest titled copy's.
    copies = [  # article_id, title, published_at, publisher, words
        ("x1", None, None, None, 700),
        ("x2", "Oil drifts lower as supply grows", "2016-09-12 00:00:00+00", "Aggregator", 900),
        ("x3", "Oil drifts lower", "2019-11-20 02:00:00+00", "Paper", 400),  # in New York: the 19th
        ("x4", "Oil drifts lower", "2019-11-20 02:00:00+00", "Paper", 380),
        ("x5", None, None, "Aggregator", 300),
    ]
    with duckdb.connect(str(filled_db)) as con:
        for aid, title, published, publisher, words in copies:
            con.execute("INSERT INTO articles (article_id, doc_id, source_uri, publisher, title, published_at, "
                        "body, word_count, body_hash, cluster_id, is_canonical, run_id) "
                        "VALUES (?, ?, ?, ?, ?, ?, 'b', ?, ?, 'x2', ?, 'r1')",
                        [aid, aid, f"/in/{aid}", publisher, title, published, words, f"h-{aid}", aid == "x1"])
        con.execute("INSERT INTO clusters (cluster_id, canonical_article_id, size, updated_run_id) "
                    "VALUES ('x2', 'x1', 5, 'r1')")
    got = rows(filled_db, "SELECT title, CAST(timezone('UTC', published_at) AS VARCHAR), publisher, "
                          "metadata_from_copies FROM canonical_articles WHERE cluster_id = 'x2'")
    # Two copies each name the paper and the aggregator: the tie goes to the first-seen copy's (x2)
    assert got == [("Oil drifts lower as supply grows", "2019-11-20 02:00:00", "Aggregator", True)]
    for zone in ("UTC", "America/New_York", "Asia/Tokyo"):  # its day is the UTC date, in any session zone
        with duckdb.connect(str(filled_db), read_only=True) as con:
            con.execute(f"SET TimeZone = '{zone}'")
            day = con.execute("SELECT CAST(day AS VARCHAR) FROM canonical_articles WHERE cluster_id = 'x2'").fetchall()
        assert day == [("2019-11-20",)], zone


def test_a_quarantined_input_is_resolved_only_by_a_later_run_that_loaded_it(filled_db: Path) -> None:
    """`quarantine_status`: the same source loaded (or known) by a later run resolves its row; so does a
    record of a file refused whole ("path#N"). A load in the refusing run itself, a later skip for another
    reason, and another source do not."""
    with duckdb.connect(str(filled_db)) as con:
        for qid, uri, reason in (("q2", "/in/feed.jsonl#2", "bad_json"), ("q3", "/in/locked.txt", "unreadable"),
                                 ("q4", "/in/whole.jsonl", "too_large"), ("q5", "/in/other.txt", "unreadable")):
            con.execute("INSERT INTO quarantine VALUES (?, ?, NULL, 'r1', 'read', ?, 'why', NULL, "
                        "TIMESTAMPTZ '2026-01-01 10:00:02+00', NULL)", [qid, uri, reason])
        con.execute("""
            INSERT INTO sources VALUES
              ('s1', '/in/bad.html', 'd1', 'loaded', NULL, 'r1', TIMESTAMPTZ '2026-01-01 10:00:03+00'),
              ('s2', '/in/feed.jsonl#2', 'd2', 'loaded', NULL, 'r2', TIMESTAMPTZ '2026-01-02 10:00:01+00'),
              ('s3', '/in/locked.txt', 'd3', 'skipped', 'known', 'r2', TIMESTAMPTZ '2026-01-02 10:00:01+00'),
              ('s4', '/in/whole.jsonl#7', 'd4', 'loaded', NULL, 'r2', TIMESTAMPTZ '2026-01-02 10:00:02+00'),
              ('s5', '/in/other.txt', 'd5', 'skipped', 'not_news', 'r2', TIMESTAMPTZ '2026-01-02 10:00:02+00'),
              ('s6', '/in/other.txt.bak', 'd6', 'loaded', NULL, 'r2', TIMESTAMPTZ '2026-01-02 10:00:02+00')
        """)
        # A folder that could not be listed, then was: a source inside it was read by a later run (q6), even
        # one refused; a folder whose name only starts alike (q7, /in/lockedbox) stays open.
        for qid, uri in (("q6", "/in/locked"), ("q7", "/in/locked-box")):
            con.execute("INSERT INTO quarantine VALUES (?, ?, NULL, 'r1', 'discover', 'unreadable', 'why', NULL, "
                        "TIMESTAMPTZ '2026-01-01 10:00:02+00', NULL)", [qid, uri])
        con.execute("INSERT INTO sources VALUES ('s7', '/in/locked/a.txt', NULL, 'quarantined', 'read:empty_input', "
                    "'r2', TIMESTAMPTZ '2026-01-02 10:00:03+00')")
        # A truncated WARC capture of a page: resolved by another capture of that page loaded by a later crawl
        # (q8); a page no other capture holds stays open (q9).
        for qid, rec, url in (("q8", "urn:uuid:8", "https://news.example/p"),
                              ("q9", "urn:uuid:9", "https://news.example/q")):
            con.execute("INSERT INTO quarantine VALUES (?, ?, NULL, 'r1', 'read', 'warc_truncated', 'why', NULL, "
                        "TIMESTAMPTZ '2026-01-01 10:00:02+00', ?)", [qid, f"/crawl/one.warc.gz#{rec}", url])
        con.execute("INSERT INTO documents BY NAME SELECT 'd8' AS doc_id, '/crawl/two.warc.gz#urn:uuid:80' AS "
                    "source_uri, 'warc' AS kind, 'https://news.example/p' AS url, 'r2' AS first_run_id, "
                    "'<p>whole</p>'::BLOB AS raw, 12 AS bytes")
        con.execute("INSERT INTO sources VALUES ('s8', '/crawl/two.warc.gz#urn:uuid:80', 'd8', 'loaded', NULL, "
                    "'r2', TIMESTAMPTZ '2026-01-02 10:00:04+00')")
    got = dict(rows(filled_db, "SELECT quarantine_id, resolved_run_id FROM quarantine_status"))
    assert got == {"q1": None, "q2": "r2", "q3": "r2", "q4": "r2", "q5": None, "q6": "r2", "q7": None,
                   "q8": "r2", "q9": None}
    summary = rows(filled_db, "SELECT stage, reason, inputs, still_open FROM quarantine_summary ORDER BY ALL")
    assert summary == [("discover", "unreadable", 2, 1), ("read", "bad_json", 1, 0), ("read", "empty_input", 1, 1),
                       ("read", "too_large", 1, 0), ("read", "unreadable", 2, 1), ("read", "warc_truncated", 2, 1)]


def test_article_versions_orders_a_pages_captures_and_marks_the_latest(filled_db: Path) -> None:
    # A page re-scraped after a correction is the newer version of that page, not one more copy: the view
    # numbers the story's articles at one URL by fetch time, then by arrival (two scrapes in one dump file
    # share the file's time: the file's order decides, not the ids, which are hashes); other URLs and other
    # stories stay apart. The dashboards' snapshot answers the same.
    from newsetl.warehouse.snapshot import publish_snapshot

    with duckdb.connect(str(filled_db)) as con:
        for aid, url in (("a1", "https://wire.example/rates"), ("a2", "https://wire.example/rates"),
                         ("a3", "https://wire.example/rates"), ("a4", "https://bbc.example/storm")):
            con.execute("UPDATE articles SET url = ? WHERE article_id = ?", [url, aid])
        con.execute("UPDATE articles SET fetched_at = TIMESTAMPTZ '2026-01-02 09:00:00+00' WHERE article_id = 'a3'")
        # a2 arrived before a1 (same file, same time): sid is the order the run read them in
        for sid, aid in ((2, "a1"), (1, "a2"), (3, "a3"), (4, "a4")):
            con.execute("INSERT INTO signatures (sid, article_id, body_hash, rank_key, body_key, n_shingles, n_words, "
                        "banded, minhash, run_id) VALUES (?, ?, 'h', 0, 0, 1, 1, false, ''::BLOB, 'r1')", [sid, aid])
        publish_snapshot(con, filled_db, "r1")
    query = ("SELECT article_id, version, versions, previous_article_id, is_latest "
             "FROM article_versions ORDER BY url, version")
    expected = [("a4", 1, 1, None, True),
                ("a2", 1, 3, None, False), ("a1", 2, 3, "a2", False), ("a3", 3, 3, "a1", True)]
    assert rows(filled_db, query) == expected
    assert rows(filled_db.with_name("news.snapshot.duckdb"), query) == expected


def test_removal_rules_reads_the_line_models_score_and_the_pass_of_each_removal(filled_db: Path) -> None:
    with duckdb.connect(str(filled_db)) as con:
        con.execute("INSERT INTO removals VALUES ('a1', 1, 'model', 'linemodel-v5:0.73', 'Read more', 20, 'r1', "
                    "'repaired_text'), ('a1', 2, 'learned', 'learned', 'Follow us', 40, 'r1', 'described_body')")
    got = rows(filled_db, "SELECT seq, decided_by, model_score FROM removal_rules WHERE article_id = 'a1' ORDER BY seq")
    # r1 recorded no ruleset (a run before version 16): its pattern-rule removal says so with NULL
    assert got == [(0, None, None), (1, "line_model", 0.73), (2, "learned_line", None)]
