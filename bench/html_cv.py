"""HTML path under site-grouped CV: trafilatura's settings, the extraction fallback, and the line model.

  python bench/html_cv.py [--cache DIR] [--folds 5] [--tables on|both] [--fast off|both] [--blind]

Pages: aeb-dev/html (88, scored by the AEB metric: F1, boilerplate lines left in the bodies) and
traf-dev/html (647, scored by snippets: micro P/R/F1), grouped by site (registered domain) into the same
5 folds as bench/train_linemodel.py. For each setting (precision / default / recall mode, with tables;
--tables both adds the three without; --fast both (the default) each also in trafilatura's fast mode, no
readability/jusText comparison; always with the fallback of text/extract.py), every page is
extracted, repaired and cleaned by the rules. In each fold the setting is picked on the TRAINING folds
(by `--objective`, see below) and the figures are those of the test fold, pooled. The line
model of each fold is trained on the training folds' plain-text pages only (as in train_linemodel.py)
and applied to the test fold's extracted text, so "rules + model" on the HTML path is measured on pages it never saw.
"As stored" adds describe after rules + model, with the page's metadata as the pipeline hands it (title, URL,
date, author, site name, description; `page_hints`): the headline, byline and dateline lines it takes off the top
leave the body, as in a warehouse the scorers read. With the chance that all three floors hold on resampled sites.
(With the title alone, before 2026-12-06, the figures were the same to four places.)
Also: pages that trafilatura alone (default mode, no comments) extracts and the pipeline would lose.
--blind adds the chosen settings with no pattern rule at all and fold models trained without the rule-hit
columns: the pattern library was written while reading aeb-dev (and half A of traf-dev's sites), so the
figures with it are optimistic there; the blind figure is the floor an unseen site can expect, and traf's
half B (sites no rule was written on) shows how much of the library's gain carries over.
By default the training folds choose as the pipeline was chosen (ExtractConfig): by the bodies after rules +
line model, the variant with the best chance of meeting the three acceptance lines (AEB F1 >= 0.970, < 30
boilerplate lines left per 88 AEB pages, traf snippet F1 >= 0.935) on sites resampled with replacement, then
the best traf snippet F1 (`--objective robust --select-on model`), among the modes x fallback thresholds 10,
50, 100 and 200 words. `--objective acceptance` compares the point figures instead (floors met, then traf F1).
The pipeline's setting is the one this run
picks on all pages with `--rules-provenance own-hits` ("fit on all pages" below): each page cleaned as a new
site would be, without the rules only its own site taught.

Extractions are cached in --cache (trafilatura is the slow part: 735 pages x 3 modes x 2), in a subfolder named
after the decoding and extraction code and trafilatura's version (`extractor_version`).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import trafilatura  # noqa: E402

from bench import linemodel_data as lmdata  # noqa: E402
from bench import train_linemodel as tl  # noqa: E402
from bench.floors import (  # noqa: E402
    BOOTSTRAP_SEED,
    chance_all_floors,
    floors_met,
    page_stats,
    resampled_figures,
    score,
    site_resamples,
)
from newsetl.sources import decode as decode_module  # noqa: E402
from newsetl.sources.decode import decode_bytes  # noqa: E402
from newsetl.text import discard as discard_module  # noqa: E402
from newsetl.text import extract as extract_module  # noqa: E402
from newsetl.text import words as words_module  # noqa: E402
from newsetl.text.clean import clean_text, load_rules  # noqa: E402
from newsetl.text.describe import DescribeHints, describe_article  # noqa: E402
from newsetl.text.extract import ExtractConfig, ExtractError, extract_html  # noqa: E402
from newsetl.text.linemodel import LineModel  # noqa: E402
from newsetl.text.repair import repair_text  # noqa: E402
from newsetl.text.words import count_words  # noqa: E402

EVAL = lmdata.EVAL
MODES = ("precision", "default", "recall")
# Tables are kept (include_tables=True, the pipeline's setting): trafilatura takes ~0.4 s a page on the
# shared machine, and --tables both doubles the run for the without-tables variants.
# A setting: (mode, include_tables, fast).
SETTINGS: tuple[tuple[str, bool, bool], ...] = tuple((m, True, f) for f in (False, True) for m in MODES)
def load_html_pages() -> list[dict[str, Any]]:
    pages: list[dict[str, Any]] = []
    aeb = EVAL / "aeb-dev"
    gt = json.loads((aeb / "ground-truth.json").read_text(encoding="utf-8"))
    titles = json.loads((aeb / "titles.json").read_text(encoding="utf-8"))
    for k in sorted(gt):
        pages.append({"set": "aeb", "key": k, "site": lmdata.site_of(gt[k]["url"]), "url": gt[k]["url"],
                      "path": aeb / "html" / f"{k}.html.gz", "truth": gt[k]["articleBody"],
                      "titles": titles.get(k, [])})
    traf = EVAL / "traf-dev"
    sn = json.loads((traf / "snippets.json").read_text(encoding="utf-8"))
    for k in sorted(sn):
        pages.append({"set": "traf", "key": k, "site": lmdata.site_of(sn[k]["url"]), "url": sn[k]["url"],
                      "path": traf / "html" / f"{k}.html.gz", "with": sn[k]["with"], "without": sn[k]["without"]})
    return pages


def setting_name(mode: str, tables: bool, fast: bool) -> str:
    return f"{mode}{'' if tables else '-notables'}{'-fast' if fast else ''}"


def pipeline_setting() -> tuple[str, bool, bool, int]:
    """The setting newsetl ships (ExtractConfig's defaults), as a variant of this script."""
    cfg = ExtractConfig()
    mode = "precision" if cfg.favor_precision else "recall" if cfg.favor_recall else "default"
    return (mode, cfg.include_tables, cfg.fast, cfg.fallback_words)


def extract_one(html: str, mode: str, tables: bool, fast: bool) -> tuple[str, str | None] | None:
    """(text, title) of one mode WITHOUT fallback; None when the pipeline would call it empty."""
    cfg = ExtractConfig(favor_precision=mode == "precision", favor_recall=mode == "recall", include_tables=tables,
                        fast=fast, fallback=False)
    try:
        ex = extract_html(html, config=cfg)
    except ExtractError:
        return None
    return ex.text, ex.title


def extractor_version() -> str:
    """What an extraction depends on: trafilatura's version and our code on the way (decoding the page's bytes,
    text/extract.py, the XPaths text/discard.py stands in for, and the word count it uses). Part of the cache's
    path, so that a change to any of them is never read from a stale cache (a change of `min_words` once left
    the cache holding None for pages that now extract)."""
    digest = hashlib.sha256(trafilatura.__version__.encode())
    for module in (decode_module, extract_module, discard_module, words_module):
        digest.update(Path(module.__file__ or "").read_bytes())
    return digest.hexdigest()[:12]


def page_html(page: dict[str, Any]) -> str:
    """The page's HTML, decoded as the pipeline decodes its bytes."""
    return decode_bytes(gzip.decompress(page["path"].read_bytes()), html=True)[0]


def extractions(pages: Sequence[dict[str, Any]], cache: Path) -> dict[str, dict[str, Any]]:
    """{setting name: {page key: [text, title] or None}}, one mode each, cached per setting (and per
    `extractor_version`: a subfolder of `cache`)."""
    cache = cache / extractor_version()
    cache.mkdir(parents=True, exist_ok=True)
    out: dict[str, dict[str, Any]] = {}
    htmls: dict[str, str] = {}
    for mode, tables, fast in SETTINGS:
        name = setting_name(mode, tables, fast)
        f = cache / f"{name}.json"
        if f.is_file():
            out[name] = json.loads(f.read_text(encoding="utf-8"))
            continue
        t0 = time.perf_counter()
        res: dict[str, Any] = {}
        for p in pages:
            if p["key"] not in htmls:
                htmls[p["key"]] = page_html(p)
            r = extract_one(htmls[p["key"]], mode, tables, fast)
            res[p["key"]] = list(r) if r is not None else None
        f.write_text(json.dumps(res), encoding="utf-8")
        out[name] = res
        print(f"extracted {name} ({time.perf_counter() - t0:.0f}s)", flush=True)
    return out


def page_hints(pages: Sequence[dict[str, Any]], cache: Path) -> dict[str, dict[str, str | None]]:
    """{page key: the metadata the pipeline hands describe (text/pipeline.py `_prepare`)}: the page's own
    URL or host, date, author, site name and description as trafilatura reads them, which do not depend on
    the extraction mode. Cached beside the extractions (`hints.json`, same `extractor_version`)."""
    f = cache / extractor_version() / "hints.json"
    if f.is_file():
        return dict(json.loads(f.read_text(encoding="utf-8")))
    t0 = time.perf_counter()
    out: dict[str, dict[str, str | None]] = {}
    for p in pages:
        try:
            ex = extract_html(page_html(p), config=ExtractConfig())
        except ExtractError:
            out[p["key"]] = {}
            continue
        out[p["key"]] = {"url": ex.url or (f"https://{ex.hostname}" if ex.hostname else None), "date": ex.date,
                         "author": ex.author, "sitename": ex.sitename, "description": ex.description}
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps(out), encoding="utf-8")
    print(f"read the pages' metadata ({time.perf_counter() - t0:.0f}s)", flush=True)
    return out


