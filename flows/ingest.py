"""The `ingest` flow: parameters and wiring only; the work is in tasks/ and the text core.

Shape of a run: discover -> skip unchanged files -> for each group of files: read -> skip known
doc_ids -> batches: process (in worker processes, two batches ahead) while the writer loads the
previous one (one writer, one transaction per batch; a group's files are recorded as read in the
transaction of its last batch) -> finish the run row and a report.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.context import FlowRunContext
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from newsetl.schemas.records import RawDocument, Rejection
from newsetl.sources.config import ReadConfig
from newsetl.sources.reasons import SKIP_REASONS
from newsetl.tasks.ingest import (
    ProcessedBatch,
    ReadGroup,
    discover_sources,
    filter_known,
    load_batch_task,
    process_batch,
    read_documents,
    read_pieces,
    reclean_task,
    skip_unchanged,
)
from newsetl.tasks.pool import PoolConfig, close_pool, open_pool
from newsetl.text.learned import LearnedConfig
from newsetl.text.lsh import DedupConfig
from newsetl.text.pipeline import ProcessConfig, make_context
from newsetl.text.sign import SignConfig
from newsetl.warehouse.connect import default_db_path, migrate, run_lock, writer
from newsetl.warehouse.dedup import check_scheme
from newsetl.warehouse.learned import learned_keys_by_publisher
from newsetl.warehouse.load import finish_run, start_run

T = TypeVar("T")
# Raw bytes read at once (with `files_per_read`, a group); at most two groups are held, the one being
# loaded and the next, read while the last batches of the first are processed.
READ_GROUP_BYTES = 128 * 1024 * 1024
# ... and a group is handed on in pieces of at most this many documents / raw bytes (a group is one file
# when the file is larger than READ_GROUP_BYTES: a 600 MB JSONL dump held whole cost 2+ GB).
READ_PIECE_DOCS = 5000
READ_PIECE_BYTES = 32 * 1024 * 1024


def whole(value: T) -> T:
    """A task argument Prefect passes as it is: batches (documents, articles, rules) are wrapped in
    `quote`, because Prefect otherwise walks every element of every argument looking for futures, which
    cost more than loading the batch. Typed as the value: Prefect unwraps it before the task runs."""
    return cast(T, quote(value))


def usable_cores() -> int:
    """Cores this process may run on (a container's or taskset's limit), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def file_groups(paths: Sequence[str], max_files: int, max_bytes: int) -> Iterator[list[str]]:
    """Groups of input files to read at once, bounded by count and by bytes on disk, so memory stays
    bounded by the group rather than the corpus (a single file larger than the budget is its own group)."""
    group: list[str] = []
    size = 0
    for path in paths:
        try:
            n = 0 if "://" in path else os.stat(path).st_size
        except OSError:
            n = 0
        if group and (len(group) >= max_files or size + n > max_bytes):
            yield group
            group, size = [], 0
        group.append(path)
        size += n
    if group:
        yield group


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

    def rejections(self, rejections: Sequence[Rejection]) -> None:
        self.counts["quarantined"] += len(rejections)
        self.reasons.update(f"{r.stage}:{r.reason}" for r in rejections)

    def skipped(self, skips: Sequence[Rejection]) -> None:
        self.counts["skipped_other"] += len(skips)
        self.skips.update(r.reason for r in skips)

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
    batch_size: int = 500,
    files_per_read: int = 2000,
    rules_files: list[str] | None = None,
    workers: int | None = None,
    doc_seconds: float = 20.0,
    take_lock: bool = True,
) -> dict[str, Any]:
    """Ingest files, directories, globs (and URLs) into the warehouse; return the run summary.

    Memory is bounded by two groups of `files_per_read` raw inputs and three batches in flight.
    `workers` is the number of worker processes for the CPU-bound stages (default: one per usable core;
    0 or 1 = in-process).
    """
    logger = get_run_logger()
    db_path = str(Path(db) if db else default_db_path())
    n_workers = usable_cores() if workers is None else workers
    run_id = uuid.uuid4().hex
    params = {"sources": list(sources), "db": db_path, "batch_size": batch_size,
              "rules_files": rules_files or [], "workers": n_workers}
    sign_cfg = SignConfig()
    dedup_cfg = DedupConfig(sign=sign_cfg)
    learned_cfg = LearnedConfig()
    tally = RunTally()

    # take_lock=False: the caller (the CLI) already holds the run lock, taken before the flow started
    # so that a refusal is a clear message rather than a failed flow run with a traceback.
    with run_lock(db_path) if take_lock else contextlib.nullcontext():
        t0 = time.perf_counter()
        with writer(db_path) as con:
            migrate(con)
            check_scheme(con, dedup_cfg)
            start_run(con, run_id, str(flow_run.get_id() or ""), params)
            # What earlier runs learned is applied while cleaning; what this run learns, by reclean below.
            learned = learned_keys_by_publisher(con, learned_cfg)
        pool_key: str | None = None
        try:
            ctx = make_context(ProcessConfig(rules_files=tuple(rules_files or ())), learned)
            if n_workers > 1:
                pool_key = open_pool(ctx, PoolConfig(workers=n_workers, doc_seconds=doc_seconds))
            tally.seconds["setup"] += time.perf_counter() - t0
            _run(tally, sources, db_path, run_id, batch_size, files_per_read, ctx, sign_cfg, dedup_cfg,
                 pool_key, doc_seconds)
            if tally.counts["loaded"]:
                t0 = time.perf_counter()
                tally.counts["recleaned"] += reclean_task(db_path, run_id, whole(ctx), learned_cfg)
                tally.seconds["reclean"] += time.perf_counter() - t0
        except BaseException as exc:
            _record_failure(db_path, run_id, tally, exc)
            raise
        finally:
            if pool_key:
                close_pool(pool_key)
        summary = tally.summary()
        with writer(db_path) as con:
            finish_run(con, run_id, "completed", summary)
    summary = {"run_id": run_id, "db": db_path, **summary}
    _report(summary)
    logger.info("ingest summary: %s", summary)
    return summary


