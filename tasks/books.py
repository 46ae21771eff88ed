"""The books of one ingest run: its start (`begin_run`: the warehouse migrated, the run row, what earlier
runs learned), its counts as it goes (`RunTally`, shown by the CLI's progress display), its end
(`complete_run` after the books balance, `record_failure` for a run that failed or was stopped), and the
run report (a Prefect artifact and a file beside the warehouse). The flow calls these and never opens the
warehouse itself."""

from __future__ import annotations

import contextlib
import json
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.exceptions import TerminationSignal

from newsetl.schemas.records import Rejection
from newsetl.sources.reasons import SKIP_REASONS, UNREADABLE
from newsetl.tasks.report import write_text_atomically
from newsetl.tasks.stop import IngestInterrupted, stop_signal, stop_waits_for
from newsetl.text.learned import LearnedConfig
from newsetl.text.lsh import DedupConfig
from newsetl.text.publishers import UserPublisher
from newsetl.text.rules import Ruleset
from newsetl.warehouse.connect import (
    WarehouseBusy,
    check_intact,
    db_path,
    migrate,
    run_lock,
    transaction,
    write_wait_seconds,
    writer,
)
from newsetl.warehouse.dedup import check_scheme
from newsetl.warehouse.learned import learned_keys_by_publisher
from newsetl.warehouse.lineage import AccountingError, balance_problems, stored_counts
from newsetl.warehouse.load import LoadStats, finish_run, record_ruleset, start_run
from newsetl.warehouse.publishers import register_user_publishers

# Called with the run's counts after each group read and each batch loaded (the CLI's progress
# display); None: nobody watches. A hook rather than a parameter: flow parameters must serialise.
ProgressHook = Callable[[dict[str, int]], None]
_progress_hooks: list[ProgressHook] = []


@contextlib.contextmanager
def watching(hook: ProgressHook) -> Iterator[None]:
    """Call `hook` with progress counts while runs of this process go on."""
    _progress_hooks.append(hook)
    try:
        yield
    finally:
        _progress_hooks.remove(hook)


def warehouse_path(db: str | None) -> str:
    """The warehouse a run writes: `db`, or the default (`$NEWSETL_DB`, else warehouse/newsetl.duckdb)."""
    return str(db_path(db))


def run_lock_unless_held(db: str, take: bool) -> AbstractContextManager[object]:
    """The warehouse's run lock for the run's length; `take=False` when the caller (the CLI) already holds
    it, taken before the flow started so that a refusal is a clear message rather than a failed flow run."""
    return run_lock(db) if take else contextlib.nullcontext()


def begin_run(db: str, run_id: str, flow_run_id: str, params: Mapping[str, Any],
              user_publishers: Sequence[UserPublisher], dedup: DedupConfig,
              learned: LearnedConfig) -> tuple[bool, dict[str, frozenset[str]]]:
    """Record the run's start in one write: the warehouse migrated, its dedup scheme checked against the
    run's, the `runs` row, and the user's publisher aliases (before the first batch, so every article of
    the run resolves against them). Returns whether the previous run completed, and the lines earlier runs
    learned, by publisher: those are applied while cleaning; what this run learns, by the re-clean.

    A start that cannot be written (a reader holding the file past the wait, a full disk) leaves no row: its
    run report file says why, beside the warehouse, where an operator of a scheduled run looks (a user
    trial found no trace at all of a served run that found the warehouse busy)."""
    try:
        with stop_waits_for("the run's start is recorded"), writer(db) as con:
            check_intact(con, db)  # before the first write: a file cut short is refused untouched
            migrate(con, db)
            with transaction(con):  # a warehouse signed by the previous scheme is upgraded here, all or nothing
                check_scheme(con, dedup)
            previous_completed = start_run(con, run_id, flow_run_id, params)
            register_user_publishers(con, user_publishers, run_id)
            return previous_completed, learned_keys_by_publisher(con, learned)
    except Exception as exc:  # busy past the wait, a full disk, another dedup scheme: said, then raised
        write_report_file(db, run_id, status_report(
            "ingest", run_id, "not started", db,
            f"The run's start could not be recorded, so the warehouse has no row for it: {type(exc).__name__}: {exc}",
            "Nothing was read or loaded; the next run reads every input this one would have."))
        raise


def record_run_rules(db: str, run_id: str, ruleset: Ruleset) -> None:
    """Record the pattern rules the run cleans with: `runs.ruleset_sha256`, and the `rules` rows when no
    earlier run used the same ruleset. Written once the run's context is built (a rules file that cannot
    be loaded fails the run, recorded as such, before this)."""
    with stop_waits_for("the run's rules are recorded"), writer(db) as con:
        record_ruleset(con, ruleset.digest, ruleset.definitions, run_id)


