"""Lineage rows and the accounting check, on a real warehouse file, without Prefect."""

from __future__ import annotations

import json

import duckdb

from newsetl.schemas.records import Rejection, Skip
from newsetl.text.sign import SignConfig, sign_words
from newsetl.warehouse.dedup import DedupConfig
from newsetl.warehouse.lineage import balance_problems, occurrence_keys, stored_counts
from newsetl.warehouse.load import load_batch, quarantine_ids


def dup(line: int) -> Rejection:
    return Rejection(source_uri="/in/d.jsonl#dup-1", stage="read", reason="duplicate_record",
                     detail=f"line {line} repeats id 'dup-1'", raw=f"line {line}".encode())


def test_occurrence_keys_tell_repeats_apart_and_keep_first_keys() -> None:
    keys = occurrence_keys([("a", "b"), ("a", "b"), ("c",), ("a", "b")])
    assert len(set(keys)) == 4
    assert occurrence_keys([("a", "b")])[0] == keys[0]  # a lone rejection keeps the key it always had
    assert quarantine_ids([dup(2), dup(3)]) == quarantine_ids([dup(2), dup(3)])  # deterministic


def test_two_rejections_of_one_kind_from_one_source_are_two_rows_and_a_reload_adds_none(
        con: duckdb.DuckDBPyConnection) -> None:
    sigs = sign_words([], SignConfig())
    args = dict(docs=[], articles=[], signatures=sigs, dedup=DedupConfig(sign=SignConfig()))
    first = load_batch(con, "r1", rejections=[dup(2), dup(3)],
                       skips=[Skip("/in/copy.txt", "abc", "known")], **args)  # type: ignore[arg-type]
    assert (first.quarantined, first.known_rejections) == (2, 0)
    assert dict(first.quarantine_reasons) == {"read:duplicate_record": 2}
    again = load_batch(con, "r2", rejections=[dup(2), dup(3)],
                       skips=[Skip("/in/copy.txt", "abc", "known")], **args)  # type: ignore[arg-type]
    assert (again.quarantined, again.known_rejections) == (0, 2)
    assert con.execute("SELECT count(*) FROM quarantine").fetchall() == [(2,)]
    assert con.execute("SELECT source_uri, doc_id, outcome, reason, run_id FROM sources ORDER BY outcome, reason"
                       ).fetchall() == [("/in/d.jsonl#dup-1", None, "quarantined", "read:duplicate_record", "r1")] * 2 \
        + [("/in/copy.txt", "abc", "skipped", "known", "r1")]
    assert stored_counts(con, "r1") == {"articles": 0, "quarantine": 2}


def test_balance_problems_name_what_does_not_add_up() -> None:
    counts = {"read": 3, "loaded": 1, "skipped_known": 0, "skipped_other": 0, "quarantined": 2}
    assert balance_problems(counts, {"articles": 1, "quarantine": 2}) == []
    problems = balance_problems(counts | {"quarantined": 1}, {"articles": 1, "quarantine": 1})
    assert problems == ["read 3 != loaded 1 + skipped 0 + quarantined 1 (+1 unaccounted)"]
    assert "quarantine rows" in balance_problems(counts, {"articles": 1, "quarantine": 1})[0]


def test_a_rejection_met_again_with_other_bytes_is_a_row_of_its_own(con: duckdb.DuckDBPyConnection) -> None:
    """A broken line 2 of a re-exported file, broken another way, has the id of the first one (source,
    stage, reason, occurrence): it was counted known and its bytes kept nowhere. It is a new row now, with
    its own sources row; the same bytes met again are known. So is a repeat of a record id in a later read
    piece of a big file (`dup`, in another batch)."""
    sigs = sign_words([], SignConfig())
    args = dict(docs=[], articles=[], signatures=sigs, dedup=DedupConfig(sign=SignConfig()))

    def broken(raw: bytes) -> Rejection:
        return Rejection(source_uri="/in/feed.jsonl#2", stage="read", reason="bad_json", detail="cut", raw=raw)

    assert load_batch(con, "r1", rejections=[broken(b"first export")], **args).quarantined == 1  # type: ignore[arg-type]
    second = load_batch(con, "r2", rejections=[broken(b"second export"), dup(2500)], **args)  # type: ignore[arg-type]
    third = load_batch(con, "r2", rejections=[dup(4500)], **args)  # type: ignore[arg-type]
    again = load_batch(con, "r3", rejections=[broken(b"second export")], **args)  # type: ignore[arg-type]
    back = load_batch(con, "r4", rejections=[broken(b"first export")], **args)  # type: ignore[arg-type]
    assert (second.quarantined, third.quarantined) == (2, 1)
    assert (again.quarantined, again.known_rejections, back.quarantined, back.known_rejections) == (0, 1, 0, 1)
    assert sorted(r for (r,) in con.execute("SELECT raw FROM quarantine").fetchall()) == [
        b"first export", b"line 2500", b"line 4500", b"second export"]
    assert con.execute("SELECT run_id, count(*) FROM sources WHERE source_uri = '/in/feed.jsonl#2' "
                       "GROUP BY ALL ORDER BY 1").fetchall() == [("r1", 1), ("r2", 1)]
    assert stored_counts(con, "r2") == {"articles": 0, "quarantine": 3}


