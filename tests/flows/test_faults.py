"""Faults a scheduled ingest meets: kill -9, two ingests at once, analysts reading during a load, a full or
read-only disk.

Everything here is real: `python -m newsetl.cli ingest ...` in a subprocess, real DuckDB files, real
signals, real rlimits and (when the host allows `mount`) a real tmpfs. The yardstick is one clean run of
the same corpus: after any fault and a re-run, every table must hold exactly the rows of that clean run
(run ids and timestamps aside) -- a lost row or a doubled row both show up as a difference.

The subprocesses talk to the session's Prefect test server (PREFECT_API_URL): a temporary server per
ingest costs 6-10 s on a loaded 2-core machine, which would put this file far over its time budget.
Only the orphan test goes without it, because the temporary server is one of the children that a kill -9
must not leave behind.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import queue
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pytest

from newsetl.synth.corpus import generate
from newsetl.warehouse.dedup import check_invariants

# Subprocesses, servers and whole flow runs: part of CI, not of the `-m "not slow"` inner loop.
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]

ARTICLES = 100  # synthetic stories, ~10% re-scrapes (dedup has work to do)
BOMBS = 5  # gzip bombs: quarantined at read, and they make the read phase long enough to be hit
BATCH = 20  # small batches: several loads per run, so a kill lands between or inside them
RUN_TIMEOUT = 120.0  # one ingest of this corpus takes ~10 s; a hang fails the test instead of CI

# Columns that legitimately differ between two runs of the same inputs.
# (removals.offset_in too: like run_id it says when a learned line went -- at load, where a run finds it
# learned already, or by the end-of-run re-clean -- and after a crash a line the first attempt learned goes
# at load in the re-run; the line, the rule and the body are the same.)
VOLATILE = {"run_id", "first_run_id", "last_run_id", "updated_run_id", "quarantined_at", "recorded_at",
            "first_seen", "updated_at", "sid", "offset_in"}
# Every table a batch writes, not only the contract tables: a doubled learned count or band row is a
# doubled row too. lsh_bands and signatures are keyed by the arrival-order `sid`, so bands are compared
# through the article they belong to.
TABLE_QUERIES = {
    "lsh_bands": "SELECT b.key, s.article_id FROM lsh_bands b JOIN signatures s USING (sid)",
}


# ---------------------------------------------------------------------------------------------- helpers


class Orphaned(AssertionError):
    """Processes outlived a kill -9 of the ingest (raised alone, so an xfail for it hides nothing else)."""


class UnclearError(AssertionError):
    """A failure was reported with a traceback or noise instead of one clear line."""


def newsetl_env(api_url: str | None) -> dict[str, str]:
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
           "PYTHONUNBUFFERED": "1", "PREFECT_LOGGING_LEVEL": "INFO"}
    env.pop("NEWSETL_DB", None)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    else:
        env.pop("PREFECT_API_URL", None)
    return env


@dataclass
class Child:
    """A running `newsetl` subprocess whose merged output is read line by line as it comes."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    _q: queue.Queue[str | None] = field(default_factory=queue.Queue)

    def __post_init__(self) -> None:
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._q.put(line.rstrip("\n"))
        self._q.put(None)

    def wait_for(self, pattern: str, timeout: float = RUN_TIMEOUT, count: int = 1) -> str:
        """Block until the `count`-th output line matching `pattern`; fail on exit or timeout."""
        rx = re.compile(pattern)
        seen = sum(1 for line in self.lines if rx.search(line))
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._q.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no line matching {pattern!r} within {timeout} s; output:\n{self.tail()}")
            if line is None:
                self._q.put(None)
                pytest.fail(f"the ingest exited ({self.proc.wait()}) before {pattern!r}; output:\n{self.tail()}")
            self.lines.append(line)
            if rx.search(line):
                seen += 1
                if seen >= count:
                    return line

    def finish(self, timeout: float = RUN_TIMEOUT) -> int:
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail(f"the ingest did not finish within {timeout} s; output:\n{self.tail()}")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                line = self._q.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                self._q.put(None)
                break
            self.lines.append(line)
        return rc

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.lines[-n:])


