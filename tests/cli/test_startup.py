"""The ingest command starts the worker pool's fork server before Prefect: the one the pool then uses."""

from __future__ import annotations

import importlib.util
import multiprocessing
import multiprocessing.forkserver

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
