"""Repair: table-driven positive cases, a corpus of negative cases (byte-identical), properties.

The negative corpus follows ftfy's own test suite: text that needs no repair must come back as the
identical string with no repairs counted, whatever typography or script it uses.
"""

from __future__ import annotations

import json
import random
import re
import string
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from newsetl.synth.corrupt import corrupt, ws_norm
from newsetl.text.repair import (
    _FTFY_SUSPECT_RE,
    _HYPHEN_BREAK_RE,
    _HYPHENATED_RE,
    BLANK_LINES,
    CONTROL_CHAR,
    GLUED_SENTENCE,
    HTML_ENTITY,
    HYPHENATION,
    LINE_ENDING,
    MOJIBAKE,
    NBSP,
    REPAIR_ERROR,
    SOFT_HYPHEN,
    TRAILING_SPACE,
    ZERO_WIDTH,
    RepairConfig,
    _fix_line_characters,
    _ftfy_line,
    _ftfy_memo,
    _glue_candidates,
    _glue_memos,
    _quote_open_before,
    _repeated,
    _split_glued,
    _suspect_lines,
    needs_repair,
    repair_text,
)

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
if str(REPO) not in sys.path:  # bench/ is not an installed package; the generator lives there
    sys.path.insert(0, str(REPO))

# (broken input, expected output, a repair kind that must be counted)
POSITIVE = [
    # mojibake: UTF-8 read as cp1252 / Latin-1, once and twice
    ("It\u00e2\u20ac\u2122s here", "It’s here", MOJIBAKE),
    ("caf\u00c3\u00a9 au lait", "café au lait", MOJIBAKE),
    ("Don\u00c3\u00a2\u00e2\u201a\u00ac\u00e2\u201e\u00a2t stop", "Don’t stop", MOJIBAKE),
    ("\u00e2\u20ac\u0153Quoted\u00e2\u20ac\u009d, he said", "“Quoted”, he said", MOJIBAKE),
    ("\u00d0\u0161\u00d1\u20ac\u00d0\u00b5\u00d0\u00bc\u00d0\u00bb\u00d1\u0152", "Кремль", MOJIBAKE),
    ("It\u00e2\u0080\u0099s Latin-1", "It’s Latin-1", MOJIBAKE),
    ("60,000\u00e2\u201a\u00a9 a seat", "60,000₩ a seat", MOJIBAKE),
    ("Volkswagen\u00c2\u2019s car", "Volkswagen’s car", MOJIBAKE),  # C1 control, then mojibake
    # HTML entities left in text, also double-escaped
    ("Fish &amp; Chips", "Fish & Chips", HTML_ENTITY),
    ("it&#8217;s &ldquo;fine&rdquo;", "it’s “fine”", HTML_ENTITY),
    ("it&amp;#8217;s", "it’s", HTML_ENTITY),
    ("x &lt; 5 and it&#x2019;s fine", "x < 5 and it’s fine", HTML_ENTITY),
    ("a&nbsp;b", "a b", NBSP),
    # control characters: C1 as cp1252, stray C0
    ("It\x92s \x93quoted\x94", "It’s “quoted”", CONTROL_CHAR),
    ("bell\x07 and\x00 null", "bell and null", CONTROL_CHAR),
    # invisible characters
    ("soft\u00adhyphen", "softhyphen", SOFT_HYPHEN),
    ("zero\u200bwidth\u2060joined\ufeff", "zerowidthjoined", ZERO_WIDTH),
    ("Latin\u200dletters", "Latinletters", ZERO_WIDTH),
    ("non\u00a0breaking", "non breaking", NBSP),
    # line endings, trailing space, blank lines
    ("one\r\ntwo\rthree\u2028four\u2029five", "one\ntwo\nthree\nfour\nfive", LINE_ENDING),
    ("line  \nnext\t\nend", "line\nnext\nend", TRAILING_SPACE),
    ("a\n\n\n\nb\n\n\n", "a\n\nb\n", BLANK_LINES),
    ("\n\n\nstarts late", "starts late", BLANK_LINES),
    # glued sentences
    ("all the difference.Russia is compiling", "all the difference.\nRussia is compiling", GLUED_SENTENCE),
    ("automatically logged inPlease refresh", "automatically logged in\nPlease refresh", GLUED_SENTENCE),
    ("genocide” in Ukraine.Biden Said In", "genocide” in Ukraine.\nBiden Said In", GLUED_SENTENCE),
    ("what we’re going to do.”Kill passing", "what we’re going to do.”\nKill passing", GLUED_SENTENCE),
    ("September 17, 2022.Evgeny Maroretka/AP", "September 17, 2022.\nEvgeny Maroretka/AP", GLUED_SENTENCE),
    ('he said: "Wait."Then he left', 'he said: "Wait."\nThen he left', GLUED_SENTENCE),
    ('again."I like it," he said', 'again.\n"I like it," he said', GLUED_SENTENCE),
    ("Robotics Inc.“There are", "Robotics Inc.\n“There are", GLUED_SENTENCE),
    ("as CEO?A: I think", "as CEO?\nA: I think", GLUED_SENTENCE),
    ("the Rubkan camp”A VOA report", "the Rubkan camp”\nA VOA report", GLUED_SENTENCE),
    ("to go higher.U.S. President", "to go higher.\nU.S. President", GLUED_SENTENCE),
    ("a month for $12.Netflix costs", "a month for $12.\nNetflix costs", GLUED_SENTENCE),
    ("the departed souls.— The Senate", "the departed souls.\n— The Senate", GLUED_SENTENCE),
    ("open the door.3 Hospitalized After", "open the door.\n3 Hospitalized After", GLUED_SENTENCE),
    ("NISSAN SENTRANissan is hoping", "NISSAN SENTRA\nNissan is hoping", GLUED_SENTENCE),
    ("and Steam.[ The Verge ] Even", "and Steam.\n[ The Verge ] Even", GLUED_SENTENCE),
    ("recess on Tuesday .The details", "recess on Tuesday .\nThe details", GLUED_SENTENCE),
    ("The bottom line ...Taylor Swift", "The bottom line ...\nTaylor Swift", GLUED_SENTENCE),
    ("Governor, @MattBevin!”Trump sent", "Governor, @MattBevin!”\nTrump sent", GLUED_SENTENCE),
    ("master classes!).Which cuisine", "master classes!).\nWhich cuisine", GLUED_SENTENCE),
    ('“Our results," he said in the release."We are on track,"',
     '“Our results," he said in the release.\n"We are on track,"', GLUED_SENTENCE),
    ("분명히 했다.하지만 이러한", "분명히 했다.\n하지만 이러한", GLUED_SENTENCE),
    ("Вход выполненПожалуйста обновите", "Вход выполнен\nПожалуйста обновите", GLUED_SENTENCE),
    # hyphenation at a line end
    ("the infor-\nmation age", "the information age", HYPHENATION),
    ("a well-known and well-\nknown fact", "a well-known and well-known fact", HYPHENATION),
    ("an Anglo-\nAmerican deal", "an Anglo-American deal", HYPHENATION),
    ("discre\u00ad\ntionary", "discretionary", HYPHENATION),
]

