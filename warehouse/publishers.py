"""Publishers, the warehouse side: the alias table, and each new article's publisher resolved against it.

`publishers(publisher_key, name, aliases, domains, source)` holds one row per outlet; `publisher_aliases`
maps keys that name an outlet under another key (a user's alias file, or a domain whose label is an
abbreviation of the outlet's name: "nytimes.com" -> "The New York Times"). In the load transaction of
each batch, `resolve_publishers` gives every article:
- `publisher_raw`: what describe read from the document (container field, site name, signature line,
  domain), kept as it was;
- `publisher_key`: the outlet (`newsetl.text.publishers.outlet_key`, then the alias table), or NULL when
  the document names no outlet (a person, a platform, a ticker, nothing);
- `publisher`: the outlet's canonical name.

Same outlet, same name, whatever the order: the canonical name is `display_name` over every spelling the
outlet was seen under (an order-free choice), and when a new spelling changes it, the articles already
stored under the outlet are renamed in the same transaction. A user's name (`--publishers FILE`) always
wins and is never renamed.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import duckdb
import pyarrow as pa

from newsetl.text.publishers import (
    WIRE_ALIASES,
    UserPublisher,
    display_name,
    is_outlet,
    looks_like_person,
    outlet_key,
    registrable_domain,
)
from newsetl.warehouse.connect import unregister

SEEN = "seen"
USER = "user"
DOMAIN = "domain"
WIRE = "wire"  # text.publishers.WIRE_ALIASES
_T = TypeVar("_T")
_LEGAL_OR_ARTICLE = {"the", "inc", "ltd", "llc", "corp", "co", "plc", "gmbh", "limited", "group", "media"}


def abbreviates(label: str, name: str) -> bool:
    """True when a domain label is written from the name's words in order, each word whole, cut short or
    left out ("nytimes" <- "The New York Times", "wsj" <- "Wall Street Journal", "bbc" <- "BBC News",
    "theguardian" <- "The Guardian"), and not a bare initial letter. Such a domain is the outlet's own."""
    words = [re.sub(r"[^0-9a-z]", "", w) for w in name.casefold().split()]
    words = [w for w in words if w]
    if not label or not words or len(label) < 2:
        return False

    def fit(i: int, j: int) -> bool:  # label[i:] from words[j:]
        if i == len(label):
            return True
        if j == len(words):
            return False
        word = words[j]
        for n in range(min(len(word), len(label) - i), 0, -1):
            if label[i:i + n] == word[:n] and fit(i + n, j + 1):
                return True
        return fit(i, j + 1)

    core = [w for w in words if w not in _LEGAL_OR_ARTICLE]
    # One word, one letter: "n.com" is no evidence for "Northern Echo".
    return fit(0, 0) and (len(label) > 1 and (len(core) != 1 or label.startswith(core[0][:3])))


def _site_own_name(raw: str, domain_key: str) -> bool:
    """A name that reads like a person's ("Rolling Stone", "Mother Jones") but is written out whole in the
    address of the page it names ("rollingstone.com", "motherjones.com"): the site's own name, so an
    outlet. A person's own site is that person's outlet too, which is what it says. Not initials: "Nancy
    Pryor Rowe" on npr.org is a reporter, and taking her for the site renamed all of NPR."""
    return looks_like_person(raw) and outlet_key(raw) == domain_key


def _json_list(values: Iterable[str]) -> str:
    return json.dumps(sorted(set(values)), ensure_ascii=False)


def _load_rows(con: duckdb.DuckDBPyConnection, keys: Sequence[str]) -> dict[str, tuple[str, set[str], set[str], str]]:
    if not keys:
        return {}
    con.register("_pk", pa.table({"publisher_key": pa.array(sorted(set(keys)), pa.string())}))
    try:
        rows = con.execute("SELECT p.publisher_key, p.name, CAST(p.aliases AS VARCHAR), CAST(p.domains AS VARCHAR), "
                           "p.source FROM publishers p SEMI JOIN _pk USING (publisher_key)").fetchall()
    finally:
        unregister(con, "_pk")
    return {r[0]: (r[1], set(json.loads(r[2])), set(json.loads(r[3])), r[4]) for r in rows}


def _canonical(aliases: set[str], domains: set[str]) -> str | None:
    return display_name(aliases) or display_name(domains)


@dataclass(frozen=True)
class OutletRow:
    """A `publishers` row to write; `old_name`: the name stored before (None: a new outlet)."""

    key: str
    name: str
    aliases: set[str]
    domains: set[str]
    source: str
    old_name: str | None = None
    # Outlets folded into this one in the same transaction: their stored articles take this name too.
    merged_in: bool = False

    @property
    def renames(self) -> bool:
        return self.merged_in or (self.old_name is not None and self.old_name != self.name)


