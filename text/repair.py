"""Repair: give back the text as the publisher wrote it, not as a scraper mangled it.

Two layers, applied in this order inside one pass:

1. Characters (ftfy plus a few steps ftfy leaves alone): mojibake (UTF-8 read as cp1252 / Latin-1 /
   other single-byte code pages, once or twice), HTML entities left in the text, C0/C1 control
   characters, Latin ligatures, Unicode NFC; then soft hyphens, zero-width characters and NBSP.
2. Structure: line endings, trailing white space, words hyphenated across a line break, text glued
   across a lost line break (``…the difference.Russia is…``, ``…logged inPlease refresh…``), runs of
   blank lines.

Typography is content and is never touched: curly quotes and apostrophes, dashes, ellipses, accents,
non-Latin scripts, full-width punctuation of CJK text.

Guarantees (tests/text/test_repair.py proves them, partly with hypothesis):
- never raises for any ``str``;
- idempotent: ``repair_text(repair_text(x).text).text == repair_text(x).text``;
- text that needs no repair comes back byte-identical (the identical ``str``, with empty ``repairs``).

Speed: ftfy is the slowest text step (~450-600 docs/s on 4.5 KB news texts). It only runs on the lines a
cheap character-class pre-check flags (`needs_repair` exposes the same check for whole texts), so most
lines of most articles never reach it: ~1-1.7 ms per clean 4.6 KB AEB body (vs 2.3 ms for a plain
ftfy.fix_text), ~10-15 ms per heavily corrupted one (ftfy on most lines, plus a confirming pass).

Judgement calls, written down:
- "St.Petersburg", "Mr.Smith": not split (listed abbreviations; `RepairConfig.abbreviations`).
- "wait...What" / "wait…What": not split (an ellipsis glued on both sides is style).
- A glued token the document repeats ("easyJet" twice) is a name, not a lost break.
- Line-end hyphens: see `_join_hyphenation`; wordfreq (`newsetl.text.lexicon`) turns
  the compound-vs-split-word guess from 58% to 97% right on compounds (measured, bench/repair_eval.py).

Measure: bench/repair_eval.py (corrupted AEB ground-truth bodies; figures in its docstring).
"""

from __future__ import annotations

import bisect
import contextlib
import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import ftfy
import ftfy.bad_codecs  # registers the sloppy-windows-125x codecs used below)
from ftfy import TextFixerConfig
from ftfy.chardata import CHARMAP_ENCODINGS

from newsetl.schemas.records import RepairResult
from newsetl.text.memo import RecentMemo
from newsetl.text.words import caseless_letter

# Repair kinds: the keys of RepairResult.repairs (one column per kind downstream, so keep them stable).
MOJIBAKE = "mojibake"
HTML_ENTITY = "html_entity"
CONTROL_CHAR = "control_char"
LIGATURE = "ligature"
UNICODE_NORMALIZATION = "unicode_normalization"
SOFT_HYPHEN = "soft_hyphen"
ZERO_WIDTH = "zero_width"
NBSP = "nbsp"
LINE_ENDING = "line_ending"
TRAILING_SPACE = "trailing_space"
HYPHENATION = "hyphenation"
GLUED_SENTENCE = "glued_sentence"
BLANK_LINES = "blank_lines"
LINE_INDENT = "line_indent"  # counted by dedent_lines, on the finished body (not by repair_text)
REPAIR_ERROR = "repair_error"  # a bug safety net: the input is returned unchanged, and this is counted

# Abbreviations after which a period followed directly by a capital is NOT a lost line break
# ("Mr.Smith", "St.Petersburg", "Gen.Milley"). Single letters ("U.S.", "J.R.R.", "z.B.") and words
# after another period ("Ph.D.", "a.m.") are handled by rule, not by this list. Company suffixes
# ("Inc.", "Ltd.", "Corp.") are left out on purpose: they end sentences, and no name follows them.
DEFAULT_ABBREVIATIONS: tuple[str, ...] = (
    "mr", "mrs", "ms", "mx", "dr", "st", "sr", "jr", "prof", "gen", "sen", "rep", "gov", "pres", "lt",
    "col", "capt", "cpt", "sgt", "maj", "cmdr", "adm", "rev", "hon", "fr", "messrs", "mme", "mlle",
    "co", "vs", "no", "nos", "vol", "fig", "figs", "ch", "sec",
    "art", "approx", "ca", "cf", "al", "mt", "ft", "ave", "blvd", "rd", "jan", "feb", "mar", "apr",
    "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "nr", "op", "ed", "eds", "dept", "univ",
)

# Lowercase name particles written run into the name ("deGrom", "vanDyke", "diMaggio"): a lowercase
# word glued to a capitalised one after these is a name, not a lost line break.
DEFAULT_NAME_PARTICLES: tuple[str, ...] = (
    "de", "da", "di", "du", "del", "della", "des", "van", "von", "der", "den", "le", "la", "al", "el",
    "mc", "mac", "bin", "ibn", "ben", "ten", "ter", "ap", "fitz", "dos", "das",
)


@dataclass(frozen=True)
class RepairConfig:
    """What repair does. Every field has the default the pipeline runs with.

    ftfy configuration, chosen on purpose:
    - ``uncurl_quotes=False``: curly quotes and apostrophes are the publisher's typography, and
      the boilerplate/title matching downstream compares quote-insensitively anyway.
    - ``fix_character_width=False``: ftfy would turn the full-width punctuation of Chinese and
      Japanese text ("，", "：") into ASCII, which is content, not damage.
    - ``unescape_html=True`` (not ftfy's "auto"): bodies reaching repair are text, never markup
      (HTML went through trafilatura), and "auto" switches entity decoding off for the rest of a
      document at the first literal "<" (as in "x < 5"). ftfy only decodes entities that end in
      ";", so "AT&T" or "this&not that" stay as written; double escapes ("&amp;#8217;") are
      decoded to the end because ftfy repeats its fixes until the text stops changing.
    - ``normalization="NFC"``: canonical composition only; NFKC would turn "10³" into "103".
    - ftfy's mojibake detection (fix_encoding with restore_byte_a0, replace_lossy_sequences,
      decode_inconsistent_utf8, fix_c1_controls) stays on: it is what undoes "â€™", "Ã©" and
      the twice-encoded "Ã¢â‚¬â„¢", also when only part of a line is broken.
    """

    fix_encoding: bool = True
    unescape_html: bool = True
    remove_control_chars: bool = True
    fix_latin_ligatures: bool = True
    normalization: str | None = "NFC"
    remove_soft_hyphens: bool = True
    # ZWSP, word joiner, BOM, Mongolian vowel separator always; ZWJ / ZWNJ only where no script
    # around them needs joiners (Arabic, Indic, emoji sequences keep theirs).
    remove_zero_width: bool = True
    nbsp_to_space: bool = True
    normalize_line_endings: bool = True  # \r\n, \r, U+2028, U+2029, NEL -> \n
    strip_trailing_space: bool = True
    join_hyphenation: bool = True
    split_glued_sentences: bool = True
    collapse_blank_lines: bool = True  # runs of blank lines -> one; no blank lines at the start
    abbreviations: tuple[str, ...] = DEFAULT_ABBREVIATIONS
    name_particles: tuple[str, ...] = DEFAULT_NAME_PARTICLES
    # "auto": use wordfreq's word frequencies, when installed, to tell "well-\nknown" (a compound)
    # from "infor-\nmation" (a split word); "none": the document's own vocabulary only.
    lexicon: str = "auto"
    # A second pass confirms the fixed point (ftfy output can contain an NBSP or a soft hyphen from
    # "&nbsp;" or "&shy;"). It only runs when the first pass changed something.
    max_passes: int = 3

    def ftfy_config(self) -> TextFixerConfig:
        return TextFixerConfig(
            unescape_html=self.unescape_html,
            fix_encoding=self.fix_encoding,
            fix_c1_controls=self.fix_encoding,
            fix_latin_ligatures=self.fix_latin_ligatures,
            fix_character_width=False,
            uncurl_quotes=False,
            fix_line_breaks=self.normalize_line_endings,
            remove_control_chars=self.remove_control_chars,
            normalization=self.normalization,  # type: ignore[arg-type]
            explain=True,
        )