def fallback_walk(ex: Mapping[str, Mapping[str, Any]], mode: str, tables: bool, fast: bool, fallback_words: int,
                  key: str) -> tuple[Any, int]:
    """What extract_html does with this setting on this page (as text/extract.py), from the cached
    extractions: (what it returns, how many modes it runs). It runs its mode, then default, then recall, and
    stops at the first that yields >= fallback_words words; it returns that one, else the longest of them
    (None: none yields a word)."""
    best, best_n, runs = None, -1, 0
    for m in dict.fromkeys((mode, "default", "recall")):
        runs += 1
        r = ex[setting_name(m, tables, fast)][key]
        if r is None:
            continue
        n = count_words(r[0])
        if n > best_n:
            best, best_n = r, n
        if best_n >= fallback_words:
            break
    return best, runs


def with_fallback(ex: Mapping[str, Mapping[str, Any]], mode: str, tables: bool, fast: bool, fallback_words: int,
                  key: str) -> Any:
    """What extract_html returns for this setting on this page (`fallback_walk`)."""
    return fallback_walk(ex, mode, tables, fast, fallback_words, key)[0]


def cleaned_body(ex: Mapping[str, Mapping[str, Any]], setting: tuple[str, bool, bool, int], key: str,
                 clean: Callable[[str, str | None], str]) -> str:
    """The page's body as the pipeline makes it (text/pipeline.py `_with_alternative`): the cleaned text of
    `with_fallback`, or, when the cleaner leaves nothing of it, of the first other mode walked that it keeps."""
    best, runs = fallback_walk(ex, *setting, key)
    if best is None:
        return ""
    body = clean(*best)
    if body.strip():
        return body
    mode, tables, fast, _ = setting
    for m in list(dict.fromkeys((mode, "default", "recall")))[:runs]:
        r = ex[setting_name(m, tables, fast)][key]
        if r is None or r[0] == best[0] or not count_words(r[0]):
            continue
        other = clean(*r)
        if other.strip():
            return other
    return body


