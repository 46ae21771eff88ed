"""HTTP(S) fetching and feed parsing: the network half of reading URLs, feeds and sitemaps.

Network I/O is kept apart from turning bytes into documents (`read.read_url` does that), so the
only code that can fail transiently is here, and it decides on the spot what is transient: a 5xx,
a 429, a timeout or a dropped connection is retried with backoff; a 404, a redirect loop, a
wrong content type or an oversized body is final and becomes a `FetchFailure` with a reason.

Every fetch is bounded: a socket timeout per operation plus a total deadline for the whole
response (a server trickling one byte a second cannot hold a run), a size limit checked against
Content-Length *and* while streaming, a bounded number of redirects with loop detection, and
bounded decompression of gzip/deflate bodies. Requests to one host are spaced by a politeness
delay. A page fetched before is asked for with its validators (ETag / Last-Modified, `KnownPage`: the
caller has them from the warehouse, where they were stored with the page's article), so an unchanged
page is answered by a cheap 304 instead of a download.

Stdlib only (urllib): the HTTP client has no dependency beyond the interpreter.
"""

from __future__ import annotations

import html.entities
import http.client
import re
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from newsetl.schemas.records import KnownPage

# Rejection reasons (snake_case constants).
from newsetl.sources.reasons import (
    BAD_FEED,
    BAD_URL,
    CONNECTION_ERROR,
    HTTP_ERROR,
    HTTP_UNAVAILABLE,
    NOT_MODIFIED,
    REDIRECT_LOOP,
    TIMEOUT,
    TOO_LARGE,
    TOO_MANY_REDIRECTS,
    UNSAFE_XML,
    UNSUPPORTED_CONTENT_TYPE,
)

# Rejection reasons live in reasons.py with all the others; the names stay importable from here.
RESPONSE_TOO_LARGE = TOO_LARGE

TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
TEXT_TYPES = frozenset({"text/plain"})
FEED_TYPES = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/xml",
        "text/xml",
        "application/rdf+xml",
    }
)
# Sitemaps are often served gzipped as files (sitemap.xml.gz); urls.read_url inflates them, bounded.
GZIP_TYPES = frozenset({"application/gzip", "application/x-gzip"})
# One document's bytes after decompression (a file, a JSON line, a WARC payload, an HTTP body): ReadConfig's
# limit and the fetcher's are this one number.
MAX_DOCUMENT_BYTES = 32 * 1024 * 1024
# A static host's type for a file it has no type for (S3, nginx without a mapping for .gz).
OCTET_TYPES = frozenset({"application/octet-stream", "binary/octet-stream"})


def maybe_feed_type(mime: str) -> bool:
    """A type a feed or sitemap is served as besides FEED_TYPES: any XML type (`application/x-rss+xml`,
    `text/rss+xml`), or a download's (a `sitemap.xml.gz`). Such a body is read and kept only when its bytes
    are a feed (`urls.read_url`); refused by its type alone, a working feed was quarantined as
    unsupported_content_type every run (a user trial)."""
    return mime.endswith(("+xml", "/xml")) or mime in OCTET_TYPES


@dataclass(frozen=True)
class HttpConfig:
    user_agent: str = "newsetl/0.1 (news text ETL; +https://github.com/newsetl/newsetl)"
    timeout: float = 15.0  # seconds per socket operation (connect, each read)
    total_timeout: float = 60.0  # seconds for a whole response, body included
    # Body limit, after decompression: the limit of every document (README, "Limits"). At 16 MB a 20 MB page
    # the README promised to read was quarantined as too_large (a user trial).
    max_bytes: int = MAX_DOCUMENT_BYTES
    max_redirects: int = 5
    retries: int = 2  # extra attempts after a transient failure
    backoff: float = 1.0  # first retry delay in seconds, doubled on each further retry
    max_retry_after: float = 30.0  # a server's Retry-After is honoured up to this many seconds
    host_delay: float = 1.0  # politeness: minimum seconds between two requests to one host
    # Links taken from one feed or sitemap: the sitemap protocol's own limit (50,000 URLs a file). The links
    # past it are not read, and the feed is quarantined (too_large) saying how many were left out; at 500 a
    # news sitemap's 520 pages loaded 500, and the rest were never read nor recorded (a user trial).
    max_feed_items: int = 50_000
    max_sitemap_depth: int = 2  # sitemap index -> sitemap -> pages
    # A host that did not answer (timeouts, refused or dropped connections, after the retries) for this many URLs
    # in a row is not asked again for `host_pause` seconds: its next URLs fail at once, as transient failures the
    # next run tries again. Each URL of a hung host took 3 x `timeout` and the backoffs (48 s): a feed of 100
    # pages on a host that had gone down held a scheduled run for 80 minutes (a user trial). 0: never.
    host_failures: int = 2
    host_pause: float = 300.0
    accept_types: frozenset[str] = HTML_TYPES | TEXT_TYPES | FEED_TYPES | GZIP_TYPES