# ----------------------------------------------------------------------------- pre-check
def _mojibake_pair_class() -> str:
    """A regex matching a UTF-8 lead byte followed by a continuation byte, as ftfy's code pages show them.

    UTF-8 read through a single-byte code page always leaves such a pair (e.g. "Ã©", "â€", "Ð¾").
    The characters come from ftfy's own list of code pages, so the pre-check is never blind to an
    encoding ftfy would fix. One pair of classes (a union over the code pages) instead of one
    alternative per code page: a few more false alarms (they only cost an ftfy call), 5x faster.
    """
    leads: set[str] = set()
    conts: set[str] = set()
    for encoding in CHARMAP_ENCODINGS:
        leads |= set(bytes(range(0xC2, 0xF5)).decode(encoding, errors="ignore"))
        conts |= set(bytes(range(0x80, 0xC0)).decode(encoding, errors="ignore"))
    lead_class = re.escape("".join(sorted(leads)))
    cont_class = re.escape("".join(sorted(conts)))
    # restore_byte_a0: "à" and NBSP whose 0xA0 byte became a plain space ("voilÃ le", "Â ").
    return f"[{lead_class}][{cont_class}]|[\u00c3\u00c2] "


# Characters that some step acts on. Anything else (ASCII, accents, curly quotes, other scripts) is
# left alone, so a line without these never pays for ftfy.
_INVISIBLE_CHARS = "\u00ad\u200b\u200c\u200d\u2060\ufeff\u180e"
_FTFY_SUSPECT_RE = re.compile(
    "[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\x1b\r\u2028\u2029\ufb00-\ufb06\ud800-\udfff\ufff9-\ufffc\u206a-\u206f]"
    r"|&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});"
    "|" + _mojibake_pair_class()
)
_MOJIBAKE_PAIR_RE = re.compile(_mojibake_pair_class())
# Every BMP letter that str.isupper()/islower() call upper/lower case: the glue rules work in any
# cased script ("входаПожалуйста"), so the pre-check must too.
_UPPER = "".join(chr(c) for c in range(0x10000) if chr(c).isupper() and chr(c).isalpha())
_LOWER = "".join(chr(c) for c in range(0x10000) if chr(c).islower() and chr(c).isalpha())


def _class_of(predicate: Callable[[str], bool]) -> str:
    """A regex character class (as ranges) of the BMP characters for which `predicate` holds."""
    ranges: list[str] = []
    start = None
    for cp in range(0x10001):
        ok = cp < 0x10000 and predicate(chr(cp))
        if ok and start is None:
            start = cp
        elif not ok and start is not None:
            first, last = re.escape(chr(start)), re.escape(chr(cp - 1))
            ranges.append(first if start == cp - 1 else f"{first}-{last}")
            start = None
    return "[" + "".join(ranges) + "]"


_CASELESS_CLASS = _class_of(caseless_letter)
_UPPER_CLASS = f"[{re.escape(_UPPER)}]"
_LOWER_CLASS = f"[{re.escape(_LOWER)}]"
_HSPACE = " \t\u3000\u2000-\u200a\u202f\u205f"
_CHEAP_SUSPECT_RE = re.compile(
    f"[{_INVISIBLE_CHARS}\u00a0\r\u2028\u2029\u0085]|[{_HSPACE}](?:\n|\\Z)|\n\n\n|\\A\n|\n\n\\Z|-\n"
    f"|[.!?:][\"”’»)\\]]*[“\"‘«(]?{_UPPER_CLASS}|{_LOWER_CLASS}{_UPPER_CLASS}|{_UPPER_CLASS}{{2}}{_LOWER_CLASS}"
    f"|{_CASELESS_CLASS}[.!?]{_CASELESS_CLASS}|[\"”»]{_UPPER_CLASS}"
    "|[^\\W\\d_][.!?][\"”’»)\\]]*(?:[—–] |\\d|\\[)| [.!?]"
)


def needs_repair(text: str) -> bool:
    """Cheap pre-check: False means `repair_text` returns `text` unchanged (so it can be skipped).

    True only means a repair *may* apply (e.g. "café’s" looks like a mojibake pair to the check but
    ftfy leaves it alone). Costs a few regex scans, a small fraction of ftfy's time.
    """
    if not text:
        return False
    return bool(
        _CHEAP_SUSPECT_RE.search(text)
        or _FTFY_SUSPECT_RE.search(text)
        or not unicodedata.is_normalized("NFC", text)
    )


# ----------------------------------------------------------------------------- character layer
_ENTITY_RE = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_LINE_BREAK_RE = re.compile("\r\n|\r|\u2028|\u2029")  # NEL (U+0085) is left to ftfy: in cp1252 it is "…"
_ZW_ALWAYS = "\u200b\u2060\ufeff\u180e"
_JOINERS = "\u200c\u200d"


def _needs_joiners(ch: str) -> bool:
    """Scripts (and emoji sequences) in which ZWJ / ZWNJ change how text renders or reads."""
    cp = ord(ch)
    return (
        0x0600 <= cp <= 0x08FF  # Arabic, Syriac, Thaana, NKo, Samaritan ... (Persian uses ZWNJ)
        or 0x0900 <= cp <= 0x0DFF  # Indic scripts
        or 0x0F00 <= cp <= 0x109F  # Tibetan, Myanmar
        or 0x1780 <= cp <= 0x18AF  # Khmer, Mongolian
        or 0xFB50 <= cp <= 0xFEFC  # Arabic presentation forms
        or 0x2600 <= cp <= 0x27BF  # symbols used in emoji ZWJ sequences
        or cp == 0xFE0F
        or cp >= 0x1F000  # emoji
    )


def _remove_invisible(text: str, config: RepairConfig, counts: Counter[str]) -> str:
    if config.remove_soft_hyphens and "\u00ad" in text:
        # A soft hyphen before a line break is a discretionary break that was taken: join the word.
        joined = text.count("\u00ad\n")
        text = text.replace("\u00ad\n", "")
        counts[HYPHENATION] += joined
        n = text.count("\u00ad")
        if n:
            text = text.replace("\u00ad", "")
            counts[SOFT_HYPHEN] += n
    if config.remove_zero_width:
        n = sum(text.count(c) for c in _ZW_ALWAYS)
        if n:
            text = text.translate({ord(c): None for c in _ZW_ALWAYS})
            counts[ZERO_WIDTH] += n
        if "\u200c" in text or "\u200d" in text:
            out: list[str] = []
            removed = 0
            for i, ch in enumerate(text):
                if ch in _JOINERS:
                    prev = text[i - 1] if i else " "
                    nxt = text[i + 1] if i + 1 < len(text) else " "
                    if not (_needs_joiners(prev) or _needs_joiners(nxt)):
                        removed += 1
                        continue
                out.append(ch)
            if removed:
                text = "".join(out)
                counts[ZERO_WIDTH] += removed
    return text


