"""The batched line features (`linefeatures.line_features_batch`) and scores (`LineModel.score_batch`)
against the one-document `line_features` / `score_lines` the shipped model was trained with: a document's
values must be the same, bit for bit, whatever it is batched with, so that the cleaner decides as the
trainer measured."""

from __future__ import annotations

import random
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsetl.text import linefeatures as lf
from newsetl.text.clean import _model_job, _rule_passes
from newsetl.text.linemodel import load_line_model
from newsetl.text.rules import load_rules

REPO = Path(__file__).resolve().parents[2]
EVAL = REPO.parent / "shared" / "eval"
CATS = ["", "", "", "navigation", "comments", "comment_prompt", "caption", "learned", "share_social", "model",
        "unknown_category"]


def _assert_same(docs: Sequence[Sequence[str]], cats: Sequence[Sequence[str]] | None,
                 cut: Sequence[Sequence[float]] | None) -> None:
    X, offsets = lf.line_features_batch(docs, rule_cats=cats, cut_frac=cut)
    assert X.shape == (sum(len(d) for d in docs), lf.N_FEATURES) and X.dtype == np.float32
    assert offsets.tolist() == np.cumsum([0, *map(len, docs)]).tolist()
    for k, lines in enumerate(docs):
        ref = lf.line_features(lines, rule_cats=None if cats is None else cats[k],
                               cut_frac=None if cut is None else cut[k])
        got = X[offsets[k]:offsets[k + 1]]
        bad = np.flatnonzero((ref != got).any(axis=0))
        assert not len(bad), f"document {k}: columns {[lf.FEATURE_NAMES[c] for c in bad]} differ"


def _assert_rows_exact(docs: Sequence[Sequence[str]], cats: Sequence[Sequence[str]] | None,
                       cut: Sequence[Sequence[float]] | None, rows: Sequence[Sequence[int]]) -> None:
    """With `rows`, the features of those rows are what the full pass gives, bit for bit (the rest of the
    lines are computed only as far as those rows read them)."""
    full, offsets = lf.line_features_batch(docs, rule_cats=cats, cut_frac=cut)
    part, offsets_part = lf.line_features_batch(docs, rule_cats=cats, cut_frac=cut, rows=rows)
    assert offsets_part.tolist() == offsets.tolist()
    for k, rs in enumerate(rows):
        at = offsets[k] + np.asarray(rs, dtype=np.intp)
        bad = np.flatnonzero((full[at] != part[at]).any(axis=0))
        assert not len(bad), f"document {k}: columns {[lf.FEATURE_NAMES[c] for c in bad]} differ on its rows"


def _some_rows(docs: Sequence[Sequence[str]], rng: random.Random) -> list[list[int]]:
    """A few rows of each document, blank lines included, sometimes none."""
    return [sorted(rng.sample(range(len(d)), k=min(len(d), rng.choice((0, 1, 2, 5))))) for d in docs]


def _cleaner_inputs(texts: Sequence[str]) -> tuple[list[list[str]], list[list[str]], list[list[float]]]:
    """The lines, rule categories and cut shares the cleaner hands the model for these texts."""
    rules, model = load_rules(), load_line_model()
    docs, cats, cut = [], [], []
    for text in texts:
        lines, nonblank = _rule_passes(text, rules, (), frozenset())
        job = _model_job(lines, nonblank, model, rules.settings) if nonblank else None
        docs.append([ln.text for ln in lines])
        cats.append(job.cats if job else [""] * len(lines))
        cut.append(job.cut if job else [0.0] * len(lines))
    return docs, cats, cut


def _bench_texts(n: int) -> list[str]:
    sys.path.insert(0, str(REPO / "bench"))
    from bench_clean import make_article

    rng = random.Random(5)
    return [make_article(rng) for _ in range(n)]


def test_batch_equals_per_document_on_the_bench_corpus() -> None:
    docs, cats, cut = _cleaner_inputs(_bench_texts(60))
    _assert_same(docs, cats, cut)
    _assert_same(docs, None, None)
    _assert_rows_exact(docs, cats, cut, _some_rows(docs, random.Random(3)))


def test_batch_edge_documents() -> None:
    docs = [[], [""], [" ", "\t"], ["x"], ["- a", "", "12 Comments", "Reply", "- b"], ["Hello world."] * 3,
            ["", "", "Only one line, in the middle, that ends like a sentence with enough words here.", ""]]
    cats = [["navigation" if i % 2 else "" for i in range(len(d))] for d in docs]
    _assert_same(docs, cats, [[0.25] * len(d) for d in docs])
    _assert_same(docs, None, None)
    X, offsets = lf.line_features_batch([])
    assert X.shape == (0, lf.N_FEATURES) and offsets.tolist() == [0]
    choices: tuple[list[list[int]], ...] = (
        [[] for _ in docs], [list(range(len(d))) for d in docs], [[len(d) - 1] if d else [] for d in docs])
    for rows in choices:
        _assert_rows_exact(docs, cats, [[0.25] * len(d) for d in docs], rows)
    # what a row reads from far away: a comment-section header of several words, story lines (some of
    # them decided by the verb list alone) and list items above it
    story = ["The Council Said On Tuesday It Would Vote.", "the council said on tuesday that it would vote."]
    far = [["Leave a reply", *story * 4, "- one", "- two", "Great piece, thanks", "Reply"],
           ["Thoughts on the budget plan of the city council", *story * 3, "", "Reply"]]
    _assert_rows_exact(far, None, None, [[len(d) - 1] for d in far])
    with pytest.raises(ValueError, match="one entry per document"):
        lf.line_features_batch(docs, rows=[[]])


