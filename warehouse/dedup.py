"""Near-duplicate clustering in the warehouse: signatures, LSH bands, verified pairs, stable stories.

`cluster_batch` runs inside the loader's transaction, after the batch's rows were inserted into
`articles`. Its cost is linear in documents: the work per new article is bounded by the number of
stories it meets, never by how many copies those stories have. For the new rows it:

1. skips articles already signed (idempotent re-loads);
2. **exact tier**: a new body whose `body_hash` is already stored (or repeats within the batch) joins
   that body's representative's story with no verification at all and stores no band rows: identical
   bodies have identical signatures. A re-scrape costs two hash look-ups;
3. stores the signatures (`signatures`; representatives also keep their exact shingle set, which
   signing produced in the worker process, for borderline decisions later);
4. **candidates**, set-based: one semi-join of the band table with the batch's band keys (DuckDB streams
   the stored side; memory is bounded by the batch) gives the stored members of every bucket the batch
   falls in, with their stories. Per new article and candidate story, the `representatives` members
   sharing the most bands with it (band agreement estimates Jaccard: its nearest members) and the
   story's longest copy (`clusters.longest_article_id`) are the stored side to verify. Within the batch,
   one in-memory band index (`bucket_pairs`, capped at `max_bucket_size`);
5. **verification** (vectorised estimates): minimum length (both texts need `min_shingles` distinct
   shingles, so two boilerplate-only extraction failures of one site never merge), then Jaccard ≥
   `jaccard` or containment of the smaller text ≥ `containment` (trimmed copies). A pair within `z`
   standard errors of a threshold is decided on the exact shingle sets, unless its two ends are
   already connected (the partition cannot change, so the expensive check is skipped). A text holding
   two disjoint texts by containment alone is a multi-story page (a briefing, a newsletter, a scrape
   with the next article appended) and joins at most one of them: its largest partner, or the one it
   holds through a stored pair (`lsh.ContainerGate`; the refused pairs are counted in
   `multi_story_refused`, not stored), and is never that story's canonical while another member is (a
   stored canonical found so is replaced by its story's best other member: the one time its members are
   read); Jaccard links are not gated;
6. **stories**: union-find over the accepted pairs, new articles and the stored stories they reach. A
   new story is named after its first-seen article (smallest sid); an article joining a stored story
   takes its id, so a `cluster_id` seen on a dashboard stays valid; when stories merge the oldest
   (smallest `created_seq`) keeps its id and each merged-away id is recorded in `cluster_merges`
   (`resolve_cluster` follows them). The canonical is the most complete body (`sign.completeness` of
   the signed text, which a learned line re-cleaned later cannot change: its story sentences' words
   less its other words, so a full-page dump's menus count against it), then an
   original over a syndicated copy, then the earliest publication, then the smallest article_id:
   the minimum over the stored canonical and the new members, so no member list is read. Duplicates
   are kept and marked, never deleted;
7. **band rows** of the new representatives, only where the bucket has room: at most `per_bucket`
   rows of one story and `max_bucket_size` in all. A story re-scraped a thousand times keeps a handful
   of rows per bucket (its variants, not its arrivals), so hot buckets cost no more than any other.

The partition does not depend on how the corpus is split into batches or runs on the sets tested
(tests/warehouse/test_dedup.py: one run, 4 and 7 runs, reversed order; dedup-dev in 1 and 4 runs):
story ids may (they name the first-seen article), the members and canonicals do not. It is not
guaranteed in general: a new article compares with a story's nearest stored members, not all of them.

The pure parts (candidate pairs from buckets, verification of estimates, union-find, the canonical
choice, `DedupConfig`) live in `newsetl.text.lsh`; this module holds the SQL around them. Its tables are
created by the migrations (`newsetl.schemas.tables`).

Verified pairs are kept in `duplicate_pairs` (with `duplicate_pairs_view` adding titles) for
inspection. The signature scheme (`sign.scheme_id`) is recorded in `dedup_meta`; a warehouse holding
signatures of another scheme raises `SchemeMismatch` instead of mixing incomparable signatures, except one
that only some scripts' texts tell apart from this scheme (an earlier version, another ICU), which
`check_scheme` upgrades in place.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from newsetl.text.lsh import (
    METHOD_EXACT,
    METHOD_MINHASH,
    METHOD_SHINGLES,
    ContainerGate,
    DedupConfig,
    Part,
    UnionFind,
    bucket_pairs,
    canonical_key,
    rank_keys,
    required_bands,
    required_bands_sql,
    verify_estimates,
)
from newsetl.text.sign import (
    SCHEME_VERSION,
    SEGMENTED_RE2,
    SPACELESS_RE2,
    Signatures,
    band_keys,
    completeness,
    exact_similarity,
    scheme_id,
    shingle_sets,
    sign_texts,
)
from newsetl.warehouse.connect import WarehouseError, unregister

__all__ = [
    "DedupConfig",
    "DedupStats",
    "SchemeMismatch",
    "check_invariants",
    "check_scheme",
    "cluster_batch",
    "partition",
    "resign_spaceless",
    "resolve_cluster",
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
    band_pairs: int = 0  # distinct pairs sharing at least one LSH band
    candidates: int = 0  # of those, pairs verified: enough shared bands, nearest members of a story
    exact_checked: int = 0  # candidates decided on exact shingle sets
    verified_pairs: int = 0  # near-duplicate pairs accepted (exact tier not included)
    multi_story_refused: int = 0  # containment-only pairs refused: the larger text holds a disjoint story already
    clusters_merged: int = 0  # existing clusters merged into another existing one
    clusters_written: int = 0  # clusters rows inserted or rewritten
    articles_updated: int = 0  # articles whose cluster_id / is_canonical was set or changed

class SchemeMismatch(WarehouseError):
    """The warehouse holds signatures of another hashing scheme; they cannot be compared with new ones (the
    CLI says so in one line, as for any warehouse it cannot write)."""


def _scheme_version(scheme: str) -> int | None:
    """The version in a scheme id ("minhash-v3/..."), None when it has none."""
    m = re.match(r"minhash-v(\d+)/", scheme)
    return int(m.group(1)) if m else None


def check_scheme(con: duckdb.DuckDBPyConnection, config: DedupConfig) -> None:
    """Check that stored signatures use `config.sign`'s scheme (the tables come from the migrations).

    Raises SchemeMismatch when they do not. An empty warehouse adopts the configured scheme; one signed by
    an earlier scheme version (2 or 3), or by this one with another ICU, with the same parameters is upgraded in
    place (`resign_spaceless`)."""
    want = scheme_id(config.sign)
    rows = con.execute("SELECT value FROM dedup_meta WHERE key = 'scheme_id'").fetchall()
    have = str(rows[0][0]) if rows else None
    if have != want:
        stored = int(con.execute("SELECT count(*) FROM signatures").fetchall()[0][0])
        letters = _changed_letters(have, config) if stored and have is not None else None
        if letters is not None:
            resign_spaceless(con, config, letters)
        elif stored and have is not None and (_scheme_version(have) or 0) > SCHEME_VERSION:
            raise SchemeMismatch(
                f"the warehouse's {stored} signatures were made by a newer newsetl (signature scheme {have!r}; "
                f"this one signs with {want!r}): upgrade newsetl to write to it; reading it still works")
        elif stored and have is not None:
            raise SchemeMismatch(
                f"the warehouse holds {stored} signatures of scheme {have!r} and this run signs with {want!r}: "
                "signatures of two schemes cannot be compared, so load with the warehouse's signature settings "
                "or into a new warehouse")
        elif stored:
            raise SchemeMismatch(f"the warehouse holds {stored} signatures of an unrecorded scheme")
        con.execute("DELETE FROM dedup_meta WHERE key = 'scheme_id'").fetchall()
        con.execute("INSERT INTO dedup_meta VALUES ('scheme_id', ?)", [want]).fetchall()


def _changed_letters(have: str, config: DedupConfig) -> str | None:
    """The letters (an RE2 class) of the texts whose signatures differ between the stored scheme `have` and
    this run's, when only those differ (None: any other scheme, not upgradable). Version 3 signed Chinese and
    Japanese one word per character, version 4 Thai, Lao, Khmer and Burmese in ICU's words; an ICU of another
    major version than the one that signed a warehouse of version 4 may cut some of their words otherwise."""
    if have == scheme_id(config.sign, version=2):
        return f"{SPACELESS_RE2}|{SEGMENTED_RE2}"
    if have == scheme_id(config.sign, version=3):
        return SEGMENTED_RE2
    m = re.search(r"-icu(\d+)/", have)
    if m is not None and have == scheme_id(config.sign, icu=int(m.group(1))):
        return SEGMENTED_RE2
    return None


# Articles re-signed at once by `resign_spaceless`: their bodies are held in memory together.
_RESIGN_SLICE = 5_000


def resign_spaceless(con: duckdb.DuckDBPyConnection, config: DedupConfig, letters: str) -> int:
    """Upgrade a warehouse's signatures in place to this scheme from one that signed the texts holding
    `letters` (an RE2 class; `_changed_letters`) otherwise and every other text alike; returns the articles
    re-signed.

    Version 3 signs Chinese and Japanese one word per character, version 4 Thai, Lao, Khmer and Burmese in
    ICU's words (text/sign.py), so only the signatures of bodies holding such letters change: they are signed
    again from `articles.body` (what exact verification shingles anyway; a body a learned line was later taken
    from is signed as stored), with their `body_hash` (in `signatures` and `articles`), shingle counts, MinHash,
    exact shingle sets and band rows, `_RESIGN_SLICE` articles at a time. The first long-enough article of each
    new body hash is its representative (banded), as a load makes it, and its band rows are stored as a load
    stores them (`_insert_bands`: where the bucket has room). Every other signature is byte for byte what this
    version computes, and stories, canonicals and completeness scores are left as they are: two copies of one
    story the old words missed stay apart, and later copies are matched against both. Runs in the caller's
    transaction (`check_scheme`, at a run's start)."""
    sids = [int(r[0]) for r in con.execute(
        "SELECT s.sid FROM signatures s JOIN articles a USING (article_id) WHERE regexp_matches(a.body, ?) "
        "ORDER BY s.sid", [letters]).fetchall()]
    represented: set[str] = set()  # body hashes that have their representative
    for i in range(0, len(sids), _RESIGN_SLICE):
        _resign_slice(con, sids[i:i + _RESIGN_SLICE], represented, config)
    return len(sids)


def _resign_slice(con: duckdb.DuckDBPyConnection, sids: Sequence[int], represented: set[str],
                  config: DedupConfig) -> None:
    """`resign_spaceless` for the signatures `sids` (in sid order); adds the hashes it banded to `represented`."""
    t = _with_keys(con, "_resign_sids", sids, """
        SELECT s.sid, s.rank_key, a.article_id, a.body, coalesce(a.cluster_id, a.article_id) AS story
        FROM signatures s SEMI JOIN _resign_sids k ON s.sid = k.v JOIN articles a USING (article_id)
        ORDER BY s.sid""", pa.int64())
    sid = np.asarray(t.column("sid").to_numpy(), dtype=np.int64)
    ids = [str(a) for a in t.column("article_id").to_pylist()]
    sigs = sign_texts([str(b) for b in t.column("body").to_pylist()], config.sign)
    hashes = [str(h) for h in sigs.body_hash.tolist()]
    banded = []
    for h, n in zip(hashes, sigs.n_shingles.tolist(), strict=True):
        banded.append(n >= config.min_shingles and h not in represented)
        if banded[-1]:
            represented.add(h)
    picked = np.flatnonzero(banded)
    bands = config.sign.bands
    con.register("_resign", pa.table({
        "sid": pa.array(sid, pa.int64()), "article_id": pa.array(ids, pa.string()),
        **_signature_columns(hashes, sigs.n_shingles, sigs.n_words, sigs.minhash,
                             [sigs.shingles(i) for i in range(len(ids))], banded)}))
    con.register("_dedup_new_bands", pa.table({
        "key": pa.array(band_keys(sigs.minhash[picked], config.sign).reshape(-1), pa.int64()),
        "sid": pa.array(np.repeat(sid[picked], bands), pa.int64()),
        "rank": pa.array(np.repeat(t.column("rank_key").to_numpy()[picked], bands), pa.int64())}))
    try:
        con.execute("UPDATE signatures SET body_hash = u.body_hash, body_key = u.body_key, "
                    "n_shingles = u.n_shingles, n_words = u.n_words, banded = u.banded, minhash = u.minhash, "
                    "shingles = u.shingles FROM _resign u WHERE signatures.sid = u.sid").fetchall()
        con.execute("UPDATE articles SET body_hash = u.body_hash FROM _resign u "
                    "WHERE articles.article_id = u.article_id").fetchall()
        con.execute("DELETE FROM lsh_bands WHERE sid IN (SELECT sid FROM _resign)").fetchall()
        _bucket_rows(con)
        stories = dict(zip(ids, (str(x) for x in t.column("story").to_pylist()), strict=True))
        _insert_bands(con, stories, set(stories.values()), ids, sid, {}, config)
    finally:
        unregister(con, "_resign", "_dedup_new_bands")
        with contextlib.suppress(duckdb.Error):  # as cluster_batch's: the caller's ROLLBACK cleans up
            con.execute("DROP TABLE IF EXISTS _dedup_bucket_raw").fetchall()


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
    completeness: np.ndarray
    long_enough: np.ndarray  # bool: at least min_shingles, so matched at all
    shingles: list[np.ndarray | None]  # exact shingle sets from signing (None: not kept)


def cluster_batch(con: duckdb.DuckDBPyConnection, batch: pa.Table, sigs: Signatures, config: DedupConfig,
                  run_id: str) -> DedupStats:
    """Match, verify and cluster the batch's articles, signed by the workers (`sigs`), against the whole
    warehouse (see module doc).

    `batch` has article_id, body_hash (of the signed text), published_at (and fetched_at), row i signed by
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
    bands = config.sign.bands
    keys = band_keys(new.minhash[banded], config.sign).reshape(-1)
    band_sid = np.repeat(sid[banded], bands)
    band_rank = np.repeat(new.ranks[banded], bands)
    uf = UnionFind()
    for a in new.ids:
        uf.add("a:" + a)
    # Exact tier: an equal body joins its representative's story with no verification at all.
    position = {a: i for i, a in enumerate(new.ids)}
    exact_pairs = [(a, r) for a, r in sorted(rep_of.items()) if new.long_enough[position[a]]]
    stored_ends = sorted({r for _, r in exact_pairs if r not in position})
    story_of = _stories_of(con, stored_ends)
    for a, r in exact_pairs:
        uf.union("a:" + a, "a:" + r if r in position else "c:" + story_of.get(r, r))
    # Candidates: stored representatives of the stories sharing a bucket (set-based, in DuckDB), and the
    # batch's own rows (one in-memory band index).
    band_t = pa.table({"key": pa.array(keys, pa.int64()), "sid": pa.array(band_sid, pa.int64()),
                       "rank": pa.array(band_rank, pa.int64()),
                       "n": pa.array(np.repeat(new.n_shingles[banded], bands), pa.int64())})
    con.register("_dedup_new_bands", band_t)
    try:
        band_pairs, st_new, st_old, st_story = _stored_candidates(con, config)
        b1, b2, hot = bucket_pairs(keys, band_sid, band_rank, np.ones(len(keys), dtype=bool),
                                   config.max_bucket_size)
        band_pairs += len(b1)
        b1, b2 = _enough_bands(b1, b2, keys.reshape(-1, bands), sid[banded], new.n_shingles[banded], config)
        sig_of = _SignatureTable.build(con, np.unique(st_old), sid, new)
        # Union-find node of each signature row: the new article itself, or the stored story it belongs to.
        story_of_old = dict(zip(st_old.tolist(), st_story, strict=True))
        nodes = ["a:" + a if s >= base else "c:" + story_of_old[s]
                 for s, a in zip(sig_of.sids.tolist(), sig_of.ids, strict=True)]
        s1 = np.concatenate([st_new, b1]).astype(np.int64)
        s2 = np.concatenate([st_old, b2]).astype(np.int64)
        pairs, checked, gate = _verify(con, s1, s2, sig_of, nodes, uf, config)
        exact_rows = [(min(a, r), max(a, r), 1.0, 1.0, METHOD_EXACT) for a, r in exact_pairs]
        _record_pairs(con, exact_rows + pairs, run_id)
        story_of_new, merges, written, updated, kept = _apply_clusters(con, uf.groups(), new, sid, batch, run_id,
                                                                       gate.pages)
        band_rows, full = _insert_bands(con, story_of_new, kept, new.ids, sid, merges, config)
    finally:
        # After a failed statement the transaction is aborted and these raise too; the caller's ROLLBACK
        # cleans up, and the original error is the one that must propagate.
        with contextlib.suppress(duckdb.Error):
            unregister(con, "_dedup_new_bands")
            con.execute("DROP TABLE IF EXISTS _dedup_bucket_raw").fetchall()
    return DedupStats(
        articles=len(new.ids), skipped_known=skipped, too_short=int(np.sum(~new.long_enough)),
        exact_links=len(exact_pairs), band_rows=band_rows, hot_buckets=hot + full, band_pairs=band_pairs,
        candidates=len(s1),
        exact_checked=checked, verified_pairs=len(pairs), multi_story_refused=gate.refused,
        clusters_merged=len(merges), clusters_written=written,
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
        completeness=np.asarray(sigs.completeness)[idx].astype(np.int64),
        long_enough=n_sh >= config.min_shingles, shingles=[sigs.shingles(int(i)) for i in idx],
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
        "rank_key": pa.array(new.ranks, pa.int64()),
        **_signature_columns(new.hashes, new.n_shingles, new.n_words, new.minhash, new.shingles, banded),
        "completeness": pa.array(new.completeness.astype(np.int32), pa.int32()),
        "run_id": pa.array([run_id] * n, pa.string()),
    }))
    return base, sid


def _signature_columns(hashes: Sequence[str], n_shingles: np.ndarray, n_words: np.ndarray, minhash: np.ndarray,
                       shingles: Sequence[np.ndarray | None],
                       banded: Sequence[bool] | np.ndarray) -> dict[str, pa.Array]:
    """The `signatures` columns a signing sets (a load's new rows, `resign_spaceless`'s rewritten ones)."""
    return {
        "body_hash": pa.array(hashes, pa.string()),
        "body_key": pa.array(rank_keys(hashes), pa.int64()),
        "n_shingles": pa.array(np.asarray(n_shingles).astype(np.int32), pa.int32()),
        "n_words": pa.array(np.asarray(n_words).astype(np.int32), pa.int32()),
        "banded": pa.array(banded, pa.bool_()),
        "minhash": pa.array([m.tobytes() for m in minhash.astype("<u4", copy=False)], pa.binary()),
        # Only representatives are ever verified against later: only they keep their exact set.
        "shingles": pa.array([sh.astype("<u4", copy=False).tobytes() if b and sh is not None else None
                              for sh, b in zip(shingles, banded, strict=True)], pa.binary()),
    }


def _record_pairs(con: duckdb.DuckDBPyConnection, pair_rows: Sequence[tuple[str, str, float, float, str]],
                  run_id: str) -> None:
    """Store the accepted pairs (article_a < article_b, jaccard, containment, method) in `duplicate_pairs`."""
    _insert(con, "duplicate_pairs", pa.table({
        "article_a": pa.array([p[0] for p in pair_rows], pa.string()),
        "article_b": pa.array([p[1] for p in pair_rows], pa.string()),
        "jaccard": pa.array([p[2] for p in pair_rows], pa.float64()),
        "containment": pa.array([p[3] for p in pair_rows], pa.float64()),
        "method": pa.array([p[4] for p in pair_rows], pa.string()),
        "run_id": pa.array([run_id] * len(pair_rows), pa.string()),
    }))


def _insert(con: duckdb.DuckDBPyConnection, table: str, data: pa.Table) -> None:
    if data.num_rows == 0:
        return
    name = f"_dedup_in_{table}"
    con.register(name, data)
    try:
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {name}").fetchall()
    finally:
        unregister(con, name)

def _with_keys(con: duckdb.DuckDBPyConnection, name: str, values: Iterable[Any], sql: str,
               dtype: pa.DataType | None = None) -> pa.Table:
    """Run query `sql` with a one-column table `name(v)` of `values` registered; its result as Arrow.

    (DuckDB 2.0: `con.sql(...).to_arrow_table()` streams the result; `execute(...).to_arrow_table()`
    copies it and leaves the connection busy.)"""
    con.register(name, pa.table({"v": pa.array(list(values), dtype or pa.string())}))
    try:
        return con.sql(sql).to_arrow_table()
    finally:
        unregister(con, name)

def _exec_with_keys(con: duckdb.DuckDBPyConnection, name: str, values: Iterable[Any], sql: str) -> None:
    """Run statement `sql` (no result) with a one-column table `name(v)` of string `values` registered."""
    con.register(name, pa.table({"v": pa.array(list(values), pa.string())}))
    try:
        con.execute(sql).fetchall()
    finally:
        unregister(con, name)

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

def _stories_of(con: duckdb.DuckDBPyConnection, article_ids: Sequence[str]) -> dict[str, str]:
    """article_id -> its cluster_id, for stored articles."""
    if not article_ids:
        return {}
    t = _with_keys(con, "_dedup_story_ids", article_ids,
                   "SELECT a.article_id, coalesce(a.cluster_id, a.article_id) FROM articles a "
                   "SEMI JOIN _dedup_story_ids k ON a.article_id = k.v")
    return dict(zip(t.column(0).to_pylist(), t.column(1).to_pylist(), strict=True))


def _enough_bands(s1: np.ndarray, s2: np.ndarray, keys: np.ndarray, key_sids: np.ndarray, n: np.ndarray,
                  config: DedupConfig) -> tuple[np.ndarray, np.ndarray]:
    """The batch's own candidate pairs (sids s1, s2) that share `required_bands` bands; `keys` (m, bands)
    are the band keys of the batch's banded rows, whose sids are `key_sids` (ascending) and shingle
    counts `n`. The same rule as the stored candidates', so a pair is treated alike whether its two ends
    arrive in one batch or in two."""
    if len(s1) == 0:
        return s1, s2
    r1, r2 = np.searchsorted(key_sids, s1), np.searchsorted(key_sids, s2)
    shared = np.sum(keys[r1] == keys[r2], axis=1)
    keep = shared >= required_bands(n[r1], n[r2], config)
    return s1[keep], s2[keep]


def _bucket_rows(con: duckdb.DuckDBPyConnection) -> None:
    """`_dedup_bucket_raw(key, sid, n)`: the stored band rows of every bucket `_dedup_new_bands` falls in, with
    their article's shingle count (read by `_stored_candidates` and `_insert_bands`)."""
    # Explicit semi-joins, each with the small side as the build side: plain joins let the optimizer
    # build a hash table over the 1M-row signatures or articles side (minutes at 1M stored).
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _dedup_bucket_raw AS
        WITH raw AS (
            SELECT key, sid FROM lsh_bands SEMI JOIN (SELECT DISTINCT key FROM _dedup_new_bands) n USING (key)
        ), sizes AS (
            SELECT sid, n_shingles FROM signatures SEMI JOIN (SELECT DISTINCT sid FROM raw) k USING (sid)
        )
        SELECT raw.key, raw.sid, sizes.n_shingles AS n FROM raw JOIN sizes USING (sid)
    """).fetchall()


def _stored_candidates(con: duckdb.DuckDBPyConnection, config: DedupConfig) -> tuple[int, np.ndarray, np.ndarray,
                                                                                     list[str]]:
    """Candidates against the stored articles, set-based in DuckDB: (pairs sharing a band, new sid,
    stored sid, the stored one's story) to verify.

    1. `_dedup_bucket_raw(key, sid, n)`: the stored band rows of every bucket the batch falls in, with
       their article's shingle count (the band table streamed once through a semi-join whose build side
       is the batch's keys; bounded by the batch, as each bucket holds at most `max_bucket_size` rows).
       `_insert_bands` reads it too.
    2. Shared bands per (new, stored) pair by one join and count, a slice of the new articles at a time;
       only pairs with `required_bands` of them are kept (integer work: unrelated texts meeting in one
       band through a common phrase are the bulk of the pairs and never reach the string joins below).
    3. Per new article and candidate story, the `representatives` members sharing the most bands with
       it (band agreement estimates Jaccard: its nearest members), plus the story's longest copy. Work per
       new article is bounded by the number of stories it meets, whatever their sizes."""
    _bucket_rows(con)
    # Pairs are counted a slice of the new articles at a time: the pair table is the largest structure of
    # a batch (~280 pairs per new article against 1M real-text signatures), and a bounded slice keeps it
    # within the load's memory_limit and reuses the same memory from slice to slice.
    bounds = con.execute("SELECT min(sid), max(sid) FROM _dedup_new_bands").fetchall()[0]
    con.execute("CREATE OR REPLACE TEMP TABLE _dedup_shared (new_sid BIGINT, old_sid BIGINT, shared BIGINT)"
                ).fetchall()
    band_pairs = 0
    if bounds[0] is not None:
        for lo in range(int(bounds[0]), int(bounds[1]) + 1, _PAIR_SLICE):
            band_pairs += _count_shared_bands(con, lo, lo + _PAIR_SLICE, config)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _dedup_near AS
        WITH p AS (SELECT new_sid, old_sid, shared FROM _dedup_shared),
        sig AS (
            SELECT sid, rank_key, article_id FROM signatures
            SEMI JOIN (SELECT DISTINCT old_sid AS sid FROM p) k USING (sid)
        ), art AS (
            SELECT article_id, coalesce(cluster_id, article_id) AS story FROM articles SEMI JOIN sig USING (article_id)
        )
        SELECT p.new_sid, p.old_sid, art.story
        FROM p JOIN sig ON sig.sid = p.old_sid JOIN art USING (article_id)
        QUALIFY row_number() OVER (PARTITION BY p.new_sid, art.story
                                   ORDER BY p.shared DESC, sig.rank_key, p.old_sid) <= {int(config.representatives)}
    """).fetchall()
    con.execute("DROP TABLE _dedup_shared").fetchall()
    # The candidate stories' longest copies, by semi-joins whose build side is the (small) candidate set.
    # The longest, not the canonical (the most complete copy): a page dump holds most of a story's copies,
    # so a copy whose nearest members fail often matches it; verified against the clean canonical instead,
    # dedup-dev loaded in reverse order over 5 runs split a 24-copy story 23 + 1.
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _dedup_canon AS
        SELECT c.cluster_id, coalesce(c.longest_article_id, c.canonical_article_id) AS canonical_article_id
        FROM clusters c
        SEMI JOIN (SELECT DISTINCT story FROM _dedup_near) k ON c.cluster_id = k.story
    """).fetchall()
    t = con.sql("""
        WITH canon_sig AS (
            SELECT s.sid, s.article_id FROM signatures s
            SEMI JOIN _dedup_canon k ON s.article_id = k.canonical_article_id
        )
        SELECT new_sid, old_sid, story FROM _dedup_near
        UNION
        SELECT n.new_sid, cs.sid, n.story FROM _dedup_near n
        JOIN _dedup_canon c ON c.cluster_id = n.story JOIN canon_sig cs ON cs.article_id = c.canonical_article_id
        ORDER BY 1, 2
    """).to_arrow_table()
    con.execute("DROP TABLE _dedup_near").fetchall()
    con.execute("DROP TABLE _dedup_canon").fetchall()
    return (band_pairs, t.column("new_sid").to_numpy().astype(np.int64),
            t.column("old_sid").to_numpy().astype(np.int64), [str(x) for x in t.column("story").to_pylist()])


# New articles whose candidate pairs are counted at once (see _stored_candidates): ~600k join rows.
_PAIR_SLICE = 2_000


def _count_shared_bands(con: duckdb.DuckDBPyConnection, lo: int, hi: int, config: DedupConfig) -> int:
    """Count the bands each (new, stored) pair shares, for the new sids in [lo, hi); append the pairs with
    `required_bands` of them to `_dedup_shared`. Returns how many pairs share at least one band."""
    # Each join row carries the pair's required band count (both shingle counts are at hand), so the count
    # needs no join after the grouping.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _dedup_slice AS
        WITH j AS (
            SELECT n.sid * 2147483648 + b.sid AS pair, {required_bands_sql("n.n", "b.n", config)} AS need
            FROM _dedup_new_bands n JOIN _dedup_bucket_raw b USING (key)
            WHERE n.sid >= {int(lo)} AND n.sid < {int(hi)}
        )  -- one int64 group key (sids < 2^31) hashes faster than the (new, old) pair
        SELECT pair // 2147483648 AS new_sid, pair % 2147483648 AS old_sid, count(*) AS shared,
               count(*) >= min(need) AS enough
        FROM j GROUP BY pair
    """).fetchall()
    pairs = int(con.execute("SELECT count(*) FROM _dedup_slice").fetchall()[0][0])
    con.execute("INSERT INTO _dedup_shared SELECT new_sid, old_sid, shared FROM _dedup_slice WHERE enough").fetchall()
    con.execute("DROP TABLE _dedup_slice").fetchall()
    return pairs