def _count_mojibake(before: str, after: str) -> int:
    """How many mojibake sequences were undone (one broken "â€™" is one repair, not three characters)."""
    return max(1, len(_MOJIBAKE_PAIR_RE.findall(before)) - len(_MOJIBAKE_PAIR_RE.findall(after)))


@lru_cache(maxsize=8)
def _ftfy_config(config: RepairConfig, unescape_html: bool) -> TextFixerConfig:
    return config.ftfy_config()._replace(unescape_html=unescape_html and config.unescape_html)


# A C1 control (cp1252 punctuation read as Latin-1, e.g. "\x92" for "’") that was then UTF-8 encoded
# and read as cp1252 again shows as "Â’". ftfy does not score the pair as bad when nothing else on
# the line is broken; "Â" before cp1252 punctuation never occurs in real text.
_CP1252_C1_CHARS = bytes(range(0x80, 0xA0)).decode("windows-1252", errors="ignore")
_C1_AS_UTF8_RE = re.compile(f"\u00c2([{re.escape(_CP1252_C1_CHARS)}])")
# Sequences that are UTF-8 beyond doubt once read as cp1252 / Latin-1, which ftfy's badness score
# sometimes lets pass when a line has only one or two of them ("60,000â‚©" for "60,000₩"): "â" (E2,
# the lead byte of punctuation, currency and symbols) or "ï" (EF) before two continuation bytes, and
# "Ã" / "Â" before one. No language writes these letters before such characters.
_CP1252_CONT = bytes(range(0x80, 0xC0)).decode("sloppy-windows-1252")
_LATIN1_CONT = bytes(range(0x80, 0xC0)).decode("latin-1")
_CONT_CLASS = f"[{re.escape(''.join(sorted(set(_CP1252_CONT + _LATIN1_CONT))))}]"
_SURE_UTF8_RE = re.compile(f"[\u00e2\u00ef]{_CONT_CLASS}{{2}}|[\u00c2\u00c3]{_CONT_CLASS}")


def _decode_sure_utf8(match: re.Match[str]) -> str:
    seq = match.group(0)
    for encoding in ("sloppy-windows-1252", "latin-1"):
        try:
            return seq.encode(encoding).decode("utf-8")
        except UnicodeError:
            continue
    return seq


# The lines ftfy is asked about recur: the copies of a story (re-scrapes, syndication) share nearly all
# their lines, and the confirming pass of repair_text asks again about each suspect line the first pass
# left. On the 20k re-scrape corpus, the first 8,000 texts asked about 701 distinct lines; remembering
# each answer (the line, and the counts it adds) made repair_text 18% cheaper on them (11.97 -> 9.75
# CPU-s), same output. A RecentMemo (text/memo.py) of about twice _FTFY_MEMO_CHARS characters of lines at
# most: a bound in lines let 4,096 one-line page dumps (up to 56,000 characters each) be held.
_FTFY_MEMO_CHARS = 2_000_000
_ftfy_memo: RecentMemo[str, tuple[RepairConfig, str, tuple[tuple[str, int], ...]]] = RecentMemo(_FTFY_MEMO_CHARS)


def _ftfy_line(line: str, config: RepairConfig, counts: Counter[str]) -> str:
    """`_fix_line_characters` of `line`, remembered per line (for the same config)."""
    hit = _ftfy_memo.get(line)
    # The config is compared last and by identity first: every text of a run shares one object, and
    # a frozen dataclass's equality walks every field (the abbreviation list included).
    if hit is None or not (hit[0] is config or hit[0] == config):
        added: Counter[str] = Counter()
        fixed = _fix_line_characters(line, config, added)
        hit = (config, fixed, tuple(added.items()))
        _ftfy_memo.put(line, hit, len(line))
    for kind, n in hit[2]:
        counts[kind] += n
    return hit[1]


def _fix_line_characters(line: str, config: RepairConfig, counts: Counter[str]) -> str:
    """One line through ftfy (and the lost-byte fixes it needs around it); adds what it did to `counts`."""
    entities = len(_ENTITY_RE.findall(line)) if config.unescape_html else 0
    controls = sum(1 for c in line if (c < " " and c not in "\t\n\r\f") or "\x7f" <= c <= "\x9f")
    steps: list[tuple[str, str]] = []
    fixed = line
    if entities and config.fix_encoding:
        # Encoding first, entities after: the entities of an escaped page are ASCII and survive the
        # mis-decoding, but ftfy decodes them first, and a real "“" amid mojibake makes the line
        # undecodable as a whole (only fragments then get fixed).
        fixed, explained = ftfy.fix_and_explain(fixed, _ftfy_config(config, False))
        steps += [(s.action, s.parameter) for s in explained or ()]
    fixed, explained = ftfy.fix_and_explain(fixed, _ftfy_config(config, True))
    steps += [(s.action, s.parameter) for s in explained or ()]
    c1_pairs = 0
    if config.fix_encoding and any(lead in fixed for lead in "\u00c2\u00c3\u00e2\u00ef"):
        fixed, c1_pairs = _C1_AS_UTF8_RE.subn(r"\1", fixed)
        before = fixed
        fixed = _SURE_UTF8_RE.sub(_decode_sure_utf8, fixed)
        if fixed != before:
            c1_pairs += 1
            # What the fragments decode to may be C1 controls or NBSP ftfy would fix: one more round.
            fixed, explained = ftfy.fix_and_explain(fixed, _ftfy_config(config, True))
            steps += [(s.action, s.parameter) for s in explained or ()]
    if fixed == line:
        return fixed
    names = {p for _, p in steps}
    # UTF-8 decoded from the wrong code page is mojibake; Latin-1 re-read as windows-1252 (ftfy's
    # "encode latin-1, decode windows-1252" plan) is the C1-control repair.
    utf8 = any(a == "decode" and p.startswith("utf-8") for a, p in steps)
    if c1_pairs or utf8 or "decode_inconsistent_utf8" in names:
        counts[MOJIBAKE] += max(c1_pairs, _count_mojibake(line, fixed))
    elif names & {"fix_c1_controls", "remove_control_chars", "remove_terminal_escapes", "windows-1252"}:
        counts[CONTROL_CHAR] += max(1, controls)
    if "unescape_html" in names:
        counts[HTML_ENTITY] += max(1, entities)
    if "fix_latin_ligatures" in names:
        counts[LIGATURE] += 1
    if "fix_line_breaks" in names:
        counts[LINE_ENDING] += 1
    if any(a == "normalize" for a, _ in steps) and not names & {"unescape_html", "decode", "encode"}:
        counts[UNICODE_NORMALIZATION] += 1
    return fixed