def test_rejections_whose_occurrence_shifted_are_known_and_a_broken_feed_is_one_row(
        con: duckdb.DuckDBPyConnection) -> None:
    """Record id "a" repeated on lines 2 and 3; a later export drops line 2, so the old line 3's bytes come
    as the first repeat: known, not quarantined twice. A URL whose broken answer changes at every fetch
    (a feed's build date) stays one row: a row per scheduled run would grow without end."""
    sigs = sign_words([], SignConfig())
    args = dict(docs=[], articles=[], signatures=sigs, dedup=DedupConfig(sign=SignConfig()))

    def repeat(raw: bytes) -> Rejection:
        return Rejection("/in/f.jsonl#a", "read", "duplicate_record", "repeats id 'a'", raw=raw)

    def feed(raw: bytes) -> Rejection:
        return Rejection("https://example.org/feed.xml", "read", "bad_feed", "not XML", raw=raw)

    first = load_batch(con, "r1", rejections=[repeat(b"v2"), repeat(b"v3"), feed(b"<rss 1")],
                       **args)  # type: ignore[arg-type]
    later = load_batch(con, "r2", rejections=[repeat(b"v3"), feed(b"<rss 2")], **args)  # type: ignore[arg-type]
    assert (first.quarantined, later.quarantined, later.known_rejections) == (3, 0, 2)
    assert con.execute("SELECT count(*) FROM sources").fetchall() == [(3,)]


def test_a_source_refused_for_another_reason_later_gets_a_sources_row_for_it(
        con: duckdb.DuckDBPyConnection) -> None:
    """A path first missing (a dangling link), then empty: two outcomes of one source, both in `sources`
    (keyed by the path alone, the second was dropped)."""
    sigs = sign_words([], SignConfig())
    args = dict(docs=[], articles=[], signatures=sigs, dedup=DedupConfig(sign=SignConfig()))
    load_batch(con, "r1", rejections=[Rejection("/in/a.txt", "discover", "not_found", "gone")],
               **args)  # type: ignore[arg-type]
    load_batch(con, "r2", rejections=[Rejection("/in/a.txt", "read", "empty_input", "0 bytes", raw=b"")],
               **args)  # type: ignore[arg-type]
    load_batch(con, "r3", rejections=[Rejection("/in/a.txt", "read", "empty_input", "0 bytes", raw=b"")],
               **args)  # type: ignore[arg-type]
    assert con.execute("SELECT reason, run_id FROM sources ORDER BY run_id").fetchall() == [
        ("discover:not_found", "r1"), ("read:empty_input", "r2")]


def test_a_crashed_run_gets_the_counts_of_the_rows_it_left(con: duckdb.DuckDBPyConnection) -> None:
    """A run killed -9 never wrote its counts: its articles carried a run_id whose `loaded` was NULL, so the
    runs' loaded did not add up to the articles. The next run marks it crashed with the counts of its rows,
    and as `read` the inputs those rows record, so that its row balances; `not_loaded` is NULL: what else it
    read is not known (it had `read` NULL and `not_loaded` 0: a user trial)."""
    from newsetl.warehouse.load import start_run

    start_run(con, "r1", None, {})
    for n in range(3):
        con.execute("INSERT INTO articles (article_id, doc_id, source_uri, body, word_count, body_hash, cluster_id, "
                    "is_canonical, run_id) VALUES (?, ?, ?, 'b', 1, 'h', ?, true, 'r1')", [f"a{n}", f"d{n}",
                                                                                          f"/in/{n}", f"a{n}"])
    load_batch(con, "r1", docs=[], articles=[], signatures=sign_words([], SignConfig()),  # type: ignore[arg-type]
               dedup=DedupConfig(sign=SignConfig()), rejections=[dup(2)], skips=[Skip("/in/c.txt", "x", "known")])
    start_run(con, "r2", None, {})
    (status, counts), = con.execute("SELECT status, counts FROM runs WHERE run_id = 'r1'").fetchall()
    assert status == "crashed"
    assert {k: v for k, v in json.loads(counts).items() if k != "from"} == {
        "read": 5, "loaded": 3, "quarantined": 1, "skipped_known": 1, "skipped_other": 0, "not_loaded": None}
    assert con.execute("SELECT read, loaded, skipped_known + skipped_other + quarantined, not_loaded FROM run_health "
                       "WHERE run_id = 'r1'").fetchall() == [(5, 3, 2, None)]
    # a row marked crashed before `read` was recorded gets it at the next run's start
    old = {"loaded": 3, "quarantined": 1, "skipped_known": 1, "from": "the rows the crashed run left"}
    con.execute("UPDATE runs SET counts = ? WHERE run_id = 'r1'", [json.dumps(old)])
    start_run(con, "r3", None, {})
    assert con.execute("SELECT read, not_loaded FROM run_health WHERE run_id = 'r1'").fetchall() == [(5, None)]
