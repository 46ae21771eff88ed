"""Measure the boilerplate cleaner on the development sets, without a warehouse.

  python bench/eval_clean.py                 # plain-text path + seeds (fast, ~2 s)
  python bench/eval_clean.py --html          # also the HTML path: trafilatura, then clean (~10 s)
  python bench/eval_clean.py --verbose       # per-page worst offenders: boilerplate left, story lost

Plain-text path: every ../shared/eval/aeb-dev/text/*.txt is repaired and cleaned; the scorer's
`residual_removal` compares each cleaned body with its input (share of boilerplate lines removed, share
of ground-truth lines lost). HTML path: trafilatura.extract (include_comments=False, deduplicate=False)
then repair and clean; `aeb_scores` and `residual_in_text` on the bodies, against trafilatura alone.
Seeds: the body expectations ("gone", "gone_lines", "kept") of seeds_expected.json that belong to the
cleaner, on the raw seed text and on the repaired text.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import json
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from newsetl.text.clean import Ruleset, clean_text, load_rules

SHARED = Path(__file__).resolve().parents[2] / "shared"
EVAL = SHARED / "eval"
# Lines that seeds_expected.json lists but that the describe stage (bylines) removes, not the cleaner.
DESCRIBE_LINES = frozenset({"John Bowden"})
_QUOTES = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'", "\u00a0": " "})


def load_metric() -> ModuleType:
    spec = importlib.util.spec_from_file_location("aeb_metric", EVAL / "aeb_metric.py")
    if spec is None or spec.loader is None:
        sys.exit(f"eval_clean: cannot load {EVAL / 'aeb_metric.py'}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def repair(text: str) -> str:
    """The pipeline's repair stage (imported late: the cleaner is measured even when repair is absent)."""
    from newsetl.text.repair import repair_text

    return repair_text(text).text


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.translate(_QUOTES)).strip().lower()


def clean_many(texts: Mapping[str, str], rules: Ruleset, titles: Mapping[str, Sequence[str]],
               repaired: bool) -> tuple[dict[str, str], float]:
    out: dict[str, str] = {}
    t0 = time.perf_counter()
    for k, text in texts.items():
        src = repair(text) if repaired else text
        out[k] = clean_text(src, rules, titles=titles.get(k, ())).body
    return out, time.perf_counter() - t0


def eval_text(metric: ModuleType, rules: Ruleset, args: argparse.Namespace) -> dict[str, Any]:
    aeb = EVAL / "aeb-dev"
    truth = {k: v["articleBody"] for k, v in json.loads((aeb / "ground-truth.json").read_text()).items()}
    all_titles = json.loads((aeb / "titles.json").read_text())
    before = {k: (aeb / "text" / f"{k}.txt").read_text(encoding="utf-8") for k in truth}
    given = all_titles if args.with_titles else {}
    after, secs = clean_many(before, rules, given, repaired=not args.no_repair)
    res = metric.residual_removal(truth, before, after, all_titles)
    out = {"text_" + k: v for k, v in res.items()}
    out["text_body_residual_lines"] = metric.residual_in_text(truth, after, all_titles)["residual_lines"]
    out["text_clean_secs"] = round(secs, 3)
    if args.verbose:
        _offenders(metric, truth, before, after, all_titles)
    return out


def _offenders(metric: ModuleType, truth: Mapping[str, str], before: Mapping[str, str],
               after: Mapping[str, str], titles: Mapping[str, Sequence[str]]) -> None:
    rows = []
    for k, true_text in truth.items():
        labelled = metric.label_lines(before[k], true_text, titles.get(k, ()))
        kept = metric.lines_kept([line for line, _ in labelled], after[k])
        left = [line for (line, lab), keep in zip(labelled, kept, strict=True) if lab == "residual" and keep]
        lost = [line for (line, lab), keep in zip(labelled, kept, strict=True) if lab == "gt" and not keep]
        if left or lost:
            rows.append((len(lost) * 10 + len(left), k, left, lost))
    for _, k, left, lost in sorted(rows, reverse=True):
        print(f"== {k[:12]}  boilerplate left {len(left)}, story lines lost {len(lost)}")
        for line in lost:
            print(f"   LOST  {line[:140]!r}")
        for line in left:
            print(f"   LEFT  {line[:140]!r}")


def _extract(html: str, mode: str) -> str:
    import trafilatura

    kwargs: dict[str, Any] = {"include_comments": False, "deduplicate": False}
    if mode == "precision":
        kwargs["favor_precision"] = True
    elif mode == "recall":
        kwargs["favor_recall"] = True
    return trafilatura.extract(html, **kwargs) or ""


