"""Tests of the HTML extraction stage (newsetl.text.extract): precision mode and its fallback."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
import trafilatura

from newsetl.schemas.records import Article, RawDocument, Rejection
from newsetl.sources.decode import decode_bytes
from newsetl.text.clean import clean_text
from newsetl.text.extract import EXTRACTION_EMPTY, EXTRACTION_FAILED, ExtractConfig, ExtractError, extract_html
from newsetl.text.pipeline import ProcessConfig, make_context, process_document, process_documents
from newsetl.text.repair import repair_text
from newsetl.text.words import count_words

# A real page of traf-dev/html on which trafilatura's precision mode finds only a scrap (a few words) while
# its default and recall modes extract the article (~600 words): the page the fallback exists for.
# A news article of aeb-dev with a title and a date in its metadata.
AEB_PAGE = "04a6711caa7c687592777718866e781e976e0fe684faebe8b3cedcef8cd0ea34.html.gz"
# An aeb-dev page on which precision mode keeps fewer words than the default and recall modes.
SHORT_PRECISION_PAGE = "08f793762792bd252c75fb57544cdf506ffcc04785136cb87503f02364b82b56.html.gz"
PRECISION_SCRAP_PAGE = ("eval", "traf-dev", "html", "ca950cd7b925df2b.html.gz")


def _page(shared_path: Callable[..., Path]) -> str:
    return decode_bytes(gzip.decompress(shared_path(*PRECISION_SCRAP_PAGE).read_bytes()), html=True)[0]


def test_precision_mode_alone_loses_the_article_the_fallback_keeps(shared_path: Callable[..., Path]) -> None:
    html = _page(shared_path)
    # Precision mode alone keeps a scrap of the page (it was quarantined as empty with a 10-word floor).
    alone = extract_html(html, config=ExtractConfig(favor_precision=True, fallback=False))
    assert count_words(alone.text) < 10
    # Precision mode first, then default, then recall mode: the fallback keeps the page.
    ex = extract_html(html, config=ExtractConfig(favor_precision=True))
    assert len(ex.text.split()) >= 300
    assert len(extract_html(html).text.split()) >= 300  # the default config (default mode first)


@pytest.mark.parametrize("html", ["<html><body></body></html>",
                                  "<html><body><script>var x = 1;</script><img src='a.png'></body></html>",
                                  "<html><body><p>...</p></body></html>"], ids=["blank", "no-text", "no-words"])
def test_a_page_without_any_words_is_empty_after_the_fallback(html: str) -> None:
    with pytest.raises(ExtractError) as err:
        extract_html(html)
    assert err.value.reason == EXTRACTION_EMPTY


@pytest.mark.parametrize("html", [
    "<html><body><nav><a href='/'>Home</a> <a href='/news'>News</a></nav></body></html>",
    "<html><head><title>Council</title></head><body><div class='content'><p>Short note: council meets on "
    "Tuesday.</p></div></body></html>"], ids=["navigation-only", "short-brief"])
def test_what_trafilatura_extracts_is_never_lost_however_short(html: str) -> None:
    # A page trafilatura extracts is not quarantined: a short brief is an article, and so is the
    # navigation left on a page without one (as a boilerplate-only text document is).
    alone = trafilatura.extract(html, include_comments=False, include_tables=True, deduplicate=False)
    assert alone and 0 < count_words(alone) < 10
    assert extract_html(html).text.strip() == alone


def test_metadata_read_once_is_the_one_trafilatura_returns(shared_path: Callable[..., Path]) -> None:
    """extract_html reads the metadata itself (once, without categories/tags/licence): same fields as
    trafilatura's own bare_extraction(with_metadata=True), and the same text."""
    html = decode_bytes(gzip.decompress(shared_path("eval", "aeb-dev", "html", AEB_PAGE).read_bytes()), html=True)[0]
    ours = extract_html(html)
    theirs = trafilatura.bare_extraction(html, with_metadata=True, include_comments=False, include_tables=True,
                                         deduplicate=False)
    assert theirs is not None and not isinstance(theirs, dict)
    assert ours.text == theirs.text
    for field in ("title", "author", "date", "sitename", "hostname", "description", "url"):
        assert getattr(ours, field) == (getattr(theirs, field) or None), field
    assert ours.title and ours.date  # the page has both: the comparison above is not None == None


