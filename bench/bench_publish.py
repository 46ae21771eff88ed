"""What publishing the dashboard snapshot and the report costs on an existing warehouse.

For each warehouse given: publish once from scratch (every month of articles written), then `--repeat`
times more (unchanged months hard-linked from the previous generation), printing seconds per step.
Publishes next to the warehouse, as a run would (run it on a copy if dashboards read the real one).

Usage: python bench/bench_publish.py WAREHOUSE.duckdb [...] [--repeat 2]
"""

from __future__ import annotations

import argparse
import shutil
import time

import duckdb

from newsetl.tasks.publish import publish
from newsetl.warehouse.snapshot import generations_dir

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("warehouses", nargs="+")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    for db in args.warehouses:
        with duckdb.connect(db, read_only=True) as con:
            n = con.execute("SELECT count(*) FROM articles").fetchall()[0][0]
        shutil.rmtree(generations_dir(db), ignore_errors=True)
        for i in range(1 + args.repeat):
            t = time.perf_counter()
            done = publish(db, f"bench{i}")
            kind = "from scratch" if i == 0 else "unchanged  "
            print(f"{db}: {n} articles, {kind}: total {time.perf_counter() - t:6.2f} s  "
                  f"snapshot {done['seconds']['snapshot']:6.2f} s  report {done['seconds']['report']:5.2f} s",
                  flush=True)
