"""Worker processes for the CPU-bound stages, with a time limit per document and a memory limit per worker.

Why a process pool inside the task rather than Prefect's process or Dask task runner: those
runners start one temporary Prefect API server per worker when no real server is configured
(5-6x slower here), while this pool's workers are forked, ready, from a fork server that imported
and warmed the text core once per ingest process (`newsetl.tasks.worker_preload`). The Prefect task stays
one task run per batch; the pool splits the batch.

Why a fork server and not plain fork or spawn: forking the flow's process, which runs Prefect's
threads, can deadlock the child on a lock one of those threads held; spawn is safe but each worker
then imports and warms up the text core itself (~1.4 s of CPU per worker per run). The fork server
is a fresh single-threaded process: forking it is safe and cheap.

The limits are why documents are processed in workers even when they could run in-process:
a pathological page (trafilatura can spin for seconds on 100,000 nested elements) is stopped by
a CPU-time timer in the worker and quarantined, and a worker that dies (memory limit, segfault in lxml)
costs the batch its pool was on a second pass: the batch's documents are processed again one by one, on a
fresh pool, so the culprit is quarantined and the others load.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import resource
import select
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from types import FrameType
from typing import TypeVar

from newsetl.schemas.records import STAGE_PROCESS, Article, CleanResult, RawDocument, Rejection
from newsetl.sources.document import decode_pending
from newsetl.tasks import WORKER_PRELOAD
from newsetl.text.describe import detect_language
from newsetl.text.extract import warm_date_search
from newsetl.text.pipeline import (
    PreparedDocument,
    ProcessContext,
    clean_document,
    clean_prepared,
    finish_document,
    prepare_document,
    process_document,
    process_documents,
)
from newsetl.text.sign import Signatures, SignConfig, sign_texts, sign_words
from newsetl.warehouse.rows import PreparedBatch, prepare_batch

TIME_LIMIT_EXCEEDED = "time_limit_exceeded"
WORKER_CRASHED = "worker_crashed"

_T = TypeVar("_T")

# The per-document limit counts the worker's CPU time, not wall time: a pathological page spins the CPU
# whatever the load, while a good page on a busy machine (other tenants, a test suite, the other worker
# on one core) takes longer in wall time only. With a wall-clock timer, such a page was quarantined as
# `time_limit_exceeded` (seen on the 735 dev pages at load 7 on 2 cores), and a quarantined input is
# known from then on: the run's result depended on the machine's load.
LIMIT_TIMER, LIMIT_SIGNAL = signal.ITIMER_PROF, signal.SIGPROF
cpu_clock = time.process_time
# The limit's signal can land in a finalizer, a gc callback or a generator's clean-up, where the
# interpreter swallows what the handler raises ("Exception ignored in ..."; seen in a test run inside
# hypothesis's gc callback): a one-shot timer then left the document running with no limit at all. The
# timer repeats every LIMIT_REARM CPU seconds until it is disarmed, so the next signal stops it.
LIMIT_REARM = 0.25


def _arm(seconds: float) -> None:
    signal.setitimer(LIMIT_TIMER, seconds, LIMIT_REARM)


def _disarm() -> None:
    signal.setitimer(LIMIT_TIMER, 0)


# CPU seconds one document may take (`--doc-seconds`), also what a run that did not record its limit had.
DEFAULT_DOC_SECONDS = 20.0


@dataclass(frozen=True)
class PoolConfig:
    workers: int = 0  # 0: process in the calling process (no limits enforced off the main thread)
    doc_seconds: float = DEFAULT_DOC_SECONDS  # CPU-time limit for one document (see LIMIT_TIMER)
    worker_memory_mb: int = 4096  # address-space limit of a worker process
    min_docs_per_worker: int = 8  # below this a batch is not split (spawning costs more than it saves)
    # Workers run this much nicer than the ingest: the one writer (the ingest's main thread) and the
    # Prefect server are the run's serial path, and on a machine with as many workers as cores they
    # waited for a core behind the workers. Measured on the 20k re-scrape stream (2 cores, workers
    # reniced by 10 from outside): the writer's share of the wall time 0.28 -> 0.15, docs/s +28%. The
    # per-document limit counts CPU time, so a nicer worker is not quarantined for waiting. 0: as the ingest.
    worker_nice: int = 10


def _die_with(owner: int) -> None:
    """If the ingest process (`owner`) is killed -9, exit too, instead of staying blocked on the pool's
    pipes for ever. The worker's parent is the fork server, not the ingest, and the fork server does not
    exit while a worker lives (each worker holds its liveness pipe), so the worker watches the ingest
    itself: a pidfd (Linux) turns readable when that process ends, which a daemon thread waits for at
    no cost. Elsewhere, or on an old kernel, the thread polls."""
    try:
        fd = os.pidfd_open(owner)
    except (AttributeError, OSError):
        fd = None
    threading.Thread(target=_exit_when_gone, args=(owner, fd), name="newsetl-watch-ingest", daemon=True).start()


def _exit_when_gone(owner: int, fd: int | None) -> None:
    if fd is not None:
        select.select([fd], [], [])
    else:
        while _alive(owner):
            time.sleep(0.5)
    os._exit(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# How often a wait on a worker's result looks whether the pool was terminated meanwhile.
_TERMINATION_POLL = 0.5
# How long `terminate` waits for the executor's manager thread to see its killed workers and end.
_MANAGER_JOIN = 5.0


class PoolTerminated(RuntimeError):
    """The pool was terminated while a batch was in it (the run is being interrupted)."""

    def __init__(self, message: str = "the worker pool was stopped (the run is being interrupted)") -> None:
        super().__init__(message)


class PoolStartError(RuntimeError):
    """A worker could not get ready (its language model did not load: /tmp full, a damaged install): the
    run stops at its start with the worker's reason, rather than quarantine every document."""


