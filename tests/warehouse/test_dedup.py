"""Warehouse tests of warehouse/dedup.py on temporary DuckDB files."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from newsetl.text.lsh import METHOD_EXACT, DedupConfig, bucket_pairs
from newsetl.text.sign import SCHEME_VERSION, SignConfig, body_hash, scheme_id, sign_texts
from newsetl.warehouse.connect import migrate
from newsetl.warehouse.dedup import (
    DedupStats,
    SchemeMismatch,
    check_invariants,
    check_scheme,
    cluster_batch,
    partition,
    resolve_cluster,
)

SHARED = Path(__file__).resolve().parents[3] / "shared"
CFG = DedupConfig()

# --- corpus helpers -------------------------------------------------------------------------------

_LETTERS = np.array(list("abcdefghijklmnopqrstuvwxyz"))


def words(rng: np.random.Generator, n: int) -> list[str]:
    out = []
    for w in rng.integers(0, 30000, size=n):
        r = np.random.default_rng(int(w))
        out.append("".join(r.choice(_LETTERS, size=int(r.integers(3, 10)))))
    return out


def text(ws: Sequence[str]) -> str:
    return " ".join(ws)


def prose(ws: Sequence[str]) -> str:
    """The words as a story's paragraphs: sentences of 12 words, one a line."""
    return "\n".join(" ".join(ws[i:i + 12]) + "." for i in range(0, len(ws), 12))


def edit(rng: np.random.Generator, ws: list[str], share: float) -> list[str]:
    """Replace `share` of the words with new ones (a lightly edited copy)."""
    out = list(ws)
    for i in rng.choice(len(ws), size=int(len(ws) * share), replace=False):
        out[i] = words(rng, 1)[0]
    return out


# --- warehouse helpers ----------------------------------------------------------------------------


def ingest(con: duckdb.DuckDBPyConnection, docs: Sequence[Mapping[str, Any]], config: DedupConfig = CFG,
           run_id: str = "r1", insert: bool = True) -> DedupStats:
    """Load minimal articles rows for docs ({id, text, published_at?}) and cluster them in one transaction,
    as the loader does."""
    ids = [d["id"] for d in docs]
    texts = [d["text"] for d in docs]
    hashes = [body_hash(t) for t in texts]
    wc = pa.array([len(t.split()) for t in texts], pa.int32())
    pub = pa.array([d.get("published_at") for d in docs], pa.timestamp("us", tz="UTC"))
    con.execute("BEGIN TRANSACTION")
    try:
        if insert:
            arts = pa.table({"article_id": ids, "doc_id": ids, "source_uri": ids, "body": texts,
                             "body_hash": hashes, "word_count": wc, "published_at": pub,
                             "content_type": ["text"] * len(ids), "run_id": [run_id] * len(ids)})
            con.register("_a", arts)
            con.execute("INSERT INTO articles BY NAME SELECT * FROM _a").fetchall()
            con.unregister("_a")
        batch = pa.table({"article_id": ids, "body_hash": hashes, "word_count": wc, "published_at": pub,
                          "fetched_at": pa.array([None] * len(ids), pa.timestamp("us", tz="UTC"))})
        stats = cluster_batch(con, batch, sign_texts(texts, config.sign), config, run_id)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    assert check_invariants(con) == []
    return stats


def snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[Any, ...]]]:
    q = {
        "articles": "SELECT article_id, cluster_id, is_canonical FROM articles ORDER BY 1",
        "clusters": "SELECT cluster_id, canonical_article_id, size FROM clusters ORDER BY 1",
        "pairs": "SELECT article_a, article_b, round(jaccard, 6), round(containment, 6), method "
                 "FROM duplicate_pairs ORDER BY 1, 2",
        "signatures": "SELECT article_id, body_hash, n_shingles, banded, minhash FROM signatures ORDER BY 1",
        "bands": "SELECT s.article_id, b.key FROM lsh_bands b JOIN signatures s USING (sid) ORDER BY 1, 2",
    }
    return {k: con.execute(v).fetchall() for k, v in q.items()}