@dataclass(frozen=True)
class _SignatureTable:
    """The signatures a batch's verification reads, one matrix row per distinct sid."""

    sids: np.ndarray  # sorted
    ids: list[str]
    minhash: np.ndarray
    n_shingles: np.ndarray
    shingles: list[np.ndarray | None]  # exact shingle sets where known (new rows; stored representatives)

    @staticmethod
    def build(con: duckdb.DuckDBPyConnection, old_sids: np.ndarray, new_sids: np.ndarray,
              new: _NewRows) -> _SignatureTable:
        sids = [new_sids]
        ids = list(new.ids)
        mats = [new.minhash]
        counts = [new.n_shingles]
        shingles = list(new.shingles)
        if len(old_sids):
            t = _with_keys(con, "_dedup_sids", old_sids.tolist(),
                           "SELECT s.sid, s.article_id, s.minhash, s.n_shingles, s.shingles FROM signatures s "
                           "SEMI JOIN _dedup_sids k ON s.sid = k.v", pa.int64())
            sids.append(t.column(0).to_numpy().astype(np.int64))
            ids.extend(str(x) for x in t.column(1).to_pylist())
            blob = b"".join(t.column(2).to_pylist())
            mats.append(np.frombuffer(blob, dtype="<u4").reshape(t.num_rows, new.minhash.shape[1]))
            counts.append(t.column(3).to_numpy().astype(np.int64))
            shingles.extend(None if x is None else np.frombuffer(x, dtype="<u4") for x in t.column(4).to_pylist())
        all_sids = np.concatenate(sids)
        order = np.argsort(all_sids)
        return _SignatureTable(sids=all_sids[order], ids=[ids[i] for i in order],
                               minhash=np.concatenate(mats)[order], n_shingles=np.concatenate(counts)[order],
                               shingles=[shingles[i] for i in order])

    def rows(self, s: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.sids, s)


