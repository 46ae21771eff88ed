"""End of a run: publish the dashboard snapshot and write the run report next to the warehouse.

Runs after the run's row is completed, under the run lock (one publication at a time). A failure here
leaves the run completed: the warehouse is right, only its published copies are stale, until the next
run, which publishes everything again, new or not. It is said all the same: logged as a warning, returned
as `{"error": ...}` in the run's summary, and `newsetl ingest` exits 6 (a scheduler sees it).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import duckdb
from prefect import get_run_logger, task

from newsetl.tasks.report import report_path, write_report
from newsetl.warehouse.connect import MEMORY_ENV, writer
from newsetl.warehouse.snapshot import publish_snapshot

# DuckDB's memory for the publication (its default here is DEFAULT_MEMORY_LIMIT, 1 GB; the user's
# $NEWSETL_DUCKDB_MEMORY still wins). The publication streams every table to Parquet, so more memory only
# caches the warehouse: the 100k re-scrape warehouse published in 3.8 s with 1 GB (the process at 1.07 GB)
# and in 5.8-6.3 s with 400 MB (0.57 GB; 12.8-13.0 s and 1.21 GB before the publication streamed). It
# runs at the end of an ingest, in the ingest's own process, where it can make the run's largest peak.
PUBLISH_MEMORY_LIMIT = "400MB"


def publish(db: str | Path, run_id: str = "") -> dict[str, Any]:
    """Publish `<stem>.snapshot.duckdb` and write `<stem>.report.html`; return what was done, with
    seconds. The report is rendered from the new snapshot, so it needs no hold on the warehouse. A snapshot
    that cannot be published raises; a report that cannot be written after it is `report_error` (the
    snapshot is out: saying neither was published would be wrong)."""
    t0 = time.perf_counter()
    # A write connection (the caller holds the run lock, so nobody else writes): a read-only one would
    # exclude readers just the same, and the run's last write is what we publish.
    with writer(db, memory_limit=PUBLISH_MEMORY_LIMIT) as con:
        # Rows reach the Parquet files in any order (their fingerprints do not depend on it). Keeping the
        # table's order made DuckDB buffer what its threads scanned out of turn: a warehouse scaled to
        # 200k articles (177k undated) failed "Out of Memory" under 400 MB writing the undated month;
        # without it: 3.2 s and 312 MB (a scale audit, 2026-12-06).
        con.execute("SET preserve_insertion_order = false")
        info = publish_snapshot(con, db, run_id)
    t1 = time.perf_counter()
    done: dict[str, Any] = {"snapshot": str(info.path), "report": None, "tables": info.tables,
                            "skipped_views": info.skipped_views, "removed_generations": info.removed_generations}
    try:
        # Bounded as the publication is (the user's $NEWSETL_DUCKDB_MEMORY still wins): the report's queries
        # over a 1M-article snapshot took the process to 860 MB without a limit.
        memory = os.environ.get(MEMORY_ENV) or PUBLISH_MEMORY_LIMIT
        snap = duckdb.connect(str(info.path), read_only=True, config={"memory_limit": memory})
        try:
            done["report"] = str(write_report(snap, report_path(db), f"newsetl report: {Path(db).name}"))
        finally:
            snap.close()
    except Exception as exc:
        done["report_error"] = f"{type(exc).__name__}: {exc}"
    done["seconds"] = {"snapshot": round(t1 - t0, 3), "report": round(time.perf_counter() - t1, 3)}
    return done


@task(name="publish-snapshot-and-report")
def publish_task(db: str, run_id: str) -> dict[str, Any]:
    """At the end of every run, also one that brought nothing new: dashboards watch `run_health` for
    the schedule's heartbeat, and the snapshot then costs little (`publish_snapshot` links every table
    that did not change). Returns `publish`'s answer, or {"error": "<type>: <message>"} when it failed."""
    logger = get_run_logger()
    try:
        done = publish(db, run_id)
    except Exception as exc:
        logger.warning("could not publish the snapshot/report of %s: %s: %s", db, type(exc).__name__, exc)
        return {"error": f"{type(exc).__name__}: {exc}"}
    if done["skipped_views"]:
        logger.warning("snapshot views not created: %s", done["skipped_views"])
    if "report_error" in done:
        logger.warning("published %s, but could not write the report: %s", done["snapshot"], done["report_error"])
        return done
    logger.info("published %s and %s in %s s", done["snapshot"], done["report"], done["seconds"])
    return done