class _DocTimeout(BaseException):
    """BaseException on purpose: the stages catch Exception to quarantine a bad document, and a
    timeout must pass through them to the limit that raised it."""


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise _DocTimeout


def _drop_timeouts(previous: Callable[[sys.UnraisableHookArgs], object]) -> Callable[[sys.UnraisableHookArgs], None]:
    """An unraisable-exception hook that passes everything on to `previous` but the limit's own exception.
    When the signal lands in a finalizer (an asyncio transport's `__del__`, a gc callback), the interpreter
    prints "Exception ignored in ..." with a traceback of _DocTimeout -- on the terminal of an ingest that
    runs fine, since the repeating timer (LIMIT_REARM) stops the document at its next signal."""

    def hook(unraisable: sys.UnraisableHookArgs) -> None:
        if not isinstance(unraisable.exc_value, _DocTimeout):
            previous(unraisable)

    return hook


@contextlib.contextmanager
def _limit_handler() -> Iterator[None]:
    """The limit's signal handler and the hook that keeps its swallowed timeouts quiet, for the block;
    the timer is disarmed and both are restored at its end."""
    previous = signal.signal(LIMIT_SIGNAL, _on_alarm)
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _drop_timeouts(previous_hook)
    try:
        yield
    finally:
        _disarm()
        sys.unraisablehook = previous_hook
        signal.signal(LIMIT_SIGNAL, previous)


_WORKER_CTX: ProcessContext | None = None
_WORKER_CFG: PoolConfig | None = None
_WORKER_INIT_ERROR: str | None = None  # why this worker could not get ready (`_ready` reports it)


def _init_worker(ctx: ProcessContext, cfg: PoolConfig, owner: int) -> None:
    global _WORKER_CTX, _WORKER_CFG
    _WORKER_CTX, _WORKER_CFG = ctx, cfg
    # A Ctrl-C in the terminal reaches the whole process group: the ingest decides what stops (it
    # terminates the pool); a worker interrupted on its own would only turn its chunk into an error.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with(owner)
    if cfg.worker_memory_mb > 0:
        limit = cfg.worker_memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(LIMIT_SIGNAL, _on_alarm)
    sys.unraisablehook = _drop_timeouts(sys.unraisablehook)
    if cfg.worker_nice > 0:
        with contextlib.suppress(OSError):  # a platform without nice: same work, default priority
            os.nice(cfg.worker_nice)
    global _WORKER_INIT_ERROR
    try:
        warm_up(ctx)
        # The warm-up's documents quarantine a failure like any document would; the language model is
        # asked directly, so that a model that does not load is the pool's start-up error (`_ready`).
        detect_language(_WARM_UP_TEXT)
    except Exception as exc:  # reported by _ready; raising here would break the pool with a traceback
        _WORKER_INIT_ERROR = f"{type(exc).__name__}: {exc}"