# UTF-8 decoded as cp1252 by a strict decoder loses the five bytes cp1252 leaves undefined (0x81, 0x8D,
# 0x8F, 0x90, 0x9D): they become U+FFFD or vanish. The right double quote is E2 80 9D, so every "”" of
# such a page shows as "â€�" or a bare "â€", and ftfy, unable to decode the line as a whole, reads
# "â€ " as the dagger "†" (E2 80 A0 with its NBSP lost). "â€" followed by no continuation byte occurs in
# no language; putting the lost byte back as the C1 control a browser would have kept (0x9D, the only
# undefined byte that completes a common character after E2 80) lets ftfy decode the line whole.
_LOST_AFTER_E280_RE = re.compile(f"\u00e2\u20ac(?:\ufffd|(?!{_CONT_CLASS}))")
# After a two-byte lead ("Ã", "Ä", "Å" ...) the lost byte makes one of five letters ("Ã�" is Á, Í, Ï, Ð
# or Ý): the one that makes the most frequent word (wordfreq) is put back, only with U+FFFD as the proof.
_LOST_AFTER_LEAD_RE = re.compile("([\u00c2-\u00df])\ufffd")
_UNDEFINED_CP1252 = (0x81, 0x8D, 0x8F, 0x90, 0x9D)


# The same loss inside three- and four-byte sequences (Hangul, CJK, emoji, "\u2060"): the lead byte
# says how many continuation bytes follow; a U+FFFD among them, or (when the strict decoder dropped it)
# one too few before the next lead or a plain character, is a lost byte. Each of the five undefined
# bytes gives a different character; the one a reader is likeliest to have written wins: a character
# of the neighbours' script weighted by its frequency in wordfreq's word list of that script's
# language, the format characters text carries (variation selector 16, word joiner; the zero-width
# joiner only between emoji), then letters before marks, punctuation and symbols.
_LEAD_CONTS = {**{b: 1 for b in range(0xC2, 0xE0)}, **{b: 2 for b in range(0xE0, 0xF0)},
               **{b: 3 for b in range(0xF0, 0xF5)}}
_CP_BYTE = {bytes([b]).decode("sloppy-windows-1252"): b for b in range(0x80, 0x100)}
_CP_BYTE.update({bytes([b]).decode("latin-1"): b for b in range(0x80, 0xA0)})  # C1 controls kept by WHATWG
_SCRIPT_LANGUAGE = {"HANGUL": "ko", "CJK": "zh", "HIRAGANA": "ja", "KATAKANA": "ja", "CYRILLIC": "ru",
                    "GREEK": "el", "ARABIC": "ar", "HEBREW": "he", "THAI": "th", "DEVANAGARI": "hi"}
_FORMAT_PRIOR = {"\ufe0f": 3.0, "\u2060": 2.0, "\u201d": 3.0, "\u2019": 3.0, "\u201c": 3.0}


@lru_cache(maxsize=8)
def _char_prior(lang: str) -> tuple[dict[str, float], dict[str, float]]:
    """Character and in-word character-pair frequencies of a language, from wordfreq's word list
    (empty without wordfreq)."""
    try:
        from newsetl.text.lexicon import frequency_items
    except ImportError:
        return {}, {}
    # float sums (a Counter's values are typed int)
    chars: defaultdict[str, float] = defaultdict(float)
    pairs: defaultdict[str, float] = defaultdict(float)
    # The list read once, not wordfreq's get_frequency_dict: that dict stays cached for the process.
    for word, freq in frequency_items(lang):
        for k, ch in enumerate(word):
            chars[ch] += freq
            if k:
                pairs[word[k - 1 : k + 1]] += freq
    return dict(chars), dict(pairs)


def _is_emoji(ch: str) -> bool:
    return ch == "\ufe0f" or (unicodedata.category(ch) == "So" and ord(ch) >= 0x2190)


def _char_score(ch: str, before: str, after: str) -> float:
    """How likely a reader wrote `ch` between `before` and `after` (higher is likelier; < 0: never)."""
    cat = unicodedata.category(ch)
    if cat in {"Cn", "Co", "Cs", "Cc"}:
        return -1.0
    if ch == "\u200d":
        return 4.0 if before and _is_emoji(before) else 0.2
    if ch in _FORMAT_PRIOR:
        return _FORMAT_PRIOR[ch]
    name = unicodedata.name(ch, "")
    lang = next((code for script, code in _SCRIPT_LANGUAGE.items() if name.startswith(script)), None)
    if lang:
        # A character of a script: its frequency and that of the pairs it makes with its neighbours
        # (log scale, mapped into 1..2 so that it beats any symbol).
        chars, pairs = _char_prior(lang)
        logp = (math.log10(chars.get(ch, 0.0) + 1e-7) + math.log10(pairs.get(before + ch, 0.0) + 1e-8)
                + math.log10(pairs.get(ch + after, 0.0) + 1e-8))
        return 1.0 + max(0.0, min(1.0, (logp + 23.0) / 23.0))
    return {"L": 0.8, "M": 0.1, "N": 0.5, "P": 0.3, "S": 0.25, "Z": 0.2}.get(cat[0], 0.1)


def _decode_candidates(lead: int, conts: list[int | None]) -> list[tuple[str, list[int]]]:
    """Every way to fill the lost bytes (None) with an undefined byte: (character, the bytes)."""
    out: list[tuple[str, list[int]]] = []
    fills: list[list[int]] = [[]]
    for b in conts:
        fills = [[*f, c] for f in fills for c in ((b,) if b is not None else _UNDEFINED_CP1252)]
    for fill in fills:
        try:
            ch = bytes([lead, *fill]).decode("utf-8")
        except UnicodeDecodeError:
            continue
        if len(ch) == 1:
            out.append((ch, fill))
    return out


# A whole three- or four-byte UTF-8 sequence read as cp1252 ("ì—˜", "ðŸŒˆ", "â€œ"): mojibake evidence.
_LONG_SEQ_RE = re.compile(f"[\u00e0-\u00ef]{_CONT_CLASS}{{2}}|[\u00f0-\u00f4]{_CONT_CLASS}{{3}}")


def _decodes(mojibake: str) -> bool:
    try:
        raw = bytes(_CP_BYTE[c] for c in mojibake)
        return len(raw.decode("utf-8")) == 1
    except (KeyError, UnicodeDecodeError):
        return False


@dataclass
class _Seg:
    raw: str  # the characters of the line this segment covers
    char: str  # what it reads as (a decoded sequence, or the character itself); "" when unknown
    options: list[tuple[str, list[int | None], list[int]]]  # a sequence with a lost byte: (char, shape, fill)


