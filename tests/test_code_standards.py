"""The other house rules, checked on every run: ruff clean, and every function typed (mypy with
`disallow_untyped_defs` over the package, bench/ and tests/; the list is pyproject.toml's [tool.mypy]).

Both tools are the `[dev]` extra's; a checkout without them skips with the reason rather than pass
without looking. mypy's cache goes to a temporary folder, so a stale cache in the checkout cannot hide an
error and the run leaves nothing behind.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600, check=False)


def test_ruff_is_clean() -> None:
    pytest.importorskip("ruff", reason="ruff is not installed (pip install -e '.[dev]')")
    res = _run([sys.executable, "-m", "ruff", "check", "--no-cache", "."])
    assert res.returncode == 0, res.stdout + res.stderr


def test_every_function_is_typed(tmp_path: Path) -> None:
    pytest.importorskip("mypy", reason="mypy is not installed (pip install -e '.[dev]')")
    res = _run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy-cache")])
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "Success" in res.stdout
