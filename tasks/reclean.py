"""Re-clean stored articles whose bodies hold lines that became known boilerplate.

The warehouse says which articles and which keys (`reclean_candidates`, then `reclean_rows` a slice at a
time) and stores the result (`apply_reclean`); the cleaner's learned pass does the removing, here between
them, so the warehouse never cleans text itself. Plain Python: the Prefect task in `ingest.py` calls
`reclean` inside an ingest run; `newsetl reclean` runs `reclean_warehouse`, a run of its own.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from newsetl.schemas.records import OFFSET_IN_STORED, CleanResult
from newsetl.tasks.books import published_line, status_report, write_report_file
from newsetl.tasks.publish import publish
from newsetl.tasks.stop import IngestInterrupted, stop_on_signals, stop_requested, stop_waits_for
from newsetl.text.clean import clean_text
from newsetl.text.learned import LearnedConfig, publisher_key
from newsetl.text.rules import Ruleset, load_rules
from newsetl.text.sign import body_hash
from newsetl.text.words import count_words
from newsetl.warehouse.connect import (
    check_intact,
    check_path_writable,
    discarded_if_refused,
    migrate,
    run_lock,
    writer,
)
from newsetl.warehouse.learned import (
    RecleanRow,
    apply_reclean,
    reclean_candidates,
    reclean_rows,
    recleaned_articles,
    rules_recleaned_articles,
    stored_rows,
    transaction,
    update_bodies,
)
from newsetl.warehouse.load import finish_run, start_run

# Stored articles re-cleaned per slice: their bodies are what the process holds at once.
RECLEAN_SLICE = 1000
# Why a re-clean run is `cancelled` (its row's message and its run report).
STOPPED = "stopped by a signal: the slices re-cleaned so far are kept; run it again for the rest"


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


def apply_rules(con: duckdb.DuckDBPyConnection, run_id: str, patterns: Ruleset, *,
                stop: Callable[[], bool] = lambda: False) -> int:
    """Apply the pattern rules of `patterns` (a user's rules files: `Ruleset.only_from`) to every stored
    article, a transaction per slice of RECLEAN_SLICE: what a rule removes leaves `articles.body`
    (word_count and body_hash follow) and becomes a `removals` row with the rule's category and id
    (position = offset in the body before this re-clean, offset_in 'stored', run_id = `run_id`). Headlines
    and protect patterns are spared, as at ingest. No line model and no learned lines: the library's rules
    and the model cleaned these bodies when they were ingested. Idempotent: what a rule removed is gone,
    so a second call removes nothing. Returns the number of articles changed.

    A rule reads the stored body, not the input it was written for: a `head` or `tail` rule counts its
    lines among the lines the cleaner kept, so it may reach a line that was further in at ingest."""
    changed = 0
    after = ""
    while not stop() and (rows := stored_rows(con, after, RECLEAN_SLICE)):
        changed += transaction(con, lambda rows=rows: _apply_slice(con, rows, patterns, run_id), True)
        after = rows[-1].article_id
    return changed


def _apply_slice(con: duckdb.DuckDBPyConnection, rows: list[RecleanRow], patterns: Ruleset, run_id: str) -> int:
    """One slice of `apply_rules`: each body cleaned by the rules; the changed ones written with their removals."""
    updates: list[dict[str, object]] = []
    removals: list[dict[str, object]] = []
    for row in rows:
        result = clean_text(row.body, patterns, titles=[row.title] if row.title else ())
        if result.removals:
            _changed(row, result, run_id, updates, removals)
    return update_bodies(con, updates, removals)


def _changed(row: RecleanRow, result: CleanResult, run_id: str, updates: list[dict[str, object]],
             removals: list[dict[str, object]]) -> None:
    """Add a re-cleaned article's new body and its removals (numbered after its stored ones) to the slice's."""
    updates.append({"article_id": row.article_id, "body": result.body,
                    "word_count": count_words(result.body), "body_hash": body_hash(result.body)})
    removals.extend({"article_id": row.article_id, "seq": n, "category": r.category, "rule": r.rule,
                     "text": r.text, "position": r.position, "run_id": run_id, "offset_in": OFFSET_IN_STORED}
                    for n, r in enumerate(result.removals, start=row.last_seq + 1))


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
        if result.removals:
            _changed(row, result, run_id, updates, removals)
    return apply_reclean(con, updates, removals, after, rows[-1].article_id)


@dataclass(frozen=True)
class RecleanRun:
    """What `reclean_warehouse` did: its `runs` row's id and status (completed or cancelled), the articles
    it changed, the publication (`publish`'s answer; None when the run was stopped) and its run report file."""

    run_id: str
    status: str
    recleaned: int
    published: dict[str, Any] | None
    run_report: str | None
    by_rules: int = 0  # articles the rules files' rules changed (`--apply-rules`)


def reclean_warehouse(db: str | Path, rules: Ruleset, *, wait_seconds: float | None,
                      say: Callable[[str], None], apply: Ruleset | None = None) -> RecleanRun:
    """`newsetl reclean`: re-clean the stored articles of warehouse `db` with the lines learned so far, as a
    run of its own: the run lock held, a `runs` row (its removals name it), the snapshot and the HTML report
    published when it completes, a run report file beside the warehouse as an ingest writes one.

    SIGINT and SIGTERM stop it between slices (`stop_on_signals`; a second SIGINT abandons the slice, which
    rolls back): the slices done stay, the row says `cancelled` with their count, nothing is published
    (the next run publishes), and the run report says so. A failure is recorded `failed` and raised.
    `wait_seconds`: how long a write waits for a reader holding the file (None: the default). `apply`: the
    rules files' own pattern rules, applied to every stored article after the learned lines (`apply_rules`;
    the run's counts say `recleaned_by_rules`)."""
    db = str(db)
    run_id = f"reclean-{uuid.uuid4().hex[:12]}"
    check_path_writable(db)  # a directory given as --db: refused before its `.lock` is made beside it
    with stop_on_signals(say), run_lock(db) as lock:
        # The wait for a reader to let go of the file is outside the deferred step: a Ctrl-C while it waits
        # stops the command at once (nothing is written yet, so there is no row to mark). Deferred with the
        # slices, it waited out the whole --wait, saying "stopping after the slice ... being re-cleaned"
        # (a user trial: 40 s). A refusal of the file (not DuckDB's, cut short, busy) takes the lock file
        # with it if this made it.
        with discarded_if_refused(lock), writer(db, wait_seconds=wait_seconds) as con, \
                stop_waits_for("the slice of stored articles being re-cleaned"):
            check_intact(con, db)  # before the first write: a file cut short is refused untouched
            migrate(con, db)
            start_run(con, run_id, None, {"command": "reclean"})
            try:
                changed = reclean(con, run_id, LearnedConfig(), rules, stop=stop_requested)
                by_rules = apply_rules(con, run_id, apply, stop=stop_requested) if apply is not None else 0
            except BaseException as exc:
                # The slice it was in rolled back; the slices before it are in (a re-run does the rest).
                stopped = isinstance(exc, KeyboardInterrupt | IngestInterrupted)
                status = "cancelled" if stopped else "failed"
                reason = (f"{STOPPED} (a second signal abandoned the slice in progress)" if stopped
                          else f"{type(exc).__name__}: {exc}")
                with contextlib.suppress(Exception):  # the original error is the one to see
                    done = recleaned_articles(con, run_id)
                    done_rules = rules_recleaned_articles(con, run_id) if apply is not None else None
                    finish_run(con, run_id, status, _counts(done, done_rules), reason)
                    _report(db, run_id, status, done, None, reason, done_rules)
                raise
            status = "cancelled" if stop_requested() else "completed"
            rules_count = by_rules if apply is not None else None
            if status == "completed":
                # The report first, as an ingest's (`complete_run`): killed while it publishes, the run is
                # not left `completed` without one.
                _report(db, run_id, status, changed, None, None, rules_count, publishing=True)
            finish_run(con, run_id, status, _counts(changed, rules_count), STOPPED if status == "cancelled" else None)
        published: dict[str, Any] | None = None
        if status == "completed":
            with stop_waits_for("publishing the snapshot for dashboards"):
                try:
                    published = publish(db, run_id)
                except Exception as exc:  # the re-clean is in; only the dashboards' copy is stale
                    published = {"error": f"{type(exc).__name__}: {exc}"}
    report = _report(db, run_id, status, changed, published, STOPPED if status == "cancelled" else None,
                     rules_count)
    return RecleanRun(run_id, status, changed, published, report, by_rules)


def _counts(recleaned: int, by_rules: int | None) -> dict[str, int]:
    """The `runs.counts` of a re-clean run: `recleaned_by_rules` only when rules files were applied."""
    return {"recleaned": recleaned} if by_rules is None else {"recleaned": recleaned, "recleaned_by_rules": by_rules}


def _report(db: str, run_id: str, status: str, recleaned: int, published: dict[str, Any] | None,
            reason: str | None, by_rules: int | None = None, publishing: bool = False) -> str | None:
    """The run report file of a re-clean run (`<stem>.runs/<run_id>.md`); its path, None if not written.
    `publishing`: written as the run completes, before it publishes (`published_line`)."""
    rules_line = [] if by_rules is None else [f"Stored articles re-cleaned by the rules files' rules: {by_rules}"]
    return write_report_file(db, run_id, status_report(
        "reclean", run_id, status, db, f"Stored articles re-cleaned of lines learned as boilerplate: {recleaned}",
        *rules_line, *([f"Reason: {reason}"] if reason else []),
        f"## Published for dashboards\n\n{published_line(published, publishing)}"))
