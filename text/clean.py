"""Clean: remove boilerplate lines and spans from repaired article text, and say why for each.

Four mechanisms, applied in this order to the lines of a text:

1. **The pattern library** (`schemas/rules/boilerplate.json`, data, not code), extended by user rules
   files. Every rule has an id, a category and a scope (see the file format below).
2. **Learned boilerplate**: lines whose `normalize_line` key is in the `learned` set given by the caller
   (keys that recur across many different stories of one publisher; see `warehouse/learned.py`). The
   pipeline gives them in a second call, once describe has found the publisher they belong to
   (`pipeline.py`), with a ruleset without pattern rules; a re-clean (`tasks/reclean.py`) does the same.
3. **Structure**: a block header ("You may also like") takes the link-like lines under it; a
   comment-section header near the end takes the rest of the document; a short line sandwiched between
   two removals of one widget category goes with them; list items trailing at the very end after a
   widget, or headline-style ("- 11 Facts About Our Galaxy") with no "…:" introducing them, go too; a
   wire-style caption line directly above a removed photo credit is a caption.
4. **The line model** (optional, `model=`): a learned classifier (`linemodel.py`) scores the lines the
   rules kept, with the rule hits among its features; a line at or above its threshold goes as a
   Removal of category "model" whose rule names the model and the score ("linemodel-v5:0.87").

Precision guards (a sentence of the story must never be lost to a rule):
- lines matching a `protect` pattern and headline lines (equal to one of `titles`) are never touched;
- a line that reads as a story sentence (at least `story_min_words` words, ends in . ! ? … or a closing
  quote, verb-bearing) is removed by a whole-line rule only when that rule is marked `"strong"`;
- `"search"` rules (pattern found anywhere in the line) only apply to lines of at most `max_words` words;
- span rules cut only at boundaries (line start/end, sentence punctuation, brackets, separators), so
  "…the difference.Russia is…" keeps "Russia is…" and a pattern inside a sentence does not chop it.

Cost: each line is tokenized once; a keyword index (token -> rules, as bit masks in `rules.RuleIndex`)
selects the few rules worth trying, integer masks drop those whose word limit or scope rules them out,
and the "*" rules are tried as one merged pattern, so cleaning time grows with the number of lines and
the number of *matching candidates*, not with rules x lines (`bench/bench_clean.py` measures it). The
output is that of trying every candidate rule one by one (`tests/text/test_clean_fast.py` holds that
reference loop; `bench/clean_equivalence.py` compares with an earlier revision on the eval texts).
`clean_batch` cleans many texts in one call, for the pipeline's batches.

The rules file format is described in `rules.py`; the structural passes live in `structure.py`.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from newsetl.schemas.records import CleanResult, Removal
from newsetl.text.linemodel import GUARD, MODEL_CATEGORY, LineModel, eligible_rows
from newsetl.text.lines import (
    TOKEN,
    YEAR_TOKEN,
    Line,
    at_boundary,
    casefold_text,
    has_digit,
    is_story_line,
    is_title_core,
    line_core,
    norm_title,
    normalize_line,
    title_bound,
)
from newsetl.text.memo import RecentMemo
from newsetl.text.rules import (
    LEARNED,
    CleanSettings,
    Rule,
    RuleIndex,
    RulesError,
    Ruleset,
    load_rules,
    spaceless_hits,
)
from newsetl.text.structure import (
    caption_above_credit,
    extend_block,
    sandwich,
    sweep_first_section,
    trailing_lists,
)

__all__ = ["CleanResult", "RulesError", "Ruleset", "clean_batch", "clean_text", "is_story_line", "load_rules",
           "normalize_line"]


def clean_text(text: str, rules: Ruleset, *, titles: Sequence[str] = (),
               learned: AbstractSet[str] = frozenset(), model: LineModel | None = None) -> CleanResult:
    """Remove boilerplate from `text` (already repaired; lines separated by "\n").

    Returns the kept lines joined with "\n" (no leading/trailing blank lines, no runs of blank lines)
    and one Removal per removed line or span, in text order, with its category, rule id, verbatim text
    and character offset in `text`. With `model`, the learned line classifier runs last, on the lines
    the rules and passes kept (never on protected or headline lines).
    """
    lines, nonblank = _rule_passes(text, rules, titles, learned)
    if model is not None and nonblank:
        _apply_model(lines, nonblank, model, rules.settings)
    return assemble(lines)


def clean_batch(texts: Sequence[str], rules: Ruleset, *, titles: Sequence[Sequence[str]] | None = None,
                learned: Sequence[AbstractSet[str]] | None = None,
                model: LineModel | None = None) -> list[CleanResult]:
    """`clean_text` over many texts: result k is `clean_text(texts[k], rules, titles=titles[k],
    learned=learned[k], model=model)`, byte for byte.

    The rule passes run text by text; the model then scores the kept lines of the whole batch in one
    call (`_score_batch`), so that per-call costs of the model are paid once per batch."""
    n = len(texts)
    if (titles is not None and len(titles) != n) or (learned is not None and len(learned) != n):
        raise ValueError("clean_batch: titles and learned must have one entry per text")
    passes = [_rule_passes(text, rules, titles[k] if titles is not None else (),
                           learned[k] if learned is not None else frozenset()) for k, text in enumerate(texts)]
    if model is not None:
        st = rules.settings
        jobs = [job for lines, nonblank in passes if nonblank
                for job in (_model_job(lines, nonblank, model, st),) if job is not None]
        for job, p in zip(jobs, _score_batch(model, jobs), strict=True):
            _take_model_rows(job, p, model)
    return [assemble(lines) for lines, _ in passes]


def _rule_passes(text: str, rules: Ruleset, titles: Sequence[str],
                 learned: AbstractSet[str]) -> tuple[list[Line], list[int]]:
    """Everything before the model: the pattern rules, learned keys and the structural passes.
    Returns the lines with their decisions and the indexes of the non-blank ones (empty: none)."""
    st = rules.settings
    lines = split_lines(text)
    nonblank = [i for i, ln in enumerate(lines) if ln.text.strip()]
    if not nonblank:
        return lines, nonblank
    title_keys = [t for t in (norm_title(x) for x in titles) if len(t) > 3]
    header_hits = _match_rules(text, lines, nonblank, rules, title_keys)
    if learned:
        _match_learned(lines, nonblank, learned, st)
    for i, rule in header_hits:
        if rule.scope == "block":
            extend_block(lines, nonblank, i, rule, st)
    sections = [(i, rule) for i, rule in header_hits if rule.scope == "section"]
    if sections:
        sweep_first_section(lines, nonblank, sections, st, len(text))
    sandwich(lines, nonblank, st)
    caption_above_credit(lines, nonblank)
    trailing_lists(lines, nonblank, st)
    return lines, nonblank


@dataclass
class _ModelJob:
    """One text's request to the line model: its lines, what the rules decided, the rows to score."""

    lines: list[Line]
    cats: list[str]
    cut: list[float]
    rows: list[int]