def _ready() -> str | None:
    """Run in each worker once it has started: None, or why it could not get ready."""
    return _WORKER_INIT_ERROR


_WARM_UP_TEXT = ("Council approves budget\n\nThe council approved the budget on Tuesday 5 March 2024 after a "
                 "long debate, the mayor said. “It is a fair settlement,” she told reporters.\n")


def warm_up(ctx: ProcessContext) -> None:
    """Load what the stages load lazily (language model, word frequencies, date parser, lxml) before
    the first real document, so its time limit measures the document and not the imports."""
    html = f"<html><head><title>Council</title></head><body><article><p>{_WARM_UP_TEXT}</p></article></body></html>"
    for kind, content in (("text", _WARM_UP_TEXT), ("html", html)):
        warm = RawDocument(doc_id="warm-up", source_uri="warm-up", kind=kind, content_type=kind,
                           raw=content.encode(), content=content)
        process_document(warm, ctx)
    # The warm-up pages carry their date in a form htmldate reads itself; its dateparser fallback, the
    # costliest lazy load of all (~0.6 CPU-s, `text/extract.date_parser`), is warmed on its own.
    warm_date_search()


def process_limited(doc: RawDocument, ctx: ProcessContext, seconds: float) -> Article | Rejection:
    """Process one document under a CPU-time limit (only enforceable on a main thread)."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        return process_document(doc, ctx)
    with _limit_handler():
        _arm(seconds)
        try:
            return process_document(doc, ctx)
        except _DocTimeout:
            _disarm()  # first: the repeating timer must not fire again while the rejection is built
            return _time_limit_exceeded(doc, seconds)


def _time_limit_exceeded(doc: RawDocument, seconds: float) -> Rejection:
    return Rejection(doc.source_uri, STAGE_PROCESS, TIME_LIMIT_EXCEEDED,
                     f"processing took longer than the limit of {seconds:g} s (--doc-seconds); it is processed "
                     "again when its source is next read (a run with a higher --doc-seconds, or 0 for none; "
                     "a changed or touched file)", doc_id=doc.doc_id, raw=doc.raw, url=doc.url)


class _TimedOut:
    """The marker `_within` returns when a step ran out of its document's time."""


_TIMED_OUT = _TimedOut()


def _within(left: list[float], k: int, step: Callable[[], _T]) -> _T | _TimedOut:
    """Run one step of document k under what is left of its time (`left[k]`, charged with the step's
    CPU time). The LIMIT_SIGNAL handler must be installed."""
    if left[k] <= 0:
        return _TIMED_OUT
    started = cpu_clock()
    _arm(left[k])
    try:
        return step()
    except _DocTimeout:
        _disarm()
        return _TIMED_OUT
    finally:
        _disarm()
        left[k] -= cpu_clock() - started


