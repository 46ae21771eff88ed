"""Clean: remove boilerplate lines and spans from repaired article text, and say why for each.

Three mechanisms, applied in this order to the lines of a text:

1. **The pattern library** (`schemas/rules/boilerplate.json`, data, not code), extended by user rules
   files. Every rule has an id, a category and a scope (see the file format below).
2. **Learned boilerplate**: lines whose `normalize_line` key is in the `learned` set given by the caller
   (keys that recur across many different stories of one publisher; see `warehouse/learned.py`).
3. **Structure**: a block header ("You may also like") takes the link-like lines under it; a
   comment-section header near the end takes the rest of the document; a short line sandwiched between
   two removals of one widget category goes with them; list items trailing at the very end after a
   widget, or headline-style ("- 11 Facts About Our Galaxy") with no "…:" introducing them, go too; a
   wire-style caption line directly above a removed photo credit is a caption.

Precision guards (a sentence of the story must never be lost to a rule):
- lines matching a `protect` pattern and headline lines (equal to one of `titles`) are never touched;
- a line that reads as a story sentence (at least `story_min_words` words, ends in . ! ? … or a closing
  quote, verb-bearing) is removed by a whole-line rule only when that rule is marked `"strong"`;
- `"search"` rules (pattern found anywhere in the line) only apply to lines of at most `max_words` words;
- span rules cut only at boundaries (line start/end, sentence punctuation, brackets, separators), so
  "…the difference.Russia is…" keeps "Russia is…" and a pattern inside a sentence does not chop it.

Cost: each line is tokenized once; a keyword index (token -> rules) selects the few rules worth trying,
so cleaning time grows with the number of lines and the number of *matching candidates*, not with
rules x lines (`bench/bench_clean.py` measures it).

Rules file format (JSON; the default library and user files share it)::

    {
      "_about": "free text",
      "settings":   {"head_lines": 6, ...},         # optional; overrides CleanSettings fields
      "categories": ["my_category"],               # optional; categories added to the known ones
      "defs":       {"MONTH": "(?:jan|feb|...)"},   # optional; reusable regex parts, used as {{MONTH}}
      "disable":    ["rule.id"],                   # optional; ids of earlier (library) rules to switch off
      "rules": [
        {"id": "newsletter.signup",                # required, unique over all loaded files
         "category": "newsletter",                 # required, a known category
         "scope": "line",                          # line | span | head | tail | body | block | section
         "pattern": "sign up for our newsletter",  # required: a regex, or a list of alternatives
         "match": "full",                          # full (whole line, default) | search (anywhere)
         "keywords": ["newsletter"],               # tokens (casefolded \\w+) one of which must be in the
                                                   # line for the rule to be tried; "#digit" = any digit
                                                   # token, "#year" = a 19xx/20xx token, "*" = always
         "strong": false,                          # may remove a line that reads as a story sentence
         "max_words": 40,                          # only lines of at most this many words
         "case_sensitive": false,
         "until": "regex",                         # block only: the block ends at the line this matches
                                                   # (at the line start; a glued rest is kept)
         "max_lines": 8,                           # block only: how far to look for `until` / items
         "sweep_category": "comments",             # section only: category of the swept lines
         "min_fraction": 0.2,                      # section only: overrides section_min_fraction
         "examples": ["text it must remove"],      # checked by the tests
         "keep": ["text it must not remove"]}      # checked by the tests
      ],
      "protect": [{"id": "keep.disclosure", "pattern": "regex"}]   # lines never removed (search)
    }

Scopes: `line` = the whole line (after a leading list marker) matches; `span` = the match is cut out of
the line and the rest kept; `head` / `tail` = like `line` but only within the first / last
`head_lines` / `tail_lines` non-blank lines; `body` = like `line` but never within the first
`body_skip_lines` (where the headline stands); `block` = a header line that also removes the lines
under it (up to `until`, or while they look like link titles); `section` = a header (e.g. "12 comments")
that, when it sits after `min_fraction` of the text and after `section_min_story_lines` story sentences,
removes everything after it (elsewhere only the header line goes).
A bad file raises `RulesError` naming the file and the rule id.
"""

from __future__ import annotations

import json
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import schemas
from schemas.records import CleanResult, Removal

DEFAULT_RULES_PATH = Path(schemas.__file__).resolve().parent / "rules" / "boilerplate.json"

SCOPES = frozenset({"line", "span", "head", "tail", "body", "block", "section"})
MATCH_MODES = frozenset({"full", "search"})
LEARNED = "learned"

