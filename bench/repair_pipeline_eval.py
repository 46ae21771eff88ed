"""The repair measure through the whole pipeline (issue 5): corrupted ground-truth bodies in as
`.txt` files, `newsetl ingest`, bodies out, compared with the originals.

    .venv/bin/python bench/repair_pipeline_eval.py [--seed N] [--out DIR]

Prints the share of articles whose stored body equals the original after white-space
normalization and the AEB F1 against the originals, for the pipeline and, on the same corrupted
files, for `repair_text` alone (what the rest of the pipeline costs: cleaning and describe take
lines of the story that look like boilerplate or a headline).
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.repair_eval import _aeb_scores, _load_truth, corrupt, ws_norm  # noqa: E402
from newsetl.text.repair import repair_text  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=20260501)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    truth = _load_truth()
    out = args.out or Path(tempfile.mkdtemp(prefix="newsetl-repair-"))
    inputs = out / "corrupted"
    inputs.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    corrupted = {doc_id: corrupt(body, rng) for doc_id, body in sorted(truth.items())}
    for doc_id, text in corrupted.items():
        (inputs / f"{doc_id}.txt").write_text(text, encoding="utf-8")
    db = out / "repair.duckdb"
    db.unlink(missing_ok=True)
    proc = subprocess.run([sys.executable, "-m", "newsetl.cli", "ingest", str(inputs), "--db", str(db)],
                          capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        sys.exit(f"ingest failed: {proc.stderr[-2000:]}")
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT source_uri, body FROM articles").fetchall()
    stored = {Path(uri).name.removesuffix(".txt"): body for uri, body in rows}
    aeb = _aeb_scores()
    alone = {doc_id: repair_text(text).text for doc_id, text in corrupted.items()}
    for name, got in (("no repair", corrupted), ("repair_text alone", alone), ("whole pipeline", stored)):
        exact = sum(ws_norm(got.get(k) or "") == ws_norm(v) for k, v in truth.items()) / len(truth)
        scores = aeb(truth, {k: got.get(k) for k in truth})
        print(f"{name:<18} exact {exact:.3f}  AEB F1 {scores['f1']:.4f}  (P {scores['precision']:.4f} "
              f"R {scores['recall']:.4f})  articles {len(got)}/{len(truth)}")


if __name__ == "__main__":
    main()
