"""`newsetl serve` end to end: a real Prefect server, real scheduled runs, a real warehouse, a clean stop.

One slow test (~45-70 s on 2 cores, most of it the Prefect server's start and the flow-run
processes' imports). It runs `newsetl serve` in a subprocess (`python -m newsetl.cli serve`) so it
can send the signal an operator or a service manager would send.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

T = TypeVar("T")

TEST_BUDGET_SECONDS = 180.0  # the whole test; a hang fails clearly instead of stalling CI
DEPLOYMENT = "newsetl-serve-test"
FINAL_STATES = {"COMPLETED", "CANCELLED"}

STORIES = {
    "ferry.txt": (
        "Harbour council approves new ferry timetable\n\n"
        "The harbour council approved a new ferry timetable on Tuesday after a long public consultation.\n\n"
        "Residents of the island had asked for an earlier first crossing and a later last one for years.\n\n"
        "The first boat will now leave at half past five, forty minutes earlier than before.\n"
    ),
    "library.txt": (
        "Town library reopens after two years of repairs\n\n"
        "The town library reopened on Saturday after two years of repairs to its roof and its heating.\n\n"
        "Hundreds of readers queued before the doors opened; most first loans were children's books.\n\n"
        "The librarian said the reading room would stay open until eight in the evening on weekdays.\n"
    ),
}


def _wait_for(what: str, probe: Callable[[], T | None], deadline: float, proc: subprocess.Popen[bytes],
              log: Path) -> T:
    """Poll `probe` until it returns a value; fail with the serve log if the process dies or time runs out."""
    while True:
        value = probe()
        if value is not None:
            return value
        if proc.poll() is not None:
            pytest.fail(f"serve exited with {proc.returncode} while waiting for {what}:\n{_tail(log)}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {TEST_BUDGET_SECONDS:.0f} s waiting for {what}:\n{_tail(log)}")
        time.sleep(0.5)


def _tail(log: Path, lines: int = 60) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else "(no log)"


def _api_url(log: Path) -> str | None:
    if not log.exists():
        return None
    match = re.search(r"Prefect API (http://\S+/api)", log.read_text(errors="replace"))
    return match.group(1) if match else None


def _post(url: str, body: dict[str, Any]) -> Any:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)


def _completed_runs(api: str) -> list[str] | None:
    """Ids of the deployment's completed flow runs once there are two, else None.

    A run that failed or crashed fails the test at once, with Prefect's message for it.
    """
    try:
        runs = _post(f"{api}/flow_runs/filter", {"deployments": {"name": {"any_": [DEPLOYMENT]}}})
    except OSError:
        return None  # the server is still starting
    bad = [r for r in runs if r["state_type"] in ("FAILED", "CRASHED")]
    if bad:
        pytest.fail(f"scheduled run {bad[0]['name']} ended {bad[0]['state_type']}: "
                    f"{(bad[0].get('state') or {}).get('message')}")
    done = [r["id"] for r in runs if r["state_type"] == "COMPLETED"]
    return done if len(done) >= 2 else None


def _port_open(api: str) -> bool:
    host, port = re.match(r"http://([^:/]+):(\d+)", api).groups()  # type: ignore[union-attr]
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, int(port))) == 0


def _start_serve(tmp_path: Path, source: str, name: str) -> tuple[subprocess.Popen[bytes], Path, Path]:
    """`newsetl serve SOURCE --every 3600` in a process group of its own (so that a signal can go to the
    group, as a terminal sends it), its client-side Prefect state in `tmp_path`. Returns (the process, the
    warehouse, the log holding its stdout and stderr)."""
    db = tmp_path / "warehouse" / "newsetl.duckdb"
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path / "client-prefect-home"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               DO_NOT_TRACK="1", PREFECT_RUNNER_POLL_FREQUENCY="1", NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
    cmd = [sys.executable, "-m", "newsetl.cli", "serve", source, "--db", str(db), "--every", "3600",
           "--name", name, "--server-port", "0"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    return proc, db, log


def test_serve_runs_on_schedule_lands_in_warehouse_and_stops_cleanly(tmp_path: Path) -> None:
    deadline = time.monotonic() + TEST_BUDGET_SECONDS
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name, text in STORIES.items():
        (inbox / name).write_text(text, encoding="utf-8")
    # A dump whose body is under a name newsetl does not know: `--field` must reach every scheduled run.
    (inbox / "dump.jsonl").write_text(json.dumps({"story": STORIES["ferry.txt"].replace("ferry", "tram")}) + "\n",
                                      encoding="utf-8")
    db = tmp_path / "warehouse" / "newsetl.duckdb"
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        # Client-side Prefect state of the serve process and its flow runs stays in the test's folder.
        PREFECT_HOME=str(tmp_path / "client-prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1",
        # The Runner looks for due runs every 10 s by default; 1 s keeps the test short.
        PREFECT_RUNNER_POLL_FREQUENCY="1",
    )
    cmd = [sys.executable, "-m", "newsetl.cli", "serve", str(inbox), "--db", str(db), "--every", "5",
           "--name", DEPLOYMENT, "--server-port", "0", "--field", "text=story"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    family: list[psutil.Process] = []
    try:
        api = _wait_for("the local Prefect server", lambda: _api_url(log), deadline, proc, log)
        # A second serve of the same warehouse is refused, naming the first: it used to start a server of its
        # own, delete the first one's deployment as left behind, and leave the first serving nothing.
        second = subprocess.run([*cmd[:cmd.index("--name")], "--name", "another-name", "--server-port", "0"],
                                cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 3, second.stderr[-2000:]
        assert f"is already served by another newsetl serve (pid {proc.pid}" in second.stderr, second.stderr
        completed = _wait_for("two completed scheduled runs", lambda: _completed_runs(api), deadline, proc,
                              log)
        # Everything serve started: the Prefect server, a flow run in flight, multiprocessing helpers.
        family = psutil.Process(proc.pid).children(recursive=True)
        assert any("server" in " ".join(p.cmdline()) for p in family), [p.cmdline() for p in family]

        described = {p.pid: " ".join(p.cmdline())[:200] for p in family}

        proc.send_signal(signal.SIGTERM)  # what systemd / docker stop / kill send
        try:
            code = proc.wait(max(5.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pytest.fail(f"serve did not stop within the test budget after SIGTERM:\n{_tail(log)}")
        # Children exit with their parent or just after it (the server gets SIGTERM and a grace period).
        _, alive = psutil.wait_procs(family, timeout=max(1.0, min(30.0, deadline - time.monotonic())))
        leftovers = [described.get(p.pid, str(p.pid)) for p in alive]
    finally:
        # Safety net for a failing run only: never leave a server or a flow run behind.
        for p in [psutil.Process(proc.pid) if proc.poll() is None else None, *family]:
            if p is not None and p.is_running():
                p.kill()
        proc.wait(10)

    serve_log = _tail(log)
    assert code == 0, serve_log
    assert "deployment 'ingest/newsetl-serve-test' deleted, no run left unfinished" in serve_log, serve_log
    assert not leftovers, leftovers
    assert not _port_open(api), "the Prefect server still listens after serve stopped"

    # What Prefect recorded, read from the server's own SQLite database now that the server is gone
    # (it lives next to the warehouse). Not paused: deleted, and no run left Scheduled/Pending/Running.
    with sqlite3.connect(db.parent / ".prefect" / "prefect.db") as con:
        deployments = con.execute("SELECT name, paused FROM deployment").fetchall()
        states = con.execute("SELECT id, state_type FROM flow_run").fetchall()
    assert deployments == [], deployments
    assert {s for _, s in states} <= FINAL_STATES, states
    prefect_completed = {i.replace("-", "") for i, s in states if s == "COMPLETED"}
    assert {c.replace("-", "") for c in completed} <= prefect_completed

    # The warehouse: one row per run with its Prefect flow run id; the stories loaded exactly once.
    with duckdb.connect(str(db), read_only=True) as con:
        runs = con.execute("SELECT flow_run_id, status FROM runs ORDER BY started_at").fetchall()
        documents = con.execute("SELECT source_uri FROM documents ORDER BY 1").fetchall()
        quarantined = con.execute("SELECT count(*) FROM quarantine").fetchall()[0][0]
    done = [fr for fr, status in runs if status == "completed"]
    assert len(done) >= 2 and all(done), runs
    assert {fr.replace("-", "") for fr in done} <= prefect_completed  # each row is a real scheduled run
    assert "running" not in {status for _, status in runs}, runs  # a run stopped mid-way says so
    # the re-runs added nothing; the dump's record loaded through the deployment's field mapping
    assert [Path(uri).name for (uri,) in documents] == sorted([*STORIES, "dump.jsonl#1"]), documents
    assert quarantined == 0


def test_every_runs_once_at_start_not_one_interval_later(tmp_path: Path) -> None:
    """`--every 3600`: the first run at once (it used to come an interval later), as --help says."""
    deadline = time.monotonic() + TEST_BUDGET_SECONDS
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    name, text = next(iter(STORIES.items()))
    (inbox / name).write_text(text, encoding="utf-8")
    proc, db, log = _start_serve(tmp_path, str(inbox), f"{DEPLOYMENT}-first")
    try:
        api = _wait_for("the local Prefect server", lambda: _api_url(log), deadline, proc, log)

        def one_completed() -> list[Any] | None:
            try:
                runs = _post(f"{api}/flow_runs/filter",
                             {"flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}})
            except OSError:
                return None
            return runs or None

        _wait_for("the first run, due at once", one_completed, deadline, proc, log)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, _tail(log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT status FROM runs").fetchall() == [("completed",)]


class _HeldStory(http.server.BaseHTTPRequestHandler):
    """Answers a story only once the test releases it: a scheduled run that is surely mid-way."""

    requested = threading.Event()
    release = threading.Event()

    def do_GET(self) -> None:
        type(self).requested.set()
        type(self).release.wait(60)
        body = STORIES["library.txt"].encode("utf-8")
        with contextlib.suppress(OSError):  # the stopped run has hung up by now
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_stop_during_a_run_cancels_it_without_a_traceback(tmp_path: Path) -> None:
    """SIGTERM while a scheduled run waits for its source: the run ends Cancelled in Prefect and
    `cancelled` in the warehouse, and the log holds no traceback (the flow used to raise its stop out
    of the flow function, and Prefect's engine printed two tracebacks for a stop that was asked for)."""
    deadline = time.monotonic() + TEST_BUDGET_SECONDS
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HeldStory)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/library.txt"
    try:
        proc, db, log = _start_serve(tmp_path, url, f"{DEPLOYMENT}-stop")
        try:
            _wait_for("the run's request to the source", lambda: _HeldStory.requested.is_set() or None, deadline,
                      proc, log)
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(max(5.0, deadline - time.monotonic()))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    finally:
        _HeldStory.release.set()
        server.shutdown()
        server.server_close()

    serve_log = _tail(log, 200)
    assert code == 0, serve_log
    assert "Traceback" not in serve_log and "Crash detected" not in serve_log, serve_log
    assert "no run left unfinished" in serve_log, serve_log
    with sqlite3.connect(db.parent / ".prefect" / "prefect.db") as con:
        states = con.execute("SELECT state_type, state_name FROM flow_run").fetchall()
    assert states == [("CANCELLED", "Cancelled")], states
    with duckdb.connect(str(db), read_only=True) as con:
        runs = con.execute("SELECT status, message FROM runs").fetchall()
    assert [status for status, _ in runs] == ["cancelled"], runs
    assert runs[0][1].startswith("stopped by SIGTERM"), runs


