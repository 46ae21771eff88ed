"""End-to-end throughput of the ingest flow on a generated plain-text corpus: 1 core vs 2 cores.

Each measurement runs in a fresh child process pinned to N cores (sched_setaffinity, inherited by
everything it starts: Prefect's temporary API server, worker processes, DuckDB's threads), so "1 core"
really is one core for the whole job, not the flow on one thread with a second core free for the rest.
The flow runs with its defaults (one worker process per usable core; in-process on one core).

Prints, from one run on the same corpus:
- `direct`: the same stages called without Prefect, one core (the floor);
- `flow` on 1 core and on each further core count: docs/s, wall, CPU seconds, peak RSS, and the CPU
  seconds of the temporary Prefect API server during the run (a direct measure of part of Prefect's
  cost, which the wall-clock comparison below cannot resolve when it is smaller than the drift);
- the Prefect + flow overhead share: flow on 1 core against direct on 1 core;
- the speed-up of N cores over 1 core.

With --repeat R each configuration runs R times, interleaved (direct, flow 1, flow 2, direct, ...). This
machine's speed drifts by up to +-30% from minute to minute (the same stages measured 24-33 s), so the
ratios are printed per repeat (runs minutes apart) and as the median of those, next to the ratios of
the fastest runs (the least disturbed ones).

The flow runs as `newsetl ingest` runs it: with a temporary Prefect API server (pinned like the rest),
after one warm-up run of one document that pays the one-time starts (printed as `warm-up run`).

Usage: python bench/bench_ingest.py [--count 10000] [--cores 1 2] [--repeat 1] [--batch-size 500] [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Run as a script from anywhere: make the repository importable (bench/ is not an installed package).
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


def direct(sources: list[str], db: str, batch_size: int) -> dict[str, float]:
    """The stages without Prefect: the flow's groups of files, batches, processing and writes, called
    one after the other as plain functions."""
    from newsetl.schemas.records import Article, RawDocument, Rejection
    from newsetl.sources.config import ReadConfig
    from newsetl.sources.discover import discover
    from newsetl.sources.read import read_path
    from newsetl.tasks.batching import BATCH_BYTES, READ_GROUP_BYTES, batches, file_groups
    from newsetl.tasks.ingest import LOAD_THREADS
    from newsetl.tasks.pool import process_and_sign
    from newsetl.text.lsh import DedupConfig
    from newsetl.text.pipeline import ProcessConfig, make_context
    from newsetl.text.sign import SignConfig
    from newsetl.warehouse.connect import migrate, writer
    from newsetl.warehouse.dedup import check_scheme
    from newsetl.warehouse.load import load_batch

    started = time.perf_counter()
    t = {"read": 0.0, "process": 0.0, "load": 0.0}
    ctx = make_context(ProcessConfig())
    sign = SignConfig()
    dedup = DedupConfig(sign=sign)
    with writer(db) as con:
        migrate(con)
        check_scheme(con, dedup)
    paths, _ = discover(sources)
    for group in file_groups(paths, 2000, READ_GROUP_BYTES):
        t0 = time.perf_counter()
        docs = [o for p in group for o in read_path(p, ReadConfig()) if isinstance(o, RawDocument)]
        t["read"] += time.perf_counter() - t0
        for batch in batches(docs, batch_size, BATCH_BYTES):
            t0 = time.perf_counter()
            outcomes, sigs = process_and_sign(batch, ctx, 0, sign)
            arts = [o for o in outcomes if isinstance(o, Article)]
            rejs = [o for o in outcomes if isinstance(o, Rejection)]
            t["process"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            with writer(db, checkpoint=False, threads=LOAD_THREADS) as con:  # as the flow's batch loads
                load_batch(con, "bench", batch, arts, sigs, rejs, dedup)
            t["load"] += time.perf_counter() - t0
    t0 = time.perf_counter()
    with writer(db):  # the flow's last write folds the WAL into the file: count it too
        pass
    t["load"] += time.perf_counter() - t0
    # Everything from the start, as the flow's wall: its setup (rules, schema, discovery) too.
    t["total"] = time.perf_counter() - started
    return t


def cpu_seconds() -> float:
    """CPU seconds of this process, of its finished children (the API server) and of the worker
    processes, which are children of the pool's fork server (still running: asked for its children)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
    from multiprocessing import forkserver

    pid = getattr(forkserver._forkserver, "_forkserver_pid", None)  # private: there is no public accessor
    if pid:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            # utime, stime, cutime, cstime (fields 14-17 of proc(5), here offset by the 2 before ")")
            total += sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return total


