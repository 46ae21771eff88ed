"""newsetl.text.lexicon answers what wordfreq answers, from tables a fraction of the size."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import wordfreq
from hypothesis import given, settings
from hypothesis import strategies as st

from newsetl.text.lexicon import frequency_items, lexicon, zipf_frequency

# Words of every kind wordfreq's lookup treats apart: known, unknown, digits (smashed to 0s and given a
# digit frequency), several tokens (frequencies combined), apostrophes, case, and no token at all.
EDGE_WORDS = ["the", "information", "infor", "mation", "well-known", "e-mail", "can't", "l'homme", "Straße",
              "THE", "1984", "3", "12.5", "10,000", "2nd", "co-op", "the the", "qxzvbn", "", " ", "...", "😀",
              "Zusammenarbeit", "x" * 60, "naïve", "résumé",
              "n0", "の"]  # the same bytes in CPython's string buffers: a hash of the str made them one word


def _list_sample(lang: str) -> list[str]:
    """A few words of every 25th frequency bucket of the language's list."""
    return [w for bucket in wordfreq.get_frequency_list(lang)[::25] for w in bucket[:4]]


def test_same_zipf_as_wordfreq_for_listed_and_edge_words() -> None:
    for lang in ("en", "de", "fr"):
        for word in _list_sample(lang) + EDGE_WORDS:
            assert zipf_frequency(word, lang) == wordfreq.zipf_frequency(word, lang), (lang, word)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("abcdeilnorstuäöüß'- 0123456789.,"), max_size=14))
def test_same_zipf_as_wordfreq_for_any_string(word: str) -> None:
    # Mostly strings no list holds (the floor), some that split into tokens or carry digits.
    for lang in ("en", "de"):
        assert zipf_frequency(word, lang) == wordfreq.zipf_frequency(word, lang)


def test_frequency_items_are_the_frequency_dict_in_order() -> None:
    assert list(frequency_items("en")) == list(wordfreq.get_frequency_dict("en").items())


@pytest.mark.parametrize("lang", ["en", "ja", "zh"])
def test_no_two_listed_words_share_a_key(lang: str) -> None:
    # With hash(str), 32 English words and 924 Chinese ones shared their key with another word of the list
    # (a one-byte string and a two-byte one with the same buffer bytes), and one of each pair took the
    # other's frequency.
    lex = lexicon(lang)
    assert len(np.unique(lex._keys)) == len(lex._keys) == sum(map(len, wordfreq.get_frequency_list(lang)))


def test_tables_are_small() -> None:
    lex = lexicon("de")  # the largest of the common lists (634,502 words)
    assert len(lex) == sum(map(len, wordfreq.get_frequency_list("de")))
    assert lex._keys.nbytes + lex._buckets.nbytes < 8 * 1024 * 1024


def test_a_nearest_list_is_taken_without_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    # Norwegian texts are detected as "no"; wordfreq's list is "nb" and it would log a warning that a
    # worker prints on the user's terminal.
    with caplog.at_level(logging.WARNING):
        assert zipf_frequency("været", "no") == wordfreq.zipf_frequency("været", "nb") > 0
    assert not [r for r in caplog.records if r.name.startswith("wordfreq")]


def test_unknown_language_raises_as_wordfreq_does() -> None:
    # The repair step treats an error as "word unknown", as it did with wordfreq's own function.
    for lookup in (wordfreq.zipf_frequency, zipf_frequency):
        try:
            lookup("word", "xx-unknown")
        except LookupError:
            continue
        raise AssertionError(f"{lookup} did not raise for an unknown language")