_VERIFY_CHUNK = 100_000  # candidate pairs estimated at once (~25 MB of signature rows)


def _verify(con: duckdb.DuckDBPyConnection, s1: np.ndarray, s2: np.ndarray, sig: _SignatureTable,
            nodes: Sequence[str], uf: UnionFind,
            config: DedupConfig) -> tuple[list[tuple[str, str, float, float, str]], int, ContainerGate]:
    """Verify candidate pairs and union the accepted ones into `uf`; returns the accepted pairs as
    (article_a, article_b, jaccard, containment, method), how many were decided on exact shingle sets and
    the multi-story gate (what it refused, and which texts it found holding two stories).

    Estimates are vectorised over all pairs. Pairs accepted by Jaccard are unioned at once; pairs accepted
    by containment alone pass `ContainerGate` (a text holding two disjoint texts joins at most one of them
    that way), largest partner first. A borderline pair is decided on exact shingle sets only if its two
    ends are not connected yet by the clear ones (or by a borderline pair decided before it, in a fixed
    order): deciding it could not change the partition, so the expensive check is skipped. The partition
    is the same either way; only `duplicate_pairs` records fewer pairs."""
    if len(s1) == 0:
        return [], 0, ContainerGate(config, {})
    pa_, pb = sig.rows(s1), sig.rows(s2)
    parts = [verify_estimates(sig.minhash[pa_[i:i + _VERIFY_CHUNK]], sig.minhash[pb[i:i + _VERIFY_CHUNK]],
                              sig.n_shingles[pa_[i:i + _VERIFY_CHUNK]], sig.n_shingles[pb[i:i + _VERIFY_CHUNK]],
                              config)
             for i in range(0, len(s1), _VERIFY_CHUNK)]
    v = parts[0] if len(parts) == 1 else type(parts[0])(
        **{f: np.concatenate([getattr(p, f) for p in parts]) for f in vars(parts[0])})
    out: list[tuple[str, str, float, float, str]] = []
    ra_l, rb_l = pa_.tolist(), pb.tolist()
    jac_l, con_l = v.jaccard.tolist(), v.containment.tolist()
    # The container of a pair is its larger text (more shingles, then the larger id).
    size_l = sig.n_shingles.tolist()

    def ends(k: int) -> tuple[int, int]:
        a, b = ra_l[k], rb_l[k]
        return (a, b) if (size_l[a], sig.ids[a]) > (size_l[b], sig.ids[b]) else (b, a)

    accepted = np.flatnonzero(v.accept)
    by_jaccard = v.jaccard[accepted] >= config.jaccard
    for k in accepted[by_jaccard].tolist():
        a, b = sig.ids[ra_l[k]], sig.ids[rb_l[k]]
        uf.union(nodes[ra_l[k]], nodes[rb_l[k]])
        out.append((min(a, b), max(a, b), jac_l[k], con_l[k], METHOD_MINHASH))
    # Containment-only pairs (clear or borderline) whose container is stored: its stored reference.
    maybe = np.concatenate([accepted[~by_jaccard], np.flatnonzero(v.borderline)]).tolist()
    stored_containers = sorted({sig.ids[x] for x in (ends(k)[0] for k in maybe) if nodes[x].startswith("c:")})
    gate = ContainerGate(config, _stored_references(con, stored_containers, config))

    def part(r: int) -> Part:
        return Part(sig.ids[r], sig.minhash[r], size_l[r], sig.shingles[r])

    # Largest partner first: a container's reference is the text covering the largest share of it.
    clear_c = sorted(accepted[~by_jaccard].tolist(),
                     key=lambda k: (sig.ids[ends(k)[0]], -size_l[ends(k)[1]], sig.ids[ends(k)[1]]))
    for k in clear_c:
        x, y = ends(k)
        if gate.admit(sig.ids[x], size_l[x], part(y)):
            uf.union(nodes[x], nodes[y])
            out.append((min(sig.ids[x], sig.ids[y]), max(sig.ids[x], sig.ids[y]), jac_l[k], con_l[k],
                        METHOD_MINHASH))
    # Borderline pairs in a fixed order (by article ids), skipping those already connected.
    border = sorted(np.flatnonzero(v.borderline).tolist(),
                    key=lambda k: (sig.ids[ra_l[k]], sig.ids[rb_l[k]]))
    border = [k for k in border if uf.find(nodes[ra_l[k]]) != uf.find(nodes[rb_l[k]])]
    if not border:
        return out, 0, gate
    # Exact sets: kept from signing (new articles, stored representatives); only the rest (a canonical
    # that is an exact copy, rows signed before version 5) are shingled again from their bodies.
    sets: dict[str, np.ndarray] = {}
    for k in border:
        for r in (pa_[k], pb[k]):
            sh = sig.shingles[r]
            if sh is not None:
                sets[sig.ids[r]] = sh
    need = sorted({sig.ids[r] for k in border for r in (pa_[k], pb[k])} - set(sets))
    if need:
        bodies_t = _with_keys(con, "_dedup_body_ids", need,
                              "SELECT a.article_id, a.body FROM articles a SEMI JOIN _dedup_body_ids k "
                              "ON a.article_id = k.v")
        bodies = dict(zip(bodies_t.column(0).to_pylist(), bodies_t.column(1).to_pylist(), strict=True))
        have = [a for a in need if a in bodies]
        sets.update(zip(have, shingle_sets([bodies[a] for a in have], config.sign), strict=True))
    checked = 0
    for k in border:
        na, nb = nodes[ra_l[k]], nodes[rb_l[k]]
        if uf.find(na) == uf.find(nb):
            continue
        ra, rb = pa_[k], pb[k]
        a, b = sig.ids[ra], sig.ids[rb]
        # The exact sets must be those the signatures were made from; a body whose shingle count differs
        # from the stored one was changed (or signed from another text): trust the estimate instead.
        if a in sets and b in sets and len(sets[a]) == sig.n_shingles[ra] and len(sets[b]) == sig.n_shingles[rb]:
            checked += 1
            jac, con_ = exact_similarity(sets[a], sets[b])
            small = min(len(sets[a]), len(sets[b]))
            ok = small >= config.min_shingles and (jac >= config.jaccard or con_ >= config.containment)
            method = METHOD_SHINGLES
        else:  # body not in the warehouse: fall back on the estimate
            jac, con_ = float(v.jaccard[k]), float(v.containment[k])
            ok = jac >= config.jaccard or con_ >= config.containment
            method = METHOD_MINHASH
        if ok and jac < config.jaccard:
            x, y = ends(k)
            ok = gate.admit(sig.ids[x], size_l[x], part(y))
        if ok:
            uf.union(na, nb)
            out.append((min(a, b), max(a, b), jac, con_, method))
    return out, checked, gate


