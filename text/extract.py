"""Extract: article text and metadata from HTML with trafilatura; plain text passes through.

Precision mode first (fewer menus and teasers in the body); when it finds nothing, or fewer than
`fallback_words` (50), the page is tried again in trafilatura's default mode and then in recall mode, so a
page that trafilatura extracts at all is never quarantined as empty because of the mode we prefer.

The page is parsed once and its metadata read once, before the modes: `bare_extraction(with_metadata=True)`
would parse and read the metadata again for every mode tried, and it also collects categories, tags and
the licence, which nothing here uses (together ~10% of the metadata time). The fields kept are computed
with trafilatura's own functions in trafilatura's order, so they are the ones it would return; the author
with `text/author.find_author`, which returns what trafilatura's `extract_author` does in a third of its time.

The page is parsed as trafilatura's `load_html` parses it but with lxml's `huge_tree` (`load_page`), so a page
nested deeper than libxml2's default 256 levels (unclosed <font> tags, stacked <div>s) is not cut short there;
one nested past 2048 levels, where the parser stops even so, is refused (`extraction_failed`), not stored cut.

trafilatura is called with `deduplicate=False` on purpose: its duplicate cache is per process, so
with it the output of a page would depend on which pages the same worker saw before.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import htmldate.extractors
import trafilatura
import trafilatura.utils
from htmldate import find_date
from lxml.etree import ErrorTypes
from lxml.html import HtmlElement, HTMLParser, fromstring
from trafilatura.metadata import (
    META_URL,
    examine_meta,
    extract_domain,
    extract_meta_json,
    extract_sitename,
    extract_title,
    extract_url,
)
from trafilatura.settings import DEFAULT_CONFIG, Document, set_date_params
from trafilatura.utils import is_dubious_html, repair_faulty_html

from newsetl.text.author import find_author
from newsetl.text.discard import use_fast_discards
from newsetl.text.words import count_words

if TYPE_CHECKING:
    from dateparser.date import DateDataParser

# trafilatura's costliest XPaths, replaced by exact one-walk transcriptions (text/discard.py): the same
# extraction with ~30% less CPU. In every process that imports this module, before any extraction.
FAST_DISCARDS = use_fast_discards()

EXTRACTION_EMPTY = "extraction_empty"
EXTRACTION_FAILED = "extraction_failed"


@dataclass(frozen=True)
class ExtractConfig:
    include_comments: bool = False  # reader comments are not the article
    include_tables: bool = True
    # Precision mode with a 50-word fallback, chosen by site-grouped CV over aeb-dev + traf-dev
    # (bench/html_cv.py --rules-provenance own-hits; modes x fast x fallback 10, 50, 100, 200 words): the
    # setting with the best chance of meeting the three HTML acceptance floors (AEB F1 >= 0.970, < 30
    # boilerplate lines left, traf snippet F1 >= 0.935) on sites it has not seen, estimated by resampling the
    # sites (`--objective robust`), each page cleaned without the rules only its own site taught, as a new
    # site is. On all 735 pages (the library and line model v4 of 2026-12-05): AEB F1 0.9744 with 22 lines
    # left, traf F1 0.9427; its chance of all three on resampled sites 0.70 (precision fb200 0.53). With the
    # library before: 0.9741, 22 lines, 0.9369, chance 0.48 (precision fb200, taken until 2026-12-05 by the
    # point figures: 0.9710, 24 lines, 0.9377, chance 0.38; default mode 0.9690, 38 lines, 0.9392, chance
    # 0.15: the teaser lists and widgets that precision mode prunes are left to rules written for the site,
    # which a new site does not have). Under the same CV the folds choose fb50 four times and fb200 once: AEB
    # F1 0.9710, 24 lines, traf F1 0.9436 on the test folds (0.9707, 24, 0.9375 with the library before).
    # Cost: 2% of the pages (fewer than 50 words in precision mode) are extracted again, 0.7% three times
    # (fb200: 15% and 14%).
    favor_precision: bool = True
    favor_recall: bool = False
    # trafilatura's `fast`: no comparison with its readability/jusText fallbacks (~35% of its time).
    fast: bool = False
    # When the mode above yields nothing or too little (fewer than `fallback_words` words): try the default
    # mode, then favor_recall, and keep the first that reaches it, else the longest. Words as `count_words`
    # counts them (a Chinese or Japanese character is one; with whitespace tokens, a whole Chinese article
    # was ~20 "words" and was extracted three times).
    fallback: bool = True
    fallback_words: int = 50
    # Fewer words than this is not an article. 1: a page is quarantined as `extraction_empty` only when no mode
    # finds any text, so no page that trafilatura extracts is lost (issue 12's acceptance). What it finds on a
    # page without an article ("Home News") loads as the text path loads a boilerplate-only document: as an
    # article, a fact about the input. Until 2026-12-05 this was 10, which also quarantined short briefs
    # ("Short note: council meets on Tuesday.") that trafilatura extracts.
    min_words: int = 1


@dataclass(frozen=True)
class Extraction:
    text: str
    title: str | None = None
    author: str | None = None
    date: str | None = None
    sitename: str | None = None
    hostname: str | None = None
    description: str | None = None
    url: str | None = None
    language: str | None = None
    # The other modes' texts that had words, in the order the modes were tried: the pipeline takes the
    # first of them whose body survives the cleaner when `text`'s does not (a fallback mode can find more
    # words than precision mode and all of them page furniture, e.g. a server's warnings).
    alternatives: tuple[str, ...] = ()


class ExtractError(ValueError):
    """An HTML page that yields no article; `reason` is a snake_case constant."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


