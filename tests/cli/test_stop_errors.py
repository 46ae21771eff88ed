"""An error raised while a run stops is reported as the stop. The signal's exception is raised wherever the
run happens to be, and cleanup code it cuts into (a library that catches it, closes a pipe, then fails on
the closed pipe) can fail on its way out: CI once saw `newsetl ingest` exit 3 ("cannot write the warehouse:
OSError: [Errno 9] Bad file descriptor") after a SIGTERM. The user asked for a stop and got one (every batch
loads in one transaction): exit 130 and the interrupted line, the secondary error said after it. The same
error without a stop request is still a failure. Here the flow is replaced by one that does exactly that,
with a real signal, in the real command."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

import newsetl.flows.ingest as ingest_flow
from newsetl.cli import EXIT_INTERRUPTED, EXIT_WAREHOUSE, main


def _fails_on_a_closed_pipe(stop_first: bool) -> Any:
    def flow(**_: Any) -> dict[str, Any]:
        if stop_first:
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                for _ in range(3):  # bytecode boundaries, where Python runs the handler
                    pass
            except ingest_flow.IngestInterrupted:
                pass  # swallowed by the code it cut into, which then fails:
        raise OSError(9, "Bad file descriptor")

    return flow


@pytest.fixture
def command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    # A configured API URL: the command starts no Prefect server (the replaced flow never calls it).
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    src = tmp_path / "a.txt"
    src.write_text("Headline\n\nA body sentence that says something.\n", encoding="utf-8")
    return ["ingest", str(src), "--db", str(tmp_path / "w.duckdb"), "--workers", "1", "--quiet"]


def test_an_error_while_stopping_is_the_stop(command: list[str], monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(ingest_flow, "ingest", _fails_on_a_closed_pipe(stop_first=True))
    assert main(command) == EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert ingest_flow.INTERRUPTED in err and "Traceback" not in err, err
    assert "while stopping: OSError: [Errno 9] Bad file descriptor" in err, err
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is gone with the run


def test_the_same_error_without_a_stop_is_a_failure(command: list[str], monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(ingest_flow, "ingest", _fails_on_a_closed_pipe(stop_first=False))
    assert main(command) == EXIT_WAREHOUSE
    err = capsys.readouterr().err
    assert "cannot write the warehouse" in err and "Bad file descriptor" in err and "interrupted" not in err, err
