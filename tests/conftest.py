"""Shared fixtures: one Prefect test server per session, a migrated warehouse, paths to the samples and
to ../shared, and the `slow` mark for every test that needs a Prefect server.

Tests never import each other or `bench/`: what they share is here, as fixtures.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import duckdb
import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that runs flows on a Prefect server is slow (seconds each): mark it, so `-m "not slow"`
    leaves the fast inner loop."""
    for item in items:
        if "prefect_harness" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


def _shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: ../shared (seeds and eval sets) is not beside this checkout")
    return path


@pytest.fixture(scope="session")
def shared_path() -> Callable[..., Path]:
    """A path under ../shared, or skip the test with a reason when it is not there."""
    return _shared_path


@pytest.fixture(scope="session")
def samples() -> Path:
    """The bundled sample corpus."""
    path = REPO / "samples" / "corpus"
    if not path.exists():
        pytest.skip("samples/corpus not present")
    return path


@pytest.fixture(scope="session")
def aeb_metric() -> ModuleType:
    """../shared/eval/aeb_metric.py, the AEB benchmark's scorer."""
    path = _shared_path("eval", "aeb_metric.py")
    spec = importlib.util.spec_from_file_location("aeb_metric", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _table_rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return sorted(con.execute(sql).fetchall(), key=repr)


@pytest.fixture(scope="session")
def table_rows() -> Callable[[Path, str], list[tuple[object, ...]]]:
    """Rows of a query on a warehouse file, sorted (to compare two warehouses table by table)."""
    return _table_rows


@pytest.fixture
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A migrated warehouse on a temporary file (all contract tables and views)."""
    from newsetl.warehouse.connect import migrate

    c = duckdb.connect(str(tmp_path / "w.duckdb"))
    migrate(c)
    yield c
    c.close()


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A temporary Prefect API for the whole session (7-10 s to start, so only once).

    Heartbeats are switched off: with them every flow run waits ~1 s on exit for the thread.
    """
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90), temporary_settings(
        {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    ):
        yield