# Text that needs no repair: must come back as the identical string, with no repairs counted.
NEGATIVE = [
    "“This is a quoted sentence.”",
    "It’s a ‘single-quoted’ word — and an en dash – and an ellipsis…",
    "The U.S. and the U.K. met in Washington, D.C. on Monday.",
    "J.R.R. Tolkien wrote it; she has a Ph.D. from M.I.T.",
    "Install Node.js or Vue.js from example.com, e.g. via npm.",
    "See https://www.example.com/News/Story.Html?id=3&Page=2 for more.",
    "Pi is 3.14 and the release is v2.0.1 (build 10.0.19041).",
    "Mr.Smith met Dr.Jones in St.Petersburg.",
    "z.B. Arztbriefe, d.h. alles, usw.",
    "Shares rose 2.5% at 10 a.m. Friday, Dec. 6.",
    "AT&T and Procter & Gamble; this&not that; x < 5 & y > 3.",
    "iPhone, YouTube, McDonald’s, eBay, JPMorgan, PlayStation and deGrom.",
    "café, naïve, Zürich, São Paulo, Ærø, İstanbul, Łódź",
    "Кремль заявил, что «переговоры» продолжатся.",
    "서울은 한국의 수도이다. 인구는 약 천만 명이다.",
    "你好，世界。这是一个测试：全角标点。",
    "می\u200cخواهم بروم",  # Persian needs its zero-width non-joiner
    "Family: 👨\u200d👩\u200d👧 and a flag 🏳\ufe0f\u200d🌈",
    "Wait…What? Nothing. And wait...What?",
    "A footnote.[1] Another claim.[23] Done.",
    "Runs on the .NET runtime and ASP .NET Core.",
    "Two spaces after a period.  Like this.",
    "A line\nthen another\n\nand a paragraph\n",
    "  — An indented list item\n  — Another",
    "Jean-Luc met a well-known co-founder of a start-up.",
    "Contact: jane.Doe@example.org or @Handle.",
    "The ASP.NET and ID.3 names stay.",
    "A 5'10\" player and a 6\" ruler.",
    "ＡＢＣ full-width Latin stays as written.",
    "",
]


