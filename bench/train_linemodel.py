"""Train and evaluate the learned boilerplate line classifier with site-grouped cross-validation.

  python bench/train_linemodel.py            # CV table (5 site-grouped folds) + final model + manifest
  python bench/train_linemodel.py --no-final # CV only (bench/eval_all.py --sets linemodel-cv runs this)
  python bench/train_linemodel.py --compare  # also compare learners (lgbm / hgb / lr) under the same CV
  python bench/train_linemodel.py --no-final --seeds 1,2,3,4,5,6  # the CV once per LightGBM seed (spread)

Needs the `[train]` extra (lightgbm, scikit-learn); the package itself never imports them.

Data: aeb-dev/text and traf-dev/text of ../shared/eval (see lmdata.py for the labels). Every page is
repaired and cleaned by the rule cleaner exactly as the plain-text path does; the model sees the lines
with the rule hits as features and may remove lines the rules kept.

CV: GroupKFold(5) over sites (registered domain), both sets pooled, no site in train and test. Inside each
training fold a nested GroupKFold(3) gives out-of-fold scores on the training pages; the decision
threshold is the lowest whose content-line loss on those scores is <= the loss target (line proxy) in
EACH set (aeb, traf): one threshold for the product, the budget held per set. The target is chosen on the
training fold too (`choose_target`: another inner GroupKFold(3), each candidate measured as stored), or
fixed by `--target-loss`. The test fold never picks its own threshold or target. Measures on the test
folds are the scorers' own (aeb_metric residual_removal; traf snippet counts on the whitespace-normalised
body).

Modes printed: rules (rule cleaner alone), model (model alone, rule features on), both (the product:
rules then model, package guards), blind (model alone on the raw lines with the rule-hit features zero:
no rule written against these pages helps -- the estimate of what the model itself catches on sites the
rules do not know). The rules were written against aeb-dev, so "both" overstates unseen AEB pages.

Hand-written rules get a held-out estimate too: `--halves` prints the rules / both / blind figures on each
half of the sites (`site_half`: sha256 of the site's name, even = A). Write rules reading only half A's
leftovers; half B's figures are the estimate for sites the rules were not written on. The kinds added to the
library on 2026-12-05 (other languages' read-also prefixes, comment widgets, newsletter, licence and contact
lines; v4) broke that rule: they were written after reading the leftovers of both halves, so for them half B
is not held out, and `--rules-provenance own-hits` (traf 49.5% removed / 0.33% lost, against 55.7% / 0.28%
with every rule) and `own+unfound` (32.5% / 0.28%, all of them off) are the estimates to go by.

Where the traf text figure stands (v4, 2026-12-05): rules + model remove 55.7% of the 212 boilerplate
snippets at 0.28% lost (the rules alone 49.1% / 0.17%; v3 with the library before: 28.8% / 0.33%); the oracle
threshold at 0.5% lost gives the same 55.7%. As a warehouse holds it (mode `product`, describe after the
cleaner): 58.5% / 0.44% since describe keeps the standfirst in the body and reads a bare byline only when
it starts with a given name (60.8% / 0.88% when it cut the standfirst; docs/evaluation.md, "As stored"). Of the 94
snippets left, most are lines of the kind the page's own article is made of: teaser headlines and intros of
other stories, author bios, reader posts without a comment header, another article's paragraphs on a
listing page.

v5 (2026-12-06): the same trees; the loss target is chosen on each fold's training pages (`choose_target`,
the CV of the choice): as stored, AEB 88.3% removed / 0.48% lost (v4's fixed 0.3%: 0.53%), traf 58.0% / 0.39%
(58.5% / 0.44%); `own-hits` AEB 79.2% / 0.43%, traf 49.5% / 0.39%. Written after seeing that a fixed 0.2% did
as well on traf and lost one AEB line less, so the idea is not wholly free of the look; the figures are the
nested choice's.

v5 retrained (2026-12-07), same code and parameters, after user trial 9 changed its inputs: the rules library
gained share, newsletter, photo-credit, comment-header and read-also kinds in other languages (one traf-dev page's
three French share lines now hit a rule; no labelled snippet changed), the rules and the line features count a
word with its combining marks (Devanagari, Thai, Arabic harakat), and describe reads date lines in other
languages. The model file is retrained so that the command above rebuilds it from the library it runs with.
The CV moved within the learner's seed spread: as stored, traf 57.5% / 0.44% (58.0% / 0.39% before), mean of
seeds 1-6 55.3% (55.8%), AEB 88.3% / 0.48% unchanged at seed 12 (0.53% on seed 6). The shipped model's
target moved from 0.2% to 0.1% (threshold 0.66 -> 0.73): on all pages at 0.2% one more content snippet goes
(10 of 1,818, 0.55%, over the 0.5% line `choose_target` keeps).

Measured and not taken (same CV, v2 features; counts in the helper report of issue 12): --stack (a second
stage on the first stage's neighbour scores), --rule-dropout 0.5 (0.25 is the default), --extra on (other
extractors' outputs as training pages), --learner hgb (same removal, more loss), smaller/slower LightGBM
(--params). Also measured, by scratch scripts kept out of the repo (2026-12-05, with v3 and the library before
its multilingual kinds; the CV here then gave rules + model traf 28.8% removed / 0.33% lost, oracle at 0.5%
loss 30.2%): a hashed word/char n-gram logistic score as one
more feature, fitted inside each training fold (traf 28.8%, blind 16-20% instead of 14.6%); traf-dev's HTML
rendered paragraph by paragraph by justext (every paragraph, boilerplate included), cropped around the article
and labelled by the snippets, as training-only pages of their own site: 1,052-1,681 more boilerplate lines, and
traf 24.5-30.2% removed at 0.22-0.66% lost, oracle 25.0-27.4%: more boilerplate of a kind the plain-text inputs
do not carry (menus) teaches the wrong look; topic-coherence columns (the share of a line's content words found
elsewhere in the document or in its story lines, and the same over two lines either side): traf 30.2-30.7%
removed, blind 15.6-21.2%, oracle 34.0-34.9%, but AEB's lost lines 0.43-0.68% instead of 0.34% (the
acceptance allows 0.5%). Re-measured on v5 (2026-12-06, same scratch approach: the share of a line's content
words found in another line, in the story lines, in the first three story lines, and the story share's mean
and max over two lines either side, appended to every page's features): seed 12 product traf 54.7% / 0.50%
(v5 58.0% / 0.39%), seeds 1-3 53.3-55.7% (v5 56.1-56.6%), AEB unchanged. Not taken.
Also on v5 (2026-12-06, scratch scripts, every fit of the CV replaced, so the CV measures what would ship;
as stored, traf removed / lost, AEB lost; draws of base seeds 12, 1, 2, 3): seed bagging, the mean log-odds of
K LightGBM models that differ only in random_state -- K=3: traf 58.0 / 55.7-57.1% (v5: 58.0 / 56.1-56.6%),
AEB lost 0.53% on seed 12; K=5: 55.7 / 56.6-57.1%, AEB 0.53% on seed 12, and the tree pass grows faster than
K (all 32 lines of a text: 234 -> 1,853 us at K=5, over the cleaner's whole budget); scale_pos_weight 2:
traf 54.2-55.2%; 0.5: 54.7-57.5%, AEB 0.53% on seed 12. None is above the baseline's spread. Not taken.
Also on v5 (2026-12-07, a helper's scratch clone; product traf removed / lost, seed 12 and the mean of seeds
1-6; v5: 58.0 / 0.39 and 55.8 / 0.42): weak boilerplate labels (weight 0.3) on traf's unlabelled lines after the
first boilerplate line below the last content line: 52.4 / 52.5% (the thresholds rose to 0.76-0.98: comment-like
prose labelled boilerplate lifts real content lines); the weak content lines at weight 0.1 instead of 0.3:
54.7 / 55.3%; four tail-block columns (headline-like line, share of headline-like lines below and within three,
distance from a short colon-ended header after the main block): 55.2 / 55.8%, loss lower; the threshold's loss
budget counted on the snippet-labelled lines only, with targets up to 3%: 58.5 / 56.4% (the AEB budget binds).
None reaches +1.5 points. Of the 89 traf snippets the product leaves (seed 12), 57 score below 0.1: teaser
intros and whole paragraphs of other stories, bios, reader posts with no header, promos written as sentences.
Also on v5 (2026-12-07, a second helper's scratch clone; product traf removed seed 12 / mean of seeds 1-6, v5
58.0 / 55.8%; ten variants, every fit of the CV changed): training weights that give each page the same total
(56.1 / 55.3%; the square-root form 55.2 / 55.0%), each set the same total (55.2 / 55.6%), both (53.8 / 54.4%);
min_child_samples 30 / 60 (57.5 / 55.1%, 55.2 / 55.2%), colsample_bytree 0.5 (56.1 / 55.6%), reg_lambda 5
(55.7 / 56.0%, traf lost 0.55% on one seed), extra_trees (54.7 / 55.0%), path_smooth 10 (56.6 / 55.7%, AEB
lost 0.53%). Several put AEB's lost lines over 0.5% on some seeds. Not taken.
And rules written by the half protocol above (2026-12-07, a helper that read half A's leftovers only and saw
half B through the `--halves` figures alone, measured once): twelve general rules (bare more-links, a teaser
ending in its more-link, trailing caption credits, "X Bureau/Desk" credits, blog like-counters, did-you-like-it
and first-published lines in five languages, sponsored-post notes, more comment-widget lines, German reading
time, one-word image credits, a post's meta line). Half A's rules row: traf 41.9 -> 46.5% (in-sample); half
B's: unchanged to the snippet (68/126 removed, 2/987 lost), both 61.1 -> 60.3% (one snippet of model noise).
On sites they were not written on they remove nothing labelled: half A's labelled leftovers are mostly
teaser headlines of other stories, which no phrase rule reaches. Not taken (the library keeps to rules with
a held-out effect; the twelve are in the helper report of issue 12 should unlabelled lines ever count).

And sequence-level decisions (2026-12-07, a helper's scratch clone, every fit of the CV changed; each variant's
own settings chosen with the loss target on the inner folds only; product traf removed / lost, seed 12 and the
mean of seeds 1-6, v5 58.0 / 55.8%): a two-state content/boilerplate chain over the page's lines on the
calibrated scores, forward-backward posteriors (56.6 / 55.0%, AEB lost 0.53% on one seed) or Viterbi
max-marginals (56.6 / 55.2%, AEB 0.58% on one seed), switch probabilities 0.003-0.3, asymmetric included; a
three-state chain with a tail state after the main block (58.0 / 54.9%); a second stage with eleven
best-content-span columns (in the span, distance, content mass before and after, runs of high scores
between; 56.6 / 53.8%, AEB 0.53% on one seed). The inner folds chose the identity in most folds: the
leftovers are runs of content-looking lines, which no chain cheap enough to spare real content flips. A
Viterbi pass would cost 26 us a document. Not taken.

And weak labels from trafilatura's own precision mode (2026-12-07, a helper's scratch clone; nineteen
variants, all listed in the helper report of issue 12, weights not chosen by an inner CV): a traf line with
no snippet label that precision (and default) mode drop from the page's HTML labelled boilerplate, one they
keep labelled content, training rows only. As boilerplate labels (weights 0.03-0.3, with or without
sentence-like lines, with the thresholds counted on snippet rows only): seed 12 51.9-52.8%, the mean of
seeds 1-6 51.9-52.7%: the thresholds rose to 0.85-0.996 and the product removed what the rules remove, since
what precision mode drops outside the article is mostly reader comments, prose like content. As content
labels or as a filter on the positional labels: 54.7-57.1% on seed 12, 55.0-55.7% mean, AEB lost 0.53% on
most seeds. Not taken.

And synthetic augmentation (2026-12-07, a helper's scratch clone, every fit of the CV changed; product traf
removed seed 12 / mean of seeds 1-6, v5 58.0 / 55.8%): five topic-coherence columns (a line's content-word share
in the main block's story lines, in its first three, in every other line, that share's mean over two lines either
side, its content-word count; coherence alone: 55.2 / 55.1%, AEB lost 0.53% on one seed), plus, for 30% or 100%
of each fit's training pages, one copy with other sites' lines of the same fit inserted after the main block or
at the end and labelled boilerplate (teaser lists of headline-like first lines and intros, or blocks of another
page's content lines; same-language donors, re-cleaned by the rules; weights 0.01-1.0, on-topic donors tried):
51.9-54.4% mean in twelve variants, AEB lost up to 0.63%. The real leftovers are on-topic: traf's sentence-like
boilerplate kept by the rules has a median main-story share of 0.34, its content lines 0.36, the synthetic lines
0.10-0.19; so the model learned "off-topic prose is boilerplate", lifted the 15% of real content sentences that
share few words with the story, and the inner folds raised the thresholds to 0.81-0.97. Not taken.

And thresholds by the page's language (2026-12-07, a helper's clone, `--lang-groups`; the language as
describe.detect_language reads the rule cleaner's kept lines, first 1,000 characters; per group the lowest
threshold whose loss keeps the target in each set restricted to the group's rows; target and thresholds
chosen on the training folds only; product, seed 12 / mean of seeds 1-6; v5 58.0 / 55.8%, traf lost 0.39 /
0.42%, AEB lost 0.48 / max 0.48%). AEB is not all English to py3langid: 9 of its 88 pages read pt, id, ko, it,
ru, de. Of the 89 traf snippets v5 leaves (seed 12), 70 are on non-English pages, but only 8 of those sit on an
eligible line scoring 0.3-0.6, against 8-10 non-English content lines at 0.46-0.6. `en` (English / other):
57.1 / 56.2%, traf lost 0.44 / 0.46% (max 0.50%), AEB 0.48 / max 0.48%; at seed 12 every fold chose the
target 0.001 (v5: 0.001-0.003).
`support` (English / German, Spanish, French, Italian / the rest): 57.1 / 56.1%, AEB lost 0.68 / 0.53-0.68%
(the small "rest" group, AEB's Portuguese and Indonesian pages among it, gets thresholds 0.16-0.57). The
oracle on seed 12's test scores, English pages at their fold thresholds and one non-English threshold picked
on the test pages: 58.0% at <= 0.5% traf lost (58.5% at 0.55%, 60.4% at 0.77%). Not taken.

And "voice" columns (2026-12-07, a helper's clone, branch `voice`; product, seed 12 / mean of seeds 1-6,
baseline 57.5 / 55.3%): second-person, first-person singular and plural shares over word lists of seven
languages (ambiguous words such as "us", "eu", "Sie" left out), a call-to-action verb opening the line,
exclamation marks, emoji, a bio opening ("Name Surname is a ..."), and their shares over two lines either
side: 56.6 / 55.4%, AEB lost 0.53% on one seed; the three pronoun shares alone: 56.1 / 55.3%, AEB 0.58% on
one seed. On the lines the rules keep, the columns fire as often on content as on boilerplate (second
person 9.2% vs 8.3%, first person singular 12.4% vs 1.7%: the articles quote people). Not taken.
And a multilingual "read more" block header (2026-12-07; the bare "Weiterlesen:", "Saiba mais", "Lue aiheesta
lisää:", "Czytaj więcej" and their kind in twenty languages, taking the link titles under them), written from
half A's leftovers under the half protocol above: rules half A 41.9 -> 46.5% (in-sample), half B unchanged to
the snippet (68/126); both half B 60.3 -> 58.7% (model noise). Not taken, as the twelve above.

Output: text/models/linemodel-v5.json (the model as plain arrays, read by newsetl.text.linemodel) and
bench/linemodel-v5.manifest.json (page ids as sha256 digests, and sites, sha256 of the inputs and of the rules library,
parameters, CV figures; no page text). Deterministic: fixed seeds, one thread, LightGBM deterministic=True,
so the command above rebuilds the model file byte for byte from the same inputs and code.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from sklearn.model_selection import GroupKFold

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import floors  # noqa: E402
from bench import linemodel_data as lmdata  # noqa: E402
from newsetl.text import linefeatures as lf  # noqa: E402
from newsetl.text.describe import DescribeHints, describe_article  # noqa: E402
from newsetl.text.linemodel import (  # noqa: E402
    DEFAULT_MODEL_PATH,
    FORMAT,
    FORMAT_VERSION,
    GUARD,
    LineModel,
    byline_rows,
    eligible_rows,
)
from newsetl.text.lines import is_story_line  # noqa: E402

MANIFEST = REPO / "bench" / "linemodel-v5.manifest.json"

Pages = list[lmdata.Page]
Counts = dict[str, np.ndarray]  # per set ("aeb", "traf"): the scorer's four counts, summed
# line scores by page index; page_scores also keys the blind scores ("blind", page index)
Scores = dict[Any, np.ndarray]


def _pseudonym(name: str) -> str:
    """The manifest's name for a page or file: the first 16 hex digits of the sha256 of its id or path."""
    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]
