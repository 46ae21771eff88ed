"""A synthetic plain-text news corpus for tests and benchmarks (seeded, no external data).

Each article has a headline, a byline and date line, 8-20 paragraphs of story sentences drawn
from a small grammar, and the kinds of boilerplate newsetl removes (donation appeal, ad markers,
photo credits, comment prompts). A share of the articles are re-scrapes of earlier ones (exact
copies or with different boilerplate), so dedup has work to do.
"""

from __future__ import annotations

import random
from pathlib import Path

SUBJECTS = ["The council", "The minister", "Local residents", "The company", "Investigators", "The mayor",
            "Union leaders", "The regulator", "Health officials", "The court", "Researchers", "Police"]
VERBS = ["announced", "rejected", "confirmed", "questioned", "approved", "delayed", "criticised", "welcomed",
         "reviewed", "proposed", "defended", "disclosed"]
OBJECTS = ["a new budget for the harbour district", "plans for a second bridge", "the report on water quality",
           "a settlement with former employees", "changes to the school calendar", "the sale of the old depot",
           "an inquiry into the power cuts", "a ban on night flights", "funding for the rail link",
           "the results of the spring survey", "a review of emergency services", "new rules for short lets"]
QUOTES = ["“We have listened carefully and we will act,” a spokesperson said.",
          "“This is not the end of the matter,” one resident told the meeting.",
          "“The numbers speak for themselves,” the chair said.",
          "“Nobody expected it to take this long,” an official admitted."]
BOILERPLATE = ["- Advertisement -", "Join our commenting forum", "Comments",
               "Your support helps us to tell the story", "Sign up for our free morning newsletter",
               "Share this article on Facebook", "(Photo: Getty)", "Read more: the week in pictures"]
PUBLISHERS = ["The Harbour Gazette", "Northern Courier", "Valley Times", "Metro Ledger"]


SYLLABLES = ["ka", "lo", "mer", "tin", "sa", "vor", "el", "dru", "pe", "nis", "ta", "rho", "gan", "wil"]


def name(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()


FUNCTION_WORDS = ["the", "a", "of", "to", "in", "and", "on", "for", "that", "with", "by", "at", "from", "after"]
_LEXICON: list[str] = []


def lexicon(rng: random.Random, size: int = 20_000) -> list[str]:
    # Pseudo-words with a Zipf-like draw below: real news shares a few stock phrases between
    # unrelated stories but little else; a small template grammar would make every story a
    # near-duplicate candidate of every other one (millions of LSH candidates, not news).
    if not _LEXICON:
        _LEXICON.extend(sorted({name(rng).lower() + rng.choice("aeiouy") * rng.randint(0, 1) + str(i % 10)
                                for i in range(size)}))
    return _LEXICON


def sentence(rng: random.Random) -> str:
    words = lexicon(rng)
    body = []
    for _ in range(rng.randint(10, 22)):
        if rng.random() < 0.3:
            body.append(rng.choice(FUNCTION_WORDS))
        else:
            body.append(words[int(len(words) * rng.random() ** 2)])  # skewed: some words common
    subject = f"{rng.choice(SUBJECTS)} in {name(rng)}"
    return f"{subject} {rng.choice(VERBS)} {' '.join(body)} worth {rng.randint(2, 900)} million, {name(rng)} said."


def article(rng: random.Random, n: int) -> str:
    lines = [f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} (story {n})", "",
             f"Staff reporter {n % 97}", f"Monday {1 + n % 28:02d} March 2024 10:{n % 60:02d} GMT", ""]
    for _ in range(rng.randint(8, 20)):
        para = " ".join(sentence(rng) for _ in range(rng.randint(2, 4)))
        if rng.random() < 0.25:
            para += " " + rng.choice(QUOTES)
        lines += [para, ""]
        if rng.random() < 0.3:
            lines += [rng.choice(BOILERPLATE), ""]
    lines.append(f"Copyright {rng.choice(PUBLISHERS)} 2024. All rights reserved.")
    return "\n".join(lines) + "\n"


def generate(out: Path, count: int, seed: int = 7, dup_share: float = 0.1) -> list[Path]:
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    texts: list[str] = []
    for i in range(count):
        if texts and rng.random() < dup_share:
            base = rng.choice(texts)  # a re-scrape: same story, another ad marker position
            text = base.replace("- Advertisement -\n", "", 1) + "Share this article on Facebook\n"
        else:
            text = article(rng, i)
        texts.append(text)
        path = out / f"article_{i:06d}.txt"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths
