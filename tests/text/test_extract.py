"""Tests of the HTML extraction stage (newsetl.text.extract): precision mode and its fallback."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import pytest

from newsetl.sources.decode import decode_bytes
from newsetl.text.extract import EXTRACTION_EMPTY, ExtractConfig, ExtractError, extract_html

# A real page of traf-dev/html on which trafilatura's precision mode finds nothing while its default
# and recall modes extract the article (~600 words): the page the fallback exists for.
PRECISION_EMPTY_PAGE = ("eval", "traf-dev", "html", "ca950cd7b925df2b.html.gz")


def _page(shared_path: Callable[..., Path]) -> str:
    return decode_bytes(gzip.decompress(shared_path(*PRECISION_EMPTY_PAGE).read_bytes()), html=True)[0]


def test_precision_mode_alone_loses_the_page_the_fallback_keeps(shared_path: Callable[..., Path]) -> None:
    html = _page(shared_path)
    with pytest.raises(ExtractError) as err:
        extract_html(html, config=ExtractConfig(fallback=False))
    assert err.value.reason == EXTRACTION_EMPTY
    ex = extract_html(html)  # the default config: precision first, then default, then recall mode
    assert len(ex.text.split()) >= 300


def test_a_page_without_an_article_is_still_empty_after_the_fallback() -> None:
    html = "<html><body><nav><a href='/'>Home</a> <a href='/news'>News</a></nav></body></html>"
    with pytest.raises(ExtractError) as err:
        extract_html(html)
    assert err.value.reason == EXTRACTION_EMPTY
