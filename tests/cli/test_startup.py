"""The ingest command starts the worker pool's fork server before Prefect: the one the pool then uses."""

from __future__ import annotations

import importlib.util
import multiprocessing
import multiprocessing.forkserver
import os
import platform
import subprocess
import sys

import pytest

from newsetl.cli import _start_fork_server
from newsetl.tasks import WORKER_PRELOAD
from newsetl.tasks.pool import _mp_context


def _preload() -> list[str]:
    # multiprocessing keeps the preload list on its one ForkServer instance (private in CPython).
    return list(getattr(multiprocessing.forkserver._forkserver, "_preload_modules", []))


def test_the_cli_preloads_the_module_the_pool_would_preload() -> None:
    assert importlib.util.find_spec(WORKER_PRELOAD) is not None
    _mp_context()  # the pool's own setting
    assert _preload() == [WORKER_PRELOAD]


def test_no_fork_server_for_one_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(multiprocessing.forkserver, "ensure_running", lambda: calls.append(1))
    _start_fork_server(1)
    _start_fork_server(0)
    assert calls == []
    _start_fork_server(2)
    assert calls == [1]


_ARROW_POOL_CHECK = r"""
import multiprocessing, os, sys
if "--pyarrow-first" in sys.argv:
    import pyarrow  # imported before the choice: its default pool is already made
from newsetl.cli import _return_freed_memory
_return_freed_memory()
import pyarrow as pa
with multiprocessing.get_context("forkserver").Pool(1) as pool:
    in_worker = pool.apply(os.getenv, ("ARROW_DEFAULT_MEMORY_POOL",))
print(pa.default_memory_pool().backend_name, in_worker)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="the allocator settings are made for Linux with glibc only")
@pytest.mark.parametrize("pyarrow_first", [False, True])
def test_the_ingest_gives_arrow_buffers_to_malloc_here_and_in_the_workers(pyarrow_first: bool) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    argv = [sys.executable, "-c", _ARROW_POOL_CHECK] + (["--pyarrow-first"] if pyarrow_first else [])
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.split() == ["system", "system"]


def test_an_arrow_pool_the_user_chose_is_kept() -> None:
    env = {**os.environ, "ARROW_DEFAULT_MEMORY_POOL": "mimalloc"}
    out = subprocess.run([sys.executable, "-c", _ARROW_POOL_CHECK], env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert out.split() == ["mimalloc", "mimalloc"]
