"""Limits of the sources layer, one frozen config for every reader."""

from __future__ import annotations

from dataclasses import dataclass, field

from newsetl.sources.http import HttpConfig


@dataclass(frozen=True)
class ReadConfig:
    # One document (a .txt/.html file, a JSONL line, a WARC payload, an HTTP body) larger than this,
    # after decompression, is refused: bounds gzip bombs, runaway files and memory per document.
    max_bytes: int = 32 * 1024 * 1024
    # Plain text longer than this is not an article (the longest news features are ~200 k chars);
    # downstream stages are linear but slow on such texts, so refuse them here with a clear reason.
    max_text_chars: int = 2_000_000
    # Total decompressed bytes read from one container file (JSONL/WARC): bounds a bomb of many
    # small records. Real dumps are far below it.
    max_container_bytes: int = 8 * 1024 * 1024 * 1024
    # Gzip is inflated in chunks of this size so a bomb is stopped early, not after allocating it all.
    chunk_bytes: int = 1024 * 1024
    http: HttpConfig = field(default_factory=HttpConfig)
