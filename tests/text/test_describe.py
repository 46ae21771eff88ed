"""Describe: table-driven date / byline / syndication / signature lines, then whole-article cases.

The table (tests/data/describe_cases.json) holds invented lines in the formats news sites use, with
negative cases (lines that must yield nothing).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from newsetl.schemas.records import Removal
from newsetl.text.describe import (
    DescribeHints,
    _best_publisher,
    _signature_publishers,
    describe_article,
    detect_language,
    original_publisher_of,
    parse_byline,
    parse_date,
    parse_relative_date,
    publisher_from_url,
)

DATA = Path(__file__).resolve().parents[1] / "data"
CASES: dict[str, Any] = json.loads((DATA / "describe_cases.json").read_text("utf-8"))
SHARED = Path(__file__).resolve().parents[3] / "shared"
FETCHED = datetime(2023, 1, 1, tzinfo=UTC)


def test_the_table_has_at_least_40_lines() -> None:
    n = sum(len(CASES[k]) for k in ("dates", "relative_dates", "bylines", "syndication", "signatures"))
    assert n >= 40


@pytest.mark.parametrize("case", CASES["dates"], ids=lambda c: c["line"])
def test_date_lines(case: dict[str, Any]) -> None:
    got = parse_date(case["line"], DescribeHints(fetched_at=FETCHED), ("en", "de", "pt", "ru"))
    if case["date"] is None:
        assert got is None
        return
    assert got is not None
    assert got.tzinfo is not None  # always timezone-aware
    assert got.date().isoformat() == case["date"]
    if "utc" in case:
        assert got.astimezone(UTC).isoformat() == case["utc"]


@pytest.mark.parametrize("case", CASES["relative_dates"], ids=lambda c: f"{c['line']}@{c['fetched_at']}")
def test_relative_date_lines(case: dict[str, Any]) -> None:
    fetched = datetime.fromisoformat(case["fetched_at"]) if case["fetched_at"] else None
    got = parse_relative_date(case["line"], fetched)
    if case["date"] is None:
        assert got is None
        return
    assert got is not None and got.tzinfo is not None
    assert got.date().isoformat() == case["date"]
    if "utc" in case:
        assert got.astimezone(UTC).isoformat() == case["utc"]


@pytest.mark.parametrize("case", CASES["bylines"], ids=lambda c: c["line"])
def test_byline_lines(case: dict[str, Any]) -> None:
    assert parse_byline(case["line"]) == case["expected"]


@pytest.mark.parametrize("case", CASES["syndication"], ids=lambda c: c["line"])
def test_syndication_lines(case: dict[str, Any]) -> None:
    texts, start = ([], case["line"]) if case.get("at_start") else ([case["line"]], "")
    assert original_publisher_of(texts, start) == case["expected"]


@pytest.mark.parametrize("case", CASES["signatures"], ids=lambda c: c["lines"][0][:40])
def test_signature_lines(case: dict[str, Any]) -> None:
    assert _best_publisher(_signature_publishers(case["lines"])) == case["expected"]


@pytest.mark.parametrize(("url", "expected"), [
    ("https://www.independent.co.uk/news/world/x.html", "Independent"),
    ("https://edition.cnn.com/2022/03/06/politics/x", "CNN"),
    ("http://businessinsider.com/a", "Businessinsider"),
    ("not a url", None),
    (None, None),
])
def test_publisher_from_url(url: str | None, expected: str | None) -> None:
    assert publisher_from_url(url) == expected


# ----------------------------------------------------------------------------- whole articles
STORY = (
    "The city council approved the budget on Tuesday after a long debate.\n\n"
    "Members said the plan would fund new schools and repair roads across the region.\n\n"
    "The mayor welcomed the vote."
)


def test_plain_text_head_becomes_title_subtitle_byline_and_date() -> None:
    head = "Council passes budget after marathon session\nSchools and roads win the most\n\nJane Doe\n"
    head += "Sunday 06 March 2022 10:58 EST\n\n"
    body = head + STORY
    result = describe_article(body, (), DescribeHints())
    meta = result.metadata
    assert meta.title == "Council passes budget after marathon session"
    assert meta.subtitle == "Schools and roads win the most"
    assert meta.byline == "Jane Doe"
    assert meta.published_at is not None and meta.published_at.date().isoformat() == "2022-03-06"
    assert meta.language == "en"
    # the standfirst is read into `subtitle` and kept in the body: it is the article's own text
    assert result.body == "Schools and roads win the most\n\n" + STORY
    cats = [(r.category, r.rule) for r in result.removals]
    assert cats == [("title", "head_title"), ("byline", "head_byline"), ("dateline", "head_date")]
    for r in result.removals:  # positions point at the removed text in the given body
        assert body[r.position : r.position + len(r.text)] == r.text


def test_a_story_sentence_is_never_taken_for_a_title() -> None:
    result = describe_article(STORY, (), DescribeHints())
    assert result.metadata.title is None and result.metadata.subtitle is None
    assert result.body == STORY and result.removals == ()


def test_a_single_line_document_keeps_its_line() -> None:
    text = "Markets rally as inflation cools"
    result = describe_article(text, (), DescribeHints())
    assert result.body == text and result.metadata.title is None


def test_hinted_title_wins_and_its_repeat_in_the_body_is_removed() -> None:
    body = "Council passes budget\n\n" + STORY
    result = describe_article(body, (), DescribeHints(title="Council passes budget"))
    assert result.metadata.title == "Council passes budget"
    assert result.body == STORY
    assert [r.rule for r in result.removals] == ["hint_title"]


def test_hinted_title_does_not_remove_a_different_first_line() -> None:
    body = "A different opening line here\n\n" + STORY
    result = describe_article(body, (), DescribeHints(title="Council passes budget"))
    assert result.body == body


def test_the_pages_own_headline_over_a_byline_goes_when_the_hinted_title_differs() -> None:
    """A feed's title worded otherwise than the headline printed over the story's "By" line: the headline
    stayed in the body and the byline under it was never read (a user trial). The container's title stays
    the title; a first line with no byline or date under it is still the story's."""
    body = "Harbour wall approved as storms batter coast\nBy Jane Field\n\n" + STORY
    result = describe_article(body, (), DescribeHints(title="Council approves new harbour wall after storms"))
    assert result.metadata.title == "Council approves new harbour wall after storms"
    assert result.metadata.byline == "Jane Field" and result.body == STORY
    assert [r.rule for r in result.removals] == ["head_title_other", "head_byline"]
    body = "Harbour wall approved as storms batter coast\nMarch 3, 2021\n\n" + STORY
    result = describe_article(body, (), DescribeHints(title="Council approves new harbour wall after storms"))
    assert result.body == STORY and result.metadata.published_at is not None


