"""The `ingest` flow: parameters and wiring only; the work is in tasks/ and the text core."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from schemas.records import RawDocument, Rejection
from tasks.ingest import discover_sources, filter_known, load_batch_task, process_batch, read_documents
from tasks.sources.read import ReadConfig
from tasks.text.pipeline import ProcessConfig, make_context
from tasks.text.sign import SignConfig
from warehouse.connect import default_db_path, migrate, run_lock, writer
from warehouse.dedup import DedupConfig, ensure_schema
from warehouse.load import finish_run, start_run

T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


@flow(name="ingest")
def ingest(
    sources: list[str],
    db: str | None = None,
    batch_size: int = 500,
    files_per_read: int = 2000,
    rules_files: list[str] | None = None,
) -> dict[str, Any]:
    """Ingest files, directories, globs (and URLs) into the warehouse; return the run summary.

    Memory is bounded by `files_per_read` raw inputs at a time; each batch of `batch_size`
    documents is processed and then loaded in one transaction.
    """
    logger = get_run_logger()
    db_path = str(Path(db) if db else default_db_path())
    run_id = uuid.uuid4().hex
    params = {"sources": list(sources), "db": db_path, "batch_size": batch_size, "rules_files": rules_files or []}
    ctx = make_context(ProcessConfig(rules_files=tuple(rules_files or ())))
    sign_cfg = SignConfig()
    dedup_cfg = DedupConfig(sign=sign_cfg)
    counts: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    removed: Counter[str] = Counter()
    seconds: Counter[str] = Counter()
    started = time.perf_counter()

    with run_lock(db_path):
        with writer(db_path) as con:
            migrate(con)
            ensure_schema(con, dedup_cfg)
            start_run(con, run_id, str(flow_run.get_id() or ""), params)
        try:
            t0 = time.perf_counter()
            paths, pending = discover_sources(sources)
            seconds["discover"] += time.perf_counter() - t0
            # Accounting: every input read is loaded, skipped as known, or quarantined.
            counts["read"] += len(pending)
            seen: set[str] = set()
            for group in chunks(paths, files_per_read):
                t0 = time.perf_counter()
                outcomes = read_documents(group, ReadConfig())
                docs = [o for o in outcomes if isinstance(o, RawDocument)]
                pending.extend(o for o in outcomes if isinstance(o, Rejection))
                # The same bytes twice in one run (a file copied into two folders) load once.
                unique = []
                for doc in docs:
                    if doc.doc_id in seen:
                        counts["skipped_known"] += 1
                    else:
                        seen.add(doc.doc_id)
                        unique.append(doc)
                fresh, skipped = filter_known(db_path, unique)
                seconds["read"] += time.perf_counter() - t0
                counts["read"] += len(outcomes)
                counts["skipped_known"] += skipped
                for batch_docs in chunks(fresh, batch_size):
                    t0 = time.perf_counter()
                    batch = process_batch(batch_docs, ctx, sign_cfg)
                    seconds["process"] += time.perf_counter() - t0
                    t0 = time.perf_counter()
                    stats = load_batch_task(db_path, run_id, batch, pending, dedup_cfg)
                    seconds["load"] += time.perf_counter() - t0
                    _tally(counts, reasons, removed, batch.articles, (*pending, *batch.rejections))
                    counts["loaded"] += stats.articles
                    for key, value in stats.dedup.items():
                        counts[f"dedup_{key}"] += int(value)
                    pending = []
            if pending:  # rejections not yet written with a batch (e.g. a run with no good input)
                load_batch_task(db_path, run_id, process_batch([], ctx, sign_cfg), pending, dedup_cfg)
                _tally(counts, reasons, removed, (), pending)
        except BaseException as exc:
            with writer(db_path) as con:
                finish_run(con, run_id, "failed", _summary(counts, reasons, removed, seconds, started),
                           f"{type(exc).__name__}: {exc}")
            raise
        summary = _summary(counts, reasons, removed, seconds, started)
        with writer(db_path) as con:
            finish_run(con, run_id, "completed", summary)
    summary = {"run_id": run_id, "db": db_path, **summary}
    logger.info("ingest summary: %s", summary)
    return summary


def _tally(
    counts: Counter[str], reasons: Counter[str], removed: Counter[str], articles: Sequence[Any],
    rejections: Sequence[Rejection],
) -> None:
    counts["quarantined"] += len(rejections)
    for rej in rejections:
        reasons[f"{rej.stage}:{rej.reason}"] += 1
    for art in articles:
        for rem in art.removals:
            removed[rem.category] += 1


def _summary(
    counts: Counter[str], reasons: Counter[str], removed: Counter[str], seconds: Counter[str], started: float
) -> dict[str, Any]:
    return {
        "read": counts["read"],
        "loaded": counts["loaded"],
        "skipped_known": counts["skipped_known"],
        "quarantined": counts["quarantined"],
        "quarantine_reasons": dict(sorted(reasons.items())),
        "removed_by_category": dict(sorted(removed.items())),
        "dedup": {k.removeprefix("dedup_"): v for k, v in sorted(counts.items()) if k.startswith("dedup_")},
        "seconds": {k: round(v, 3) for k, v in seconds.items()} | {"total": round(time.perf_counter() - started, 3)},
    }
