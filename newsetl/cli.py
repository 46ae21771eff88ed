"""The `newsetl` command line: ingest, sql, stats, export (DESIGN.md §5 is the contract)."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Prefect's telemetry tries the network, which this pipeline's hosts often do not have.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


def _db(args: argparse.Namespace) -> Path:
    from newsetl.warehouse.connect import default_db_path

    return Path(args.db) if args.db else default_db_path()


def cmd_ingest(args: argparse.Namespace) -> int:
    import duckdb

    from newsetl.flows.ingest import ingest
    from newsetl.tasks.prefect_server import ServeError, configured_api_url, use_temporary_server
    from newsetl.text.publishers import PublishersFileError
    from newsetl.text.rules import RulesError
    from newsetl.warehouse.connect import WarehouseBusy, WarehouseError, run_lock

    rules = _rules_files(args)
    db = str(_db(args))
    _quiet_known_errors()
    try:
        # The lock first, outside the flow: a second ingest is refused with one line, no failed flow run.
        with run_lock(db), contextlib.ExitStack() as stack:
            if configured_api_url() is None:
                # As cron runs it: no Prefect server configured. Start the temporary one ourselves, tied
                # to this process, rather than let Prefect start one that outlives a kill -9.
                use_temporary_server(stack)
            summary = ingest(sources=list(args.sources), db=db, batch_size=args.batch_size, rules_files=rules,
                             workers=args.workers, doc_seconds=args.doc_seconds, take_lock=False,
                             publishers_files=_env_files(args.publishers, "NEWSETL_PUBLISHERS"))
    except (WarehouseBusy, WarehouseError) as exc:
        print(f"newsetl: {exc}", file=sys.stderr)
        return 3
    except (RulesError, PublishersFileError) as exc:
        print(f"newsetl: {exc}", file=sys.stderr)
        return 2
    except ServeError as exc:
        print(f"newsetl: {exc}", file=sys.stderr)
        return 3
    except (duckdb.Error, OSError) as exc:
        # Disk full, a read-only path, a file that is not a warehouse: committed batches stay, the failed
        # one was rolled back; say what happened in one line.
        print(f"newsetl: cannot write the warehouse {db}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 3
    print_summary(summary)
    _print_published(summary)
    return 0


class _NoTraceback(logging.Filter):
    """Prefect logs a failed task or flow with its traceback; for errors the CLI explains in one line
    (warehouse busy or unwritable, disk full, bad rules file) the traceback is noise for an operator."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and _is_known(exc):
            record.exc_info = None
            record.exc_text = None
        return True


def _is_known(exc: BaseException) -> bool:
    import duckdb

    from newsetl.text.rules import RulesError
    from newsetl.warehouse.connect import WarehouseBusy, WarehouseError

    return isinstance(exc, WarehouseBusy | WarehouseError | RulesError | duckdb.Error | OSError)


def _quiet_known_errors() -> None:
    for name in ("prefect", "prefect.flow_runs", "prefect.task_runs"):
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(_NoTraceback())


def print_summary(summary: dict[str, Any]) -> None:
    print()
    print(f"newsetl ingest: run {summary['run_id']} into {summary['db']}")
    print(f"  inputs read     {summary['read']:>8}")
    print(f"  articles loaded {summary['loaded']:>8}")
    print(f"  skipped (known) {summary['skipped_known']:>8}")
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
    if summary["dedup"]:
        print("  dedup: " + ", ".join(f"{k}={v}" for k, v in summary["dedup"].items()))
    print("  seconds: " + ", ".join(f"{k}={v}" for k, v in summary["seconds"].items()))


def _open_read_only(args: argparse.Namespace) -> Any:
    """A read-only connection, or None after saying why not (busy past --wait, no warehouse)."""
    from newsetl.warehouse.connect import WarehouseBusy, WarehouseError, connect

    try:
        return connect(_db(args), read_only=True, wait_seconds=args.wait)
    except (WarehouseBusy, WarehouseError) as exc:
        print(f"newsetl: {exc}", file=sys.stderr)
        return None


