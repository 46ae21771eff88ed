"""Opening the warehouse: where it is, migrations, the writer lock, and busy retries.

DuckDB lets one process hold a database file at a time; a second process cannot open it, not
even read-only, while a writer has it (`Could not set lock on file`). So:
- writers keep their connection short (a run's batch loads share one for at most a few seconds,
  `HeldWriter`) and take an advisory run lock (`<db>.lock`) for the whole run, so two ingests never
  interleave their batches;
- readers (`newsetl sql`, dashboards) retry for a while with a clear "busy, retrying" message and
  get in between two batches.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import duckdb

from newsetl.schemas.tables import MIGRATIONS, comment_sql, migration_sql
from newsetl.warehouse.views import create_views

DB_ENV = "NEWSETL_DB"
# Seconds a writer waits for another process (a reader: a notebook, a BI tool, `newsetl sql`) to let go
# of the file before giving up; `newsetl ingest --wait` sets it for the run (and its child processes).
WRITE_WAIT_ENV = "NEWSETL_WRITE_WAIT"
DEFAULT_WRITE_WAIT = 60.0
MEMORY_ENV = "NEWSETL_DUCKDB_MEMORY"
# Without a limit DuckDB keeps every band row it has read in its buffer cache, so a writer's memory
# grows with the stored history (+663 MB at 1M signatures, bench/bench_dedup.py); with one it stays flat.
DEFAULT_MEMORY_LIMIT = "1GB"
DEFAULT_DB = Path("warehouse") / "newsetl.duckdb"


class WarehouseBusy(RuntimeError):
    """Another process holds the warehouse longer than we were willing to wait."""


class WarehouseError(RuntimeError):
    """The warehouse cannot be opened or written (read-only path, disk full, not a DuckDB file)."""


def write_wait_seconds() -> float:
    """How long a write waits for another process to let go of the file: the run's `--wait`
    ($NEWSETL_WRITE_WAIT), else DEFAULT_WRITE_WAIT."""
    return float(os.environ.get(WRITE_WAIT_ENV) or DEFAULT_WRITE_WAIT)


def default_db_path() -> Path:
    return Path(os.environ.get(DB_ENV) or DEFAULT_DB)


def db_path(db: str | Path | None) -> Path:
    """The warehouse file a command or run means: `db` (--db), else the default ($NEWSETL_DB, else
    warehouse/newsetl.duckdb)."""
    return Path(db) if db else default_db_path()


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc)
    return "lock" in text.lower() and ("Conflicting" in text or "Could not set lock" in text)


def connect(
    db: str | Path,
    *,
    read_only: bool = False,
    wait_seconds: float = 60.0,
    say: Callable[[str], None] | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open the database, retrying while another process holds its lock."""
    path = Path(db)
    if read_only and not path.exists():
        raise WarehouseError(f"no warehouse at {path}: run `newsetl ingest` first")
    if not read_only:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WarehouseError(f"cannot create the directory of {path}: {exc}") from exc
    if _is_sqlite(path):
        # DuckDB opens an SQLite file through its sqlite extension, downloading it first (a network request
        # from a command given a wrong --db; a user trial): where the extension is installed, a writer would
        # then migrate the warehouse's tables into that SQLite database. Refused here, by its header.
        raise WarehouseError(f"cannot open {path}: an SQLite database, not a DuckDB warehouse")
    deadline = time.monotonic() + wait_seconds
    delay = 0.05
    told = False
    while True:
        try:
            memory = os.environ.get(MEMORY_ENV) or DEFAULT_MEMORY_LIMIT
            con = duckdb.connect(str(path), read_only=read_only, config={"memory_limit": memory})
            if told:
                # In: the mark this wait left is taken away, not left beside the warehouse. Another process
                # still waiting marks again at its next attempt (within 50 ms).
                with contextlib.suppress(OSError):
                    _waiting_marker(path).unlink()
            return con
        except duckdb.IOException as exc:
            if not _is_lock_error(exc):
                raise WarehouseError(f"cannot open {path}: {exc}") from exc
            if time.monotonic() >= deadline:
                if told:
                    # Given up: the mark goes too, as when it got in (a refused command leaves no file behind);
                    # another process still waiting marks again at its next attempt.
                    with contextlib.suppress(OSError):
                        _waiting_marker(path).unlink()
                raise WarehouseBusy(
                    f"{path} is busy: {describe_holders(path)}; gave up after {wait_seconds:g} s"
                    + (" (--wait SECONDS to wait longer)" if not read_only else "")
                ) from exc
            _ask_for_the_file(path)
            if not told:
                (say or _busy_notice)(f"warehouse {path} is busy (another process holds it, e.g. an ingest "
                                 "writing a batch), retrying...")
                told = True
            # Poll often: an ingest leaves the file free only for the moment between two batch loads.
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.05)
        except duckdb.Error as exc:
            if os.environ.get(MEMORY_ENV) and "memory" in str(exc).lower():
                raise WarehouseError(f"${MEMORY_ENV}={os.environ[MEMORY_ENV]!r} is not a DuckDB memory size "
                                     f"(e.g. 600MB, 2GB): {exc}") from exc
            # DuckDB opens a .parquet/.csv/.json "database" as an in-memory one over that file, which a
            # read-only open refuses with "Cannot launch in-memory database in read-only mode!".
            hint = (" (a data file, not a DuckDB warehouse: give --db the warehouse or its .snapshot.duckdb)"
                    if path.suffix.lower() in {".parquet", ".csv", ".json", ".jsonl"} else "")
            raise WarehouseError(f"cannot open {path}: {exc}{hint}") from exc


