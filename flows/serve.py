"""Serve the `ingest` flow on a schedule with Prefect's own scheduling (`newsetl serve`): the wiring.

What runs where:
- a Prefect API server: the one PREFECT_API_URL points at, or, when none is configured, a local
  `prefect server start` subprocess started here (its SQLite state in `<warehouse dir>/.prefect`).
  Prefect schedules only against such a server: its scheduler service creates the runs; the
  temporary in-process server that plain `ingest` uses has no scheduler ("Cannot schedule flows
  on an ephemeral server") and would never run anything;
- this process: a Prefect Runner that owns one deployment (`ingest/<name>`), polls the server for
  due runs and starts each flow run in a child process (`tasks/deployment.py`: starting, taking over
  a deployment left behind, stopping cleanly);
- the flow runs: one at a time by default (the warehouse has one writer), each holding the
  warehouse's run lock for the run and its DuckDB file only while it writes a batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping
from typing import Any

from newsetl.tasks.deployment import (
    ShutdownConfig,
    check_cron,
    check_files,
    deployment_parameters,
    serve_deployment,
    serving,
    sigterm_as_interrupt,
)
from newsetl.tasks.prefect_server import (
    LocalServerConfig,
    PrefectServerError,
    ServeError,
    api_is_healthy,
    configured_api_url,
    local_prefect_server,
    point_prefect_at,
    say,
    server_home_for,
)

# Prefect's telemetry tries the network, which this pipeline's hosts often do not have.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

DEFAULT_NAME = "newsetl-ingest"
DEFAULT_INTERVAL_SECONDS = 3600


def serve_ingest(
    sources: list[str],
    db: str,
    *,
    interval_seconds: int | None = None,
    cron: str | None = None,
    name: str = DEFAULT_NAME,
    limit: int | None = None,
    rules_files: list[str] | None = None,
    jsonl_fields: Mapping[str, str] | None = None,
    publishers_files: list[str] | None = None,
    run_options: Mapping[str, Any] | None = None,
    server: LocalServerConfig = LocalServerConfig(),
    shutdown: ShutdownConfig = ShutdownConfig(),
) -> None:
    """Serve the ingest flow on a schedule until SIGINT/SIGTERM; always leave things clean.

    Schedule: `interval_seconds` or `cron` (UTC), not both; neither means every hour, the first
    run right away. `limit`: how many runs this process executes at once (None means 1: the
    warehouse has one writer, so a second concurrent run would only refuse). Uses the Prefect
    server PREFECT_API_URL names, or starts a local one next to the warehouse (see the module doc).
    Raises ServeError when serving cannot start, WarehouseBusy when another serve serves `db`.
    """
    from newsetl.flows.ingest import ingest

    if interval_seconds is not None and cron is not None:
        raise ServeError("give either an interval or a cron schedule, not both")
    if interval_seconds is not None and interval_seconds <= 0:
        raise ServeError(f"the interval must be positive, got {interval_seconds}")
    if limit is not None and limit < 1:
        raise ServeError(f"limit must be at least 1, got {limit}")
    if not sources:
        raise ServeError("nothing to serve: no sources given")
    if cron is not None:
        check_cron(cron)
    check_files(rules_files or (), publishers_files or ())
    if interval_seconds is None and cron is None:
        interval_seconds = DEFAULT_INTERVAL_SECONDS
    params = deployment_parameters(sources, db, rules_files, jsonl_fields, publishers_files, run_options)

    with contextlib.ExitStack() as stack:
        # Until the Runner takes the signals over, SIGTERM interrupts like Ctrl-C, so that a stop
        # during the server's start still unwinds this stack (and stops the server).
        stack.enter_context(sigterm_as_interrupt())
        # One serve per warehouse, taken before any server starts: a second one took the first one's
        # deployment over (a user trial).
        stack.enter_context(serving(params["db"]))
        api_url = configured_api_url()
        shared_server = api_url is not None
        if api_url is None:
            home = server_home_for(params["db"])
            say(f"newsetl serve: no PREFECT_API_URL configured: starting a local Prefect server "
                 f"(PREFECT_HOME={home})")
            api_url = stack.enter_context(local_prefect_server(home, server))
            point_prefect_at(api_url, stack)
        elif not api_is_healthy(api_url, timeout=10):
            raise PrefectServerError(f"the Prefect server at PREFECT_API_URL={api_url} is not reachable "
                             f"(GET {api_url.rstrip('/')}/health failed)")
        say(f"newsetl serve: Prefect API {api_url}; UI {api_url.removesuffix('/api')}")
        try:
            asyncio.run(serve_deployment(ingest, params, interval_seconds, cron, name, limit or 1, shutdown,
                                         shared_server=shared_server))
        except KeyboardInterrupt:
            say("newsetl serve: interrupted while starting")