def _stored_references(con: duckdb.DuckDBPyConnection, containers: Sequence[str],
                       config: DedupConfig) -> dict[str, Part]:
    """Stored container -> its reference for `ContainerGate`: the largest text it holds through a stored
    containment-only pair (Jaccard below `jaccard`, containment at least `containment`, the partner the
    smaller text), with its signature. `duplicate_pairs` is read through a semi-join on the containers."""
    if not containers:
        return {}
    t = _with_keys(con, "_dedup_containers", containers, f"""
        WITH p AS (
            SELECT article_a AS container, article_b AS partner FROM duplicate_pairs
            SEMI JOIN _dedup_containers k ON article_a = k.v
            WHERE jaccard < {float(config.jaccard)!r} AND containment >= {float(config.containment)!r}
              AND method <> '{METHOD_EXACT}'
            UNION ALL
            SELECT article_b, article_a FROM duplicate_pairs
            SEMI JOIN _dedup_containers k ON article_b = k.v
            WHERE jaccard < {float(config.jaccard)!r} AND containment >= {float(config.containment)!r}
              AND method <> '{METHOD_EXACT}'
        ), sig AS (
            SELECT article_id, n_shingles, minhash, shingles FROM signatures
            SEMI JOIN (SELECT partner AS v FROM p UNION SELECT container FROM p) k ON article_id = k.v
        )
        SELECT p.container, ps.article_id, ps.n_shingles, ps.minhash, ps.shingles
        FROM p JOIN sig ps ON ps.article_id = p.partner JOIN sig cs ON cs.article_id = p.container
        WHERE (ps.n_shingles < cs.n_shingles OR (ps.n_shingles = cs.n_shingles AND ps.article_id < cs.article_id))
          AND ps.n_shingles >= {float(config.story_share)!r} * cs.n_shingles
        QUALIFY row_number() OVER (PARTITION BY p.container ORDER BY ps.n_shingles DESC, ps.article_id) = 1""")
    return {str(c): Part(str(a), np.frombuffer(m, dtype="<u4"), int(n),
                         None if sh is None else np.frombuffer(sh, dtype="<u4"))
            for c, a, n, m, sh in zip(*(t.column(i).to_pylist() for i in range(5)), strict=True)}


