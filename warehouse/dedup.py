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

The pure parts (candidate pairs from buckets, verification of estimates, union-find, the canonical
choice, `DedupConfig`) live in `newsetl.text.lsh`; this module holds the SQL around them. Its tables are
created by the migrations (`newsetl.schemas.tables`).

Verified pairs are kept in `duplicate_pairs` (with `duplicate_pairs_view` adding titles) for
inspection. The signature scheme (`sign.scheme_id`) is recorded in `dedup_meta`; a warehouse holding
signatures of another scheme raises `SchemeMismatch` instead of mixing incomparable signatures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from newsetl.text.lsh import (
    METHOD_EXACT,
    METHOD_MINHASH,
    METHOD_SHINGLES,
    DedupConfig,
    UnionFind,
    bucket_pairs,
    canonical_key,
    rank_keys,
    verify_estimates,
)
from newsetl.text.sign import Signatures, band_keys, exact_similarity, scheme_id, shingle_sets

__all__ = [
    "DedupConfig",
    "DedupStats",
    "SchemeMismatch",
    "check_invariants",
    "check_scheme",
    "cluster_batch",
    "partition",
]


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


def check_scheme(con: duckdb.DuckDBPyConnection, config: DedupConfig) -> None:
    """Check that stored signatures use `config.sign`'s scheme (the tables come from the migrations).

    Raises SchemeMismatch when they do not. An empty warehouse adopts the configured scheme."""
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


@dataclass(frozen=True)
class _NewRows:
    """The batch's rows not signed before, with what the steps after need of them."""

    idx: np.ndarray  # their row numbers in the batch
    ids: list[str]
    hashes: list[str]
    ranks: np.ndarray  # rank_keys(ids)
    minhash: np.ndarray  # (n, num_perm) uint32
    n_shingles: np.ndarray
    n_words: np.ndarray
    long_enough: np.ndarray  # bool: at least min_shingles, so matched at all


def cluster_batch(con: duckdb.DuckDBPyConnection, batch: pa.Table, sigs: Signatures, config: DedupConfig,
                  run_id: str) -> DedupStats:
    """Sign, match, verify and cluster the batch's articles against the whole warehouse (see module doc).

    `batch` has article_id, body_hash, word_count, published_at (and fetched_at), row i signed by
    `sigs` row i; its articles are already in `articles`. Runs inside the caller's transaction."""
    if batch.num_rows != len(sigs):
        raise ValueError(f"batch has {batch.num_rows} rows but sigs {len(sigs)}")
    if sigs.minhash.ndim != 2 or sigs.minhash.shape[1] != config.sign.num_perm:
        raise ValueError(f"signatures have shape {sigs.minhash.shape}, expected (n, {config.sign.num_perm})")
    _check_scheme_cheaply(con, config)
    ids_all = [str(x) for x in batch.column("article_id").to_pylist()]
    if not ids_all:
        return DedupStats()
    new = _new_rows(con, batch, sigs, ids_all, config)
    skipped = len(ids_all) - len(new.ids)
    if not new.ids:
        return DedupStats(skipped_known=skipped)
    rep_of = _exact_representatives(con, new)
    banded = np.array([a not in rep_of and bool(ok) for a, ok in zip(new.ids, new.long_enough, strict=True)],
                      dtype=bool)
    base, sid = _store_signatures(con, new, banded, run_id)
    keys = band_keys(new.minhash[banded], config.sign)
    band_t = pa.table({"key": pa.array(keys.reshape(-1), pa.int64()),
                       "sid": pa.array(np.repeat(sid[banded], config.sign.bands), pa.int64())})
    # Candidates: the stored members of every bucket a new band row falls in, plus the batch's own
    # rows (in memory). The band rows are inserted afterwards, so the scan reads committed data only.
    s1, s2, hot = _candidates(con, band_t, sid, new.ranks, base, config.max_bucket_size)
    _insert(con, "lsh_bands", band_t)
    pairs, checked = _verify(con, s1, s2, base, sid, new.ids, new.minhash, new.n_shingles, config)
    position = {a: i for i, a in enumerate(new.ids)}
    exact_pairs = [(a, r) for a, r in sorted(rep_of.items()) if new.long_enough[position[a]]]
    pair_rows = _record_pairs(con, exact_pairs, pairs, run_id)
    merged, written, updated = _recluster(con, new.ids, [(p[0], p[1]) for p in pair_rows], batch, new.idx, run_id)
    return DedupStats(
        articles=len(new.ids), skipped_known=skipped, too_short=int(np.sum(~new.long_enough)),
        exact_links=len(exact_pairs), band_rows=band_t.num_rows, hot_buckets=hot, candidates=len(s1),
        exact_checked=checked, verified_pairs=len(pairs), clusters_merged=merged, clusters_written=written,
        articles_updated=updated,
    )


