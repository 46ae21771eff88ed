"""Tests of the learned line classifier: features (newsetl.text.linefeatures), the model file and its
loader (newsetl.text.linemodel), and its place in clean_text and the pipeline."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from newsetl.text import linefeatures as lf
from newsetl.text.clean import clean_text
from newsetl.text.linemodel import DEFAULT_MODEL_PATH, LineModel, LineModelError, load_line_model
from newsetl.text.pipeline import ProcessConfig, make_context
from newsetl.text.rules import load_rules

STORY = [
    "The council approved the budget on Tuesday after a debate that lasted more than six hours.",
    "Opponents said the plan would raise taxes for families who can least afford it this winter.",
    "The mayor said the savings would pay for repairs to roads, schools and two hospitals.",
    "A final vote on the spending details is expected before the end of the month, officials said.",
]


@pytest.fixture(scope="module")
def rules() -> Any:
    return load_rules()


def _spec(feature: str = "comment_word", threshold: float = 0.5, always: bool = False) -> dict[str, Any]:
    """A one-tree model: a line goes when `feature` > 0.5 (or always); the format the trainer writes."""
    f = lf.FEATURE_NAMES.index(feature)
    inf = float("inf")
    return {"format": "newsetl-linemodel", "format_version": 1, "version": 9, "threshold": threshold,
            "features": list(lf.FEATURE_NAMES),
            "trees": {"feat": [f, 0, 0], "thr": [-inf if always else 0.5, inf, inf], "left": [1, 1, 2],
                      "right": [2, 1, 2], "value": [0.0, -5.0, 5.0], "roots": [0], "depth": 1}}


def _write(tmp_path: Path, spec: Any, name: str = "m.json") -> Path:
    path = tmp_path / name
    path.write_text(spec if isinstance(spec, str) else json.dumps(spec), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------ features
def test_features_shape_blank_rows_and_determinism() -> None:
    lines = ["Headline of the story", "", *STORY, "  ", "12 Comments", "Reply"]
    X = lf.line_features(lines, rule_cats=[""] * len(lines), cut_frac=[0.0] * len(lines))
    assert X.shape == (len(lines), lf.N_FEATURES) and X.dtype == np.float32
    assert not X[1].any() and not X[len(STORY) + 2].any()  # blank lines: zero rows
    assert all(X[i].any() for i, s in enumerate(lines) if s.strip())
    assert np.array_equal(X, lf.line_features(lines, rule_cats=[""] * len(lines), cut_frac=[0.0] * len(lines)))
    assert lf.line_features([]).shape == (0, lf.N_FEATURES)
    assert not lf.line_features(["", " "]).any()


def test_features_see_the_rule_hits_and_the_shape_of_a_line() -> None:
    lines = [*STORY, "Reply"]
    cats = [""] * len(STORY) + ["comments"]
    X = lf.line_features(lines, rule_cats=cats)
    col = {n: i for i, n in enumerate(lf.FEATURE_NAMES)}
    assert X[-1, col["rule_removed"]] == 1 and X[-1, col["rule_comments"]] == 1
    assert X[-2, col["next_rule_removed"]] == 1
    assert X[0, col["story"]] == 1 and X[-1, col["story"]] == 0
    assert X[-1, col["comment_word"]] == 1


def test_layout_main_block_and_window_features() -> None:
    # menu above, the story, then an indented teaser list that repeats a line: what each v2 column says
    lines = ["Home", "News", *STORY, "Related", "    Five things to know", "    Five things to know", "Reply"]
    X = lf.line_features(lines)
    col = {n: i for i, n in enumerate(lf.FEATURE_NAMES)}
    story_rows = range(2, 2 + len(STORY))
    assert all(X[i, col["in_main"]] == 1 for i in story_rows)
    assert X[0, col["in_main"]] == 0 and X[0, col["log_before_main"]] > X[1, col["log_before_main"]] > 0
    tail = len(lines) - 1
    assert X[tail, col["in_main"]] == 0 and X[tail, col["log_after_main"]] > 0
    assert X[tail - 1, col["indent"]] > 0 and X[2, col["indent"]] == 0
    assert X[0, col["indent_share"]] == pytest.approx(2 / len(lines), abs=1e-6)
    assert X[tail - 1, col["dup_in_doc"]] == 1 and X[2, col["dup_in_doc"]] == 0
    assert X[tail, col["prev2_story"]] == 0 and X[2 + len(STORY), col["prev2_story"]] == 1
    assert X[tail - 1, col["next_comment_word"]] == 1  # "Reply" below
    assert X[tail - 3, col["story_win3"]] > X[tail, col["story_win3"]]
    # no story line at all: nothing is inside a main block
    Y = lf.line_features(["Home", "News", "Contact"])
    assert not Y[:, col["in_main"]].any() and (Y[:, col["log_before_main"]] > 0).all()


def test_features_name_no_page_site_or_sentence() -> None:
    # generic word lists only: no token with a dot-domain or a capitalised proper name in them
    source = Path(lf.__file__).read_text(encoding="utf-8")
    assert not re.search(r"\b\w+\.(?:com|de|org|net|co\.uk)\b", source)


# --------------------------------------------------------------------------------------------- loading
def test_shipped_model_loads_once_and_matches_the_features() -> None:
    m = load_line_model()
    assert m is load_line_model()  # cached per process
    assert m.feature_names == lf.FEATURE_NAMES and m.name == "linemodel-v5" and 0 < m.threshold < 1
    assert Path(DEFAULT_MODEL_PATH).is_file()


def test_unusable_model_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(LineModelError, match="cannot read"):
        LineModel.load(tmp_path / "absent.json")
    with pytest.raises(LineModelError, match="cannot read"):
        LineModel.load(_write(tmp_path, "{not json"))
    with pytest.raises(LineModelError, match="not a newsetl-linemodel"):
        LineModel.load(_write(tmp_path, {"format": "other"}))
    spec = _spec()
    spec["format_version"] = 2
    with pytest.raises(LineModelError, match="format version"):
        LineModel.load(_write(tmp_path, spec))
    spec = _spec()
    spec["features"] = spec["features"][:-1]
    with pytest.raises(LineModelError, match="feature list differs"):
        LineModel.load(_write(tmp_path, spec))
    spec = _spec()
    spec["trees"]["left"] = [7, 1, 2]
    with pytest.raises(LineModelError, match="outside"):
        LineModel.load(_write(tmp_path, spec))
    spec = _spec()
    del spec["trees"]["roots"]
    with pytest.raises(LineModelError, match="malformed"):
        LineModel.load(_write(tmp_path, spec))


def test_missing_model_fails_make_context_not_each_document(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import newsetl.text.linemodel as lm

    load_line_model.cache_clear()
    monkeypatch.setattr(lm, "DEFAULT_MODEL_PATH", tmp_path / "gone.json")
    try:
        with pytest.raises(LineModelError):
            make_context(ProcessConfig())
        assert make_context(ProcessConfig(line_model=False)).model is None
    finally:
        load_line_model.cache_clear()


# ------------------------------------------------------------------------------------- in clean_text
def test_model_removals_are_recorded_with_category_model_and_score(tmp_path: Path, rules: Any) -> None:
    model = LineModel.load(_write(tmp_path, _spec("tiny")))  # lines of at most two words go
    text = "\n".join([*STORY, "Thanks, Margaret"])
    res = clean_text(text, rules, model=model)
    gone = [r for r in res.removals if r.category == "model"]
    assert [r.text for r in gone] == ["Thanks, Margaret"] and gone[0].position == text.index("Thanks")
    assert re.fullmatch(r"linemodel-v9:0\.99", gone[0].rule)
    assert res.body == "\n".join(STORY)
    assert clean_text(text, rules).body == text  # without the model the rules keep it


def test_model_never_touches_headlines_protected_story_or_rule_removed_lines(tmp_path: Path, rules: Any) -> None:
    model = LineModel.load(_write(tmp_path, _spec(always=True)))  # would remove every line it scores
    title = "Council backs plan to cut costs"
    text = "\n".join([title, "Share this article", *STORY, "Thanks, Margaret", "Margaret and Tom"])
    res = clean_text(text, rules, titles=[title], model=model)
    assert res.body == "\n".join([title, *STORY])  # headline and story sentences are spared
    by_text = {r.text: r.category for r in res.removals}
    assert by_text["Share this article"] != "model"  # the rule's removal stays the rule's
    assert by_text["Thanks, Margaret"] == by_text["Margaret and Tom"] == "model"
    # without titles (plain text), the first line kept is where describe reads the title: spared too
    res = clean_text("\n".join(["Council backs plan", *STORY, "Margaret and Tom"]), rules, model=model)
    assert res.body.split("\n")[0] == "Council backs plan" and "Margaret" not in res.body


def test_shipped_model_keeps_a_plain_story(rules: Any) -> None:
    text = "\n".join(STORY)
    assert clean_text(text, rules, model=load_line_model()).body == text


def test_model_spares_a_head_byline_describe_reads(tmp_path: Path) -> None:
    # describe reads the byline from the cleaned body: a model that takes every line must still leave a
    # bare-name byline under the headline (a removal of category "model" would lose the author)
    m = LineModel.load(_write(tmp_path, _spec(always=True)))
    lines = ["Council backs the budget", "John Bowden", "Sunday 06 March 2022 10:58 EST", *STORY, "Reply"]
    p = m.score_lines(lines)
    assert p[1] == 0.0
    assert p[2] > m.threshold and p[len(lines) - 1] > m.threshold
    # a name line far below the head is not a byline for describe: the model may take it
    far = [*STORY, *STORY, *STORY, "John Bowden"]
    assert m.score_lines(far)[-1] > m.threshold