@pytest.mark.parametrize(("broken", "expected", "kind"), POSITIVE)
def test_repairs_each_kind(broken: str, expected: str, kind: str) -> None:
    result = repair_text(broken)
    assert result.text == expected
    assert result.repairs.get(kind, 0) >= 1, result.repairs
    assert REPAIR_ERROR not in result.repairs


@pytest.mark.parametrize("text", NEGATIVE)
def test_plain_text_is_byte_identical(text: str) -> None:
    result = repair_text(text)
    assert result.text == text
    assert dict(result.repairs) == {}


@pytest.mark.parametrize("text", [t for t in NEGATIVE if t and not t.endswith("\n")])
def test_negative_cases_survive_being_embedded_in_a_story(text: str) -> None:
    story = f"The minister spoke on Monday.\n\n{text}\n\nShe said nothing else."
    assert repair_text(story).text == story


def test_counts_are_per_occurrence() -> None:
    result = repair_text("a&amp;b &amp; c\u00a0d\u00a0e")
    assert result.repairs[HTML_ENTITY] == 2
    assert result.repairs[NBSP] == 2


def test_needs_repair_false_means_untouched() -> None:
    text = "A plain sentence. Another one, with “quotes” and café’s accents."
    assert needs_repair("It\u00e2\u20ac\u2122s") and needs_repair("a.B") and needs_repair("x\r\ny")
    assert repair_text(text).text is text or repair_text(text).text == text
    assert not needs_repair("plain ascii text, nothing to do.")


def test_config_switches_steps_off() -> None:
    text = "all the difference.Russia is\u00a0here"
    off = RepairConfig(split_glued_sentences=False, nbsp_to_space=False)
    assert repair_text(text, off).text == text
    assert repair_text(text).text == "all the difference.\nRussia is here"


def test_a_remembered_line_gives_what_ftfy_gave_and_counts_again() -> None:
    # The per-line memo of ftfy's answers: the same fixed line and the same counts every time it is
    # asked (a second text with the line counts its repairs too), and never another config's answer.
    line = "It\u00e2\u20ac\u2122s &amp; the caf\u00c3\u00a9 \u00ef\u00ac\u0081le"
    fresh: Counter[str] = Counter()
    expected = _fix_line_characters(line, RepairConfig(), fresh)
    assert expected != line and fresh
    _ftfy_memo.clear()
    for _ in range(3):
        counts: Counter[str] = Counter()
        assert _ftfy_line(line, RepairConfig(), counts) == expected  # an equal config, not the same object
        assert counts == fresh
    assert line in _ftfy_memo
    no_entities = RepairConfig(unescape_html=False)
    other: Counter[str] = Counter()
    assert _ftfy_line(line, no_entities, other) == _fix_line_characters(line, no_entities, Counter())
    assert "&amp;" in _ftfy_line(line, no_entities, Counter()) and HTML_ENTITY not in other
    # Two texts sharing a line: each result counts its own repairs.
    a, b = repair_text(f"one\n{line}"), repair_text(f"two\n{line}")
    assert a.repairs == b.repairs and a.repairs[MOJIBAKE] >= 1


def _glue_fresh(text: str) -> str:
    """`_split_glued` without the memo: every rule run over the whole text, as before it existed."""
    plain, named = _glue_candidates(text, RepairConfig())
    cuts = sorted(set(plain) | {c for c, token in named if not _repeated(text, token)})
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    return "\n".join(pieces)


# Lines whose cuts depend on what touches their ends or on the rest of the document.
_GLUE_POOL = [
    "Voglio dire precedente.E",  # a one-letter word: cut at the end of the text, not before a line break
    "It was the best.A",
    "Book with easyJet now.Flights are cheap.",  # the camel token: cut unless the document repeats it
    "The easyJet fleet grew.",
    "logged inPlease refresh the page.",
    "SENTRANissan said it would.",
    "He said.“We go”",
    'again."I like it," she said.',
    "all the difference.Russia is here",
    "Mr.Smith and St.Petersburg",
    "plain words and nothing glued",
    "",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(st.sampled_from(_GLUE_POOL), min_size=1, max_size=6), min_size=1, max_size=6))
