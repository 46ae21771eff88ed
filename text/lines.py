"""Line helpers shared by the cleaning passes: the shape of a line (story sentence, list item, link
title, headline), the key learned boilerplate counts lines by, and the mutable per-line state of one
`clean_text` call."""

from __future__ import annotations

import operator
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from newsetl.text.rules import TOKEN_PATTERN, CleanSettings
from newsetl.text.words import SEGMENTED_CLASS, SPACELESS_CLASS, count_words

TOKEN = re.compile(TOKEN_PATTERN)  # \w runs with their combining marks (rules.py)
DIGIT = re.compile(r"\d")
YEAR_TOKEN = re.compile(r"(?<![\w])(?:19|20)\d\d(?![\w])")
# The characters a list item starts with (besides "3." and "3)"); line_core checks them before the regex.
MARKER_CHARS = "-*•·▪►»"
LIST_MARKER = re.compile(rf"^\s*(?:[{re.escape(MARKER_CHARS)}]|\d{{1,2}}[.)])\s+")
_NORM_NOISE = re.compile(r"[\W\d_]+")
_QUOTES = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'", "\u00a0": " "})

# Cheap "verb-bearing" test for Latin-script text: common finite verbs/auxiliaries or -ed/-ing forms.
_VERBS = (
    "is are was were be been being am has have had do does did will would can could shall should may might "
    "must said says say told tells tell added adds according announced reported wrote think thinks believe "
    "know knew want wants make makes made get gets got take takes took go goes went come comes came see "
    "sees saw find finds found give gives gave show shows showed need needs use uses become became seem "
    "seems include includes expect expects plan plans called calls asked asks warned warns")

_VERBISH = frozenset(_VERBS.split())
_FIRST = operator.itemgetter(0)


def has_digit(s: str) -> bool:
    """`DIGIT.search(s) is not None`. On ASCII text, where \\d is 0-9, ten substring tests: ~8x faster than
    the regex engine's character-by-character class test (1.4 -> 0.17 us on a 140-character line; the
    cleaner tests every line of every text)."""
    if s.isascii():
        return ("0" in s or "1" in s or "2" in s or "3" in s or "4" in s or "5" in s or "6" in s or "7" in s
                or "8" in s or "9" in s)
    return DIGIT.search(s) is not None


_BOUNDARY_BEFORE = set(".!?…:;|/·•–—-)]}\"”’»")

_OPENERS = set("([{|")


# ------------------------------------------------------------------------------------ line helpers
def normalize_line(line: str) -> str:
    """Key of a line for learned boilerplate: NFKC, casefold, digits and punctuation dropped, spaces
    collapsed. "© 2019 Acme Inc. All rights reserved." and "© 2021 ACME inc — all rights reserved" share
    the key "acme inc all rights reserved"."""
    return _NORM_NOISE.sub(" ", unicodedata.normalize("NFKC", line).casefold()).strip()

def casefold_text(text: str) -> str:
    """`text.casefold()`, line by line when the text is not ASCII: casefold maps characters one by one and
    never makes or takes a "\n", so the result is the same, but an ASCII line takes casefold's ASCII fast
    path, which a whole text with one "©" in it does not (it then folds every character the slow way)."""
    if text.isascii():
        return text.casefold()
    return "\n".join([line.casefold() for line in text.split("\n")])

def norm_title(text: str) -> str:
    """NFKC, curly quotes made straight, casefolded, whitespace runs made one space, stripped.

    Written for speed (it runs on every line when the headline is known): str.split() and the regex \\s+
    both split on the characters str.isspace() accepts, so join(split()) is the collapse-and-strip;
    ASCII text holds none of the quotes to translate."""
    s = unicodedata.normalize("NFKC", text)
    if not s.isascii():
        s = s.translate(_QUOTES)
    return " ".join(s.casefold().split())

def _ends_like_sentence(s: str) -> bool:
    r"""Does a stripped `s` end like a sentence: its last character is a closing quote, or the last one
    before a run of closing quotes and brackets is sentence punctuation. (The regex
    `[.!?…]["'”’»)\]]*\s*$|["”’»]\s*$` says the same, slower: tests/text/test_clean_fast.py checks it.)"""
    if not s:
        return False
    if s[-1] in _CLOSE_QUOTES:
        return True
    rest = s.rstrip(CLOSERS)
    return bool(rest) and rest[-1] in ".!?…"


_CLOSE_QUOTES = "\"”’»"
CLOSERS = "\"'”’»)]"