def start_ingest(corpus: Path, db: Path, api_url: str | None, *, workers: int | None = 0, batch: int = BATCH,
                 preexec: Callable[[], None] | None = None) -> Child:
    # -v: the tests time their kills and readers by Prefect's log lines, shown on the console only with -v.
    args = [sys.executable, "-m", "newsetl.cli", "ingest", str(corpus), "--db", str(db), "--batch-size", str(batch),
            "-v"]
    if workers is not None:
        args += ["--workers", str(workers)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
                            env=newsetl_env(api_url), preexec_fn=preexec, start_new_session=False)
    return Child(proc)


def ingest(corpus: Path, db: Path, api_url: str | None, **kw: Any) -> Child:
    """Run an ingest to the end and insist that it completed."""
    child = start_ingest(corpus, db, api_url, **kw)
    rc = child.finish()
    assert rc == 0, f"ingest failed with {rc}:\n{child.tail()}"
    return child


def newsetl_sql(db: Path, query: str, wait: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "newsetl.cli", "sql", query, "--db", str(db), "--format", "csv",
                           "--wait", str(wait)], capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=REPO,
                          env=newsetl_env(None))


Snapshot = dict[str, Counter[tuple[Any, ...]]]


def snapshot(db: Path) -> Snapshot:
    """Every table's rows as a multiset (run ids and timestamps left out, blobs as their md5)."""
    with duckdb.connect(str(db), read_only=True) as con:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
            "AND table_name NOT IN ('runs', 'schema_migrations', 'signatures_meta')").fetchall()]
        snap: Snapshot = {}
        for table in sorted(tables):
            if table in TABLE_QUERIES:
                query = TABLE_QUERIES[table]
            else:
                cols = con.execute(
                    "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
                    "ORDER BY ordinal_position", [table]).fetchall()
                exprs = [f"md5({name})" if dtype == "BLOB" else name for name, dtype in cols if name not in VOLATILE]
                query = f"SELECT {', '.join(exprs)} FROM {table}"
            snap[table] = Counter(tuple(row) for row in con.execute(query).fetchall())
    return snap


def diff(got: Snapshot, want: Snapshot, limit: int = 3) -> list[str]:
    """Readable differences: rows missing from `got` (lost) and rows in excess (doubled or wrong)."""
    problems: list[str] = []
    for table in sorted(set(got) | set(want)):
        g, w = got.get(table, Counter()), want.get(table, Counter())
        lost, extra = w - g, g - w
        if lost or extra:
            problems.append(f"{table}: {sum(lost.values())} rows lost, {sum(extra.values())} rows extra "
                            f"(of {sum(w.values())}); lost e.g. {list(lost)[:limit]}; extra e.g. {list(extra)[:limit]}")
    return problems


