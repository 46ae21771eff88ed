"""Dashboards read the snapshot while ingests run: a real reader process holds `<stem>.snapshot.duckdb`
open during a real `newsetl ingest`, which neither waits for it nor fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def ingest(folder: Path, db: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "newsetl.cli", "ingest", str(folder), "--db", str(db),
                           "--workers", "0"], capture_output=True, text=True, timeout=600, env=env, cwd=REPO)
    return proc, time.monotonic() - t0


def test_an_open_snapshot_reader_never_holds_up_an_ingest(samples: Path, tmp_path: Path) -> None:
    files = sorted(p for p in samples.iterdir() if p.is_file())
    first, second = tmp_path / "first", tmp_path / "second"
    for folder, part in ((first, files[: len(files) // 2]), (second, files[len(files) // 2:])):
        folder.mkdir()
        for f in part:
            shutil.copy(f, folder / f.name)
    db = tmp_path / "wh" / "news.duckdb"
    proc, _ = ingest(first, db)
    assert proc.returncode == 0, proc.stderr[-3000:]
    snap = db.with_name("news.snapshot.duckdb")
    assert snap.exists() and db.with_name("news.report.html").exists()
    assert "snapshot for dashboards" in proc.stdout
    # The same warehouse without a reader, for the time the second ingest takes when nobody reads.
    alone = tmp_path / "alone" / "news.duckdb"
    alone.parent.mkdir()
    shutil.copy(db, alone)

    reader_code = textwrap.dedent(f"""
        import duckdb, sys
        con = duckdb.connect({str(snap)!r}, read_only=True)
        q = "SELECT count(*) FROM articles"
        print(con.execute(q).fetchall()[0][0], flush=True)
        sys.stdin.readline()
        print(con.execute(q).fetchall()[0][0], con.execute("SELECT count(*) FROM canonical_articles").fetchall()[0][0],
              flush=True)
    """)
    # Started from another working directory: the snapshot's views must not depend on the cwd.
    reader = subprocess.Popen([sys.executable, "-c", reader_code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, cwd=tmp_path)
    try:
        assert reader.stdout is not None and reader.stdin is not None
        before = int(reader.stdout.readline())
        assert before > 0
        proc, with_reader = ingest(second, db)
        assert proc.returncode == 0, proc.stderr[-3000:]
        reader.stdin.write("\n")
        reader.stdin.flush()
        held = reader.stdout.readline().split()
        assert int(held[0]) == before  # the held snapshot is the old one, whole and consistent
    finally:
        reader.communicate(timeout=60)
    proc, without_reader = ingest(second, alone)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Not a benchmark (the machine is shared): a reader that made the ingest wait for its lock would
    # cost 60 s retries or a failure; this allows for noise only.
    assert with_reader < 2 * without_reader + 10, (with_reader, without_reader)
    print(f"second ingest: {with_reader:.1f} s with a reader holding the snapshot, {without_reader:.1f} s without")

    with duckdb.connect(str(snap), read_only=True) as con, duckdb.connect(str(db), read_only=True) as wh:
        for view in ("articles", "canonical_articles", "publisher_daily_counts", "duplicate_rate", "clusters"):
            q = f"SELECT count(*) FROM {view}"
            assert con.execute(q).fetchall() == wh.execute(q).fetchall(), view
        after = con.execute("SELECT count(*) FROM articles").fetchall()[0][0]
    assert after > before