def _record_failure(db: str, run_id: str, tally: RunTally, exc: BaseException) -> None:
    """Mark the run failed with its reason; if even that cannot be written (disk full), the original
    error is what the caller must see, so this one is only logged."""
    try:
        with writer(db) as con:
            finish_run(con, run_id, "failed", tally.summary(), f"{type(exc).__name__}: {exc}")
    except Exception as again:
        get_run_logger().warning("could not record the failed run %s: %s", run_id, again)


@dataclass(frozen=True)
class Work:
    """One batch to process and load, with what must be written alongside or after it."""

    docs: Sequence[RawDocument]
    rejections: list[Rejection]  # read rejections, quarantined in this batch's transaction
    # Files every batch of which is loaded once this batch is: recorded as read in its transaction (not
    # before, so a crash means reading them again, and their known doc_ids are skipped).
    inputs: tuple[tuple[str, int, int, int], ...] | None = None


def _read(group: Sequence[str]) -> Iterator[ReadGroup]:
    """A group of files at once (one Prefect task run), or, when it is one file larger than a piece, that
    file streamed in pieces of bounded size: memory stays bounded even by a multi-GB dump."""
    try:
        big = len(group) == 1 and "://" not in group[0] and os.stat(group[0]).st_size > READ_PIECE_BYTES
    except OSError:
        big = False
    if big:
        yield from read_pieces(group, ReadConfig(), READ_PIECE_DOCS, READ_PIECE_BYTES)
    else:
        yield read_documents(whole(group), ReadConfig())


