"""Serve the `ingest` flow on a schedule with Prefect's own scheduling (`newsetl serve`).

What runs where:
- a Prefect API server: the one PREFECT_API_URL points at, or, when none is configured, a local
  `prefect server start` subprocess started here (its SQLite state in `<warehouse dir>/.prefect`).
  Prefect schedules only against such a server: its scheduler service creates the runs; the
  temporary in-process server that plain `ingest` uses has no scheduler ("Cannot schedule flows
  on an ephemeral server") and would never run anything;
- this process: a Prefect Runner that owns one deployment (`ingest/<name>`), polls the server for
  due runs and starts each flow run in a child process;
- the flow runs: one at a time by default (the warehouse has one writer), each holding the
  warehouse's run lock for the run and its DuckDB file only while it writes a batch.

Stopping (SIGINT/Ctrl-C, SIGTERM, or any error) is one path: the Runner stops polling and cancels a
run in flight (final state Cancelled; batches already committed stay, the next run picks up the
rest), leftover non-final runs of the deployment are set Cancelled, the deployment is DELETED
(which also deletes its future scheduled runs; history stays under the flow), and the local server,
if started here, is terminated. Prefect's default is to *pause* served deployments on shutdown; a
paused deployment silently stops scheduling when served again, so we delete instead: the next
`newsetl serve` recreates it from its arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import datetime
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Prefect's telemetry tries the network, which this pipeline's hosts often do not have.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

DEFAULT_NAME = "newsetl-ingest"
DEFAULT_INTERVAL_SECONDS = 3600
SERVER_HOME_DIRNAME = ".prefect"
# Flow-run states that mean "not finished": after a stop, none of the deployment's runs may stay in one.
UNFINISHED_STATES = ("SCHEDULED", "PENDING", "RUNNING", "CANCELLING", "PAUSED")

log = logging.getLogger("newsetl.serve")


class ServeError(RuntimeError):
    """Serving could not start (bad arguments, the Prefect server did not come up)."""


@dataclass(frozen=True)
class LocalServerConfig:
    """How to start the local Prefect API server when PREFECT_API_URL is not configured.

    port: 4200 is Prefect's usual port (the UI is easy to find); when it is taken we use a free
    one rather than fail. 0 always asks the OS for a free port (tests).
    """

    host: str = "127.0.0.1"
    port: int = 4200
    # A cold start (fresh PREFECT_HOME: database migrations) took 28 s on a busy 2-core machine,
    # a warm one 10-12 s; allow for a slow disk.
    startup_timeout: float = 120.0
    stop_timeout: float = 20.0


@dataclass(frozen=True)
class ShutdownConfig:
    # Bound on the Runner's own shutdown (cancelling a run in flight) before we clean up anyway.
    runner_stop_timeout: float = 60.0
    # Bound on the API calls of the clean-up (cancel leftovers, delete the deployment).
    cleanup_timeout: float = 30.0


# --------------------------------------------------------------------------- the local Prefect server


def server_home_for(db: str | Path) -> Path:
    """PREFECT_HOME of the local server: a folder next to the warehouse, so the run history the
    Prefect UI shows lives (and is backed up, and is deleted) with the data it describes."""
    return Path(db).absolute().parent / SERVER_HOME_DIRNAME


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def api_is_healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=timeout) as resp:
            return bool(resp.status == 200 and resp.read().strip() == b"true")
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _load_prctl() -> Any:
    """libc's prctl on Linux, else None (no parent-death signal elsewhere)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


PR_SET_PDEATHSIG = 1


def _server_preexec(prctl: Any) -> Any:
    """A preexec_fn for the server: if the serve process is killed -9, the kernel sends the server
    SIGTERM instead of leaving an orphan holding the port and the database. `prctl` is resolved in
    the parent so that the child, between fork and exec, only makes the one call."""
    def arm() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    return arm


SERVE_PID_ENV = "NEWSETL_SERVE_PID"


