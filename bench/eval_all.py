"""Run the development scorers of ../shared/eval end to end and print one table.

Each set is ingested with `newsetl ingest` into a fresh warehouse (exactly as a user would), then
scored with ../shared/eval/score_warehouse.py; the seeds are checked with check_seeds.py.

The learned line model's estimates come from site-grouped cross-validation, not from these warehouses
(whose pages the model was trained on): set `linemodel-cv` runs bench/train_linemodel.py --no-final (text
path: rules alone, rules + model, and "blind" -- the model alone with the rule-hit features zero, the
estimate for sites the dev-written rules do not know -- AEB removed/lost and traf removed/lost, per fold and
pooled, then once per LightGBM seed of SEEDS with their mean and range: the estimate), prints its table, and
then the gap to the fit-on-everything figures the manifest recorded when the shipped model was trained;
`html-cv` (not in the default list: trafilatura over 735 pages x 3 modes, ~15 min the first time, cached
after) runs bench/html_cv.py --blind (also the HTML path with no pattern rule at all). The
`-own-hits` sets run the same CVs with `--rules-provenance own-hits` (on each page, the pattern rules only its
own site taught switched off). All need the `[train]` extra.

Usage: python bench/eval_all.py [--sets seeds,aeb-html,aeb-text,dedup,linemodel-cv,linemodel-cv-own-hits,html-cv,
                                         html-cv-own-hits] [--out DIR] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EVAL = REPO.parent / "shared" / "eval"
SETS = {
    "seeds": (REPO.parent / "shared" / "seeds", None),
    "aeb-html": (EVAL / "aeb-dev" / "html", EVAL / "aeb-dev"),
    "aeb-text": (EVAL / "aeb-dev" / "text", EVAL / "aeb-dev"),
    "dedup": (EVAL / "dedup-dev" / "docs.jsonl", EVAL / "dedup-dev"),
}
SEEDS = "1,2,3,4,5,6"
# CV scripts: their own printed tables are the result (the last lines, from the pooled figures on).
CV_SCRIPTS = {
    # --seeds: the CV once more per LightGBM seed; the mean over seeds is the estimate (docs/evaluation.md, "How far the
    # learner's seed moves them"), the shipped seed's own run is one draw of it
    "linemodel-cv": [str(REPO / "bench" / "train_linemodel.py"), "--no-final", "--seeds", SEEDS],
    # The same CV without, on each page, the pattern rules only its own site taught: the estimate for a new site
    # of the library that was written on these pages (docs/evaluation.md, rule provenance).
    "linemodel-cv-own-hits": [str(REPO / "bench" / "train_linemodel.py"), "--no-final", "--rules-provenance",
                              "own-hits", "--seeds", SEEDS],
    "html-cv": [str(REPO / "bench" / "html_cv.py"), "--blind"],
    # the run that chose the HTML path's trafilatura setting (ExtractConfig): its "fit on all pages" line
    "html-cv-own-hits": [str(REPO / "bench" / "html_cv.py"), "--rules-provenance", "own-hits", "--blind"],
}
DEFAULT_SETS = (*SETS, "linemodel-cv", "linemodel-cv-own-hits")
# The figures worth a column, in the order a reader wants them.
KEYS = ("aeb_f1", "aeb_precision", "aeb_recall", "aeb_accuracy", "missing", "cleaning_residual_removed_share",
        "cleaning_gt_lines_lost_share", "cleaning_pages_with_gt_loss", "body_residual_lines", "pair_precision",
        "pair_recall", "pair_f1", "ari", "pred_clusters", "true_stories", "clusters_without_one_canonical",
        "failed", "expectations")


def flatten(prefix: str, value: object, out: dict[str, object]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


def run_set(name: str, out_dir: Path, workers: str | None) -> dict[str, object]:
    source, set_dir = SETS[name]
    db = out_dir / f"eval-{name}.duckdb"
    for stale in (db, Path(f"{db}.wal")):
        stale.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "newsetl.cli", "ingest", str(source), "--db", str(db)]
    if workers is not None:
        cmd += ["--workers", workers]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"error": f"ingest failed: {proc.stderr[-800:]}"}
    if set_dir is None:
        score = subprocess.run([sys.executable, str(EVAL / "check_seeds.py"), "--db", str(db)],
                               capture_output=True, text=True)
        lines = score.stdout.strip().splitlines()
        result: dict[str, object] = json.loads(lines[-1]) if lines else {"error": score.stderr}
        if len(lines) > 1:
            result["failures"] = lines[:-1]
    else:
        score = subprocess.run([sys.executable, str(EVAL / "score_warehouse.py"), "--db", str(db),
                                "--set", str(set_dir)], capture_output=True, text=True)
        if score.returncode != 0:
            return {"error": f"scorer: {score.stderr[-800:]}"}
        result = {}
        flatten("", json.loads(score.stdout.strip().splitlines()[-1]), result)
    result["ingest_seconds"] = round(seconds, 1)
    return result


def linemodel_gap() -> str:
    """Fit-on-everything vs CV of the shipped line model, as its manifest recorded them at training."""
    path = REPO / "bench" / "linemodel-v5.manifest.json"
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        return f"no manifest ({exc})"
    out = []
    for mode in ("both", "blind"):
        cv, fit = m.get(f"cv_{mode}") or {}, m.get(f"fit_all_{mode}") or {}
        for s in ("aeb", "traf"):
            if s in cv and s in fit:
                rem = lambda c: c[1] / max(1.0, c[0])  # noqa: E731
                lost = lambda c: c[3] / max(1.0, c[2])  # noqa: E731
                out.append(f"  {mode:5s} {s:4s} removed CV {rem(cv[s]):6.1%} fit-on-all {rem(fit[s]):6.1%} "
                           f"(gap {rem(fit[s]) - rem(cv[s]):+.1%}); lost CV {lost(cv[s]):.2%} fit-on-all "
                           f"{lost(fit[s]):.2%}")
    return "shipped model, CV vs fit-on-everything (manifest):\n" + "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default=",".join(DEFAULT_SETS))
    ap.add_argument("--out", type=Path, default=None, help="keep the warehouses in this folder")
    ap.add_argument("--workers", default=None)
    ap.add_argument("--json", action="store_true", help="print the full results as JSON too")
    args = ap.parse_args()
    if not EVAL.exists():
        sys.exit(f"eval_all: {EVAL} is absent (../shared must be beside the checkout)")
    out_dir = args.out or Path(tempfile.mkdtemp(prefix="newsetl-eval-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    names = args.sets.split(",")
    results = {name: run_set(name, out_dir, args.workers) for name in names if name in SETS}
    print(f"{'set':<10} {'figure':<48} value")
    for name, res in results.items():
        shown = [k for k in KEYS if k in res]
        for key in [*shown, *(k for k in ("ingest_seconds", "error", "failures") if k in res)]:
            print(f"{name:<10} {key:<48} {res[key]}")
    for name in (n for n in names if n in CV_SCRIPTS):
        proc = subprocess.run([sys.executable, *CV_SCRIPTS[name]], capture_output=True, text=True, cwd=REPO)
        print(f"\n== {name} (site-grouped CV; every accuracy figure of the line model is one of these)")
        print(proc.stdout.rstrip() if proc.returncode == 0 else f"failed: {proc.stderr[-800:]}")
        if name == "linemodel-cv":
            print(linemodel_gap())
    if args.json:
        print(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
