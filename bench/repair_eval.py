"""Repair measure: corrupt the AEB ground-truth bodies every way repair claims to undo, repair, compare.

    .venv/bin/python bench/repair_eval.py [--seed N] [--rounds R] [--per-kind] [--write-dir DIR]

Prints, for the corrupted texts without repair (baseline) and after `repair_text`:
- ``exact``: share of articles whose body equals the original after white-space normalization
  (runs of white space -> one space; NBSP counts as a space and the invisible format characters
  soft hyphen / zero-width / BOM count as nothing, since they are white space to a reader);
- the AEB scores of ``aeb_metric.aeb_scores`` (precision, recall, F1, token-sequence accuracy).
Goal: exact >= 0.95 and F1 >= 0.995.

Measured (264 corrupted copies = 88 bodies x 3 rounds, seed 20260501; baseline exact 0.023, F1 0.764):
- without wordfreq installed: exact 0.902, F1 0.9991 (stress, glue at any line break: 0.803 / 0.9985)
- with wordfreq installed:    exact 0.955, F1 0.9999 (stress: 0.856 / 0.9993)
One body (57b4da…) already contains a glued "Daten.Weder" that repair splits: 1.1% off every figure.

`corrupt(text, rng)` is importable (``from bench.repair_eval import corrupt``) so the same corruptions
can be written out as ``.txt`` files (``--write-dir``) and run through the whole pipeline.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_EVAL = REPO.parent / "shared" / "eval"

# Corruption kinds, in the order they are applied: layout damage first (it happens when text is
# extracted), character damage next (entities, stray controls), transport damage (mojibake) last.
KINDS: tuple[str, ...] = (
    "glued_sentence",
    "blank_lines",
    "hyphenation",
    "trailing_space",
    "line_ending",
    "nbsp",
    "zero_width",
    "soft_hyphen",
    "control_char",
    "html_entity",
    "mojibake",
)

_CP1252_PUNCT = "’‘“”–—…•€™"
_WORD_RE = re.compile(r"[^\W\d_]{7,}")
_COMPOUND_RE = re.compile(r"[^\W\d_]{2,}-[^\W\d_]{2,}")
_NAMED = {"&": "amp", "<": "lt", ">": "gt", '"': "quot", "’": "rsquo", "‘": "lsquo", "“": "ldquo",
          "”": "rdquo", "–": "ndash", "—": "mdash", "…": "hellip", "é": "eacute", "ü": "uuml",
          "\u00a0": "nbsp"}


_SENTENCE_END_RE = re.compile(r"[.!?][\"”’»)\]]*\Z")


def _glue(text: str, rng: random.Random, anywhere: bool = False) -> str:
    """Lose 1-3 line breaks: the paragraphs on both sides run together with nothing between.

    By default only breaks after a sentence end are lost (the `…the difference.Russia is…` kind);
    with `anywhere` also those after headings, list items, captions and URLs, where nothing in the
    glued text shows that a break was there ("Fort WorthNow", "$130See it now") - a stress test.
    """
    text = text.strip("\n")
    breaks = [m.span() for m in re.finditer(r"\n+", text)]
    if not anywhere:
        breaks = [(a, b) for a, b in breaks if _SENTENCE_END_RE.search(text, 0, a)]
    if not breaks:
        return text
    for start, end in sorted(rng.sample(breaks, min(len(breaks), rng.randint(1, 3))), reverse=True):
        text = text[:start] + text[end:]
    return text


def _glue_anywhere(text: str, rng: random.Random) -> str:
    return _glue(text, rng, anywhere=True)


def _hyphenate(text: str, rng: random.Random) -> str:
    """Hard-wrap 1-4 words at a line end: inside a word ("infor-\\nmation"), or at a compound's hyphen."""
    spots: list[tuple[int, int]] = []  # (position of the cut, characters to drop)
    words = [m for m in _WORD_RE.finditer(text) if m.group(0)[3:].islower()]
    for m in rng.sample(words, min(len(words), rng.randint(1, 3))):
        spots.append((m.start() + rng.randint(3, len(m.group(0)) - 3), 0))
    compounds = list(_COMPOUND_RE.finditer(text))
    if compounds and rng.random() < 0.5:
        m = rng.choice(compounds)
        spots.append((m.start() + m.group(0).index("-") + 1, 1))  # break after the compound's own hyphen
    for pos, own_hyphen in sorted(set(spots), reverse=True):
        text = text[:pos] + ("\n" if own_hyphen else "-\n") + text[pos:]
    return text