SEED = 12
MODEL_VERSION = 5
# Content-line loss per set the threshold allows on the training folds' out-of-fold scores. Below the 0.5% the
# acceptance allows, because the threshold set on the training folds loses more on sites it has not seen:
# with a budget of 0.5% the test folds lost 0.39% of AEB's true lines with every rule and 0.58-0.63% without
# the rules only each page's own site taught (--rules-provenance own / own-hits). With 0.4% (v3): 0.34% and
# 0.48% (own-hits), 88.3% and 78.7% of AEB's boilerplate lines still removed; traf 28.8% instead of 30.7%.
# Chosen among 0.5%, 0.4% and 0.3% by this CV, so its figures are slightly optimistic. v4 (2026-12-05, the
# multilingual library): 0.3%, which removes as much as 0.4% (traf 55.7%, AEB 88.3%) and loses less (traf 0.28%
# instead of 0.39% of the content snippets; AEB 0.39% either way); 0.5% removes one snippet more and loses
# 0.50%. With describe after it (mode "product"): traf 60.8% / 0.88% (0.4%: 60.8% / 0.99%).
# v5 (2026-12-06): v4's trees, byte for byte, with the target no longer picked by looking at the CV: each
# training fold chooses its own among TARGET_CANDIDATES by an inner CV of its pages measured as stored
# (choose_target), and the shipped model's is chosen the same way on all pages (0.1% since the retrain of
# 2026-12-07, 0.2% before; the folds choose 0.1-0.5%).
# TARGET_LOSS is now only the fixed target of --stack and of html_cv.py's blind models.
TARGET_LOSS = 0.003
LGBM_PARAMS = dict(objective="binary", learning_rate=0.08, n_estimators=150, num_leaves=15, max_depth=4,
                   min_child_samples=10, subsample=0.8, subsample_freq=1, colsample_bytree=0.7,
                   reg_lambda=1.0, random_state=SEED, n_jobs=1, deterministic=True, force_row_wise=True,
                   verbose=-1)


