"""Drop-folder re-run: what an hourly run costs over a folder of many old files and a few new ones.

Builds a folder of `--known` small plain-text articles (default 100,000), ingests it once (setup,
timed too), adds `--new` files (default 100) and runs the ingest flow again; then runs it once more
with nothing new, and once after touching every old file (same bytes, new mtime: the size+mtime
skip cannot apply, so each file is read and hashed and its known doc_id skipped). Prints the wall
time of each run, the flow's own per-stage seconds and its counts.

Texts come from newsetl.synth.corpus's grammar, shortened to a headline and two paragraphs (~0.5 KB)
so that the setup ingest of 100,000 files stays in minutes; `--text full` uses its `generate`
(3-6 KB articles) instead.

Usage: python -m bench.bench_dropfolder [--known 100000] [--new 100] [--text small|full] [--keep DIR]
(or python bench/bench_dropfolder.py ...)
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Run as a script, `bench` (a folder of the checkout, not an installed package) is not importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


def small_article(rng: random.Random, n: int) -> str:
    """A headline and two short paragraphs from gen_corpus's grammar (names make each one unique)."""
    from newsetl.synth.corpus import OBJECTS, SUBJECTS, VERBS, sentence

    title = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} (story {n})"
    paragraphs = [" ".join(sentence(rng) for _ in range(2)) for _ in range(2)]
    return "\n\n".join([title, *paragraphs]) + "\n"


def write_files(folder: Path, start: int, count: int, text: str, seed: int) -> None:
    """Files article_{start..start+count}.txt in `folder` (small texts, or gen_corpus.generate's)."""
    folder.mkdir(parents=True, exist_ok=True)
    if text == "full":
        from newsetl.synth.corpus import generate

        staging = Path(tempfile.mkdtemp(prefix="gen-", dir=folder.parent))
        # dup_share=0: every new file is new content (a re-scrape would be skipped as a duplicate
        # story but still loaded, which is not what this benchmark is about).
        for i, path in enumerate(generate(staging, count, seed=seed, dup_share=0.0)):
            path.rename(folder / f"article_{start + i:07d}.txt")
        shutil.rmtree(staging)
        return
    rng = random.Random(seed)
    for i in range(start, start + count):
        (folder / f"article_{i:07d}.txt").write_text(small_article(rng, i), encoding="utf-8")


def timed_ingest(label: str, folder: Path, db: Path) -> dict[str, Any]:
    from newsetl.flows.ingest import ingest

    t0 = time.perf_counter()
    summary = ingest(sources=[str(folder)], db=str(db))
    wall = time.perf_counter() - t0
    stages = "  ".join(f"{k}={v:.2f}s" for k, v in summary["seconds"].items())
    print(f"{label:<44} wall={wall:7.2f}s  read={summary['read']:>7} loaded={summary['loaded']:>6} "
          f"skipped={summary['skipped_known']:>7} quarantined={summary['quarantined']:>3}")
    print(f"{'':<44} flow stages: {stages}")
    return {"wall": wall, **summary}


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--known", type=int, default=100_000, help="old files, ingested once before the re-run")
    ap.add_argument("--new", type=int, default=100, help="new files dropped before the re-run")
    ap.add_argument("--text", choices=("small", "full"), default="small")
    ap.add_argument("--keep", type=Path, help="work folder to keep (corpus + warehouse); default: a temp dir")
    args = ap.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="newsetl-dropfolder-"))
    work.mkdir(parents=True, exist_ok=True)
    inbox, db = work / "inbox", work / "warehouse" / "newsetl.duckdb"
    if inbox.exists():
        shutil.rmtree(inbox)
    for leftover in (db, Path(f"{db}.wal")):
        leftover.unlink(missing_ok=True)

    t0 = time.perf_counter()
    write_files(inbox, 0, args.known, args.text, seed=7)
    size_mb = sum(p.stat().st_size for p in inbox.iterdir()) / 1e6
    print(f"corpus: {args.known} {args.text} .txt files, {size_mb:.0f} MB, written in "
          f"{time.perf_counter() - t0:.1f}s, in {inbox}")

    from newsetl.flows.ingest import ingest

    # The first flow run of a process pays the temporary Prefect API server's start: keep it out.
    t0 = time.perf_counter()
    (work / "warmup.txt").write_text("A warm-up article of a few words.\n")
    ingest(sources=[str(work / "warmup.txt")], db=str(work / "warmup.duckdb"))
    print(f"Prefect warm-up (temporary API server + first flow run): {time.perf_counter() - t0:.1f}s")

    setup = timed_ingest(f"setup: first ingest of {args.known} files", inbox, db)
    print(f"{'':<44} {args.known / setup['wall']:.0f} files/s")

    write_files(inbox, args.known, args.new, args.text, seed=11)
    rerun = timed_ingest(f"re-run: {args.known} known + {args.new} new", inbox, db)
    idle = timed_ingest(f"re-run: {args.known + args.new} known, nothing new", inbox, db)

    now = time.time()
    for path in inbox.iterdir():  # same bytes, new mtime: only the doc_id check can skip them
        os.utime(path, (now, now))
    touched = timed_ingest(f"re-run after touching all {args.known + args.new}", inbox, db)

    print()
    print(f"drop-folder re-run ({args.known} known + {args.new} new): {rerun['wall']:.2f}s wall, "
          f"{rerun['loaded']} loaded; nothing new: {idle['wall']:.2f}s; "
          f"every file touched (read + hash + doc_id skip): {touched['wall']:.2f}s")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
