"""Learned boilerplate, the text side: which lines of a body are counted, and under what key.

CCNet and Dolma drop lines that repeat verbatim across a shard; news needs one refinement: copies of
the *same* story (syndication, re-scrapes) share every line, and those lines are content. So the
warehouse counts a line once per story cluster, and a line becomes a publisher's boilerplate only when
it recurs in enough distinct clusters (`LearnedConfig`). This module says what a sighting is; the
counts live in the warehouse (`newsetl.warehouse.learned`), and the removal itself is the cleaner's
`learned` pass (`clean_text(..., learned=keys)`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from newsetl.text.linemodel import MODEL_CATEGORY
from newsetl.text.lines import is_story_line, normalize_line
from newsetl.text.publishers import outlet_key

LEARNED = "learned"  # the removals' category and rule
# Removed lines that still count as sightings of their article: what the learned pass took (so a learned
# line keeps being counted) and what the line model took. Without the model's, a publisher's footer that
# the model removes from most stories was counted only in the few it missed and never learned there (a
# user trial: removed in 12 of 14 stories, counted in 2, kept in those 2 for good).
COUNTED_REMOVALS = (LEARNED, MODEL_CATEGORY)


@dataclass(frozen=True)
class LearnedConfig:
    """When a recurring line counts as a publisher's boilerplate. Every field has a working default."""

    min_clusters: int = 5  # distinct story clusters the line must appear in
    min_share: float = 0.1  # ... and at least this share of the publisher's recorded clusters
    story_min_share: float = 0.5  # a line that reads as a story sentence must be in this share
    max_words: int = 40  # longer lines are paragraphs: never recorded, never learned
    min_key_chars: int = 6  # shorter normalized keys ("by", "ap") are too generic to learn


@dataclass(frozen=True)
class Sighting:
    """One short line of one article's body, as the warehouse counts it."""

    line_key: str  # normalize_line of the line
    sample_text: str  # the line verbatim (stripped)
    words: int
    story_like: bool  # reads as a story sentence: needs story_min_share to be learned


def publisher_key(publisher: str | None) -> str:
    """How publishers are matched: every spelling of one outlet shares a key ("The Valley Gazette",
    "Valley Gazette", "valleygazette.com"), so what the pipeline looks up (the name describe found) and
    what the warehouse counts (the canonical name) meet. Falls back on the casefolded name for a
    string that has no outlet key."""
    return outlet_key(publisher) or (publisher or "").strip().casefold()


def line_sightings(body: str, cfg: LearnedConfig = LearnedConfig()) -> Iterator[Sighting]:
    """The distinct short lines of a body worth counting (each key once per body)."""
    seen: set[str] = set()
    for raw in body.split("\n"):
        line = raw.strip()
        if not line:
            continue
        words = len(line.split())
        if words > cfg.max_words:
            continue
        key = normalize_line(line)
        if len(key) < cfg.min_key_chars or key in seen:
            continue
        seen.add(key)
        yield Sighting(key, line, words, is_story_line(line))
