"""Re-clean stored articles whose bodies hold lines that became known boilerplate.

The warehouse says which articles and which keys (`reclean_candidates`, then `reclean_rows` a slice at a
time) and stores the result (`apply_reclean`); the cleaner's learned pass does the removing, here between
them, so the warehouse never cleans text itself. Plain Python: the Prefect task in `ingest.py` and `newsetl reclean`
both call `reclean`.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

from newsetl.text.clean import clean_text
from newsetl.text.learned import LearnedConfig, publisher_key
from newsetl.text.rules import Ruleset, load_rules
from newsetl.text.sign import body_hash
from newsetl.text.words import count_words
from newsetl.warehouse.learned import RecleanRow, apply_reclean, reclean_candidates, reclean_rows, transaction

# Stored articles re-cleaned per slice: their bodies are what the process holds at once.
RECLEAN_SLICE = 1000


def reclean(con: duckdb.DuckDBPyConnection, run_id: str, cfg: LearnedConfig = LearnedConfig(),
            rules: Ruleset | None = None, *, own_transaction: bool = True,
            stop: Callable[[], bool] = lambda: False) -> int:
    """Re-clean stored articles whose bodies hold lines that are now known boilerplate.

    For each such article: the learned lines go from `articles.body` (word_count and body_hash follow),
    and each becomes a `removals` row (category and rule 'learned', position = offset in the body before
    this re-clean, seq after the article's existing removals, run_id = `run_id`). Headlines
    (`articles.title`) and the rules' protect patterns are never removed. Idempotent: a second call finds
    nothing left to remove. Returns the number of articles changed. A transaction per slice of
    RECLEAN_SLICE articles (DuckDB holds a transaction's updated bodies in memory until it commits: a
    backlog of 100k 3.6 KB bodies ran the writer's 1 GB limit out of memory in one, the process at 2.3 GB;
    in slices, 90 s and 0.9 GB); a re-clean cut short resumes where it stopped, every slice whole. With
    `own_transaction=False`, all in the caller's. `stop()` is asked before each slice: a run being stopped
    ends after the slice it is in (the rest is done by the next re-clean).
    """
    only = (rules or load_rules()).without_patterns()
    learned = reclean_candidates(con, cfg)
    changed = 0
    after = ""
    while learned and not stop() and (rows := reclean_rows(con, after, RECLEAN_SLICE)):
        changed += transaction(con, lambda rows=rows, after=after: _reclean_slice(
            con, rows, after, learned, only, run_id), own_transaction)
        after = rows[-1].article_id
    return changed


def _reclean_slice(con: duckdb.DuckDBPyConnection, rows: list[RecleanRow], after: str,
                   learned: dict[str, frozenset[str]], only: Ruleset, run_id: str) -> int:
    """One slice: each body cleaned of its publisher's learned lines; the changed ones written with their
    removals, and the slice's candidates (article_id above `after`) marked handled."""
    updates: list[dict[str, object]] = []
    removals: list[dict[str, object]] = []
    for row in rows:
        keys = learned.get(publisher_key(row.publisher))
        if not keys:
            continue
        result = clean_text(row.body, only, titles=[row.title] if row.title else (), learned=keys)
        if not result.removals:
            continue
        updates.append({"article_id": row.article_id, "body": result.body,
                        "word_count": count_words(result.body), "body_hash": body_hash(result.body)})
        removals.extend({"article_id": row.article_id, "seq": n, "category": r.category, "rule": r.rule,
                         "text": r.text, "position": r.position, "run_id": run_id}
                        for n, r in enumerate(result.removals, start=row.last_seq + 1))
    return apply_reclean(con, updates, removals, after, rows[-1].article_id)