def _check_scheme_cheaply(con: duckdb.DuckDBPyConnection, config: DedupConfig) -> None:
    """The cheap per-batch form of check_scheme: one lookup when the scheme is already recorded."""
    rows = con.execute("SELECT value FROM dedup_meta WHERE key = 'scheme_id'").fetchall()
    if not rows or rows[0][0] != scheme_id(config.sign):
        check_scheme(con, config)  # adopts the scheme on an empty warehouse, else raises


def _new_rows(con: duckdb.DuckDBPyConnection, batch: pa.Table, sigs: Signatures, ids_all: list[str],
              config: DedupConfig) -> _NewRows:
    """Idempotence: the batch's rows minus those already signed (and minus repeated ids in the batch)."""
    keys_all = rank_keys(ids_all)
    known = _known_ids(con, ids_all, keys_all)
    seen: set[str] = set()
    rows: list[int] = []
    for i, a in enumerate(ids_all):
        if a not in known and a not in seen:
            seen.add(a)
            rows.append(i)
    idx = np.array(rows, dtype=np.int64)
    n_sh = np.asarray(sigs.n_shingles)[idx].astype(np.int64)
    return _NewRows(
        idx=idx, ids=[ids_all[i] for i in rows],
        hashes=[str(h) for h in batch.column("body_hash").take(pa.array(idx, pa.int64())).to_pylist()],
        ranks=keys_all[idx], minhash=np.ascontiguousarray(sigs.minhash[idx].astype(np.uint32, copy=False)),
        n_shingles=n_sh, n_words=np.asarray(sigs.n_words)[idx].astype(np.int64),
        long_enough=n_sh >= config.min_shingles,
    )


def _exact_representatives(con: duckdb.DuckDBPyConnection, new: _NewRows) -> dict[str, str]:
    """Exact tier: new article_id -> the representative of its body, for every new article that has one
    already: the stored banded article with that hash, else the smallest new article_id with it. Only
    representatives get band rows."""
    stored_rep = _stored_representatives(con, sorted(set(new.hashes)))
    rep_of: dict[str, str] = {}
    new_rep_for_hash: dict[str, str] = {}
    for i in sorted(range(len(new.ids)), key=lambda k: new.ids[k]):
        h = new.hashes[i]
        if h in stored_rep:
            rep_of[new.ids[i]] = stored_rep[h]
        elif h in new_rep_for_hash:
            rep_of[new.ids[i]] = new_rep_for_hash[h]
        else:
            new_rep_for_hash[h] = new.ids[i]
    return rep_of