# Categories the structural passes (sandwich, trailing lists) treat as page widgets: a short line
# between two of them, or a list trailing after them, belongs to the widget. Ad markers, captions and
# datelines are deliberately absent: a real paragraph often sits between two "Advertisement" lines.
WIDGET_CATEGORIES = frozenset({
    "newsletter", "comment_prompt", "comments", "related_links", "share_social", "donation_appeal",
    "login_prompt", "notification_prompt", "promo", "paywall", "cookie_notice", "contact_prompt",
})

_TOKEN = re.compile(r"\w+")
_DIGIT = re.compile(r"\d")
_YEAR_TOKEN = re.compile(r"(?<![\w])(?:19|20)\d\d(?![\w])")
_LIST_MARKER = re.compile(r"^\s*(?:[-*•·▪►»]|\d{1,2}[.)])\s+")
_NORM_NOISE = re.compile(r"[\W\d_]+")
_SPACES = re.compile(r"\s+")
_QUOTES = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'", "\u00a0": " "})
# A story sentence ends with sentence punctuation or a closing quote/bracket after it.
_SENTENCE_END = re.compile(r"""[.!?…]["'”’»)\]]*\s*$|["”’»]\s*$""")
# Cheap "verb-bearing" test for Latin-script text: common finite verbs/auxiliaries or -ed/-ing forms.
_VERBS = (
    "is are was were be been being am has have had do does did will would can could shall should may might "
    "must said says say told tells tell added adds according announced reported wrote think thinks believe "
    "know knew want wants make makes made get gets got take takes took go goes went come comes came see "
    "sees saw find finds found give gives gave show shows showed need needs use uses become became seem "
    "seems include includes expect expects plan plans called calls asked asks warned warns")
_VERBISH = frozenset(_VERBS.split())
_BOUNDARY_BEFORE = set(".!?…:;|/·•–—-)]}\"”’»")
_OPENERS = set("([{|")


class RulesError(ValueError):
    """A rules file that cannot be used; the message names the file and the rule at fault."""


@dataclass(frozen=True)
class CleanSettings:
    """Thresholds of the cleaner; every field can be set in a rules file's "settings"."""

    head_lines: int = 6  # non-blank lines at the top where `head` rules apply
    body_skip_lines: int = 2  # `body` rules skip this many non-blank lines at the top (the headline)
    tail_lines: int = 8  # non-blank lines at the bottom where `tail` rules apply
    story_min_words: int = 8  # a shorter line never counts as a story sentence
    search_max_words: int = 40  # default max_words of `search` rules
    section_min_fraction: float = 0.35  # default: a section header must start after this share of the text
    section_min_story_lines: int = 3  # ... and after at least this many story sentences
    block_max_lines: int = 15  # lines a block header may take (items, or lines up to `until`)
    block_item_max_words: int = 16  # a link-title item under a block header is at most this long
    list_item_max_words: int = 40  # a "- item" line under a block header is at most this long
    sandwich_max_words: int = 25  # longest line taken by the sandwich pass
    learned_story_max_words: int = 25  # learned keys remove a story-like line only up to this length


@dataclass(frozen=True, eq=False)
class Rule:
    id: str
    category: str
    scope: str
    regex: re.Pattern[str]
    match: str
    strong: bool
    max_words: int | None
    keywords: tuple[str, ...]
    until: re.Pattern[str] | None
    max_lines: int | None
    sweep_category: str | None
    min_fraction: float | None
    max_rest: float | None
    source: str
    examples: tuple[str, ...] = ()
    keep: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Ruleset:
    """The compiled library: rules in priority order plus the keyword index that selects them."""

    rules: tuple[Rule, ...]
    settings: CleanSettings
    categories: frozenset[str]
    protect: re.Pattern[str] | None
    keyword_index: Mapping[str, tuple[int, ...]] = field(repr=False)
    always: tuple[int, ...] = ()  # rules tried on every line (no keywords)
    digit_rules: tuple[int, ...] = ()  # rules tried on lines with a digit ("#digit")
    year_rules: tuple[int, ...] = ()  # rules tried on lines with a 19xx/20xx token ("#year")
    keywords: frozenset[str] = frozenset()  # the keys of keyword_index, for one set intersection
    sources: tuple[str, ...] = ()

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)

    def learned_only(self) -> Ruleset:
        """The same settings and protect patterns without the pattern rules: for re-cleaning stored
        bodies with newly learned lines (the patterns already ran on them when they were ingested)."""
        return replace(self, rules=(), keyword_index={}, always=(), digit_rules=(), year_rules=(),
                       keywords=frozenset())


