"""Prefect tasks of the ingest flow: thin wrappers over batches, nothing else.

Each task takes a whole batch (never one task run per document: Prefect costs ~10 ms a task
run, more than the work on one article). `cache_policy=NO_CACHE`: Prefect's default cache key
hashes the inputs, which for a batch of raw pages costs more than the batch itself, and a
re-run must see the warehouse, not a cached answer. Retries are only where I/O can fail
transiently; parsing failures are final and become quarantine rows instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from schemas.records import Article, RawDocument, Rejection
from tasks.sources.read import ReadConfig, discover, read_path
from tasks.text.pipeline import ProcessContext, process_documents
from tasks.text.sign import SignConfig, Signatures, sign_texts
from warehouse.connect import WarehouseBusy, writer
from warehouse.dedup import DedupConfig
from warehouse.load import LoadStats, known_doc_ids, load_batch


@dataclass(frozen=True)
class ProcessedBatch:
    docs: tuple[RawDocument, ...]
    articles: tuple[Article, ...]
    rejections: tuple[Rejection, ...]
    signatures: Signatures


@task(name="discover-sources", cache_policy=NO_CACHE)
def discover_sources(sources: Sequence[str]) -> tuple[list[str], list[Rejection]]:
    paths, rejections = discover(sources)
    get_run_logger().info("discovered %d inputs (%d sources not found)", len(paths), len(rejections))
    return paths, rejections


@task(name="read-documents", cache_policy=NO_CACHE)
def read_documents(paths: Sequence[str], config: ReadConfig) -> list[RawDocument | Rejection]:
    # Local reads: a failure is a property of the file (missing, unreadable, corrupt), so it is
    # recorded as a rejection per file rather than retried.
    out: list[RawDocument | Rejection] = []
    for path in paths:
        out.extend(read_path(path, config))
    return out


@task(name="filter-known", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=2,
      retry_condition_fn=lambda task, run, state: _is_busy(state))
def filter_known(db: str, docs: Sequence[RawDocument]) -> tuple[list[RawDocument], int]:
    """Drop documents whose doc_id the warehouse already holds (a re-run loads nothing twice)."""
    with writer(db) as con:
        known = known_doc_ids(con, [d.doc_id for d in docs])
    fresh = [d for d in docs if d.doc_id not in known]
    return fresh, len(docs) - len(fresh)


@task(name="process-batch", cache_policy=NO_CACHE)
def process_batch(docs: Sequence[RawDocument], ctx: ProcessContext, sign: SignConfig) -> ProcessedBatch:
    outcomes = process_documents(docs, ctx)
    articles = tuple(o for o in outcomes if isinstance(o, Article))
    rejections = tuple(o for o in outcomes if isinstance(o, Rejection))
    sigs = sign_texts([a.body for a in articles], sign)
    return ProcessedBatch(docs=tuple(docs), articles=articles, rejections=rejections, signatures=sigs)


def _is_busy(state: object) -> bool:
    try:
        state.result()  # type: ignore[attr-defined]
    except WarehouseBusy:
        return True
    except Exception:  # noqa: BLE001 - any other failure is not transient
        return False
    return False


@task(name="load-batch", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=2,
      retry_condition_fn=lambda task, run, state: _is_busy(state))
def load_batch_task(
    db: str, run_id: str, batch: ProcessedBatch, read_rejections: Sequence[Rejection], dedup: DedupConfig
) -> LoadStats:
    # One short write connection per batch: readers (newsetl sql, dashboards) get in between.
    with writer(db) as con:
        stats = load_batch(con, run_id, batch.docs, batch.articles, batch.signatures,
                           (*read_rejections, *batch.rejections), dedup)
    get_run_logger().info(
        "loaded batch: %d articles, %d removals, %d quarantined", stats.articles, stats.removals, stats.quarantined
    )
    return stats
