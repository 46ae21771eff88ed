"""Near-duplicate clustering in the warehouse: signatures, LSH bands, verified pairs, stable clusters.

`cluster_batch` runs inside the loader's transaction, after the batch's rows were inserted into
`articles`. For the new rows it:

1. skips articles already signed (idempotent re-loads);
2. **exact tier**: a new body whose `body_hash` is already stored (or repeats within the batch) is
   linked to that body's representative and stores no band rows of its own: identical bodies have
   identical signatures, so the representative's candidates are theirs. This keeps re-scrapes out of
   the LSH buckets, which would otherwise grow with every copy;
3. stores the signatures (`signatures`) and, for representatives long enough to be matched at all, one
   row per band (`lsh_bands`: band key, sid);
4. **candidates** for the new representatives against the whole history *and* the batch: one
   semi-join of the band table with the batch's band keys (DuckDB streams the stored side, so memory is
   bounded by the batch, not by the history). A bucket with more than `max_bucket_size` members
   (shared boilerplate) does not yield all its pairs: each new member meets only the
   `max_bucket_size` members with the smallest rank (a hash of article_id, so the choice does not
   depend on arrival order), plus everyone if it ranks there itself. Work per new article is bounded;
5. **verification** of every candidate: minimum length (both texts need `min_shingles` distinct
   shingles, so two boilerplate-only extraction failures of one site — a cookie notice, an address
   block — never merge), then Jaccard ≥ `jaccard` or containment of the smaller text ≥ `containment`
   (trimmed copies). Both are estimated from MinHash; a pair whose estimate lies within `z` standard
   errors of a threshold is decided on the exact shingle sets of the stored bodies;
6. **clusters**: union-find over the verified pairs and the existing clusters they touch. A cluster's
   id is the smallest article_id in it and its canonical article the most complete body
   (word_count), then the earliest publication, then the smallest article_id: both are functions of
   the partition alone, so ingesting a corpus in one run or in four gives identical ids. Merged-away
   clusters lose their `clusters` row; duplicates are kept and marked, never deleted.

Verified pairs are kept in `duplicate_pairs` (with `duplicate_pairs_view` adding titles) for
inspection. The signature scheme (`sign.scheme_id`) is recorded in `dedup_meta`; a warehouse holding
signatures of another scheme raises `SchemeMismatch` instead of mixing incomparable signatures.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from tasks.text.sign import (
    Signatures,
    SignConfig,
    band_keys,
    estimate_containment,
    estimate_jaccard,
    exact_similarity,
    scheme_id,
    shingle_sets,
)

METHOD_EXACT = "exact_body"  # equal normalized body (body_hash)
METHOD_MINHASH = "minhash"  # accepted on the MinHash estimate, clear of the thresholds
METHOD_SHINGLES = "shingles"  # estimate too close to a threshold: decided on the exact shingle sets


@dataclass(frozen=True)
class DedupConfig:
    """Verification and bucket settings. Defaults measured on dedup-dev (bench/eval_dedup.py).

    jaccard: a pair is a duplicate at Jaccard ≥ this. 0.8: the closest cross-story pair of dedup-dev
        (full-page dumps of two paywalled pages of one site, nav menus only) sits at 0.72; 0.7 lets it
        in (precision 0.9993), 0.8 and 0.9 give the same recall.
    containment: …or when this share of the smaller text's shingles is in the larger one (trimmed or
        extended copies). 0.9: 0.8 merges page dumps of one site (C ≈ 0.81-0.84; precision 0.975),
        0.85 is as good as 0.9 on dev but closer to those, 0.95 loses recall (ARI 0.979).
    min_shingles: both texts need this many distinct shingles, for every tier including the exact
        one: the boilerplate-only outputs of dedup-dev (cookie notices, address blocks) have ≤ 36
        words and merge at 20 (precision 0.991); 30 to 60 all give precision 1.0 and the same recall,
        80 loses recall. 50 sits in the middle of that flat range, leaving room for longer notices.
    max_bucket_size: LSH buckets larger than this are capped (see module docstring). No bucket of
        dedup-dev comes near it (exact copies and short texts have no band rows); it bounds the
        work per new article when boilerplate or a story syndicated hundreds of times fills a bucket.
    exact_verify: decide borderline estimates on exact shingle sets read from `articles.body`
        (ARI 0.984 with, 0.981 without on dev; about half the candidates of dev are borderline because
        it is full of trimmed copies, a news feed has far fewer). The signatures must be those of
        `articles.body`: a body whose shingle count differs from the stored one falls back on the
        estimate.
    z: how many standard errors around a threshold count as borderline.
    """

    sign: SignConfig = field(default_factory=SignConfig)
    jaccard: float = 0.8
    containment: float = 0.9
    min_shingles: int = 50
    max_bucket_size: int = 200
    exact_verify: bool = True
    z: float = 3.0


@dataclass(frozen=True)
class DedupStats:
    """What one call of `cluster_batch` did (all counts)."""

    articles: int = 0  # new articles signed
    skipped_known: int = 0  # already signed before (idempotent re-load)
    too_short: int = 0  # below min_shingles: never matched, own cluster
    exact_links: int = 0  # linked to an equal body (exact tier)
    band_rows: int = 0  # LSH rows stored
    hot_buckets: int = 0  # buckets over max_bucket_size (capped)
    candidates: int = 0  # distinct candidate pairs from the bands
    exact_checked: int = 0  # candidates decided on exact shingle sets
    verified_pairs: int = 0  # near-duplicate pairs accepted (exact tier not included)
    clusters_merged: int = 0  # existing clusters merged into another existing one
    clusters_written: int = 0  # clusters rows inserted or rewritten
    articles_updated: int = 0  # articles whose cluster_id / is_canonical was set or changed


class SchemeMismatch(RuntimeError):
    """The warehouse holds signatures of another hashing scheme; they cannot be compared with new ones."""


_DDL = """
CREATE TABLE IF NOT EXISTS dedup_meta (
    key    VARCHAR PRIMARY KEY,
    value  VARCHAR NOT NULL
);
-- One row per signed article. sid is a dense integer key (compact band rows); rank_key a 64-bit hash
-- of article_id that orders the members of an oversized bucket independently of arrival order and
-- finds known articles with an integer join; body_key the same for body_hash (the exact tier). Both
-- are confirmed on the full strings: integer joins over a million rows are 3× faster than on hex text.
CREATE TABLE IF NOT EXISTS signatures (
    sid         BIGINT NOT NULL,
    article_id  VARCHAR NOT NULL,
    body_hash   VARCHAR NOT NULL,
    rank_key    BIGINT NOT NULL,
    body_key    BIGINT NOT NULL,
    n_shingles  INTEGER NOT NULL,
    n_words     INTEGER NOT NULL,
    banded      BOOLEAN NOT NULL,   -- its band rows are stored (representative of its body, long enough)
    minhash     BLOB NOT NULL,      -- num_perm little-endian uint32
    run_id      VARCHAR
);
-- LSH: one row per band of each banded signature. No index: a batch is matched with a hash join
-- whose build side is the batch, so the stored side is streamed.
CREATE TABLE IF NOT EXISTS lsh_bands (
    key  BIGINT NOT NULL,
    sid  BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS duplicate_pairs (
    article_a    VARCHAR NOT NULL,   -- article_a < article_b
    article_b    VARCHAR NOT NULL,
    jaccard      DOUBLE NOT NULL,
    containment  DOUBLE NOT NULL,
    method       VARCHAR NOT NULL,   -- exact_body | minhash | shingles
    run_id       VARCHAR
);
CREATE OR REPLACE VIEW duplicate_pairs_view AS
SELECT p.article_a, p.article_b, p.jaccard, p.containment, p.method, p.run_id,
       a.cluster_id, a.title AS title_a, b.title AS title_b,
       a.publisher AS publisher_a, b.publisher AS publisher_b,
       a.word_count AS words_a, b.word_count AS words_b
FROM duplicate_pairs p
LEFT JOIN articles a ON a.article_id = p.article_a
LEFT JOIN articles b ON b.article_id = p.article_b;
"""


def ensure_schema(con: duckdb.DuckDBPyConnection, config: DedupConfig) -> None:
    """Create the dedup tables if needed and check that stored signatures use `config.sign`'s scheme.

    Raises SchemeMismatch when they do not. An empty warehouse adopts the configured scheme."""
    con.execute(_DDL)
    want = scheme_id(config.sign)
    rows = con.execute("SELECT value FROM dedup_meta WHERE key = 'scheme_id'").fetchall()
    have = str(rows[0][0]) if rows else None
    if have != want:
        stored = int(con.execute("SELECT count(*) FROM signatures").fetchall()[0][0])
        if stored and have is not None:
            raise SchemeMismatch(
                f"the warehouse holds {stored} signatures of scheme {have!r}, the configuration "
                f"signs with {want!r}; re-sign the warehouse or use its scheme")
        if stored:
            raise SchemeMismatch(f"the warehouse holds {stored} signatures of an unrecorded scheme")
        con.execute("DELETE FROM dedup_meta WHERE key = 'scheme_id'").fetchall()
        con.execute("INSERT INTO dedup_meta VALUES ('scheme_id', ?)", [want]).fetchall()


def _check_scheme(con: duckdb.DuckDBPyConnection, config: DedupConfig) -> None:
    """The cheap per-batch form of ensure_schema: DDL only when the tables are missing."""
    exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'dedup_meta' "
                         "AND schema_name = current_schema()").fetchall()[0][0]
    if not exists:
        ensure_schema(con, config)
        return
    rows = con.execute("SELECT value FROM dedup_meta WHERE key = 'scheme_id'").fetchall()
    if not rows or rows[0][0] != scheme_id(config.sign):
        ensure_schema(con, config)  # adopts the scheme on an empty warehouse, else raises


# ---------------------------------------------------------------------------------------------------
# Pure helpers (numpy): candidate pairs, verification, union-find. Kept apart from SQL so they can be
# tested and reasoned about on their own.


def rank_keys(article_ids: Sequence[str]) -> np.ndarray:
    """int64 hash of each string (first 8 bytes of its sha256): the rank of an article inside an
    oversized bucket (so arrival order does not matter), and an integer join key."""
    return np.array([int.from_bytes(hashlib.sha256(a.encode("utf-8")).digest()[:8], "little", signed=True)
                     for a in article_ids], dtype=np.int64)


def bucket_pairs(key: np.ndarray, sid: np.ndarray, rank: np.ndarray, is_new: np.ndarray,
                 max_bucket_size: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Distinct candidate pairs (s1 < s2) from bucket members, each pair with at least one new member.

    key, sid, rank, is_new: one entry per (bucket, member). In a bucket of at most `max_bucket_size`
    members, every new member pairs with every other member. In a larger one, a new member pairs with
    the `max_bucket_size` lowest-ranked members, and with everyone if it is one of them itself.
    Returns (s1, s2, number of oversized buckets)."""
    if len(key) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, 0
    order = np.lexsort((sid, rank, key))
    key, sid, is_new = key[order], sid[order], is_new[order]
    start_mask = np.r_[True, key[1:] != key[:-1]]
    seg_id = np.cumsum(start_mask) - 1
    seg_start = np.flatnonzero(start_mask)
    seg_size = np.diff(np.r_[seg_start, len(key)])
    hot = int(np.sum(seg_size > max_bucket_size))
    rows = np.flatnonzero(is_new & (seg_size[seg_id] > 1))
    st = seg_start[seg_id[rows]]
    size = seg_size[seg_id[rows]]
    pos = rows - st
    # Partners: the whole bucket, or only its lowest-ranked head when it is oversized and the new member
    # is not in the head itself.
    reach = np.where((size > max_bucket_size) & (pos >= max_bucket_size), max_bucket_size, size)
    total = int(reach.sum())
    if total == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, hot
    offsets = np.repeat(np.cumsum(reach) - reach, reach)
    partner = np.repeat(st, reach) + (np.arange(total) - offsets)
    me = np.repeat(rows, reach)
    keep = partner != me
    a, b = sid[me[keep]], sid[partner[keep]]
    s1, s2 = np.minimum(a, b), np.maximum(a, b)
    if len(s1) == 0:
        return s1, s2, hot
    o = np.lexsort((s2, s1))
    s1, s2 = s1[o], s2[o]
    first = np.r_[True, (s1[1:] != s1[:-1]) | (s2[1:] != s2[:-1])]
    return s1[first], s2[first], hot


@dataclass(frozen=True)
class Verdict:
    """Verification of candidate pairs: estimates, and which pairs are accepted / borderline."""

    jaccard: np.ndarray
    containment: np.ndarray
    accept: np.ndarray  # bool: accepted on the estimate
    borderline: np.ndarray  # bool: too close to a threshold, decide on exact shingle sets


def verify_estimates(mh_a: np.ndarray, mh_b: np.ndarray, n_a: np.ndarray, n_b: np.ndarray,
                     config: DedupConfig) -> Verdict:
    """Decide candidate pairs from their MinHash signatures and shingle counts.

    With exact_verify off, a pair is accepted when its estimate passes a threshold. With it on, a pair is
    accepted only when the estimate passes by more than z standard errors, and pairs within z standard
    errors of a threshold are marked borderline. The minimum length applies before anything else."""
    p = mh_a.shape[1] if mh_a.ndim == 2 else config.sign.num_perm
    j = estimate_jaccard(mh_a, mh_b) if len(mh_a) else np.zeros(0)
    c = estimate_containment(j, n_a, n_b)
    small = np.minimum(n_a, n_b)
    guard = small >= config.min_shingles
    if not config.exact_verify:
        accept = guard & ((j >= config.jaccard) | (c >= config.containment))
        return Verdict(j, c, accept, np.zeros(len(j), dtype=bool))
    # Binomial standard error of the estimate (floored so J = 0 or 1 still gets a margin), propagated
    # to containment through dC/dJ = (|A| + |B|) / (min(|A|, |B|) (1 + J)^2).
    se_j = np.sqrt(np.maximum(j * (1.0 - j), 1.0 / p) / p)
    se_c = (n_a + n_b) / np.maximum(small, 1) / (1.0 + j) ** 2 * se_j
    z = config.z
    accept = guard & ((j - z * se_j >= config.jaccard) | (c - z * se_c >= config.containment))
    maybe = guard & ((j + z * se_j >= config.jaccard) | (c + z * se_c >= config.containment))
    return Verdict(j, c, accept, maybe & ~accept)


class UnionFind:
    """Union-find over hashable labels; the representative of a set is its smallest label."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def add(self, x: str) -> None:
        self.parent.setdefault(x, x)

    def find(self, x: str) -> str:
        self.add(x)
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:  # path compression
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            lo, hi = (ra, rb) if ra < rb else (rb, ra)
            self.parent[hi] = lo

    def groups(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for x in self.parent:
            out.setdefault(self.find(x), []).append(x)
        return out


def canonical_key(word_count: int | None, published_at: datetime | None, article_id: str,
                  syndicated: bool = False) -> tuple[Any, ...]:
    """Sort key whose minimum is the canonical article: most words, then an original over a copy that
    names another original publisher (a wire story's own copy beats its reprints), then earliest
    publication (unknown last), then the smallest id (a stable tie-break)."""
    return (-(word_count or 0), syndicated, published_at is None, published_at or 0, article_id)


# ---------------------------------------------------------------------------------------------------
# The batch step.


def cluster_batch(con: duckdb.DuckDBPyConnection, batch: pa.Table, sigs: Signatures, config: DedupConfig,
                  run_id: str) -> DedupStats:
    """Sign, match, verify and cluster the batch's articles against the whole warehouse (see module doc).

    `batch` has article_id, body_hash, word_count, published_at (and fetched_at), row i signed by
    `sigs` row i; its articles are already in `articles`. Runs inside the caller's transaction."""
    if batch.num_rows != len(sigs):
        raise ValueError(f"batch has {batch.num_rows} rows but sigs {len(sigs)}")
    if sigs.minhash.ndim != 2 or sigs.minhash.shape[1] != config.sign.num_perm:
        raise ValueError(f"signatures have shape {sigs.minhash.shape}, expected (n, {config.sign.num_perm})")
    _check_scheme(con, config)
    ids_all = [str(x) for x in batch.column("article_id").to_pylist()]
    if not ids_all:
        return DedupStats()

    # 1. Idempotence: drop rows already signed (and repeated ids within the batch).
    keys_all = rank_keys(ids_all)
    known = _known_ids(con, ids_all, keys_all)
    seen: set[str] = set()
    rows: list[int] = []
    for i, a in enumerate(ids_all):
        if a not in known and a not in seen:
            seen.add(a)
            rows.append(i)
    skipped = len(ids_all) - len(rows)
    if not rows:
        return DedupStats(skipped_known=skipped)
    idx = np.array(rows, dtype=np.int64)
    ids = [ids_all[i] for i in rows]
    hashes = [str(h) for h in batch.column("body_hash").take(pa.array(idx)).to_pylist()]
    minhash = np.ascontiguousarray(sigs.minhash[idx].astype(np.uint32, copy=False))
    n_sh = np.asarray(sigs.n_shingles)[idx].astype(np.int64)
    n_words = np.asarray(sigs.n_words)[idx].astype(np.int64)
    n = len(ids)
    long_enough = n_sh >= config.min_shingles

    # 2. Exact tier: the representative of each body is the stored banded article with that hash, else
    # the smallest new article_id with it. Only representatives get band rows.
    stored_rep = _stored_representatives(con, sorted(set(hashes)))
    body_keys = rank_keys(hashes)
    rep_of: dict[str, str] = {}  # new article_id -> article_id of its body's representative
    new_rep_for_hash: dict[str, str] = {}
    for i in sorted(range(n), key=lambda k: ids[k]):
        h = hashes[i]
        if h in stored_rep:
            rep_of[ids[i]] = stored_rep[h]
        elif h in new_rep_for_hash:
            rep_of[ids[i]] = new_rep_for_hash[h]
        else:
            new_rep_for_hash[h] = ids[i]
    banded = np.array([ids[i] not in rep_of and bool(long_enough[i]) for i in range(n)], dtype=bool)

    # 3. Store signatures and band rows.
    # (DuckDB 2.0: fetchall, not fetchone — a result not fetched to its end keeps the connection busy.)
    base = int(con.execute("SELECT coalesce(max(sid), 0) FROM signatures").fetchall()[0][0]) + 1
    sid = np.arange(base, base + n, dtype=np.int64)
    ranks = keys_all[idx]
    sig_t = pa.table({
        "sid": pa.array(sid, pa.int64()),
        "article_id": pa.array(ids, pa.string()),
        "body_hash": pa.array(hashes, pa.string()),
        "rank_key": pa.array(ranks, pa.int64()),
        "body_key": pa.array(body_keys, pa.int64()),
        "n_shingles": pa.array(n_sh.astype(np.int32), pa.int32()),
        "n_words": pa.array(n_words.astype(np.int32), pa.int32()),
        "banded": pa.array(banded, pa.bool_()),
        "minhash": pa.array([m.tobytes() for m in minhash.astype("<u4", copy=False)], pa.binary()),
        "run_id": pa.array([run_id] * n, pa.string()),
    })
    _insert(con, "signatures", sig_t)
    keys = band_keys(minhash[banded], config.sign)
    band_sid = np.repeat(sid[banded], config.sign.bands)
    band_t = pa.table({"key": pa.array(keys.reshape(-1), pa.int64()), "sid": pa.array(band_sid, pa.int64())})

    # 4. Candidates: the stored members of every bucket a new band row falls in, plus the batch's own
    # rows (in memory). The band rows are inserted afterwards, so the scan reads committed data only.
    s1, s2, hot = _candidates(con, band_t, sid, ranks, base, config.max_bucket_size)
    _insert(con, "lsh_bands", band_t)

    # 5. Verify.
    pairs, checked = _verify(con, s1, s2, base, sid, ids, minhash, n_sh, config)
    position = {a: i for i, a in enumerate(ids)}
    exact_pairs = [(a, r) for a, r in sorted(rep_of.items()) if long_enough[position[a]]]

    # 6. Cluster.
    pair_rows: list[tuple[str, str, float, float, str]] = []
    for a, r in exact_pairs:
        lo, hi = min(a, r), max(a, r)
        pair_rows.append((lo, hi, 1.0, 1.0, METHOD_EXACT))
    pair_rows.extend(pairs)
    _insert(con, "duplicate_pairs", pa.table({
        "article_a": pa.array([p[0] for p in pair_rows], pa.string()),
        "article_b": pa.array([p[1] for p in pair_rows], pa.string()),
        "jaccard": pa.array([p[2] for p in pair_rows], pa.float64()),
        "containment": pa.array([p[3] for p in pair_rows], pa.float64()),
        "method": pa.array([p[4] for p in pair_rows], pa.string()),
        "run_id": pa.array([run_id] * len(pair_rows), pa.string()),
    }))
    merged, written, updated = _recluster(con, ids, [(p[0], p[1]) for p in pair_rows], batch, idx, run_id)

    return DedupStats(
        articles=n, skipped_known=skipped, too_short=int(np.sum(~long_enough)), exact_links=len(exact_pairs),
        band_rows=band_t.num_rows, hot_buckets=hot, candidates=len(s1), exact_checked=checked,
        verified_pairs=len(pairs), clusters_merged=merged, clusters_written=written, articles_updated=updated,
    )


def _insert(con: duckdb.DuckDBPyConnection, table: str, data: pa.Table) -> None:
    if data.num_rows == 0:
        return
    name = f"_dedup_in_{table}"
    con.register(name, data)
    try:
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {name}").fetchall()
    finally:
        con.unregister(name)


def _with_keys(con: duckdb.DuckDBPyConnection, name: str, values: Iterable[Any], sql: str,
               dtype: pa.DataType | None = None) -> pa.Table:
    """Run query `sql` with a one-column table `name(v)` of `values` registered; its result as Arrow.

    (DuckDB 2.0: `con.sql(...).to_arrow_table()` streams the result; `execute(...).to_arrow_table()`
    copies it and leaves the connection busy.)"""
    con.register(name, pa.table({"v": pa.array(list(values), dtype or pa.string())}))
    try:
        return con.sql(sql).to_arrow_table()
    finally:
        con.unregister(name)


def _exec_with_keys(con: duckdb.DuckDBPyConnection, name: str, values: Iterable[Any], sql: str) -> None:
    """Run statement `sql` (no result) with a one-column table `name(v)` of string `values` registered."""
    con.register(name, pa.table({"v": pa.array(list(values), pa.string())}))
    try:
        con.execute(sql).fetchall()
    finally:
        con.unregister(name)


def _known_ids(con: duckdb.DuckDBPyConnection, ids: Sequence[str], keys: np.ndarray) -> set[str]:
    """The ids already signed: an integer semi-join on their hash, confirmed on the strings."""
    t = _with_keys(con, "_dedup_ids", keys.tolist(),
                   "SELECT s.article_id FROM signatures s SEMI JOIN _dedup_ids k ON s.rank_key = k.v",
                   pa.int64())
    return set(ids) & {str(x) for x in t.column(0).to_pylist()}


def _stored_representatives(con: duckdb.DuckDBPyConnection, hashes: Sequence[str]) -> dict[str, str]:
    """body_hash -> stored article to link an equal new body to: the banded one (there is exactly one
    per long body), else, for a body too short to be banded, the smallest id (it gets no exact link)."""
    t = _with_keys(con, "_dedup_hashes", rank_keys(hashes).tolist(),
                   "SELECT s.body_hash, s.article_id, s.banded FROM signatures s "
                   "SEMI JOIN _dedup_hashes k ON s.body_key = k.v", pa.int64())
    wanted = set(hashes)
    best: dict[str, tuple[bool, str]] = {}
    for h, a, banded in zip(*(t.column(c).to_pylist() for c in range(3)), strict=True):
        if h in wanted and (h not in best or (not banded, a) < best[h]):
            best[h] = (not banded, a)
    return {h: a for h, (_, a) in best.items()}


def _candidates(con: duckdb.DuckDBPyConnection, band_t: pa.Table, new_sid: np.ndarray, new_rank: np.ndarray,
                base: int, max_bucket_size: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Candidate pairs (s1 < s2) of the batch's band rows against the stored ones and each other.

    The one query over the history is a semi-join whose build side is the batch's distinct keys: the
    band table is streamed once, and only rows that share a key come back (few, unless boilerplate)."""
    if band_t.num_rows == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, 0
    con.register("_dedup_new_bands", band_t)
    try:
        hist = con.sql(f"""
            SELECT b.key, b.sid FROM lsh_bands b
            SEMI JOIN _dedup_new_bands n ON b.key = n.key
            WHERE b.sid < {int(base)}
        """).fetchnumpy()
    finally:
        con.unregister("_dedup_new_bands")
    new_key = band_t.column("key").to_numpy()
    new_sids = band_t.column("sid").to_numpy()
    key = np.concatenate([np.asarray(hist["key"], dtype=np.int64), new_key])
    sid = np.concatenate([np.asarray(hist["sid"], dtype=np.int64), new_sids])
    # Keep only buckets with at least two members (almost every new row is alone in its bucket).
    order = np.argsort(key, kind="stable")
    key, sid = key[order], sid[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    counts = np.diff(np.r_[starts, len(key)])
    size = np.repeat(counts, counts)
    shared = size > 1
    key, sid, size = key[shared], sid[shared], size[shared]
    # Ranks matter only inside oversized buckets; look up the stored members' ranks only then.
    rank = np.zeros(len(sid), dtype=np.int64)
    is_new = sid >= base
    rank_of_new = dict(zip(new_sid.tolist(), new_rank.tolist(), strict=True))
    hot_rows = size > max_bucket_size
    if hot_rows.any():
        rank[hot_rows & is_new] = [rank_of_new[int(s)] for s in sid[hot_rows & is_new]]
        old_hot = np.unique(sid[hot_rows & ~is_new])
        if len(old_hot):
            t = _with_keys(con, "_dedup_rank_sids", old_hot.tolist(),
                           "SELECT s.sid, s.rank_key FROM signatures s SEMI JOIN _dedup_rank_sids k "
                           "ON s.sid = k.v", pa.int64())
            r = dict(zip(t.column(0).to_pylist(), t.column(1).to_pylist(), strict=True))
            rank[hot_rows & ~is_new] = [r[int(s)] for s in sid[hot_rows & ~is_new]]
    return bucket_pairs(key, sid, rank, is_new, max_bucket_size)


_VERIFY_CHUNK = 100_000  # candidate pairs verified at once (~100 MB of signature rows)


def _verify(con: duckdb.DuckDBPyConnection, s1: np.ndarray, s2: np.ndarray, base: int, sid: np.ndarray,
            ids: Sequence[str], minhash: np.ndarray, n_sh: np.ndarray,
            config: DedupConfig) -> tuple[list[tuple[str, str, float, float, str]], int]:
    """Accepted pairs as (article_a, article_b, jaccard, containment, method), and how many were
    decided on exact shingle sets."""
    if len(s1) == 0:
        return [], 0
    # Signatures of the stored side (s1 < s2 and new sids are the largest, so s2 is always new unless
    # both are stored, which cannot happen: every pair has a new member).
    old = np.unique(s1[s1 < base])
    info: dict[int, tuple[str, np.ndarray, int]] = {}
    if len(old):
        t = _with_keys(con, "_dedup_sids", old.tolist(),
                       "SELECT s.sid, s.article_id, s.minhash, s.n_shingles FROM signatures s "
                       "SEMI JOIN _dedup_sids k ON s.sid = k.v", pa.int64())
        for s, a, m, k in zip(*(t.column(c).to_pylist() for c in range(4)), strict=True):
            info[int(s)] = (str(a), np.frombuffer(m, dtype="<u4"), int(k))
    for j, s in enumerate(sid):
        info[int(s)] = (ids[j], minhash[j], int(n_sh[j]))
    # One signature matrix over the distinct sids, then fancy indexing per pair, in chunks: stacking one
    # array per pair was the hot spot (and its memory grew with the candidate count, not the batch).
    keys = np.array(sorted(info), dtype=np.int64)
    mat = np.stack([info[int(k)][1] for k in keys])
    counts_arr = np.array([info[int(k)][2] for k in keys], dtype=np.int64)
    pos_a, pos_b = np.searchsorted(keys, s1), np.searchsorted(keys, s2)
    parts = [verify_estimates(mat[pos_a[i:i + _VERIFY_CHUNK]], mat[pos_b[i:i + _VERIFY_CHUNK]],
                              counts_arr[pos_a[i:i + _VERIFY_CHUNK]], counts_arr[pos_b[i:i + _VERIFY_CHUNK]], config)
             for i in range(0, len(s1), _VERIFY_CHUNK)]
    v = parts[0] if len(parts) == 1 else type(parts[0])(
        **{f: np.concatenate([getattr(p, f) for p in parts]) for f in vars(parts[0])})
    out: list[tuple[str, str, float, float, str]] = []
    for k in np.flatnonzero(v.accept):
        a, b = info[int(s1[k])][0], info[int(s2[k])][0]
        out.append((min(a, b), max(a, b), float(v.jaccard[k]), float(v.containment[k]), METHOD_MINHASH))
    border = np.flatnonzero(v.borderline)
    if len(border) == 0:
        return out, 0
    need = sorted({info[int(s)][0] for k in border for s in (s1[k], s2[k])})
    bodies_t = _with_keys(con, "_dedup_body_ids", need,
                          "SELECT a.article_id, a.body FROM articles a SEMI JOIN _dedup_body_ids k "
                          "ON a.article_id = k.v")
    bodies = dict(zip(bodies_t.column(0).to_pylist(), bodies_t.column(1).to_pylist(), strict=True))
    have = [a for a in need if a in bodies]
    sets = dict(zip(have, shingle_sets([bodies[a] for a in have], config.sign), strict=True))
    counts = {a: n for a, _, n in info.values()}
    checked = 0
    for k in border:
        a, b = info[int(s1[k])][0], info[int(s2[k])][0]
        # The exact sets must be those the signatures were made from; a body whose shingle count differs
        # from the stored one was changed (or signed from another text): trust the estimate instead.
        if a in sets and b in sets and len(sets[a]) == counts[a] and len(sets[b]) == counts[b]:
            checked += 1
            jac, con_ = exact_similarity(sets[a], sets[b])
            small = min(len(sets[a]), len(sets[b]))
            ok = small >= config.min_shingles and (jac >= config.jaccard or con_ >= config.containment)
            method = METHOD_SHINGLES
        else:  # body not in the warehouse: fall back on the estimate
            jac, con_ = float(v.jaccard[k]), float(v.containment[k])
            ok = jac >= config.jaccard or con_ >= config.containment
            method = METHOD_MINHASH
        if ok:
            out.append((min(a, b), max(a, b), jac, con_, method))
    return out, checked


def _recluster(con: duckdb.DuckDBPyConnection, new_ids: Sequence[str], pairs: Sequence[tuple[str, str]],
               batch: pa.Table, idx: np.ndarray, run_id: str) -> tuple[int, int, int]:
    """Union the new articles with each other and with the existing clusters the pairs reach; rewrite
    cluster_id / is_canonical of every member of an affected cluster and the clusters rows.

    Returns (existing clusters merged away, clusters rows written, article rows updated)."""
    new_set = set(new_ids)
    old_ends = sorted({x for p in pairs for x in p if x not in new_set})
    cluster_of: dict[str, str] = {}
    if old_ends:
        t = _with_keys(con, "_dedup_old", old_ends,
                       "SELECT a.article_id, coalesce(a.cluster_id, a.article_id) FROM articles a "
                       "SEMI JOIN _dedup_old k ON a.article_id = k.v")
        cluster_of = dict(zip(t.column(0).to_pylist(), t.column(1).to_pylist(), strict=True))
    uf = UnionFind()

    def node(a: str) -> str:
        # Existing clusters are nodes of their own ("c:" + id), so merging through any member merges all.
        return "a:" + a if a in new_set else "c:" + cluster_of.get(a, a)

    for a in new_ids:
        uf.add("a:" + a)
    for a, b in pairs:
        uf.union(node(a), node(b))
    groups = uf.groups()
    old_clusters = sorted({x[2:] for g in groups.values() for x in g if x.startswith("c:")})

    # Members of the affected existing clusters, with what the canonical choice needs.
    # article_id -> (cluster, word count, published_at, is a syndicated copy)
    members: dict[str, tuple[str, int | None, datetime | None, bool]] = {}
    if old_clusters:
        t = _with_keys(con, "_dedup_clusters", old_clusters, """
            SELECT a.article_id, coalesce(a.cluster_id, a.article_id), a.word_count, a.published_at,
                   a.cluster_id, a.is_canonical, a.original_publisher IS NOT NULL
            FROM articles a SEMI JOIN _dedup_clusters k ON coalesce(a.cluster_id, a.article_id) = k.v""")
        cols = [t.column(c).to_pylist() for c in range(7)]
        current = {a: (cid, canon) for a, cid, canon in zip(cols[0], cols[4], cols[5], strict=True)}
        for a, c, wc, pub, syn in zip(cols[0], cols[1], cols[2], cols[3], cols[6], strict=True):
            members[a] = (c, wc, pub, bool(syn))
    else:
        current = {}
    wc_new = batch.column("word_count").take(pa.array(idx)).to_pylist()
    pub_new = batch.column("published_at").take(pa.array(idx)).to_pylist() \
        if "published_at" in batch.column_names else [None] * len(idx)
    syn_new = [v is not None for v in batch.column("original_publisher").take(pa.array(idx)).to_pylist()] \
        if "original_publisher" in batch.column_names else [False] * len(idx)
    for a, wc, pub, syn in zip(new_ids, wc_new, pub_new, syn_new, strict=True):
        members[a] = ("", wc, pub, syn)
    by_old_cluster: dict[str, list[str]] = {}
    for a, (c, _, _, _) in members.items():
        if c:
            by_old_cluster.setdefault(c, []).append(a)

    upd_ids: list[str] = []
    upd_cluster: list[str] = []
    upd_canon: list[bool] = []
    cl_rows: dict[str, list[Any]] = {"cluster_id": [], "canonical_article_id": [], "size": [],
                                     "updated_run_id": []}
    merged = 0
    for g in groups.values():
        arts = [x[2:] for x in g if x.startswith("a:")]
        olds = [x[2:] for x in g if x.startswith("c:")]
        for c in olds:
            arts.extend(by_old_cluster.get(c, []))
        arts = sorted(set(arts))
        cid = arts[0]
        canon = min(arts, key=lambda a: canonical_key(members[a][1], members[a][2], a, members[a][3]))
        merged += max(0, len(olds) - 1)  # existing clusters joined into one
        cl_rows["cluster_id"].append(cid)
        cl_rows["canonical_article_id"].append(canon)
        cl_rows["size"].append(len(arts))
        cl_rows["updated_run_id"].append(run_id)
        for a in arts:
            is_c = a == canon
            if a in new_set or current.get(a) != (cid, is_c):
                upd_ids.append(a)
                upd_cluster.append(cid)
                upd_canon.append(is_c)
    # The affected old clusters are rewritten or merged away. (A new cluster's id is either one of them
    # or the id of a new article, which has no clusters row: the batch is one transaction.)
    if old_clusters:
        _exec_with_keys(con, "_dedup_drop", old_clusters,
                        "DELETE FROM clusters WHERE cluster_id IN (SELECT v FROM _dedup_drop)")
    _insert(con, "clusters", pa.table({
        "cluster_id": pa.array(cl_rows["cluster_id"], pa.string()),
        "canonical_article_id": pa.array(cl_rows["canonical_article_id"], pa.string()),
        "size": pa.array(cl_rows["size"], pa.int32()),
        "updated_run_id": pa.array(cl_rows["updated_run_id"], pa.string()),
    }))
    if upd_ids:
        con.register("_dedup_upd", pa.table({
            "article_id": pa.array(upd_ids, pa.string()),
            "cluster_id": pa.array(upd_cluster, pa.string()),
            "is_canonical": pa.array(upd_canon, pa.bool_()),
        }))
        try:
            con.execute("""UPDATE articles SET cluster_id = u.cluster_id, is_canonical = u.is_canonical
                           FROM _dedup_upd u WHERE articles.article_id = u.article_id""").fetchall()
        finally:
            con.unregister("_dedup_upd")
    return merged, len(cl_rows["cluster_id"]), len(upd_ids)


def partition(con: duckdb.DuckDBPyConnection) -> Mapping[str, str]:
    """article_id -> cluster_id of every article (for tests and evaluation)."""
    t = con.sql("SELECT article_id, cluster_id FROM articles").to_arrow_table()
    return dict(zip(t.column(0).to_pylist(), t.column(1).to_pylist(), strict=True))


def check_invariants(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Violations of the cluster contract (empty when all hold): every article has a cluster, every
    cluster exactly one canonical, and `clusters` agrees with `articles`."""
    problems: list[str] = []
    q: list[tuple[str, str]] = [
        ("articles without cluster", "SELECT count(*) FROM articles WHERE cluster_id IS NULL"),
        ("clusters without exactly one canonical",
         "SELECT count(*) FROM (SELECT cluster_id FROM articles GROUP BY cluster_id "
         "HAVING count(*) FILTER (WHERE is_canonical) <> 1)"),
        ("clusters rows disagreeing with articles",
         "SELECT count(*) FROM clusters c FULL JOIN (SELECT cluster_id, count(*) AS n, "
         "arg_max(article_id, is_canonical) AS canon FROM articles GROUP BY cluster_id) a USING (cluster_id) "
         "WHERE c.size IS DISTINCT FROM a.n OR c.canonical_article_id IS DISTINCT FROM a.canon"),
    ]
    for label, sql in q:
        bad = int(con.execute(sql).fetchall()[0][0])
        if bad:
            problems.append(f"{label}: {bad}")
    return problems