# htmldate's last-resort date parser is dateparser asked with no language: a string that no locale parses
# is tried in each of dateparser's 205 locales, each compiling its patterns on first use (1.3 CPU-s and
# ~40 MB per process; the workers' fork server pays it at every run's start, where the two cores are full),
# and each such string then costs ~13 ms after the warm-up (~5 ms over 60 locales).
# Here it tries only the first DATE_LOCALES of dateparser's own ranking, in the same order, so a string
# that one of those parses gets the same date, and one that only a rarer locale reads gets none. On the 735
# dev pages 24 strings on 19 pages reach this parser (9 dated by it, by en, es and ru): the 732 dates found
# are the same with 40 or 60 locales as with all; the warm-up takes 0.61 CPU-s and ~26 MB with 60.
DATE_LOCALES = 60


@functools.cache
def date_parser() -> DateDataParser:
    """htmldate's external date parser (the settings of htmldate 1.11's `get_external_parser`, which
    tests/text/test_extract.py compares), over the DATE_LOCALES first locales. Imported here, as htmldate
    does: an ingest process whose workers parse the pages never loads dateparser."""
    from dateparser.date import DateDataParser
    from dateparser.languages.loader import default_loader

    ranked = default_loader.get_locales(languages=None, locales=None, region=None, use_given_order=False,
                                        allow_conflicting_locales=False)
    locales = [locale.shortname for locale in itertools.islice(ranked, DATE_LOCALES)]
    return DateDataParser(languages=None, locales=locales, region=None, settings={
        "NORMALIZE": True, "PARSERS": ["custom-formats", "absolute-time"], "PREFER_DATES_FROM": "past",
        "PREFER_LOCALE_DATE_ORDER": True, "RETURN_AS_TIMEZONE_AWARE": False, "STRICT_PARSING": True})


# htmldate looks the parser up in its module at each call: in every process that imports this module.
htmldate.extractors.get_external_parser = date_parser


def warm_date_search() -> None:
    """Have htmldate's last-resort date parser build its per-locale tables now.

    The first string htmldate passes to it that no early locale parses makes dateparser compile the
    patterns of every locale it tries (`date_parser`): 0.6 CPU-s and ~26 MB, once per process, charged to
    whichever page comes first. Called in the worker pool's fork server, every worker inherits the tables
    instead of building its own."""
    with contextlib.suppress(Exception):  # a warm-up: any failure only leaves the first page to pay
        date_parser().get_date_data("12 warm-up 2020")


# 1 January written as a date: ISO or numeric, in a URL path (/2024/01/01/), or in words in the languages
# of the rules library (January, Januar, janvier, enero, gennaio, janeiro, januari, январь) and in Chinese
# and Japanese (1月1日).
_NEW_YEAR = (r"{y}-?01-?01|{y}/0?1/0?1\b|\b0?1[./]0?1[./]{y}|"
             r"\b(?:jan(?:uary|uar|vier|eiro|uari)?\.?|enero|gennaio|январ[ья])\s+0?1(?:st|er)?\b,?\s+(?:de\s+)?{y}|"
             r"\b0?1(?:st|er|\.|º)?\s+(?:of\s+|de\s+)?(?:jan(?:uary|uar|vier|eiro|uari)?\.?|enero|gennaio|"
             r"январ[ья])(?:,|\s+de)?\s+{y}|{y}\s*年\s*0?1\s*月\s*0?1\s*日")


