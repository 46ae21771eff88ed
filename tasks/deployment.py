"""The lifecycle of a served deployment (`newsetl serve`): create it, run its schedule, stop it cleanly.

`flows/serve.py` wires it: which flow, which server, which schedule. This module does the work around a
Prefect Runner that owns one deployment (`ingest/<name>`), polls the server for due runs and starts each
flow run in a child process:

- starting: a deployment of the same name left by a serve process that did not stop cleanly is taken
  over (its unfinished runs marked Crashed, the deployment deleted), unless a live process elsewhere
  still polls it; an interval schedule's first run is due at once;
- stopping (SIGINT/Ctrl-C, SIGTERM) is one path: no new run starts, a run in flight is cancelled
  through Prefect (final state Cancelled; batches already committed stay, the next run picks up the
  rest), leftover unfinished runs of the deployment are set Cancelled and the deployment is DELETED
  (which also deletes its future scheduled runs; history stays under the flow). Prefect's default is
  to *pause* served deployments on shutdown; a paused deployment looks alive in the UI but schedules
  nothing, so we delete instead: the next `newsetl serve` recreates it from its arguments;
- a flow run whose serve process dies (kill -9, OOM) ends itself (`die_with_serve`);
- a flow run's process never sees the terminal's Ctrl-C (`_runs_start_deaf_to_sigint`): the serve stops
  it through Prefect, which is one path however the serve was asked to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import signal
import threading
import time
import types
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newsetl.tasks.prefect_server import ServeError, say
from newsetl.warehouse.connect import serve_lock

# Flow-run states that mean "not finished" (besides Scheduled, which deleting the deployment removes).
UNFINISHED_STATES = ("PENDING", "RUNNING", "CANCELLING", "PAUSED")
STOP_MESSAGE = "newsetl serve was stopped during this run"
STALE_MESSAGE = "left unfinished by a newsetl serve process that did not stop cleanly (killed?)"
SERVE_PID_ENV = "NEWSETL_SERVE_PID"


@dataclass(frozen=True)
class ShutdownConfig:
    # Bound on each step of stopping the Runner (a run in flight to be cancelled, processes to exit).
    runner_stop_timeout: float = 60.0
    # Bound on the API calls of the clean-up (cancel leftovers, delete the deployment).
    cleanup_timeout: float = 30.0
    # A flow run whose serve process is gone: time to record its failure, then a hard exit.
    orphan_grace_seconds: float = 60.0


# --------------------------------------------------------------------------- the flow-run side


def die_with_serve(flow: Any, flow_run: Any, state: Any) -> None:
    """`on_running` hook of served runs, in the flow-run process: end the run if serve dies.

    Prefect starts each flow run as a child of the serve process and does not stop it when that
    process is killed -9 (or OOM-killed): the orphan goes on, and at exit hangs for good in
    Prefect's log-queue drain, trying to reach a server that is gone (measured, Prefect 3.8.8),
    holding the warehouse's run lock so that every later run refuses. A watcher thread turns the
    parent's death into SIGTERM (the flow handles it like a cancellation: its `runs` row says
    cancelled, the lock is released), then exits hard after a grace period.
    """
    parent, _, grace = os.environ.get(SERVE_PID_ENV, "").partition(":")
    if parent.isdigit() and os.getppid() == int(parent):
        threading.Thread(target=_watch_parent, args=(int(parent), float(grace or 60)),
                         name="newsetl-watch-serve", daemon=True).start()


def _watch_parent(parent: int, grace: float) -> None:
    # Daemon thread: it keeps running while the main thread is stuck in interpreter shutdown.
    while os.getppid() == parent:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(grace)
    os._exit(70)


# --------------------------------------------------------------------------- serving


def deployment_parameters(sources: Sequence[str], db: str | Path, rules_files: Sequence[str] | None = None,
                          jsonl_fields: Mapping[str, str] | None = None,
                          publishers_files: Sequence[str] | None = None,
                          run_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ingest flow's parameters as stored on the deployment.

    Paths are made absolute: the deployment outlives the shell it was created from, and the UI
    and `prefect deployment run` must mean the same files. URLs are left alone.
    """
    def absolute(src: str) -> str:
        return src if "://" in src else str(Path(src).expanduser().absolute())

    params: dict[str, Any] = {"sources": [absolute(s) for s in sources], "db": str(Path(db).absolute())}
    if rules_files:
        params["rules_files"] = [absolute(r) for r in rules_files]
    if jsonl_fields:
        params["jsonl_fields"] = dict(jsonl_fields)
    if publishers_files:
        params["publishers_files"] = [absolute(p) for p in publishers_files]
    # The ingest flow's own parameters (batch_size, workers, doc_seconds, min_age), where given: else its defaults.
    params.update({k: v for k, v in (run_options or {}).items() if v is not None})
    return params