def test_hints_come_first() -> None:
    hints = DescribeHints(url="https://www.example-news.com/a", publisher="Example News Network",
                          author="Ann Author", published_at="2020-05-01T10:00:00+02:00")
    removals = (Removal("dateline", "dateline.line", "March 6, 2022", 0),)
    meta = describe_article(STORY, removals, hints).metadata
    assert meta.publisher == "Example News Network"
    assert meta.byline == "Ann Author"
    assert meta.published_at == datetime(2020, 5, 1, 8, 0, tzinfo=UTC)


def test_dateline_removal_gives_the_date_and_naive_dates_are_utc() -> None:
    removals = (Removal("dateline", "dateline.prefix_span", "date 2022-02-21", 1),)
    meta = describe_article(STORY, removals, DescribeHints()).metadata
    assert meta.published_at == datetime(2022, 2, 21, tzinfo=UTC)


def test_relative_date_only_without_an_absolute_one() -> None:
    fetched = datetime(2022, 3, 6, 12, 0, tzinfo=UTC)
    rel = (Removal("dateline", "dateline.line", "3 hours ago", 0),)
    meta = describe_article(STORY, rel, DescribeHints(fetched_at=fetched, seen_at=fetched)).metadata
    assert meta.published_at == datetime(2022, 3, 6, 9, 0, tzinfo=UTC)
    both = (*rel, Removal("dateline", "dateline.line", "March 1, 2022", 20))
    meta = describe_article(STORY, both, DescribeHints(fetched_at=fetched, seen_at=fetched)).metadata
    assert meta.published_at is not None and meta.published_at.date().isoformat() == "2022-03-01"
    assert describe_article(STORY, rel, DescribeHints()).metadata.published_at is None
    # A file's time (its fetched_at, when nothing says when the page was seen) dates no "3 hours ago":
    # it is when the file was copied, and a 2019 story would be dated this week.
    assert describe_article(STORY, rel, DescribeHints(fetched_at=fetched)).metadata.published_at is None


