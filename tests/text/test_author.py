"""text/author.find_author gives trafilatura's extract_author answer: on generated pages (hypothesis), on
hand-made cases of each branch, and on the 735 dev pages; and trafilatura's author XPaths are the ones
transcribed."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
import trafilatura.xpaths as xpaths
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml.html import HtmlElement
from trafilatura.metadata import extract_author
from trafilatura.utils import load_html

from newsetl.text import author as author_module
from newsetl.text.author import find_author

# sha256 of AUTHOR_DISCARD_XPATHS' and AUTHOR_XPATHS' sources in trafilatura 2.3. If this fails,
# trafilatura changed how it finds the author: transcribe the new XPaths into text/author.py.
TRANSCRIBED = "29298d1fa7279c60"


def _tree(html: str) -> HtmlElement:
    tree = load_html(html)
    assert tree is not None
    return tree


def test_the_transcribed_xpaths_are_trafilaturas() -> None:
    source = "\n".join(x.path for x in (*xpaths.AUTHOR_DISCARD_XPATHS, *xpaths.AUTHOR_XPATHS))
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == TRANSCRIBED


@pytest.mark.parametrize(("body", "expected"), [
    ('<p class="byline">By Jane Doe</p>', "Jane Doe"),
    ('<span class="username">Jane Doe</span>', "Jane Doe"),
    ('<div itemprop="author name">Jane Doe</div>', "Jane Doe"),
    ('<h3 id="zuozhe-box">Jane Doe</h3>', "Jane Doe"),
    ('<li data-component="Byline">Jane Doe</li>', "Jane Doe"),
    ('<author>Jane Doe</author>', "Jane Doe"),
    ('<a rel="author" href="/x">Jane Doe</a><div class="author">Someone Else</div>', "Jane Doe"),
    # inside a comment section: pruned, so the next candidate (or none) counts
    ('<div id="comments"><span class="author">Reader One</span></div><p class="byline">Jane Doe</p>', "Jane Doe"),
    ('<div class="sidebar"><span class="author">Columnist</span></div>', None),
    ('<figure><span class="author">Photo Person</span></figure>', None),
    # too long for an author (len_limit 120), then the generic XPath finds a short one
    ('<div class="author">' + "word " * 40 + '</div><span class="writer">Jane Doe</span>', "Jane Doe"),
])
def test_each_branch_agrees_with_trafilatura(body: str, expected: str | None) -> None:
    tree = _tree(f"<html><body><article>{body}<p>Text of the story.</p></article></body></html>")
    assert find_author(tree) == extract_author(tree) == expected


def test_a_date_inside_the_byline_is_left_to_trafilatura(monkeypatch: pytest.MonkeyPatch) -> None:
    # The pruned copy glues "Jane Doe" to the <time>'s tail: read there, by trafilatura itself.
    calls: list[HtmlElement] = []

    def counting(tree: HtmlElement) -> str | None:
        calls.append(tree)
        return extract_author(tree)

    monkeypatch.setattr(author_module, "extract_author", counting)
    tree = _tree('<html><body><p class="byline">By Jane Doe<time>May 1</time>, staff</p></body></html>')
    assert find_author(tree) == extract_author(tree)
    assert len(calls) == 1


_TAGS = ("div", "span", "a", "p", "section", "time", "figure", "h3", "author", "strong", "address", "link", "li")
_CLASSES = ("author", "byline", "comments", "sidebar", "author-name", "title", "date", "writer", "meta-date", "print",
            "AuthorName", "post-author", "Byline", "quote", "username", "x", "commentlist", "channel-name")
_IDS = ("author", "comments", "comment-list", "main", "bianji", "Author-box", "x")
_WORDS = ("Jane", "Doe", "By", "and", "staff", "writer", "", " ", "Reporter", "x" * 130)


@st.composite
def _element(draw: st.DrawFn, depth: int = 0) -> str:
    tag = draw(st.sampled_from(_TAGS))
    attrs = ""
    if draw(st.booleans()):
        attrs += f' class="{draw(st.sampled_from(_CLASSES))}"'
    if draw(st.integers(0, 3)) == 0:
        attrs += f' id="{draw(st.sampled_from(_IDS))}"'
    if draw(st.integers(0, 5)) == 0:
        attrs += f' itemprop="{draw(st.sampled_from(("author", "author name", "name")))}"'
    if draw(st.integers(0, 6)) == 0:
        attrs += f' data-component="{draw(st.sampled_from(("Byline", "Figure", "Body")))}"'
    if draw(st.integers(0, 6)) == 0:
        attrs += ' rel="author"'
    children = draw(st.lists(_element(depth + 1), max_size=3)) if depth < 3 else []
    text = " ".join(draw(st.lists(st.sampled_from(_WORDS), max_size=3)))
    tail = " ".join(draw(st.lists(st.sampled_from(_WORDS), max_size=2)))
    return f"<{tag}{attrs}>{text}{''.join(children)}</{tag}>{tail}"


@settings(max_examples=300, deadline=None)
@given(st.lists(_element(), min_size=1, max_size=4))
def test_generated_pages_agree_with_trafilatura(parts: list[str]) -> None:
    tree = load_html(f"<html><body>{''.join(parts)}<p>Story text here.</p></body></html>")
    if tree is None:
        return
    assert find_author(tree) == extract_author(tree)


def test_the_dev_pages_agree_with_trafilatura(shared_path: Callable[..., Path]) -> None:
    pages = [p for d in ("traf-dev", "aeb-dev") for p in sorted(shared_path("eval", d, "html").glob("*.html.gz"))]
    assert len(pages) > 700
    found = 0
    for page in pages:
        tree = load_html(gzip.decompress(page.read_bytes()))
        if tree is None:
            continue
        expected = extract_author(tree)
        assert find_author(tree) == expected, page.name
        found += expected is not None
    assert found > 300  # the comparison is about real authors, not None against None
