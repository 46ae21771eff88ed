"""The alias table: canonical names consistent across batches and orders, domains, user files."""

from __future__ import annotations

import itertools
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from newsetl.schemas.tables import ARTICLES, arrow_schema
from newsetl.text.publishers import UserPublisher
from newsetl.warehouse.connect import migrate
from newsetl.warehouse.publishers import abbreviates, register_user_publishers, resolve_publishers


def _con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    migrate(con)
    return con


def _batch(rows: list[tuple[str, str | None, str | None]]) -> pa.Table:
    schema = arrow_schema(ARTICLES)
    data: dict[str, list[object]] = {name: [None] * len(rows) for name in schema.names}
    data["article_id"] = data["doc_id"] = data["source_uri"] = [r[0] for r in rows]
    data["publisher_raw"] = [r[1] for r in rows]
    data["url"] = [r[2] for r in rows]
    data["body"] = [""] * len(rows)
    data["word_count"] = [0] * len(rows)
    data["body_hash"] = data["run_id"] = ["x"] * len(rows)
    return pa.table(data, schema=schema)


def _load(con: duckdb.DuckDBPyConnection, rows: list[tuple[str, str | None, str | None]]) -> None:
    resolved = resolve_publishers(con, _batch(rows), "run")
    con.register("_b", resolved)
    con.execute("INSERT INTO articles BY NAME SELECT * FROM _b")
    con.unregister("_b")


ROWS = [
    ("a1", "Valley Gazette", None),
    ("a2", None, "https://www.valleygazette.com/x"),
    ("a3", "The Valley Gazette", "https://valleygazette.com/y"),
    ("a4", "Aaron Schwartz", None),
    ("a5", "Facebook", "https://www.nytimes.com/z"),
    ("a6", "The New York Times", "https://www.nytimes.com/w"),
]


@pytest.mark.parametrize("order", list(itertools.permutations(range(3)))[:4])
def test_same_outlet_same_name_in_any_order_and_batching(tmp_path: Path, order: tuple[int, ...]) -> None:
    con = _con(tmp_path)
    batches = [ROWS[0:2], ROWS[2:4], ROWS[4:6]]
    for i in order:
        _load(con, batches[i])
    got = dict(con.execute("SELECT article_id, publisher FROM articles").fetchall())
    assert got == {"a1": "The Valley Gazette", "a2": "The Valley Gazette", "a3": "The Valley Gazette",
                   "a4": None, "a5": "The New York Times", "a6": "The New York Times"}
    raw = dict(con.execute("SELECT article_id, publisher_raw FROM articles").fetchall())
    assert raw["a4"] == "Aaron Schwartz" and raw["a1"] == "Valley Gazette"
    assert con.execute("SELECT count(*) FROM publishers").fetchone() == (2,)


def test_user_file_names_win_and_merge_aliases(tmp_path: Path) -> None:
    con = _con(tmp_path)
    _load(con, [("b1", "CBS Interactive Inc", None), ("b2", "CBS Interactive", "https://www.cbsnews.com/a")])
    register_user_publishers(con, [UserPublisher("CBS News", ("CBS Interactive", "cbsnews.com"))])
    _load(con, [("b3", "CBS Interactive", None), ("b4", "The CBS News", None)])
    got = {r[0] for r in con.execute("SELECT DISTINCT publisher FROM articles").fetchall()}
    assert got == {"CBS News"}


def test_domain_abbreviations() -> None:
    assert abbreviates("nytimes", "The New York Times")
    assert abbreviates("wsj", "The Wall Street Journal")
    assert abbreviates("bbc", "BBC News")
    assert not abbreviates("cbsnews", "CBS Interactive")
    assert not abbreviates("newsnow", "The Harbour Courier")


