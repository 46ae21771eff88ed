"""End-to-end throughput of the ingest flow on a generated plain-text corpus.

Prints, from one run on the same corpus:
- the flow (Prefect + all stages + DuckDB loads): docs/s and peak RSS;
- the same stages called directly without Prefect into another fresh warehouse (the floor);
- the overhead share: the flow in-process (one core) against the same stages called directly;
- the speed-up of worker processes (2 cores) over in-process, in the same run.

Usage: python bench/bench_ingest.py [--count 10000] [--batch-size 500] [--workers 0 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

# Run as a script from anywhere: make the repository importable (bench/ is not an installed package).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


def direct(sources: list[str], db: str, batch_size: int) -> dict[str, float]:
    """The stages without Prefect: read, process, sign, load, same batches as the flow."""
    from schemas.records import Article, RawDocument, Rejection
    from tasks.sources.read import ReadConfig, discover, read_path
    from tasks.text.pipeline import ProcessConfig, make_context, process_documents
    from tasks.text.sign import SignConfig, sign_texts
    from warehouse.connect import migrate, writer
    from warehouse.dedup import DedupConfig, ensure_schema
    from warehouse.load import load_batch

    t = {"read": 0.0, "process": 0.0, "load": 0.0}
    ctx = make_context(ProcessConfig())
    sign = SignConfig()
    dedup = DedupConfig(sign=sign)
    with writer(db) as con:
        migrate(con)
        ensure_schema(con, dedup)
    t0 = time.perf_counter()
    paths, _ = discover(sources)
    docs: list[RawDocument] = []
    for p in paths:
        docs.extend(o for o in read_path(p, ReadConfig()) if isinstance(o, RawDocument))
    t["read"] = time.perf_counter() - t0
    for start in range(0, len(docs), batch_size):
        batch = docs[start:start + batch_size]
        t0 = time.perf_counter()
        outcomes = process_documents(batch, ctx)
        arts = [o for o in outcomes if isinstance(o, Article)]
        rejs = [o for o in outcomes if isinstance(o, Rejection)]
        sigs = sign_texts([a.body for a in arts], sign)
        t["process"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        with writer(db) as con:
            load_batch(con, "bench", batch, arts, sigs, rejs, dedup)
        t["load"] += time.perf_counter() - t0
    t["total"] = sum(t.values())
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--keep", type=Path, help="reuse/keep the generated corpus in this folder")
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2],
                    help="worker counts to run the flow with (0 = in-process, one core)")
    args = ap.parse_args()

    from bench.gen_corpus import generate

    work = Path(tempfile.mkdtemp(prefix="newsetl-bench-"))
    corpus = args.keep or work / "corpus"
    if not (corpus.exists() and len(list(corpus.glob("*.txt"))) == args.count):
        generate(corpus, args.count)
    print(f"corpus: {args.count} generated plain-text articles in {corpus}")

    floor = direct([str(corpus)], str(work / "direct.duckdb"), args.batch_size)
    print(f"direct (no Prefect): {args.count / floor['total']:8.0f} docs/s  "
          + "  ".join(f"{k}={v:.2f}s" for k, v in floor.items()))

    from flows.ingest import ingest

    # The first flow run of a process pays the temporary API server's start: keep it out of the figure.
    (work / "warmup.txt").write_text("A warm-up article of a few words, enough of them to be an article.\n")
    ingest(sources=[str(work / "warmup.txt")], db=str(work / "warmup.duckdb"), workers=0)
    walls: dict[int, float] = {}
    for workers in args.workers:
        t0 = time.perf_counter()
        summary = ingest(sources=[str(corpus)], db=str(work / f"flow-{workers}.duckdb"),
                         batch_size=args.batch_size, workers=workers)
        wall = walls[workers] = time.perf_counter() - t0
        stages = summary["seconds"]
        print(f"flow workers={workers}:  {args.count / wall:8.0f} docs/s  wall={wall:.2f}s  "
              + "  ".join(f"{k}={v}s" for k, v in stages.items()))
        print(f"  loaded={summary['loaded']} skipped_known={summary['skipped_known']} "
              f"quarantined={summary['quarantined']} dedup={summary['dedup']}")
        if workers == 0:
            print(f"  Prefect + flow overhead vs the same stages without Prefect: "
                  f"{(wall - floor['total']) / wall:6.1%}")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS: {rss_mb:.0f} MB (this process), {children_mb:.0f} MB (largest worker)")
    if 0 in walls and len(walls) > 1:
        for workers, wall in walls.items():
            if workers:
                print(f"speed-up workers={workers} vs in-process: {walls[0] / wall:.2f}x")


if __name__ == "__main__":
    main()