def _write(con: duckdb.DuckDBPyConnection, rows: Sequence[OutletRow], run_id: str | None) -> None:
    """Upsert `rows` (distinct keys) in one statement, and rename the stored articles of the outlets whose
    name changed in one more. One statement per outlet cost an ingest of the 735 dev pages (~680 sites) 15 s of
    the writer's time (an INSERT OR REPLACE is a delete and an insert in DuckDB's index, each with its
    own statement overhead)."""
    if not rows:
        return
    con.register("_outlets", pa.table({
        "publisher_key": pa.array([r.key for r in rows], pa.string()),
        "name": pa.array([r.name for r in rows], pa.string()),
        "aliases": pa.array([_json_list(r.aliases) for r in rows], pa.string()),
        "domains": pa.array([_json_list(r.domains) for r in rows], pa.string()),
        "source": pa.array([r.source for r in rows], pa.string()),
        "renamed": pa.array([r.renames for r in rows], pa.bool_()),
    }))
    try:
        con.execute("INSERT OR REPLACE INTO publishers (publisher_key, name, aliases, domains, source, updated_run_id) "
                    "SELECT publisher_key, name, aliases, domains, source, ? FROM _outlets", [run_id])
        if any(r.renames for r in rows):
            # A better spelling arrived, or an outlet stored under another key was folded in: the articles
            # already stored under these outlets take the name too.
            con.execute("UPDATE articles SET publisher = o.name FROM _outlets o WHERE o.renamed "
                        "AND articles.publisher_key = o.publisher_key AND articles.publisher IS DISTINCT FROM o.name")
    finally:
        unregister(con, "_outlets")


def _merge(con: duckdb.DuckDBPyConnection, moves: Mapping[str, str]) -> dict[str, tuple[set[str], set[str]]]:
    """Fold each outlet `old` into `moves[old]` (its articles and aliases move, its row goes), in one
    statement per table however many outlets move (each statement scans `articles`); returns each old
    outlet's aliases and domains. No target may itself be moved here (the caller orders chains)."""
    if not moves:
        return {}
    rows = _load_rows(con, list(moves))
    con.register("_moves", pa.table({"old_key": pa.array(list(moves), pa.string()),
                                     "new_key": pa.array(list(moves.values()), pa.string())}))
    try:
        con.execute("UPDATE articles SET publisher_key = m.new_key FROM _moves m "
                    "WHERE articles.publisher_key = m.old_key")
        con.execute("UPDATE publisher_aliases SET publisher_key = m.new_key FROM _moves m "
                    "WHERE publisher_aliases.publisher_key = m.old_key")
        con.execute("DELETE FROM publishers WHERE publisher_key IN (SELECT old_key FROM _moves)")
    finally:
        unregister(con, "_moves")
    return {old: (rows[old][1], rows[old][2]) for old in moves if old in rows}


def _chain_end(links: Mapping[str, str], key: str) -> str:
    """Where `key` ends when its links are followed (a batch's links never form a cycle: each new link's
    outlet was resolved through the ones before it; the guard is for safety)."""
    seen = {key}
    while key in links and links[key] not in seen:
        key = links[key]
        seen.add(key)
    return key


def _add_aliases(con: duckdb.DuckDBPyConnection, links: Mapping[str, str], source: str) -> None:
    """alias key -> outlet key rows, in one statement."""
    con.register("_links", pa.table({"alias_key": pa.array(list(links), pa.string()),
                                     "publisher_key": pa.array(list(links.values()), pa.string())}))
    try:
        con.execute("INSERT OR REPLACE INTO publisher_aliases (alias_key, publisher_key, source) "
                    "SELECT alias_key, publisher_key, ? FROM _links", [source])
    finally:
        unregister(con, "_links")


def register_user_publishers(con: duckdb.DuckDBPyConnection, entries: Sequence[UserPublisher],
                             run_id: str | None = None) -> int:
    """Store a user's alias file in the warehouse (so later runs resolve the same way without it): the
    outlet under its given name, each alias pointing at it; outlets stored under an alias key merge in."""
    for entry in entries:
        key = outlet_key(entry.name)
        alias_keys = {outlet_key(a) for a in entry.aliases} - {key, ""}
        rows = _load_rows(con, [key])
        aliases = {entry.name, *entry.aliases}
        domains: set[str] = set()
        if key in rows:
            _, old_aliases, old_domains, _ = rows[key]
            aliases |= old_aliases
            domains |= old_domains
        moves = dict.fromkeys(sorted(alias_keys), key)
        for more_aliases, more_domains in _merge(con, moves).values():
            aliases |= more_aliases
            domains |= more_domains
        if moves:
            _add_aliases(con, moves, USER)
        con.execute("UPDATE articles SET publisher = ? WHERE publisher_key = ?", [entry.name, key])
        _write(con, [OutletRow(key, entry.name, aliases, domains, USER)], run_id)
    return len(entries)


def _memo(fn: Callable[[str], _T]) -> Callable[[str], _T]:
    """`fn` with its results kept for the length of one call of `resolve_publishers`."""
    seen: dict[str, _T] = {}

    def call(value: str) -> _T:
        if value not in seen:
            seen[value] = fn(value)
        return seen[value]
    return call


