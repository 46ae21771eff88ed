"""What trafilatura removes with the page's HTML in hand, measured as issue 12 measures the text path.

  python bench/text_path_reference.py [--workers 2]

The text-path inputs of the dev sets (`aeb-dev/text`, `traf-dev/text`) are trafilatura's recall-mode
output of the same pages. Here trafilatura extracts each page again from its raw HTML, in its default and
in its precision mode, and each result is scored against the unchanged input exactly as the text path's
cleaner is scored:
- AEB: `aeb_metric.residual_removal` (boilerplate lines of the input removed, ground-truth lines lost);
- traf: the "without" snippets the input carries that the output no longer holds, and the "with"
  snippets it carries that the output lost (substrings after whitespace normalisation, as the scorer).

It is a reference point, not a competitor: the text path never sees the HTML, so what trafilatura
reaches with the page's structure bounds what a cleaner of its plain text can be expected to reach.
Nothing is trained or tuned here.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import trafilatura

EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval"
MODES = {"default": False, "precision": True}  # favor_precision
_WS = re.compile(r"\s+")


def _norm(s: str) -> str:
    return _WS.sub(" ", s).strip()


def _extract(html_path: Path, mode: str) -> str:
    html = gzip.decompress(html_path.read_bytes())
    return trafilatura.extract(html, include_comments=False, deduplicate=False, favor_precision=MODES[mode]) or ""


def _traf_page(key: str, mode: str, snippets: dict[str, list[str]]) -> tuple[int, int, int, int]:
    """(boilerplate snippets in the input, of them removed, content snippets in the input, of them lost)."""
    source = _norm((EVAL / "traf-dev" / "text" / f"{key}.txt").read_text(encoding="utf-8"))
    out = _norm(_extract(EVAL / "traf-dev" / "html" / f"{key}.html.gz", mode))
    without = [s for s in map(_norm, snippets["without"]) if s and s in source]
    with_ = [s for s in map(_norm, snippets["with"]) if s and s in source]
    return len(without), sum(s not in out for s in without), len(with_), sum(s not in out for s in with_)


def _aeb_text(key: str, mode: str) -> tuple[str, str]:
    return key, _extract(EVAL / "aeb-dev" / "html" / f"{key}.html.gz", mode)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if not EVAL.is_dir():
        print(f"text_path_reference: {EVAL} not found (../shared must be beside the checkout)", file=sys.stderr)
        return 2
    sys.path.insert(0, str(EVAL))
    import aeb_metric  # the scorers' own module (../shared/eval)

    aeb_dir = EVAL / "aeb-dev"
    truth = {k: v["articleBody"] for k, v in json.loads((aeb_dir / "ground-truth.json").read_text()).items()}
    titles = json.loads((aeb_dir / "titles.json").read_text())
    inputs = {k: (aeb_dir / "text" / f"{k}.txt").read_text(encoding="utf-8") for k in truth}
    snippets = json.loads((EVAL / "traf-dev" / "snippets.json").read_text())
    keys = sorted(k for k in snippets if (EVAL / "traf-dev" / "text" / f"{k}.txt").exists()
                  and (EVAL / "traf-dev" / "html" / f"{k}.html.gz").exists())
    with ProcessPoolExecutor(args.workers) as pool:
        for mode in MODES:
            out = dict(pool.map(_aeb_text, sorted(truth), [mode] * len(truth), chunksize=4))
            a = aeb_metric.residual_removal(truth, inputs, out, titles)
            t = [0, 0, 0, 0]
            for row in pool.map(_traf_page, keys, [mode] * len(keys), [snippets[k] for k in keys], chunksize=8):
                t = [x + y for x, y in zip(t, row, strict=True)]
            print(f"trafilatura {mode:9s} on the HTML | AEB boilerplate lines removed "
                  f"{a['residual_removed_share']:6.1%} ({a['residual_removed']}/{a['residual_lines']}), true lines "
                  f"lost {a['gt_lines_lost_share']:5.2%} ({a['gt_lines_lost']}/{a['gt_lines']}) | traf boilerplate "
                  f"snippets removed {t[1] / max(1, t[0]):6.1%} ({t[1]}/{t[0]}), content snippets lost "
                  f"{t[3] / max(1, t[2]):5.2%} ({t[3]}/{t[2]})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