def _restore_lost_in_long_sequences(line: str, dropped_ok: bool) -> str:
    """One line's three- and four-byte sequences with a lost byte put back as its C1 control.
    `dropped_ok`: the text is mojibake elsewhere, so a sequence one byte short counts as a loss."""
    segs: list[_Seg] = []
    i = 0
    while i < len(line):
        lead = _CP_BYTE.get(line[i])
        need = _LEAD_CONTS.get(lead or 0, 0)
        j = i + 1
        conts: list[int | None] = []
        while need and j < len(line) and len(conts) < need:
            b = _CP_BYTE.get(line[j])
            if line[j] == "\ufffd":
                conts.append(None)
            elif b is not None and 0x80 <= b < 0xC0:
                conts.append(b)
            else:
                break
            j += 1
        shapes: list[list[int | None]] = []
        if need >= 2 and len(conts) == need and None in conts and conts.count(None) <= 2:
            shapes = [conts]
        elif need >= 2 and len(conts) == need - 1 and None not in conts and dropped_ok:
            shapes = [[*conts[:k], None, *conts[k:]] for k in range(need)]
        options = [(ch, shape, fill) for shape in shapes for ch, fill in _decode_candidates(lead or 0, shape)]
        if options:
            segs.append(_Seg(line[i:j], "", options))
            i = j
        elif need and len(conts) == need and None not in conts:
            try:
                char = bytes([lead or 0, *[c for c in conts if c is not None]]).decode("utf-8")
            except UnicodeDecodeError:
                char = ""
            segs.append(_Seg(line[i:j], char, []))
            i = j
        else:
            segs.append(_Seg(line[i], line[i], []))
            i += 1
    if not any(seg.options for seg in segs):
        return line
    # Two passes: each loss first by itself and its decoded neighbours, then again with the neighbours'
    # own best guesses (two losses side by side in "공감").
    for _ in range(2):
        for k, seg in enumerate(segs):
            if not seg.options:
                continue
            before = segs[k - 1].char if k else ""
            after = segs[k + 1].char if k + 1 < len(segs) else ""
            scored = [(_char_score(ch, before, after), ch) for ch, _, _ in seg.options]
            best_score, best_char = max(scored, key=lambda t: t[0])
            seg.char = best_char if best_score >= 0 else ""
    out: list[str] = []
    for seg in segs:
        choice = next((o for o in seg.options if o[0] == seg.char), None) if seg.options and seg.char else None
        if choice is None:
            out.append(seg.raw)
            continue
        _, shape, fill = choice
        known = iter(c for c in seg.raw[1:] if c != "\ufffd")
        out.append(seg.raw[0])
        for slot, byte in zip(shape, fill, strict=True):
            # The C1 control a browser would have kept; ftfy then decodes the sequence with the line.
            out.append(bytes([byte]).decode("latin-1") if slot is None else next(known))
    return "".join(out)


def _restore_lost_bytes(text: str) -> str:
    if "\ufffd" in text or _LONG_SEQ_RE.search(text):
        # A document is decoded by one decoder: two sure mojibake sequences anywhere in it make a
        # sequence one byte short a loss, not a rare letter pair.
        dropped_ok = sum(1 for m in _LONG_SEQ_RE.finditer(text) if _decodes(m.group(0))) >= 2
        lines = text.split("\n")
        for n, line in enumerate(lines):
            if ("\ufffd" in line or dropped_ok) and any(0xE0 <= _CP_BYTE.get(c, 0) < 0xF5 for c in line):
                lines[n] = _restore_lost_in_long_sequences(line, dropped_ok)
        text = "\n".join(lines)
    if "\u00e2\u20ac" in text:
        # Counted as mojibake when ftfy decodes the line (the restored byte alone is not a repair).
        text = _LOST_AFTER_E280_RE.sub("\u00e2\u20ac\x9d", text)
    if "\ufffd" in text and _LOST_AFTER_LEAD_RE.search(text):
        zipf = _wordfreq_zipf()

        def pick(m: re.Match[str]) -> str:
            lead = m.group(1).encode("sloppy-windows-1252", errors="ignore")
            if len(lead) != 1:
                return m.group(0)
            start = m.start()
            while start > 0 and text[start - 1].isalpha():
                start -= 1
            end = m.end()
            while end < len(text) and (text[end].isalpha() or text[end] in "\u20ac\u00a9\u00ae"):
                end += 1
            best, best_score = m.group(0), -1.0
            for byte in _UNDEFINED_CP1252:
                try:
                    char = (lead + bytes([byte])).decode("utf-8")
                except UnicodeDecodeError:
                    continue
                word = (text[start:m.start()] + char + text[m.end():end]).casefold()
                with contextlib.suppress(UnicodeError):  # the rest of the word may be mojibake too
                    word = word.encode("sloppy-windows-1252").decode("utf-8")
                score = zipf(word, "en") if zipf else 0.0
                if score > best_score:
                    best, best_score = m.group(1) + bytes([byte]).decode("latin-1"), score
            return best

        text = _LOST_AFTER_LEAD_RE.sub(pick, text)
    return text


def _suspect_lines(text: str) -> list[int]:
    """Indices of the lines that ftfy may change: a `_FTFY_SUSPECT_RE` hit, or not in NFC.

    One search per suspect line, resumed after it, instead of one per line: no hit spans a line
    break, and NFC is decided per line (a line break composes with nothing), so a text in NFC has
    no line out of it."""
    out: list[int] = []
    pos = line = 0  # `pos` starts line number `line`
    while (m := _FTFY_SUSPECT_RE.search(text, pos)) is not None:
        line += text.count("\n", pos, m.start())
        out.append(line)
        pos = text.find("\n", m.end()) + 1
        if pos == 0:
            break
        line += 1  # no hit holds a line break: the one at pos - 1 ends the hit's line
    if not unicodedata.is_normalized("NFC", text):
        flagged = set(out)
        out.extend(i for i, each in enumerate(text.split("\n"))
                   if i not in flagged and not unicodedata.is_normalized("NFC", each))
        out.sort()
    return out


def _repair_characters(text: str, config: RepairConfig, counts: Counter[str]) -> str:
    if config.normalize_line_endings and ("\r" in text or "\u2028" in text or "\u2029" in text):
        text, n = _LINE_BREAK_RE.subn("\n", text)
        counts[LINE_ENDING] += n
    if config.fix_encoding and ("\u00e2\u20ac" in text or "\ufffd" in text or _LONG_SEQ_RE.search(text)):
        text = _restore_lost_bytes(text)
    # ftfy before removing invisible characters: a soft hyphen or NBSP can be half of a mojibake pair
    # ("Ã\u00ad" is "í", "Â\u00a0" is an NBSP). A ZWSP inserted *inside* a mojibake sequence is
    # removed below, and the confirming second pass of repair_text then fixes what it hid.
    suspect = _suspect_lines(text)
    if suspect:
        lines = text.split("\n")
        for i in suspect:
            lines[i] = _ftfy_line(lines[i], config, counts)
        text = "\n".join(lines)
    text = _remove_invisible(text, config, counts)
    if config.nbsp_to_space and "\u00a0" in text:
        counts[NBSP] += text.count("\u00a0")
        text = text.replace("\u00a0", " ")
    return text


# ----------------------------------------------------------------------------- structure layer
_TRAILING_RE = re.compile(f"[{_HSPACE}]+$", re.MULTILINE)
# The two letter-run patterns start only where a run starts and never give letters back (possessive
# `++`): unanchored, the engine retried every position inside each word and shortened each run before
# failing, O(length^2) per word: a scan of a 5 KB news text took 0.9-1.1 ms, now ~0.4 ms; 4.3 ms, now
# 0.36 ms, on German long compounds. Same matches: a run that cannot start a match at its first letter
# cannot at a later one (it ends at the same character); tests/text/test_repair.py compares the two forms.
_HYPHEN_BREAK_RE = re.compile(r"(?<![^\W\d_])([^\W\d_]++)-\n([^\W\d_]+)")
_WORD_RE = re.compile(r"[^\W\d_]+")
_HYPHENATED_RE = re.compile(r"(?<![^\W\d_])[^\W\d_]++(?:-[^\W\d_]++)+")


Zipf = Callable[[str], float]


@lru_cache(maxsize=1)
def _wordfreq_zipf() -> Callable[[str, str], float] | None:
    """wordfreq's zipf_frequency when wordfreq is installed, else None. Answered from compact tables
    (`newsetl.text.lexicon`: the same values; a process grows by 13-24 MB a language instead of 34-70)."""
    try:
        from newsetl.text.lexicon import zipf_frequency
    except ImportError:
        return None
    return zipf_frequency