def test_remembered_glue_cuts_are_the_fresh_ones(texts: list[list[str]]) -> None:
    # Lines recur across texts, at the end of one and before a line break in another, with and
    # without a second use of their camel-case token: every text gets the cuts a fresh run gives it.
    # (A memo keyed on the line alone, or one that remembered the `_repeated` veto, fails.)
    _glue_memos.clear()
    for lines in texts:
        text = "\n".join(lines)
        counts: Counter[str] = Counter()
        assert _split_glued(text, RepairConfig(), counts) == _glue_fresh(text)


def test_glue_memo_is_per_abbreviation_list_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import newsetl.text.repair as repair

    _glue_memos.clear()
    assert _split_glued("in St.Petersburg", RepairConfig(), Counter()) == "in St.Petersburg"
    no_abbr = RepairConfig(abbreviations=())
    assert _split_glued("in St.Petersburg", no_abbr, Counter()) == "in St.\nPetersburg"
    assert len(_glue_memos) == 2
    monkeypatch.setattr(repair, "_GLUE_MEMO_CHARS", 100)
    _glue_memos.clear()  # memos made from now on have the small bound
    for i in range(50):
        _split_glued(f"line number {i} is here.Then more", RepairConfig(), Counter())
    memo = _glue_memos[(RepairConfig().abbreviations, RepairConfig().name_particles)]
    # one-line texts: only the memo of last lines fills, two generations of 100 // 8 characters
    assert memo.mid.held_chars == 0 and memo.last.held_chars <= 2 * (100 // 8) + 40 and len(memo.last) <= 4


@given(st.lists(st.sampled_from(["plain", "caf\u00c3\u00a9", "&amp; co", "Cafe\u0301", "x\u00c2 y", "",
                                 "\u00e9t\u00e9"]), min_size=1, max_size=8))
def test_suspect_lines_are_the_lines_a_per_line_test_finds(lines: list[str]) -> None:
    # One search resumed after each suspect line finds the lines that testing every line finds.
    text = "\n".join(lines)
    expected = [i for i, line in enumerate(lines)
                if _FTFY_SUSPECT_RE.search(line) or not unicodedata.is_normalized("NFC", line)]
    assert _suspect_lines(text) == expected


def test_abbreviation_list_is_configurable() -> None:
    assert repair_text("in St.Petersburg").text == "in St.Petersburg"
    assert repair_text("in St.Petersburg", RepairConfig(abbreviations=())).text == "in St.\nPetersburg"


def test_a_repeated_glued_token_is_a_name_not_a_lost_break() -> None:
    text = "Fly easyJet today. The easyJet fleet grew."
    assert repair_text(text).text == text


def test_compound_hyphen_kept_when_the_document_uses_its_parts() -> None:
    text = "A state-owned firm. The state said owned assets grew; state-\nowned banks too."
    assert "state-owned banks" in repair_text(text).text


# ----------------------------------------------------------------------------- properties
_SPECIAL = [
    *"\u00e2\u20ac\u2122\u00c3\u00a9\u00c2\u00a0\u00ad\u200b\u200c\u200d\u2060\ufeff\r\n\u2028\u2029\x85\x92\x93",
    *"\x00\x07\x1b&;#.!?:”“\"’'-—–… \tAaZz0",
    *["&amp;", "&#8217;", "&nbsp;", "â€™", "Ã©", "U.S.", "-\n", ".R", "inP", "\n\n\n"],
]
_TEXT = st.lists(st.one_of(st.sampled_from(_SPECIAL), st.text(max_size=6)), max_size=40).map("".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TEXT)
def test_never_raises_and_is_idempotent(text: str) -> None:
    once = repair_text(text)
    assert REPAIR_ERROR not in once.repairs
    twice = repair_text(once.text)
    assert twice.text == once.text
    assert dict(twice.repairs) == {}


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_unicode_never_raises_and_is_idempotent(text: str) -> None:
    once = repair_text(text)
    assert REPAIR_ERROR not in once.repairs
    assert repair_text(once.text).text == once.text


_WORD = st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=9)
_SENTENCE = st.lists(_WORD, min_size=1, max_size=12).map(lambda ws: " ".join([ws[0].capitalize(), *ws[1:]]))
_PARAGRAPH = st.lists(_SENTENCE, min_size=1, max_size=4).map(lambda s: ". ".join(s) + ".")