# Sentence ends of the scripts news is written in besides Latin's ". ! ? …": CJK full-width, Devanagari and
# Bengali danda, Arabic and Urdu, Armenian, Ethiopic, Burmese, Khmer, Tibetan; and the closing brackets of
# CJK that may follow one. (Thai and Lao end a sentence with no mark.)
OTHER_SENTENCE_ENDS = "。！？．।॥۔؟։።။។།"
CLOSERS_ANY = CLOSERS + "」』）】》〉"
_SPACELESS = re.compile(SPACELESS_CLASS)
_PHRASE_SPACED = re.compile(SEGMENTED_CLASS)  # Thai, Lao, Burmese, Khmer


def is_story_line(line: str, min_words: int = CleanSettings.story_min_words) -> bool:
    """Does this line read as a sentence of the story: long, ends like a sentence (. ! ? … or a closing
    quote), and verb-bearing? The verb test is cheap: a common English verb/auxiliary or -ed/-ing form,
    or, for any language, mostly lowercase words (prose), which a list of names or link titles is not.

    Scripts whose sentences end with other marks (Chinese and Japanese 。, Hindi ।, Urdu ۔ ...) are read
    by `story_in_other_script`: before it, a Chinese article had no story line at all (its sentence is one
    whitespace "word" ending in 。), so every pass that keys on the story (the main block, what trails the
    last story line) saw a page of furniture."""
    s = line.strip()
    if not _ends_like_sentence(s):  # first: it needs no split
        return not s.isascii() and story_in_other_script(s, min_words)
    words = s.split()
    if len(words) < min_words:
        return not s.isascii() and story_in_other_script(s, min_words)
    # First letter of each word, past one leading quote or bracket; a cheap, script-agnostic case test.
    # The two kinds of word are disjoint (a lowercase first letter is alphanumeric), so they are counted
    # apart: the first with C-level map calls (it runs on every candidate line), the second only when
    # the first does not decide.
    lower = sum(map(str.islower, map(_FIRST, words)))
    if lower * 2 < len(words):
        lower += sum(1 for w in words if not w[0].isalnum() and w[1:2].islower())
    if lower * 2 >= len(words):
        return True
    if not (any(map(str.islower, s)) or any(map(str.isupper, s))):
        return True  # scripts without case (CJK, Arabic, ...): length and punctuation must do
    latin = (w.strip(".,;:!?\"'“”‘’()[]").casefold() for w in words if w.isascii())
    if any(w in _VERBISH or (len(w) > 4 and w.endswith(("ed", "ing"))) for w in latin):
        return True
    return not s.isascii() and story_in_other_script(s, min_words)


def story_in_other_script(s: str, min_words: int) -> bool:
    """A story sentence of a script the Latin test cannot read: it ends with a sentence mark (a closing
    bracket or quote may follow) and is long: `min_words` whitespace words, or, in Chinese and Japanese
    (written without spaces: count_words counts a character a word), 2.5 characters a word (20 for the
    default 8: a Chinese news sentence runs 20-60 characters, a "相关新闻：..." link or a share prompt
    less). These scripts have no case, so length and the mark must do, as for the caseless scripts above.
    The rule is text/sign.completeness's story sentence, which chose canonical copies this way first."""
    last = s.rstrip(CLOSERS_ANY)[-1:]
    if not last or (last not in OTHER_SENTENCE_ENDS and last not in ".!?…"):
        return False
    if _SPACELESS.search(s) is not None:
        return 2 * count_words(s) >= 5 * min_words
    return last in OTHER_SENTENCE_ENDS and len(s.split()) >= min_words


def is_list_item(line: str) -> bool:
    return LIST_MARKER.match(line) is not None


def table_cells(s: str) -> str:
    """A table row as trafilatura writes one ("| Related articles | |") read by its cells' text, so that a
    one-cell row of page chrome (or a byline in a layout table) reads as the same line outside a table
    would; any other line as it is. `s` is already stripped."""
    return s.strip("| \t") if s[:1] == "|" else s


def line_core(line: str) -> str:
    """The line without surrounding space and without a leading list marker ("- ", "• ", "3. ")."""
    s = table_cells(line.strip())
    # A marker starts with one of its characters or a digit (\d: str.isdecimal); most lines start with
    # neither and skip the regex call.
    if s[:1] not in MARKER_CHARS and not s[:1].isdecimal():
        return s
    m = LIST_MARKER.match(s)
    return s[m.end():] if m else s


