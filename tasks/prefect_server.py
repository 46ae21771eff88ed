"""The Prefect API servers newsetl runs: a local `prefect server start` for scheduling (`newsetl serve`)
and a temporary one tied to a one-shot `newsetl ingest`, plus pointing this process at either.

Prefect schedules only against a real server: its scheduler service creates the runs; the temporary
in-process server that a plain flow call would start has no scheduler ("Cannot schedule flows on an
ephemeral server"), and Prefect's own temporary server survives a kill -9 of the process that started
it. So both are started here as subprocesses with a parent-death signal.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Prefect's telemetry tries the network, which this pipeline's hosts often do not have.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

PR_SET_PDEATHSIG = 1  # linux/prctl.h

# Both servers started here write task runs in batches. Prefect's task-run recorder defaults to one
# database transaction per task-run event (batch size 1): 30-40 ms of server CPU per task run (measured
# over 40 task runs; an ingest of 10,000 articles has ~53, on the flow's core when it has only one).
# Batched (flushed at 200 events, every 5 s and on shutdown), the UI shows task-run states up to 5 s
# late; nothing in a flow run reads them back. Defaults only: a setting in the environment wins.
BATCHED_RECORDING = {
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "200",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE": "500",
}


class ServeError(RuntimeError):
    """Serving could not start (bad arguments, the Prefect server unreachable or not healthy)."""


class PrefectServerError(ServeError):
    """The Prefect API server could not be started or reached: not the command's fault nor the warehouse's,
    so the CLI gives it an exit code of its own (7) whichever command met it."""

@dataclass(frozen=True)
class LocalServerConfig:
    """How to start the local Prefect API server when PREFECT_API_URL is not configured.

    port: 4200 is Prefect's usual port (the UI is easy to find); when it is taken we use a free
    one rather than fail. 0 always asks the OS for a free port (tests).
    """

    host: str = "127.0.0.1"
    port: int = 4200
    # A cold start (fresh PREFECT_HOME: database migrations) took 17-28 s on a busy 2-core machine,
    # a warm one 8-12 s; allow for a slow disk.
    startup_timeout: float = 120.0
    stop_timeout: float = 20.0

SERVER_HOME_DIRNAME = ".prefect"

def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)

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

def _await_health(proc: subprocess.Popen[bytes], api_url: str, deadline: float, interval: float,
                  check_timeout: float = 1.0, port: int | None = None) -> str | None:
    """Poll the server's health check until it answers (None), the process exits ("exited") or the
    monotonic `deadline` passes ("timeout"); the caller words the error. With `port`, an answer counts only
    from a server `proc` started: another process listening there is "taken"."""
    while not api_is_healthy(api_url, timeout=check_timeout):
        if proc.poll() is not None:
            return "exited"
        if time.monotonic() > deadline:
            return "timeout"
        time.sleep(interval)
    if port is not None and _listener_is_ours(proc, port) is False:
        return "taken"
    return None


def _listener_is_ours(proc: subprocess.Popen[bytes], port: int) -> bool | None:
    """Whether the process listening on TCP `port` is `proc` or one of its children (None: cannot tell,
    e.g. no permission to list sockets)."""
    import psutil

    try:
        pids = {c.pid for c in psutil.net_connections(kind="tcp")
                if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port}
        ours = {proc.pid, *(child.pid for child in psutil.Process(proc.pid).children(recursive=True))}
    except (psutil.Error, OSError):
        return None
    if None in pids or not pids:
        return None
    return bool(pids & ours)

def _load_prctl() -> Any:
    """libc's prctl on Linux, else None (no parent-death signal elsewhere)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

def _server_preexec(prctl: Any) -> Callable[[], None]:
    """preexec_fn of the server: if the serve process is killed -9, the kernel sends the server
    SIGTERM instead of leaving an orphan holding the port and the database. `prctl` is resolved
    in the parent so that the child, between fork and exec, only makes the one call."""
    def arm() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    return arm