def _model_job(lines: list[Line], nonblank: Sequence[int], model: LineModel,
               st: CleanSettings) -> _ModelJob | None:
    """The lines everything before kept and the model may take (None: no line to score).

    The features see every line with what the rules decided about it (the model was trained on the
    rule cleaner's output of the same lines), so this must run after all rule and structural passes."""
    kept = [i for i in nonblank if lines[i].removed is None]
    rows = [i for i in eligible_rows(kept, lambda i: lines[i].is_story(st), head=GUARD != "none",
                                     story=GUARD == "story") if not lines[i].protected]
    if not rows:
        return None
    cats = [ln.removed[0] if ln.removed is not None else "" for ln in lines]
    cut = [0.0] * len(lines)
    for i in nonblank:
        ln = lines[i]
        if ln.cuts and ln.removed is None:
            cut[i] = min(1.0, sum(b - a for a, b, _, _ in ln.cuts) / max(1, len(ln.text.strip())))
    return _ModelJob(lines, cats, cut, rows)


def _score_batch(model: LineModel, jobs: Sequence[_ModelJob]) -> list[Sequence[float]]:
    """The model's scores for each job: the features of all the jobs' texts in one pass and one tree
    pass over all their rows (`LineModel.score_batch`; the values are `score_lines`' text by text, but
    for a byline row below the threshold, which keeps its score: it is kept either way)."""
    if not jobs:
        return []
    out: list[Sequence[float]] = list(model.score_batch(
        [[ln.text for ln in job.lines] for job in jobs], rule_cats=[job.cats for job in jobs],
        cut_frac=[job.cut for job in jobs], rows=[job.rows for job in jobs], removable_only=True))
    return out