def _lexicon_for(text: str, config: RepairConfig) -> Zipf | None:
    """Word frequencies (Zipf scale, 0 = unknown) in the text's language, or None without a lexicon."""
    if config.lexicon == "none":
        return None
    zipf = _wordfreq_zipf()
    if zipf is None:
        return None
    import py3langid

    lang = str(py3langid.classify(text[:2000])[0])
    if lang in ("ja", "zh", "ko", "th"):  # segmenters these need are extra packages; no hyphenation there anyway
        return None

    def freq(word: str) -> float:
        try:
            return float(zipf(word, lang))
        except Exception:  # an unsupported language or a tokenizer quirk: treat the word as unknown
            return 0.0

    return freq


def _join_hyphenation(text: str, config: RepairConfig, counts: Counter[str]) -> str:
    """Join ``infor-\\nmation`` into ``information``, and ``well-\\nknown`` into ``well-known``.

    Only a hyphen glued to a letter, at the end of a line, followed by a letter is taken for a
    line-break hyphenation (a dash has a space before it; a list item starts with "- "). Before a
    capital the hyphen stays ("Anglo-American"). Otherwise, in order: the hyphenated form used
    elsewhere in the document keeps the hyphen; the joined form used elsewhere drops it; with a
    lexicon (wordfreq, optional), a joined form that is a word drops it and two halves that are
    words keep it; last, the document's own vocabulary decides (see below), and a word split in
    the middle - by far the common case - is joined.
    """
    if "-\n" not in text or not _HYPHEN_BREAK_RE.search(text):
        return text
    lowered = text.lower()
    words = Counter(_WORD_RE.findall(lowered))
    compounds = Counter(_HYPHENATED_RE.findall(lowered))
    lexicon: list[Zipf | None] = []  # built on first need: language detection costs ~1 ms

    def join(m: re.Match[str]) -> str:
        left, right = m.group(1), m.group(2)
        counts[HYPHENATION] += 1
        if not right[0].islower():  # "Anglo-\nAmerican", "Al-\nAlbani": a compound, the hyphen stays
            return f"{left}-{right}"
        lo_left, lo_right = left.lower(), right.lower()
        if compounds[f"{lo_left}-{lo_right}"] >= 1:
            return f"{left}-{right}"
        if words[lo_left + lo_right] >= 1:
            return left + right
        if not lexicon:
            lexicon.append(_lexicon_for(text, config))
        zipf = lexicon[0]
        if zipf is not None:
            # Measured on compounds and mid-word splits made from the AEB bodies: keeps 97% of
            # compounds broken at their hyphen, re-hyphenates 1.1% of split words.
            z_left, z_right, z_joined = zipf(lo_left), zipf(lo_right), zipf(lo_left + lo_right)
            if z_joined >= 1.5 and z_joined >= min(z_left, z_right) - 1.0:
                return left + right
            if z_left >= 2.5 and z_right >= 2.5:
                return f"{left}-{right}"
        # Each half occurs once at the break itself; a second use elsewhere makes it a word. Both
        # halves being words, or one long half (4+ letters; "use", "her", "ing" are too often the tail
        # of a split word), means a compound. Measured on the AEB bodies: keeps 58% of compounds
        # broken at their own hyphen while re-hyphenating 1% of words split mid-word.
        left_word, right_word = words[lo_left] >= 2, words[lo_right] >= 2
        if (left_word and right_word) or (left_word and len(left) >= 4) or (right_word and len(right) >= 4):
            return f"{left}-{right}"
        return left + right

    return _HYPHEN_BREAK_RE.sub(join, text)


_CLOSERS = "\"”’»)]"
_OPENERS = "\"“‘«("
# A sentence end glued to the next sentence: "difference.Russia", "do.”Kill", "lie”.Then", "said:“We".
# Both start with a leading lookahead on the characters a match can begin with: Python's re then
# rejects every other position at once instead of trying both alternatives (and the look-behind)
# there, 3x faster over a news body, same matches (bench/article_equivalence.py).
_GLUE_PUNCT_RE = re.compile(
    r"(?=[.!?:\"”»])(?:[.!?:]+[\"”’»)\]]*|(?<=[^\W\d_])[\"”»]+)(?=[\"“‘«(]?[^\W_]|[—–] |\[ ?[^\W\d_])"
)
_URLISH_RE = re.compile(r"://|www\.|/|\\|_|=|\.(?:com|org|net|gov|edu|co|io)\b", re.IGNORECASE)
# A lowercase word run into a capitalised one: "inPlease", "repliesComments".
_CAMEL_HINT_RE = re.compile(f"{_LOWER_CLASS}{_UPPER_CLASS}")
_CAPS_GLUE_RE = re.compile(
    f"(?={_UPPER_CLASS})(?<![^\\W\\d_])({_UPPER_CLASS}{{4,}})({_UPPER_CLASS}{_LOWER_CLASS}{{3,}})(?![^\\W\\d_])"
)
_WORD_JOINERS = "0123456789_'’-"  # a letter run touching these is part of a larger token (e.g. "x2Go")


def _token_around(text: str, start: int, end: int) -> str:
    left = start
    while left > 0 and not text[left - 1].isspace():
        left -= 1
    right = end
    while right < len(text) and not text[right].isspace():
        right += 1
    return text[left:right]


def _standalone(text: str, start: int, stop: int) -> bool:
    """The letter run text[start:stop] is a whole token, not part of "x2Go" or "Jean-Luc"."""
    return not (
        (start > 0 and text[start - 1] in _WORD_JOINERS) or (stop < len(text) and text[stop] in _WORD_JOINERS)
    )


def _repeated(text: str, token: str) -> bool:
    """A glued token the document repeats is a name ("easyJet"): a lost line break happens once."""
    if text.count(token) < 2:  # the token itself is one; a second whole-word use needs a second copy
        return False
    return len(re.findall(rf"(?<![\w'’-]){re.escape(token)}(?![\w'’-])", text)) > 1


def _left_word(text: str, start: int) -> tuple[str, int]:
    """The word before a sentence end at `start` (closing quotes/brackets may sit between) and its start."""
    j = start
    while j > 0 and text[j - 1] in _CLOSERS:
        j -= 1
    if j > 0 and text[j - 1] in "%+!?":  # "lost 0.66%.Long-dated", "Disney+.The", "classes!).Which"
        j -= 1
    k = j
    while k > 0 and text[k - 1].isalnum():
        k -= 1
    return text[k:j], k


def _quote_open_before(text: str, start: int) -> bool:
    """Is a double quote open at `start` on its line? Curly quotes say which they are, a straight one
    toggles: the state is the last curly quote's, toggled by each straight quote after it (rfind/count,
    not a walk over the characters: a paragraph is one line)."""
    line_start = text.rfind("\n", 0, start) + 1
    opening, closing = text.rfind("“", line_start, start), text.rfind("”", line_start, start)
    last = max(opening, closing)
    open_quotes = opening > closing
    return open_quotes != bool(text.count('"', last + 1 if last >= 0 else line_start, start) % 2)


