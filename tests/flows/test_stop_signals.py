"""The ingest's SIGINT/SIGTERM handler, signalled for real in this process: outside a step that must not
be cut in half it stops at once; inside one (a write, the worker pool's start) it lets the step finish,
says what it waits for, and a second signal abandons the step."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from newsetl.tasks.stop import IngestInterrupted, stop_on_signals, stop_requested, stop_waits_for


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_outside_a_protected_step_stops_at_once(sig: signal.Signals) -> None:
    said: list[str] = []
    with pytest.raises(IngestInterrupted), stop_on_signals(said.append) as request:
        assert request.signal is None
        os.kill(os.getpid(), sig)
        for _ in range(3):  # bytecode boundaries, where Python runs the handler
            pass
    assert said == [f"newsetl: {sig.name}: stopping"]
    assert not stop_requested()  # the request ends with the run that was asked
    assert request.signal == sig.name  # but its record stays, for the caller's error handling


def test_a_signal_while_the_workers_start_waits_for_them() -> None:
    said: list[str] = []
    with stop_on_signals(said.append):
        with stop_waits_for("the workers have started"):
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(3):
                pass
            assert stop_requested()  # asked, not raised: the step goes on to its end
        assert said == ["newsetl: SIGINT: stopping after the workers have started (again to abandon it)"]


def test_a_second_signal_abandons_the_write() -> None:
    said: list[str] = []
    with stop_on_signals(said.append), stop_waits_for("the batch being loaded"):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(3):
            pass
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(3):
                pass
    assert said == ["newsetl: SIGTERM: stopping after the batch being loaded (again to abandon it)"]


def test_a_signal_during_a_duckdb_query_is_still_the_stop() -> None:
    """DuckDB checks Python's signals while a query runs: our handler runs there and raises, and DuckDB
    raises its own `RuntimeError: Query interrupted` instead. The run still ends as stopped (row
    `cancelled`), with DuckDB's error as the cause (on a loaded machine the row once said `failed`)."""
    import threading

    import duckdb

    from newsetl.tasks.stop import as_stop

    said: list[str] = []
    with stop_on_signals(said.append):
        con = duckdb.connect()
        # One thread, as the ingest's batch loads run (LOAD_THREADS): the main thread runs the query's
        # tasks and checks for signals between them. With DuckDB's default threads, cancelling waited
        # for the other threads' tasks to end: 0.3 s in two runs, 152 s in the third.
        con.execute("SET threads = 1")
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM)).start()
        with pytest.raises(Exception) as err:  # whatever DuckDB raises: that is the point
            con.execute("SELECT sum(i) FROM range(100000000000) t(i)").fetchall()
        assert not isinstance(err.value, IngestInterrupted)
        stopped = as_stop(err.value)
        assert isinstance(stopped, IngestInterrupted) and stopped.__cause__ is err.value
    assert said == ["newsetl: SIGTERM: stopping"]
    # Without a stop request the same error is the error.
    assert as_stop(err.value) is err.value


