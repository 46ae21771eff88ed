"""The command line as a user runs it: a real subprocess, a real warehouse file."""

from __future__ import annotations

import contextlib
import datetime
import functools
import importlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

# Subprocesses, servers and whole flow runs: part of CI, not of the `-m "not slow"` inner loop.
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
STORY = ("Ferry timetable approved\n\nThe harbour council approved a new ferry timetable on Tuesday "
         "after a long public consultation.\n\n- Advertisement -\n\nResidents had asked for an earlier "
         "first crossing for years, the council chair said.\n")


def newsetl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "newsetl.cli", *args], capture_output=True, text=True,
                          timeout=300, env=full_env, cwd=REPO)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    (folder / "story.txt").write_text(STORY, encoding="utf-8")
    (folder / "empty.txt").write_text("")
    db = folder / "w.duckdb"
    # Its own Prefect home: test_prefect_keeps_the_whole_run reads the run back from there.
    proc = newsetl("ingest", str(folder), "--db", str(db), "--workers", "0",
                   env={"PREFECT_HOME": str(folder / "prefect")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "articles loaded" in proc.stdout and "read:empty_input" in proc.stdout
    return db


def test_sql_reads_the_warehouse(warehouse: Path) -> None:
    proc = newsetl("sql", "SELECT title, body FROM articles", "--db", str(warehouse), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == 1 and "Advertisement" not in rows[0]["body"]
    assert "approved a new ferry timetable" in rows[0]["body"]
    # strict JSON: no bare NaN or Infinity (json.loads would take them; JSON.parse does not)
    proc = newsetl("sql", "SELECT 0.0/0.0 AS a, 'inf'::DOUBLE AS b, [0.0/0.0] AS l, 1.50::DECIMAL(4,2) AS d",
                   "--db", str(warehouse), "--format", "json")
    assert proc.returncode == 0 and "NaN" not in proc.stdout and "Infinity" not in proc.stdout, proc.stdout
    assert json.loads(proc.stdout) == {"a": None, "b": None, "l": [None], "d": 1.5}
    proc = newsetl("sql", "SELECT true AS t, ['x', 'y'] AS l, {'a': 1} AS s, NULL AS n", "--db", str(warehouse),
                   "--format", "csv")
    assert proc.returncode == 0 and proc.stdout.splitlines() == ["t,l,s,n", 'true,"[""x"", ""y""]","{""a"": 1}",']
    # a BLOB as DuckDB casts it to text (and export writes it), not as Python's repr "b'...'" (a user trial);
    # quotes too, which DuckDB writes as \x22 and \x27 (sql printed them as they are: a user trial)
    blob = "SELECT 'a\\x00b\\x5Cc\\x22d\\x27'::BLOB AS b"
    with duckdb.connect() as mem:
        (cast,), = mem.execute(f"SELECT b::VARCHAR FROM ({blob})").fetchall()
    assert cast == "a\\x00b\\x5Cc\\x22d\\x27"
    for fmt, want in (("json", [json.dumps({"b": cast})]), ("csv", ["b", cast]),
                      ("table", ["b", "-" * len(cast), cast])):
        proc = newsetl("sql", blob, "--db", str(warehouse), "--format", fmt)
        assert proc.returncode == 0 and proc.stdout.splitlines() == want, (fmt, proc.stdout, proc.stderr)
    # `export` writes the stored raw bytes as `sql` shows them
    out = warehouse.parent / "documents.jsonl"
    assert newsetl("export", str(out), "--view", "documents", "--db", str(warehouse)).returncode == 0
    exported = sorted(json.loads(line)["raw"] for line in out.read_text().splitlines())
    proc = newsetl("sql", "SELECT raw FROM documents", "--db", str(warehouse), "--format", "json")
    shown = sorted(json.loads(line)["raw"] for line in proc.stdout.splitlines())
    assert exported == shown and all("\\x0A" in raw for raw in shown)  # (line breaks escaped)


def test_json_output_holds_iso_timestamps_and_nested_json(warehouse: Path) -> None:
    """`sql --format json` and a JSON `export` write a row alike: timestamps in ISO 8601 / RFC 3339 (DuckDB's
    JSON writer gave "2026-12-07 07:42:57.123+00", `sql` a space for the "T"), JSON columns as the JSON they
    hold (`sql` gave them as strings to parse again)."""
    out = warehouse.parent / "runs.jsonl"
    assert newsetl("export", str(out), "--view", "runs", "--db", str(warehouse)).returncode == 0
    (exported,) = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    proc = newsetl("sql", "SELECT * FROM runs", "--db", str(warehouse), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    (shown,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert shown == exported
    rfc3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00")
    assert rfc3339.fullmatch(shown["started_at"]) and rfc3339.fullmatch(shown["finished_at"]), shown
    assert isinstance(shown["params"], dict) and isinstance(shown["counts"], dict), shown
    with duckdb.connect(str(warehouse), read_only=True) as con:
        (started,), = con.execute("SELECT started_at FROM runs").fetchall()
    assert datetime.datetime.fromisoformat(shown["started_at"]) == started
    # a timestamp without a zone stays without one; a date and a time are ISO already
    proc = newsetl("sql", "SELECT TIMESTAMP '2026-01-02 03:04:05' AS t, DATE '2026-01-02' AS d, TIME '03:04:05' AS h",
                   "--db", str(warehouse), "--format", "json")
    assert json.loads(proc.stdout) == {"t": "2026-01-02T03:04:05.000000", "d": "2026-01-02", "h": "03:04:05"}


def test_ctrl_c_stops_a_long_query(warehouse: Path) -> None:
    """A query that runs for minutes stops at Ctrl-C with exit 130 and lets go of the warehouse: in the main
    thread DuckDB's call never saw the SIGINT, and a cross join ran on for ten minutes (a user trial)."""
    import signal
    import time

    import psutil

    query = "SELECT count(*) FROM range(100000000000) t, documents"
    proc = subprocess.Popen([sys.executable, "-m", "newsetl.cli", "sql", query, "--db", str(warehouse)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        deadline = time.monotonic() + 120
        while psutil.Process(proc.pid).cpu_times().user < 4:  # imported, opened, and well into the query
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "newsetl: interrupted" in err, err


def test_sql_table_starts_before_every_row_is_measured() -> None:
    """Column widths come from the first rows: measuring all of them first kept `| head -2` of a
    20-million-row result waiting a minute (a user trial). A longer cell further down widens its line."""
    import io
    from contextlib import redirect_stdout

    from newsetl.cli import WIDTH_ROWS, _display_width, _print_rows

    out = io.StringIO()
    with redirect_stdout(out):
        _print_rows(["n"], [(i % 10,) for i in range(WIDTH_ROWS)] + [("wider than the rest",)])
    lines = out.getvalue().splitlines()
    assert lines[:3] == ["n", "-", "0"] and lines[-1] == "wider than the rest" and len(lines) == WIDTH_ROWS + 3
    # wide characters take two columns: the next column starts where an ASCII row's does
    out = io.StringIO()
    with redirect_stdout(out):
        _print_rows(["title", "n"], [("北京新闻", 1), ("abcdefgh", 22)])
    rows = out.getvalue().splitlines()
    assert _display_width(rows[2][: rows[2].index("1")]) == 10 == rows[3].index("22"), rows


def test_sql_table_prints_ids_whole_and_cuts_long_text(warehouse: Path) -> None:
    """The table format cuts long text, never an id, URL or path: a cut article_id (64 hex characters)
    copied into the next query finds nothing."""
    proc = newsetl("sql", "SELECT article_id, source_uri, body FROM articles", "--db", str(warehouse))
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.splitlines()[2]
    article_id, source_uri = line.split()[:2]
    assert len(article_id) == 64 and source_uri.endswith("story.txt")
    assert line.rstrip().endswith("…") and "ferry timetable" in line


def test_sql_on_a_file_an_ingest_has_only_begun_says_so(tmp_path: Path) -> None:
    """The first seconds of a first ingest (or a stop in them) leave a DuckDB file without tables: a
    query naming a table says the warehouse is not set up yet, not DuckDB's "Catalog Error"."""
    db = tmp_path / "w.duckdb"
    duckdb.connect(str(db)).close()
    proc = newsetl("sql", "SELECT count(*) FROM runs", "--db", str(db))
    assert proc.returncode == 3 and "holds no warehouse yet" in proc.stderr, proc.stderr
    assert "Catalog Error" not in proc.stderr


def test_sql_on_a_parquet_file_says_it_is_no_warehouse(tmp_path: Path) -> None:
    # DuckDB's own words were "Cannot launch in-memory database in read-only mode!".
    data = tmp_path / "stories.parquet"
    duckdb.sql(f"COPY (SELECT 1 AS a) TO '{data}' (FORMAT PARQUET)")
    proc = newsetl("sql", "SELECT 1", "--db", str(data))
    assert proc.returncode == 3 and "not a DuckDB warehouse" in proc.stderr, proc.stderr


def test_a_batch_size_below_one_is_a_usage_error(tmp_path: Path) -> None:
    # Refused before anything starts (exit 2, the usage-error code), and no warehouse is made.
    for bad in ("0", "-5", "many"):
        proc = newsetl("ingest", str(REPO / "samples" / "corpus"), "--db", str(tmp_path / "w.duckdb"),
                       "--batch-size", bad)
        assert proc.returncode == 2 and "--batch-size" in proc.stderr, proc.stderr[-2000:]
    for option, bad in (("--workers", "-1"), ("--wait", "-1"), ("--doc-seconds", "-5"), ("--doc-seconds", "nan")):
        proc = newsetl("ingest", str(REPO / "samples" / "corpus"), "--db", str(tmp_path / "w.duckdb"), option, bad)
        assert proc.returncode == 2 and option in proc.stderr, proc.stderr[-2000:]
    proc = newsetl("serve", str(REPO / "samples" / "corpus"), "--db", str(tmp_path / "w.duckdb"),
                   "--server-port", "99999")
    assert proc.returncode == 2 and "a port is 0 to 65535" in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "w.duckdb").exists()


def _writers_refuse_untouched(db: Path, message: str) -> None:
    """`ingest` and `reclean` exit 3 with `message`, no traceback, and leave the file's bytes as they were."""
    before = db.read_bytes()
    for command in (["ingest", str(REPO / "samples" / "corpus")], ["reclean"]):
        proc = newsetl(*command, "--db", str(db))
        assert proc.returncode == 3 and message in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
    assert db.read_bytes() == before


def test_a_duckdb_file_that_is_no_warehouse_is_refused_untouched(tmp_path: Path) -> None:
    import duckdb

    db = tmp_path / "sales.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE orders (id INT)")
    _writers_refuse_untouched(db, "is a DuckDB file but not a newsetl warehouse")


def test_a_warehouse_cut_short_is_said_in_one_line_by_every_command(warehouse: Path, tmp_path: Path) -> None:
    """A warehouse file cut short (a copy stopped half-way, a disk that lost its tail) opens, and fails
    where a table's blocks are missing: `report` and `reclean` said "unexpected error" with exit 1, and
    `export` blamed its output file ("cannot write out.parquet"), for a warehouse it could not read (a
    user trial). Each says it in one line naming the warehouse, exit 3, and writes no output file.
    `ingest` rewrote the file's header and left a `runs` row and a run report in it before it failed (a
    user trial): it, `serve` and `reclean` refuse it before they write, its bytes as they were."""
    import hashlib

    db = tmp_path / "cut.duckdb"
    whole = warehouse.read_bytes()
    db.write_bytes(whole[: len(whole) // 4])
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    corpus = str(REPO / "samples" / "corpus")
    for command in (["report", "--out", str(tmp_path / "r.html")], ["export", str(tmp_path / "out.parquet")],
                    ["reclean"], ["ingest", corpus], ["serve", corpus]):
        proc = newsetl(*command, "--db", str(db))
        assert proc.returncode == 3, (command, proc.returncode, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and str(db) in lines[0] and "unexpected" not in lines[0], (command, proc.stderr)
        if command[0] in ("reclean", "ingest", "serve"):
            assert "is damaged: the file is cut short" in lines[0], (command, lines[0])
        assert hashlib.sha256(db.read_bytes()).hexdigest() == before, command
    assert "cannot write" not in newsetl("export", str(tmp_path / "out.parquet"), "--db", str(db)).stderr
    assert not (tmp_path / "out.parquet").exists() and not (tmp_path / "r.html").exists()
    assert not (tmp_path / "cut.runs").exists() and not (tmp_path / ".prefect").exists()


def _files(folder: Path) -> dict[str, bytes | None]:
    """Every path under `folder` with its bytes (None for a folder)."""
    return {str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes() for p in sorted(folder.rglob("*"))}


def test_a_refused_warehouse_path_leaves_no_file_behind(tmp_path: Path) -> None:
    """A --db that is a directory, a text file, an SQLite file, someone else's DuckDB file or a path under a
    regular file, or a warehouse busy past --wait: refused with exit 3, and nothing left beside it (a
    `<db>.lock` was, each time: a user trial), nor a folder made on the way to it."""
    here = tmp_path / "here"
    (here / "adir").mkdir(parents=True)
    (here / "text.duckdb").write_text("notes, not a database\n")
    (here / "afile").write_text("a file where a folder should be\n")
    with contextlib.closing(sqlite3.connect(here / "app.db")) as sq:
        sq.execute("CREATE TABLE users (id INTEGER)")
        sq.commit()
    with duckdb.connect(str(here / "sales.duckdb")) as con:
        con.execute("CREATE TABLE orders (id INT)")
    before = _files(here)
    corpus = str(REPO / "samples" / "corpus")
    refused = [(["ingest", corpus], here / name) for name in ("adir", "text.duckdb", "app.db", "sales.duckdb",
                                                              "afile/w.duckdb", "afile/sub/w.duckdb")]
    refused += [([command, *([corpus] if command == "serve" else [])], here / name)
                for command in ("serve", "reclean") for name in ("adir", "text.duckdb")]
    for command, db in refused:
        proc = newsetl(*command, "--db", str(db))
        assert proc.returncode == 3 and len(proc.stderr.strip().splitlines()) == 1, (command, db, proc.stderr)
        assert _files(here) == before, (command, db)
    # A warehouse a notebook holds past --wait: refused, and neither its lock file nor the mark of the wait
    # (`<db>.waiting`) is left.
    from newsetl.warehouse.connect import migrate, writer

    busy = tmp_path / "busy"
    busy.mkdir()
    with writer(busy / "w.duckdb") as con:
        migrate(con)
    before = _files(busy)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(busy / "w.duckdb")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        proc = newsetl("ingest", corpus, "--db", str(busy / "w.duckdb"), "--wait", "1")
    finally:
        holder.communicate("", timeout=60)
    assert proc.returncode == 3 and "is busy" in proc.stderr.strip().splitlines()[-1], proc.stderr
    assert _files(busy) == before


def _main_capturing(argv: list[str]) -> tuple[int, str]:
    """`newsetl ARGV` (its `main`) in this process: (exit code, stderr). Run as `nobody` by the `as_nobody`
    fixture, so that permissions apply (CI runs as root; the venv's interpreter may be where nobody may read,
    so not a new process)."""
    import tempfile

    from newsetl import cli

    # A file, not a StringIO: main registers faulthandler on sys.stderr, which needs a file descriptor.
    with tempfile.TemporaryFile("w+", encoding="utf-8") as err, contextlib.redirect_stderr(err):
        code = cli.main(argv)
        err.seek(0)
        return code, err.read()


def test_a_warehouse_in_a_place_it_cannot_be_written_is_refused_leaving_no_file(
        warehouse: Path, as_nobody: Callable[[Callable[[], object]], Any]) -> None:
    """A warehouse in a folder the user may not write, a new one there, or a read-only warehouse file in a
    folder the user may write (where the `<db>.lock` was made before DuckDB refused the file: a user trial):
    exit 3 in one line, nothing made."""
    import shutil
    import tempfile

    top = Path(tempfile.mkdtemp(prefix="newsetl-ro-"))  # not under pytest's 0700 folder
    try:
        closed, open_ = top / "closed", top / "open"
        closed.mkdir()
        open_.mkdir()
        for folder in (closed, open_):
            shutil.copyfile(warehouse, folder / "w.duckdb")
        (closed / "w.duckdb").chmod(0o666)  # the file may be written; its folder (its WAL, its lock) not
        (open_ / "w.duckdb").chmod(0o444)
        closed.chmod(0o555)
        open_.chmod(0o777)
        top.chmod(0o755)
        before = _files(top)
        corpus = str(REPO / "samples" / "corpus")
        for module in ("cli", "sources.discover", "sources.fields", "tasks.reclean", "text.rules",
                       "warehouse.connect"):
            importlib.import_module(f"newsetl.{module}")  # what the refusals need, imported while still root
        for db, said in ((closed / "w.duckdb", f"cannot create files in {closed}"),
                         (closed / "new.duckdb", f"cannot create files in {closed}"),
                         (open_ / "w.duckdb", "cannot write the warehouse")):
            for command in (["ingest", corpus], ["serve", corpus], ["reclean"]):
                if command == ["reclean"] and not db.exists():
                    continue
                code, err = as_nobody(functools.partial(_main_capturing, [*command, "--db", str(db)]))
                assert code == 3 and said in err and "permission denied" in err, (command, db, err)
                assert len(err.strip().splitlines()) == 1, err
                assert _files(top) == before, (command, db)
    finally:
        closed.chmod(0o755)
        shutil.rmtree(top)


HOLD = """
import duckdb, sys, time
while True:
    try:
        con = duckdb.connect(sys.argv[1], read_only=True)
        break
    except duckdb.Error:
        time.sleep(0.01)
print("holding", flush=True)
sys.stdin.read()
"""


def _ingest_held_after_its_first_load(tmp_path: Path, db: Path, *, files: int,
                                      wait: str) -> tuple[subprocess.Popen[str], subprocess.Popen[str], str]:
    """An ingest of `files` stories into `db` (`--wait` `wait`) and a reader (HOLD) that opens the warehouse
    once the first batch is loaded and keeps it until told on stdin: the two processes and the ingest's
    stderr so far."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(files):
        (folder / f"s{i:03}.txt").write_text(STORY.replace("Tuesday", f"day {i} of the month {i * 7}"),
                                             encoding="utf-8")
    full_env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    # One connection per load (--workers 0): the reader gets in between two of them. -v: Prefect's log says
    # when the first batch is loaded.
    ingest = subprocess.Popen([sys.executable, "-m", "newsetl.cli", "ingest", str(folder), "--db", str(db),
                               "--workers", "0", "--batch-size", "10", "--wait", wait, "-v"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=full_env, cwd=REPO)
    assert ingest.stderr is not None
    err = ""
    for line in ingest.stderr:
        err += line
        if "loaded batch:" in line:
            break
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    return ingest, holder, err


def test_a_run_that_fails_after_loading_says_what_it_loaded_and_where_its_report_is(tmp_path: Path) -> None:
    """A dashboard opens the warehouse itself between two loads and keeps it: the run fails, exit 3, "...
    is busy: held by pid N". It said only that, as a run refused before it read anything does, though it
    had loaded batches that stay (a user trial: all 3,000 articles of a run, then exit 3). A line
    before it says what the run loaded and where its report is."""
    db = tmp_path / "w.duckdb"
    ingest, holder, err = _ingest_held_after_its_first_load(tmp_path, db, files=200, wait="1")
    try:
        _, rest = ingest.communicate(timeout=300)
    finally:
        holder.communicate("", timeout=60)
    err += rest
    assert ingest.returncode == 3, err[-3000:]
    said, busy = err.strip().splitlines()[-2:]  # the cause last
    assert busy.startswith("newsetl: ") and "held by pid" in busy, err[-3000:]
    with duckdb.connect(str(db), read_only=True) as con:
        loaded = con.execute("SELECT count(*) FROM articles").fetchall()[0][0]
    assert 10 <= loaded < 200, loaded
    match = re.fullmatch(r"newsetl: this run loaded (\d+) articles before it failed \(kept: a re-run loads the "
                         r"rest\); run report: (.+\.md)", said)
    assert match and int(match[1]) == loaded, err[-3000:]
    assert "loaded" in Path(match[2]).read_text(encoding="utf-8")


def test_wait_is_the_whole_wait_for_a_reader_that_keeps_the_warehouse(tmp_path: Path) -> None:
    """`--wait 3` and a reader that opens the warehouse between two loads and keeps it: the run gives up
    about 3 s later, saying "gave up after 3 s". Each write was retried by Prefect (3 times, 2 s apart), each
    try waiting its own --wait, and then the failure's record waited 10 s more: "gave up after 2 s" came
    ~25 s after the reader got in (a user trial)."""
    db = tmp_path / "w.duckdb"
    ingest, holder, err = _ingest_held_after_its_first_load(tmp_path, db, files=60, wait="3")
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        held_at = time.monotonic()
        _, rest = ingest.communicate(timeout=300)
        waited = time.monotonic() - held_at
    finally:
        holder.communicate("", timeout=60)
    err += rest
    assert ingest.returncode == 3, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert "held by pid" in last and "gave up after 3 s" in last, last
    # 3 s of wait, then the run's end and the temporary Prefect server's stop; not 3 s per try and 10 s more
    assert 3 <= waited < 9, f"exited {waited:.1f} s after the reader got in"
    report = next((tmp_path / "w.runs").glob("*.md")).read_text(encoding="utf-8")
    assert "failed (not recorded in the warehouse: the warehouse was still busy; the next run marks" in report


def test_a_run_killed_while_it_publishes_is_completed_with_its_report(tmp_path: Path) -> None:
    """kill -9 while the run publishes its snapshot (after its row says `completed`): the row said completed
    and there was no run report file (a user trial). The report is written before the row is completed, and
    says that the publication was under way; the next run publishes."""
    db = tmp_path / "w.duckdb"
    corpus = str(REPO / "samples" / "corpus")
    _kill_while_publishing(tmp_path, ["ingest", corpus, "--db", str(db), "--workers", "0"])
    assert not (tmp_path / "w.report.html").exists(), "the publication finished before the kill: the kill was late"
    with duckdb.connect(str(db), read_only=True) as con:
        (run_id, status), = con.execute("SELECT run_id, status FROM runs").fetchall()
    assert status == "completed"
    report = (tmp_path / "w.runs" / f"{run_id}.md").read_text(encoding="utf-8")
    assert "| read | loaded |" in report and "**publishing** when this report was written" in report, report
    rerun = newsetl("ingest", corpus, "--db", str(db), "--workers", "0")
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert (tmp_path / "w.report.html").exists() and (tmp_path / "w.snapshot.duckdb").exists()
    # `newsetl reclean` completes and publishes too: the same
    published = set((tmp_path / "w.snapshot").glob("g-*"))
    _kill_while_publishing(tmp_path, ["reclean", "--db", str(db)])
    assert set((tmp_path / "w.snapshot").glob("g-*")) == published, "the reclean published: the kill was late"
    with duckdb.connect(str(db), read_only=True) as con:
        (run_id, status), = con.execute("SELECT run_id, status FROM runs WHERE run_id LIKE 'reclean-%'").fetchall()
    assert status == "completed"
    report = (tmp_path / "w.runs" / f"{run_id}.md").read_text(encoding="utf-8")
    assert "**publishing** when this report was written" in report, report


def _kill_while_publishing(folder: Path, command: list[str]) -> None:
    """Run `newsetl COMMAND` and kill -9 it (and what it started) as soon as it writes a snapshot generation
    (`<stem>.snapshot/.tmp-*`) in `folder`: while it publishes."""
    import signal

    for left in (folder / "w.snapshot").glob(".tmp-*"):  # a killed publication's, not this one's
        shutil.rmtree(left)
    full_env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "newsetl.cli", *command], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=full_env, cwd=REPO, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not any((folder / "w.snapshot").glob(".tmp-*")):
            assert proc.poll() is None and time.monotonic() < deadline, proc.returncode
            time.sleep(0.001)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=60)


def test_an_sqlite_file_is_refused_by_every_command_untouched_and_without_a_download(tmp_path: Path) -> None:
    """Given an SQLite file for --db, DuckDB went to download its sqlite extension (a network request;
    offline, a three-line error about extensions): where the extension is installed, a writer would
    have migrated the warehouse into it (a user trial). Refused by its header, in one line, exit 3."""
    db = tmp_path / "app.db"
    with contextlib.closing(sqlite3.connect(db)) as con:
        con.execute("CREATE TABLE users (id INTEGER)")
        con.commit()
    _writers_refuse_untouched(db, "an SQLite database, not a DuckDB warehouse")
    for command in (["sql", "SELECT 1"], ["stats"], ["report", "--out", str(tmp_path / "r.html")]):
        proc = newsetl(*command, "--db", str(db))
        assert proc.returncode == 3 and proc.stderr.strip().splitlines() == [
            f"newsetl: cannot open {db}: an SQLite database, not a DuckDB warehouse"], (command, proc.stderr)


def test_a_warehouse_a_newer_newsetl_upgraded_is_read_but_not_written(warehouse: Path, tmp_path: Path) -> None:
    import shutil

    import duckdb

    db = tmp_path / "w.duckdb"
    shutil.copy(warehouse, db)
    with duckdb.connect(str(db)) as con:
        con.execute("INSERT INTO schema_migrations (version, name) VALUES (999, 'from the future')")
    _writers_refuse_untouched(db, "upgraded by a newer newsetl (schema version 999")
    proc = newsetl("sql", "SELECT count(*) AS n FROM articles", "--db", str(db))
    assert proc.returncode == 0 and "n" in proc.stdout, proc.stderr


def test_a_warehouse_signed_by_a_newer_newsetl_is_refused_in_one_line(warehouse: Path, tmp_path: Path) -> None:
    import shutil

    import duckdb

    db = tmp_path / "w.duckdb"
    shutil.copy(warehouse, db)
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE dedup_meta SET value = regexp_replace(value, '^minhash-v[0-9]+/', 'minhash-v999/')")
        before = con.execute("SELECT count(*), max(run_id) FROM articles").fetchall()
    proc = newsetl("ingest", str(REPO / "samples" / "corpus"), "--db", str(db))
    assert proc.returncode == 3 and "were made by a newer newsetl" in proc.stderr, proc.stderr
    assert "upgrade newsetl to write to it" in proc.stderr and "Traceback" not in proc.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*), max(run_id) FROM articles").fetchall() == before


def test_reclean_says_that_removal_rules_act_at_ingest(warehouse: Path, tmp_path: Path) -> None:
    import shutil

    db = tmp_path / "w.duckdb"
    shutil.copy(warehouse, db)
    rules = tmp_path / "mine.json"
    rules.write_text(json.dumps({"rules": [{"id": "user.see_it", "category": "promo", "pattern": "see it now: \\w+",
                                            "keywords": ["see"], "examples": ["See it now: Amazon"]}]}))
    proc = newsetl("reclean", "--db", str(db), "--rules", str(rules))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"the 1 removal rule(s) of {rules} apply to documents as they are ingested" in proc.stderr


def test_a_source_that_names_nothing_is_said_before_anything_starts(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    for source, message in ((str(tmp_path / "nope"), f"no such file or directory: {tmp_path / 'nope'}"),
                            (str(tmp_path / "*.none"), f"no file matches the glob {tmp_path / '*.none'}"),
                            ("ftp://example.org/feed.xml", "ftp:// URLs are not read; newsetl fetches http:// and"),
                            ("file:///etc/hosts", "file:// URLs are not read")):
        proc = newsetl("ingest", source, "--db", str(db))
        assert proc.returncode == 4 and message in proc.stderr, proc.stderr[-2000:]
    assert not db.exists()


def test_field_mappings_are_checked_before_anything_starts(tmp_path: Path) -> None:
    dump = tmp_path / "d.jsonl"
    dump.write_text(json.dumps({"story": STORY}) + "\n", encoding="utf-8")
    db = tmp_path / "w.duckdb"
    for args, message in ((["--field", "body=story"], "unknown field 'body'"),
                          (["--field", "text"], "expected NAME=PATH"),
                          (["--field", "text=story", "--field", "text=other"], "given more than once")):
        proc = newsetl("ingest", str(dump), "--db", str(db), *args)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr
    proc = newsetl("serve", str(dump), "--db", str(db), "--field", "text=a", "--field", "text=b")
    assert proc.returncode == 2 and "given more than once" in proc.stderr, proc.stderr[-2000:]
    assert not db.exists()
    proc = newsetl("ingest", str(dump), "--db", str(db), "--workers", "0", "--field", "text=story")
    assert proc.returncode == 0 and re.search(r"articles loaded +1\n", proc.stdout), proc.stdout + proc.stderr[-2000:]


def test_serve_and_ingest_refuse_a_bad_rules_or_publishers_file_before_they_start(tmp_path: Path) -> None:
    # Every scheduled run would fail on them, an hour apart: refused at once, before any server starts.
    # `ingest` wrote a warehouse file and a `failed` run row first (a new warehouse, for a typo'd --db).
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    db = tmp_path / "w.duckdb"
    for command in ("serve", "ingest"):
        for option in ("--rules", "--publishers"):
            proc = newsetl(command, str(REPO / "samples" / "corpus"), "--db", str(db), option, str(bad))
            assert proc.returncode == 2 and "bad.json" in proc.stderr, proc.stderr[-2000:]
            assert "Traceback" not in proc.stderr and "Prefect server" not in proc.stderr
    assert not db.exists() and not Path(f"{db}.lock").exists()


def test_report_refuses_a_folder_that_does_not_exist(warehouse: Path, tmp_path: Path) -> None:
    # As export does: a typo'd folder was created silently and the report written into it.
    proc = newsetl("report", "--db", str(warehouse), "--out", str(tmp_path / "nope" / "r.html"))
    assert proc.returncode == 2 and "does not exist" in proc.stderr and not (tmp_path / "nope").exists()
    # and, as export refuses a format it does not write, HTML into charts.png (it exited 0; a user trial)
    proc = newsetl("report", "--db", str(warehouse), "--out", str(tmp_path / "charts.png"))
    assert proc.returncode == 2 and "HTML file" in proc.stderr and not (tmp_path / "charts.png").exists()


def test_serve_refuses_a_source_that_does_not_exist(tmp_path: Path) -> None:
    """As ingest does (exit 4): it served, and each hourly run quarantined `discover:not_found`."""
    db = tmp_path / "w.duckdb"
    proc = newsetl("serve", str(tmp_path / "inbox"), "--db", str(db), "--every", "3600")
    assert proc.returncode == 4 and "no such file or directory" in proc.stderr, proc.stderr[-2000:]
    assert "Prefect server" not in proc.stderr and not db.exists()
    # A glob over a drop folder that exists may match nothing yet: files arrive between runs.
    from newsetl.cli import missing_sources

    (tmp_path / "inbox").mkdir()
    assert missing_sources([str(tmp_path / "inbox" / "*.jsonl")], globs_may_match_later=True) == []
    assert missing_sources([str(tmp_path / "nope" / "*.jsonl")], globs_may_match_later=True) != []


def test_serve_passes_the_publishers_files_to_every_run(tmp_path: Path) -> None:
    from newsetl.tasks.deployment import deployment_parameters

    params = deployment_parameters(["in"], "w.duckdb", publishers_files=["aliases.json"])
    assert params["publishers_files"] == [str((Path.cwd() / "aliases.json").absolute())]
    assert "publishers_files" not in deployment_parameters(["in"], "w.duckdb")
    # serve's --workers, --batch-size and --doc-seconds are the flow's parameters; one not given is not set
    given = deployment_parameters(["in"], "w.duckdb", run_options={"workers": 2, "batch_size": None,
                                                                  "doc_seconds": 5.0})
    assert (given["workers"], given["doc_seconds"]) == (2, 5.0) and "batch_size" not in given
    from newsetl.flows.ingest import ingest
    assert {"workers", "doc_seconds", "batch_size"} <= set(ingest.parameters.properties)


def test_sql_is_read_only_and_reports_errors(warehouse: Path) -> None:
    proc = newsetl("sql", "DELETE FROM articles", "--db", str(warehouse))
    assert proc.returncode == 2 and "read-only" in proc.stderr.lower()
    proc = newsetl("sql", "SELECT nope FROM articles", "--db", str(warehouse))
    assert proc.returncode == 2 and "nope" in proc.stderr
    # one statement: none would have no rows to show, and of two only the last one's would be shown
    for query, given in (("", 0), ("-- a comment", 0), ("SELECT 1; SELECT 2", 2)):
        proc = newsetl("sql", query, "--db", str(warehouse))
        assert proc.returncode == 2 and f"give one SQL statement ({given} given)" in proc.stderr, proc.stderr


def test_nothing_to_ingest_is_said_on_every_run_not_only_the_first(tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "scan.pdf").write_bytes(b"%PDF-1.4")
    db = tmp_path / "w.duckdb"
    for _ in range(2):  # the same input, the same answer
        proc = newsetl("ingest", str(folder), "--db", str(db), "--workers", "0", "-q")
        assert proc.returncode == 5 and "nothing to ingest" in proc.stderr, proc.stderr[-2000:]
    (folder / "story.txt").write_text(STORY, encoding="utf-8")
    proc = newsetl("ingest", str(folder), "--db", str(db), "--workers", "0")
    assert proc.returncode == 0 and re.search(r"articles loaded +1\n", proc.stdout), proc.stderr[-2000:]


def test_a_symlinked_folder_in_the_drop_folder_is_said_not_silently_passed_over(tmp_path: Path) -> None:
    # A user linked a feed's folder into the drop folder and saw nothing at all (a user trial): the link is
    # not walked into (it could loop), but the summary says it, lineage records it as skipped, and a drop
    # folder holding only such a link is "nothing to ingest" with the way out named.
    wire = tmp_path / "wire"
    wire.mkdir()
    (wire / "story.txt").write_text(STORY, encoding="utf-8")
    only_link = tmp_path / "only-link"
    only_link.mkdir()
    (only_link / "wire").symlink_to(wire, target_is_directory=True)
    db = tmp_path / "w.duckdb"
    proc = newsetl("ingest", str(only_link), "--db", str(db), "--workers", "0")
    assert proc.returncode == 5, proc.stderr[-2000:]
    assert "1 symlinked folder(s) not walked into: name them as sources to read them" in proc.stderr
    assert re.search(r"skipped \(other\) +1 +symlinked_folder=1", proc.stdout), proc.stdout
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "own.txt").write_text(STORY.replace("ferry", "bus"), encoding="utf-8")
    (drop / "wire").symlink_to(wire, target_is_directory=True)
    proc = newsetl("ingest", str(drop), "--db", str(db), "--workers", "0")
    assert proc.returncode == 0 and re.search(r"articles loaded +1\n", proc.stdout), proc.stderr[-2000:]
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT outcome, reason FROM sources WHERE source_uri = ?",
                           [str(drop / "wire")]).fetchall() == [("skipped", "symlinked_folder")]
    proc = newsetl("ingest", str(drop / "wire"), "--db", str(db), "--workers", "0")  # named, it is read
    assert proc.returncode == 0 and re.search(r"articles loaded +1\n", proc.stdout), proc.stderr[-2000:]


def test_a_file_without_tables_is_said_to_hold_no_warehouse_yet(tmp_path: Path) -> None:
    import duckdb

    db = tmp_path / "w.duckdb"
    duckdb.connect(str(db)).close()  # what an ingest stopped before its migrations leaves
    for command in (["stats"], ["report"], ["export", str(tmp_path / "out.csv")]):
        proc = newsetl(*command, "--db", str(db))
        assert proc.returncode == 3 and "holds no warehouse yet" in proc.stderr, proc.stderr


def test_output_that_finds_no_room_is_said_plainly(warehouse: Path) -> None:
    full_env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "newsetl.cli", "sql", "SELECT * FROM articles", "--db",
                               str(warehouse)], stdout=full, stderr=subprocess.PIPE, text=True, timeout=120,
                              env=full_env, cwd=REPO)
    assert proc.returncode == 1 and proc.stderr.strip() == "newsetl: cannot write the output: No space left on device"


def test_sql_on_the_warehouse_changes_no_setting_and_touches_no_other_file(warehouse: Path, tmp_path: Path) -> None:
    # Read-only is not enough: DuckDB would still change its settings, install and load extensions, and read
    # or write any file the user can.
    out = tmp_path / "leak.csv"
    for query, said in (("SET threads = 1", "locked"), ("INSTALL httpfs", "disabled"),
                        ("SELECT * FROM read_csv('/etc/hostname')", "disabled"),
                        (f"COPY (SELECT 1) TO '{out}'", "disabled")):
        proc = newsetl("sql", query, "--db", str(warehouse))
        assert proc.returncode == 2 and said in proc.stderr, (query, proc.stderr)
    assert not out.exists()


def test_sql_reads_the_snapshot_and_no_other_file(warehouse: Path, tmp_path: Path) -> None:
    # What the docs tell an analyst to do during a load: point --db at the snapshot. Its views read the
    # Parquet files of its generations folder; the sandbox still refuses every other file.
    snapshot = warehouse.with_name("w.snapshot.duckdb")
    assert snapshot.exists()
    generation = next(warehouse.with_name("w.snapshot").glob("g-*"))
    for db in (snapshot, generation / "snapshot.duckdb"):
        proc = newsetl("sql", "SELECT count(*) AS n FROM articles", "--db", str(db), "--format", "json")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == {"n": 1}
    outside = tmp_path / "other.csv"
    outside.write_text("a\n1\n")
    proc = newsetl("sql", f"SELECT * FROM read_csv('{outside}')", "--db", str(snapshot))
    assert proc.returncode == 2 and "disabled by configuration" in proc.stderr
    # The Parquet folder is readable, not writable: only queries run on a snapshot.
    proc = newsetl("sql", f"COPY (SELECT 1) TO '{generation}/x.csv'", "--db", str(snapshot))
    assert proc.returncode == 2 and "only queries" in proc.stderr and not (generation / "x.csv").exists()


def test_a_moved_snapshot_says_so_and_how_to_publish_it_again(warehouse: Path, tmp_path: Path) -> None:
    """The views name their Parquet files by absolute path: after the folder moves they read nothing.
    A user trial got DuckDB's "file system operations are disabled by configuration" from `sql`."""
    import shutil

    moved = tmp_path / "moved"
    shutil.copytree(warehouse.parent, moved, ignore=shutil.ignore_patterns("prefect", "*.lock"))
    snapshot = moved / "w.snapshot.duckdb"
    report = ("report", "--out", str(tmp_path / "r.html"))
    for command in (("sql", "SELECT count(*) FROM articles"), ("stats",), report):
        proc = newsetl(*command, "--db", str(snapshot))
        assert proc.returncode == 3, (command, proc.stdout, proc.stderr)
        assert "the folder was moved or copied" in proc.stderr and f"newsetl reclean --db {moved / 'w.duckdb'}" \
            in proc.stderr and "disabled by configuration" not in proc.stderr and "Traceback" not in proc.stderr
    # What it says to do works: a reclean publishes the snapshot again where it is now.
    assert newsetl("reclean", "--db", str(moved / "w.duckdb")).returncode == 0
    proc = newsetl("sql", "SELECT count(*) AS n FROM articles", "--db", str(snapshot), "--format", "csv")
    assert proc.returncode == 0 and proc.stdout.splitlines() == ["n", "1"], proc.stderr
    # The snapshot file alone, copied elsewhere, still reads its (existing) folder, under the sandbox too.
    alone = tmp_path / "alone.duckdb"
    shutil.copyfile(snapshot, alone)
    proc = newsetl("sql", "SELECT count(*) AS n FROM articles", "--db", str(alone), "--format", "csv")
    assert proc.returncode == 0 and proc.stdout.splitlines() == ["n", "1"], proc.stderr


def test_stats_and_export(warehouse: Path, tmp_path: Path) -> None:
    proc = newsetl("stats", "--db", str(warehouse))
    assert proc.returncode == 0, proc.stderr
    assert "Last runs" in proc.stdout and "completed" in proc.stdout and "ad_marker" in proc.stdout
    out = tmp_path / "stories.parquet"
    proc = newsetl("export", str(out), "--db", str(warehouse))
    assert proc.returncode == 0 and out.stat().st_size > 0
    # .json is one document json.load reads; .jsonl one object a line
    for name in ("stories.json", "stories.jsonl"):
        proc = newsetl("export", str(tmp_path / name), "--db", str(warehouse))
        assert proc.returncode == 0, proc.stderr
    (story,) = json.loads((tmp_path / "stories.json").read_text(encoding="utf-8"))
    assert [json.loads(line) for line in (tmp_path / "stories.jsonl").read_text(encoding="utf-8").splitlines()] \
        == [story] and "approved a new ferry timetable" in story["body"]


def test_stats_says_when_a_run_marked_running_has_no_process_left(filled_db: Path) -> None:
    # After a kill -9 the run's row says `running` until the next ingest marks it crashed: stats says so
    # while no process holds the run lock, and says nothing while one does (the run is going on).
    from newsetl.warehouse.connect import run_lock

    with duckdb.connect(str(filled_db)) as con:
        con.execute("INSERT INTO runs (run_id, started_at, status) VALUES ('r7', now(), 'running')")
    proc = newsetl("stats", "--db", str(filled_db))
    assert proc.returncode == 0, proc.stderr
    assert "1 run(s) marked running (r7) but no ingest holds the warehouse" in proc.stdout
    with run_lock(filled_db):
        proc = newsetl("stats", "--db", str(filled_db))
    assert proc.returncode == 0 and "marked running" not in proc.stdout


def test_env_var_chooses_the_database(warehouse: Path) -> None:
    proc = newsetl("sql", "SELECT count(*) AS n FROM articles", "--format", "csv", env={"NEWSETL_DB": str(warehouse)})
    assert proc.returncode == 0 and proc.stdout.splitlines() == ["n", "1"]


def test_an_unreachable_prefect_api_is_exit_7_for_ingest_and_serve(tmp_path: Path) -> None:
    """A PREFECT_API_URL nobody answers: one line and exit 7 from both commands. `ingest` said
    "unexpected error: RuntimeError: Failed to reach API" (exit 1), `serve` exited 2 ("usage error")."""
    import socket

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "story.txt").write_text(STORY, encoding="utf-8")
    env = {"PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
    for command in (("ingest", str(tmp_path / "story.txt")), ("serve", str(tmp_path / "story.txt"))):
        proc = newsetl(*command, "--db", str(tmp_path / "w.duckdb"), env=env)
        assert proc.returncode == 7, (command, proc.stdout, proc.stderr[-2000:])
        assert f"127.0.0.1:{port}/api is not reachable" in proc.stderr and "Traceback" not in proc.stderr
        # nothing ran, and nothing is left beside the --db given: no empty warehouse, no lock (a user trial)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["story.txt"], (command, list(tmp_path.iterdir()))


def test_missing_warehouse_is_a_clear_error(tmp_path: Path) -> None:
    proc = newsetl("sql", "SELECT 1", "--db", str(tmp_path / "none.duckdb"))
    assert proc.returncode == 3 and "no warehouse" in proc.stderr


def test_prefect_keeps_the_whole_run(warehouse: Path) -> None:
    """Run as cron runs it (no PREFECT_API_URL), the temporary API server is stopped when the ingest
    ends: before it goes, every task run, the report and the run's last log lines must have reached it."""
    prefect_db = warehouse.parent / "prefect" / "prefect.db"
    con = sqlite3.connect(prefect_db)
    try:
        assert con.execute("SELECT state_type FROM flow_run").fetchall() == [("COMPLETED",)]
        tasks = dict(con.execute("SELECT state_type, count(*) FROM task_run GROUP BY 1").fetchall())
        # discover, skip-unchanged, read, filter-known, process, load, reclean (each at least once)
        assert set(tasks) == {"COMPLETED"} and tasks["COMPLETED"] >= 7, tasks
        messages = [m for (m,) in con.execute("SELECT message FROM log")]
        assert any(m.startswith("ingest summary:") for m in messages), messages[-5:]
        assert any(m.startswith("Finished in state Completed") for m in messages), messages[-5:]
        assert con.execute("SELECT count(*) FROM artifact WHERE key = 'ingest-report'").fetchone() == (1,)
    finally:
        con.close()


def test_sigusr1_prints_where_the_command_is_and_it_goes_on(tmp_path: Path) -> None:
    """An operator's view into a command that seems stuck: here `newsetl sql` waiting for a warehouse
    another process holds. The stacks go to stderr; the command then carries on and answers."""
    import signal
    import time

    import duckdb

    db = tmp_path / "held.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE t (a INTEGER)")
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('held', flush=True); time.sleep(6)", str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        query = subprocess.Popen([sys.executable, "-m", "newsetl.cli", "sql", "SELECT 42 AS n", "--db", str(db),
                                  "--format", "csv", "--wait", "60"], cwd=REPO, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while not db.with_name("held.duckdb.waiting").exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # until it waits for the file (it marks each attempt)
        query.send_signal(signal.SIGUSR1)
        out, err = query.communicate(timeout=90)
    finally:
        holder.kill()
        holder.wait()
    assert query.returncode == 0, err
    assert out.splitlines() == ["n", "42"]
    assert "Current thread" in err and "in cmd_sql" in err, err


BUGLE_PROMO = "Listen to the Bugle podcast every Friday"


def _bugle_warehouse(db: Path) -> str:
    """A warehouse whose 7 stored stories of one publisher hold a line that has become its boilerplate, not yet
    re-cleaned (as a run stopped before its re-clean leaves it); returns the line."""
    from newsetl.text.learned import publisher_key
    from newsetl.text.sign import body_hash
    from newsetl.warehouse.connect import migrate
    from newsetl.warehouse.learned import record_articles

    promo = BUGLE_PROMO
    topics = ["harbour", "budget", "schools", "bridge", "depot", "transit", "flights"]
    with duckdb.connect(str(db)) as con:
        migrate(con)
        con.execute("INSERT INTO runs (run_id, started_at, status) VALUES ('run-1', now(), 'completed')")
        for n, topic in enumerate(topics):
            body = f"Story {n}\nThe council debated the {topic} for {n + 2} hours on Tuesday.\n{promo}"
            con.execute(
                "INSERT INTO articles (article_id, doc_id, source_uri, publisher, title, body, word_count, "
                "body_hash, cluster_id, is_canonical, run_id) VALUES (?, ?, ?, 'The Daily Bugle', ?, ?, ?, ?, ?, "
                "true, 'run-1')",
                [f"a{n}", f"d{n}", f"/in/{n}.txt", f"Story {n}", body, len(body.split()), body_hash(body), f"c{n}"])
        record_articles(con, [f"a{n}" for n in range(len(topics))])
        con.execute("INSERT INTO publishers VALUES (?, 'The Daily Bugle', '[]', '[]', 'seen', 'run-1')",
                    [publisher_key("The Daily Bugle")])
    return promo


def test_reclean_records_its_run_and_publishes_what_it_changed(tmp_path: Path) -> None:
    """`newsetl reclean` on a warehouse whose stored stories hold a line that has become the publisher's
    boilerplate: it removes the line, records a run row that its removals name, and publishes the snapshot
    for dashboards (before, the removals named a run the warehouse did not know and dashboards kept the
    old bodies). A second call finds nothing and publishes nothing."""
    from newsetl.warehouse.snapshot import snapshot_path

    db = tmp_path / "w.duckdb"
    promo = _bugle_warehouse(db)

    # stats names the outlet of a learned line, not its key ("dailybugle": a user trial)
    proc = newsetl("stats", "--db", str(db))
    learned = proc.stdout.split("== Learned boilerplate lines")[1].split("==")[0]
    assert proc.returncode == 0 and f"The Daily Bugle  {promo}" in learned, proc.stdout

    proc = newsetl("reclean", "--db", str(db))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "re-cleaned 7 articles" in proc.stdout and "snapshot for dashboards:" in proc.stdout, proc.stdout
    report = Path(proc.stdout.split("run report (markdown): ")[1].strip())
    assert "completed" in report.read_text() and "boilerplate: 7" in report.read_text()
    with duckdb.connect(str(db), read_only=True) as con:
        (run_id, status, recleaned), = con.execute(
            "SELECT run_id, status, CAST(counts->>'recleaned' AS INT) FROM runs WHERE run_id <> 'run-1'").fetchall()
        assert status == "completed" and recleaned == 7
        assert con.execute("SELECT DISTINCT run_id FROM removals WHERE category = 'learned'").fetchall() == [(run_id,)]
    with duckdb.connect(str(snapshot_path(db)), read_only=True) as snap:
        assert snap.execute("SELECT count(*) FROM articles WHERE body LIKE '%podcast%'").fetchall() == [(0,)]
        assert snap.execute("SELECT count(*) FROM runs WHERE run_id = ?", [run_id]).fetchall() == [(1,)]

    again = newsetl("reclean", "--db", str(db))
    assert again.returncode == 0 and "re-cleaned 0 articles" in again.stdout, again.stderr[-3000:]
    # Published all the same, like every run: dashboards see the run in run_health.
    assert "snapshot for dashboards" in again.stdout
    with duckdb.connect(str(snapshot_path(db)), read_only=True) as snap:
        assert snap.execute("SELECT count(*) FROM run_health").fetchall() == [(3,)]
    # `stats` says what a reclean run did (its read/loaded are NULL: it reads no inputs)
    stats = newsetl("stats", "--db", str(db))
    header, _, first, second = stats.stdout.split("== Last runs\n", 1)[1].splitlines()[:4]
    assert header.split()[-2:] == ["recleaned", "by_rules"], stats.stdout
    assert first.split()[-2] == "0" and second.split()[-2] == "7", stats.stdout  # newest first


def test_reclean_apply_rules_takes_a_new_rules_lines_out_of_the_stored_articles(tmp_path: Path) -> None:
    """A user who finds a line of boilerplate in the stored bodies writes a rule for it: the ingests after it
    clean it, and `newsetl reclean --rules FILE --apply-rules` takes it out of the stored articles, each
    removal a `removals` row of the re-clean's run; a second call finds nothing. Without --apply-rules the
    re-clean says the rules act at ingest and leaves the bodies."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        (folder / f"a{i}.txt").write_text(
            f"Council approves tram budget number {i}\n"
            f"The city council approved a new budget for the tram network on Tuesday, officials said in "
            f"statement number {i}.\nPowered by StoryEngine 3.{i}\nThe mayor said the first new trams would "
            "arrive next spring and would run on all three lines by the end of the year.\n")
    db = tmp_path / "w.duckdb"
    assert newsetl("ingest", str(folder), "--db", str(db), "-q").returncode == 0
    rules = tmp_path / "mine.json"
    rules.write_text(json.dumps({"rules": [{"id": "mine.engine", "category": "promo", "keywords": ["powered"],
                                            "pattern": "powered by storyengine.*",
                                            "examples": ["Powered by StoryEngine 3.1"]}]}))

    def stored() -> int:
        with duckdb.connect(str(db), read_only=True) as con:
            return int(con.execute("SELECT count(*) FROM articles WHERE body LIKE '%StoryEngine%'").fetchall()[0][0])

    proc = newsetl("reclean", "--db", str(db), "--rules", str(rules))
    assert proc.returncode == 0 and "--apply-rules applies them to the stored articles" in proc.stderr
    assert stored() == 3
    with duckdb.connect(str(db), read_only=True) as con:
        before = dict(con.execute("SELECT article_id, body FROM articles").fetchall())
    proc = newsetl("reclean", "--db", str(db), "--rules", str(rules), "--apply-rules")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"re-cleaned 3 articles with the rules of {rules}" in proc.stdout, proc.stdout
    assert stored() == 0
    with duckdb.connect(str(db), read_only=True) as con:
        (run_id, by_rules), = con.execute("SELECT run_id, CAST(counts->>'recleaned_by_rules' AS INT) FROM runs "
                                          "WHERE counts->>'recleaned_by_rules' IS NOT NULL").fetchall()
        assert by_rules == 3
        rows = con.execute("SELECT a.article_id, a.body, r.text, r.position, r.offset_in, r.run_id, r.category "
                           "FROM removals r JOIN articles a USING (article_id) WHERE r.rule = 'mine.engine'").fetchall()
        assert len(rows) == 3 and {r[4:] for r in rows} == {("stored_body", run_id, "promo")}
        for article_id, body, text, position, *_ in rows:
            # the line stood where the removal says, in the body before the re-clean; the rest stays
            assert before[article_id][position:position + len(text)] == text
            assert body == before[article_id].replace(text + "\n", "")
    again = newsetl("reclean", "--db", str(db), "--rules", str(rules), "--apply-rules")
    assert again.returncode == 0 and f"re-cleaned 0 articles with the rules of {rules}" in again.stdout
    # --apply-rules without a rules file is a usage error, said so
    proc = newsetl("reclean", "--db", str(db), "--apply-rules")
    assert proc.returncode == 2 and "give one with --rules FILE" in proc.stderr


def test_reclean_honours_the_protect_patterns_of_newsetl_rules(tmp_path: Path) -> None:
    """README: user rules files are `--rules FILE`, or `NEWSETL_RULES`. `newsetl reclean` read only --rules, so
    with the protect file in the environment (as the ingests that kept the line read it) it took the protected
    line out of every stored story (user trial 10); --rules and NEWSETL_RULES now protect alike."""
    rules = tmp_path / "protect.json"
    rules.write_text(json.dumps({"protect": [{"id": "keep.podcast", "pattern": "bugle podcast"}]}))
    for how, args, env in (("--rules", ["--rules", str(rules)], None),
                           ("NEWSETL_RULES", [], {"NEWSETL_RULES": str(rules)})):
        db = tmp_path / how / "w.duckdb"
        db.parent.mkdir()
        promo = _bugle_warehouse(db)
        proc = newsetl("reclean", "--db", str(db), *args, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "re-cleaned 0 articles" in proc.stdout, (how, proc.stdout)
        with duckdb.connect(str(db), read_only=True) as con:
            assert con.execute("SELECT count(*) FROM articles WHERE body LIKE ?", [f"%{promo}%"]).fetchall() == [(7,)]


def test_a_text_over_the_character_limit_is_quarantined_with_its_bytes(tmp_path: Path) -> None:
    """README, "Nothing lost": every rejected input is a quarantine row with its bytes, and one whose bytes were
    read is a `documents` row of kind `rejected`. A .txt of 2.1 M characters (2 MB, within the 32 MB byte limit)
    was quarantined `too_large` with no bytes anywhere (user trial 10), where a JSON record over the same
    limit keeps its line."""
    folder = tmp_path / "in"
    folder.mkdir()
    data = ("The quick brown fox jumps over the lazy dog by the river. " * 40_000)[:2_100_000].encode()
    (folder / "dump.txt").write_bytes(data)
    db = tmp_path / "w.duckdb"
    proc = newsetl("ingest", str(folder), "--db", str(db), "--workers", "0", "-q")
    assert proc.returncode == 0, proc.stderr[-3000:]
    with duckdb.connect(str(db), read_only=True) as con:
        (reason, detail, raw), = con.execute("SELECT reason, detail, raw FROM quarantine").fetchall()
        assert reason == "too_large" and "over the limit of 2000000" in detail
        assert raw == data
        assert con.execute("SELECT kind, raw = ? FROM documents", [data]).fetchall() == [("rejected", True)]


def test_a_run_whose_snapshot_cannot_be_published_says_so_and_exits_6(tmp_path: Path) -> None:
    """The run's rows are in, but dashboards would stay on the previous snapshot: that used to be a
    warning only `-v` showed, with exit 0 (a warehouse scaled to 200k articles failed its publication
    "Out of Memory" on every run, unseen). Here the snapshot folder cannot be created: a file has its name."""
    (tmp_path / "story.txt").write_text(STORY, encoding="utf-8")
    db = tmp_path / "w.duckdb"
    (tmp_path / "w.snapshot").write_text("not a folder")
    proc = newsetl("ingest", str(tmp_path / "story.txt"), "--db", str(db), "--workers", "0")
    assert proc.returncode == 6, proc.stdout + proc.stderr[-2000:]
    assert re.search(r"articles loaded +1\n", proc.stdout), proc.stdout
    assert "the snapshot for dashboards and the report were not published: FileExistsError" in proc.stderr, \
        proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT status FROM runs").fetchall() == [("completed",)]
    # --quiet still says it (an error, not a summary line)
    (tmp_path / "story2.txt").write_text(STORY.replace("ferry", "tram"), encoding="utf-8")
    proc = newsetl("ingest", str(tmp_path / "story2.txt"), "--db", str(db), "--workers", "0", "--quiet")
    assert proc.returncode == 6 and "were not published" in proc.stderr, proc.stderr[-2000:]
    # once publishing works again, the next run publishes everything and exits 0
    (tmp_path / "w.snapshot").unlink()
    proc = newsetl("ingest", str(tmp_path / "story2.txt"), "--db", str(db), "--workers", "0")
    assert proc.returncode == 0 and "snapshot for dashboards:" in proc.stdout, proc.stderr[-2000:]
    with duckdb.connect(str(tmp_path / "w.snapshot.duckdb"), read_only=True) as snap:
        assert snap.execute("SELECT count(*) FROM articles").fetchall() == [(2,)]
    # Only the report cannot be written (a folder has its name): the snapshot is out, and said to be.
    (tmp_path / "w.report.html").unlink()
    (tmp_path / "w.report.html").mkdir()
    (tmp_path / "story3.txt").write_text(STORY.replace("ferry", "bus"), encoding="utf-8")
    proc = newsetl("ingest", str(tmp_path / "story3.txt"), "--db", str(db), "--workers", "0")
    assert proc.returncode == 6, proc.stdout + proc.stderr[-2000:]
    assert "the snapshot for dashboards is published" in proc.stderr and "could not be written" in proc.stderr, \
        proc.stderr[-2000:]
    with duckdb.connect(str(tmp_path / "w.snapshot.duckdb"), read_only=True) as snap:
        assert snap.execute("SELECT count(*) FROM articles").fetchall() == [(3,)]


def test_the_field_option_names_every_field_a_record_may_map() -> None:
    # The help's list is written out (importing the readers would slow every `newsetl --help`): it must
    # keep up with the fields the readers know.
    from newsetl.cli import _FIELD_HELP
    from newsetl.sources.fields import FIELDS

    listed = re.search(r"\(NAME: ([^)]*)\)", _FIELD_HELP)
    assert listed is not None and sorted(listed.group(1).split(", ")) == sorted(FIELDS)


def test_min_age_leaves_a_file_still_being_written_for_the_next_run(tmp_path: Path) -> None:
    # A drop folder's producer still copying a file: read then, half a page loaded as an article (a user trial).
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "settled.txt").write_text(STORY, encoding="utf-8")
    os.utime(inbox / "settled.txt", (time.time() - 3600, time.time() - 3600))
    (inbox / "copying.txt").write_text(STORY.replace("council", "committee"), encoding="utf-8")
    db = tmp_path / "w.duckdb"
    proc = newsetl("ingest", str(inbox), "--db", str(db), "--workers", "0", "--min-age", "600")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert re.search(r"held back\s+1\s", proc.stdout) and re.search(r"articles loaded\s+1\n", proc.stdout), proc.stdout
    os.utime(inbox / "copying.txt", (time.time() - 3600, time.time() - 3600))  # the copy has finished
    proc = newsetl("ingest", str(inbox), "--db", str(db), "--workers", "0", "--min-age", "600")
    assert proc.returncode == 0 and re.search(r"articles loaded\s+1\n", proc.stdout), proc.stdout
    assert "held back" not in proc.stdout
    proc = newsetl("sql", "SELECT count(*) AS n FROM articles", "--db", str(db))
    assert proc.stdout.split()[-1] == "2", proc.stdout
    # only fresh files: inputs there are, so not "nothing to ingest" (exit 5)
    (inbox / "new.txt").write_text(STORY.replace("council", "board"), encoding="utf-8")
    proc = newsetl("ingest", str(inbox / "new.txt"), "--db", str(db), "--workers", "0", "--min-age", "600")
    assert proc.returncode == 0 and "nothing to ingest" not in proc.stderr, proc.stderr[-2000:]