def test_fast_mode_still_extracts_the_article(shared_path: Callable[..., Path]) -> None:
    html = decode_bytes(gzip.decompress(shared_path("eval", "aeb-dev", "html", AEB_PAGE).read_bytes()), html=True)[0]
    assert len(extract_html(html, config=ExtractConfig(fast=True)).text.split()) >= 100


def test_fallback_words_keeps_the_longest_mode_when_none_reaches_it(shared_path: Callable[..., Path]) -> None:
    page = shared_path("eval", "aeb-dev", "html", SHORT_PRECISION_PAGE)
    html = decode_bytes(gzip.decompress(page.read_bytes()), html=True)[0]
    alone = {(p, r): count_words(extract_html(html, config=ExtractConfig(favor_precision=p, favor_recall=r,
                                                                         fallback=False)).text)
             for p, r in ((True, False), (False, False), (False, True))}
    precision = alone[(True, False)]
    first = ExtractConfig(favor_precision=True)  # precision mode first, then default, then recall
    # Reached by the precision text: no other mode is tried.
    assert count_words(extract_html(html, config=replace(first, fallback_words=precision)).text) == precision
    # Reached by none: the longest of the three.
    longest = count_words(extract_html(html, config=replace(first, fallback_words=10**9)).text)
    assert longest == max(alone.values()) > precision


# A Chinese news page as sites serve it: no spaces between words, so a paragraph is one whitespace token.
_ZH_PARAGRAPHS = (
    "市政府周二批准了新的年度预算，其中大部分资金将用于修建学校和改善公共交通。",
    "市长在会后表示，这份预算兼顾了各方利益，并承诺在明年春季之前公布详细的实施计划。",
    "反对派议员批评预算过于保守，认为政府应当在住房问题上投入更多资金。",
)
_ZH_PAGE = ("<html><head><title>市政府批准新预算</title></head><body><article><h1>市政府批准新预算</h1>"
            + "".join(f"<p>{p}</p>" for p in _ZH_PARAGRAPHS) + "</article></body></html>")


def test_a_short_chinese_article_is_counted_in_characters_not_quarantined() -> None:
    # Three paragraphs, three whitespace tokens: with tokens the page fell under the former 10-word floor and was
    # quarantined as empty; counted as a reader (and a word processor) counts Chinese, it is ~100 words.
    assert sum(len(p.split()) for p in _ZH_PARAGRAPHS) == 3
    ex = extract_html(_ZH_PAGE)
    assert all(p in ex.text for p in _ZH_PARAGRAPHS)
    assert count_words(ex.text) >= 100


def test_a_chinese_article_long_enough_is_extracted_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # 200 words reached in precision mode: trafilatura runs once (with tokens every Chinese page fell short,
    # and each was extracted three times). The real extraction runs; the wrapper only counts the calls.
    long_page = _ZH_PAGE.replace("</article>", "".join(f"<p>{p}</p>" for p in _ZH_PARAGRAPHS * 2) + "</article>")
    calls: list[bool] = []
    real = trafilatura.bare_extraction

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(bool(kwargs.get("favor_precision")))
        return real(*args, **kwargs)

    monkeypatch.setattr(trafilatura, "bare_extraction", counted)
    ex = extract_html(long_page, config=ExtractConfig(favor_precision=True, fallback_words=200))
    assert count_words(ex.text) >= 200
    assert calls == [True]


