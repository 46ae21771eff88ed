"""The `newsetl` command line: ingest, serve, reclean, sql, stats, export, report (`newsetl --help`; the
README and docs/operations.md describe each)."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import errno
import faulthandler
import itertools
import json
import logging
import os
import sys
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from newsetl.tasks.prefect_server import TemporaryServer

# Prefect's telemetry tries the network, which this pipeline's hosts often do not have.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


def _db(args: argparse.Namespace) -> Path:
    from newsetl.warehouse.connect import db_path

    return db_path(args.db)


# Exit codes (documented in --help and the README): what a scheduler acts on.
EXIT_OK = 0  # every input loaded, skipped or quarantined (quarantine is a normal outcome)
EXIT_FAILED = 1  # the run failed (its counts did not balance, an unexpected error)
EXIT_USAGE = 2  # a mistake in the command: bad option, rules file, SQL, view or output format
EXIT_WAREHOUSE = 3  # the warehouse is busy (held by another process), unwritable, not a warehouse, or damaged
EXIT_NOT_FOUND = 4  # a named source does not exist or is a URL of a scheme not fetched (nothing was ingested)
EXIT_NOTHING = 5  # no supported input at all (an empty folder, only unsupported files)
EXIT_NOT_PUBLISHED = 6  # the run completed, but its snapshot for dashboards or its report was not published
EXIT_PREFECT = 7  # the Prefect API server could not be started or reached (nothing ran)
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM: the batches loaded so far are kept, the run is `cancelled`

EXIT_CODES_HELP = """exit codes:
  0    every input was loaded, skipped (known) or quarantined
  1    the run failed (e.g. its counts did not balance); the run row says why
  2    usage error: bad option, rules file, SQL, view or output format
  3    the warehouse is busy (another process holds it), unwritable, not a warehouse, or damaged
  4    a named source (path, glob, @list) does not exist, or is a URL newsetl does not fetch
       (ftp://, file://); nothing was ingested
  5    nothing to ingest: no supported input found
  6    the run completed, but its snapshot for dashboards or its HTML report could not be published
       (the next run publishes again)
  7    the Prefect API server could not be started or reached (PREFECT_API_URL, or the local one)
  130  interrupted (Ctrl-C / SIGTERM): loaded batches are kept, a re-run loads the rest
"""


def missing_sources(sources: Sequence[str], globs_may_match_later: bool = False) -> list[str]:
    """What is wrong with each source that names nothing: a path that does not exist, a glob that matches
    nothing, an @list file that cannot be read, a URL of a scheme newsetl does not fetch. Checked before
    anything starts, so a typo costs no server and no run. `globs_may_match_later` (serve: files arrive
    between runs): a glob needs only its folder (the part before the first wildcard) to exist."""
    import glob
    import itertools

    from newsetl.sources.discover import expand_glob, is_url, unsupported_scheme, url_scheme

    missing = []
    for source in sources:
        if is_url(source):
            continue
        path = source[1:] if source.startswith("@") else source
        if glob.has_magic(path) and not source.startswith("@"):
            if globs_may_match_later:
                fixed = Path(*[part for part in itertools.takewhile(lambda p: not glob.has_magic(p), Path(path).parts)])
                if not fixed.is_dir():
                    missing.append(f"no such directory: {fixed} (of {source})")
            elif not expand_glob(path):
                missing.append(f"no file matches the glob {source}")
        elif not (os.path.exists(path) or os.path.islink(path)):
            scheme = url_scheme(source)
            missing.append(unsupported_scheme(source, scheme) if scheme else f"no such file or directory: {source}")
    return missing


def cmd_ingest(args: argparse.Namespace) -> int:
    # Only what the checks below need is imported first: Prefect's import alone takes seconds on a busy
    # machine, and a typo'd path or a warehouse held by a reader should be said at once.
    from newsetl.warehouse.connect import (
        WRITE_WAIT_ENV,
        WarehouseBusy,
        WarehouseError,
        check_intact,
        check_path_writable,
        check_warehouse,
        discarded_if_refused,
        run_lock,
        writer,
    )

    if missing := missing_sources(args.sources):
        for problem in missing:
            print(f"newsetl: {problem}", file=sys.stderr)
        return EXIT_NOT_FOUND
    if isinstance(fields := _field_mapping(args), str):
        print(f"newsetl: {fields}", file=sys.stderr)
        return EXIT_USAGE
    if bad := _bad_rules_or_publishers(args):
        print(f"newsetl: {bad}", file=sys.stderr)
        return EXIT_USAGE
    if unreachable := _unreachable_api():
        print(f"newsetl: {unreachable}", file=sys.stderr)
        return EXIT_PREFECT
    db = str(_db(args))
    with contextlib.ExitStack() as locked:
        try:
            # A path no run could write (a directory, a path under a file, a read-only place) is refused
            # before anything is made beside it.
            check_path_writable(db)
            # The lock first, outside the flow: a second ingest is refused with one line, no failed flow run.
            lock = locked.enter_context(run_lock(db))
            # A reader holding the file (a notebook, a BI tool) is found now, before a server is started
            # and a run row written: the run fails fast (or waits --wait seconds), naming the holder.
            # A DuckDB file of the user's own (or a published snapshot), one cut short, or a file that is
            # not DuckDB's is refused here too, untouched, and the lock file, if this made it, goes with
            # the refusal.
            with discarded_if_refused(lock), writer(db, wait_seconds=args.wait) as con:
                check_intact(con, db)
                check_warehouse(con, db)
        except (WarehouseBusy, WarehouseError) as exc:
            print(f"newsetl: {exc}", file=sys.stderr)
            return EXIT_WAREHOUSE
        # How long each write of the run waits for a reader to let go of the file.
        os.environ[WRITE_WAIT_ENV] = str(args.wait)
        _return_freed_memory()
        _start_fork_server(args.workers)
        server = _start_prefect_server(locked)
        return _ingest_locked(args, db, server, fields)


def _bad_rules_or_publishers(args: argparse.Namespace) -> str | None:
    """What is wrong with the rules and publisher files (options or environment), checked before a
    warehouse file, a lock or a run row exists: a typo'd --rules made a `failed` run (and, with a
    typo'd --db too, a new warehouse) before it was refused."""
    from newsetl.text.rules import user_files_problem

    return user_files_problem(_rules_files(args), _env_files(args.publishers, "NEWSETL_PUBLISHERS"))


def _start_fork_server(workers: int | None) -> None:
    """Start the worker pool's fork server now, before Prefect is imported and its temporary server started.

    The fork server imports and warms up the text core (trafilatura, lxml, ftfy, the language and line
    models: ~2 s of CPU, far more on a loaded machine) in its own process; started here it does so while
    this process spends 5-10 s importing Prefect and starting its API server, instead of after them when
    the flow opens its pool. The pool later finds it running (multiprocessing keeps one fork server per
    process) and forks warm workers at once. Only where the pool would use one: more than one worker,
    a platform with fork servers."""
    import multiprocessing
    import multiprocessing.forkserver

    # From newsetl.tasks itself, not tasks.pool: that would load the whole text core into this process.
    from newsetl.tasks import WORKER_PRELOAD, usable_cores

    n_workers = usable_cores() if workers is None else workers
    if n_workers <= 1 or "forkserver" not in multiprocessing.get_all_start_methods():
        return
    multiprocessing.get_context("forkserver").set_forkserver_preload([WORKER_PRELOAD])
    with contextlib.suppress(Exception):  # the pool starts it itself if this fails
        multiprocessing.forkserver.ensure_running()


# glibc's mallopt parameters (malloc.h).
_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8
# Which allocator pyarrow uses for its buffers (see `_return_freed_memory`).
ARROW_POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"


def _return_freed_memory() -> None:
    """Have this process (the ingest's reader and writer) give freed batches back to the system.

    glibc serves an allocation over its mmap threshold (128 KB) with its own mapping, unmapped on free;
    but its *dynamic* threshold rises to the size of each such block freed, so after the first pages and
    pickled batches of a run every later one comes from the heap, where it stays resident once freed.
    Fixing the threshold (which turns the dynamic one off) and capping the per-thread arenas (Prefect's
    and DuckDB's threads each got one) measured 852 -> 709 MB for this process on the 735 dev pages,
    with no loss of speed there or on the 20k re-scrape stream. Linux with glibc only; elsewhere nothing
    changes.

    Arrow allocates its tables' buffers from its own allocator (mimalloc in pyarrow's wheels), which keeps
    freed memory for reuse: in this process, which receives every batch's tables, and in each worker,
    which builds them. Given to glibc's malloc instead (Arrow's "system" pool), they are returned like the
    rest. Measured, two runs each, interleaved: the 735 dev pages 1,604-1,626 MB of RSS summed over the
    processes instead of 1,687-1,706 (PSS 1,167-1,207 vs 1,270-1,276), 0.803 vs 0.804 of trafilatura's
    pages/s; the 20k re-scrape stream 2.19-2.20 GB instead of 2.27-2.28, 419.7-420.2 vs 412.2-425.3
    docs/s. Set in the environment, so that the worker pool's fork server (started next) and its workers
    inherit it; a pool the user chose ($ARROW_DEFAULT_MEMORY_POOL) is kept."""
    import ctypes
    import platform

    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 128 * 1024)
        libc.mallopt(_M_ARENA_MAX, 2)
    if ARROW_POOL_ENV not in os.environ:
        os.environ[ARROW_POOL_ENV] = "system"
        if "pyarrow" in sys.modules:  # imported already: its default pool was chosen at import
            import pyarrow

            pyarrow.set_memory_pool(pyarrow.system_memory_pool())


