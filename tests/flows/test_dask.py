"""The flow on a local Dask cluster of 2 workers gives the same warehouse as the default runner."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

# Subprocesses, servers and whole flow runs: part of CI, not of the `-m "not slow"` inner loop.
pytestmark = pytest.mark.slow

pytest.importorskip("prefect_dask", reason="the [dask] extra is not installed")

QUERIES = (
    "SELECT article_id, title, byline, publisher, published_at, body, cluster_id, is_canonical FROM articles",
    "SELECT article_id, seq, category, rule, text, position FROM removals",
    "SELECT cluster_id, canonical_article_id, size FROM clusters",
    "SELECT source_uri, stage, reason FROM quarantine",
    # The batches come back from the Dask workers without the documents' bytes; the load puts them in.
    "SELECT doc_id, source_uri, kind, raw, bytes FROM documents",
)


@pytest.mark.slow
def test_dask_cluster_gives_the_same_warehouse(prefect_harness: None, tmp_path: Path, samples: Path,
                                               table_rows: Callable[[Path, str], list[tuple[object, ...]]]) -> None:
    from newsetl.flows.dask import ingest_on_dask
    from newsetl.flows.ingest import ingest

    default_db, dask_db = tmp_path / "default.duckdb", tmp_path / "dask.duckdb"
    ingest(sources=[str(samples)], db=str(default_db), batch_size=3)
    from distributed import LocalCluster

    # Threads, not processes: worker processes would each start a temporary Prefect server unless
    # PREFECT_API_URL names a real one (../shared/DESIGN.md §7); the Dask scheduling path is the same. Our own
    # cluster, so the test can see that the batches really ran on its workers.
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        summary = ingest_on_dask([str(samples)], str(dask_db), address=cluster.scheduler_address, batch_size=3)
        executed = sum(w.state.executed_count for w in cluster.workers.values())
    assert summary["loaded"] >= 12
    assert executed >= summary["loaded"] // 3  # one process-batch task per batch of 3 documents
    for sql in QUERIES:
        assert table_rows(default_db, sql) == table_rows(dask_db, sql), sql
    # ... and not merely equal: every document has its bytes.
    assert table_rows(dask_db, "SELECT count(*) FROM documents WHERE raw IS NULL OR octet_length(raw) <> bytes") \
        == [(0,)]