def at_boundary(line: str, start: int, end: int) -> bool:
    """May a span [start, end) be cut out of `line` without cutting a sentence in two?"""
    before = line[:start].rstrip()
    ok_start = (not before or line[start] in _OPENERS or before[-1] in _BOUNDARY_BEFORE
                or (start > 0 and line[start - 1] in _BOUNDARY_BEFORE))
    after = line[end:]
    rest = after.lstrip()
    span_last = line[end - 1] if end > start else ""
    ok_end = (not rest or span_last in ".!?…:;|)]}”\"" or rest[0] in "|/·•–—-([" or
              (after[:1].isspace() and (rest[0].isupper() or rest[0].isdigit() or rest[0] in "\"“‘'"))
              or (span_last in ".!?" and rest[0].isupper()))
    return ok_start and ok_end

def is_title(line: str, title_keys: Sequence[str]) -> bool:
    return is_title_core(line_core(line), title_keys, title_bound(title_keys))


def title_bound(title_keys: Sequence[str]) -> float:
    """The longest normalized line `is_title` can accept for these keys (equal to, inside, or at most
    1.5 times plus 10 as long as one of them)."""
    return max((max(len(t), 1.5 * len(t) + 10) for t in title_keys), default=-1.0)


def is_title_core(core: str, title_keys: Sequence[str], bound: float) -> bool:
    """`is_title` of a line whose `line_core` is `core`; `bound` is `title_bound(title_keys)`."""
    if core.isascii():
        # ASCII: normalizing only lowercases and collapses whitespace, so the key is at most as long as
        # the line; shorter than 20 and than every title key it can neither equal nor hold one.
        if len(core) < 20 and len(core) < min(map(len, title_keys), default=0):
            return False
        if core.isprintable() and len(core) - core.count(" ") > bound:
            # Printable ASCII: normalizing keeps every character but the spaces, so the key is at least
            # this long and cannot be a title; most story lines end here without being normalized.
            return False
    n = norm_title(core)
    if len(n) <= 3:
        return False
    for t in title_keys:
        if n == t or (len(n) >= 20 and n in t) or (len(t) >= 20 and t in n and len(n) <= 1.5 * len(t) + 10):
            return True
    return False

def looks_like_link_title(s: str, st: CleanSettings) -> bool:
    """A line under a "Related"/"More stories" header that is a link title, not a paragraph: short and
    not closed like a statement (a question is a common link title: "Who will win in 2020?")."""
    words = len(s.split())
    if not s.isascii():
        # Chinese and Japanese: 2.5 characters a word, as is_story_line counts them; a paragraph there is
        # one whitespace "word" and was taken for a link title under a "相关新闻" header. Thai, Lao, Khmer
        # and Burmese put spaces between phrases only: count_words counts their words (ICU's).
        if _SPACELESS.search(s) is not None:
            words = max(words, 2 * count_words(s) // 5)
        elif _PHRASE_SPACED.search(s) is not None:
            words = max(words, count_words(s))
    if is_list_item(s):
        return words <= st.list_item_max_words
    stripped = s.strip()
    return words <= st.block_item_max_words and not stripped.endswith((".", "!", ":", ";", "。", "！", "：", "；"))

def continues(line: str, nxt: str) -> bool:
    """Is `line` a hard-wrapped piece of a paragraph (ends mid-sentence, next line goes on in lowercase)?"""
    end = line.rstrip()[-1:]
    return end in ",-‐–" or (nxt[:1].islower() and not is_list_item(nxt))

_SMALL_WORDS = frozenset({"a", "an", "the", "of", "on", "in", "at", "to", "for", "and", "or", "but", "by",
                          "vs", "via", "with", "from", "as", "is", "are"})

def is_title_case(line: str) -> bool:
    """Headline-style capitalisation ("11 Fascinating Facts About Our Galaxy"), which a sentence or a
    story's bullet point ("two ripe pears, cored") does not have."""
    words = [w for w in line_core(line).split() if w[:1].isalnum()]
    if len(words) < 3:
        return False
    big = [w for w in words if w.casefold() not in _SMALL_WORDS]
    caps = sum(1 for w in big if w[0].isupper() or w[0].isdigit())
    return bool(big) and caps >= 0.8 * len(big)

# ------------------------------------------------------------------------------------------- clean
@dataclass(slots=True)  # one per input line: slots make them cheaper to build and to read
class Line:
    text: str
    start: int  # offset of the line in the input
    removed: tuple[str, str] | None = None  # (category, rule) when the whole line goes
    cuts: list[tuple[int, int, str, str]] = field(default_factory=list)  # (start, end, category, rule)
    protected: bool = False
    story: bool | None = None

    def is_story(self, settings: CleanSettings) -> bool:
        if self.story is None:
            self.story = is_story_line(self.text, settings.story_min_words)
        return self.story
