"""Where a JSON record keeps the fields newsetl reads: common exporters' names, or the user's mapping.

A scraper's dump seldom says `text`: news-please writes `maintext`, `date_publish` and `source_domain`,
trafilatura's JSON `sitename` and `date`, datatrove and Hugging Face datasets nest the URL and date in
`metadata`, feed and CMS dumps say `link`, `content` or `body`. Without these names every record of such
a dump was quarantined (`bad_record`: no `text` or `html`), and the user had to rewrite the file first.

Each field is looked up in `FIELD_ALIASES` order, the first that holds a string (or a number) winning;
`--field NAME=PATH` (`parse_field_mapping`) puts PATH first in the field's list, `a.b` reaching into
nested objects: a record without it is read by the usual names. (It replaced the list: one run's mapping
applies to every JSON file the run reads, and the drop folder's other dumps, read again under it, had every
record quarantined as having no body; a user trial.) Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from newsetl.sources.discover import is_url

# The record fields newsetl reads; every other key of a record is kept in the article's `extra`.
FIELDS = ("id", "url", "title", "published_at", "publisher", "byline", "html", "text", "fetched_at")

# Tried in order; the field's own name first, so a record written for newsetl reads as it always did.
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id",),
    # `source` is the URL in trafilatura's JSON and a name elsewhere: under an alias only a URL counts
    "url": ("url", "link", "source_url", "metadata.url", "source"),
    "title": ("title", "headline", "metadata.title"),
    "published_at": ("published_at", "date_publish", "published", "publish_date", "pubDate", "publishedAt",
                     "datePublished", "date", "metadata.date"),
    # a site name or a domain: both resolve against the publishers table (`source.name`: NewsAPI)
    "publisher": ("publisher", "source_domain", "sitename", "site_name", "hostname", "source.name"),
    # the author names: NewsAPI `author`, news-please `authors` (a list), trafilatura `metadata.author`
    "byline": ("byline", "author", "authors", "metadata.author"),
    "html": ("html", "raw_html"),
    # `content` and `body` hold HTML in some dumps: a value that starts like markup is read as HTML
    "text": ("text", "maintext", "article", "content", "body"),
    # when the scraper fetched the page (news-please `date_download`): a dump's records otherwise all carry
    # the file's modification time, and two scrapes of a page in one dump could not be told apart in time
    "fetched_at": ("fetched_at", "scraped_at", "crawled_at", "date_download", "downloaded_at", "retrieved_at",
                   "crawl_date", "metadata.fetched_at"),
}

# How a value under one of the text aliases other than `text` shows it is markup: it opens with a tag
# that starts a page or a block. (`text` itself is always plain text: that is its contract.)
_MARKUP_START = re.compile(
    r"\s*<(?:!doctype|html|head|body|div|p|article|section|main|header|h[1-6]|span|table|ul|ol|figure|br)\b",
    re.IGNORECASE)


class FieldMappingError(ValueError):
    """A `--field NAME=PATH` that cannot be used; the message says why."""


def parse_field_mapping(specs: Iterable[str] | Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    """`["text=maintext", "url=metadata.link"]` (or the same as a mapping) as sorted (name, path) pairs.

    Raises FieldMappingError for an unknown field name, an empty path or segment, or a field mapped twice.
    """
    if not specs:
        return ()
    pairs: list[tuple[str, str]] = []
    if isinstance(specs, Mapping):
        pairs = [(str(k), str(v)) for k, v in specs.items()]
    else:
        for spec in specs:
            name, sep, path = spec.partition("=")
            if not sep:
                raise FieldMappingError(f"--field {spec!r}: expected NAME=PATH, e.g. text=maintext")
            pairs.append((name.strip(), path.strip()))
    seen: set[str] = set()
    for name, path in pairs:
        if name not in FIELDS:
            raise FieldMappingError(f"--field {name}={path}: unknown field {name!r}; one of {', '.join(FIELDS)}")
        if name in seen:
            raise FieldMappingError(f"--field {name}: given more than once")
        seen.add(name)
        if not path or any(not part for part in path.split(".")):
            raise FieldMappingError(f"--field {name}={path}: the path must name a key (a.b for nested objects)")
    return tuple(sorted(pairs))


def mapping_key(mapping: tuple[tuple[str, str], ...]) -> str:
    """The mapping as one string ("" for none): part of a mapped record's doc_id and of the files' record."""
    return ",".join(f"{name}={path}" for name, path in mapping)


def lookup(record: Mapping[str, Any], path: str) -> Any:
    """The value at `path`: the key itself if the record has it (keys may contain dots), else the dotted
    path through nested objects; None when absent."""
    value = record.get(path)
    if value is not None or "." not in path or path in record:
        return value  # most names asked for are plain keys, and most are absent
    node: Any = record
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def candidates(name: str, mapping: tuple[tuple[str, str], ...]) -> tuple[tuple[str, ...], str | None]:
    """The paths to try for field `name`, in order: the user's path for it first (`--field NAME=PATH`),
    then its usual names; and that mapped path (None: none), where a value of the wrong type is reported,
    not passed over."""
    for mapped, path in mapping:
        if mapped == name:
            return (path, *(alias for alias in FIELD_ALIASES[name] if alias != path)), path
    return FIELD_ALIASES[name], None


def mapping_reaches(record: Mapping[str, Any], mapping: tuple[tuple[str, str], ...]) -> bool:
    """Whether any mapped path is in `record`: only then can the mapping change what is read from it."""
    return any(lookup(record, path) is not None for _, path in mapping)


def fits(name: str, value: str) -> bool:
    """Whether a value found under one of `name`'s aliases (not its own name, not a mapped path) can be
    that field: a URL must be one, a fetch time a time."""
    if name == "url":
        return is_url(value)
    return name != "fetched_at" or parse_time(value) is not None


def parse_time(value: str) -> datetime | None:
    """A record's fetch time: ISO 8601 (a time without an offset is UTC, as crawlers write it; a date alone
    is its midnight UTC) or Unix seconds (milliseconds when over 10^11); None when it is neither or out of
    range. (Publication dates are parsed by describe, which reads many more forms; a fetch time is a
    machine's.)"""
    text = value.strip()
    try:
        if re.fullmatch(r"\d{9,13}(?:\.\d+)?", text):
            seconds = float(text)
            return datetime.fromtimestamp(seconds / 1000 if seconds > 1e11 else seconds, tz=UTC)
        parsed = datetime.fromisoformat(text)
    except (ValueError, OverflowError, OSError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def is_scalar(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int | float) and not isinstance(value, bool))


def names_list(value: Any) -> str | None:
    """A list of author names (`["Jane Doe", "John Roe"]`) as one byline, "Jane Doe; John Roe"; None
    for any other list."""
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        names = [v.strip() for v in value if v.strip()]
        return "; ".join(names) or None
    return None


def looks_like_markup(value: str) -> bool:
    return _MARKUP_START.match(value) is not None
