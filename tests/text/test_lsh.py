"""The shared-band requirement a candidate pair meets before verification (newsetl.text.lsh)."""

from __future__ import annotations

import math

import numpy as np

from newsetl.text.lsh import (
    DedupConfig,
    lowest_passing_jaccard,
    required_bands,
    required_bands_sql,
    required_bands_steps,
)


def miss_probability(k: int, jaccard: float, cfg: DedupConfig) -> float:
    """P(a pair at this Jaccard shares fewer than k bands)."""
    p = jaccard ** cfg.sign.rows
    n = cfg.sign.bands
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k))


def test_lowest_passing_jaccard_follows_containment() -> None:
    cfg = DedupConfig()
    assert lowest_passing_jaccard(1.0, cfg) == cfg.jaccard  # equal sizes: containment needs J ≈ 0.82
    # Twice the size: the smaller text 90 % inside the larger one is J = 0.9 / 2.1.
    assert abs(lowest_passing_jaccard(2.0, cfg) - 0.9 / 2.1) < 1e-12


def test_required_bands_bound_the_loss_of_true_pairs() -> None:
    cfg = DedupConfig()
    small = np.full(200, 400)
    large = (400 * np.linspace(1.0, 4.0, 200)).astype(np.int64)
    need = required_bands(small, large, cfg)
    assert need.max() == cfg.max_required_bands and need.min() == 1
    assert np.all(np.diff(need) <= 0)  # falls as the sizes grow apart
    for n_a, n_b, k in zip(small, large, need, strict=True):
        if k > 1:  # (k = 1 is the LSH itself: no pair is dropped beyond those it never found)
            j = lowest_passing_jaccard(n_b / n_a, cfg)
            assert miss_probability(int(k), j, cfg) <= cfg.band_evidence + 1e-12
    # Too short for min_shingles: no pair can share enough.
    assert required_bands(np.array([cfg.min_shingles - 1]), np.array([400]), cfg)[0] > cfg.sign.bands


def test_stricter_evidence_asks_fewer_bands() -> None:
    loose, strict = DedupConfig(band_evidence=0.05), DedupConfig(band_evidence=1e-6)
    n = np.array([300, 300, 300]), np.array([300, 450, 600])
    assert np.all(required_bands(*n, strict) <= required_bands(*n, loose))
    assert required_bands_steps(DedupConfig(max_required_bands=1)) == ()


def test_sql_form_agrees_with_numpy() -> None:
    import duckdb

    cfg = DedupConfig()
    rng = np.random.default_rng(0)
    a, b = rng.integers(10, 2000, 500), rng.integers(10, 2000, 500)
    con = duckdb.connect()
    got = con.execute(f"SELECT {required_bands_sql('a', 'b', cfg)} FROM (SELECT unnest(?) AS a, unnest(?) AS b)",
                      [a.tolist(), b.tolist()]).fetchall()
    assert [g[0] for g in got] == required_bands(a, b, cfg).tolist()