def eval_html(metric: ModuleType, rules: Ruleset, args: argparse.Namespace) -> dict[str, Any]:
    aeb = EVAL / "aeb-dev"
    truth = {k: v["articleBody"] for k, v in json.loads((aeb / "ground-truth.json").read_text()).items()}
    all_titles = json.loads((aeb / "titles.json").read_text())
    cache_dir = Path(args.cache)
    cache_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {}
    for mode in args.modes.split(","):
        extracted: dict[str, str] = {}
        for k in truth:
            raw = gzip.decompress((aeb / "html" / f"{k}.html.gz").read_bytes()).decode("utf-8", "replace")
            key = hashlib.sha256(f"{mode}\0{k}".encode()).hexdigest()[:16]
            cached = cache_dir / f"{key}.txt"
            if cached.exists():
                extracted[k] = cached.read_text(encoding="utf-8")
            else:
                extracted[k] = _extract(raw, mode)
                cached.write_text(extracted[k], encoding="utf-8")
        given = all_titles if args.with_titles else {}
        cleaned, _ = clean_many(extracted, rules, given, repaired=not args.no_repair)
        for label, bodies in (("trafilatura", extracted), ("cleaned", cleaned)):
            scores = metric.aeb_scores(truth, bodies)
            resid = metric.residual_in_text(truth, bodies, all_titles)
            prefix = f"html_{mode}_{label}_"
            out[prefix + "f1"] = round(scores["f1"], 4)
            out[prefix + "precision"] = round(scores["precision"], 4)
            out[prefix + "recall"] = round(scores["recall"], 4)
            out[prefix + "residual_lines"] = resid["residual_lines"]
        if args.verbose:
            print(f"--- HTML path ({mode}): cleaned vs extracted")
            _offenders(metric, truth, extracted, cleaned, all_titles)
    return out


def eval_seeds(rules: Ruleset, verbose: bool) -> dict[str, Any]:
    expected = json.loads((EVAL / "seeds_expected.json").read_text(encoding="utf-8"))
    out: dict[str, Any] = {}
    variants: dict[str, Callable[[str], str]] = {"raw": lambda t: t,
                                                 "repaired": repair}
    for variant, prep in variants.items():
        failures: list[str] = []
        total = 0
        for name, exp in expected.items():
            if name.startswith("_"):
                continue
            text = prep((SHARED / "seeds" / name).read_text(encoding="utf-8"))
            body = clean_text(text, rules).body
            nbody = _norm(body)
            nlines = {_norm(line) for line in body.splitlines()}
            for s in exp["gone"]:
                total += 1
                if _norm(s) in nbody:
                    failures.append(f"{name}: boilerplate left: {s!r}")
            for s in exp["gone_lines"]:
                if s in DESCRIBE_LINES:
                    continue
                total += 1
                if _norm(s) in nlines:
                    failures.append(f"{name}: boilerplate line left: {s!r}")
            for s in exp["kept"]:
                total += 1
                if _norm(s) not in nbody:
                    failures.append(f"{name}: story text lost: {s[:70]!r}")
        out[f"seeds_{variant}_checks"] = total
        out[f"seeds_{variant}_failed"] = len(failures)
        if verbose:
            for f in failures:
                print(f"seeds ({variant}): {f}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--html", action="store_true", help="also run the HTML path (trafilatura + clean)")
    ap.add_argument("--modes", default="default,precision",
                    help="trafilatura settings for --html: default,precision,recall (comma list)")
    ap.add_argument("--with-titles", action="store_true",
                    help="pass titles.json to the cleaner (as HTML metadata would); off = plain .txt input")
    ap.add_argument("--no-repair", action="store_true", help="clean the raw text (skip repair)")
    ap.add_argument("--rules", action="append", default=[], help="extra rules file (repeatable)")
    ap.add_argument("--cache", default="/tmp/newsetl-eval-cache", help="cache of trafilatura outputs")
    ap.add_argument("--verbose", action="store_true", help="print the worst pages and seed failures")
    args = ap.parse_args(argv)
    if not EVAL.is_dir():
        print(f"eval_clean: {EVAL} not found (../shared next to the repo)", file=sys.stderr)
        return 2
    metric = load_metric()
    rules = load_rules(args.rules)
    out: dict[str, Any] = {"rules": len(rules.rules)}
    out.update(eval_seeds(rules, args.verbose))
    out.update(eval_text(metric, rules, args))
    if args.html:
        out.update(eval_html(metric, rules, args))
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