def check_committed_state(db: Path, reference: Path) -> dict[str, int]:
    """After a crash: what is visible is whole batches of the clean run, nothing half-loaded.

    Returns the counts of what was visible (for the test's own record of where the kill landed).
    """
    with duckdb.connect(str(db), read_only=True) as con:
        assert check_invariants(con) == [], check_invariants(con)
        con.execute(f"ATTACH '{reference}' AS ref (READ_ONLY)")
        one = lambda sql: int(con.execute(sql).fetchall()[0][0])  # noqa: E731
        counts = {
            "documents": one("SELECT count(*) FROM documents"),
            "processed_documents": one("SELECT count(*) FROM documents WHERE kind <> 'rejected'"),
            "articles": one("SELECT count(*) FROM articles"),
            "quarantine": one("SELECT count(*) FROM quarantine"),
        }
        # Batches are whole: documents that reached processing come in multiples of the batch size.
        total_processed = one("SELECT count(*) FROM ref.documents WHERE kind <> 'rejected'")
        assert counts["processed_documents"] % BATCH == 0 or counts["processed_documents"] == total_processed, counts
        # Each visible document has exactly the article / quarantine rows of the clean run, each visible
        # article exactly its removals and its signature: a batch is all there or not at all.
        assert one("SELECT count(*) FROM documents d ANTI JOIN ref.documents r USING (doc_id)") == 0
        assert one("""SELECT count(*) FROM ref.articles r SEMI JOIN documents d USING (doc_id)
                      ANTI JOIN articles a USING (article_id)""") == 0, "a document without its article"
        assert one("SELECT count(*) FROM articles a ANTI JOIN documents d USING (doc_id)") == 0
        assert one("""SELECT count(*) FROM ref.quarantine r SEMI JOIN documents d USING (doc_id)
                      ANTI JOIN quarantine q USING (quarantine_id)""") == 0, "a document without its quarantine row"
        # Learned removals are the exception: a line a later batch teaches re-cleans the articles of
        # earlier ones (one more `learned` row each), so a visible article may have fewer than in the
        # finished clean run, never more, and every other removal exactly.
        per_article = """SELECT a.article_id, (SELECT count(*) FROM {p}removals m
                                               WHERE m.article_id = a.article_id AND m.category {op} 'learned')
                         FROM articles a ORDER BY 1"""
        assert (con.execute(per_article.format(p="", op="<>")).fetchall()
                == con.execute(per_article.format(p="ref.", op="<>")).fetchall())
        learned_here = dict(con.execute(per_article.format(p="", op="=")).fetchall())
        learned_ref = dict(con.execute(per_article.format(p="ref.", op="=")).fetchall())
        assert all(n <= learned_ref[a] for a, n in learned_here.items()), "more learned removals than a clean run"
        assert one("SELECT count(*) FROM articles a ANTI JOIN signatures s USING (article_id)") == 0
        assert one("SELECT count(*) FROM articles WHERE cluster_id IS NULL OR is_canonical IS NULL") == 0
        assert one("SELECT count(*) FROM (SELECT doc_id FROM documents GROUP BY doc_id HAVING count(*) > 1)") == 0
        assert one("SELECT count(*) FROM (SELECT article_id FROM articles GROUP BY 1 HAVING count(*) > 1)") == 0
    return counts


