"""The house rules of the code, checked on every run: one namespace, layers that import one way, no cycles.

Layers, bottom to top (a module may import its own layer and the layers below, never above):

    schemas            record types, the table list, the rule data
    sources | text     reading inputs | the pure text core (the two know nothing of each other)
    warehouse          DuckDB: store and query (from the text core only hashing, matching and line keys)
    tasks              orchestration: Prefect tasks over batches, the worker pool, Prefect servers
    flows              Prefect flows: parameters and wiring
    cli                the `newsetl` command (newsetl/cli.py, newsetl/__main__.py)

Read from the source files with `ast` (every import, also those inside functions), so a change that
breaks a rule fails here before anyone has to notice it in review. import-linter cannot see the
`package-dir` mapping (it walks the folder of the root package only), hence this test.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Subpackage -> folder, as pyproject.toml's [tool.setuptools.package-dir] maps them.
FOLDERS = {
    "newsetl": "newsetl", "newsetl.schemas": "schemas", "newsetl.sources": "sources", "newsetl.text": "text",
    "newsetl.warehouse": "warehouse", "newsetl.tasks": "tasks", "newsetl.flows": "flows", "newsetl.synth": "synth",
}
# synth (the synthetic test corpus) is pure, beside the text core: nothing of the pipeline builds on it.
RANK = {"schemas": 0, "sources": 1, "text": 1, "synth": 1, "warehouse": 2, "tasks": 3, "flows": 4, "cli": 5}
# What the warehouse may take from the text core: hashing, near-duplicate matching, line keys. Never the
# cleaner, the extractor or the pipeline: the warehouse stores and queries, it does not clean text.
WAREHOUSE_MAY_USE = {"newsetl.text.sign", "newsetl.text.lsh", "newsetl.text.learned", "newsetl.text.publishers"}
PURE = ("schemas", "sources", "text", "synth")
NOT_IN_PURE = {"prefect", "duckdb", "newsetl.tasks", "newsetl.flows", "newsetl.warehouse"}
BARE_NAMES = {"flows", "tasks", "schemas", "warehouse", "sources", "text", "bench", "tests"}


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for package, folder in FOLDERS.items():
        for path in sorted((REPO / folder).glob("*.py")):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            out[name] = path
    return out


MODULES = _modules()


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in {"cli", "__main__"}:
        return "cli"
    return parts[1]


def _imports(module: str, path: Path) -> list[str]:
    """Every module `module` imports, absolute (relative imports resolved); TYPE_CHECKING blocks skipped."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.stem == "__init__" else module.rsplit(".", 1)[0]
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    out: list[str] = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            # `from newsetl.sources import http` imports the module newsetl.sources.http, not a name
            # of the package's __init__.
            submodules = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
            out.extend(submodules)
            if len(submodules) < len(node.names):
                out.append(base)
    return out


GRAPH = {m: sorted({i for i in _imports(m, p) if i in MODULES or i.split(".")[0] in BARE_NAMES | {"prefect", "duckdb"}})
         for m, p in MODULES.items()}


def test_there_is_code_in_every_layer() -> None:
    assert {_layer(m) for m in MODULES} == set(RANK)
    assert {"newsetl.text.extract", "newsetl.text.pipeline", "newsetl.sources.read", "newsetl.warehouse.load",
            "newsetl.tasks.ingest", "newsetl.flows.ingest", "newsetl.cli"} <= set(MODULES)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_follow_the_layers(module: str) -> None:
    mine = _layer(module)
    bad: list[str] = []
    for target in GRAPH[module]:
        top = target.split(".")[0]
        if top in BARE_NAMES:
            bad.append(f"{target} (a bare top-level name: import it as newsetl.{target})")
            continue
        if top != "newsetl":
            if mine in PURE and top in NOT_IN_PURE:
                bad.append(f"{target} (the {mine} layer is pure: no Prefect, no DuckDB)")
            continue
        theirs = _layer(target)
        if RANK[theirs] > RANK[mine] or (RANK[theirs] == RANK[mine] and theirs != mine):
            bad.append(f"{target} ({mine} may not import {theirs})")
        if mine == "warehouse" and theirs == "text" and target not in WAREHOUSE_MAY_USE:
            bad.append(f"{target} (the warehouse stores and queries; it does not clean or extract text)")
    assert not bad, f"{module} imports: " + "; ".join(bad)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m) == "flows"))
def test_flows_only_wire(module: str) -> None:
    """A flow wires tasks: it opens no warehouse itself (the run's start and end are tasks.books'), so a
    flow's every write to DuckDB goes through a task that names it for a stop and for the run's books."""
    bad = [t for t in GRAPH[module] if t == "duckdb" or t.startswith(("duckdb.", "newsetl.warehouse"))]
    assert not bad, f"{module} imports {bad}: call a task in newsetl.tasks instead"


def test_no_import_cycles() -> None:
    """Tarjan's strongly connected components over the module graph: every component is one module."""
    graph = {m: [t for t in GRAPH[m] if t in MODULES and t != m] for m in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for m in sorted(graph):
        if m not in index:
            visit(m)
    assert not cycles, f"import cycles: {cycles}"


def test_pure_layers_load_without_prefect_or_duckdb() -> None:
    """The same rule at run time, transitively: importing every module of the pure layers in a fresh
    interpreter pulls in neither Prefect nor DuckDB."""
    pure = sorted(m for m in MODULES if _layer(m) in PURE)
    code = ("import importlib, sys\n"
            f"for m in {pure!r}: importlib.import_module(m)\n"
            "bad = sorted(m for m in ('prefect', 'duckdb') if m in sys.modules)\n"
            "print(','.join(bad)); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, cwd="/")
    assert proc.returncode == 0, f"the pure layers pull in: {proc.stdout.strip()} {proc.stderr[-800:]}"


def test_one_import_namespace_installed() -> None:
    """The installed distribution puts only `newsetl` on sys.path."""
    from importlib.metadata import distribution

    dist = distribution("newsetl")
    top = (dist.read_text("top_level.txt") or "").split()
    assert top == ["newsetl"]