@dataclass(frozen=True)
class _Story:
    """What a stored cluster contributes when new articles join it."""

    created: int  # created_seq (-1: created before it was recorded, older than any)
    size: int
    canonical: str
    canonical_key: tuple[Any, ...]
    longest: str  # the member with the most signed words (verified against by new copies)
    longest_key: tuple[int, str]


def _longest_key(n_words: int | None, article_id: str) -> tuple[int, str]:
    """Sort key whose minimum is a story's longest copy: most signed words, then the smallest id."""
    return (-(n_words or 0), article_id)


def _stored_stories(con: duckdb.DuckDBPyConnection, story_ids: Sequence[str]) -> dict[str, _Story]:
    """The clusters rows of `story_ids` with their canonical article's canonical-choice facts (one row per
    story: the work does not grow with a story's size)."""
    if not story_ids:
        return {}
    t = _with_keys(con, "_dedup_story", story_ids, """
        SELECT c.cluster_id, coalesce(c.created_seq, -1), c.size, c.canonical_article_id,
               s.completeness, a.published_at, a.original_publisher IS NOT NULL,
               CASE WHEN s.completeness IS NULL THEN a.body END,
               coalesce(c.longest_article_id, c.canonical_article_id), ls.n_words
        FROM clusters c SEMI JOIN _dedup_story k ON c.cluster_id = k.v
        JOIN articles a ON a.article_id = c.canonical_article_id
        JOIN signatures s ON s.article_id = c.canonical_article_id
        JOIN signatures ls ON ls.article_id = coalesce(c.longest_article_id, c.canonical_article_id)""")
    cols = [t.column(i).to_pylist() for i in range(10)]
    # A story signed before version 11 has no longest copy stored either: its canonical was chosen as the
    # longest then.
    return {cid: _Story(int(created), int(size), canon, _stored_key(canon, done, pub, syn, body),
                        longest, _longest_key(n_words, longest))
            for cid, created, size, canon, done, pub, syn, body, longest, n_words in zip(*cols, strict=True)}


