"""Word counts (newsetl.text.words): runs of word characters, one word per Chinese/Japanese character, and ICU's
words in Thai, Lao, Khmer and Burmese."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from newsetl.text.words import count_words, segment_words

_RUNS = re.compile(r"\w+")
# Han ideographs and kana (the letters of these blocks; the sound marks U+3099-U+309C are not letters).
_EACH = re.compile(r"[\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fc-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
                   r"\uf900-\ufaff\uff66-\uff9d\U00020000-\U000323af]")


def _runs(text: str) -> int:
    """Runs of \\w characters with combining marks (category M) joined into them, as a reader counts."""
    joined = "".join("a" if unicodedata.category(c)[0] == "M" else c for c in text)
    return len(_RUNS.findall(joined))


def _reference(text: str) -> int:
    # Each Chinese/Japanese letter is a word by itself and separates the runs around it; a mark in those
    # blocks (the kana sound marks) is no word.
    each = [c for c in _EACH.findall(text) if c.isalnum()]
    return _runs(_EACH.sub(" ", text.replace("\u3099", " ").replace("\u309a", " "))) + len(each)


# Thai, Lao, Burmese and Khmer (the blocks of text/words.SEGMENTED_RANGES).
_SEGMENTED = re.compile(r"[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\ua9e0-\ua9ff\uaa60-\uaa7f]")
_SEGMENTED_RUN = re.compile(r"[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\ua9e0-\ua9ff\uaa60-\uaa7f]+")


@settings(max_examples=600, deadline=None)
@given(st.one_of(st.text(), st.text(alphabet=st.sampled_from(list("a_ 9\t\n-—’éß٣\u0301\U0001d7d8\ud800x"))),
                 st.text(alphabet=st.characters(max_codepoint=127))))
def test_it_is_the_regex_count_where_no_letter_is_chinese_or_japanese(text: str) -> None:
    # the numpy count over code points against the regex it replaced (\w is str.isalnum() plus "_"), with
    # combining marks joined into their runs
    assume(_SEGMENTED.search(text) is None)
    if not any(c.isalnum() for c in _EACH.findall(text)):
        assert count_words(text) == _runs(text)
    assert count_words(text) == _reference(text)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab 9_-。，市政府ひらがなカタカナｶﾀ한국어\u3099\u30fc\u4e00\U00020001"))))
def test_each_chinese_or_japanese_letter_is_a_word(text: str) -> None:
    assert count_words(text) == _reference(text)


# Letters, digits, vowel signs, tone marks and punctuation of the four scripts, beside other words and marks.
_MIXED = "ab 9_-.ๆ๑กข\u0e31\u0e48เไ\u0e4e\u0e5aແດ\u0ec8ကခ\u102c\u103a။កខ\u17b6\u17d2។市\u0301"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(_MIXED))))
def test_a_run_of_thai_lao_burmese_or_khmer_counts_its_icu_words(text: str) -> None:
    # Each run of these blocks counts as ICU cuts it (segments holding a letter or digit), and separates the
    # runs around it as punctuation would; everything else is counted as before.
    runs = _SEGMENTED_RUN.findall(text)
    expected = _reference(_SEGMENTED_RUN.sub(" ", text)) + sum(len(segment_words(r)) for r in runs)
    assert count_words(text) == expected


# Sentences written for these tests, each with the words a reader counts in it. As runs of letters each was
# one "word" a phrase (the spaces part phrases). ICU's dictionaries cut some compounds finer than a reader
# (Thai นายก|รัฐมนตรี, การ|ค้า) and join a few: within 0.8-1.4 times the reader's count.
_SENTENCES = [
    # Thai: "The prime minister travelled to Japan to discuss trade and investment." (PyThaiNLP's newmm: 12)
    ("นายกรัฐมนตรีเดินทางไปเยือนประเทศญี่ปุ่นเพื่อหารือเรื่องการค้าและการลงทุน", 12),
    # Thai: "The Meteorological Department warns of heavy rain in the north from tomorrow." (newmm: 11)
    ("กรมอุตุนิยมวิทยาเตือนว่าจะมีฝนตกหนักในภาคเหนือตั้งแต่วันพรุ่งนี้", 12),
    # Thai, with a space between its phrases: "Police arrested two suspects after a gold shop robbery in
    # Bangkok on Monday night." (newmm: 15)
    ("ตำรวจจับกุมผู้ต้องสงสัยสองคนหลังเกิดเหตุปล้นร้านทองในกรุงเทพฯ เมื่อคืนวันจันทร์", 14),
    # Lao: "The prime minister travelled to visit Japan." (LaoNLP: 6)
    ("ນາຍົກລັດຖະມົນຕີໄດ້ເດີນທາງໄປຢ້ຽມຢາມປະເທດຍີ່ປຸ່ນ", 7),
    # Lao: "The health ministry reported ten new infections." (LaoNLP: 9)
    ("ກະຊວງສາທາລະນະສຸກລາຍງານວ່າມີຜູ້ຕິດເຊື້ອໃໝ່ສິບຄົນ", 9),
    # Khmer: "The prime minister travelled to Japan." (khmer-nltk: 7)
    ("នាយករដ្ឋមន្ត្រីបានធ្វើដំណើរទៅប្រទេសជប៉ុន", 6),
    # Khmer: "The health ministry announced ten new infections." (khmer-nltk: 11)
    ("ក្រសួងសុខាភិបាលបានប្រកាសថាមានអ្នកឆ្លងថ្មីដប់នាក់", 11),
    # Burmese, with spaces between its phrases: "The prime minister travelled to Japan."
    ("ဝန်ကြီးချုပ်သည် ဂျပန်နိုင်ငံသို့ ခရီးထွက်ခဲ့သည်။", 9),
    # Burmese: "The health ministry announced that ten more infected people were found."
    ("ကျန်းမာရေးဝန်ကြီးဌာနက ရောဂါကူးစက်ခံရသူ ဆယ်ဦး ထပ်မံတွေ့ရှိကြောင်း ကြေညာခဲ့သည်။", 15),
]


@pytest.mark.parametrize(("sentence", "reader"), _SENTENCES)
def test_thai_lao_khmer_and_burmese_count_about_what_a_reader_counts(sentence: str, reader: int) -> None:
    assert _runs(sentence) == len(sentence.split())  # what they counted before: one word a phrase
    assert 0.8 * reader <= count_words(sentence) <= 1.4 * reader, segment_words(sentence)


def test_segmented_words() -> None:
    # dictionary words, cut where a reader cuts them
    assert segment_words("ประเทศญี่ปุ่น") == ["ประเทศ", "ญี่ปุ่น"]  # Thai: "the country Japan"
    assert segment_words("ໄດ້ເດີນທາງໄປ") == ["ໄດ້", "ເດີນທາງ", "ໄປ"]  # Lao: "did travel to"
    assert segment_words("បានធ្វើដំណើរទៅប្រទេស") == ["បាន", "ធ្វើដំណើរ", "ទៅ", "ប្រទេស"]  # Khmer: "did travel to the country"
    assert segment_words("ဂျပန်နိုင်ငံသို့") == ["ဂျပန်", "နိုင်ငံ", "သို့"]  # Burmese: "to the country Japan"
    assert segment_words("ฯลฯ ๑๒ ๚") == ["ฯลฯ", "๑๒"]  # punctuation is no word, Thai digits are
    # a Latin word or a number beside Thai is a word of its own ("the new iPhone 15")
    assert count_words("iPhoneรุ่นใหม่15") == count_words("iPhone รุ่นใหม่ 15") == 4


def test_examples() -> None:
    assert count_words("") == 0
    assert count_words("The council approved the budget.") == 5
    assert count_words("市政府批准新预算。") == 8  # eight ideographs, the full stop is not a word
    assert count_words("iPhone手机") == 3  # a Latin run, then two ideographs
    assert count_words("ラーメンを食べた") == 8  # kana and the long-vowel mark, each one
    assert count_words("한국어 문장입니다") == 2  # Korean is written with spaces: runs
    # vowel signs, viramas and harakat are part of their word, not breaks in it
    assert (count_words("नमस्ते दुनिया"), count_words("বাংলাদেশের রাজধানী ঢাকা"), count_words("مُحَمَّدٌ رَسُولُ")) == (2, 3, 2)
