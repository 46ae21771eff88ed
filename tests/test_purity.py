"""The pure text core must not import Prefect or DuckDB (DESIGN.md §2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TEXT_CORE = Path(__file__).resolve().parents[1] / "tasks" / "text"
MODULES = sorted(f"tasks.text.{p.stem}" for p in TEXT_CORE.glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("module", MODULES)
def test_text_core_imports_neither_prefect_nor_duckdb(module: str) -> None:
    # A fresh interpreter: other tests may already have imported prefect into this one.
    code = (
        f"import sys, importlib; importlib.import_module({module!r}); "
        "bad = [m for m in ('prefect', 'duckdb') if m in sys.modules]; "
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{module} pulls in: {proc.stdout.strip()} {proc.stderr[-500:]}"


def test_there_is_a_text_core_to_check() -> None:
    assert {"tasks.text.extract", "tasks.text.pipeline"} <= set(MODULES)