def _opening_quote_at(text: str, start: int, closers: str) -> int | None:
    """Offset in `closers` of the first straight double quote that opens the next sentence.

    A straight quote closes or opens: counting the straight quotes earlier on the line tells which
    ('…again."I like' -> the quote opens; 'the way."" I' -> the first closes, the second opens).
    """
    open_quotes = _quote_open_before(text, start)
    for i, ch in enumerate(closers):
        if ch == '"':
            if not open_quotes:
                return i
            open_quotes = False
    return None


def _starts_sentence(text: str, pos: int, word: str, punct: str, opened: bool) -> bool:
    """Does a new sentence (or list item, or attribution) start at `pos`, right after `word` + `punct`?"""
    first = text[pos]
    nxt = text[pos + 1] if pos + 1 < len(text) else " "
    after = text[pos + 2] if pos + 2 < len(text) else " "
    ends_lower = word[-2:].isalpha() and word[-2:].islower()
    if first in "—–":  # an attribution or dialogue dash: 'very fun.”– Tur**', 'souls.— The Senate'
        return bool(punct) and nxt == " " and after.isupper()
    if first.isdigit():  # a numbered item or heading: 'the door.3 Hospitalized', 'warned.2. Never'
        item = re.match(r"\d{1,3}(?:[.)] | )[\"“‘]?(\w)", text[pos : pos + 8])
        return bool(punct and item and item.group(1).isupper() and ends_lower and word.isalpha())
    if not first.isalpha():
        return False
    if caseless_letter(first):
        # Scripts without capitals: a period between two words of such a script, without a space,
        # is a lost break ("했다.하지만").
        return caseless_letter(word[-1]) and word.isalpha() and punct in (".", "!", "?")
    return first.isupper() and (
        nxt.islower()
        or nxt in "'’"
        or (first in "IA" and not nxt.isalpha())
        or (nxt == " " and ends_lower)  # a one-letter word: "precedente.E chi siamo"
        or nxt == ":"  # "priceless.Q: What"
        or (nxt == "." and after.isupper() and word.islower())  # "higher.U.S. President"
        or opened
        or punct in ("?", "!")  # no abbreviation ends in "?" or "!": "CEO?A: I think"
        or (nxt.isupper() and punct == "." and (ends_lower or word.isdigit()))  # "show.TOYOTA", "1965.FRANCE"
    )


def _sentence_glue_cut(text: str, m: re.Match[str], abbreviations: frozenset[str]) -> int | None:
    """Where to break a sentence end glued to the next sentence, or None when it is not one."""
    start, end = m.span()
    punct = m.group(0).rstrip(_CLOSERS)
    closers = m.group(0)[len(punct) :]
    spaced = start > 1 and text[start - 1] == " "  # "on Tuesday .The details", "the line ...Taylor"
    if (".." in punct and not spaced) or (start > 0 and text[start - 1] in ".…"):
        return None  # "wait...What": an ellipsis glued on both sides is style, not a lost break
    if ":" in punct and punct != ":":
        return None
    cut = end
    opened = text[end] in "“‘«["  # an unambiguous opening quote (or "[ The Verge ]") glued to a sentence end
    quote_at = _opening_quote_at(text, start, closers) if '"' in closers else None
    if quote_at is not None:
        # The quote opens the next sentence: cut before it. ('Biden"At no time' - a quote glued to
        # the word before it is itself the sign of a lost break; '…the "Best' never gets here.)
        cut, opened = start + len(punct) + quote_at, True
    pos = end + 1 if text[end] in _OPENERS else end
    if text[end] == "[":
        pos = end + (2 if text[end + 1 : end + 2] == " " else 1)
    if pos >= len(text):
        return None
    word, k = _left_word(text, start - 1 if spaced else start)
    if not word or not _starts_sentence(text, pos, word, punct, opened):
        return None
    if spaced and not (text[pos].isupper() and text[pos + 1 : pos + 2].islower() and word.isalpha()):
        return None  # a spaced stop is only taken before a capitalised word (".NET" stays)
    if not punct:
        # A closing quote run into a capital: only after a word ('camp”A VOA report').
        if not word.isalpha():
            return None
    elif not opened:
        # Initials and abbreviations ("J.R.R.Tolkien", "Mr.Smith"); an opening quote after them
        # ('Inc.“There') is a sentence start whatever came before.
        if not word.isalnum() or (len(word) < 2 and not word.isdigit()) or word.lower() in abbreviations:
            return None
        if k > 0 and text[k - 1] == "." and not word.isdigit():  # "a.m.Then", "Ph.D" abbreviations
            return None
    if punct == ":" and not word.islower():
        return None
    stop = end
    while stop < len(text) and not text[stop].isspace():
        stop += 1
    if _URLISH_RE.search(_token_around(text, start, end)) or "@" in text[end:stop]:
        return None  # a URL, a path, or an e-mail address ("jane.Doe@example.org"); "@handle!”Next" splits
    return cut


def _split_glued(text: str, config: RepairConfig, counts: Counter[str]) -> str:
    """Put back line breaks lost between two sentences or a heading and a sentence.

    Splits ``…difference.Russia is…``, ``…do.”Kill…``, ``…Ukraine.Biden Said…`` and
    ``…logged inPlease refresh…``. Never splits: initials and dotted abbreviations (``U.S.``,
    ``J.R.R. Tolkien``, ``Ph.D.``, ``z.B.``), the listed abbreviations (``Mr.Smith``,
    ``St.Petersburg`` - kept as written, since a run-together "St." is how the name is often
    typed), lowercase continuations (``Node.js``, ``example.com``), digits (``3.14``, ``v2.0.1``),
    anything in a URL, e-mail or path token, ellipses (``wait…What`` is style, not a lost break),
    camel-case names (``iPhone``, ``YouTube``, ``McDonald``) and any glued token that the document
    repeats (a brand such as ``easyJet`` recurs; a lost line break does not).
    """
    cuts = _glue_cuts(text, config)
    if not cuts:
        return text
    counts[GLUED_SENTENCE] += len(cuts)
    pieces = []
    prev = 0
    for cut in cuts:
        pieces.append(text[prev:cut])
        prev = cut
    pieces.append(text[prev:])
    return "\n".join(pieces)


# A line's glue cuts: offsets cut whatever the rest of the document says, and (offset, token) cuts that
# a second use of the token elsewhere in the document vetoes (`_repeated`).
_LineGlue = tuple[tuple[int, ...], tuple[tuple[int, str], ...]]
_NO_GLUE: _LineGlue = ((), ())


# News streams repeat lines (copies of a story, a site's boilerplate); on the re-scrape corpus 96% of
# lines and 75% of characters recur. Each memo holds about twice its bound in characters of lines at
# most (text/memo.py).
_GLUE_MEMO_CHARS = 4_000_000


