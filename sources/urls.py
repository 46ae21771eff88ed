"""URLs, RSS/Atom feeds and sitemaps: fetched (see http.py) and turned into documents."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from newsetl.schemas.records import STAGE_READ, RawDocument, Rejection
from newsetl.sources import http as _http
from newsetl.sources.config import ReadConfig
from newsetl.sources.document import document_from_bytes
from newsetl.sources.files import inflate
from newsetl.sources.reasons import BAD_FEED, EMPTY_FEED, TOO_LARGE, UNSUPPORTED_CONTENT_TYPE, reject


def read_url(
    url: str, config: ReadConfig = ReadConfig(), *, _depth: int = 0
) -> Iterator[RawDocument | Rejection]:
    """Fetch a page, an RSS/Atom feed or a sitemap. A feed yields one document per linked page.

    Failures become rejections with the fetcher's reason (http_error for a final 4xx,
    http_unavailable after retried 5xx, timeout, redirect_loop, too_large, ...).
    """
    fetcher = _http.fetcher_for(config.http)
    result = fetcher.fetch(url)
    if isinstance(result, _http.FetchFailure):
        yield _url_rejection(result)
        return
    body = inflate(result.body, config.max_bytes, config.chunk_bytes, url)
    if isinstance(body, Rejection):
        yield body
        return
    # The bytes say what a response is, whatever its Content-Type: a feed or sitemap served as text/html or
    # text/plain (a misconfigured server, a static host's default type) was stored as one "article" whose body
    # was its links' text, and none of the pages it lists was fetched (a user trial). An HTML page's root is
    # never rss, feed, RDF, urlset or sitemapindex, so no page is taken for a feed.
    kind = _http.feed_kind(body)
    if kind is not None:
        if _depth > config.http.max_sitemap_depth:  # a feed linking feeds linking feeds...
            yield reject(
                url,
                STAGE_READ,
                BAD_FEED,
                f"feeds nested deeper than {config.http.max_sitemap_depth} levels; not followed",
            )
            return
        yield from _read_feed(url, body, result.final_url, kind, config, _depth)
        return
    if result.mime in _http.FEED_TYPES | _http.GZIP_TYPES:
        yield reject(
            url,
            STAGE_READ,
            BAD_FEED,
            f"{url} is served as {result.mime} but is not an RSS/Atom feed or a sitemap",
            raw=body,
        )
        return
    if result.mime and result.mime not in _http.HTML_TYPES | _http.TEXT_TYPES:
        # read only in case it was a feed (`http.maybe_feed_type`): an image/svg+xml, a PDF download
        yield reject(url, STAGE_READ, UNSUPPORTED_CONTENT_TYPE,
                     f"{url} is {result.mime} and not an RSS/Atom feed or a sitemap, nor HTML or text", raw=body)
        return
    kind_name = "txt" if result.mime in _http.TEXT_TYPES else "html"
    doc = document_from_bytes(
        url,
        body,
        kind_name,
        url=result.final_url,
        fetched_at=result.fetched_at,
        declared_encoding=result.charset,
        config=config,
    )
    if isinstance(doc, RawDocument):
        doc = _replace(
            doc,
            kind="url",
            extra={"http_status": result.status, "final_url": result.final_url, "content_type": result.mime},
        )
    yield doc

def _read_feed(
    url: str, body: bytes, base: str, kind: str, config: ReadConfig, depth: int
) -> Iterator[RawDocument | Rejection]:
    feed = _http.parse_feed(body, base, config.http.max_feed_items)
    if isinstance(feed, _http.FetchFailure):
        yield reject(url, STAGE_READ, feed.reason, f"{url}: {feed.detail}", raw=body[:65536])
        return
    if not feed.items:
        # Skipped, not quarantined, but recorded: a feed that names nothing must still show in `sources`.
        yield reject(url, STAGE_READ, EMPTY_FEED, f"{url}: the {feed.kind} lists no http(s) page",
                     raw=body[:65536])
        return
    if feed.left_out:
        # Before the pages, so a run stopped in them still has it: the pages past the limit are never read.
        yield reject(url, STAGE_READ, TOO_LARGE,
                     f"{url}: the {feed.kind} lists {len(feed.items) + feed.left_out} pages, over the limit of "
                     f"{config.http.max_feed_items}: the first {len(feed.items)} are read, {feed.left_out} left out "
                     "(split it, or raise HttpConfig.max_feed_items)", raw=body[:65536])
    for item in feed.items:
        if feed.kind == "sitemapindex":
            yield from read_url(item.url, config, _depth=depth + 1)
            continue
        for doc in read_url(item.url, config, _depth=depth + 1):
            if isinstance(doc, RawDocument):
                # The feed's title and date are the publisher's own metadata: keep them as hints.
                doc = _replace(
                    doc,
                    title=doc.title or item.title,
                    published_at=doc.published_at or item.published_at,
                    extra={**doc.extra, "feed_url": url},
                )
            yield doc

def _url_rejection(failure: _http.FetchFailure) -> Rejection:
    detail = failure.detail if failure.status is None else f"{failure.detail} [status {failure.status}]"
    return reject(failure.url, STAGE_READ, failure.reason, detail)

def _replace(doc: RawDocument, **changes: Any) -> RawDocument:
    return RawDocument(**{**doc.__dict__, **changes})
