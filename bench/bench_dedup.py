"""Dedup benchmarks: signature throughput against datasketch, and incremental matching at scale.

    python bench/bench_dedup.py                      # both, short (200k stored signatures)
    python bench/bench_dedup.py --stored 1000000     # the 10k-vs-1M figure
    python bench/bench_dedup.py --only sign --docs 3000
    python bench/bench_dedup.py --only match --stored 100000,300000,1000000   # memory vs stored count

1. Signatures: the same texts through `sign_texts` (numpy, batches of --sign-batch) and through
   datasketch (`MinHash(num_perm=128).update_batch` over the same normalized word shingles, its fast
   path), alternated in one process, best of --repeat. Texts: generated articles, and dedup-dev's
   texts when ../shared is there. Goal ≥ 1.5× datasketch.
2. Matching: a warehouse with N stored signatures written straight into `signatures`, `lsh_bands`,
   `articles`, `clusters`, then one `cluster_batch` of 10,000 new articles of which 1,000 are near copies
   of stored ones. The batch runs in a fresh process that opens the file, so its peak RSS is the
   matching's own. Goal < 5 s (issue 13), memory flat in N. The connection has the ingest's batch-load
   memory_limit (--memory-limit; 'none' for DuckDB's default) and DuckDB's threads (--threads 1 is the
   ingest's writer). Round 1 is the cold one: on this VM memory a process touches for the first time
   costs up to ~10 ms per MB, so the memory a round needs is part of its time.
   Signatures of real text (the default): every stored article is 24 sentences drawn from the ~46,000
   distinct sentences of ../shared/eval (dedup-dev, traf-dev and aeb-dev texts), and its MinHash is the
   element-wise minimum of its sentences' MinHashes (exact for the union of the sentences' shingles:
   only the few shingles spanning a sentence break are missing), so 1M real-text signatures cost seconds
   instead of the hours of signing 1M bodies. Real text shares sentences, boilerplate and frequent
   phrases, so its band keys collide the way a news warehouse's do; random signatures (`--random`,
   the older figure) never collide. A near copy drops one of the 24 sentences and adds another.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from newsetl.tasks.ingest import LOAD_MEMORY_LIMIT, LOAD_THREADS

SHARED = Path(__file__).resolve().parents[2] / "shared"
BATCH = 10_000
COPIES = 1_000


# --- 1. signature throughput -------------------------------------------------------------------------


def generated_texts(n: int, seed: int = 0) -> list[str]:
    """News-sized texts (200-900 words) over a Zipf-distributed vocabulary, with punctuation."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocab = ["".join(rng.choice(letters, size=int(k))) for k in rng.integers(2, 11, size=50_000)]
    out = []
    for _ in range(n):
        ids = np.minimum(rng.zipf(1.2, size=int(rng.integers(200, 900))) - 1, len(vocab) - 1)
        ws = [vocab[i] for i in ids]
        out.append(" ".join(w + ("." if k % 15 == 14 else "") for k, w in enumerate(ws)))
    return out


def sign_ours(texts: Sequence[str], batch: int) -> float:
    from newsetl.text.sign import sign_texts

    t0 = time.perf_counter()
    for s in range(0, len(texts), batch):
        sign_texts(texts[s:s + batch])
    return time.perf_counter() - t0


def sign_datasketch(texts: Sequence[str]) -> float:
    """datasketch on the same normalized words, shingle size and number of permutations as ours."""
    from datasketch import MinHash

    from newsetl.text.sign import SignConfig, normalize_for_signature

    k, num_perm = SignConfig().shingle_size, SignConfig().num_perm

    t0 = time.perf_counter()
    for t in texts:
        w = normalize_for_signature(t)
        m = MinHash(num_perm=num_perm)
        m.update_batch([" ".join(w[i:i + k]).encode("utf-8") for i in range(max(1, len(w) - k + 1))])
        m.digest()
    return time.perf_counter() - t0