def _blank_lines(text: str, rng: random.Random) -> str:
    parts = re.split(r"(\n+)", text)
    for i in range(1, len(parts), 2):
        if rng.random() < 0.3:
            parts[i] = rng.choice(["\n\n\n", "\n\n\n\n", "\n \n\n", "\n\n\t\n\n"])
    return ("\n\n" if rng.random() < 0.3 else "") + "".join(parts) + ("\n\n\n" if rng.random() < 0.3 else "")


def _trailing_space(text: str, rng: random.Random) -> str:
    lines = text.split("\n")
    return "\n".join(line + rng.choice([" ", "  ", "\t", " \t "]) if rng.random() < 0.3 else line
                     for line in lines)


def _line_ending(text: str, rng: random.Random) -> str:
    mode = rng.choice(["crlf", "cr", "ls"])
    if mode == "crlf":
        return text.replace("\n", "\r\n")
    if mode == "cr":
        return text.replace("\n", "\r")
    return re.sub(r"\n", lambda m: "\u2028" if rng.random() < 0.5 else "\n", text)


def _nbsp(text: str, rng: random.Random) -> str:
    return re.sub(" ", lambda m: "\u00a0" if rng.random() < 0.1 else " ", text)


def _insert(text: str, rng: random.Random, n: int, chars: str, where: Callable[[str, int], bool]) -> str:
    spots = [i for i in range(1, len(text)) if where(text, i)]
    for pos in sorted(rng.sample(spots, min(len(spots), n)), reverse=True):
        text = text[:pos] + rng.choice(chars) + text[pos:]
    return text


def _latin_neighbours(text: str, i: int) -> bool:
    # ZWJ/ZWNJ are real text in Arabic, Indic scripts and emoji sequences: only put them where no
    # reader could need them (repair keeps them next to those scripts, by design).
    return ord(text[i - 1]) < 0x250 and ord(text[i]) < 0x250


def _zero_width(text: str, rng: random.Random) -> str:
    text = _insert(text, rng, rng.randint(2, 8), "\u200b\u2060\ufeff", lambda t, i: True)
    return _insert(text, rng, rng.randint(0, 3), "\u200c\u200d", _latin_neighbours)


def _soft_hyphen(text: str, rng: random.Random) -> str:
    return _insert(text, rng, rng.randint(2, 8), "\u00ad", lambda t, i: t[i - 1].isalpha() and t[i].isalpha())


def _control_char(text: str, rng: random.Random) -> str:
    """cp1252 punctuation read as Latin-1 (C1 controls: "\\x92" for "’"), plus a few stray C0 controls."""
    if rng.random() < 0.7:
        text = "".join(c.encode("cp1252").decode("latin-1") if c in _CP1252_PUNCT else c for c in text)
    c0 = "".join(chr(c) for c in [*range(0x00, 0x09), 0x0B, *range(0x0E, 0x20), 0x7F])
    return _insert(text, rng, rng.randint(1, 4), c0, lambda t, i: True)