def descendants(pid: int) -> list[int]:
    """All processes below `pid`, from /proc (children of children included)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\x00", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def holds_open(pid: int, path: Path) -> bool:
    """Whether process `pid` has `path` open right now (the writer connection of a batch load)."""
    target = str(path)
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                return True
        except OSError:
            continue
    return False


def wait_for_checkpoint(db: Path, timeout: float) -> bool:
    """Until DuckDB is checkpointing: the WAL of a commit exists and the database file grows."""
    wal = Path(f"{db}.wal")
    deadline = time.monotonic() + timeout
    size_before_wal = -1
    while time.monotonic() < deadline:
        try:
            size = db.stat().st_size
        except OSError:
            size = -1
        if not wal.exists():
            size_before_wal = size
        elif size_before_wal >= 0 and size > size_before_wal:
            return True
        time.sleep(0.0003)
    return False


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.002) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def api_url(prefect_harness: None) -> str:
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    assert url, "the Prefect test harness gave no API URL"
    return str(url)


def write_corpus(folder: Path) -> Path:
    generate(folder, ARTICLES, seed=11)
    # A few kinds of bad input, so `quarantine` and rejected `documents` rows are compared too.
    (folder / "empty.txt").write_bytes(b"")
    (folder / "blank.txt").write_text("  \n\t\n")
    (folder / "png.html").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    # Gzip bombs (each inflates past the 32 MB per-document limit): refused while reading, and each
    # costs tens of ms to inflate, which gives the read phase a width a kill can land in.
    payload = gzip.compress(b"\x00" * (40 * 1024 * 1024), compresslevel=9)
    for i in range(BOMBS):
        # A second gzip member makes each file's bytes (and so its doc_id) its own.
        (folder / f"bomb_{i:02d}.txt.gz").write_bytes(payload + gzip.compress(str(i).encode()))
    return folder


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("faults") / "corpus")


@dataclass(frozen=True)
class Reference:
    db: Path
    snap: Snapshot
    seconds: float


@pytest.fixture(scope="module")
def reference(corpus: Path, api_url: str, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """One clean, uninterrupted run: what every faulted warehouse must end up equal to."""
    db = tmp_path_factory.mktemp("reference") / "clean.duckdb"
    t0 = time.monotonic()
    child = ingest(corpus, db, api_url)
    seconds = time.monotonic() - t0
    snap = snapshot(db)
    # The yardstick must itself be sound and non-trivial, or every comparison below proves nothing.
    assert len(snap["articles"]) >= ARTICLES * 0.8, child.tail()
    assert len(snap["quarantine"]) >= BOMBS + 2
    assert sum(snap["removals"].values()) > len(snap["articles"])
    assert len(snap["clusters"]) < len(snap["articles"]), "no duplicates clustered: the corpus lost its copies"
    with duckdb.connect(str(db), read_only=True) as con:
        assert check_invariants(con) == []
    return Reference(db, snap, seconds)


# ---------------------------------------------------------------------------------------------- kill -9


def test_kill9_while_reading_between_batches_and_during_loads_then_rerun_equals_clean_run(
    corpus: Path, api_url: str, reference: Reference, tmp_path: Path
) -> None:
    """Five runs killed at five points on the same warehouse, then one run to the end.

    After each kill, before any re-run, the warehouse shows whole batches of the clean run and
    nothing else; after the last run it equals the clean run row for row.
    """
    db = tmp_path / "w.duckdb"
    wal = Path(f"{db}.wal")

    # 1. While reading: the read phase inflates five gzip bombs (~1 s) right after skip-unchanged.
    child = start_ingest(corpus, db, api_url)
    child.wait_for(r"Task run 'skip-unchanged-.*Finished")
    time.sleep(0.2)
    child.kill9()
    assert not re.search(r"read-documents-.*Finished|loaded batch", child.output), child.tail()
    state = check_committed_state(db, reference.db)
    assert state["documents"] == 0, state

    # 2. Between batches: the log line of a load is written after its connection closed.
    child = start_ingest(corpus, db, api_url)
    child.wait_for(r"loaded batch:")
    child.kill9()
    state = check_committed_state(db, reference.db)
    assert 0 < state["articles"] < len(reference.snap["articles"]), state

    # 3. During a load, early: the writer connection of the next batch is open, inserts under way.
    before = state
    child = start_ingest(corpus, db, api_url)
    child.wait_for(r"loaded batch:")
    assert wait_until(lambda: holds_open(child.proc.pid, db), 30), "no second load started"
    time.sleep(0.03)
    inside = holds_open(child.proc.pid, db)
    child.kill9()
    assert inside, "the load finished before the kill: the kill point was missed"
    state = check_committed_state(db, reference.db)
    assert before["articles"] < state["articles"] < len(reference.snap["articles"]), (before, state)

    # 4. During a load, at the commit: the first bytes of the WAL are being written. Whether DuckDB
    # then counts the batch as committed or not, it must be all of it or none of it.
    before = state
    child = start_ingest(corpus, db, api_url)
    child.wait_for(r"Task run 'filter-known-.*Finished")
    assert wait_until(lambda: wal.exists() and wal.stat().st_size > 0, 60, step=0.0005), child.tail()
    child.kill9()
    state = check_committed_state(db, reference.db)
    assert state["articles"] >= before["articles"], (before, state)

    # 5. During a load, at the checkpoint: the commit is in the WAL and DuckDB is folding it into the
    # database file (the file grows while the WAL still exists). The batch committed: it must be there.
    before = state
    child = start_ingest(corpus, db, api_url)
    child.wait_for(r"Task run 'filter-known-.*Finished")
    assert wait_for_checkpoint(db, 60), child.tail()
    child.kill9()
    state = check_committed_state(db, reference.db)
    assert state["articles"] > before["articles"], (before, state)

    # 6. The re-run: completes, and the warehouse is the clean run's, row for row.
    child = ingest(corpus, db, api_url)
    assert diff(snapshot(db), reference.snap) == []
    with duckdb.connect(str(db), read_only=True) as con:
        statuses = [r[0] for r in con.execute("SELECT status FROM runs ORDER BY started_at").fetchall()]
        # Each killed run is `crashed` with the counts of the rows it left, and balances: its `read` is what
        # those rows record, and `not_loaded` is NULL, not known (it had `read` NULL: a user trial).
        crashed = con.execute("SELECT read, loaded, skipped_known + skipped_other + quarantined, not_loaded "
                              "FROM run_health WHERE status = 'crashed' ORDER BY started_at").fetchall()
    assert statuses[-1] == "completed" and len(statuses) == 6, statuses
    assert len(crashed) == 5 and all(read == loaded + other and missing is None
                                     for read, loaded, other, missing in crashed), crashed
    assert sum(loaded for _, loaded, _, _ in crashed) > 0, crashed


def kill9_and_collect_orphans(child: Child, grace: float = 10.0) -> dict[int, str]:
    """kill -9 the ingest; return (and then kill) whatever ran below it and is still alive after `grace` s."""
    below = {p: cmdline(p) for p in descendants(child.proc.pid)}
    child.kill9()
    wait_until(lambda: not any(alive(p) for p in below), grace, step=0.05)
    orphans = {p: c for p, c in below.items() if alive(p)}
    for p in orphans:  # this test started them: clean up before asserting anything
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)
    return orphans


def test_kill9_with_worker_processes_leaves_no_orphans_and_rerun_equals_clean_run(
    corpus: Path, api_url: str, reference: Reference, tmp_path: Path
) -> None:
    """The default worker pool (a fork server and one worker per core forked from it): kill -9 of the
    ingest while its workers process a batch takes them (and the fork server) down too; the re-run, with
    workers again, equals the in-process clean run."""
    db = tmp_path / "w.duckdb"
    child = start_ingest(corpus, db, api_url, workers=None)

    def workers_busy() -> bool:
        # The fork server and its forked workers all carry the fork server's command line.
        return sum("forkserver" in cmdline(p) for p in descendants(child.proc.pid)) >= 3

    assert wait_until(workers_busy, 90, step=0.02), f"no worker processes seen:\n{child.tail()}"
    # After the first batch came back from the workers they are busy with the next one: killed while
    # idle at start-up they exit on their own; killed mid-batch they block on the pool's pipes forever.
    child.wait_for(r"Task run 'process-batch-.*Finished")
    orphans = kill9_and_collect_orphans(child)
    check_committed_state(db, reference.db)
    ingest(corpus, db, api_url, workers=None)
    assert diff(snapshot(db), reference.snap) == []
    if orphans:
        raise Orphaned(f"left running after kill -9 of the ingest: {orphans}")


def test_kill9_leaves_no_orphan_prefect_server(corpus: Path, tmp_path: Path) -> None:
    """Run as cron runs it (no PREFECT_API_URL): a temporary API server runs below the ingest (started
    by newsetl, not by Prefect, whose own one outlived the kill). A kill -9 of the ingest (OOM killer, a
    timeout) must not leave it holding a port and ~/.prefect/prefect.db, one more per killed run."""
    child = start_ingest(corpus, tmp_path / "w.duckdb", None)
    child.wait_for(r"Beginning flow run")
    assert any("uvicorn" in c or "prefect" in c for c in map(cmdline, descendants(child.proc.pid))), \
        "no temporary server below the ingest: this test no longer tests anything"
    orphans = kill9_and_collect_orphans(child)
    if orphans:
        raise Orphaned(f"left running after kill -9 of the ingest: {orphans}")


# ---------------------------------------------------------------------------------------------- concurrency


def test_two_ingests_at_once_one_refuses_cleanly_the_other_completes(corpus: Path, api_url: str,
                                                                    reference: Reference, tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    args = [sys.executable, "-m", "newsetl.cli", "ingest", str(corpus), "--db", str(db), "--batch-size", str(BATCH),
            "--workers", "0"]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                              env=newsetl_env(api_url)) for _ in range(2)]
    ended: list[tuple[float, int, str, str]] = []
    for proc in procs:
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
        ended.append((time.monotonic(), proc.returncode, out, err))
    codes = sorted(e[1] for e in ended)
    assert codes == [0, 3], [(e[1], e[3][-2000:]) for e in ended]
    loser = next(e for e in ended if e[1] == 3)
    winner = next(e for e in ended if e[1] == 0)
    assert "another newsetl ingest or reclean is running" in loser[3]
    assert "Traceback" not in loser[3], loser[3]
    assert loser[3].strip().splitlines()[-1].startswith(
        "newsetl: another newsetl ingest or reclean is running")
    assert diff(snapshot(db), reference.snap) == []
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT status FROM runs").fetchall() == [("completed",)]
    assert "articles loaded" in winner[2]


READER = """
import sys
from newsetl.cli import main
import duckdb, newsetl.warehouse.connect  # warm: the reader must react within ms of the signal
sys.stdin.readline()
sys.exit(main(sys.argv[1:]))
"""


def start_reader(db: Path, query: str, wait: float, err: Path) -> subprocess.Popen[str]:
    """`newsetl sql` in a process already started and imported, released by a line on stdin. Its stderr
    goes to the file `err`, so the test can watch for its "busy" while it still runs."""
    with err.open("w") as sink:
        return subprocess.Popen([sys.executable, "-c", READER, "sql", query, "--db", str(db), "--format",
                                 "csv", "--wait", str(wait)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=sink, text=True, cwd=REPO, env=newsetl_env(None))


DASHBOARD = """
import sys, time
from newsetl.warehouse.connect import connect
sys.stdin.readline()
con = connect(sys.argv[1], read_only=True, wait_seconds=60)  # as docs/operations.md tells dashboards to
time.sleep(float(sys.argv[2]))  # a slow dashboard query, holding the file
print(con.execute("SELECT count(*) FROM articles").fetchall()[0][0])
con.close()
"""


def holds_write_lock(pid: int, path: Path) -> bool:
    """Whether process `pid` holds DuckDB's write lock on `path` (a POSIX lock, listed in /proc/locks).

    Having the file open is not enough: DuckDB opens the file, then locks it, and a poll that sees the
    open file first is biased toward that gap -- a reader let in there meets no busy warehouse."""
    try:
        inode = os.stat(path).st_ino
        table = Path("/proc/locks").read_text()
    except OSError:
        return False
    for line in table.splitlines():
        fields = line.split()
        # "1: POSIX  ADVISORY  WRITE 25480 fe:00:2148268 0 EOF"; a waiter's line has "->" after the number.
        if len(fields) >= 6 and fields[1] == "POSIX" and fields[3] == "WRITE" and fields[4] == str(pid) \
                and fields[5].rsplit(":", 1)[-1] == str(inode):
            return True
    return False


def stop_while_holding(pid: int, db: Path, timeout: float) -> bool:
    """SIGSTOP process `pid` at a moment it holds the write lock of `db` (retrying when the stop lands
    just after it let go); True once it is stopped holding the lock."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not wait_until(lambda: holds_write_lock(pid, db), deadline - time.monotonic(), step=0.001):
            return False
        os.kill(pid, signal.SIGSTOP)
        if holds_write_lock(pid, db):
            return True
        os.kill(pid, signal.SIGCONT)
    return False