def bench_sign(n_docs: int, batch: int, repeat: int) -> list[dict[str, object]]:
    corpora = [("generated", generated_texts(n_docs))]
    dev = SHARED / "eval" / "dedup-dev" / "docs.jsonl"
    if dev.exists():
        lines = dev.read_text(encoding="utf-8").splitlines()
        corpora.append(("dedup-dev", [json.loads(x)["text"] for x in lines if x.strip()]))
    results = []
    for name, texts in corpora:
        ours, theirs = [], []
        for _ in range(repeat):  # alternated, so both see the same machine load
            ours.append(sign_ours(texts, batch))
            theirs.append(sign_datasketch(texts))
        words = sum(len(t.split()) for t in texts)
        r = {"bench": "signatures", "corpus": name, "docs": len(texts),
             "mean_words": round(words / len(texts)), "numpy_docs_s": round(len(texts) / min(ours)),
             "datasketch_docs_s": round(len(texts) / min(theirs)), "ratio": round(min(theirs) / min(ours), 2)}
        print(json.dumps(r), flush=True)
        results.append(r)
    return results


# --- 2. incremental matching --------------------------------------------------------------------------


def _hex_id(prefix: str, i: int) -> str:
    """64-hex-digit ids, like the pipeline's (sha256 of the raw bytes): string joins cost by length."""
    return hashlib.sha256(f"{prefix}{i}".encode()).hexdigest()