@pytest.mark.slow
def test_batch_equals_per_document_on_the_eval_texts() -> None:
    paths = [p for folder in ("aeb-dev", "traf-dev") for p in sorted((EVAL / folder / "text").glob("*.txt"))]
    if not paths:
        pytest.skip("../shared/eval is not there")
    docs, cats, cut = _cleaner_inputs([p.read_text(encoding="utf-8") for p in paths])
    for k in range(0, len(docs), 100):  # the pipeline's batch size order
        _assert_same(docs[k:k + 100], cats[k:k + 100], cut[k:k + 100])
    rng = random.Random(1)  # and with every rule group, on lines the rules did not take
    _assert_same(docs[:200], [[rng.choice(CATS) for _ in d] for d in docs[:200]], cut[:200])
    for k in range(0, len(docs), 100):  # the rows the cleaner scores, and random ones
        rows = [[i for i, s in enumerate(d) if s.strip() and not c[i]] for d, c in zip(docs, cats, strict=True)]
        _assert_rows_exact(docs[k:k + 100], cats[k:k + 100], cut[k:k + 100], rows[k:k + 100])
        _assert_rows_exact(docs[k:k + 100], cats[k:k + 100], cut[k:k + 100], _some_rows(docs[k:k + 100], rng))


_PIECES = ["The council said on Tuesday that it would vote.", "Share", "Reply", "12 Comments", "- Item one",
           "• Five things to know", "3. Third", "Read more: A headline about the budget plan", "© 2021 Acme",
           "Photo: AP", "Posted 5 hours ago", "10:42 AM", "12.03.2021", "mail me@example.com", "@handle",
           "#tag", "https://example.com/x", "**bold**", "| a | b |", "Subscribe to our newsletter", "",
           "   indented line", "ÄÖÜ straße Überraschung.", "日本語の文です。", "Image 1 of 8", "Leave a reply",
           "“Quoted,” she said.", "ALL CAPS LINE", "a", " ", "Tel. 0123 456"]
_line = st.one_of(st.sampled_from(_PIECES),
                  st.lists(st.sampled_from(_PIECES), min_size=1, max_size=3).map(" ".join),
                  st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\n\r"),
                          max_size=40))
_doc = st.lists(_line, max_size=25)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_doc, min_size=1, max_size=6), st.randoms(use_true_random=False))
def test_batch_equals_per_document_on_generated_texts(docs: list[list[str]], rng: random.Random) -> None:
    cats = [[rng.choice(CATS) for _ in d] for d in docs]
    cut = [[rng.choice((0.0, 0.0, 0.5, 1.0)) for _ in d] for d in docs]
    _assert_same(docs, cats, cut)
    _assert_rows_exact(docs, cats, cut, _some_rows(docs, rng))


def test_score_batch_equals_score_lines() -> None:
    model = load_line_model()
    docs, cats, cut = _cleaner_inputs(_bench_texts(30))
    docs.append(["Home", "News", "By John Smith", "Contact us", "12 Comments"])
    cats.append([""] * 5)
    cut.append([0.0] * 5)
    rows = [[i for i, s in enumerate(d) if s.strip()][1:] for d in docs]
    rows[0] = []
    got = model.score_batch(docs, rule_cats=cats, cut_frac=cut, rows=rows)
    for k, d in enumerate(docs):
        ref = model.score_lines(d, rule_cats=cats[k], cut_frac=cut[k], rows=rows[k])
        assert got[k] == ref.tolist()


def test_score_batch_removable_only_changes_no_removal() -> None:
    # removable_only leaves the byline parse to the rows at or above the threshold: a score below it
    # may differ from score_lines (a byline row keeps its own), but the rows that reach it are the same
    model = load_line_model()
    docs, cats, cut = _cleaner_inputs(_bench_texts(30))
    docs.append(["Home", "By John Smith", "John Bowden", "Contact us", "Share this", "12 Comments"])
    cats.append([""] * 6)
    cut.append([0.0] * 6)
    rows = [[i for i, s in enumerate(d) if s.strip()][1:] for d in docs]
    full = model.score_batch(docs, rule_cats=cats, cut_frac=cut, rows=rows)
    fast = model.score_batch(docs, rule_cats=cats, cut_frac=cut, rows=rows, removable_only=True)
    for k in range(len(docs)):
        removed_full = [i for i in rows[k] if full[k][i] >= model.threshold]
        removed_fast = [i for i in rows[k] if fast[k][i] >= model.threshold]
        assert removed_fast == removed_full
        assert [full[k][i] for i in removed_full] == [fast[k][i] for i in removed_fast]
        # only byline rows, zeroed in the full form and below the threshold, may differ
        for i in rows[k]:
            assert fast[k][i] == full[k][i] or (full[k][i] == 0.0 and fast[k][i] < model.threshold)