def server_env(home: Path) -> dict[str, str]:
    """Environment of the server subprocess: our PREFECT_HOME, no telemetry, and no client
    settings that would point it at another server."""
    env = BATCHED_RECORDING | {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_PROFILE")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
    return env

@contextlib.contextmanager
def local_prefect_server(home: Path, config: LocalServerConfig = LocalServerConfig()) -> Iterator[str]:
    """Start `prefect server start` in a subprocess, wait until healthy, yield its API URL, and
    terminate it (and only it) on exit. Its output goes to `<home>/server.log`.

    The port is checked free before the start, which another process can take in between (two serves
    started at once both chose 4200): the server that then answers the health check is not ours, and
    ours fails to bind. So the answer counts only from our own process; else ours is stopped and started
    again on a free port (a user trial found the second serve running on the first one's server)."""
    home.mkdir(parents=True, exist_ok=True)
    port = config.port
    if port == 0 or not port_is_free(config.host, port):
        port = free_port(config.host)
    log_path = home / "server.log"
    prctl = _load_prctl()
    started = time.monotonic()
    for attempt in range(_PORT_ATTEMPTS):
        api_url = f"http://{config.host}:{port}/api"
        cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", config.host, "--port", str(port)]
        with open(log_path, "ab") as log_file:
            # Own session: a Ctrl-C in the terminal reaches the serve process only, which still needs
            # the server to cancel runs and delete its deployment before stopping the server itself.
            proc = subprocess.Popen(cmd, env=server_env(home), stdout=log_file, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    preexec_fn=_server_preexec(prctl) if prctl is not None else None)
        try:
            failure = _await_health(proc, api_url, started + config.startup_timeout, interval=0.25,
                                    check_timeout=2.0, port=port)
            if failure == "taken" and attempt + 1 < _PORT_ATTEMPTS:
                say(f"newsetl serve: another process took port {port} while our Prefect server started; "
                    "starting it on a free port")
                stop_process(proc, config.stop_timeout)
                port = free_port(config.host)
                continue
            if failure == "taken":
                raise PrefectServerError(f"another process answers on port {port} each time the Prefect server "
                                         f"starts; see {log_path}:\n{_tail(log_path)}")
            if failure == "exited":
                raise PrefectServerError(f"the Prefect server exited with code {proc.returncode} before it was "
                                 f"healthy; see {log_path}:\n{_tail(log_path)}")
            if failure == "timeout":
                raise PrefectServerError(f"the Prefect server at {api_url} was not healthy after "
                                 f"{config.startup_timeout:.0f} s; see {log_path}:\n{_tail(log_path)}")
            say(f"newsetl serve: Prefect server healthy after {time.monotonic() - started:.1f} s "
                 f"(pid {proc.pid}, log {log_path})")
            yield api_url
            return
        finally:
            stop_process(proc, config.stop_timeout)


# Starts of the local server when another process keeps taking its port first.
_PORT_ATTEMPTS = 3


class TemporaryServer:
    """Prefect's "temporary server" for one run (started by `start_temporary_server`): the API server
    Prefect would start by itself for a flow run when none is configured, started here instead so that it
    dies with this process. Prefect's own is left running, holding a port and its SQLite database, when
    the process that started it is killed -9 (a cron timeout, the OOM killer): one more orphan per killed
    run. Same command and settings as Prefect's (prefect.server.api.server.SubprocessASGIServer: UI off,
    ephemeral mode), plus a parent-death signal."""

    def __init__(self, proc: subprocess.Popen[bytes], api_url: str, log: Any) -> None:
        self.proc = proc
        self.api_url = api_url
        self._log = log  # an anonymous temporary file: shown only if the server fails to start

    def wait_healthy(self, timeout: float = 120.0) -> str:
        """Block until the API answers its health check; return its URL, or raise ServeError."""
        failure = _await_health(self.proc, self.api_url, time.monotonic() + timeout, interval=0.1)
        if failure == "exited":
            self._log.seek(0)
            tail = self._log.read().decode("utf-8", "replace").splitlines()[-20:]
            raise PrefectServerError(f"the temporary Prefect API server exited with code {self.proc.returncode} "
                             "before it was healthy:\n" + "\n".join(tail))
        if failure == "timeout":
            raise PrefectServerError(f"the temporary Prefect API server at {self.api_url} was not healthy after "
                             f"{timeout:.0f} s")
        return self.api_url

    def stop(self, timeout: float = 10.0) -> None:
        """Stop it (idempotent). Whatever this process still holds for the API should be drained first
        (`drain_to_api`), which only a process that imported Prefect has."""
        stop_process(self.proc, timeout)
        self._log.close()


def start_temporary_server(host: str = "127.0.0.1", settings: Mapping[str, str] | None = None) -> TemporaryServer:
    """Start the temporary API server and return at once, without importing Prefect in this process.

    Importing Prefect and the flow modules takes ~3 s here and the server ~8 s to become healthy, most of
    it its own imports: started first, the two overlap (`newsetl ingest` starts it before its own imports).
    Its settings are this environment's; Prefect settings from a profile or a .env/toml file the server
    reads itself, from the same PREFECT_HOME and working directory, with an environment variable still
    winning over them as it does everywhere in Prefect. `settings`: Prefect settings as environment
    variables, applied last (a caller that has imported Prefect passes those it set explicitly, including
    in-process `temporary_settings`, which the server could not read itself)."""
    spec = importlib.util.find_spec("prefect")  # finds the package without running its (slow) __init__
    if spec is None or not spec.submodule_search_locations:
        raise PrefectServerError("cannot start the temporary Prefect API server: the prefect package is not installed")
    app_dir = Path(next(iter(spec.submodule_search_locations))).parent
    port = free_port(host)
    api_url = f"http://{host}:{port}/api"
    cmd = [sys.executable, "-m", "uvicorn", "--app-dir", str(app_dir), "--factory",
           "prefect.server.api.server:create_app", "--host", host, "--port", str(port), "--log-level", "error",
           "--lifespan", "on"]
    # Off: the server's polling services for deployments, workers and schedules, none of which a single
    # in-process flow run has. They cost 0.74 s of CPU per 20 s idle, 0.46 s without them (measured): on
    # one core that is the flow's time. Defaults only: a setting in the environment wins.
    idle_services = {f"PREFECT_SERVER_SERVICES_{name}_ENABLED": "false" for name in (
        "CANCELLATION_CLEANUP", "FOREMAN", "LATE_RUNS", "SCHEDULER", "PAUSE_EXPIRATIONS", "REPOSSESSOR",
        "CLEANUP_RECONCILER")}
    # Off: registering the block types of every installed Prefect collection at start. Even when its memo
    # says nothing changed, the check first imports those collections (prefect-dask imports dask and
    # distributed), and the ingest flow uses no block. Measured, three starts each: healthy after 2.4 s
    # instead of 2.8 s (CPU 2.4 vs 2.9 s), 181 MB instead of 207. `newsetl serve` starts its server
    # elsewhere, which registers them as usual.
    no_block_registration = {"PREFECT_SERVER_REGISTER_BLOCKS_ON_START": "false",
                             "PREFECT_SERVER_MEMOIZE_BLOCK_AUTO_REGISTRATION": "false"}
    env = {**BATCHED_RECORDING, **idle_services, **no_block_registration, "PREFECT_UI_ENABLED": "0",
           **os.environ,
           "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1", **(settings or {})}
    prctl = _load_prctl()
    # Own session: a Ctrl-C in the terminal goes to the ingest's process group, and the ingest still needs
    # the server to record how its run ended; the ingest stops it last (and the kernel does if it dies).
    # Its output goes to a file, not the terminal: uvicorn's shutdown under load printed an
    # asyncio.CancelledError traceback among the ingest's summary. Shown only if it fails to start.
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by TemporaryServer.stop
    try:
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True,
                                preexec_fn=_server_preexec(prctl) if prctl is not None else None)
    except BaseException:
        log.close()
        raise
    return TemporaryServer(proc, api_url, log)