def test_future_dates_are_not_publication_dates() -> None:
    removals = (Removal("dateline", "dateline.line", "March 6, 2031", 0),)
    hints = DescribeHints(fetched_at=datetime(2022, 3, 6, tzinfo=UTC))
    assert describe_article(STORY, removals, hints).metadata.published_at is None


def test_publisher_from_signatures_and_domain() -> None:
    removals = (Removal("notification_prompt", "notification.prompt",
                        "Stay up to date with notifications from The Daily Planet", 0),)
    assert describe_article(STORY, removals, DescribeHints()).metadata.publisher == "The Daily Planet"
    # consistent with the domain: the signature's fuller form wins over the bare domain name
    hinted = DescribeHints(url="https://www.dailyplanet.example/story")
    assert describe_article(STORY, removals, hinted).metadata.publisher == "The Daily Planet"
    # inconsistent with the domain: the domain decides (the page is hosted there)
    other = DescribeHints(url="https://www.gazette.example/story")
    assert describe_article(STORY, removals, other).metadata.publisher == "Gazette"
    assert describe_article(STORY, (), DescribeHints(sitename="Site Name")).metadata.publisher == "Site Name"


def test_story_sentences_do_not_name_the_publisher() -> None:
    body = "The Washington Post is trusted by many, the senator said.\n\n" + STORY
    assert describe_article(body, (), DescribeHints()).metadata.publisher is None


def test_original_publisher_of_a_syndicated_copy() -> None:
    removals = (Removal("syndication", "syndication.original", "Read the original article at example insider", 9),)
    assert describe_article(STORY, removals, DescribeHints()).metadata.original_publisher == "Example Insider"
    wire = "LONDON (Reuters) - " + STORY
    assert describe_article(wire, (), DescribeHints()).metadata.original_publisher == "Reuters"
    own = DescribeHints(publisher="Reuters")
    assert describe_article(wire, (), own).metadata.original_publisher is None  # not a copy: its own story


def test_a_kicker_above_the_headline_is_no_title_and_leaves_the_body() -> None:
    headline = "Senate passes aid package after all-night session"
    body = f"Politics\n{headline}\nBy Melanie Zanona, CNN\n" + STORY
    described = describe_article(body, (), DescribeHints())
    assert (described.metadata.title, described.metadata.byline) == (headline, "Melanie Zanona")
    assert described.body.startswith("The city council") and described.removals[0].category == "kicker"
    # the page's own headline (HTML, JSON) under a flag: flag and repeated headline both leave the body
    flagged = describe_article(f"Exclusive\n{headline}\n" + STORY, (), DescribeHints(title=headline))
    assert flagged.body.startswith("The city council") and flagged.metadata.title == headline
    suffixed = describe_article(f"Politics\n{headline}\n" + STORY, (), DescribeHints(title=f"{headline} - BBC News"))
    assert suffixed.body.startswith("The city council") and suffixed.metadata.title == headline
    # an interview's first question is no headline: nothing taken
    qa = "Q&A\nWhat did you see?\nI saw the fire from my window.\n" + STORY
    assert describe_article(qa, (), DescribeHints()).body == qa


def test_a_role_the_page_lists_as_an_author_is_no_byline() -> None:
    # trafilatura's author for "By Gareth Hughes, Consumer Affairs Correspondent" in two meta tags
    hints = DescribeHints(author="Gareth Hughes; Consumer Affairs Correspondent")
    assert describe_article(STORY, (), hints).metadata.byline == "Gareth Hughes"
    assert describe_article(STORY, (), DescribeHints(author="Ann Lee; Bo Park")).metadata.byline == "Ann Lee; Bo Park"
    # NewsAPI's `author` is often the outlet or its social page: no byline
    for given in ("https://www.facebook.com/bbcnews", "BBC News", "Reuters"):
        assert describe_article(STORY, (), DescribeHints(author=given)).metadata.byline is None, given


