"""Structure: the cleaning passes that look at a line's neighbours, not only at the line.

A block header ("You may also like") takes the link-like lines under it; a comment-section header near
the end takes the rest of the document; a short line sandwiched between two removals of one widget
category goes with them; list items trailing at the very end after a widget, or headline-style ("- 11
Facts About Our Galaxy") with no "…:" introducing them, go too; a wire-style caption line directly
above a removed photo credit is a caption.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence

from newsetl.text.lines import (
    TOKEN,
    Line,
    at_boundary,
    continues,
    is_list_item,
    is_title_case,
    looks_like_link_title,
)
from newsetl.text.rules import WIDGET_CATEGORIES, CleanSettings, Rule


def sweep_first_section(lines: Sequence[Line], nonblank: Sequence[int],
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

def extend_block(lines: list[Line], nonblank: Sequence[int], i: int, rule: Rule, st: CleanSettings) -> None:
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
                if TOKEN.search(ln.text[b:]) and at_boundary(ln.text, a, b):
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
        if not looks_like_link_title(ln.text, st) or continues(ln.text, nxt):
            return
        ln.removed = (rule.category, rule.id)
        ln.cuts.clear()

def sandwich(lines: list[Line], nonblank: Sequence[int], st: CleanSettings) -> None:
    """A short kept line between two removals of the same widget category belongs to the widget
    ("Sign up" / "Thanks for signing up!" / <line> / "There was an error…")."""
    for n in range(1, len(nonblank) - 1):
        ln = lines[nonblank[n]]
        if ln.removed is not None or ln.protected or ln.cuts:
            continue
        # The neighbours first: they rule out most lines without counting words.
        prev, nxt = lines[nonblank[n - 1]].removed, lines[nonblank[n + 1]].removed
        if prev and nxt and prev[0] == nxt[0] and prev[0] in WIDGET_CATEGORIES \
                and len(ln.text.split()) <= st.sandwich_max_words:
            ln.removed = (prev[0], "sandwich")

_PHOTO_CREDIT = "photo_credit"

_CAPTION_DATE_END = re.compile(
    r",\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2},\s+(?:19|20)\d\d\.?\s*$",
    re.IGNORECASE)

def caption_above_credit(lines: list[Line], nonblank: Sequence[int]) -> None:
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

def trailing_lists(lines: list[Line], nonblank: Sequence[int], st: CleanSettings) -> None:
    """List items at the very end, after the last kept story line, are the page's link lists
    ("- Five things to watch this week"), not the story, when either a widget removal opens the tail or
    the items are headline-style link titles not introduced by the story (no "…:" before them)."""
    last_story = -1
    for i in reversed(nonblank):
        ln = lines[i]
        # A protected line (a headline) is kept but is not story text: it does not shield the lists after it.
        if ln.removed is None and not ln.protected and ln.is_story(st) and not is_list_item(ln.text):
            last_story = i
            break
    after = [i for i in nonblank if i > last_story and not lines[i].protected]
    if not after:
        return
    first = lines[after[0]].removed
    if first is not None and first[0] in WIDGET_CATEGORIES:
        for i in after:
            ln = lines[i]
            if ln.removed is None and not ln.protected and is_list_item(ln.text) \
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
        if not is_list_item(ln.text) or not is_title_case(ln.text) \
                or len(ln.text.split()) > st.block_item_max_words:
            break
        run.append(ln)
    else:
        if len(run) >= 2:
            for ln in run:
                ln.removed = ("related_links", "tail_title_list")
                ln.cuts.clear()