def _stored_key(article_id: str, done: int | None, published_at: Any, syndicated: bool | None,
                body: str | None) -> tuple[Any, ...]:
    """`canonical_key` of a stored article from its signature's completeness (`done`). An article signed
    before version 11 has none stored: it is read from its body (the signed text less any learned lines,
    the nearest thing kept), which the queries select only then."""
    return canonical_key(completeness(body or "") if done is None else done, published_at, article_id,
                         bool(syndicated))


def _apply_clusters(con: duckdb.DuckDBPyConnection, groups: Mapping[str, list[str]], new: _NewRows,
                    sid: np.ndarray, batch: pa.Table, run_id: str,
                    multi_story: Set[str] = frozenset()) -> tuple[dict[str, str], dict[str, str], int, int, set[str]]:
    """Write the new articles' clusters and the merges of stored ones, set-based.

    A story keeps its id: a new story is named after its first-seen article (the smallest sid); new
    articles joining a stored story take its id; when stories merge, the oldest (smallest created_seq)
    keeps its id and the others are recorded in `cluster_merges`. The canonical is the minimum of
    `canonical_key` over the members, computed as the minimum of the stored canonicals and the new
    articles (the stored one is the minimum of its members already), so no member list is read.

    `multi_story`: texts found holding two stories (`ContainerGate.pages`) come after every other member.
    Where one is a stored story's canonical, that story's members are read (this once: it is then no
    canonical any more) and the best other member is promoted.

    Returns (new article -> story id, merged-away story -> surviving story, clusters rows written,
    article rows updated, the stored stories new articles joined)."""
    # Only groups with a new article change anything (a stored story can be a group of its own: a
    # candidate whose pairs were all refused).
    # ... and a stored story whose canonical was found holding two stories, to choose another.
    position = {a: i for i, a in enumerate(new.ids)}
    held = _stories_led_by(con, sorted(m for m in multi_story if m not in position))
    touched = [g for g in groups.values() if any(x.startswith("a:") or x[2:] in held for x in g)]
    touched += [["c:" + c] for c in sorted(held - {x[2:] for g in touched for x in g if x.startswith("c:")})]
    stored = _stored_stories(con, sorted({x[2:] for g in touched for x in g if x.startswith("c:")}))
    take = pa.array(new.idx, pa.int64())
    # Completeness is the signed text's, not the stored body's: a re-clean takes learned lines from the
    # latter later, and the choice must not depend on whether a line was learned before or after.
    wc = new.completeness.tolist()
    pub = batch.column("published_at").take(take).to_pylist() \
        if "published_at" in batch.column_names else [None] * len(new.idx)
    syn = [v is not None for v in batch.column("original_publisher").take(take).to_pylist()] \
        if "original_publisher" in batch.column_names else [False] * len(new.idx)
    story_of_new: dict[str, str] = {}
    canonical_new: set[str] = set()
    demoted: list[str] = []
    promoted: list[str] = []
    merges: dict[str, str] = {}
    rows: list[tuple[str, str, int, int, str]] = []  # (cluster_id, canonical, size, created_seq, longest)
    n_words = new.n_words.tolist()
    members = _members_of(con, [c for c, st in stored.items() if st.canonical in multi_story])
    for g in touched:
        olds = sorted((x[2:] for x in g if x.startswith("c:")), key=lambda c: (stored[c].created, c))
        arts = sorted((x[2:] for x in g if x.startswith("a:")), key=lambda a: int(sid[position[a]]))
        if olds:
            cid, created = olds[0], stored[olds[0]].created
        else:
            cid, created = arts[0], int(sid[position[arts[0]]])
        choices = [((stored[c].canonical in multi_story, *stored[c].canonical_key), stored[c].canonical)
                   for c in olds]
        choices += [((a in multi_story, *canonical_key(wc[position[a]], pub[position[a]], a, syn[position[a]])), a)
                    for a in arts]
        choices += [((m in multi_story, *key), m) for c in olds for m, key in members.get(c, ())]
        canon = min(choices)[1]
        if canon not in position and all(canon != stored[c].canonical for c in olds):
            promoted.append(canon)  # a stored member, in place of a canonical found holding two stories
        longest = min([(stored[c].longest_key, stored[c].longest) for c in olds]
                      + [(_longest_key(n_words[position[a]], a), a) for a in arts])[1]
        for c in olds[1:]:
            merges[c] = cid
        demoted.extend(stored[c].canonical for c in olds if stored[c].canonical != canon)
        for a in arts:
            story_of_new[a] = cid
        if canon in position:
            canonical_new.add(canon)
        rows.append((cid, canon, sum(stored[c].size for c in olds) + len(arts), created, longest))
    updated = _write_clusters(con, stored, rows, story_of_new, canonical_new, demoted, merges, run_id, promoted)
    return story_of_new, merges, len(rows), updated, {r[0] for r in rows if r[0] in stored}