def process_batch_limited(docs: Sequence[RawDocument], ctx: ProcessContext,
                          seconds: float) -> list[Article | Rejection]:
    """`process_limited` over a batch, with its outcomes, but the clean step of all documents as one
    `clean_batch` call (`process_documents`: the line model's per-call cost is paid once per batch).

    The per-document limit holds: each document has `seconds` of CPU time for its steps; extraction
    and repair (where pathological pages spin) and describe run document by document under what is
    left of it. The batched clean runs under the documents' remaining time together; should it run
    over, or fail, the documents are cleaned one by one under their own limits, so only a document that
    is slow itself is quarantined `time_limit_exceeded`."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        return process_documents(docs, ctx)
    with _limit_handler():
        try:
            return _steps_limited(docs, ctx, seconds)
        except _DocTimeout:
            # An alarm that fired between a step's end and the disarming of its timer (a window of
            # microseconds): redo the batch document by document rather than lose it.
            _disarm()
            return [process_limited(d, ctx, seconds) for d in docs]


def _steps_limited(docs: Sequence[RawDocument], ctx: ProcessContext, seconds: float) -> list[Article | Rejection]:
    left = [seconds] * len(docs)
    out: list[Article | Rejection] = [_time_limit_exceeded(doc, seconds) for doc in docs]  # until done
    ready: list[tuple[int, PreparedDocument]] = []
    for k, doc in enumerate(docs):
        p = _within(left, k, lambda doc=doc: prepare_document(doc, ctx))  # type: ignore[misc]
        if isinstance(p, PreparedDocument):
            ready.append((k, p))
        elif isinstance(p, Rejection):
            out[k] = p
    if not ready:
        return out
    cleaned: list[CleanResult | Rejection | _TimedOut] | None = None
    budget = max(1e-3, sum(left[k] for k, _ in ready))  # (0 would disarm the timer)
    started = cpu_clock()
    _arm(budget)
    try:
        cleaned = list(clean_prepared([p for _, p in ready], ctx))
    except _DocTimeout:
        _disarm()
        cleaned = None
    except OSError:
        raise
    except Exception:  # one bad text: one by one below, as process_documents does
        cleaned = None
    finally:
        _disarm()
    if cleaned is not None:
        share = (cpu_clock() - started) / len(ready)  # the batch's time, charged evenly
        for k, _ in ready:
            left[k] -= share
    else:
        cleaned = [_within(left, k, lambda k=k, p=p: clean_document(docs[k], p, ctx))  # type: ignore[misc]
                   for k, p in ready]
    for (k, p), c in zip(ready, cleaned, strict=True):
        if isinstance(c, CleanResult):
            done = _within(left, k, lambda k=k, p=p, c=c: finish_document(docs[k], ctx, p, c))  # type: ignore[misc]
            if not isinstance(done, _TimedOut):
                out[k] = done
        elif isinstance(c, Rejection):
            out[k] = c
    return out


def process_and_sign(docs: Sequence[RawDocument], ctx: ProcessContext, seconds: float,
                     sign: SignConfig) -> tuple[list[Article | Rejection], Signatures]:
    """Outcomes in document order, and the signatures of the articles among them (same order), each of
    the text dedup signs (`Article.signature_text`)."""
    outcomes = process_batch_limited(docs, ctx, seconds)
    return outcomes, sign_texts([o.signature_text for o in outcomes if isinstance(o, Article)], sign)


@dataclass(frozen=True)
class ProcessedBatch:
    """What processing a batch (or a worker's chunk of it) hands back: the rows to append, ready (Arrow
    tables built, body hashes, signatures and learned-line sightings computed), and the few facts the
    run's tally needs. No Article objects travel back from the workers: the writer only appends."""

    prepared: PreparedBatch
    rejections: tuple[Rejection, ...]
    articles: int = 0
    removed: dict[str, int] = field(default_factory=dict)  # removed spans by category
    seconds: float = 0.0  # wall-clock time the batch took to process (set by the process-batch task)
    # The worker pool was stopped under this batch (the run is being interrupted): nothing of it is
    # processed, and whoever reads it must stop too (`ensure_not_stopped`).
    stopped: bool = False

    @staticmethod
    def empty(sign: SignConfig, stopped: bool = False) -> ProcessedBatch:
        """No documents: what a load of read rejections alone goes with."""
        return ProcessedBatch(prepared=prepare_batch([], [], sign_words([], sign), []), rejections=(),
                              stopped=stopped)

    def ensure_not_stopped(self) -> ProcessedBatch:
        if self.stopped:
            raise PoolTerminated()
        return self

    @staticmethod
    def join(parts: Sequence[ProcessedBatch]) -> ProcessedBatch:
        """The workers' chunks of one batch as one."""
        removed: dict[str, int] = {}
        for p in parts:
            for k, v in p.removed.items():
                removed[k] = removed.get(k, 0) + v
        return ProcessedBatch(PreparedBatch.concat([p.prepared for p in parts]),
                              tuple(r for p in parts for r in p.rejections), sum(p.articles for p in parts), removed)


def process_and_prepare(docs: Sequence[RawDocument], ctx: ProcessContext, seconds: float,
                        sign: SignConfig) -> ProcessedBatch:
    """Decode, process, sign and prepare the warehouse rows of `docs` (in a worker, or in-process).
    Documents read with their decoding deferred (`ReadConfig.defer_decode`) are decoded here, off the
    writer's core; one that holds no text once decoded is quarantined as it would have been at read
    (with the default read limits, the ones the ingest reads with)."""
    ready, undecodable = decode_pending(docs)
    outcomes, sigs = process_and_sign(ready, ctx, seconds, sign)
    return _processed(ready, [*outcomes, *undecodable], sigs)


