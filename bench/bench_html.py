"""HTML path speed: `newsetl ingest` against trafilatura alone, side by side in one run.

  python bench/bench_html.py [--rounds 1] [--workers 2] [--out bench-data/html.jsonl] [--keep DIR]

Pages: the 735 dev pages (`../shared/eval/traf-dev/html` + `../shared/eval/aeb-dev/html`, gzipped HTML).
Two commands, each a fresh process measured whole (start-up and imports included):
- `newsetl`: `newsetl ingest traf-dev/html aeb-dev/html --db <fresh warehouse>` (its defaults);
- `trafilatura`: `trafilatura.extract(raw, with_metadata=True)` over the same pages in a `--workers`-process
  pool (the reference of issue 13: what a user would write with trafilatura alone).
The two alternate (newsetl, trafilatura, newsetl, ...) for `--rounds` rounds, so both see the same load
on this shared machine; the ratio of each round and their median are printed. Wall time and memory come
from `../shared/bench/measure.py`'s sampler (`bench/tree_measure.py`): peak RSS of the largest process and the
peak of the SUM over every process the command started (pool workers, the fork server, and Prefect's temporary
API server, which runs in a session of its own;
the sum double-counts pages shared after fork, so it is an upper bound; the peak of the summed PSS, which
counts them once, is printed beside it). `other_cores` is the CPU that
processes outside the command took meanwhile (the load the other tenants put on the machine).
newsetl's wall time is also split into the run itself (its `runs` row: start_run to finish_run) and what is
outside it (imports, Prefect's temporary server and flow run, the end-of-run publication), beside the time
0.8x trafilatura's pages/s would allow.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import duckdb

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
PAGE_DIRS = (SHARED / "eval" / "traf-dev" / "html", SHARED / "eval" / "aeb-dev" / "html")
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.tree_measure import load_measure  # noqa: E402

# The trafilatura-alone side, as a user would write it: a pool over the files, extract with metadata.
# Run as `python -c` so that its start-up is measured like newsetl's.
TRAF_ALONE = r"""
import gzip, sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
import trafilatura

def one(path):
    out = trafilatura.extract(gzip.decompress(Path(path).read_bytes()), with_metadata=True)
    return 0 if out is None else len(out)

if __name__ == "__main__":
    files = [str(p) for d in sys.argv[2:] for p in sorted(Path(d).glob("*.html.gz"))]
    with ProcessPoolExecutor(int(sys.argv[1])) as ex:
        sizes = list(ex.map(one, files, chunksize=8))
    print(f"{len(files)} pages, {sum(s > 0 for s in sizes)} extracted", file=sys.stderr)
"""


def count_pages() -> int:
    return sum(1 for d in PAGE_DIRS for _ in d.glob("*.html.gz"))


def newsetl_cmd(work: Path, workers: int) -> list[str]:
    db = work / "w.duckdb"
    # The warehouse is removed by the shell in the measured command, so every round starts fresh.
    exe = shutil.which("newsetl", path=str(Path(sys.executable).parent)) or "newsetl"
    return ["sh", "-c", f'rm -rf "{work}"/w.duckdb* "{work}"/w.snapshot* "{work}"/w.report*; exec "{exe}" ingest '
            + " ".join(f'"{d}"' for d in PAGE_DIRS) + f' --db "{db}" --workers {workers} --quiet']


def run_seconds(work: Path) -> float | None:
    """Seconds between the run's start_run and finish_run (runs.started_at / finished_at): the ingest inside
    its flow. The rest of the command's wall time is outside it: imports, Prefect's temporary server (start,
    flow run set-up, stop) and the end-of-run publication."""
    db = work / "w.duckdb"
    if not db.exists():
        return None
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT epoch(finished_at) - epoch(started_at) FROM runs "
                           "WHERE finished_at IS NOT NULL ORDER BY started_at DESC LIMIT 1").fetchall()
    finally:
        con.close()
    return float(rows[0][0]) if rows else None


def traf_cmd(workers: int) -> list[str]:
    return [sys.executable, "-c", TRAF_ALONE, str(workers), *map(str, PAGE_DIRS)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="", help="append one JSON line per round here")
    ap.add_argument("--keep", default="", help="work directory to keep (default: a temporary one)")
    ap.add_argument("--log", default=os.devnull, help="the commands' output")
    args = ap.parse_args(argv)
    measure = load_measure()
    pages = count_pages()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-html-"))
    work.mkdir(parents=True, exist_ok=True)
    with open("/proc/loadavg") as f:
        print(f"pages {pages}; load average before: {f.read().split()[:3]}")
    rows: list[dict[str, Any]] = []
    try:
        for r in range(args.rounds):
            res: dict[str, dict[str, Any]] = {}
            for name, cmd in (("newsetl", newsetl_cmd(work, args.workers)), ("trafilatura", traf_cmd(args.workers))):
                m = measure.run_once(cmd, args.log)
                m["pages_per_s"] = round(pages / m["wall_s"], 2)
                res[name] = m
                print(f"round {r} {name:<12} rc={m['rc']} wall {m['wall_s']:7.2f} s  {m['pages_per_s']:6.2f} "
                      f"pages/s  cpu {m['cpu_s']:6.1f} s  peak largest {m['peak_rss_mb']:7.1f} MB  sum "
                      f"{m['peak_rss_sum_mb']:7.1f} MB (PSS {m['peak_pss_sum_mb']:7.1f} MB)  other cores "
                      f"{m['other_cores']:.2f}", flush=True)
            ratio = res["newsetl"]["pages_per_s"] / res["trafilatura"]["pages_per_s"]
            cpu_ratio = res["trafilatura"]["cpu_s"] / res["newsetl"]["cpu_s"]
            print(f"round {r} ratio newsetl/trafilatura pages/s {ratio:.3f} (CPU-time ratio {cpu_ratio:.3f})",
                  flush=True)
            inside = run_seconds(work)
            if inside is not None:
                # Where newsetl's wall time goes, against what 0.8x trafilatura's pages/s would allow.
                res["newsetl"]["run_s"] = round(inside, 2)
                outside = res["newsetl"]["wall_s"] - inside
                allowed = res["trafilatura"]["wall_s"] / 0.8
                print(f"round {r} newsetl: {inside:.2f} s inside the run (start_run to finish_run), {outside:.2f} s "
                      f"outside it (imports, Prefect's server and flow run, publication); 0.8x trafilatura's "
                      f"pages/s allows {allowed:.2f} s in all, so {allowed - outside:.2f} s for the run", flush=True)
            rows.append({"round": r, "pages": pages, "workers": args.workers, "ratio": round(ratio, 4),
                         "cpu_ratio": round(cpu_ratio, 4), **{k: v for k, v in res.items()}})
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if len(rows) > 1:
        print(f"median ratio over {len(rows)} rounds: {statistics.median(r['ratio'] for r in rows):.3f} "
              f"(CPU-time {statistics.median(r['cpu_ratio'] for r in rows):.3f})")
    with open("/proc/loadavg") as f:
        print(f"load average after: {f.read().split()[:3]}")
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
    return 0 if all(r["newsetl"]["rc"] == 0 and r["trafilatura"]["rc"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