# ----------------------------------------------------------------------------------------- loading
_DEF_REF = re.compile(r"\{\{([A-Z][A-Z0-9_]*)\}\}")
_RULE_KEYS = frozenset({"id", "category", "scope", "pattern", "match", "keywords", "strong", "max_words",
                        "case_sensitive", "until", "max_lines", "sweep_category", "min_fraction", "max_rest",
                        "examples", "keep", "_note"})
_FILE_KEYS = frozenset({"_about", "settings", "categories", "defs", "disable", "rules", "protect",
                        "version"})


def _expand(pattern: str, defs: Mapping[str, str], where: str) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in defs:
            raise RulesError(f"{where}: unknown definition {{{{{name}}}}}")
        return defs[name]

    return _DEF_REF.sub(sub, pattern)


def _pattern_text(value: Any, where: str) -> str:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return "|".join(f"(?:{v})" for v in value)
    raise RulesError(f"{where}: 'pattern' must be a non-empty string or a list of non-empty strings")


def _compile(pattern: str, flags: int, where: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, flags)
    except re.error as exc:
        raise RulesError(f"{where}: bad regular expression: {exc}") from exc


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RulesError(f"{path}: cannot read rules file: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise RulesError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise RulesError(f"{path}: a rules file is a JSON object with a 'rules' list")
    unknown = set(data) - _FILE_KEYS
    if unknown:
        raise RulesError(f"{path}: unknown top-level keys {sorted(unknown)}")
    return data


def _settings(base: CleanSettings, raw: Any, path: Path) -> CleanSettings:
    if raw is None:
        return base
    if not isinstance(raw, dict):
        raise RulesError(f"{path}: 'settings' must be an object")
    known = {f.name: f.type for f in fields(CleanSettings)}
    changes: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise RulesError(f"{path}: unknown setting {key!r} (known: {sorted(known)})")
        current = getattr(base, key)
        if isinstance(current, bool) or not isinstance(value, int | float) or isinstance(value, bool):
            raise RulesError(f"{path}: setting {key!r} must be a number")
        changes[key] = type(current)(value)
    return replace(base, **changes)


def _build_rule(raw: Any, defs: Mapping[str, str], categories: AbstractSet[str], path: Path,
                index: int) -> Rule:
    if not isinstance(raw, dict):
        raise RulesError(f"{path}: rule #{index} is not a JSON object")
    rid = raw.get("id")
    if not isinstance(rid, str) or not rid.strip():
        raise RulesError(f"{path}: rule #{index} has no 'id'")
    where = f"{path}: rule {rid!r}"
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise RulesError(f"{where}: unknown keys {sorted(unknown)}")
    category = raw.get("category")
    if not isinstance(category, str) or category not in categories:
        raise RulesError(f"{where}: unknown category {category!r} (known: {sorted(categories)}; "
                         "a file may add its own under 'categories')")
    scope = raw.get("scope", "line")
    if scope not in SCOPES:
        raise RulesError(f"{where}: unknown scope {scope!r} (one of {sorted(SCOPES)})")
    match = raw.get("match", "full")
    if match not in MATCH_MODES:
        raise RulesError(f"{where}: unknown match {match!r} (full or search)")
    flags = 0 if raw.get("case_sensitive", False) else re.IGNORECASE
    pattern = _expand(_pattern_text(raw.get("pattern"), where), defs, where)
    regex = _compile(pattern, flags, where)
    until = None
    if "until" in raw:
        if scope != "block":
            raise RulesError(f"{where}: 'until' only applies to block rules")
        until = _compile(_expand(_pattern_text(raw["until"], where), defs, where), flags, where)
    keywords = raw.get("keywords", ["*"])
    if not isinstance(keywords, list) or not keywords or not all(isinstance(k, str) for k in keywords):
        raise RulesError(f"{where}: 'keywords' must be a non-empty list of strings")
    kws = []
    for k in keywords:
        k = k.casefold()
        if k not in ("*", "#digit", "#year") and not _TOKEN.fullmatch(k):
            raise RulesError(f"{where}: keyword {k!r} is not a single word token (\\w+), '#digit', "
                             "'#year' or '*'")
        kws.append(k)
    for key in ("max_words", "max_lines"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise RulesError(f"{where}: {key!r} must be a positive integer")
    sweep = raw.get("sweep_category")
    if sweep is not None and sweep not in categories:
        raise RulesError(f"{where}: unknown sweep_category {sweep!r}")
    for key in ("examples", "keep"):
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise RulesError(f"{where}: {key!r} must be a list of strings")
    min_fraction = raw.get("min_fraction")
    if min_fraction is not None and (scope != "section" or not isinstance(min_fraction, int | float)
                                     or isinstance(min_fraction, bool) or not 0 <= min_fraction <= 1):
        raise RulesError(f"{where}: 'min_fraction' is a number in [0, 1] and only applies to section rules")
    max_rest = raw.get("max_rest")
    if max_rest is not None and (scope != "section" or not isinstance(max_rest, int | float)
                                 or isinstance(max_rest, bool) or max_rest <= 0):
        raise RulesError(f"{where}: 'max_rest' is a positive number and only applies to section rules")
    max_words = raw.get("max_words")
    return Rule(
        id=rid, category=category, scope=scope, regex=regex, match=match,
        strong=bool(raw.get("strong", False)), max_words=max_words, keywords=tuple(kws), until=until,
        max_lines=raw.get("max_lines"), sweep_category=sweep, min_fraction=min_fraction, max_rest=max_rest,
        source=str(path),
        examples=tuple(raw.get("examples", ())), keep=tuple(raw.get("keep", ())),
    )


def load_rules(extra_files: Sequence[str | Path] = ()) -> Ruleset:
    """Compile the default library plus user rules files (in order) into one Ruleset.

    User files may add rules, categories, definitions, settings and protect patterns, and disable library
    rules by id. Any problem raises RulesError naming the file and the rule id.
    """
    return _load((DEFAULT_RULES_PATH, *(Path(p) for p in extra_files)))


def _load(paths: Sequence[Path]) -> Ruleset:
    settings = CleanSettings()
    categories: set[str] = set()
    defs: dict[str, str] = {}
    rules: list[Rule] = []
    protect: list[str] = []
    seen: dict[str, str] = {}
    for path in paths:
        data = _read_file(path)
        settings = _settings(settings, data.get("settings"), path)
        extra_cats = data.get("categories", [])
        if not isinstance(extra_cats, list) or not all(isinstance(c, str) and c for c in extra_cats):
            raise RulesError(f"{path}: 'categories' must be a list of names")
        categories.update(extra_cats)
        raw_defs = data.get("defs", {})
        if not isinstance(raw_defs, dict):
            raise RulesError(f"{path}: 'defs' must be an object")
        for name, value in raw_defs.items():
            if not re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
                raise RulesError(f"{path}: definition name {name!r} must be UPPER_CASE")
            where = f"{path}: definition {name!r}"
            defs[name] = f"(?:{_expand(_pattern_text(value, where), defs, where)})"
            _compile(defs[name], re.IGNORECASE, where)
        disable = data.get("disable", [])
        if not isinstance(disable, list):
            raise RulesError(f"{path}: 'disable' must be a list of rule ids")
        for rid in disable:
            if rid not in seen:
                raise RulesError(f"{path}: rule {rid!r} in 'disable' is not defined by an earlier file")
        rules = [r for r in rules if r.id not in set(disable)]
        raw_rules = data.get("rules", [])
        if not isinstance(raw_rules, list):
            raise RulesError(f"{path}: 'rules' must be a list")
        for i, raw in enumerate(raw_rules):
            rule = _build_rule(raw, defs, categories, path, i)
            if rule.id in seen:
                raise RulesError(f"{path}: rule {rule.id!r}: duplicate id (first defined in {seen[rule.id]})")
            seen[rule.id] = str(path)
            rules.append(rule)
        raw_protect = data.get("protect", [])
        if not isinstance(raw_protect, list):
            raise RulesError(f"{path}: 'protect' must be a list")
        for i, raw in enumerate(raw_protect):
            pid = raw.get("id") if isinstance(raw, dict) else None
            if not isinstance(pid, str) or not pid.strip():
                raise RulesError(f"{path}: protect pattern #{i} has no 'id'")
            where = f"{path}: protect {pid!r}"
            if pid in seen:
                raise RulesError(f"{where}: duplicate id (first defined in {seen[pid]})")
            seen[pid] = str(path)
            text = _expand(_pattern_text(raw.get("pattern"), where), defs, where)
            flags = 0 if raw.get("case_sensitive", False) else re.IGNORECASE
            _compile(text, flags, where)
            protect.append(f"(?:{text})" if flags else f"(?-i:{text})")
    index: dict[str, list[int]] = {}
    always: list[int] = []
    digit: list[int] = []
    year: list[int] = []
    for i, rule in enumerate(rules):
        for k in rule.keywords:
            if k == "*":
                always.append(i)
            elif k == "#digit":
                digit.append(i)
            elif k == "#year":
                year.append(i)
            else:
                index.setdefault(k, []).append(i)
    return Ruleset(
        rules=tuple(rules), settings=settings, categories=frozenset(categories | {LEARNED}),
        protect=re.compile("|".join(protect), re.IGNORECASE) if protect else None,
        keyword_index={k: tuple(sorted(set(v))) for k, v in index.items()},
        always=tuple(sorted(set(always))), digit_rules=tuple(sorted(set(digit))),
        year_rules=tuple(sorted(set(year))), keywords=frozenset(index), sources=tuple(str(p) for p in paths),
    )


# ------------------------------------------------------------------------------------ line helpers
def normalize_line(line: str) -> str:
    """Key of a line for learned boilerplate: NFKC, casefold, digits and punctuation dropped, spaces
    collapsed. "© 2019 Acme Inc. All rights reserved." and "© 2021 ACME inc — all rights reserved" share
    the key "acme inc all rights reserved"."""
    return _NORM_NOISE.sub(" ", unicodedata.normalize("NFKC", line).casefold()).strip()


def _norm_title(text: str) -> str:
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text).translate(_QUOTES).casefold()).strip()


