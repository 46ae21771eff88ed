"""trafilatura's costliest XPaths as one Python walk each, swapped in for the XPaths themselves.

trafilatura (2.3) prunes a page, and looks for its article body, with XPaths whose predicates test the
elements' `id`/`class`, many with EXSLT regular expressions (`re:test`): for every element tested, libxml2
calls back into lxml, which builds the attribute strings as Python objects and runs Python's `re`. On the
735 dev pages, 42% of an HTML extraction's CPU (6.8 of 16.3 CPU-s, precision mode with its fallback) was
spent evaluating trafilatura's XPaths, 90% of it in the twelve expressions here. Each function below walks
the (sub)tree once in document order, tests the same predicates with the same regular expressions, and
returns the same elements in the same order, so trafilatura's output is unchanged: the same pages took 11.5
CPU-s with them (their own walks 1.9 of it).

XPath details kept: `.//*` is every descendant element, not the context node itself (comments and
processing instructions are not elements); an absent attribute reads as the empty string; a test on
`@id|@class` reads the one of the two that comes first in the element's attribute order (XPath's string
value of a node-set is its first node in document order, and libxml2 orders an element's attributes as
written); `re:test` is Python's `re.search` (with `re.IGNORECASE` for its 'i' flag), as lxml implements it; a `[1]`
on a step picks the first matching child of each element, on a parenthesised path the first match overall.

`use_fast_discards()` replaces the entries of trafilatura's own lists in place (`prune_unwanted_nodes`
and `_extract` call each entry with the tree), each only when the XPath it stands for has exactly the source
transcribed here (`_PINNED`: a hash of the XPath's text): after a trafilatura upgrade that changes one,
that one stays trafilatura's. `tests/text/test_discard.py` pins the hashes (an upgrade fails there first)
and compares each function with its XPath on generated trees and on the dev pages.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

from lxml import etree
from trafilatura import xpaths

_Prune = Callable[[etree._Element], list[etree._Element]]


def _first(el: etree._Element, a: str, va: str | None, b: str, vb: str | None) -> str:
    """The string value of the node-set `@a|@b`: the attribute of the two that the element lists first."""
    if va is None:
        return vb or ""
    if vb is None:
        return va
    for key in el.attrib:  # attribute names, in the order the element lists them
        if key == a:
            return va
        if key == b:
            return vb
    return va  # not reached: both are attributes of `el`


def _descendants(tree: etree._Element, *tags: str) -> list[etree._Element]:
    """`.//*` (or `.//*[self::t1 or self::t2 ...]`): the descendant elements, document order. A list built in
    C; the first-match walks below iterate lazily instead (`_first_match`)."""
    found = list(tree.iter(*tags) if tags else tree.iter(etree.Element))
    return found[1:] if found and found[0] is tree else found


def _first_match(tree: etree._Element, tags: tuple[str, ...],
                 test: Callable[[etree._Element], object]) -> list[etree._Element]:
    """`(.//*[self::t1 or ...][test])[1]`: the first descendant that passes, as a list of at most one; the walk
    stops there."""
    for el in tree.iter(*tags):
        if el is not tree and test(el):
            return [el]
    return []


# OVERALL_DISCARD_XPATH[0]
_O0_TAGS = ("div", "item", "list", "p", "section", "span")
_O0_EITHER = re.compile("cookie").search
_O0_ID = re.compile(
    "^shar|social|viral|newsletter|syndication|tags|sidebar|banner|bread-?crumb|button|author|^(?:jp-|dpsp-content)"
    "|bmdh|footer|Footer|share|Share|nav|Nav|menu|related|message-container|premium|^ad-").search
_O0_CLASS = re.compile(
    "^shar|social|viral|newsletter|syndication|tags|sidebar|banner|bread-?crumb|button|author"
    "|^(?:nav|post-nav|ZendeskForm)|subnav|avigation|navbar|navbox|menu|bar| ad |-ad-|(?:^| )ad-|dfp[Aa]d|outbrain"
    "|taboola|criteo|paid-?content|widget|footer|Footer|byline|Byline|share-|sociable|embedded|embed|tag-list"
    "|consent|modal-content|permission|elated|next-|-stories|most-popular|more-on|meta|rating|attachment"
    "|timestamp|user-info|user-profile|-icon|article-infos|message-container|slide|viewport|overlay|options"
    "|expand|obfuscated|blurred|mol-factbox|yin|zlylin|nfoline").search


def overall_discard(tree: etree._Element) -> list[etree._Element]:
    out = []
    for el in _descendants(tree, *_O0_TAGS):
        get = el.get
        i, c = get("id"), get("class")
        if (get("data-lp-replacement-content") is not None
                or "nav" in (get("role") or "").replace("N", "n")
                or "MostPopularStories" in (get("data-component") or "")
                or _O0_EITHER(_first(el, "id", i, "class", c))
                or _O0_ID(i or "")
                or _O0_CLASS(c or "")):
            out.append(el)
    return out


# OVERALL_DISCARD_XPATH[1]
_O1_EITHER = re.compile("hidden").search
_O1_ID = re.compile("reader-comments|akismet").search
_O1_CLASS = re.compile(
    "^hide-|comments-title|nocomments|-reply-|message|akismet|suggest-links|-hide-|hide-print| hidden| hide"
    "|noprint|notloaded").search


def hidden_discard(tree: etree._Element) -> list[etree._Element]:
    out = []
    for el in _descendants(tree):
        get = el.get
        i, c, s = get("id"), get("class"), get("style")
        if (c == "comments-title"
                or _first(el, "id", i, "class", c).startswith("reply-")
                or _O1_EITHER(_first(el, "id", i, "style", s))
                or (s is not None and ("display:none" in s or "display: none" in s))
                or _O1_ID(i or "")
                or _O1_CLASS(c or "")
                or get("aria-hidden") == "true"):
            out.append(el)
    return out


# REMOVE_COMMENTS_XPATH[0] and REMOVE_COMMENTS_AND_LISTS_XPATH[0]
_C_TAGS = ("div", "list", "section", "details")
_C_ID = re.compile("^(?:[Cc]omment(?!ary)|comol|disqus_thread|dsq-comments)").search
_C_LIST_ID = re.compile("^(?:[Cc]omment(?!ary)|comol)").search
_C_CLASS = re.compile("^[Cc]omment(?!ary)|(?:article|post)-comments").search


def comment_sections(tree: etree._Element) -> list[etree._Element]:
    return [el for el in _descendants(tree, *_C_TAGS) if _C_ID(el.get("id") or "") or _C_CLASS(el.get("class") or "")]


def comment_sections_and_lists(tree: etree._Element) -> list[etree._Element]:
    out = []
    for el in _descendants(tree, *_C_TAGS, "ol", "ul"):
        i, c = el.get("id") or "", el.get("class") or ""
        if (_C_ID(i) or _C_CLASS(c)) and (el.tag not in ("ol", "ul") or _C_LIST_ID(i) or _C_CLASS(c)):
            out.append(el)
    return out


# RAW_TREE_PRUNE_XPATH[0] and [1]
_R_TAGS = ("div", "section", "aside")
_R_SCROLL = re.compile("mvp-post-add-(?:box|wrap)|infinite-?scroll").search
_R_ADD = re.compile("mvp-post-add-(?:box|wrap)").search


def appended_articles(tree: etree._Element) -> list[etree._Element]:
    out = []
    for el in _descendants(tree, *_R_TAGS):
        i, c = el.get("id") or "", el.get("class") or ""
        if ((_R_SCROLL(i) or _R_SCROLL(c))
                and (next(el.iterdescendants("h1"), None) is None or _R_ADD(i) or _R_ADD(c))):
            out.append(el)
    return out


def share_buttons(tree: etree._Element) -> list[etree._Element]:
    return [el for el in _descendants(tree, *_R_TAGS) if "elementor-share-buttons" in (el.get("class") or "")]


# PRECISION_DISCARD_XPATH[1], TEASER_DISCARD_XPATH[0], DISCARD_IMAGE_ELEMENTS[0]: the overall pair's tags
_P_BOTTOM = re.compile(r"(^|\s)bottom|bottom(\s|$)").search
_P_LINK = re.compile(r"(^|\s)link(\s|$)").search


def precision_discard(tree: etree._Element) -> list[etree._Element]:
    out = []
    for el in _descendants(tree, *_O0_TAGS):
        either = _first(el, "id", el.get("id"), "class", el.get("class"))
        if _P_BOTTOM(either) or _P_LINK(either) or "border" in (el.get("style") or ""):
            out.append(el)
    return out


def teasers(tree: etree._Element) -> list[etree._Element]:
    return [el for el in _descendants(tree, *_O0_TAGS)
            if "teaser" in (el.get("id") or "").replace("T", "t")
            or "teaser" in (el.get("class") or "").replace("T", "t")]


def captions(tree: etree._Element) -> list[etree._Element]:
    return [el for el in _descendants(tree, *_O0_TAGS)
            if "caption" in (el.get("id") or "") or "caption" in (el.get("class") or "")]


# BODY_XPATH[0], [2], [3]: where the article body is, tried in order until one finds an element
_B_TAGS = ("article", "div", "main", "section")
_B0_ID = re.compile("(?:entry|article|art)-content|article__content|article(?:-|__)?body|articleBody|body-text").search
_B0_CLASS = re.compile(
    "post[-_]text|post-body|post-?entry|post[-_]?content|postContent|post_inner_wrapper|article-?text|articleText"
    "|(?:entry|page|text|article|art)-content|article__content|article(?:-|__)?body|articleBody|ArticleContent"
    "|body-text|article__container").search
_B2_CLASSES = frozenset({"postarea", "art-postcontent", "text", "cell", "story"})
_B2_ID = re.compile("^primary|story-body").search
_B2_FULLTEXT = re.compile("fulltext", re.IGNORECASE).search  # re:test's third argument 'i'
_B2_CLASS = re.compile(
    "^article |post-bodycopy|story-?content|(?:theme|blog|section|single)-content|single-post|main-column"
    "|wpb_text_column|story-body|field-body").search
_B3_ID = re.compile("content-main|content-body|contentBody").search
_B3_CLASS = re.compile("content[-_]main|content(?:-|__)body").search
_CM = str.maketrans("CM", "cm")
_CP = str.maketrans("CP", "cp")


def article_bodies(tree: etree._Element) -> list[etree._Element]:
    """`.//*[...][1]`: the `[1]` belongs to the step, so this is, under every element, its FIRST child that
    matches (not the first match overall)."""
    out = []
    parents: set[etree._Element] = set()  # the elements, not their id(): a freed proxy's id is reused
    for el in _descendants(tree, *_B_TAGS):
        get = el.get
        i, c = get("id"), get("class")
        if (c == "post" or c == "entry" or get("itemprop") == "articleBody" or i == "articleContent"
                or _B0_ID(i or "") or _B0_CLASS(c or "")):
            parent = el.getparent()  # siblings come in document order: the first seen is the first child
            if parent not in parents:
                parents.add(parent)
                out.append(el)
    return out


def _is_story_body(el: etree._Element) -> bool:
    get = el.get
    i, c = get("id"), get("class")
    return bool(get("role") == "article" or i == "article" or i == "story" or c in _B2_CLASSES
                or _B2_ID(i or "") or _B2_FULLTEXT(c or "") or _B2_CLASS(c or ""))


def story_body(tree: etree._Element) -> list[etree._Element]:
    return _first_match(tree, _B_TAGS, _is_story_body)


def _is_main_content(el: etree._Element) -> bool:
    i, c = el.get("id") or "", el.get("class") or ""
    return bool(i == "content" or c == "content" or _B3_ID(i) or _B3_CLASS(c) or "main-content" in i.translate(_CM)
                or "main-content" in c.translate(_CM) or "page-content" in c.translate(_CP))


def main_content(tree: etree._Element) -> list[etree._Element]:
    return _first_match(tree, _B_TAGS, _is_main_content)


# (trafilatura.xpaths list, index) -> the function that stands for it, and the sha256 (first 16 hex digits)
# of the XPath text it was transcribed from (trafilatura 2.3.1).
_PINNED: dict[tuple[str, int], tuple[_Prune, str]] = {
    ("OVERALL_DISCARD_XPATH", 0): (overall_discard, "a837e58a1b1ea116"),
    ("OVERALL_DISCARD_XPATH", 1): (hidden_discard, "c1d5b70b8cd03783"),
    ("REMOVE_COMMENTS_XPATH", 0): (comment_sections, "5d97216ca15d0558"),
    ("REMOVE_COMMENTS_AND_LISTS_XPATH", 0): (comment_sections_and_lists, "9cc18d34e6e2d258"),
    ("RAW_TREE_PRUNE_XPATH", 0): (appended_articles, "01e7c660fd6406f2"),
    ("RAW_TREE_PRUNE_XPATH", 1): (share_buttons, "3c7afe92279543d5"),
    ("PRECISION_DISCARD_XPATH", 1): (precision_discard, "53d31ea1df47920a"),
    ("TEASER_DISCARD_XPATH", 0): (teasers, "ebb02f066626551d"),
    ("DISCARD_IMAGE_ELEMENTS", 0): (captions, "cb1ab981e44913f7"),
    ("BODY_XPATH", 0): (article_bodies, "caaa561ceca17064"),
    ("BODY_XPATH", 2): (story_body, "6c9b5e1fdc092943"),
    ("BODY_XPATH", 3): (main_content, "10a7ceacc0ff8cdf"),
}


def source_hash(expression: object) -> str | None:
    """The pin of an XPath's text; None for anything else (an entry already replaced)."""
    path = getattr(expression, "path", None)
    return hashlib.sha256(path.encode("utf-8")).hexdigest()[:16] if isinstance(path, str) else None


# The XPaths replaced, kept for the tests and for `original`.
_REPLACED: dict[tuple[str, int], _Prune] = {}


def use_fast_discards() -> list[tuple[str, int]]:
    """Put the functions above in trafilatura's lists in place of the XPaths they transcribe, where the XPath
    is the one transcribed; return the entries that stand replaced (already or now). Idempotent."""
    done = []
    for (name, index), (function, pin) in _PINNED.items():
        entries = getattr(xpaths, name, None)
        if not isinstance(entries, list) or index >= len(entries):
            continue
        if entries[index] is not function and source_hash(entries[index]) == pin:
            _REPLACED[(name, index)] = entries[index]
            entries[index] = function
        if entries[index] is function:
            done.append((name, index))
    return done


def original(name: str, index: int) -> _Prune:
    """trafilatura's own entry `name[index]`: the XPath, also after `use_fast_discards` replaced it."""
    entry: _Prune = _REPLACED.get((name, index), getattr(xpaths, name)[index])
    return entry
