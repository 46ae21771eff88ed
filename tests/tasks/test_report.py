"""The HTML report: its numbers on a small real warehouse, and the page drawn by a real headless Chromium
(no network: every script is inlined)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from newsetl.tasks.report import write_report
from newsetl.warehouse.report_data import report_data

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


def _chromium() -> str:
    for name in CHROMIUM:
        if path := shutil.which(name):
            return path
    if os.environ.get("CI"):
        pytest.fail("no chromium on PATH: .ci/run installs it (apt-get install chromium)")
    pytest.skip("no chromium on PATH (apt-get install chromium)")


def test_report_numbers(filled_db: Path) -> None:
    with duckdb.connect(str(filled_db), read_only=True) as con:
        data = report_data(con)
    t = data.totals
    assert (t["articles"], t["stories"], t["empty_stories"], t["duplicates"]) == (6, 3, 1, 3)
    assert (t["quarantined"], t["runs"], t["failed_runs"]) == (1, 2, 1)
    # Only dated articles are on the time axis: 3 published + 1 fetched (WARC).
    assert sum(r["articles"] for r in data.daily) == 4
    assert {r["date_source"]: r["articles"] for r in data.date_sources} == {"published": 3, "fetched": 1,
                                                                          "undated": 2}
    biggest = data.clusters[0]
    assert (biggest["cluster_id"], biggest["copies"], biggest["publishers"]) == ("a1", 3, "Reuters, Yahoo")
    assert [r["category"] for r in data.removals_by_category] == ["cookie", "newsletter", "share"]
    assert data.runs[0]["stages"] == {"read": 2.0, "process": 12.0, "load": 4.0}
    assert data.runs[0]["docs_per_second"] == 0.3


def test_a_stopped_run_is_no_failure_and_did_not_handle_what_it_read_ahead(filled_db: Path) -> None:
    with duckdb.connect(str(filled_db)) as con:
        con.execute("""INSERT INTO runs VALUES ('r3', 'f3', TIMESTAMPTZ '2026-01-03 10:00:00+00',
                       TIMESTAMPTZ '2026-01-03 10:00:10+00', 'cancelled', '{}',
                       '{"read": 1700, "loaded": 0, "not_loaded": 1700, "seconds": {"total": 10.0}}',
                       'SIGINT', NULL)""")
        data = report_data(con)
    assert (data.totals["failed_runs"], data.totals["stopped_runs"]) == (1, 1)
    stopped = next(r for r in data.runs if r["run_id"] == "r3")
    assert stopped["docs_per_second"] is None  # it handled none of the 1,700 documents it read ahead


def _render(chromium: str, page: Path) -> tuple[str, str]:
    """The DOM after scripts ran, and Chromium's log (console messages appear as `:CONSOLE` lines)."""
    proc = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
         # no network: a page that tried to fetch a script would draw nothing
         "--proxy-server=127.0.0.1:9", "--virtual-time-budget=15000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, proc.stderr


