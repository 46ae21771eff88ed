"""Worker processes for the CPU-bound stages, with a time and memory limit per document.

Why a process pool inside the task rather than Prefect's process or Dask task runner: those
runners start one temporary Prefect API server per worker when no real server is configured
(5-6x slower here), while a plain pool of spawned workers costs one import of the text core per
worker per run. The Prefect task stays one task run per batch; the pool splits the batch.

The limits are why documents are processed in workers even when they could run in-process:
a pathological page (trafilatura can spin for seconds on 100,000 nested elements) is stopped by
SIGALRM in the worker and quarantined, and a worker that dies (memory limit, segfault in lxml)
costs only its own chunk, whose documents are retried one by one to find the culprit.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import resource
import signal
import sys
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from types import FrameType

import numpy as np

from schemas.records import STAGE_PROCESS, Article, RawDocument, Rejection
from tasks.text.pipeline import ProcessContext, process_document
from tasks.text.sign import Signatures, SignConfig, sign_texts

TIME_LIMIT_EXCEEDED = "time_limit_exceeded"
WORKER_CRASHED = "worker_crashed"


@dataclass(frozen=True)
class PoolConfig:
    workers: int = 0  # 0: process in the calling process (no limits enforced off the main thread)
    doc_seconds: float = 20.0  # wall-clock limit for one document
    worker_memory_mb: int = 4096  # address-space limit of a worker process
    min_docs_per_worker: int = 8  # below this a batch is not split (spawning costs more than it saves)


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent() -> None:
    """If the ingest process is killed -9, the kernel kills this worker too (Linux), instead of leaving
    it blocked on the pool's pipes for ever."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before the signal was armed
        os._exit(1)


class _DocTimeout(BaseException):
    """BaseException on purpose: the stages catch Exception to quarantine a bad document, and a
    timeout must pass through them to the limit that raised it."""


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise _DocTimeout


_WORKER_CTX: ProcessContext | None = None
_WORKER_CFG: PoolConfig | None = None


def _init_worker(ctx: ProcessContext, cfg: PoolConfig) -> None:
    global _WORKER_CTX, _WORKER_CFG
    _WORKER_CTX, _WORKER_CFG = ctx, cfg
    _die_with_parent()
    if cfg.worker_memory_mb > 0:
        limit = cfg.worker_memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGALRM, _on_alarm)
    _warm_up(ctx)


_WARM_UP_TEXT = ("Council approves budget\n\nThe council approved the budget on Tuesday 5 March 2024 after a "
                 "long debate, the mayor said. “It is a fair settlement,” she told reporters.\n")


def _warm_up(ctx: ProcessContext) -> None:
    """Load what the stages load lazily (language model, word frequencies, date parser, lxml) before
    the first real document, so its time limit measures the document and not the imports."""
    html = f"<html><head><title>Council</title></head><body><article><p>{_WARM_UP_TEXT}</p></article></body></html>"
    for kind, content in (("text", _WARM_UP_TEXT), ("html", html)):
        warm = RawDocument(doc_id="warm-up", source_uri="warm-up", kind=kind, content_type=kind,
                           raw=content.encode(), content=content)
        process_document(warm, ctx)