def _status_mb(field: str) -> float:
    """VmRSS / VmHWM of this process from /proc (ru_maxrss would include the parent's RSS at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS, so the next peak is the matching's own (Linux ≥ 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def build_warehouse(path: Path, stored: int, seed: int = 1, real: bool = True) -> float:
    """Write `stored` signed articles straight into the tables (no pipeline): real-text signatures
    composed from real sentences (module doc), or random ones."""
    import duckdb

    from newsetl.text.lsh import DedupConfig, rank_keys
    from newsetl.text.sign import band_keys
    from newsetl.warehouse.connect import migrate
    from newsetl.warehouse.dedup import check_scheme

    cfg = DedupConfig()
    con = duckdb.connect(str(path))
    migrate(con)  # the project's own migration runner
    check_scheme(con, cfg)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    pool_mh, pool_n = sentence_pool() if real else (np.zeros((0, 0), np.uint32), np.zeros(0, np.int64))
    chunk = _BUILD_CHUNK
    for s in range(0, stored, chunk):
        n = min(chunk, stored - s)
        sid = np.arange(s + 1, s + n + 1, dtype=np.int64)
        ids = [_hex_id("s", int(i)) for i in sid]
        if real:
            mh, n_sh = compose(pool_mh, pool_n, doc_sentences(s // chunk, n, len(pool_mh), seed))
            mh = mh.astype("<u4")
        else:
            mh = rng.integers(0, 2**32, size=(n, cfg.sign.num_perm), dtype=np.uint64).astype("<u4")
            n_sh = np.full(n, 500)
        tables = {
            "signatures": pa.table({
                "sid": sid, "article_id": ids, "body_hash": [_hex_id("h", int(i)) for i in sid],
                "rank_key": rank_keys(ids), "body_key": rank_keys([_hex_id("h", int(i)) for i in sid]),
                "n_shingles": pa.array(n_sh, pa.int32()),
                "n_words": pa.array(np.full(n, 504), pa.int32()), "banded": np.ones(n, dtype=bool),
                "minhash": pa.array([r.tobytes() for r in mh], pa.binary()), "run_id": ["seed"] * n}),
            "lsh_bands": pa.table({"key": band_keys(mh.astype(np.uint32), cfg.sign).reshape(-1),
                                   "sid": np.repeat(sid, cfg.sign.bands)}),
            "articles": pa.table({
                "article_id": ids, "doc_id": ids, "source_uri": ids, "body": [""] * n,
                "body_hash": [_hex_id("h", int(i)) for i in sid],
                "word_count": pa.array(np.full(n, 504), pa.int32()),
                "cluster_id": ids, "is_canonical": np.ones(n, dtype=bool), "content_type": ["text"] * n,
                "run_id": ["seed"] * n}),
            "clusters": pa.table({"cluster_id": ids, "canonical_article_id": ids,
                                  "size": pa.array(np.ones(n), pa.int32()), "updated_run_id": ["seed"] * n,
                                  "created_seq": sid}),
        }
        for name, t in tables.items():
            con.register("_t", t)
            con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM _t").fetchall()
            con.unregister("_t")
    # The loader never lets a bucket hold more than max_bucket_size rows (the first arrivals fill it);
    # rows written straight into the table must respect that too, or real text's shared sentences make
    # buckets of thousands that no warehouse built by the loader has.
    cap_buckets(con, cfg.max_bucket_size)
    con.execute("CHECKPOINT")
    con.close()
    return time.perf_counter() - t0


def cap_buckets(con: object, cap: int) -> None:
    import duckdb

    assert isinstance(con, duckdb.DuckDBPyConnection)
    con.execute(f"""CREATE TABLE _capped AS SELECT key, sid FROM lsh_bands
                    QUALIFY row_number() OVER (PARTITION BY key ORDER BY sid) <= {int(cap)}""").fetchall()
    con.execute("DELETE FROM lsh_bands").fetchall()
    con.execute("INSERT INTO lsh_bands SELECT * FROM _capped").fetchall()
    con.execute("DROP TABLE _capped").fetchall()


# --- real-text signatures: documents as sets of real sentences -----------------------------------------

DOC_SENTENCES = 24
_BUILD_CHUNK = 20_000


def sentence_pool() -> tuple[np.ndarray, np.ndarray]:
    """MinHash (m, num_perm) uint32 and shingle counts of every distinct sentence (≥ 6 words) of the eval
    texts in ../shared/eval."""
    import re

    from newsetl.text.sign import sign_texts

    ev = SHARED / "eval"
    texts = [json.loads(x)["text"] for x in (ev / "dedup-dev" / "docs.jsonl").read_text(encoding="utf-8").splitlines()
             if x.strip()]
    for sub in ("traf-dev", "aeb-dev"):
        texts += [p.read_text(encoding="utf-8", errors="replace") for p in sorted((ev / sub / "text").glob("*.txt"))]
    split = re.compile(r"(?<=[.!?])\s+|\n+")
    sentences = sorted({s.strip() for t in texts for s in split.split(t) if len(s.split()) >= 6})
    sigs = sign_texts(sentences)
    return sigs.minhash, np.asarray(sigs.n_shingles, dtype=np.int64)


def doc_sentences(chunk: int, n: int, pool_size: int, seed: int) -> np.ndarray:
    """(n, DOC_SENTENCES) sentence indices of the stored documents of one build chunk (reproducible)."""
    return np.random.default_rng([seed, chunk]).integers(0, pool_size, size=(n, DOC_SENTENCES))


def compose(pool_mh: np.ndarray, pool_n: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MinHash and shingle count of documents made of the sentences `idx` (n, k)."""
    return pool_mh[idx].min(axis=1), pool_n[idx].sum(axis=1)


