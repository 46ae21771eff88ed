"""bench/floors.py: the per-page sums that html_cv's site resampling adds up must give the scorers' own
figures (AEB macro F1 and lines left, traf snippet F1) when every site is taken once, and the chance of
meeting the floors must follow the figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

# bench.floors loads the scorers of ../shared/eval when imported: without them there is nothing to check.
if not (Path(__file__).resolve().parents[3] / "shared" / "eval" / "aeb_metric.py").is_file():
    pytest.skip("../shared/eval is not beside this checkout (bench.floors needs its scorers)",
                allow_module_level=True)

from bench import floors

_STORY = [
    "The council approved the new budget on Tuesday after a long debate about school funding.",
    "Most of the money will go to repairing roads and building two new primary schools in the north.",
    "Opposition members said the plan did too little for housing and promised to bring it back next year.",
    "The mayor said the details would be published before the spring and thanked the residents for waiting.",
]
_CHROME = ["Subscribe to our newsletter for the best stories every morning", "Share this article on Facebook"]


def _aeb(key: str, site: str, kept: list[int], chrome: int) -> tuple[dict[str, Any], str]:
    page = {"set": "aeb", "key": key, "site": site, "truth": "\n".join(_STORY), "titles": ["Council budget"]}
    return page, "\n".join([*(_STORY[i] for i in kept), *_CHROME[:chrome]])


def _traf(key: str, site: str, with_found: int, without_found: int) -> tuple[dict[str, Any], str]:
    withs = [f"content sentence number {i} of page {key}" for i in range(4)]
    withouts = [f"menu entry {i} of page {key}" for i in range(3)]
    page = {"set": "traf", "key": key, "site": site, "with": withs, "without": withouts}
    return page, "\n".join([*withs[:with_found], *withouts[:without_found]])


def _pages() -> tuple[list[dict[str, Any]], dict[str, str]]:
    made = [_aeb("a1", "one.com", [0, 1, 2, 3], 0), _aeb("a2", "one.com", [0, 2], 1),
            _aeb("a3", "two.org", [1, 2, 3], 2), _aeb("a4", "three.net", [], 0),
            _traf("t1", "two.org", 4, 0), _traf("t2", "four.de", 3, 2), _traf("t3", "four.de", 1, 1)]
    return [p for p, _ in made], {p["key"]: body for p, body in made}


def test_every_site_once_gives_the_scorers_figures() -> None:
    pages, bodies = _pages()
    want = floors.score(pages, bodies)
    site_idx, _ = floors.site_resamples([p["site"] for p in pages], seed=1)
    once = np.ones((1, int(site_idx.max()) + 1))
    got = floors.resampled_figures(floors.page_stats(pages, bodies), site_idx, once)
    assert got["aeb_f1"][0] == pytest.approx(want["aeb_f1"])
    assert got["aeb_residual_lines"][0] == want["aeb_residual_lines"] > 0
    assert got["aeb_pages"][0] == want["aeb_pages"] == 4
    assert got["traf_f1"][0] == pytest.approx(want["traf_f1"])
    assert 0 < want["traf_f1"] < 1 and 0 < want["aeb_f1"] < 1


def test_a_site_drawn_twice_counts_twice() -> None:
    pages, bodies = _pages()
    site_idx, _ = floors.site_resamples([p["site"] for p in pages], seed=1)
    twice_one = np.ones((1, int(site_idx.max()) + 1))
    one = site_idx[0]  # one.com: pages a1 (clean) and a2 (one chrome line)
    twice_one[0, one] = 2
    doubled = [*pages, *(dict(p, key=p["key"] + "b") for p in pages if p["site"] == "one.com")]
    doubled_bodies = {**bodies, **{p["key"] + "b": bodies[p["key"]] for p in pages if p["site"] == "one.com"}}
    want = floors.score(doubled, doubled_bodies)
    got = floors.resampled_figures(floors.page_stats(pages, bodies), site_idx, twice_one)
    assert got["aeb_f1"][0] == pytest.approx(want["aeb_f1"])
    assert got["aeb_residual_lines"][0] == want["aeb_residual_lines"]
    assert got["traf_f1"][0] == pytest.approx(want["traf_f1"])


def test_resamples_are_seeded_and_draw_as_many_sites_as_there_are() -> None:
    sites = ["a", "b", "b", "c", "d", "d", "d"]
    idx1, d1 = floors.site_resamples(sites, seed=7)
    idx2, d2 = floors.site_resamples(sites, seed=7)
    assert (idx1 == idx2).all() and (d1 == d2).all()
    assert d1.shape == (floors.BOOTSTRAP, 4) and (d1.sum(axis=1) == 4).all()
    assert not (floors.site_resamples(sites, seed=8)[1] == d1).all()


def test_the_chance_follows_the_floors() -> None:
    pages, bodies = _pages()
    clean = {k: ("\n".join(_STORY) if k.startswith("a") else b) for k, b in bodies.items()}
    perfect_traf = {**clean, **{p["key"]: "\n".join(p["with"]) for p in pages if p["set"] == "traf"}}
    sites = [p["site"] for p in pages]
    site_idx, draws = floors.site_resamples(sites, seed=3)
    assert floors.chance_all_floors(floors.page_stats(pages, perfect_traf), site_idx, draws) == 1.0
    # Every AEB page with its chrome lines: the lines floor (< 30 per 88 pages) fails on every resample
    # that holds an AEB page.
    chrome = {**perfect_traf, **{p["key"]: perfect_traf[p["key"]] + "\n" + "\n".join(_CHROME)
                                 for p in pages if p["set"] == "aeb"}}
    chance = floors.chance_all_floors(floors.page_stats(pages, chrome), site_idx, draws)
    assert chance < 0.1


# ------------------------------------------------------------------ the plain-text path's floors
def _text_counts(removed: int, lost: int) -> np.ndarray:
    """One page's scorer counts: 10 boilerplate lines of which `removed` went, 400 content lines of which
    `lost` went (so one lost line is 0.25%, two are the 0.5% ceiling, three are over it)."""
    return np.array([10, removed, 400, lost], float)


def test_text_interval_of_alike_sites_is_the_pooled_figure() -> None:
    counts = [_text_counts(8, 1)] * 6
    sites = ["a", "b", "c", "d", "e", "f"]
    iv = floors.text_interval(counts, sites, ["aeb", "aeb", "aeb", "traf", "traf", "traf"])
    assert iv["aeb"] == ((0.8, 0.8), (0.0025, 0.0025))
    # traf's floor is 60% removed: 80% holds; AEB's 75% holds too; the lost share is under 0.5% everywhere
    assert iv["traf"] == ((0.8, 0.8), (0.0025, 0.0025))
    assert iv["chance"] == 1.0


def test_text_interval_spreads_with_the_sites_and_the_chance_follows_the_floors() -> None:
    sites = [f"s{i}" for i in range(12)]
    sets = ["aeb"] * 6 + ["traf"] * 6
    # half the sites lose three lines a page (0.75%), half none: pooled 0.375%, under the 0.5% ceiling
    mixed = [_text_counts(9, 3 * (i % 2)) for i in range(12)]
    iv = floors.text_interval(mixed, sites, sets)
    lo, hi = iv["aeb"][1]
    assert lo < 0.00375 < hi and hi > 0.005
    assert 0.0 < iv["chance"] < 1.0
    assert floors.text_interval(mixed, sites, sets) == iv  # seeded
    # every page over the ceiling: no resample holds
    assert floors.text_interval([_text_counts(9, 3)] * 12, sites, sets)["chance"] == 0.0
    # traf removing too little fails its floor alone
    weak_traf = [_text_counts(9, 0)] * 6 + [_text_counts(5, 0)] * 6
    assert floors.text_interval(weak_traf, sites, sets)["chance"] == 0.0


def test_text_interval_leaves_out_a_set_without_pages() -> None:
    iv = floors.text_interval([_text_counts(9, 0)] * 3, ["a", "b", "c"], ["traf"] * 3)
    assert "aeb" not in iv and iv["chance"] == 1.0