def _stories_led_by(con: duckdb.DuckDBPyConnection, article_ids: Sequence[str]) -> set[str]:
    """The stored stories whose canonical is one of `article_ids`."""
    if not article_ids:
        return set()
    t = _with_keys(con, "_dedup_led", article_ids,
                   "SELECT cluster_id FROM clusters SEMI JOIN _dedup_led k ON canonical_article_id = k.v")
    return {str(c) for c in t.column(0).to_pylist()}


def _members_of(con: duckdb.DuckDBPyConnection,
                story_ids: Sequence[str]) -> dict[str, list[tuple[str, tuple[Any, ...]]]]:
    """Stored story -> its members with their `canonical_key`s (read only for a story whose canonical was
    found holding two stories: rare, and once)."""
    if not story_ids:
        return {}
    t = _with_keys(con, "_dedup_members", story_ids, """
        SELECT a.cluster_id, a.article_id, s.completeness, a.published_at, a.original_publisher IS NOT NULL,
               CASE WHEN s.completeness IS NULL THEN a.body END
        FROM articles a SEMI JOIN _dedup_members k ON a.cluster_id = k.v
        JOIN signatures s ON s.article_id = a.article_id""")
    out: dict[str, list[tuple[str, tuple[Any, ...]]]] = {}
    for cid, aid, done, pub, syn, body in zip(*(t.column(i).to_pylist() for i in range(6)), strict=True):
        out.setdefault(cid, []).append((aid, _stored_key(aid, done, pub, syn, body)))
    return out