@dataclass(frozen=True)
class Response:
    url: str  # as requested
    final_url: str  # after redirects
    status: int
    mime: str  # lower-case media type without parameters ("" when the server sent none)
    charset: str | None
    body: bytes  # decompressed
    fetched_at: datetime
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names


@dataclass(frozen=True)
class FetchFailure:
    url: str
    reason: str
    detail: str
    status: int | None = None
    transient: bool = False
    retry_after: float | None = None  # seconds, from a 429/503 Retry-After header


@dataclass(frozen=True)
class FeedItem:
    url: str
    title: str | None = None
    published_at: str | None = None
    # When the feed says the page last changed: a sitemap's <lastmod>, an Atom entry's <updated> (an RSS
    # item's pubDate is its publication, not a change). `unchanged_since` reads it.
    modified: str | None = None


@dataclass(frozen=True)
class Feed:
    kind: str  # "rss" | "atom" | "sitemap" | "sitemapindex"
    items: tuple[FeedItem, ...]
    left_out: int = 0  # distinct links past `max_items`, not in `items`


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are followed by `Fetcher` itself: counted, loop-checked and polite per hop."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class _Final(Exception):
    def __init__(self, failure: FetchFailure) -> None:
        super().__init__(failure.detail)
        self.failure = failure


def parse_content_type(value: str | None) -> tuple[str, str | None]:
    """('text/html', 'utf-8') from 'text/html; charset="UTF-8"'."""
    if not value:
        return "", None
    mime, *params = value.split(";")
    charset = None
    for param in params:
        key, _, val = param.strip().partition("=")
        if key.strip().lower() == "charset" and val.strip():
            charset = val.strip().strip("\"'")
    return mime.strip().lower(), charset