def process_limited(doc: RawDocument, ctx: ProcessContext, seconds: float) -> Article | Rejection:
    """Process one document under a wall-clock limit (only enforceable on a main thread)."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        return process_document(doc, ctx)
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return process_document(doc, ctx)
    except _DocTimeout:
        return Rejection(doc.source_uri, STAGE_PROCESS, TIME_LIMIT_EXCEEDED,
                         f"processing took longer than the limit of {seconds:g} s", doc_id=doc.doc_id, raw=doc.raw)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def process_and_sign(docs: Sequence[RawDocument], ctx: ProcessContext, seconds: float,
                     sign: SignConfig) -> tuple[list[Article | Rejection], Signatures]:
    """Outcomes in document order, and the signatures of the articles among them (same order)."""
    outcomes = [process_limited(d, ctx, seconds) for d in docs]
    return outcomes, sign_texts([o.body for o in outcomes if isinstance(o, Article)], sign)


def _work(docs: Sequence[RawDocument], sign: SignConfig) -> tuple[list[Article | Rejection], Signatures]:
    assert _WORKER_CTX is not None and _WORKER_CFG is not None
    return process_and_sign(docs, _WORKER_CTX, _WORKER_CFG.doc_seconds, sign)


def concat_signatures(parts: Sequence[Signatures], sign: SignConfig) -> Signatures:
    parts = [p for p in parts if len(p.n_words)]
    if not parts:
        return sign_texts([], sign)
    return Signatures(minhash=np.concatenate([p.minhash for p in parts]),
                      n_shingles=np.concatenate([p.n_shingles for p in parts]),
                      n_words=np.concatenate([p.n_words for p in parts]))


class WorkerPool:
    """A pool of spawned workers that know the run's ProcessContext (sent once, not per batch)."""

    def __init__(self, ctx: ProcessContext, cfg: PoolConfig) -> None:
        self.ctx, self.cfg = ctx, cfg
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            # spawn, not fork: forking a process that runs Prefect's threads can deadlock the child.
            self._executor = ProcessPoolExecutor(
                max_workers=self.cfg.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker, initargs=(self.ctx, self.cfg))
        return self._executor

    def start(self) -> None:
        executor = self._pool()
        # ProcessPoolExecutor spawns lazily on the first submit: submit a no-op so that happens here.
        executor.submit(os.getpid).result()

    def run(self, docs: Sequence[RawDocument], sign: SignConfig) -> tuple[list[Article | Rejection], Signatures]:
        n = min(self.cfg.workers, max(1, len(docs) // self.cfg.min_docs_per_worker))
        size = -(-len(docs) // n) if docs else 1
        chunks = [list(docs[i:i + size]) for i in range(0, len(docs), size)]
        try:
            futures = [self._pool().submit(_work, chunk, sign) for chunk in chunks]
            results = [f.result() for f in futures]
        except BrokenProcessPool:
            # A worker died (memory limit, crash in a C extension). Find the culprit document by
            # going one document at a time on a fresh pool; the others still load.
            self.close()
            return self._one_by_one(docs, sign)
        outcomes = [o for part, _ in results for o in part]
        return outcomes, concat_signatures([s for _, s in results], sign)

    def _one_by_one(self, docs: Sequence[RawDocument], sign: SignConfig) -> tuple[list[Article | Rejection],
                                                                                 Signatures]:
        outcomes: list[Article | Rejection] = []
        sigs: list[Signatures] = []
        for doc in docs:
            try:
                part, part_sigs = self._pool().submit(_work, [doc], sign).result()
                outcomes.extend(part)
                sigs.append(part_sigs)
            except BrokenProcessPool:
                self.close()
                outcomes.append(Rejection(doc.source_uri, STAGE_PROCESS, WORKER_CRASHED,
                                          "the worker processing this document died (memory limit or crash)",
                                          doc_id=doc.doc_id, raw=doc.raw))
        return outcomes, concat_signatures(sigs, sign)

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
    # Start the workers now, from the caller's (the flow's) thread: the parent-death signal fires when
    # the *thread* that forked a worker exits, and task-runner threads may come and go during a run.
    pool.start()
    with _LOCK:
        _POOLS[key] = pool
    return key


def close_pool(key: str) -> None:
    with _LOCK:
        pool = _POOLS.pop(key, None)
    if pool is not None:
        pool.close()


def run_batch(
    docs: Sequence[RawDocument], ctx: ProcessContext, sign: SignConfig, pool_key: str | None, doc_seconds: float
) -> tuple[list[Article | Rejection], Signatures]:
    pool = _POOLS.get(pool_key or "")
    if pool is not None and pool.cfg.workers > 0 and docs:
        return pool.run(docs, sign)
    return process_and_sign(docs, ctx, doc_seconds, sign)
