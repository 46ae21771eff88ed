"""text/discard.py: each transcription returns what trafilatura's XPath returns (same elements, same order),
on generated trees and on the dev pages, and stands in for it only while the XPath is the one transcribed."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trafilatura
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from lxml.html import HtmlElement, fragment_fromstring, fromstring
from trafilatura import xpaths
from trafilatura.utils import load_html

from newsetl.text import discard
from newsetl.text.extract import FAST_DISCARDS

ENTRIES = sorted(discard._PINNED)


def _pairs() -> list[tuple[tuple[str, int], Callable[..., Any], Callable[..., Any]]]:
    return [(key, discard._PINNED[key][0], discard.original(*key)) for key in ENTRIES]


def test_every_transcribed_xpath_is_replaced_and_pinned_to_trafilaturas_source() -> None:
    # An upgrade of trafilatura that changes one of these XPaths fails here: re-transcribe it (or drop it).
    assert list(discard._PINNED) == FAST_DISCARDS
    for key, (function, pin) in discard._PINNED.items():
        assert getattr(xpaths, key[0])[key[1]] is function
        assert discard.source_hash(discard.original(*key)) == pin
    assert discard.use_fast_discards() == FAST_DISCARDS  # idempotent


def test_a_changed_xpath_is_left_to_trafilatura(monkeypatch: pytest.MonkeyPatch) -> None:
    changed = etree.XPath(".//*[self::div][contains(@class, 'something-else')]")
    entries = list(xpaths.RAW_TREE_PRUNE_XPATH)
    entries[1] = changed
    monkeypatch.setattr(xpaths, "RAW_TREE_PRUNE_XPATH", entries)
    done = discard.use_fast_discards()
    assert ("RAW_TREE_PRUNE_XPATH", 1) not in done and entries[1] is changed
    assert ("RAW_TREE_PRUNE_XPATH", 0) in done


def _same(tree: etree._Element) -> None:
    for key, fast, xpath in _pairs():
        want, got = xpath(tree), fast(tree)
        assert [id(e) for e in got] == [id(e) for e in want], (key, [e.tag for e in want], [e.tag for e in got])


# Attribute values built from the patterns' own tokens, near misses and case variants.
_TOKENS = ["comment", "Comment", "commentary", "comments", "comol", "disqus_thread", "dsq-comments", "article-comments",
           "reply-", "reply", "-reply-", "hidden", "hide-", "hide", "-hide-", "noprint", "nav", "Nav", "NAV",
           "navigation", "menu", "share", "Share", "social", "cookie", "ad-", "ad", "-ad-", "widget", "meta",
           "byline", "author", "mvp-post-add-box", "mvp-post-add-wrap", "infinite-scroll", "infinitescroll",
           "elementor-share-buttons", "content", "story", "main", "display:none", "display: none", "color:red",
           "MostPopularStories", "true", "false", "akismet", "reader-comments", "message", "tags", "x",
           "post", "entry", "articleBody", "articleContent", "article-content", "story-body", "primary", "FullText",
           "main-content", "Main-Content", "page-content", "Page-Content", "postarea", "text", "article", "teaser",
           "Teaser", "caption", "bottom", "link", "border: 1px", "story", "main"]
_ATTRS = ["id", "class", "style", "role", "data-component", "aria-hidden", "data-lp-replacement-content", "title",
          "itemprop"]
_TAGS = ["div", "section", "aside", "span", "p", "ol", "ul", "li", "details", "h1", "list", "item", "article", "a",
         "main"]

_value = st.lists(st.sampled_from(_TOKENS), min_size=0, max_size=3).flatmap(
    lambda ws: st.sampled_from([" ", "-", "", "_"]).map(lambda sep: sep.join(ws)))
_attrs = st.lists(st.tuples(st.sampled_from(_ATTRS), _value), max_size=4, unique_by=lambda kv: kv[0])


@st.composite
def _trees(draw: st.DrawFn) -> HtmlElement:
    root = fragment_fromstring("<div></div>")
    stack = [root]
    for _ in range(draw(st.integers(1, 25))):
        parent = stack[draw(st.integers(0, len(stack) - 1))]
        if draw(st.integers(0, 9)) == 0:
            parent.append(etree.Comment("a comment"))
            continue
        child = etree.SubElement(parent, draw(st.sampled_from(_TAGS)))
        for name, value in draw(_attrs):  # the attributes in the order drawn: the order the element lists them
            child.set(name, value)
        child.text = "text"
        stack.append(child)
    return root


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_trees())
def test_generated_trees_give_the_same_elements(tree: HtmlElement) -> None:
    _same(tree)
    for child in tree.iter(etree.Element):  # as the context node: itself is never returned
        _same(child)
    # Parsed again from its HTML, with no Python object held for any element (as on a real page: an element's
    # proxy object is then made on each access and freed after, and its id() can be reused).
    markup = etree.tostring(tree, encoding="unicode")
    del tree
    _same(fromstring(markup))


def test_the_attribute_listed_first_decides_between_id_and_class() -> None:
    # re:test(@id|@class, 'cookie') reads the first of the two: class first here, so "cookie-law" decides.
    class_first = fragment_fromstring('<div><div class="cookie-law" id="main"></div></div>')
    id_first = fragment_fromstring('<div><div id="main" class="cookie-law"></div></div>')
    xpath = discard.original("OVERALL_DISCARD_XPATH", 0)
    assert len(discard.overall_discard(class_first)) == 1 == len(xpath(class_first))
    assert discard.overall_discard(id_first) == [] == xpath(id_first)


def _dev_pages(shared_path: Callable[..., Path], step: int) -> list[bytes]:
    eval_dir = shared_path("eval")
    files = sorted((eval_dir / "traf-dev" / "html").glob("*.html.gz")) + sorted(
        (eval_dir / "aeb-dev" / "html").glob("*.html.gz"))
    return [gzip.decompress(f.read_bytes()) for f in files[::step]]


def test_dev_pages_give_the_same_elements(shared_path: Callable[..., Path]) -> None:
    pages = _dev_pages(shared_path, 2)  # every other page: all 735 gave the same elements when written
    assert len(pages) == 368
    for raw in pages:
        tree = load_html(raw)
        if tree is not None:
            _same(tree)


def test_trafilatura_extracts_the_same_text_with_either(shared_path: Callable[..., Path]) -> None:
    pages = _dev_pages(shared_path, 15)

    def texts() -> list[str | None]:
        return [trafilatura.extract(raw, favor_precision=True, deduplicate=False) for raw in pages]

    fast = texts()
    try:  # trafilatura's modules hold the lists themselves: the XPaths go back in place, then out again
        for (name, index), _, xpath in _pairs():
            getattr(xpaths, name)[index] = xpath
        assert texts() == fast
    finally:
        assert discard.use_fast_discards() == FAST_DISCARDS
    assert sum(t is not None for t in fast) > 40
