"""Outlet keys, people and platforms, canonical spelling; the held-out publisher set (tests/data)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from newsetl.text.publishers import (
    PublishersFileError,
    display_name,
    is_outlet,
    load_publisher_file,
    outlet_key,
)

HELDOUT = json.loads((Path(__file__).parents[1] / "data" / "publishers_heldout.json").read_text("utf-8"))


@pytest.mark.parametrize("group", [
    ["The Valley Gazette", "Valley Gazette", "valleygazette.com", "https://www.valleygazette.com/news/a"],
    ["CBS Interactive Inc", "CBS Interactive", "CBS Interactive, Inc."],
    ["NJ.com’s", "NJ.com", "nj.com"],
    ["Jeongdong Theater", "Jeongdongtheater"],
    ["The Meridian Post", "Meridian Post", "MERIDIAN POST"],
])
def test_spellings_of_one_outlet_share_a_key(group: list[str]) -> None:
    assert len({outlet_key(name) for name in group}) == 1
    assert all(is_outlet(name) for name in group)


@pytest.mark.parametrize("group", HELDOUT["groups"])
def test_heldout_groups_fold_to_one_outlet(group: list[str]) -> None:
    assert len({outlet_key(name) for name in group}) == 1, group
    assert all(is_outlet(name) for name in group), group


@pytest.mark.parametrize("name", ["Chicago Sun-Times", "Austin American-Statesman", "Agence France-Presse"])
def test_an_outlet_word_in_a_hyphenated_name_makes_an_outlet(name: str) -> None:
    assert is_outlet(name)


# A syndicate's own name is no person's: "Acme Syndicate" fell back to the URL's host (a user trial).
@pytest.mark.parametrize("name", ["Acme Syndicate", "Tribune Content Syndication", "Creators Syndicate"])
def test_a_syndicate_is_an_outlet(name: str) -> None:
    assert is_outlet(name)


@pytest.mark.parametrize("name", [*HELDOUT["not_outlets"], "Aaron Schwartz", "Jean-Paul Sartre", "AMZN", "Facebook",
                                  "YouTube", ""])
def test_people_platforms_and_tickers_are_not_outlets(name: str) -> None:
    assert not is_outlet(name)


@pytest.mark.parametrize(("a", "b"), HELDOUT["distinct"])
def test_different_outlets_stay_apart(a: str, b: str) -> None:
    assert outlet_key(a) != outlet_key(b)


def test_display_name_is_order_free_and_readable() -> None:
    forms = ["valleygazette.com", "Valley Gazette", "The Valley Gazette", "VALLEY GAZETTE"]
    assert {display_name(p) for p in itertools.permutations(forms)} == {"The Valley Gazette"}
    assert display_name(["NJ.com’s", "nj.com", "NJ.com"]) == "NJ.com"
    assert display_name(["CBS Interactive Inc", "CBS Interactive"]) == "CBS Interactive"
    assert display_name(["Jeongdongtheater", "Jeongdong Theater"]) == "Jeongdong Theater"
    assert display_name(["Barron's"]) == "Barron's"  # a name that is a possessive keeps it
    assert display_name(["www.valleygazette.com"]) == "valleygazette.com"


def test_publishers_file_forms(tmp_path: Path) -> None:
    long = tmp_path / "long.json"
    long.write_text(json.dumps({"publishers": [{"name": "CBS News", "aliases": ["CBS Interactive", "cbsnews.com"]}]}))
    short = tmp_path / "short.json"
    short.write_text(json.dumps({"_about": "x", "CBS News": ["CBS Interactive", "cbsnews.com"]}))
    assert load_publisher_file(long) == load_publisher_file(short)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"publishers": [{"name": "X News", "aliases": "not a list"}]}))
    with pytest.raises(PublishersFileError, match=r"bad\.json"):
        load_publisher_file(bad)
