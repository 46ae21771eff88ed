"""An error raised while a run stops is reported as the stop. The signal's exception is raised wherever the
run happens to be, and cleanup code it cuts into (a library that catches it, closes a pipe, then fails on
the closed pipe) can fail on its way out: CI once saw `newsetl ingest` exit 3 ("cannot write the warehouse:
OSError: [Errno 9] Bad file descriptor") after a SIGTERM. The user asked for a stop and got one (every batch
loads in one transaction): exit 130 and the interrupted line, the secondary error said after it. The same
error without a stop request is still a failure.

The real command runs in its own process (it sets its environment, malloc and logging up as a one-shot
process does), with the flow replaced by one that does exactly that, with a real signal."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

from newsetl.cli import EXIT_INTERRUPTED, EXIT_WAREHOUSE
from newsetl.tasks.stop import INTERRUPTED

REPO = Path(__file__).resolve().parents[2]
SCRIPT = """
import os, signal, sys
import newsetl.flows.ingest as ingest_flow
from newsetl.cli import main
from newsetl.tasks.stop import IngestInterrupted

def flow(**_):
    if sys.argv[1] == "stop":
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(3):  # bytecode boundaries, where Python runs the handler
                pass
        except IngestInterrupted:
            pass  # swallowed by the code it cut into, which then fails:
    raise OSError(9, "Bad file descriptor")

ingest_flow.ingest = flow
code = main(sys.argv[2:])
# the run's handler is gone with the run; the command's own (SIGTERM as Ctrl-C, from its start) stays
assert signal.getsignal(signal.SIGTERM) is signal.default_int_handler
sys.exit(code)
"""


class _Health(http.server.BaseHTTPRequestHandler):
    """A Prefect API that only answers its health check: the command checks a configured API before the
    run, and the replaced flow never calls it."""

    def do_GET(self) -> None:
        body = b"true" if self.path == "/api/health" else b"{}"
        self.send_response(200 if self.path == "/api/health" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def run(tmp_path: Path, stop: bool) -> subprocess.CompletedProcess[str]:
    src = tmp_path / "a.txt"
    src.write_text("Headline\n\nA body sentence that says something.\n", encoding="utf-8")
    # A configured API URL: the command starts no Prefect server of its own.
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health) as api:
        threading.Thread(target=api.serve_forever, daemon=True).start()
        env = {**os.environ, "PREFECT_API_URL": f"http://127.0.0.1:{api.server_address[1]}/api"}
        try:
            return subprocess.run([sys.executable, "-c", SCRIPT, "stop" if stop else "fail", "ingest", str(src),
                                   "--db", str(tmp_path / "w.duckdb"), "--workers", "1", "--quiet"],
                                  capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
        finally:
            api.shutdown()


def test_an_error_while_stopping_is_the_stop(tmp_path: Path) -> None:
    proc = run(tmp_path, stop=True)
    assert proc.returncode == EXIT_INTERRUPTED, proc.stderr
    assert INTERRUPTED in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert "while stopping: OSError: [Errno 9] Bad file descriptor" in proc.stderr, proc.stderr


def test_the_same_error_without_a_stop_is_a_failure(tmp_path: Path) -> None:
    proc = run(tmp_path, stop=False)
    assert proc.returncode == EXIT_WAREHOUSE, proc.stderr
    assert "cannot write the warehouse" in proc.stderr and "Bad file descriptor" in proc.stderr, proc.stderr
    assert "interrupted" not in proc.stderr, proc.stderr