class Fetcher:
    """One per process and config: holds the per-host politeness clock.

    It keeps no validators of its own: kept here (or in a file beside the warehouse) they were saved when a
    page was fetched, before it was loaded, so a run stopped in between had the next one get a 304 for a
    page the warehouse never stored. The caller passes the validators of the page it holds (`known`)."""

    def __init__(self, config: HttpConfig = HttpConfig()) -> None:
        self.config = config
        self._last_request: dict[str, float] = {}
        # per host: URLs in a row that got no answer, when the last one gave up, and why
        self._unanswered: dict[str, tuple[int, float, str]] = {}
        self._lock = threading.Lock()
        self._opener = urllib.request.build_opener(_NoRedirect())
        self._opener.addheaders = []  # our own User-Agent, not Python-urllib's

    # -- public -------------------------------------------------------------------------------
    def fetch(self, url: str, *, known: KnownPage | None = None) -> Response | FetchFailure:
        """GET `url`, retrying only transient failures; never raises for network or HTTP errors. A host that
        gave no answer for `host_failures` URLs in a row is not asked for `host_pause` seconds. `known`: the
        stored page's validators, sent as If-None-Match / If-Modified-Since (an unchanged page: a
        `not_modified` failure, a skip)."""
        paused = self._paused(url)
        if paused is not None:
            return paused
        result = self._fetch_retrying(url, known=known)
        self._note_answer(url, result)
        return result

    def _paused(self, url: str) -> FetchFailure | None:
        cfg = self.config
        host = _host(url)
        with self._lock:
            count, since, why = self._unanswered.get(host, (0, 0.0, ""))
        if not cfg.host_failures or count < cfg.host_failures or time.monotonic() - since >= cfg.host_pause:
            return None
        return FetchFailure(url, why, f"not fetched: {host} gave no answer for the {count} URLs before this one "
                            f"(tried again {cfg.host_pause:g} s after the last, or by the next run)", transient=True)

    def _note_answer(self, url: str, result: Response | FetchFailure) -> None:
        host = _host(url)
        with self._lock:
            if isinstance(result, FetchFailure) and result.status is None and result.reason in (TIMEOUT,
                                                                                               CONNECTION_ERROR):
                count = self._unanswered.get(host, (0, 0.0, ""))[0]
                self._unanswered[host] = (count + 1, time.monotonic(), result.reason)
            else:  # the host answered (a page, an HTTP error, a 304...)
                self._unanswered.pop(host, None)

    def _fetch_retrying(self, url: str, *, known: KnownPage | None) -> Response | FetchFailure:
        attempt = 0
        while True:
            result = self._fetch_following(url, known=known)
            if isinstance(result, Response) or not result.transient or attempt >= self.config.retries:
                if isinstance(result, FetchFailure) and result.transient:
                    # Out of retries: still a failure, but say how hard we tried.
                    reason = HTTP_UNAVAILABLE if result.status else result.reason
                    result = FetchFailure(
                        url,
                        reason,
                        f"{result.detail} (after {attempt + 1} attempts)",
                        result.status,
                        transient=True,
                    )
                return result
            delay = self.config.backoff * (2**attempt)
            if result.retry_after is not None:
                delay = max(delay, min(result.retry_after, self.config.max_retry_after))
            time.sleep(delay)
            attempt += 1

    # -- one request chain --------------------------------------------------------------------
    def _fetch_following(self, url: str, *, known: KnownPage | None) -> Response | FetchFailure:
        seen: list[str] = []
        current = url
        try:
            for _hop in range(self.config.max_redirects + 1):
                _check_url(url, current)
                if current in seen:
                    chain = " -> ".join([*seen, current])
                    raise _Final(FetchFailure(url, REDIRECT_LOOP, f"redirect loop: {chain}"))
                seen.append(current)
                # The validators are those of the URL that answered with the stored page: sent to a redirect
                # on the way (a feed's tracking link) they are ignored, and to another page they would lie.
                here = known if known is not None and current == (known.final_url or url) else None
                outcome = self._request(url, current, known=here)
                if isinstance(outcome, str):  # a redirect target
                    current = outcome
                    continue
                return outcome
            raise _Final(
                FetchFailure(
                    url,
                    TOO_MANY_REDIRECTS,
                    f"more than {self.config.max_redirects} redirects: {' -> '.join(seen)}",
                )
            )
        except _Final as final:
            return final.failure

    def _request(self, url: str, current: str, *, known: KnownPage | None) -> Response | FetchFailure | str:
        cfg = self.config
        headers = {
            "User-Agent": cfg.user_agent,
            "Accept": "text/html,application/xhtml+xml,application/rss+xml,application/atom+xml,"
            "application/xml;q=0.9,text/plain;q=0.8,*/*;q=0.1",
            "Accept-Encoding": "gzip, deflate",
        }
        if known is not None and known.etag:
            headers["If-None-Match"] = known.etag
        if known is not None and known.last_modified:
            headers["If-Modified-Since"] = known.last_modified
        conditional = "If-None-Match" in headers or "If-Modified-Since" in headers
        try:
            wire = wire_url(current)
        except ValueError as exc:
            return FetchFailure(url, BAD_URL, f"malformed URL {current!r}: {exc}")
        self._wait_for_host(current)
        deadline = time.monotonic() + cfg.total_timeout
        request = urllib.request.Request(wire, headers=headers, method="GET")
        try:
            resp = self._opener.open(request, timeout=cfg.timeout)
        except urllib.error.HTTPError as err:
            with err:
                return self._http_error(url, current, err, conditional=conditional)
        except TimeoutError as exc:
            return _transient(
                url, TIMEOUT, f"no answer from {_host(current)} within {cfg.timeout:g} s ({exc})"
            )
        except urllib.error.URLError as err:
            if isinstance(err.reason, TimeoutError | socket.timeout):
                return _transient(url, TIMEOUT, f"no answer from {_host(current)} within {cfg.timeout:g} s")
            if isinstance(err.reason, ssl.SSLError | ssl.CertificateError):
                return FetchFailure(url, CONNECTION_ERROR, f"TLS failure with {_host(current)}: {err.reason}")
            return _transient(url, CONNECTION_ERROR, f"cannot connect to {_host(current)}: {err.reason}")
        except (http.client.HTTPException, ConnectionError, OSError) as exc:
            return _transient(url, CONNECTION_ERROR, f"connection to {_host(current)} failed: {exc!r}")
        with resp:
            return self._read_response(url, current, resp, deadline)

    def _http_error(self, url: str, current: str, err: urllib.error.HTTPError, *,
                    conditional: bool) -> FetchFailure | str:
        status = err.code
        if 300 <= status < 400 and status != 304:
            location = err.headers.get("Location")
            if not location:
                return FetchFailure(url, HTTP_ERROR, f"HTTP {status} without a Location header", status)
            return urllib.parse.urljoin(current, location.strip())
        if status == 304 and conditional:
            return FetchFailure(url, NOT_MODIFIED, "HTTP 304: unchanged since the stored fetch", status)
        if status == 304:
            # Not modified since nothing: taken for a skip, the page would be in no row at all.
            return FetchFailure(url, HTTP_ERROR, f"HTTP 304 to a request that was not conditional, for {current}",
                                status)
        if status in TRANSIENT_STATUS:
            return FetchFailure(
                url,
                HTTP_UNAVAILABLE,
                f"HTTP {status} {err.reason} from {_host(current)}",
                status,
                transient=True,
                retry_after=_retry_after_seconds(err.headers.get("Retry-After")),
            )
        return FetchFailure(url, HTTP_ERROR, f"HTTP {status} {err.reason} for {current}", status)

    def _read_response(self, url: str, current: str, resp: Any, deadline: float) -> Response | FetchFailure:
        cfg = self.config
        status = int(resp.status)
        headers = {k.lower(): v for k, v in resp.headers.items()}
        mime, charset = parse_content_type(headers.get("content-type"))
        # An empty type is let through and sniffed later; anything declared must be one we read.
        if mime and mime not in cfg.accept_types and not maybe_feed_type(mime):
            return FetchFailure(
                url, UNSUPPORTED_CONTENT_TYPE, f"{current} is {mime}, not HTML, text or a feed", status
            )
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > cfg.max_bytes:
            return FetchFailure(
                url,
                RESPONSE_TOO_LARGE,
                f"{current} announces {int(length)} bytes, over the limit of {cfg.max_bytes}",
                status,
            )
        encoding = headers.get("content-encoding", "identity").strip().lower()
        inflater = zlib.decompressobj(wbits=47) if encoding in {"gzip", "x-gzip", "deflate"} else None
        body = bytearray()
        received = 0  # bytes as sent (before inflating), to hold against Content-Length
        read = getattr(resp, "read1", resp.read)
        try:
            while True:
                if time.monotonic() > deadline:
                    return _transient(
                        url,
                        TIMEOUT,
                        f"{current} did not finish within {cfg.total_timeout:g} s "
                        f"({len(body)} bytes received)",
                    )
                chunk = read(65536)
                if not chunk:
                    break
                received += len(chunk)
                if inflater is not None:
                    # max_length bounds what one chunk may inflate to: a gzip bomb stops here.
                    chunk = inflater.decompress(chunk, cfg.max_bytes + 1 - len(body))
                body += chunk
                if len(body) > cfg.max_bytes:
                    return FetchFailure(
                        url,
                        RESPONSE_TOO_LARGE,
                        f"{current} sent more than the limit of {cfg.max_bytes} bytes",
                        status,
                    )
        except TimeoutError:
            return _transient(url, TIMEOUT, f"{current} stalled for {cfg.timeout:g} s while sending the body")
        except zlib.error as exc:
            return FetchFailure(
                url, CONNECTION_ERROR, f"{current} sent a corrupt {encoding} body: {exc}", status
            )
        except (http.client.HTTPException, ConnectionError, OSError) as exc:
            return _transient(url, CONNECTION_ERROR, f"{current} broke off while sending the body: {exc!r}")
        # http.client's read1 ends quietly when the server closes early: a body shorter than announced, or a
        # compressed one whose stream never ended, is half a page, which would load as a short article.
        if length.isdigit() and received < int(length):
            return _transient(
                url, CONNECTION_ERROR, f"{current} broke off after {received} of {int(length)} bytes"
            )
        if inflater is not None and not inflater.eof:
            return _transient(
                url,
                CONNECTION_ERROR,
                f"{current} broke off: its {encoding} stream ends early ({received} bytes received)",
            )
        return Response(
            url=url,
            final_url=current,
            status=status,
            mime=mime,
            charset=charset,
            body=bytes(body),
            fetched_at=datetime.now(UTC),
            headers=headers,
        )

    # -- politeness ----------------------------------------------------------------------------
    def _wait_for_host(self, url: str) -> None:
        host = _host(url)
        with self._lock:
            now = time.monotonic()
            ready = self._last_request.get(host, -1e9) + self.config.host_delay
            wait = max(0.0, ready - now)
            self._last_request[host] = now + wait  # reserve the slot before sleeping
        if wait:
            time.sleep(wait)