def _store_signatures(con: duckdb.DuckDBPyConnection, new: _NewRows, banded: np.ndarray,
                      run_id: str) -> tuple[int, np.ndarray]:
    """Insert the new signatures under fresh dense sids; returns (first new sid, sids)."""
    # (DuckDB 2.0: fetchall, not fetchone — a result not fetched to its end keeps the connection busy.)
    base = int(con.execute("SELECT coalesce(max(sid), 0) FROM signatures").fetchall()[0][0]) + 1
    n = len(new.ids)
    sid = np.arange(base, base + n, dtype=np.int64)
    _insert(con, "signatures", pa.table({
        "sid": pa.array(sid, pa.int64()),
        "article_id": pa.array(new.ids, pa.string()),
        "body_hash": pa.array(new.hashes, pa.string()),
        "rank_key": pa.array(new.ranks, pa.int64()),
        "body_key": pa.array(rank_keys(new.hashes), pa.int64()),
        "n_shingles": pa.array(new.n_shingles.astype(np.int32), pa.int32()),
        "n_words": pa.array(new.n_words.astype(np.int32), pa.int32()),
        "banded": pa.array(banded, pa.bool_()),
        "minhash": pa.array([m.tobytes() for m in new.minhash.astype("<u4", copy=False)], pa.binary()),
        "run_id": pa.array([run_id] * n, pa.string()),
    }))
    return base, sid


def _record_pairs(con: duckdb.DuckDBPyConnection, exact_pairs: Sequence[tuple[str, str]],
                  pairs: Sequence[tuple[str, str, float, float, str]],
                  run_id: str) -> list[tuple[str, str, float, float, str]]:
    """Store the accepted pairs (exact-tier links first) in `duplicate_pairs`; returns them."""
    pair_rows = [(min(a, r), max(a, r), 1.0, 1.0, METHOD_EXACT) for a, r in exact_pairs]
    pair_rows.extend(pairs)
    _insert(con, "duplicate_pairs", pa.table({
        "article_a": pa.array([p[0] for p in pair_rows], pa.string()),
        "article_b": pa.array([p[1] for p in pair_rows], pa.string()),
        "jaccard": pa.array([p[2] for p in pair_rows], pa.float64()),
        "containment": pa.array([p[3] for p in pair_rows], pa.float64()),
        "method": pa.array([p[4] for p in pair_rows], pa.string()),
        "run_id": pa.array([run_id] * len(pair_rows), pa.string()),
    }))
    return pair_rows


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


_Member = tuple[str, int | None, datetime | None, bool]  # (old cluster or "", word count, published_at, syndicated)


def _recluster(con: duckdb.DuckDBPyConnection, new_ids: Sequence[str], pairs: Sequence[tuple[str, str]],
               batch: pa.Table, idx: np.ndarray, run_id: str) -> tuple[int, int, int]:
    """Union the new articles with each other and with the existing clusters the pairs reach; rewrite
    cluster_id / is_canonical of every member of an affected cluster and the clusters rows.

    Returns (existing clusters merged away, clusters rows written, article rows updated)."""
    groups = _union(con, new_ids, pairs)
    old_clusters = sorted({x[2:] for g in groups.values() for x in g if x.startswith("c:")})
    members, current = _stored_members(con, old_clusters)
    for a, member in zip(new_ids, _new_members(batch, idx), strict=True):
        members[a] = member
    by_old_cluster: dict[str, list[str]] = {}
    for a, (c, _, _, _) in members.items():
        if c:
            by_old_cluster.setdefault(c, []).append(a)
    new_set = set(new_ids)
    clusters: list[tuple[str, str, int]] = []  # (cluster_id, canonical, size)
    updates: list[tuple[str, str, bool]] = []  # (article_id, cluster_id, is_canonical)
    merged = 0
    for g in groups.values():
        olds = [x[2:] for x in g if x.startswith("c:")]
        arts = sorted({x[2:] for x in g if x.startswith("a:")} | {a for c in olds for a in by_old_cluster.get(c, [])})
        cid = arts[0]
        canon = min(arts, key=lambda a: canonical_key(members[a][1], members[a][2], a, members[a][3]))
        merged += max(0, len(olds) - 1)  # existing clusters joined into one
        clusters.append((cid, canon, len(arts)))
        updates.extend((a, cid, a == canon) for a in arts
                       if a in new_set or current.get(a) != (cid, a == canon))
    _write_clusters(con, old_clusters, clusters, updates, run_id)
    return merged, len(clusters), len(updates)