class _GlueMemo:
    """Glue cuts per line for one (abbreviations, name particles) pair. A line's cuts depend only on its
    own characters and on what touches its ends: a line break after it, or the end of the text (the
    last line: `last`). Every rule reads within the token around a hit and no match crosses a line
    break, except `_repeated`, which reads the whole document and is applied per text."""

    def __init__(self) -> None:
        self.mid: RecentMemo[str, _LineGlue] = RecentMemo(_GLUE_MEMO_CHARS)
        # One last line per text (against tens of others): an eighth of the bound.
        self.last: RecentMemo[str, _LineGlue] = RecentMemo(_GLUE_MEMO_CHARS // 8)


_glue_memos: dict[tuple[tuple[str, ...], tuple[str, ...]], _GlueMemo] = {}


def _glue_cuts(text: str, config: RepairConfig) -> list[int]:
    """Where `_split_glued` breaks `text`: each line's cuts, remembered per line, then the named cuts
    that the document does not repeat."""
    words = (config.abbreviations, config.name_particles)
    memo = _glue_memos.get(words)
    if memo is None:
        memo = _glue_memos[words] = _GlueMemo()
    lines = text.split("\n")
    last = len(lines) - 1
    mid_get = memo.mid.get
    found: list[_LineGlue | None] = [mid_get(line) for line in lines[:last]]
    found.append(memo.last.get(lines[last]))
    missed = [i for i, f in enumerate(found) if f is None]
    if missed:
        # The missed lines are scanned together, each followed by the line break it has in `text` (none
        # after the last line): the cuts of each are those it has in `text`.
        for i, glue in zip(missed, _scan_lines([lines[i] for i in missed], missed[-1] == last, config),
                           strict=True):
            found[i] = glue
            (memo.last if i == last else memo.mid).put(lines[i], glue, len(lines[i]))
    cuts: list[int] = []
    offset = 0
    for line, got in zip(lines, found, strict=True):
        if got is not None and got is not _NO_GLUE:
            plain, named = got
            cuts.extend(offset + c for c in plain)
            cuts.extend(offset + c for c, token in named if not _repeated(text, token))
        offset += len(line) + 1
    return sorted(set(cuts))


def _scan_lines(lines: list[str], ends_text: bool, config: RepairConfig) -> list[_LineGlue]:
    """The glue cuts of each line, as offsets in it. `ends_text`: the last line is the text's last (no
    line break after it)."""
    joined = "\n".join(lines) + ("" if ends_text else "\n")
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    plain, named = _glue_candidates(joined, config)
    by_line: list[tuple[list[int], list[tuple[int, str]]]] = [([], []) for _ in lines]
    for cut in plain:
        k = bisect.bisect_right(starts, cut) - 1
        by_line[k][0].append(cut - starts[k])
    for cut, token in named:
        k = bisect.bisect_right(starts, cut) - 1
        by_line[k][1].append((cut - starts[k], token))
    return [(tuple(p), tuple(n)) if p or n else _NO_GLUE for p, n in by_line]


def _glue_candidates(text: str, config: RepairConfig) -> tuple[list[int], list[tuple[int, str]]]:
    """The glue cuts in `text` before the document-wide `_repeated` test: sentence-end cuts, and the
    camel-case and all-caps cuts with the token whose repetition vetoes them."""
    abbreviations = frozenset(config.abbreviations)
    particles = frozenset(config.name_particles)
    cuts: list[int] = []
    for m in _GLUE_PUNCT_RE.finditer(text):
        cut = _sentence_glue_cut(text, m, abbreviations)
        if cut is not None:
            cuts.append(cut)
    named: list[tuple[int, str]] = []
    seen: set[int] = set()
    for hint in _CAMEL_HINT_RE.finditer(text):
        # Expand the lower->upper hit to the whole letter run (cheaper than a token regex: hits are rare).
        start = hint.start()
        while start > 0 and text[start - 1].isalpha():
            start -= 1
        stop = hint.end()
        while stop < len(text) and text[stop].isalpha():
            stop += 1
        if start in seen:
            continue
        seen.add(start)
        if not _standalone(text, start, stop):
            continue
        token = text[start:stop]
        humps = [i for i in range(1, len(token)) if token[i - 1].islower() and token[i].isupper()]
        if len(humps) != 1:
            continue
        left, right = token[: humps[0]], token[humps[0] :]
        if len(left) < 2 or len(right) < 2 or not left.islower() or not right[1:].islower():
            continue
        token_around = _token_around(text, start, stop)
        if left in particles or _URLISH_RE.search(token_around) or "@" in token_around:
            continue
        named.append((start + humps[0], token))
    # An all-caps heading run into the next sentence: "SENTRANissan" -> "SENTRA" / "Nissan". At least
    # four capitals before (so "CNNMoney", "JPMorgan" stay) and three lowercase letters after ("PDFs").
    for hint in _CAPS_GLUE_RE.finditer(text):
        start, stop = hint.span()
        if _standalone(text, start, stop):
            named.append((start + len(hint.group(1)), hint.group(0)))
    return cuts, named


_INDENT_RE = re.compile(r"^[ \t\u00a0\u2000-\u200a\u3000]+(?=\S)", re.MULTILINE)


def dedent_lines(text: str) -> tuple[str, int]:
    """The text with each line's leading spaces and tabs removed, and how many lines had some.

    Run on the finished body, not in `repair_text`: the line model reads indentation as a sign of page
    chrome (its `indent` features), so the cleaner must see the lines as they came; the stored body is
    normalised text, where an indented paragraph is a rendering of the page, not part of the story."""
    return _INDENT_RE.subn("", text)


def _repair_structure(text: str, config: RepairConfig, counts: Counter[str]) -> str:
    if config.strip_trailing_space:
        text, n = _TRAILING_RE.subn("", text)
        counts[TRAILING_SPACE] += n
    if config.join_hyphenation:
        text = _join_hyphenation(text, config, counts)
    if config.split_glued_sentences:
        text = _split_glued(text, config, counts)
    if config.collapse_blank_lines:
        fixed = re.sub(r"\n{3,}", "\n\n", text)
        fixed = fixed.lstrip("\n")
        if fixed.endswith("\n\n"):
            fixed = fixed.rstrip("\n") + "\n"
        if fixed != text:
            counts[BLANK_LINES] += 1
            text = fixed
    return text


# ----------------------------------------------------------------------------- entry point
def _repair_once(text: str, config: RepairConfig, counts: Counter[str]) -> str:
    text = _repair_characters(text, config, counts)
    return _repair_structure(text, config, counts)


def repair_field(value: str | None, config: RepairConfig = RepairConfig()) -> str | None:
    """A metadata value (a record's or a page's title, author, publisher, date) with the body's character
    repairs: mojibake, entities, control and invisible characters, NFC.

    Without it a JSON record's "prÃ©sente" title or an NFD byline was stored as given beside a repaired
    body, and the title no longer matched the body's own headline line, which then stayed in the body (a
    user trial). Only the character layer: the structure layer (glued sentences, hyphenation, blank
    lines) reads a body's lines, and a headline is one line."""
    if not value or not needs_repair(value):
        return value
    try:
        return _repair_characters(value, config, Counter())
    except Exception:  # as repair_text: a repair bug must not stop a run; the value stays as given
        return value


def repair_text(text: str, config: RepairConfig = RepairConfig()) -> RepairResult:
    """Repair one text. Returns the repaired text and how many repairs of each kind were made."""
    try:
        if not needs_repair(text):
            return RepairResult(text=text, repairs={})
        counts: Counter[str] = Counter()
        out = _repair_once(text, config, counts)
        if out != text:
            # Confirm the fixed point: one pass can expose work for another (an entity decoding to
            # an NBSP that then meets a trailing-space rule). Stops as soon as nothing changes.
            for _ in range(max(0, config.max_passes - 1)):
                again = _repair_once(out, config, counts)
                if again == out:
                    break
                out = again
        return RepairResult(text=out, repairs={k: v for k, v in sorted(counts.items()) if v})
    except Exception:  # repair must never stop a run; the REPAIR_ERROR count makes the failure visible
        return RepairResult(text=text, repairs={REPAIR_ERROR: 1})