def _take_model_rows(job: _ModelJob, p: Sequence[float], model: LineModel) -> None:
    """Remove the scored lines at or above the model's threshold."""
    for i in job.rows:
        if p[i] >= model.threshold:
            ln = job.lines[i]
            ln.removed = (MODEL_CATEGORY, f"{model.name}:{p[i]:.2f}")
            ln.cuts.clear()


def _apply_model(lines: list[Line], nonblank: Sequence[int], model: LineModel, st: CleanSettings) -> None:
    """Score the lines everything before kept and remove those at or above the model's threshold."""
    job = _model_job(lines, nonblank, model, st)
    if job is not None:
        _take_model_rows(job, _score_batch(model, [job])[0], model)


def split_lines(text: str) -> list[Line]:
    """The lines of `text` with their offsets, nothing decided yet."""
    lines: list[Line] = []
    pos = 0
    for raw in text.split("\n"):
        lines.append(Line(raw, pos))
        pos += len(raw) + 1
    return lines


# Every ASCII character mapped (to itself or a space): a table without misses keeps str.translate on
# its fast path.
_ASCII_NON_WORD = str.maketrans({c: c if c.isalnum() or c in "_\n" else " " for c in map(chr, range(128))})
# The same map over UTF-8 bytes (the bytes of non-ASCII characters, all >= 0x80, kept): str.translate
# leaves its fast path for the whole text at the first non-ASCII character ("©"), bytes.translate has none
# to leave.
_UTF8_NON_WORD = bytes(b if chr(b).isalnum() or chr(b) in "_\n" or b >= 0x80 else 0x20 for b in range(256))


def _ascii_word_chars(folded: str) -> str:
    """`folded.translate(_ASCII_NON_WORD)`: ASCII characters other than [A-Za-z0-9_] and "\n" made spaces."""
    if folded.isascii():
        return folded.translate(_ASCII_NON_WORD)
    return folded.encode("utf-8", "surrogatepass").translate(_UTF8_NON_WORD).decode("utf-8", "surrogatepass")


# What the pattern rules decide for a line, remembered. The decision is a function of the line's text,
# its place mask (head / top / middle / tail) and the ruleset alone: every other input of the loop below
# (tokens, digits, word count, the story test) is read from the text. News streams repeat lines (a
# story's copies, a site's boilerplate), and a hit skips the tokens, the candidate masks and the
# regular expressions. Measured with the model (clean_batch, chunks of 250, cold at the start): the first
# 3,000 re-scrape corpus texts 943 -> 1,072-1,131 docs/s; the 735 eval texts, which share few lines, 964 ->
# 925-984. Kept per Ruleset object, in a RecentMemo (text/memo.py) of about twice _DECIDED_CHARS
# characters of lines at most, so a worker holds some tens of MB of it.
_LineDecision = tuple[tuple[str, str] | None, tuple[tuple[int, int, str, str], ...], "Rule | None"]
_DECIDED_CHARS = 4_000_000


# Per Ruleset object, and gone with it: two runs with different rules in one process (threads) never
# read each other's decisions.
_decisions_by_rules: weakref.WeakKeyDictionary[Ruleset, RecentMemo[tuple[str, int], _LineDecision]] = (
    weakref.WeakKeyDictionary())


