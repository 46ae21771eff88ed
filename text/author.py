"""The page's author as trafilatura's `extract_author` finds it, in one walk of the page instead of a copy.

trafilatura (2.3) copies the whole page, deletes comment sections, sidebars, dates and figures from the
copy with regular-expression XPaths (lxml calls back into Python's `re` for every element it tests), then
runs up to three more such XPaths over the copy and returns the first match whose text is 3-119
characters long. On the 735 dev pages that costs ~4.4 CPU-s, about a tenth of an HTML worker's time. Here
one depth-first walk of the page tests the same predicates, does not enter the subtrees the deletion would
remove, and collects the three XPaths' matches in document order; nothing is copied.

Exact by construction, with two escapes to trafilatura's own function: a match whose subtree holds an
element the deletion removes (its text would read differently in the pruned copy, where `delete_element`
moves tails), and a page with a `<rel>` element (the first XPath tests a child element `rel`, a quirk not
worth transcribing). The predicates are trafilatura's XPaths transcribed (`trafilatura.xpaths.
AUTHOR_DISCARD_XPATHS`, `AUTHOR_XPATHS`); `tests/text/test_author.py` pins those XPaths' sources, so an
upgrade that changes them fails there, and compares the two functions on generated pages and the dev pages.
"""

from __future__ import annotations

import re

from lxml.html import HtmlElement
from trafilatura.metadata import extract_author, normalize_authors
from trafilatura.utils import trim

# AUTHOR_DISCARD_XPATHS: the subtrees trafilatura deletes before it looks for the author.
_DISCARD_ALWAYS = frozenset({"time", "figure"})
_DISCARD_TAGS = frozenset({"a", "div", "section", "span"})
_DISCARD_CLASSES = frozenset({"comments", "title", "date"})
_DISCARD_ID = re.compile("^comments|comment-?list|ProductReviews")
_DISCARD_CLASS = re.compile(
    "^[Cc]omments|commentlist|comments-list|sidebar|is-hidden|quote|embedly-instagram|article-(?:share|support)"
    "|print|category|meta-date|meta-reviewer")

# AUTHOR_XPATHS, in trafilatura's order: specific, almost generic, last resort.
_FIRST_TAGS = frozenset({"a", "address", "div", "link", "p", "span", "strong"})
_FIRST_CLASS = re.compile("author-?name|AuthorName|authorName")
_SECOND_TAGS = frozenset({"a", "div", "h3", "h4", "p", "span"})
_SECOND_CLASSES = frozenset({"byline", "username", "byl", "BBL"})
_SECOND_ID = re.compile("author|zuozhe|bianji|xiaobian")
_SECOND_CLASS = re.compile("author|channel-name|zuozhe|bianji|xiaobian|submitted-by|posted-by|journalist-name")
_THIRD_ID = re.compile("[Aa]uthor")
_THIRD_CLASS = re.compile("[Aa]uthor|screenname|writer|[Bb]yline")

_LEN_LIMIT = 120  # extract_author's len_limit


def _deleted(el: HtmlElement) -> bool:
    """Whether AUTHOR_DISCARD_XPATHS select `el` (an absent attribute tests as '', which no pattern matches)."""
    tag = el.tag
    if tag in _DISCARD_ALWAYS:
        return True
    if tag not in _DISCARD_TAGS:
        return False
    id_, cls = el.get("id"), el.get("class")
    return (id_ == "comments" or cls in _DISCARD_CLASSES
            or (id_ is not None and _DISCARD_ID.search(id_) is not None)
            or (cls is not None and _DISCARD_CLASS.search(cls) is not None)
            or "Figure" in (el.get("data-component") or ""))


def find_author(tree: HtmlElement) -> str | None:
    """`trafilatura.metadata.extract_author(tree)`, the same answer at a fraction of the cost (module doc)."""
    if tree.getparent() is not None or tree.find(".//rel") is not None:
        return extract_author(tree)
    matches: tuple[list[HtmlElement], list[HtmlElement], list[HtmlElement]] = ([], [], [])
    stack = [tree]
    while stack:
        el = stack.pop()
        tag = el.tag
        if not isinstance(tag, str):  # comments and processing instructions: never matched, no children
            continue
        # A deleted subtree is not entered. The root is never deleted (delete_element leaves an element
        # without a parent in place).
        if el is not tree and _deleted(el):
            continue
        cls, id_, itemprop = el.get("class"), el.get("id"), el.get("itemprop")
        if tag == "author" or (tag in _FIRST_TAGS and (
                el.get("rel") == "author" or id_ == "author" or cls == "author" or itemprop == "author name"
                or el.get("data-testid") in ("AuthorCard", "AuthorURL")
                or (cls is not None and _FIRST_CLASS.search(cls) is not None))):
            matches[0].append(el)
        if tag in _SECOND_TAGS and (
                cls in _SECOND_CLASSES or "author" in (itemprop or "")
                or (id_ is not None and _SECOND_ID.search(id_) is not None)
                or (cls is not None and _SECOND_CLASS.search(cls) is not None)):
            matches[1].append(el)
        if ("Byline" in (el.get("data-component") or "") or "author" in (itemprop or "")
                or (id_ is not None and _THIRD_ID.search(id_) is not None)
                or (cls is not None and _THIRD_CLASS.search(cls) is not None)):
            matches[2].append(el)
        stack.extend(reversed(el))  # children, popped in document order
    for found in matches:
        for el in found:
            if any(isinstance(d.tag, str) and _deleted(d) for d in el.iterdescendants()):
                return extract_author(tree)
            content = trim(" ".join(el.itertext()))
            if content and 2 < len(content) < _LEN_LIMIT:
                return normalize_authors(None, content)
    return None
