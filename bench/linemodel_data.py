"""Labelled line data for the learned boilerplate classifier (dev sets of ../shared/eval); training only.

Builds one `Page` per input text of aeb-dev/text and traf-dev/text:
  raw      the input file (what the scorers compare the body with),
  rep      the repaired text (pipeline: repair -> clean), split into `lines` on "\n",
  labels   per line: 1 = boilerplate, 0 = content, -1 = unlabelled or blank,
  rule_cat per line: category of the rule cleaner's whole-line removal ("" = kept),
  cut_frac per line: share of the line's characters cut out by span rules,
  kept     per line: the text the rule cleaner keeps of it (None = removed or blank),
  site     registered domain of the page URL (the CV group).

Labels (mirroring the scorers):
  aeb   aeb_metric.label_lines on the repaired line: gt -> 0, headline -> 0, residual -> 1.
  traf  whitespace-normalised line contains a "with" snippet (or lies inside one) -> 0; else contains a
        "without" snippet (or lies inside one) -> 1; else -1 (unlabelled, excluded from the loss).

Also the scorers' measures for a final body (`score_aeb_page`, `score_traf_page`).
"""
from __future__ import annotations

import bisect
import hashlib
import importlib.util
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from newsetl.text.clean import Ruleset, clean_text, load_rules
from newsetl.text.repair import repair_text

EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval"


def _load_metric() -> Any:
    spec = importlib.util.spec_from_file_location("aeb_metric", EVAL / "aeb_metric.py")
    if spec is None or spec.loader is None:
        sys.exit(f"linemodel_data: cannot load {EVAL / 'aeb_metric.py'} (../shared must be beside the checkout)")
    module = importlib.util.module_from_spec(spec)
    sys.modules["aeb_metric"] = module
    spec.loader.exec_module(module)
    return module


aeb_metric = _load_metric()

_WS = re.compile(r"\s+")
_SLD = {"co", "com", "org", "net", "ac", "gov", "edu", "ne", "or", "go"}


def norm_ws(s: str) -> str:
    return _WS.sub(" ", s).strip()


def site_of(url: str) -> str:
    host = re.sub(r"^[a-z]+://", "", (url or "").lower()).split("/")[0].split(":")[0]
    parts = [p for p in host.split(".") if p]
    if len(parts) >= 3 and parts[-2] in _SLD and len(parts[-1]) == 2:
        return ".".join(parts[-3:])
    return ".".join(parts[-2:]) if parts else "?"


@dataclass
class Page:
    set: str
    key: str
    site: str
    raw: str
    rep: str
    lines: list[str]
    labels: np.ndarray
    rule_cat: list[str]
    cut_frac: np.ndarray
    kept: list[str | None]
    truth: str = ""
    titles: list[str] = field(default_factory=list)
    with_snips: list[str] = field(default_factory=list)
    without_snips: list[str] = field(default_factory=list)


def rule_pass(rep: str, rules: Ruleset) -> tuple[list[str], list[str], np.ndarray, list[str | None]]:
    """Run the rule cleaner; per line: category of a whole-line removal, share cut by spans, kept text."""
    lines = rep.split("\n")
    starts = []
    pos = 0
    for ln in lines:
        starts.append(pos)
        pos += len(ln) + 1
    res = clean_text(rep, rules)
    cat = [""] * len(lines)
    cut = np.zeros(len(lines))
    for r in res.removals:
        i = bisect.bisect_right(starts, r.position) - 1
        if r.text == lines[i].strip():
            cat[i] = r.category
        else:
            cut[i] += len(r.text) / max(1, len(lines[i].strip()))
    body_lines = [b for b in res.body.split("\n") if b.strip()]
    kept: list[str | None] = [None] * len(lines)
    it = iter(body_lines)
    for i, ln in enumerate(lines):
        if ln.strip() and not cat[i]:
            kept[i] = next(it)
    assert next(it, None) is None
    return lines, cat, np.minimum(cut, 1.0), kept