def _html_entity(text: str, rng: random.Random) -> str:
    """Characters left as entities, in named, decimal and hex forms; sometimes escaped twice."""
    share = rng.uniform(0.3, 1.0)
    double = rng.random() < 0.2

    def escape(m: re.Match[str]) -> str:
        c = m.group(0)
        if c == " " and rng.random() > 0.03:
            return c
        if rng.random() > share:
            return c
        form = rng.choice(["named", "dec", "hex"]) if c in _NAMED else rng.choice(["dec", "hex"])
        ent = {"named": f"&{_NAMED.get(c, '')};", "dec": f"&#{ord(c)};", "hex": f"&#x{ord(c):X};"}[form]
        return ent.replace("&", "&amp;", 1) if double else ent

    return re.sub(r"[&<>\"’‘“”–—…éü\u00a0 ]", escape, text)


# UTF-8 bytes read as windows-1252 the way browsers do (WHATWG): the five bytes cp1252 leaves
# undefined become the C1 controls of the same number, every other byte its cp1252 character.
_C1_TO_CP1252 = {c: bytes([c]).decode("cp1252") for c in range(0x80, 0xA0)
                 if c not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)}


def _as_cp1252(text: str) -> str:
    return text.encode("utf-8").decode("latin-1").translate(_C1_TO_CP1252)


def _mojibake(text: str, rng: random.Random) -> str:
    """UTF-8 bytes read as cp1252 or Latin-1: whole text, twice, or only some paragraphs."""
    once: Callable[[str], str]
    mode = rng.choice(["cp1252", "latin1", "double", "partial"])
    if mode == "latin1":
        def once(s: str) -> str:
            return s.encode("utf-8").decode("latin-1")
    else:
        once = _as_cp1252
    if mode == "double":
        return once(once(text))
    if mode == "partial":
        parts = text.split("\n")
        return "\n".join(once(p) if rng.random() < 0.5 else p for p in parts)
    return once(text)


CORRUPTORS: Mapping[str, Callable[[str, random.Random], str]] = {
    "glued_sentence": _glue,
    "blank_lines": _blank_lines,
    "hyphenation": _hyphenate,
    "trailing_space": _trailing_space,
    "line_ending": _line_ending,
    "nbsp": _nbsp,
    "zero_width": _zero_width,
    "soft_hyphen": _soft_hyphen,
    "control_char": _control_char,
    "html_entity": _html_entity,
    "mojibake": _mojibake,
}


def corrupt(text: str, rng: random.Random, kinds: Sequence[str] | None = None,
            glue_anywhere: bool = False) -> str:
    """Damage `text` the ways scrapers do. Deterministic for a given `rng` state.

    With `kinds` None, each kind is applied with probability 1/2 (at least two kinds per text).
    `glue_anywhere` lets "glued_sentence" drop any line break, not only one after a sentence end.
    """
    if kinds is None:
        kinds = [k for k in KINDS if rng.random() < 0.5]
        while len(kinds) < 2:
            extra = rng.choice(KINDS)
            if extra not in kinds:
                kinds.append(extra)
    for kind in KINDS:  # fixed order, whatever order `kinds` came in
        if kind in kinds:
            step = _glue_anywhere if kind == "glued_sentence" and glue_anywhere else CORRUPTORS[kind]
            text = step(text, rng)
    return text


# ----------------------------------------------------------------------------- measure
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"))


def ws_norm(text: str) -> str:
    """White-space normalization for the exact-match test (see the module docstring)."""
    return " ".join(text.translate(_INVISIBLE).replace("\u00a0", " ").split())


def _load_truth() -> dict[str, str]:
    path = SHARED_EVAL / "aeb-dev" / "ground-truth.json"
    if not path.exists():
        sys.exit(f"repair_eval: {path} is absent (../shared must sit beside the repository)")
    return {k: v["articleBody"] for k, v in json.loads(path.read_text(encoding="utf-8")).items()}


def _aeb_scores() -> Callable[[Mapping[str, str], Mapping[str, str | None]], dict[str, float]]:
    sys.path.insert(0, str(SHARED_EVAL))
    from aeb_metric import aeb_scores  # type: ignore[import-not-found]

    return aeb_scores  # type: ignore[no-any-return]


