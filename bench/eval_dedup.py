"""Score warehouse/dedup.py on ../shared/eval/dedup-dev without the rest of the pipeline.

A temporary DuckDB gets the contract tables (the migrations of schemas/tables.py), minimal `articles` rows
(body = the raw record text, so this is pessimistic: the pipeline would repair and clean it first),
and `cluster_batch` runs over batches in id order. The partition is scored with the shared
`dedup_metric.dedup_scores`; the baseline is datasketch MinHashLSH(threshold=0.8, num_perm=128) over
word 5-grams, a pair being a duplicate when the index returns it (union-find over the answers).

    python bench/eval_dedup.py                 # ours with 1 batch, 4 batches, batches of 500; baseline
    python bench/eval_dedup.py --grid          # parameter grid behind the defaults (slower)
    python bench/eval_dedup.py --seeds DIR     # also check that the seed articles stay apart
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from newsetl.text.lsh import DedupConfig
from newsetl.text.sign import body_hash, normalize_for_signature, sign_texts
from newsetl.warehouse.connect import migrate
from newsetl.warehouse.dedup import DedupStats, check_invariants, cluster_batch, partition

SHARED = Path(__file__).resolve().parents[2] / "shared"
DEV = SHARED / "eval" / "dedup-dev"


def load_dev(path: Path = DEV) -> tuple[list[dict[str, str]], dict[str, str]]:
    lines = (path / "docs.jsonl").read_text(encoding="utf-8").splitlines()
    docs = [json.loads(line) for line in lines if line.strip()]
    labels = json.loads((path / "labels.json").read_text(encoding="utf-8"))
    return docs, labels


def new_warehouse(path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    migrate(con)  # the project's own migration runner
    return con


def ingest(con: duckdb.DuckDBPyConnection, docs: Sequence[Mapping[str, Any]], config: DedupConfig,
           run_id: str) -> DedupStats:
    """Insert minimal articles rows for `docs` ({"id", "text"}) and cluster them, in one transaction."""
    ids = [str(d["id"]) for d in docs]
    texts = [str(d["text"]) for d in docs]
    sigs = sign_texts(texts, config.sign)
    hashes = [body_hash(t) for t in texts]
    wc = [len(t.split()) for t in texts]
    pub = pa.array([d.get("published_at") for d in docs], pa.timestamp("us", tz="UTC"))
    arts = pa.table({
        "article_id": ids, "doc_id": ids, "source_uri": [f"docs.jsonl#{i}" for i in ids], "external_id": ids,
        "body": texts, "body_hash": hashes, "word_count": pa.array(wc, pa.int32()), "published_at": pub,
        "content_type": ["text"] * len(ids), "run_id": [run_id] * len(ids),
    })
    con.execute("BEGIN TRANSACTION")
    try:
        con.register("_arts", arts)
        con.execute("INSERT INTO articles BY NAME SELECT * FROM _arts")
        con.unregister("_arts")
        batch = pa.table({"article_id": ids, "body_hash": hashes, "word_count": pa.array(wc, pa.int32()),
                          "published_at": pub,
                          "fetched_at": pa.array([None] * len(ids), pa.timestamp("us", tz="UTC"))})
        stats = cluster_batch(con, batch, sigs, config, run_id)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return stats


def run_ours(docs: Sequence[Mapping[str, Any]], config: DedupConfig, n_batches: int | None = None,
             batch_size: int | None = None,
             workdir: Path | None = None) -> tuple[dict[str, str], dict[str, Any]]:
    """Partition of `docs` after ingesting them in `n_batches` equal runs (or runs of `batch_size`)."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        con = new_warehouse(Path(tmp) / "eval.duckdb")
        size = batch_size or -(-len(docs) // (n_batches or 1))
        totals: dict[str, int] = {}
        t0 = time.perf_counter()
        for k, s in enumerate(range(0, len(docs), size)):
            st = ingest(con, docs[s:s + size], config, f"run-{k}")
            for name, v in dataclasses.asdict(st).items():
                totals[name] = totals.get(name, 0) + v
        seconds = time.perf_counter() - t0
        problems = check_invariants(con)
        part = dict(partition(con))
        con.close()
    return part, {"seconds": round(seconds, 2), "invariant_problems": problems, **totals}


def run_datasketch(docs: Sequence[Mapping[str, Any]], threshold: float = 0.8, num_perm: int = 128,
                   k: int = 5) -> dict[str, str]:
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for d in docs:
        words = normalize_for_signature(str(d["text"]))
        m = MinHash(num_perm=num_perm)
        m.update_batch([" ".join(words[i:i + k]).encode() for i in range(max(1, len(words) - k + 1))])
        did = str(d["id"])
        find(did)
        for other in lsh.query(m):
            a, b = find(did), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
        lsh.insert(did, m)
    return {x: find(x) for x in parent}


def score(labels: Mapping[str, str], pred: Mapping[str, str]) -> dict[str, Any]:
    sys.path.insert(0, str(SHARED / "eval"))
    from dedup_metric import dedup_scores  # type: ignore[import-not-found]

    s = dedup_scores({i: labels[i] for i in pred}, pred)
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in s.items()}


def seeds_check(seeds: Path, config: DedupConfig) -> dict[str, Any]:
    docs = [{"id": p.name, "text": p.read_text(encoding="utf-8")} for p in sorted(seeds.glob("*.txt"))]
    part, info = run_ours(docs, config, n_batches=1)
    return {"articles": len(part), "clusters": len(set(part.values())), **{k: info[k] for k in ("candidates",
            "verified_pairs", "exact_links")}}


_FOOTER = ("Copyright 2024 The Wire Service. All rights reserved. This material may not be published, "
           "broadcast, rewritten or redistributed without permission. Follow our coverage on the app and "
           "sign up for the morning newsletter to get the top stories in your inbox every day.")