_FETCHERS: dict[HttpConfig, Fetcher] = {}
_FETCHERS_LOCK = threading.Lock()


def fetcher_for(config: HttpConfig) -> Fetcher:
    """The process-wide fetcher of a config, so politeness holds across calls and batches."""
    with _FETCHERS_LOCK:
        if config not in _FETCHERS:
            _FETCHERS[config] = Fetcher(config)
        return _FETCHERS[config]


def _transient(url: str, reason: str, detail: str, status: int | None = None) -> FetchFailure:
    return FetchFailure(url, reason, detail, status, transient=True)


def _host(url: str) -> str:
    try:
        return (urllib.parse.urlsplit(url).netloc or url).lower()
    except ValueError:
        return url


def _check_url(original: str, url: str) -> None:
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 -- parsed on access: "host:80x" or "host:99999" raise here
    except ValueError as exc:
        raise _Final(FetchFailure(original, BAD_URL, f"malformed URL {url!r}: {exc}")) from None
    # A redirect to file:// or ftp:// must never be followed: it would read local files.
    if parts.scheme.lower() not in {"http", "https"} or not parts.netloc:
        raise _Final(FetchFailure(original, BAD_URL, f"not an http(s) URL: {url!r}"))


# Characters a URI may carry as they are (RFC 3986 reserved and unreserved, and "%" of an escape already
# made); everything else -- spaces, non-ASCII letters -- is percent-encoded as UTF-8, as a browser does.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"