def measure(truth: Mapping[str, str], corrupted: Mapping[str, str],
            repair: Callable[[str], str]) -> dict[str, object]:
    aeb_scores = _aeb_scores()
    t0 = time.perf_counter()
    repaired = {k: repair(v) for k, v in corrupted.items()}
    seconds = time.perf_counter() - t0
    keys = list(corrupted)
    truth_k = {k: truth[k.split("#")[0]] for k in keys}
    out: dict[str, object] = {"docs": len(keys)}
    for name, pred in (("baseline", corrupted), ("repaired", repaired)):
        scores = aeb_scores(truth_k, pred)
        exact = sum(ws_norm(pred[k]) == ws_norm(truth_k[k]) for k in keys) / len(keys)
        out[name] = {"exact": round(exact, 4), "f1": round(scores["f1"], 5),
                     "precision": round(scores["precision"], 5), "recall": round(scores["recall"], 5),
                     "token_accuracy": round(scores["accuracy"], 4)}
    out["repair_docs_per_s"] = round(len(keys) / seconds, 1) if seconds else None
    out["failures"] = [k for k in keys if ws_norm(repaired[k]) != ws_norm(truth_k[k])]
    return out


def main(argv: Sequence[str] | None = None) -> None:
    from tasks.text.repair import repair_text

    ap = argparse.ArgumentParser(description="Repair measure over corrupted AEB ground-truth bodies.")
    ap.add_argument("--seed", type=int, default=20260501)
    ap.add_argument("--rounds", type=int, default=3, help="corrupted copies per article (different seeds)")
    ap.add_argument("--per-kind", action="store_true", help="also measure each corruption kind alone")
    ap.add_argument("--write-dir", type=Path, help="also write the corrupted texts there as <id>.r<N>.txt")
    ap.add_argument("--show", type=int, default=0, help="print the first N failures with a diff")
    args = ap.parse_args(argv)

    truth = _load_truth()

    def repair(text: str) -> str:
        return repair_text(text).text

    def corpus(kinds: Sequence[str] | None, anywhere: bool = False) -> dict[str, str]:
        return {f"{k}#{r}": corrupt(v, random.Random(f"{args.seed}:{r}:{k}"), kinds, anywhere)
                for r in range(args.rounds) for k, v in truth.items()}

    corrupted = corpus(None)
    if args.write_dir:
        args.write_dir.mkdir(parents=True, exist_ok=True)
        for key, text in corrupted.items():
            doc, r = key.split("#")
            (args.write_dir / f"{doc}.r{r}.txt").write_text(text, encoding="utf-8", newline="")
    result = measure(truth, corrupted, repair)
    failures = result.pop("failures")
    print(json.dumps({"set": "all kinds mixed", **result}))
    stress = measure(truth, corpus(None, anywhere=True), repair)
    stress.pop("failures")
    print(json.dumps({"set": "all kinds mixed, glue at any line break (stress)", **stress}))
    if args.per_kind:
        for kind in KINDS:
            one = measure(truth, corpus([kind]), repair)
            one.pop("failures")
            print(json.dumps({"set": kind, **one}))
        one = measure(truth, corpus(["glued_sentence"], anywhere=True), repair)
        one.pop("failures")
        print(json.dumps({"set": "glued_sentence at any line break (stress)", **one}))
    if args.show:
        import difflib

        for key in list(failures)[: args.show]:  # type: ignore[call-overload]
            want = ws_norm(truth[key.split("#")[0]])
            got = ws_norm(repair(corrupted[key]))
            sm = difflib.SequenceMatcher(None, want, got, autojunk=False)
            diffs = [(want[max(0, a - 30):b + 30], got[max(0, c - 30):d + 30])
                     for tag, a, b, c, d in sm.get_opcodes() if tag != "equal"]
            print(key, diffs[:3])


if __name__ == "__main__":
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    main()