def test_a_signal_while_publishing_lets_the_run_publish(prefect_harness: None, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C after the last batch, while the snapshot for dashboards is written: the publication finishes
    (the run's rows are all in). Cut short, it left the old snapshot until the next run."""
    from newsetl.flows.ingest import ingest
    from newsetl.tasks import publish as publish_mod
    from newsetl.warehouse.snapshot import snapshot_path

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "story.txt").write_text(
        "Council approves ferry timetable\n\nThe council approved the new ferry timetable on Tuesday after a "
        "long debate about the winter crossings, the chair said.\n", encoding="utf-8")
    db = tmp_path / "w.duckdb"
    real = publish_mod.publish

    def signalled(*args: Any, **kw: Any) -> Any:
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(3):  # bytecode boundaries, where Python runs the handler
            pass
        return real(*args, **kw)

    monkeypatch.setattr(publish_mod, "publish", signalled)
    said: list[str] = []
    with stop_on_signals(said.append):
        summary = ingest(sources=[str(tmp_path / "in")], db=str(db), workers=0)
    assert said == ["newsetl: SIGINT: stopping after publishing the snapshot for dashboards (again to abandon it)"]
    assert summary["published"] is not None and snapshot_path(db).exists()
    assert summary["loaded"] == 1


def test_a_run_with_no_handler_of_its_caller_stops_cleanly_on_a_supervisors_two_sigterms(
        prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run `newsetl serve`'s Runner started has no handler of the CLI: SIGTERM came to Prefect's, which
    raised wherever the main thread was (inside a DuckDB query: "Query interrupted", a `failed` row), and
    a stop often brings two SIGTERMs (one to the process group, then Prefect's cancellation), the second
    of which abandoned the row's write (left `running`). The flow now handles them itself: the step being
    written ends, the row says `cancelled` by SIGTERM, the second signal changes nothing."""
    import duckdb

    from newsetl.flows import ingest as ingest_mod
    from newsetl.tasks.stop import _stop_handler

    assert _stop_handler is None
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "story.txt").write_text(
        "Council approves ferry timetable\n\nThe council approved the new ferry timetable on Tuesday after a "
        "long debate about the winter crossings, the chair said.\n", encoding="utf-8")
    db = tmp_path / "w.duckdb"
    handlers: list[str] = []

    def signalled(*args: Any, **kw: Any) -> int:
        handlers.append(getattr(signal.getsignal(signal.SIGTERM), "__qualname__", ""))
        for _ in range(2):
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(3):  # bytecode boundaries, where Python runs the handler
                pass
        return 0

    monkeypatch.setattr(ingest_mod, "reclean_task", signalled)
    with pytest.raises(IngestInterrupted):
        ingest_mod.ingest(sources=[str(tmp_path / "in")], db=str(db), workers=0)
    assert handlers == ["stop_on_signals.<locals>.handler"]
    with duckdb.connect(str(db), read_only=True) as con:
        (status, message), = con.execute("SELECT status, message FROM runs").fetchall()
        loaded = con.execute("SELECT count(*) FROM articles").fetchall()
    assert status == "cancelled" and message.startswith("stopped by SIGTERM"), message
    assert loaded == [(1,)]
    assert signal.getsignal(signal.SIGTERM) is not None and not stop_requested()


def test_a_stop_hushes_the_logging_errors_and_unawaited_coroutines_it_causes(
        capsys: pytest.CaptureFixture[str]) -> None:
    """The stop raises wherever the main thread is: inside a logging handler's emit it made Python print
    "--- Logging error ---" and a traceback, between Prefect's making a coroutine and awaiting it a
    "coroutine ... was never awaited" RuntimeWarning (a user trial; a CI rehearsal). From the stop until
    the block ends neither is printed; after it, both are as before."""
    import logging
    import warnings

    class Cut(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            try:
                raise IngestInterrupted("raised by the stop inside emit")
            except Exception:
                self.handleError(record)

    log = logging.getLogger("newsetl.test.cut")
    log.propagate = False
    log.addHandler(Cut())
    try:
        with stop_on_signals(lambda _: None):
            with pytest.raises(IngestInterrupted):
                os.kill(os.getpid(), signal.SIGINT)
                for _ in range(3):  # bytecode boundaries, where Python runs the handler
                    pass
            log.warning("a line being written when the stop came")
            with warnings.catch_warnings(record=True) as seen:
                warnings.warn("coroutine 'EventLoopThread._run_call' was never awaited", RuntimeWarning, stacklevel=1)
            assert seen == []
        assert "Logging error" not in capsys.readouterr().err
        assert logging.raiseExceptions
        log.warning("the same after the block")
        assert "Logging error" in capsys.readouterr().err
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            warnings.warn("coroutine 'EventLoopThread._run_call' was never awaited", RuntimeWarning, stacklevel=1)
        assert len(seen) == 1
    finally:
        log.handlers.clear()
