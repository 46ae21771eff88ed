"""The `ingest` flow: parameters and wiring; the work is in tasks/ (which calls warehouse/ and the text core).

Shape of a run: record its start (migrate, the run row) -> discover -> skip unchanged files -> for each
group of files: read -> skip known doc_ids -> batches: process (in worker processes, two batches ahead)
while the writer loads the previous one (one writer, one transaction per batch; a group's files are
recorded as read in the transaction of its last batch) -> re-clean stored articles with newly learned
boilerplate -> check the run's counts balance and finish its row -> publish the snapshot for dashboards
and the HTML report -> the run report.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from prefect import flow, get_run_logger
from prefect.context import FlowRunContext
from prefect.exceptions import TerminationSignal
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.states import Cancelled
from prefect.task_runners import ThreadPoolTaskRunner

from newsetl.schemas.records import RawDocument
from newsetl.sources.config import ReadConfig
from newsetl.sources.fields import parse_field_mapping
from newsetl.tasks import usable_cores
from newsetl.tasks.batching import READ_CONFIG, RunBatches, Work, unscanned
from newsetl.tasks.books import (
    RunTally,
    begin_run,
    complete_run,
    record_failure,
    record_run_rules,
    run_lock_unless_held,
    run_report,
    warehouse_path,
)
from newsetl.tasks.ingest import (
    discover_sources,
    holding_writes,
    load_batch_task,
    pages_fetched_into,
    process_batch,
    reclean_task,
    skip_unchanged,
)
from newsetl.tasks.pool import DEFAULT_DOC_SECONDS, PoolConfig, ProcessedBatch, close_pool, open_pool
from newsetl.tasks.publish import publish_task
from newsetl.tasks.stop import (
    INTERRUPTED,
    IngestInterrupted,
    as_stop,
    reinstall_stop_handler,
    stop_requested,
    stop_waits_for,
    stops_handled_here,
)
from newsetl.text.learned import LearnedConfig
from newsetl.text.lsh import DedupConfig
from newsetl.text.pipeline import ProcessConfig, make_context
from newsetl.text.publishers import load_publisher_file
from newsetl.text.sign import SignConfig

# Documents per batch: one batch is one load transaction, whose ~50 dedup, sightings and publisher
# statements cost mostly per batch, not per document. Measured on the 100k re-scrape stream: 500 took the
# writer 71.9 s of 215.0 s (share 0.33, one run); 1,000 46.1-59.7 s of 194.9-219.3 s (0.231-0.272, four
# runs). 2,000 (one run) took it 41.4 s of 197.1 s (0.21), but the 20k stream fell from 3.45-3.50x
# datatrove's docs/s to 3.32-3.33x and its RSS sum grew 2.28 -> 2.51 GB. HTML batches are bounded by
# BATCH_BYTES long before either.
DEFAULT_BATCH_SIZE = 1000


@flow(name="ingest")
def ingest(
    sources: list[str],
    db: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    files_per_read: int = 2000,
    rules_files: list[str] | None = None,
    workers: int | None = None,
    doc_seconds: float = DEFAULT_DOC_SECONDS,
    take_lock: bool = True,
    publishers_files: list[str] | None = None,
    line_model: bool = True,
    jsonl_fields: dict[str, str] | None = None,
    min_age: float = 0.0,
) -> dict[str, Any]:
    """Ingest files, directories, globs (and URLs) into the warehouse; return the run summary.

    Memory is bounded by two groups of `files_per_read` raw inputs and three batches in flight.
    `workers` is the number of worker processes for the CPU-bound stages (default: one per usable core;
    0 or 1 = in-process). `publishers_files`: JSON alias files (`newsetl.text.publishers.load_publisher_file`),
    stored in the warehouse before the first batch so every article of the run resolves against them.
    `line_model=False` cleans with the rules alone (no learned line classifier). `jsonl_fields`: where JSON
    records keep a field that is not under a name `newsetl.sources.fields` knows (`{"text": "story"}`,
    `{"url": "meta.link"}`).
    `min_age`: files modified less than this many seconds ago are left for a later run (a drop folder's
    producer may still be writing them).
    """
    logger = get_run_logger()
    reinstall_stop_handler()
    db_path = warehouse_path(db)
    n_workers = usable_cores() if workers is None else workers
    run_id = uuid.uuid4().hex
    params = {"sources": list(sources), "db": db_path, "batch_size": batch_size,
              "rules_files": rules_files or [], "workers": n_workers, "publishers_files": publishers_files or [],
              "line_model": line_model, "jsonl_fields": dict(jsonl_fields or {}), "doc_seconds": doc_seconds}
    # Read the alias files and the field mapping before anything is written: a bad one fails the run at
    # once, with its name.
    read_config = replace(READ_CONFIG, jsonl_fields=parse_field_mapping(jsonl_fields),
                          known_pages=pages_fetched_into(db_path))
    user_publishers = [p for path in publishers_files or () for p in load_publisher_file(path)]
    sign_cfg = SignConfig()
    dedup_cfg = DedupConfig(sign=sign_cfg)
    learned_cfg = LearnedConfig()
    tally = RunTally()

    with run_lock_unless_held(db_path, take_lock), stops_handled_here():
        t0 = time.perf_counter()
        previous_completed, learned = begin_run(db_path, run_id, str(flow_run.get_id() or ""), params,
                                                user_publishers, dedup_cfg, learned_cfg)
        pool_key: str | None = None
        try:
            ctx = make_context(ProcessConfig(rules_files=tuple(rules_files or ()), line_model=line_model), learned,
                               processes_here=n_workers <= 1)
            record_run_rules(db_path, run_id, ctx.rules)
            if n_workers > 1:
                with stop_waits_for("the workers have started"):
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
                 pool_key, doc_seconds, read_config, min_age)
            # After a run that did not complete, also when this one loads nothing: its batches may be in
            # without their re-clean (every completed run leaves the stored bodies re-cleaned).
            if (tally.counts["loaded"] or not previous_completed) and not stop_requested():
                t0 = time.perf_counter()
                with stop_waits_for("the slice of stored articles being re-cleaned"):
                    tally.counts["recleaned"] += reclean_task(db_path, run_id, unscanned(ctx), learned_cfg)
                tally.seconds["reclean"] += time.perf_counter() - t0
            if stop_requested():
                raise IngestInterrupted(INTERRUPTED)
            summary = tally.summary()
            # The run checks its own books before it reports success.
            complete_run(db_path, run_id, summary)
        except BaseException as exc:
            stopped = as_stop(exc)
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
            report = record_failure(db_path, run_id, tally, stopped)
            if isinstance(stopped, Exception) and not isinstance(stopped, IngestInterrupted):
                # The failure's one line says why the run ended, not what it kept: a run that had loaded all
                # of its 3,000 articles and then met a reader holding the file ended with "... is busy",
                # exit 3, as a run refused before it read anything does (a user trial). Said beside it.
                stopped.add_note(f"this run loaded {tally.counts['loaded']} articles before it failed (kept: a "
                                 "re-run loads the rest)" + (f"; run report: {report}" if report else ""))
            if isinstance(stopped, IngestInterrupted) and _deployment_run():
                # A run of a deployment (`newsetl serve`, a Prefect worker) was stopped by its supervisor:
                # Prefect takes a returned State as the run's final state. Raising instead made the engine
                # print two tracebacks for a stop that was asked for. Direct calls (the CLI, tests) never
                # have a deployment id: they still get the exception and its exit code.
                return Cancelled(message=str(stopped))  # type: ignore[return-value]
            if stopped is exc:
                raise
            raise stopped from exc
        finally:
            if pool_key:
                close_pool(pool_key)
        # Dashboards read the snapshot, never the warehouse; still under the run lock (one publisher).
        # A stop asked for now waits for it: the run's rows are all in. (A publication that fails or is
        # abandoned all the same, or a run that failed or was stopped, is made up by the next run.)
        with stop_waits_for("publishing the snapshot for dashboards"):
            published = publish_task(db_path, run_id)
    summary = {"run_id": run_id, "db": db_path, **summary, "published": published}
    summary["run_report"] = run_report(summary)
    logger.info("ingest summary: %s", summary)
    return summary


def _deployment_run() -> bool:
    """Whether this flow run belongs to a deployment, read from the run's context (prefect.runtime's
    `deployment.id` asks the API server on a direct run, and that call would replace the stop's error
    if it failed)."""
    ctx = FlowRunContext.get()
    return bool(ctx and ctx.flow_run and ctx.flow_run.deployment_id)


def _run(
    tally: RunTally, sources: Sequence[str], db: str, run_id: str, batch_size: int, files_per_read: int,
    ctx: Any, sign_cfg: SignConfig, dedup_cfg: DedupConfig, pool_key: str | None, doc_seconds: float,
    read_config: ReadConfig, min_age: float,
) -> None:
    t0 = time.perf_counter()
    paths, refused, young = discover_sources(sources, db, min_age)
    tally.held_back(len(young))
    paths, unchanged_docs = skip_unchanged(db, paths, read_config, doc_seconds)
    tally.seconds["discover"] += time.perf_counter() - t0
    tally.discovered(refused, unchanged_docs)
    run_batches = RunBatches(db, paths, refused, tally, read_config, batch_size, files_per_read)
    # With worker processes, loads share one write connection (no WAL replay and a warm DuckDB cache per
    # batch), held HOLD_SECONDS at most; whenever the writer would wait for the workers and a reader is
    # waiting for the file, it lets go, so readers get in between batches (docs/operations.md,
    # tests/flows/test_faults.py). Letting go at every pause cost the 20k re-scrape stream ~15% of its
    # docs/s. In-process, every load is followed by processing: a connection per load, closed before
    # the load reports.
    holding = holding_writes(db) if pool_key is not None else contextlib.nullcontext(None)
    with holding as held:
        idle = held.idle if held is not None else (lambda: None)
        for item, batch in _processed(iter(run_batches), ctx, sign_cfg, pool_key, doc_seconds, idle=idle):
            if stop_requested():
                break  # this batch was processed but not loaded: its documents are new again next run
            t = time.perf_counter()
            with stop_waits_for("the batch being loaded"):
                stats = load_batch_task(db, run_id, unscanned(batch), unscanned(item.rejections), dedup_cfg,
                                        unscanned(item.inputs or ()), unscanned(item.skips), unscanned(item.docs))
            tally.seconds["load"] += time.perf_counter() - t
            tally.loaded(stats, batch.removed, batch.seconds)
            run_batches.loaded(item)
        if pool_key is not None and not stop_requested():
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
    wrap: Callable[[Any], Any] = unscanned if isinstance(runner, ThreadPoolTaskRunner) else (lambda value: value)
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
    return process_batch(unscanned(docs), unscanned(ctx), sign_cfg, None, doc_seconds)


def _result(entry: tuple[Work, PrefectFuture[ProcessedBatch] | None], sign_cfg: SignConfig,
            idle: Callable[[], None] = lambda: None) -> tuple[Work, ProcessedBatch]:
    item, future = entry
    if future is None:
        return item, ProcessedBatch.empty(sign_cfg)
    # Whether it is done, without asking the Prefect server (`state` may): the runner's own future.
    wrapped = getattr(future, "wrapped_future", None)
    if not (wrapped is not None and hasattr(wrapped, "done") and wrapped.done()):
        idle()
    return item, future.result().ensure_not_stopped()