def match_once(path: Path, stored: int, memory_limit: str | None, seed: int = 2,
               profile: bool = False, rounds: int = 3, real: bool = True,
               threads: int | None = None) -> dict[str, object]:
    """Run in a fresh process: open the warehouse, cluster one 10k batch (rolled back), report."""
    import duckdb

    from newsetl.text.lsh import DedupConfig
    from newsetl.text.sign import Signatures
    from newsetl.warehouse.dedup import cluster_batch

    cfg = DedupConfig()
    rng = np.random.default_rng(seed)
    con = duckdb.connect(str(path))
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    rss_open = _status_mb("VmRSS")
    src = rng.choice(np.arange(1, stored + 1), size=COPIES, replace=False)
    if real:
        mh, n_sh = _real_batch(src, stored, rng)
    else:
        mh, n_sh = _random_batch(con, src, rng, cfg.sign.num_perm), np.full(BATCH, 500)
    ids = [_hex_id("n", i) for i in range(BATCH)]
    hashes = [_hex_id("nh", i) for i in range(BATCH)]
    sigs = Signatures(minhash=mh, n_shingles=n_sh, n_words=np.full(BATCH, 504),
                      body_hash=np.array(hashes, dtype=object), completeness=np.full(BATCH, 504))
    batch = pa.table({"article_id": ids, "body_hash": hashes,
                      "word_count": pa.array(np.full(BATCH, 504), pa.int32()),
                      "published_at": pa.array([None] * BATCH, pa.timestamp("us", tz="UTC")),
                      "fetched_at": pa.array([None] * BATCH, pa.timestamp("us", tz="UTC"))})
    arts = pa.table({"article_id": ids, "doc_id": ids, "source_uri": ids, "body": [""] * BATCH,
                     "body_hash": batch.column("body_hash"), "word_count": batch.column("word_count"),
                     "content_type": ["text"] * BATCH, "run_id": ["bench"] * BATCH})
    times: list[float] = []
    cpus: list[float] = []  # CPU seconds of the process (all DuckDB threads): less load-dependent than wall
    peaks: list[float] = []
    stats = None
    found = 0
    for _ in range(rounds):  # each round rolled back: round 1 reads the file cold, later rounds warm
        con.execute("BEGIN TRANSACTION")
        con.register("_a", arts)
        con.execute("INSERT INTO articles BY NAME SELECT * FROM _a").fetchall()
        con.unregister("_a")
        rss_before = _status_mb("VmRSS")
        reset = _reset_peak()
        t0, c0 = time.perf_counter(), time.process_time()
        if profile:
            import cProfile
            import pstats

            with cProfile.Profile() as prof:
                stats = cluster_batch(con, batch, sigs, cfg, "bench")
            pstats.Stats(prof, stream=sys.stderr).sort_stats("cumtime").print_stats("dedup.py", 30)
        else:
            stats = cluster_batch(con, batch, sigs, cfg, "bench")
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        peaks.append(_status_mb("VmHWM") - rss_before if reset else float("nan"))
        con.register("_copies", pa.table({"v": ids[:COPIES]}))
        found = con.execute("SELECT count(*) FROM articles a JOIN _copies c ON a.article_id = c.v JOIN "
                            "clusters k ON k.cluster_id = a.cluster_id WHERE k.size = 2").fetchall()[0][0]
        con.unregister("_copies")
        con.execute("ROLLBACK")
    rss_end = _status_mb("VmRSS")
    con.close()
    assert stats is not None
    return {"bench": "match", "signatures": "real-text" if real else "random", "stored": stored,
            "batch": BATCH, "planted_copies": COPIES,
            "copies_found": int(found), "seconds_cold": round(times[0], 3),
            "seconds_warm_best": round(min(times[1:]), 3) if len(times) > 1 else None,
            "cpu_seconds": [round(c, 2) for c in cpus], "band_pairs": stats.band_pairs,
            "candidates": stats.candidates, "verified_pairs": stats.verified_pairs,
            "memory_limit": memory_limit, "threads": threads,
            "rss_mb_after_open": round(rss_open), "peak_growth_mb_per_round": [round(p) for p in peaks],
            "rss_mb_end": round(rss_end),
            }