def syndicated_copies(docs: Sequence[Mapping[str, Any]], sources: Mapping[str, str],
                      seed: int = 5) -> tuple[list[dict[str, str]], dict[str, str]]:
    """Synthetic syndication of each ground-truth body: the original, a wire copy (dateline + footer),
    a trimmed copy (first 60 % of its paragraphs + a credit line), a lightly edited copy (2 % of the
    words replaced) and a retyped copy (straight quotes, hyphens for dashes, case changes)."""
    import random

    rng = random.Random(seed)
    out: list[dict[str, str]] = []
    labels: dict[str, str] = {}
    for d in docs:
        if sources.get(str(d["id"])) != "gt":
            continue
        body = str(d["text"])
        paras = [p for p in body.split("\n") if p.strip()]
        words = body.split()
        edited = [w if rng.random() > 0.02 else rng.choice(["new", "also", "said", "local", "more"])
                  for w in words]
        copies = {
            "orig": body,
            "wire": "LONDON (Wire) — " + body + "\n" + _FOOTER,
            "trim": "\n".join(paras[: max(1, len(paras) * 6 // 10)]) + "\nRead the original article at the wire.",
            "edit": " ".join(edited),
            "retype": body.replace("’", "'").replace("“", '"').replace("”", '"').replace("—", "-").upper(),
        }
        for kind, text in copies.items():
            cid = f"{d['id']}-{kind}"
            out.append({"id": cid, "text": text})
            labels[cid] = str(d["id"])
    random.Random(seed).shuffle(out)
    return out, labels


def grid(docs: Sequence[Mapping[str, Any]], labels: Mapping[str, str]) -> None:
    """The measurements behind the defaults: one parameter changed at a time, 1 batch each."""
    base = DedupConfig()
    replace = dataclasses.replace

    def sign(**kw: int) -> DedupConfig:
        return replace(base, sign=replace(base.sign, **kw))

    variants: list[tuple[str, DedupConfig]] = [("defaults", base)]
    for b, r in ((32, 4), (42, 3), (64, 2)):
        variants.append((f"bands {b}x{r}", sign(bands=b, rows=r)))
    for k in (4, 5, 7):
        variants.append((f"shingle {k}", sign(shingle_size=k)))
    variants.append(("num_perm 64 (32x2)", sign(num_perm=64, bands=32, rows=2)))
    variants.append(("num_perm 256 (128x2)", sign(num_perm=256, bands=128, rows=2)))
    for j in (0.7, 0.9):
        variants.append((f"jaccard {j}", dataclasses.replace(base, jaccard=j)))
    for c in (0.8, 0.85, 0.95):
        variants.append((f"containment {c}", dataclasses.replace(base, containment=c)))
    for m in (20, 30, 40, 60, 80, 100):
        variants.append((f"min_shingles {m}", dataclasses.replace(base, min_shingles=m)))
    variants.append(("estimate only (no exact check)", dataclasses.replace(base, exact_verify=False)))
    print(f"{'variant':32s} {'P':>7s} {'R':>7s} {'F1':>7s} {'ARI':>7s} {'clusters':>8s} {'cands':>7s} "
          f"{'s':>6s}")
    for name, cfg in variants:
        part, info = run_ours(docs, cfg, n_batches=1)
        s = score(labels, part)
        print(f"{name:32s} {s['pair_precision']:7.4f} {s['pair_recall']:7.4f} {s['pair_f1']:7.4f} "
              f"{s['ari']:7.4f} {s['pred_clusters']:8d} {info['candidates']:7d} {info['seconds']:6.1f}",
              flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", type=Path, default=DEV)
    ap.add_argument("--grid", action="store_true", help="run the parameter grid behind the defaults")
    ap.add_argument("--seeds", type=Path, default=SHARED / "seeds")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--syndicated", action="store_true",
                    help="also score synthetic syndicated copies of the dev set's ground-truth bodies")
    args = ap.parse_args(argv)
    if not (args.set / "docs.jsonl").exists():
        print(f"no dev set at {args.set}", file=sys.stderr)
        return 2
    docs, labels = load_dev(args.set)
    if args.grid:
        grid(docs, labels)
        return 0
    config = DedupConfig()
    results: dict[str, dict[str, str]] = {}
    for name, kw in (("1 batch", {"n_batches": 1}), ("4 batches", {"n_batches": 4}),
                     ("batches of 500", {"batch_size": 500})):
        part, info = run_ours(docs, config, **kw)  # type: ignore[arg-type]
        results[name] = part
        print(json.dumps({"system": f"newsetl {name}", **score(labels, part), **info}))
    same = all(r == results["1 batch"] for r in results.values())
    print(json.dumps({"partitions_identical": same}))
    if not args.no_baseline:
        t0 = time.perf_counter()
        base = run_datasketch(docs)
        print(json.dumps({"system": "datasketch MinHashLSH t=0.8 p=128 5-grams", **score(labels, base),
                          "seconds": round(time.perf_counter() - t0, 2)}))
    if args.syndicated:
        sources = json.loads((args.set / "sources.json").read_text(encoding="utf-8"))
        sdocs, slabels = syndicated_copies(docs, sources)
        part, info = run_ours(sdocs, config, n_batches=3)
        print(json.dumps({"system": "newsetl syndicated (3 batches)", **score(slabels, part),
                          "seconds": info["seconds"]}))
        if not args.no_baseline:
            print(json.dumps({"system": "datasketch syndicated", **score(slabels, run_datasketch(sdocs))}))
    if any(args.seeds.glob("*.txt")):
        print(json.dumps({"seeds": seeds_check(args.seeds, config)}))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
