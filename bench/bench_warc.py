"""WARC readers side by side: warcio (what newsetl uses) vs FastWARC, on a large generated archive.

Generates a WARC shaped like a news crawl (per record: a request, an HTML response of ~N KB with
realistic markup, and every fifth capture an image response plus a metadata record), gzipped per
record like Common Crawl, and an uncompressed copy. Then, for each file, it times:

- `warcio`: ArchiveIterator, HTML responses' payloads read through `content_stream()`;
- `fastwarc`: FastWARC's ArchiveIterator restricted to response records, HTTP headers parsed,
  payloads read (only when FastWARC is importable; it is not a project dependency);
- `newsetl`: `newsetl.sources.read.read_path`, i.e. warcio plus our checks, decoding and documents.

Usage:
    python bench/bench_warc.py [--captures 20000] [--kb 24] [--dir /tmp/warc-bench]
        [--extra-path SITE_PACKAGES_WITH_FASTWARC]

Prints one JSON line per (file, reader) with records/s, MB/s of uncompressed archive and the
payload bytes seen (equal across readers, as a check that they read the same thing).
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

WORDS = [
    "council",
    "harbour",
    "ferry",
    "island",
    "budget",
    "minister",
    "report",
    "police",
    "court",
    "school",
    "hospital",
    "weather",
    "storm",
    "river",
    "bridge",
    "election",
    "vote",
    "market",
    "price",
    "energy",
    "union",
    "strike",
    "museum",
    "library",
    "festival",
    "players",
    "coach",
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "that",
    "said",
    "on",
    "for",
    "with",
    "as",
    "was",
    "by",
    "at",
    "from",
    "it",
    "his",
    "her",
    "their",
    "they",
    "would",
    "could",
]


def _paragraph(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(30, 70))).capitalize() + "."


def make_page(rng: random.Random, i: int, kb: int) -> bytes:
    paras = []
    size = 0
    while size < kb * 1024 * 0.6:  # ~60 % article text, the rest markup and boilerplate
        p = _paragraph(rng)
        paras.append(f"<p>{p}</p>")
        size += len(p) + 7
    nav = "".join(f'<li><a href="/section/{j}">Section {j}</a></li>' for j in range(40))
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Story {i}</title>'
        f'<meta property="og:title" content="Story {i}"><script>var s={i};</script></head><body>'
        f"<header><nav><ul>{nav}</ul></nav></header><main><article><h1>Story {i}</h1>"
        f"{''.join(paras)}</article></main><footer>© News Ltd</footer></body></html>"
    ).encode()


def generate(path: Path, captures: int, kb: int, gz: bool) -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    rng = random.Random(42)
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=gz)
        writer.write_record(writer.create_warcinfo_record(path.name, {"software": "newsetl bench"}))
        for i in range(captures):
            uri = f"https://news.example/{i // 1000}/story-{i}"
            req = StatusAndHeaders(f"GET /story-{i} HTTP/1.1", [("Host", "news.example")], is_http_request=True)
            writer.write_record(writer.create_warc_record(uri, "request", http_headers=req))
            body = make_page(rng, i, kb)
            http = StatusAndHeaders(
                "200 OK",
                [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))],
                protocol="HTTP/1.1",
            )
            writer.write_record(writer.create_warc_record(uri, "response", payload=io.BytesIO(body), http_headers=http))
            if i % 5 == 0:
                img = bytes(rng.getrandbits(8) for _ in range(4096))
                http = StatusAndHeaders("200 OK", [("Content-Type", "image/jpeg")], protocol="HTTP/1.1")
                writer.write_record(
                    writer.create_warc_record(uri + ".jpg", "response", payload=io.BytesIO(img), http_headers=http)
                )
                meta = io.BytesIO(b"outlinks: https://news.example/next\r\n")
                writer.write_record(
                    writer.create_warc_record(
                        uri, "metadata", payload=meta, warc_content_type="application/warc-fields"
                    )
                )


def read_warcio(path: Path) -> tuple[int, int]:
    from warcio.archiveiterator import ArchiveIterator

    records = payload = 0
    with open(path, "rb") as fh:
        for rec in ArchiveIterator(fh):
            if rec.rec_type != "response":
                continue
            ctype = rec.http_headers.get_header("Content-Type") or ""
            if "html" in ctype:
                payload += len(rec.content_stream().read())
                records += 1
    return records, payload


def read_fastwarc(path: Path) -> tuple[int, int]:
    # FastWARC 2.x API: the iterator opens the path itself and detects gzip from the bytes.
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    records = payload = 0
    with open(path, "rb") as fh:
        for rec in ArchiveIterator(fh, record_types=WarcRecordType.response, parse_http=True):
            if "html" in (rec.http_content_type or ""):
                payload += len(rec.reader.read())
                records += 1
    return records, payload


def read_newsetl(path: Path) -> tuple[int, int]:
    from newsetl.schemas.records import RawDocument
    from newsetl.sources.read import read_path

    records = payload = 0
    for out in read_path(str(path)):
        if isinstance(out, RawDocument):
            records += 1
            payload += len(out.raw)
    return records, payload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--captures", type=int, default=20000)
    parser.add_argument("--kb", type=int, default=24, help="approximate HTML page size")
    parser.add_argument("--dir", default="/tmp/newsetl-warc-bench")
    parser.add_argument(
        "--extra-path",
        action="append",
        default=[],
        help="site-packages holding fastwarc (appended to sys.path, so project packages win)",
    )
    parser.add_argument("--repeat", type=int, default=2, help="runs per reader; the best is reported")
    args = parser.parse_args()
    sys.path.extend(args.extra_path)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "warc.gz": folder / f"bench-{args.captures}-{args.kb}.warc.gz",
        "warc": folder / f"bench-{args.captures}-{args.kb}.warc",
    }
    for label, path in files.items():
        if not path.exists():
            t0 = time.perf_counter()
            generate(path, args.captures, args.kb, gz=label == "warc.gz")
            print(
                f"# generated {path} ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.0f} s",
                file=sys.stderr,
            )
    uncompressed = files["warc"].stat().st_size

    readers: dict[str, Callable[[Path], tuple[int, int]]] = {"warcio": read_warcio, "newsetl": read_newsetl}
    try:
        import fastwarc  # noqa: F401

        readers["fastwarc"] = read_fastwarc
    except ImportError:
        print("# fastwarc is not importable: pass --extra-path to a site-packages that has it", file=sys.stderr)
    for label, path in files.items():
        for name, reader in readers.items():
            best = float("inf")
            result = (0, 0)
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                result = reader(path)
                best = min(best, time.perf_counter() - t0)
            print(
                json.dumps(
                    {
                        "file": label,
                        "reader": name,
                        "size_mb": round(path.stat().st_size / 1e6, 1),
                        "html_records": result[0],
                        "payload_mb": round(result[1] / 1e6, 1),
                        "seconds": round(best, 2),
                        "records_per_s": round(result[0] / best),
                        "mb_per_s_uncompressed": round(uncompressed / 1e6 / best, 1),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
