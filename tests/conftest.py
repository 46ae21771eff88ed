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
from hypothesis import settings

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

# A change lands only when CI passes the whole suite, so the property tests there draw a fixed set of
# examples (`derandomize`): a run's verdict must not depend on the examples it happened to draw. Random
# examples are for exploring, before a change is committed: `NEWSETL_HYPOTHESIS=explore pytest ...`
# (that is how the lexicon's shared hash keys were found, tests/text/test_lexicon.py).
settings.register_profile("fixed", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("NEWSETL_HYPOTHESIS", "fixed"))

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


def _fill(con: duckdb.DuckDBPyConnection) -> None:
    """Rows of a small, plausible warehouse, written with SQL: three stories over four publishers, a
    boilerplate-only document, a WARC capture without a date, a quarantined input, two runs."""
    con.execute("""
        INSERT INTO runs VALUES
          ('r1', 'f1', TIMESTAMPTZ '2026-01-01 10:00:00+00', TIMESTAMPTZ '2026-01-01 10:00:20+00', 'completed',
           '{}', '{"read": 6, "loaded": 6, "quarantined": 1, "seconds": {"read": 2.0, "process": 12.0,
                  "load": 4.0, "total": 20.0}}', NULL, NULL),
          ('r2', 'f2', TIMESTAMPTZ '2026-01-02 10:00:00+00', TIMESTAMPTZ '2026-01-02 10:00:05+00', 'failed',
           '{}', '{"read": 1, "loaded": 0, "quarantined": 0, "seconds": {"read": 1.0, "total": 5.0}}',
           'OSError: disk full', NULL)
    """)
    # A story's cluster_id is its first-seen article's id (as dedup writes it): a6, seen first, is not the
    # canonical of its story (a4 is longer).
    docs = [  # doc_id, kind, publisher, published_at, fetched_at, cluster, canonical, words, title
        ("a1", "jsonl", "Reuters", "2025-11-03 08:00:00+00", "2026-01-01 09:00:00+00", "a1", True, 300, "Rates rise"),
        ("a2", "jsonl", "Yahoo", None, "2026-01-01 09:00:00+00", "a1", False, 290, "Rates rise"),
        ("a3", "html", "Yahoo", "2025-11-04 08:00:00+00", "2026-01-01 09:00:00+00", "a1", False, 295, "Rates rise"),
        ("a4", "warc", "BBC", None, "2025-12-24 12:00:00+00", "a6", True, 500, "Storm warning"),
        ("a5", "txt", "Site", None, "2026-01-01 09:00:00+00", "a5", True, 0, None),
        ("a6", "txt", None, "2025-11-03 20:00:00+00", "2026-01-01 09:00:00+00", "a6", False, 480, "Storm"),
    ]
    for doc_id, kind, pub, published, fetched, cluster, canonical, words, title in docs:
        con.execute("INSERT INTO documents (doc_id, source_uri, kind, raw, bytes, fetched_at, first_run_id) "
                    "VALUES (?, ?, ?, ?, 3, ?, 'r1')", [doc_id, f"/in/{doc_id}", kind, b"raw", fetched])
        con.execute("INSERT INTO articles (article_id, doc_id, source_uri, publisher, title, published_at, "
                    "fetched_at, body, word_count, body_hash, cluster_id, is_canonical, run_id) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'r1')",
                    [doc_id, doc_id, f"/in/{doc_id}", pub, title, published, fetched,
                     "" if not words else f"body of {title}", words, f"h-{doc_id}", cluster, canonical])
    con.execute("INSERT INTO clusters (cluster_id, canonical_article_id, size, updated_run_id) "
                "VALUES ('a1', 'a1', 3, 'r1'), ('a6', 'a4', 2, 'r1'), ('a5', 'a5', 1, 'r1')")
    con.execute("""INSERT INTO removals VALUES ('a1', 0, 'share', 'share-1', 'Share this', 0, 'r1', 'repaired_text'),
                   ('a2', 0, 'newsletter', 'nl-1', 'Sign up', 10, 'r1', 'repaired_text'),
                   ('a5', 0, 'cookie', 'cookie-1', 'We use cookies', 0, 'r1', 'repaired_text')""")
    con.execute("INSERT INTO quarantine VALUES ('q1', '/in/bad.html', NULL, 'r1', 'read', 'empty_input', "
                "'0 bytes', NULL, TIMESTAMPTZ '2026-01-01 10:00:01+00', NULL)")


@pytest.fixture
def filled_db(tmp_path: Path) -> Path:
    """A migrated warehouse file with the rows of `_fill`, closed (free for other processes)."""
    from newsetl.warehouse.connect import migrate

    db = tmp_path / "wh" / "news.duckdb"
    db.parent.mkdir()
    with duckdb.connect(str(db)) as c:
        migrate(c)
        _fill(c)
    return db


def _as_nobody(call: Callable[[], object]) -> object:
    """`call()` in a forked child that dropped root (so permissions apply: CI runs as root), its result pickled
    back; called directly when not root."""
    import pickle

    if os.geteuid() != 0:
        return call()
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 0
        try:
            os.close(rfd)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            with os.fdopen(wfd, "wb") as fh:
                pickle.dump(call(), fh)
        except BaseException:
            code = 1
        os._exit(code)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as fh:
        data = fh.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0 and data, "the unprivileged child failed"
    return pickle.loads(data)


@pytest.fixture
def as_nobody() -> Callable[[Callable[[], object]], object]:
    """Run a callable as the unprivileged user `nobody` (a forked child), for tests of permissions."""
    return _as_nobody