def release(*procs: subprocess.Popen[str]) -> None:
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()


def said_busy(err: Path) -> bool:
    return "busy" in err.read_text(errors="replace")


def test_analysts_during_ingest_retry_read_whole_batches_and_the_ingest_waits_for_them(
    corpus: Path, api_url: str, reference: Reference, tmp_path: Path
) -> None:
    """Three readers start while the ingest holds the file for a load: `newsetl sql` that waits (retries
    with "busy, retrying", then reads whole batches), one that will not wait (a one-line refusal or an
    answer, never a traceback), and a dashboard that holds a read-only connection for 2 s (the ingest's
    next write waits for it and the run still completes, equal to the clean run)."""
    db = tmp_path / "w.duckdb"
    query = "SELECT count(*) FILTER (WHERE kind <> 'rejected') AS processed FROM documents"
    child = start_ingest(corpus, db, api_url)
    errs = {name: tmp_path / f"{name}.err" for name in ("patient", "impatient", "dashboard")}
    patient = start_reader(db, query, 60, errs["patient"])
    impatient = start_reader(db, query, 0.3, errs["impatient"])
    with errs["dashboard"].open("w") as sink:
        dashboard = subprocess.Popen([sys.executable, "-c", DASHBOARD, str(db), "2"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=sink, text=True, cwd=REPO,
                                     env=newsetl_env(None))
    child.wait_for(r"loaded batch:", count=1)  # the first of five batches: four loads still to come
    # A load holds the file for a fraction of a second: the ingest is frozen (SIGSTOP) while it holds
    # it, so that the readers certainly meet a busy warehouse, then let go -- once each of them has said
    # so. (A fixed pause was not enough: on a loaded CI machine a reader took over a second to reach its
    # first attempt, met a free file, and the test saw no "busy".)
    assert stop_while_holding(child.proc.pid, db, 30), "no load seen"
    try:
        release(patient, impatient, dashboard)
        met = wait_until(lambda: all(said_busy(err) for err in errs.values()), 30, step=0.02)
    finally:
        os.kill(child.proc.pid, signal.SIGCONT)
    assert met, {name: err.read_text() for name, err in errs.items()}

    out, _ = patient.communicate(timeout=RUN_TIMEOUT)
    err = errs["patient"].read_text()
    assert patient.returncode == 0, err
    assert "busy" in err and "retrying" in err, err
    assert "Traceback" not in err
    processed = int(out.splitlines()[1])
    total = sum(1 for row in reference.snap["documents"] if row[2] != "rejected")
    assert processed > 0 and (processed % BATCH == 0 or processed == total), out

    impatient.communicate(timeout=RUN_TIMEOUT)
    err = errs["impatient"].read_text()
    assert "Traceback" not in err, err
    if impatient.returncode != 0:
        assert impatient.returncode == 3, err
        assert err.strip().splitlines()[-1].startswith("newsetl:") and "busy" in err, err

    out, _ = dashboard.communicate(timeout=RUN_TIMEOUT)
    err = errs["dashboard"].read_text()
    assert dashboard.returncode == 0 and "Traceback" not in err, err
    articles = int(out)
    assert articles % BATCH == 0 or articles == len(reference.snap["articles"]), articles
    print(f"readers saw {processed} processed documents, the dashboard {articles} articles, of {total}")

    assert child.finish() == 0, child.tail()
    # The ingest met the dashboard's connection at a later load and waited, saying so.
    assert re.search(r"busy.*retrying", child.output), child.tail()
    assert diff(snapshot(db), reference.snap) == []


# ---------------------------------------------------------------------------------------------- disk


def run_cli(*args: str, api_url: str | None, preexec: Callable[[], None] | None = None
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "newsetl.cli", *args], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT, cwd=REPO, env=newsetl_env(api_url), preexec_fn=preexec)