def test_the_date_search_warm_up_builds_its_locale_tables_once() -> None:
    # In a fresh interpreter: this test process may have warmed dateparser already. Before the warm-up
    # no locale table exists; after it, the tables of the DATE_LOCALES locales do (what the first page
    # would otherwise build), and a date in another language then costs what any later one costs.
    script = """
import time
import htmldate.extractors
from dateparser.languages.dictionary import Dictionary
from newsetl.text.extract import DATE_LOCALES, date_parser, warm_date_search
assert htmldate.extractors.get_external_parser is date_parser  # what htmldate calls
before = sum(len(v) for v in Dictionary._split_regex_cache.values())
warm_date_search()
after = sum(len(v) for v in Dictionary._split_regex_cache.values())
t = time.process_time()
found = htmldate.extractors.get_external_parser().get_date_data("le 3 juin 2021")["date_obj"]
print(before, after, DATE_LOCALES, found.date(), time.process_time() - t)
"""
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout
    before, after, locales, found, seconds = out.split()
    assert int(before) == 0
    assert int(locales) <= int(after) < 150  # htmldate's own parser builds all 205 locales' tables
    assert found == "2021-06-03"
    assert float(seconds) < 1.0


def test_the_date_parser_is_htmldates_over_the_first_locales() -> None:
    # htmldate's own parser, taken before newsetl replaces it: the same settings and order, fewer locales,
    # and the same dates for strings the first locales read (those of the dev pages that reach it among them).
    script = """
import json
import htmldate.extractors
theirs = htmldate.extractors.get_external_parser()
from dateparser.languages.loader import default_loader
from newsetl.text.extract import DATE_LOCALES, date_parser
ours = date_parser()
ranked = [loc.shortname for loc in default_loader.get_locales(
    languages=None, locales=None, region=None, use_given_order=False, allow_conflicting_locales=False)]
strings = ["15 августа 2016, 13:43", "Fri Feb 18 10:27:24 2022", "3 de mayo de 2022", "4. 2. 2022.",
           "miércoles, 4 de mayo de 2022", "November 20 15:23 2019", "le 3 juin 2021", "12. März 2020",
           "2 marca 2021", "12 warm-up 2020"]
same = [str(theirs.get_date_data(s)["date_obj"]) == str(ours.get_date_data(s)["date_obj"]) for s in strings]
print(json.dumps({
    "settings": vars(theirs._settings) == vars(ours._settings),
    "fields": [(k, getattr(theirs, k) == getattr(ours, k)) for k in
               ("languages", "region", "try_previous_locales", "use_given_order")],
    "locales": ours.locales == ranked[:DATE_LOCALES], "n": len(ranked), "same": same}))
"""
    out = json.loads(subprocess.run([sys.executable, "-c", script], check=True, capture_output=True,
                                    text=True).stdout)
    assert out["settings"] and all(equal for _, equal in out["fields"])
    assert out["locales"] and out["n"] > 150
    assert all(out["same"])


# A real traf-dev page on which precision mode finds the short post (45 words, under the 50-word fallback)
# and default mode more words, all of them PHP warnings a broken plugin printed into the page.
FURNITURE_ONLY_PAGE = ("eval", "traf-dev", "html", "a55378bda4f4c421.html.gz")


def test_when_the_extraction_cleans_to_nothing_the_pipeline_takes_another_mode(
        shared_path: Callable[..., Path]) -> None:
    raw = gzip.decompress(shared_path(*FURNITURE_ONLY_PAGE).read_bytes())
    html = decode_bytes(raw, html=True)[0]
    ex = extract_html(html)
    assert "on line" in ex.text and len(ex.alternatives) == 1  # default mode's warnings won on word count
    ctx = make_context(ProcessConfig())
    doc = RawDocument(doc_id="p", source_uri="mem://p", kind="html", content_type="html", raw=raw, content=html)
    article = process_document(doc, ctx)
    assert isinstance(article, Article)
    # the warnings alone would leave an empty body; precision mode's post is kept instead
    assert clean_text(repair_text(ex.text).text, ctx.rules).body == ""
    assert article.body.startswith("Es ist schon einige Zeit") and "Warning" not in article.body
    assert process_documents([doc], ctx) == [article]  # the batch path (the worker pool's) does the same