OBJECTIVE = "robust"


def objective(s: Mapping[str, float]) -> float | tuple[int, float] | tuple[float, float]:
    """`mean`: the mean of AEB F1 and traf snippet F1. `acceptance`: as the acceptance reads, all three
    floors (variants that meet more of them first), then the best traf snippet F1. `robust`: the chance of
    meeting all three on new sites (`chance_all_floors`, given in `s` as "chance"), then the best traf F1.

    `acceptance` compares point figures: a variant that meets a floor on the training pages by 0.001 ranks
    with one that meets it by 0.01, and the last word goes to traf F1 differences of ~0.001 (a few
    snippets). Under site-grouped CV two of five folds chose default mode that way, which leaves ~50% more
    boilerplate lines than precision mode on the test folds. `robust` (added 2026-12-05 after that run, so
    its CV figures are not free of that knowledge) asks which variant keeps all three floors on resampled
    sites.

    Until 2026-12-05 `acceptance` had the AEB F1 floor only. Once each page is cleaned without the rules only
    its own site taught (--rules-provenance own-hits), default mode left 36-39 boilerplate lines in the AEB
    bodies against 22-25 for precision mode, and the F1 floor alone did not see it: the lines floor was added
    after that run, on these pages, so the figures it chose are a little optimistic."""
    if OBJECTIVE == "acceptance":
        return (floors_met(s), s["traf_f1"])
    if OBJECTIVE == "robust":
        return (s["chance"], s["traf_f1"])
    return (s.get("aeb_f1", 0.0) + s["traf_f1"]) / 2