def cluster_of(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return dict(partition(con))


# --- tests ------------------------------------------------------------------------------------------


def test_near_duplicates_merge_and_unrelated_stay_apart(con: duckdb.DuckDBPyConnection) -> None:
    rng = np.random.default_rng(1)
    story = words(rng, 400)
    docs = [
        {"id": "a1", "text": text(story)},
        {"id": "a2", "text": text(edit(rng, story, 0.01)) + " Read the original article at the wire."},
        {"id": "b1", "text": text(words(rng, 400))},
        {"id": "c1", "text": text(words(rng, 120))},
    ]
    stats = ingest(con, docs)
    part = cluster_of(con)
    assert part["a1"] == part["a2"] == "a1"
    assert len({part["a1"], part["b1"], part["c1"]}) == 3
    assert stats.verified_pairs == 1 and stats.articles == 4
    row = con.execute("SELECT article_a, article_b, jaccard, method FROM duplicate_pairs").fetchall()
    assert row[0][:2] == ("a1", "a2") and row[0][2] > 0.8 and row[0][3] in ("minhash", "shingles")


def test_trimmed_copy_merges_by_containment(con: duckdb.DuckDBPyConnection) -> None:
    rng = np.random.default_rng(2)
    story = words(rng, 900)
    ingest(con, [{"id": "full", "text": text(story)}, {"id": "trim", "text": text(story[:400])}])
    assert cluster_of(con)["trim"] == "full"
    j, c = con.execute("SELECT jaccard, containment FROM duplicate_pairs").fetchall()[0]
    assert j < 0.6 and c >= 0.9  # Jaccard alone would have missed it


def test_edited_copy_below_thresholds_stays_apart(con: duckdb.DuckDBPyConnection) -> None:
    # Negative case: 40 % of the words rewritten is another text, not a copy (J of 5-grams ≈ 0.05).
    rng = np.random.default_rng(3)
    story = words(rng, 500)
    ingest(con, [{"id": "x", "text": text(story)}, {"id": "y", "text": text(edit(rng, story, 0.4))}])
    part = cluster_of(con)
    assert part["x"] != part["y"]


def test_short_boilerplate_only_texts_never_merge(con: duckdb.DuckDBPyConnection) -> None:
    cookie = ("We use cookies to improve your experience on our site and to show you relevant advertising. "
              "By continuing to browse you agree to our use of cookies. Learn more in our policy.")
    docs = [
        {"id": "p1", "text": cookie},
        {"id": "p2", "text": cookie},  # exactly the same boilerplate-only failure of another page
        {"id": "p3", "text": cookie.replace("Learn more", "Find out more")},
        {"id": "p4", "text": cookie.upper()},
    ]
    stats = ingest(con, docs)
    part = cluster_of(con)
    assert len(set(part.values())) == 4
    assert stats.too_short == 4 and stats.exact_links == 0 and stats.band_rows == 0
    assert con.execute("SELECT count(*) FROM duplicate_pairs").fetchall()[0][0] == 0


def test_shared_long_boilerplate_block_does_not_merge_two_stories(con: duckdb.DuckDBPyConnection) -> None:
    # Like seeds 000 and 004: two stories of one site sharing a long donation appeal.
    rng = np.random.default_rng(4)
    appeal = words(rng, 180)
    a = words(rng, 450)
    b = words(rng, 350)
    stats = ingest(con, [{"id": "s1", "text": text(a[:50] + appeal + a[50:])},
                         {"id": "s2", "text": text(appeal + b)}])
    part = cluster_of(con)
    assert part["s1"] != part["s2"]
    assert stats.band_pairs >= 1  # the bands did see the shared block; the pair was refused


def test_exact_tier_links_equal_bodies_without_band_rows(con: duckdb.DuckDBPyConnection) -> None:
    rng = np.random.default_rng(5)
    body = text(words(rng, 300))
    docs = [{"id": "e2", "text": body}, {"id": "e1", "text": "  " + body.upper() + " !"},
            {"id": "e3", "text": body}]
    stats = ingest(con, docs)
    assert set(cluster_of(con).values()) == {"e2"}  # named after the first-seen article
    assert stats.exact_links == 2 and stats.candidates == 0
    # Only the representative (smallest id) is banded.
    assert con.execute("SELECT article_id FROM signatures WHERE banded").fetchall() == [("e1",)]
    methods = con.execute("SELECT DISTINCT method FROM duplicate_pairs").fetchall()
    assert methods == [(METHOD_EXACT,)]
    # A later run with the same body links to the stored representative.
    stats2 = ingest(con, [{"id": "e0", "text": body}], run_id="r2")
    assert stats2.exact_links == 1 and stats2.candidates == 0 and stats2.verified_pairs == 0
    assert set(cluster_of(con).values()) == {"e2"}  # a later, smaller id does not rename the story


def test_canonical_is_most_complete_then_earliest_then_smallest_id(con: duckdb.DuckDBPyConnection) -> None:
    rng = np.random.default_rng(6)
    story = words(rng, 400)
    t1 = datetime(2022, 3, 1, tzinfo=UTC)
    t0 = datetime(2022, 2, 1, tzinfo=UTC)
    docs: list[dict[str, Any]] = [
        {"id": "k1", "text": prose(story[:384]), "published_at": t0},
        {"id": "k2", "text": prose(story), "published_at": t1},  # most complete: canonical
        {"id": "k3", "text": prose(story[:396]), "published_at": None},
    ]
    ingest(con, docs)
    canon = con.execute("SELECT article_id FROM articles WHERE is_canonical").fetchall()
    assert canon == [("k2",)]
    assert con.execute("SELECT cluster_id, canonical_article_id, size FROM clusters").fetchall() == \
        [("k1", "k2", 3)]
    # Same length: the earliest publication wins over an unknown date and a later one.
    ingest(con, [{"id": "k0", "text": prose(story), "published_at": None},
                 {"id": "k9", "text": prose(story) + " .", "published_at": t0}], run_id="r2")
    assert con.execute("SELECT article_id FROM articles WHERE is_canonical").fetchall() == [("k9",)]
    assert con.execute("SELECT cluster_id, size FROM clusters").fetchall() == [("k1", 5)]


def test_a_page_dump_is_not_canonical_over_the_clean_copy(con: duckdb.DuckDBPyConnection) -> None:
    # A full-page text dump holds the whole story and the site's menus and link lists around it: more
    # words, less story. The clean copy, and even one missing a paragraph, is the canonical.
    rng = np.random.default_rng(11)
    story = words(rng, 420)
    menu = "\n".join(" ".join(words(rng, 2)).title() for _ in range(60))
    ingest(con, [{"id": "m1", "text": menu + "\n" + prose(story) + "\n" + menu},
                 {"id": "m2", "text": prose(story[:396])}])
    assert cluster_of(con)["m1"] == cluster_of(con)["m2"]
    assert con.execute("SELECT article_id FROM articles WHERE is_canonical").fetchall() == [("m2",)]


def test_a_canonical_stored_without_completeness_is_judged_by_its_body(con: duckdb.DuckDBPyConnection) -> None:
    # A warehouse from before signatures.completeness: the stored canonical's is read from its body, so
    # a page dump arriving later does not take its place, and a fuller copy does.
    rng = np.random.default_rng(12)
    story = words(rng, 420)
    ingest(con, [{"id": "o1", "text": prose(story[:396])}])
    con.execute("UPDATE signatures SET completeness = NULL")
    menu = "\n".join(" ".join(words(rng, 2)).title() for _ in range(60))
    ingest(con, [{"id": "o2", "text": menu + "\n" + prose(story[:408])}], run_id="r2")
    assert con.execute("SELECT article_id FROM articles WHERE is_canonical").fetchall() == [("o1",)]
    ingest(con, [{"id": "o3", "text": prose(story)}], run_id="r3")
    assert con.execute("SELECT article_id FROM articles WHERE is_canonical").fetchall() == [("o3",)]
    assert con.execute("SELECT size FROM clusters").fetchall() == [(3,)]


def test_canonical_tie_breaks_on_smallest_article_id(con: duckdb.DuckDBPyConnection) -> None:
    rng = np.random.default_rng(7)
    body = text(words(rng, 200))
    ingest(con, [{"id": "t2", "text": body}, {"id": "t1", "text": body + " ."}])
    assert con.execute("SELECT article_id FROM articles WHERE is_canonical").fetchall() == [("t1",)]


def test_idempotent_second_call_changes_nothing(con: duckdb.DuckDBPyConnection) -> None:
    rng = np.random.default_rng(8)
    story = words(rng, 300)
    docs = [{"id": f"i{k}", "text": text(edit(rng, story, 0.01 * k))} for k in range(4)]
    docs.append({"id": "solo", "text": text(words(rng, 200))})
    ingest(con, docs)
    before = snapshot(con)
    again = ingest(con, docs, run_id="r2", insert=False)
    assert again == DedupStats(skipped_known=5)
    assert snapshot(con) == before


def test_scheme_mismatch_is_detected(con: duckdb.DuckDBPyConnection) -> None:
    rng = np.random.default_rng(9)
    check_scheme(con, CFG)
    check_scheme(con, CFG)  # same scheme: fine, repeatedly
    other = replace(CFG, sign=replace(CFG.sign, seed=CFG.sign.seed + 1))
    check_scheme(con, other)  # nothing stored yet: the warehouse adopts the new scheme
    check_scheme(con, CFG)
    ingest(con, [{"id": "m1", "text": text(words(rng, 100))}])
    with pytest.raises(SchemeMismatch, match="minhash"):
        check_scheme(con, other)
    with pytest.raises(SchemeMismatch):
        ingest(con, [{"id": "m2", "text": text(words(rng, 100))}], config=other)
    # The failed batch was rolled back by the caller: nothing of m2 is left.
    assert con.execute("SELECT count(*) FROM signatures WHERE article_id = 'm2'").fetchall() == [(0,)]
    # Changing only the verification thresholds is not a scheme change.
    check_scheme(con, replace(CFG, jaccard=0.9))
    # Signatures of a newer newsetl: the message says to upgrade, not to change settings.
    newer = scheme_id(CFG.sign).replace(f"minhash-v{SCHEME_VERSION}/", f"minhash-v{SCHEME_VERSION + 1}/")
    con.execute("UPDATE dedup_meta SET value = ? WHERE key = 'scheme_id'", [newer]).fetchall()
    with pytest.raises(SchemeMismatch, match=r"made by a newer newsetl .*: upgrade newsetl to write to it"):
        check_scheme(con, CFG)


def test_bridge_article_merges_existing_clusters(con: duckdb.DuckDBPyConnection) -> None:
    # Two stored partial copies of one story that overlap (each holds half of the other) but are too
    # different to match: the full story arriving later holds both and joins their clusters into one.
    rng = np.random.default_rng(10)
    story = words(rng, 612)
    part_a, part_b = story[:408], story[204:]
    ingest(con, [{"id": "x2", "text": prose(part_a)}, {"id": "x3", "text": prose(part_a[:384])},
                 {"id": "y1", "text": prose(part_b)}])
    assert len(set(cluster_of(con).values())) == 2
    stats = ingest(con, [{"id": "z9", "text": prose(story)}], run_id="r2")
    part = cluster_of(con)
    assert len(set(part.values())) == 1 and part["x2"] == "x2" and part["y1"] == "x2"
    assert stats.clusters_merged == 1 and stats.multi_story_refused == 0
    assert con.execute("SELECT cluster_id, canonical_article_id, size FROM clusters").fetchall() == \
        [("x2", "z9", 4)]
    # The merge is recorded, so a saved filter on the merged-away story finds where it went.
    assert con.execute("SELECT old_cluster_id, new_cluster_id, run_id FROM cluster_merges").fetchall() == \
        [("y1", "x2", "r2")]
    assert resolve_cluster(con, "y1") == "x2" and resolve_cluster(con, "x2") == "x2"


def briefing_corpus() -> tuple[dict[str, str], str]:
    """Two unrelated stories and a briefing page carrying both in full (trial 8): (texts by id, the
    story the briefing joins: the larger one)."""
    rng = np.random.default_rng(21)
    a, b = prose(words(rng, 420)), prose(words(rng, 360))
    brief = "Good morning. Here are today's top stories.\n" + a + "\n" + b
    return {"sa": a, "sb": b, "brief": brief}, "sa"


@pytest.mark.parametrize("runs", [
    [["sa", "sb", "brief"]],  # one batch
    [["sa", "sb"], ["brief"]],  # the stories first, the briefing in a later load
    [["sa"], ["sb"], ["brief"]],
    [["brief"], ["sa", "sb"]],  # the briefing first, then the stories
    [["brief"], ["sa"], ["sb"]],  # ... one a run: the stored pair to sa refuses sb
], ids=["one-batch", "stories-first", "stories-apart-first", "briefing-first", "briefing-then-one-a-run"])
def test_a_page_carrying_two_stories_joins_at_most_one(con: duckdb.DuckDBPyConnection,
                                                       runs: list[list[str]]) -> None:
    # A briefing holds each story whole (containment 1.0, Jaccard ~0.5): containment alone accepts both
    # pairs, and union-find used to make the two stories one, through the briefing.
    texts, joined = briefing_corpus()
    refused = 0
    for k, ids in enumerate(runs):
        refused += ingest(con, [{"id": i, "text": texts[i]} for i in ids], run_id=f"r{k}").multi_story_refused
    part = cluster_of(con)
    assert part["sa"] != part["sb"]
    assert part["brief"] == part[joined]  # the story covering the larger share of it, whatever the order
    assert refused == 1
    assert con.execute("SELECT count(*) FROM cluster_merges").fetchall() == [(0,)]
    pairs = con.execute("SELECT article_a, article_b FROM duplicate_pairs").fetchall()
    assert pairs == [("brief", joined)]
    # Found holding two stories, the briefing stands for neither: the story it joined keeps (or gets back)
    # its own copy as canonical, also where the briefing had been the canonical before the second story came.
    canonicals = con.execute("SELECT article_id FROM articles WHERE is_canonical ORDER BY 1").fetchall()
    assert canonicals == [("sa",), ("sb",)]
    assert con.execute("SELECT canonical_article_id FROM clusters ORDER BY 1").fetchall() == [("sa",), ("sb",)]


def test_trimmed_copies_of_one_story_still_join_through_a_longer_copy(tmp_path: Path) -> None:
    # A lead-only teaser, a longer trimmed copy and the story's second half overlap the longest of them:
    # the full copy holding all three is no multi-story page, and all four are one story in any order.
    rng = np.random.default_rng(22)
    story = words(rng, 600)
    texts = {"full": prose(story), "teaser": prose(story[:120]), "trim": prose(story[:396]),
             "tail": prose(story[240:])}
    for name, runs in (("one", [["full", "teaser", "trim", "tail"]]),
                       ("parts-first", [["teaser", "trim", "tail"], ["full"]]),
                       ("full-first", [["full"], ["trim"], ["teaser"], ["tail"]])):
        c = duckdb.connect(str(tmp_path / f"{name}.duckdb"))
        migrate(c)
        refused = sum(ingest(c, [{"id": i, "text": texts[i]} for i in ids], run_id=f"r{k}").multi_story_refused
                      for k, ids in enumerate(runs))
        assert len(set(cluster_of(c).values())) == 1, name
        assert refused == 0
        c.close()


def test_story_id_survives_a_later_smaller_id(con: duckdb.DuckDBPyConnection) -> None:
    # Issue 15: a dashboard saved the story's id after run 1; run 2 brings a copy with a smaller id
    # (and a more complete body, so the canonical moves): the saved id still names the story.
    rng = np.random.default_rng(13)
    story = words(rng, 400)
    ingest(con, [{"id": "s7", "text": prose(story[:380])}, {"id": "s5", "text": prose(story[:390])}])
    saved = cluster_of(con)["s7"]
    assert saved == "s7"  # the first-seen article names it (batch order), not the smallest id
    ingest(con, [{"id": "s1", "text": prose(story)}], run_id="r2")
    part = cluster_of(con)
    assert part["s1"] == part["s5"] == part["s7"] == saved
    assert con.execute("SELECT cluster_id, canonical_article_id, size FROM clusters").fetchall() == \
        [(saved, "s1", 3)]
    assert con.execute("SELECT article_id FROM articles WHERE is_canonical").fetchall() == [("s1",)]
    assert con.execute("SELECT count(*) FROM cluster_merges").fetchall() == [(0,)]


def test_merge_keeps_the_oldest_story_id(con: duckdb.DuckDBPyConnection) -> None:
    # Two halves of one story that overlap by a third, then the whole story holding both.
    rng = np.random.default_rng(14)
    story = words(rng, 600)
    ingest(con, [{"id": "b5", "text": text(story[200:])}])  # older story, larger id
    ingest(con, [{"id": "a1", "text": text(story[:400])}], run_id="r2")
    ingest(con, [{"id": "m0", "text": text(story)}], run_id="r3")
    assert set(cluster_of(con).values()) == {"b5"}
    assert con.execute("SELECT old_cluster_id, new_cluster_id FROM cluster_merges").fetchall() == [("a1", "b5")]
    assert resolve_cluster(con, "a1") == "b5"


def test_many_copies_cost_a_bounded_number_of_comparisons(con: duckdb.DuckDBPyConnection) -> None:
    # A story re-scraped 120 times (one sentence dropped each time) in batches of 20: each new copy is
    # verified against a few representatives of the story, not against every stored copy, and the
    # story keeps at most `per_bucket` band rows in any bucket.
    rng = np.random.default_rng(15)
    sentences = [words(rng, 15) for _ in range(40)]
    docs = []
    for k in range(120):
        drop = int(rng.integers(len(sentences)))
        docs.append({"id": f"r{k:03d}", "text": " . ".join(text(x) for i, x in enumerate(sentences) if i != drop)})
    per_batch = []
    for b in range(6):
        per_batch.append(ingest(con, docs[b * 20:(b + 1) * 20], run_id=f"r{b}"))
    assert set(cluster_of(con).values()) == {"r000"}
    # Per new copy: at most `representatives` + the canonical stored, plus its 19 batch neighbours; and
    # the last batch (100 copies stored) does no more work than the second (20 stored). Comparing with
    # every stored copy would be 20 × 100 pairs for the last batch alone.
    bound = 20 * (CFG.representatives + 1) + 20 * 19 // 2
    assert all(s.candidates <= bound for s in per_batch)
    assert per_batch[-1].candidates <= per_batch[1].candidates
    worst = con.execute("SELECT max(n) FROM (SELECT count(*) AS n FROM lsh_bands GROUP BY key)").fetchall()[0][0]
    assert worst <= CFG.per_bucket
    # Exact re-scrapes join with no candidates and no verification at all.
    again = ingest(con, [{"id": f"x{k:03d}", "text": d["text"]} for k, d in enumerate(docs[:20])], run_id="rx")
    assert again.exact_links == 20 and again.candidates == 0 and again.verified_pairs == 0
    assert set(cluster_of(con).values()) == {"r000"}


def generated_corpus(seed: int = 11, stories: int = 40) -> list[dict[str, Any]]:
    """Stories with the kinds of copies the warehouse sees: exact re-scrapes, edited and trimmed copies,
    copies with a different header/footer, plus boilerplate-only failures and unrelated singletons."""
    rng = np.random.default_rng(seed)
    docs: list[dict[str, Any]] = []
    footer = words(rng, 30)
    cookie = text(words(rng, 25))
    for s in range(stories):
        story = words(rng, int(rng.integers(150, 700)))
        variants = [text(story), text(story), text(edit(rng, story, 0.02)),
                    text(story[: len(story) * 7 // 10]), text(words(rng, 12) + story + footer),
                    cookie]
        for v, body in enumerate(variants[: int(rng.integers(2, len(variants) + 1))]):
            docs.append({"id": f"d{s:03d}-{v}-{int(rng.integers(10**6)):06d}", "text": body})
    docs += [{"id": f"u{k:03d}", "text": text(words(rng, int(rng.integers(30, 400))))} for k in range(30)]
    order = rng.permutation(len(docs))
    return [docs[i] for i in order]


def stories(articles: Sequence[tuple[Any, ...]]) -> set[tuple[frozenset[str], str]]:
    """The partition of a snapshot's (article_id, cluster_id, is_canonical) rows, each story with its
    canonical: what one run and N runs must agree on (story ids name the first-seen article, so they
    depend on arrival order; the partition and the canonicals do not)."""
    members: dict[str, set[str]] = {}
    canon: dict[str, str] = {}
    for a, cid, is_canon in articles:
        members.setdefault(cid, set()).add(a)
        if is_canon:
            canon[cid] = a
    return {(frozenset(m), canon[cid]) for cid, m in members.items()}


def story_rows(con: duckdb.DuckDBPyConnection) -> set[tuple[frozenset[str], str, int]]:
    """The clusters rows as (members, canonical, size), independent of the story ids."""
    rows = con.execute("SELECT c.canonical_article_id, c.size, list(a.article_id) FROM clusters c "
                       "JOIN articles a USING (cluster_id) GROUP BY ALL").fetchall()
    return {(frozenset(m), canon, size) for canon, size, m in rows}


def test_incremental_runs_equal_one_run(tmp_path: Path) -> None:
    docs = generated_corpus()
    results = []
    for name, chunks in (("one", 1), ("four", 4), ("seven", 7)):
        c = duckdb.connect(str(tmp_path / f"{name}.duckdb"))
        migrate(c)  # the project's own migration runner
        size = -(-len(docs) // chunks)
        for k, s in enumerate(range(0, len(docs), size)):
            ingest(c, docs[s:s + size], run_id=f"run{k}")
        snap = snapshot(c)
        results.append((stories(snap["articles"]), story_rows(c)))
        c.close()
    # Reversed arrival order too.
    c = duckdb.connect(str(tmp_path / "rev.duckdb"))
    migrate(c)  # the project's own migration runner
    rev = docs[::-1]
    for k, s in enumerate(range(0, len(rev), 50)):
        ingest(c, rev[s:s + 50], run_id=f"run{k}")
    rev_result = (stories(snapshot(c)["articles"]), story_rows(c))
    c.close()
    assert results[0][0] == results[1][0] == results[2][0] == rev_result[0]
    assert results[0][1] == results[1][1] == results[2][1] == rev_result[1]
    # The partition is not trivial: copies were merged, cookie notices were not.
    assert 40 <= len(results[0][0]) < len(docs) - 40



def test_counting_pairs_in_slices_of_the_batch_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The stored candidates are counted a slice of new articles at a time (`_PAIR_SLICE`, 2,000): with
    # slices of 3, a second batch against the first meets its stored copies across many slices, and
    # every row written and every count must be those of one slice.
    import newsetl.warehouse.dedup as dedup

    docs = generated_corpus(seed=5, stories=20)
    half = len(docs) // 2
    results = []
    for name, slice_size in (("whole", dedup._PAIR_SLICE), ("sliced", 3)):
        monkeypatch.setattr(dedup, "_PAIR_SLICE", slice_size)
        c = duckdb.connect(str(tmp_path / f"{name}.duckdb"))
        migrate(c)
        ingest(c, docs[:half], run_id="run0")
        stats = ingest(c, docs[half:], run_id="run1")
        results.append((snapshot(c), stats))
        c.close()
    (whole, whole_stats), (sliced, sliced_stats) = results
    assert whole_stats.band_pairs > 0 and whole_stats.candidates > 0
    assert sliced == whole
    assert sliced_stats == whole_stats

def test_bucket_pairs_caps_oversized_buckets() -> None:
    # Bucket 1: 2 stored (sid 1, 2) + 1 new (sid 10). Bucket 2: 50 stored + 2 new; cap 5.
    key = np.array([1, 1, 1] + [2] * 52, dtype=np.int64)
    sid = np.array([1, 2, 10, *range(100, 150), 200, 201], dtype=np.int64)
    rank = np.array([0, 0, 0, *range(1000, 1050), 5, 2000], dtype=np.int64)  # 200 ranks first
    is_new = sid >= 10
    is_new[3:53] = False
    s1, s2, hot = bucket_pairs(key, sid, rank, is_new, max_bucket_size=5)
    pairs = set(zip(s1.tolist(), s2.tolist(), strict=True))
    assert hot == 1
    assert {(1, 10), (2, 10)} <= pairs
    # sid 200 is in the bucket's head (rank 5): it meets every member.
    assert all((s, 200) in pairs for s in range(100, 150)) and (200, 201) in pairs
    # sid 201 is not: it meets only the 5 lowest-ranked members (200 and 100..103).
    assert {p for p in pairs if 201 in p} == {(200, 201), (100, 201), (101, 201), (102, 201), (103, 201)}
    assert len(pairs) == len(s1)  # distinct
    assert all(a < b for a, b in pairs)
    # Uncapped, the same bucket yields every pair with a new member.
    s1, _, hot = bucket_pairs(key, sid, rank, is_new, max_bucket_size=1000)
    assert hot == 0 and len(s1) == 2 + 50 + 50 + 1


def test_hot_bucket_of_copies_still_clusters(con: duckdb.DuckDBPyConnection) -> None:
    # 30 distinct near-copies of one story with a cap of 4: buckets are oversized, pairs are capped,
    # the story is still one cluster.
    rng = np.random.default_rng(12)
    story = words(rng, 300)
    docs = [{"id": f"h{k:02d}", "text": text(edit(rng, story, 0.005))} for k in range(30)]
    cfg = replace(CFG, max_bucket_size=4)
    stats1 = ingest(con, docs[:15], config=cfg)
    stats2 = ingest(con, docs[15:], config=cfg, run_id="r2")
    assert stats1.hot_buckets + stats2.hot_buckets > 0
    assert set(cluster_of(con).values()) == {"h00"}
    assert stats2.candidates < 15 * 15  # capped, not quadratic


def test_batch_and_signature_mismatch_rejected(con: duckdb.DuckDBPyConnection) -> None:
    batch = pa.table({"article_id": ["a"], "body_hash": ["h"], "word_count": pa.array([1], pa.int32()),
                      "published_at": pa.array([None], pa.timestamp("us", tz="UTC"))})
    with pytest.raises(ValueError, match="rows"):
        cluster_batch(con, batch, sign_texts(["x", "y"]), CFG, "r")
    with pytest.raises(ValueError, match="shape"):
        cluster_batch(con, batch, sign_texts(["x"], SignConfig(num_perm=64, bands=32)), CFG, "r")


def test_empty_batch_is_a_no_op(con: duckdb.DuckDBPyConnection) -> None:
    assert ingest(con, []) == DedupStats()
    assert con.execute("SELECT count(*) FROM signatures").fetchall() == [(0,)]


@pytest.mark.skipif(not (SHARED / "seeds").is_dir(), reason="../shared/seeds not found next to the repo")
def test_seeds_stay_five_clusters(con: duckdb.DuckDBPyConnection) -> None:
    paths = sorted((SHARED / "seeds").glob("*.txt"))
    docs = [{"id": p.name, "text": p.read_text(encoding="utf-8")} for p in paths]
    assert len(docs) == 5
    ingest(con, docs)
    assert len(set(cluster_of(con).values())) == 5


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "eval" / "dedup-dev" / "docs.jsonl").exists(),
                    reason="../shared/eval/dedup-dev not found next to the repo")
def test_dedup_dev_scores_and_incremental_equals_one_run(tmp_path: Path) -> None:
    dev = SHARED / "eval" / "dedup-dev"
    docs = [json.loads(x) for x in (dev / "docs.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
    labels = json.loads((dev / "labels.json").read_text(encoding="utf-8"))
    sys.path.insert(0, str(SHARED / "eval"))
    from dedup_metric import dedup_scores  # type: ignore[import-not-found]

    parts = []
    # One run; four in order; five in reverse order (a copy joins its story through the story's longest
    # copy, a page dump holding most copies: verified against the clean canonical instead, a 24-copy
    # story split 23 + 1 in the reversed five).
    for name, chunks, order in (("one", 1, docs), ("four", 4, docs), ("five-reversed", 5, docs[::-1])):
        c = duckdb.connect(str(tmp_path / f"{name}.duckdb"))
        migrate(c)  # the project's own migration runner
        size = -(-len(order) // chunks)
        for k, s in enumerate(range(0, len(order), size)):
            ingest(c, order[s:s + size], run_id=f"run{k}")
        parts.append(snapshot(c)["articles"])
        c.close()
    assert stories(parts[0]) == stories(parts[1]) == stories(parts[2])
    pred = {a: cid for a, cid, _ in parts[0]}
    scores = dedup_scores({i: labels[i] for i in pred}, pred)
    assert scores["ari"] >= 0.97
    assert scores["pair_precision"] >= 0.995
    # The canonical is the story's cleanest complete copy: AEB shingle F1 against the page's true body,
    # averaged over stories of 3+ copies of the raw texts (about 0.70 when the longest copy was canonical).
    from aeb_metric import page_counts  # type: ignore[import-not-found]

    truth = {k: v["articleBody"] for k, v in json.loads(
        (SHARED / "eval" / "aeb-dev" / "ground-truth.json").read_text(encoding="utf-8")).items()}
    text = {d["id"]: d["text"] for d in docs}
    members: dict[str, list[str]] = {}
    for a, cid, _ in parts[0]:
        members.setdefault(cid, []).append(a)
    f1s = []
    for a, cid, is_canon in parts[0]:
        if is_canon and len(members[cid]) >= 3 and labels[a] in truth:
            tp, fp, fn = page_counts(truth[labels[a]], text[a])
            f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    assert len(f1s) >= 80 and sum(f1s) / len(f1s) >= 0.8, (len(f1s), sum(f1s) / len(f1s))  # 0.85 measured


# --- Chinese and Japanese ---------------------------------------------------------------------------------

# A story in Chinese, a copy with four small edits and an unrelated story; a story in Japanese and its
# edited copy (written for these tests).
_CJK = json.loads((Path(__file__).resolve().parents[1] / "data" / "cjk_stories.json").read_text(encoding="utf-8"))
_ZH, _ZH_EDITED, _ZH_OTHER, _JA, _JA_EDITED = (_CJK[k] for k in ("zh", "zh_edited", "zh_other", "ja", "ja_edited"))


def test_chinese_and_japanese_copies_are_matched(con: duckdb.DuckDBPyConnection) -> None:
    # Signed as runs between punctuation marks, each story was ~30 "words": below min_shingles, so no copy of
    # a Chinese or Japanese story was ever matched; one character edited changed a whole clause's word.
    docs = [{"id": "zh", "text": _ZH}, {"id": "zh-edited", "text": _ZH_EDITED}, {"id": "zh-other", "text": _ZH_OTHER},
            {"id": "ja", "text": _JA}, {"id": "ja-edited", "text": _JA_EDITED}]
    stats = ingest(con, docs)
    assert stats.too_short == 0 and stats.verified_pairs == 2
    clusters = cluster_of(con)
    assert clusters["zh"] == clusters["zh-edited"] != clusters["zh-other"]
    assert clusters["ja"] == clusters["ja-edited"] != clusters["zh"]


@pytest.mark.parametrize("slice_size", [1, 5_000])  # one article a slice, or all in one
def test_a_warehouse_signed_with_scheme_2_is_upgraded_in_place(con: duckdb.DuckDBPyConnection,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 slice_size: int) -> None:
    import re

    from newsetl.text import sign
    from newsetl.warehouse import dedup

    monkeypatch.setattr(dedup, "_RESIGN_SLICE", slice_size)
    rng = np.random.default_rng(31)
    english = text(words(rng, 300))
    # Scheme 2 signed every text as runs of word characters: a pattern that never matches restores that.
    with monkeypatch.context() as patch:
        patch.setattr(sign, "_SPACELESS", re.compile(r"(?!)"))
        ingest(con, [{"id": "en", "text": english}, {"id": "zh", "text": _ZH},
                     {"id": "zh-other", "text": _ZH_OTHER}])
    con.execute("UPDATE dedup_meta SET value = ? WHERE key = 'scheme_id'",
                [sign.scheme_id(CFG.sign, version=2)]).fetchall()
    before = snapshot(con)
    assert next(r for r in before["signatures"] if r[0] == "zh")[3] is False  # too short to be banded

    check_scheme(con, CFG)

    after = snapshot(con)
    assert con.execute("SELECT value FROM dedup_meta WHERE key = 'scheme_id'").fetchall() == \
        [(sign.scheme_id(CFG.sign),)]
    assert check_invariants(con) == []
    # The English article's signature and band rows are untouched; the Chinese ones are what scheme 3 signs.
    assert [r for r in after["signatures"] if r[0] == "en"] == [r for r in before["signatures"] if r[0] == "en"]
    assert [r for r in after["bands"] if r[0] == "en"] == [r for r in before["bands"] if r[0] == "en"]
    fresh = sign_texts([_ZH, _ZH_OTHER], CFG.sign)
    rows = {r[0]: r for r in after["signatures"]}
    for i, a in enumerate(("zh", "zh-other")):
        assert rows[a][1:] == (fresh.body_hash[i], fresh.n_shingles[i], True, fresh.minhash[i].astype("<u4").tobytes())
    assert con.execute("SELECT body_hash FROM articles WHERE article_id = 'zh'").fetchall() == [(fresh.body_hash[0],)]
    assert len([r for r in after["bands"] if r[0] == "zh"]) == CFG.sign.bands
    assert after["articles"] == before["articles"] and after["clusters"] == before["clusters"]
    check_scheme(con, CFG)  # once upgraded, a no-op
    assert snapshot(con) == after
    # Later copies meet the re-signed story: an edited one by its bands, an equal one by its body hash.
    stats = ingest(con, [{"id": "zh-edited", "text": _ZH_EDITED}, {"id": "zh-again", "text": _ZH}], run_id="r2")
    assert stats.exact_links == 1 and stats.verified_pairs == 1
    clusters = cluster_of(con)
    assert clusters["zh-edited"] == clusters["zh-again"] == clusters["zh"] != clusters["zh-other"]


# --- Thai, Lao, Khmer and Burmese -------------------------------------------------------------------------

# A ~300-character story in Thai, a copy with one word edited, another story on the same flood; the same in
# Burmese (written for these tests).
_SEA = json.loads((Path(__file__).resolve().parents[1] / "data" / "sea_stories.json").read_text(encoding="utf-8"))
_TH, _TH_EDITED, _TH_OTHER = (_SEA[k] for k in ("th", "th_edited", "th_other"))


def test_thai_and_burmese_copies_are_matched(con: duckdb.DuckDBPyConnection) -> None:
    docs = [{"id": "th", "text": _TH}, {"id": "th-copy", "text": _TH}, {"id": "th-edited", "text": _TH_EDITED},
            {"id": "th-other", "text": _TH_OTHER},
            {"id": "my", "text": _SEA["my"]}, {"id": "my-edited", "text": _SEA["my_edited"]},
            {"id": "my-other", "text": _SEA["my_other"]}]
    stats = ingest(con, docs)
    assert stats.too_short == 0 and stats.exact_links == 1 and stats.verified_pairs == 2
    clusters = cluster_of(con)
    assert clusters["th"] == clusters["th-copy"] == clusters["th-edited"] != clusters["th-other"]
    assert clusters["my"] == clusters["my-edited"] != clusters["my-other"]
    assert len({clusters["th"], clusters["th-other"], clusters["my"], clusters["my-other"]}) == 4


@contextlib.contextmanager
def _signed_as_scheme_3(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Texts are signed meanwhile as scheme 3 signed them: Thai, Lao, Khmer and Burmese as runs of word
    characters (fragments between their marks), Chinese and Japanese one word per character."""
    import re

    from newsetl.text import sign

    with monkeypatch.context() as patch:
        patch.setattr(sign, "_SEGMENTED", re.compile(r"(?!)"))
        yield


@pytest.mark.parametrize("slice_size", [1, 5_000])  # one article a slice, or all in one
def test_a_warehouse_signed_with_scheme_3_is_upgraded_in_place(con: duckdb.DuckDBPyConnection,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 slice_size: int) -> None:
    from newsetl.text import sign
    from newsetl.warehouse import dedup

    monkeypatch.setattr(dedup, "_RESIGN_SLICE", slice_size)
    english = text(words(np.random.default_rng(32), 300))
    with _signed_as_scheme_3(monkeypatch):
        ingest(con, [{"id": "en", "text": english}, {"id": "zh", "text": _ZH}, {"id": "th", "text": _TH},
                     {"id": "th-other", "text": _TH_OTHER}, {"id": "my", "text": _SEA["my"]}])
    con.execute("UPDATE dedup_meta SET value = ? WHERE key = 'scheme_id'",
                [sign.scheme_id(CFG.sign, version=3)]).fetchall()
    before = snapshot(con)
    fresh = sign_texts([_TH, _TH_OTHER, _SEA["my"]], CFG.sign)
    rows = {r[0]: r for r in before["signatures"]}
    assert rows["th"][2] != fresh.n_shingles[0] and rows["my"][2] != fresh.n_shingles[2]  # 63 / 73, 109 / 75

    check_scheme(con, CFG)

    after = snapshot(con)
    assert con.execute("SELECT value FROM dedup_meta WHERE key = 'scheme_id'").fetchall() == \
        [(sign.scheme_id(CFG.sign),)]
    assert check_invariants(con) == []
    # The English and Chinese articles' signatures and band rows are untouched; the Thai and Burmese ones are
    # what scheme 4 signs.
    for a in ("en", "zh"):
        assert [r for r in after["signatures"] if r[0] == a] == [r for r in before["signatures"] if r[0] == a]
        assert [r for r in after["bands"] if r[0] == a] == [r for r in before["bands"] if r[0] == a]
    rows = {r[0]: r for r in after["signatures"]}
    for i, a in enumerate(("th", "th-other", "my")):
        assert rows[a][1:] == (fresh.body_hash[i], fresh.n_shingles[i], True, fresh.minhash[i].astype("<u4").tobytes())
        assert len([r for r in after["bands"] if r[0] == a]) == CFG.sign.bands
    assert con.execute("SELECT body_hash FROM articles WHERE article_id = 'th'").fetchall() == [(fresh.body_hash[0],)]
    assert after["articles"] == before["articles"] and after["clusters"] == before["clusters"]
    check_scheme(con, CFG)  # once upgraded, a no-op
    assert snapshot(con) == after
    # Later copies meet the re-signed story: an edited one by its bands, an equal one by its body hash.
    stats = ingest(con, [{"id": "th-edited", "text": _TH_EDITED}, {"id": "th-again", "text": _TH}], run_id="r2")
    assert stats.exact_links == 1 and stats.verified_pairs == 1
    clusters = cluster_of(con)
    assert clusters["th-edited"] == clusters["th-again"] == clusters["th"] != clusters["th-other"]


def test_a_warehouse_signed_with_another_icu_re_signs_its_thai_lao_khmer_and_burmese(
        con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch) -> None:
    # ICU's dictionaries change with its major version and may cut some words otherwise: the scheme names it,
    # and a warehouse signed with another one has those texts signed again at the next run's start.
    from newsetl.text import sign
    from newsetl.text.words import segmenter_version

    with _signed_as_scheme_3(monkeypatch):  # Thai words unlike this ICU's
        ingest(con, [{"id": "zh", "text": _ZH}, {"id": "th", "text": _TH}])
    con.execute("UPDATE dedup_meta SET value = ? WHERE key = 'scheme_id'",
                [sign.scheme_id(CFG.sign, icu=segmenter_version() - 1)]).fetchall()
    before = snapshot(con)

    check_scheme(con, CFG)

    after = snapshot(con)
    assert con.execute("SELECT value FROM dedup_meta").fetchall() == [(sign.scheme_id(CFG.sign),)]
    assert [r for r in after["signatures"] if r[0] == "zh"] == [r for r in before["signatures"] if r[0] == "zh"]
    fresh = sign_texts([_TH], CFG.sign)
    assert next(r for r in after["signatures"] if r[0] == "th")[1:3] == (fresh.body_hash[0], fresh.n_shingles[0])
    # other parameters than ICU's version are no upgrade
    other = scheme_id(CFG.sign, icu=segmenter_version() - 1).replace("/s20240601", "/s1")
    con.execute("UPDATE dedup_meta SET value = ? WHERE key = 'scheme_id'", [other]).fetchall()
    with pytest.raises(SchemeMismatch, match="cannot be compared"):
        check_scheme(con, CFG)