def _real_batch(src: np.ndarray, stored: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """10,000 new real-text signatures: near copies of the stored documents `src` (one of their 24
    sentences swapped for another: containment ≈ 0.96), then new documents of random sentences."""
    pool_mh, pool_n = sentence_pool()
    idx = rng.integers(0, len(pool_mh), size=(BATCH, DOC_SENTENCES))
    for k, s in enumerate(src.tolist()):
        chunk, row = divmod(int(s) - 1, _BUILD_CHUNK)
        n = min(_BUILD_CHUNK, stored - chunk * _BUILD_CHUNK)
        idx[k] = doc_sentences(chunk, n, len(pool_mh), 1)[row]
        idx[k, int(rng.integers(DOC_SENTENCES))] = int(rng.integers(len(pool_mh)))
    mh, n_sh = compose(pool_mh, pool_n, idx)
    return mh.astype(np.uint32), n_sh


def _random_batch(con: object, src: np.ndarray, rng: np.random.Generator, num_perm: int) -> np.ndarray:
    """Random signatures, the first 1,000 near copies of `src` (5 % of values changed: J ≈ 0.9)."""
    import duckdb

    assert isinstance(con, duckdb.DuckDBPyConnection)
    con.register("_src", pa.table({"sid": src}))
    got = con.sql("SELECT s.sid, s.minhash FROM signatures s JOIN _src USING (sid) ORDER BY s.sid").fetchnumpy()
    con.unregister("_src")
    order = {int(s): k for k, s in enumerate(got["sid"])}
    mh = rng.integers(0, 2**32, size=(BATCH, num_perm), dtype=np.uint64).astype(np.uint32)
    for k, s in enumerate(src):
        base = np.frombuffer(got["minhash"][order[int(s)]], dtype="<u4").copy()
        change = rng.random(num_perm) < 0.05
        base[change] = rng.integers(0, 2**32, size=int(change.sum()), dtype=np.uint64).astype(np.uint32)
        mh[k] = base
    return mh


def bench_match(stored_list: Sequence[int], workdir: Path | None, memory_limit: str | None,
                db: Path | None = None, profile: bool = False, rounds: int = 3,
                real: bool = True, threads: int | None = None) -> list[dict[str, object]]:
    """Build a warehouse per stored count (or reuse `db`, which is then kept) and match one batch."""
    results = []
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)  # a --workdir that does not exist yet is made
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for stored in stored_list:
            path = db if db is not None else Path(tmp) / f"match_{stored}.duckdb"
            build_s = 0.0 if path.exists() else build_warehouse(path, stored, real=real)
            cmd = [sys.executable, __file__, "--_match-child", str(path), "--stored", str(stored),
                   "--rounds", str(rounds)] + ([] if real else ["--random"])
            cmd += ["--memory-limit", memory_limit or "none"]
            if threads:
                cmd += ["--threads", str(threads)]
            if profile:
                cmd += ["--profile"]
            out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            r.update({"build_seconds": round(build_s, 1), "db_mb": round(path.stat().st_size / 1e6)})
            print(json.dumps(r), flush=True)
            results.append(r)
            if db is None:
                path.unlink()
    return results


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=("sign", "match"))
    ap.add_argument("--docs", type=int, default=2000, help="generated texts for the signature bench")
    ap.add_argument("--sign-batch", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--stored", default="200000", help="stored signatures, or a comma-separated list")
    ap.add_argument("--memory-limit", default=LOAD_MEMORY_LIMIT,
                    help="DuckDB memory_limit for the match (default: the ingest's batch loads', %(default)s); "
                         "'none' for DuckDB's own default")
    ap.add_argument("--threads", type=int, default=None,
                    help="DuckDB threads for the match (default: DuckDB's, one per core; the ingest's batch "
                         f"loads use {LOAD_THREADS}, as its workers have the cores meanwhile)")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--profile", action="store_true", help="cProfile the match (to stderr)")
    ap.add_argument("--rounds", type=int, default=3, help="match rounds (rolled back); the first is cold")
    ap.add_argument("--db", type=Path, default=None, help="reuse (or keep) this prepared warehouse")
    ap.add_argument("--random", action="store_true", help="random signatures instead of real-text ones")
    ap.add_argument("--_match-child", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if str(args.memory_limit).lower() == "none":
        args.memory_limit = None
    if args._match_child:
        print(json.dumps(match_once(args._match_child, int(args.stored), args.memory_limit,
                                    profile=args.profile, rounds=args.rounds, real=not args.random,
                                    threads=args.threads)))
        return 0
    if args.only in (None, "sign"):
        bench_sign(args.docs, args.sign_batch, args.repeat)
    if args.only in (None, "match"):
        bench_match([int(x) for x in str(args.stored).split(",")], args.workdir, args.memory_limit, args.db,
                    args.profile, args.rounds, real=not args.random, threads=args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
