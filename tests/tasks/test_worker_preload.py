"""The fork server's workers when the ingest stops while it starts one (Ctrl-C to the process group
during the pool's start): the worker whose start-up state was cut off mid-send dies quietly, so the
ingest's one-line "interrupted" message is all the operator sees. Real fork server, real hand-off."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

from newsetl.tasks import WORKER_PRELOAD

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="no fork server on Windows")

# A process that starts a fork server (with or without the worker preload), then does what an ingest
# interrupted mid-spawn does: sends the first half of a worker's pickled start-up state and goes.
_CUT_OFF = textwrap.dedent("""
    import io, multiprocessing, multiprocessing.forkserver as fs, os, sys
    from multiprocessing import reduction, spawn
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(sys.argv[1:])
    fs.ensure_running()
    from multiprocessing.context import set_spawning_popen
    buf = io.BytesIO()
    set_spawning_popen(object())  # as Popen does while it pickles a worker (the auth key may go)
    reduction.dump(spawn.get_preparation_data("w"), buf)
    reduction.dump(["a worker's state"] * 50_000, buf)  # stands in for the pickled Process
    set_spawning_popen(None)
    status_r, data_w = fs._forkserver.connect_to_new_process([])
    pid = fs.read_signed(status_r)
    os.write(data_w, buf.getvalue()[: len(buf.getvalue()) // 2])
    os.close(data_w)
    print("exit", fs.read_signed(status_r))
""")


def _cut_off_handoff(*preload: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _CUT_OFF, *preload], capture_output=True, text=True,
                          timeout=120, check=True)


def test_a_worker_cut_off_mid_handoff_dies_without_a_traceback() -> None:
    done = _cut_off_handoff(WORKER_PRELOAD)
    assert "exit 1" in done.stdout  # the worker did die: it never got its state
    assert "Traceback" not in done.stderr and "Error" not in done.stderr, done.stderr


def test_without_the_preload_the_same_cut_off_prints_a_traceback() -> None:
    # The check above can fail: this is what the operator saw under Ctrl-C before the preload's hook.
    done = _cut_off_handoff()
    assert "exit 1" in done.stdout
    assert "UnpicklingError" in done.stderr or "EOFError" in done.stderr, done.stderr


def test_other_errors_in_the_fork_server_child_are_still_printed() -> None:
    from newsetl.tasks import worker_preload

    try:
        raise ValueError("a real bug")
    except ValueError as exc:
        assert not worker_preload._cut_off_handoff(type(exc), exc.__traceback__)
    assert not worker_preload._cut_off_handoff(EOFError, None)


# A worker forked by the fork server raises SIGINT and SIGTERM at itself before anything of newsetl's
# runs in it (the moment a Ctrl-C to the process group would catch a worker being started).
_RAISE = textwrap.dedent("""
    import multiprocessing, signal, sys
    if __name__ == "__main__":
        # As a terminal starts the ingest: both signals at their defaults (a background job of a shell
        # inherits them ignored, and an ignored signal stays ignored across exec, fork server included).
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(sys.argv[1:])
        codes = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            p = ctx.Process(target=signal.raise_signal, args=(sig,))
            p.start()
            p.join()
            codes.append(p.exitcode)
        print(*codes)
""")


def test_workers_are_born_deaf_to_the_process_group_signals() -> None:
    done = subprocess.run([sys.executable, "-c", _RAISE, WORKER_PRELOAD], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.split() == ["0", "0"], done.stderr
    bare = subprocess.run([sys.executable, "-c", _RAISE], capture_output=True, text=True, timeout=120, check=True)
    assert bare.stdout.split() == ["1", str(-signal.SIGTERM)]  # the check can fail: without the preload


def test_the_preload_leaves_the_warehouse_engine_out() -> None:
    # Workers build Arrow rows (newsetl.warehouse.rows) and never query the warehouse: DuckDB (~26 MB
    # resident) and Arrow's compute kernels belong to the writer, not to the fork server and each worker.
    code = (f"import sys, {WORKER_PRELOAD}; "
            "print(sorted(m for m in ('duckdb', 'pyarrow.compute', 'prefect') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_what_the_preload_loaded_is_frozen_out_of_the_workers_gc() -> None:
    # gc.freeze(): a worker's full collections skip (and so do not copy-on-write) the fork server's objects.
    code = f"import gc, {WORKER_PRELOAD}; print(gc.get_freeze_count())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert int(out.stdout.strip()) > 10_000, out.stdout + out.stderr  # ~100k objects today; 0 unfrozen