def test_a_given_title_loses_its_site_suffix() -> None:
    # NewsAPI's and feeds' titles end with the site; the body may repeat the title either way
    hinted = "Sunak calls July general election - BBC News"
    for first in (hinted, "Sunak calls July general election"):
        described = describe_article(f"{first}\n" + STORY, (), DescribeHints(title=hinted))
        assert described.metadata.title == "Sunak calls July general election"
        assert described.body.startswith("The city council")
    plain = DescribeHints(title="Obama: Yes We Can - Speech in Full")
    assert describe_article(STORY, (), plain).metadata.title == "Obama: Yes We Can - Speech in Full"


def test_a_date_is_no_original_publisher() -> None:
    # "First published on <date>" names when, not where: CBS's own pages were syndicated from a date.
    for tail in ("First published on November 19, 2019 / 8:16 AM", "First published Nov 20, 2019 01:38 pm"):
        assert original_publisher_of([tail], "") is None, tail
    assert original_publisher_of(["This article was first published on The Conversation."], "") == \
        "The Conversation"


def test_language() -> None:
    assert detect_language(STORY) == "en"
    assert detect_language("Le conseil municipal a approuvé le budget mardi après un long débat.") == "fr"
    assert detect_language("ok") is None


def test_seeds_metadata() -> None:
    seeds = SHARED / "seeds"
    if not seeds.exists():
        pytest.skip(f"{seeds} is absent: ../shared is not beside this checkout")
    from newsetl.text.clean import clean_text, load_rules
    from newsetl.text.repair import repair_text

    rules = load_rules(())
    meta = {}
    for path in sorted(seeds.glob("*.txt")):
        cleaned = clean_text(repair_text(path.read_text("utf-8")).text, rules, titles=(), learned=frozenset())
        meta[path.name[:3]] = describe_article(cleaned.body, cleaned.removals, DescribeHints()).metadata
    assert "Russia has list of Ukrainians" in (meta["000"].title or "")
    assert "Independent" in (meta["000"].publisher or "")
    assert "Independent" in (meta["004"].publisher or "")
    assert meta["004"].byline == "John Bowden"
    assert meta["004"].published_at is not None and meta["004"].published_at.date().isoformat() == "2022-03-06"
    assert meta["001"].published_at is not None and meta["001"].published_at.date().isoformat() == "2022-02-21"
    assert meta["003"].original_publisher == "Business Insider"
    assert meta["002"].title is None  # a caption-led story has no headline line


def test_heldout_and_dev_metadata_sets_meet_the_targets() -> None:
    """Per field on invented articles (tests/data/describe_{dev,heldout}.json), the whole text path."""
    import importlib.util

    path = Path(__file__).parents[2] / "bench" / "describe_heldout.py"
    spec = importlib.util.spec_from_file_location("describe_heldout", path)
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    for name in ("describe_dev.json", "describe_heldout.json", "describe_heldout2.json"):
        result = bench.score(Path(__file__).parents[1] / "data" / name)
        assert result["share"] >= 0.9, result


# ----------------------------------------------------------------------------- issue 15, round 3
@pytest.mark.parametrize(("line", "names", "outlet"), [
    ("By MARTA KOWALCZYK and DEREK HALLORAN Associated Press", "Marta Kowalczyk and Derek Halloran",
     "Associated Press"),
    ("Nadia Rahman Environment correspondent", "Nadia Rahman", None),
    ("Analysis by Rebecca Thornton, CNN", "Rebecca Thornton", "CNN"),
    ("By Akira Tanaka on Jun 2, 2023", "Akira Tanaka", None),
    ("By Ravi Menon | NJ Advance Media for NJ.com", "Ravi Menon", "NJ.com"),
    ("Carolyn Ashby, The Washington Post", "Carolyn Ashby", "The Washington Post"),
    ("By Sandra Okonjo, Staff Writer", "Sandra Okonjo", None),
    ("Priya Venkataraman, University of Leeds", "Priya Venkataraman", None),  # an affiliation, not an outlet
    ("Discover Thomson Reuters", None, None),  # no "By": an outlet after words is no byline
    ("Sioux Falls Argus Leader", None, None),
])
def test_bylines_with_roles_wires_and_outlets(line: str, names: str | None, outlet: str | None) -> None:
    from newsetl.text.describe import byline_outlet

    assert parse_byline(line) == names
    assert byline_outlet(line) == outlet