# After the serve process is gone: time for the flow to record its failure, then a hard exit.
ORPHAN_GRACE_SECONDS = 60.0


def die_with_serve(flow: Any, flow_run: Any, state: Any) -> None:
    """`on_running` hook of served runs, in the flow-run process: end the run if serve dies.

    Prefect starts each flow run as a child of the serve process and does not stop it when that
    process is killed -9 (or OOM-killed): the orphan goes on, and at exit hangs for good in
    Prefect's log-queue drain, trying to reach a server that is gone (measured, Prefect 3.8.8).
    A watcher thread turns the parent's death into SIGTERM (the flow handles it like a
    cancellation: its `runs` row says failed, the warehouse lock is released), then exits hard.
    """
    parent = int(os.environ.get(SERVE_PID_ENV) or 0)
    if parent and os.getppid() == parent:
        threading.Thread(target=_watch_parent, args=(parent, ORPHAN_GRACE_SECONDS),
                         name="newsetl-watch-serve", daemon=True).start()


def _watch_parent(parent: int, grace: float) -> None:
    # Daemon thread: it keeps running while the main thread is stuck in interpreter shutdown.
    while os.getppid() == parent:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(grace)
    os._exit(70)


def server_env(home: Path) -> dict[str, str]:
    """Environment of the server subprocess: our PREFECT_HOME, no telemetry, and no client
    settings that would point it at another server."""
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_PROFILE")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
    return env


@contextlib.contextmanager
def local_prefect_server(home: Path, config: LocalServerConfig = LocalServerConfig()) -> Iterator[str]:
    """Start `prefect server start` in a subprocess, wait until healthy, yield its API URL, and
    terminate it (and only it) on exit. Its output goes to `<home>/server.log`."""
    home.mkdir(parents=True, exist_ok=True)
    port = config.port
    if port == 0 or not port_is_free(config.host, port):
        port = free_port(config.host)
    api_url = f"http://{config.host}:{port}/api"
    log_path = home / "server.log"
    cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", config.host, "--port", str(port)]
    started = time.monotonic()
    prctl = _load_prctl()
    with open(log_path, "ab") as log_file:
        # Own session: a Ctrl-C in the terminal reaches the serve process only, which still needs
        # the server to cancel runs and delete its deployment before stopping the server itself.
        proc = subprocess.Popen(cmd, env=server_env(home), stdout=log_file, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=_server_preexec(prctl) if prctl is not None else None)
    try:
        deadline = started + config.startup_timeout
        while not api_is_healthy(api_url):
            if proc.poll() is not None:
                raise ServeError(f"the Prefect server exited with code {proc.returncode} before it was "
                                 f"healthy; see {log_path}:\n{_tail(log_path)}")
            if time.monotonic() > deadline:
                raise ServeError(f"the Prefect server at {api_url} was not healthy after "
                                 f"{config.startup_timeout:.0f} s; see {log_path}:\n{_tail(log_path)}")
            time.sleep(0.25)
        _say(f"newsetl serve: Prefect server healthy after {time.monotonic() - started:.1f} s "
             f"(pid {proc.pid}, log {log_path})")
        yield api_url
    finally:
        stop_process(proc, config.stop_timeout)