def test_samples_ingested_hold_one_name_per_outlet(prefect_harness: None, samples: Path, tmp_path: Path) -> None:
    """Issue 15 acceptance: after a real ingest of the bundled samples, no two publisher names in
    `articles` (or in the `publishers` table) are one outlet after case, "The", legal-suffix and
    possessive folding, and no person or platform is taken for an outlet."""
    from newsetl.flows.ingest import ingest
    from newsetl.text.publishers import is_outlet, outlet_key

    db = tmp_path / "news.duckdb"
    ingest(sources=[str(samples)], db=str(db))
    with duckdb.connect(str(db), read_only=True) as con:
        names = [r[0] for r in con.execute("SELECT DISTINCT publisher FROM articles WHERE publisher IS NOT NULL")
                 .fetchall()]
        canon = [r[0] for r in con.execute("SELECT name FROM publishers").fetchall()]
        raw = con.execute("SELECT count(DISTINCT publisher_raw) FROM articles").fetchall()[0][0]
    assert len(names) >= 3 and raw >= len(names)  # the samples name several outlets, in several spellings
    for group in (names, canon):
        keys = [outlet_key(n) for n in group]
        assert len(keys) == len(set(keys)), sorted(group)
        assert all(is_outlet(n) for n in group), sorted(group)
    # The samples spell these two outlets with and without "The".
    assert {outlet_key("The Valley Gazette"), outlet_key("The Meridian Post")} <= {outlet_key(n) for n in names}


def test_many_outlets_and_domain_links_in_one_batch(tmp_path: Path) -> None:
    """A batch of many sites is resolved set-wise (one upsert, one merge per table); the domain links of
    the batch fold the outlets stored earlier under those domain keys, and renames reach stored articles."""
    con = _con(tmp_path)
    _load(con, [("s1", None, "https://www.valleygazette.com/a"), ("s2", None, "https://nytimes.com/b"),
                ("s3", "Valley Gazette", None)])
    many = [(f"m{i}", f"Outlet Number {i} Herald", f"https://site{i}.example.org/x") for i in range(50)]
    _load(con, [*many, ("s4", "The New York Times", "https://www.nytimes.com/c"),
                ("s5", "The Valley Gazette", "https://valleygazette.com/d")])
    got = dict(con.execute("SELECT article_id, publisher FROM articles").fetchall())
    assert got["s1"] == got["s3"] == got["s5"] == "The Valley Gazette"  # renamed in place
    assert got["s2"] == got["s4"] == "The New York Times"  # nytimes.com folded into the outlet
    assert con.execute("SELECT publisher_key FROM publisher_aliases WHERE alias_key = 'nytimes'").fetchone() \
        == ("newyorktimes",)
    assert con.execute("SELECT count(*) FROM publishers").fetchone() == (52,)
    assert con.execute("SELECT count(*) FROM publishers WHERE publisher_key = 'nytimes'").fetchone() == (0,)


def test_chained_domain_links_resolve_step_by_step(tmp_path: Path) -> None:
    """One link's outlet is another link's domain key ("Daily Times" on dt.com, "Dallas Daily Times" on
    dailytimes.com): every alias and every article, stored before or in the batch, ends at the chain's end."""
    con = _con(tmp_path)
    _load(con, [("c0", None, "https://dt.com/0")])
    _load(con, [("c1", "Daily Times", "https://dt.com/1"), ("c2", "Dallas Daily Times", "https://dailytimes.com/2")])
    aliases = dict(con.execute("SELECT alias_key, publisher_key FROM publisher_aliases WHERE source = 'domain'")
                   .fetchall())
    assert aliases == {"dt": "dallasdailytimes", "dailytimes": "dallasdailytimes"}
    keys = dict(con.execute("SELECT article_id, publisher_key FROM articles").fetchall())
    assert keys == {"c0": "dallasdailytimes", "c1": "dallasdailytimes", "c2": "dallasdailytimes"}
    assert con.execute("SELECT publisher_key FROM publishers").fetchall() == [("dallasdailytimes",)]
    names = {r[0] for r in con.execute("SELECT publisher FROM articles").fetchall()}
    assert len(names) == 1 and names != {None}