def is_story_line(line: str, min_words: int = CleanSettings.story_min_words) -> bool:
    """Does this line read as a sentence of the story: long, ends like a sentence (. ! ? … or a closing
    quote), and verb-bearing? The verb test is cheap: a common English verb/auxiliary or -ed/-ing form,
    or, for any language, mostly lowercase words (prose), which a list of names or link titles is not."""
    s = line.strip()
    words = s.split()
    if len(words) < min_words or not _SENTENCE_END.search(s):
        return False
    # First letter of each word, past one leading quote or bracket; a cheap, script-agnostic case test.
    lower = sum(1 for w in words if w[0].islower() or (not w[0].isalnum() and w[1:2].islower()))
    if lower * 2 >= len(words):
        return True
    if not any(c.islower() or c.isupper() for c in s):
        return True  # scripts without case (CJK, Arabic, ...): length and punctuation must do
    latin = (w.strip(".,;:!?\"'“”‘’()[]").casefold() for w in words if w.isascii())
    return any(w in _VERBISH or (len(w) > 4 and w.endswith(("ed", "ing"))) for w in latin)


def _is_list_item(line: str) -> bool:
    return _LIST_MARKER.match(line) is not None


def _core(line: str) -> str:
    """The line without surrounding space and without a leading list marker ("- ", "• ", "3. ")."""
    s = line.strip()
    m = _LIST_MARKER.match(s)
    return s[m.end():] if m else s