def wire_url(url: str) -> str:
    """The URL as it goes on the wire: an IRI a user or a feed writes ("https://例え.jp/päge 2") made a
    URI (IDNA host, percent-encoded path and query; the fragment is never sent). http.client sends ASCII
    only and would fail the whole request on one "ä". Raises ValueError for a host IDNA refuses."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    userinfo, at, hostport = netloc.rpartition("@")
    if not hostport.startswith("["):  # an IPv6 literal is ASCII and no domain name
        host, colon, port = hostport.partition(":")
        try:
            # the resolver encodes the name so too, and fails the same way on "a..b" (an empty label)
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ValueError(f"the host {host!r} is not a valid domain name ({exc})") from None
        netloc = f"{urllib.parse.quote(userinfo, safe=':%')}{at}{host}{colon}{port}"
    path = urllib.parse.quote(parts.path, safe=_PATH_SAFE) or "/"
    query = urllib.parse.quote(parts.query, safe=_QUERY_SAFE)
    return urllib.parse.urlunsplit((parts.scheme.lower(), netloc, path, query, ""))


def parse_http_date(value: str | None) -> datetime | None:
    """An HTTP date header's value (`Tue, 01 Dec 2026 08:30:00 GMT`) as an aware datetime; None when absent or
    unreadable (it loses a time, never the response)."""
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _retry_after_seconds(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return float(value.strip())
    when = parse_http_date(value)
    return None if when is None else max(0.0, (when - datetime.now(UTC)).total_seconds())


# -- feeds and sitemaps -----------------------------------------------------------------------

_NAME = re.compile(rb"[A-Za-z_][\w.:-]*")
_DOCTYPE_ENTITY = re.compile(rb"<!DOCTYPE[^>]*\[|<!ENTITY", re.I)
_FEED_ROOTS = {
    "rss": "rss",
    "feed": "atom",
    "RDF": "rss",
    "urlset": "sitemap",
    "sitemapindex": "sitemapindex",
}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].rsplit(":", 1)[-1]


def feed_kind(body: bytes) -> str | None:
    """'rss' | 'atom' | 'sitemap' | 'sitemapindex' when the bytes are such a document, else None."""
    name = root_name(body[:65536])
    return _FEED_ROOTS.get(_local(name)) if name else None


def root_name(head: bytes) -> str | None:
    """The root element's name, skipping the prolog, comments and a DOCTYPE.

    A linear scan, not a regex: a regex with optional repeated groups backtracks for minutes on
    hostile input such as thousands of unterminated comments.
    """
    pos = 3 if head.startswith(b"\xef\xbb\xbf") else 0
    end = len(head)
    while pos < end:
        while pos < end and head[pos] in b" \t\r\n":
            pos += 1
        if head.startswith(b"<?", pos):
            close = head.find(b"?>", pos)
            pos = -1 if close < 0 else close + 2
        elif head.startswith(b"<!--", pos):
            close = head.find(b"-->", pos + 4)
            pos = -1 if close < 0 else close + 3
        elif head[pos : pos + 9].upper() == b"<!DOCTYPE":
            gt = head.find(b">", pos)
            bracket = head.find(b"[", pos, gt if gt >= 0 else end)
            if bracket >= 0:  # an internal subset: skip to "]" then ">"
                close = head.find(b"]", bracket)
                gt = head.find(b">", close) if close >= 0 else -1
            pos = -1 if gt < 0 else gt + 1
        elif head.startswith(b"<", pos):
            match = _NAME.match(head, pos + 1)
            return match.group(0).decode("ascii", "ignore") if match else None
        else:
            return None
        if pos < 0:
            return None
    return None


def parse_feed(body: bytes, base_url: str, max_items: int = HttpConfig.max_feed_items) -> Feed | FetchFailure:
    """Links of an RSS/Atom feed or a sitemap, resolved against `base_url`, deduplicated, bounded.

    Feeds never need DTDs or entities; a document declaring them is refused outright, so the
    "billion laughs" family of XML bombs never reaches the parser.
    """
    kind = feed_kind(body)
    if kind is None:
        return FetchFailure(base_url, BAD_FEED, "not an RSS/Atom feed or a sitemap")
    if _DOCTYPE_ENTITY.search(body[:65536]):
        return FetchFailure(
            base_url, UNSAFE_XML, "the feed declares a DTD or entities; refused (XML bomb guard)"
        )
    try:
        root = ET.fromstring(body)
    except (ET.ParseError, ValueError) as exc:
        # The commonest fault of real feeds: an HTML entity (&rsquo; &nbsp;) or a bare & (a link's query) that XML
        # does not know. One such character refused the whole feed and none of its pages was read, run after run
        # (a user trial); feed readers read them as a browser would, and so does this second try.
        try:
            root = ET.fromstring(repair_entities(body))
        except (ET.ParseError, ValueError):
            return FetchFailure(base_url, BAD_FEED, f"malformed XML in {kind}: {exc}")
    items: list[FeedItem] = []
    seen: set[str] = set()
    left_out = 0
    for node, base in _with_bases(root, base_url):
        name = _local(node.tag) if isinstance(node.tag, str) else ""
        item = _feed_item(kind, name, node, base)
        if item is None or item.url in seen:
            continue
        seen.add(item.url)
        if len(items) < max_items:
            items.append(item)
        else:
            left_out += 1  # counted, never dropped unsaid: the caller records the cut
    return Feed(kind=kind, items=tuple(items), left_out=left_out)


_XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"


def _based(node: ET.Element, base: str) -> str:
    """`base` as the node's `xml:base` changes it (relative to the base it is in)."""
    declared = node.get(_XML_BASE)
    if not declared or not declared.strip():
        return base
    try:
        return urllib.parse.urljoin(base, declared.strip())
    except ValueError:
        return base  # a malformed xml:base changes nothing: the links resolve as without it