def _write_clusters(con: duckdb.DuckDBPyConnection, stored: Mapping[str, _Story],
                    rows: Sequence[tuple[str, str, int, int, str]], story_of_new: Mapping[str, str],
                    canonical_new: set[str], demoted: Sequence[str], merges: Mapping[str, str],
                    run_id: str, promoted: Sequence[str] = ()) -> int:
    """Replace the affected clusters rows, record merges, and set cluster_id / is_canonical of the new
    articles, of the merged stories' members, of demoted canonicals and of promoted stored members. Returns
    article rows updated."""
    if stored:
        _exec_with_keys(con, "_dedup_drop", list(stored),
                        "DELETE FROM clusters WHERE cluster_id IN (SELECT v FROM _dedup_drop)")
    _insert(con, "clusters", pa.table({
        "cluster_id": pa.array([r[0] for r in rows], pa.string()),
        "canonical_article_id": pa.array([r[1] for r in rows], pa.string()),
        "size": pa.array([r[2] for r in rows], pa.int32()),
        "updated_run_id": pa.array([run_id] * len(rows), pa.string()),
        "created_seq": pa.array([r[3] for r in rows], pa.int64()),
        "longest_article_id": pa.array([r[4] for r in rows], pa.string()),
    }))
    updated = 0
    if merges:
        merge_t = pa.table({"old_cluster_id": pa.array(list(merges), pa.string()),
                            "new_cluster_id": pa.array(list(merges.values()), pa.string())})
        con.register("_dedup_merges", merge_t)
        try:
            con.execute("INSERT INTO cluster_merges SELECT old_cluster_id, new_cluster_id, ?, now() "
                        "FROM _dedup_merges", [run_id]).fetchall()
            updated += int(con.execute("""UPDATE articles SET cluster_id = m.new_cluster_id FROM _dedup_merges m
                                          WHERE articles.cluster_id = m.old_cluster_id""").fetchall()[0][0])
        finally:
            unregister(con, "_dedup_merges")
    if demoted:
        _exec_with_keys(con, "_dedup_demote", demoted,
                        "UPDATE articles SET is_canonical = false WHERE article_id IN (SELECT v FROM _dedup_demote)")
        updated += len(demoted)
    if promoted:
        _exec_with_keys(con, "_dedup_promote", promoted,
                        "UPDATE articles SET is_canonical = true WHERE article_id IN (SELECT v FROM _dedup_promote)")
        updated += len(promoted)
    con.register("_dedup_upd", pa.table({
        "article_id": pa.array(list(story_of_new), pa.string()),
        "cluster_id": pa.array(list(story_of_new.values()), pa.string()),
        "is_canonical": pa.array([a in canonical_new for a in story_of_new], pa.bool_()),
    }))
    try:
        con.execute("""UPDATE articles SET cluster_id = u.cluster_id, is_canonical = u.is_canonical
                       FROM _dedup_upd u WHERE articles.article_id = u.article_id""").fetchall()
    finally:
        unregister(con, "_dedup_upd")
    return updated + len(story_of_new)


def _insert_bands(con: duckdb.DuckDBPyConnection, story_of_new: Mapping[str, str], joined: Set[str],
                  ids: Sequence[str], sid: np.ndarray, merges: Mapping[str, str],
                  config: DedupConfig) -> tuple[int, int]:
    """Store the new band rows a bucket still has room for: at most `per_bucket` rows of one story and
    `max_bucket_size` rows in all (lowest rank first among the batch's rows). Returns (rows stored,
    buckets that were full).

    A bucket's rows of one story are counted only where a new article joined a stored story (`joined`):
    a new story has no stored rows yet, so only those buckets' members need their stories looked up."""
    per_story = max(1, min(config.per_bucket, config.max_bucket_size))
    story = [story_of_new.get(a, a) for a in ids]
    # Stories as small integers: the window below partitions ~bands rows per article by (key, story).
    number: dict[str, int] = {}
    story_no = [number.setdefault(x, len(number)) for x in story]
    stories = pa.table({"sid": pa.array(sid, pa.int64()), "story_no": pa.array(story_no, pa.int64()),
                        "joined": pa.array([x in joined for x in story], pa.bool_())})
    names = pa.table({"story": pa.array([x for x in number if x in joined], pa.string()),
                      "story_no": pa.array([n for x, n in number.items() if x in joined], pa.int64())})
    merged = pa.table({"old": pa.array(list(merges), pa.string()), "new": pa.array(list(merges.values()),
                                                                                   pa.string())})
    con.register("_dedup_story_of", stories)
    con.register("_dedup_story_names", names)
    con.register("_dedup_merged", merged)
    try:
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _dedup_fill AS
            WITH total AS (SELECT key, count(*) AS n FROM _dedup_bucket_raw GROUP BY key),
            jkeys AS (  -- a full bucket takes no row whatever the story holds: its members are not looked up
                SELECT DISTINCT n.key FROM _dedup_new_bands n JOIN _dedup_story_of s USING (sid) WHERE s.joined
                AND n.key NOT IN (SELECT key FROM total WHERE n >= {int(config.max_bucket_size)})
            ), jrows AS (
                SELECT key, sid FROM _dedup_bucket_raw SEMI JOIN jkeys USING (key)
            ), jsig AS (
                SELECT sid, article_id FROM signatures SEMI JOIN (SELECT DISTINCT sid FROM jrows) k USING (sid)
            ), jart AS (
                SELECT article_id, coalesce(cluster_id, article_id) AS story
                FROM articles SEMI JOIN jsig USING (article_id)
            ), held AS (
                SELECT r.key, s.story_no, count(*) AS n
                FROM jrows r JOIN jsig USING (sid) JOIN jart a USING (article_id)
                LEFT JOIN _dedup_merged m ON m.old = a.story
                JOIN _dedup_story_names s ON s.story = coalesce(m.new, a.story) GROUP BY ALL
            ), ranked AS (
                SELECT n.key, n.sid, s.story_no,
                       row_number() OVER (PARTITION BY n.key, s.story_no ORDER BY n.rank, n.sid) AS in_story,
                       row_number() OVER (PARTITION BY n.key ORDER BY n.rank, n.sid) AS in_bucket
                FROM _dedup_new_bands n JOIN _dedup_story_of s USING (sid)
            )
            SELECT r.key, r.sid,
                   r.in_story + coalesce(h.n, 0) <= {per_story}
                   AND r.in_bucket + coalesce(t.n, 0) <= {int(config.max_bucket_size)} AS room,
                   coalesce(t.n, 0) >= {int(config.max_bucket_size)} AS at_cap
            FROM ranked r LEFT JOIN held h ON h.key = r.key AND h.story_no = r.story_no
            LEFT JOIN total t ON t.key = r.key
        """).fetchall()
        stored = int(con.execute("INSERT INTO lsh_bands SELECT key, sid FROM _dedup_fill WHERE room").fetchall()[0][0])
        full = int(con.execute("SELECT count(DISTINCT key) FROM _dedup_fill WHERE at_cap").fetchall()[0][0])
        con.execute("DROP TABLE _dedup_fill").fetchall()
    finally:
        unregister(con, "_dedup_story_of")
        unregister(con, "_dedup_story_names")
        unregister(con, "_dedup_merged")
    return stored, full


def resolve_cluster(con: duckdb.DuckDBPyConnection, cluster_id: str) -> str:
    """The current id of a story known by an older id: follows `cluster_merges` (a saved dashboard
    filter on a story that was later merged into another)."""
    seen = {cluster_id}
    while True:
        rows = con.execute("SELECT new_cluster_id FROM cluster_merges WHERE old_cluster_id = ?",
                           [cluster_id]).fetchall()
        if not rows or rows[0][0] in seen:
            return cluster_id
        cluster_id = str(rows[0][0])
        seen.add(cluster_id)


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