def check_cron(cron: str) -> None:
    # Prefect's own validation, so we refuse exactly what its scheduler would refuse, before any
    # server is started.
    from prefect.client.schemas.schedules import CronSchedule

    try:
        CronSchedule(cron=cron)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise ServeError(f"not a valid cron expression: {cron!r}") from exc


def check_files(rules_files: Sequence[str], publishers_files: Sequence[str]) -> None:
    # A rules or publishers file every run would refuse is refused now, once, instead of failing each
    # scheduled run an hour apart. (Each run reads them again: an edit between runs takes effect.)
    from newsetl.text.rules import user_files_problem

    if problem := user_files_problem(rules_files, publishers_files):
        raise ServeError(problem)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    def interrupt(signum: int, frame: types.FrameType | None) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


async def serve_deployment(flow: Any, params: dict[str, Any], interval_seconds: int | None, cron: str | None,
                           name: str, limit: int, shutdown: ShutdownConfig, *, shared_server: bool) -> None:
    """Serve `flow` as deployment `name` with these parameters and schedule until SIGINT/SIGTERM, then stop
    as the module doc says. Prefect must already point at a scheduling API server (`shared_server`: one
    PREFECT_API_URL names, which other processes may use too)."""
    await _take_over_deployment(name, shared_server)
    with _runs_start_deaf_to_sigint():
        await _serve_until_stopped(flow, params, interval_seconds, cron, name, limit, shutdown)


async def _serve_until_stopped(flow: Any, params: dict[str, Any], interval_seconds: int | None, cron: str | None,
                               name: str, limit: int, shutdown: ShutdownConfig) -> None:
    from prefect.runner import Runner

    # pause_on_shutdown=False: we delete the deployment ourselves (module doc). The Runner name is
    # unique per process so two serve processes on one server never look like one runner.
    runner = Runner(name=f"{name}-{uuid.uuid4().hex[:8]}", pause_on_shutdown=False, limit=limit)
    # Read by die_with_serve in the flow-run processes (they inherit the environment).
    os.environ[SERVE_PID_ENV] = f"{os.getpid()}:{shutdown.orphan_grace_seconds:g}"
    served = flow.with_options(on_running=[*flow.on_running_hooks, die_with_serve])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    stop_requested: datetime.datetime | None = None
    deployment_id: uuid.UUID | None = None
    try:
        deployment_id = await runner.aadd_flow(
            served, name=name, interval=interval_seconds, cron=cron, parameters=params,
            # Explicitly active: a deployment of this name paused by another tool would otherwise
            # keep its paused flag and never schedule anything.
            paused=False,
            description=f"newsetl ingest of {', '.join(params['sources'])} into {params['db']}",
            tags=["newsetl"],
        )
        if interval_seconds is not None:
            # An interval schedule is anchored at "now" and Prefect's scheduler creates runs only for
            # times after it looks, so the first run came one interval later (10 minutes for --every 600).
            # As documented: the first run at once, then every interval.
            await _run_now(deployment_id)
        when = f"every {interval_seconds} s" if interval_seconds is not None else f"cron {cron!r} (UTC)"
        say(f"newsetl serve: serving deployment 'ingest/{name}' ({deployment_id}) {when}, at most "
             f"{limit} run(s) at once; stop with Ctrl-C or SIGTERM")
        serving = asyncio.create_task(runner.start())
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
        in_flight = "cancelling the run in flight, " if _run_processes(runner) else ""
        say(f"newsetl serve: stopping: {in_flight}deleting the deployment...")
        stop_requested = datetime.datetime.now(datetime.UTC)
        await _stop_runner(runner, serving, shutdown.runner_stop_timeout)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        if deployment_id is not None:
            try:
                await asyncio.wait_for(_clean_up(deployment_id, stop_requested), shutdown.cleanup_timeout)
            except Exception as exc:  # report and go on: the server must still stop
                say(f"newsetl serve: clean-up of deployment {deployment_id} failed: "
                     f"{type(exc).__name__}: {exc}")
            else:
                say(f"newsetl serve: stopped; deployment 'ingest/{name}' deleted, no run left unfinished")