def complete_run(db: str, run_id: str, summary: Mapping[str, Any]) -> None:
    """Mark the run completed, after its books balance: every input read is loaded, skipped or
    quarantined, and the warehouse holds the articles and quarantine rows the tally counted. Raises
    AccountingError (the run is then recorded failed) if not.

    Its run report file is written first, saying the publication that follows is under way (`run_report`
    writes it again once it is done): a run killed while it published ended `completed` with no report
    file at all (a user trial), and a one-shot run may have no next run for hours to make up for it. So a
    row says `completed` only once its report exists. (Killed in the instant between the two writes, the
    report says completed and the next run marks the row `crashed`: its rows are all in either way.)"""
    with stop_waits_for("the run's end is recorded"), writer(db) as con:
        problems = balance_problems(summary, stored_counts(con, run_id))
        if problems:
            raise AccountingError("the run's counts do not balance: " + "; ".join(problems))
        write_report_file(db, run_id, run_report_markdown({"run_id": run_id, "db": db, **summary},
                                                          publishing=True) + "\n")
        finish_run(con, run_id, "completed", summary)


class RunTally:
    """The numbers of one run, for the summary, the `runs` row and the Prefect artifact."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.removed: Counter[str] = Counter()
        self.dedup: Counter[str] = Counter()
        self.skips: Counter[str] = Counter()
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.started = time.perf_counter()

    # The books of a run: every input read is loaded, skipped (known, or not an article) or quarantined
    # (`complete_run` checks it). These four methods are where `read` and its outcomes are counted.
    def discovered(self, refused: Sequence[Rejection], unchanged_docs: int) -> None:
        """Sources refused at discovery (quarantined with their batch) and the documents of files unchanged
        since a run recorded them (skipped as known without being read again)."""
        self.counts["read"] += len(refused) + unchanged_docs
        self.counts["skipped_known"] += unchanged_docs
        self.counts["unchanged"] += unchanged_docs
        # A symlinked folder met while walking is a skip (not walked into), recorded with the first batch.
        skipped = [r for r in refused if r.reason in SKIP_REASONS]
        self.counts["skipped_other"] += len(skipped)
        self.skips.update(r.reason for r in skipped)
        # A folder that cannot be listed was found: quarantined (unreadable), it is not "nothing to ingest";
        # nor is a skipped one.
        self.counts["not_found"] += sum(r.reason != UNREADABLE and r.reason not in SKIP_REASONS for r in refused)

    def held_back(self, files: int) -> None:
        """Files modified too recently to be read (`--min-age`): not read, so not in `read`; the next run
        that finds them settled reads them."""
        self.counts["held_back"] += files

    def read_piece(self, outcomes: int, unsupported: int, skipped: Sequence[Rejection]) -> None:
        """A piece read: its outcomes (documents and rejections), of them those of a kind newsetl does not
        read (`unsupported`), and the inputs skipped as not articles (WARC request records, 304s)."""
        self.counts["read"] += outcomes
        self.counts["unsupported"] += unsupported
        self.counts["skipped_other"] += len(skipped)
        self.skips.update(r.reason for r in skipped)

    def known(self, n: int) -> None:
        """Documents whose bytes are in the warehouse already, or met twice in this run: skipped."""
        self.counts["skipped_known"] += n

    def loaded(self, stats: LoadStats, removed: Mapping[str, int], process_seconds: float) -> None:
        """A batch loaded: its articles, the quarantine rows it added (by stage:reason), its rejections that
        an earlier run had quarantined (known inputs now: a file re-read after its mtime changed), what the
        cleaner removed and dedup did."""
        self.counts["loaded"] += stats.articles
        self.counts["quarantined"] += stats.quarantined
        self.reasons.update(stats.quarantine_reasons)
        # Counted from the keys found, not as "rejections minus rows added": two rejections that collided on
        # one key would then pass for known, and the balance check could not see the lost one.
        self.counts["skipped_known"] += stats.known_rejections
        self.counts["refused_again"] += stats.known_rejections
        self.removed.update(removed)
        self.dedup.update({k: int(v) for k, v in stats.dedup.items()})
        self.seconds["process"] += process_seconds

    def progress(self, files_done: int, files: int) -> None:
        if not _progress_hooks:
            return
        c = self.counts
        done = c["loaded"] + c["skipped_known"] + c["skipped_other"] + c["quarantined"]
        counts = {"read": c["read"], "done": done, "loaded": c["loaded"], "quarantined": c["quarantined"],
                  "files_done": files_done, "files": files}
        for hook in list(_progress_hooks):
            with contextlib.suppress(Exception):  # a display must never fail a run
                hook(counts)

    def summary(self) -> dict[str, Any]:
        return {
            "read": self.counts["read"],
            "held_back": self.counts["held_back"],
            "loaded": self.counts["loaded"],
            "skipped_known": self.counts["skipped_known"],
            # Of `read` and `skipped_known`: the documents of files unchanged since a run recorded them
            # (same size, modification and change time, read the same way), counted, not read again.
            "unchanged": self.counts["unchanged"],
            # Inputs that are not articles and not errors: WARC request/metadata records, non-HTML
            # captures, HTTP 304 Not Modified. Counted by reason, not quarantined.
            "skipped_other": self.counts["skipped_other"],
            # Of `skipped_known`: inputs read again (a URL fetched again, a file changed) and refused for the
            # reason an earlier run quarantined them: still failing, though no quarantine row is added.
            "refused_again": self.counts["refused_again"],
            "skipped_reasons": dict(sorted(self.skips.items())),
            "quarantined": self.counts["quarantined"],
            # Sources that named nothing readable (not found, unsupported kind): `read` minus these is
            # what the run found to ingest (0: a typo'd path, an empty folder).
            "not_found": self.counts["not_found"],
            "unsupported": self.counts["unsupported"],
            "recleaned": self.counts["recleaned"],
            "quarantine_reasons": dict(sorted(self.reasons.items())),
            "removed_by_category": dict(sorted(self.removed.items())),
            "dedup": dict(sorted(self.dedup.items())),
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()}
            | {"total": round(time.perf_counter() - self.started, 3)},
        }


def record_failure(db: str, run_id: str, tally: RunTally, exc: BaseException) -> str | None:
    """Mark the run failed (or cancelled) with its reason; if even that cannot be written (disk full), the
    original error is what the caller must see, so this one is only logged. Returns the path of the run
    report file (None if it could not be written)."""
    # A second signal abandons the run (KeyboardInterrupt) rather than this write.
    with stop_waits_for("the run's end is recorded"):
        return _record_status(db, run_id, tally, exc)


# How long the end of a stopped or failed run waits to be recorded: short, since a run that is stopping must
# not sit behind a reader for a minute; never longer than the run's own --wait (see `_record_wait`).
RECORD_WAIT_SECONDS = 10.0


def _record_wait(exc: BaseException) -> float:
    """Seconds the record of a run's end that `exc` ended waits for a reader: none after a run that gave up
    on a busy warehouse (one attempt: its --wait, the user's budget for the wait, is spent on that same
    holder; waiting RECORD_WAIT_SECONDS more made `--wait 2` end after 12 s saying "gave up after 2 s"), else
    RECORD_WAIT_SECONDS at most, and no more than --wait (`--wait 0` is "fail fast")."""
    if isinstance(exc, WarehouseBusy):
        return 0.0
    return min(RECORD_WAIT_SECONDS, write_wait_seconds())


def _record_status(db: str, run_id: str, tally: RunTally, exc: BaseException) -> str | None:
    # A signal the run did not handle itself (a second Ctrl-C; Prefect's SIGINT or SIGTERM when `newsetl
    # serve` stops with this run in flight) is a stop, not a failure, whichever signal it was.
    stopped = isinstance(exc, IngestInterrupted | KeyboardInterrupt | TerminationSignal)
    status = "cancelled" if stopped else "failed"
    reason = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, KeyboardInterrupt | TerminationSignal) and not str(exc):
        name = "SIGINT" if isinstance(exc, KeyboardInterrupt) else signal.Signals(exc.signal).name
        reason = (f"stopped by {name} during this run (Ctrl-C, kill, or `newsetl serve` stopping); the batches "
                  "loaded stay, the next run loads the rest")
    if isinstance(exc, IngestInterrupted) and (name := stop_signal()):
        reason = f"stopped by {name}: {reason}"
    if isinstance(exc, IngestInterrupted) and exc.__cause__ is not None:
        reason += f" (while stopping: {type(exc.__cause__).__name__}: {exc.__cause__})"
    counts = tally.summary()
    # Documents read (ahead) but neither loaded, skipped nor quarantined when the run ended: the next run
    # reads them again. Named, so that the row's counts still add up.
    counts["not_loaded"] = counts["read"] - sum(counts[k] for k in ("loaded", "skipped_known", "skipped_other",
                                                                      "quarantined"))
    wait = _record_wait(exc)
    try:
        with writer(db, wait_seconds=wait) as con:
            finish_run(con, run_id, status, counts, reason)
    except Exception as again:
        get_run_logger().warning("could not record the failed run %s: %s", run_id, again)
        # Busy: said as a wait of its own. The message of `again` ends "gave up after 10 s (--wait ... to wait
        # longer)", which beside a reason that gave up after the run's --wait read as two answers to one
        # question, with advice that does not apply here (a user trial).
        why = ("the warehouse was still busy" + (f" {wait:g} s later" if wait else "")
               if isinstance(again, WarehouseBusy) else str(again))
        status += f" (not recorded in the warehouse: {why}; the next run marks the row crashed)"
    return write_report_file(db, run_id, status_report(
        "ingest", run_id, status, db, f"Reason: {reason}",
        "\n".join(["Counts so far:", "", "```", json.dumps(counts, indent=2, default=str), "```"])))


def status_report(command: str, run_id: str, status: str, db: str, *sections: str) -> str:
    """The markdown of a short run report (a run that did not start, failed, was stopped, a re-clean): its
    heading, its warehouse, then `sections` as paragraphs."""
    return "\n\n".join([f"# newsetl {command} run `{run_id}`: {status}", f"Warehouse: `{db}`", *sections]) + "\n"


def report_dir(db: str) -> Path:
    """Where run reports are written: `<warehouse stem>.runs/` next to the warehouse file."""
    path = Path(db)
    return path.with_name(f"{path.stem}.runs")


def write_report_file(db: str, run_id: str, markdown: str) -> str | None:
    """The run report as a file beside the warehouse, readable after a one-shot run whose temporary
    Prefect server (and its artifact) is gone. Returns its path; None if it could not be written."""
    try:
        folder = report_dir(db)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{run_id}.md"
        # Whole or absent: an empty report, left by a full disk, reads as a run with nothing to say.
        write_text_atomically(path, markdown)
        return str(path)
    except OSError as exc:
        with contextlib.suppress(Exception):
            get_run_logger().warning("could not write the run report file: %s", exc)
        return None


def published_line(done: dict[str, Any] | None, publishing: bool = False) -> str:
    """The "Published for dashboards" line of a run report: `done` is `publish`'s answer (None: nothing was
    published); `publishing`: the report is written as the run completes, before it publishes."""
    if publishing:
        return ("- **publishing** when this report was written, as the run completed: if it still says so, the "
                "run's process ended before it had published (killed), and the snapshot and the report show the "
                "previous run until the next run publishes again")
    if not done:
        return "- not published"
    if "error" in done:
        return (f"- **not published**: {done['error']} (the snapshot and the report still show the previous "
                "run; the next run publishes again)")
    if "report_error" in done:
        return (f"- snapshot `{done['snapshot']}`; **report not written**: {done['report_error']} (the next run "
                "writes it again)")
    return f"- snapshot `{done['snapshot']}`, report `{done['report']}`"


def run_report(summary: dict[str, Any]) -> str | None:
    """A markdown artifact on the flow run (what an operator looks at in Prefect's UI) and the same
    report as a file beside the warehouse (over the one `complete_run` wrote); returns the file's path."""
    markdown = run_report_markdown(summary)
    try:
        create_markdown_artifact(markdown=markdown, key="ingest-report", description="newsetl ingest run summary")
    except Exception as exc:
        get_run_logger().warning("could not write the run report artifact: %s", exc)
    return write_report_file(summary["db"], summary["run_id"], markdown + "\n")


def run_report_markdown(summary: Mapping[str, Any], publishing: bool = False) -> str:
    """The report of a completed run (its summary: counts, reasons, removals, dedup, seconds, and what it
    published); `publishing`: written before it publishes (`published_line`)."""
    lines = [
        f"# newsetl ingest run `{summary['run_id']}`",
        "",
        f"Warehouse: `{summary['db']}`",
        "",
        "| read | loaded | skipped (known) | skipped (other) | quarantined |",
        "|---:|---:|---:|---:|---:|",
        f"| {summary['read']} | {summary['loaded']} | {summary['skipped_known']} | {summary['skipped_other']} "
        f"| {summary['quarantined']} |",
        "",
        "Balanced: read = loaded + skipped + quarantined, and one quarantine row per quarantined input "
        "(checked before the run was marked completed).",
        "",
        "## Quarantined, by stage and reason",
        "",
        "| stage:reason | inputs |",
        "|---|---:|",
        *[f"| {k} | {v} |" for k, v in summary["quarantine_reasons"].items()],
        "",
        "## Boilerplate removed, by category",
        "",
        "| category | spans |",
        "|---|---:|",
        *[f"| {k} | {v} |" for k, v in sorted(summary["removed_by_category"].items(), key=lambda kv: -kv[1])],
        "",
        # The re-clean's removals (category `learned`) are in `removals`, not in the spans above, which are
        # the run's new articles'.
        f"Stored articles re-cleaned of lines learned as boilerplate: {summary.get('recleaned', 0)}",
        "",
        "## Duplicates",
        "",
        *[f"- {k}: {v}" for k, v in summary["dedup"].items()],
        "",
        "## Seconds per stage",
        "",
        *[f"- {k}: {v}" for k, v in summary["seconds"].items()],
        "",
        "## Published for dashboards",
        "",
        published_line(summary.get("published"), publishing),
    ]
    return "\n".join(lines)
