"""Signatures for near-duplicate detection: normalized words, word shingles, MinHash, LSH band keys.

Pure numpy + stdlib (no prefect, no duckdb), vectorized over a whole batch:

1. `normalize_for_signature`: NFKC, casefold, one apostrophe/quote style, punctuation dropped, words (as
   `word_count` counts them in Chinese, Japanese, Thai, Lao, Khmer and Burmese, written without spaces).
   Two scrapes of one story differ in quotes, case, spacing and punctuation far more often than in words.
2. Every word is hashed to 64 bits by tabulation over its UTF-8 bytes (a seeded random table), for the
   whole batch at once in numpy: no per-word Python work.
3. A shingle (k consecutive words) is an order-sensitive mix of its word hashes (splitmix64 finalizer),
   reduced to 32 bits. Shingles never cross two documents.
4. MinHash with `num_perm` strongly universal hash functions h_i(x) = (a_i * x + b_i) mod 2^64 >> 32 on
   the 32-bit shingle keys (Dietzfelbinger's multiply-add-shift: exact in uint64 arithmetic, no modulo
   by a prime, no Python loop over permutations). Signatures are **uint32**, (n, num_perm).
5. `band_keys`: the signature cut into `bands` bands of `rows` values, each band hashed to one signed
   64-bit key that also encodes the band index, so the warehouse needs a single BIGINT column to join on.

Everything that changes a signature or a band key (normalization, ICU's dictionaries, hash functions, seed,
k, num_perm, bands × rows) is part of `scheme_id`, which the warehouse stores and checks: signatures of two
schemes are never comparable, so they must never be mixed.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np

from newsetl.text.lines import CLOSERS, is_story_line
from newsetl.text.words import (
    SEGMENTED_CLASS,
    SEGMENTED_RANGES,
    SPACELESS_CLASS,
    SPACELESS_RANGES,
    count_words,
    segment_words,
    segmenter_version,
)

# Bump when normalize_for_signature or the hashing code changes in a way that changes signatures.
# 3: Chinese and Japanese are signed one word per character (2: runs between punctuation); only texts with
# such characters changed, so a warehouse of version 2 is upgraded in place (warehouse/dedup.py).
# 4: Thai, Lao, Khmer and Burmese are signed as ICU cuts their words (3: fragments between their vowel signs and
# tone marks, which were dropped); only texts with such letters changed, upgraded in place as for 3.
SCHEME_VERSION = 4

_U64 = np.uint64
_MASK32 = _U64(0xFFFFFFFF)
# Shingles hashed at once: num_perm × 8192 uint64 = 8 MB of temporary memory whatever the batch size.
_CHUNK_COLS = 8192


@dataclass(frozen=True)
class SignConfig:
    """How texts become signatures. Defaults measured on dedup-dev (see bench/eval_dedup.py).

    shingle_size: words per shingle. 3: an edited word breaks only 3 shingles, so a copy with 2 % of
        its words changed keeps J ≈ 0.89 (≈ 0.82 with 5-grams, below the 0.8 threshold for a quarter of
        such copies). Unrelated texts of dedup-dev stay far apart with any k: the closest cross-story
        pair (nav-only page dumps of one site) has J ≈ 0.72 for k = 3, 4 and 5. Measured: dev ARI
        0.984 (k=3) / 0.985 (4) / 0.982 (5); synthetic syndicated copies 0.991 / 0.974 / 0.949.
    num_perm: MinHash length. 128 gives a Jaccard standard error of at most 0.044 (0.5/sqrt(128)).
    bands × rows: LSH banding over the first bands × rows values (all num_perm values serve the
        Jaccard estimate). 32 × 2 finds a pair with probability 0.73 at J = 0.2, 0.95 at J = 0.3 and
        0.998 at J = 0.4: low on purpose, since every candidate is verified afterwards and a trimmed copy
        (high containment) of a longer text often has a Jaccard of 0.2-0.4. On dedup-dev (3 seeds),
        32 × 4 loses 0.02-0.025 ARI and 42 × 3 about 0.01 against rows = 2; 64 × 2 gains only
        0.002-0.005 ARI over 32 × 2 for twice the band rows, and the band join time is linear in them
        (bench/bench_dedup.py: 10k against 1M stored, 32 bands 0.3 s warm, 64 bands 0.9 s).
    seed: keys the word hash and draws the permutations.
    """

    shingle_size: int = 3
    num_perm: int = 128
    bands: int = 32
    rows: int = 2
    seed: int = 20240601

    def __post_init__(self) -> None:
        if self.shingle_size < 1:
            raise ValueError("shingle_size must be >= 1")
        if self.num_perm < 1 or self.bands < 1 or self.rows < 1:
            raise ValueError("num_perm, bands and rows must be >= 1")
        if self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands × rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        if not 0 <= self.seed < 2**63:
            raise ValueError("seed must be in [0, 2**63)")


@dataclass(frozen=True)
class Signatures:
    """Signatures of a batch of texts, row i for text i.

    minhash: (n, num_perm) uint32. A text without any word has all values 0xFFFFFFFF and
        n_shingles 0; it matches nothing (the minimum-length guard refuses it anyway).
    n_shingles: (n,) int64, distinct shingles of each text (for containment estimates).
    n_words: (n,) int64, normalized words of each text.
    completeness: (n,) int64, `completeness` of each text: how the canonical copy is chosen (0 for
        texts signed from their words alone).
    body_hash: (n,) object array of str, `body_hash` of each text. Computed here, from the words the
        signature already normalized, so the single warehouse writer does not normalize every body again.
    shingle_keys, shingle_offsets: the exact shingle sets behind the signatures (text i's sorted distinct
        32-bit keys are shingle_keys[shingle_offsets[i]:shingle_offsets[i + 1]]), a by-product of
        signing kept so that a borderline pair is decided exactly without shingling the bodies again in
        the writer. None when not kept (signatures read back from storage).
    """

    minhash: np.ndarray
    n_shingles: np.ndarray
    n_words: np.ndarray
    body_hash: np.ndarray
    completeness: np.ndarray
    shingle_keys: np.ndarray | None = None
    shingle_offsets: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.minhash.shape[0])

    def shingles(self, i: int) -> np.ndarray | None:
        """Text i's exact shingle set (sorted distinct uint32 keys), when kept."""
        if self.shingle_keys is None or self.shingle_offsets is None:
            return None
        return self.shingle_keys[int(self.shingle_offsets[i]):int(self.shingle_offsets[i + 1])]

    def take(self, rows: Sequence[int]) -> Signatures:
        """The signatures of rows `rows`, in that order."""
        idx = np.asarray(rows, dtype=np.int64)
        keys, offsets = None, None
        if self.shingle_keys is not None and self.shingle_offsets is not None:
            start, end = self.shingle_offsets[idx], self.shingle_offsets[idx + 1]
            lens = end - start
            offsets = np.zeros(len(idx) + 1, dtype=np.int64)
            np.cumsum(lens, out=offsets[1:])
            pos = np.repeat(start - offsets[:-1], lens) + np.arange(int(offsets[-1]), dtype=np.int64)
            keys = self.shingle_keys[pos]
        return Signatures(minhash=self.minhash[idx], n_shingles=self.n_shingles[idx], n_words=self.n_words[idx],
                          body_hash=self.body_hash[idx], completeness=self.completeness[idx],
                          shingle_keys=keys, shingle_offsets=offsets)

    @staticmethod
    def concat(parts: Sequence[Signatures], config: SignConfig) -> Signatures:
        """Row-wise concatenation (the parts of one batch signed by several workers)."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return sign_words([], config)
        return concat_signatures(parts)


def concat_signatures(parts: Sequence[Signatures]) -> Signatures:
    """Row-wise concatenation of non-empty `parts` (all of one num_perm); shingle sets kept if all have them."""
    keys, offsets = None, None
    if all(p.shingle_keys is not None and p.shingle_offsets is not None for p in parts):
        keys = np.concatenate([p.shingle_keys for p in parts if p.shingle_keys is not None])
        shift = np.cumsum([0] + [int(p.shingle_offsets[-1]) for p in parts if p.shingle_offsets is not None])
        offsets = np.concatenate([np.zeros(1, dtype=np.int64)]
                                 + [p.shingle_offsets[1:] + shift[k] for k, p in enumerate(parts)
                                    if p.shingle_offsets is not None])
    return Signatures(minhash=np.concatenate([p.minhash for p in parts]),
                      n_shingles=np.concatenate([p.n_shingles for p in parts]),
                      n_words=np.concatenate([p.n_words for p in parts]),
                      body_hash=np.concatenate([p.body_hash for p in parts]),
                      completeness=np.concatenate([p.completeness for p in parts]),
                      shingle_keys=keys, shingle_offsets=offsets)


def scheme_id(config: SignConfig, version: int = SCHEME_VERSION, icu: int | None = None) -> str:
    """Identifies everything that makes two signatures (and band keys) comparable (`version`: the code's,
    or an earlier one's, to recognize a warehouse signed by it). From version 4 on it names the major version
    of ICU (`icu`, by default the one installed), whose dictionaries cut the words of Thai, Lao, Khmer and
    Burmese: another one may cut some words otherwise."""
    words = "words-nfkc-casefold"
    if version >= 4:
        words += f"-icu{segmenter_version() if icu is None else icu}"
    return (f"minhash-v{version}/{words}/tab64-splitmix/mas32"
            f"/k{config.shingle_size}/p{config.num_perm}/b{config.bands}x{config.rows}/s{config.seed}")


# Apostrophe and single-quote variants that scrapes of one story disagree on. They are deleted rather
# than turned into separators, so "Spain’s", "Spain's" and "Spains" are one word and "don't" stays one
# word; at a word edge deleting a quote is the same as dropping punctuation. (str.replace per variant is
# 15× faster than a regex or str.translate here.)
_APOSTROPHES = ("'", "’", "‘", "`", "´", "ʼ", "′")
# Words: runs of letters/digits in any script; punctuation, symbols and "_" separate them.
_WORD = re.compile(r"[^\W_]+")
# Chinese and Japanese are written without spaces: there every Han ideograph and kana is a word of its own
# (text/words.py counts them so), and the other scripts' words are runs as above. Taken as runs, a
# 440-character Chinese article had 32 shingles (one word per clause), fewer than `DedupConfig.min_shingles`,
# so no copy of it was ever matched; an edit of one character changed a whole clause's word. As characters,
# shingles are 3 characters long, and the same article has 392.
_SPACELESS = re.compile(SPACELESS_CLASS)
# The same letters as an RE2 class, for SQL (DuckDB's regexp functions): the stored bodies whose signatures
# scheme 3 changed (warehouse/dedup.py, `resign_spaceless`).
SPACELESS_RE2 = "[" + "".join(f"\\x{{{lo:x}}}-\\x{{{hi:x}}}" for lo, hi in SPACELESS_RANGES) + "]"
# (The lookahead: the blocks hold a few non-letters too, the katakana middle dot "・".)
_SPACELESS_WORD = re.compile(f"(?=[^\\W_]){SPACELESS_CLASS}|(?:(?!{SPACELESS_CLASS})[^\\W_])+")
# Thai, Lao, Khmer and Burmese write no space between words either, and theirs run to several code points: a
# run of their letters is cut into words by ICU's dictionaries (text/words.py `segment_words`), as word_count
# counts them, so `min_shingles` means ~50 words there as anywhere. As runs of word characters (up to scheme 3)
# they fell apart at every vowel sign and tone mark, which are no word characters and were dropped ("เดิน"
# signed "เด"): arbitrary fragments, in Thai ~20 a 100 characters (words: ~23), in Burmese ~31, mostly single
# consonants (words: ~21), where two unrelated stories shared 5% of their shingles (as words 1%).
_SEGMENTED = re.compile(SEGMENTED_CLASS)
# The same letters as an RE2 class, for SQL: the stored bodies whose signatures scheme 4 changed.
SEGMENTED_RE2 = "[" + "".join(f"\\x{{{lo:x}}}-\\x{{{hi:x}}}" for lo, hi in SEGMENTED_RANGES) + "]"
# A run of those letters (group 1, for ICU) or, as above, a Chinese or Japanese character or a run of others.
_SEGMENTED_TOKEN = re.compile(f"({SEGMENTED_CLASS}+)|(?=[^\\W_]){SPACELESS_CLASS}"
                              f"|(?:(?!{SPACELESS_CLASS}|{SEGMENTED_CLASS})[^\\W_])+")
# Both classes in one: the one scan that tells a text needing neither (18 µs on 5 KB of English with curly
# quotes; the Chinese and Japanese class alone took 25).
_SPACELESS_OR_SEGMENTED = re.compile(SPACELESS_CLASS[:-1] + SEGMENTED_CLASS[1:])
# NFKC takes Thai and Lao AM apart (into NIKHAHIT and AA) and Lao HO NO and HO MO (into HO SUNG and NO, MO);
# ICU's dictionaries know the whole letters and cut "ນ້ໍາ" and "ຫນ້າທີ່" worse: put them back together.
_RECOMPOSE = (("\u0e4d\u0e32", "\u0e33"), ("\u0ecd\u0eb2", "\u0eb3"), ("\u0eab\u0e99", "\u0edc"),
              ("\u0eab\u0ea1", "\u0edd"))


def normalize_for_signature(text: str) -> list[str]:
    """The words a signature is built from: NFKC, casefold, apostrophes joined, punctuation dropped; in
    Chinese and Japanese one word per character, in Thai, Lao, Khmer and Burmese ICU's words."""
    if not unicodedata.is_normalized("NFKC", text):  # the check is ~10× cheaper than normalizing
        text = unicodedata.normalize("NFKC", text)
    text = text.casefold()
    for q in _APOSTROPHES:
        text = text.replace(q, "")
    if text.isascii() or _SPACELESS_OR_SEGMENTED.search(text) is None:
        return _WORD.findall(text)
    if _SEGMENTED.search(text) is None:
        return _WORD.findall(text) if _SPACELESS.search(text) is None else _SPACELESS_WORD.findall(text)
    for parts, whole in _RECOMPOSE:
        text = text.replace(parts, whole)
    words: list[str] = []
    for m in _SEGMENTED_TOKEN.finditer(text):
        if m.group(1) is None:
            words.append(m.group(0))
        else:
            words.extend(segment_words(m.group(1)))
    return words


def body_hash(text: str) -> str:
    """sha256 hex of the normalized words: equal for two bodies that differ only in case, spacing,
    punctuation or quote style (the exact-duplicate tier)."""
    return _words_hash(normalize_for_signature(text))


def _words_hash(words: list[str]) -> str:
    return hashlib.sha256(" ".join(words).encode("utf-8")).hexdigest()


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer: a bijective 64-bit mixer that spreads every input bit (in place)."""
    x ^= x >> _U64(30)
    x *= _U64(0xBF58476D1CE4E5B9)
    x ^= x >> _U64(27)
    x *= _U64(0x94D049BB133111EB)
    x ^= x >> _U64(31)
    return x


def _params(config: SignConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Permutation parameters (a odd, b), per-position shingle multipliers and the byte table of the word
    hash, all derived from the seed so signatures are reproducible across processes and machines."""
    rng = np.random.Generator(np.random.PCG64(config.seed))
    a = rng.integers(0, 2**63, size=config.num_perm, dtype=np.uint64) * _U64(2) + _U64(1)
    b = rng.integers(0, 2**63, size=config.num_perm, dtype=np.uint64)
    pos = rng.integers(0, 2**63, size=config.shingle_size, dtype=np.uint64) * _U64(2) + _U64(1)
    table = rng.integers(0, 2**64, size=(_TAB_POS, 256), dtype=np.uint64)
    return a, b, pos, table


# Word hash: tabulation over (byte position mod 64, byte value), summed over the word's UTF-8 bytes; a
# position ≥ 64 also multiplies its entry by an odd constant of its 64-byte block, so long tokens do not
# alias. Random table entries make two different words of one length collide with probability 2^-64,
# and the whole batch is hashed in a few numpy passes with no per-word Python work.
_TAB_POS = 64


def _word_hashes(docs_words: Sequence[list[str]], table: np.ndarray) -> np.ndarray:
    """uint64 hash of every word occurrence of the batch, documents concatenated."""
    flat = list(chain.from_iterable(docs_words))
    if not flat:
        return np.zeros(0, dtype=np.uint64)
    # Words never contain NUL (it is not a word character), so it can separate them in one buffer.
    buf = np.frombuffer("\x00".join(flat).encode("utf-8"), dtype=np.uint8)
    sep = np.flatnonzero(buf == 0)
    nbytes = (np.diff(np.r_[-1, sep, len(buf)]) - 1).astype(np.int32)  # UTF-8 length of each word, ≥ 1
    body = buf[buf != 0]
    first = np.cumsum(nbytes, dtype=np.int64) - nbytes  # offset of each word in `body`
    # int32 positions: half the memory traffic of int64 on these byte-sized arrays.
    itype = np.int32 if len(body) < 2**31 else np.int64
    pos = np.arange(len(body), dtype=itype) - np.repeat(first.astype(itype), nbytes)
    vals = table.ravel()[((pos & (_TAB_POS - 1)) << 8) | body]
    if int(nbytes.max()) > _TAB_POS:
        far = pos >= _TAB_POS
        block = (pos[far] // _TAB_POS).astype(np.uint64)
        vals[far] *= _splitmix64(block * _U64(0x9E3779B97F4A7C15)) | _U64(1)
    h = np.add.reduceat(vals, first)
    h += nbytes.astype(np.uint64) * _U64(0xD6E8FEB86659FD93)
    return _splitmix64(h)


def _shingle_keys(docs_words: Sequence[list[str]], config: SignConfig,
                  pos: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(doc index, 32-bit shingle key) of every distinct shingle of every document, sorted by doc.

    A text shorter than k words yields one shingle of all its words (so short texts still compare),
    an empty text none."""
    k = config.shingle_size
    n = len(docs_words)
    lens = np.fromiter((len(w) for w in docs_words), dtype=np.int64, count=n)
    wh = _word_hashes(docs_words, table)
    starts = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lens, out=starts[1:])
    total = int(starts[-1])
    # Shingle starting at every token position i: sum_j pos[j] * word[i + j]; positions past the end of
    # the batch read zeros and are discarded below with those that cross into the next document.
    padded = np.zeros(total + k, dtype=np.uint64)
    padded[:total] = wh
    acc = np.zeros(total, dtype=np.uint64)
    for j in range(k):
        acc += padded[j:j + total] * pos[j]
    doc_of_token = np.repeat(np.arange(n, dtype=np.int64), lens)
    offset_in_doc = np.arange(total, dtype=np.int64) - starts[:-1][doc_of_token]
    n_sh = np.maximum(lens - k + 1, np.minimum(lens, 1))  # ≥ 1 shingle for a non-empty text
    valid = offset_in_doc < n_sh[doc_of_token]
    # A text shorter than k words: its single shingle must not run into the next document's words;
    # recompute it over its own words only.
    short = np.flatnonzero((lens > 0) & (lens < k))
    for d in short:
        s = int(starts[d])
        acc[s] = np.sum(wh[s:s + lens[d]] * pos[:lens[d]], dtype=np.uint64)
    keys = _splitmix64(acc[valid]) >> _U64(32)
    docs = doc_of_token[valid]
    # Distinct shingles per document: one sort of (doc, key) packed in 64 bits.
    # (np.unique is hash-based in numpy 2.x and 10× slower than sort + diff on this.)
    packed = np.sort((docs.astype(np.uint64) << _U64(32)) | keys)
    if len(packed):
        packed = packed[np.r_[True, packed[1:] != packed[:-1]]]
    return (packed >> _U64(32)).astype(np.int64), packed & _MASK32


# Sentence ends in the scripts news is written in (Latin, CJK full-width, Devanagari danda, Arabic and Urdu,
# Armenian, Ethiopic, Burmese, Khmer, Tibetan), and the closing quotes and brackets that may follow them.
_SENTENCE_ENDS = frozenset(".!?…。！？．।॥۔؟։።။។།")
_CLOSERS_ANY = CLOSERS + "」』）】》〉"
_NO_FULL_STOP_SCRIPT = re.compile("[\u0e00-\u0eff]")  # Thai, Lao
# A content line that ends like no sentence: an item of a numbered list ("1) Lego Star Wars 75188 ...",
# "2. Preheat the oven") or a row of a table of figures ("1 Kyle Busch 5040 5 1 17 27"). Menus, tag lists
# and related-story headlines are neither.
_NUMBERED_ITEM = re.compile(r"\(?\d{1,2}[.)]\s+\S")
_FIGURE = re.compile(r"[\d.,:%/+-]*\d[\d.,:%/+-]*")


def _list_or_table_row(tokens: Sequence[str], line: str) -> bool:
    """A numbered list's item or a table row of figures (two tokens in five numbers), of 4 tokens or more."""
    return len(tokens) >= 4 and (_NUMBERED_ITEM.match(line) is not None
                                 or 5 * sum(_FIGURE.fullmatch(t) is not None for t in tokens) >= 2 * len(tokens))


def completeness(text: str) -> int:
    """How much of a story a text tells, for choosing a story's canonical copy: the words of its story
    sentences minus the words of its lines that do not end like a sentence (a short sentence, "The inquiry
    continues.", counts neither way). A story sentence is `is_story_line`'s, or, in scripts whose sentences
    end otherwise (。 । ۔ ။ ...), a line of 8 words or more (20 characters in Chinese and Japanese, written
    without spaces) ending so. A Thai or Lao text with no line ending like a sentence (neither has a full
    stop) counts its words: there is nothing to tell story from furniture by.

    "Most words" alone chose the dirtiest copy: a full-page dump holds the article and its menus, cookie
    notice and link lists (on dedup-dev its canonicals scored AEB F1 0.70 against the true body, the best
    copy of each story 0.96; this rule's 0.87). Here a menu costs what it adds, a dropped paragraph costs
    its words, and a clean copy with every paragraph wins.

    The items of a numbered list and the rows of a table of figures count neither way: they end like no
    sentence, and counted as furniture a story that is mostly a list (a deals list, a league table) had its
    lead-only teaser chosen over its full copies (a user trial; on dedup-dev no story's choice changes)."""
    story = other = 0
    ended = False
    for line in text.split("\n"):
        s = line.strip()
        if not s:
            continue
        spaceless = not s.isascii() and _SPACELESS.search(s) is not None
        # Whitespace tokens: 6x cheaper than count_words, which only lines in Chinese or Japanese need.
        tokens = s.split()
        n = count_words(s) if spaceless else len(tokens)
        last = s.rstrip(_CLOSERS_ANY)[-1:]
        if last and last in _SENTENCE_ENDS:
            ended = True
            if is_story_line(s) or (last not in ".!?…" and n >= (20 if spaceless else 8)):
                story += n
        elif not _list_or_table_row(tokens, s):
            other += n
    # Thai and Lao end no sentence with a mark: there, a text without a line ending like a sentence counts
    # its words, as "most words" did. Anywhere else such a text is furniture only (a menu, a link list):
    # counted as such, or a 1,600-word page dump without a full stop at a line's end became the canonical.
    if not ended and _NO_FULL_STOP_SCRIPT.search(text):
        return other
    return story - other


def sign_texts(texts: Sequence[str], config: SignConfig = SignConfig()) -> Signatures:
    """MinHash signatures of `texts` (row i for texts[i]); deterministic for a given config."""
    words = [normalize_for_signature(t) for t in texts]
    return sign_words(words, config, np.fromiter(map(completeness, texts), dtype=np.int64, count=len(texts)))


def sign_words(docs_words: Sequence[list[str]], config: SignConfig = SignConfig(),
               completeness: np.ndarray | None = None) -> Signatures:
    """`sign_texts` for texts already normalized with `normalize_for_signature` (`completeness` of each
    text, 0 when not given)."""
    n = len(docs_words)
    a, b, pos, table = _params(config)
    doc_idx, keys = _shingle_keys(docs_words, config, pos, table)
    n_shingles = np.bincount(doc_idx, minlength=n).astype(np.int64)
    # Permutations as rows, shingles as columns: reduceat along the contiguous axis is 4× faster than
    # along rows. A document may span chunks, so each chunk's segment minima are folded into `out`.
    out = np.full((config.num_perm, n), np.iinfo(np.uint64).max, dtype=np.uint64)
    for s in range(0, len(keys), _CHUNK_COLS):
        e = min(s + _CHUNK_COLS, len(keys))
        h = a[:, None] * keys[None, s:e]
        h += b[:, None]
        d = doc_idx[s:e]
        seg = np.flatnonzero(np.r_[True, d[1:] != d[:-1]])
        mins = np.minimum.reduceat(h, seg, axis=1)
        docs = d[seg]
        out[:, docs] = np.minimum(out[:, docs], mins)
    # The top 32 bits carry the strongly universal hash; min commutes with the monotone shift.
    minhash = np.ascontiguousarray((out >> _U64(32)).astype(np.uint32).T)
    n_words = np.fromiter((len(w) for w in docs_words), dtype=np.int64, count=n)
    hashes = np.empty(n, dtype=object)
    hashes[:] = [_words_hash(w) for w in docs_words]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(n_shingles, out=offsets[1:])
    return Signatures(minhash=minhash, n_shingles=n_shingles, n_words=n_words, body_hash=hashes,
                      completeness=np.zeros(n, dtype=np.int64) if completeness is None else completeness,
                      shingle_keys=keys.astype(np.uint32), shingle_offsets=offsets)


def band_keys(minhash: np.ndarray, config: SignConfig = SignConfig()) -> np.ndarray:
    """(n, bands) int64 LSH keys: band j of row i hashed with j, so keys of different bands never meet.

    Two signatures share a key in band j iff (up to a 2^-64 collision) their `rows` values in band j
    are equal, i.e. with probability J^rows for Jaccard J."""
    n = minhash.shape[0]
    r = config.rows
    m = minhash[:, : config.bands * r].astype(np.uint64).reshape(n, config.bands, r)
    acc = np.broadcast_to(
        _splitmix64(np.arange(1, config.bands + 1, dtype=np.uint64) * _U64(0x9E3779B97F4A7C15)),
        (n, config.bands),
    ).copy()
    for j in range(r):
        acc ^= m[:, :, j]
        acc = _splitmix64(acc)
    return acc.view(np.int64)


def estimate_jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Estimated Jaccard of row pairs: the share of equal MinHash values ((m, P) × (m, P) -> (m,))."""
    return np.mean(a == b, axis=-1)


def estimate_containment(jaccard: np.ndarray, n_a: np.ndarray, n_b: np.ndarray) -> np.ndarray:
    """Estimated containment of the smaller shingle set in the larger one, from Jaccard and set sizes.

    |A∩B| = J (|A| + |B|) / (1 + J); divided by min(|A|, |B|) and clipped to [0, 1] because the
    Jaccard estimate is noisy. Catches trimmed copies whose Jaccard is low only because one is shorter."""
    n_a = np.asarray(n_a, dtype=np.float64)
    n_b = np.asarray(n_b, dtype=np.float64)
    inter = jaccard * (n_a + n_b) / (1.0 + jaccard)
    small = np.maximum(np.minimum(n_a, n_b), 1.0)
    return np.clip(inter / small, 0.0, 1.0)


def shingle_sets(texts: Sequence[str], config: SignConfig = SignConfig()) -> list[np.ndarray]:
    """The exact shingle sets behind the signatures: per text, the sorted distinct 32-bit shingle keys.

    Used to verify a candidate exactly when its MinHash estimate is too close to a threshold to decide."""
    words = [normalize_for_signature(t) for t in texts]
    _, _, pos, table = _params(config)
    doc_idx, keys = _shingle_keys(words, config, pos, table)
    bounds = np.searchsorted(doc_idx, np.arange(len(words) + 1))
    keys32 = keys.astype(np.uint32)
    return [keys32[bounds[i]:bounds[i + 1]] for i in range(len(words))]


def exact_similarity(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(Jaccard, containment of the smaller set in the larger) of two sorted distinct key arrays."""
    if len(a) == 0 or len(b) == 0:
        return 0.0, 0.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter), inter / min(len(a), len(b))