def _with_bases(root: ET.Element, base_url: str) -> Iterator[tuple[ET.Element, str]]:
    """Every element in document order, with the base its relative links resolve against: the feed's URL as
    the `xml:base` of the element and its ancestors change it (Atom feeds, Blogger's and WordPress's among
    them, link entries relative to one: resolved against the feed's URL they named pages that do not
    exist). Iterative: a deeply nested document cannot exhaust the stack."""
    stack: list[tuple[ET.Element, str]] = [(root, _based(root, base_url))]
    while stack:
        node, base = stack.pop()
        yield node, base
        stack.extend((child, _based(child, base)) for child in reversed(node))


_XML_ENTITIES = frozenset({b"amp", b"lt", b"gt", b"quot", b"apos"})
# A CDATA section (its text is literal: left as it is), or an ampersand and the reference it may start.
_AMPERSAND = re.compile(
    rb"<!\[CDATA\[.*?(?:\]\]>|\Z)|&(?:(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{0,31});)?", re.S
)


def repair_entities(body: bytes) -> bytes:
    """The feed's bytes with the references XML does not know made ones it does: an HTML named entity
    (`&rsquo;`) as its character reference, a bare `&` (`?a=1&b=2`, `AT&T`) as `&amp;`. CDATA sections are
    left as they are. Only for a feed XML refused as written; an encoding that is not ASCII-compatible
    (UTF-16) is left as it is and stays refused."""

    def fix(match: re.Match[bytes]) -> bytes:
        whole, ref = match.group(0), match.group(1)
        if whole.startswith(b"<![CDATA["):
            return whole
        if ref is None:
            return b"&amp;"
        if ref.startswith(b"#") or ref in _XML_ENTITIES:
            return whole
        codepoint = html.entities.name2codepoint.get(ref.decode("ascii"))
        return f"&#{codepoint};".encode("ascii") if codepoint else b"&amp;" + ref + b";"

    return _AMPERSAND.sub(fix, body)