@pytest.mark.slow
def test_report_command_writes_a_page_that_draws_its_charts(filled_db: Path, tmp_path: Path) -> None:
    chromium = _chromium()
    out = tmp_path / "report.html"
    with duckdb.connect(str(filled_db)) as con:  # a scraped name with markup in it is drawn as text
        con.execute("""UPDATE articles SET publisher = 'Yahoo <a href="https://evil.example">x</a>'
                       WHERE publisher = 'Yahoo'""")
    proc = subprocess.run([sys.executable, "-m", "newsetl.cli", "report", "--db", str(filled_db), "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text(encoding="utf-8")
    # Self-contained: no script is loaded from anywhere.
    assert not re.search(r"<script[^>]+src=", text)
    dom, log = _render(chromium, out)
    assert "<html data-errors" not in dom, dom[:300]
    assert ":CONSOLE" not in log, [line for line in log.splitlines() if ":CONSOLE" in line]
    # A chart has drawn when plotly has put its SVG into the chart's div.
    charts = re.split(r'<div id="chart-\d+"', dom)[1:]
    drawn = [c for c in charts if 'class="main-svg"' in c.split('<div id="chart-')[0]]
    assert len(charts) == 8 and len(drawn) >= 8, (len(charts), len(drawn))
    assert "evil.example" in dom and not re.search(r"<a [^>]*evil\.example", dom)


@pytest.mark.slow
def test_report_page_without_data_draws_nothing_and_says_so(tmp_path: Path) -> None:
    chromium = _chromium()
    from newsetl.warehouse.connect import migrate

    db = tmp_path / "empty.duckdb"
    with duckdb.connect(str(db)) as con:
        migrate(con)
        out = write_report(con, tmp_path / "empty.html", "empty")
    dom, log = _render(chromium, out)
    assert "<html data-errors" not in dom and ":CONSOLE" not in log
    assert dom.count("No data.") == 8 and 'class="main-svg"' not in dom


def test_a_zero_in_a_table_is_shown_not_blanked() -> None:
    from newsetl.tasks.report import _short

    assert (_short(0, 10), _short(None, 10), _short(0.0, 10)) == ("0", "", "0.0")


def test_removal_tables_sum_the_view_as_sql_would() -> None:
    """The report reads removals_by_publisher once and sums it in Python (each SQL reading joined every
    removal to its article): the same rows and order as the GROUP BY / ORDER BY it replaced, ties too."""
    from newsetl.warehouse import report_data as rd

    con = duckdb.connect()
    con.execute("CREATE TABLE v (publisher VARCHAR, category VARCHAR, removals BIGINT, chars_removed BIGINT)")
    rows = [(f"pub{p % 20}", f"cat{c}", (p * 7 + c * 3) % 5 + 1, (p + c) % 4 * 10 or None)
            for p in range(40) for c in range(6) if (p + c) % 3]
    rows = list({(p, c): (p, c, n, ch) for p, c, n, ch in rows}.values())  # one row per (publisher, category)
    con.executemany("INSERT INTO v VALUES (?, ?, ?, ?)", rows)
    categories, top = rd._removal_tables(rd._rows(con, "SELECT * FROM v"))
    assert categories == rd._rows(con, """SELECT category, sum(removals) AS removals,
        COALESCE(sum(chars_removed), 0) AS chars FROM v GROUP BY ALL ORDER BY removals DESC, category""")
    assert top == rd._rows(con, f"""WITH t AS (SELECT publisher FROM v GROUP BY ALL
        ORDER BY sum(removals) DESC, publisher LIMIT {rd.TOP_PUBLISHERS})
        SELECT v.publisher, v.category, v.removals FROM v JOIN t USING (publisher) ORDER BY 1, 2""")
    assert len(top) < len(rows)  # some publishers left out: the limit is exercised


def test_the_run_chart_draws_the_latest_runs_and_says_how_many_there_are(filled_db: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from newsetl.tasks.report import _charts
    from newsetl.warehouse import report_data as rd

    monkeypatch.setattr(rd, "RUNS_SHOWN", 1)
    with duckdb.connect(str(filled_db), read_only=True) as con:
        data = report_data(con)
    assert [r["run_id"] for r in data.runs] == ["r2"]  # the latest of r1 and r2
    note = dict((title, note) for title, _, note in _charts(data))["Run health"]
    assert note.startswith("2 runs (the chart: the latest 1),"), note


def _file_size_limit(limit: int) -> None:
    """preexec_fn: no file grows past `limit` bytes (EFBIG, as a full disk's ENOSPC; SIGXFSZ ignored so
    the write fails instead of killing the process)."""
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_report_the_disk_has_no_room_for_leaves_no_part_of_itself(filled_db: Path, tmp_path: Path) -> None:
    """On a full disk the report's temporary file was left behind, cut short (2.2 MB of a 4.8 MB report),
    under a name with the writer's pid: every run on that disk left another, taking the room the next run
    needed (a user trial). Now the part written is removed and the old report stays as it was."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    old = out_dir / "report.html"
    old.write_text("<html>the previous report</html>", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "newsetl.cli", "report", "--db", str(filled_db), "--out", str(old)],
                          capture_output=True, text=True, timeout=300, preexec_fn=lambda: _file_size_limit(256 * 1024))
    assert proc.returncode == 3, proc.stderr
    assert "cannot write" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert sorted(p.name for p in out_dir.iterdir()) == ["report.html"]
    assert old.read_text(encoding="utf-8") == "<html>the previous report</html>"