@pytest.mark.parametrize(("line", "names"), [
    # Without "By", capitalised words are not enough: German capitalises nouns, and labels, kickers and
    # headings sit where a byline would (made-up lines of those kinds).
    ("Kommende Termine", None),
    ("Betriebliche Gesundheitsvorsorge", None),
    ("Install Kafka Connect", None),
    ("Das große Missverständnis", None),
    ("| Testnote Sehr gut | 1,4 |", None),
    ("Von Mietrecht, Nebenkosten und «fairen Preisen»", None),  # German "von" is also "about"
    ("Por Agencia Central", None),  # Spanish "por" is also "through"
    # A known given name first, or an English "by", or an initial.
    ("Lena Hartmann", "Lena Hartmann"),
    ("Jean-Luc Moreau und Anna-Lena Voss", "Jean-Luc Moreau und Anna-Lena Voss"),
    ("von Inga Petersen", "Inga Petersen"),
    ("| von Inga Petersen", "Inga Petersen"),  # a table cell
    ("Van Morrison Tribute Night", None),  # "Van" is on Faker's lists, and a particle
    ("Dr. Miriam Okafor", "Dr. Miriam Okafor"),
    ("J.R. Whitfield", "J.R. Whitfield"),
    ("By Zephyrine Quallsworth", "Zephyrine Quallsworth"),  # "By" vouches for a name no list knows
    ("Zephyrine Quallsworth", None),
])
def test_a_bare_byline_needs_a_given_name(line: str, names: str | None) -> None:
    assert parse_byline(line) == names


@pytest.mark.parametrize(("first", "title"), [
    ("Mo, 09:15 Uhr", None),  # a time line
    ("Archived copy - https://archive.example.org/web/2007/page.html", None),  # a web address
    ("UN: 5 Tote bei Erdrutsch", "UN: 5 Tote bei Erdrutsch"),  # figures, but mostly words
    ("Patch Notes 2.14.1", "Patch Notes 2.14.1"),
])
def test_a_time_or_url_line_is_no_plain_text_title(first: str, title: str | None) -> None:
    body = (f"{first}\n\nThe council met on Tuesday evening and approved the plan after a long debate about "
            "its cost, which several members said was far higher than first expected.\n\nA second vote is "
            "planned for next month, when the final figures from the county are due.")
    result = describe_article(body, (), DescribeHints())
    assert result.metadata.title == title
    assert (first in result.body) == (title is None)


def test_given_names_list_holds_names_not_words() -> None:
    from newsetl.text.describe import given_names

    names = given_names()
    assert len(names) > 20_000 and all(n == n.casefold() and " " not in n for n in names)
    assert {"anna", "jean-luc", "mohammed", "олег", "ivan"} <= names
    assert not {"install", "kommende", "betriebliche", "die", "the"} & names


@pytest.mark.parametrize(("title", "headline"), [
    ("Council approves budget with 4% tax rise - Harborview Daily News", "Council approves budget with 4% tax rise"),
    ("Storm knocks out power to 80,000 homes | Lakeshore Tribune", "Storm knocks out power to 80,000 homes"),
    ("The Guardian view on Hong Kong: a city on the brink | Editorial | Opinion | The Guardian",
     "The Guardian view on Hong Kong: a city on the brink"),
    ("Doobie Brothers to reunite for Blossom show - cleveland.com", "Doobie Brothers to reunite for Blossom show"),
    ("Biden signs the bill - report", "Biden signs the bill - report"),  # lower case: part of the headline
    ("War in Ukraine - Day 300", "War in Ukraine - Day 300"),  # a number: not a site
    ("Interview - The Batman", "Interview - The Batman"),  # one word before it: not a headline
])
def test_a_site_name_after_a_headline_is_cut(title: str, headline: str) -> None:
    from newsetl.text.describe import _without_site_suffix

    assert _without_site_suffix(title) == headline


