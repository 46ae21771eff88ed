"""Near-duplicate matching over MinHash signatures, pure numpy: candidate pairs from LSH buckets,
verification of candidates, union-find, and the canonical choice.

Kept apart from SQL (warehouse/dedup.py stores bands and clusters) so it can be tested and reasoned about
on its own. `DedupConfig` holds every threshold; its docstring says where each value was measured.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from newsetl.text.sign import SignConfig, estimate_containment, estimate_jaccard, exact_similarity

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
    max_bucket_size: no LSH bucket stores more band rows than this (the first arrivals fill it), and
        inside one batch a bucket larger than this pairs its members with its lowest-ranked ones only
        (`bucket_pairs`). Only boilerplate shared by many stories reaches it: copies of one story are
        held to `per_bucket` rows a bucket. It bounds the work per new article.
    per_bucket: band rows one story keeps in one bucket. A story's copies share most band keys, so
        without this a story re-scraped 1,000 times puts 1,000 rows in each of its buckets and every
        new copy meets all of them (the old cost, quadratic in a story's copies). With it a new copy
        meets at most this many members of a story per band, and a copy with a new band value (an
        edit, a different extractor's output) still adds its row there: the stored rows are a
        sample of the story's variants, not of its arrivals.
    representatives: a new article is verified against at most this many members of each candidate
        story (those sharing the most bands with it, i.e. its most similar members), plus the story's
        canonical. With 4 and per_bucket 4, `newsetl ingest` of dedup-dev gives the same partition as
        comparing with every member did (114 clusters, ARI 0.981, pairwise precision 1.000), and the
        20k re-scrape corpus ten times fewer candidates (76k vs 819k) and 1,501 exact checks vs 414,910.
    exact_verify: decide borderline estimates on exact shingle sets read from `articles.body`
        (ARI 0.984 with, 0.981 without on dev; about half the candidates of dev are borderline because
        it is full of trimmed copies, a news feed has far fewer). The signatures must be those of
        `articles.body`: a body whose shingle count differs from the stored one falls back on the
        estimate.
    z: how many standard errors around a threshold count as borderline.
    band_evidence, max_required_bands: a candidate pair must share at least `required_bands` LSH bands
        before it is verified: the most bands k such that a pair at the lowest Jaccard that could still
        pass a threshold (given the two texts' shingle counts: J ≥ jaccard, or the J at which
        containment reaches `containment`) shares fewer than k bands with probability ≤ band_evidence
        (Binomial(bands, J^rows)), capped at max_required_bands (stored bucket rows are capped, so a
        true copy can miss some of its bands). Unrelated real texts meet in one band through common
        phrases (10k new vs 1M stored real-text signatures: ~280 such pairs per article, nearly all
        sharing one band) while copies share ~20 of 32; a trimmed copy of a text twice its size needs
        only one. Pairs too short for `min_shingles` are never verified at all.
    disjoint_jaccard, disjoint_containment, story_share: a text holding two disjoint texts (Jaccard below
        `disjoint_jaccard`, containment of the smaller in the larger below `disjoint_containment`) by
        containment alone (Jaccard below `jaccard`), each at least `story_share` of its shingles, is a
        multi-story page (a briefing, a newsletter, a scrape with the next article appended): it joins at
        most one of them that way (`ContainerGate`); before, union-find made the two stories one. On
        dedup-dev, of the 54k pairs of texts both contained in a third of their own story, 849 overlap
        below 0.3 (halves of one article extracted apart, a footer-only extraction), none between 0.3 and
        0.5; 90 % of cross-story pairs overlapping at all (C > 0.1) stay below 0.24 (site boilerplate): 0.3
        sits in the gap; Jaccard 0.1 matters only for texts of similar size. dedup-dev has no multi-story
        page, but its page dumps hold disjoint fragments of their own page (comments, footers, halves)
        that its labels join: with no share limit a fragment seen first refuses the story body later
        (5 runs in reverse order: ARI 0.9843 -> 0.9815); 0.10 keeps every order tested, 0.15 leaves a
        margin (a 13 % footer) and still covers pages of up to six equal stories.
    """

    sign: SignConfig = field(default_factory=SignConfig)
    jaccard: float = 0.8
    containment: float = 0.9
    min_shingles: int = 50
    max_bucket_size: int = 200
    per_bucket: int = 4
    representatives: int = 4
    exact_verify: bool = True
    z: float = 3.0
    band_evidence: float = 1e-2
    max_required_bands: int = 3
    disjoint_jaccard: float = 0.1
    disjoint_containment: float = 0.3
    story_share: float = 0.15

def _binom_cdf(k: int, n: int, p: float) -> float:
    """P(Binomial(n, p) ≤ k)."""
    return float(sum(math.comb(n, i) * p**i * (1.0 - p) ** (n - i) for i in range(0, k + 1)))


def lowest_passing_jaccard(ratio: float, config: DedupConfig) -> float:
    """The lowest true Jaccard at which a pair whose larger text has `ratio` times the smaller one's
    shingles can pass either threshold: J ≥ jaccard, or containment ≥ c, i.e. J ≥ c / (1 + ratio - c)
    (containment = J (|A| + |B|) / ((1 + J) min(|A|, |B|)))."""
    c = config.containment
    return min(config.jaccard, c / (1.0 + ratio - c))