SQLITE_MAGIC = b"SQLite format 3\x00"


def _is_sqlite(path: Path) -> bool:
    """Whether `path` is an SQLite database file (its first 16 bytes; false for a file that cannot be read,
    which DuckDB then names itself)."""
    try:
        with path.open("rb") as fh:
            return fh.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


def _waiting_marker(db: str | Path) -> Path:
    return Path(f"{db}.waiting")


def _ask_for_the_file(db: str | Path) -> None:
    """Tell a `HeldWriter` that a process waits to open `db` (the marker's mtime: the last attempt), so
    it lets go at its next pause. Best effort: without the marker (a read-only folder) the writer still
    lets go within its hold."""
    with contextlib.suppress(OSError):
        _waiting_marker(db).touch()


def holders(path: str | Path) -> list[tuple[int, str]]:
    """(pid, command line) of the other processes that have the database file open.

    DuckDB's lock error names no one; an operator needs to know whether the holder is an ingest (wait
    for it) or a forgotten notebook (close it). Processes we may not inspect are left out."""
    import psutil

    target = os.path.realpath(path)
    me = os.getpid()
    found: list[tuple[int, str]] = []
    for proc in psutil.process_iter(["pid"]):
        if proc.pid == me:
            continue
        try:
            if any(f.path == target for f in proc.open_files()):
                found.append((proc.pid, process_label(proc)))
        except (psutil.Error, OSError):
            continue
    return found


def process_label(proc: Any) -> str:
    """A process's command line as an operator knows it. A process that multiprocessing started (a run of
    `newsetl serve` is one: Prefect spawns each flow run) shows only `python3 -B -c from multiprocessing.spawn
    import spawn_main; spawn_main(tracker_fd=5, pipe_handle=7) --multiprocessing-fork` (a user trial): it is
    named by the process that started it."""
    import psutil

    command = " ".join(proc.cmdline()) or proc.name()
    # What multiprocessing runs (`-c "from multiprocessing.spawn import ..."`, its fork server's and resource
    # tracker's alike), not a script whose name merely says multiprocessing.
    if "from multiprocessing." not in command:
        return command
    try:
        parent = proc.parent()
        if parent is None:
            return command
        return f"started by pid {parent.pid}: {' '.join(parent.cmdline()) or parent.name()}"
    except (psutil.Error, OSError):
        return command


def describe_holders(path: str | Path) -> str:
    held = holders(path)
    if not held:
        return "another process holds it (it could not be identified)"
    return "held by " + "; ".join(f"pid {pid} ({' '.join(cmd.split())[:200]})" for pid, cmd in held)


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back after a failure, keeping the original error: when COMMIT itself failed (disk full)
    DuckDB has already rolled back, and a second ROLLBACK would raise and mask the real cause."""
    with contextlib.suppress(duckdb.Error):
        con.execute("ROLLBACK")


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """The block as one transaction: committed at its end, rolled back (`rollback`) if it raises."""
    con.execute("BEGIN TRANSACTION").fetchall()
    try:
        yield
    except BaseException:
        rollback(con)
        raise
    con.execute("COMMIT").fetchall()


def unregister(con: duckdb.DuckDBPyConnection, *names: str) -> None:
    """Drop Arrow tables registered on `con` (the `finally` of a register). A refusal is dropped: in a
    transaction that an error aborted DuckDB refuses even this ("Current transaction is aborted"), and the
    error that aborted it is the one to raise (raised from here, it was masked: a re-clean that ran out
    of memory failed as a TransactionException, and the CLI called the warehouse unwritable); the
    caller's rollback drops the registration either way."""
    for name in names:
        with contextlib.suppress(duckdb.Error):
            con.unregister(name)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


