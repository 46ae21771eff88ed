"""Rules: the boilerplate pattern library (data, not code), compiled and validated.

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

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import newsetl.schemas
from newsetl.text.words import SPACELESS_CLASS

DEFAULT_RULES_PATH = Path(newsetl.schemas.__file__).resolve().parent / "rules" / "boilerplate.json"

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

# A line's word tokens, as rules' keywords and `max_words` count them: runs of \w and the combining marks
# inside them. \w holds no mark (a Devanagari vowel sign, a Thai vowel, a virama), so "फेसबुक पर शेयर करें"
# ("share on Facebook", four words) was nine tokens, past every short rule's max_words, and no Hindi keyword
# could be written (a user trial). The marks of the Basic Multilingual Plane, where the scripts of the news are.
_MARKS = "".join(chr(c) for c in range(0x300, 0x10000) if unicodedata.category(chr(c))[0] == "M")
TOKEN_PATTERN = rf"\w[\w{re.escape(_MARKS)}]*"
_TOKEN = re.compile(TOKEN_PATTERN)
_SPACELESS = re.compile(SPACELESS_CLASS)


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

    @cached_property
    def index(self) -> RuleIndex:
        """The rules as bit masks for the cleaner's per-line loop; built once per Ruleset (a frozen
        dataclass without slots keeps a cached_property in its __dict__)."""
        return build_index(self)

    @cached_property
    def definitions(self) -> tuple[dict[str, Any], ...]:
        """What each rule does, in priority order (`rule_definition`): the `rules` table's rows."""
        return tuple(rule_definition(r, priority) for priority, r in enumerate(self.rules))

    @cached_property
    def digest(self) -> str:
        """sha256 of everything that decides what the rule passes remove: the rules' definitions in
        order, the settings and the protect patterns (not the files' paths or their comments). Two runs
        with the same digest cleaned by the same rules; `runs.ruleset_sha256` holds it."""
        spec = {"rules": [{k: v for k, v in d.items() if k != "source"} for d in self.definitions],
                "settings": asdict(self.settings),
                "protect": self.protect.pattern if self.protect is not None else None}
        return hashlib.sha256(json.dumps(spec, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()

    def only_from(self, sources: Sequence[str]) -> Ruleset:
        """The pattern rules the files `sources` added (in priority order), with these settings and every
        file's protect patterns: what `newsetl reclean --apply-rules` applies to stored bodies, which the
        library's own rules cleaned when they were ingested."""
        keep = {str(Path(s)) for s in sources}
        return _assembled([r for r in self.rules if r.source in keep], self.settings, self.categories,
                          self.protect, self.sources)

    def without_patterns(self) -> Ruleset:
        """The same settings and protect patterns without the pattern rules: for re-cleaning stored
        bodies with newly learned lines (the patterns already ran on them when they were ingested)."""
        return replace(self, rules=(), keyword_index={}, always=(), digit_rules=(), year_rules=(),
                       keywords=frozenset())

# ------------------------------------------------------------------------------------------ index
_MERGEABLE_FLAGS = re.IGNORECASE | re.UNICODE


@dataclass(frozen=True)
class RuleIndex:
    """The library as bit masks (bit i = rule i), so that the cleaner finds a line's candidate rules
    and drops those that cannot apply there (word limit, scope, position) with integer operations,
    and tries the rest in priority order; without it, each candidate costs a Python-level round.

    Every mask only leaves out rules the rule-by-rule loop would skip before or without a match, so
    the outcome is the same (`clean.py:_match_rules` relies on that).
    """

    keyword_mask: Mapping[str, int]  # token -> rules it selects
    keywords: frozenset[str]
    always: int  # "*" rules
    digit: int  # "#digit" rules
    year: int  # "#year" rules (selected only when the library has digit rules, as before)
    span: int  # span rules: no word limit, no scope
    head: int  # scope head: only in the first head_lines non-blank lines
    tail: int  # scope tail
    body: int  # scope body: not in the first body_skip_lines
    within_limit: tuple[int, ...]  # [n] = the rules a line of n words may match (n <= max limit)
    unlimited: int  # the rules a line of any length may match
    # The "*" full-match whole-line rules as one alternation: when it does not fullmatch a line's core,
    # none of them does (an alternation matches iff one of its branches does), and they are all dropped
    # with one call instead of one each. Only rules whose pattern can be a branch unchanged are in it.
    always_full: re.Pattern[str] | None
    always_full_bits: int
    # The keywords written in Chinese or Japanese, which run words together: "扫描二维码关注我们" is one
    # \w token, so such a keyword is looked for inside a line's tokens too (`spaceless_hits`).
    spaceless_keywords: tuple[str, ...] = ()


def spaceless_hits(tokens: Sequence[str], keywords: Sequence[str]) -> list[str]:
    """The `keywords` (Chinese or Japanese ones) found inside a token written in those scripts: there a
    token is a whole phrase or sentence, and a keyword matched only as a whole token would be found only
    when the phrase stands alone ("相关新闻" yes, "相关新闻推荐" or "扫一扫关注我们" no)."""
    if not keywords:
        return []
    runs = [t for t in tokens if len(t) > 1 and _SPACELESS.search(t) is not None]
    if not runs:
        return []
    # One substring test per keyword over the runs joined by a character no keyword holds: the same hits as
    # a test per run, some 40 times faster (a generator per keyword was 0.46 ms a Chinese line).
    joined = "\n".join(runs)
    return [k for k in keywords if k in joined]


def _as_branch(rule: Rule) -> str | None:
    """The rule's pattern with its flags made local, to be one branch of an alternation; None when
    that could change what it matches (groups that may be referred to by number, other flags)."""
    rx = rule.regex
    if rx.groups or rx.flags & ~_MERGEABLE_FLAGS:
        return None
    text = f"(?i:{rx.pattern})" if rx.flags & re.IGNORECASE else f"(?-i:{rx.pattern})"
    try:
        re.compile(text)
    except re.error:
        return None
    return text


def build_index(rs: Ruleset) -> RuleIndex:
    st = rs.settings
    keyword_mask: dict[str, int] = {}
    always = digit = year = span = head = tail = body = 0
    limits: dict[int, int] = {}  # limit -> rules with that word limit
    unlimited = 0
    branches: list[str] = []
    always_full_bits = 0
    for i, rule in enumerate(rs.rules):
        bit = 1 << i
        for k in rule.keywords:
            if k == "*":
                always |= bit
            elif k == "#digit":
                digit |= bit
            elif k == "#year":
                year |= bit
            else:
                keyword_mask[k] = keyword_mask.get(k, 0) | bit
        if rule.scope == "span":
            span |= bit
            unlimited |= bit
            continue
        head |= bit if rule.scope == "head" else 0
        tail |= bit if rule.scope == "tail" else 0
        body |= bit if rule.scope == "body" else 0
        limit = rule.max_words if rule.max_words is not None else (
            st.search_max_words if rule.match == "search" else None)
        if limit is None:
            unlimited |= bit
        else:
            limits[limit] = limits.get(limit, 0) | bit
        if "*" in rule.keywords and rule.match == "full":
            branch = _as_branch(rule)
            if branch is not None:
                branches.append(branch)
                always_full_bits |= bit
    top = max(limits, default=-1)
    within = []
    for n in range(max(top, -1) + 1):
        mask = unlimited
        for limit, bits in limits.items():
            if n <= limit:
                mask |= bits
        within.append(mask)
    return RuleIndex(
        keyword_mask=keyword_mask, keywords=frozenset(keyword_mask), always=always, digit=digit,
        year=year if rs.digit_rules else 0, span=span, head=head, tail=tail, body=body,
        within_limit=tuple(within), unlimited=unlimited,
        always_full=re.compile("|".join(branches)) if branches else None, always_full_bits=always_full_bits,
        spaceless_keywords=tuple(sorted(k for k in keyword_mask if _SPACELESS.search(k) is not None)))


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

def rule_definition(rule: Rule, priority: int) -> dict[str, Any]:
    """A rule as the warehouse's `rules` table holds it: its id, category and scope, the regular
    expression it runs with its {{DEFS}} expanded (so the row says what the rule matched then, whatever
    the definitions are later), its limits, and the file it came from ("library" for the default one, else
    the user file's absolute path)."""
    options = {"case_sensitive": not rule.regex.flags & re.IGNORECASE, "strong": rule.strong,
               "max_words": rule.max_words, "keywords": list(rule.keywords),
               "until": rule.until.pattern if rule.until is not None else None, "max_lines": rule.max_lines,
               "sweep_category": rule.sweep_category, "min_fraction": rule.min_fraction,
               "max_rest": rule.max_rest}
    return {"rule_id": rule.id, "priority": priority, "category": rule.category, "scope": rule.scope,
            "match": rule.match, "pattern": rule.regex.pattern,
            "options": {k: v for k, v in options.items() if v is not None},
            "source": "library" if Path(rule.source) == DEFAULT_RULES_PATH else str(Path(rule.source).resolve())}


def user_files_problem(rules_files: Sequence[str | Path], publishers_files: Sequence[str | Path]) -> str | None:
    """What is wrong with a user's rules and publisher alias files, or None: checked once before a run (or a
    schedule) starts, so that a typo is said at once rather than by a failed run."""
    from newsetl.text.publishers import PublishersFileError, load_publisher_file

    try:
        load_rules(rules_files)
        for path in publishers_files:
            load_publisher_file(path)
    except (RulesError, PublishersFileError) as exc:
        return str(exc)
    return None


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
    return _assembled(rules, settings, frozenset(categories | {LEARNED}),
                      re.compile("|".join(protect), re.IGNORECASE) if protect else None,
                      tuple(str(p) for p in paths))


def _assembled(rules: Sequence[Rule], settings: CleanSettings, categories: frozenset[str],
               protect: re.Pattern[str] | None, sources: tuple[str, ...]) -> Ruleset:
    """A Ruleset of `rules` in this order, with the keyword index and the rule lists that select them."""
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
        rules=tuple(rules), settings=settings, categories=categories, protect=protect,
        keyword_index={k: tuple(sorted(set(v))) for k, v in index.items()},
        always=tuple(sorted(set(always))), digit_rules=tuple(sorted(set(digit))),
        year_rules=tuple(sorted(set(year))), keywords=frozenset(index), sources=sources,
    )
