"""The record types that flow between stages.

Frozen dataclasses: a stage returns new records, it never mutates the ones it was given
(datatrove's contract, minus its in-place edits). Every stage returns either a record or a
`Rejection` with a snake_case reason, so nothing disappears silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

# Rejection stages (where in the pipeline an input was refused).
STAGE_DISCOVER = "discover"
STAGE_READ = "read"
STAGE_DECODE = "decode"
STAGE_EXTRACT = "extract"
STAGE_PROCESS = "process"

class InputRow(NamedTuple):
    """A local input file read to the end, recorded once its documents are all loaded so that an unchanged
    file is not read again (table `inputs`). `read_as`: `ReadConfig.read_as`. `ctime_ns`: the inode's
    change time, which no user tool sets: a file replaced by another of the same size and modification
    time (`cp -p`, `rsync -a`, `tar x`, `curl -R` of a corrected story) has a new one."""

    path: str
    size: int
    mtime_ns: int
    documents: int
    read_as: str | None
    ctime_ns: int | None = None


class KnownPage(NamedTuple):
    """A page fetched before, as the warehouse holds it: the document its last stored fetch made, and the
    validators the server sent with it (HTTP ETag, Last-Modified), to ask whether it has changed since, and when.
    A page found with neither validator has only its time, read against the feed's date of the page."""

    doc_id: str
    etag: str | None
    last_modified: str | None
    fetched_at: datetime | None = None  # when that fetch was made (a feed's lastmod after it: changed)
    final_url: str | None = None  # the URL that answered, after redirects: the one the validators are of


@dataclass(frozen=True)
class RawDocument:
    """One input document as received, plus what its container told us about it.

    `raw` is the exact bytes of the document (for a JSONL record: the bytes of its line), so the
    warehouse can always re-process from the source of truth. `content` is `raw` decoded to str, or
    None while decoding is left to the worker that processes the document (`ReadConfig.defer_decode`;
    `sources.document.decode_pending` decodes it there, with `declared_encoding`).
    """

    doc_id: str  # sha256 hex of raw bytes (+ the record id inside a container file)
    source_uri: str  # absolute path, URL, or `path#id` for a record inside a container
    kind: str  # container kind: "txt" | "html" | "jsonl" | "warc" | "url"
    content_type: str  # what `content` holds: "text" | "html"
    raw: bytes
    content: str | None
    encoding: str | None = None  # how raw was decoded (None when given as str, e.g. JSON, or not decoded yet)
    external_id: str | None = None  # the record's own id (JSONL `id`, WARC record id)
    url: str | None = None
    title: str | None = None
    published_at: str | None = None  # as given by the container; parsed in describe
    publisher: str | None = None  # as given by the container (JSONL field), if any
    author: str | None = None  # the author name(s) the container gives (JSONL `byline`/`author`), if any
    fetched_at: datetime | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # unknown JSONL fields, kept
    declared_encoding: str | None = None  # the container's charset (HTTP, WARC), for a deferred decode


@dataclass(frozen=True)
class Rejection:
    """An input or record that could not become an article, and why."""

    source_uri: str
    stage: str  # one of the STAGE_* constants
    reason: str  # snake_case constant, e.g. "empty_input", "binary_content"
    detail: str  # a readable sentence for the operator
    doc_id: str | None = None
    raw: bytes | None = None  # kept when we have the bytes, so nothing is lost
    # The page's URL when the refused input is a capture or a fetch of one (a WARC record's target URI): a
    # later capture of the page that loads resolves the refusal (quarantine_status).
    url: str | None = None


@dataclass(frozen=True)
class Skip:
    """A source read and counted as skipped: its bytes were known, or it is not an article by design."""

    source_uri: str
    doc_id: str | None
    reason: str  # "known" (doc_id in the warehouse or earlier in the run) or a SKIP_REASONS reason


# The text a removal's `position` is an offset in (`removals.offset_in`): each pass removes from what the pass
# before it left, so the positions of one article are offsets in up to four texts.
OFFSET_IN_REPAIRED = "repaired_text"  # the extracted and repaired input: the cleaner's rules and line model
OFFSET_IN_CLEANED = "cleaned_body"  # the cleaner's output: describe's head lines (title, byline, dateline)
OFFSET_IN_DESCRIBED = "described_body"  # describe's output: the publisher's learned lines, at load
OFFSET_IN_STORED = "stored_body"  # the stored body as it was before a re-clean: learned lines, later


@dataclass(frozen=True)
class Removal:
    """A span removed from an article body, with the rule that removed it."""

    category: str  # e.g. "donation_appeal", "ad_marker", "byline", "title", "learned"
    rule: str  # rule id from the pattern library, or "learned", or a describe rule
    text: str  # the removed text, verbatim
    position: int  # character offset of the span in the text the stage received
    offset_in: str = ""  # which text that is (OFFSET_IN_*), set by the pipeline: the text core's passes do not know


@dataclass(frozen=True)
class RepairResult:
    text: str
    repairs: Mapping[str, int]  # repair kind -> count, e.g. {"mojibake": 3, "glued_sentence": 1}


@dataclass(frozen=True)
class CleanResult:
    body: str
    removals: tuple[Removal, ...]


@dataclass(frozen=True)
class Metadata:
    """Facts about an article that analysts group and filter by."""

    title: str | None = None
    subtitle: str | None = None
    byline: str | None = None
    published_at: datetime | None = None  # timezone-aware
    publisher: str | None = None
    original_publisher: str | None = None
    language: str | None = None


@dataclass(frozen=True)
class Article:
    """One normalized article, ready to load (the table's cluster_id / is_canonical are set by dedup)."""

    article_id: str
    doc_id: str
    source_uri: str
    external_id: str | None
    url: str | None
    publisher: str | None
    original_publisher: str | None
    title: str | None
    subtitle: str | None
    byline: str | None
    published_at: datetime | None
    fetched_at: datetime | None
    language: str | None
    body: str
    word_count: int
    content_type: str
    repairs: Mapping[str, int]
    removals: tuple[Removal, ...]
    extra: Mapping[str, Any] = field(default_factory=dict)
    # The body before the learned pass took lines from it, when it took any (else None: the body itself).
    # Dedup signs this text, so an article's signature does not depend on which lines its publisher had
    # taught the warehouse when it arrived: a line learned later re-cleans the stored body but cannot
    # re-sign it, and a crash or another batch size would otherwise sign the same article two ways.
    signed_text: str | None = None

    @property
    def signature_text(self) -> str:
        """The text dedup signs: the body as describe left it, learned lines included."""
        return self.body if self.signed_text is None else self.signed_text