def _at_boundary(line: str, start: int, end: int) -> bool:
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


# ------------------------------------------------------------------------------------------- clean
@dataclass
class _Line:
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


def clean_text(text: str, rules: Ruleset, *, titles: Sequence[str] = (),
               learned: AbstractSet[str] = frozenset()) -> CleanResult:
    """Remove boilerplate from `text` (already repaired; lines separated by "\\n").

    Returns the kept lines joined with "\\n" (no leading/trailing blank lines, no runs of blank lines)
    and one Removal per removed line or span, in text order, with its category, rule id, verbatim text
    and character offset in `text`.
    """
    st = rules.settings
    lines: list[_Line] = []
    pos = 0
    for raw in text.split("\n"):
        lines.append(_Line(raw, pos))
        pos += len(raw) + 1
    nonblank = [i for i, ln in enumerate(lines) if ln.text.strip()]
    if not nonblank:
        return CleanResult(body="", removals=())
    head = set(nonblank[: st.head_lines])
    top = set(nonblank[: st.body_skip_lines])
    tail = set(nonblank[-st.tail_lines:]) if st.tail_lines > 0 else set()
    title_keys = [t for t in (_norm_title(x) for x in titles) if len(t) > 3]
    header_hits: list[tuple[int, Rule]] = []

    for i in nonblank:
        ln = lines[i]
        s = ln.text
        if (rules.protect is not None and rules.protect.search(s)) or (
                title_keys and _is_title(s, title_keys)):
            ln.protected = True
            continue
        toks = _TOKEN.findall(s.casefold())
        cand: set[int] = set(rules.always)
        index = rules.keyword_index
        # One C-level set intersection per line picks the candidate rules: the cost depends on the
        # line's tokens and the rules they select, not on the size of the library.
        for t in rules.keywords.intersection(toks):
            cand.update(index[t])
        if rules.digit_rules and _DIGIT.search(s):
            cand.update(rules.digit_rules)
            if rules.year_rules and _YEAR_TOKEN.search(s):
                cand.update(rules.year_rules)
        if not cand:
            continue
        core = _core(s)
        nwords = len(toks)
        for ri in sorted(cand):
            rule = rules.rules[ri]
            if rule.scope == "span":
                _apply_span(ln, rule)
                continue
            if ln.removed is not None:
                continue
            if ((rule.scope == "head" and i not in head) or (rule.scope == "tail" and i not in tail)
                    or (rule.scope == "body" and i in top)):
                continue
            limit = rule.max_words if rule.max_words is not None else (
                st.search_max_words if rule.match == "search" else None)
            if limit is not None and nwords > limit:
                continue
            m = rule.regex.fullmatch(core) if rule.match == "full" else rule.regex.search(core)
            if m is None:
                continue
            if not rule.strong and ln.is_story(st):
                continue
            ln.removed = (rule.category, rule.id)
            ln.cuts.clear()
            if rule.scope in ("block", "section"):
                header_hits.append((i, rule))
        if ln.removed is not None:
            ln.cuts.clear()

    if learned:
        for i in nonblank:
            ln = lines[i]
            if ln.removed is not None or ln.protected:
                continue
            if normalize_line(ln.text) in learned and not (
                    ln.is_story(st) and len(ln.text.split()) > st.learned_story_max_words):
                ln.removed = (LEARNED, LEARNED)
                ln.cuts.clear()

    for i, rule in header_hits:
        if rule.scope == "block":
            _extend_block(lines, nonblank, i, rule, st)
    sections = [(i, rule) for i, rule in header_hits if rule.scope == "section"]
    if sections:
        _sweep_first_section(lines, nonblank, sections, st, len(text))
    _sandwich(lines, nonblank, st)
    _caption_above_credit(lines, nonblank)
    _trailing_lists(lines, nonblank, st)
    return _assemble(lines)


