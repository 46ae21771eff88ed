"""Lineage rows and the accounting check, on a real warehouse file, without Prefect."""

from __future__ import annotations

import duckdb

from newsetl.schemas.records import Rejection
from newsetl.text.sign import SignConfig, sign_words
from newsetl.warehouse.dedup import DedupConfig
from newsetl.warehouse.lineage import Skip, balance_problems, occurrence_keys, stored_counts
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