def label_aeb(lines: list[str], truth: str, titles: list[str]) -> np.ndarray:
    lab = np.full(len(lines), -1, dtype=np.int8)
    labelled = iter(aeb_metric.label_lines("\n".join(lines), truth, titles))
    for i, ln in enumerate(lines):
        if ln.strip():
            _, kind = next(labelled)
            lab[i] = 1 if kind == "residual" else 0
    return lab


def label_traf(lines: list[str], with_s: list[str], without_s: list[str]) -> np.ndarray:
    lab = np.full(len(lines), -1, dtype=np.int8)
    w = [norm_ws(s) for s in with_s if norm_ws(s)]
    wo = [norm_ws(s) for s in without_s if norm_ws(s)]
    for i, ln in enumerate(lines):
        n = norm_ws(ln)
        if not n:
            continue
        if any(s in n or (len(n) >= 4 and n in s) for s in w):
            lab[i] = 0
        elif any(s in n or (len(n) >= 4 and n in s) for s in wo):
            lab[i] = 1
    return lab


def _read_text(path: Path, rules: Ruleset) -> tuple[str, str, list[str], list[str], np.ndarray,
                                                  list[str | None]]:
    """An input text as the plain-text path sees it: raw, repaired, and the rule pass over its lines."""
    raw = path.read_bytes().decode("utf-8", errors="replace")
    rep = repair_text(raw).text
    return (raw, rep, *rule_pass(rep, rules))


def load_pages(rules: Ruleset | None = None) -> list[Page]:
    rules = rules or load_rules()
    pages: list[Page] = []
    aeb = EVAL / "aeb-dev"
    gt = json.loads((aeb / "ground-truth.json").read_text(encoding="utf-8"))
    titles = json.loads((aeb / "titles.json").read_text(encoding="utf-8"))
    for k in sorted(gt):
        raw, rep, lines, cat, cut, kept = _read_text(aeb / "text" / f"{k}.txt", rules)
        pages.append(Page("aeb", k, site_of(gt[k]["url"]), raw, rep, lines,
                          label_aeb(lines, gt[k]["articleBody"], titles.get(k, [])), cat, cut, kept,
                          truth=gt[k]["articleBody"], titles=titles.get(k, [])))
    traf = EVAL / "traf-dev"
    sn = json.loads((traf / "snippets.json").read_text(encoding="utf-8"))
    for k in sorted(sn):
        raw, rep, lines, cat, cut, kept = _read_text(traf / "text" / f"{k}.txt", rules)
        pages.append(Page("traf", k, site_of(sn[k]["url"]), raw, rep, lines,
                          label_traf(lines, sn[k]["with"], sn[k]["without"]), cat, cut, kept,
                          with_snips=sn[k]["with"], without_snips=sn[k]["without"]))
    return pages