# ------------------------------------------------------------------------------------------ data
RULE_FEATURES = [lf.FEATURE_NAMES.index(n) for n in lf.FEATURE_NAMES
                 if n.startswith(("rule_", "prev_rule", "next_rule")) or n == "cut_frac"]
USE_RULE_FEATURES = True  # --no-rule-features: a model that never sees the rule cleaner's hits
PARAM_OVERRIDE: dict[str, Any] = {}  # --params: LightGBM parameters over LGBM_PARAMS


# --rule-dropout: share of training pages whose rule-hit features are zeroed, so the model also learns what
# boilerplate looks like where no rule fired (sites the rules were not written on). 0.25, chosen by the CV
# below with the rules of 96c6e13 (0 / 0.25 / 0.5): rules + model traf 32.1 / 30.7 / 30.2% removed,
# 0.44 / 0.33 / 0.28% lost (held-out half B 0.61 / 0.51 / 0.51%); blind AEB 9.1 / 17.8 / 16.2%.
DEFAULT_RULE_DROPOUT = 0.25
RULE_DROPOUT = DEFAULT_RULE_DROPOUT


def _dropped(p: lmdata.Page) -> bool:
    """Deterministic per-page coin for the rule-feature dropout (a digest of the page id, not random state)."""
    h = int(hashlib.sha256(f"{p.set}/{p.key}".encode()).hexdigest()[:8], 16)
    return h / 0xFFFFFFFF < RULE_DROPOUT


def page_features(p: lmdata.Page, blind: bool = False) -> np.ndarray:
    """Features of a page's lines; `blind`: as if no rule had fired (the rule-hit columns zero)."""
    X = lf.line_features(p.lines, rule_cats=None if blind else p.rule_cat,
                         cut_frac=None if blind else p.cut_frac)
    if not USE_RULE_FEATURES:
        X[:, RULE_FEATURES] = 0.0
    return X