def forget_line_decisions() -> None:
    """Start with no remembered line decisions (benchmarks measure a cold start with it)."""
    _decisions_by_rules.clear()


def _decisions_for(rules: Ruleset) -> RecentMemo[tuple[str, int], _LineDecision]:
    decisions = _decisions_by_rules.get(rules)
    if decisions is None:
        decisions = _decisions_by_rules[rules] = RecentMemo(_DECIDED_CHARS)
    return decisions


def _match_rules(text: str, lines: list[Line], nonblank: Sequence[int], rules: Ruleset,
                 title_keys: Sequence[str]) -> list[tuple[int, Rule]]:
    """Apply the pattern rules line by line (headlines and protected lines are marked and skipped);
    returns the block and section headers hit, for the structural passes.

    A line's candidates are a bit mask (`rules.index`): the rules its tokens, digits and years select,
    less those that cannot apply to it (a word limit below its length, a scope it is outside of), less
    the "*" rules when their merged pattern does not match. Only what is left is tried, in priority
    order, exactly as the rule-by-rule loop would (`_match_rules_reference` in the tests)."""
    st = rules.settings
    ix = rules.index
    header_hits: list[tuple[int, Rule]] = []
    protect = rules.protect
    # The scope masks by a line's place among the non-blank lines (k): the lines between the head, the
    # top and the tail (most of them) share one mask.
    # (Slice lengths, not the settings themselves: the same places as nonblank[:head_lines] and the like.)
    n_head, n_top = len(nonblank[: st.head_lines]), len(nonblank[: st.body_skip_lines])
    tail_from = len(nonblank) - (len(nonblank[-st.tail_lines:]) if st.tail_lines > 0 else 0)
    middle_from = max(n_head, n_top)
    middle = ~ix.head & ~ix.tail

    def place_mask(k: int) -> int:
        return ((-1 if k < n_head else ~ix.head) & (-1 if k >= tail_from else ~ix.tail)
                & (~ix.body if k < n_top else -1))

    all_rules = rules.rules
    folded = casefold_text(text)
    # casefold maps characters one by one and never makes or takes a "\n": the folded text has the
    # same lines. The word-chars table keeps "\n" and maps only ASCII, so it has them too.
    words = _ascii_word_chars(folded).split("\n")
    folded_lines = folded.split("\n") if not folded.isascii() else words
    bound = title_bound(title_keys)
    decisions = _decisions_for(rules)
    for k, i in enumerate(nonblank):
        ln = lines[i]
        s = ln.text
        core = line_core(s)
        if (protect is not None and protect.search(s)) or (
                title_keys and is_title_core(core, title_keys, bound)):
            ln.protected = True
            continue
        place = middle if middle_from <= k < tail_from else place_mask(k)
        known = decisions.get((s, place))
        if known is not None:
            ln.removed = known[0]
            ln.cuts.extend(known[1])
            if known[2] is not None:
                header_hits.append((i, known[2]))
            continue
        header = _decide_line(ln, core, place, folded_lines[i], words[i], ix, all_rules, st)
        if header is not None:
            header_hits.append((i, header))
        decisions.put((s, place), (ln.removed, tuple(ln.cuts), header), len(s))
    return header_hits