def test_a_person_looking_name_in_its_own_address_is_the_outlet(tmp_path: Path) -> None:
    # "Rolling Stone" and "Mother Jones" read like people's names; written in the page's own address they
    # are the site's name. A reporter's name on an outlet's site is no outlet.
    con = _con(tmp_path)
    _load(con, [("r1", "Rolling Stone", "https://www.rollingstone.com/music/x"),
                ("r2", "Mother Jones", "https://www.motherjones.com/politics/y"),
                ("r3", "Rolling Stone", None),
                ("r4", "Aaron Schwartz", "https://www.nytimes.com/z"),
                ("r5", "Deutsche Welle", "https://example.org/q"),
                ("n1", "NPR", "https://www.npr.org/a"),
                ("n2", "Nancy Pryor Rowe", "https://www.npr.org/b")])
    got = dict(con.execute("SELECT article_id, publisher FROM articles").fetchall())
    assert got["r1"] == "Rolling Stone" and got["r2"] == "Mother Jones"
    assert got["n1"] == got["n2"] == "NPR"  # a reporter whose initials spell the domain is not the outlet
    # Without an address the name is no evidence; with another site's, that site is the outlet.
    assert got["r3"] is None
    assert got["r4"] == "nytimes.com" and got["r5"] == "example.org"


WIRE_ROWS = [
    ("w1", "AP", None),
    ("w2", None, "https://apnews.com/article/x"),
    ("w3", "The Associated Press", "https://www.apnews.com/y"),
    ("w4", "Thomson Reuters", None),
    ("w5", "Reuters", "https://www.reuters.com/z"),
    ("w6", "Agence France-Presse", None),
    ("w7", "AFP", None),
]


@pytest.mark.parametrize("batches", [[WIRE_ROWS], [WIRE_ROWS[:2], WIRE_ROWS[2:]], [WIRE_ROWS[::-1]]])
def test_a_wire_under_its_other_names_is_one_outlet(tmp_path: Path,
                                                    batches: list[list[tuple[str, str | None, str | None]]]) -> None:
    # "AP", apnews.com and "The Associated Press" were three outlets, splitting the wire's counts (a user trial).
    con = _con(tmp_path)
    for rows in batches:
        _load(con, rows)
    got = dict(con.execute("SELECT article_id, publisher FROM articles").fetchall())
    assert got == {"w1": "The Associated Press", "w2": "The Associated Press", "w3": "The Associated Press",
                   "w4": got["w5"], "w5": got["w5"], "w6": got["w7"], "w7": got["w7"]}
    assert "Reuters" in got["w5"] and got["w7"] in ("AFP", "Agence France-Presse")
    assert con.execute("SELECT count(DISTINCT publisher_key) FROM articles").fetchone() == (3,)


def test_a_warehouse_with_outlets_under_a_wires_other_name_has_them_folded_in(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A warehouse written before the wire aliases: "AP" and apnews.com stored as outlets of their own. The
    # next batch folds them, articles and all, into The Associated Press.
    import newsetl.warehouse.publishers as wp

    con = _con(tmp_path)
    monkeypatch.setattr(wp, "WIRE_ALIASES", {})
    _load(con, WIRE_ROWS[:2])
    assert con.execute("SELECT count(*) FROM publishers").fetchone() == (2,)
    monkeypatch.undo()
    _load(con, [("w8", "Valley Gazette", None)])  # no wire in it
    got = dict(con.execute("SELECT article_id, publisher_key FROM articles").fetchall())
    assert got == {"w1": "associatedpress", "w2": "associatedpress", "w8": "valleygazette"}
    names = dict(con.execute("SELECT publisher_key, name FROM publishers").fetchall())
    assert names == {"associatedpress": "AP", "valleygazette": "Valley Gazette"}
    assert ("ap", "associatedpress", "wire") in con.execute("SELECT * FROM publisher_aliases").fetchall()
