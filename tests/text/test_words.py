"""Word counts (newsetl.text.words): runs of word characters, and one word per Chinese/Japanese character."""

from __future__ import annotations

import re
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from newsetl.text.words import count_words

_RUNS = re.compile(r"\w+")
# Han ideographs and kana (the letters of these blocks; the sound marks U+3099-U+309C are not letters).
_EACH = re.compile(r"[\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fc-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
                   r"\uf900-\ufaff\uff66-\uff9d\U00020000-\U000323af]")


def _runs(text: str) -> int:
    """Runs of \\w characters with combining marks (category M) joined into them, as a reader counts."""
    joined = "".join("a" if unicodedata.category(c)[0] == "M" else c for c in text)
    return len(_RUNS.findall(joined))


def _reference(text: str) -> int:
    # Each Chinese/Japanese letter is a word by itself and separates the runs around it; a mark in those
    # blocks (the kana sound marks) is no word.
    each = [c for c in _EACH.findall(text) if c.isalnum()]
    return _runs(_EACH.sub(" ", text.replace("\u3099", " ").replace("\u309a", " "))) + len(each)


@settings(max_examples=600, deadline=None)
@given(st.one_of(st.text(), st.text(alphabet=st.sampled_from(list("a_ 9\t\n-—’éß٣\u0301\U0001d7d8\ud800x"))),
                 st.text(alphabet=st.characters(max_codepoint=127))))
def test_it_is_the_regex_count_where_no_letter_is_chinese_or_japanese(text: str) -> None:
    # the numpy count over code points against the regex it replaced (\w is str.isalnum() plus "_"), with
    # combining marks joined into their runs
    if not any(c.isalnum() for c in _EACH.findall(text)):
        assert count_words(text) == _runs(text)
    assert count_words(text) == _reference(text)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab 9_-。，市政府ひらがなカタカナｶﾀ한국어\u3099\u30fc\u4e00\U00020001"))))
def test_each_chinese_or_japanese_letter_is_a_word(text: str) -> None:
    assert count_words(text) == _reference(text)


def test_examples() -> None:
    assert count_words("") == 0
    assert count_words("The council approved the budget.") == 5
    assert count_words("市政府批准新预算。") == 8  # eight ideographs, the full stop is not a word
    assert count_words("iPhone手机") == 3  # a Latin run, then two ideographs
    assert count_words("ラーメンを食べた") == 8  # kana and the long-vowel mark, each one
    assert count_words("한국어 문장입니다") == 2  # Korean is written with spaces: runs
    # vowel signs, viramas and harakat are part of their word, not breaks in it
    assert (count_words("नमस्ते दुनिया"), count_words("বাংলাদেশের রাজধানী ঢাকা"), count_words("مُحَمَّدٌ رَسُولُ")) == (2, 3, 2)