def _start_prefect_server(stack: contextlib.ExitStack) -> TemporaryServer | None:
    """Start the temporary Prefect API server now, before Prefect and the flow modules are imported: its
    ~8 s to become healthy (mostly its own imports) then overlap this process's ~3 s of imports instead of
    following them. Only when PREFECT_API_URL is not in the environment; should a Prefect profile or file
    configure a server after all, `_ingest_locked` stops this one unused. Stopped when `stack` closes at
    the latest (every way out of the run, Ctrl-C included)."""
    if os.environ.get("PREFECT_API_URL"):
        return None
    from newsetl.tasks.prefect_server import start_temporary_server

    try:
        server = start_temporary_server()
    except Exception:  # started again when the flow needs it, which then shows its error
        return None
    stack.callback(server.stop)
    return server


def _unreachable_api() -> str | None:
    """Why the Prefect API that PREFECT_API_URL names cannot serve a run (None: it answers, or none is set).
    Asked before anything is made beside the warehouse: found later, an `ingest` given a new --db left an
    empty warehouse file and its lock, a `serve` its serve lock (a user trial). (A profile's API, which only
    Prefect's slow import reads, is checked as the run starts.)"""
    from newsetl.tasks.prefect_server import PrefectServerError

    if not (api_url := os.environ.get("PREFECT_API_URL")):
        return None
    try:
        _require_api(api_url)
    except PrefectServerError as exc:
        return str(exc)
    return None


def _require_api(api_url: str) -> None:
    """Raise PrefectServerError when the configured Prefect API does not answer: said in one line with exit
    7 (as `serve` checks it), not Prefect's "unexpected error: RuntimeError: Failed to reach API" as the
    flow starts."""
    from newsetl.tasks.prefect_server import PrefectServerError, api_is_healthy

    if not api_is_healthy(api_url, timeout=10):
        raise PrefectServerError(f"the Prefect server at PREFECT_API_URL={api_url} is not reachable (GET "
                                 f"{api_url.rstrip('/')}/health failed); unset PREFECT_API_URL to run with a "
                                 "temporary server of the run's own")


