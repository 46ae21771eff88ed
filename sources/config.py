"""Limits of the sources layer, one frozen config for every reader."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from newsetl.schemas.records import KnownPage
from newsetl.sources.discover import kind_of
from newsetl.sources.fields import mapping_key
from newsetl.sources.http import MAX_DOCUMENT_BYTES, HttpConfig


@dataclass(frozen=True)
class ReadConfig:
    # One document (a .txt/.html file, a JSONL line, a WARC payload, an HTTP body) larger than this,
    # after decompression, is refused: bounds gzip bombs, runaway files and memory per document.
    max_bytes: int = MAX_DOCUMENT_BYTES
    # Plain text longer than this is not an article (the longest news features are ~200 k chars);
    # downstream stages are linear but slow on such texts, so refuse them here with a clear reason.
    max_text_chars: int = 2_000_000
    # Total decompressed bytes read from one container file (JSONL/WARC): bounds a bomb of many
    # small records. Real dumps are far below it.
    max_container_bytes: int = 8 * 1024 * 1024 * 1024
    # Gzip is inflated in chunks of this size so a bomb is stopped early, not after allocating it all.
    chunk_bytes: int = 1024 * 1024
    # Leave a whole document's decoding (bytes -> str, the empty and too-long checks) to the process
    # that processes it (`document.decode_pending`): the ingest's reader then holds and sends its
    # workers the bytes alone. Decoded, an HTML page is 1-4 bytes a character as a Python str: on the
    # 735 dev pages the reader held 114 MB of text beside 56 MB of bytes, and decoded them on the
    # writer's core.
    defer_decode: bool = False
    http: HttpConfig = field(default_factory=HttpConfig)
    # Where JSON records keep their fields, when not under the names `sources.fields` knows: sorted
    # (field, path) pairs from `fields.parse_field_mapping` (`--field text=story`).
    jsonl_fields: tuple[tuple[str, str], ...] = ()
    # The pages fetched before, of some URLs (`tasks.ingest.pages_fetched_into` asks the warehouse): a page found
    # is asked for with its validators, and a 304 is a skip of the document stored. Asked once for a URL given
    # and once for all the pages of a feed, so the reader never holds the warehouse's every URL. None: every
    # URL is fetched whole.
    known_pages: Callable[[Sequence[str]], Mapping[str, KnownPage]] | None = field(
        default=None, compare=False, repr=False)

    def read_as(self, path: str) -> str | None:
        """The settings a file is read under, when they change what it yields: the field mapping, for
        JSON files read with one (None otherwise). Recorded with the file, so an unchanged file is read
        again under another mapping (its records quarantined for want of a body, say, now load)."""
        if not self.jsonl_fields or kind_of(path)[0] != "jsonl":
            return None
        return mapping_key(self.jsonl_fields)