def fold_models(folds: int, cache_pages: str, models_cache: str = "", blind: bool = False,
                library: lmdata.OwnRulesOff | None = None) -> tuple[dict[str, int], list[LineModel]]:
    """Site -> fold, and one line model per fold trained on the other folds' plain-text pages.

    `blind`: models trained with the rule-hit columns zeroed (train_linemodel.py --no-rule-features), for
    bodies cleaned without the pattern library. `library`: the training pages' rule pass without the
    rules their own site taught (linemodel_data.OwnRulesOff), as the test pages are cleaned. With
    `models_cache`, the fold models and the site -> fold map are kept there and reused (training the five
    folds takes minutes); delete it when the line model's features or training data change."""
    import pickle

    sub = "blind" if blind else "" if library is None else f"provenance-{library.mode}"
    mc = (Path(models_cache) / sub if sub else Path(models_cache)) if models_cache else None
    if mc is not None and (mc / "fold_of.json").is_file():
        cached = json.loads((mc / "fold_of.json").read_text(encoding="utf-8"))
        if cached["folds"] == folds:
            return cached["fold_of"], [LineModel.load(mc / f"fold{f}.json") for f in range(folds)]

    from sklearn.model_selection import GroupKFold

    pc = Path(cache_pages) if cache_pages else None
    pages = pickle.loads(pc.read_bytes()) if pc is not None and pc.is_file() else lmdata.load_pages()
    if library is not None and not blind:
        pages = lmdata.without_own_rules(pages, library)[0]
    # train_linemodel caches each page's features for one page list and one setting: forgotten on both
    # sides, or the blind models of a run that also trained the others would see their rule-hit columns.
    use_rule_features, tl.USE_RULE_FEATURES = tl.USE_RULE_FEATURES, not blind
    tl.forget_page_matrices()
    try:
        X, y, w, pidx, _, kept = tl.build(pages, "weak", "all")
    finally:
        tl.USE_RULE_FEATURES = use_rule_features
        tl.forget_page_matrices()
    sites = np.array([pages[i].site for i in pidx])
    sets = np.array([pages[i].set for i in pidx])
    page_sites = np.array([p.site for p in pages])
    fold_of: dict[str, int] = {}
    models: list[LineModel] = []
    with tempfile.TemporaryDirectory() as tmp:
        for f, (tr_pages, te_pages) in enumerate(GroupKFold(n_splits=folds).split(page_sites, groups=page_sites)):
            for s in page_sites[te_pages]:
                fold_of[str(s)] = f
            tr = np.isin(sites, list(set(page_sites[tr_pages])))
            # the threshold as the shipped model gets its own (loss target chosen on these pages, as
            # stored); blind models clean bodies without the library, which that choice measures with, so
            # they keep the fixed target
            thr, _, _ = tl.fold_threshold("lgbm", pages, X, y, w, pidx, tr, sites, sets, kept,
                                          tl.TARGET_LOSS if blind else None)
            m = tl.fit("lgbm", X[tr], y[tr], w[tr])
            path = Path(tmp) / f"fold{f}.json"
            path.write_text(json.dumps(tl.export_lgbm(m.booster_, tl.lf.FEATURE_NAMES, threshold=thr, version=1)))
            models.append(LineModel.load(path))
            if mc is not None:
                mc.mkdir(parents=True, exist_ok=True)
                (mc / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    if mc is not None:
        (mc / "fold_of.json").write_text(json.dumps({"folds": folds, "fold_of": fold_of}), encoding="utf-8")
    return fold_of, models


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "newsetl-html-cv"))
    ap.add_argument("--pages-cache", default="", help="pickle of train_linemodel's labelled pages ('' = rebuild)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--tables", choices=("on", "both"), default="on")
    ap.add_argument("--fast", choices=("off", "both"), default="both")
    ap.add_argument("--objective", choices=("mean", "acceptance", "robust"), default="robust",
                    help="what the training folds maximise (see objective())")
    ap.add_argument("--select-on", choices=("rules", "model"), default="model",
                    help="choose the setting by the bodies after the rules alone, or after rules + line model")
    ap.add_argument("--models-cache", default="", help="keep the fold line models here and reuse them")
    ap.add_argument("--blind", action="store_true",
                    help="also the chosen setting without the pattern library (rules written while looking at "
                         "aeb-dev and the seeds), with a line model that never saw rule hits: an estimate "
                         "free of what the rules learned from these pages")
    ap.add_argument("--rules-provenance", default="off", choices=("off", *lmdata.PROVENANCE_MODES),
                    help="clean each page without the pattern rules its own site taught (see "
                         "train_linemodel.py --rules-provenance)")
    ap.add_argument("--fallback-words", default="10,50,100,200",
                    help="comma-separated candidates for ExtractConfig.fallback_words (a dimension of the setting)")
    args = ap.parse_args(argv)
    global SETTINGS, OBJECTIVE
    OBJECTIVE = args.objective
    SETTINGS = tuple((m, t, f) for f in ((False, True) if args.fast == "both" else (False,))
                     for t in ((True, False) if args.tables == "both" else (True,)) for m in MODES)
    pages = load_html_pages()
    ex = extractions(pages, Path(args.cache))
    rules = load_rules()
    # --rules-provenance: each page cleaned by the library as a new site would have had it
    library = lmdata.OwnRulesOff(args.rules_provenance, rules) if args.rules_provenance != "off" else None
    fold_of, models = fold_models(args.folds, args.pages_cache, args.models_cache, library=library)
    # A variant: an extraction setting and a fallback threshold. bodies[variant][with model?][key]
    variants = [(*s, int(fw)) for s in SETTINGS for fw in args.fallback_words.split(",")]
    bodies: dict[tuple[str, bool, bool, int], dict[str, dict[str, str]]] = {}
    for mode, tables, fast, fw in variants:
        for use_model in (False, True):
            bodies[(mode, tables, fast, fw)] = bodies.get((mode, tables, fast, fw), {})
            out: dict[str, str] = {}
            for p in pages:
                model = models[fold_of[p["site"]]] if use_model else None
                page_rules = library.for_site(p["site"]) if library is not None else rules

                def clean(text: str, title: str | None, page_rules: Any = page_rules, model: Any = model) -> str:
                    return clean_text(repair_text(text).text, page_rules, titles=(title,) if title else (),
                                      model=model).body
                out[p["key"]] = cleaned_body(ex, (mode, tables, fast, fw), p["key"], clean)
            bodies[(mode, tables, fast, fw)]["model" if use_model else "rules"] = out
    # trafilatura alone, as the eval README measures it: default mode, no comments, nothing after it
    alone = {p["key"]: (ex["default"][p["key"]] or ["", None])[0] for p in pages}

    def name(s: tuple[str, bool, bool, int]) -> str:
        return f"{setting_name(*s[:3])} fb{s[3]}"

    print(f"{'setting (all pages, for reference)':<36} {'AEB F1':>7} {'resid':>6} {'traf P':>7} {'traf R':>7} "
          f"{'traf F1':>7}")
    for s in variants:
        for kind in ("rules", "model"):
            sc = score(pages, bodies[s][kind])
            print(f"{name(s) + ' + ' + kind:<36} {sc['aeb_f1']:7.4f} {sc['aeb_residual_lines']:6d} "
                  f"{sc['traf_p']:7.4f} {sc['traf_r']:7.4f} {sc['traf_f1']:7.4f}")
    sc = score(pages, alone)
    print(f"{'trafilatura alone (default)':<36} {sc['aeb_f1']:7.4f} {sc['aeb_residual_lines']:6d} "
          f"{sc['traf_p']:7.4f} {sc['traf_r']:7.4f} {sc['traf_f1']:7.4f}")
    # CV: the setting chosen on the training folds (rules cleaning), figures on the test folds
    chosen: dict[str, dict[str, str]] = {"rules": {}, "model": {}}
    best_of: dict[int, tuple[str, bool, bool, int]] = {}
    # Each variant's per-page sums, scored once: a subset's figures are sums over its pages' rows (every site
    # taken once gives the scorers' own figures, tests/bench/test_floors.py), its chance the resampled sums.
    stats = {s: page_stats(pages, bodies[s][args.select_on]) for s in variants}

    def figures(s: tuple[str, bool, bool, int], subset: Sequence[int]) -> dict[str, float]:
        """The variant's figures on pages[subset] (what `objective` reads), with the chance of all floors on
        their resampled sites."""
        site_idx, draws = site_resamples([pages[i]["site"] for i in subset], BOOTSTRAP_SEED + len(subset))
        rows = stats[s][list(subset)]
        once = {k: float(v[0]) for k, v in resampled_figures(rows, site_idx, np.ones((1, draws.shape[1]))).items()}
        return {**once, "chance": chance_all_floors(rows, site_idx, draws)}

    for f in range(args.folds):
        train = [i for i, p in enumerate(pages) if fold_of[p["site"]] != f]
        on_train = {s: figures(s, train) for s in variants}
        best = best_of[f] = max(variants, key=lambda s: objective(on_train[s]))
        extra = f" (chance of all floors {on_train[best]['chance']:.3f})" if OBJECTIVE == "robust" else ""
        print(f"fold {f}: chose {name(best)} on the training folds{extra}")
        for p in pages:
            if fold_of[p["site"]] == f:
                for kind in chosen:
                    chosen[kind][p["key"]] = bodies[best][kind][p["key"]]
    # The gap: the setting chosen on all pages, measured on all pages (what a tuned-on-dev figure would be).
    every = list(range(len(pages)))
    figs_all = {s: figures(s, every) for s in variants}
    fit_all = max(variants, key=lambda s: objective(figs_all[s]))
    if OBJECTIVE == "robust":
        ranked = sorted(variants, key=lambda s: -figs_all[s]["chance"])[:8]
        print("chance of all three floors on resampled sites (all pages): "
              + ", ".join(f"{name(s)} {figs_all[s]['chance']:.3f}" for s in ranked))
    for kind in ("rules", "model"):
        sc = score(pages, bodies[fit_all][kind])
        print(f"fit on all pages: {name(fit_all)} + {kind:<6}: AEB F1 {sc['aeb_f1']:.4f}, boilerplate lines left "
              f"{sc['aeb_residual_lines']}; traf snippet F1 {sc['traf_f1']:.4f}")
    for kind in ("rules", "model"):
        sc = score(pages, chosen[kind])
        print(f"CV test folds, chosen setting + {kind:<6}: AEB F1 {sc['aeb_f1']:.4f} (P {sc['aeb_p']:.4f} R "
              f"{sc['aeb_r']:.4f}), boilerplate lines left {sc['aeb_residual_lines']}; traf snippet F1 "
              f"{sc['traf_f1']:.4f} (P {sc['traf_p']:.4f} R {sc['traf_r']:.4f})")
    # As a warehouse stores them: the chosen settings' rules + model bodies, then describe with what the
    # pipeline hands it (the title, URL, date, author ... trafilatura found): the headline, byline and dateline
    # lines at the top leave the body.
    hints = page_hints(pages, Path(args.cache))
    described: dict[str, str] = {}
    for p in pages:
        extracted = with_fallback(ex, *best_of[fold_of[p["site"]]], p["key"])
        title = extracted[1] if extracted is not None else None
        h = hints.get(p["key"], {})
        described[p["key"]] = describe_article(chosen["model"][p["key"]], (), DescribeHints(
            url=h.get("url"), title=title, published_at=h.get("date"), author=h.get("author"),
            sitename=h.get("sitename"), description=h.get("description"), content_type="html")).body
    sc = score(pages, described)
    site_idx, draws = site_resamples([p["site"] for p in pages], BOOTSTRAP_SEED)
    chance = chance_all_floors(page_stats(pages, described), site_idx, draws)
    print(f"CV test folds, chosen setting + model + describe (as stored): AEB F1 {sc['aeb_f1']:.4f} (P "
          f"{sc['aeb_p']:.4f} R {sc['aeb_r']:.4f}), boilerplate lines left {sc['aeb_residual_lines']}; traf snippet "
          f"F1 {sc['traf_f1']:.4f} (P {sc['traf_p']:.4f} R {sc['traf_r']:.4f}); all three floors held on "
          f"{chance:.0%} of site resamples")
    shipped = pipeline_setting()
    if shipped in bodies:
        for kind in ("rules", "model"):
            sc = score(pages, bodies[shipped][kind])
            print(f"pipeline's setting ({name(shipped)}) + {kind:<6}: AEB F1 {sc['aeb_f1']:.4f}, boilerplate lines "
                  f"left {sc['aeb_residual_lines']}; traf snippet F1 {sc['traf_f1']:.4f} (chosen on all pages)")
    if args.blind:
        # The settings chosen above, cleaned with no pattern rule (the structural passes stay: headline,
        # learned lines) and the blind fold models. The pattern library was written on aeb-dev (and half of
        # traf-dev's sites), so its share of the figures above is measured on pages it was fitted to.
        _, blind_models = fold_models(args.folds, args.pages_cache, args.models_cache, blind=True)
        no_rules = rules.without_patterns()

        def blind_bodies(setting_of: Callable[[int], tuple[str, bool, bool, int]]) -> dict[str, str]:
            out: dict[str, str] = {}
            for p in pages:
                f = fold_of[p["site"]]

                def clean(text: str, title: str | None, model: Any = blind_models[f]) -> str:
                    return clean_text(repair_text(text).text, no_rules, titles=(title,) if title else (),
                                      model=model).body if text else ""
                out[p["key"]] = cleaned_body(ex, setting_of(f), p["key"], clean)
            return out

        blind = blind_bodies(lambda f: best_of[f])
        for label, b in (("chosen setting", blind), (f"pipeline's setting ({name(shipped)})",
                                                     blind_bodies(lambda f: shipped))):
            sc = score(pages, b)
            print(f"CV test folds, {label}, no pattern rules + blind model: AEB F1 {sc['aeb_f1']:.4f} (P "
                  f"{sc['aeb_p']:.4f} R {sc['aeb_r']:.4f}), boilerplate lines left {sc['aeb_residual_lines']}; "
                  f"traf snippet F1 {sc['traf_f1']:.4f} (P {sc['traf_p']:.4f} R {sc['traf_r']:.4f})")
        # Rules were written reading only half A of traf-dev's sites (train_linemodel.site_half): half B
        # shows what the library adds on sites it was not written on.
        for half in "AB":
            sub = [p for p in pages if p["set"] == "traf" and tl.site_half(p["site"]) == half]
            figs = {k: score(sub, b)["traf_f1"] for k, b in (("rules + model", chosen["model"]), ("blind", blind),
                                                             ("trafilatura alone", alone))}
            print(f"  traf half {half} ({len(sub)} pages) snippet F1: "
                  + ", ".join(f"{k} {v:.4f}" for k, v in figs.items()))
    losers = {"the chosen settings lose": chosen["rules"]}
    if shipped in bodies:
        losers["the pipeline's setting loses"] = bodies[shipped]["rules"]
    for what, out in losers.items():
        lost = [p["key"] for p in pages if count_words(alone[p["key"]]) >= ExtractConfig.min_words
                and not out[p["key"]].strip()]
        print(f"pages trafilatura alone extracts that {what}: {len(lost)} {lost[:5]}")
    # What the fallback costs: pages on which a variant's first mode falls short, so a second (and a third)
    # mode is run.
    for s in sorted({fit_all, *variants}, key=name):
        runs = [fallback_walk(ex, *s, p["key"])[1] for p in pages]
        print(f"{name(s)}: a second extraction on {sum(n >= 2 for n in runs)} of {len(pages)} pages, "
              f"a third on {sum(n >= 3 for n in runs)}")
    nofb = [p["key"] for p in pages if ex["precision"][p["key"]] is None and alone[p["key"]].strip()]
    print(f"pages precision mode alone would lose (saved by the fallback): {len(nofb)} {nofb[:5]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