def _ingest_locked(args: argparse.Namespace, db: str, server: TemporaryServer | None = None,
                   jsonl_fields: dict[str, str] | None = None) -> int:
    """The run, with the run lock held; `server`: the temporary Prefect server, already starting;
    `jsonl_fields`: the checked --field options."""
    if not args.verbose:
        # Prefect's console lines (per-task INFO, its summary dict, a "View at" link to a UI the temporary
        # server does not serve, websocket warnings) only with -v; they still reach the Prefect API.
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    from newsetl.flows.ingest import DEFAULT_BATCH_SIZE, ingest
    from newsetl.tasks.books import watching
    from newsetl.tasks.prefect_server import configured_api_url, use_temporary_server
    from newsetl.tasks.stop import INTERRUPTED, IngestInterrupted, StopRequest, stop_on_signals

    rules = _rules_files(args)
    _quiet_known_errors()
    progress = Progress(quiet=args.quiet)
    stopping = StopRequest()  # the handler's own, once installed
    try:
        with contextlib.ExitStack() as stack:
            temporary = configured_api_url() is None
            if temporary:
                # As cron runs it: no Prefect server configured. Start the temporary one ourselves, tied
                # to this process, rather than let Prefect start one that outlives a kill -9.
                use_temporary_server(stack, server)
            else:
                if server is not None:
                    server.stop()  # a profile configures a server: the one started early is not needed
                _require_api(str(configured_api_url()))
            _prefect_console(verbose=args.verbose, ui_link=not temporary)
            # Installed after the server: closed first, so the server stops after the flow has finished.
            stopping = stack.enter_context(stop_on_signals(progress.note))
            stack.enter_context(watching(progress.update))
            stack.enter_context(progress)
            batch_size = DEFAULT_BATCH_SIZE if args.batch_size is None else args.batch_size
            summary = ingest(sources=list(args.sources), db=db, batch_size=batch_size, rules_files=rules,
                             workers=args.workers, doc_seconds=args.doc_seconds, min_age=args.min_age,
                             take_lock=False,
                             publishers_files=_env_files(args.publishers, "NEWSETL_PUBLISHERS"),
                             jsonl_fields=jsonl_fields)
    except IngestInterrupted as exc:
        print(f"newsetl: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("newsetl: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if stopping.signal is not None:
            # The signal's exception is raised wherever the run is, and cleanup code it cut into can fail
            # on its way out (CI once saw an EBADF): the stop is what happened. The batches are whole
            # either way (each loads in one transaction); the run row says `cancelled`.
            print(f"newsetl: {INTERRUPTED}", file=sys.stderr)
            print(f"newsetl: (while stopping: {type(exc).__name__}: {exc})", file=sys.stderr)
            return EXIT_INTERRUPTED
        return _run_failed(exc, db)
    if not args.quiet:
        print_summary(summary)
    published = _print_published(summary.get("published"), quiet=args.quiet)
    # A symlinked folder met while walking is counted (a skip) but holds nothing this run read.
    linked = (summary.get("skipped_reasons") or {}).get("symlinked_folder", 0)
    found = summary["read"] - summary.get("not_found", 0) - summary.get("unsupported", 0) - linked
    if found == 0 and not summary.get("held_back"):  # files held back by --min-age are inputs, not yet read
        print(f"newsetl: nothing to ingest: no supported input (.txt, .html, .jsonl, .json, .warc, "
              f"optionally .gz, or URLs) in {' '.join(args.sources)}"
              + (f" ({linked} symlinked folder(s) not walked into: name them as sources to read them)"
                 if linked else ""), file=sys.stderr)
        return EXIT_NOTHING
    return EXIT_OK if published else EXIT_NOT_PUBLISHED


def _run_failed(exc: Exception, db: str) -> int:
    """One line and an exit code for a run that failed, after a line for each note the run added (what it
    loaded before it failed, its report): the cause stays the last line, where `tail -1` and cron's mail
    subject find it; an unexpected error propagates (a traceback)."""
    for note in getattr(exc, "__notes__", ()):
        print(f"newsetl: {note}", file=sys.stderr)
    return _run_failed_code(exc, db)


def _run_failed_code(exc: Exception, db: str) -> int:
    import duckdb

    from newsetl.tasks.pool import PoolStartError
    from newsetl.tasks.prefect_server import PrefectServerError
    from newsetl.text.publishers import PublishersFileError
    from newsetl.text.rules import RulesError
    from newsetl.warehouse.connect import WarehouseBusy, WarehouseError
    from newsetl.warehouse.lineage import AccountingError

    if isinstance(exc, AccountingError | PoolStartError):
        print(f"newsetl: run failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if isinstance(exc, PrefectServerError):
        print(f"newsetl: {exc}", file=sys.stderr)
        return EXIT_PREFECT
    if isinstance(exc, WarehouseBusy | WarehouseError):
        print(f"newsetl: {exc}", file=sys.stderr)
        return EXIT_WAREHOUSE
    if isinstance(exc, RulesError | PublishersFileError):
        print(f"newsetl: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if isinstance(exc, duckdb.Error | OSError):
        # Disk full, a read-only path, a file that is not a warehouse: committed batches stay, the failed
        # one was rolled back; say what happened in one line.
        print(f"newsetl: cannot write the warehouse {db}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_WAREHOUSE
    raise exc


def _prefect_console(verbose: bool, ui_link: bool) -> None:
    """Without -v, mute Prefect's console handler (on the root logger) if logging was set up before the
    environment setting in _ingest_locked could apply (a caller that imported Prefect first)."""
    for handler in logging.getLogger().handlers:
        if type(handler).__name__ == "PrefectConsoleHandler":
            if not verbose:
                handler.setLevel(logging.CRITICAL)
            if not ui_link:
                handler.addFilter(_no_ui_link)


def _no_ui_link(record: logging.LogRecord) -> bool:
    """Drop Prefect's "View at http://…/runs/…" line: the temporary server has no UI (the link answers
    404). `newsetl serve`'s server has one, and prints its address."""
    return not str(record.msg).startswith("View at ")


class Progress:
    """One live line on a terminal (documents done of those read so far, docs/s, ETA, quarantined),
    plain lines every few seconds off a terminal, nothing with --quiet. On stderr: stdout is the summary."""

    PLAIN_EVERY = 10.0

    def __init__(self, quiet: bool = False) -> None:
        import time

        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()
        self.last_plain = self.started
        self._live: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        import time

        self.started = self.last_plain = time.monotonic()
        if self.tty and not self.quiet:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            self._live = RichProgress(TextColumn("ingest"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                                      TextColumn("{task.fields[extra]}"),
                                      console=Console(file=sys.stderr), transient=True)
            self._live.start()
            self._task = self._live.add_task("ingest", total=None, rate="", extra="reading...")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def note(self, line: str) -> None:
        if self._live is not None:
            self._live.console.print(line)
        else:
            print(line, file=sys.stderr, flush=True)

    def update(self, counts: dict[str, int]) -> None:
        import time

        if self.quiet:
            return
        elapsed = max(time.monotonic() - self.started, 1e-6)
        done, read = counts["done"], counts["read"]
        rate = done / elapsed
        more_files = counts["files_done"] < counts["files"]
        eta = "" if more_files or rate <= 0 else f"ETA {max(read - done, 0) / rate:.0f} s"
        files = f"files {counts['files_done']}/{counts['files']}" if more_files else ""
        extra = "  ".join(x for x in (eta, f"quarantined {counts['quarantined']}", files) if x)
        if self._live is not None:
            self._live.update(self._task, completed=done, total=max(read, 1), rate=f"{rate:.0f} docs/s",
                              extra=extra)
        elif time.monotonic() - self.last_plain >= self.PLAIN_EVERY:
            self.last_plain = time.monotonic()
            print(f"newsetl ingest: {done}/{read} documents, {rate:.0f} docs/s, {extra}", file=sys.stderr,
                  flush=True)


def _is_known(exc: BaseException) -> bool:
    import duckdb

    from newsetl.tasks.stop import IngestInterrupted
    from newsetl.text.rules import RulesError
    from newsetl.warehouse.connect import WarehouseBusy, WarehouseError
    from newsetl.warehouse.lineage import AccountingError

    return isinstance(exc, WarehouseBusy | WarehouseError | RulesError | duckdb.Error | OSError | IngestInterrupted
                      | AccountingError)


def _quiet_known_errors() -> None:
    """Errors the CLI explains in one line are logged by Prefect without their traceback."""
    from newsetl.tasks.stop import QuietTracebacks, prefect_log_handlers

    quiet = QuietTracebacks(_is_known)
    for handler in prefect_log_handlers():
        handler.addFilter(quiet)


def print_summary(summary: dict[str, Any]) -> None:
    print()
    print(f"newsetl ingest: run {summary['run_id']} into {summary['db']}")
    unchanged = summary.get("unchanged") or 0
    print(f"  inputs read     {summary['read']:>8}"
          + (f"  ({unchanged} of them in files unchanged since a run recorded them: not read again)"
             if unchanged else ""))
    if summary.get("held_back"):
        print(f"  held back       {summary['held_back']:>8}  files modified in the last --min-age seconds: "
              "read by a later run")
    print(f"  articles loaded {summary['loaded']:>8}")
    again = summary.get("refused_again") or 0
    print(f"  skipped (known) {summary['skipped_known']:>8}"
          + (f"  ({again} of them refused again as an earlier run quarantined them: still failing, see "
             "quarantine_status)" if again else ""))
    if summary.get("skipped_other"):
        print(f"  skipped (other) {summary['skipped_other']:>8}  " + ", ".join(
            f"{k}={v}" for k, v in summary["skipped_reasons"].items()))
    print(f"  quarantined     {summary['quarantined']:>8}")
    for reason, n in summary["quarantine_reasons"].items():
        print(f"      {reason:<40} {n:>6}")
    if summary["removed_by_category"]:
        print("  boilerplate removed by category:")
        for cat, n in sorted(summary["removed_by_category"].items(), key=lambda kv: -kv[1]):
            print(f"      {cat:<40} {n:>6}")
    if summary.get("recleaned"):
        # the re-clean's `learned` removals are not among the new articles' spans above (a user trial)
        print(f"  re-cleaned      {summary['recleaned']:>8}  stored articles, of lines learned as boilerplate")
    if summary["dedup"]:
        print("  dedup: " + ", ".join(f"{k}={v}" for k, v in summary["dedup"].items()))
    seconds = dict(summary["seconds"])
    total = seconds.pop("total", None)
    # Stage times add up the batches processed in parallel worker processes, so "process" can exceed
    # the wall-clock time of the run: say so rather than print two numbers that seem to contradict.
    print(f"  time: {total} s wall-clock; per stage, summed over parallel batches: "
          + ", ".join(f"{k} {v} s" for k, v in seconds.items()))
    if summary.get("run_report"):
        print(f"  run report (markdown): {summary['run_report']}")


def _open_read_only(args: argparse.Namespace, sandbox: bool = False) -> Any:
    """A read-only connection, or None after saying why not (busy past --wait, no warehouse, a snapshot
    moved away from its Parquet files).

    `sandbox`: for SQL the analyst writes. Read-only alone still lets a statement write files
    (`COPY ... TO`), read any file the user can, install or load extensions and change settings;
    without external access and with the configuration locked it can only read the warehouse (and, for
    a snapshot, the generations folder whose Parquet files its views read)."""
    from newsetl.warehouse.connect import WarehouseBusy, WarehouseError, connect
    from newsetl.warehouse.snapshot import published_folder

    try:
        con = connect(_db(args), read_only=True, wait_seconds=args.wait)
    except (WarehouseBusy, WarehouseError) as exc:
        print(f"newsetl: {exc}", file=sys.stderr)
        return None
    parquet = published_folder(con)
    moved = _moved_snapshot(_db(args), parquet)
    if moved:
        print(f"newsetl: {moved}", file=sys.stderr)
        con.close()
        return None
    if sandbox:
        # A snapshot's views read the Parquet files of its generations folder: that folder stays readable,
        # every other file does not. Without it, `newsetl sql --db` on the snapshot (what the docs tell an
        # analyst to do during a load) failed with "file system operations are disabled by configuration".
        if parquet is not None:
            con.execute("SET allowed_directories = ?", [[f"{parquet}/"]])
        con.execute("SET enable_external_access = false")
        con.execute("SET autoinstall_known_extensions = false")
        con.execute("SET autoload_known_extensions = false")
        con.execute("SET lock_configuration = true")
    return con


def _moved_snapshot(db: Path, parquet: Path | None) -> str:
    """Why the snapshot `db`, whose views read the generations folder `parquet`, cannot be read where it
    is (empty: it can, or `db` is no snapshot: `parquet` None).

    Its views name their Parquet files by absolute path; after the folder is moved or copied they read the
    old place's files or none, and the query failed with DuckDB's "file system operations are disabled"
    or "No files found" (a user trial), which does not say what happened or what to do. A snapshot file
    alone (no folder beside it) that still reads an existing folder is fine: that is where its data is."""
    from newsetl.warehouse.snapshot import folder_read_by

    if parquet is None:
        return ""
    here = folder_read_by(db)
    if parquet.is_dir() and (here is None or parquet.resolve() == here):
        return ""
    if here is None:
        return (f"{db} is a snapshot whose views read the Parquet files of {parquet}, which is gone (moved "
                "or deleted); open the snapshot that sits beside its warehouse, or publish one again there "
                "with `newsetl reclean --db WAREHOUSE`")
    warehouse = here.with_suffix(".duckdb")
    redo = (f"publish it again where it is now with `newsetl reclean --db {warehouse}`" if warehouse.exists()
            else f"copy its warehouse ({warehouse.name}) beside it and run `newsetl reclean --db {warehouse}`")
    return (f"{db} is a snapshot published in {parquet.parent}: its views read the Parquet files of "
            f"{parquet} by absolute path, not those of {here} (the folder was moved or copied); {redo}, "
            f"or open it at {parquet.parent}")


def _holds_nothing(con: Any, args: argparse.Namespace, command: str) -> bool:
    """Say so and return True when the file has no table and no view: an ingest stopped before it set the
    warehouse up leaves such a file, and `stats` would otherwise fail on a missing view it names."""
    from newsetl.warehouse.connect import user_objects

    if user_objects(con):
        return False
    print(f"newsetl {command}: {_db(args)} holds no warehouse yet (no tables: an ingest stopped before it "
          "set them up?); run `newsetl ingest`", file=sys.stderr)
    return True


# What an analyst's SQL may be on a snapshot, whose Parquet folder the sandbox leaves readable: DuckDB
# would let a COPY or EXPORT write into an allowed folder (over the published files) too.
_SNAPSHOT_STATEMENTS = ("SELECT", "EXPLAIN")


# A token without spaces up to this long is printed whole: an id (64 hex characters), a URL or a path cut
# short is one the user copies into the next query and finds nothing with.
WHOLE_TOKEN = 300
# Rows of a table whose cells set its column widths (see _print_rows).
WIDTH_ROWS = 1000


def _print_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], max_width: int = 60) -> None:
    """A plain table; text longer than `max_width` is cut with "…" (--format csv/json print it whole),
    ids, URLs and paths are not."""
    def cell(v: Any) -> str:
        if v is None:
            s = "NULL"
        elif isinstance(v, bytes):
            s = _blob_text(v)
        else:
            s = str(v).replace("\n", "\\n")
        if len(s) <= max_width or (len(s) <= WHOLE_TOKEN and not any(c.isspace() for c in s)):
            return s
        return s[: max_width - 1] + "…"

    # Column widths from the header and the first WIDTH_ROWS rows, so the table starts at once: measuring
    # every row first kept `newsetl sql "SELECT * FROM range(20000000)" | head -2` waiting a minute (a
    # user trial). A longer cell further down widens its own line only.
    head = [[cell(c) for c in columns], *[[cell(v) for v in row] for row in rows[:WIDTH_ROWS]]]
    widths = [max(_display_width(r[i]) for r in head) for i in range(len(columns))]
    for i, row in enumerate(itertools.chain(head, ([cell(v) for v in row] for row in rows[WIDTH_ROWS:]))):
        print("  ".join(v + " " * (w - _display_width(v)) for v, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def cmd_sql(args: argparse.Namespace) -> int:
    import duckdb

    from newsetl.warehouse.snapshot import published_folder

    con = _open_read_only(args, sandbox=True)
    if con is None:
        return EXIT_WAREHOUSE
    snapshot_folder = published_folder(con)
    try:
        statements = duckdb.extract_statements(args.query)
        if len(statements) != 1:
            # Several would run and show only the last one's rows; none (an empty string, a comment) has none.
            print(f"newsetl sql: give one SQL statement ({len(statements)} given)", file=sys.stderr)
            return EXIT_USAGE
        if snapshot_folder is not None:
            kinds = {st.type.name for st in statements}
            if not kinds <= set(_SNAPSHOT_STATEMENTS):
                print(f"newsetl sql: on a snapshot only queries run ({', '.join(_SNAPSHOT_STATEMENTS)}), "
                      f"not {', '.join(sorted(kinds - set(_SNAPSHOT_STATEMENTS)))}", file=sys.stderr)
                return EXIT_USAGE
        def query() -> tuple[list[str], list[str], list[Any]] | None:
            cur = con.execute(args.query)
            if cur.description is None:
                return None
            return [d[0] for d in cur.description], [str(d[1]) for d in cur.description], cur.fetchall()

        result = _interruptible(con, query)
        if result is None:
            return EXIT_OK
        columns, types, rows = result
    except duckdb.Error as exc:
        # A file an ingest has only begun (or a stopped one left) has no tables yet: say that, not
        # "Catalog Error: Table with name runs does not exist! Did you mean duckdb_constraints?".
        if isinstance(exc, duckdb.CatalogException) and _holds_nothing(con, args, "sql"):
            return EXIT_WAREHOUSE
        print(f"newsetl sql: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        con.close()
    if args.format == "json":
        # A JSON column (runs.params, articles.repairs ...) comes out of DuckDB as its text: written as the
        # value it holds, as `export` writes it, not as a string a reader has to parse again.
        nested = [t == "JSON" for t in types]
        for row in rows:
            print(json.dumps({c: _json_text(v) if j else _json_value(v)
                              for c, v, j in zip(columns, row, nested, strict=True)}, default=str,
                             ensure_ascii=False, allow_nan=False))
    elif args.format == "csv":
        import csv

        w = csv.writer(sys.stdout)
        w.writerow(columns)
        w.writerows([_csv_value(v) for v in row] for row in rows)
    else:
        _print_rows(columns, rows)
    return EXIT_OK


_T = TypeVar("_T")


def _interruptible(con: Any, work: Callable[[], _T]) -> _T:
    """`work()` (DuckDB calls on `con`) in a helper thread while this one waits, so that Ctrl-C reaches
    Python: the query is then interrupted (`con.interrupt()`) and KeyboardInterrupt raised here (exit 130).
    Run in the main thread, a long query did not see SIGINT at all: a cross join ran on for ten minutes,
    holding the warehouse, through two Ctrl-C (a user trial)."""
    import threading

    box: dict[str, Any] = {}
    done = threading.Event()  # waited on, not the thread: a join that Ctrl-C cut short can return early

    def run() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:  # handed to the waiting thread, which raises it
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name="newsetl-query", daemon=True).start()
    try:
        while not done.wait(0.2):
            pass
    except KeyboardInterrupt:
        con.interrupt()
        done.wait(30)  # the connection is closed after, which it refuses while a call runs
        raise
    if "error" in box:
        raise box["error"]
    value: _T = box["value"]
    return value


def _one_line(exc: BaseException) -> str:
    """An error as one line: DuckDB's messages span several (the error, then LINE 1: and a caret)."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip() and line.strip() != "^")
    return text or type(exc).__name__


STATS_QUERIES = (
    # `recleaned` from the runs row itself: a `newsetl reclean` run counts nothing else, and the view
    # cannot gain the column on a warehouse that `stats`, read-only, cannot migrate
    ("Last runs", "SELECT h.run_id, h.status, h.started_at, h.seconds, h.read, h.loaded, h.skipped_known, "
                  "COALESCE(CAST(r.counts->>'skipped_other' AS BIGINT), 0) AS skipped_other, h.quarantined, "
                  # NULL for a crashed run: not known (`warehouse.load.mark_crashed_runs`)
                  "CASE WHEN h.status = 'crashed' THEN CAST(r.counts->>'not_loaded' AS BIGINT) "
                  "ELSE COALESCE(CAST(r.counts->>'not_loaded' AS BIGINT), 0) END AS not_loaded, "
                  "CAST(r.counts->>'recleaned' AS BIGINT) AS recleaned, "
                  "CAST(r.counts->>'recleaned_by_rules' AS BIGINT) AS by_rules "
                  "FROM run_health h JOIN runs r USING (run_id) ORDER BY h.started_at DESC LIMIT 10"),
    ("Tables", "SELECT (SELECT count(*) FROM documents) AS documents, (SELECT count(*) FROM articles) AS articles, "
               "(SELECT count(*) FROM clusters) AS stories, (SELECT count(*) FROM removals) AS removals, "
               "(SELECT count(*) FROM quarantine) AS quarantined"),
    ("Boilerplate removed by publisher and category",
     "SELECT publisher, category, removals, articles FROM removals_by_publisher "
     "ORDER BY removals DESC, publisher, category LIMIT 25"),
    # `*`: `still_open` (inputs no later run loaded) is missing from a warehouse's view until a run
    # recreates it, and `stats` opens the warehouse read-only.
    ("Quarantine", "SELECT * EXCLUDE (last_seen) FROM quarantine_summary ORDER BY inputs DESC, stage, reason"),
    ("Learned boilerplate lines (recurring across stories of one publisher)",
     # The outlet's name where the publishers table knows its key (the lines are counted by key).
     "SELECT COALESCE(o.name, l.publisher) AS publisher, l.sample_text, l.clusters AS stories "
     "FROM boilerplate_lines l JOIN boilerplate_publishers p USING (publisher) "
     "LEFT JOIN publishers o ON o.publisher_key = l.publisher WHERE l.clusters >= 5 "
     "ORDER BY l.clusters DESC, l.publisher, l.sample_text LIMIT 15"),
    # Ties broken by name: the warehouse and its snapshot listed different publishers for the same data.
    ("Duplicates by publisher", "SELECT * FROM duplicate_rate ORDER BY articles DESC, publisher LIMIT 15"),
)


def cmd_stats(args: argparse.Namespace) -> int:
    import duckdb

    con = _open_read_only(args)
    if con is None:
        return EXIT_WAREHOUSE
    with con:
        if _holds_nothing(con, args, "stats"):
            return EXIT_WAREHOUSE
        for title, query in STATS_QUERIES:
            try:
                cur = con.execute(query)
                rows = cur.fetchall()
            except duckdb.Error as exc:
                # A damaged or foreign file opens but cannot answer: one line, not a traceback.
                print(f"newsetl stats: cannot read {_db(args)}: {_one_line(exc)}", file=sys.stderr)
                return EXIT_WAREHOUSE
            print(f"\n== {title}")
            _print_rows([d[0] for d in cur.description], rows)
        _note_dead_runs(con, args)
    return EXIT_OK


def _note_dead_runs(con: Any, args: argparse.Namespace) -> None:
    """A run still `running` while no process holds the run lock ended without finishing (killed, out of
    memory): the next run records it as crashed, with what it loaded. Said here, so that `stats` after a
    kill -9 does not show a run going on that is not (a user trial)."""
    from newsetl.warehouse.connect import run_lock_held

    try:
        dead = [r[0] for r in con.execute("SELECT run_id FROM runs WHERE status = 'running'").fetchall()]
    except Exception:  # a warehouse without runs: the queries above said so already
        return
    if dead and not run_lock_held(_db(args)):
        print(f"\nnote: {len(dead)} run(s) marked running ({', '.join(dead[:3])}{' ...' if len(dead) > 3 else ''}) "
              "but no ingest holds the warehouse: the process ended without finishing (killed?). Its batches "
              "are kept; the next ingest records it as crashed, with the counts of what it loaded.")


# .json is one JSON document (an array of objects), what json.load reads; .jsonl / .ndjson one object a line.
EXPORT_FORMATS = {".parquet": "PARQUET", ".csv": "CSV", ".json": "JSON, ARRAY true", ".jsonl": "JSON",
                  ".ndjson": "JSON"}


# DuckDB writes a timestamp into JSON as "2026-12-07 07:42:57.123+00", which is neither ISO 8601 nor RFC 3339
# (the offset must read +00:00): JSON Schema's date-time and Python 3.10's fromisoformat refuse it. A JSON
# export writes its timestamps as `sql --format json` does (`_iso`).
EXPORT_TIMESTAMP = {
    "TIMESTAMP WITH TIME ZONE": "strftime({col} AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%f+00:00')",
    "TIMESTAMP": "strftime({col}, '%Y-%m-%dT%H:%M:%S.%f')",
}


def _export_select(con: Any, view: str, *, json_out: bool) -> str:
    """The query `export` copies out: the view's columns, timestamps as ISO 8601 text for a JSON file
    (Parquet and CSV keep DuckDB's own types and text)."""
    source = f'SELECT * FROM "{view}"'
    if not json_out:
        return source
    columns = []
    for name, type_name, *_ in con.execute(f"DESCRIBE {source}").fetchall():
        col = '"' + name.replace('"', '""') + '"'
        shape = EXPORT_TIMESTAMP.get(type_name)
        columns.append(f"{shape.format(col=col)} AS {col}" if shape else col)
    return f'SELECT {", ".join(columns)} FROM "{view}"'


def cmd_export(args: argparse.Namespace) -> int:
    import duckdb

    out = Path(args.out)
    fmt = EXPORT_FORMATS.get(out.suffix.lower())
    if fmt is None:
        print(f"newsetl export: cannot tell the format of {args.out!r}: name it .parquet, .csv, .json "
              "or .jsonl", file=sys.stderr)
        return EXIT_USAGE
    if out.is_dir():
        print(f"newsetl export: {args.out} is a directory; give a file name ending in .parquet, .csv, .json or "
              ".jsonl",
              file=sys.stderr)
        return EXIT_USAGE
    if not out.absolute().parent.is_dir():
        print(f"newsetl export: the directory of {args.out} does not exist", file=sys.stderr)
        return EXIT_USAGE
    con = _open_read_only(args)
    if con is None:
        return EXIT_WAREHOUSE
    with con:
        if _holds_nothing(con, args, "export"):
            return EXIT_WAREHOUSE
        try:
            names = {r[0] for r in con.execute(
                "SELECT view_name FROM duckdb_views() WHERE NOT internal UNION "
                "SELECT table_name FROM duckdb_tables() WHERE NOT internal").fetchall()}
        except duckdb.Error as exc:
            print(f"newsetl export: cannot read {_db(args)}: {_one_line(exc)}", file=sys.stderr)
            return EXIT_WAREHOUSE
        if args.view not in names:
            print(f"newsetl export: no view or table {args.view!r}; one of: {', '.join(sorted(names))}",
                  file=sys.stderr)
            return EXIT_USAGE
        target = str(out).replace("'", "''")
        existed = out.exists()
        try:
            select = _export_select(con, args.view, json_out=fmt.startswith("JSON"))
            _interruptible(con, lambda: con.execute(f"COPY ({select}) TO '{target}' (FORMAT {fmt})"))
        except duckdb.Error as exc:
            # Reading the warehouse (a damaged file) fails here as writing the output does: name both, and
            # DuckDB's message says which file (it was "cannot write OUT" for a warehouse cut short).
            print(f"newsetl export: cannot export {args.view} of {_db(args)} to {args.out}: {_one_line(exc)}",
                  file=sys.stderr)
            return EXIT_WAREHOUSE
        except KeyboardInterrupt:
            if not existed:  # a file cut off mid-write is no export
                out.unlink(missing_ok=True)
            raise
    print(f"exported {args.view} to {args.out}")
    return EXIT_OK


def _print_published(done: dict[str, Any] | None, quiet: bool = False) -> bool:
    """Where the run published the snapshot for dashboards and the report (`publish`'s answer), or, on
    stderr and also when `quiet`, why it could not; returns whether it published."""
    if done and "error" in done:
        print(f"newsetl: the run is in the warehouse, but the snapshot for dashboards and the report were not "
              f"published: {done['error']} (they still show the previous run; the next run publishes again)",
              file=sys.stderr)
        return False
    if done and "report_error" in done:
        print(f"newsetl: the snapshot for dashboards is published ({done['snapshot']}), but the HTML report "
              f"could not be written: {done['report_error']} (the next run writes it again)", file=sys.stderr)
        return False
    if done and not quiet:
        print(f"  snapshot for dashboards: {done['snapshot']} ({done['seconds']['snapshot']} s)")
        print(f"  charts (HTML report): {done['report']} ({done['seconds']['report']} s)")
    return done is not None


def cmd_report(args: argparse.Namespace) -> int:
    """`newsetl report --db FILE --out report.html`: FILE is a warehouse or its snapshot (same view names;
    the snapshot never waits for an ingest)."""
    import duckdb

    from newsetl.tasks.report import report_path, write_report

    if args.out and not Path(args.out).absolute().parent.is_dir():
        # As `export` says it: a typo'd folder is not created silently.
        print(f"newsetl report: the directory of {args.out} does not exist", file=sys.stderr)
        return EXIT_USAGE
    if args.out and Path(args.out).suffix.lower() not in (".html", ".htm"):
        # As `export` refuses a format it does not write: the report is one HTML file, and HTML in
        # `charts.png` opens nowhere.
        print(f"newsetl report: {args.out}: the report is an HTML file (.html or .htm)", file=sys.stderr)
        return EXIT_USAGE
    con = _open_read_only(args)
    if con is None:
        return EXIT_WAREHOUSE
    if _holds_nothing(con, args, "report"):
        con.close()
        return EXIT_WAREHOUSE
    out = Path(args.out) if args.out else report_path(_db(args))
    try:
        with con:
            write_report(con, out, args.title or f"newsetl report: {_db(args).name}")
    except duckdb.CatalogException as exc:
        print(f"newsetl report: {exc.args[0].splitlines()[0]} (a warehouse of an older newsetl: its views "
              "are updated by the next `newsetl ingest`)", file=sys.stderr)
        return EXIT_USAGE
    except duckdb.Error as exc:
        # A damaged warehouse (a file cut short) is read only here, past the open: one line and exit 3, as
        # `stats` says it, not "unexpected error" with exit 1 (a user trial).
        print(f"newsetl report: cannot read {_db(args)}: {_one_line(exc)}", file=sys.stderr)
        return EXIT_WAREHOUSE
    except OSError as exc:
        hint = "" if args.out else " (--out FILE writes it elsewhere)"
        print(f"newsetl report: cannot write {out}: {exc}{hint}", file=sys.stderr)
        return EXIT_WAREHOUSE
    print(f"wrote {out}")
    return EXIT_OK


def cmd_reclean(args: argparse.Namespace) -> int:
    """Re-clean stored articles with the boilerplate lines learned so far, and with --apply-rules with the rules
    files' rules (idempotent, audited): a run of its own (`tasks/reclean.reclean_warehouse`); Ctrl-C or SIGTERM
    stop it between slices, exit 130."""
    import duckdb

    from newsetl.tasks.reclean import reclean_warehouse
    from newsetl.tasks.stop import IngestInterrupted
    from newsetl.text.rules import RulesError, load_rules
    from newsetl.warehouse.connect import WarehouseBusy, WarehouseError

    db = _db(args)
    if not db.exists():
        print(f"newsetl: no warehouse at {db}", file=sys.stderr)
        return EXIT_WAREHOUSE
    try:
        # --rules, then $NEWSETL_RULES, as an ingest reads them: the protect patterns the runs that kept a
        # line honoured are honoured here too (the environment's were ignored: a user trial).
        files = _rules_files(args)
        rules = load_rules(files)
        apply = rules.only_from(files) if args.apply_rules else None
        if apply is not None and not apply.rules:
            print("newsetl reclean: --apply-rules applies the removal rules of rules files: give one with "
                  "--rules FILE (or $NEWSETL_RULES) that has rules", file=sys.stderr)
            return EXIT_USAGE
        if files and not args.apply_rules and (added := len(rules.only_from(files).rules)) > 0:
            # Said, not silently dropped: a user who wrote a rule expects it to act somewhere.
            print(f"newsetl reclean: the {added} removal rule(s) of {', '.join(files)} apply to documents as "
                  "they are ingested; a re-clean removes learned lines only, honouring the files' protect "
                  "patterns (--apply-rules applies them to the stored articles too)", file=sys.stderr)
        done = reclean_warehouse(db, rules, wait_seconds=args.wait, say=lambda m: print(m, file=sys.stderr),
                                 apply=apply)
    except RulesError as exc:
        print(f"newsetl: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (WarehouseBusy, WarehouseError) as exc:
        print(f"newsetl: {exc}", file=sys.stderr)
        return EXIT_WAREHOUSE
    except duckdb.Error as exc:
        # A damaged warehouse (a file cut short) fails past the open: one line and exit 3, as an ingest
        # says it, not "unexpected error" with exit 1 (a user trial).
        print(f"newsetl: cannot write the warehouse {db}: {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr)
        return EXIT_WAREHOUSE
    except (IngestInterrupted, KeyboardInterrupt):
        print("newsetl: interrupted: the slices re-cleaned so far are kept; run it again for the rest",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    if done.status != "completed":
        print(f"newsetl: stopped after re-cleaning {done.recleaned} articles (kept); run it again for the rest",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"re-cleaned {done.recleaned} articles with learned boilerplate")
    if apply is not None:
        print(f"re-cleaned {done.by_rules} articles with the rules of {', '.join(files)}")
    published = _print_published(done.published)
    if done.run_report:
        print(f"  run report (markdown): {done.run_report}")
    return EXIT_OK if published else EXIT_NOT_PUBLISHED


def cmd_serve(args: argparse.Namespace) -> int:
    """`newsetl serve`: the exit code (0 after a clean stop, 2 if serving could not start for what the
    command asks, 3 if another serve serves the warehouse, 4 if a source does not exist, 7 if the Prefect
    server could not be started or reached)."""
    from newsetl.flows.serve import serve_ingest
    from newsetl.tasks.prefect_server import LocalServerConfig, PrefectServerError, ServeError
    from newsetl.warehouse.connect import WRITE_WAIT_ENV, WarehouseBusy, WarehouseError

    if isinstance(fields := _field_mapping(args), str):
        print(f"newsetl serve: {fields}", file=sys.stderr)
        return EXIT_USAGE
    # As `ingest` does: a drop folder that does not exist is a typo (or a mount not up) to say now, not
    # an hourly run that quarantines `discover:not_found` and loads nothing.
    if missing := missing_sources(args.sources, globs_may_match_later=True):
        for problem in missing:
            print(f"newsetl serve: {problem}", file=sys.stderr)
        return EXIT_NOT_FOUND
    if unreachable := _unreachable_api():
        print(f"newsetl serve: {unreachable}", file=sys.stderr)
        return EXIT_PREFECT
    if refused := _unwritable_warehouse(str(_db(args)), args.wait):
        # Said now, with exit 3 as `ingest` says it, not by every scheduled run an hour apart.
        print(f"newsetl serve: {refused}", file=sys.stderr)
        return EXIT_WAREHOUSE
    # Each flow run is a child of this process: it inherits how long its writes wait for a reader.
    os.environ[WRITE_WAIT_ENV] = str(args.wait)
    run_options = {"batch_size": args.batch_size, "workers": args.workers, "doc_seconds": args.doc_seconds,
                   "min_age": args.min_age or None}
    try:
        serve_ingest(list(args.sources), str(_db(args)), interval_seconds=args.every, cron=args.cron,
                     name=args.name, limit=args.limit, rules_files=_rules_files(args) or None,
                     server=LocalServerConfig(port=args.server_port), jsonl_fields=fields,
                     publishers_files=_env_files(args.publishers, "NEWSETL_PUBLISHERS") or None,
                     run_options=run_options)
    except ServeError as exc:
        print(f"newsetl serve: {exc}", file=sys.stderr)
        return EXIT_PREFECT if isinstance(exc, PrefectServerError) else EXIT_USAGE
    except (WarehouseBusy, WarehouseError) as exc:  # another serve serves it; its lock cannot be made
        print(f"newsetl serve: {exc}", file=sys.stderr)
        return EXIT_WAREHOUSE
    return EXIT_OK


def _unwritable_warehouse(db: str, wait: float) -> str | None:
    """Why no run could write the warehouse `db` that `serve` is given (None: a run can, or it does not exist
    yet: the first run makes it): a directory or a path no file can be made at, not a DuckDB file, cut short,
    a DuckDB file of other tables. Read-only: nothing is written, and a file busy past `wait` is left for the
    runs to check (each does, before it writes: `begin_run`)."""
    from newsetl.warehouse.connect import (
        WarehouseBusy,
        WarehouseError,
        check_intact,
        check_path_writable,
        check_warehouse,
        connect,
    )

    try:
        # before the serve's lock and the local Prefect server's home are made beside it
        check_path_writable(db)
    except WarehouseError as exc:
        return str(exc)
    if not os.path.exists(db):
        return None
    try:
        con = connect(db, read_only=True, wait_seconds=wait)
    except WarehouseBusy:
        return None
    except WarehouseError as exc:
        return str(exc)
    try:
        check_intact(con, db)
        check_warehouse(con, db)
    except WarehouseError as exc:
        return str(exc)
    finally:
        con.close()
    return None


def _add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `newsetl serve SOURCES... [--db FILE] [--every SECONDS | --cron EXPR] [--limit N]`."""
    from newsetl.flows.serve import DEFAULT_INTERVAL_SECONDS, DEFAULT_NAME
    from newsetl.tasks.prefect_server import LocalServerConfig

    parser.add_argument("sources", nargs="+",
                        help="files, directories, globs, @list files or URLs to ingest on each run")
    parser.add_argument("--db", help="warehouse file (default: $NEWSETL_DB or warehouse/newsetl.duckdb)")
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--every", type=int, metavar="SECONDS",
                      help=f"run every SECONDS, the first run at once (default: {DEFAULT_INTERVAL_SECONDS})")
    when.add_argument("--cron", metavar="EXPR", help='cron schedule in UTC, e.g. "0 * * * *" (on the hour)')
    parser.add_argument("--limit", type=int, default=1,
                        help="runs this process executes at once (default 1: the warehouse has one writer)")
    parser.add_argument("--name", default=DEFAULT_NAME, help=f"deployment name (default {DEFAULT_NAME})")
    parser.add_argument("--rules", action="append", help=_RULES_HELP)
    parser.add_argument("--publishers", action="append", help=_PUBLISHERS_HELP)
    parser.add_argument("--field", action="append", metavar="NAME=PATH", help=_FIELD_HELP)
    _add_run_options(parser)
    parser.add_argument("--server-port", type=_port, default=LocalServerConfig.port,
                        help="port of the local Prefect server started when PREFECT_API_URL is not set "
                             "(default 4200, a free port if taken; 0 = any free port)")


def _json_value(value: Any) -> Any:
    """A value JSON can hold: NaN and infinities (which json.dumps writes as bare NaN, invalid JSON) as null,
    a decimal as a number; the rest as json.dumps' default=str makes it."""
    import decimal
    import math

    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, decimal.Decimal):
        return float(value) if value.is_finite() else None
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return _blob_text(value)
    if isinstance(value, datetime.datetime):
        return _iso(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return value


def _iso(moment: datetime.datetime) -> str:
    """ISO 8601 (RFC 3339 when it has a zone) as `export` writes it (EXPORT_TIMESTAMP), a zoned moment in
    UTC; `default=str` wrote a space for the "T"."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.UTC)
    return moment.isoformat(timespec="microseconds")


def _json_text(value: Any) -> Any:
    """A DuckDB JSON value (its text) as the JSON it holds; text that is not JSON stays text."""
    if not isinstance(value, str):
        return _json_value(value)
    try:
        return json.loads(value)
    except ValueError:
        return value


def _display_width(text: str) -> int:
    """Columns `text` takes in a terminal: a wide character (Chinese, Japanese, Korean) takes two, so a
    table padded by characters came out ragged (a user trial)."""
    if text.isascii():
        return len(text)
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _blob_text(value: bytes) -> str:
    """A BLOB as DuckDB casts it to text (and `newsetl export` writes it): printable ASCII as it is, every
    other byte, the backslash and the quotes as \\xHH. Python's repr ("b'...'") is nothing another tool
    reads back."""
    return "".join(chr(c) if 32 <= c < 127 and c not in _BLOB_ESCAPED else f"\\x{c:02X}" for c in value)


_BLOB_ESCAPED = frozenset(b"\\\"'")


def _csv_value(value: Any) -> Any:
    """A value as `newsetl export` writes it to CSV (DuckDB's way), not as Python prints it: true/false, lists
    and structs as JSON, NULL as an empty field."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | dict):
        return json.dumps(_json_value(value), default=str, ensure_ascii=False)
    if isinstance(value, bytes):  # DuckDB hands a BLOB to Python as bytes
        return _blob_text(value)
    return value


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """How each run goes, for `ingest` and for every run `serve` starts."""
    parser.add_argument("--wait", type=_seconds, default=60.0, metavar="SECONDS",
                        help="how long each write waits while another process (a reader) holds the warehouse "
                             "file before the run fails, naming that process (default 60; 0: fail fast)")
    parser.add_argument("--batch-size", type=_positive_int, default=None,
                        help="documents per load transaction (default: the flow's DEFAULT_BATCH_SIZE, 1,000)")
    parser.add_argument("--workers", type=_count, default=None,
                        help="worker processes for extract/repair/clean/sign (default: one per core; 0: in-process)")
    parser.add_argument("--doc-seconds", type=_seconds, default=20.0,
                        help="CPU-time limit for one document (seconds; 0: no limit); a slower one is quarantined "
                             "(enforced in workers)")
    parser.add_argument("--min-age", type=_seconds, default=0.0, metavar="SECONDS",
                        help="leave files modified less than SECONDS ago for a later run (default 0: read "
                             "everything); for a drop folder a producer may still be writing into")


def _field_mapping(args: argparse.Namespace) -> dict[str, str] | str | None:
    """The --field options as the flow's `jsonl_fields` (None: none given), or why they cannot be used."""
    from newsetl.sources.fields import FieldMappingError, parse_field_mapping

    try:
        return dict(parse_field_mapping(args.field)) or None
    except FieldMappingError as exc:
        return str(exc)


_PUBLISHERS_HELP = ("publisher alias file (JSON: {\"Canonical Name\": [\"alias\", \"domain.com\"]}); "
                    "repeatable; also $NEWSETL_PUBLISHERS")
_FIELD_HELP = ("where JSON records keep a field newsetl reads (NAME: text, html, url, title, published_at, "
               "publisher, byline, fetched_at, id), when not under a name it knows (README, 'Inputs'); PATH a key, "
               "a.b for nested objects; repeatable, e.g. --field text=story --field url=meta.link")


def _whole(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, not {value}")
    return value


def _positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (a batch of 0 documents is a typo, not a setting)."""
    return _whole(text, 1)


def _count(text: str) -> int:
    """An argparse type: a whole number of at least 0 (worker processes)."""
    return _whole(text, 0)


def _seconds(text: str) -> float:
    """An argparse type: seconds, 0 or more (a negative wait or limit is a typo, not a setting)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, not {text}")
    return value


def _port(text: str) -> int:
    """An argparse type: a TCP port, 0 (any free port) to 65535."""
    value = _count(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535, not {value}")
    return value


_RULES_HELP = "extra boilerplate rules file (JSON); repeatable; also $NEWSETL_RULES (':'-separated)"


def _rules_files(args: argparse.Namespace) -> list[str]:
    """--rules files, then those of $NEWSETL_RULES (os.pathsep-separated)."""
    return _env_files(args.rules, "NEWSETL_RULES")


def _env_files(given: list[str] | None, env: str) -> list[str]:
    """Files given on the command line, then those of $env (os.pathsep-separated)."""
    files = list(given or [])
    if value := os.environ.get(env):
        files.extend(p for p in value.split(os.pathsep) if p)
    return files


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="newsetl", description="News-text ETL into DuckDB, as Prefect flows.",
                                 epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", action="version", version=f"newsetl {_version()}")
    sub = ap.add_subparsers(dest="command", required=True)

    def with_db(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--db", help="warehouse file (default: $NEWSETL_DB or warehouse/newsetl.duckdb)")
        return p

    p = with_db(sub.add_parser("ingest", help="run the ingest flow once and print a summary",
                               epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter))
    p.add_argument("sources", nargs="+", help="files, directories, globs, @list files (one source a line) or URLs")
    _add_run_options(p)
    talk = p.add_mutually_exclusive_group()
    talk.add_argument("-v", "--verbose", action="store_true", help="also show Prefect's log lines")
    talk.add_argument("-q", "--quiet", action="store_true",
                      help="no progress and no summary (for cron): errors only, and the exit code")
    p.add_argument("--rules", action="append", help=_RULES_HELP)
    p.add_argument("--publishers", action="append", help=_PUBLISHERS_HELP)
    p.add_argument("--field", action="append", metavar="NAME=PATH", help=_FIELD_HELP)
    p.set_defaults(func=cmd_ingest)

    p = with_db(sub.add_parser("reclean", help="re-clean stored articles with newly learned boilerplate"))
    p.add_argument("--rules", action="append",
                   help="rules file (JSON) whose protect patterns the re-clean honours (its removal rules act "
                        "at ingest, and on stored articles with --apply-rules); repeatable; also $NEWSETL_RULES")
    p.add_argument("--apply-rules", action="store_true",
                   help="also apply the removal rules of the --rules / $NEWSETL_RULES files to every stored "
                        "article (each removal audited in `removals`); the library's own rules cleaned them "
                        "at ingest")
    p.add_argument("--wait", type=_seconds, default=60.0, metavar="SECONDS",
                   help="how long to wait while another process (a reader) holds the warehouse file, then fail "
                        "naming that process (default 60; 0: fail fast)")
    p.set_defaults(func=cmd_reclean)

    p = sub.add_parser("serve", help="serve the ingest flow on a schedule (starts a local Prefect server if needed)")
    _add_serve_arguments(p)
    p.set_defaults(func=cmd_serve)

    for name, func, help_text in (("sql", cmd_sql, "run a read-only SQL query"),
                                  ("stats", cmd_stats, "print runs, table sizes, removals, quarantine"),
                                  ("export", cmd_export, "export a view to parquet/csv/json")):
        p = with_db(sub.add_parser(name, help=help_text))
        p.add_argument("--wait", type=_seconds, default=60.0, help="seconds to retry while an ingest holds the file")
        if name == "sql":
            p.add_argument("query", help='one SQL statement, e.g. "SELECT count(*) FROM canonical_articles"')
            p.add_argument("--format", choices=("table", "csv", "json"), default="table",
                           help="table (default: aligned columns for reading), csv or json (one object a row)")
        if name == "export":
            p.add_argument("out", help="output file: .parquet, .csv, .json (one array) or .jsonl (one object a line)")
            p.add_argument("--view", default="canonical_articles",
                           help="the view or table to export (default canonical_articles; e.g. articles, "
                                "removals, publisher_daily_counts)")
        p.set_defaults(func=func)

    p = with_db(sub.add_parser("report", help="write an HTML report with charts (self-contained, no network)"))
    p.add_argument("--out", help="HTML file to write (default: <warehouse stem>.report.html beside it)")
    p.add_argument("--title", help="the report's title")
    p.add_argument("--wait", type=_seconds, default=60.0, help="seconds to retry while an ingest holds the file")
    p.set_defaults(func=cmd_report)
    return ap


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("newsetl")
    except PackageNotFoundError:
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    import signal

    args = build_parser().parse_args(argv)
    if args.command in {"ingest", "reclean", "sql", "stats", "export", "report"}:
        # SIGTERM (timeout, systemd, docker stop) stops like Ctrl-C from the first instant: before the
        # run's own handler is installed (imports, the Prefect server's start) it killed the process
        # silently with 143. The run's handler (tasks/stop.py) takes over once the run starts. A reading
        # command waiting for a busy warehouse was killed the same way (a user trial), where Ctrl-C says
        # "interrupted" with exit 130 (and export removes the file it had begun).
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    if hasattr(signal, "SIGUSR1"):
        # `kill -USR1 PID` prints where every thread of the command is (a run that seems stuck: where).
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    if args.command in {"sql", "stats", "export"}:
        # Their output is for pipes (`| head`): when the reader goes, end quietly, as Unix tools do,
        # instead of a BrokenPipeError traceback. The ingest keeps Python's behaviour (it must record
        # its run first) and handles a closed pipe in entry().
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    if getattr(args, "quiet", False):
        from newsetl.warehouse.connect import quiet_busy_notices

        quiet_busy_notices()  # "errors only": a wait for a busy file that ends by itself is none
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("newsetl: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _silence_teardown() -> None:
    """After the command has finished and said everything it had to say, mute stderr for interpreter
    teardown: DuckDB 2.0's bindings print dozens of 'nanobind: leaked …' lines when objects are still
    referenced at shutdown (Prefect keeps a failed run's exception and its frames), which would bury the
    one-line error an operator needs to read. Nothing actionable is printed that late."""
    sys.stdout.flush()
    sys.stderr.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)


_OUT_OF_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def _stdout_to_devnull() -> None:
    """Point stdout at /dev/null: what Python flushes of it at exit then fails no more."""
    with contextlib.suppress(OSError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def entry() -> None:
    """Console-script entry point: an exit code and at most one line of error, never a traceback
    (`-v` on ingest shows Prefect's own logging)."""
    try:
        code = main()
    except BrokenPipeError:
        # stdout went away (`newsetl ingest ... | head`): nothing more to say to it.
        _stdout_to_devnull()
        code = EXIT_OK
    except Exception as exc:
        if isinstance(exc, OSError) and exc.errno in _OUT_OF_ROOM:
            # Output that finds no room (a full disk, /dev/full) is no bug of newsetl's: said plainly, and
            # stdout pointed at /dev/null so that nothing more fails when Python flushes it at exit.
            print(f"newsetl: cannot write the output: {exc.strerror}", file=sys.stderr)
            _stdout_to_devnull()
        else:
            print(f"newsetl: unexpected error: {type(exc).__name__}: {exc}", file=sys.stderr)
        code = EXIT_FAILED
    _silence_teardown()
    sys.exit(code)


if __name__ == "__main__":
    entry()
