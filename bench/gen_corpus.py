"""Write a synthetic plain-text news corpus (newsetl.synth.corpus) to a folder, for benchmarks.

    .venv/bin/python bench/gen_corpus.py OUT [--count N] [--seed S]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from newsetl.synth.corpus import generate

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    print(f"wrote {len(generate(args.out, args.count, args.seed))} articles to {args.out}")
