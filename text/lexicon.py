"""Word frequencies from wordfreq in ~10 bytes a word, instead of a dict of the whole list.

The repair step asks wordfreq for a handful of words per thousand documents (a hyphen at a line end, a
byte lost inside a word), but `wordfreq.zipf_frequency` answers from a Python dict of the whole word
list, which it keeps for the life of the process, one per language a worker has met: its first call grew a
process by 34 MB for English, 34 for French, 60 for Polish, 70 for German (RSS, one fresh process each).
Here each language's list is read once, without wordfreq's caches, into two sorted numpy arrays (a 64-bit
hash of each word and its frequency bucket: 2-6 MB; the process grew by 13-24 MB, what reading the list
left freed but not returned), and the lookup follows wordfreq's own steps (its tokenizer, digit smashing,
frequency combination and rounding), so `zipf_frequency(word, lang)` returns what
`wordfreq.zipf_frequency(word, lang)` does.

The one difference: a word not in the list whose hash equals a listed word's would get that word's
frequency. With 64-bit hashes of distinct byte strings and < 10^6 words a list, that is about one lookup
in 10^13.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from functools import lru_cache
from itertools import chain

import numpy as np
from wordfreq import INFERRED_SPACE_FACTOR, cB_to_freq, freq_to_zipf, get_frequency_list, zipf_to_freq
from wordfreq.language_info import get_language_info
from wordfreq.numbers import digit_freq, smash_numbers
from wordfreq.tokens import lossy_tokenize

WORDLIST = "best"  # wordfreq's default: its "large" list where there is one
_FLOOR = zipf_to_freq(0.0)  # what zipf_frequency's default minimum (Zipf 0) passes on as a frequency


def _hash(word: str) -> int:
    """Python's own 64-bit hash (SipHash, computed in C) of the word's UTF-8 bytes. It is salted per
    interpreter, which does not matter here: a lexicon is built and read in one process (a worker forked
    from the fork server inherits the salt with the tables) and is never stored or sent. Not `hash(word)`:
    CPython hashes a string's internal buffer, whose width depends on its widest character, so "n0" (bytes
    6E 30) and "の" (U+306E, stored as 6E 30) hash alike; both are in English's list, and "n0" got the
    frequency of "の" (a property test found it). UTF-8 gives each string its own bytes. (blake2b, used
    before, took building German's 634,502 words 0.48 s; this 0.25 s, `hash(word)` 0.20.)"""
    return hash(word.encode("utf-8", "surrogatepass"))


def _buckets(lang: str) -> list[list[str]]:
    """wordfreq's word list of `lang` (bucket k holds the words at -k centibels), read past its
    unbounded cache: kept there, the list itself would hold the memory this module saves."""
    read = getattr(get_frequency_list, "__wrapped__", get_frequency_list)
    # wordfreq logs a warning when it takes the nearest list ("no" -> "nb", "pcm" -> "en"): the nearest list
    # is what repair wants, and a worker's warning reaches the terminal of a `newsetl ingest --quiet`.
    log = logging.getLogger("wordfreq")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        return read(lang, WORDLIST)  # type: ignore[no-any-return]
    finally:
        log.setLevel(level)


class Lexicon:
    """One language's word list: hash -> frequency bucket, sorted for binary search."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        pack = _buckets(lang)
        n = sum(map(len, pack))
        keys = np.fromiter(map(_hash, chain.from_iterable(pack)), dtype=np.int64, count=n)
        buckets = np.repeat(np.arange(len(pack), dtype=np.uint16), [len(b) for b in pack])
        order = np.argsort(keys, kind="stable")
        self._keys, self._buckets = keys[order], buckets[order]
        self._jieba = get_language_info(lang)["tokenizer"] == "jieba"

    def __len__(self) -> int:
        return len(self._keys)

    def bucket(self, token: str) -> int | None:
        """The token's frequency bucket (0 = the most frequent), or None when it is not in the list."""
        h = np.int64(_hash(token))
        i = int(np.searchsorted(self._keys, h))
        if i < len(self._keys) and self._keys[i] == h:
            return int(self._buckets[i])
        return None

    def zipf(self, word: str) -> float:
        """`wordfreq.zipf_frequency(word, lang)`: its `_word_frequency` step by step (wordfreq 3.1), with
        the floor zipf_frequency passes (Zipf 0, a frequency of 1e-9) for unknown words."""
        return round(freq_to_zipf(self._frequency(word)), 2)

    def _frequency(self, word: str) -> float:
        tokens = lossy_tokenize(word, self.lang)
        if not tokens:
            return _FLOOR
        one_over = 0.0
        for token in tokens:
            smashed = smash_numbers(token)
            b = self.bucket(smashed)
            if b is None:  # any token missing: the word is unknown
                return _FLOOR
            freq = cB_to_freq(-b)
            if smashed != token:
                freq *= digit_freq(token)
            one_over += 1.0 / freq
        freq = 1.0 / one_over
        if self._jieba:
            freq *= INFERRED_SPACE_FACTOR ** -(len(tokens) - 1)
        freq = max(freq, _FLOOR)
        return round(freq, math.floor(-math.log(freq, 10)) + 3)  # wordfreq's three significant digits


@lru_cache(maxsize=16)
def lexicon(lang: str) -> Lexicon:
    """The language's lexicon, built on first use (0.1-0.2 s; 2-6 MB of arrays). Raises LookupError (wordfreq's)
    for a language wordfreq has no list of."""
    return Lexicon(lang)


def zipf_frequency(word: str, lang: str) -> float:
    """wordfreq's Zipf frequency of `word` (0.0 when unknown); raises as wordfreq would for a language or
    a word its tokenizer cannot handle."""
    return lexicon(lang).zipf(word)


def frequency_items(lang: str) -> Iterator[tuple[str, float]]:
    """(word, frequency) of the language's list in `wordfreq.get_frequency_dict(lang).items()` order
    (its lists hold each word once, so the dict's order is the list's), without building the dict."""
    for index, bucket in enumerate(_buckets(lang)):
        freq = cB_to_freq(-index)
        for word in bucket:
            yield word, freq