def _writes_new_year(tree: HtmlElement, year: str, url: str | None) -> bool:
    """Does the page (or its address) write 1 January of `year` as a date? htmldate's extensive search falls
    back on a year alone ("the busiest year since 2008", "© 2016") and gives it as 1 January: 28 of the 735
    dev pages were dated 1 January, ~2 would be by chance. Such a date is no publication date."""
    text = " ".join([url or "", *tree.xpath("//@content | //@datetime | //@href | //text()")])
    return re.search(_NEW_YEAR.format(y=re.escape(year)), text, re.IGNORECASE) is not None


# Combining marks (Unicode categories Mn, Mc, Me): the vowel signs of Devanagari, Thai and other Brahmic
# scripts, Arabic and Hebrew points. trafilatura's author normalisation strips a name's trailing non-word
# characters with `[^\w]+$`, and Python's \w holds no mark, so "राहुल शर्मा" came out "राहुल शर्म" and
# "สมชาย ใจดี" "สมชาย ใจด" (a user trial): another name, stored as the byline.
def _marks_after(text: str, end: int) -> str:
    """The run of combining marks in `text` from `end` on."""
    stop = end
    while stop < len(text) and unicodedata.category(text[stop])[0] == "M":
        stop += 1
    return text[end:stop]


def restore_name_marks(author: str, tree: HtmlElement) -> str:
    """`author` with each name's trailing combining marks put back as the page writes them after it.

    Only names ending in a letter of a script past Greek, Cyrillic and Armenian (where marks follow
    letters; Latin text is precomposed) are looked up, in the page's text and attribute values."""
    names = author.split("; ")
    if not any(n and "\u0590" <= n[-1] < "\u3000" for n in names):
        return author
    page = " ".join(tree.xpath("//text() | //@content"))
    fixed = []
    for name in names:
        at = page.find(name) if name and "\u0590" <= name[-1] < "\u3000" else -1
        while at >= 0:
            if marks := _marks_after(page, at + len(name)):
                name += marks
                break
            at = page.find(name, at + 1)
        fixed.append(name)
    return "; ".join(fixed)


def visible_date_text(tree: HtmlElement) -> str | None:
    """The text of the page's first `<time>` element (or `itemprop="datePublished"` one) that holds a digit and
    is short enough to be a date, for a page htmldate dates nothing: describe reads it in the page's language.

    htmldate reads a `<time>` element's `datetime` attribute and the date formats its patterns and dateparser's
    first locales know; a page that shows only "2024年11月14日" was stored without a date (a user trial), while
    describe's parser reads it (and "2024년 11월 14일", "14 ноября 2024") once it knows the language."""
    for el in tree.xpath('//time | //*[@itemprop="datePublished"]'):
        text = " ".join(el.text_content().split())
        if 0 < len(text) <= 60 and any(c.isdigit() for c in text):
            return text
    return None