def stop_process(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM the process (uvicorn shuts down gracefully on it), SIGKILL after `timeout`."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(10)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def configured_api_url() -> str | None:
    """The API URL Prefect would use (environment, .env or the active profile), or None."""
    from prefect.settings import PREFECT_API_URL

    value = PREFECT_API_URL.value()
    return str(value) if value else None


# --------------------------------------------------------------------------- serving


def deployment_parameters(sources: Sequence[str], db: str | Path,
                          rules_files: Sequence[str] | None = None) -> dict[str, Any]:
    """The ingest flow's parameters as stored on the deployment.

    Paths are made absolute: the deployment outlives the shell it was created from, and the UI
    and `prefect deployment run` must mean the same files. URLs are left alone.
    """
    def absolute(src: str) -> str:
        return src if "://" in src else str(Path(src).expanduser().absolute())

    params: dict[str, Any] = {"sources": [absolute(s) for s in sources], "db": str(Path(db).absolute())}
    if rules_files:
        params["rules_files"] = [absolute(r) for r in rules_files]
    return params


def serve_ingest(
    sources: list[str],
    db: str,
    *,
    interval_seconds: int | None = None,
    cron: str | None = None,
    name: str = DEFAULT_NAME,
    limit: int | None = None,
    rules_files: list[str] | None = None,
    server: LocalServerConfig = LocalServerConfig(),
    shutdown: ShutdownConfig = ShutdownConfig(),
) -> None:
    """Serve the ingest flow on a schedule until SIGINT/SIGTERM; always leave things clean.

    Schedule: `interval_seconds` or `cron` (UTC), not both; neither means every hour, first run
    right away. `limit`: how many runs this process executes at once (default 1: the warehouse
    has one writer, so a second concurrent run would only refuse). Uses the Prefect server that
    PREFECT_API_URL names, or starts a local one next to the warehouse (see the module doc).
    """
    if interval_seconds is not None and cron is not None:
        raise ServeError("give either an interval or a cron schedule, not both")
    if interval_seconds is not None and interval_seconds <= 0:
        raise ServeError(f"the interval must be positive, got {interval_seconds}")
    if limit is not None and limit < 1:
        raise ServeError(f"limit must be at least 1, got {limit}")
    if not sources:
        raise ServeError("nothing to serve: no sources given")
    if cron is not None:
        _check_cron(cron)
    if interval_seconds is None and cron is None:
        interval_seconds = DEFAULT_INTERVAL_SECONDS
    params = deployment_parameters(sources, db, rules_files)

    api_url = configured_api_url()
    with contextlib.ExitStack() as stack:
        if api_url is None:
            home = server_home_for(params["db"])
            _say(f"newsetl serve: no PREFECT_API_URL configured: starting a local Prefect server "
                 f"(PREFECT_HOME={home})")
            api_url = stack.enter_context(local_prefect_server(home, server))
            _point_prefect_at(api_url, stack)
        elif not api_is_healthy(api_url, timeout=10):
            raise ServeError(f"the Prefect server at PREFECT_API_URL={api_url} is not reachable "
                             f"(GET {api_url.rstrip('/')}/health failed)")
        _say(f"newsetl serve: Prefect API {api_url}; UI {api_url.removesuffix('/api')}")
        asyncio.run(_serve(params, interval_seconds, cron, name, limit or 1, shutdown))


def _check_cron(cron: str) -> None:
    # Prefect's own validation, so we refuse exactly what its scheduler would refuse, before any
    # server is started.
    from prefect.client.schemas.schedules import CronSchedule

    try:
        CronSchedule(cron=cron)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise ServeError(f"not a valid cron expression: {cron!r}") from exc


def _point_prefect_at(api_url: str, stack: contextlib.ExitStack) -> None:
    """Make this process, and the flow-run processes it spawns, use `api_url`."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    previous = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = api_url  # inherited by the flow-run child processes
    stack.callback(_restore_env, "PREFECT_API_URL", previous)
    # Prefect's settings were read at import: the environment alone does not reach this process.
    stack.enter_context(temporary_settings({PREFECT_API_URL: api_url}))


def _restore_env(key: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(key, None)
    else:
        os.environ[key] = value


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def _serve(params: dict[str, Any], interval_seconds: int | None, cron: str | None, name: str,
                 limit: int, shutdown: ShutdownConfig) -> None:
    from prefect.runner import Runner

    from flows.ingest import ingest

    # pause_on_shutdown=False: we delete the deployment ourselves (module doc). The Runner name is
    # unique per process so two serve processes on one server never look like one runner.
    runner = Runner(name=f"{name}-{uuid.uuid4().hex[:8]}", pause_on_shutdown=False, limit=limit)
    os.environ[SERVE_PID_ENV] = str(os.getpid())  # read by die_with_serve in the flow-run processes
    served = ingest.with_options(on_running=[*ingest.on_running_hooks, die_with_serve])
    deployment_id = await runner.aadd_flow(
        served, name=name, interval=interval_seconds, cron=cron, parameters=params,
        # Explicitly active: a deployment of this name left paused by an earlier crash or by
        # another tool would otherwise keep its paused flag and never schedule anything.
        paused=False,
        description=f"newsetl ingest of {', '.join(params['sources'])} into {params['db']}",
        tags=["newsetl"],
    )
    when = f"every {interval_seconds} s" if interval_seconds is not None else f"cron {cron!r} (UTC)"
    _say(f"newsetl serve: serving deployment 'ingest/{name}' ({deployment_id}) {when}, at most {limit} "
         f"run(s) at once; stop with Ctrl-C or SIGTERM")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    stop_requested: datetime.datetime | None = None
    serving = asyncio.create_task(runner.start())
    try:
        # Runner.start() installs its own SIGTERM handler (it stops with sys.exit from inside the
        # event loop and, by default, pauses deployments). Wait until it has, then take both
        # signals over so that SIGINT and SIGTERM go through the one clean path below.
        while not runner.started and not serving.done():
            await asyncio.sleep(0.05)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, _request_stop, stop, sig)
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait({serving, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if serving.done():
            serving.result()  # the Runner stopped on its own: surface its error
            return
        _say("newsetl serve: stopping: cancelling a run in flight, deleting the deployment...")
        # Cancel through the API first (state Cancelling): the Runner then stops the run the way it
        # stops a run cancelled from the UI. Letting Runner.astop() kill it instead races with its own
        # exit-code watcher, which reports the run Crashed (measured with Prefect 3.8.8).
        stop_requested = datetime.datetime.now(datetime.UTC)
        # No new run from here on: the flags Runner.astop() sets first. Without this, the slot that
        # the cancelled run frees is taken at once by the next (late) scheduled run.
        runner.stopping = True
        poller = getattr(runner, "_scheduled_run_poller", None)  # private in 3.8; absent: one more run
        if poller is not None:                                   # starts, and astop/clean-up cancel it
            poller.stopping = True
        await _cancel_in_flight(deployment_id, shutdown.runner_stop_timeout)
        # Then let every run process exit on its own before Runner.astop(): astop kills whatever
        # process it still tracks and marks that run Cancelled -- even a run that has already
        # reported Completed and is only tearing down (seen with Prefect 3.8.8).
        await _wait_for_run_processes(runner, shutdown.runner_stop_timeout)
        try:
            await asyncio.wait_for(runner.astop(), shutdown.runner_stop_timeout)
            await asyncio.wait_for(serving, shutdown.runner_stop_timeout)
        except (TimeoutError, asyncio.CancelledError):
            log.warning("the Runner did not stop within %.0f s; cleaning up anyway",
                        shutdown.runner_stop_timeout)
            serving.cancel()
            with contextlib.suppress(BaseException):
                await serving
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        try:
            await asyncio.wait_for(_clean_up(deployment_id, stop_requested), shutdown.cleanup_timeout)
        except Exception as exc:  # report and go on: the server must still stop
            _say(f"newsetl serve: clean-up of deployment {deployment_id} failed: {type(exc).__name__}: {exc}")
        else:
            _say(f"newsetl serve: stopped; deployment 'ingest/{name}' deleted, no run left unfinished")


def _request_stop(stop: asyncio.Event, sig: signal.Signals) -> None:
    if stop.is_set():
        _say(f"newsetl serve: {sig.name} again: already stopping")
    stop.set()


def _unfinished_runs_filter(deployment_id: uuid.UUID, states: Sequence[str]) -> dict[str, Any]:
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    return {
        "deployment_filter": DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
        "flow_run_filter": FlowRunFilter(state=FlowRunFilterState(
            type=FlowRunFilterStateType(any_=[StateType(s) for s in states]))),
    }


STOP_MESSAGE = "newsetl serve was stopped during this run"


async def _cancel_in_flight(deployment_id: uuid.UUID, timeout: float) -> None:
    """Ask Prefect to cancel the deployment's running/pending runs; wait until they are final.

    Committed batches stay in the warehouse (one transaction per batch) and the next run picks up
    the rest, so cancelling a run never loses or duplicates data.
    """
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelling

    active = ("PENDING", "RUNNING")
    async with get_client() as client:
        runs = await client.read_flow_runs(**_unfinished_runs_filter(deployment_id, active))
        for run in runs:
            await client.set_flow_run_state(run.id, Cancelling(message=STOP_MESSAGE), force=True)
        deadline = time.monotonic() + timeout
        while runs and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            runs = await client.read_flow_runs(
                **_unfinished_runs_filter(deployment_id, (*active, "CANCELLING")))


async def _wait_for_run_processes(runner: Any, timeout: float) -> None:
    # `_process_manager` is private to Prefect 3.8's Runner; without it we skip the wait and the
    # clean-up below still leaves no run unfinished (a just-completed run might read Cancelled).
    processes = getattr(runner, "_process_manager", None)
    if processes is None or not hasattr(processes, "flow_run_ids"):
        return
    deadline = time.monotonic() + timeout
    while processes.flow_run_ids() and time.monotonic() < deadline:
        await asyncio.sleep(0.2)


async def _clean_up(deployment_id: uuid.UUID, stop_requested: datetime.datetime | None) -> None:
    """Leave no run unfinished and no deployment paused: cancel leftovers, delete the deployment.

    Leftovers: runs the Runner had claimed but not started (Pending), runs of this deployment left
    by an earlier serve killed -9, and runs that the Runner's exit watcher reported Crashed after
    we asked them to stop (their true story is Cancelled). Deleting the deployment deletes its
    Scheduled runs on the server side; finished runs stay in the history of the `ingest` flow.
    """
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled

    async with get_client() as client:
        stale = await client.read_flow_runs(
            **_unfinished_runs_filter(deployment_id, [s for s in UNFINISHED_STATES if s != "SCHEDULED"]))
        if stop_requested is not None:
            crashed = await client.read_flow_runs(**_unfinished_runs_filter(deployment_id, ("CRASHED",)))
            stale += [r for r in crashed if r.state is not None and r.state.timestamp >= stop_requested]
        for run in stale:
            await client.set_flow_run_state(run.id, Cancelled(message=STOP_MESSAGE), force=True)
        await client.delete_deployment(deployment_id)


# --------------------------------------------------------------------------- command line


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `newsetl serve SOURCES... [--db FILE] [--every SECONDS | --cron EXPR] [--limit N]`."""
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


def run_serve(args: argparse.Namespace) -> int:
    """Run `newsetl serve` from parsed arguments; the exit code (0 after a clean stop)."""
    from warehouse.connect import default_db_path

    rules = list(args.rules or [])
    if env_rules := os.environ.get("NEWSETL_RULES"):
        rules.extend(p for p in env_rules.split(os.pathsep) if p)
    db = str(Path(args.db) if args.db else default_db_path())
    try:
        serve_ingest(list(args.sources), db, interval_seconds=args.every, cron=args.cron, name=args.name,
                     limit=args.limit, rules_files=rules or None,
                     server=LocalServerConfig(port=args.server_port))
    except ServeError as exc:
        print(f"newsetl serve: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m flows.serve ...`: the same as `newsetl serve ...`."""
    parser = argparse.ArgumentParser(prog="newsetl serve", description=__doc__.splitlines()[0])
    add_serve_arguments(parser)
    return run_serve(parser.parse_args(argv))


if __name__ == "__main__":
    # Through the importable module, not __main__: the flow and its hook are pickled into each
    # flow-run process by reference to `flows.serve`, which that process can import.
    from flows.serve import main as _main

    sys.exit(_main())

