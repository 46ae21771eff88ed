"""Metadata coverage on the AEB dev pages: trafilatura's metadata alone vs the pipeline's describe stage.

    .venv/bin/python bench/describe_eval.py [--limit N]

HTML (aeb-dev/html): share of pages with a title, a publisher and a published date
- baseline: `trafilatura.extract_metadata` alone (title, sitename, date);
- pipeline: `newsetl.text.pipeline.process_document` (trafilatura's metadata as hints, then describe).
Plain text (aeb-dev/text, trafilatura's text output without metadata): the same shares, plus how many
found titles match one of the page's real titles (titles.json), so a wrong "title" is not counted as
a success.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AEB = REPO.parent / "shared" / "eval" / "aeb-dev"


def _norm(text: str | None) -> str:
    quotes = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'"})
    return re.sub(r"\s+", " ", (text or "").translate(quotes)).strip().casefold()


def _title_ok(found: str | None, titles: Sequence[str]) -> bool:
    f = _norm(found)
    return bool(f) and any(f == _norm(t) or (len(f) > 15 and (f in _norm(t) or _norm(t) in f)) for t in titles)


def _share(rows: Sequence[Mapping[str, object]], key: str) -> float:
    return round(sum(1 for r in rows if r.get(key)) / len(rows), 4) if rows else 0.0


def main(argv: Sequence[str] | None = None) -> None:
    import trafilatura

    from newsetl.schemas.records import Article, RawDocument
    from newsetl.text.pipeline import ProcessConfig, make_context, process_document

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=0)
    args = ap.parse_args(argv)
    if not AEB.exists():
        sys.exit(f"describe_eval: {AEB} is absent (../shared must sit beside the repository)")
    titles = json.loads((AEB / "titles.json").read_text("utf-8"))
    ctx = make_context(ProcessConfig())

    def run(path: Path, content: str, kind: str) -> Article | None:
        raw = content.encode("utf-8")
        doc = RawDocument(doc_id=hashlib.sha256(raw).hexdigest(), source_uri=str(path), kind=kind,
                          content_type="html" if kind == "html" else "text", raw=raw, content=content)
        out = process_document(doc, ctx)
        return out if isinstance(out, Article) else None

    pages = sorted((AEB / "html").glob("*.html.gz"))[: args.limit or None]
    base_rows, pipe_rows = [], []
    t0 = time.perf_counter()
    for path in pages:
        pid = path.name.split(".")[0]
        html = gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace")
        md = trafilatura.extract_metadata(html)
        base_rows.append({"title": md and md.title, "publisher": md and md.sitename,
                          "publisher_or_host": md and (md.sitename or md.hostname), "date": md and md.date,
                          "title_ok": md is not None and _title_ok(md.title, titles.get(pid, []))})
        art = run(path, html, "html")
        pipe_rows.append({"title": art and art.title, "publisher": art and art.publisher,
                          "date": art and art.published_at,
                          "title_ok": art is not None and _title_ok(art.title, titles.get(pid, []))})
    html_s = time.perf_counter() - t0
    print(json.dumps({"set": "aeb-dev/html", "pages": len(pages),
                      "trafilatura_extract_metadata": {k: _share(base_rows, k) for k in
                                                       ("title", "title_ok", "publisher", "publisher_or_host",
                                                        "date")},
                      "pipeline_describe": {k: _share(pipe_rows, k) for k in
                                            ("title", "title_ok", "publisher", "date")},
                      "seconds": round(html_s, 1)}))

    texts = sorted((AEB / "text").glob("*.txt"))[: args.limit or None]
    rows = []
    for path in texts:
        art = run(path, path.read_text("utf-8"), "txt")
        rows.append({"title": art and art.title, "publisher": art and art.publisher,
                     "date": art and art.published_at, "byline": art and art.byline,
                     "title_ok": art is not None and _title_ok(art.title, titles.get(path.stem, []))})
    found = sum(1 for r in rows if r["title"])
    print(json.dumps({"set": "aeb-dev/text", "docs": len(texts),
                      "pipeline_describe": {k: _share(rows, k) for k in
                                            ("title", "title_ok", "byline", "publisher", "date")},
                      "title_precision": round(sum(1 for r in rows if r["title_ok"]) / found, 4) if found else None}))


if __name__ == "__main__":
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    main()