def _sweep_first_section(lines: Sequence[_Line], nonblank: Sequence[int],
                         sections: Sequence[tuple[int, Rule]],
                         st: CleanSettings, size: int) -> None:
    """The first comment header that starts the comment section takes everything after it.

    A header starts the section only late in the text and after the story: an early "Comments" link
    next to the byline, or one in a share bar above the article, must not take the article with it.
    """
    # Computed once (linear): where the story has shown enough sentences, and the last headline.
    enough_story = None
    count = 0
    for j in nonblank:
        ln = lines[j]
        if ln.removed is None and not ln.protected and ln.is_story(st):
            count += 1
            if count >= st.section_min_story_lines:
                enough_story = j
                break
    last_protected = max((j for j in nonblank if lines[j].protected), default=-1)
    for i, rule in sections:
        fraction = rule.min_fraction if rule.min_fraction is not None else st.section_min_fraction
        start = lines[i].start
        if start < fraction * size or enough_story is None or enough_story >= i:
            continue
        if rule.max_rest is not None and size - start > rule.max_rest * start:
            continue  # a bare "Comments" link with most of the text after it is not the comment section
        if last_protected > i:
            continue  # the headline comes after it: the article starts there, not the comments
        cat = rule.sweep_category or rule.category
        for j in nonblank[bisect_right(nonblank, i):]:
            ln = lines[j]
            if not ln.protected and ln.removed is None:
                ln.removed = (cat, rule.id)
                ln.cuts.clear()
        return


def _is_title(line: str, title_keys: Sequence[str]) -> bool:
    n = _norm_title(_core(line))
    if len(n) <= 3:
        return False
    for t in title_keys:
        if n == t or (len(n) >= 20 and n in t) or (len(t) >= 20 and t in n and len(n) <= 1.5 * len(t) + 10):
            return True
    return False


