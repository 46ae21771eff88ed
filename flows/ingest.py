"""The `ingest` flow: parameters and wiring only; the work is in tasks/ and the text core.

Shape of a run: discover -> skip unchanged files -> for each group of files: read -> skip known
doc_ids -> batches: process (in worker processes, two batches ahead) while the writer loads the
previous one (one writer, one transaction per batch; a group's files are recorded as read in the
transaction of its last batch) -> finish the run row and a report.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar, cast

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.context import FlowRunContext
from prefect.exceptions import TerminationSignal
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from newsetl.schemas.records import STAGE_DISCOVER, InputRow, RawDocument, Rejection
from newsetl.sources.config import ReadConfig
from newsetl.sources.fields import parse_field_mapping
from newsetl.sources.files import held_size
from newsetl.sources.reasons import SKIP_REASONS, UNREADABLE
from newsetl.tasks import usable_cores
from newsetl.tasks.ingest import (
    ProcessedBatch,
    ReadGroup,
    discover_sources,
    filter_known,
    holding_writes,
    load_batch_task,
    process_batch,
    read_documents,
    read_pieces,
    reclean_task,
    skip_unchanged,
)
from newsetl.tasks.pool import PoolConfig, close_pool, open_pool
from newsetl.tasks.publish import publish_task
from newsetl.text.learned import LearnedConfig
from newsetl.text.lsh import DedupConfig
from newsetl.text.pipeline import ProcessConfig, make_context
from newsetl.text.publishers import load_publisher_file
from newsetl.text.sign import SignConfig
from newsetl.warehouse.connect import default_db_path, migrate, run_lock, writer
from newsetl.warehouse.dedup import check_scheme
from newsetl.warehouse.learned import learned_keys_by_publisher
from newsetl.warehouse.lineage import AccountingError, Skip, balance_problems, stored_counts
from newsetl.warehouse.load import LoadStats, finish_run, start_run
from newsetl.warehouse.publishers import register_user_publishers
from newsetl.warehouse.snapshot import CHANGING_COUNTS

T = TypeVar("T")
# Raw bytes (inflated, as held) read at once (with `files_per_read`, a group); at most two groups are
# held, the one being loaded and the next, read while the last batches of the first are processed (735
# HTML pages held whole cost the ingest 0.8 GB).
READ_GROUP_BYTES = 24 * 1024 * 1024
# Whole documents (files, URLs, WARC payloads) are held as bytes only and decoded where they are
# processed (tasks/pool.py: process_and_prepare), not by this process, which also writes the warehouse:
# decoded, an HTML page is 1-4 bytes a character as a Python str (~2x its bytes on the dev pages).
READ_CONFIG = ReadConfig(defer_decode=True)
# Documents per batch: one batch is one load transaction, whose ~50 dedup, sightings and publisher
# statements cost mostly per batch, not per document. Measured on the 100k re-scrape stream: 500 took the
# writer 71.9 s of 215.0 s (share 0.33, one run); 1,000 46.1-59.7 s of 194.9-219.3 s (0.231-0.272, four
# runs). 2,000 (one run) took it 41.4 s of 197.1 s (0.21), but the 20k stream fell from 3.45-3.50x
# datatrove's docs/s to 3.32-3.33x and its RSS sum grew 2.28 -> 2.51 GB. HTML batches are bounded by
# BATCH_BYTES long before either.
DEFAULT_BATCH_SIZE = 1000
# A batch ends at `batch_size` documents or at this many raw bytes, whichever comes first: 500 HTML pages
# are ~75 MB, and three batches are in flight (pickled to the workers, and their rows back); 500 4-KB
# texts (2 MB) never reach it. Measured on the 735 dev pages (bench/bench_html.py, one run each): 6 MB
# batches 1.71 GB over all processes at 0.38x trafilatura's pages/s; 16 MB 1.84 GB at 0.54x; unbounded
# 2.55 GB at 0.59x (a batch waits for its slowest page; smaller batches wait more often).
BATCH_BYTES = 16 * 1024 * 1024
# ... and a group is handed on in pieces of at most this many documents / raw bytes (a group is one file
# when the file is larger than READ_GROUP_BYTES: a 600 MB JSONL dump held whole cost 2+ GB). Two pieces
# are held (read ahead of the batches in flight), as parsed records and raw bytes. Measured with
# bench/bench_stream.py, one run each: 2,000 documents against 5,000, on the 20k re-scrape stream the
# ingest process 0.69-0.70 GB instead of 0.79 and 1.87-1.88 GB summed instead of 1.96-1.99, at the same
# docs/s (399-402 against 393-401); on the 100k stream, where DuckDB's cache is most of it, 0.91 GB
# instead of 0.93 at 463.6 docs/s against 464.2. 1,000 held no less than 2,000.
READ_PIECE_DOCS = 2000
READ_PIECE_BYTES = 32 * 1024 * 1024


def whole(value: T) -> T:
    """A task argument Prefect passes as it is: batches (documents, articles, rules) are wrapped in
    `quote`, because Prefect otherwise walks every element of every argument looking for futures, which
    cost more than loading the batch. Typed as the value: Prefect unwraps it before the task runs."""
    return cast(T, quote(value))


def batches(docs: Sequence[RawDocument], max_docs: int, max_bytes: int) -> Iterator[Sequence[RawDocument]]:
    """`docs` in order, in batches of at most `max_docs` documents and (but for a single larger
    document) `max_bytes` raw bytes."""
    start, size = 0, 0
    for end, doc in enumerate(docs):
        if end > start and (end - start >= max_docs or size + len(doc.raw) > max_bytes):
            yield docs[start:end]
            start, size = end, 0
        size += len(doc.raw)
    if start < len(docs):
        yield docs[start:]


def file_groups(paths: Sequence[str], max_files: int, max_bytes: int) -> Iterator[list[str]]:
    """Groups of input files to read at once, bounded by count and by bytes as held (inflated), so memory stays
    bounded by the group rather than the corpus (a single file larger than the budget is its own group)."""
    group: list[str] = []
    size = 0
    for path in paths:
        n = 0 if "://" in path else held_size(path)
        if group and (len(group) >= max_files or size + n > max_bytes):
            yield group
            group, size = [], 0
        group.append(path)
        size += n
    if group:
        yield group


class IngestInterrupted(Exception):
    """The run was asked to stop (Ctrl-C, SIGTERM): batches loaded so far stay, the run is `cancelled`."""


# Set (by the CLI's SIGINT/SIGTERM handler) to stop a run in this process: no further file is read
# and no further batch loaded; the batch being loaded commits or rolls back as a whole.
STOP = threading.Event()
# What a stop request waits for, while the run is in a step that must not be cut in half: a write (a
# batch load, the re-clean, the run row) or the start of the worker pool (a worker whose start-up state
# is cut off mid-send dies with a traceback of its own). Anywhere else the handler raises at once:
# reading and processing write nothing, and a batch processed but not loaded is simply new again next run.
_deferring: list[str] = []
INTERRUPTED = "interrupted: batches loaded so far are kept; run it again to load the rest"


@contextlib.contextmanager
def _stop_waits_for(step: str) -> Iterator[None]:
    _deferring.append(step)
    try:
        yield
    finally:
        _deferring.pop()


def _write_section() -> contextlib.AbstractContextManager[None]:
    return _stop_waits_for("the batch being loaded")

# The handler `stop_on_signals` installed, if any: the flow re-installs it for SIGTERM, which Prefect's
# engine takes over for the length of a flow run (to crash the run and re-raise the signal).
_stop_handler: Callable[[int, Any], None] | None = None


@dataclass
class StopRequest:
    """What `stop_on_signals` received: the first signal's name, None while none came. It outlives the
    block (STOP is cleared on leaving it), so that the caller can tell an error raised while the run was
    stopping (an exception raised by the handler at an arbitrary point of cleanup code) from a failure."""

    signal: str | None = None


@contextlib.contextmanager
def stop_on_signals(say: Callable[[str], None]) -> Iterator[StopRequest]:
    """While open, SIGINT and SIGTERM ask this process's run to stop: no further read, the batch being
    loaded commits or rolls back, the run row says `cancelled`, the flow raises IngestInterrupted.
    A second signal interrupts at once (KeyboardInterrupt). Main thread only."""
    global _stop_handler
    request = StopRequest()

    def handler(signum: int, frame: Any) -> None:
        if STOP.is_set():
            raise KeyboardInterrupt
        STOP.set()
        name = signal.Signals(signum).name
        request.signal = name
        if not _deferring:
            # Nothing is being written (setting up, reading, waiting for workers): stop here and now.
            say(f"newsetl: {name}: stopping")
            raise IngestInterrupted(INTERRUPTED)
        say(f"newsetl: {name}: stopping after {_deferring[-1]} (again to abandon it)")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    _stop_handler = handler
    try:
        yield request
    finally:
        _stop_handler = None
        for sig, old in previous.items():
            signal.signal(sig, old)
        STOP.clear()


def stop_requested() -> bool:
    return STOP.is_set()


def _reinstall_stop_handler() -> None:
    """Prefect's engine takes SIGTERM over for the length of a flow run (and restores ours after it)."""
    if _stop_handler is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop_handler)


