"""Real news streams at full speed (issue 13): `newsetl ingest` on the re-scrape corpus, side by side with
datatrove's whole pipeline, measured by ../shared/bench/measure.py through bench/tree_measure.py (wall, peak
memory of the largest process and of all processes it starts, the temporary Prefect server included; CPU
others took meanwhile).

The corpus is ../shared/bench/make_corpus.py's: every dedup-dev text N times, copies with one sentence
dropped (--copies 10: 20,730 docs; --copies 50: 103,650). Data stays outside the repository:

    python ../shared/bench/make_corpus.py ../shared/eval/dedup-dev/docs.jsonl /work/bench-data/docs20k.jsonl \\
        --shards-dir /work/bench-data/shards2
    python bench/bench_stream.py --corpus /work/bench-data/docs20k.jsonl \\
        --datatrove /work/bench-data/shards2 --dt-python /work/dtvenv/bin/python --rounds 2
    python bench/bench_stream.py --corpus /work/bench-data/docs100k.jsonl            # the 100k run
    python bench/bench_stream.py --corpus /work/bench-data/docs20k.jsonl --cores 1 2  # 1 core vs 2 cores
    python bench/bench_dedup.py --only match --stored 1000000 --db /work/bench-data/match1m_real.duckdb  # 10k vs 1M
    python bench/bench_cores.py   # the text stages' own 2-core efficiency (the ceiling of any parallel ingest)

(`--copies 50` for the 100k corpus: `make_corpus.py ... /work/bench-data/docs100k.jsonl --copies 50`. `--work DIR`
keeps the warehouses and logs apart from another run's.)

Each round runs every configuration once, back to back (newsetl on each core count, then datatrove), so
ratios come from neighbouring runs on this shared, noisy machine; `other_cores` is how much CPU other
workloads took meanwhile (in cores), and `docs_per_cpu_s` documents per CPU second of the whole process
tree (the figure to compare when the machine is shared). Per newsetl run it also prints the writer's share
of the wall time: the seconds the flow spent in its batch loads (`seconds.load` of the run's summary, read
from the `runs` row) over the run's total. 1 core runs pin the whole job (server, workers, DuckDB) with `taskset`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED_BENCH = REPO.parent / "shared" / "bench"


def _measure(label: str, docs: int, out: Path, cmd: list[str], workers: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w+", suffix=".jsonl") as res:
        # --max-other high: never wait for a quiet machine (there is none here); contention is reported.
        # tree_measure: ../shared/bench/measure.py, counting the temporary Prefect server too (own session).
        subprocess.run([sys.executable, str(REPO / "bench" / "tree_measure.py"), "--label", label, "--docs", str(docs),
                        "--out", res.name, "--runs", "1", "--warmup", "0", "--max-other", "8",
                        "--max-attempts", "1", "--workers", str(workers), "--log", str(out.with_suffix(".log")),
                        "--", *cmd], check=True, stdout=subprocess.DEVNULL)
        rows = [json.loads(x) for x in Path(res.name).read_text().splitlines() if x.strip()]
    rec = rows[-1]
    with out.open("a") as f:
        f.write(json.dumps(rec) + "\n")
    if rec["rc"] != [0]:
        raise SystemExit(f"{label} failed (exit {rec['rc']}); see {out.with_suffix('.log')}")
    run = rec["runs_used"][0]
    return {"wall_s": run["wall_s"], "peak_rss_mb": run["peak_rss_mb"], "peak_rss_sum_mb": run["peak_rss_sum_mb"],
            "peak_pss_sum_mb": run.get("peak_pss_sum_mb"), "other_cores": run["other_cores"],
            "cpu_s": run.get("cpu_s")}


def _gb(mb: float | None) -> float | None:
    return None if mb is None else round(mb / 1024, 2)


def _per_cpu(docs: int, row: dict[str, Any]) -> float | None:
    """Documents per CPU second of the whole process tree: on a busy machine the wall time mostly
    measures the neighbours, the CPU time much less so."""
    return round(docs / row["cpu_s"], 1) if row.get("cpu_s") else None


def _summary(db: Path) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        counts = con.execute("SELECT counts FROM runs ORDER BY started_at DESC LIMIT 1").fetchall()[0][0]
    finally:
        con.close()
    return dict(json.loads(counts))


def run_newsetl(corpus: Path, docs: int, cores: int, work: Path, out: Path) -> dict[str, Any]:
    db = work / f"bench-{cores}c.duckdb"
    for p in work.glob(db.name + "*"):
        p.unlink()
    cmd = [str(REPO / ".venv" / "bin" / "newsetl"), "ingest", str(corpus), "--db", str(db)]
    if cores == 1:
        cmd = ["taskset", "-c", "0", *cmd]
    row = _measure(f"newsetl-{cores}c-w{cores}", docs, out, cmd, cores)
    summary = _summary(db)
    sec = summary.get("seconds", {})
    result = {
        "tool": "newsetl", "cores": cores, "docs": docs, "docs_s": round(docs / row["wall_s"], 1),
        "wall_s": row["wall_s"], "peak_largest_gb": _gb(row["peak_rss_mb"]), "peak_sum_gb": _gb(row["peak_rss_sum_mb"]),
        "peak_pss_sum_gb": _gb(row.get("peak_pss_sum_mb")),
        "other_cores": row.get("other_cores"), "cpu_s": row.get("cpu_s"), "docs_per_cpu_s": _per_cpu(docs, row),
        "writer_share": round(sec.get("load", 0.0) / max(sec.get("total", 1.0), 1e-9), 3),
        "load_s": sec.get("load"), "total_s": sec.get("total"), "dedup": summary.get("dedup"),
    }
    print(json.dumps(result), flush=True)
    return result


def run_datatrove(shards: Path, docs: int, dt_python: str, work: Path, out: Path) -> dict[str, Any]:
    dest = work / "dt"
    shutil.rmtree(dest, ignore_errors=True)
    cmd = [dt_python, str(SHARED_BENCH / "dt_pipeline.py"), "whole", str(shards), str(dest), "--workers", "2",
           "--filter", "c4"]
    row = _measure("dt-whole-c4-w2", docs, out, cmd, 2)
    result = {"tool": "datatrove", "cores": 2, "docs": docs, "docs_s": round(docs / row["wall_s"], 1),
              "wall_s": row["wall_s"], "peak_largest_gb": _gb(row["peak_rss_mb"]),
              "peak_sum_gb": _gb(row["peak_rss_sum_mb"]), "peak_pss_sum_gb": _gb(row.get("peak_pss_sum_mb")),
              "other_cores": row.get("other_cores"),
              "cpu_s": row.get("cpu_s"), "docs_per_cpu_s": _per_cpu(docs, row)}
    print(json.dumps(result), flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--docs", type=int, default=0, help="documents in the corpus (default: count its lines)")
    ap.add_argument("--cores", type=int, nargs="+", default=[2])
    ap.add_argument("--datatrove", type=Path, default=None, help="the corpus's shards dir: also run datatrove")
    ap.add_argument("--dt-python", default="/work/dtvenv/bin/python")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--work", type=Path, default=Path("/work/bench-data"))
    ap.add_argument("--out", type=Path, default=None, help="append measure.py's rows here")
    args = ap.parse_args(argv)
    docs = args.docs or sum(1 for _ in args.corpus.open("rb"))
    args.work.mkdir(parents=True, exist_ok=True)  # the warehouses and logs go there
    out = args.out or args.work / f"stream-{args.corpus.stem}.jsonl"
    results: list[dict[str, Any]] = []
    for _ in range(args.rounds):
        for cores in args.cores:
            results.append(run_newsetl(args.corpus, docs, cores, args.work, out))
        if args.datatrove:
            results.append(run_datatrove(args.datatrove, docs, args.dt_python, args.work, out))
    if args.datatrove:
        ours = [r for r in results if r["tool"] == "newsetl" and r["cores"] == 2]
        theirs = [r for r in results if r["tool"] == "datatrove"]
        ratios = [round(a["docs_s"] / b["docs_s"], 2) for a, b in zip(ours, theirs, strict=False)]
        cpu = [round(a["docs_per_cpu_s"] / b["docs_per_cpu_s"], 2) for a, b in zip(ours, theirs, strict=False)
               if a.get("docs_per_cpu_s") and b.get("docs_per_cpu_s")]
        print(json.dumps({"newsetl_vs_datatrove_docs_s": ratios, "newsetl_vs_datatrove_docs_per_cpu_s": cpu}),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
