"""Stopping a run on request: SIGINT/SIGTERM handling for the ingest flow.

A signal asks the run in this process to stop. Where nothing is being written the handler raises at
once; during a write (a batch load, the re-clean, the run row, the start of the worker pool) it waits
for the write to end, so that a batch commits or rolls back whole and the run row says `cancelled`.
Module state is reached from the flow's body only through these functions: Prefect's Runner (`newsetl
serve`) may pickle the flow function, and an Event holds a lock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


class IngestInterrupted(Exception):
    """The run was asked to stop (Ctrl-C, SIGTERM): batches loaded so far stay, the run is `cancelled`."""


# Set (by the CLI's SIGINT/SIGTERM handler) to stop a run in this process: no further file is read
# and no further batch loaded; the batch being loaded commits or rolls back as a whole.
STOP = threading.Event()
# What a stop request waits for, while the run is in a step that must not be cut in half: a write (a
# batch load, the re-clean, the run row) or the start of the worker pool (a worker whose start-up state
# is cut off mid-send dies with a traceback of its own). Anywhere else the handler raises at once:
# reading and processing write nothing, and a batch processed but not loaded is simply new again next run.
_deferring: list[str] = []
INTERRUPTED = "interrupted: batches loaded so far are kept; run it again to load the rest"


@contextlib.contextmanager
def stop_waits_for(step: str) -> Iterator[None]:
    """A step a stop waits for (a write, the pool's start); `step` is what the stop message says it waits for."""
    _deferring.append(step)
    try:
        yield
    finally:
        _deferring.pop()

# The handler `stop_on_signals` installed, if any: the flow re-installs it for SIGTERM, which Prefect's
# engine takes over for the length of a flow run (to crash the run and re-raise the signal).
_stop_handler: Callable[[int, Any], None] | None = None
# The signal that set STOP, for the run row's reason (None when no signal did).
_last_signal: str | None = None


@dataclass
class StopRequest:
    """What `stop_on_signals` received: the first signal's name, None while none came. It outlives the
    block (STOP is cleared on leaving it), so that the caller can tell an error raised while the run was
    stopping (an exception raised by the handler at an arbitrary point of cleanup code) from a failure."""

    signal: str | None = None


@contextlib.contextmanager
def stop_on_signals(say: Callable[[str], None], second_abandons: bool = True) -> Iterator[StopRequest]:
    """While open, SIGINT and SIGTERM ask this process's run to stop: no further read, the batch being
    loaded commits or rolls back, the run row says `cancelled`, the flow raises IngestInterrupted.
    A second signal interrupts at once (KeyboardInterrupt), unless `second_abandons` is False: where
    signals come from a supervisor rather than a person (SIGTERM to the whole process group, then
    Prefect's cancellation of the run), the second is no request to hurry, and abandoning the run
    row's write left it `running`. Main thread only."""
    global _stop_handler, _last_signal
    request = StopRequest()

    def handler(signum: int, frame: Any) -> None:
        if STOP.is_set():
            if not second_abandons:
                return
            raise KeyboardInterrupt
        STOP.set()
        _hush_what_a_stop_cuts_into()
        name = signal.Signals(signum).name
        request.signal = name
        global _last_signal
        _last_signal = name
        if not _deferring:
            # Nothing is being written (setting up, reading, waiting for workers): stop here and now.
            say(f"newsetl: {name}: stopping")
            raise IngestInterrupted(INTERRUPTED)
        again = " (again to abandon it)" if second_abandons else ""
        say(f"newsetl: {name}: stopping after {_deferring[-1]}{again}")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    _stop_handler = handler
    raise_exceptions = logging.raiseExceptions
    try:
        with warnings.catch_warnings():  # the filter a stop adds goes with the block
            yield request
    finally:
        _stop_handler = None
        _last_signal = None
        logging.raiseExceptions = raise_exceptions
        for sig, old in previous.items():
            signal.signal(sig, old)
        STOP.clear()


def _hush_what_a_stop_cuts_into() -> None:
    """The stop raises wherever the main thread is (outside a write): sometimes inside a logging handler's
    emit, which then printed "--- Logging error ---" and sixty lines of traceback, or between Prefect's
    making a coroutine and awaiting it, which Python reported as "RuntimeWarning: coroutine ... was never
    awaited" (a user trial; one CI rehearsal in many). Both are the stop itself, not something an operator
    can act on: from the stop on, neither is printed (until `stop_on_signals`' block ends)."""
    logging.raiseExceptions = False
    warnings.filterwarnings("ignore", message=r"coroutine .* was never awaited", category=RuntimeWarning)


def stop_requested() -> bool:
    return STOP.is_set()


def stop_signal() -> str | None:
    """The name of the signal that asked this process's run to stop (None: none did)."""
    return _last_signal


def _say_on_stderr(message: str) -> None:
    # os.write, not print or logging: this runs in a signal handler, which may have cut into a write
    # holding the lock of sys.stderr or of a logging handler.
    with contextlib.suppress(OSError):
        os.write(2, (message + "\n").encode("utf-8", "replace"))


class QuietTracebacks(logging.Filter):
    """Prefect logs a failed task or flow with its traceback. For a stop asked for, or an error the CLI
    explains in one line (warehouse busy, disk full, bad rules file), that traceback is noise for an
    operator: for an exception `quiet` accepts, the line stays and the traceback goes."""

    def __init__(self, quiet: Callable[[BaseException], bool]) -> None:
        super().__init__()
        self.quiet = quiet

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and self.quiet(exc):
            record.exc_info = None
            record.exc_text = None
        return True


# Where Prefect's console ("" is the root logger) and API handlers hang.
_PREFECT_LOGGERS = ("", "prefect", "prefect.flow_runs", "prefect.task_runs")


def prefect_log_handlers() -> set[logging.Handler]:
    return {h for name in _PREFECT_LOGGERS for h in logging.getLogger(name).handlers}


@contextlib.contextmanager
def _stops_logged_without_traceback() -> Iterator[None]:
    quiet = QuietTracebacks(lambda exc: isinstance(exc, IngestInterrupted))
    handlers = prefect_log_handlers()
    for h in handlers:
        h.addFilter(quiet)
    try:
        yield
    finally:
        for h in handlers:
            h.removeFilter(quiet)


@contextlib.contextmanager
def stops_handled_here() -> Iterator[None]:
    """For the length of a run whose process has no stop handler of ours (a run started by `newsetl
    serve`'s Runner or by a Prefect worker): SIGINT and SIGTERM stop it as they stop `newsetl ingest`,
    the batch being loaded commits or rolls back and the row says `cancelled`. Prefect's own handler
    raised wherever the main thread was: inside a DuckDB query that became "Query interrupted" and a
    `failed` row, and a stop during the row's own write left it `running`."""
    if _stop_handler is not None or threading.current_thread() is not threading.main_thread():
        yield
        return
    with stop_on_signals(_say_on_stderr, second_abandons=False), _stops_logged_without_traceback():
        yield


def reinstall_stop_handler() -> None:
    """Prefect's engine takes SIGTERM over for the length of a flow run (and restores ours after it)."""
    if _stop_handler is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop_handler)



def as_stop(exc: BaseException) -> BaseException:
    """What a run that raised `exc` ends with: IngestInterrupted if a stop was asked for and `exc` is
    what the signal's exception became in the code it cut into. The handler raises where the main
    thread is; inside a DuckDB query, DuckDB checks Python's signals, runs the handler and raises its
    own `RuntimeError: Query interrupted` instead (seen on a loaded machine: the run row said `failed`)."""
    if isinstance(exc, IngestInterrupted | KeyboardInterrupt) or not stop_requested():
        return exc
    stopped = IngestInterrupted(INTERRUPTED)
    stopped.__cause__ = exc  # kept in the run row's reason and the run report
    return stopped