def test_dates_in_other_languages_revisions_and_day_first_numbers() -> None:
    from newsetl.text.describe import _date_line, _label_pieces

    fr = "Publié le 3 mars 2022 à 8h15, mis à jour le 4 mars 2022 à 10h00"
    assert _date_line(fr) and _date_line("Veröffentlicht am 03.03.2023 | Lesedauer: 3 Minuten")
    assert [str(parse_date(p, languages=("en", "fr")).date()) for p in _label_pieces(fr)] == ["2022-03-03",
                                                                                              "2022-03-04"]
    assert not _date_line("The report was published on 4 May 2022 and found nothing new.")
    assert parse_date("Actualizado 12/03/2023 - 10:45", languages=("en", "es")).date().isoformat() == "2023-03-12"
    assert parse_date("Last updated: 02/03/2023 16:40").date().isoformat() == "2023-02-03"  # English: month first
    assert parse_date("Published 25/03/2023").date().isoformat() == "2023-03-25"  # 25 cannot be a month
    assert parse_date("Stand: 12.04.2023 10:15 Uhr").date().isoformat() == "2023-04-12"  # dots: day first


@pytest.mark.parametrize(("line", "instant"), [
    ("Updated 6:12 AM ET, Tue February 13, 2024", "2024-02-13T11:12:00+00:00"),
    ("Published 3:45 PM EDT, March 4, 2024", "2024-03-04T19:45:00+00:00"),
    ("11:30 GMT 3 March 2024", "2024-03-03T11:30:00+00:00"),
    ("March 4, 2024 3:45 PM EDT", "2024-03-04T19:45:00+00:00"),  # the time after the date, as before
    ("Posted at 10.15 on 3 March 2024", "2024-03-03T00:00:00+00:00"),  # no a.m./p.m., no zone: no time
    ("The 10:30 at Ascot, March 5, 2024", "2024-03-05T00:00:00+00:00"),  # "at" is no zone
])
def test_a_time_written_before_its_date_is_kept(line: str, instant: str) -> None:
    dt = parse_date(line)
    assert dt is not None and dt.astimezone(UTC).isoformat() == instant


@pytest.mark.parametrize(("tail", "original"), [
    ("©2023 Chicago Tribune. Visit chicagotribune.com. Distributed by Tribune Content Agency, LLC.", "Chicago Tribune"),
    ("Copyright 2024 NPR. To see more, visit https://www.npr.org.", "NPR"),
    ("Copyright 2023 The Associated Press. All rights reserved.", "Associated Press"),
    ("© 2023 Lakeside Radio. All rights reserved.", None),  # the page's own footer
    ("This material may not be published, broadcast, rewritten, or redistributed. ©2019 FOX News Network, LLC.",
     None),  # Fox News's own pages carry the wire's notice too
])
def test_copyright_tails_of_syndicated_copies(tail: str, original: str | None) -> None:
    from newsetl.text.describe import original_publisher_of

    assert original_publisher_of([tail], "") == original


@pytest.mark.parametrize(("start", "original"), [
    ("Hamburg (dpa) - Der Hafen hat weniger umgeschlagen.", "dpa"),
    ("Valencia, 21 sep (EFE).- Las lluvias han obligado a evacuar.", "EFE"),
    ("New Delhi, Aug 4 (PTI) The Supreme Court on Friday asked.", "PTI"),
    ("The mayor (Labour) said the plan would go ahead.", None),  # a party in brackets is no wire
])
def test_agency_datelines(start: str, original: str | None) -> None:
    from newsetl.text.describe import original_publisher_of

    assert original_publisher_of([], start) == original


def test_a_container_date_in_unix_time_is_read() -> None:
    # JSON exports write dates as Unix time, in seconds or (JavaScript) milliseconds
    noon = datetime(2024, 6, 12, tzinfo=UTC)
    for value, expected in (("1718150400", noon), ("1718150400000", noon),
                            ("1718150400.5", noon.replace(microsecond=500000))):
        assert describe_article(STORY, (), DescribeHints(published_at=value)).metadata.published_at == expected
    # not a date: a number too small to be a news story's time, or one in the future (2100)
    for value in ("0", "12345", "4102444800"):
        assert describe_article(STORY, (), DescribeHints(published_at=value)).metadata.published_at is None, value