def input_digest() -> dict[str, str]:
    """sha256 of every input file used (for the manifest)."""
    out = {}
    for p in sorted(list((EVAL / "aeb-dev" / "text").glob("*.txt")) + list((EVAL / "traf-dev" / "text").glob("*.txt"))
                    + [EVAL / "aeb-dev" / "ground-truth.json", EVAL / "aeb-dev" / "titles.json",
                       EVAL / "traf-dev" / "snippets.json"]):
        out[str(p.relative_to(EVAL))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


# ------------------------------------------------------------------------------------- scoring
def body_of(page: Page, extra_remove: np.ndarray | None = None, use_rules: bool = True) -> str:
    """The final body: rule cleaner's kept lines (or all lines if not use_rules) minus `extra_remove`."""
    out = []
    for i, ln in enumerate(page.lines):
        if not ln.strip():
            continue
        if extra_remove is not None and extra_remove[i]:
            continue
        if use_rules:
            kept = page.kept[i]
            if kept is not None:
                out.append(kept)
        else:
            out.append(ln)
    return "\n".join(out)


def score_aeb_page(page: Page, body: str) -> np.ndarray:
    """[residual_lines, residual_removed, gt_lines, gt_lines_lost] as the scorer counts them."""
    r = aeb_metric.residual_removal({page.key: page.truth}, {page.key: page.raw}, {page.key: body},
                                    {page.key: page.titles})
    return np.array([r["residual_lines"], r["residual_removed"], r["gt_lines"], r["gt_lines_lost"]], float)


def score_traf_page(page: Page, body: str) -> np.ndarray:
    """[without_in_input, without_removed, with_in_input, with_lost] (snippets the input carries)."""
    nraw, nbody = norm_ws(page.raw), norm_ws(body)
    wo = [norm_ws(s) for s in page.without_snips]
    w = [norm_ws(s) for s in page.with_snips]
    wo_in = sum(s in nraw for s in wo)
    w_in = sum(s in nraw for s in w)
    return np.array([wo_in, wo_in - sum(s in nbody for s in wo if s in nraw),
                     w_in, w_in - sum(s in nbody for s in w if s in nraw)], float)


# Extra TRAINING pages (never measured): the stored outputs of other article extractors for the 88
# aeb-dev pages (dedup-dev/docs.jsonl), labelled against the same ground truth. They carry the same
# kinds of leftover boilerplate (comments, related links, share prompts, captions) in other amounts, and
# share the site group of their aeb page, so grouped CV keeps them in that page's fold.
EXTRA_SOURCES = ("AutoExtract", "Diffbot", "boilerpipe", "dragnet", "go_domdistiller", "go_readability",
                 "go_readability_fork", "goose3", "news_please", "newspaper", "readability", "readability_js",
                 "rs_trafilatura", "trafilatura")


def load_extra_pages(rules: Ruleset | None = None, sources: tuple[str, ...] = EXTRA_SOURCES) -> list[Page]:
    rules = rules or load_rules()
    aeb = EVAL / "aeb-dev"
    gt = json.loads((aeb / "ground-truth.json").read_text(encoding="utf-8"))
    titles = json.loads((aeb / "titles.json").read_text(encoding="utf-8"))
    dd = EVAL / "dedup-dev"
    src = json.loads((dd / "sources.json").read_text(encoding="utf-8"))
    story = json.loads((dd / "labels.json").read_text(encoding="utf-8"))
    seen: set[tuple[str, str]] = set()
    pages: list[Page] = []
    with (dd / "docs.jsonl").open(encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            if src.get(d["id"]) not in sources:
                continue
            k = story[d["id"]]
            if k not in gt or (k, d["text"]) in seen:
                continue
            seen.add((k, d["text"]))
            rep = repair_text(d["text"]).text
            lines, cat, cut, kept = rule_pass(rep, rules)
            pages.append(Page("xtra", d["id"], site_of(gt[k]["url"]), d["text"], rep, lines,
                              label_aeb(lines, gt[k]["articleBody"], titles.get(k, [])), cat, cut, kept,
                              truth=gt[k]["articleBody"], titles=titles.get(k, [])))
    return pages


# ------------------------------------------------------------------------------ rule provenance
SEEDS = EVAL.parent / "seeds"


def _provenance_texts() -> list[tuple[str, str]]:
    """(site, text) of every input a rule could have been written from: the dev sets' text inputs (site =
    registered domain) and the seeds ("<seeds>"). Not the bundled samples: they were written here, after the
    seeds, so a rule firing on them is no evidence that it is general."""
    texts: list[tuple[str, str]] = []
    gt = json.loads((EVAL / "aeb-dev" / "ground-truth.json").read_text(encoding="utf-8"))
    for k, v in gt.items():
        texts.append((site_of(v["url"]), (EVAL / "aeb-dev" / "text" / f"{k}.txt").read_text(errors="replace")))
    sn = json.loads((EVAL / "traf-dev" / "snippets.json").read_text(encoding="utf-8"))
    for k, v in sn.items():
        texts.append((site_of(v["url"]), (EVAL / "traf-dev" / "text" / f"{k}.txt").read_text(errors="replace")))
    for path in sorted(SEEDS.glob("*")) if SEEDS.is_dir() else ():
        if path.is_file():
            texts.append(("<seeds>", path.read_bytes().decode("utf-8", errors="replace")))
    return texts


def rule_provenance(rules: Ruleset) -> dict[str, set[str]]:
    """rule id -> the sites whose input text contains one of the rule's examples (case and whitespace
    folded). Empty when no example is found verbatim, as for the rules whose examples were rewritten with
    made-up names (what page inspired them cannot be told from the text)."""
    folded = [(site, norm_ws(text).casefold()) for site, text in _provenance_texts()]
    out: dict[str, set[str]] = {}
    for rule in rules.rules:
        found: set[str] = set()
        for example in rule.examples:
            e = norm_ws(example).casefold()
            if len(e) >= 4:
                found.update(site for site, text in folded if e in text)
        out[rule.id] = found
    return out


def rule_hit_sites(rules: Ruleset) -> dict[str, set[str]]:
    """rule id -> the sites on whose (repaired) inputs the rule removes something. A rule that fires on
    other sites than a page's own could have been written from them: it is general by evidence, whatever
    page its examples were taken from."""
    out: dict[str, set[str]] = {rule.id: set() for rule in rules.rules}
    for site, text in _provenance_texts():
        for removal in clean_text(repair_text(text).text, rules).removals:
            if removal.rule in out:
                out[removal.rule].add(site)
    return out


PROVENANCE_MODES = ("own", "own-hits", "own+unfound")


class OwnRulesOff:
    """The library as a new site would have had it, a leave-site-out for the pattern library (which was
    written while reading these pages). For a page of `site`, switched off:
    - "own": the rules whose examples are found on that site and nowhere else;
    - "own-hits": the rules that fire on that site's inputs and on no other site's (`rule_hit_sites`);
    - "own+unfound": as "own", and everywhere the rules whose examples are found nowhere (rewritten
      examples may come from any dev page): the pessimistic bound."""

    def __init__(self, mode: str, rules: Ruleset | None = None) -> None:
        import tempfile

        if mode not in PROVENANCE_MODES:
            raise ValueError(f"provenance mode {mode!r}: one of {PROVENANCE_MODES}")
        self.mode, self.rules = mode, rules or load_rules()
        self.provenance = rule_hit_sites(self.rules) if mode == "own-hits" else rule_provenance(self.rules)
        self._tmp = tempfile.TemporaryDirectory()
        self._sets: dict[tuple[str, ...], Ruleset] = {}

    def for_site(self, site: str) -> Ruleset:
        off = tuple(sorted(rid for rid, sites in self.provenance.items()
                           if sites == {site} or (self.mode == "own+unfound" and not sites)))
        if not off:
            return self.rules
        if off not in self._sets:
            path = Path(self._tmp.name) / f"disable{len(self._sets)}.json"
            path.write_text(json.dumps({"disable": list(off)}), encoding="utf-8")
            self._sets[off] = load_rules([path])
        return self._sets[off]


def without_own_rules(pages: list[Page], library: OwnRulesOff) -> tuple[list[Page], int]:
    """The pages with their rule pass redone under `library`; and how many of them changed."""
    from dataclasses import replace

    out: list[Page] = []
    changed = 0
    for page in pages:
        restricted = library.for_site(page.site)
        if restricted is library.rules:
            out.append(page)
            continue
        lines, cat, cut, kept = rule_pass(page.rep, restricted)
        changed += cat != page.rule_cat or kept != page.kept
        out.append(replace(page, lines=lines, rule_cat=cat, cut_frac=cut, kept=kept))
    return out, changed