def test_a_page_s_publication_time_and_offset_are_kept() -> None:
    # A 23:40 New York story is 03:40 UTC the next day; trafilatura's day alone stored it at midnight UTC
    # of the day before. A date without a time stays a day.
    body = "<p>" + "The council met on Friday to agree the budget for next year. " * 12 + "</p>"
    timed = ('<html><head><meta property="article:published_time" content="2024-03-22T23:40:00-04:00">'
             f"</head><body><article>{body}</article></body></html>")
    assert extract_html(timed).date == "2024-03-22T23:40:00-0400"
    day = ('<html><head><meta property="article:published_time" content="2024-03-22">'
           f"</head><body><article>{body}</article></body></html>")
    assert extract_html(day).date == "2024-03-22"
    doc = RawDocument(doc_id="t", source_uri="mem://t", kind="html", content_type="html", raw=timed.encode(),
                      content=timed)
    article = process_document(doc, make_context(ProcessConfig()))
    assert isinstance(article, Article)
    assert article.published_at is not None
    assert article.published_at.astimezone(UTC).isoformat() == "2024-03-23T03:40:00+00:00"


def test_a_container_s_author_is_the_article_s_byline() -> None:
    body = "The council met on Friday to agree the budget for next year and the year after.\n" * 6
    doc = RawDocument(doc_id="j", source_uri="mem://j", kind="jsonl", content_type="text", raw=body.encode(),
                      content=body, author="Laura Kuenssberg")
    article = process_document(doc, make_context(ProcessConfig()))
    assert isinstance(article, Article) and article.byline == "Laura Kuenssberg"


def test_reader_comments_are_not_in_the_body() -> None:
    body = "<p>" + "The council met on Friday to agree the budget for next year. " * 12 + "</p>"
    html = (f"<html><body><article><h1>Budget agreed</h1>{body}</article>"
            '<div id="comments" class="comments"><h3>2 Comments</h3><ul>'
            '<li class="comment"><p>This is a disgrace and the whole council should resign at once.</p></li>'
            '<li class="comment"><p>I agree with every word of the plan, well done to all of them.</p></li>'
            "</ul></div></body></html>")
    text = extract_html(html).text
    assert "council met on Friday" in text
    assert "disgrace" not in text and "well done" not in text and "Comments" not in text


def test_a_year_alone_is_no_publication_date() -> None:
    # htmldate's extensive search gives "the busiest year since 2008" as 1 January 2008; a page that
    # writes 1 January keeps it.
    body = "<p>" + "The harbour had its busiest year since 2008, the port authority said on Friday. " * 8 + "</p>"
    page = f"<html><body><article>{body}</article><footer>© 2016 Harbour News</footer></body></html>"
    assert extract_html(page).date is None
    new_year = ('<html><head><meta property="article:published_time" content="2024-01-01"></head>'
                f"<body><article>{body}</article></body></html>")
    assert extract_html(new_year).date == "2024-01-01"
    written = f"<html><body><article><p>Posted 1 January 2020</p>{body}</article></body></html>"
    assert extract_html(written).date == "2020-01-01"
    german = f"<html><body><article><p>1. Januar 2024</p>{body}</article></body></html>"
    assert extract_html(german).date == "2024-01-01"
    bare = f"<html><body><article>{body}</article></body></html>"
    assert extract_html(bare, url="https://example.org/2024/01/01/harbour").date == "2024-01-01"  # the address


# -- deep trees: libxml2 stops at 256 levels without huge_tree ------------------------------------------------

