"""URLs, RSS/Atom feeds and sitemaps: fetched (see http.py) and turned into documents."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from newsetl.schemas.records import STAGE_READ, KnownPage, RawDocument, Rejection
from newsetl.sources import http as _http
from newsetl.sources.config import ReadConfig
from newsetl.sources.document import document_from_bytes
from newsetl.sources.files import inflate
from newsetl.sources.reasons import (
    BAD_FEED,
    EMPTY_FEED,
    NOT_MODIFIED,
    TOO_LARGE,
    UNSUPPORTED_CONTENT_TYPE,
    reject,
)


def read_url(
    url: str, config: ReadConfig = ReadConfig(), *, _depth: int = 0, _pages: Mapping[str, KnownPage] | None = None
) -> Iterator[RawDocument | Rejection]:
    """Fetch a page, an RSS/Atom feed or a sitemap. A feed yields one document per linked page.

    Failures become rejections with the fetcher's reason (http_error for a final 4xx,
    http_unavailable after retried 5xx, timeout, redirect_loop, too_large, ...). A page the warehouse
    holds (`ReadConfig.known_pages`) is asked for with its validators; unchanged, it is a `not_modified`
    skip of the stored document. `_pages`: a feed's pages, looked up at once.
    """
    known = (_known_pages(config, [url]) if _pages is None else _pages).get(url)
    fetcher = _http.fetcher_for(config.http)
    result = fetcher.fetch(url, known=known)
    if isinstance(result, _http.FetchFailure):
        yield _url_rejection(result, known)
        return
    body = inflate(result.body, config.max_bytes, config.chunk_bytes, url)
    if isinstance(body, Rejection):
        yield dataclasses.replace(body, url=url)
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
                url=url,
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
            url=url,
        )
        return
    if result.mime and result.mime not in _http.HTML_TYPES | _http.TEXT_TYPES:
        # read only in case it was a feed (`http.maybe_feed_type`): an image/svg+xml, a PDF download
        yield reject(url, STAGE_READ, UNSUPPORTED_CONTENT_TYPE,
                     f"{url} is {result.mime} and not an RSS/Atom feed or a sitemap, nor HTML or text", raw=body,
                     url=url)
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
        # The validators go into the article's extra with the rest of the response: stored in the batch's
        # transaction, they exist only for a page the warehouse holds (read back by `known_pages`).
        validators = {k: result.headers[h] for k, h in (("etag", "etag"), ("last_modified", "last-modified"))
                      if result.headers.get(h)}
        doc = _replace(
            doc,
            kind="url",
            extra={"http_status": result.status, "final_url": result.final_url, "content_type": result.mime,
                   **validators},
        )
    yield doc


def _known_pages(config: ReadConfig, urls: Sequence[str]) -> Mapping[str, KnownPage]:
    return config.known_pages(urls) if config.known_pages is not None and urls else {}

def _read_feed(
    url: str, body: bytes, base: str, kind: str, config: ReadConfig, depth: int
) -> Iterator[RawDocument | Rejection]:
    feed = _http.parse_feed(body, base, config.http.max_feed_items)
    if isinstance(feed, _http.FetchFailure):
        yield reject(url, STAGE_READ, feed.reason, f"{url}: {feed.detail}", raw=body[:65536], url=url)
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
    if feed.kind == "sitemapindex":
        for item in feed.items:
            yield from read_url(item.url, config, _depth=depth + 1)
        return
    pages = _known_pages(config, [item.url for item in feed.items])
    for item in feed.items:
        known = pages.get(item.url)
        if known is not None and _http.unchanged_since(item.modified, known.fetched_at):
            # The feed dates the page's last change before the stored fetch: not asked at all. A 304 would
            # still cost a request, one a second per host: a 520-page sitemap took 8 minutes a run.
            yield reject(item.url, STAGE_READ, NOT_MODIFIED,
                         f"unchanged: {url} dates it {item.modified}, before its stored fetch at "
                         f"{known.fetched_at:%Y-%m-%d %H:%M:%S %Z}", doc_id=known.doc_id)
            continue
        for doc in read_url(item.url, config, _depth=depth + 1, _pages=pages):
            if isinstance(doc, RawDocument):
                # The feed's title and date are the publisher's own metadata: keep them as hints.
                doc = _replace(
                    doc,
                    title=doc.title or item.title,
                    published_at=doc.published_at or item.published_at,
                    extra={**doc.extra, "feed_url": url},
                )
            yield doc

def _url_rejection(failure: _http.FetchFailure, known: KnownPage | None) -> Rejection:
    detail = failure.detail if failure.status is None else f"{failure.detail} [status {failure.status}]"
    # Unchanged: the skip names the stored document, so lineage leads from the source to its article.
    doc_id = known.doc_id if known is not None and failure.reason == NOT_MODIFIED else None
    return reject(failure.url, STAGE_READ, failure.reason, detail, doc_id=doc_id, url=failure.url)

def _replace(doc: RawDocument, **changes: Any) -> RawDocument:
    return RawDocument(**{**doc.__dict__, **changes})