@settings(max_examples=200, deadline=None)
@given(st.lists(_PARAGRAPH, min_size=1, max_size=5))
def test_well_formed_prose_is_byte_identical(paragraphs: list[str]) -> None:
    text = "\n\n".join(paragraphs)
    result = repair_text(text)
    assert result.text == text
    assert dict(result.repairs) == {}


# ----------------------------------------------------------------------------- generator round trip
STORY = (
    "The council voted on Tuesday.\n\nIts members, who met in St. Paul, said the U.S. plan was “sound”.\n\n"
    "Critics disagreed. “We’ll see,” one said — café owners were not consulted.\n\n"
    "The information campaign starts in March."
)


@pytest.mark.parametrize("kind", [
    "glued_sentence", "blank_lines", "trailing_space", "line_ending", "nbsp", "zero_width",
    "soft_hyphen", "control_char", "html_entity", "mojibake",
])
def test_generator_corruption_is_undone(kind: str) -> None:
    for seed in range(5):
        broken = corrupt(STORY, random.Random(seed), [kind])
        assert ws_norm(repair_text(broken).text) == ws_norm(STORY), (kind, seed, broken)


def test_generator_is_deterministic() -> None:
    assert corrupt(STORY, random.Random(7)) == corrupt(STORY, random.Random(7))
    assert corrupt(STORY, random.Random(7)) != STORY


def test_seed_glue_is_split() -> None:
    path = SHARED / "seeds"
    if not path.exists():
        pytest.skip(f"{path} is absent: ../shared is not beside this checkout")
    texts = {p.name[:3]: repair_text(p.read_text(encoding="utf-8")).text for p in sorted(path.glob("*.txt"))}
    assert "all the difference.\nRussia is compiling" in texts["000"]
    assert "logged in\nPlease refresh" in texts["004"]
    assert "in Ukraine.\nBiden Said" in texts["003"]
    assert "Stay up to date with notifications from The Independent" in texts["004"]  # NBSP -> space


def test_dev_set_measure_meets_the_f1_goal(shared_path: Callable[..., Path], aeb_metric: ModuleType) -> None:
    truth_path = shared_path("eval", "aeb-dev", "ground-truth.json")
    truth = {k: v["articleBody"] for k, v in json.loads(truth_path.read_text(encoding="utf-8")).items()}
    sample = dict(sorted(truth.items())[:30])
    corrupted = {k: corrupt(v, random.Random(f"t:{k}")) for k, v in sample.items()}
    repaired = {k: repair_text(v).text for k, v in corrupted.items()}

    def exact(pred: dict[str, str]) -> float:
        return sum(ws_norm(pred[k]) == ws_norm(sample[k]) for k in sample) / len(sample)

    assert aeb_metric.aeb_scores(sample, repaired)["f1"] >= 0.995
    assert exact(repaired) >= 0.75
    assert exact(corrupted) <= 0.1


def test_without_a_lexicon_the_document_vocabulary_decides() -> None:
    plain = RepairConfig(lexicon="none")
    assert repair_text("the infor-\nmation age", plain).text == "the information age"
    assert repair_text("an anti-\ndrug plan", plain).text == "an antidrug plan"  # nothing says compound


def test_with_wordfreq_compounds_keep_their_hyphen() -> None:
    pytest.importorskip("wordfreq", reason="wordfreq is an optional dependency of repair")
    assert repair_text("an anti-\ndrug plan").text == "an anti-drug plan"
    assert repair_text("the infor-\nmation age").text == "the information age"


@pytest.mark.parametrize(("broken", "expected"), [
    ("the end,\u00e2\u20ac\ufffd he said", "the end,” he said"),  # strict cp1252 decode, errors=replace
    ("\u00e2\u20ac\u0153We\u00e2\u20ac said", "“We” said"),  # errors=ignore: the 0x9D byte vanished
])
def test_bytes_lost_to_a_strict_cp1252_decode_are_restored(broken: str, expected: str) -> None:
    assert repair_text(broken).text == expected