_TITLE_TAG = re.compile(r"</?[A-Za-z][^<>]{0,500}>")


def _plain_title(title: str | None) -> str | None:
    """A feed item's title as text: RSS titles and Atom's `type="html"` ones carry escaped markup
    (`&lt;b&gt;Breaking&lt;/b&gt;`, `&amp;amp;`), which became the article's title tags and all (a user trial)."""
    if title is None or ("<" not in title and "&" not in title):
        return title
    return re.sub(r"[ \t\r\n]+", " ", html.unescape(_TITLE_TAG.sub("", title))).strip() or None


def _child_text(node: ET.Element, *names: str) -> str | None:
    for child in node:
        if isinstance(child.tag, str) and _local(child.tag) in names and child.text and child.text.strip():
            return child.text.strip()
    return None


def _feed_item(kind: str, name: str, node: ET.Element, base_url: str) -> FeedItem | None:
    link: str | None = None
    title = published = modified = None
    if kind == "rss" and name == "item":
        link = _child_text(node, "link")
        if not link:
            guid = next((c for c in node if isinstance(c.tag, str) and _local(c.tag) == "guid"), None)
            if guid is not None and guid.get("isPermaLink", "true") != "false":
                link = (guid.text or "").strip() or None
        title = _child_text(node, "title")
        published = _child_text(node, "pubDate", "date", "published")
    elif kind == "atom" and name == "entry":
        for child in node:
            if (
                isinstance(child.tag, str)
                and _local(child.tag) == "link"
                and child.get("href")
                and child.get("rel", "alternate") == "alternate"
            ):
                link = child.get("href")
                base_url = _based(child, base_url)  # a link may carry its own xml:base
                break
        title = _child_text(node, "title")
        published = _child_text(node, "published", "updated")
        modified = _child_text(node, "updated")
    elif kind in {"sitemap", "sitemapindex"} and name in {"url", "sitemap"}:
        link = _child_text(node, "loc")
        published = _child_text(node, "lastmod", "publication_date")
        modified = _child_text(node, "lastmod")
        title = next(
            (_child_text(c, "title") for c in node if isinstance(c.tag, str) and _local(c.tag) == "news"),
            None,
        )
    if not link:
        return None
    title = _plain_title(title)
    try:
        # Without its fragment, which is never sent: "/a#comments" and "/a" are one page, fetched once.
        absolute = urllib.parse.urldefrag(urllib.parse.urljoin(base_url, link.strip())).url
        scheme = urllib.parse.urlsplit(absolute).scheme.lower()
    except ValueError:
        # A malformed link ("http://[::1") is still an item the feed names: fetched, it is quarantined
        # as bad_url with the feed's own text, rather than dropped here without a trace.
        return FeedItem(url=link.strip(), title=title, published_at=published, modified=modified)
    if scheme not in {"http", "https"}:
        return None
    return FeedItem(url=absolute, title=title, published_at=published, modified=modified)


def unchanged_since(modified: str | None, fetched_at: datetime | None) -> bool:
    """Does a feed's `modified` (W3C datetime: `2024-06-10`, `2024-06-10T10:00:00+02:00`) say the page has not
    changed since `fetched_at`? A date alone counts as its day's end; a time without a zone as UTC. No date,
    or one that does not parse: False (ask the server)."""
    if not modified or fetched_at is None:
        return False
    text = modified.strip()
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        return False
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if len(text) <= 10:  # a date alone: changed at any time that day
        when += timedelta(days=1)
    if fetched_at.tzinfo is None:
        fetched_at = fetched_at.replace(tzinfo=UTC)
    return when <= fetched_at
