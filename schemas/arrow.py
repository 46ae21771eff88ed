"""Explicit pyarrow schemas for the tables the loader writes.

Batches are built against these schemas (never inferred from data), so an all-null column in one
batch has the same type as in the next, and inserts go by column name.
"""

from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")

DOCUMENTS = pa.schema([
    ("doc_id", pa.string()),
    ("source_uri", pa.string()),
    ("kind", pa.string()),
    ("content_type", pa.string()),
    ("encoding", pa.string()),
    ("raw", pa.binary()),
    ("bytes", pa.int64()),
    ("external_id", pa.string()),
    ("url", pa.string()),
    ("fetched_at", TS),
    ("first_run_id", pa.string()),
])

ARTICLES = pa.schema([
    ("article_id", pa.string()),
    ("doc_id", pa.string()),
    ("source_uri", pa.string()),
    ("external_id", pa.string()),
    ("url", pa.string()),
    ("publisher", pa.string()),
    ("original_publisher", pa.string()),
    ("title", pa.string()),
    ("subtitle", pa.string()),
    ("byline", pa.string()),
    ("published_at", TS),
    ("fetched_at", TS),
    ("language", pa.string()),
    ("body", pa.string()),
    ("word_count", pa.int32()),
    ("content_type", pa.string()),
    ("body_hash", pa.string()),
    ("repairs", pa.string()),  # JSON text; DuckDB casts it into the JSON column
    ("extra", pa.string()),
    ("run_id", pa.string()),
])

REMOVALS = pa.schema([
    ("article_id", pa.string()),
    ("seq", pa.int32()),
    ("category", pa.string()),
    ("rule", pa.string()),
    ("text", pa.string()),
    ("position", pa.int32()),
    ("run_id", pa.string()),
])

QUARANTINE = pa.schema([
    ("quarantine_id", pa.string()),
    ("source_uri", pa.string()),
    ("doc_id", pa.string()),
    ("run_id", pa.string()),
    ("stage", pa.string()),
    ("reason", pa.string()),
    ("detail", pa.string()),
    ("raw", pa.binary()),
    ("quarantined_at", TS),
])
