"""Pure tests of newsetl.text.sign: normalization, hashing, MinHash accuracy, band keys."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from newsetl.text.lsh import DedupConfig
from newsetl.text.sign import (
    Signatures,
    SignConfig,
    band_keys,
    body_hash,
    estimate_containment,
    estimate_jaccard,
    exact_similarity,
    normalize_for_signature,
    scheme_id,
    shingle_sets,
    sign_texts,
)


def make_text(rng: np.random.Generator, n_words: int, vocab_size: int = 20000) -> str:
    """Pseudo-article: random words from a large vocabulary, in sentences with punctuation."""
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = []
    for w in rng.integers(0, vocab_size, size=n_words):
        r = np.random.default_rng(int(w))  # the same id is always the same word
        words.append("".join(r.choice(letters, size=int(r.integers(3, 10)))))
    out = []
    for i in range(0, n_words, 12):
        sentence = " ".join(words[i:i + 12])
        out.append(sentence[:1].upper() + sentence[1:] + ".")
    return " ".join(out)


@pytest.fixture(scope="module")
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


# --- normalization -----------------------------------------------------------------------------------


def test_normalize_casefolds_unifies_quotes_and_drops_punctuation() -> None:
    assert normalize_for_signature("Spain’s hopes — “ALIVE”, said Nadal!") == \
        ["spains", "hopes", "alive", "said", "nadal"]
    assert normalize_for_signature("Spain's hopes - \"alive\" said   NADAL") == \
        ["spains", "hopes", "alive", "said", "nadal"]
    assert normalize_for_signature("Straße") == ["strasse"]  # casefold, not lower
    assert normalize_for_signature("ﬁnal ２０２２") == ["final", "2022"]  # NFKC ligature / full-width


def test_normalize_keeps_words_numbers_and_scripts_apart() -> None:
    # Negative cases: what distinguishes two stories must survive normalization.
    assert normalize_for_signature("7-6 (5) in 2019") == ["7", "6", "5", "in", "2019"]
    assert normalize_for_signature("Україна і Росія") == ["україна", "і", "росія"]
    assert normalize_for_signature("U.S. snake_case node.js") == ["u", "s", "snake", "case", "node", "js"]
    assert normalize_for_signature("") == []
    assert normalize_for_signature("— … !!") == []


def test_chinese_and_japanese_are_one_word_per_character_as_word_count_counts_them() -> None:
    from newsetl.text.words import count_words

    mixed = "北京时间12月3日，東京タワーで、Apple社の発表。 ・ Ａｂｃ"
    assert normalize_for_signature(mixed) == ["北", "京", "时", "间", "12", "月", "3", "日", "東", "京", "タ", "ワ",
                                              "ー", "で", "apple", "社", "の", "発", "表", "abc"]
    assert len(normalize_for_signature(mixed)) == count_words(mixed)  # the middle dot is no word
    assert normalize_for_signature("서울 시장은 월요일") == ["서울", "시장은", "월요일"]  # Korean has spaces


def test_an_edited_chinese_copy_is_close_and_another_story_far() -> None:
    # As runs between punctuation marks a ~400-character article had ~30 shingles, under the minimum, and
    # four one-word edits took its Jaccard to 0.52.
    data = json.loads((Path(__file__).resolve().parents[1] / "data" / "cjk_stories.json").read_text(encoding="utf-8"))
    sigs = sign_texts([data["zh"], data["zh_edited"], data["zh_other"]])
    assert min(sigs.n_shingles) >= DedupConfig().min_shingles
    a, b, c = shingle_sets([data["zh"], data["zh_edited"], data["zh_other"]])
    assert exact_similarity(a, b)[0] >= 0.9
    assert exact_similarity(a, c)[1] < 0.05


_SEA = json.loads((Path(__file__).resolve().parents[1] / "data" / "sea_stories.json").read_text(encoding="utf-8"))


def test_thai_lao_khmer_and_burmese_are_signed_in_icu_words_as_word_count_counts_them() -> None:
    from newsetl.text.words import count_words, segment_words

    # Up to scheme 3 their vowel signs and tone marks cut words into fragments and were dropped ("เด" for เดิน)
    thai = "นายกรัฐมนตรีเดินทางไปเยือนประเทศญี่ปุ่น"
    assert normalize_for_signature(thai) == segment_words(thai) == ["นายก", "รัฐมนตรี", "เดิน", "ทาง", "ไป",
                                                                     "เยือน", "ประเทศ", "ญี่ปุ่น"]
    for sentence in ("ກະຊວງສາທາລະນະສຸກລາຍງານວ່າມີຜູ້ຕິດເຊື້ອໃໝ່ສິບຄົນ", "ក្រសួងសុខាភិបាលបានប្រកាសថា",
                     "ဝန်ကြီးချုပ်သည် ဂျပန်နိုင်ငံသို့ ခရီးထွက်ခဲ့သည်။", _SEA["th"], _SEA["my"]):
        assert len(normalize_for_signature(sentence)) == count_words(sentence)
    # beside Latin words, numbers and Chinese characters, each signed as before
    assert normalize_for_signature("iPhone 15 รุ่นใหม่ราคา 3,990 บาท 北京") == \
        ["iphone", "15", "รุ่น", "ใหม่", "ราคา", "3", "990", "บาท", "北", "京"]
    # NFKC takes Thai and Lao AM (and Lao HO NO, HO MO) apart; put back together, ICU cuts as in the text
    assert normalize_for_signature("น้ำท่วมทำให้") == ["น้ำ", "ท่วม", "ทำให้"]
    assert normalize_for_signature("ເຈົ້າໜ້າທີ່") == normalize_for_signature("ເຈົ້າຫນ້າທີ່") == ["ເຈົ້າໜ້າທີ່"]
    assert body_hash("น้ำท่วม") == body_hash("น\u0e49\u0e4d\u0e32ท่วม")


@pytest.mark.parametrize("lang", ["th", "my"])
def test_an_edited_thai_or_burmese_copy_is_close_and_another_story_on_the_same_topic_far(lang: str) -> None:
    # A ~300-character story (Thai: 316 characters, 73 shingles; scheme 3's fragments made 63), a copy with one
    # word edited and another story on the same flood.
    texts = [_SEA[lang], _SEA[f"{lang}_edited"], _SEA[f"{lang}_other"]]
    assert min(sign_texts(texts).n_shingles) >= DedupConfig().min_shingles
    a, b, c = shingle_sets(texts)
    assert exact_similarity(a, b)[0] >= 0.9  # 0.92 both
    assert exact_similarity(a, c)[1] < 0.05  # 0.01, 0.04


def test_texts_without_thai_lao_khmer_or_burmese_are_signed_as_by_scheme_3(monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    from newsetl.text import sign

    # (The English signature's values pinned in test_signatures_deterministic_and_independent_of_batch are
    # scheme 3's too.)
    texts = ["The council approved the budget on Tuesday, 7-6, after a long debate.",
             "नमस्ते दुनिया, यह एक परीक्षण है।", "北京时间12月3日，東京タワーで、Apple社の発表。",
             "حکومت نے آج نئی ٹرانسپورٹ پالیسی کا اعلان کیا", "서울 시장은 월요일"]
    now = sign_texts(texts)
    with monkeypatch.context() as patch:
        patch.setattr(sign, "_SEGMENTED", re.compile(r"(?!)"))  # scheme 3: no text holds those letters
        before = sign_texts(texts)
    assert np.array_equal(now.minhash, before.minhash) and list(now.body_hash) == list(before.body_hash)
    assert now.n_shingles.tolist() == before.n_shingles.tolist()


def test_the_scheme_names_the_major_version_of_icu() -> None:
    from icu4py import icu_version_info

    base = SignConfig()
    assert f"-icu{icu_version_info[0]}/" in scheme_id(base)
    assert scheme_id(base, icu=1) != scheme_id(base) == scheme_id(base, icu=icu_version_info[0])
    assert "icu" not in scheme_id(base, version=3)  # the ids of earlier versions, as they were stored


def test_body_hash_equal_for_cosmetic_variants_only() -> None:
    a = "Russia is compiling a list, the “United States” said."
    assert body_hash(a) == body_hash("russia is compiling a list the \"united states\" said")
    assert body_hash(a) == body_hash("Russia  is\ncompiling a list — the United States said!!")
    assert body_hash(a) != body_hash("Russia is compiling a list, the United Kingdom said.")
    assert body_hash(a) != body_hash("Russia is compiling a list the States United said")  # order matters
    assert len(body_hash(a)) == 64 and int(body_hash(a), 16) >= 0


# --- signatures ------------------------------------------------------------------------------------


def test_signatures_deterministic_and_independent_of_batch(rng: np.random.Generator) -> None:
    texts = [make_text(rng, n) for n in (300, 50, 3, 800)] + ["", "one"]
    s = sign_texts(texts)
    assert s.minhash.dtype == np.uint32 and s.minhash.shape == (6, 128)
    again = sign_texts(texts)
    assert np.array_equal(s.minhash, again.minhash)
    # A text's signature does not depend on what else is in its batch, nor on its position.
    for i, t in enumerate(texts):
        alone = sign_texts([t])
        assert np.array_equal(alone.minhash[0], s.minhash[i])
        assert alone.n_shingles[0] == s.n_shingles[i]
    rev = sign_texts(texts[::-1])
    assert np.array_equal(rev.minhash[::-1], s.minhash)
    # Pinned values: a change of the hashing code must bump SCHEME_VERSION (it changes stored data).
    assert sign_texts(["the quick brown fox jumps over the lazy dog"]).minhash[0, :2].tolist() == \
        [584800187, 243630463]



def test_signatures_carry_body_hash_and_take_concat_keep_rows_together(rng: np.random.Generator) -> None:
    texts = [make_text(rng, n) for n in (300, 50, 3)] + ["", "It’s  the SAME, body."]
    s = sign_texts(texts)
    # The writer stores these as articles.body_hash: they must equal body_hash() of the text, which the
    # re-clean path and the exact tier compute from the stored body.
    assert list(s.body_hash) == [body_hash(t) for t in texts]
    assert s.body_hash[4] == body_hash("its the same body")
    picked = s.take([4, 0])
    assert list(picked.body_hash) == [s.body_hash[4], s.body_hash[0]]
    assert np.array_equal(picked.minhash, s.minhash[[4, 0]]) and picked.n_words.tolist() == [4, 300]
    whole = s.concat([s.take([0, 1]), sign_texts([]), s.take([2, 3, 4])], SignConfig())
    assert np.array_equal(whole.minhash, s.minhash) and list(whole.body_hash) == list(s.body_hash)
    assert np.array_equal(whole.n_shingles, s.n_shingles) and len(s.concat([], SignConfig())) == 0

def test_counts_short_and_empty_texts() -> None:
    s = sign_texts(["", "two words", "a b c d e", "a b c d e f g", "a a a a a a a"], SignConfig(shingle_size=5))
    assert s.n_words.tolist() == [0, 2, 5, 7, 7]
    # < k words: one shingle of all words; k words: 1; 7 words: 3; a repeated 5-gram counts once.
    assert s.n_shingles.tolist() == [0, 1, 1, 3, 1]
    assert (s.minhash[0] == np.iinfo(np.uint32).max).all()  # empty text matches nothing
    empty = sign_texts([])
    assert empty.minhash.shape == (0, 128) and empty.minhash.dtype == np.uint32 and len(empty.n_shingles) == 0
    assert not (s.minhash[1] == s.minhash[2]).all()


def test_seed_and_parameters_change_signatures_and_scheme() -> None:
    text = ["Some words that make up a text long enough to have shingles in it."]
    base = SignConfig()
    assert not np.array_equal(sign_texts(text, base).minhash, sign_texts(text, replace(base, seed=1)).minhash)
    ids = {scheme_id(c) for c in (base, replace(base, seed=1), replace(base, shingle_size=4),
                                  replace(base, num_perm=256), replace(base, bands=32, rows=4))}
    assert len(ids) == 5
    assert scheme_id(base) == scheme_id(SignConfig())


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="exceeds num_perm"):
        SignConfig(num_perm=64, bands=64, rows=2)
    with pytest.raises(ValueError):
        SignConfig(shingle_size=0)


def test_jaccard_estimate_close_to_exact(rng: np.random.Generator) -> None:
    """Pairs over the whole Jaccard range: the estimate stays within 4 standard errors of the exact
    Jaccard of the same shingle sets, and is unbiased on average."""
    base = [make_text(rng, 600) for _ in range(12)]
    texts_a, texts_b = [], []
    for i, t in enumerate(base):
        words = t.split()
        keep = 1.0 - i / (len(base) - 1)  # share of words kept from the original
        mask = rng.random(len(words)) < keep
        other = make_text(rng, len(words)).split()
        texts_a.append(t)
        texts_b.append(" ".join(w if m else o for w, m, o in zip(words, mask, other, strict=True)))
    sa, sb = sign_texts(texts_a), sign_texts(texts_b)
    est = estimate_jaccard(sa.minhash, sb.minhash)
    sets_a, sets_b = shingle_sets(texts_a), shingle_sets(texts_b)
    exact = np.array([exact_similarity(x, y)[0] for x, y in zip(sets_a, sets_b, strict=True)])
    assert exact.max() == 1.0 and exact.min() < 0.05  # the range is covered
    se = np.sqrt(np.maximum(exact * (1 - exact), 1 / 128) / 128)
    assert np.all(np.abs(est - exact) <= 4 * se), (est, exact)
    assert abs(float(np.mean(est - exact))) < 0.03
    # n_shingles is the size of the exact set
    assert sa.n_shingles.tolist() == [len(x) for x in sets_a]


def test_containment_of_trimmed_copy(rng: np.random.Generator) -> None:
    full = make_text(rng, 900)
    words = full.split()
    trimmed = " ".join(words[: len(words) * 6 // 10])  # the first 60 %: a trimmed syndicated copy
    s = sign_texts([full, trimmed])
    j = estimate_jaccard(s.minhash[:1], s.minhash[1:])
    c = estimate_containment(j, s.n_shingles[:1], s.n_shingles[1:])
    assert 0.45 <= j[0] <= 0.75  # Jaccard alone would miss it (exact ≈ 0.6)
    assert c[0] >= 0.85
    jx, cx = exact_similarity(*shingle_sets([full, trimmed]))
    assert cx == 1.0 and 0.55 < jx < 0.65
    # Negative: an unrelated text of the same length has containment near 0.
    other = sign_texts([make_text(rng, 540)])
    j2 = estimate_jaccard(s.minhash[:1], other.minhash)
    assert estimate_containment(j2, s.n_shingles[:1], other.n_shingles)[0] < 0.1


def test_band_keys_equal_iff_band_values_equal() -> None:
    cfg = SignConfig()
    rng = np.random.default_rng(3)
    m = rng.integers(0, 2**32, size=(3, cfg.num_perm), dtype=np.uint64).astype(np.uint32)
    m[1] = m[0]
    m[1, 0] ^= 1  # differs from row 0 in band 0 only
    k = band_keys(m, cfg)
    assert k.shape == (3, cfg.bands) and k.dtype == np.int64
    assert k[0, 0] != k[1, 0] and np.array_equal(k[0, 1:], k[1, 1:])
    assert len(np.intersect1d(k[0], k[2])) == 0
    # Keys encode the band: the same values in two different bands give different keys.
    same = np.zeros((1, cfg.num_perm), dtype=np.uint32)
    ks = band_keys(same, cfg)
    assert len(set(ks[0].tolist())) == cfg.bands


def test_sign_module_stays_pure() -> None:
    code = ("import sys, newsetl.text.sign; bad = {'duckdb', 'prefect', 'pyarrow'} & set(sys.modules); "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_word_hash_separates_anagrams_long_tokens_and_scripts() -> None:
    # Each text is one word, so its single shingle is that word: equal minhash iff equal word hash.
    words = ["ab", "ba", "x" * 70, "x" * 6 + "y" + "x" * 63, "x" * 64 + "y" + "x" * 5, "x" * 71,
             "é", "e", "україна", "украина", "a" * 130, "a" * 129 + "b"]
    s = sign_texts(words)
    rows = {tuple(r) for r in s.minhash[:, :8].tolist()}
    assert len(rows) == len(words)
    assert np.array_equal(sign_texts(["x" * 70]).minhash, s.minhash[2:3])


def test_signatures_keep_the_exact_shingle_sets_through_take_and_concat() -> None:
    texts = ["The council approved the budget on Tuesday after a long debate.", "", "one two",
             "Residents asked for an earlier ferry, the chair said at the meeting on the quay."]
    sigs = sign_texts(texts)
    exact = shingle_sets(texts)
    assert [len(sigs.shingles(i)) for i in range(4)] == [len(e) for e in exact] == list(sigs.n_shingles)
    assert all(np.array_equal(sigs.shingles(i), exact[i]) for i in range(4))
    picked = sigs.take([3, 0])
    assert np.array_equal(picked.shingles(0), exact[3]) and np.array_equal(picked.shingles(1), exact[0])
    joined = Signatures.concat([sigs.take([1, 2]), sigs.take([3])], SignConfig())
    assert [len(joined.shingles(i)) for i in range(3)] == [0, 1, len(exact[3])]
    assert np.array_equal(joined.shingles(2), exact[3])


def test_a_list_story_full_copy_is_more_complete_than_its_teaser() -> None:
    # A deals list and a league table: their items end like no sentence. Counted as furniture, the lead-only
    # teaser of such a story was its canonical (a user trial); counted neither way, the full copy wins.
    from newsetl.text.sign import completeness

    lead = "\n".join(["The shops open their winter sale on Friday and the best offers are listed below."] * 3)
    deals = "\n".join(f"{i}) Lego Star Wars set number {75000 + i} for the family" for i in range(1, 30))
    table = "\n".join(f"{i} Kyle Busch {5040 - i} {i % 7} 1 17 27" for i in range(1, 30))
    for body in (deals, table):
        assert completeness(f"{lead}\n{body}") == completeness(lead)
        assert completeness(f"{lead}\n{body}\nThe sale ends on Monday at midnight in every shop of the chain.") > \
            completeness(lead)
    # Menus and headline lists are still furniture, numbers or not.
    menu = "\n".join(["Home", "News 24", "Sport", "Top 10 stories of the week you missed"])
    assert completeness(f"{lead}\n{menu}") < completeness(lead)


def test_completeness_prefers_the_full_story_over_furniture_in_any_script() -> None:
    from newsetl.text.sign import completeness

    en = "The council agreed on Friday to cut the night bus service by half next year."
    menu = "\n".join(["Home", "News", "Sport", "Sign in", "Skip to content"])
    assert completeness(f"{menu}\n{en}\n{en}\n{menu}") < completeness(f"{en}\n{en}") < completeness(f"{en}\n{en}\n{en}")
    assert completeness(f"{en}\nThe inquiry continues.") == completeness(en)  # a short sentence: neither way
    # a long text without one line ending like a sentence is furniture (a page dump, a link list), not a story
    dump = "\n".join(["Home News Sport Weather Sign in Subscribe Latest Video Audio Live"] * 40)
    assert completeness(dump) < 0 < completeness(en)
    # Sentences ending in the danda, the Urdu full stop, a Japanese closing quote: the longer copy is fuller
    hi = "सरकार ने आज नई परिवहन नीति की घोषणा की जो अगले साल से लागू होगी।"
    ur = "حکومت نے آج نئی ٹرانسپورٹ پالیسی کا اعلان کیا جو اگلے سال سے نافذ ہوگی۔"
    ja = "「東京都は来年から新しい交通計画を始めると発表した。これは大きな変化になるだろう。」"
    for line in (hi, ur, ja):
        assert 0 < completeness("\n".join([line] * 2)) < completeness("\n".join([line] * 6)), line
    # Chinese with a number written apart, and Thai, which has no full stop at all
    zh = "北京市政府今天宣布 2025 年起实施新的交通管理规定，以减少城市中心的交通拥堵。"
    assert completeness(zh) > 0
    th = "รัฐบาลประกาศนโยบาย การขนส่งใหม่ในวันนี้"
    assert completeness("\n".join([th] * 2)) < completeness("\n".join([th] * 6))