def test_issue15_kinds_tuned_and_heldout_restore_a_story() -> None:
    from newsetl.synth.corrupt import HELDOUT_KINDS, TUNED_KINDS

    for name, step in {**TUNED_KINDS, **HELDOUT_KINDS}.items():
        for seed in range(3):
            broken = step(STORY, random.Random(f"{name}:{seed}"))
            assert ws_norm(repair_text(broken).text) == ws_norm(STORY), (name, seed, broken)


# ----------------------------------------------------------------------------- issue 15: lost bytes in long sequences
@pytest.mark.parametrize("mode", ["replace", "ignore"])
@pytest.mark.parametrize("text", [
    "Anderson \U0001f469\u200d\U0001f4bb and “quotes” here, “twice” in one line.",  # ZWJ between emoji, ” elsewhere
    "中国的经济增长在第三季度放缓。",  # CJK: 0x8F/0x90/0x9D inside three-byte sequences
])
def test_bytes_a_strict_cp1252_decoder_lost_inside_long_sequences_come_back(text: str, mode: str) -> None:
    broken = text.encode("utf-8").decode("cp1252", errors=mode)
    assert broken != text
    assert repair_text(broken).text == text


def test_a_lost_byte_is_put_back_as_the_likeliest_character() -> None:
    from newsetl.text.repair import _char_score

    assert _char_score("\u200d", "\U0001f469", "\U0001f4bb") > _char_score("\u201d", "\U0001f469", "\U0001f4bb")
    assert _char_score("\u201d", "d", " ") > _char_score("\u200d", "d", " ")  # no emoji: a closing quote
    assert _char_score("\ufe0f", "\u2b07", "") > _char_score("\ufe10", "\u2b07", "")  # VS16, not a vertical comma


@pytest.mark.parametrize("text", ["Così\u00b4 fan tutte", "pâté à la crème — “très” bien", "그건 이 사안을 두고"])
def test_lone_lead_letters_are_no_lost_bytes_in_clean_text(text: str) -> None:
    assert repair_text(text).text == text


# The fast forms of three hot spots (anchored possessive letter runs, a str.count pre-check, rfind/count
# for the quote state) against the plain forms they replaced: same matches, same answers.
_QUOTE_TEXT = st.lists(st.sampled_from(['"', "“", "”", "a", " ", "\n", ".", "-", "B", "é", "1", "'"]),
                       max_size=60).map("".join)
_RUN_TEXT = st.lists(st.sampled_from(["ab", "Cé", "-", "-\n", "\n", " ", "1", "_", "x", "'", "ß"]),
                     max_size=40).map("".join)


@given(_RUN_TEXT)
@example("1ab-cd 1ab-\ncd x_ab-\ncd ab1-\ncd")  # runs after a digit or an underscore still start a match
@example("abc-\ndef-\nghi well-known-ish")
def test_anchored_letter_run_patterns_match_as_the_plain_ones(text: str) -> None:
    plain_break = re.compile(r"([^\W\d_]+)-\n([^\W\d_]+)")
    plain_hyphenated = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)+")
    assert [m.span() for m in _HYPHEN_BREAK_RE.finditer(text)] == [m.span() for m in plain_break.finditer(text)]
    assert _HYPHEN_BREAK_RE.sub("|", text) == plain_break.sub("|", text)
    assert _HYPHENATED_RE.findall(text) == plain_hyphenated.findall(text)


@given(_QUOTE_TEXT)
def test_quote_state_matches_a_character_walk(text: str) -> None:
    for start in range(len(text) + 1):
        open_quotes = False
        for ch in text[text.rfind("\n", 0, start) + 1 : start]:
            if ch in "“”":
                open_quotes = ch == "“"
            elif ch == '"':
                open_quotes = not open_quotes
        assert _quote_open_before(text, start) == open_quotes


@given(_RUN_TEXT, _RUN_TEXT, st.sampled_from(["ab", "Cé", "abCé", "x"]))
def test_repeated_token_check_matches_the_regex_count(before: str, after: str, token: str) -> None:
    text = f"{before} {token} {after}"
    plain = len(re.findall(rf"(?<![\w'’-]){re.escape(token)}(?![\w'’-])", text)) > 1
    assert _repeated(text, token) == plain


def test_dedent_lines_takes_leading_blanks_only() -> None:
    from newsetl.text.repair import dedent_lines

    assert dedent_lines("  a b\n\tc  d\n\u00a0\u2003e\nf\n   \n") == ("a b\nc  d\ne\nf\n   \n", 3)
    assert dedent_lines("no indent\nat all") == ("no indent\nat all", 0)