def _domain_key(url: str) -> tuple[str | None, str]:
    """(registrable domain, its outlet key or "" when the domain names no outlet) of a URL."""
    domain = registrable_domain(url)
    return domain, (outlet_key(domain) if domain and is_outlet(domain) else "")


def resolve_publishers(con: duckdb.DuckDBPyConnection, articles: pa.Table, run_id: str | None) -> pa.Table:
    """`articles` with publisher (canonical), publisher_raw and publisher_key set; the alias table updated.
    Runs inside the caller's transaction (the batch load)."""
    if articles.num_rows == 0:
        return articles
    raws = articles.column("publisher_raw").to_pylist()
    urls = articles.column("url").to_pylist()
    originals = articles.column("original_publisher").to_pylist()
    alias = {r[0]: r[1] for r in con.execute("SELECT alias_key, publisher_key FROM publisher_aliases").fetchall()}
    # The agencies' other names, stored the first time (also in a warehouse that has outlets under them: they
    # are folded in below, articles and all); an outlet a user named under such a key is left as it is.
    wires = {k: alias.get(v, v) for k, v in WIRE_ALIASES.items() if k not in alias}
    if wires:
        users = {k for k, row in _load_rows(con, list(wires)).items() if row[3] == USER}
        wires = {k: v for k, v in wires.items() if k not in users}
        alias.update(wires)

    keys: list[str | None] = []
    forms: dict[str, set[str]] = defaultdict(set)
    domains: dict[str, set[str]] = defaultdict(set)
    links: dict[str, str] = {}  # domain key -> outlet key, new in this batch
    # A batch names few outlets in many rows: each distinct name and URL is keyed once (pure functions).
    raw_key = _memo(lambda raw: outlet_key(raw) if is_outlet(raw) else None)  # None: names no outlet
    url_keys = _memo(_domain_key)
    for raw, url in zip(raws, urls, strict=True):
        domain, dkey = url_keys(url) if url else (None, "")
        key = ""
        named = raw_key(raw) if raw else None
        if raw and named is None and dkey and _site_own_name(raw, dkey):
            named = outlet_key(raw)
        if raw and named is not None:
            key = alias.get(named, named)
            forms[key].add(raw.strip())
            if dkey and dkey != key and dkey not in alias and abbreviates(dkey, raw):
                links[dkey] = key
                alias[dkey] = key
        elif dkey:  # the document named a person or a platform (or nothing): the site it is on is the outlet
            key = alias.get(dkey, dkey)
        if key and domain and dkey:
            domains[key].add(domain)
        keys.append(key or None)

    # New domain aliases, and the outlets stored under those domain keys folded in, all at once. A link
    # whose outlet is itself linked later in the batch ("Daily Times" on dt.com, then "Dallas Daily
    # Times" on dailytimes.com) points at the end of that chain, so no alias names a folded outlet.
    for dkey in links:
        links[dkey] = alias[dkey] = _chain_end(links, dkey)
    for dkey, end in links.items():  # spellings and domains seen under a linked key belong to its outlet
        forms[end] |= forms.pop(dkey, set())
        domains[end] |= domains.pop(dkey, set())
    merged: set[str] = set()
    for moves, source in ((wires, WIRE), (links, DOMAIN)):
        if not moves:
            continue
        _add_aliases(con, moves, source)
        for old, (more_aliases, more_domains) in _merge(con, moves).items():
            forms[moves[old]] |= more_aliases
            domains[moves[old]] |= more_domains
            merged.add(moves[old])
    keys = [alias.get(k, k) if k else None for k in keys]
    # An outlet stored outlets were folded into is written even when no article of the batch names it.
    touched = sorted({k for k in keys if k} | merged)
    existing = _load_rows(con, touched)
    names: dict[str, str] = {}
    changed: list[OutletRow] = []
    for key in touched:
        old_name, old_aliases, old_domains, source = existing.get(key, (None, set(), set(), SEEN))
        all_aliases = old_aliases | forms.get(key, set())
        all_domains = old_domains | domains.get(key, set())
        name = old_name if source == USER and old_name else _canonical(all_aliases, all_domains)
        if name is None:
            name = key
        names[key] = name
        if (name, all_aliases, all_domains) != (old_name, old_aliases, old_domains) or key in merged:
            changed.append(OutletRow(key, name, all_aliases, all_domains, source, old_name, key in merged))
    _write(con, changed, run_id)

    # The original publisher of a syndicated copy is named like any outlet the warehouse knows.
    okey = _memo(outlet_key)
    known = _load_rows(con, sorted({alias.get(okey(o), okey(o)) for o in originals if o}))
    original_names = [
        (known.get(alias.get(okey(o), okey(o)), (o,))[0] if o else None) for o in originals
    ]
    out = articles
    for column, values in (("publisher", [names.get(k) if k else None for k in keys]),
                           ("publisher_key", keys), ("original_publisher", original_names)):
        idx = out.schema.get_field_index(column)
        out = out.set_column(idx, out.schema.field(idx), pa.array(values, out.schema.field(idx).type))
    return out
