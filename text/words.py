"""How many words a text has, in any script: the one count the pipeline uses (word_count, extraction floors).

A word is a run of word characters (`\\w`: what str.isalnum() accepts, and "_"), except in Chinese and
Japanese, which are written without spaces: there every Han ideograph and every kana counts as a word, the
convention of word processors for East Asian text. Counted as runs, a 1,600-character Chinese article was
~190 "words" (one per clause between punctuation marks) and 23 whitespace tokens: the extraction's
200-word fallback ran on every such page, its former 10-word floor could quarantine a short article as
empty, and its `word_count` was a quarter of what a reader would count. Korean is written with spaces and
counts as runs. A combining mark (a vowel sign, a virama, an Arabic haraka) belongs to the run it sits in, so
Hindi, Bengali and vowelled Arabic count as a reader counts.

Thai, Lao, Khmer and Burmese are written without spaces between words too (a space parts phrases), and their
words run to several code points: a run of their letters is cut into words by ICU's dictionary-based word
break iterator (`segment_words`; the icu4py wheel bundles ICU and its dictionaries: no download). As runs, a
437-character Thai story was 10 words (one a phrase or number); ICU counts 103, PyThaiNLP's newmm (a Thai-only
segmenter) 82: ICU's Thai dictionary cuts some compounds finer (นายก|รัฐมนตรี, การ|ค้า). On the sentences of
tests/text/test_words.py ICU is within a word of khmer-nltk and LaoNLP a sentence, and within two of a
reader's count of a 15-word Burmese sentence.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from functools import cache

import numpy as np

# Per code point: not a word character, part of a run, a word by itself, part of a run that ICU segments.
_OTHER, _WORD, _EACH, _SEGMENTED = 0, 1, 2, 3

def caseless_letter(ch: str) -> bool:
    """A letter of a script without case (Hangul, Han, Arabic, Hebrew, Thai, Devanagari ...): no capital
    tells a headline or a sentence start there."""
    return ch.isalpha() and not ch.isupper() and not ch.islower()


# Han ideographs (unified, extensions A-I, compatibility), hiragana and katakana (with the halfwidth forms).
SPACELESS_RANGES = (
    (0x3040, 0x30FF),  # hiragana, katakana
    (0x31F0, 0x31FF),  # katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFF9D),  # halfwidth katakana
    (0x20000, 0x323AF),  # CJK extensions B-I (planes 2 and 3)
)


# The same code points as a regex character class, for the code that splits text with `re` (the signatures:
# text/sign.py). It holds the blocks' few non-letters too (the katakana middle dot): a pattern keeps to
# word characters itself.
SPACELESS_CLASS = "[" + "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in SPACELESS_RANGES) + "]"


# Thai, Lao, Burmese (the Myanmar block and its extensions A and B) and Khmer: written without spaces between
# words, which run to several code points (letters and the vowel signs and tone marks on them).
SEGMENTED_RANGES = (
    (0x0E00, 0x0E7F),  # Thai
    (0x0E80, 0x0EFF),  # Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0xA9E0, 0xA9FF),  # Myanmar extended-B
    (0xAA60, 0xAA7F),  # Myanmar extended-A
)

# The same as a regex character class (the blocks' punctuation too: ICU gives it segments of its own, which
# `segment_words` drops).
SEGMENTED_CLASS = "[" + "".join(f"\\u{lo:04x}-\\u{hi:04x}" for lo, hi in SEGMENTED_RANGES) + "]"

_HAS_WORD_CHAR = re.compile(r"[^\W_]")


def segment_words(text: str) -> list[str]:
    """The words of `text` by ICU's word break iterator: its segments that hold a letter or a digit.

    Meant for runs of Thai, Lao, Khmer or Burmese, which ICU cuts with a dictionary of each (the locale does not
    choose it, the script does); a Latin word or a number beside them is a segment of its own. ~0.7 ms for 5 KB
    of Thai. icu4py is imported here, at the first such text: a process that meets none never loads ICU."""
    from icu4py.breakers import WordBreaker

    return [w for w in WordBreaker(text, "") if _HAS_WORD_CHAR.search(w)]


@cache
def segmenter_version() -> int:
    """The major version of the ICU that `segment_words` cuts with: its dictionaries change with it, so the
    signatures of texts in these scripts do too (text/sign.py `scheme_id`)."""
    from icu4py import icu_version_info

    return int(icu_version_info[0])


@cache
def _classes() -> np.ndarray:
    """Per code point, its class (1.1 MB, built once per process in ~0.15 s; the workers inherit it from
    the fork server's warm-up)."""
    table = np.fromiter((chr(c).isalnum() for c in range(sys.maxunicode + 1)), dtype=np.uint8,
                        count=sys.maxunicode + 1)
    table[ord("_")] = _WORD
    # Combining marks (vowel signs, viramas, harakat: Unicode category M) are part of the word they sit in,
    # as they are for a reader: with \w's rule (isalnum) "नमस्ते दुनिया" was 5 words and a 160-word Hindi
    # article 256. Marks are few (~2,500 points), listed once.
    marks = np.fromiter((c for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c))[0] == "M"),
                        dtype=np.int64)
    table[marks] = _WORD
    for lo, hi in SPACELESS_RANGES:
        # Only the letters of these blocks (not the unassigned points, nor marks like the kana sound
        # marks, which are no word of their own and add none to the letter before them).
        block = table[lo:hi + 1]
        letters = np.array([chr(c).isalnum() for c in range(lo, hi + 1)], dtype=bool)
        block[letters] = _EACH
        block[~letters] = _OTHER
    for lo, hi in SEGMENTED_RANGES:
        block = table[lo:hi + 1]
        block[block == _WORD] = _SEGMENTED  # their letters, digits and marks; punctuation stays _OTHER
    return table


def count_words(text: str) -> int:
    """The words of `text` (see the module doc), counted over its code points in numpy: ~8x faster than the
    regex engine on a 5 KB body, where `re.findall(r"\\w+")` was ~3% of a worker's time on the re-scrape
    stream. For text without Chinese, Japanese, Thai, Lao, Khmer, Burmese or combining marks it is
    `len(re.findall(r"\\w+", text))`; a combining mark joins its word ("नमस्ते दुनिया" is 2 words, the regex's
    5); a run of Thai, Lao, Khmer or Burmese counts `segment_words`'s words."""
    if not text:
        return 0
    cls = _classes()[np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)]
    run = cls == _WORD
    words = int(run[0]) + int(np.count_nonzero(run[1:] & ~run[:-1])) + int(np.count_nonzero(cls == _EACH))
    if text.isascii() or not (segmented := cls == _SEGMENTED).any():
        return words
    # Each run of Thai, Lao, Khmer or Burmese (code point i is text[i]) counts its ICU words. A Latin word or a
    # number beside one is a run of its own: ICU would take "iPhoneรุ่น" for one word.
    edges = np.flatnonzero(np.diff(np.r_[False, segmented, False]))
    return words + sum(len(segment_words(text[s:e]))
                       for s, e in zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True))