@pytest.mark.parametrize(("author", "byline"), [
    ("View all posts by Daniel Lemire", "Daniel Lemire"),  # an author link's text
    ("Www Medianotions De", None),  # a web address trafilatura title-cased
    ("Wegewerk Gmbh", None), ("Acme Media Inc.", None),  # the agency or the house, no person
    ("A Realistic Reading of the Multiplier", None),  # the headline, put in the author field by a theme
    ("Self Made Living", None),  # the site's name
    ("Maria Sa", "Maria Sa"), ("Jane Roe; Staff Writer", "Jane Roe"),
])
def test_an_author_field_that_names_no_person_gives_no_byline(author: str, byline: str | None) -> None:
    hints = DescribeHints(author=author, title="A Realistic Reading of the Multiplier", sitename="Self made living",
                          content_type="html")
    assert describe_article(STORY, (), hints).metadata.byline == byline


def test_footer_links_name_no_publisher() -> None:
    # "Copyright Policy" and "Subscribe to Newsletter" are links of the page, not its outlet
    removals = (Removal("copyright", "copyright.line", "Copyright Policy", 400),
                Removal("newsletter", "newsletter.line", "Subscribe to Newsletter", 420))
    assert describe_article(STORY, removals, DescribeHints()).metadata.publisher is None
    named = (Removal("copyright", "copyright.line", "Copyright 2024 Valley Gazette", 400),)
    assert describe_article(STORY, named, DescribeHints()).metadata.publisher == "Valley Gazette"


@pytest.mark.parametrize(("line", "publisher"), [
    ("Subscribe to NJ.com’s newsletters.", "NJ.com"),  # a user trial: 9 articles under "NJ.com's"
    ("Support The Harbour Gazette's journalism today.", "The Harbour Gazette"),
    ("Subscribe to Barron's.", "Barron's"),  # a name that ends in 's keeps it
])
def test_a_possessive_before_a_noun_is_not_part_of_the_outlets_name(line: str, publisher: str) -> None:
    removals = (Removal("newsletter", "newsletter.line", line, 400),)
    assert describe_article(STORY, removals, DescribeHints()).metadata.publisher == publisher


@pytest.mark.parametrize(("line", "publisher"), [
    ("© RIPRODUZIONE RISERVATA", None), ("© Tous droits réservés", None), ("© Alle Rechte vorbehalten", None),
    ("© Todos los derechos reservados", None),
    ("© Copyright 2024 Rheinischer Bote – Alle Rechte vorbehalten", "Rheinischer Bote"),
])
def test_all_rights_reserved_in_any_language_names_no_publisher(line: str, publisher: str | None) -> None:
    removals = (Removal("copyright", "copyright.line", line, 400),)
    assert describe_article(STORY, removals, DescribeHints()).metadata.publisher == publisher


def test_a_wire_under_its_short_name_or_domain_is_no_copy_of_itself() -> None:
    # A user trial: AP's own story with publisher "AP" (or its domain apnews.com) was marked a syndicated
    # copy of "Associated Press", so dedup ranked it with the reprints instead of ahead of them.
    ap = "WASHINGTON (AP) — " + STORY
    for own in ("AP", "apnews.com", "Associated Press", "The Associated Press"):
        meta = describe_article(ap, (), DescribeHints(publisher=own)).metadata
        assert meta.original_publisher is None, own
    meta = describe_article(ap, (), DescribeHints(url="https://apnews.com/article/x")).metadata
    assert meta.original_publisher is None
    reuters = "LONDON (Reuters) - " + STORY
    for own in ("Thomson Reuters", "reuters.com"):
        assert describe_article(reuters, (), DescribeHints(publisher=own)).metadata.original_publisher is None, own
    afp = "PARIS (AFP) - " + STORY
    assert describe_article(afp, (), DescribeHints(publisher="Agence France-Presse")).metadata.original_publisher \
        is None
    # a reprint still names its wire
    for reprint, copy in (("Seattle Times", ap), ("apnews-fan.example", ap), ("AFP Fan Club", afp)):
        assert describe_article(copy, (), DescribeHints(publisher=reprint)).metadata.original_publisher is not None