def _apply_span(ln: _Line, rule: Rule) -> None:
    if ln.removed is not None:
        return
    s = ln.text
    for m in rule.regex.finditer(s):
        a, b = m.start(), m.end()
        while a < b and s[a].isspace():
            a += 1
        while b > a and s[b - 1].isspace():
            b -= 1
        if a == b or not _at_boundary(s, a, b):
            continue
        if any(a < ce and cs < b for cs, ce, _, _ in ln.cuts):
            continue
        ln.cuts.append((a, b, rule.category, rule.id))
    if ln.cuts and not _TOKEN.search(_rest_of(s, ln.cuts)):
        # Nothing but the boilerplate (and punctuation) was on the line: the whole line goes.
        first = min(ln.cuts)
        ln.removed = (first[2], first[3])
        ln.cuts.clear()


def _rest_of(s: str, cuts: Iterable[tuple[int, int, str, str]]) -> str:
    out: list[str] = []
    last = 0
    for a, b, _, _ in sorted(cuts):
        out.append(s[last:a])
        last = b
    out.append(s[last:])
    return " ".join(p.strip() for p in out if p.strip())


def _kept_with_cuts(s: str, cuts: Sequence[tuple[int, int, str, str]]) -> str:
    """The line with the cut spans taken out; only the join points are touched (one space between
    two pieces), the rest of the line stays byte for byte."""
    pieces: list[str] = []
    last = 0
    for a, b, _, _ in sorted(cuts):
        pieces.append(s[last:a])
        last = b
    pieces.append(s[last:])
    out = ""
    for piece in pieces:
        if not piece.strip():
            continue
        out = piece if not out else out.rstrip() + " " + piece.lstrip()
    first_kept = next((p for p in pieces if p.strip()), "")
    if first_kept is not pieces[0]:
        out = out.lstrip()
    return out if pieces[-1].strip() else out.rstrip()


def _looks_like_link_title(s: str, st: CleanSettings) -> bool:
    """A line under a "Related"/"More stories" header that is a link title, not a paragraph: short and
    not closed like a statement (a question is a common link title: "Who will win in 2020?")."""
    words = len(s.split())
    if _is_list_item(s):
        return words <= st.list_item_max_words
    stripped = s.strip()
    return words <= st.block_item_max_words and not stripped.endswith((".", "!", ":", ";"))


def _continues(line: str, nxt: str) -> bool:
    """Is `line` a hard-wrapped piece of a paragraph (ends mid-sentence, next line goes on in lowercase)?"""
    end = line.rstrip()[-1:]
    return end in ",-‐–" or (nxt[:1].islower() and not _is_list_item(nxt))


def _extend_block(lines: list[_Line], nonblank: Sequence[int], i: int, rule: Rule, st: CleanSettings) -> None:
    at = bisect_right(nonblank, i)
    limit = rule.max_lines or st.block_max_lines
    following = nonblank[at: at + limit + 1]  # one more than the block may take: to see the next line
    after = following[:limit]
    if rule.until is not None:
        for n, j in enumerate(after):
            ln = lines[j]
            if ln.protected:
                return
            m = rule.until.match(ln.text.strip())
            if m is None:
                continue
            lead = len(ln.text) - len(ln.text.lstrip())
            a, b = lead + m.start(), lead + m.end()
            for k in after[:n]:
                if lines[k].removed is None:
                    lines[k].removed = (rule.category, rule.id)
                    lines[k].cuts.clear()
            if ln.removed is None:
                if _TOKEN.search(ln.text[b:]) and _at_boundary(ln.text, a, b):
                    ln.cuts = [c for c in ln.cuts if c[0] >= b]
                    ln.cuts.insert(0, (a, b, rule.category, rule.id))
                else:
                    ln.removed = (rule.category, rule.id)
                    ln.cuts.clear()
            return
        return
    for n, j in enumerate(after):
        ln = lines[j]
        if ln.protected:
            return
        if ln.removed is not None:
            continue
        nxt = lines[following[n + 1]].text.lstrip() if n + 1 < len(following) else ""
        if not _looks_like_link_title(ln.text, st) or _continues(ln.text, nxt):
            return
        ln.removed = (rule.category, rule.id)
        ln.cuts.clear()


def _sandwich(lines: list[_Line], nonblank: Sequence[int], st: CleanSettings) -> None:
    """A short kept line between two removals of the same widget category belongs to the widget
    ("Sign up" / "Thanks for signing up!" / <line> / "There was an error…")."""
    for n in range(1, len(nonblank) - 1):
        ln = lines[nonblank[n]]
        if ln.removed is not None or ln.protected or ln.cuts or len(ln.text.split()) > st.sandwich_max_words:
            continue
        prev, nxt = lines[nonblank[n - 1]].removed, lines[nonblank[n + 1]].removed
        if prev and nxt and prev[0] == nxt[0] and prev[0] in WIDGET_CATEGORIES:
            ln.removed = (prev[0], "sandwich")


