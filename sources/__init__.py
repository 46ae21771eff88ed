"""Sources: discover inputs and read them into `RawDocument`s or `Rejection`s.

- `discover.py`: paths, directories, globs and `@list` files into the inputs of a run.
- `read.py`: one input into documents: the dispatch over the kinds below.
- `files.py`: safe open, bounded reads, gzip by its magic, file signatures, content ids.
- `document.py`: a whole document (txt/html file, WARC payload, HTTP body) checked and decoded.
- `decode.py`: bytes to text (BOM, declared charset, UTF-8, mixed, detected), never raising.
- `jsonl.py`: JSON lines and .json files, one document per record; `jsonstream.py` streams the
  records of those too large to parse whole.
- `warc.py`: WARC/ARC archives, streamed record by record (warcio).
- `urls.py` + `http.py`: URLs, RSS/Atom feeds and sitemaps (stdlib urllib; bounded, polite, retrying).
- `reasons.py`: every rejection reason; `config.py`: the limits.

Nothing here imports Prefect or DuckDB (tests/test_layers.py proves it): the Prefect tasks in
`newsetl.tasks.ingest` wrap `discover` and `read_path`.
"""

from newsetl.sources.config import ReadConfig
from newsetl.sources.discover import discover, kind_of
from newsetl.sources.document import document_from_bytes
from newsetl.sources.read import read_path
from newsetl.sources.reasons import SKIP_REASONS

__all__ = ["SKIP_REASONS", "ReadConfig", "discover", "document_from_bytes", "kind_of", "read_path"]
