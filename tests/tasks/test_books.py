"""The run's books (tasks/books.py): what a run that cannot record its own end leaves behind."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prefect import flow

from newsetl.tasks import books
from newsetl.warehouse.connect import WarehouseBusy, migrate, writer


def test_a_failure_the_busy_warehouse_cannot_record_names_each_wait_once(
        tmp_path: Path, prefect_harness: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that gave up on a busy warehouse (after its --wait, 5 s) cannot record that either (after
    RECORD_WAIT_SECONDS). The report said "gave up after 10 s (--wait SECONDS to wait longer)" in its
    header and "gave up after 5 s" in its reason: two answers to one question (a user trial)."""
    db = tmp_path / "w.duckdb"
    with writer(db) as con:
        migrate(con)
    monkeypatch.setattr(books, "RECORD_WAIT_SECONDS", 0.5)
    hold = textwrap.dedent(f"""
        import duckdb, time
        con = duckdb.connect({str(db)!r})
        print("holding", flush=True)
        time.sleep(60)
    """)
    holder = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"

        @flow
        def gave_up() -> None:
            books.record_failure(str(db), "run-1", books.RunTally(),
                                 WarehouseBusy(f"{db} is busy: pid 1; gave up after 5 s (--wait SECONDS to wait "
                                               "longer)"))

        gave_up()
    finally:
        holder.kill()
        holder.wait()
    header, *rest = (books.report_dir(str(db)) / "run-1.md").read_text(encoding="utf-8").splitlines()
    assert header == ("# newsetl ingest run `run-1`: failed (not recorded in the warehouse: the warehouse was "
                      "still busy 0.5 s later; the next run marks the row crashed)")
    (reason,) = [line for line in rest if line.startswith("Reason:")]
    assert "gave up after 5 s" in reason