def _run_process(serve: psutil.Process) -> psutil.Process | None:
    """The flow run's process, once the Runner has spawned it (multiprocessing's spawn start-up)."""
    for child in serve.children():
        with contextlib.suppress(psutil.Error):
            line = " ".join(child.cmdline())
            if "spawn_main" in line and "resource_tracker" not in line:
                return child
    return None


def test_ctrl_c_as_a_run_starts_stops_serve_without_a_traceback(tmp_path: Path) -> None:
    """Ctrl-C reaches the whole process group. Sent the moment a run's process is spawned (still importing
    Prefect for seconds), that process printed a KeyboardInterrupt traceback from multiprocessing's spawn
    under the serve's clean stop (a user trial). It now starts with SIGINT blocked: the serve alone hears
    the terminal and stops the run through Prefect, as it does for a SIGTERM."""
    deadline = time.monotonic() + TEST_BUDGET_SECONDS
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "library.txt").write_text(STORIES["library.txt"], encoding="utf-8")
    proc, db, log = _start_serve(tmp_path, str(inbox), f"{DEPLOYMENT}-ctrl-c")
    family: list[psutil.Process] = []
    try:
        serve = psutil.Process(proc.pid)
        deadline_spawn = time.monotonic() + TEST_BUDGET_SECONDS / 2
        run = None
        while run is None and proc.poll() is None and time.monotonic() < deadline_spawn:
            run = _run_process(serve)
            time.sleep(0.02)
        assert run is not None, f"no run process was spawned:\n{_tail(log)}"
        family = serve.children(recursive=True)
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        try:
            code = proc.wait(max(5.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pytest.fail(f"serve did not stop within the test budget after Ctrl-C:\n{_tail(log)}")
        psutil.wait_procs(family, timeout=max(1.0, min(30.0, deadline - time.monotonic())))
    finally:
        for p in [psutil.Process(proc.pid) if proc.poll() is None else None, *family]:
            if p is not None and p.is_running():
                p.kill()
        proc.wait(10)

    serve_log = _tail(log, 200)
    assert code == 0, serve_log
    assert "Traceback" not in serve_log and "KeyboardInterrupt" not in serve_log, serve_log
    assert "no run left unfinished" in serve_log, serve_log
    if db.exists():  # the stop can come before the run has written anything
        with duckdb.connect(str(db), read_only=True) as con:
            statuses = {status for (status,) in con.execute("SELECT status FROM runs").fetchall()}
        assert statuses <= {"cancelled", "completed"}, statuses