def build(pages: Pages, unlabelled: str, rows: str, extra_weight: float = 1.0
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stacked training rows: X, y, weight, page index, row index within page, rule-kept flag."""
    Xs, ys, ws, pis, lis, keeps = [], [], [], [], [], []
    for pi, p in enumerate(pages):
        # rule-feature dropout: some pages are seen as if no rule had fired, so the model has to learn
        # what boilerplate looks like and cannot only echo the rules written against these pages
        X = page_matrix(pages, pi, _dropped(p))
        lab = p.labels.astype(np.int8).copy()
        nonblank = np.array([bool(s.strip()) for s in p.lines])
        kept = np.array([k is not None for k in p.kept])
        w = np.full(len(lab), extra_weight if p.set == "xtra" else 1.0)
        if unlabelled == "weak" and p.set == "traf":
            # weak label: an unlabelled line between two content-labelled lines is content (weight 0.3)
            c = np.flatnonzero(lab == 0)
            if len(c) >= 2:
                inside = (np.arange(len(lab)) > c[0]) & (np.arange(len(lab)) < c[-1]) & (lab < 0) & nonblank
                lab[inside] = 0
                w[inside] = 0.3
        sel = nonblank & (lab >= 0)
        if rows == "kept":
            sel &= kept
        idx = np.flatnonzero(sel)
        Xs.append(X[idx])
        ys.append(lab[idx])
        ws.append(w[idx])
        pis.append(np.full(len(idx), pi))
        lis.append(idx)
        keeps.append(kept[idx])
    return (np.vstack(Xs), np.concatenate(ys).astype(np.int32), np.concatenate(ws), np.concatenate(pis),
            np.concatenate(lis), np.concatenate(keeps))


# ---------------------------------------------------------------------------------------- export
def export_lgbm(booster: Any, feature_names: Sequence[str], *, threshold: float, version: int,
                params: dict[str, Any] | None = None) -> dict[str, Any]:
    """A LightGBM binary booster as the flat arrays LineModel reads (numerical splits, `<=`, no NaN)."""
    dump = booster.dump_model()
    if dump.get("objective", "").split()[0] != "binary":
        raise ValueError("only binary objectives")
    feat: list[int] = []
    thr: list[float] = []
    left: list[int] = []
    right: list[int] = []
    value: list[float] = []
    roots: list[int] = []
    depth = 0

    def add(node: dict[str, Any], d: int) -> int:
        nonlocal depth
        i = len(feat)
        feat.append(0)
        thr.append(float("inf"))
        left.append(i)
        right.append(i)
        value.append(0.0)
        if "leaf_value" in node or "split_index" not in node:
            value[i] = float(node.get("leaf_value", 0.0))
            depth = max(depth, d)
            return i
        if node.get("decision_type", "<=") != "<=":
            raise ValueError("categorical splits are not supported")
        feat[i] = int(node["split_feature"])
        thr[i] = float(node["threshold"])
        left[i] = add(node["left_child"], d + 1)
        right[i] = add(node["right_child"], d + 1)
        return i

    for tree in dump["tree_info"]:
        roots.append(add(tree["tree_structure"], 0))
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "version": version, "learner": "lightgbm",
            "threshold": threshold,
            "features": list(feature_names), "params": params or {},
            "trees": {"feat": feat, "thr": thr, "left": left, "right": right, "value": value, "roots": roots,
                      "depth": depth}}


# --------------------------------------------------------------------------------------- learners
def make_learner(name: str) -> Any:
    if name == "lgbm":
        import lightgbm as lgb
        return lgb.LGBMClassifier(**{**LGBM_PARAMS, **PARAM_OVERRIDE})
    if name == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier
        return HistGradientBoostingClassifier(learning_rate=0.05, max_iter=300, max_leaf_nodes=15, max_depth=5,
                                              min_samples_leaf=10, l2_regularization=1.0, random_state=SEED,
                                              early_stopping=False)
    if name == "lr":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        return make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=2000))
    raise ValueError(name)


def fit(name: str, X: np.ndarray, y: np.ndarray, w: np.ndarray) -> Any:
    m = make_learner(name)
    if name == "lr":
        m.fit(X, y, logisticregression__sample_weight=w)
    else:
        m.fit(X, y, sample_weight=w)
    return m


def proba(m: Any, X: np.ndarray) -> np.ndarray:
    if isinstance(m, LineModel):  # the exported arrays, as the package runs them
        return m.proba(X)
    return m.predict_proba(X)[:, 1]


# Feature matrices by (page index, blind), for one list of pages and one USE_RULE_FEATURES: a caller that
# builds again from other pages or with other settings in the same process calls forget_page_matrices first.
_PX: dict[tuple[int, bool], np.ndarray] = {}


def forget_page_matrices() -> None:
    _PX.clear()


def page_matrix(pages: Pages, pi: int, blind: bool) -> np.ndarray:
    key = (pi, blind)
    if key not in _PX:
        _PX[key] = page_features(pages[pi], blind=blind)
    return _PX[key]


# Second-stage (stacked) columns, --stack only: measured no better under the CV (traf 22.6% vs 25.5% removed),
# so the package does not carry them.
STACK_NAMES = ("s1", "s1_prev", "s1_next", "s1_win3_max", "s1_win3_mean", "s1_doc_mean", "s1_below_mean",
               "s1_above_mean")


def score_context(scores: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(len(scores), len(STACK_NAMES)) context columns of first-stage `scores` over the non-blank lines
    `rows` (in order): boilerplate comes in runs, so a line between likely-boilerplate lines is suspect."""
    out = np.zeros((len(scores), len(STACK_NAMES)))
    n = len(rows)
    if n == 0:
        return out
    s = np.asarray(scores, dtype=np.float64)[rows]
    S = np.zeros((n, len(STACK_NAMES)))
    S[:, 0] = s
    S[1:, 1] = s[:-1]
    S[:-1, 2] = s[1:]
    win = np.lib.stride_tricks.sliding_window_view(np.concatenate((np.zeros(3), s, np.zeros(3))), 7).copy()
    win[:, 3] = 0.0  # the line itself does not count
    S[:, 3] = win.max(axis=1)
    c = np.concatenate(([0.0], np.cumsum(s)))
    r = np.arange(n)
    S[:, 4] = (c[np.minimum(n, r + 4)] - c[np.maximum(0, r - 3)] - s) / 6.0
    S[:, 5] = s.mean()
    S[:, 6] = (c[-1] - c[1:]) / np.maximum(1, n - 1 - r)
    S[:, 7] = c[:-1] / np.maximum(1, r)
    out[rows] = S
    return out


class Stacked:
    """Two stages: the first scores every non-blank line from its own features, the second sees the
    first's scores of the neighbouring lines too (linefeatures.score_context)."""

    def __init__(self, m1: Any, m2: Any) -> None:
        self.m1, self.m2 = m1, m2

    def page_proba(self, X: np.ndarray, nb: np.ndarray) -> np.ndarray:
        s1 = np.zeros(len(X))
        if len(nb):
            s1[nb] = proba(self.m1, X[nb])
        X2 = np.hstack((X, score_context(s1, nb)))
        out = np.zeros(len(X))
        if len(nb):
            out[nb] = proba(self.m2, X2[nb])
        return out


def stack_rows(pages: Pages, name: str, X: np.ndarray, y: np.ndarray, w: np.ndarray, pidx: np.ndarray,
               lidx: np.ndarray, tr: np.ndarray, folds: int = 3) -> tuple[np.ndarray, Any]:
    """Second-stage training rows for the rows `tr`: first-stage scores out of fold (by site) over the
    training pages, then their context columns. Returns (X2[tr], fitted first stage on all of tr)."""
    tr_rows = np.flatnonzero(tr)
    tr_pages = np.unique(pidx[tr_rows])
    page_site = np.array([pages[i].site for i in tr_pages])
    S = np.zeros((len(tr_rows), len(STACK_NAMES)))
    pos = {pi: np.flatnonzero(pidx[tr_rows] == pi) for pi in tr_pages}
    for a, b in GroupKFold(n_splits=folds).split(tr_pages, groups=page_site):
        fit_rows = tr_rows[np.isin(pidx[tr_rows], tr_pages[a])]
        m1 = fit(name, X[fit_rows], y[fit_rows], w[fit_rows])
        for pi in tr_pages[b]:
            PX = page_matrix(pages, pi, _dropped(pages[pi]))
            nb = np.flatnonzero(PX.any(axis=1))
            s1 = np.zeros(len(PX))
            s1[nb] = proba(m1, PX[nb])
            ctx = score_context(s1, nb)
            S[pos[pi]] = ctx[lidx[tr_rows[pos[pi]]]]
    return np.hstack((X[tr_rows], S)), fit(name, X[tr_rows], y[tr_rows], w[tr_rows])


def threshold_for(scores: np.ndarray, y: np.ndarray, kept: np.ndarray, target_loss: float,
                  sets: np.ndarray | None = None) -> float:
    """Lowest threshold whose loss of content lines (label 0, kept by the rules) is <= target_loss in
    every set (one threshold for the product, which does not know where a text comes from, but the
    budget holds per set: the pooled loss let the larger set's margin pay for the other's loss)."""
    if sets is None:
        sets = np.zeros(len(y), dtype=object)
    thr = 0.0
    for s in np.unique(sets):
        if s == "xtra":  # extra training pages are never measured: they do not set the operating point
            continue
        m = sets == s
        content = np.sort(scores[m & (y == 0) & kept])[::-1]
        k = int(np.floor(target_loss * int((m & (y == 0)).sum())))  # how many content lines may go
        if k < len(content):
            thr = max(thr, float(np.nextafter(content[k], 1.0)))  # above the (k+1)-th highest content score
    return thr


def inner_threshold(name: str, X: np.ndarray, y: np.ndarray, w: np.ndarray, groups: np.ndarray, kept: np.ndarray,
                    target_loss: float, folds: int = 3, sets: np.ndarray | None = None) -> float:
    oof = np.zeros(len(y))
    for tr, te in GroupKFold(n_splits=folds).split(X, y, groups):
        oof[te] = proba(fit(name, X[tr], y[tr], w[tr]), X[te])
    return threshold_for(oof, y, kept, target_loss, sets)


TARGET_CANDIDATES = (0.001, 0.002, 0.003, 0.004, 0.005)
LOSS_BUDGET = 0.005  # what issue 12 allows a set to lose, as stored


def choose_target(name: str, pages: Pages, X: np.ndarray, y: np.ndarray, w: np.ndarray, pidx: np.ndarray,
                  train: np.ndarray, sites: np.ndarray, sets: np.ndarray, kept: np.ndarray,
                  candidates: Sequence[float] = TARGET_CANDIDATES, folds: int = 3
                  ) -> tuple[float, dict[float, Counts], np.ndarray]:
    """The threshold's loss target, chosen on training pages only (the CV of the choice): an inner
    GroupKFold over the `train` rows' sites; for each candidate and inner fold, the threshold is set on the
    other inner folds' out-of-fold scores, and the held-out pages are measured as stored (mode
    `product`). Chosen: the candidate whose pooled figures lose at most LOSS_BUDGET in each set and
    remove the most (AEB share + traf share); a tie goes to the lower target. If none keeps the budget,
    the one that loses least. Returns (target, pooled counts by candidate, the `train` rows' out-of-fold
    scores: with `folds` = 3 the very scores `inner_threshold` would compute again).

    The other inner folds' scores come from models that saw the held-out fold's pages, so the threshold a
    held-out fold is measured with is not wholly free of it (it would take a third level of folds); the
    outer test fold, which reports, is never seen."""
    rows = np.flatnonzero(train)
    oof = np.zeros(len(rows))
    fold_of = np.zeros(len(rows), dtype=int)
    page_sc: Scores = {}
    for k, (a, b) in enumerate(GroupKFold(n_splits=folds).split(rows, groups=sites[rows])):
        m = fit(name, X[rows[a]], y[rows[a]], w[rows[a]])
        oof[b] = proba(m, X[rows[b]])
        fold_of[b] = k
        page_sc.update(page_scores(pages, m, np.unique(pidx[rows[b]]), blind=False))
    pooled: dict[float, Counts] = {}
    for c in candidates:
        tot = {"aeb": np.zeros(4), "traf": np.zeros(4)}
        for k in range(folds):
            rest = fold_of != k
            thr = threshold_for(oof[rest], y[rows[rest]], kept[rows[rest]], c, sets[rows[rest]])
            held = [int(i) for i in np.unique(pidx[rows[fold_of == k]]) if pages[int(i)].set != "xtra"]
            res = measure(pages, held, page_sc, thr, "product")
            for s in tot:
                tot[s] += res[s]
        pooled[c] = tot

    def lost(t: Counts) -> float:
        return max(t[s][3] / max(1, t[s][2]) for s in t)

    def removed(t: Counts) -> float:
        return sum(t[s][1] / max(1, t[s][0]) for s in t)

    within = [c for c in candidates if lost(pooled[c]) <= LOSS_BUDGET]
    if within:
        best = max(within, key=lambda c: (removed(pooled[c]), -c))
    else:
        best = min(candidates, key=lambda c: (lost(pooled[c]), c))
    return best, pooled, oof


def fold_threshold(name: str, pages: Pages, X: np.ndarray, y: np.ndarray, w: np.ndarray, pidx: np.ndarray,
                   train: np.ndarray, sites: np.ndarray, sets: np.ndarray, kept: np.ndarray,
                   target: float | None = None) -> tuple[float, float, dict[float, Counts]]:
    """The threshold of a model fitted on the `train` rows, as the shipped model gets its own: the loss
    target chosen by `choose_target` on those rows (or `target` when given), then the lowest threshold
    whose content-line loss on their out-of-fold scores keeps that target in each set. Returns
    (threshold, target, choose_target's pooled counts by candidate or {})."""
    if target is not None:
        thr = inner_threshold(name, X[train], y[train], w[train], sites[train], kept[train], target,
                              sets=sets[train])
        return thr, target, {}
    target, pooled, oof = choose_target(name, pages, X, y, w, pidx, train, sites, sets, kept)
    # the choice's out-of-fold scores are inner_threshold's (same 3 site-grouped folds): not fitted again
    return threshold_for(oof, y[train], kept[train], target, sets[train]), target, pooled


# ------------------------------------------------------------------------------------- measuring
# product: `both`, then describe as the text path runs it (the headline, byline and dateline it reads at the
# top leave the body), so the figure the scorers give a warehouse: describe takes a headline the snippets may
# count as content, and a first line of page furniture the rules kept.
MODES = ("rules", "model", "both", "both_noguard", "both_storyguard", "blind", "product")
INTERVAL_MODES = ("both", "product")  # the modes whose pooled CV figures get a bootstrap interval over sites


def guard_mask(p: lmdata.Page, guard: str) -> np.ndarray:
    """Lines the model may remove under the package's guards (newsetl.text.linemodel.eligible_rows): as
    clean_text decides, from the rules' kept lines (no titles in training, so nothing is protected)."""
    kept_rows = [i for i, k in enumerate(p.kept) if k is not None]
    ok = np.zeros(len(p.lines), dtype=bool)
    ok[eligible_rows(kept_rows, lambda i: is_story_line(p.lines[i]), head=guard != "none",
                     story=guard == "story")] = True
    ok[list(byline_rows(p.lines))] = False  # as LineModel.score_lines: bylines stay for describe
    return ok


def measure(pages: Pages, page_ids: Iterable[int], scores_by_page: Scores, thr: float, mode: str) -> Counts:
    """Scorer figures over `page_ids`: mode rules | model | both (package guards) | both_noguard |
    both_storyguard. Returns dict of summed counts."""
    return by_set(pages, measure_pages(pages, page_ids, scores_by_page, thr, mode))


def by_set(pages: Pages, per_page: dict[int, np.ndarray]) -> Counts:
    """Per-page counts summed per set."""
    out = {"aeb": np.zeros(4), "traf": np.zeros(4)}
    for pi, counts in per_page.items():
        out["aeb" if pages[pi].set == "aeb" else "traf"] += counts
    return out


def measure_pages(pages: Pages, page_ids: Iterable[int], scores_by_page: Scores, thr: float,
                  mode: str) -> dict[int, np.ndarray]:
    """`measure`'s counts page by page (page index -> the scorer's four counts of its set)."""
    out: dict[int, np.ndarray] = {}
    for pi in page_ids:
        p = pages[pi]
        extra = None
        if mode == "model":
            extra = scores_by_page[pi] >= thr
        elif mode == "blind":  # no rules at all: the model on the raw lines with the rule features zero
            extra = scores_by_page[("blind", pi)] >= thr
        elif mode.startswith("both") or mode == "product":
            guard = {"both_noguard": "none", "both_storyguard": "story"}.get(mode, GUARD)
            extra = (scores_by_page[pi] >= thr) & guard_mask(p, guard)
        body = lmdata.body_of(p, extra, use_rules=mode not in ("model", "blind"))
        if mode == "product":
            # no removals passed: describe reads only metadata from them, the lines it takes are the same
            body = describe_article(body, (), DescribeHints()).body
        out[pi] = np.asarray(lmdata.score_aeb_page(p, body) if p.set == "aeb" else lmdata.score_traf_page(p, body),
                             dtype=float)
    return out


def fmt_interval(per_page: dict[int, np.ndarray], pages: Pages) -> str:
    """The pooled figures' 90% interval over site resamples, and the chance all text floors hold
    (floors.text_interval)."""
    ids = sorted(per_page)
    iv = floors.text_interval([per_page[i] for i in ids], [pages[i].site for i in ids],
                              ["aeb" if pages[i].set == "aeb" else "traf" for i in ids])
    chance = iv.pop("chance")
    sets = " | ".join(f"{s} removed {r[0]:.1%}-{r[1]:.1%} lost {lo[0]:.2%}-{lo[1]:.2%}" for s, (r, lo) in iv.items())
    return f"{sets} | all four text floors held on {chance:.0%} of resamples"


def fmt(c: Counts) -> str:
    a, t = c["aeb"], c["traf"]
    return (f"AEB removed {a[1] / max(1, a[0]):6.1%} ({int(a[1])}/{int(a[0])}) lost {a[3] / max(1, a[2]):6.2%} "
            f"({int(a[3])}/{int(a[2])}) | traf removed {t[1] / max(1, t[0]):6.1%} ({int(t[1])}/{int(t[0])}) "
            f"lost {t[3] / max(1, t[2]):6.2%} ({int(t[3])}/{int(t[2])})")


def page_scores(pages: Pages, model: Any, page_ids: Iterable[int], blind: bool = True) -> Scores:
    """Score every non-blank line of the given pages (zeros for blank lines); with `blind` also under
    the key ("blind", page) with the rule-hit features zero (the unseen-site estimate)."""
    out: Scores = {}
    for pi in page_ids:
        blank = [not s.strip() for s in pages[pi].lines]
        for key, b in ((pi, False), (("blind", pi), True)) if blind else ((pi, False),):
            X = page_matrix(pages, pi, b)
            if isinstance(model, Stacked):
                out[key] = model.page_proba(X, np.flatnonzero(X.any(axis=1)))
            else:
                out[key] = proba(model, X) if len(X) else np.zeros(0)
            out[key][blank] = 0.0
    return out


def site_half(site: str) -> str:
    """The half of the development sites a site belongs to: "A" (sha256 of its name even) or "B".

    The protocol for hand-written rules: read only half A's leftovers when writing them, and take half
    B's figures (`--halves`) as the estimate for unseen sites (the model's CV folds are unchanged)."""
    return "A" if int(hashlib.sha256(site.encode("utf-8")).hexdigest(), 16) % 2 == 0 else "B"


def run_cv(pages: Pages, name: str, args: argparse.Namespace, verbose: bool = True
           ) -> tuple[dict[str, Counts], list[tuple[int, float, dict[str, Counts]]], dict[int, np.ndarray],
                      dict[str, dict[int, np.ndarray]]]:
    X, y, w, pidx, lidx, kept = build(pages, args.unlabelled, args.rows, args.extra_weight)
    sites = np.array([pages[i].site for i in pidx])
    sets = np.array([pages[i].set for i in pidx])
    page_sites = np.array([p.site for p in pages])
    scored = np.array([p.set != "xtra" for p in pages])
    all_pages = np.arange(len(pages))
    gkf = GroupKFold(n_splits=args.folds)
    oof_scores: dict[int, np.ndarray] = {}
    rows = []
    tot = {m: {"aeb": np.zeros(4), "traf": np.zeros(4)} for m in MODES}
    per_page: dict[str, dict[int, np.ndarray]] = {m: {} for m in INTERVAL_MODES}
    # --halves: the same test folds, summed per half of the sites (site_half)
    by_half = {(m, h): {"aeb": np.zeros(4), "traf": np.zeros(4)}
               for m in MODES for h in ("AB" if args.halves else "")}
    for f, (tr_pages, te_pages) in enumerate(gkf.split(all_pages, groups=page_sites)):
        tr_sites = set(page_sites[tr_pages])
        assert not tr_sites & set(page_sites[te_pages])
        tr = np.isin(sites, list(tr_sites))
        te_pages = te_pages[scored[te_pages]]
        t0 = time.perf_counter()
        if args.stack:
            target = TARGET_LOSS if args.target_loss is None else args.target_loss
            X2, m1 = stack_rows(pages, name, X, y, w, pidx, lidx, tr)
            thr = inner_threshold(name, X2, y[tr], w[tr], sites[tr], kept[tr], target, sets=sets[tr])
            model = Stacked(m1, fit(name, X2, y[tr], w[tr]))
        else:
            thr, target, _ = fold_threshold(name, pages, X, y, w, pidx, tr, sites, sets, kept, args.target_loss)
            model = fit(name, X[tr], y[tr], w[tr])
        sc = page_scores(pages, model, te_pages)
        oof_scores.update({k: v for k, v in sc.items() if not isinstance(k, tuple)})
        fold_pages = {m: measure_pages(pages, te_pages, sc, thr, m) for m in MODES}
        res = {m: by_set(pages, fold_pages[m]) for m in MODES}
        for m in INTERVAL_MODES:
            per_page[m].update(fold_pages[m])
        if args.halves:
            for h in "AB":
                for m in MODES:
                    part = by_set(pages, {i: c for i, c in fold_pages[m].items() if site_half(pages[i].site) == h})
                    for s in ("aeb", "traf"):
                        by_half[(m, h)][s] += part[s]
        for m in res:
            for s in ("aeb", "traf"):
                tot[m][s] += res[m][s]
        rows.append((f, thr, res))
        if verbose:
            print(f"fold {f}: thr {thr:.3f} (target {target}) ({time.perf_counter() - t0:.1f}s) pages {len(te_pages)}")
            for m in ("rules", "both"):
                print(f"   {m:6s} {fmt(res[m])}")
    for (m, h), c in by_half.items():
        if m in ("rules", "both", "blind"):
            print(f"  CV {m:6s} half {h} {fmt(c)}")
    return tot, rows, oof_scores, per_page


def seed_spread(pages: Pages, name: str, args: argparse.Namespace, seeds: Sequence[int]) -> None:
    """The CV once per LightGBM seed (`random_state`; bagging and column sampling draw from it): the
    spread of the pooled figures over seeds. Every choice so far (features, target candidates, rule dropout,
    parameters) was compared under SEED alone, and its draw sits at the top of the spread (v5: traf 58.0%
    removed as stored, seeds 1-6: 54.7-56.6%), so the mean over other seeds is the fairer estimate."""
    saved = PARAM_OVERRIDE.get("random_state")
    per_seed: dict[int, dict[str, Counts]] = {}
    quiet = argparse.Namespace(**{**vars(args), "halves": False})  # --halves' lines would not name the seed
    try:
        for seed in seeds:
            PARAM_OVERRIDE["random_state"] = seed
            per_seed[seed], _, _, _ = run_cv(pages, name, quiet, verbose=False)
            for m in INTERVAL_MODES:
                print(f"  seed {seed:<4d} {m:9s} {fmt(per_seed[seed][m])}", flush=True)
    finally:
        if saved is None:
            PARAM_OVERRIDE.pop("random_state", None)
        else:
            PARAM_OVERRIDE["random_state"] = saved
    for m in INTERVAL_MODES:
        parts = []
        for s in ("aeb", "traf"):
            rem = [c[m][s][1] / max(1, c[m][s][0]) for c in per_seed.values()]
            lost = [c[m][s][3] / max(1, c[m][s][2]) for c in per_seed.values()]
            parts.append(f"{s} removed {np.mean(rem):.1%} ({min(rem):.1%}-{max(rem):.1%}) lost {np.mean(lost):.2%} "
                         f"({min(lost):.2%}-{max(lost):.2%})")
        print(f"  CV {m:9s} mean over {len(per_seed)} seeds: " + " | ".join(parts))


def curve(pages: Pages, oof_scores: dict[int, np.ndarray], losses: Sequence[float] = (0.003, 0.005, 0.01),
          mode: str = "both", points: int = 30
          ) -> tuple[list[tuple[str, float, tuple[float, float, float] | None]], list[tuple[float, Counts]]]:
    """Oracle curve on the pooled out-of-fold scores: for each loss budget, the removal reached (threshold
    chosen on the test scores themselves -- an upper bound, not an estimate)."""
    out = []
    grid = np.unique(np.quantile(np.concatenate([s for s in oof_scores.values() if len(s)]),
                                 np.linspace(0.80, 0.9995, points)))
    res = []
    for thr in grid:
        c = measure(pages, sorted(oof_scores), oof_scores, thr, mode)
        res.append((thr, c))
    for s, (_rem_i, _lost_i) in (("aeb", (1, 3)), ("traf", (1, 3))):
        for L in losses:
            best = None
            for thr, c in res:
                a = c[s]
                lost = a[3] / a[2]
                rem = a[1] / a[0]
                if lost <= L and (best is None or rem > best[1]):
                    best = (thr, rem, lost)
            out.append((s, L, best))
    return out, res


# ------------------------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--learner", default="lgbm", choices=("lgbm", "hgb", "lr"))
    ap.add_argument("--compare", action="store_true", help="CV of every learner (summary lines)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--target-loss", type=float, default=None,
                    help="content-line loss the threshold allows on the training folds' own OOF scores "
                         "(default: chosen among TARGET_CANDIDATES on the training pages, choose_target)")
    ap.add_argument("--unlabelled", default="weak", choices=("exclude", "weak"))
    ap.add_argument("--rows", default="all", choices=("all", "kept"),
                    help="train on all labelled lines (rule-removed too) or only lines the rules kept")
    ap.add_argument("--extra", default="off", choices=("on", "off"),
                    help="add the other extractors' outputs of the aeb pages (dedup-dev) as training pages")
    ap.add_argument("--extra-weight", type=float, default=1.0)
    ap.add_argument("--no-final", action="store_true")
    ap.add_argument("--skip-cv", action="store_true", help="only the final model (e.g. to check reproducibility)")
    ap.add_argument("--curve", action="store_true", help="oracle removal-at-loss curve of the OOF scores")
    ap.add_argument("--seeds", default="",
                    help="comma-separated LightGBM seeds: repeat the CV once per seed and print each seed's "
                         "pooled figures and their mean and range (SEED's run is the one printed above)")
    ap.add_argument("--halves", action="store_true",
                    help="also the CV figures on each half of the sites (site_half: rules are written on A)")
    ap.add_argument("--out", default=str(DEFAULT_MODEL_PATH))
    ap.add_argument("--manifest", default=str(MANIFEST))
    ap.add_argument("--cache", default="", help="pickle of the labelled pages, written when absent ('' = none)")
    ap.add_argument("--params", default="{}", help="JSON object of LightGBM parameters over the defaults")
    ap.add_argument("--stack", action="store_true", help="two stages: the second sees the first's neighbour scores")
    ap.add_argument("--rule-dropout", type=float, default=DEFAULT_RULE_DROPOUT,
                    help="share of training pages whose rule-hit features are zeroed (learn the look, not the rules)")
    ap.add_argument("--no-rule-features", action="store_true",
                    help="zero the rule-hit features (how much the model leans on the rules tuned to these pages)")
    ap.add_argument("--rules-provenance", default="off", choices=("off", *lmdata.PROVENANCE_MODES),
                    help="CV only: on each page, switch off the pattern rules that only its own site taught "
                         "(linemodel_data.OwnRulesOff): what the library, written while reading these pages, "
                         "does on a new site")
    args = ap.parse_args(argv)
    if args.rules_provenance != "off" and not args.no_final:
        ap.error("--rules-provenance is a CV estimate: use it with --no-final (the model ships trained on the "
                 "whole library)")
    np.random.seed(SEED)
    global USE_RULE_FEATURES, RULE_DROPOUT
    USE_RULE_FEATURES = not args.no_rule_features
    RULE_DROPOUT = args.rule_dropout
    PARAM_OVERRIDE.update(json.loads(args.params))

    t0 = time.perf_counter()
    pages = None
    if args.cache and Path(args.cache).is_file():
        import pickle
        pages = pickle.loads(Path(args.cache).read_bytes())
    if pages is None:
        pages = lmdata.load_pages()
        if args.cache:
            import pickle
            Path(args.cache).write_bytes(pickle.dumps(pages))
    if args.extra == "on":
        xc = Path(args.cache).with_name(".xpages.pkl") if args.cache else None
        if xc is not None and xc.is_file():
            import pickle
            pages = pages + pickle.loads(xc.read_bytes())
        else:
            pages = pages + lmdata.load_extra_pages()
    print(f"{len(pages)} pages, {len({p.site for p in pages})} sites ({time.perf_counter() - t0:.1f}s)")
    if args.rules_provenance != "off":
        pages, changed = lmdata.without_own_rules(pages, lmdata.OwnRulesOff(args.rules_provenance))
        print(f"rules provenance {args.rules_provenance}: the rule pass of {changed} pages changed")

    learners = () if args.skip_cv else ("lgbm", "hgb", "lr") if args.compare else (args.learner,)
    summary = {}
    for name in learners:
        print(f"=== {name}  target_loss={args.target_loss or 'chosen'} unlabelled={args.unlabelled} "
              f"rows={args.rows}")
        tot, _rows, oof, per_page = run_cv(pages, name, args)
        summary[name] = tot
        for m in MODES:
            print(f"  CV {m:15s} {fmt(tot[m])}")
        for m in INTERVAL_MODES:
            print(f"  CV {m:15s} 90% over sites: {fmt_interval(per_page[m], pages)}")
        if args.seeds:
            seed_spread(pages, name, args, [int(x) for x in args.seeds.split(",") if x.strip()])
        if args.curve:
            oracle, _ = curve(pages, oof)
            for s, L, best in oracle:
                print(f"  oracle {s} loss<={L:.1%}: " + (f"removed {best[1]:.1%} (lost {best[2]:.2%}, thr "
                                                        f"{best[0]:.3f})" if best else "none"))
    if args.no_final:
        return 0

    # final model on everything: its loss target chosen on all pages as each fold chose its own, and its
    # threshold from its own 5-fold grouped OOF
    name = args.learner
    X, y, w, pidx, _, kept = build(pages, args.unlabelled, args.rows, args.extra_weight)
    sites = np.array([pages[i].site for i in pidx])
    sets = np.array([pages[i].set for i in pidx])
    target: float | None = args.target_loss
    choice: dict[float, Counts] = {}
    if target is None:
        target, choice, _ = choose_target(name, pages, X, y, w, pidx, np.ones(len(y), dtype=bool), sites, sets,
                                          kept)
        print(f"final: target chosen {target} (" + "; ".join(f"{c}: {fmt(t)}" for c, t in choice.items()) + ")")
    thr = inner_threshold(name, X, y, w, sites, kept, target, folds=args.folds, sets=sets)
    model = fit(name, X, y, w)
    assert name == "lgbm", "export implemented for the chosen learner (LightGBM)"
    spec = export_lgbm(model.booster_, lf.FEATURE_NAMES, threshold=thr, version=MODEL_VERSION,
                       params={**LGBM_PARAMS, "target_loss": target, "unlabelled": args.unlabelled,
                               "rule_dropout": args.rule_dropout,
                               "rows": args.rows})
    Path(args.out).write_text(json.dumps(spec, separators=(",", ":")), encoding="utf-8")
    lm = LineModel.load(args.out)
    ev = [i for i, p in enumerate(pages) if p.set != "xtra"]
    fit_scores = page_scores(pages, lm, ev)
    fit_all = measure(pages, ev, fit_scores, thr, "both")
    fit_blind = measure(pages, ev, fit_scores, thr, "blind")
    # the exported arrays must reproduce the library's scores
    chk = np.abs(lm.proba(X) - model.predict_proba(X)[:, 1]).max()
    print(f"final: thr {thr:.4f}, export max |diff| {chk:.2e}")
    print(f"  fit-on-all {fmt(fit_all)}")
    print(f"  fit-on-all blind {fmt(fit_blind)}")
    if name in summary:
        cv = summary[name]["both"]
        print(f"  CV (rules+model) {fmt(cv)}")
        print("  gap fit-on-all minus CV: " + ", ".join(
            f"{s} removed {fit_all[s][1] / max(1, fit_all[s][0]) - cv[s][1] / max(1, cv[s][0]):+.1%} lost "
            f"{fit_all[s][3] / max(1, fit_all[s][2]) - cv[s][3] / max(1, cv[s][2]):+.2%}" for s in ("aeb", "traf")))
    cvt = summary[name]["both"] if name in summary else {}
    cvb = summary[name]["blind"] if name in summary else {}
    cvp = summary[name]["product"] if name in summary else {}
    manifest = {
        "model": Path(args.out).name, "model_sha256": hashlib.sha256(Path(args.out).read_bytes()).hexdigest(),
        "version": MODEL_VERSION, "learner": name, "threshold": thr, "features": list(lf.FEATURE_NAMES),
        "args": {k: v for k, v in vars(args).items() if k not in ("out", "cache", "manifest")},
        # Pages and files are named by a digest of their id, so the repository names no development page
        # (rules and models must not special-case one); hash the ids under ../shared/eval to match them.
        "pages": [{"set": p.set, "key_sha256": _pseudonym(f"{p.set}/{p.key}"), "site": p.site} for p in pages],
        "inputs_sha256": {_pseudonym(name): digest for name, digest in lmdata.input_digest().items()},
        "rules_sha256": hashlib.sha256(
            Path(lmdata.load_rules().sources[0]).read_bytes()).hexdigest(),
        "cv_both": {s: cvt[s].tolist() for s in cvt}, "fit_all_both": {s: fit_all[s].tolist() for s in fit_all},
        # product: the same bodies after describe, as a warehouse holds them (what the scorers measure)
        "cv_product": {s: cvp[s].tolist() for s in cvp},
        # the loss target's choice on all pages (choose_target): inner-CV counts as stored, by candidate
        "target_loss": target, "target_choice": {str(c): {s: t[s].tolist() for s in t} for c, t in choice.items()},
        # blind: the model alone on the raw lines, rule-hit features zero (no rule written against these
        # pages helps): the estimate of what the model adds on sites the rules do not know
        "cv_blind": {s: cvb[s].tolist() for s in cvb},
        "fit_all_blind": {s: fit_blind[s].tolist() for s in fit_blind},
        "counts_order": {"aeb": "residual_lines, residual_removed, gt_lines, gt_lines_lost",
                         "traf": "without_in_input, without_removed, with_in_input, with_lost"},
    }
    Path(args.manifest).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out} and its manifest")
    return 0


if __name__ == "__main__":
    sys.exit(main())
