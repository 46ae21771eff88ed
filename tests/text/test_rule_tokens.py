"""A rule's keywords and `max_words` count a line's words with their combining marks (user trial 9): a
Devanagari or Thai vowel sign no longer splits a word in two, so a Hindi keyword can be written and a
four-word Hindi line is four words."""

from __future__ import annotations

import json
from pathlib import Path

from newsetl.text.clean import clean_text
from newsetl.text.lines import TOKEN
from newsetl.text.rules import load_rules

STORY = ("दिल्ली सरकार ने सोमवार को राजधानी में बढ़ते वायु प्रदूषण से निपटने के लिए एक व्यापक योजना की घोषणा "
         "की, जिसके तहत निर्माण कार्यों पर सख्त निगरानी रखी जाएगी।")


def test_a_word_keeps_its_vowel_signs_and_viramas() -> None:
    assert TOKEN.findall("फेसबुक पर शेयर करें") == ["फेसबुक", "पर", "शेयर", "करें"]
    assert TOKEN.findall("แชร์ไปที่ facebook") == ["แชร์ไปที่", "facebook"]
    assert TOKEN.findall("the café, 2024") == ["the", "café", "2024"]


def test_a_user_rule_with_a_hindi_keyword_and_a_short_max_words_removes_its_line(tmp_path: Path) -> None:
    rules_file = tmp_path / "hindi.json"
    rules_file.write_text(json.dumps({"rules": [{
        "id": "my.share_hi", "category": "share_social", "scope": "line", "pattern": "व्हाट्सएप पर भेजें",
        "keywords": ["व्हाट्सएप"], "max_words": 3, "examples": ["व्हाट्सएप पर भेजें"]}]}), encoding="utf-8")
    rules = load_rules([rules_file])
    result = clean_text(f"{STORY}\nव्हाट्सएप पर भेजें\n{STORY}", rules)
    assert [(r.rule, r.text) for r in result.removals] == [("my.share_hi", "व्हाट्सएप पर भेजें")]
    assert result.body.count(STORY) == 2