# Where the "busy, retrying" notice goes when the caller names no `say`: stderr, or nowhere once
# `quiet_busy_notices` was called (`newsetl ingest --quiet`: a wait that ends by itself is no error, and
# cron mails whatever a job prints).
_busy_notice: Callable[[str], None] = _stderr


def quiet_busy_notices() -> None:
    """From now on in this process, waiting for a busy warehouse prints nothing (giving up still raises)."""
    global _busy_notice
    _busy_notice = lambda _message: None  # noqa: E731


def user_objects(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The file's own tables and views, as schema.name, sorted (none: a new, empty file)."""
    return [r[0] for r in con.execute(
        "SELECT schema_name || '.' || table_name FROM duckdb_tables() "
        "WHERE database_name = current_database() AND NOT internal "
        "UNION ALL SELECT schema_name || '.' || view_name FROM duckdb_views() "
        "WHERE database_name = current_database() AND NOT internal ORDER BY 1").fetchall()]


def check_warehouse(con: duckdb.DuckDBPyConnection, path: str | Path) -> None:
    """Refuse a DuckDB file that holds tables or views but is no newsetl warehouse (no `schema_migrations`):
    a user's own database, or a warehouse's published snapshot given as --db. Migrating it would add
    newsetl's tables and columns to the user's, commit them, and then fail on the first load: writes are
    for an empty file or a warehouse only."""
    found = user_objects(con)
    if found and "main.schema_migrations" not in found:
        shown = ", ".join(n.removeprefix("main.") for n in found[:5]) + (", ..." if len(found) > 5 else "")
        raise WarehouseError(
            f"{path} is a DuckDB file but not a newsetl warehouse (it holds {shown}): newsetl writes only to "
            "its own warehouse files; give a new file with --db"
            + (" (this is a published snapshot: write to the warehouse it was published from)"
               if str(path).endswith(".snapshot.duckdb") or "/g-" in str(path) else ""))


# A DuckDB file is its three headers of 4 KiB (the main header, then the two database headers it writes in
# turn), then its blocks.
_DUCKDB_HEADERS_BYTES = 3 * 4096


def check_intact(con: duckdb.DuckDBPyConnection, path: str | Path) -> None:
    """Refuse a DuckDB file cut short (a copy stopped half-way, a disk that lost its tail): a table's data
    lies in blocks past the file's end. Such a file opens (its header and catalog are at the start) and fails
    only where a table's missing blocks are read; a writer got that far after rewriting the header and
    writing a `runs` row into it (a user trial). Asked right after the open, before any write: opening it
    without a WAL writes nothing (with one, DuckDB's replay already fails at the open).

    The highest block the tables' segments use (`pragma_storage_info`, metadata only: no data is read),
    not the header's block count: DuckDB gives the free blocks at a file's end back to the file system at a
    checkpoint and still counts them, so a healthy warehouse after a re-clean held 26 blocks where its
    header counted 28, and was refused as damaged."""
    (block_size,), = con.execute("SELECT block_size FROM pragma_database_size() "
                                 "WHERE database_name = current_database()").fetchall()
    tables = con.execute("SELECT schema_name, table_name FROM duckdb_tables() "
                         "WHERE database_name = current_database()").fetchall()
    highest = -1
    for schema, table in tables:
        qualified = '"' + schema.replace('"', '""') + '"."' + table.replace('"', '""') + '"'
        (top,), = con.execute("SELECT max(block_id) FROM pragma_storage_info(?) WHERE persistent",
                              [qualified]).fetchall()
        highest = max(highest, -1 if top is None else int(top))
    need = _DUCKDB_HEADERS_BYTES + int(block_size) * (highest + 1)
    size = os.stat(path).st_size
    if size < need:
        raise WarehouseError(
            f"{path} is damaged: the file is cut short ({size:,} bytes, where its tables use blocks of "
            f"{int(block_size):,} up to {need:,} bytes): newsetl does not write to it; restore it from a backup, "
            "or give a new file with --db")


def check_path_writable(db: str | Path) -> None:
    """Refuse, before anything is created, a warehouse path no run could write: a directory, a path under a
    regular file, a file or folder this process may not write (or on a read-only file system). Nothing is
    opened or made: a run refused here leaves no `<db>.lock` (nor the folders the lock's path would have
    needed) beside a path that was wrong (a user trial). What only DuckDB can tell (not a DuckDB file, cut
    short, someone else's tables) is refused after the run lock is taken (`HeldLock.discard`)."""
    path = Path(os.path.abspath(db))
    if path.is_dir():
        raise WarehouseError(f"cannot open {db}: it is a directory, not a warehouse file (give --db a file in it, "
                             f"e.g. {path / DEFAULT_DB.name})")
    folder = path.parent
    if path.exists():
        if not os.access(path, os.W_OK):
            raise WarehouseError(f"cannot write the warehouse {db}: {_why_not_writable(path)}")
    else:
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir():
            raise WarehouseError(f"cannot create the warehouse {db}: {folder} is not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise WarehouseError(f"cannot create files in {folder} for the warehouse {db} (its WAL, its run lock): "
                             f"{_why_not_writable(folder)}")


def _why_not_writable(path: Path) -> str:
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return "read-only file system"
    except OSError:
        pass
    return "permission denied"


def migrate(con: duckdb.DuckDBPyConnection, path: str | Path = "the database") -> list[int]:
    """Apply pending migrations in order; return the versions applied now. Refuses a file that holds
    someone else's tables (`check_warehouse`)."""
    check_warehouse(con, path)
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMPTZ DEFAULT now())"
    )
    done = {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}
    newer = sorted(done - {version for version, _ in MIGRATIONS})
    if newer:
        # A newer newsetl upgraded this file: writing with this one would put back its own view definitions
        # over the newer ones and load rows without the columns the newer code fills (a user trial: a cron
        # job left on an old install beside an upgraded one). Reading (sql, stats, export) still works.
        raise WarehouseError(
            f"{path} was upgraded by a newer newsetl (schema version {newer[-1]}; this newsetl knows up to "
            f"{MIGRATIONS[-1][0]}): upgrade newsetl to write to it (`pip install -U newsetl`, or from the "
            "same checkout as the install that upgraded it); reading it with this one still works")
    applied: list[int] = []
    for version, name in MIGRATIONS:
        if version in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(migration_sql(version))
            con.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [version, name])
            con.execute("COMMIT")
        except Exception:
            rollback(con)
            raise
        applied.append(version)
    if applied:
        for statement in comment_sql():
            con.execute(statement)
    create_views(con)
    return applied


