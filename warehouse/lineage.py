"""Lineage and accounting: which source carried which document, and whether a run's numbers add up.

Every source a run reads (a file, a JSONL or WARC record, a URL) becomes one `sources` row with the
doc_id it carried and what became of it (loaded, quarantined, skipped), also when its bytes were
already known: "which feeds carried this story?" is `SELECT source_uri FROM sources WHERE doc_id = ?`.

Keys are deterministic, so a re-run that reads the same sources again adds nothing. Two sources that
would have the same key (three records sharing one id in one file, two of them refused the same way)
are told apart by their occurrence: the n-th one in the batch's order, which a re-read repeats.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from newsetl.schemas.records import Skip
from newsetl.schemas.tables import SOURCES, arrow_schema
from newsetl.warehouse.connect import unregister
from newsetl.warehouse.rows import clean_str, occurrence_keys

LOADED = "loaded"
QUARANTINED = "quarantined"
SKIPPED = "skipped"


def sources_from_tables(run_id: str, articles: pa.Table, quarantine: pa.Table, skips: Sequence[Skip]) -> pa.Table:
    """The lineage rows of one batch, from its prepared Arrow tables (articles and quarantine rows, in batch
    order) and its skips: one `sources` row per source read."""
    q = quarantine.select(["source_uri", "doc_id", "stage", "reason", "quarantine_id"]).to_pylist()
    return _sources_rows(run_id, [
        *[(uri, doc, LOADED, None, None) for uri, doc in zip(articles.column("source_uri").to_pylist(),
                                                             articles.column("doc_id").to_pylist(), strict=True)],
        *[(r["source_uri"], r["doc_id"], QUARANTINED, f"{r['stage']}:{r['reason']}", r["quarantine_id"])
          for r in q],
        *[(s.source_uri, s.doc_id, SKIPPED, s.reason, None) for s in skips],
    ])


def _sources_rows(run_id: str, items: Sequence[tuple[str, str | None, str, str | None, str | None]]) -> pa.Table:
    # A refused source is keyed by its rejection too: a path met missing, then empty, then with a broken
    # line is one source with three outcomes, and a document refused for the time limit or a crashed
    # worker and loaded after the retry (the same bytes, so the same doc_id) is one source with two
    # (keyed by the source and doc_id alone, the load found the refusal's key and was not recorded, so
    # quarantine_status never saw it resolved). A re-run meeting the same rejection adds nothing (its id
    # is deterministic); loaded and skipped rows keep the key they always had.
    keys = occurrence_keys((clean_str(uri) or "", doc or "", *([qid] if qid else []))
                           for uri, doc, _, _, qid in items)
    now = datetime.now(UTC)
    rows: dict[str, dict[str, Any]] = {}
    for key, (uri, doc, outcome, reason, _) in zip(keys, items, strict=True):
        rows.setdefault(key, {"source_key": key, "source_uri": clean_str(uri), "doc_id": doc, "outcome": outcome,
                              "reason": reason, "run_id": run_id, "recorded_at": now})
    schema = arrow_schema(SOURCES)
    return pa.table({name: [row[name] for row in rows.values()] for name in schema.names}, schema=schema)


def record_sources(con: duckdb.DuckDBPyConnection, table: pa.Table) -> int:
    """Insert the lineage rows not recorded yet (inside the caller's transaction); return how many."""
    if table.num_rows == 0:
        return 0
    con.register("_sources", table)
    try:
        # The primary key's index skips the recorded keys (a NOT IN hashed every key the table holds).
        done = con.execute("INSERT OR IGNORE INTO sources BY NAME SELECT * FROM _sources").fetchall()
    finally:
        unregister(con, "_sources")
    return int(done[0][0])


class AccountingError(RuntimeError):
    """A run's numbers do not add up: some input is neither loaded, skipped nor quarantined."""


def balance_problems(counts: Mapping[str, Any], stored: Mapping[str, int]) -> list[str]:
    """What does not add up in a run's counts, as sentences (empty: everything balances).

    `counts`: the run's tally (read, loaded, skipped_known, skipped_other, quarantined); `stored`: what
    the warehouse holds for the run (articles and quarantine rows with its run_id).
    """
    read, loaded, quarantined = int(counts["read"]), int(counts["loaded"]), int(counts["quarantined"])
    skipped = int(counts["skipped_known"]) + int(counts.get("skipped_other", 0))
    problems: list[str] = []
    if read != loaded + skipped + quarantined:
        problems.append(f"read {read} != loaded {loaded} + skipped {skipped} + quarantined {quarantined} "
                        f"({read - loaded - skipped - quarantined:+d} unaccounted)")
    if stored["quarantine"] != quarantined:
        problems.append(f"quarantined {quarantined} but the warehouse holds {stored['quarantine']} quarantine "
                        "rows of this run")
    if stored["articles"] != loaded:
        problems.append(f"loaded {loaded} but the warehouse holds {stored['articles']} articles of this run")
    return problems


def stored_counts(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, int]:
    """Articles and quarantine rows the warehouse holds for `run_id`."""
    row = con.execute("SELECT (SELECT count(*) FROM articles WHERE run_id = $r), "
                      "(SELECT count(*) FROM quarantine WHERE run_id = $r)", {"r": run_id}).fetchall()[0]
    return {"articles": int(row[0]), "quarantine": int(row[1])}