def page_metadata(tree: HtmlElement, url: str | None) -> Document:
    """trafilatura's `extract_metadata` without categories, tags and licence (unused here).

    Same steps, order and date settings as trafilatura 2.3.1 runs them from `bare_extraction` (htmldate's
    extensive search as its default configuration says: it finds a date on ~10% more pages), except that
    the date keeps the time and offset the page gives."""
    meta = examine_meta(tree)
    if meta.author and " " not in meta.author:
        meta.author = None
    with contextlib.suppress(Exception):  # trafilatura guards this call the same way (its JSON-LD parser)
        meta = extract_meta_json(tree, meta)
    if not meta.title:
        meta.title = extract_title(tree)
    if not meta.author:
        meta.author = find_author(tree)  # extract_author's answer without copying the page (text/author.py)
    if meta.author:
        meta.author = restore_name_marks(meta.author, tree)
    if not meta.url:
        meta.url = extract_url(tree, url)
    if meta.url:
        meta.hostname = extract_domain(meta.url, fast=True)
    date_config = set_date_params(DEFAULT_CONFIG.getboolean("DEFAULT", "EXTENSIVE_DATE_SEARCH"))
    date_config["url"] = meta.url
    # The time and offset too ("2024-03-22T23:40:00-0400"): trafilatura asks for the day alone, which
    # stored a 23:40 New York story at midnight UTC, a day early. A date without a time stays a day.
    meta.date = find_date(tree, outputformat="%Y-%m-%dT%H:%M:%S%z", **date_config)
    if meta.date and meta.date.endswith("T00:00:00"):  # a day without a time, as htmldate found it
        meta.date = meta.date[:-9]
        if meta.date.endswith("-01-01") and not _writes_new_year(tree, meta.date[:4], meta.url):
            meta.date = None
    if not meta.date:
        meta.date = visible_date_text(tree)
    if not meta.sitename:
        meta.sitename = extract_sitename(tree)
    if meta.sitename:
        meta.sitename = meta.sitename.lstrip("@")
        if meta.sitename and "." not in meta.sitename and not meta.sitename[0].isupper():
            meta.sitename = meta.sitename.title()
    elif meta.url and (m := META_URL.match(meta.url)):
        meta.sitename = m[1]
    meta.filedate = date_config.get("max_date")
    meta.clean_and_trim()
    return meta


# How deep libxml2 builds a tree with huge_tree (XML_PARSE_HUGE); without it, 256.
MAX_DEPTH = 2048


def _html_parser() -> HTMLParser:
    """trafilatura's own HTML parser (`trafilatura.utils.HTML_PARSER`, the same options), with `huge_tree`.

    Without huge_tree libxml2 stops at 256 levels of nesting and drops the rest of the page without an error
    anyone sees: an old CMS page that opens a `<font>` in each paragraph and never closes it was stored ending
    at paragraph 253, and a page of `<div>`s nested 300 deep gave no text at all. huge_tree raises the depth
    limit to 2048 and the size of one text node from 10 MB to 1 GB. Its other effect, lifting libxml2's guards
    against XML entity expansion, does not apply to HTML (no DTD is read). That is safe here because no page
    reaches the parser larger than `ReadConfig.max_bytes` (32 MB, HTTP bodies 16 MB, refused as `too_large` by
    the readers): a 32 MB tree is as large with huge_tree as without, only no longer cut short, and the
    depth stays bounded (MAX_DEPTH). A deep tree costs trafilatura more than a flat one of the same size
    (~2.6 s a MB for stacks of 2000 nested <div>s, where the parser used to stop early); the worker pool's
    per-document CPU limit (`--doc-seconds`, 20 s) quarantines the worst of them.
    `load_page` makes one for each page (~10 us), so the error log it reads for a cut at MAX_DEPTH is this
    page's alone."""
    return HTMLParser(collect_ids=False, default_doctype=False, encoding="utf-8", remove_comments=True,
                      remove_pis=True, huge_tree=True)


# trafilatura parses HTML again inside an extraction: the article its readability fallback finds is serialised and
# read back with `trafilatura.utils.HTML_PARSER` (`fromstring_bytes`, looked up at each call). Without huge_tree
# there, a page `load_page` parsed whole still came out ending at paragraph 253 whenever readability's text won
# (the unclosed-<font> page in precision and default modes). In every process that imports this module.
trafilatura.utils.HTML_PARSER = _html_parser()


def load_page(html: str) -> HtmlElement | None:
    """trafilatura 2.3.1's `load_html` for a str, step for step, with `_html_parser` (huge_tree): the same tree,
    None for what it rejects, except that a page nested deeper than 256 levels is parsed whole.

    Raises ExtractError (extraction_failed) for a page nested deeper than MAX_DEPTH, where libxml2 stops even
    with huge_tree: the text after that point would be lost, and half a page is not stored as an article."""
    beginning = html[:50].lower()
    dubious = is_dubious_html(beginning)
    html = repair_faulty_html(html, beginning)
    parser = _html_parser()
    tree: HtmlElement | None = None
    bytes_parsed = False
    try:
        tree = fromstring(html, parser=parser)
    except ValueError:  # "Unicode strings with encoding declaration are not supported."
        tree, bytes_parsed = _parse_bytes(html, parser), True
    except Exception:  # trafilatura logs it and goes on with the bytes, as here
        tree = None
    if (tree is None or len(tree) < 1) and not bytes_parsed:
        tree = _parse_bytes(html, parser)
    if any(e.type == ErrorTypes.ERR_RESOURCE_LIMIT for e in parser.error_log):
        raise ExtractError(EXTRACTION_FAILED, f"the HTML page nests elements deeper than {MAX_DEPTH} levels, "
                           "where the HTML parser stops: the text after that point would be lost")
    # trafilatura's rejection of what is not HTML: no "html" in its first characters and under two elements.
    if tree is not None and dubious and len(tree) < 2:
        tree = None
    return tree