@contextmanager
def writer(db: str | Path, wait_seconds: float | None = None, checkpoint: bool = True,
           threads: int | None = None, memory_limit: str | None = None,
           fold_memory_limit: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived write connection, closed on exit so readers can get in.

    `checkpoint=False` for the many short writes of a run (a batch load): DuckDB folds the WAL into the
    file when the last connection closes, and that checkpoint rewrites each table's last, partly filled
    row group, so checkpointing after every 500 articles grew with the run (0.13 s -> 2.2 s a close over
    4,000 articles; 1.2 ms of the 2.1 ms an article cost to load). Without it the WAL is folded in once it
    passes WAL_CHECKPOINT_BYTES, here, explicitly (DuckDB's own 16 MB threshold stopped firing in the flow
    once each group's last batch also recorded its files: a 10,000-article run kept its whole WAL to the
    end, 6.5 s to fold then, and every open replayed it; not reproduced outside the flow), and by the run's
    last write, which checkpoints. Nothing is less durable: a commit is in the WAL either way, and opening
    replays it.

    `wait_seconds`: how long to wait for another process to let go of the file (default: $NEWSETL_WRITE_WAIT,
    else 60).

    `threads`: DuckDB's worker threads for this connection (default: one per core). The flow's batch
    loads run beside the worker processes, which already keep every core busy: there DuckDB's own threads
    only contend with them (10,000 articles on 2 cores: 39-40 s with one thread vs 45 s with two, measured
    interleaved).

    `memory_limit`: DuckDB's memory limit for this connection (default: $NEWSETL_DUCKDB_MEMORY, else
    DEFAULT_MEMORY_LIMIT); $NEWSETL_DUCKDB_MEMORY, when set, wins over it (see `_settings`).
    `fold_memory_limit`: the limit its WAL fold runs under (`fold_wal_into_file`).
    """
    if wait_seconds is None:
        wait_seconds = write_wait_seconds()
    con = connect(db, wait_seconds=wait_seconds)
    try:
        if not checkpoint:
            _defer_checkpoints(con)
        _settings(con, threads, memory_limit)
        yield con
        merge = not _after_large_run(db)
        if not checkpoint and _wal_bytes(db) > WAL_CHECKPOINT_BYTES:
            fold_wal_into_file(con, fold_memory_limit, merge_row_groups=merge)
        elif checkpoint and not merge:
            con.execute("SET max_vacuum_tasks = 0")  # for the checkpoint DuckDB makes on close
    finally:
        con.close()


def fold_wal_into_file(con: duckdb.DuckDBPyConnection, memory_limit: str | None = None,
                       merge_row_groups: bool = True) -> None:
    """Fold the WAL into the file (CHECKPOINT), under `memory_limit` when one is given and the user did not
    set $NEWSETL_DUCKDB_MEMORY. The limit is for a connection that closes right after: a fold can merge a
    table's trailing row groups into a full one (DuckDB's checkpoint vacuum, docs/operations.md), which
    holds those rows in memory on top of the cache; the cache is about to be dropped with the connection,
    and a lower limit evicts it first, so the merge has the room instead of the process growing. A held
    connection that folds in place and goes on (`HeldWriter.use`) passes none and keeps its cache.

    `merge_row_groups=False`: this fold leaves the row groups as they are (see `HeldWriter`)."""
    _settings(con, None, memory_limit)
    con.execute(f"SET max_vacuum_tasks = {_DEFAULT_VACUUM_TASKS if merge_row_groups else 0}")
    con.execute("CHECKPOINT")


# DuckDB's default `max_vacuum_tasks`: its checkpoints merge small trailing row groups.
_DEFAULT_VACUUM_TASKS = 100
# A run's batch loads whose folds have written more than this leave their row groups unmerged (HeldWriter).
SMALL_RUN_WAL_BYTES = 64 * 1024 * 1024
# Warehouses (absolute paths) whose latest run in this process was large: until its next run's batch loads
# start, the writes that follow (re-clean, the run row, the snapshot) leave the row groups as well. A
# checkpoint after any insert merges the small row groups of every table, not only of those it wrote to:
# one of those writes merged the run's `articles` into one row group (a 100k run: 905 MiB, half of it
# freed blocks, instead of 568).
_LARGE_RUNS: set[str] = set()


def _warehouse_key(db: str | Path) -> str:
    return os.path.realpath(db)


def _after_large_run(db: str | Path) -> bool:
    return _warehouse_key(db) in _LARGE_RUNS


def _defer_checkpoints(con: duckdb.DuckDBPyConnection) -> None:
    """Checkpoints of a batch-load connection happen when it lets go of the file (WAL_CHECKPOINT_BYTES),
    not at a commit or on close. DuckDB's own threshold (16 MB) checkpoints inside any COMMIT that
    passes it: with the raw pages kept, a batch of ~90 HTML pages writes ~13 MB, so nearly every HTML
    batch paid a checkpoint in the single writer (load 9.0 s -> 6.5 s of 735 dev pages). The cap only
    bounds the WAL should a connection be held far longer than HOLD_SECONDS."""
    con.execute("PRAGMA disable_checkpoint_on_shutdown")
    con.execute(f"SET checkpoint_threshold = '{DEFERRED_CHECKPOINT_BYTES}B'")


def _settings(con: duckdb.DuckDBPyConnection, threads: int | None, memory_limit: str | None) -> None:
    """A write connection's threads and memory limit; the user's $NEWSETL_DUCKDB_MEMORY wins over a
    caller's limit (it is how a user gives a big warehouse more room, or a small machine less)."""
    if threads is not None:
        con.execute(f"SET threads = {int(threads)}")
    if memory_limit is not None and not os.environ.get(MEMORY_ENV):
        con.execute("SET memory_limit = ?", [memory_limit])


