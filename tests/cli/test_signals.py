"""Ctrl-C and SIGTERM as an operator (and systemd) send them: to the whole process group of a real
`newsetl ingest`, while it loads. The run stops within seconds, says so in one line without a traceback,
exits 130, leaves its run row `cancelled`, and a re-run loads the rest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from newsetl.synth.corpus import generate

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DOCS = 600
STOP_SECONDS = 60


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("signals") / "corpus"
    generate(folder, DOCS, seed=14, dup_share=0.0)
    return folder


def start(corpus: Path, db: Path, home: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    env.pop("PREFECT_API_URL", None)  # as cron runs it: the CLI starts its temporary server
    # Its own session, so that killpg reaches exactly the ingest and what it started (as a terminal's
    # Ctrl-C reaches the foreground process group).
    return subprocess.Popen([sys.executable, "-m", "newsetl.cli", "ingest", str(corpus), "--db", str(db),
                             "--batch-size", "50"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for_first_batch(proc: subprocess.Popen[str], db: Path, timeout: float = 180.0) -> None:
    """Until the ingest has committed to the warehouse (its WAL exists): it is loading now."""
    deadline = time.monotonic() + timeout
    while not Path(f"{db}.wal").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            _, err = proc.communicate()
            pytest.fail(f"the ingest never started loading (exit {proc.returncode}):\n{err[-3000:]}")
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_signal_to_the_process_group_stops_the_run_and_a_rerun_completes(
        corpus: Path, tmp_path: Path, sig: signal.Signals) -> None:
    db = tmp_path / "w.duckdb"
    proc = start(corpus, db, tmp_path / "prefect")
    wait_for_first_batch(proc, db)
    time.sleep(1.0)
    sent = time.monotonic()
    os.killpg(proc.pid, sig)
    try:
        # Typically 1-3 s. The bound is for a machine as loaded as CI's, where the stop path's waits (the
        # drain of Prefect's log and event queues, the temporary server's shutdown) take their time.
        _, err = proc.communicate(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGUSR1)  # the command prints where each of its threads is
        time.sleep(2.0)
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        pytest.fail(f"still running {STOP_SECONDS} s after {sig.name}:\n{err[-12000:]}")
    took = time.monotonic() - sent
    assert proc.returncode == 130, (proc.returncode, err[-3000:])
    # An error that cleanup code the signal cut into raised on its way out is said after the stop, in
    # one line of its own (tests/cli/test_stop_errors.py); nothing else may look like a failure.
    plain = "\n".join(line for line in err.splitlines() if not line.startswith("newsetl: (while stopping:"))
    assert "Traceback" not in err and "Error" not in plain.replace("IngestInterrupted", ""), err
    assert "interrupted" in err and len(err.strip().splitlines()) <= 3, err
    assert took < STOP_SECONDS
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT status FROM runs").fetchall() == [("cancelled",)]
        loaded = con.execute("SELECT count(*) FROM articles").fetchall()[0][0]
        # the stopped run's books balance too: what it read ahead and never loaded is named
        ((counts,),) = con.execute("SELECT counts FROM runs").fetchall()
        c = json.loads(counts)
        assert c["read"] == c["loaded"] + c["skipped_known"] + c["skipped_other"] + c["quarantined"] + c["not_loaded"]
    assert loaded < DOCS  # stopped part-way
    # The stop line says what the run kept (the progress line counted documents read, not loaded).
    assert f"(this run loaded {loaded} articles)" in err, err

    rerun = start(corpus, db, tmp_path / "prefect")
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err[-3000:]
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT status FROM runs ORDER BY started_at").fetchall() == [("cancelled",),
                                                                                       ("completed",)]
        assert con.execute("SELECT count(*) FROM articles").fetchall()[0][0] == DOCS
        assert con.execute("SELECT count(*) FROM sources").fetchall()[0][0] == DOCS


def test_sigterm_before_the_run_starts_stops_like_ctrl_c(corpus: Path, tmp_path: Path) -> None:
    """SIGTERM (timeout, systemd, docker stop) in the first seconds, while the command takes its lock and
    starts its Prefect server: it killed the process silently with 143; it says "interrupted" and exits
    130 like Ctrl-C, and the file it began is still a warehouse the next run sets up and loads."""
    db = tmp_path / "w.duckdb"
    proc = start(corpus, db, tmp_path / "prefect")
    deadline = time.monotonic() + 120
    while not Path(f"{db}.lock").exists():  # the lock is taken first, seconds before the run starts
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=STOP_SECONDS)
    assert proc.returncode == 130, (proc.returncode, err[-3000:])
    assert "interrupted" in err and "Traceback" not in err, err
    rerun = start(corpus, db, tmp_path / "prefect")
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err[-3000:]
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM articles").fetchall()[0][0] == DOCS


HOLD_THE_FILE = """
import duckdb, sys
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.read()
"""


def signal_while_waiting(tmp_path: Path, command: list[str], sig: signal.Signals) -> tuple[int, str, float]:
    """A notebook holds a new warehouse; `newsetl <command> --wait 120` waits for it and says so; then `sig`
    to its process group. Returns (exit code, stderr, seconds from the signal to its exit)."""
    from newsetl.warehouse.connect import migrate, writer

    db = tmp_path / "w.duckdb"
    with writer(db) as con:
        migrate(con)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_THE_FILE, str(db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        proc = subprocess.Popen([sys.executable, "-m", "newsetl.cli", *command, "--db", str(db), "--wait", "120"],
                                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        assert proc.stderr is not None
        said = proc.stderr.readline()
        assert "is busy" in said and "retrying" in said, said
        os.killpg(proc.pid, sig)
        t0 = time.monotonic()
        try:
            _, err = proc.communicate(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        return proc.returncode, err, time.monotonic() - t0
    finally:
        holder.communicate("", timeout=60)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_reclean_waiting_for_a_busy_warehouse_stops_at_once(tmp_path: Path, sig: signal.Signals) -> None:
    """A notebook holds the warehouse; `newsetl reclean` waits for it (up to --wait). A Ctrl-C during that
    wait was deferred as if a slice were being written: the command said "stopping after the slice of
    stored articles being re-cleaned" and waited out the whole --wait (40 s, a user trial). Now it stops
    at once, exit 130, in two lines, and writes no run row."""
    code, err, stopped_in = signal_while_waiting(tmp_path, ["reclean"], sig)
    assert code == 130, err
    assert stopped_in < 10, f"stopped {stopped_in:.1f} s after the signal"
    assert "Traceback" not in err and "stopping after" not in err, err
    assert err.strip().splitlines()[-1].startswith("newsetl: interrupted"), err
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM runs").fetchall()[0][0] == 0


@pytest.mark.parametrize("command", [["sql", "SELECT count(*) FROM articles"], ["stats"]], ids=["sql", "stats"])
def test_sigterm_to_a_reader_waiting_for_a_busy_warehouse_says_interrupted(tmp_path: Path,
                                                                           command: list[str]) -> None:
    """`newsetl sql` or `stats` waiting for a busy warehouse: Ctrl-C said "interrupted" with exit 130, but
    SIGTERM (timeout, systemd) killed it silently with -15 (a user trial). Now both say so alike."""
    code, err, _ = signal_while_waiting(tmp_path, command, signal.SIGTERM)
    assert code == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "newsetl: interrupted", err
