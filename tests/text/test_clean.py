"""Tests of the boilerplate cleaner (newsetl.text.clean) and its pattern library (schemas/rules)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsetl.text.clean import clean_text
from newsetl.text.lines import is_story_line, normalize_line
from newsetl.text.rules import DEFAULT_RULES_PATH, Rule, RulesError, Ruleset, load_rules

SHARED = Path(__file__).resolve().parents[3] / "shared"
needs_shared = pytest.mark.skipif(not (SHARED / "seeds").is_dir(),
                                  reason="../shared (seeds and eval sets) is not next to the repo")

STORY = [
    "The council approved the budget on Tuesday after a debate that lasted more than six hours.",
    "Opponents said the plan would raise taxes for families who can least afford it this winter.",
    "“We will not stop fighting this,” said the leader of the opposition, who voted against it.",
    "The mayor said the savings would pay for repairs to roads, schools and two hospitals.",
    "A final vote on the spending details is expected before the end of the month, officials said.",
]


@pytest.fixture(scope="module")
def rules() -> Ruleset:
    return load_rules()


def body_of(text: str, rules: Ruleset, **kw: object) -> str:
    return clean_text(text, rules, **kw).body  # type: ignore[arg-type]


def rule_ids(text: str, rules: Ruleset, **kw: object) -> list[str]:
    return [r.rule for r in clean_text(text, rules, **kw).removals]  # type: ignore[arg-type]


# ------------------------------------------------------------------------------- the library itself
def _context(rule: Rule, example: str) -> str:
    """Put an example where its rule applies: story before it, and a section/tail rule at the end."""
    if rule.scope in ("section", "tail"):
        return "\n".join([*STORY, example])
    if rule.scope == "head":
        return "\n".join([example, *STORY])
    return "\n".join([STORY[0], STORY[1], example, STORY[2]])


def test_library_loads_with_documented_format(rules: Ruleset) -> None:
    data = json.loads(DEFAULT_RULES_PATH.read_text(encoding="utf-8"))
    assert data["_about"], "the file format is documented in the file itself"
    assert len(rules.rules) >= 40
    assert {"donation_appeal", "ad_marker", "comment_prompt", "newsletter", "login_prompt",
            "notification_prompt", "share_social", "related_links", "caption", "photo_credit", "syndication",
            "dateline", "copyright", "paywall", "cookie_notice", "navigation"} <= rules.categories


@pytest.mark.parametrize("rule_id", [r.id for r in load_rules().rules])
def test_every_rule_removes_its_examples_and_keeps_its_counter_examples(rules: Ruleset, rule_id: str) -> None:
    rule = rules.rule(rule_id)
    assert rule.examples, f"{rule_id}: every library rule carries examples (they are its tests)"
    for example in rule.examples:
        # The rule's own pattern matches the example (an earlier rule may get to the line first) ...
        matcher = rule.regex.fullmatch if rule.match == "full" and rule.scope != "span" else rule.regex.search
        assert matcher(example.strip().removeprefix("- ")), f"{rule_id}: pattern misses {example!r}"
        # ... and in a story the example goes while the story around it stays.
        result = clean_text(_context(rule, example), rules)
        assert result.removals, f"nothing removed around {example!r}"
        assert example not in result.body, f"{rule_id}: {example!r} was not removed"
        for line in STORY[:2]:
            assert line in result.body, f"{rule_id}: story lost around {example!r}"
    for keep in rule.keep:
        assert clean_text(keep, rules).body == keep, f"{rule_id} must not touch {keep!r}"


def test_keyword_index_keeps_always_tried_rules_few(rules: Ruleset) -> None:
    # Rules without keywords run on every line; the library keeps them to a handful of cheap patterns.
    assert len(rules.always) <= 6
    for rule in rules.rules:
        assert rule.keywords, rule.id


def test_rules_are_general_no_dev_set_site_names() -> None:
    text = DEFAULT_RULES_PATH.read_text(encoding="utf-8").casefold()
    for site in ("the independent", "nytimes", "macrumors", "business insider", "reuters trust", "cbs",
                 "fox news", "inexhibit", "livescience", "space.com", "water coolest", "nj.com"):
        assert site not in text, f"the library names a site: {site}"


# ---------------------------------------------------------------------------------- span behaviour
def test_glued_appeal_is_cut_at_the_boundary_keeping_the_story(rules: Ruleset) -> None:
    text = ("Your support makes all the difference.Russia is compiling a list of officials, the United "
            "States has reportedly told the United Nations.")
    result = clean_text(text, rules)
    assert result.body == ("Russia is compiling a list of officials, the United States has reportedly told "
                           "the United Nations.")
    (removal,) = result.removals
    assert (removal.category, removal.text, removal.position) == (
        "donation_appeal", "Your support makes all the difference.", 0)


def test_date_prefix_is_cut_and_kept_verbatim_for_describe(rules: Ruleset) -> None:
    text = " date 2022-02-21 In the latest revelation about the conflict, officials wrote a letter."
    result = clean_text(text, rules)
    assert result.body == "In the latest revelation about the conflict, officials wrote a letter."
    (removal,) = result.removals
    assert (removal.category, removal.text) == ("dateline", "date 2022-02-21")
    assert text[removal.position:removal.position + len(removal.text)] == removal.text


def test_span_inside_a_sentence_is_not_cut(rules: Ruleset) -> None:
    # "updated" + a date inside a sentence is content, not a dateline glued to content.
    text = "The company said the figures were updated on March 3, 2021 and again last week after the audit."
    assert body_of(text, rules) == text


# ----------------------------------------------------------------------------- line-level behaviour
@pytest.mark.parametrize(("line", "category"), [
    ("Sunday 06 March 2022 10:58 EST", "dateline"),
    ("Read the original article at Example Insider", "syndication"),
    ("IMAGE: AP", "photo_credit"),
    ("- Advertisement -", "ad_marker"),
    ("Rescue workers search the rubble of the market in the city centre (Photo: Getty)", "caption"),
    ("A woman walks past a damaged school in the town, Ukraine Oct. 11, 2022. REUTERS/Jane Roe", "caption"),
    ("Stay up to date with notifications from The Daily Planet", "notification_prompt"),
    ("Thank you for registering", "login_prompt"),
])
def test_boilerplate_line_categories(rules: Ruleset, line: str, category: str) -> None:
    result = clean_text("\n".join([STORY[0], line, STORY[1]]), rules)
    assert [(r.category, r.text) for r in result.removals] == [(category, line)]
    assert result.body == "\n".join([STORY[0], STORY[1]])


def test_wire_caption_above_a_split_credit_goes_with_it(rules: Ruleset) -> None:
    # Repair may split "…2022.Evgeny Example/AP" into two lines; the caption still goes.
    text = "\n".join([STORY[0], "Graves in a cemetery near the recaptured town of Izium, Ukraine, "
                      "September 17, 2022.", "Jane Roe/AP", "", STORY[1]])
    result = clean_text(text, rules)
    assert [r.category for r in result.removals] == ["caption", "photo_credit"]
    assert result.body == f"{STORY[0]}\n\n{STORY[1]}"


@pytest.mark.parametrize("line", [
    "John Bowden",  # bylines are the describe stage's
    "Biden Ready To Engage With Putin In Any Format: Blinken",  # a subheading
    "However he added that “everything we are seeing suggests that this is dead serious”.",
    "The U.S. economy grew 2.1% in the quarter, see https://example.org/report for details.",
    "When his girlfriend asked why he wasn’t taken prisoner, he replied:",
    "Many people share their photos on Facebook and Twitter every day, the survey found.",
    "Residents were asked to sign up for the city’s flood alerts by the end of the month.",
    "The new rules on cookies and tracking take effect in May, the regulator said in a statement.",
    "Related companies reported higher profits in the third quarter than a year earlier.",
])
def test_story_lines_are_kept(rules: Ruleset, line: str) -> None:
    text = "\n".join([STORY[0], line, STORY[1]])
    assert body_of(text, rules) == text


def test_paragraph_between_two_ad_markers_is_kept(rules: Ruleset) -> None:
    text = "\n".join([STORY[0], "Advertisement", "It was short.", "Advertisement", STORY[1]])
    assert body_of(text, rules) == "\n".join([STORY[0], "It was short.", STORY[1]])


def test_text_without_boilerplate_is_returned_unchanged(rules: Ruleset) -> None:
    text = "\n\n".join(STORY)
    result = clean_text(text, rules)
    assert result.body == text and result.removals == ()


def test_weak_rule_spares_a_story_sentence_but_strong_rule_does_not(rules: Ruleset) -> None:
    # "click here" is weak: a short call to action goes, a story sentence that mentions it stays.
    assert body_of("Click here to get the app", rules) == ""
    sentence = "Voters who click here and there on the ballot website were confused, officials said."
    assert body_of(sentence, rules) == sentence
    # "Your donation allows us to…" is strong: it goes even though it reads like a sentence.
    assert body_of("Your donation allows us to keep sending journalists to speak to both sides.", rules) == ""


def test_titles_are_never_removed(rules: Ruleset) -> None:
    headline = "Related: The week in pictures from the summit"
    text = "\n".join([headline, *STORY])
    assert body_of(text, rules).startswith("\n".join(STORY))
    assert body_of(text, rules, titles=[headline]) == text


def test_block_takes_link_titles_and_stops_at_the_story(rules: Ruleset) -> None:
    text = "\n".join([STORY[0], STORY[1], "You may also like:", "Who will win the cup in 2024?",
                      "Five things to know about the new stadium", STORY[2]])
    result = clean_text(text, rules)
    assert result.body == "\n".join([STORY[0], STORY[1], STORY[2]])
    assert {r.category for r in result.removals} == {"related_links"}


def test_donation_block_needs_its_closing_line(rules: Ruleset) -> None:
    appeal = ["Your support helps us to tell the story",
              "From local politics to climate change, our reporters are on the ground when it matters."]
    closed = "\n".join([*appeal, "Your support makes all the difference.", *STORY])
    assert body_of(closed, rules) == "\n".join(STORY)
    # Without the closing line the header goes but the paragraph after it is not presumed boilerplate.
    unclosed = "\n".join([*appeal, *STORY])
    assert body_of(unclosed, rules) == "\n".join([appeal[1], *STORY])


def test_comment_section_late_takes_the_rest_early_only_itself(rules: Ruleset) -> None:
    comments = ["3 Comments", "Great piece, thank you for writing it.",
                "I could not disagree more with this."]
    late = "\n".join([*STORY, *comments])
    result = clean_text(late, rules)
    assert result.body == "\n".join(STORY)
    assert [r.category for r in result.removals] == ["comment_prompt", "comments", "comments"]
    early = "\n".join(["Council backs budget", "Jane Roe", "Comments", *STORY])
    assert body_of(early, rules) == "\n".join(["Council backs budget", "Jane Roe", *STORY])


def test_share_bar_comments_link_does_not_take_the_story(rules: Ruleset) -> None:
    # Page chrome and teasers before a share bar with "Comments", then the article: no sweep.
    teasers = [f"Teaser {n} says the markets fell sharply again on Monday, traders said." for n in range(6)]
    text = "\n".join([*teasers, "Facebook", "Twitter", "Comments", *STORY, *STORY])
    body = body_of(text, rules)
    assert "\n".join(STORY) in body and "Comments" not in body.splitlines()


def test_headline_after_a_comment_header_stops_the_sweep(rules: Ruleset) -> None:
    text = "\n".join([*STORY, "12 comments", "Council backs budget", *STORY])
    assert body_of(text, rules, titles=["Council backs budget"]).endswith("\n".join(STORY))


def test_hard_wrapped_paragraph_under_a_header_is_not_a_link_list(rules: Ruleset) -> None:
    wrapped = ["Read more:", "The drive is no slouch. Running the disk speed test after the machine",
               "had been indexing for two days, we saw a write speed of 2890 megabytes",
               "per second on both models."]
    text = "\n".join([STORY[0], *wrapped, STORY[1]])
    assert body_of(text, rules) == "\n".join([STORY[0], *wrapped[1:], STORY[1]])


def test_sandwiched_widget_line_and_trailing_lists(rules: Ruleset) -> None:
    text = "\n".join([*STORY, "Sports Daily Newsletter", "Get the best of the week’s games and picks.",
                      "Thanks for signing up!", "- Five things we learned on Sunday",
                      "- Power rankings after week 12"])
    result = clean_text(text, rules)
    assert result.body == "\n".join(STORY)
    assert [r.rule for r in result.removals][-2:] == ["tail_list", "tail_list"]


def test_trailing_headline_style_links_go_but_an_introduced_list_stays(rules: Ruleset) -> None:
    links = ["- 15 Amazing Images of Distant Stars", "- Eleven Fascinating Facts About Our Galaxy"]
    assert body_of("\n".join([*STORY, *links]), rules) == "\n".join(STORY)
    introduced = "\n".join([*STORY, "The winners of the national prizes were:", *links])
    assert body_of(introduced, rules) == introduced


def test_a_headline_in_the_tail_is_kept_but_does_not_shield_link_lists(rules: Ruleset) -> None:
    promo = "Join our Free Prize Challenge"
    text = "\n".join([*STORY, "Thanks for signing up!", promo, "- Five things we learned on Sunday"])
    assert body_of(text, rules, titles=[promo]) == "\n".join([*STORY, promo])


def test_a_one_cell_table_row_of_chrome_goes_a_table_of_data_stays(rules: Ruleset) -> None:
    # trafilatura writes a page's layout tables as "| cell |" rows: the rules read the cell's text
    for row in ("| Kommentare insgesamt: 0 | |", "| Weitere Artikel zum Thema |", "| | Tags: budget, taxes |"):
        result = clean_text("\n".join([STORY[0], row, STORY[1]]), rules)
        assert [r.text for r in result.removals] == [row]
    table = "\n".join([STORY[0], "| Party | Seats |", "| Labour | 12 |", "| Tags | 3 |", STORY[1]])
    assert body_of(table, rules) == table


def test_story_bullet_list_is_kept(rules: Ruleset) -> None:
    text = "\n".join([STORY[0], "What you need:", "- two ripe pears", "- a lemon", STORY[1],
                      "- Boil for ten minutes, then let the jars cool overnight."])
    assert body_of(text, rules) == text


def test_body_has_no_leading_trailing_or_repeated_blank_lines(rules: Ruleset) -> None:
    text = ("Advertisement\n\n\n" + STORY[0] + "\n\nAdvertisement\n\n" + STORY[1]
            + "\n\nShare this article\n\n")
    assert body_of(text, rules) == f"{STORY[0]}\n\n{STORY[1]}"


# ----------------------------------------------------------------------------------------- learned
def test_learned_lines_go_unless_guarded(rules: Ruleset) -> None:
    footer = "The Daily Planet is an independent newspaper serving the valley since 1901."
    long_story = ("The Daily Planet reported on Monday that the mayor had met the developers three times "
                  "before the council vote, and that the minutes of those meetings were never published.")
    learned = frozenset({normalize_line(footer), normalize_line(long_story), normalize_line(STORY[0])})
    text = "\n".join([STORY[0], STORY[1], long_story, footer])
    result = clean_text(text, rules, learned=learned, titles=[STORY[0]])
    assert [(r.category, r.rule, r.text) for r in result.removals] == [("learned", "learned", footer)]
    assert result.body == "\n".join([STORY[0], STORY[1], long_story])


def test_normalize_line_ignores_digits_case_and_punctuation() -> None:
    assert normalize_line("© 2019 Acme Inc. All rights reserved.") == "acme inc all rights reserved"
    assert normalize_line("© 2021 ACME inc — all   rights reserved") == "acme inc all rights reserved"
    assert normalize_line("12 Comments") == normalize_line("3 comments") == "comments"
    assert normalize_line("Ünïcödé  Straße") == "ünïcödé strasse"
    assert normalize_line("Notícias do Brasil") != normalize_line("Noticias de Portugal")


def test_is_story_line() -> None:
    assert is_story_line(STORY[2])
    assert is_story_line("Pois bem, aqui nos Estados Unidos isso é muito comum, e acontece de forma lúdica.")
    assert not is_story_line("Dave Matthews Band takes over Rock Hall Fan Vote")
    assert not is_story_line("Read more.")
    assert not is_story_line("Photo: Jane Roe, John Doe, Sam Poe, Example Agency, Getty Images, Reuters.")


# ------------------------------------------------------------------------------- user rules files
def write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_user_file_adds_rules_categories_and_protects_lines(tmp_path: Path) -> None:
    user = write(tmp_path, "mine.json", {
        "categories": ["house_ad"],
        "rules": [{"id": "mine.podcast", "category": "house_ad", "pattern": "catch our .{1,40} podcast",
                   "keywords": ["podcast"]}],
        "protect": [{"id": "mine.keep_disclosure", "pattern": "^Disclosure:"}],
        "disable": ["ad.marker"],
    })
    rules = load_rules([user])
    text = "\n".join([STORY[0], "Catch our morning politics podcast", "Advertisement",
                      "Disclosure: we may earn a commission from some of the products on this page.",
                      STORY[1]])
    result = clean_text(text, rules)
    assert [(r.category, r.rule) for r in result.removals] == [("house_ad", "mine.podcast")]
    assert "Advertisement" in result.body and "Disclosure:" in result.body
    # the library alone removes both the ad marker and the affiliate disclosure
    assert "Disclosure:" not in body_of(text, load_rules())


def test_user_file_settings_override_the_defaults(tmp_path: Path) -> None:
    text = "\n".join([*STORY, "Jane Roe contributed reporting from Lisbon.", STORY[0]])
    assert "contributed" not in body_of(text, load_rules())  # within the default 8 tail lines
    narrow = load_rules([write(tmp_path, "s.json", {"settings": {"tail_lines": 1}})])
    assert narrow.settings.tail_lines == 1
    assert "contributed" in body_of(text, narrow)  # no longer in the tail: a tail rule does not apply


def test_ruleset_digest_says_what_the_rules_do_not_where_they_were_read(tmp_path: Path) -> None:
    rule = {"id": "mine.promo", "category": "promo", "pattern": "buy our mugs", "keywords": ["mugs"]}
    a = load_rules([write(tmp_path, "a.json", {"rules": [rule]})])
    b = load_rules([write(tmp_path, "b.json", {"_about": "another comment", "rules": [rule]})])
    assert a.digest == b.digest != load_rules().digest  # the same rules under another path and comment
    # What changes a removal changes the digest: the pattern, an option, a setting, a protect pattern.
    for other in ({"rules": [{**rule, "pattern": "buy our cups"}]}, {"rules": [{**rule, "max_words": 5}]},
                  {"rules": [rule], "settings": {"tail_lines": 3}},
                  {"rules": [rule], "protect": [{"id": "keep.mugs", "pattern": "mugs for sale"}]}):
        assert load_rules([write(tmp_path, "c.json", other)]).digest != a.digest
    mine = a.definitions[-1]
    assert (mine["rule_id"], mine["priority"], mine["source"], mine["pattern"]) == (
        "mine.promo", len(a.rules) - 1, str(tmp_path / "a.json"), "buy our mugs")
    assert {d["source"] for d in a.definitions[:-1]} == {"library"}


@pytest.mark.parametrize(("data", "message"), [
    ({"rules": [{"id": "bad.regex", "category": "promo", "pattern": "(unclosed", "keywords": ["x"]}]},
     "rule 'bad.regex': bad regular expression"),
    ({"rules": [{"id": "bad.cat", "category": "nonsense", "pattern": "x", "keywords": ["x"]}]},
     "rule 'bad.cat': unknown category 'nonsense'"),
    ({"rules": [{"id": "bad.scope", "category": "promo", "scope": "page", "pattern": "x"}]},
     "rule 'bad.scope': unknown scope 'page'"),
    ({"rules": [{"category": "promo", "pattern": "x"}]}, "rule #0 has no 'id'"),
    ({"rules": [{"id": "ad.marker", "category": "promo", "pattern": "x"}]}, "rule 'ad.marker': duplicate id"),
    ({"rules": [{"id": "twice", "category": "promo", "pattern": "x"},
                {"id": "twice", "category": "promo", "pattern": "y"}]}, "rule 'twice': duplicate id"),
    ({"rules": [{"id": "bad.kw", "category": "promo", "pattern": "x", "keywords": ["two words"]}]},
     "rule 'bad.kw': keyword 'two words'"),
    ({"rules": [{"id": "bad.def", "category": "promo", "pattern": "{{NOPE}}"}]},
     "rule 'bad.def': unknown definition {{NOPE}}"),
    ({"rules": [{"id": "bad.key", "category": "promo", "pattern": "x", "pattren": "y"}]},
     "rule 'bad.key': unknown keys ['pattren']"),
    ({"protect": [{"id": "p1", "pattern": "[z-a]"}]}, "protect 'p1': bad regular expression"),
    ({"disable": ["no.such.rule"]}, "rule 'no.such.rule' in 'disable'"),
    ({"settings": {"head_lines": "six"}}, "setting 'head_lines' must be a number"),
])
def test_bad_rules_file_names_file_and_rule(tmp_path: Path, data: object, message: str) -> None:
    path = write(tmp_path, "user_rules.json", data)
    with pytest.raises(RulesError) as err:
        load_rules([path])
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_unreadable_and_invalid_json_files(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read rules file"):
        load_rules([tmp_path / "missing.json"])
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(RulesError, match="not valid JSON"):
        load_rules([broken])


# ------------------------------------------------------------------------------------ seeds (shared)
QUOTES = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'", "\u00a0": " "})


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.translate(QUOTES)).strip().lower()


@needs_shared
@pytest.mark.parametrize("repaired", [False, True], ids=["raw", "repaired"])
def test_seed_expectations_for_the_body(rules: Ruleset, repaired: bool) -> None:
    expected = json.loads((SHARED / "eval" / "seeds_expected.json").read_text(encoding="utf-8"))
    for name, exp in expected.items():
        if name.startswith("_"):
            continue
        text = (SHARED / "seeds" / name).read_text(encoding="utf-8")
        if repaired:
            from newsetl.text.repair import repair_text  # the stage before cleaning in the pipeline

            text = repair_text(text).text
        result = clean_text(text, rules)
        body = _norm(result.body)
        lines = {_norm(x) for x in result.body.splitlines()}
        for s in exp["gone"]:
            assert _norm(s) not in body, f"{name}: boilerplate left: {s!r}"
        for s in exp["gone_lines"]:
            if s != "John Bowden":  # the byline is describe's to take
                assert _norm(s) not in lines, f"{name}: boilerplate line left: {s!r}"
        for s in exp["kept"]:
            assert _norm(s) in body, f"{name}: story lost: {s[:60]!r}"
        for r in result.removals:
            assert text[r.position:r.position + len(r.text)] == r.text, (name, r)
        if "original_publisher_contains" in exp["meta"]:
            assert any(r.category == "syndication" for r in result.removals)
        if "published_date" in exp["meta"] and name != "004_d0b9aaf278ef4fdf.txt":
            assert any(r.category == "dateline" for r in result.removals)


@needs_shared
def test_seed_bare_byline_and_headline_survive(rules: Ruleset) -> None:
    text = (SHARED / "seeds" / "004_d0b9aaf278ef4fdf.txt").read_text(encoding="utf-8")
    body = clean_text(text, rules).body.splitlines()
    assert "John Bowden" in body
    assert "Russia has denied attacking civilian targets" in body
    dated = [r for r in clean_text(text, rules).removals if r.category == "dateline"]
    assert [r.text for r in dated] == ["Sunday 06 March 2022 10:58 EST"]


# ------------------------------------------------------------------------------------- properties
LINES = st.sampled_from([*STORY, "Advertisement", "Share this article", "Comments", "John Bowden",
                         "Read more: Council backs plan", "(Photo: Getty)", "",
                         "date 2022-02-21 In brief, it rained.",
                         "Your support makes all the difference.Russia is big.", "- a list item", "  "])


@settings(max_examples=200, deadline=None)
@given(st.lists(LINES, max_size=25), st.text(max_size=60))
def test_removals_are_verbatim_and_the_body_only_loses_text(lines: list[str], noise: str) -> None:
    rules = load_rules()
    text = "\n".join([*lines, noise])
    result = clean_text(text, rules)
    for r in result.removals:
        assert text[r.position:r.position + len(r.text)] == r.text
    assert len(result.body) <= len(text)
    assert not result.body.startswith("\n") and not result.body.endswith("\n")
    assert "\n\n\n" not in result.body
    kept_words = re.findall(r"\w+", result.body)
    assert len(kept_words) <= len(re.findall(r"\w+", text))


def test_only_from_keeps_the_rules_files_rules_and_every_protect_pattern(tmp_path: Path) -> None:
    # `newsetl reclean --apply-rules` applies what the user's file adds, not the library again.
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps({
        "rules": [{"id": "mine.engine", "category": "promo", "pattern": "powered by storyengine.*",
                   "keywords": ["powered"], "examples": ["Powered by StoryEngine 3.1"]}],
        "protect": [{"id": "keep.mine", "pattern": "share this story with storyengine"}]}))
    full = load_rules([mine])
    only = full.only_from([str(mine)])
    assert [r.id for r in only.rules] == ["mine.engine"]
    assert full.protect is not None and only.protect is full.protect
    text = "Powered by StoryEngine 3.1\nShare this story on Facebook\nShare this story with StoryEngine friends"
    assert clean_text(text, only).body == "Share this story on Facebook\nShare this story with StoryEngine friends"
