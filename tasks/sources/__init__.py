"""Sources: discover inputs and read them into `RawDocument`s or `Rejection`s.

- `read.py`: files, directories, globs, `@list` files, gzip, JSONL/JSON, and the dispatch to the others.
- `decode.py`: bytes to text (BOM, declared charset, UTF-8, mixed, detected), never raising.
- `warc.py`: WARC/ARC archives, streamed record by record (warcio).
- `http.py`: URLs, RSS/Atom feeds and sitemaps (stdlib urllib; bounded, polite, retrying transient errors).

Nothing here imports Prefect or DuckDB: the Prefect tasks in `tasks/ingest.py` wrap these functions.
"""