def _print_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], max_width: int = 60) -> None:
    def cell(v: Any) -> str:
        s = "NULL" if v is None else str(v).replace("\n", "\\n")
        return s if len(s) <= max_width else s[: max_width - 1] + "…"

    table = [[cell(c) for c in columns], *[[cell(v) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
    for i, row in enumerate(table):
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def cmd_sql(args: argparse.Namespace) -> int:
    import duckdb

    con = _open_read_only(args)
    if con is None:
        return 3
    try:
        cur = con.execute(args.query)
        if cur.description is None:
            return 0
        columns = [d[0] for d in cur.description]
        rows = cur.fetchall()
    except duckdb.Error as exc:
        print(f"newsetl sql: {exc}", file=sys.stderr)
        return 2
    finally:
        con.close()
    if args.format == "json":
        for row in rows:
            print(json.dumps(dict(zip(columns, row, strict=True)), default=str, ensure_ascii=False))
    elif args.format == "csv":
        import csv

        w = csv.writer(sys.stdout)
        w.writerow(columns)
        w.writerows(rows)
    else:
        _print_rows(columns, rows)
    return 0


STATS_QUERIES = (
    ("Last runs", "SELECT run_id, status, started_at, seconds, read, loaded, skipped_known, quarantined "
                  "FROM run_health ORDER BY started_at DESC LIMIT 10"),
    ("Tables", "SELECT (SELECT count(*) FROM documents) AS documents, (SELECT count(*) FROM articles) AS articles, "
               "(SELECT count(*) FROM clusters) AS stories, (SELECT count(*) FROM removals) AS removals, "
               "(SELECT count(*) FROM quarantine) AS quarantined"),
    ("Boilerplate removed by publisher and category",
     "SELECT publisher, category, removals, articles FROM removals_by_publisher ORDER BY removals DESC LIMIT 25"),
    ("Quarantine", "SELECT stage, reason, inputs FROM quarantine_summary ORDER BY inputs DESC"),
    ("Learned boilerplate lines (recurring across stories of one publisher)",
     "SELECT l.publisher, l.sample_text, l.clusters AS stories FROM boilerplate_lines l "
     "JOIN boilerplate_publishers p USING (publisher) WHERE l.clusters >= 5 "
     "ORDER BY l.clusters DESC LIMIT 15"),
    ("Duplicates by publisher", "SELECT * FROM duplicate_rate ORDER BY articles DESC LIMIT 15"),
)


def cmd_stats(args: argparse.Namespace) -> int:
    con = _open_read_only(args)
    if con is None:
        return 3
    with con:
        for title, query in STATS_QUERIES:
            cur = con.execute(query)
            print(f"\n== {title}")
            _print_rows([d[0] for d in cur.description], cur.fetchall())
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    con = _open_read_only(args)
    if con is None:
        return 3
    fmt = "PARQUET" if args.out.endswith(".parquet") else "CSV" if args.out.endswith(".csv") else "JSON"
    source = args.view if args.view.replace("_", "").isalnum() else "canonical_articles"
    with con:
        con.execute(f"COPY (SELECT * FROM {source}) TO '{args.out.replace(chr(39), chr(39) * 2)}' (FORMAT {fmt})")
    print(f"exported {source} to {args.out}")
    return 0


def _print_published(summary: dict[str, Any]) -> None:
    done = summary.get("published")
    if done:
        print(f"  snapshot for dashboards: {done['snapshot']} ({done['seconds']['snapshot']} s)")
        print(f"  report: {done['report']} ({done['seconds']['report']} s)")


def cmd_report(args: argparse.Namespace) -> int:
    """`newsetl report --db FILE --out report.html`: FILE is a warehouse or its snapshot (same view names;
    the snapshot never waits for an ingest)."""
    import duckdb

    from newsetl.tasks.report import report_path, write_report

    con = _open_read_only(args)
    if con is None:
        return 3
    out = Path(args.out) if args.out else report_path(_db(args))
    try:
        with con:
            write_report(con, out, args.title or f"newsetl report: {_db(args).name}")
    except duckdb.CatalogException as exc:
        print(f"newsetl report: {exc.args[0].splitlines()[0]} (a warehouse of an older newsetl: its views "
              "are updated by the next `newsetl ingest`)", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"newsetl report: cannot write {out}: {exc}", file=sys.stderr)
        return 3
    print(f"wrote {out}")
    return 0


def cmd_reclean(args: argparse.Namespace) -> int:
    """Re-clean stored articles with the boilerplate lines learned so far (idempotent, audited)."""
    import uuid

    from newsetl.tasks.reclean import reclean
    from newsetl.text.learned import LearnedConfig
    from newsetl.text.rules import RulesError, load_rules
    from newsetl.warehouse.connect import WarehouseBusy, WarehouseError, migrate, run_lock, writer

    db = _db(args)
    if not db.exists():
        print(f"newsetl: no warehouse at {db}", file=sys.stderr)
        return 3
    try:
        rules = load_rules(args.rules or ())
        with run_lock(db), writer(db) as con:
            migrate(con)
            changed = reclean(con, f"reclean-{uuid.uuid4().hex[:12]}", LearnedConfig(), rules)
    except RulesError as exc:
        print(f"newsetl: {exc}", file=sys.stderr)
        return 2
    except (WarehouseBusy, WarehouseError) as exc:
        print(f"newsetl: {exc}", file=sys.stderr)
        return 3
    print(f"re-cleaned {changed} articles with learned boilerplate")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """`newsetl serve`: the exit code (0 after a clean stop, 2 if serving could not start)."""
    from newsetl.flows.serve import serve_ingest
    from newsetl.tasks.prefect_server import LocalServerConfig, ServeError

    try:
        serve_ingest(list(args.sources), str(_db(args)), interval_seconds=args.every, cron=args.cron,
                     name=args.name, limit=args.limit, rules_files=_rules_files(args) or None,
                     server=LocalServerConfig(port=args.server_port))
    except ServeError as exc:
        print(f"newsetl serve: {exc}", file=sys.stderr)
        return 2
    return 0


def _add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `newsetl serve SOURCES... [--db FILE] [--every SECONDS | --cron EXPR] [--limit N]`."""
    from newsetl.flows.serve import DEFAULT_INTERVAL_SECONDS, DEFAULT_NAME
    from newsetl.tasks.prefect_server import LocalServerConfig

    parser.add_argument("sources", nargs="+", help="files, directories, globs or URLs to ingest on each run")
    parser.add_argument("--db", help="warehouse file (default: $NEWSETL_DB or warehouse/newsetl.duckdb)")
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--every", type=int, metavar="SECONDS",
                      help=f"run every SECONDS, the first run at once (default: {DEFAULT_INTERVAL_SECONDS})")
    when.add_argument("--cron", metavar="EXPR", help='cron schedule in UTC, e.g. "0 * * * *" (on the hour)')
    parser.add_argument("--limit", type=int, default=1,
                        help="runs this process executes at once (default 1: the warehouse has one writer)")
    parser.add_argument("--name", default=DEFAULT_NAME, help=f"deployment name (default {DEFAULT_NAME})")
    parser.add_argument("--rules", action="append", help="extra boilerplate rules file (JSON); repeatable")
    parser.add_argument("--server-port", type=int, default=LocalServerConfig.port,
                        help="port of the local Prefect server started when PREFECT_API_URL is not set "
                             "(default 4200, a free port if taken; 0 = any free port)")


def _rules_files(args: argparse.Namespace) -> list[str]:
    """--rules files, then those of $NEWSETL_RULES (os.pathsep-separated)."""
    rules = list(args.rules or [])
    if env_rules := os.environ.get("NEWSETL_RULES"):
        rules.extend(p for p in env_rules.split(os.pathsep) if p)
    return rules


def _env_files(given: list[str] | None, env: str) -> list[str]:
    """Files given on the command line, then those of $env (os.pathsep-separated)."""
    files = list(given or [])
    if value := os.environ.get(env):
        files.extend(p for p in value.split(os.pathsep) if p)
    return files


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="newsetl", description="News-text ETL into DuckDB, as Prefect flows.")
    sub = ap.add_subparsers(dest="command", required=True)

    def with_db(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--db", help="warehouse file (default: $NEWSETL_DB or warehouse/newsetl.duckdb)")
        return p

    p = with_db(sub.add_parser("ingest", help="run the ingest flow once and print a summary"))
    p.add_argument("sources", nargs="+", help="files, directories, globs or URLs")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--rules", action="append", help="extra boilerplate rules file (JSON); repeatable")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes for extract/repair/clean/sign (default: one per core; 0: in-process)")
    p.add_argument("--doc-seconds", type=float, default=20.0,
                   help="time limit for one document; a slower one is quarantined (enforced in workers)")
    p.add_argument("--publishers", action="append",
                   help="publisher alias file (JSON: {\"Canonical Name\": [\"alias\", \"domain.com\"]}); repeatable; "
                        "also $NEWSETL_PUBLISHERS")
    p.set_defaults(func=cmd_ingest)

    p = with_db(sub.add_parser("reclean", help="re-clean stored articles with newly learned boilerplate"))
    p.add_argument("--rules", action="append", help="extra boilerplate rules file (JSON); repeatable")
    p.set_defaults(func=cmd_reclean)

    p = sub.add_parser("serve", help="serve the ingest flow on a schedule (starts a local Prefect server if needed)")
    _add_serve_arguments(p)
    p.set_defaults(func=cmd_serve)

    for name, func, help_text in (("sql", cmd_sql, "run a read-only SQL query"),
                                  ("stats", cmd_stats, "print runs, table sizes, removals, quarantine"),
                                  ("export", cmd_export, "export a view to parquet/csv/json")):
        p = with_db(sub.add_parser(name, help=help_text))
        p.add_argument("--wait", type=float, default=60.0, help="seconds to retry while an ingest holds the file")
        if name == "sql":
            p.add_argument("query")
            p.add_argument("--format", choices=("table", "csv", "json"), default="table")
        if name == "export":
            p.add_argument("out", help="output file: .parquet, .csv or .json")
            p.add_argument("--view", default="canonical_articles")
        p.set_defaults(func=func)

    p = with_db(sub.add_parser("report", help="write an HTML report with charts (self-contained, no network)"))
    p.add_argument("--out", help="HTML file to write (default: <warehouse stem>.report.html beside it)")
    p.add_argument("--title", help="the report's title")
    p.add_argument("--wait", type=float, default=60.0, help="seconds to retry while an ingest holds the file")
    p.set_defaults(func=cmd_report)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


def _silence_teardown() -> None:
    """After the command has finished and said everything it had to say, mute stderr for interpreter
    teardown: DuckDB 2.0's bindings print dozens of 'nanobind: leaked …' lines when objects are still
    referenced at shutdown (Prefect keeps a failed run's exception and its frames), which would bury the
    one-line error an operator needs to read. Nothing actionable is printed that late."""
    sys.stdout.flush()
    sys.stderr.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)


def entry() -> None:
    """Console-script entry point."""
    code = main()
    _silence_teardown()
    sys.exit(code)


if __name__ == "__main__":
    entry()