def _processed(docs: Sequence[RawDocument], outcomes: Sequence[Article | Rejection],
               sigs: Signatures) -> ProcessedBatch:
    articles = [o for o in outcomes if isinstance(o, Article)]
    rejections = tuple(o for o in outcomes if isinstance(o, Rejection))
    removed: dict[str, int] = {}
    for art in articles:
        for rem in art.removals:
            removed[rem.category] = removed.get(rem.category, 0) + 1
    # Without the documents' bytes: the ingest holds them and puts them in at load (`with_raw`).
    return ProcessedBatch(prepare_batch(docs, articles, sigs, rejections, raw=False), rejections, len(articles),
                          removed)


def _work(docs: Sequence[RawDocument], sign: SignConfig) -> ProcessedBatch:
    assert _WORKER_CTX is not None and _WORKER_CFG is not None
    return process_and_prepare(docs, _WORKER_CTX, _WORKER_CFG.doc_seconds, sign)


def _mp_context() -> multiprocessing.context.BaseContext:
    """The fork server where there is one (Linux, macOS), with the text core preloaded; else spawn."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    # Takes effect when this process starts its fork server, i.e. at its first pool.
    ctx.set_forkserver_preload([WORKER_PRELOAD])
    return ctx


class WorkerPool:
    """A pool of worker processes that know the run's ProcessContext (sent once, not per batch)."""

    def __init__(self, ctx: ProcessContext, cfg: PoolConfig) -> None:
        self.ctx, self.cfg = ctx, cfg
        self._executor: ProcessPoolExecutor | None = None
        self._terminated = False

    def _pool(self) -> ProcessPoolExecutor:
        if self._terminated:
            raise PoolTerminated()
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self.cfg.workers, mp_context=_mp_context(),
                initializer=_init_worker, initargs=(self.ctx, self.cfg, os.getpid()))
        return self._executor

    def start(self) -> None:
        """Start every worker and wait for their answers to one `_ready` call each (a worker that is
        ready first may answer twice: the models and the machine are the same); raise PoolStartError
        with the reason when one could not get ready.

        This is the run's start-up check of the models the workers load (the language model unpacks to
        a temporary file): the ingest process itself no longer loads them only to check (~1 s and 70 MB
        at the start of every run). The workers fork from the fork server, which has loaded them
        already, so the wait is short, unless that is still warming up, which the first batch would
        wait for anyway."""
        executor = self._pool()
        # ProcessPoolExecutor spawns lazily, one worker per submit that finds no idle worker: submit one
        # call per worker at once so that all of them are spawned now, from this thread.
        ready = [executor.submit(_ready) for _ in range(self.cfg.workers)]
        try:
            errors = sorted({e for e in (f.result() for f in ready) if e is not None})
        except BrokenProcessPool as exc:
            errors = [f"a worker died while starting ({exc})"]
        if errors:
            self.terminate()
            raise PoolStartError(f"the worker processes could not start: {errors[0]}")

    def run(self, docs: Sequence[RawDocument], sign: SignConfig) -> ProcessedBatch:
        n = min(self.cfg.workers, max(1, len(docs) // self.cfg.min_docs_per_worker))
        size = -(-len(docs) // n) if docs else 1
        chunks = [list(docs[i:i + size]) for i in range(0, len(docs), size)]
        try:
            futures = [self._pool().submit(_work, chunk, sign) for chunk in chunks]
            results = [self._result(f) for f in futures]
        except BrokenProcessPool:
            if self._terminated:
                raise PoolTerminated() from None
            # A worker died (memory limit, crash in a C extension, the OOM killer). Find the culprit
            # document by going one document at a time on a fresh pool; the others still load.
            self._kill_executor()
            return self._one_by_one(docs, sign)
        return ProcessedBatch.join(results)

    def _one_by_one(self, docs: Sequence[RawDocument], sign: SignConfig) -> ProcessedBatch:
        parts: list[ProcessedBatch] = []
        for doc in docs:
            try:
                parts.append(self._result(self._pool().submit(_work, [doc], sign)))
            except BrokenProcessPool:
                self._kill_executor()
                crashed = Rejection(doc.source_uri, STAGE_PROCESS, WORKER_CRASHED,
                                    "the worker processing this document died (memory limit or crash)",
                                    doc_id=doc.doc_id, raw=doc.raw, url=doc.url)
                parts.append(_processed([doc], [crashed], sign_texts([], sign)))
        return ProcessedBatch.join(parts)

    def _result(self, future: Future[_T]) -> _T:
        """`future.result()`, but a terminated pool ends the wait with PoolTerminated: the executor's
        manager thread may never report its killed workers (see `terminate`), and a run being stopped must
        not wait for it. A chunk still queued when the pool was terminated is cancelled by the executor's
        shutdown (`cancel_futures`): that too is the stop, not a failure of the batch (raised as
        CancelledError, Prefect logged it as an ERROR with a traceback on every stop of `newsetl serve`
        with batches in flight: a user trial)."""
        while True:
            try:
                return future.result(timeout=_TERMINATION_POLL)
            except TimeoutError:
                if self._terminated:
                    raise PoolTerminated() from None
            except CancelledError:
                if self._terminated:
                    raise PoolTerminated() from None
                raise

    def terminate(self) -> None:
        """Kill the workers now (an interrupted run): batches in flight fail with PoolTerminated."""
        self._terminated = True
        self._kill_executor()

    def _kill_executor(self) -> None:
        """Kill the executor's workers and drop it; the next `_pool()` starts a fresh one (unless terminated).

        Also what a pool a dead worker broke needs, rather than `close()`: the executor's own clean-up of a
        broken pool sends its surviving workers SIGTERM, which they ignore (Ctrl-C is the ingest's to
        decide, `_init_worker`), and joins them. A survivor blocked writing a result nobody reads any more
        never exits, so `shutdown(wait=True)` waited for good: an ingest whose worker the OOM killer took
        hung, holding the run lock."""
        executor, self._executor = self._executor, None
        if executor is not None:
            # Private in CPython's ProcessPoolExecutor; without it the workers still exit with the ingest.
            for proc in list((getattr(executor, "_processes", None) or {}).values()):
                with contextlib.suppress(Exception):
                    proc.kill()
            # A worker killed while it wrote a result leaves half a message in the result pipe, and the
            # executor's manager thread then waits in recv() for the rest for good: a Ctrl-C hung the
            # ingest (CI rehearsal; the task threads waited on their futures, interpreter exit on that
            # thread). This process holds the pipe's last write end: closed, the read ends (EOFError) and
            # the manager thread marks the pool broken and exits. Private too; absent, nothing changes.
            queue = getattr(executor, "_result_queue", None)
            with contextlib.suppress(Exception):
                queue._writer.close()  # type: ignore[union-attr]
            manager = getattr(executor, "_executor_manager_thread", None)  # private too
            executor.shutdown(wait=False, cancel_futures=True)
            # Wait (briefly) for the manager thread to close its wake-up pipe. At interpreter exit
            # concurrent.futures wakes every manager thread it knows through that pipe, unlocked in
            # CPython 3.11: a thread closing it at that moment turns the wake-up into an
            # "OSError: Bad file descriptor" traceback after a clean "could not start" message (CI,
            # one run in many). A finished thread's pipe is marked closed and is skipped.
            if isinstance(manager, threading.Thread) and manager is not threading.current_thread():
                manager.join(timeout=_MANAGER_JOIN)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None


# Pools are looked up by key so that Prefect task parameters stay plain strings. A task that runs
# in another process (a Dask worker) finds no pool under the key and processes in-process.
_POOLS: dict[str, WorkerPool] = {}
_LOCK = threading.Lock()


def open_pool(ctx: ProcessContext, cfg: PoolConfig) -> str:
    key = f"{os.getpid()}-{uuid.uuid4().hex}"
    pool = WorkerPool(ctx, cfg)
    # Start the workers and wait until each is ready: a model or rules file that fails to load in a
    # worker stops the run here, before anything is read.
    pool.start()
    with _LOCK:
        _POOLS[key] = pool
    return key


def close_pool(key: str, terminate: bool = False) -> None:
    """Close the pool, after its running chunks finish; `terminate`: kill its workers at once."""
    with _LOCK:
        pool = _POOLS.pop(key, None)
    if pool is not None:
        pool.terminate() if terminate else pool.close()


def run_batch(
    docs: Sequence[RawDocument], ctx: ProcessContext, sign: SignConfig, pool_key: str | None, doc_seconds: float
) -> ProcessedBatch:
    pool = _POOLS.get(pool_key or "")
    if pool is not None and pool.cfg.workers > 0 and docs:
        return pool.run(docs, sign)
    return process_and_prepare(docs, ctx, doc_seconds, sign)