@contextlib.contextmanager
def temporary_prefect_server(host: str = "127.0.0.1", startup_timeout: float = 120.0,
                             stop_timeout: float = 10.0,
                             started: TemporaryServer | None = None) -> Iterator[str]:
    """A temporary server (`started`, or one started now with this process's explicit Prefect settings),
    healthy; yields its API URL; on exit drains what this process holds for the API and stops it."""
    if started is None:
        from prefect.settings import get_current_settings

        explicit = get_current_settings().to_environment_variables(exclude_unset=True)
        started = start_temporary_server(host, {k: str(v) for k, v in explicit.items()})
    try:
        yield started.wait_healthy(startup_timeout)
    finally:
        drain_to_api()
        started.stop(stop_timeout)

def drain_to_api(timeout: float = 5.0) -> None:
    """Send what this process still holds for the API (events, then log records) before the server
    goes: Prefect ships logs in the background every 2 s and drains only at interpreter exit, by when
    a server tied to this process is gone ("Error logging to API"), and the run's last lines (its
    summary, its final state) would be lost."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (EventsWorker, APILogWorker):
        with contextlib.suppress(Exception):  # a drain that fails must not hide why the run ended
            worker.drain_all(timeout=timeout)

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

def point_prefect_at(api_url: str, stack: contextlib.ExitStack) -> None:
    """Make this process, and the flow-run processes it spawns, use `api_url`."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    set_env("PREFECT_API_URL", api_url, stack)  # inherited by the flow-run child processes
    # Prefect's settings were read at import: the environment alone does not reach this process.
    stack.enter_context(temporary_settings({PREFECT_API_URL: api_url}))

def use_temporary_server(stack: contextlib.ExitStack, started: TemporaryServer | None = None) -> str:
    """Run this process's flows against a temporary API server of its own (as `newsetl ingest` does
    when no PREFECT_API_URL is configured), stopped when `stack` closes; return its API URL.

    Flow-run heartbeats are off there unless PREFECT_FLOWS_HEARTBEAT_FREQUENCY is in the environment (a
    value in a Prefect profile is overridden here): they exist so that a server can mark a
    crashed run as crashed, and this server dies with the run. Left on, every flow run waits on exit
    for the heartbeat thread's 1-s sleep to end (0.6 s per run measured, on the flow's wall)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    api_url = stack.enter_context(temporary_prefect_server(started=started))
    point_prefect_at(api_url, stack)
    if "PREFECT_FLOWS_HEARTBEAT_FREQUENCY" not in os.environ:
        stack.enter_context(temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}))
    return api_url

def set_env(key: str, value: str, stack: contextlib.ExitStack) -> None:
    previous = os.environ.get(key)
    os.environ[key] = value

    def restore() -> None:
        if previous is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = previous

    stack.callback(restore)
