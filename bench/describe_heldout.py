"""Metadata from plain text, per field, on sets of invented articles with known metadata.

    .venv/bin/python bench/describe_heldout.py [--set tests/data/describe_heldout.json] [--show]

Each article goes through the whole text path (`process_document`: repair, clean, describe) as a
plain-text document with no container hints, and each field a reader can see in the text is compared
with the expected value: title and byline after case/space/quote folding, date as the calendar date
written in the text, original publisher after outlet folding (``newsetl.text.publishers.outlet_key``).
A null expectation is right only when describe also returns nothing (no invented values).

`tests/data/describe_heldout.json` was written before describe was tuned for issue 15 and is not tuned
on: its figure is the estimate for unseen articles. `tests/data/describe_dev.json` is what was tuned on.

Issue 15, round 3: describe_heldout.json's errors had been looked at, so it stopped being held out.
`tests/data/describe_heldout2.json` (38 articles, 152 fields) was written fresh from news formats before
describe.py was read or changed in that round, and scored once before any change: 131/152 = 86.2%
(title 35/38, byline 34/38, date 34/38, original publisher 28/38) -- that is the held-out estimate.
After the round's general rules (wire/role bylines, labelled date pieces, other-language months,
day-first numeric dates outside English, site suffixes of headlines, syndication notes and agency
datelines): 152/152. That after-figure is NOT held out: the before-run printed the wrong fields, and
they were read while the rules were written (the rules were checked on describe_dev.json, its eight
new articles, the seeds and dedup-dev's 2,073 texts old-vs-new).

Then `tests/data/describe_heldout3.json` (32 articles, 128 fields, a third of them German, French or
Spanish) was written by someone who had not read describe.py or the earlier sets, and scored once after
round 3: 122/128 = 95.3% (title 30/32, byline 32/32, date 30/32, original publisher 30/32) -- the
held-out estimate for the describe of then. Its six errors have been seen since, so it too is spent.
Today (2026-12-06) it gives the same 122/128 with byline 31/32 and date 31/32: a bare byline line now has
to start with a given name of text/data/given-names.txt (Faker's lists), which lacks "Arun" of
"Arun Mehta and Jill Cohen"; the rule took ~40 labels and headings out of traf-dev's bylines.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIELDS = ("title", "byline", "date", "original_publisher")


def _norm(text: str | None) -> str:
    quotes = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'"})
    return re.sub(r"\s+", " ", (text or "").translate(quotes)).strip().casefold()


def score(path: Path, show: bool = False) -> dict[str, object]:
    from newsetl.schemas.records import Article, RawDocument
    from newsetl.text.pipeline import ProcessConfig, make_context, process_document
    from newsetl.text.publishers import outlet_key

    data = json.loads(path.read_text("utf-8"))
    ctx = make_context(ProcessConfig())
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for i, case in enumerate(data["articles"]):
        raw = case["text"].encode("utf-8")
        doc = RawDocument(doc_id=hashlib.sha256(raw).hexdigest(), source_uri=f"{path.name}#{i}", kind="txt",
                          content_type="text", raw=raw, content=case["text"])
        art = process_document(doc, ctx)
        assert isinstance(art, Article), art
        got = {"title": art.title, "byline": art.byline,
               "date": art.published_at.date().isoformat() if art.published_at else None,
               "original_publisher": art.original_publisher}
        for field in FIELDS:
            want = case["expected"].get(field)
            have = got[field]
            if field == "original_publisher":
                ok = (want is None and have is None) or (
                    want is not None and have is not None and outlet_key(want) == outlet_key(have))
            else:
                ok = _norm(want) == _norm(have)
            total[field] += 1
            right[field] += ok
            if show and not ok:
                print(f"  #{i} {field}: want {want!r} got {have!r}")
    out: dict[str, object] = {"set": str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path),
                              "articles": len(data["articles"])}
    for field in FIELDS:
        out[field] = f"{right[field]}/{total[field]}"
    out["all_fields"] = f"{sum(right.values())}/{sum(total.values())}"
    out["share"] = round(sum(right.values()) / max(1, sum(total.values())), 4)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", type=Path, action="append")
    ap.add_argument("--show", action="store_true", help="print every wrong field")
    args = ap.parse_args(argv)
    sets = args.set or [REPO / "tests/data/describe_dev.json", REPO / "tests/data/describe_heldout.json"]
    for path in sets:
        if path.exists():
            print(json.dumps(score(path.resolve(), args.show)))


if __name__ == "__main__":
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    main()