def _run(
    tally: RunTally, sources: Sequence[str], db: str, run_id: str, batch_size: int, files_per_read: int,
    ctx: Any, sign_cfg: SignConfig, dedup_cfg: DedupConfig, pool_key: str | None, doc_seconds: float,
) -> None:
    t0 = time.perf_counter()
    paths, not_found = discover_sources(sources)
    paths, unchanged_docs = skip_unchanged(db, paths)
    tally.seconds["discover"] += time.perf_counter() - t0
    # Accounting: every input read is loaded, skipped as known, or quarantined.
    tally.counts["read"] += len(not_found) + unchanged_docs
    tally.counts["skipped_known"] += unchanged_docs
    seen: set[str] = set()

    def work() -> Iterator[Work]:
        """The run's batches, reading a group of files only when its first batch is wanted: with
        workers, the next group is read while the last batches of this one are processed."""
        pending = list(not_found)
        for group in file_groups(paths, files_per_read, READ_GROUP_BYTES):
            t = time.perf_counter()
            for read in _read(group):
                docs = [o for o in read.outcomes if isinstance(o, RawDocument)]
                rejected = [o for o in read.outcomes if isinstance(o, Rejection)]
                tally.skipped([r for r in rejected if r.reason in SKIP_REASONS])
                pending.extend(r for r in rejected if r.reason not in SKIP_REASONS)
                tally.counts["read"] += len(read.outcomes)
                # The same bytes twice in one run (a file copied into two folders) load once.
                unique = []
                for doc in docs:
                    if doc.doc_id in seen:
                        tally.counts["skipped_known"] += 1
                    else:
                        seen.add(doc.doc_id)
                        unique.append(doc)
                fresh, skipped = filter_known(db, whole(unique))
                tally.counts["skipped_known"] += skipped
                tally.seconds["read"] += time.perf_counter() - t
                # A group without a new document is still one (empty) item: its rejections are quarantined
                # and its files recorded.
                batches = list(chunks(fresh, batch_size)) or [[]]
                for i, batch_docs in enumerate(batches):
                    yield Work(batch_docs, pending, read.inputs if i == len(batches) - 1 else None)
                    pending = []
                t = time.perf_counter()
        if pending:
            yield Work([], pending)

    for item, batch in _processed(work(), ctx, sign_cfg, pool_key, doc_seconds):
        t = time.perf_counter()
        stats = load_batch_task(db, run_id, whole(batch), whole(item.rejections), dedup_cfg,
                                whole(item.inputs or ()))
        tally.seconds["load"] += time.perf_counter() - t
        tally.seconds["process"] += batch.seconds
        tally.rejections([*item.rejections, *batch.rejections])
        tally.removed.update(batch.removed)
        tally.counts["loaded"] += stats.articles
        tally.dedup.update({k: int(v) for k, v in stats.dedup.items()})


# Batches submitted ahead of the one being loaded: two keep the workers busy while the writer loads
# and while the next group of files is read (one left them idle at every hand-over); memory holds
# three batches and two read groups.
AHEAD = 2


def _processed(items: Iterator[Work], ctx: Any, sign_cfg: SignConfig, pool_key: str | None,
               doc_seconds: float) -> Iterator[tuple[Work, ProcessedBatch]]:
    """Each work item with its processed batch, in order. With somewhere to process other than this
    process (worker processes, or a task runner such as Dask's), the next batches are processed while
    the caller loads this one. Without, batches are processed here one after the other: on one core a
    second thread has nothing to overlap with and only contends for the GIL."""
    context = FlowRunContext.get()
    runner = context.task_runner if context else None
    if pool_key is None and (runner is None or isinstance(runner, ThreadPoolTaskRunner)):
        for item in items:
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
            yield _result(in_flight.popleft(), sign_cfg)
    while in_flight:
        yield _result(in_flight.popleft(), sign_cfg)


def _process_now(docs: Sequence[RawDocument], ctx: Any, sign_cfg: SignConfig, doc_seconds: float) -> ProcessedBatch:
    if not docs:
        return ProcessedBatch.empty(sign_cfg)
    return process_batch(whole(docs), whole(ctx), sign_cfg, None, doc_seconds)


def _result(entry: tuple[Work, PrefectFuture[ProcessedBatch] | None],
            sign_cfg: SignConfig) -> tuple[Work, ProcessedBatch]:
    item, future = entry
    return item, future.result() if future is not None else ProcessedBatch.empty(sign_cfg)


def _report(summary: dict[str, Any]) -> None:
    """A markdown artifact on the flow run: what an operator looks at in Prefect's UI."""
    lines = [
        f"# newsetl ingest run `{summary['run_id']}`",
        "",
        f"Warehouse: `{summary['db']}`",
        "",
        "| read | loaded | skipped (known) | quarantined |",
        "|---:|---:|---:|---:|",
        f"| {summary['read']} | {summary['loaded']} | {summary['skipped_known']} | {summary['quarantined']} |",
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
    try:
        create_markdown_artifact(markdown="\n".join(lines), key="ingest-report",
                                 description="newsetl ingest run summary")
    except Exception as exc:
        get_run_logger().warning("could not write the run report artifact: %s", exc)