# An old CMS page: each paragraph opens a <font> it never closes, so the parser nests paragraph n at depth ~n.
FONT_PAGE = ("<html><head><title>Old CMS story</title></head><body><h1>Old CMS</h1>"
             + "".join(f"<font face='Arial'>Paragraph {i}: the council met on Tuesday to discuss the proposal.<br>"
                       for i in range(400))
             + "</body></html>")


def _nested_divs(depth: int) -> str:
    story = "<p>" + "The council met on Tuesday to discuss the proposal and the cost of it. " * 8 + "</p>"
    return ('<html><head><title>Deep page</title><meta property="article:published_time" content="2024-03-22">'
            f"</head><body>{'<div>' * depth}{story}{'</div>' * depth}"
            "<p>The closing paragraph after the nested block, which must be there too.</p></body></html>")


def test_a_page_of_unclosed_font_tags_keeps_every_paragraph() -> None:
    ex = extract_html(FONT_PAGE)
    assert ex.text.count("Paragraph ") == 400 and ex.text.rstrip().endswith("Paragraph 399: the council met on "
                                                                               "Tuesday to discuss the proposal.")
    assert ex.title == "Old CMS"  # the one <h1>, as trafilatura prefers it to <title>
    doc = RawDocument(doc_id="f", source_uri="mem://f", kind="html", content_type="html", raw=FONT_PAGE.encode(),
                      content=FONT_PAGE)
    article = process_document(doc, make_context(ProcessConfig()))
    assert isinstance(article, Article) and "Paragraph 399" in article.body


@pytest.mark.parametrize("depth", [300, 1000, 2000])
def test_divs_nested_hundreds_deep_are_extracted_with_their_metadata(depth: int) -> None:
    ex = extract_html(_nested_divs(depth))
    assert ex.text.count("The council met on Tuesday") == 8 and "closing paragraph" in ex.text
    assert ex.title == "Deep page" and ex.date == "2024-03-22"


def test_a_page_nested_past_the_parsers_limit_is_refused_not_cut_short() -> None:
    html = _nested_divs(2100)  # libxml2 stops at 2048 levels even with huge_tree
    with pytest.raises(ExtractError) as err:
        extract_html(html)
    assert err.value.reason == EXTRACTION_FAILED and "deeper than 2048 levels" in str(err.value)
    doc = RawDocument(doc_id="d", source_uri="mem://d", kind="html", content_type="html", raw=html.encode(),
                      content=html)
    rejection = process_document(doc, make_context(ProcessConfig()))
    assert isinstance(rejection, Rejection) and rejection.reason == EXTRACTION_FAILED and rejection.raw


@pytest.mark.parametrize("html", [
    "<!DOCTYPE html><html><head><title>T</title></head><body><p>one</p><!-- c --><?pi x?><p>two</p></body></html>",
    '<?xml version="1.0" encoding="utf-8"?><html><body><p>declared</p><p>two</p></body></html>',  # lxml's ValueError
    "<html/>\n<body><p>self-closed html</p></body>",
    "<p>a lone fragment</p>",  # "dubious": rejected, as trafilatura rejects it
    "<div><p>a</p><p>b</p></div><div>c</div>",
    "",
    "   ",
    "<html><body><p>x\x00y\x0bz</p></body></html>",
])
def test_load_page_builds_the_tree_trafilatura_s_load_html_builds(html: str) -> None:
    from lxml.html import tostring
    from trafilatura.utils import load_html

    from newsetl.text.extract import load_page

    ours, theirs = load_page(html), load_html(html)
    assert (ours is None) == (theirs is None)
    assert ours is None or theirs is None or tostring(ours) == tostring(theirs)


def test_load_page_reads_a_text_node_over_libxml2_s_10_mb_limit() -> None:
    from newsetl.text.extract import load_page

    tree = load_page("<html><body><p>" + "word " * 2_200_000 + "</p></body></html>")  # 11 MB in one text node
    assert tree is not None and len(tree.text_content()) == 11_000_000