def _union(con: duckdb.DuckDBPyConnection, new_ids: Sequence[str],
           pairs: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    """Groups of nodes: "a:<id>" for a new article, "c:<cluster_id>" for an existing cluster the pairs
    reach (a node of its own, so merging through any member merges all)."""
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
        return "a:" + a if a in new_set else "c:" + cluster_of.get(a, a)

    for a in new_ids:
        uf.add("a:" + a)
    for a, b in pairs:
        uf.union(node(a), node(b))
    return uf.groups()


def _stored_members(con: duckdb.DuckDBPyConnection,
                    old_clusters: Sequence[str]) -> tuple[dict[str, _Member], dict[str, tuple[str, bool]]]:
    """Members of the affected existing clusters with what the canonical choice needs, and each
    member's current (cluster_id, is_canonical)."""
    if not old_clusters:
        return {}, {}
    t = _with_keys(con, "_dedup_clusters", old_clusters, """
        SELECT a.article_id, coalesce(a.cluster_id, a.article_id), a.word_count, a.published_at,
               a.cluster_id, a.is_canonical, a.original_publisher IS NOT NULL
        FROM articles a SEMI JOIN _dedup_clusters k ON coalesce(a.cluster_id, a.article_id) = k.v""")
    cols = [t.column(c).to_pylist() for c in range(7)]
    current = {a: (cid, canon) for a, cid, canon in zip(cols[0], cols[4], cols[5], strict=True)}
    members = {a: (c, wc, pub, bool(syn))
               for a, c, wc, pub, syn in zip(cols[0], cols[1], cols[2], cols[3], cols[6], strict=True)}
    return members, current


def _new_members(batch: pa.Table, idx: np.ndarray) -> list[_Member]:
    """The new articles' canonical-choice facts, from the batch rows `idx`."""
    take = pa.array(idx, pa.int64())
    wc = batch.column("word_count").take(take).to_pylist()
    pub = batch.column("published_at").take(take).to_pylist() \
        if "published_at" in batch.column_names else [None] * len(idx)
    syn = [v is not None for v in batch.column("original_publisher").take(take).to_pylist()] \
        if "original_publisher" in batch.column_names else [False] * len(idx)
    return [("", w, p, s) for w, p, s in zip(wc, pub, syn, strict=True)]


def _write_clusters(con: duckdb.DuckDBPyConnection, old_clusters: Sequence[str],
                    clusters: Sequence[tuple[str, str, int]], updates: Sequence[tuple[str, str, bool]],
                    run_id: str) -> None:
    """Replace the affected clusters rows and set cluster_id / is_canonical of the changed articles."""
    # The affected old clusters are rewritten or merged away. (A new cluster's id is either one of them
    # or the id of a new article, which has no clusters row: the batch is one transaction.)
    if old_clusters:
        _exec_with_keys(con, "_dedup_drop", old_clusters,
                        "DELETE FROM clusters WHERE cluster_id IN (SELECT v FROM _dedup_drop)")
    _insert(con, "clusters", pa.table({
        "cluster_id": pa.array([c[0] for c in clusters], pa.string()),
        "canonical_article_id": pa.array([c[1] for c in clusters], pa.string()),
        "size": pa.array([c[2] for c in clusters], pa.int32()),
        "updated_run_id": pa.array([run_id] * len(clusters), pa.string()),
    }))
    if not updates:
        return
    con.register("_dedup_upd", pa.table({
        "article_id": pa.array([u[0] for u in updates], pa.string()),
        "cluster_id": pa.array([u[1] for u in updates], pa.string()),
        "is_canonical": pa.array([u[2] for u in updates], pa.bool_()),
    }))
    try:
        con.execute("""UPDATE articles SET cluster_id = u.cluster_id, is_canonical = u.is_canonical
                       FROM _dedup_upd u WHERE articles.article_id = u.article_id""").fetchall()
    finally:
        con.unregister("_dedup_upd")

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