def _parse_bytes(html: str, parser: HTMLParser) -> HtmlElement | None:
    """trafilatura's `fromstring_bytes`: the page again as UTF-8 bytes, None if lxml refuses them too."""
    try:
        return fromstring(html.encode("utf8", "surrogatepass"), parser=parser)
    except Exception:
        return None


def extract_html(html: str, url: str | None = None, config: ExtractConfig = ExtractConfig()) -> Extraction:
    """Return the main text and metadata of an HTML page, or raise ExtractError saying why not."""
    modes = [(config.favor_precision, config.favor_recall)]
    if config.fallback:
        modes += [m for m in ((False, False), (False, True)) if m not in modes]
    # As in bare_extraction: a TypeError/ValueError while loading or reading the page means "nothing
    # found" (it returns None), anything else is a failure of trafilatura.
    try:
        tree = load_page(html)
        if tree is None:
            # trafilatura drops a "dubious" tree (no <html>) of fewer than two elements: one <p> or <div>,
            # the fragment a JSON scrape keeps in "content". In a page's frame it is a page.
            tree = load_page(f"<html><body>{html}</body></html>")
        meta = page_metadata(tree, url) if tree is not None else None
    except ExtractError:  # a ValueError too: the page nested too deep to parse whole (load_page)
        raise
    except (TypeError, ValueError):
        tree = meta = None
    except Exception as exc:
        raise ExtractError(EXTRACTION_FAILED, f"trafilatura failed: {type(exc).__name__}: {exc}") from exc
    if tree is None or meta is None:
        raise ExtractError(EXTRACTION_EMPTY, "no article text found in the HTML page (no HTML tree)")
    doc: Any = None
    words = 0
    failure: Exception | None = None
    found_texts: list[str] = []
    for precision, recall in modes:
        try:
            # A tree is copied by bare_extraction before it prunes, so each mode starts from the same page.
            found = trafilatura.bare_extraction(
                tree,
                url=url or meta.url,
                fast=config.fast,
                with_metadata=False,
                include_comments=config.include_comments,
                include_tables=config.include_tables,
                favor_precision=precision,
                favor_recall=recall,
                deduplicate=False,
            )
        except Exception as exc:  # a later mode may still succeed; report the first failure otherwise
            failure = failure or exc
            continue
        if found is None or isinstance(found, dict):  # None: nothing found; dict only with as_dict=True
            continue
        n = count_words(found.text or "")
        if n:
            found_texts.append(found.text or "")
        if doc is None or n > words:
            doc, words = found, n
        if words >= max(config.fallback_words, config.min_words):
            break
    if doc is None and failure is not None:
        raise ExtractError(EXTRACTION_FAILED, f"trafilatura failed: {type(failure).__name__}: {failure}") from failure
    if doc is None:
        raise ExtractError(EXTRACTION_EMPTY, "no article text found in the HTML page")
    text = doc.text or ""
    if words < config.min_words:
        got = "no words" if words == 0 else f"{words} words, fewer than {config.min_words}"
        raise ExtractError(EXTRACTION_EMPTY, f"no article text found in the HTML page (trafilatura extracted {got})")

    def _s(value: object) -> str | None:
        return str(value) if value not in (None, "", "None") else None

    return Extraction(
        text=text,
        title=_s(meta.title),
        author=_s(meta.author),
        date=_s(meta.date),
        sitename=_s(meta.sitename),
        hostname=_s(meta.hostname),
        description=_s(meta.description),
        url=_s(meta.url),
        language=_s(doc.language or meta.language),
        alternatives=tuple(t for t in found_texts if t != text),
    )