class HeldWriter:
    """A write connection shared by consecutive batch loads for at most `hold_seconds`, then let go.

    Opening the warehouse replays its WAL (up to WAL_CHECKPOINT_BYTES) and a connection per batch paid
    that every batch (~0.7 s of a 500-article load on the 20k re-scrape corpus). Holding one connection
    for the whole run would lock readers out for the run (`newsetl sql` waits 60 s by default, and a
    process can only open the file between two writers' connections); released after `hold_seconds`
    at the end of a load, a reader waits at most that plus one load. The flow also releases it
    whenever it is about to wait for its workers (`close()`), so the connection spans only loads that
    follow each other without a pause. Each load is still its own transaction: nothing is less
    durable. Same settings as `writer(checkpoint=False)`. A held connection whose WAL passes
    HELD_FOLD_BYTES folds it in place, so that what DuckDB holds of unfolded loads stays bounded.

    Row groups: DuckDB puts the rows of each fold in new row groups, and its checkpoint then merges the
    small trailing row groups of the tables, rewriting and recompressing all of their
    rows, so on a long run a row was rewritten ~log2(122,880 / rows per fold) times before its row group
    was full: 10.6 s of the 17.0 s of folds on the 100k re-scrape stream, 0.26 of the writer's share
    instead of 0.21 (docs/operations.md). Row groups of one fold of a large run (thousands of rows, tens
    of MB) cost nothing measurable: the same file size and the same query times as full ones. Row groups
    of a small run (tens of rows) do: 400 groups of 50 articles took 9x the file of one group. So once a
    run has folded more than SMALL_RUN_WAL_BYTES its folds leave the row groups as they are, while a
    small run's folds merge as DuckDB's would (after small runs, that rewrites at most each table's last
    row group); the last fold of a run (`close(final=True)`) folds what WAL its connection still has, and
    the writes that follow a large run leave the row groups too (`_LARGE_RUNS`), so that none of them
    merges the run's rows after all. The next small run merges what there is to merge, once (after a
    207k-document run, 15 s: docs/operations.md)."""

    def __init__(self, db: str | Path, hold_seconds: float, threads: int | None = None,
                 wait_seconds: float | None = None, memory_limit: str | None = None,
                 fold_memory_limit: str | None = None) -> None:
        self.db = db
        self.hold_seconds = hold_seconds
        self.threads = threads
        self.memory_limit = memory_limit
        self.fold_memory_limit = fold_memory_limit  # see `fold_wal_into_file`
        self.wait_seconds = write_wait_seconds() if wait_seconds is None else wait_seconds
        self._con: duckdb.DuckDBPyConnection | None = None
        self._opened = 0.0
        self.opens = 0  # connections opened (for the bench and tests)
        self.folded_bytes = 0  # WAL folded into the file so far (decides whether folds merge row groups)
        _LARGE_RUNS.discard(_warehouse_key(db))  # a new run: small until its folds say otherwise

    @contextmanager
    def use(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The held connection (opened if needed); closed after the block when it was held long enough,
        or when the block raised (the next load starts from a fresh connection)."""
        if self._con is None:
            con = connect(self.db, wait_seconds=self.wait_seconds)
            try:
                _defer_checkpoints(con)
                _settings(con, self.threads, self.memory_limit)
            except BaseException:
                con.close()
                raise
            self._con, self._opened = con, time.monotonic()
            self.opens += 1
        try:
            yield self._con
        except BaseException:
            self.close(fold_wal=False)
            raise
        if time.monotonic() - self._opened >= self.hold_seconds:
            self.close()
        elif self._con is not None and (wal := _wal_bytes(self.db)) > HELD_FOLD_BYTES:
            self._fold(self._con, wal)  # in place: the connection stays held, its cache warm

    def idle(self) -> None:
        """The writer is about to wait (for its workers): let go of the file if a process is waiting
        for it (`connect` marks each attempt), else keep the connection (up to `hold_seconds` from its
        opening, as `use` enforces). Closing at every pause made each batch load reopen the warehouse:
        the WAL replayed and DuckDB's cache cold, every batch."""
        if self._con is not None and self._reader_waiting():
            self.close()

    def _reader_waiting(self) -> bool:
        try:
            asked = _waiting_marker(self.db).stat().st_mtime
        except OSError:
            return False
        # A waiting process retries every few tens of ms; an older mark is one that got in or gave up.
        return time.time() - asked < READER_MARK_SECONDS

    def close(self, fold_wal: bool = True, final: bool = False) -> None:
        """Let go of the file, folding the WAL into it first when it passed WAL_CHECKPOINT_BYTES, or
        whatever there is of it when this is the run's last close (`final`)."""
        con, self._con = self._con, None
        if con is None:
            return
        try:
            wal = _wal_bytes(self.db)
            if fold_wal and (wal > WAL_CHECKPOINT_BYTES or (final and wal > 0)):
                self._fold(con, wal, self.fold_memory_limit)
        finally:
            con.close()

    def _fold(self, con: duckdb.DuckDBPyConnection, wal: int, memory_limit: str | None = None) -> None:
        """Fold `wal` bytes of WAL into the file, merging row groups only while the run is small."""
        self.folded_bytes += wal
        large = self.folded_bytes > SMALL_RUN_WAL_BYTES
        if large:
            _LARGE_RUNS.add(_warehouse_key(self.db))
        fold_wal_into_file(con, memory_limit, merge_row_groups=not large)


# A waiting reader's last attempt is at most this old (connect retries every 50 ms or sooner).
READER_MARK_SECONDS = 1.0

# WAL size at which a run's writes fold it into the file (DuckDB's default threshold): bounds what every
# open (the next batch's, a reader's) replays, while checkpointing seldom enough that rewriting the last
# row group stays cheap.
WAL_CHECKPOINT_BYTES = 16 * 1024 * 1024
# WAL size at which a held connection folds it into the file in place, without letting go (HeldWriter.use).
# Until a checkpoint, DuckDB keeps the rows of every committed load in this process's memory; the raw pages
# make an HTML run's WAL large quickly (735 dev pages: 109 MB of raw pages alone, nearly all of them loaded
# within the ~11 s of one hold and folded at its end). Folded at 32 MB (a fold of ~40 MB took 0.15-0.3 s), the
# 735 dev pages peaked at 1,532-1,537 MB of RSS summed over the run's processes instead of 1,598-1,623 (three
# runs each, interleaved), in the same wall time. A stream folds more often too: the 20k re-scrape stream 383
# vs 382 docs/s, its largest process 0.77 vs 0.90 GB (back to back, with the workers' tables also leaving out
# the raw bytes); the 100k stream's writer share 0.22, under issue 13's 0.25.
HELD_FOLD_BYTES = 32 * 1024 * 1024
DEFERRED_CHECKPOINT_BYTES = 1024 * 1024 * 1024


def _wal_bytes(db: str | Path) -> int:
    try:
        return os.stat(f"{db}.wal").st_size
    except OSError:
        return 0


def _lock_holder(fh: IO[str]) -> str:
    """"pid N (command line); " of the process holding a run lock, from the pid it wrote into the lock file
    ("" when it cannot be told: an old lock file, a process of another user or container)."""
    import psutil

    try:
        fh.seek(0)
        proc = psutil.Process(int(fh.read().split()[0]))
        command = process_label(proc)
    except (ValueError, IndexError, OSError, psutil.Error):
        return ""
    return f"pid {proc.pid} ({' '.join(command.split())[:200]}); "


def run_lock_held(db: str | Path) -> bool:
    """Is a live process holding the run lock of `db` (an ingest or re-clean going on)? Told from the pid
    the holder wrote into the lock file: that process alive with the file open. Read-only: probing with
    flock would, for an instant, refuse an ingest starting then (it does not wait for the lock)."""
    import psutil

    lock_path = Path(f"{os.path.realpath(db)}.lock")
    try:
        pid = int(lock_path.read_text().split()[0])
        return any(f.path == str(lock_path) for f in psutil.Process(pid).open_files())
    except (ValueError, IndexError, OSError, psutil.Error):
        return False


@contextmanager
def run_lock(db: str | Path, wait_seconds: float = 0.0) -> Iterator[HeldLock]:
    """Hold the advisory writer lock of a warehouse for a whole ingest run.

    Decision: a second ingest on the same warehouse waits up to `wait_seconds` (0 by default:
    refuse at once) and then refuses with WarehouseBusy. Never two writers interleaving batches.
    The lock is released by the OS when the process dies, so a killed run never wedges the next.
    The lock file is named after the warehouse's real path: two runs given the file by two names (a
    symlink, `..`) took two locks and interleaved their batches. A hard link under another name still gets
    a lock of its own: a lock keyed on the file's identity (st_dev, st_ino) needs a place every name of the
    file shares, which a hard link in another folder does not (a system folder such as /tmp or /run is not
    shared across containers or a unit's PrivateTmp), and an flock of the warehouse file itself meets
    DuckDB's own POSIX locks on it: on NFS, where flock is emulated with them, readers would be shut out
    for the whole run, and every reader waiting would name the run as a holder of the file. Not worth
    either for a setup (two jobs, two hard-linked names) the docs tell against.
    """
    lock_path = Path(f"{os.path.realpath(db)}.lock")
    with _held(lock_path, wait_seconds, lambda holder: (
            f"another newsetl ingest or reclean is running on {db} ({holder}lock {lock_path}); try again when "
            "it finishes")) as lock:
        yield lock


# The lock `newsetl serve` holds for as long as it serves a warehouse: `<warehouse>.serve.lock`.
SERVE_LOCK_SUFFIX = ".serve.lock"


@contextmanager
def serve_lock(db: str | Path) -> Iterator[HeldLock]:
    """Hold the lock of the one `newsetl serve` a warehouse has, for as long as it serves. A second serve
    of the same warehouse started a server of its own on the same Prefect home, took the first one's
    deployment as left behind and deleted it: the first then served nothing, without a word (a user
    trial). Refused now, naming the serve that holds it. Released by the OS when the process dies."""
    lock_path = Path(f"{os.path.realpath(db)}{SERVE_LOCK_SUFFIX}")
    with _held(lock_path, 0.0, lambda holder: (
            f"{db} is already served by another newsetl serve ({holder}lock {lock_path}): stop that one first, "
            "or let it go on (one serve schedules every run of a warehouse)")) as lock:
        yield lock


class HeldLock:
    """A lock file this process holds (`run_lock`, `serve_lock`), and whether this process made it."""

    def __init__(self, path: Path, created: bool) -> None:
        self.path = path
        self.created = created  # the file was not there before this process locked it
        self.discarded = False

    def discard(self) -> None:
        """Remove the lock file when it is let go, if this process made it: the command was refused before
        it wrote anything (the file at --db is no warehouse, cut short, busy...), and a refused run leaves no
        new file behind (a `<db>.lock` stayed beside every path given by mistake: a user trial). A lock file
        that was there before is left, as is any file another process may hold: this one is removed while
        this process holds its flock, and a process that opened it before then finds, once it gets the flock,
        that the path no longer names the file it locked, and locks the path's file instead (`_held`)."""
        self.discarded = True


@contextmanager
def discarded_if_refused(lock: HeldLock) -> Iterator[None]:
    """A refusal of the warehouse in the block (WarehouseError, WarehouseBusy: it is no warehouse, cut
    short, busy past the wait), before anything is written to it, discards `lock` (`HeldLock.discard`)."""
    try:
        yield
    except (WarehouseError, WarehouseBusy):
        lock.discard()
        raise


@contextmanager
def _held(lock_path: Path, wait_seconds: float, busy: Callable[[str], str]) -> Iterator[HeldLock]:
    """flock `lock_path` (created if need be) with this process's pid in it, waiting up to `wait_seconds`;
    WarehouseBusy with `busy(holder)` when another process holds it (`holder`: "pid N (command); " or "")."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd, created = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644), True
            except FileExistsError:
                fd, created = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644), False
            fh = os.fdopen(fd, "r+")  # held for the duration of the context
        except OSError as exc:
            raise WarehouseError(f"cannot create the lock file {lock_path}: {exc}") from exc
        try:
            while True:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError as exc:
                    if time.monotonic() >= deadline:
                        raise WarehouseBusy(busy(_lock_holder(fh))) from exc
                    time.sleep(0.2)
        except BaseException:
            fh.close()
            raise
        if _names(lock_path, fh):
            break
        fh.close()  # its holder removed it while this process waited (`HeldLock.discard`): lock the new one
    lock = HeldLock(lock_path, created)
    try:
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        yield lock
    finally:
        try:
            if lock.discarded and lock.created:
                with contextlib.suppress(OSError):
                    lock_path.unlink()  # still under the flock: nobody else holds it
        finally:
            fh.close()  # closing the descriptor releases the flock


def _names(path: Path, fh: IO[str]) -> bool:
    """Whether `path` still names the file open as `fh` (the same device and inode)."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    held = os.fstat(fh.fileno())
    return (st.st_dev, st.st_ino) == (held.st_dev, held.st_ino)
