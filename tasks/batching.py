"""How an ingest run cuts its inputs: groups of files read at once, batches of documents loaded at once,
pieces of one large file, each bounded by count and by bytes so that memory is bounded by them and not
by the corpus. Pure functions, the read step over a group, and `RunBatches`, the run's batches as the
flow processes and loads them."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar, cast

from prefect.utilities.annotations import quote

from newsetl.schemas.records import STAGE_DISCOVER, InputRow, RawDocument, Rejection, Skip
from newsetl.sources.config import ReadConfig
from newsetl.sources.files import held_size
from newsetl.sources.reasons import SKIP_REASONS
from newsetl.tasks.books import RunTally
from newsetl.tasks.ingest import ReadPiece, filter_known, read_documents, read_pieces
from newsetl.tasks.stop import stop_requested

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




class RunBatches:
    """A run's batches, in order: its files read a group at a time (the next group only when its first
    batch is wanted: with workers, it is read while the last batches of the one before are processed),
    known documents skipped, the rest cut into batches. Each `Work` carries the read rejections and
    skips to record with it, and the last batch of a piece the files read to the end. The run's
    `tally` counts what is read as it is read.

    The same bytes twice in one run (a file copied into two folders) load once; the second source is
    still recorded, with the doc_id it carried. `loaded(work)` must be called once a batch is in the
    warehouse: from then on `filter_known` finds its doc_ids there, so the run's own memory of them
    holds the batches in flight only, not the run."""

    def __init__(self, db: str, paths: Sequence[str], refused: Sequence[Rejection], tally: RunTally,
                 config: ReadConfig, batch_size: int, files_per_read: int) -> None:
        self.db, self.paths, self.refused, self.tally = db, paths, refused, tally
        self.config, self.batch_size, self.files_per_read = config, batch_size, files_per_read
        self.files_done = 0
        self._in_flight: set[str] = set()  # doc_ids read in this run and not yet loaded

    def loaded(self, work: Work) -> None:
        self._in_flight.difference_update(d.doc_id for d in work.docs)
        self.tally.progress(self.files_done, len(self.paths))

    def __iter__(self) -> Iterator[Work]:
        # Refused at discovery: quarantined with the next batch, but for the skips (a symlinked folder, not
        # walked into), which are recorded as skipped sources with it.
        pending = [r for r in self.refused if r.reason not in SKIP_REASONS]
        early = [Skip(r.source_uri, r.doc_id, r.reason) for r in self.refused if r.reason in SKIP_REASONS]
        for group in file_groups(self.paths, self.files_per_read, READ_GROUP_BYTES):
            if stop_requested():
                return
            t = time.perf_counter()
            for read in read_group(group, self.config):
                fresh, rejected, skips = self._sort(read)
                skips, early = [*early, *skips], []
                pending.extend(rejected)
                self.tally.seconds["read"] += time.perf_counter() - t
                # A piece without a new document is still one (empty) item: its rejections are quarantined
                # and its files recorded.
                cut = list(batches(fresh, self.batch_size, BATCH_BYTES)) or [[]]
                for i, docs in enumerate(cut):
                    if stop_requested():
                        return
                    yield Work(docs, pending, read.inputs if i == len(cut) - 1 else None, tuple(skips))
                    pending, skips = [], []
                t = time.perf_counter()
            self.files_done += len(group)
            self.tally.progress(self.files_done, len(self.paths))
        if pending or early:
            yield Work([], pending, skips=tuple(early))

    def _sort(self, read: ReadPiece) -> tuple[list[RawDocument], list[Rejection], list[Skip]]:
        """A piece's outcomes as (new documents, rejections to quarantine, sources to record as skipped)."""
        docs = [o for o in read.outcomes if isinstance(o, RawDocument)]
        rejected = [o for o in read.outcomes if isinstance(o, Rejection)]
        not_articles = [r for r in rejected if r.reason in SKIP_REASONS]
        self.tally.read_piece(len(read.outcomes), sum(r.stage == STAGE_DISCOVER for r in rejected), not_articles)
        skips = [Skip(r.source_uri, r.doc_id, r.reason) for r in not_articles]
        unique = []
        for doc in docs:
            if doc.doc_id in self._in_flight:
                skips.append(Skip(doc.source_uri, doc.doc_id, "known"))
            else:
                self._in_flight.add(doc.doc_id)
                unique.append(doc)
        fresh, known = filter_known(self.db, unscanned(unique))
        self.tally.known(len(docs) - len(unique) + known)
        fresh_ids = {d.doc_id for d in fresh}
        skips.extend(Skip(d.source_uri, d.doc_id, "known") for d in unique if d.doc_id not in fresh_ids)
        return fresh, [r for r in rejected if r.reason not in SKIP_REASONS], skips