def _decide_line(ln: Line, core: str, place: int, folded: str, word_chars: str, ix: RuleIndex,
                 all_rules: Sequence[Rule], st: CleanSettings) -> Rule | None:
    """The pattern rules on one line not protected (`ln` untouched so far; `place` its place mask,
    `folded` its casefolded text, `word_chars` that with the non-word ASCII characters made spaces):
    sets `ln.removed` or adds to `ln.cuts`; returns the block or section header rule it hit, if any."""
    s = ln.text
    # The line's \w+ tokens: on ASCII, \w is [A-Za-z0-9_] and str.split over the line with every
    # other character made a space finds them some times faster than the regex engine.
    toks = word_chars.split() if folded.isascii() else TOKEN.findall(folded)
    cand = ix.always
    for t in ix.keywords.intersection(toks):
        cand |= ix.keyword_mask[t]
    if ix.spaceless_keywords and not folded.isascii():
        for t in spaceless_hits(toks, ix.spaceless_keywords):
            cand |= ix.keyword_mask[t]
    if ix.digit and has_digit(s):
        cand |= ix.digit
        if ix.year and YEAR_TOKEN.search(s):
            cand |= ix.year
    if not cand:
        return None
    nwords = len(toks)
    cand &= ix.within_limit[nwords] if nwords < len(ix.within_limit) else ix.unlimited
    cand &= place
    if not cand:
        return None
    if cand & ix.always_full_bits and ix.always_full is not None and ix.always_full.fullmatch(core) is None:
        cand &= ~ix.always_full_bits
    while cand:
        low = cand & -cand
        cand ^= low
        rule = all_rules[low.bit_length() - 1]
        if low & ix.span:
            _apply_span(ln, rule)
        else:
            m = rule.regex.fullmatch(core) if rule.match == "full" else rule.regex.search(core)
            if m is None or not (rule.strong or not ln.is_story(st)):
                continue
            ln.removed = (rule.category, rule.id)
            ln.cuts.clear()  # nothing else applies to a removed line (span rules leave it alone too)
            return rule if rule.scope in ("block", "section") else None
        if ln.removed is not None:  # the span rule's cuts left nothing on the line: it went whole
            ln.cuts.clear()
            return None
    return None


def _match_learned(lines: list[Line], nonblank: Sequence[int], learned: AbstractSet[str],
                   st: CleanSettings) -> None:
    """Lines whose key is a learned boilerplate key of the publisher go (a long story-like line only
    up to `learned_story_max_words`)."""
    for i in nonblank:
        ln = lines[i]
        if ln.removed is not None or ln.protected:
            continue
        if normalize_line(ln.text) in learned and not (
                ln.is_story(st) and len(ln.text.split()) > st.learned_story_max_words):
            ln.removed = (LEARNED, LEARNED)
            ln.cuts.clear()


def _apply_span(ln: Line, rule: Rule) -> None:
    if ln.removed is not None:
        return
    s = ln.text
    for m in rule.regex.finditer(s):
        a, b = m.start(), m.end()
        while a < b and s[a].isspace():
            a += 1
        while b > a and s[b - 1].isspace():
            b -= 1
        if a == b or not at_boundary(s, a, b):
            continue
        if any(a < ce and cs < b for cs, ce, _, _ in ln.cuts):
            continue
        ln.cuts.append((a, b, rule.category, rule.id))
    if ln.cuts and not TOKEN.search(_rest_of(s, ln.cuts)):
        # Nothing but the boilerplate (and punctuation) was on the line: the whole line goes.
        first = min(ln.cuts)
        ln.removed = (first[2], first[3])
        ln.cuts.clear()


def _pieces(s: str, cuts: Iterable[tuple[int, int, str, str]]) -> list[str]:
    """The parts of line `s` between its cut spans, in order (empty parts kept)."""
    pieces: list[str] = []
    last = 0
    for a, b, _, _ in sorted(cuts):
        pieces.append(s[last:a])
        last = b
    pieces.append(s[last:])
    return pieces


def _rest_of(s: str, cuts: Iterable[tuple[int, int, str, str]]) -> str:
    return " ".join(p.strip() for p in _pieces(s, cuts) if p.strip())


def _kept_with_cuts(s: str, cuts: Sequence[tuple[int, int, str, str]]) -> str:
    """The line with the cut spans taken out; only the join points are touched (one space between
    two pieces), the rest of the line stays byte for byte."""
    pieces = _pieces(s, cuts)
    out = ""
    for piece in pieces:
        if not piece.strip():
            continue
        out = piece if not out else out.rstrip() + " " + piece.lstrip()
    first_kept = next((p for p in pieces if p.strip()), "")
    if first_kept is not pieces[0]:
        out = out.lstrip()
    return out if pieces[-1].strip() else out.rstrip()


def assemble(lines: Sequence[Line]) -> CleanResult:
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
