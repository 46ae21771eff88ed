"""Prefect tasks of the ingest flow, thin wrappers over batches, and what they share: the streaming
read of a group of files (`read_pieces`, which also tracks the files read to their end), the run's
held write connection (`holding_writes`) and what a read hands on (`ReadPiece`; a processed batch is
`tasks.pool.ProcessedBatch`).

Each task takes a whole batch (never one task run per document: a task run costs ~10 ms, more
than the work on one article). `cache_policy=NO_CACHE`: Prefect's default cache key hashes the
inputs, which for a batch of raw pages costs more than the batch itself, and a re-run must see
the warehouse, not a cached answer. No Prefect retries: a write that finds the warehouse busy with a
reader already waits for it, up to the run's `--wait` (`warehouse.connect.connect`), and `--wait` is the
user's budget for that whole wait (see `load_batch_task`); parse failures are final and become
quarantine rows instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from newsetl.schemas.records import STAGE_PROCESS, InputRow, KnownPage, RawDocument, Rejection, Skip
from newsetl.sources.config import ReadConfig
from newsetl.sources.discover import discover, settling
from newsetl.sources.read import read_path
from newsetl.sources.reasons import (
    NOT_FOUND,
    NOT_REGULAR_FILE,
    READ_ERROR,
    UNREADABLE,
    UNSUPPORTED_KIND,
    display_path,
)
from newsetl.tasks.books import report_dir
from newsetl.tasks.pool import (
    DEFAULT_DOC_SECONDS,
    TIME_LIMIT_EXCEEDED,
    WORKER_CRASHED,
    PoolTerminated,
    ProcessedBatch,
    run_batch,
)
from newsetl.tasks.reclean import reclean
from newsetl.tasks.report import report_path
from newsetl.tasks.stop import stop_requested
from newsetl.text.learned import LearnedConfig
from newsetl.text.lsh import DedupConfig
from newsetl.text.pipeline import ProcessContext
from newsetl.text.sign import SignConfig
from newsetl.warehouse.connect import SERVE_LOCK_SUFFIX, HeldWriter, WarehouseBusy, writer
from newsetl.warehouse.load import (
    LoadStats,
    fetched_pages,
    known_doc_ids,
    load_prepared,
    refused_under_a_lower_limit,
    unchanged_inputs,
)
from newsetl.warehouse.rows import with_raw
from newsetl.warehouse.snapshot import generations_dir, snapshot_path

# Seconds the run's batch loads and known-id look-ups share one write connection before letting go of
# the file for readers (HeldWriter): a reader of the warehouse waits at most this plus one load.
HOLD_SECONDS = 10.0
_HELD: dict[str, HeldWriter] = {}


@contextmanager
def holding_writes(db: str) -> Iterator[HeldWriter]:
    """Within this block, the batch tasks of `db` share a `HeldWriter` (released at the end). The caller
    calls `idle()` whenever the writer is about to wait for work: a reader waiting through `connect`
    gets in then, between two batch loads; else the connection is kept for the next load
    (no reopen: no WAL replay, DuckDB's cache warm), for HOLD_SECONDS at most, which also bounds what
    a reader that does not ask (a bare DuckDB client) waits. (`close()` lets go at every pause.)"""
    held = HeldWriter(db, HOLD_SECONDS, threads=LOAD_THREADS, memory_limit=LOAD_MEMORY_LIMIT,
                      fold_memory_limit=FOLD_MEMORY_LIMIT)
    _HELD[db] = held
    try:
        yield held
    finally:
        del _HELD[db]
        held.close(final=True)


@contextmanager
def _batch_connection(db: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """The held connection inside `holding_writes`, else a short one (one per call)."""
    held = _HELD.get(db)
    if held is None:
        with writer(db, checkpoint=False, threads=LOAD_THREADS, memory_limit=LOAD_MEMORY_LIMIT,
                    fold_memory_limit=FOLD_MEMORY_LIMIT) as con:
            yield con
    else:
        with held.use() as con:
            yield con


# DuckDB threads of a batch load: one, since the worker processes processing the next batches meanwhile
# have the cores (see newsetl.warehouse.connect.writer).
LOAD_THREADS = 1
# DuckDB memory of the batch loads: the ingest's main process holds this connection beside the run's
# Python side (read pieces, batches in flight, Prefect). What DuckDB keeps is mostly the warehouse's
# cached blocks (the band table, ids): with 1 GB the main process peaked at 1.51 GB at 100k docs; with
# 400 MB the 700 MB warehouse of a 100k run was evicted and read again every batch (writer share 0.28);
# 800 MB: writer share 0.244 and the largest process still 1.26 GB (bench/bench_stream.py, 100k docs).
# $NEWSETL_DUCKDB_MEMORY overrides it.
LOAD_MEMORY_LIMIT = "800MB"
# ... and of their WAL folds (warehouse.connect.fold_wal_into_file). On the 200k re-scrape stream (one timed run
# each) the two folds that merged full row groups took the ingest process to 1.50 GB with the load limit;
# at 400 MB it peaked at 1.13 GB, the folds took 63.0 s instead of 53.4 s and the run 425 s instead of
# 417 s; at 200 MB 1.10 GB, but 83.1 s of folds. With 400 MB, bench/bench_stream.py's largest process on
# 200k documents: 1.15 GB instead of 1.43, at the same docs/s.
FOLD_MEMORY_LIMIT = "400MB"


@dataclass(frozen=True)
class ReadPiece:
    """What one read produced: the outcomes of a group of small files, or of a bounded piece of a large
    one (`read_pieces`), and the files read to the end in it."""

    outcomes: tuple[RawDocument | Rejection, ...]
    # each local file read to the end: recorded after loading
    inputs: tuple[InputRow, ...] = ()


def written_beside(db: str) -> Callable[[str], bool]:
    """Whether a path is one a run writes beside its warehouse `<dir>/<stem>.duckdb`: the file itself and its
    .wal, .lock and .waiting, the snapshot (`<stem>.snapshot.duckdb` and the folder `<stem>.snapshot/`),
    the HTML report (`<stem>.report.html`) and the run reports (`<stem>.runs/`). A warehouse inside an
    ingested folder (`newsetl ingest inbox --db inbox/w.duckdb`) read its own report as an article at
    every run and quarantined the rest as unsupported, again every run (a user trial)."""
    db_file = Path(os.path.abspath(db))
    folders = {os.path.abspath(db_file.parent), os.path.realpath(db_file.parent)}
    # The names as their writers make them; .wal is DuckDB's log, .lock, .serve.lock and .waiting
    # warehouse.connect's run lock, serve lock and reader's mark.
    files = {db_file.name, *(f"{db_file.name}.{x}" for x in ("wal", "lock", "waiting")),
             db_file.name + SERVE_LOCK_SUFFIX, snapshot_path(db_file).name, report_path(db_file).name}
    trees = tuple(os.path.join(f, tree.name) + os.sep for f in folders
                  for tree in (generations_dir(db_file), report_dir(str(db_file))))

    def written(path: str) -> bool:
        head, name = os.path.split(path)
        return (head in folders and name in files) or (path + os.sep).startswith(trees)

    return written


@task(name="discover-sources", cache_policy=NO_CACHE)
def discover_sources(sources: Sequence[str], db: str, min_age: float = 0.0
                     ) -> tuple[list[str], list[Rejection], list[str]]:
    """The run's inputs (`discover`), less what the run itself writes beside the warehouse `db`, and less
    the files modified in the last `min_age` seconds (returned third: left for a later run)."""
    paths, rejections = discover(sources, leave_out=written_beside(db))
    paths, young = settling(paths, min_age)
    # Refused: a path or glob that names nothing, a bad URL or @list file, a folder that cannot be listed.
    get_run_logger().info("discovered %d inputs (%d sources refused)%s", len(paths), len(rejections),
                          f"; {len(young)} file(s) modified in the last {min_age:g} s left for a later run"
                          if young else "")
    return paths, rejections, young


@task(name="skip-unchanged", cache_policy=NO_CACHE)
def skip_unchanged(db: str, paths: Sequence[str], config: ReadConfig,
                   doc_seconds: float = DEFAULT_DOC_SECONDS) -> tuple[list[str], int]:
    """Drop files already read whose size, mtime and ctime are unchanged (and read under the same settings,
    `ReadConfig.read_as`); return (to read, their documents).

    A stat per file and one join: an hourly run over a drop folder of 100,000 old files does not
    read them again. An unchanged file holding a document a run refused for its time limit, lower than
    this run's `doc_seconds` (0: none), is read again: raising `--doc-seconds` retries it (it had to be
    touched).
    """
    stats: list[tuple[str, int, int, str | None, int]] = []
    for path in paths:
        if "://" in path:
            continue
        try:
            st = os.stat(path)
        except OSError:
            continue  # reading will quarantine it with the reason
        # inputs keys a file by its stored name: a name that is not UTF-8 with its bad bytes escaped
        stats.append((display_path(path), st.st_size, st.st_mtime_ns, config.read_as(path), st.st_ctime_ns))
    with writer(db, checkpoint=False) as con:
        unchanged = unchanged_inputs(con, stats)
        for path in refused_under_a_lower_limit(con, list(unchanged), (STAGE_PROCESS, TIME_LIMIT_EXCEEDED),
                                                doc_seconds, DEFAULT_DOC_SECONDS):
            del unchanged[path]
    return [p for p in paths if display_path(p) not in unchanged], sum(unchanged.values())


@task(name="read-documents", cache_policy=NO_CACHE)
def read_documents(paths: Sequence[str], config: ReadConfig) -> ReadPiece:
    """All of a group at once (callers that want bounded memory iterate `read_pieces`)."""
    pieces = list(read_pieces(paths, config, max_docs=2**62, max_bytes=2**62))
    return ReadPiece(outcomes=tuple(o for p in pieces for o in p.outcomes),
                     inputs=tuple(i for p in pieces for i in p.inputs))


# Refusals of a file whose bytes were never read: its content is unknown, so it is not "read". A file of a
# kind newsetl does not read is one (refused by its name): recorded, the next run over a folder of only such
# files would find it "known" and exit 0 where the first said "nothing to ingest" (5). A file whose reading
# met a bug (read_error) is not recorded either: a fixed newsetl reads it again.
NOT_READ = frozenset({UNREADABLE, NOT_FOUND, NOT_REGULAR_FILE, UNSUPPORTED_KIND, READ_ERROR})


def read_pieces(paths: Sequence[str], config: ReadConfig, max_docs: int, max_bytes: int) -> Iterator[ReadPiece]:
    """Read files into pieces of at most `max_docs` outcomes or about `max_bytes` raw bytes, streaming: a
    multi-GB JSONL or WARC file is never held whole. A file read to the end is listed in the `inputs` of
    the piece that holds its last outcome (or a later one): recorded once that piece's last batch is
    loaded, i.e. after all its documents are."""
    # Local reads: a failure is a property of the file (missing, unreadable, corrupt), so it is
    # recorded as a rejection of that file rather than retried.
    outcomes: list[RawDocument | Rejection] = []
    inputs: list[InputRow] = []
    size = 0
    for path in paths:
        try:
            st = None if "://" in path else os.stat(path)
        except OSError:
            st = None
        produced = 0
        unread = False
        for outcome in read_path(path, config):
            outcomes.append(outcome)
            produced += 1
            unread = unread or (isinstance(outcome, Rejection) and outcome.reason in NOT_READ)
            size += len(outcome.raw or b"")
            if len(outcomes) >= max_docs or size >= max_bytes:
                yield ReadPiece(outcomes=tuple(outcomes), inputs=tuple(inputs))
                outcomes, inputs, size = [], [], 0
        # A file whose bytes could not be read (permission denied, gone, a pipe) is not recorded as read:
        # the next run tries again (its quarantine row has a fixed id, so a refusal is not written twice).
        if st is not None and not unread:
            inputs.append(InputRow(display_path(path), st.st_size, st.st_mtime_ns, produced, config.read_as(path),
                                   st.st_ctime_ns))
    if outcomes or inputs:
        yield ReadPiece(outcomes=tuple(outcomes), inputs=tuple(inputs))


# Refusals of the run, not of the document: a document refused only so is processed again when its source is
# read again (a changed or touched file, a URL), e.g. after raising --doc-seconds.
RETRIED = ((STAGE_PROCESS, TIME_LIMIT_EXCEEDED), (STAGE_PROCESS, WORKER_CRASHED))


@task(name="filter-known", cache_policy=NO_CACHE)
def filter_known(db: str, docs: Sequence[RawDocument]) -> tuple[list[RawDocument], int]:
    """Drop documents whose doc_id the warehouse already holds (a re-run loads nothing twice)."""
    with _batch_connection(db) as con:
        known = known_doc_ids(con, [d.doc_id for d in docs], retry=RETRIED)
    fresh = [d for d in docs if d.doc_id not in known]
    return fresh, len(docs) - len(fresh)


def pages_fetched_into(db: str) -> Callable[[Sequence[str]], Mapping[str, KnownPage]]:
    """`ReadConfig.known_pages` of a run into `db`: the pages of some URLs the warehouse holds, with their
    validators (`warehouse.load.fetched_pages`), asked as the reader meets a URL or a feed's pages, on the
    run's write connection. A warehouse held by another process past the writer's wait costs the
    validators, not the read: the pages are fetched whole."""

    def lookup(urls: Sequence[str]) -> Mapping[str, KnownPage]:
        try:
            with _batch_connection(db) as con:
                return fetched_pages(con, urls)
        except WarehouseBusy as busy:
            get_run_logger().warning("fetching %d URL(s) without their validators: %s", len(urls), busy)
            return {}

    return lookup


@task(name="process-batch", cache_policy=NO_CACHE)
def process_batch(
    docs: Sequence[RawDocument], ctx: ProcessContext, sign: SignConfig, pool_key: str | None = None,
    doc_seconds: float = DEFAULT_DOC_SECONDS,
) -> ProcessedBatch:
    import time

    t0 = time.perf_counter()
    try:
        processed = run_batch(docs, ctx, sign, pool_key, doc_seconds)
    except PoolTerminated:
        # Returned, not raised: a stopped run kills the pool under the batches in flight, and a task that
        # raises is logged by Prefect as an ERROR with a traceback, one per batch, on every stop of
        # `newsetl serve`. The flow raises it where it reads the batch, if it still does.
        get_run_logger().info("batch not processed: the run is being stopped (its documents are read again "
                              "by the next run)")
        return ProcessedBatch.empty(sign, stopped=True)
    return replace(processed, seconds=time.perf_counter() - t0)


# Not retried by Prefect when the warehouse is busy, nor are the run's other writes: opening it already waits
# up to `--wait` seconds for a reader to let go (polling every 50 ms), so a retry could only wait again. With
# retries=3 and a 2 s delay, `--wait 2` gave up after ~14 s of tries, then 10 s more to record the failure,
# and said "gave up after 2 s" (a user trial). `--wait` is what a user gives the whole wait: past it, the run
# fails at once, naming the holder, and the message's seconds are the seconds waited.
@task(name="load-batch", cache_policy=NO_CACHE)
def load_batch_task(
    db: str, run_id: str, batch: ProcessedBatch, read_rejections: Sequence[Rejection], dedup: DedupConfig,
    inputs: Sequence[InputRow] = (), skips: Sequence[Skip] = (), docs: Sequence[RawDocument] = (),
) -> LoadStats:
    # A write connection held for a few seconds at most (`holding_writes`): readers (newsetl sql,
    # dashboards) get in between. `inputs`: the files this batch completes, recorded as read in its
    # transaction (a crash before it commits means they are read again, and their documents already in
    # are skipped as known).
    # `docs`: the batch's documents, whose bytes the prepared tables leave out (`with_raw`).
    prepared = with_raw(batch.prepared, docs)
    with _batch_connection(db) as con:
        stats = load_prepared(con, run_id, prepared, dedup, inputs=inputs, extra_rejections=read_rejections,
                              skips=skips)
    get_run_logger().info(
        "loaded batch: %d articles, %d removals, %d quarantined", stats.articles, stats.removals, stats.quarantined
    )
    return stats


@task(name="reclean-learned", cache_policy=NO_CACHE)
def reclean_task(db: str, run_id: str, ctx: ProcessContext, cfg: LearnedConfig) -> int:
    """Re-clean stored articles holding lines that became known boilerplate during this run."""
    with writer(db) as con:
        changed = reclean(con, run_id, cfg, ctx.rules, stop=stop_requested)
    get_run_logger().info("re-cleaned %d stored articles with newly learned boilerplate", changed)
    return changed
