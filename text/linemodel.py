"""The learned boilerplate line classifier at run time: plain numpy, no model library.

The model file (`models/linemodel-v5.json`, written by `bench/train_linemodel.py`) holds a gradient-boosted
tree ensemble (LightGBM, binary) as flat arrays: every tree's nodes concatenated, a leaf pointing to
itself (feature 0, threshold +inf), so all trees of all lines are walked together in `depth` numpy steps
-- one call per document, no per-line or per-tree Python loop.

`clean_text(..., model=load_line_model())` runs it after the rule and structural passes, on the lines the
rules kept that are neither protected nor headlines; the rule hits are features, the rules keep deciding
on their own. Each line it removes is a Removal of category "model" whose rule names the model and its
score ("linemodel-v5:0.87").

Loading is once per process (`load_line_model` is cached) and strict: a missing or corrupt file, another
format version, or a feature list that differs from `linefeatures.FEATURE_NAMES` raises `LineModelError`
at start-up (`make_context`), never per document.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from newsetl.text import linefeatures as lf
from newsetl.text.describe import parse_byline

FORMAT = "newsetl-linemodel"
FORMAT_VERSION = 1  # the file layout this code reads (not the model's own version)
DEFAULT_MODEL_PATH = Path(__file__).resolve().parent / "models" / "linemodel-v5.json"
MODEL_CATEGORY = "model"


# Which kept lines the model may take (clean_text and the CV of bench/train_linemodel.py share this):
# "head" spares the first line the rules kept, where describe reads the title of a plain-text article
# (a seed's headline scored 0.88: title-case lines after removed prompts look like teasers); "story" also
# spares every line that reads as a story sentence (the rules' own precision guard: a seed's quoted story
# sentence scored 0.80); "none" spares nothing. Under the site-grouped CV "story" keeps the same removals
# (AEB 174/197, traf 37/212) and halves the traf content lost (2 -> 1 of 1,818 snippets).
GUARD = "story"


def eligible_rows(kept_rows: Sequence[int], is_story: Callable[[int], bool], *, head: bool = True,
                  story: bool = False) -> list[int]:
    """The rows (in `kept_rows`, the non-blank lines everything before kept, in order) the model scores."""
    rows = list(kept_rows[1:] if head else kept_rows)
    return [i for i in rows if not is_story(i)] if story else rows


HEAD_LINES = 8  # describe's DescribeConfig.head_lines: where it reads the byline below the headline


def byline_rows(lines: Sequence[str], among: AbstractSet[int] | None = None) -> set[int]:
    """Rows among the first HEAD_LINES non-blank lines that describe reads as a byline ("John Bowden").
    The model spares them: describe runs on the cleaned body, so a model removal (category "model", not
    "byline") would lose the article's author (a seed's bare-name byline scored 0.44).
    `among`: only these rows are looked at (parsing a byline is the costly part)."""
    head = [i for i, s in enumerate(lines) if s.strip()][:HEAD_LINES]
    return {i for i in head if (among is None or i in among) and len(lines[i].split()) <= 8
            and parse_byline(lines[i]) is not None}


class LineModelError(ValueError):
    """A model file that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True, eq=False)