def api_server_process() -> Any:
    """The temporary Prefect API server this process started (a child running uvicorn), or None when
    PREFECT_API_URL names a server elsewhere."""
    import psutil

    for proc in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            if "uvicorn" in " ".join(proc.cmdline()):
                return proc
    return None


def process_cpu(proc: Any) -> float:
    """CPU seconds of a running process so far (0 without one): the API server's share of a run, which
    on one core is taken from the flow's."""
    if proc is None:
        return 0.0
    times = proc.cpu_times()
    return float(times.user + times.system)


def child(mode: str, corpus: str, work: Path, batch_size: int) -> dict[str, Any]:
    """One measurement, in this (pinned) process."""
    cores = len(os.sched_getaffinity(0))
    if mode == "direct":
        c0 = cpu_seconds()
        t = direct([corpus], str(work / "direct.duckdb"), batch_size)
        return {"mode": mode, "cores": cores, "wall": t["total"], "cpu": cpu_seconds() - c0,
                "stages": {k: round(v, 2) for k, v in t.items()}}
    from newsetl.flows.ingest import ingest
    from newsetl.tasks.prefect_server import configured_api_url, use_temporary_server

    with contextlib.ExitStack() as stack:
        if configured_api_url() is None:  # as `newsetl ingest` does
            use_temporary_server(stack)
        # The first flow run of a process pays one-time starts (Prefect's client, the worker pool's fork
        # server importing the text core): kept out of the figure and printed apart (warm-up run=). Every
        # `newsetl ingest` and every served flow run (a fresh process each) pays them once.
        (work / "warmup.txt").write_text("A warm-up article of a few words, enough of them to be an article.\n")
        t0 = time.perf_counter()
        ingest(sources=[str(work / "warmup.txt")], db=str(work / "warmup.duckdb"))
        warmup = time.perf_counter() - t0
        server = api_server_process()
        c0, s0 = cpu_seconds(), process_cpu(server)
        t0 = time.perf_counter()
        summary = ingest(sources=[corpus], db=str(work / "flow.duckdb"), batch_size=batch_size)
        wall = time.perf_counter() - t0
        cpu = cpu_seconds() - c0  # the API server's share is not in it: it is reaped only on exit
        server_cpu = process_cpu(server) - s0
    return {"warmup": warmup, "mode": mode, "cores": cores, "wall": wall, "cpu": cpu, "server_cpu": server_cpu,
            "stages": summary["seconds"],
            "loaded": summary["loaded"], "skipped_known": summary["skipped_known"],
            "quarantined": summary["quarantined"], "clusters_written": summary["dedup"].get("clusters_written"),
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def measure(mode: str, cores: int, corpus: Path, work: Path, batch_size: int) -> dict[str, Any]:
    """Run `child` in a fresh interpreter pinned to the first `cores` CPUs; return its figures."""
    available = sorted(os.sched_getaffinity(0))
    if cores > len(available):
        raise SystemExit(f"asked for {cores} cores, this process may use {len(available)}")
    work.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode, "--corpus", str(corpus),
           "--work", str(work), "--batch-size", str(batch_size)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO,
                          preexec_fn=lambda: os.sched_setaffinity(0, set(available[:cores])))
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{mode} on {cores} core(s) failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return dict(json.loads(lines[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--cores", type=int, nargs="+", default=[1, 2], help="core counts to run the flow on")
    ap.add_argument("--repeat", type=int, default=1, help="runs per configuration; the fastest is reported")
    ap.add_argument("--keep", type=Path, help="reuse/keep the generated corpus in this folder")
    ap.add_argument("--child", choices=["direct", "flow"], help=argparse.SUPPRESS)
    ap.add_argument("--corpus", help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.corpus, args.work, args.batch_size)))
        return

    from newsetl.synth.corpus import generate

    work = Path(tempfile.mkdtemp(prefix="newsetl-bench-"))
    corpus = args.keep or work / "corpus"
    if not (corpus.exists() and len(list(corpus.glob("*.txt"))) == args.count):
        generate(corpus, args.count)
    print(f"corpus: {args.count} generated plain-text articles in {corpus}; batches of {args.batch_size}; "
          f"machine load before: {os.getloadavg()[0]:.2f}")
    configs = [("direct", 1)] + [("flow", c) for c in args.cores]
    best: dict[tuple[str, int], dict[str, Any]] = {}
    walls: dict[tuple[str, int], list[float]] = {}
    for r in range(args.repeat):
        for mode, cores in configs:
            res = measure(mode, cores, corpus, work / f"{mode}-{cores}-{r}", args.batch_size)
            key = (mode, cores)
            extra = (f"  loaded={res['loaded']} skipped_known={res['skipped_known']} "
                     f"quarantined={res['quarantined']} clusters={res['clusters_written']} "
                     f"rss={res['rss_mb']:.0f}MB warm-up run={res['warmup']:.1f}s "
                     f"api-server cpu={res['server_cpu']:.2f}s ({res['server_cpu'] / res['wall']:.1%} of the wall)"
                     ) if mode == "flow" else ""
            print(f"{mode:6s} {cores} core(s): {args.count / res['wall']:7.0f} docs/s  wall={res['wall']:6.2f}s  "
                  f"cpu={res['cpu']:6.2f}s  " + " ".join(f"{k}={v}" for k, v in res["stages"].items()) + extra,
                  flush=True)
            if key not in best or res["wall"] < best[key]["wall"]:
                best[key] = res
            walls.setdefault(key, []).append(res["wall"])
        if ("flow", 1) in walls:  # this repeat's own ratios: its runs were minutes apart, not more
            one = walls[("flow", 1)][-1]
            ratios = [f"overhead {(one - walls[('direct', 1)][-1]) / one:.1%}"]
            ratios += [f"{c} cores {one / walls[('flow', c)][-1]:.2f}x" for c in args.cores if c != 1]
            print(f"  repeat {r + 1}: " + ", ".join(ratios), flush=True)
    floor, one_best = best[("direct", 1)], best.get(("flow", 1))
    print(f"\nfastest of {args.repeat}:")
    for (mode, cores), res in best.items():
        print(f"  {mode:6s} {cores} core(s): {args.count / res['wall']:7.0f} docs/s  wall={res['wall']:6.2f}s")
    if one_best:
        print(f"Prefect + flow overhead on 1 core vs the same stages without Prefect: "
              f"{(one_best['wall'] - floor['wall']) / one_best['wall']:6.1%} (fastest runs), "
              f"{statistics.median(_overheads(walls)):6.1%} (median of the repeats)")
        for cores in args.cores:
            if cores != 1:
                per_repeat = [a / b for a, b in zip(walls[("flow", 1)], walls[("flow", cores)], strict=True)]
                print(f"speed-up {cores} cores vs 1 core: {one_best['wall'] / best[('flow', cores)]['wall']:.2f}x "
                      f"(fastest runs), {statistics.median(per_repeat):.2f}x (median of the repeats)")


def _overheads(walls: dict[tuple[str, int], list[float]]) -> list[float]:
    return [(f - d) / f for f, d in zip(walls[("flow", 1)], walls[("direct", 1)], strict=True)]


if __name__ == "__main__":
    main()