_PHOTO_CREDIT = "photo_credit"
_CAPTION_DATE_END = re.compile(
    r",\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2},\s+(?:19|20)\d\d\.?\s*$",
    re.IGNORECASE)


def _caption_above_credit(lines: list[_Line], nonblank: Sequence[int]) -> None:
    """Wire captions end "…, Izium, Ukraine, September 17, 2022." and are followed directly (no blank
    line) by the credit "Evgeny Maroretka/AP"; when the credit line was removed, so is the caption."""
    for n in range(1, len(nonblank)):
        i, j = nonblank[n - 1], nonblank[n]
        credit = lines[j].removed
        if credit is None or credit[0] != _PHOTO_CREDIT or j != i + 1:
            continue
        ln = lines[i]
        if ln.removed is None and not ln.protected and _CAPTION_DATE_END.search(ln.text):
            ln.removed = ("caption", "caption.above_credit")
            ln.cuts.clear()


_SMALL_WORDS = frozenset({"a", "an", "the", "of", "on", "in", "at", "to", "for", "and", "or", "but", "by",
                          "vs", "via", "with", "from", "as", "is", "are"})


def _is_title_case(line: str) -> bool:
    """Headline-style capitalisation ("11 Fascinating Facts About Our Galaxy"), which a sentence or a
    story's bullet point ("two ripe pears, cored") does not have."""
    words = [w for w in _core(line).split() if w[:1].isalnum()]
    if len(words) < 3:
        return False
    big = [w for w in words if w.casefold() not in _SMALL_WORDS]
    caps = sum(1 for w in big if w[0].isupper() or w[0].isdigit())
    return bool(big) and caps >= 0.8 * len(big)


def _trailing_lists(lines: list[_Line], nonblank: Sequence[int], st: CleanSettings) -> None:
    """List items at the very end, after the last kept story line, are the page's link lists
    ("- Five things to watch this week"), not the story, when either a widget removal opens the tail or
    the items are headline-style link titles not introduced by the story (no "…:" before them)."""
    last_story = -1
    for i in reversed(nonblank):
        ln = lines[i]
        # A protected line (a headline) is kept but is not story text: it does not shield the lists after it.
        if ln.removed is None and not ln.protected and ln.is_story(st) and not _is_list_item(ln.text):
            last_story = i
            break
    after = [i for i in nonblank if i > last_story and not lines[i].protected]
    if not after:
        return
    first = lines[after[0]].removed
    if first is not None and first[0] in WIDGET_CATEGORIES:
        for i in after:
            ln = lines[i]
            if ln.removed is None and not ln.protected and _is_list_item(ln.text) \
                    and len(ln.text.split()) <= st.list_item_max_words:
                ln.removed = ("related_links", "tail_list")
                ln.cuts.clear()
        return
    if last_story >= 0 and lines[last_story].text.rstrip().endswith(":"):
        return
    run = []
    for i in after:
        ln = lines[i]
        if ln.removed is not None:
            continue
        if not _is_list_item(ln.text) or not _is_title_case(ln.text) \
                or len(ln.text.split()) > st.block_item_max_words:
            break
        run.append(ln)
    else:
        if len(run) >= 2:
            for ln in run:
                ln.removed = ("related_links", "tail_title_list")
                ln.cuts.clear()


def _assemble(lines: Sequence[_Line]) -> CleanResult:
    kept: list[str] = []
    removals: list[Removal] = []
    for ln in lines:
        if ln.removed is not None:
            s = ln.text
            lead = len(s) - len(s.lstrip())
            removals.append(Removal(ln.removed[0], ln.removed[1], s.strip(), ln.start + lead))
            continue
        if ln.cuts:
            for a, b, cat, rid in sorted(ln.cuts):
                removals.append(Removal(cat, rid, ln.text[a:b], ln.start + a))
            kept.append(_kept_with_cuts(ln.text, ln.cuts))
        else:
            kept.append(ln.text)
    out: list[str] = []
    for line in kept:
        if not line.strip():
            if out and out[-1].strip():
                out.append("")
            continue
        out.append(line)
    while out and not out[-1].strip():
        out.pop()
    return CleanResult(body="\n".join(out), removals=tuple(removals))
