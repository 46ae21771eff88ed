"""How an ingest run cuts its inputs: groups of files read at once, batches of documents loaded at once,
pieces of one large file, each bounded by count and by bytes so that memory is bounded by them and not
by the corpus. Pure functions and the read step over a group; the flow wires them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar, cast

from prefect.utilities.annotations import quote

from newsetl.schemas.records import InputRow, RawDocument, Rejection, Skip
from newsetl.sources.config import ReadConfig
from newsetl.sources.files import held_size
from newsetl.tasks.ingest import ReadPiece, read_documents, read_pieces

T = TypeVar("T")
# Raw bytes (inflated, as held) read at once (with `files_per_read`, a group); at most two groups are
# held, the one being loaded and the next, read while the last batches of the first are processed (735
# HTML pages held whole cost the ingest 0.8 GB).
READ_GROUP_BYTES = 24 * 1024 * 1024
# Whole documents (files, URLs, WARC payloads) are held as bytes only and decoded where they are
# processed (tasks/pool.py: process_and_prepare), not by this process, which also writes the warehouse:
# decoded, an HTML page is 1-4 bytes a character as a Python str (~2x its bytes on the dev pages).
READ_CONFIG = ReadConfig(defer_decode=True)
# A batch ends at `batch_size` documents or at this many raw bytes, whichever comes first: 500 HTML pages
# are ~75 MB, and three batches are in flight (pickled to the workers, and their rows back); 500 4-KB
# texts (2 MB) never reach it. Measured on the 735 dev pages (bench/bench_html.py, one run each): 6 MB
# batches 1.71 GB over all processes at 0.38x trafilatura's pages/s; 16 MB 1.84 GB at 0.54x; unbounded
# 2.55 GB at 0.59x (a batch waits for its slowest page; smaller batches wait more often).
BATCH_BYTES = 16 * 1024 * 1024
# ... and a group is handed on in pieces of at most this many documents / raw bytes (a group is one file
# when the file is larger than READ_GROUP_BYTES: a 600 MB JSONL dump held whole cost 2+ GB). Two pieces
# are held (read ahead of the batches in flight), as parsed records and raw bytes. Measured with
# bench/bench_stream.py, one run each: 2,000 documents against 5,000, on the 20k re-scrape stream the
# ingest process 0.69-0.70 GB instead of 0.79 and 1.87-1.88 GB summed instead of 1.96-1.99, at the same
# docs/s (399-402 against 393-401); on the 100k stream, where DuckDB's cache is most of it, 0.91 GB
# instead of 0.93 at 463.6 docs/s against 464.2. 1,000 held no less than 2,000.
READ_PIECE_DOCS = 2000
READ_PIECE_BYTES = 32 * 1024 * 1024


def unscanned(value: T) -> T:
    """A task argument Prefect passes as it is: batches (documents, articles, rules) are wrapped in
    `quote`, because Prefect otherwise walks every element of every argument looking for futures, which
    cost more than loading the batch. Typed as the value: Prefect unwraps it before the task runs."""
    return cast(T, quote(value))


def batches(docs: Sequence[RawDocument], max_docs: int, max_bytes: int) -> Iterator[Sequence[RawDocument]]:
    """`docs` in order, in batches of at most `max_docs` documents and (but for a single larger
    document) `max_bytes` raw bytes."""
    start, size = 0, 0
    for end, doc in enumerate(docs):
        if end > start and (end - start >= max_docs or size + len(doc.raw) > max_bytes):
            yield docs[start:end]
            start, size = end, 0
        size += len(doc.raw)
    if start < len(docs):
        yield docs[start:]


def file_groups(paths: Sequence[str], max_files: int, max_bytes: int) -> Iterator[list[str]]:
    """Groups of input files to read at once, bounded by count and by bytes as held (inflated), so memory stays
    bounded by the group rather than the corpus (a single file larger than the budget is its own group)."""
    group: list[str] = []
    size = 0
    for path in paths:
        n = 0 if "://" in path else held_size(path)
        if group and (len(group) >= max_files or size + n > max_bytes):
            yield group
            group, size = [], 0
        group.append(path)
        size += n
    if group:
        yield group


@dataclass(frozen=True)
class Work:
    """One batch to process and load, with what must be written alongside or after it."""

    docs: Sequence[RawDocument]
    rejections: list[Rejection]  # read rejections, quarantined in this batch's transaction
    # Files every batch of which is loaded once this batch is: recorded as read in its transaction (not
    # before, so a crash means reading them again, and their known doc_ids are skipped).
    inputs: tuple[InputRow, ...] | None = None
    # Sources read and skipped (known bytes, captures that are not articles): recorded as lineage.
    skips: tuple[Skip, ...] = ()


def read_group(group: Sequence[str], config: ReadConfig) -> Iterator[ReadPiece]:
    """A group of files at once (one Prefect task run), or, when it is one file larger than a piece, that
    file streamed in pieces of bounded size: memory stays bounded even by a multi-GB dump."""
    # Its size as held, as the groups are cut: a 20 MB .jsonl.gz that inflates to 600 MB is a group of its
    # own and must be streamed too (by its size on disk it was read whole).
    if len(group) == 1 and "://" not in group[0] and held_size(group[0]) > READ_PIECE_BYTES:
        yield from read_pieces(group, config, READ_PIECE_DOCS, READ_PIECE_BYTES)
    else:
        yield read_documents(unscanned(group), config)