@functools.lru_cache(maxsize=16)
def required_bands_steps(config: DedupConfig) -> tuple[tuple[float, int], ...]:
    """The shared-band requirement as steps ((ratio_max, k), ...), k decreasing: a pair of shingle counts
    small ≤ large needs k shared bands when large ≤ ratio_max · small (first step that holds), else 1.

    k(ratio) is the most bands such that a pair at `lowest_passing_jaccard(ratio)` shares fewer than k
    bands with probability ≤ band_evidence, capped at max_required_bands; it falls as the ratio grows."""
    bands, rows = config.sign.bands, config.sign.rows

    def k_of(ratio: float) -> int:
        p = lowest_passing_jaccard(ratio, config) ** rows
        k = 1
        while k < config.max_required_bands and _binom_cdf(k, bands, p) <= config.band_evidence:
            k += 1  # P(shared < k + 1) is small enough: require k + 1
        return k

    steps: list[tuple[float, int]] = []
    for k in range(k_of(1.0), 1, -1):
        lo, hi = 1.0, 1.0
        while k_of(hi) >= k and hi < 1e6:
            hi *= 2.0
        for _ in range(60):  # bisection: the largest ratio still needing k bands
            mid = (lo + hi) / 2.0
            lo, hi = (mid, hi) if k_of(mid) >= k else (lo, mid)
        steps.append((lo, k))
    return tuple(steps)


def required_bands(n_a: np.ndarray, n_b: np.ndarray, config: DedupConfig) -> np.ndarray:
    """Shared LSH bands each pair (shingle counts n_a, n_b) needs to be verified at all
    (`required_bands_steps`); pairs below min_shingles get more than any pair can share."""
    small = np.minimum(n_a, n_b).astype(np.float64)
    large = np.maximum(n_a, n_b).astype(np.float64)
    need = np.ones(len(small), dtype=np.int64)
    for ratio_max, k in reversed(required_bands_steps(config)):
        need[large <= ratio_max * small] = k
    need[small < config.min_shingles] = config.sign.bands + 1
    return need


def required_bands_sql(n_a: str, n_b: str, config: DedupConfig) -> str:
    """`required_bands` as a SQL expression over two integer columns (the same steps, first match)."""
    small, large = f"least({n_a}, {n_b})", f"greatest({n_a}, {n_b})"
    whens = [f"WHEN {small} < {int(config.min_shingles)} THEN {config.sign.bands + 1}"]
    # DOUBLE: a literal like 1.7458 is a DECIMAL in DuckDB, and DECIMAL(18) times a shingle count overflows.
    whens += [f"WHEN {large} <= {ratio_max!r}::DOUBLE * {small} THEN {k}"
              for ratio_max, k in required_bands_steps(config)]
    return "CASE " + " ".join(whens) + " ELSE 1 END"


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

@dataclass(frozen=True)
class Part:
    """A text as `ContainerGate` compares it: its signature row, shingle count and exact set (None: unknown)."""

    article_id: str
    minhash: np.ndarray
    n_shingles: int
    shingles: np.ndarray | None = None


def disjoint(a: Part, b: Part, config: DedupConfig) -> bool:
    """Whether two texts share almost nothing (`DedupConfig.disjoint_jaccard` / `disjoint_containment`):
    on their exact shingle sets when both are known, else on the MinHash estimates."""
    if a.article_id == b.article_id:
        return False
    if (a.shingles is not None and b.shingles is not None and len(a.shingles) == a.n_shingles
            and len(b.shingles) == b.n_shingles):
        j, c = exact_similarity(a.shingles, b.shingles)
    else:
        j = float(estimate_jaccard(a.minhash, b.minhash))
        c = float(estimate_containment(np.asarray(j), np.asarray(a.n_shingles), np.asarray(b.n_shingles)))
    return j < config.disjoint_jaccard and c < config.disjoint_containment


class ContainerGate:
    """Containment-only links (accepted by containment, Jaccard below the threshold) of one larger text, the
    container, to two disjoint texts make it a multi-story page: it joins at most one of them that way.

    A container's reference is its stored partner (`stored`: the largest text it holds through a stored
    containment-only pair; stories never split, so it stays), else the first partner admitted in this
    batch (links are offered largest partner first: the one covering the largest share of it). A link to a
    text disjoint from the reference is refused (`refused` counts them); texts overlapping it (trimmed
    copies of one story: a teaser, a longer trimmed copy) are admitted. A partner under `story_share` of
    the container is no story of it (a footer, a fragment): admitted, and never a reference. Jaccard links
    never pass through the gate."""

    def __init__(self, config: DedupConfig, stored: Mapping[str, Part]) -> None:
        self.config = config
        self.reference: dict[str, Part] = dict(stored)
        self.refused = 0
        # Containers found holding two stories: never the canonical of the story they joined (a briefing
        # titled "Your morning briefing" stood for the story in `canonical_articles`).
        self.pages: set[str] = set()

    def admit(self, container: str, container_shingles: int, part: Part) -> bool:
        if part.n_shingles < self.config.story_share * container_shingles:
            return True  # too small a share of the container to be one of its stories
        ref = self.reference.get(container)
        if ref is None:
            self.reference[container] = part
            return True
        if disjoint(part, ref, self.config):
            self.refused += 1
            self.pages.add(container)
            return False
        return True


def canonical_key(completeness: int | None, published_at: datetime | None, article_id: str,
                  syndicated: bool = False) -> tuple[Any, ...]:
    """Sort key whose minimum is the canonical article: the most complete copy (`sign.completeness`),
    then an original over a copy that names another original publisher (a wire story's own copy beats
    its reprints), then earliest publication (unknown last), then the smallest id (a stable tie-break)."""
    return (-(completeness or 0), syndicated, published_at is None, published_at or 0, article_id)
