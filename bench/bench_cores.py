"""What two cores give on this machine for the text stages alone: the ceiling of any parallel ingest.

Two independent processes (no pool, no pipes, no warehouse) each process the same documents with the
pure text core (extract, repair, clean, describe, sign), first one at a time, then both at once. The
parallel efficiency is (time alone, summed) / (time together, summed): 1.0 means two cores do twice the
work of one; below 1.0, running side by side slows each process down (shared caches and memory
bandwidth, or a host that does not give the VM two full cores). The ingest's 2-core speed-up cannot
exceed 2 x this efficiency, less the single writer's share.

Usage: python bench/bench_cores.py [--docs 600] [--rounds 3] [--corpus DIR]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from multiprocessing.queues import Queue
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _worker(corpus: str, n: int, start: Queue[int | None], done: Queue[float]) -> None:
    from newsetl.schemas.records import RawDocument
    from newsetl.sources.config import ReadConfig
    from newsetl.sources.discover import discover
    from newsetl.sources.read import read_path
    from newsetl.tasks.pool import process_and_sign
    from newsetl.text.pipeline import ProcessConfig, make_context
    from newsetl.text.sign import SignConfig

    paths, _ = discover([corpus])
    docs = [o for p in paths[:n] for o in read_path(p, ReadConfig()) if isinstance(o, RawDocument)]
    ctx, sign = make_context(ProcessConfig()), SignConfig()
    process_and_sign(docs[:20], ctx, 0, sign)  # warm-up: lazy models and caches
    done.put(0.0)
    while start.get() is not None:
        t0 = time.perf_counter()
        process_and_sign(docs, ctx, 0, sign)
        done.put(time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=600)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--corpus", type=Path, help="plain-text corpus (default: generate one)")
    args = ap.parse_args()
    corpus = args.corpus
    if corpus is None:
        from newsetl.synth.corpus import generate

        corpus = Path(tempfile.mkdtemp(prefix="newsetl-cores-")) / "corpus"
        generate(corpus, args.docs)
    spawn = mp.get_context("spawn")
    starts: list[Queue[int | None]] = [spawn.Queue(), spawn.Queue()]
    dones: list[Queue[float]] = [spawn.Queue(), spawn.Queue()]
    procs = [spawn.Process(target=_worker, args=(str(corpus), args.docs, starts[i], dones[i])) for i in range(2)]
    for p in procs:
        p.start()
    for d in dones:
        d.get()  # both ready
    efficiencies = []
    for r in range(args.rounds):
        alone = []
        for i in range(2):
            starts[i].put(1)
            alone.append(dones[i].get())
        for s in starts:
            s.put(1)
        together = [d.get() for d in dones]
        eff = sum(alone) / sum(together)
        efficiencies.append(eff)
        print(f"round {r + 1}: alone {alone[0]:.2f}s {alone[1]:.2f}s, together {together[0]:.2f}s {together[1]:.2f}s"
              f" -> parallel efficiency {eff:.2f} (2 cores = {2 * eff:.2f}x one core)", flush=True)
    for s in starts:
        s.put(None)
    for p in procs:
        p.join()
    print(f"median parallel efficiency {statistics.median(efficiencies):.2f}: the text stages on 2 cores do "
          f"{2 * statistics.median(efficiencies):.2f}x the work of 1 core")


if __name__ == "__main__":
    main()
