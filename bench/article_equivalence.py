"""Equivalence check of whole Articles: this checkout's text pipeline against a reference revision's.

Every input below goes through `newsetl.text.pipeline.process_documents` (extract, repair, describe,
clean, the same defaults as `newsetl ingest`) in both trees, and every outcome must be identical: for an
article its body, title, subtitle, byline, published_at, publisher, original publisher, language, word
count, repairs and removals (category, rule, text, position) and extra; for a rejection its stage and
reason. Run it before a commit that touches text/repair.py or text/describe.py for speed:

  python bench/article_equivalence.py [--ref main] [--bench N]

Inputs: ../shared/eval/aeb-dev/html and traf-dev/html (HTML pages), ../shared/eval/dedup-dev/docs.jsonl,
../shared/seeds, and the first N (default 2,000) records of the bench corpus (/work/bench-data/docs20k.jsonl,
`--corpus`). The reference tree is assembled from `git archive <ref>` as in bench/clean_equivalence.py and
runs in a subprocess on this interpreter. Exit status 0 = identical; 1 = differences (the first few printed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from itertools import islice
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DEFAULT_CORPUS = Path("/work/bench-data/docs20k.jsonl")


def inputs(corpus: Path, bench: int, into: Path) -> list[Path]:
    """The input files, in a fixed order (the bench corpus cut to its first `bench` records)."""
    out: list[Path] = []
    for folder in ("aeb-dev", "traf-dev"):
        out.extend(sorted((SHARED / "eval" / folder / "html").glob("*")))
    docs = SHARED / "eval" / "dedup-dev" / "docs.jsonl"
    if docs.exists():
        out.append(docs)
    out.extend(sorted((SHARED / "seeds").glob("*.txt")))
    if bench and corpus.exists():
        cut = into / "bench.jsonl"
        with corpus.open(encoding="utf-8") as f, cut.open("w", encoding="utf-8") as g:
            g.writelines(islice(f, bench))
        out.append(cut)
    return out


def _outcome(o: Any) -> dict[str, Any]:
    if hasattr(o, "body"):
        return {
            "id": o.article_id, "title": o.title, "subtitle": o.subtitle, "byline": o.byline,
            "published_at": o.published_at.isoformat() if o.published_at else None,
            "publisher": o.publisher, "original_publisher": o.original_publisher, "language": o.language,
            "body": o.body, "word_count": o.word_count, "repairs": dict(sorted(o.repairs.items())),
            "removals": [[r.category, r.rule, r.text, r.position] for r in o.removals],
            "extra": json.loads(json.dumps(dict(o.extra), sort_keys=True, default=str)),
        }
    return {"rejected": [o.stage, o.reason]}


def dump(paths: list[Path], out_path: Path) -> None:
    """Process every input with the `newsetl` importable here; one JSON line per outcome."""
    from newsetl.schemas.records import RawDocument, Rejection
    from newsetl.sources.read import read_path
    from newsetl.text.pipeline import ProcessConfig, make_context, process_documents

    ctx = make_context(ProcessConfig())
    with out_path.open("w", encoding="utf-8") as f:
        for p in paths:
            outcomes = list(read_path(str(p)))
            docs = [o for o in outcomes if isinstance(o, RawDocument)]
            for o in outcomes:
                if isinstance(o, Rejection):
                    f.write(json.dumps({"input": p.name, "read": [o.stage, o.reason]}) + "\n")
            for k in range(0, len(docs), 500):
                part = docs[k : k + 500]
                for doc, o in zip(part, process_documents(part, ctx), strict=True):
                    f.write(json.dumps({"input": p.name, "doc": doc.doc_id, **_outcome(o)}, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ref", default="main", help="git revision of the reference pipeline")
    ap.add_argument("--bench", type=int, default=2000, help="records of the bench corpus (0: none)")
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--dump", type=Path, default=None, help=argparse.SUPPRESS)  # the subprocess's mode
    ap.add_argument("--paths", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.dump is not None:
        dump([Path(x) for x in json.loads(args.paths.read_text())], args.dump)
        return 0
    sys.path.insert(0, str(REPO / "bench"))
    from clean_equivalence import build_reference, dump_lines, reference_lines

    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        paths = inputs(args.corpus, args.bench, tmpdir)
        paths_file = tmpdir / "paths.json"
        paths_file.write_text(json.dumps([str(p) for p in paths]))
        pkg_root = build_reference(args.ref, tmpdir)
        ref_lines = reference_lines(pkg_root, tmpdir, [str(Path(__file__).resolve()), "--paths", str(paths_file),
                                                       "--dump"], [], "newsetl.text.repair")
        if ref_lines is None:
            return 2
        new_out = tmpdir / "new.jsonl"
        dump(paths, new_out)
        new_lines = dump_lines(new_out)
    if len(ref_lines) != len(new_lines):
        print(f"different number of outcomes: {len(ref_lines)} vs {len(new_lines)}")
        return 1
    diffs = 0
    fields: dict[str, int] = {}
    for a, b in zip(ref_lines, new_lines, strict=True):
        if a == b:
            continue
        diffs += 1
        ra, rb = json.loads(a), json.loads(b)
        for key in sorted(set(ra) | set(rb)):
            if ra.get(key) != rb.get(key):
                fields[key] = fields.get(key, 0) + 1
        if diffs <= 5:
            print(f"DIFF {ra.get('input')} {ra.get('doc')}\n  ref: {a[:600]}\n  new: {b[:600]}")
    articles = sum('"body"' in x for x in ref_lines)
    digest = hashlib.sha256("\n".join(ref_lines).encode()).hexdigest()[:16]
    print(json.dumps({"inputs": len(paths), "outcomes": len(ref_lines), "articles": articles,
                      "differences": diffs, "fields": fields, "ref": args.ref, "ref_digest": digest}))
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
