"""The cleaner's fast paths against plain reference implementations kept here.

`clean.py:_match_rules` picks a line's candidate rules as bit masks and drops the "*" rules with one
merged pattern; `lines.py` tests sentence ends and normalizes titles without the regex engine where
that is exact. Each must give what the straightforward code gives (the code as it was before the fast
paths) on any input: bodies and removal records equal, on generated dirty text.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsetl.schemas.records import CleanResult
from newsetl.text import clean as clean_mod
from newsetl.text.clean import assemble, clean_batch, clean_text, split_lines
from newsetl.text.linemodel import load_line_model
from newsetl.text.lines import (
    DIGIT,
    LIST_MARKER,
    TOKEN,
    YEAR_TOKEN,
    Line,
    _ends_like_sentence,
    casefold_text,
    has_digit,
    is_story_line,
    is_title,
    line_core,
    norm_title,
)
from newsetl.text.rules import CleanSettings, Rule, Ruleset, load_rules
from newsetl.text.structure import (
    caption_above_credit,
    extend_block,
    sandwich,
    sweep_first_section,
    trailing_lists,
)
from newsetl.text.words import SPACELESS_CLASS, count_words


# ------------------------------------------------------------------------ the reference implementation
def _candidates_reference(s: str, toks: Sequence[str], rules: Ruleset) -> set[int]:
    cand: set[int] = set(rules.always)
    for t in rules.keywords.intersection(toks):
        cand.update(rules.keyword_index[t])
    for k in rules.keywords:  # a Chinese or Japanese keyword may stand inside a token
        if _SPACELESS_REF.search(k) and any(k in t for t in toks if len(t) > 1):
            cand.update(rules.keyword_index[k])
    if rules.digit_rules and DIGIT.search(s):
        cand.update(rules.digit_rules)
        if rules.year_rules and YEAR_TOKEN.search(s):
            cand.update(rules.year_rules)
    return cand


def _rule_matches_reference(rule: Rule, core: str, nwords: int, ln: Line, st: CleanSettings) -> bool:
    limit = rule.max_words if rule.max_words is not None else (
        st.search_max_words if rule.match == "search" else None)
    if limit is not None and nwords > limit:
        return False
    m = rule.regex.fullmatch(core) if rule.match == "full" else rule.regex.search(core)
    if m is None:
        return False
    return rule.strong or not ln.is_story(st)


def _is_title_reference(line: str, title_keys: Sequence[str]) -> bool:
    n = _norm_title_reference(line_core(line))
    if len(n) <= 3:
        return False
    return any(n == t or (len(n) >= 20 and n in t) or (len(t) >= 20 and t in n and len(n) <= 1.5 * len(t) + 10)
               for t in title_keys)


def _match_rules_reference(lines: list[Line], nonblank: Sequence[int], rules: Ruleset,
                           title_keys: Sequence[str]) -> list[tuple[int, Rule]]:
    """Every candidate rule tried on every line, one by one, in priority order."""
    st = rules.settings
    head = set(nonblank[: st.head_lines])
    top = set(nonblank[: st.body_skip_lines])
    tail = set(nonblank[-st.tail_lines:]) if st.tail_lines > 0 else set()
    hits: list[tuple[int, Rule]] = []
    for i in nonblank:
        ln = lines[i]
        s = ln.text
        if (rules.protect is not None and rules.protect.search(s)) or (
                title_keys and _is_title_reference(s, title_keys)):
            ln.protected = True
            continue
        toks = TOKEN.findall(s.casefold())
        cand = _candidates_reference(s, toks, rules)
        core = line_core(s)
        for ri in sorted(cand):
            rule = rules.rules[ri]
            if rule.scope == "span":
                clean_mod._apply_span(ln, rule)
                continue
            if ln.removed is not None:
                continue
            if ((rule.scope == "head" and i not in head) or (rule.scope == "tail" and i not in tail)
                    or (rule.scope == "body" and i in top)):
                continue
            if _rule_matches_reference(rule, core, len(toks), ln, st):
                ln.removed = (rule.category, rule.id)
                ln.cuts.clear()
                if rule.scope in ("block", "section"):
                    hits.append((i, rule))
        if ln.removed is not None:
            ln.cuts.clear()
    return hits


def clean_reference(text: str, rules: Ruleset, titles: Sequence[str] = ()) -> CleanResult:
    st = rules.settings
    lines = split_lines(text)
    nonblank = [i for i, ln in enumerate(lines) if ln.text.strip()]
    if not nonblank:
        return CleanResult(body="", removals=())
    title_keys = [t for t in (_norm_title_reference(x) for x in titles) if len(t) > 3]
    hits = _match_rules_reference(lines, nonblank, rules, title_keys)
    for i, rule in hits:
        if rule.scope == "block":
            extend_block(lines, nonblank, i, rule, st)
    sections = [(i, rule) for i, rule in hits if rule.scope == "section"]
    if sections:
        sweep_first_section(lines, nonblank, sections, st, len(text))
    sandwich(lines, nonblank, st)
    caption_above_credit(lines, nonblank)
    trailing_lists(lines, nonblank, st)
    return assemble(lines)


_QUOTES = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'", "\u00a0": " "})


def _norm_title_reference(text: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text).translate(_QUOTES).casefold()).strip()


def _lower_words_reference(s: str) -> int:
    return sum(1 for w in s.split() if w[0].islower() or (not w[0].isalnum() and w[1:2].islower()))


# --------------------------------------------------------------------------------- generated inputs
@pytest.fixture(scope="module")
def rules() -> Ruleset:
    return load_rules()


_LIB = load_rules()
# Text that rules match (their own examples and keep-lists), story sentences, and what real input has.
_STORY = "The council approved the budget on Tuesday after a debate that lasted more than six hours."
_FRAGMENTS = [
    *sorted({x for r in _LIB.rules for x in (*r.examples, *r.keep)}),
    "The council approved the budget on Tuesday after a debate that lasted more than six hours.",
    "“We will not stop fighting this,” said the leader of the opposition, who voted against it.",
    "Council backs plan to cut costs", "Related stories", "12 Comments", "Reply", "Advertisement",
    "- Five things to know about the vote", "Updated: March 3, 2021 10:42 AM", "© 2021 Example Media.",
    "(Photo: Example Agency)", "Share this article", "Sign up for our daily newsletter", "Tags: a, b",
    "Straße GRÖSSE İstanbul ﬁnal Σίσυφος ǅemal", "１２ ＡＢＣ", "“Quoted”", "\u00a0", "\t", "\r", " ",
]
_PIECE = st.one_of(
    st.sampled_from(_FRAGMENTS),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40),
    st.text(alphabet="aAbB zZ019.,:;!?-–—•*()[]\"'“”’©|/\t\u00a0ßİﬁ", max_size=60),
)
_LINE = st.builds(lambda prefix, parts: prefix + " ".join(parts),
                  st.sampled_from(["", "", "", "- ", "• ", "3. ", "  ", "\t"]), st.lists(_PIECE, max_size=4))
_TEXT = st.lists(_LINE, max_size=25).map("\n".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_TEXT, title=st.one_of(st.just(""), st.sampled_from(_FRAGMENTS), _LINE))
def test_fast_rule_pass_equals_reference(rules: Ruleset, text: str, title: str) -> None:
    titles = (title,) if title else ()
    assert clean_text(text, rules, titles=titles) == clean_reference(text, rules, titles)


def test_fast_rule_pass_equals_reference_on_the_library_examples(rules: Ruleset) -> None:
    # Each example in a story context and alone: every rule hit at least once, compared exactly.
    story = _STORY
    for frag in _FRAGMENTS:
        for text in (frag, f"{story}\n{story}\n{frag}\n{story}", f"{story}\n{story}\n{story}\n{frag}"):
            assert clean_text(text, rules, titles=(story,)) == clean_reference(text, rules, (story,))


def test_unmergeable_and_case_sensitive_user_rules_keep_their_meaning(tmp_path: Path) -> None:
    """Rules the merged "*" pattern must leave out (groups, flags of their own) and case-sensitive ones."""
    user = {"rules": [
        {"id": "u.backref", "category": "promo", "pattern": r"(\w+) \1 again", "keywords": ["*"]},
        {"id": "u.flags", "category": "promo", "pattern": r"(?s)xx.yy", "keywords": ["*"]},
        {"id": "u.case", "category": "promo", "pattern": "ONLY UPPER", "case_sensitive": True,
         "keywords": ["*"]},
        {"id": "u.span", "category": "promo", "scope": "span", "pattern": r"\[promo\]", "keywords": ["promo"]},
        {"id": "u.search", "category": "promo", "match": "search", "pattern": "zz top", "keywords": ["#digit"],
         "max_words": 3},
    ]}
    path = tmp_path / "user.json"
    path.write_text(json.dumps(user), encoding="utf-8")
    rs = load_rules([path])
    texts = ["go go again", "xx\nyy", "xx-yy", "ONLY UPPER", "only upper", "[promo] The council met.",
             "zz top 1", "zz top 1 2 3 4", "a\nb b again\n- ONLY UPPER\nxx yy\n[promo]"]
    for text in texts:
        assert clean_text(text, rs) == clean_reference(text, rs)
    assert [r.rule for r in clean_text("go go again", rs).removals] == ["u.backref"]
    assert clean_text("only upper", rs).removals == ()


@settings(max_examples=300, deadline=None)
@given(text=_TEXT)
def test_batch_equals_one_by_one_with_the_model(rules: Ruleset, text: str) -> None:
    model = load_line_model()
    texts = [text, "", text.upper(), "Council backs plan to cut costs\n" + text]
    titles = [(), ("x",), (text.split("\n", 1)[0],), ("Council backs plan to cut costs",)]
    got = clean_batch(texts, rules, titles=titles, model=model)
    assert got == [clean_text(t, rules, titles=ts, model=model) for t, ts in zip(texts, titles, strict=True)]


def test_batch_checks_its_arguments(rules: Ruleset) -> None:
    with pytest.raises(ValueError):
        clean_batch(["a", "b"], rules, titles=[()])
    assert clean_batch([], rules) == []


@settings(max_examples=1500, deadline=None)
@given(text=st.one_of(st.text(), st.text(alphabet=st.characters(max_codepoint=127)), _LINE,
                      # Chinese, Japanese, Hindi and Urdu: the sentence marks of other scripts
                      st.text(alphabet="北京新闻的了かな。！？．」』）”. aाहि।۔ب,")))
def test_line_helpers_equal_their_plain_forms(text: str) -> None:
    assert norm_title(text) == _norm_title_reference(text)
    words = text.strip().split()
    padded = " ".join([*words, *["word"] * 8, "."])
    assert is_story_line(padded) == _is_story_reference(padded)
    assert is_story_line(text) == _is_story_reference(text)
    for s in (text.strip(), padded, text.strip() + "”", text.strip() + ".)]'"):
        assert _ends_like_sentence(s) == bool(_SENTENCE_END.search(s))


_SENTENCE_END = re.compile(r"""[.!?…]["'”’»)\]]*\s*$|["”’»]\s*$""")

_MIXED = st.text(alphabet=st.sampled_from(list("aZ09_ -,.:\t\n©éßİΣ\u212a\u0663\uff15²•\ufb01\ud800"))
                 | st.characters())


@settings(max_examples=1500, deadline=None)
@given(text=st.one_of(_MIXED, st.text(alphabet=st.characters(max_codepoint=127)), _TEXT))
def test_text_level_fast_forms_equal_their_plain_forms(text: str) -> None:
    # the line-by-line casefold, the word-chars map over UTF-8 bytes, the list-marker and short-title
    # shortcuts: the same results as the plain calls on any text
    assert casefold_text(text) == text.casefold()
    assert clean_mod._ascii_word_chars(text) == text.translate(clean_mod._ASCII_NON_WORD)
    for line in text.split("\n"):
        assert has_digit(line) == (DIGIT.search(line) is not None)
        s = line.strip()
        s = s.strip("| \t") if s.startswith("|") else s  # a table row: its cells' text
        m = LIST_MARKER.match(s)
        assert line_core(line) == (s[m.end():] if m else s)
        for title in (line, "Council backs plan to cut costs", "A short one", "x" * 25):
            keys = [t for t in (norm_title(title),) if len(t) > 3]
            if keys:
                assert is_title(line, keys) == _is_title_reference(line, keys)


_CLOSERS_REF = "[\"'”’»)\\]」』）】》〉]*$"
_OTHER_END_REF = re.compile("[。！？．।॥۔؟։።။។།]" + _CLOSERS_REF)
_ANY_END_REF = re.compile("[.!?…。！？．।॥۔؟։።။។།]" + _CLOSERS_REF)
_SPACELESS_REF = re.compile(SPACELESS_CLASS)


def _other_script_story_reference(s: str, min_words: int) -> bool:
    if s.isascii():
        return False
    if _SPACELESS_REF.search(s):
        return _ANY_END_REF.search(s) is not None and 2 * count_words(s) >= 5 * min_words
    return _OTHER_END_REF.search(s) is not None and len(s.split()) >= min_words


def _is_story_reference(line: str, min_words: int = CleanSettings.story_min_words) -> bool:
    from newsetl.text.lines import _VERBISH

    s = line.strip()
    words = s.split()
    if len(words) < min_words or not _SENTENCE_END.search(s):
        return _other_script_story_reference(s, min_words)
    if _lower_words_reference(s) * 2 >= len(words):
        return True
    if not any(c.islower() or c.isupper() for c in s):
        return True
    latin = (w.strip(".,;:!?\"'“”‘’()[]").casefold() for w in words if w.isascii())
    return any(w in _VERBISH or (len(w) > 4 and w.endswith(("ed", "ing"))) for w in latin) \
        or _other_script_story_reference(s, min_words)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pool=st.lists(_LINE, min_size=1, max_size=12), picks=st.lists(st.lists(st.integers(0, 11), max_size=30),
                                                                     min_size=2, max_size=6))
def test_remembered_line_decisions_equal_fresh_ones(rules: Ruleset, pool: list[str],
                                                    picks: list[list[int]]) -> None:
    # Texts drawn from one pool of lines, so a line comes back at another place (head, middle, tail) and
    # beside other lines: each text cleaned with the decisions the earlier texts left must equal the
    # same text cleaned from nothing remembered.
    texts = ["\n".join(pool[i % len(pool)] for i in p) for p in picks]
    clean_mod.forget_line_decisions()
    warm = [clean_text(t, rules, titles=(pool[0],)) for t in texts]
    fresh = []
    for t in texts:
        clean_mod.forget_line_decisions()
        fresh.append(clean_text(t, rules, titles=(pool[0],)))
    assert warm == fresh


def test_remembered_decisions_belong_to_one_ruleset(tmp_path: Path) -> None:
    # The same line under another ruleset is decided again, not taken from the first one's decisions.
    line = "Sign up for our daily newsletter"
    text = f"{_STORY}\n{_STORY}\n{line}\n{_STORY}"
    assert line not in clean_text(text, load_rules()).body
    off = tmp_path / "off.json"
    off.write_text(json.dumps({"disable": ["newsletter.signup"]}), encoding="utf-8")
    other = load_rules(extra_files=[str(off)])
    assert line in clean_text(text, other).body
    assert line not in clean_text(text, load_rules()).body


def test_remembered_decisions_are_bounded(rules: Ruleset, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clean_mod, "_DECIDED_CHARS", 2000)
    clean_mod.forget_line_decisions()
    texts = [f"{_STORY} {n}\nLine {n} of a story that goes on for a while.\nShare this article" for n in range(60)]
    for t in texts:
        clean_text(t, rules)
        # two generations of at most 2,000 characters, the last line stored may pass the bound
        assert clean_mod._decisions_for(rules).held_chars <= 2 * 2000 + len(t)
    assert clean_text(texts[0], rules) == clean_reference(texts[0], rules, ())