PREFECT_INFO = re.compile(r"^\d\d:\d\d:\d\d\.\d+ \| INFO ")


def assert_clear_error(proc: subprocess.CompletedProcess[str], *cause: str) -> None:
    """Failed, and said why in one line: not a traceback, not pages of noise.

    Prefect's INFO lines are the normal progress log and do not count; a few one-line WARNING/ERROR
    log lines (a task finished Failed) are tolerated; a `Traceback` is not.
    """
    assert proc.returncode != 0, proc.stdout[-2000:]
    noise = [line for line in proc.stderr.splitlines() if line.strip() and not PREFECT_INFO.match(line)]
    if "Traceback" in proc.stderr:
        raise UnclearError(f"{len(noise)} lines on stderr beyond progress, incl. a traceback:\n"
                           + "\n".join(noise[:60]))
    if len(noise) > 6:
        raise UnclearError(f"{len(noise)} lines on stderr beyond progress:\n" + "\n".join(noise[:60]))
    message = [line for line in noise if line.startswith("newsetl:")]
    if not message:
        raise UnclearError("no `newsetl: ...` message on stderr:\n" + "\n".join(noise))
    for c in cause:
        if c.lower() not in message[-1].lower():
            raise UnclearError(f"the message does not say {c!r}: {message[-1]}")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[str, str], Path]]:
    """Mount tmpfs file systems of a given size (and remount them: bigger, read-only); unmounted after."""
    mounted: list[Path] = []

    def mount(name: str, options: str) -> Path:
        where = tmp_path / name
        if where in mounted:
            proc = subprocess.run(["mount", "-o", f"remount,{options}", str(where)], capture_output=True, text=True)
        else:
            where.mkdir(exist_ok=True)
            proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True,
                                  text=True)
            if proc.returncode == 0:
                mounted.append(where)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN): {proc.stderr.strip()}")
        return where

    try:
        yield mount
    finally:
        for where in reversed(mounted):
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_disk_full_during_a_load_is_one_clear_error_and_leaves_whole_batches(
    corpus: Path, api_url: str, reference: Reference, small_disk: Callable[[str, str], Path]
) -> None:
    """The warehouse's file system fills up mid-run (a real ENOSPC from a tmpfs a third the size of the
    clean warehouse). Then space is freed and the run repeated: it must end equal to the clean run."""
    # A third, not a half: the clean file also holds mostly empty blocks of small tables (the lineage table
    # added ~1.8 MB of them), so a run fitted into half of it (the WAL unfolded) and never filled the disk.
    size_kb = max(512, reference.db.stat().st_size // 3 // 1024)
    disk = small_disk("disk", f"size={size_kb}k")
    db = disk / "w.duckdb"
    proc = run_cli("ingest", str(corpus), "--db", str(db), "--batch-size", str(BATCH), "--workers", "0",
                   api_url=api_url)
    assert proc.returncode != 0, "the run claims success on a full disk"
    state = check_committed_state(db, reference.db)
    assert 0 < state["articles"] < len(reference.snap["articles"]), state  # it did fill up mid-run
    small_disk("disk", f"size={size_kb * 8}k")
    ingest(corpus, db, api_url)
    problems = diff(snapshot(db), reference.snap, limit=6)
    assert problems == [], "\n".join(problems)
    assert_clear_error(proc, "no space left on device")


def fsize_limit(limit: int) -> Callable[[], None]:
    """preexec_fn: every file the ingest writes stops growing at `limit` bytes (EFBIG), as on a full
    disk; SIGXFSZ is ignored so the write fails with an error instead of killing the process."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_full_disk_everywhere_fails_the_run_and_loses_no_document(corpus: Path, api_url: str,
                                                                   reference: Reference, tmp_path: Path) -> None:
    """No file may grow past 8 MB (RLIMIT_FSIZE, no mount needed): temp files and the warehouse alike.
    A full disk is the machine's fault, not the documents': none of them may be quarantined for it,
    because a quarantined document is known and the next run would skip it for good."""
    db = tmp_path / "w.duckdb"
    proc = run_cli("ingest", str(corpus), "--db", str(db), "--batch-size", str(BATCH), "--workers", "0",
                   api_url=api_url, preexec=fsize_limit(8 * 1024 * 1024))
    if db.exists():
        check_committed_state(db, reference.db)
        with duckdb.connect(str(db), read_only=True) as con:
            blamed = con.execute("SELECT count(*), any_value(detail) FROM quarantine "
                                 "WHERE stage <> 'read' AND stage <> 'decode'").fetchall()[0]
        assert blamed[0] == 0, f"{blamed[0]} documents quarantined for a full disk, e.g. {blamed[1]}"
        # The run row tells the operator it failed and why (not `running` forever).
        with duckdb.connect(str(db), read_only=True) as con:
            runs = con.execute("SELECT status, message FROM runs").fetchall()
        assert [r[0] for r in runs] == ["failed"] and "too large" in (runs[0][1] or "").lower(), runs
    ingest(corpus, db, api_url)
    assert diff(snapshot(db), reference.snap) == []
    assert_clear_error(proc, "too large")


def test_read_only_warehouse_is_a_clear_error_and_untouched(corpus: Path, api_url: str, reference: Reference,
                                                           small_disk: Callable[[str, str], Path]) -> None:
    disk = small_disk("ro", "size=32m")
    db = disk / "w.duckdb"
    shutil.copy(reference.db, db)
    small_disk("ro", "ro")
    before = {p.name: p.read_bytes() for p in disk.iterdir()}
    proc = run_cli("ingest", str(corpus), "--db", str(db), "--batch-size", str(BATCH), "--workers", "0",
                   api_url=api_url)
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert {p.name: p.read_bytes() for p in disk.iterdir()} == before
    # Analysts can still read it.
    out = run_cli("sql", "SELECT count(*) FROM articles", "--db", str(db), "--format", "csv", api_url=None)
    assert out.returncode == 0 and out.stdout.splitlines()[1] == str(len(reference.snap["articles"])), out.stderr
    assert_clear_error(proc, "read-only")


def test_warehouse_path_under_a_regular_file_is_a_clear_error(corpus: Path, api_url: str, tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the warehouse directory should be\n")
    proc = run_cli("ingest", str(corpus), "--db", str(blocker / "w.duckdb"), "--workers", "0", api_url=api_url)
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert blocker.read_text() == "a file where the warehouse directory should be\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not_a_dir"]
    assert_clear_error(proc, str(blocker))
