"""Why an input did not become a document: every rejection reason of the sources layer, in one place.

Reasons are snake_case constants, counted in run summaries and stored in `quarantine.reason`. Reasons
in `SKIP_REASONS` are not failures: a capture that is deliberately not an article, or a page that is
unchanged since the last run; the flow counts them as skipped instead of quarantining them.
"""

from __future__ import annotations

from newsetl.schemas.records import Rejection

# Files and paths
NOT_FOUND = "not_found"
UNREADABLE = "unreadable"
NOT_REGULAR_FILE = "not_regular_file"
UNSUPPORTED_KIND = "unsupported_kind"
BAD_SOURCES_FILE = "bad_sources_file"
SYMLINKED_FOLDER = "symlinked_folder"  # met while walking a folder, not followed (a skip): name it to read it
READ_ERROR = "read_error"  # reading the input met an error newsetl did not foresee (a bug): the input is refused
# Content
EMPTY_INPUT = "empty_input"
BINARY_CONTENT = "binary_content"
UNDECODABLE = "undecodable"
BAD_GZIP = "bad_gzip"
TOO_LARGE = "too_large"
# JSON lines
BAD_JSON = "bad_json"
BAD_RECORD = "bad_record"
DUPLICATE_RECORD = "duplicate_record"
# WARC archives
WARC_BAD = "bad_warc"
WARC_NOT_HTML = "warc_record_not_html"  # a capture of an image, script, style sheet, PDF...
WARC_HTTP_STATUS = "warc_http_status"  # a capture of a redirect or an error page
WARC_REVISIT = "warc_revisit"  # a duplicate capture recorded without payload
WARC_TRUNCATED = "warc_truncated"  # part of a page: marked WARC-Truncated, cut short of its Content-Length, a 206
# HTTP, feeds and sitemaps
HTTP_ERROR = "http_error"  # a final 4xx (404, 410, 403, ...)
HTTP_UNAVAILABLE = "http_unavailable"  # 5xx / 429 still failing after the retries
TIMEOUT = "timeout"
CONNECTION_ERROR = "connection_error"
TOO_MANY_REDIRECTS = "too_many_redirects"
REDIRECT_LOOP = "redirect_loop"
BAD_URL = "bad_url"
UNSUPPORTED_CONTENT_TYPE = "unsupported_content_type"
NOT_MODIFIED = "not_modified"  # a 304: the page is unchanged since the last fetch (a skip, not an error)
BAD_FEED = "bad_feed"
UNSAFE_XML = "unsafe_xml"

EMPTY_FEED = "empty_feed"  # a feed or sitemap that lists no page today: nothing wrong, and nothing to read

SKIP_REASONS = frozenset({NOT_MODIFIED, WARC_NOT_HTML, WARC_HTTP_STATUS, WARC_REVISIT, EMPTY_FEED, SYMLINKED_FOLDER})


def display_path(path: str) -> str:
    """A path safe to store: file names that are not valid UTF-8 get their bad bytes escaped.

    os.listdir hands such names back with lone surrogates, which Arrow and DuckDB cannot encode.
    """
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def reject(
    source_uri: str,
    stage: str,
    reason: str,
    detail: str,
    *,
    doc_id: str | None = None,
    raw: bytes | None = None,
    url: str | None = None,
) -> Rejection:
    """A rejection with a storable source_uri."""
    return Rejection(
        source_uri=display_path(source_uri), stage=stage, reason=reason, detail=detail, doc_id=doc_id, raw=raw,
        url=url,
    )