# Module state is reached from the flow's body only through functions: Prefect's Runner (`newsetl serve`)
# cloudpickles the flow function by value, with the globals it names, and an Event holds a lock.


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

    def rejections(self, stats: LoadStats) -> None:
        """Quarantine rows a load added, by stage:reason."""
        self.counts["quarantined"] += stats.quarantined
        self.reasons.update(stats.quarantine_reasons)

    def skipped(self, skips: Sequence[Rejection]) -> None:
        self.counts["skipped_other"] += len(skips)
        self.skips.update(r.reason for r in skips)

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
            "loaded": self.counts["loaded"],
            "skipped_known": self.counts["skipped_known"],
            # Inputs that are not articles and not errors: WARC request/metadata records, non-HTML
            # captures, HTTP 304 Not Modified. Counted by reason, not quarantined.
            "skipped_other": self.counts["skipped_other"],
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


@flow(name="ingest")
def ingest(
    sources: list[str],
    db: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    files_per_read: int = 2000,
    rules_files: list[str] | None = None,
    workers: int | None = None,
    doc_seconds: float = 20.0,
    take_lock: bool = True,
    publishers_files: list[str] | None = None,
    line_model: bool = True,
    jsonl_fields: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Ingest files, directories, globs (and URLs) into the warehouse; return the run summary.

    Memory is bounded by two groups of `files_per_read` raw inputs and three batches in flight.
    `workers` is the number of worker processes for the CPU-bound stages (default: one per usable core;
    0 or 1 = in-process). `publishers_files`: JSON alias files (`newsetl.text.publishers.load_publisher_file`),
    stored in the warehouse before the first batch so every article of the run resolves against them.
    `line_model=False` cleans with the rules alone (no learned line classifier). `jsonl_fields`: where JSON
    records keep a field that is not under a name `newsetl.sources.fields` knows (`{"text": "story"}`,
    `{"url": "meta.link"}`).
    """
    logger = get_run_logger()
    _reinstall_stop_handler()
    db_path = str(Path(db) if db else default_db_path())
    n_workers = usable_cores() if workers is None else workers
    run_id = uuid.uuid4().hex
    params = {"sources": list(sources), "db": db_path, "batch_size": batch_size,
              "rules_files": rules_files or [], "workers": n_workers, "publishers_files": publishers_files or [],
              "line_model": line_model, "jsonl_fields": dict(jsonl_fields or {})}
    # Read the alias files and the field mapping before anything is written: a bad one fails the run at
    # once, with its name.
    read_config = replace(READ_CONFIG, jsonl_fields=parse_field_mapping(jsonl_fields))
    user_publishers = [p for path in publishers_files or () for p in load_publisher_file(path)]
    sign_cfg = SignConfig()
    dedup_cfg = DedupConfig(sign=sign_cfg)
    learned_cfg = LearnedConfig()
    tally = RunTally()

    # take_lock=False: the caller (the CLI) already holds the run lock, taken before the flow started
    # so that a refusal is a clear message rather than a failed flow run with a traceback.
    with run_lock(db_path) if take_lock else contextlib.nullcontext():
        t0 = time.perf_counter()
        with _write_section(), writer(db_path) as con:
            migrate(con, db_path)
            check_scheme(con, dedup_cfg)
            start_run(con, run_id, str(flow_run.get_id() or ""), params)
            register_user_publishers(con, user_publishers, run_id)
            # What earlier runs learned is applied while cleaning; what this run learns, by reclean below.
            learned = learned_keys_by_publisher(con, learned_cfg)
        pool_key: str | None = None
        try:
            ctx = make_context(ProcessConfig(rules_files=tuple(rules_files or ()), line_model=line_model), learned,
                               processes_here=n_workers <= 1)
            if n_workers > 1:
                with _stop_waits_for("the workers have started"):
                    try:
                        pool_key = open_pool(ctx, PoolConfig(workers=n_workers, doc_seconds=doc_seconds))
                    except OSError:
                        # A worker the same signal reached while it started (a broken pipe here): the stop
                        # asked for, not a failure of the run.
                        if not stop_requested():
                            raise
                if stop_requested():
                    raise IngestInterrupted(INTERRUPTED)
            tally.seconds["setup"] += time.perf_counter() - t0
            _run(tally, sources, db_path, run_id, batch_size, files_per_read, ctx, sign_cfg, dedup_cfg,
                 pool_key, doc_seconds, read_config)
            if tally.counts["loaded"] and not stop_requested():
                t0 = time.perf_counter()
                with _write_section():
                    tally.counts["recleaned"] += reclean_task(db_path, run_id, whole(ctx), learned_cfg)
                tally.seconds["reclean"] += time.perf_counter() - t0
            if stop_requested():
                raise IngestInterrupted(INTERRUPTED)
            summary = tally.summary()
            # The run checks its own books before it reports success.
            with _write_section(), writer(db_path) as con:
                problems = balance_problems(summary, stored_counts(con, run_id))
                if problems:
                    raise AccountingError("the run's counts do not balance: " + "; ".join(problems))
                finish_run(con, run_id, "completed", summary)
        except BaseException as exc:
            stopped = _as_stop(exc)
            if isinstance(stopped, IngestInterrupted):
                # The progress line counts documents read and processed, not kept: say what this run kept.
                stopped.args = (f"{INTERRUPTED} (this run loaded {tally.counts['loaded']} articles)",)
            if pool_key and isinstance(stopped, IngestInterrupted | KeyboardInterrupt | TerminationSignal):
                # Stop the batches still being processed at once: their documents are read again next run.
                # Whatever killing them raises, the run row must still say why the run ended.
                try:
                    close_pool(pool_key, terminate=True)
                except Exception as again:
                    logger.warning("stopping the worker pool: %s: %s", type(again).__name__, again)
            _record_failure(db_path, run_id, tally, stopped)
            if stopped is exc:
                raise
            raise stopped from exc
        finally:
            if pool_key:
                close_pool(pool_key)
        # Dashboards read the snapshot, never the warehouse; still under the run lock (one publisher).
        # A stop asked for now waits for it: the run's rows are all in. (A publication that fails or is
        # abandoned all the same is made up by the next run, nothing new or not: publish_task.)
        with _stop_waits_for("publishing the snapshot for dashboards"):
            published = publish_task(db_path, run_id, changed=any(tally.counts[k] for k in CHANGING_COUNTS))
    summary = {"run_id": run_id, "db": db_path, **summary, "published": published}
    summary["report"] = _report(summary)
    logger.info("ingest summary: %s", summary)
    return summary


def _as_stop(exc: BaseException) -> BaseException:
    """What a run that raised `exc` ends with: IngestInterrupted if a stop was asked for and `exc` is
    what the signal's exception became in the code it cut into. The handler raises where the main
    thread is; inside a DuckDB query, DuckDB checks Python's signals, runs the handler and raises its
    own `RuntimeError: Query interrupted` instead (seen on a loaded machine: the run row said `failed`)."""
    if isinstance(exc, IngestInterrupted | KeyboardInterrupt) or not stop_requested():
        return exc
    stopped = IngestInterrupted(INTERRUPTED)
    stopped.__cause__ = exc  # kept in the run row's reason and the run report
    return stopped


def _record_failure(db: str, run_id: str, tally: RunTally, exc: BaseException) -> None:
    """Mark the run failed (or cancelled) with its reason; if even that cannot be written (disk full), the
    original error is what the caller must see, so this one is only logged."""
    with _write_section():  # a second signal abandons the run (KeyboardInterrupt) rather than this write
        _record_status(db, run_id, tally, exc)


def _record_status(db: str, run_id: str, tally: RunTally, exc: BaseException) -> None:
    # A signal the run did not handle itself (a second Ctrl-C; Prefect's SIGINT or SIGTERM when `newsetl
    # serve` stops with this run in flight) is a stop, not a failure, whichever signal it was.
    stopped = isinstance(exc, IngestInterrupted | KeyboardInterrupt | TerminationSignal)
    status = "cancelled" if stopped else "failed"
    reason = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, KeyboardInterrupt | TerminationSignal) and not str(exc):
        name = "SIGINT" if isinstance(exc, KeyboardInterrupt) else signal.Signals(exc.signal).name
        reason = (f"stopped by {name} during this run (Ctrl-C, kill, or `newsetl serve` stopping); the batches "
                  "loaded stay, the next run loads the rest")
    if isinstance(exc, IngestInterrupted) and exc.__cause__ is not None:
        reason += f" (while stopping: {type(exc.__cause__).__name__}: {exc.__cause__})"
    counts = tally.summary()
    # Documents read (ahead) but neither loaded, skipped nor quarantined when the run ended: the next run
    # reads them again. Named, so that the row's counts still add up.
    counts["not_loaded"] = counts["read"] - sum(counts[k] for k in ("loaded", "skipped_known", "skipped_other",
                                                                      "quarantined"))
    try:
        # Short wait: a run that is stopping must not sit behind a reader for a minute.
        with writer(db, wait_seconds=10.0) as con:
            finish_run(con, run_id, status, counts, reason)
    except Exception as again:
        get_run_logger().warning("could not record the failed run %s: %s", run_id, again)
        status += f" (not recorded in the warehouse: {again}; the next run marks the row crashed)"
    write_report_file(db, run_id, "\n".join([
        f"# newsetl ingest run `{run_id}`: {status}", "", f"Warehouse: `{db}`", "",
        f"Reason: {reason}", "", "Counts so far:", "", "```",
        json.dumps(counts, indent=2, default=str), "```", ""]))


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
        path.write_text(markdown, encoding="utf-8")
        return str(path)
    except OSError as exc:
        with contextlib.suppress(Exception):
            get_run_logger().warning("could not write the run report file: %s", exc)
        return None


@dataclass(frozen=True)
class Work:
    """One batch to process and load, with what must be written alongside or after it."""

    docs: Sequence[RawDocument]
    rejections: list[Rejection]  # read rejections, quarantined in this batch's transaction
    # Files every batch of which is loaded once this batch is: recorded as read in its transaction (not
    # before, so a crash means reading them again, and their known doc_ids are skipped).
    inputs: tuple[InputRow, ...] | None = None
    # Sources read and skipped (known bytes, captures that are not articles): recorded as lineage.
    skips: tuple[Skip, ...] = ()


def _read(group: Sequence[str], config: ReadConfig) -> Iterator[ReadGroup]:
    """A group of files at once (one Prefect task run), or, when it is one file larger than a piece, that
    file streamed in pieces of bounded size: memory stays bounded even by a multi-GB dump."""
    try:
        big = len(group) == 1 and "://" not in group[0] and os.stat(group[0]).st_size > READ_PIECE_BYTES
    except OSError:
        big = False
    if big:
        yield from read_pieces(group, config, READ_PIECE_DOCS, READ_PIECE_BYTES)
    else:
        yield read_documents(whole(group), config)


def _run(
    tally: RunTally, sources: Sequence[str], db: str, run_id: str, batch_size: int, files_per_read: int,
    ctx: Any, sign_cfg: SignConfig, dedup_cfg: DedupConfig, pool_key: str | None, doc_seconds: float,
    read_config: ReadConfig,
) -> None:
    t0 = time.perf_counter()
    paths, not_found = discover_sources(sources)
    paths, unchanged_docs = skip_unchanged(db, paths, read_config)
    tally.seconds["discover"] += time.perf_counter() - t0
    # Accounting: every input read is loaded, skipped as known, or quarantined.
    tally.counts["read"] += len(not_found) + unchanged_docs
    tally.counts["skipped_known"] += unchanged_docs
    # A folder that cannot be listed was found: quarantined (unreadable), it is not "nothing to ingest".
    tally.counts["not_found"] += sum(r.reason != UNREADABLE for r in not_found)
    # doc_ids read in this run and not yet committed: a batch's ids leave once it is loaded (from then on
    # `filter_known` finds them in the warehouse), so this holds the batches in flight, not the run.
    seen: set[str] = set()
    files_done = 0

    def work() -> Iterator[Work]:
        """The run's batches, reading a group of files only when its first batch is wanted: with
        workers, the next group is read while the last batches of this one are processed."""
        nonlocal files_done
        pending = list(not_found)
        for group in file_groups(paths, files_per_read, READ_GROUP_BYTES):
            if STOP.is_set():
                return
            t = time.perf_counter()
            for read in _read(group, read_config):
                docs = [o for o in read.outcomes if isinstance(o, RawDocument)]
                rejected = [o for o in read.outcomes if isinstance(o, Rejection)]
                skip_other = [r for r in rejected if r.reason in SKIP_REASONS]
                tally.skipped(skip_other)
                skips = [Skip(r.source_uri, r.doc_id, r.reason) for r in skip_other]
                pending.extend(r for r in rejected if r.reason not in SKIP_REASONS)
                tally.counts["read"] += len(read.outcomes)
                tally.counts["unsupported"] += sum(r.stage == STAGE_DISCOVER for r in rejected)
                # The same bytes twice in one run (a file copied into two folders) load once; the second
                # source is still recorded, with the doc_id it carried.
                unique = []
                for doc in docs:
                    if doc.doc_id in seen:
                        tally.counts["skipped_known"] += 1
                        skips.append(Skip(doc.source_uri, doc.doc_id, "known"))
                    else:
                        seen.add(doc.doc_id)
                        unique.append(doc)
                fresh, skipped = filter_known(db, whole(unique))
                tally.counts["skipped_known"] += skipped
                fresh_ids = {d.doc_id for d in fresh}
                skips.extend(Skip(d.source_uri, d.doc_id, "known") for d in unique if d.doc_id not in fresh_ids)
                tally.seconds["read"] += time.perf_counter() - t
                # A piece without a new document is still one (empty) item: its rejections are quarantined
                # and its files recorded.
                pieces = list(batches(fresh, batch_size, BATCH_BYTES)) or [[]]
                for i, batch_docs in enumerate(pieces):
                    if STOP.is_set():
                        return
                    yield Work(batch_docs, pending, read.inputs if i == len(pieces) - 1 else None, tuple(skips))
                    pending, skips = [], []
                t = time.perf_counter()
            files_done += len(group)
            tally.progress(files_done, len(paths))
        if pending:
            yield Work([], pending)

    # With worker processes, loads share one write connection (no WAL replay and a warm DuckDB cache per
    # batch), held HOLD_SECONDS at most; whenever the writer would wait for the workers and a reader is
    # waiting for the file, it lets go, so readers get in between batches as before (docs/operations.md,
    # tests/flows/test_faults.py). Letting go at every pause cost the 20k re-scrape stream ~15% of its
    # docs/s. In-process, every load is followed by processing: a connection per load, closed before
    # the load reports, as always.
    holding = holding_writes(db) if pool_key is not None else contextlib.nullcontext(None)
    with holding as held:
        idle = held.idle if held is not None else (lambda: None)
        for item, batch in _processed(work(), ctx, sign_cfg, pool_key, doc_seconds, idle=idle):
            if STOP.is_set():
                break  # this batch was processed but not loaded: its documents are new again next run
            t = time.perf_counter()
            with _write_section():
                stats = load_batch_task(db, run_id, whole(batch), whole(item.rejections), dedup_cfg,
                                        whole(item.inputs or ()), whole(item.skips), whole(item.docs))
            tally.seconds["load"] += time.perf_counter() - t
            seen.difference_update(d.doc_id for d in item.docs)
            tally.seconds["process"] += batch.seconds
            tally.rejections(stats)
            # A rejection quarantined by an earlier run (a file re-read after its mtime changed) adds no
            # row: it is a known input now, skipped like known bytes.
            # (Counted from the keys found, not as "rejections minus rows added": two rejections that collided
            # on one key would then pass for known, and the balance check could not see the lost one.)
            tally.counts["skipped_known"] += stats.known_rejections
            tally.removed.update(batch.removed)
            tally.counts["loaded"] += stats.articles
            tally.dedup.update({k: int(v) for k, v in stats.dedup.items()})
            tally.progress(files_done, len(paths))
        if pool_key is not None and not STOP.is_set():
            # Every batch is processed: the workers exit now, before the writer folds its WAL into the
            # file on letting go of it, rather than idle through that (~0.3 GB each on HTML pages).
            close_pool(pool_key)


# Batches submitted ahead of the one being loaded: two keep the workers busy while the writer loads
# and while the next group of files is read (one left them idle at every hand-over); memory holds
# three batches and two read groups.
AHEAD = 2


def _processed(items: Iterator[Work], ctx: Any, sign_cfg: SignConfig, pool_key: str | None,
               doc_seconds: float, idle: Callable[[], None] = lambda: None) -> Iterator[tuple[Work, ProcessedBatch]]:
    """Each work item with its processed batch, in order. With somewhere to process other than this
    process (worker processes, or a task runner such as Dask's), the next batches are processed while
    the caller loads this one. Without, batches are processed here one after the other: on one core a
    second thread has nothing to overlap with and only contends for the GIL. `idle` is called before
    waiting for a batch that is not processed yet (the writer lets go of the warehouse then)."""
    context = FlowRunContext.get()
    runner = context.task_runner if context else None
    if pool_key is None and (runner is None or isinstance(runner, ThreadPoolTaskRunner)):
        for item in items:
            if item.docs:
                idle()
            yield item, _process_now(item.docs, ctx, sign_cfg, doc_seconds)
        return
    # Dask walks task arguments itself and mangles Prefect's `quote` wrapper: pass plain values there.
    wrap: Callable[[Any], Any] = whole if isinstance(runner, ThreadPoolTaskRunner) else (lambda value: value)
    in_flight: deque[tuple[Work, PrefectFuture[ProcessedBatch] | None]] = deque()
    for item in items:
        # An empty batch (rejections or inputs to record only) is not worth a task run.
        future = process_batch.submit(wrap(item.docs), wrap(ctx), sign_cfg, pool_key, doc_seconds) \
            if item.docs else None
        in_flight.append((item, future))
        while len(in_flight) > AHEAD:
            yield _result(in_flight.popleft(), sign_cfg, idle)
    while in_flight:
        yield _result(in_flight.popleft(), sign_cfg, idle)


def _process_now(docs: Sequence[RawDocument], ctx: Any, sign_cfg: SignConfig, doc_seconds: float) -> ProcessedBatch:
    if not docs:
        return ProcessedBatch.empty(sign_cfg)
    return process_batch(whole(docs), whole(ctx), sign_cfg, None, doc_seconds)


def _result(entry: tuple[Work, PrefectFuture[ProcessedBatch] | None], sign_cfg: SignConfig,
            idle: Callable[[], None] = lambda: None) -> tuple[Work, ProcessedBatch]:
    item, future = entry
    if future is None:
        return item, ProcessedBatch.empty(sign_cfg)
    # Whether it is done, without asking the Prefect server (`state` may): the runner's own future.
    wrapped = getattr(future, "wrapped_future", None)
    if not (wrapped is not None and hasattr(wrapped, "done") and wrapped.done()):
        idle()
    return item, future.result()


def _report(summary: dict[str, Any]) -> str | None:
    """A markdown artifact on the flow run (what an operator looks at in Prefect's UI) and the same
    report as a file beside the warehouse; returns the file's path."""
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
        "## Duplicates",
        "",
        *[f"- {k}: {v}" for k, v in summary["dedup"].items()],
        "",
        "## Seconds per stage",
        "",
        *[f"- {k}: {v}" for k, v in summary["seconds"].items()],
    ]
    markdown = "\n".join(lines)
    try:
        create_markdown_artifact(markdown=markdown, key="ingest-report", description="newsetl ingest run summary")
    except Exception as exc:
        get_run_logger().warning("could not write the run report artifact: %s", exc)
    return write_report_file(summary["db"], summary["run_id"], markdown + "\n")