async def _run_now(deployment_id: uuid.UUID) -> None:
    """A flow run of the deployment, due now: the Runner picks it up at its next poll."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        await client.create_flow_run_from_deployment(deployment_id, tags=["newsetl", "first-run"])


@contextlib.contextmanager
def _runs_start_deaf_to_sigint() -> Iterator[None]:
    """While open, the Runner starts each flow-run process with SIGINT blocked, for the process's life.

    Ctrl-C in a terminal reaches the whole process group. A run's process that got it in its first
    seconds, still importing Prefect in multiprocessing's spawn start-up, printed a KeyboardInterrupt
    traceback under the serve's clean "stopping" (a user trial); later on it stopped by itself while the
    serve cancelled it too. The serve stops its runs in any case (`_stop_runner`: cancelled through the
    API, then Prefect's SIGTERM, which the run handles as a stop), so the run's process need not hear the
    terminal at all, as when a service manager sends SIGTERM to the serve alone. The child inherits the
    signal mask of the thread that spawns it (across exec too; Python does not unblock it), so SIGINT is
    blocked around the spawn, in this thread only: the serve itself still gets every Ctrl-C, at most
    held for the milliseconds of the spawn. Its workers ignore SIGINT anyway (`tasks/pool.py`).

    The Runner starts an in-memory flow through `prefect.runner._starter_direct.run_flow_in_subprocess`,
    the module reference Prefect 3.8 names as the one to patch to override; without it (another Prefect),
    runs start as before."""
    from multiprocessing import resource_tracker

    from prefect.runner import _starter_direct

    original = getattr(_starter_direct, "run_flow_in_subprocess", None)
    if original is None:
        yield
        return

    def start_deaf(*args: Any, **kwargs: Any) -> Any:
        # The first spawn of a process also starts multiprocessing's resource tracker, which unblocks
        # SIGINT in this thread when it has started (its own guard, bpo-33613): start it first.
        resource_tracker.ensure_running()
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            return original(*args, **kwargs)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)

    _starter_direct.run_flow_in_subprocess = start_deaf
    try:
        yield
    finally:
        _starter_direct.run_flow_in_subprocess = original


def _request_stop(stop: asyncio.Event, sig: signal.Signals) -> None:
    if stop.is_set():
        say(f"newsetl serve: {sig.name} again: already stopping")
    stop.set()


async def _stop_runner(runner: Any, serving: asyncio.Task[None], timeout: float) -> None:
    # 1. No new run from here on: the flags Runner.astop() sets first. Without this, the slot that
    #    a cancelled run frees is taken at once by the next (late) scheduled run.
    runner.stopping = True
    poller = getattr(runner, "_scheduled_run_poller", None)  # private in 3.8; absent: one more run
    if poller is not None:                                   # may start, and the clean-up cancels it
        poller.stopping = True
    # 2. Cancel runs in flight through the API (state Cancelling): the Runner then stops them the
    #    way it stops a run cancelled from the UI. Letting Runner.astop() kill them instead races
    #    with its exit-code watcher, which then reports the run Crashed (Prefect 3.8.8).
    await _cancel_in_flight(_run_processes(runner), timeout)
    # 3. Let every run process exit on its own: astop kills whatever process it still tracks and
    #    marks that run Cancelled -- even a run that has reported Completed and is only tearing down.
    deadline = time.monotonic() + timeout
    while _run_processes(runner) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    # 4. Only now stop the Runner's loops.
    try:
        await asyncio.wait_for(runner.astop(), timeout)
        await asyncio.wait_for(serving, timeout)
    except (TimeoutError, asyncio.CancelledError):
        say(f"newsetl serve: the Runner did not stop within {timeout:.0f} s; cleaning up anyway")
        serving.cancel()
        with contextlib.suppress(BaseException):
            await serving


def _run_processes(runner: Any) -> set[uuid.UUID]:
    """Ids of the flow runs whose process this Runner still tracks (started, not yet exited).

    `_process_manager` is private to Prefect 3.8's Runner; without it we return nothing, and the
    clean-up still leaves no run unfinished (a just-completed run might then read Cancelled).
    """
    processes = getattr(runner, "_process_manager", None)
    if processes is None or not hasattr(processes, "flow_run_ids"):
        return set()
    return set(processes.flow_run_ids())


def _runs_filter(*, deployment_id: uuid.UUID | None = None, run_ids: Sequence[uuid.UUID] | None = None,
                 states: Sequence[str]) -> dict[str, Any]:
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    run_filter = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(
        any_=[StateType(s) for s in states])))
    if run_ids is not None:
        run_filter.id = FlowRunFilterId(any_=list(run_ids))
    if deployment_id is None:
        return {"flow_run_filter": run_filter}
    return {"flow_run_filter": run_filter,
            "deployment_filter": DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))}


async def _cancel_in_flight(run_ids: set[uuid.UUID], timeout: float) -> None:
    """Ask Prefect to cancel the runs this process has in flight; wait until they are final.

    Committed batches stay in the warehouse (one transaction per batch) and the next run picks up
    the rest, so cancelling a run never loses or duplicates data. Runs already final (completed,
    only tearing down) are left alone.
    """
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelling

    if not run_ids:
        return
    async with get_client() as client:
        runs = await client.read_flow_runs(**_runs_filter(run_ids=list(run_ids), states=("PENDING", "RUNNING")))
        for run in runs:
            await client.set_flow_run_state(run.id, Cancelling(message=STOP_MESSAGE), force=True)
        deadline = time.monotonic() + timeout
        while runs and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            runs = await client.read_flow_runs(
                **_runs_filter(run_ids=[r.id for r in runs], states=("PENDING", "RUNNING", "CANCELLING")))


async def _clean_up(deployment_id: uuid.UUID, stop_requested: datetime.datetime | None) -> None:
    """Leave no run unfinished and no deployment paused: cancel leftovers, delete the deployment.

    Leftovers: runs the Runner had claimed but not started (Pending), and runs that the Runner's
    exit watcher reported Crashed after we asked them to stop (their true story is Cancelled).
    Deleting the deployment deletes its Scheduled runs on the server side; finished runs stay in
    the history of the `ingest` flow.
    """
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled

    async with get_client() as client:
        stale = await client.read_flow_runs(**_runs_filter(deployment_id=deployment_id, states=UNFINISHED_STATES))
        if stop_requested is not None:
            crashed = await client.read_flow_runs(**_runs_filter(deployment_id=deployment_id, states=("CRASHED",)))
            stale += [r for r in crashed if r.state is not None and r.state.timestamp >= stop_requested]
        for run in stale:
            await client.set_flow_run_state(run.id, Cancelled(message=STOP_MESSAGE), force=True)
        await client.delete_deployment(deployment_id)


async def _take_over_deployment(name: str, shared_server: bool) -> None:
    """Start from a clean slate: remove a deployment of this name left by a serve process that did
    not stop cleanly (killed -9, power loss), after marking its unfinished runs Crashed.

    Without this its Running runs would stay Running in the UI for good, and the runs that came
    due while nobody served (Late) would all start, one after another, as soon as we serve -- for
    a drop folder one run does it all. The deployment may instead be served by a live process
    elsewhere: on a shared server, or on a local one whose Prefect home another serve uses too (two
    warehouses in one folder share `<folder>/.prefect`; one warehouse has one serve, `serving`). Its
    Runner updates `last_polled` at every poll, so we watch it for two poll intervals and refuse to
    take over if it moves (`shared_server` only words the message).
    """
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import get_current_settings
    from prefect.states import Crashed

    async with get_client() as client:
        try:
            deployment = await client.read_deployment_by_name(f"ingest/{name}")
        except ObjectNotFound:
            return
        if deployment.work_pool_name:
            raise ServeError(f"deployment 'ingest/{name}' belongs to work pool {deployment.work_pool_name!r} "
                             "(prefect.yaml?): serve under another --name")
        poll = float(get_current_settings().runner.poll_frequency)
        polled = deployment.last_polled
        if polled is not None and _age(polled) < 3 * poll + 5:
            say(f"newsetl serve: deployment 'ingest/{name}' was polled {_age(polled):.0f} s ago; "
                 f"checking for {2 * poll + 2:.0f} s that no other serve process owns it...")
            await asyncio.sleep(2 * poll + 2)
            again = await client.read_deployment(deployment.id)
            if again.last_polled is not None and again.last_polled > polled:
                where = ("" if shared_server else " (a warehouse in the same folder shares this local Prefect "
                         "server's home)")
                raise ServeError(f"deployment 'ingest/{name}' is being served by another process{where}: stop "
                                 "that one, or serve under another --name")
        stale = await client.read_flow_runs(**_runs_filter(deployment_id=deployment.id, states=UNFINISHED_STATES))
        for run in stale:
            await client.set_flow_run_state(run.id, Crashed(message=STALE_MESSAGE), force=True)
        await client.delete_deployment(deployment.id)
    say(f"newsetl serve: removed deployment 'ingest/{name}' left by a serve process that did not stop "
         f"cleanly ({len(stale)} unfinished run(s) marked Crashed)")


def _age(moment: datetime.datetime) -> float:
    return (datetime.datetime.now(datetime.UTC) - moment).total_seconds()


def serving(db: str) -> contextlib.AbstractContextManager[None]:
    """The warehouse's serve lock (`warehouse.connect.serve_lock`) for as long as this process serves it:
    WarehouseBusy, naming the holder, when another `newsetl serve` already does."""
    return serve_lock(db)