class LineModel:
    name: str  # "linemodel-v5": what a removal's rule says
    feature_names: tuple[str, ...]
    feat: np.ndarray  # (n_nodes,) split feature (0 for leaves)
    thr: np.ndarray  # (n_nodes,) go left when x <= thr (+inf for leaves)
    child: np.ndarray  # (2 * n_nodes,) children interleaved (left, right), so one gather takes a step
    value: np.ndarray  # (n_nodes,) leaf value (0 for inner nodes)
    roots: np.ndarray  # (n_trees,)
    depth: int
    threshold: float  # probability from which a line is removed (chosen on the training folds)
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> LineModel:
        path = Path(path)
        try:
            spec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise LineModelError(f"line model {path}: cannot read it ({type(exc).__name__}: {exc})") from exc
        if not isinstance(spec, dict) or spec.get("format") != FORMAT:
            raise LineModelError(f"line model {path}: not a {FORMAT} file")
        if spec.get("format_version") != FORMAT_VERSION:
            raise LineModelError(f"line model {path}: format version {spec.get('format_version')!r}, this code "
                                 f"reads {FORMAT_VERSION}")
        names = tuple(spec.get("features") or ())
        if names != lf.FEATURE_NAMES:
            raise LineModelError(f"line model {path}: its feature list differs from linefeatures.FEATURE_NAMES "
                                 "(the features changed since it was trained: retrain it)")
        try:
            t = spec["trees"]
            feat = np.asarray(t["feat"], np.intp)
            thr = np.asarray(t["thr"], np.float64)
            left = np.asarray(t["left"], np.intp)
            right = np.asarray(t["right"], np.intp)
            value = np.asarray(t["value"], np.float64)
            roots = np.asarray(t["roots"], np.intp)
            depth = int(t["depth"])
            threshold = float(spec["threshold"])
            name = f"linemodel-v{int(spec['version'])}"
        except (KeyError, TypeError, ValueError) as exc:
            raise LineModelError(f"line model {path}: malformed ({type(exc).__name__}: {exc})") from exc
        n = len(feat)
        if not (n and len(thr) == len(left) == len(right) == len(value) == n and len(roots)):
            raise LineModelError(f"line model {path}: tree arrays of unequal length")
        if (feat.min() < 0 or feat.max() >= len(names) or min(left.min(), right.min(), roots.min()) < 0
                or max(left.max(), right.max(), roots.max()) >= n):
            raise LineModelError(f"line model {path}: a node points outside the arrays")
        if not 0.0 < threshold < 1.0:
            raise LineModelError(f"line model {path}: threshold {threshold} is not a probability")
        child = np.empty(2 * n, dtype=np.intp)
        child[0::2] = left
        child[1::2] = right
        meta = {k: v for k, v in spec.items() if k not in ("trees", "features")}
        return cls(name, names, feat, thr, child, value, roots, depth, threshold, meta)

    def raw_scores(self, X: np.ndarray) -> np.ndarray:
        """Log-odds of every row of X (rows are lines, columns FEATURE_NAMES)."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        n, d = X.shape
        if n == 0:
            return np.zeros(0)
        flat = X.ravel()
        base = (np.arange(n) * d)[:, None]
        node = np.broadcast_to(self.roots, (n, len(self.roots))).copy()
        feat, thr, child = self.feat, self.thr, self.child
        for _ in range(self.depth):
            go_right = flat[base + feat[node]] > thr[node]
            node = child[2 * node + go_right]
        out: np.ndarray = self.value[node].sum(axis=1)
        return out

    def proba(self, X: np.ndarray) -> np.ndarray:
        out: np.ndarray = 1.0 / (1.0 + np.exp(-self.raw_scores(X)))
        return out

    def score_lines(self, lines: Sequence[str], *, rule_cats: Sequence[str] | None = None,
                    cut_frac: Sequence[float] | None = None, rows: Sequence[int] | None = None,
                    recur: Sequence[float] | None = None) -> np.ndarray:
        """Boilerplate probability of the lines `rows` (default: every non-blank line); 0 elsewhere.
        Features are computed for the whole document (they look at neighbours), trees only for `rows`."""
        X = lf.line_features(lines, rule_cats=rule_cats, cut_frac=cut_frac, recur=recur)
        idx = np.flatnonzero(X.any(axis=1)) if rows is None else np.asarray(rows, dtype=np.intp)
        out = np.zeros(len(lines))
        if len(idx):
            out[idx] = self.proba(X[idx])
            out[list(byline_rows(lines))] = 0.0
        return out


    def score_batch(self, docs: Sequence[Sequence[str]], *, rule_cats: Sequence[Sequence[str]],
                    cut_frac: Sequence[Sequence[float]], rows: Sequence[Sequence[int]],
                    removable_only: bool = False) -> list[list[float]]:
        """`score_lines(docs[k], rule_cats=rule_cats[k], cut_frac=cut_frac[k], rows=rows[k])` for every k,
        value for value (as lists): the features of all documents in one `line_features_batch` pass and
        one tree pass over all their rows, so the per-call costs are paid once per batch.

        `removable_only`: the byline rows are zeroed only where their score reaches the threshold; a
        score below it removes nothing either way (what the cleaner needs, for less byline parsing)."""
        X, offsets = lf.line_features_batch(docs, rule_cats=rule_cats, cut_frac=cut_frac, rows=rows)
        starts = offsets[:-1].tolist()
        flat = [starts[k] + i for k, rs in enumerate(rows) for i in rs]
        p = self.proba(X[np.asarray(flat, dtype=np.intp)]).tolist() if flat else []
        out: list[list[float]] = []
        pos = 0
        for k, lines in enumerate(docs):
            scores = [0.0] * len(lines)
            for i in rows[k]:
                scores[i] = p[pos]
                pos += 1
            if rows[k]:
                among = {i for i in rows[k] if scores[i] >= self.threshold} if removable_only else None
                if among is None or among:
                    for i in byline_rows(lines, among):
                        scores[i] = 0.0
            out.append(scores)
        return out


@functools.lru_cache(maxsize=4)
def load_line_model(path: str | None = None) -> LineModel:
    """The model, loaded once per process (and per path); raises LineModelError when it is unusable."""
    return LineModel.load(path or DEFAULT_MODEL_PATH)
