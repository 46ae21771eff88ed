"""The warehouse schema, written once: every table's columns with their Arrow type, DuckDB type,
nullability, comment and the migration that added them.

Everything else is derived from `TABLES`: the Arrow schemas the loader builds its batches against
(`arrow_schema`), the DDL of each versioned migration (`migration_sql`), and the column comments
analysts see in `duckdb_columns()` (`comment_sql`). To add a column: append it with `since=` the next
version and add that version to `MIGRATIONS`; never change what a released version creates.

The table and column names of `runs`, `documents`, `articles`, `removals`, `quarantine` and `clusters`
are a contract (../shared/DESIGN.md §4): change them only by adding columns.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")

_DUCK_TYPES: dict[pa.DataType, str] = {
    pa.string(): "VARCHAR",
    pa.binary(): "BLOB",
    pa.int64(): "BIGINT",
    pa.int32(): "INTEGER",
    pa.bool_(): "BOOLEAN",
    pa.float64(): "DOUBLE",
    TS: "TIMESTAMPTZ",
}


@dataclass(frozen=True)
class Column:
    name: str
    arrow: pa.DataType
    nullable: bool = True
    comment: str = ""
    duck: str | None = None  # DuckDB type when it is not the Arrow type's own (JSON held as text in Arrow)
    since: int = 1  # the migration that adds the column
    loaded: bool = True  # built by the loader (False: set by SQL afterwards, e.g. cluster_id)

    @property
    def duck_type(self) -> str:
        return self.duck or _DUCK_TYPES[self.arrow]


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    comment: str = ""
    since: int = 1

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


def _c(name: str, arrow: pa.DataType, comment: str = "", *, nullable: bool = True, duck: str | None = None,
       loaded: bool = True) -> Column:
    return Column(name, arrow, nullable=nullable, comment=comment, duck=duck, loaded=loaded)


S, B, I64, I32, BOOL, F64 = pa.string(), pa.binary(), pa.int64(), pa.int32(), pa.bool_(), pa.float64()

RUNS = Table("runs", (
    _c("run_id", S, "the run's id (also on every row it wrote)", nullable=False),
    _c("flow_run_id", S, "Prefect flow run id"),
    _c("started_at", TS, nullable=False),
    _c("finished_at", TS),
    _c("status", S, "running | completed | failed | cancelled | crashed", nullable=False),
    _c("params", S, "the run's parameters", duck="JSON"),
    _c("counts", S, "read, loaded, skipped, quarantined ... of the run", duck="JSON"),
    _c("message", S, "why a run failed"),
    Column("ruleset_sha256", S, comment="the pattern rules the run cleaned with (rules.ruleset_sha256; NULL: a "
           "re-clean, which applies learned lines only, a run before version 16, or a run of an older newsetl "
           "on this warehouse)", since=16),
), primary_key=("run_id",), comment="one row per ingestion run")

DOCUMENTS = Table("documents", (
    _c("doc_id", S, "sha256 of the raw bytes (+ the record id inside a container), each part followed by a "
       "NUL byte: sha256(raw || 0x00) for a whole file", nullable=False),
    _c("source_uri", S, "path, URL, or path#id for a record inside a JSONL/WARC file", nullable=False),
    _c("kind", S, "txt | html | jsonl | warc | url | rejected", nullable=False),
    _c("content_type", S, "text | html"),
    _c("encoding", S, "how raw was decoded"),
    _c("raw", B, "the bytes as received: a file's (inflated when gzipped), a JSON line's, a WARC record's "
       "payload; a record of a .json array or response, written again as compact UTF-8 JSON (a streamed parse "
       "has no record boundaries in the file's bytes; the response's own fields around its list are not kept)",
       nullable=False),
    _c("bytes", I64, nullable=False),
    _c("external_id", S, "the record's own id"),
    _c("url", S),
    _c("fetched_at", TS),
    _c("first_run_id", S, "the run that first stored these bytes", nullable=False),
), primary_key=("doc_id",), comment="one row per raw input document")

ARTICLES = Table("articles", (
    _c("article_id", S, "the article's id: the doc_id of the document it was made from", nullable=False),
    _c("doc_id", S, "documents.doc_id: the raw input (lineage: sources WHERE doc_id = ...)", nullable=False),
    _c("source_uri", S, "path, URL, or path#id of a record inside a JSONL/WARC file", nullable=False),
    _c("external_id", S, "the record's own id (a JSON record's id, a WARC record's id)"),
    _c("url", S, "the page's URL: fetched, a WARC capture's target, or a record's url field"),
    _c("publisher", S, "the outlet's canonical name (publishers; as the document named it: publisher_raw); NULL: "
       "none found"),
    _c("original_publisher", S, "the original publisher of a syndicated copy"),
    _c("title", S, "the headline: the container's title, else the body's first line when it reads as one"),
    _c("subtitle", S, "the standfirst under a headline read from the body (it stays in the body)"),
    _c("byline", S, "the authors' names, '; ' between them"),
    _c("published_at", TS, "publication time; NULL when none was found (a file's modification time is never "
       "taken: see article_days.date_source)"),
    _c("fetched_at", TS, "when the input was fetched or captured (HTTP, WARC, a JSON record's own fetch time); "
       "else its file's modification time"),
    _c("language", S, "ISO 639-1 code (py3langid); NULL: too little text to tell"),
    _c("body", S, "the article's text: extracted, repaired, boilerplate removed (what was removed: removals)",
       nullable=False),
    _c("word_count", I32, "words in body", nullable=False),
    _c("content_type", S, "text | html: what the input was"),
    _c("body_hash", S, "sha256 of the normalized body: exact-dup tier", nullable=False),
    _c("repairs", S, "repair kind -> count", duck="JSON"),
    _c("extra", S, "unknown input fields, kept; a fetched page's response: http_status, final_url, content_type, "
       "feed_url, etag, last_modified (the validators of its next fetch)", duck="JSON"),
    _c("cluster_id", S, "the story: one id for all its copies", loaded=False),
    _c("is_canonical", BOOL, "exactly one article per cluster", loaded=False),
    _c("run_id", S, "the run that loaded it", nullable=False),
    Column("publisher_raw", S, comment="the publisher as the document named it (before canonicalization)", since=7),
    Column("publisher_key", S, comment="publishers.publisher_key: the outlet, for joins (NULL: no outlet)", since=7),
), primary_key=("article_id",), comment="one row per normalized article")

REMOVALS = Table("removals", (
    _c("article_id", S, "articles.article_id", nullable=False),
    _c("seq", I32, "order of the removal within the article", nullable=False),
    _c("category", S, "what kind of boilerplate: donation_appeal, ad_marker, comment_prompt, caption, byline, "
       "learned, model ... (`newsetl stats` counts them)", nullable=False),
    _c("rule", S, "which rule: a library rule's id (schemas/rules/boilerplate.json, or your --rules file), "
       "'linemodel-vN:score' for the learned line model (category model), a describe head rule (head_title, "
       "head_byline ...)",
       nullable=False),
    _c("text", S, "the removed text", nullable=False),
    _c("position", I32, "character offset of `text` in the text named by offset_in", nullable=False),
    _c("run_id", S, nullable=False),
    Column("offset_in", S, comment="the text `position` is an offset in, that pass's input: repaired_text (the "
           "extracted, repaired input; the cleaner's rules and line model), cleaned_body (describe's title, "
           "byline and dateline lines), described_body (learned lines at load), stored_body (a re-clean: the "
           "body before it); NULL: a learned line recorded before version 15, at load or by that run's "
           "re-clean", since=15),
), comment="one row per removed boilerplate span")

QUARANTINE = Table("quarantine", (
    _c("quarantine_id", S, "the refusal's id", nullable=False),
    _c("source_uri", S, "the input refused: path, URL, or path#id of a record", nullable=False),
    _c("doc_id", S, "the refused document's or record's doc_id (NULL: a whole file, path or URL refused: missing, "
       "unreadable, a container that is not one)"),
    _c("run_id", S, "the run that refused it", nullable=False),
    _c("stage", S, "where: discover | read | decode | extract | process", nullable=False),
    _c("reason", S, "why, as a code (bad_record, http_error, extraction_empty ...; quarantine_summary counts "
       "them)", nullable=False),
    _c("detail", S, "why, in words: what was wrong and what to do", nullable=False),
    _c("raw", B, "the refused bytes, when there were any (within the read limit)"),
    _c("quarantined_at", TS, nullable=False),
    Column("url", S, comment="the URL the refused input was fetched or captured from (a fetched page or feed, "
           "a WARC record's WARC-Target-URI): a later load of that page from any source resolves the refusal "
           "(quarantine_status). NULL: no URL (a file, a JSON record), or a refusal before version 17 whose "
           "detail does not name it", since=17),
), primary_key=("quarantine_id",), comment="one row per rejected input or record")

CLUSTERS = Table("clusters", (
    _c("cluster_id", S, "the story's id (articles.cluster_id)", nullable=False),
    _c("canonical_article_id", S, "the copy that stands for the story: the most complete, then an original "
       "over a syndicated copy, then the earliest", nullable=False),
    _c("size", I32, "how many copies (articles) the story has", nullable=False),
    _c("updated_run_id", S, "the run that last changed the story"),
    Column("created_seq", I64, comment="the sid of the story's first-seen article: the oldest cluster keeps its id "
           "when two merge (NULL: created before version 5, older than any)", since=5),
    Column("longest_article_id", S, comment="the story's copy with the most signed words, which a new copy is "
           "verified against besides its nearest members: a page dump holds most copies (NULL: written before "
           "version 11, when the canonical was the longest copy)", since=11),
), primary_key=("cluster_id",), comment="one row per story (near-duplicate cluster)")

INPUTS = Table("inputs", (
    _c("path", S, nullable=False),
    _c("size", I64, nullable=False),
    _c("mtime_ns", I64, nullable=False),
    _c("documents", I32, "documents and rejected records the file produced", nullable=False),
    _c("last_run_id", S, nullable=False),
    _c("recorded_at", TS, nullable=False),
    Column("read_as", S, comment="the JSON field mapping the file was read under (NULL: none); another one reads "
           "it again", since=9),
    Column("ctime_ns", I64, comment="the inode's change time when read (NULL: recorded before version 12); a "
           "file replaced with the same size and mtime has another", since=12),
), primary_key=("path",), since=2,
    comment="input files read completely: an unchanged file (same size, mtime and ctime) is not read again")

# --- dedup (version 3: these tables were created by the dedup module before they were migrations)
DEDUP_META = Table("dedup_meta", (
    _c("key", S, nullable=False),
    _c("value", S, nullable=False),
), primary_key=("key",), since=3, comment="the signature scheme of the stored signatures")

SIGNATURES = Table("signatures", (
    _c("sid", I64, "dense integer key (compact band rows)", nullable=False),
    _c("article_id", S, nullable=False),
    _c("body_hash", S, "body_hash of the signed text: the body before learned lines were taken from it "
       "(articles.body_hash is of the body as stored)", nullable=False),
    _c("rank_key", I64, "64-bit hash of article_id: order in an oversized bucket, integer join key", nullable=False),
    _c("body_key", I64, "64-bit hash of body_hash (the exact tier)", nullable=False),
    _c("n_shingles", I32, nullable=False),
    _c("n_words", I32, nullable=False),
    _c("banded", BOOL, "its band rows are stored (representative of its body, long enough)", nullable=False),
    _c("minhash", B, "num_perm little-endian uint32", nullable=False),
    _c("run_id", S),
    Column("shingles", B, comment="banded rows: the exact shingle set (sorted little-endian uint32), to decide "
           "borderline pairs without shingling the body again", since=5),
    Column("completeness", I32, comment="words of the signed text's story sentences minus its other words: the "
           "story's canonical is its most complete copy (NULL: signed before version 11, read from the body)",
           since=11),
), since=3, comment="one row per signed article")

LSH_BANDS = Table("lsh_bands", (
    _c("key", I64, nullable=False),
    _c("sid", I64, nullable=False),
), since=3, comment="LSH: band rows of representatives, a few per story a bucket (no index: batches are hash-joined)")

DUPLICATE_PAIRS = Table("duplicate_pairs", (
    _c("article_a", S, "article_a < article_b", nullable=False),
    _c("article_b", S, nullable=False),
    _c("jaccard", F64, nullable=False),
    _c("containment", F64, nullable=False),
    _c("method", S, "exact_body | minhash | shingles", nullable=False),
    _c("run_id", S),
), since=3, comment="verified near-duplicate pairs, for inspection")

CLUSTER_MERGES = Table("cluster_merges", (
    _c("old_cluster_id", S, "a cluster id that no longer exists", nullable=False),
    _c("new_cluster_id", S, "the cluster it was merged into (which may itself be merged later)", nullable=False),
    _c("run_id", S),
    _c("merged_at", TS, nullable=False),
), since=5, comment="one row per merge of two stories: saved filters on an old cluster_id follow it here")

# --- learned boilerplate (version 4; likewise created by their module before)
BOILERPLATE_SIGHTINGS = Table("boilerplate_sightings", (
    _c("publisher", S, nullable=False),
    _c("line_key", S, nullable=False),
    _c("cluster_id", S, nullable=False),
    _c("article_id", S, nullable=False),
), since=4, comment="one row per (article, short line): where a line was seen")

BOILERPLATE_LINES = Table("boilerplate_lines", (
    _c("publisher", S, nullable=False),
    _c("line_key", S, nullable=False),
    _c("clusters", I32, "distinct story clusters the line was seen in", nullable=False),
    _c("articles", I32, "distinct articles", nullable=False),
    _c("words", I32, nullable=False),
    _c("story_like", BOOL, "reads as a story sentence: needs story_min_share", nullable=False),
    _c("sample_text", S, "one verbatim occurrence, for people reading the table", nullable=False),
    _c("first_seen", TS, nullable=False),
    _c("updated_at", TS, nullable=False),
), primary_key=("publisher", "line_key"), since=4, comment="lines seen in two or more clusters of a publisher")

BOILERPLATE_APPLIED = Table("boilerplate_applied", (
    _c("article_id", S, nullable=False),
    _c("line_key", S, "reclean already handled this learned key for this article", nullable=False),
), since=4)

BOILERPLATE_PUBLISHER_CLUSTERS = Table("boilerplate_publisher_clusters", (
    _c("publisher", S, nullable=False),
    _c("cluster_id", S, nullable=False),
), since=4)

BOILERPLATE_PUBLISHERS = Table("boilerplate_publishers", (
    _c("publisher", S, nullable=False),
    _c("clusters", I32, "distinct story clusters recorded for the publisher", nullable=False),
    _c("articles", I32, "reserved (0): articles are counted per line in boilerplate_lines", nullable=False),
    _c("updated_at", TS, nullable=False),
), primary_key=("publisher",), since=4)

# --- learned-boilerplate running counts (version 8): per batch the writer adds what is new instead of
# recounting every past sighting of each line key the batch saw (that recount grew with the corpus).
BOILERPLATE_LINE_CLUSTERS = Table("boilerplate_line_clusters", (
    _c("publisher", S, nullable=False),
    _c("line_key", S, nullable=False),
    _c("cluster_id", S, nullable=False),
), since=8, comment="distinct (publisher, line, cluster) of the sightings: what a new sighting adds a cluster to")

BOILERPLATE_LINE_COUNTS = Table("boilerplate_line_counts", (
    _c("publisher", S, nullable=False),
    _c("line_key", S, nullable=False),
    _c("clusters", I32, "distinct story clusters the line was seen in", nullable=False),
    _c("articles", I32, "distinct articles", nullable=False),
), since=8, comment="exact counts of every line key of the sightings (boilerplate_lines: those in 2+ clusters)")

# --- lineage (version 6): every source a run read, with the document it carried, known or new
SOURCES = Table("sources", (
    _c("source_key", S, "sha256 of (source_uri, doc_id, occurrence): a re-read source adds no row", nullable=False),
    _c("source_uri", S, "path, URL, or path#id for a record inside a JSONL/WARC file", nullable=False),
    _c("doc_id", S, "the document the source carried (NULL: refused before it had one)"),
    _c("outcome", S, "loaded | quarantined | skipped (first time this source was read)", nullable=False),
    _c("reason", S, "stage:reason when quarantined, the skip reason when skipped"),
    _c("run_id", S, "the run that first read this source", nullable=False),
    _c("recorded_at", TS, nullable=False),
), primary_key=("source_key",), since=6,
    comment="lineage: one row per source (file, record, URL) and the doc_id it carried, also when already known")

# --- publishers as entities (version 7)
PUBLISHERS = Table("publishers", (
    _c("publisher_key", S, "folded name: case, The, legal suffix, possessive, spacing, domain", nullable=False),
    _c("name", S, "the canonical name articles.publisher holds", nullable=False),
    _c("aliases", S, "spellings seen (or given by the user) for this outlet, sorted", duck="JSON", nullable=False),
    _c("domains", S, "registrable domains its articles were hosted on, sorted", duck="JSON", nullable=False),
    _c("source", S, "seen | user (a --publishers file names it; its name wins)", nullable=False),
    _c("updated_run_id", S),
), primary_key=("publisher_key",), since=7,
    comment="one row per outlet: canonical name, aliases and domains; new names are resolved against it")

PUBLISHER_ALIASES = Table("publisher_aliases", (
    _c("alias_key", S, "outlet_key of a spelling or the main label of a domain", nullable=False),
    _c("publisher_key", S, "the outlet it names", nullable=False),
    _c("source", S, "user | domain (a domain its articles were hosted on) | wire (a news agency's other name: "
       "text.publishers.WIRE_ALIASES)", nullable=False),
), primary_key=("alias_key",), since=7,
    comment="keys that name an outlet under another key (user file, or a domain unlike the name)")

# --- the pattern rules a run cleaned with (version 16): what removals.rule names, as it was then
RULES = Table("rules", (
    _c("ruleset_sha256", S, "sha256 of the whole ruleset (every rule's definition in order, the settings, the "
       "protect patterns): runs.ruleset_sha256 of the runs that used it", nullable=False),
    _c("rule_id", S, "the id removals.rule holds for this rule's removals", nullable=False),
    _c("priority", I32, "order tried: the first rule that matches a line decides it", nullable=False),
    _c("category", S, "removals.category of its removals", nullable=False),
    _c("scope", S, "line | span | head | tail | body | block | section (schemas/rules/boilerplate.json says "
       "what each means)", nullable=False),
    _c("match", S, "full (the whole line) | search (anywhere in it)", nullable=False),
    _c("pattern", S, "the regular expression it ran, definitions expanded", nullable=False),
    _c("options", S, "its other settings as written: case_sensitive, strong, max_words, keywords, until ...",
       duck="JSON", nullable=False),
    _c("source", S, "library (the default rules file) or the path of the --rules file that defined it",
       nullable=False),
    _c("first_run_id", S, "the first run that cleaned with this ruleset", nullable=False),
), primary_key=("ruleset_sha256", "rule_id"), since=16,
    comment="the pattern rules each ruleset holds, one row per rule: join removals (run_id, rule) through "
            "runs.ruleset_sha256 (the view removal_rules does)")

TABLES: tuple[Table, ...] = (
    RUNS, DOCUMENTS, ARTICLES, REMOVALS, QUARANTINE, CLUSTERS, INPUTS,
    DEDUP_META, SIGNATURES, LSH_BANDS, DUPLICATE_PAIRS, CLUSTER_MERGES,
    BOILERPLATE_SIGHTINGS, BOILERPLATE_LINES, BOILERPLATE_APPLIED, BOILERPLATE_PUBLISHER_CLUSTERS,
    BOILERPLATE_PUBLISHERS, SOURCES, PUBLISHERS, PUBLISHER_ALIASES,
    BOILERPLATE_LINE_CLUSTERS, BOILERPLATE_LINE_COUNTS, RULES,
)

# (version, name): each is applied once, in order, and recorded in `schema_migrations`.
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (1, "contract tables"),
    (2, "inputs seen, for cheap drop-folder re-runs"),
    (3, "dedup tables: signatures, LSH bands, verified pairs"),
    (4, "learned boilerplate counts"),
    (5, "stable story ids: cluster creation order, merges recorded"),
    (6, "sources: lineage of every source read, known or new"),
    (7, "publishers as entities: canonical names, aliases, domains; articles.publisher_raw/publisher_key"),
    (8, "learned-boilerplate running counts"),
    (9, "inputs.read_as: an unchanged file read under another JSON field mapping is read again"),
    (10, "inputs: JSON files refused whole (too large, two lists of records) or cut off are read again"),
    (11, "signatures.completeness: the canonical is the most complete copy, not the longest; "
         "clusters.longest_article_id"),
    (12, "inputs.ctime_ns: a file replaced with the same size and mtime is read again"),
    (13, "sources: a doc-less refusal is keyed by its quarantine row (re-key the rows keyed by the uri alone)"),
    (14, "sources: every refusal is keyed by its quarantine row (re-key those with a doc_id; record the loads "
         "their old keys hid)"),
    (15, "removals.offset_in: the text each removal's position is an offset in"),
    (16, "rules: the pattern rules each run cleaned with (runs.ruleset_sha256)"),
    (17, "quarantine.url: a refused capture of a page is resolved by a later load of that page"),
)
# Data a migration derives from older tables, run after its DDL (a warehouse made before version 8 has
# sightings whose counts the new tables must start from).
_BACKFILL: dict[int, str] = {
    8: """
INSERT INTO boilerplate_line_clusters SELECT DISTINCT publisher, line_key, cluster_id FROM boilerplate_sightings;
INSERT INTO boilerplate_line_counts
SELECT publisher, line_key, count(DISTINCT cluster_id), count(DISTINCT article_id)
FROM boilerplate_sightings GROUP BY publisher, line_key;""",
    # Before version 10 a .json over the record limit was refused whole (`too_large`), as were UTF-16/32
    # JSON lines over it; an array cut off mid-write was read line by line (`bad_json` for each line,
    # "path#N"); and an API response with two lists of records was taken as one record without a body
    # (`bad_record` on "path#1"). The reader now reads all four (sources/jsonl.py, jsonstream.py). Such a
    # file is recorded as read, and an unchanged one would be skipped: forgotten here, it is read once more
    # by the next run (its loaded records are skipped as known). A JSON lines file's own lines over the
    # limit are "path#N": not these.
    10: """
DELETE FROM inputs WHERE (
    regexp_matches(lower(path), '\\.(json|jsonl|ndjson)(\\.gz)?$')
    AND path IN (SELECT source_uri FROM quarantine WHERE reason = 'too_large')
) OR (
    regexp_matches(lower(path), '\\.json(\\.gz)?$')
    AND (path IN (SELECT regexp_replace(source_uri, '#[0-9]+$', '') FROM quarantine WHERE reason = 'bad_json')
         OR path || '#1' IN (SELECT source_uri FROM quarantine WHERE reason = 'bad_record'
                             AND detail LIKE 'line 1 has no non-empty string body%'))
);""",
    # Since version 13 a source refused before it had a doc_id is keyed by its rejection too (lineage.py:
    # sha256 of "uri\0\0quarantine_id"), so that a later refusal for another reason gets its row. Rows
    # keyed before by the uri alone (sha256 of "uri\0") get the key the loader now gives them; else the
    # first run after the upgrade added a second row for every refusal it met again (a FIFO, a pipe, an
    # unreadable file: not recorded as read, so met at every run).
    13: """
CREATE TEMP TABLE _rekey AS
SELECT s.source_key AS old_key, sha256(s.source_uri || chr(0) || chr(0) || min(q.quarantine_id)) AS new_key
FROM sources s JOIN quarantine q
  ON q.source_uri = s.source_uri AND q.run_id = s.run_id AND s.reason = q.stage || ':' || q.reason
WHERE s.doc_id IS NULL AND s.outcome = 'quarantined' AND s.source_key = sha256(s.source_uri || chr(0))
GROUP BY s.source_key, s.source_uri;
INSERT INTO sources BY NAME
SELECT r.new_key AS source_key, s.source_uri, s.doc_id, s.outcome, s.reason, s.run_id, s.recorded_at
FROM sources s JOIN _rekey r ON s.source_key = r.old_key
WHERE r.new_key NOT IN (SELECT source_key FROM sources);
DELETE FROM sources WHERE source_key IN (SELECT old_key FROM _rekey);
DROP TABLE _rekey;""",
    # Since version 14 a refusal that has a doc_id (the time limit, a crashed worker) is keyed by its
    # quarantine row too (sha256 of "uri\0doc_id\0quarantine_id"). Keyed before by "uri\0doc_id", the key of
    # a load of the same document: the retry that loaded it found its key taken, so no `loaded` row was
    # recorded, and quarantine_status kept the refusal open. The refusals get the new key, and the loads
    # they hid are recorded as their runs' (at the run's end, after the refusal, as the view requires).
    14: """
CREATE TEMP TABLE _rekey AS
SELECT s.source_key AS old_key, s.source_uri, s.doc_id, s.run_id,
       sha256(s.source_uri || chr(0) || s.doc_id || chr(0) || min(q.quarantine_id)) AS new_key
FROM sources s JOIN quarantine q
  ON q.source_uri = s.source_uri AND q.doc_id = s.doc_id AND q.run_id = s.run_id
     AND s.reason = q.stage || ':' || q.reason
WHERE s.doc_id IS NOT NULL AND s.outcome = 'quarantined' AND s.source_key = sha256(s.source_uri || chr(0) || s.doc_id)
GROUP BY s.source_key, s.source_uri, s.doc_id, s.run_id;
INSERT INTO sources BY NAME
SELECT r.new_key AS source_key, s.source_uri, s.doc_id, s.outcome, s.reason, s.run_id, s.recorded_at
FROM sources s JOIN _rekey r ON s.source_key = r.old_key
WHERE r.new_key NOT IN (SELECT source_key FROM sources);
DELETE FROM sources WHERE source_key IN (SELECT old_key FROM _rekey);
INSERT INTO sources BY NAME
SELECT DISTINCT ON (r.old_key) r.old_key AS source_key, a.source_uri, a.doc_id, 'loaded' AS outcome,
       NULL AS reason, a.run_id, coalesce(u.finished_at, u.started_at) AS recorded_at
FROM _rekey r JOIN articles a ON a.source_uri = r.source_uri AND a.doc_id = r.doc_id AND a.run_id <> r.run_id
JOIN runs u ON u.run_id = a.run_id
ORDER BY r.old_key, u.started_at;
DROP TABLE _rekey;""",
    # What a removal's position is an offset in, for the rows recorded before version 15: describe's head
    # lines (its six rules) in the cleaned body, a learned line of a later run than its article's (a re-clean)
    # in the stored body, any other but a learned line in the repaired text. A learned line of its article's
    # own run was taken at load (the described body) or by that run's re-clean (the stored body): NULL.
    15: """
UPDATE removals SET offset_in = CASE
    WHEN rule IN ('head_kicker', 'hint_title', 'head_title', 'head_byline', 'head_byline_outlet', 'head_date')
        THEN 'cleaned_body'
    WHEN category <> 'learned' THEN 'repaired_text'
    WHEN run_id <> (SELECT a.run_id FROM articles a WHERE a.article_id = removals.article_id) THEN 'stored_body'
END
WHERE offset_in IS NULL;""",
    # The URL of a WARC capture refused before version 17, from the detail its refusal wrote ("record for
    # <uri> is truncated: ...", "payload of <uri> is over ...", "capture of <uri> is marked WARC-Truncated",
    # "capture of <uri> holds 90 of ..."), or a fetched page's own uri.
    17: r"""
UPDATE quarantine SET url = coalesce(
    nullif(regexp_extract(detail, '^(?:record for|payload of|capture of) (https?://\S+) (?:is|holds) ', 1), ''),
    CASE WHEN regexp_matches(source_uri, '^https?://') THEN source_uri END)
WHERE url IS NULL;""",
}


def arrow_schema(table: Table) -> pa.Schema:
    """The Arrow schema of the rows the loader builds for `table` (columns set later by SQL left out)."""
    return pa.schema([pa.field(c.name, c.arrow, nullable=c.nullable) for c in table.columns if c.loaded])


def _create_sql(table: Table, version: int) -> str:
    cols = [f"    {c.name} {c.duck_type}{'' if c.nullable else ' NOT NULL'}"
            for c in table.columns if c.since <= version]
    if table.primary_key:
        cols.append(f"    PRIMARY KEY ({', '.join(table.primary_key)})")
    return f"CREATE TABLE IF NOT EXISTS {table.name} (\n" + ",\n".join(cols) + "\n);"


def migration_sql(version: int) -> str:
    """The DDL of one migration: the tables it creates and the columns it adds to older tables."""
    parts: list[str] = []
    for t in TABLES:
        if t.since == version:
            parts.append(_create_sql(t, version))
        elif t.since < version:
            parts.extend(f"ALTER TABLE {t.name} ADD COLUMN IF NOT EXISTS {c.name} {c.duck_type};"
                         for c in t.columns if c.since == version)
    if version in _BACKFILL:
        parts.append(_BACKFILL[version].strip())
    return "\n".join(parts)


def sql_literal(text: str) -> str:
    """`text` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def comment_sql(on: str = "TABLE", names: AbstractSet[str] | None = None,
                columns: AbstractSet[tuple[str, str]] | None = None) -> list[str]:
    """COMMENT statements for every table and commented column (re-applied on each migrate). The snapshot
    holds the tables as views (`on="VIEW"`), only some of them (`names`) and of their columns (`columns`:
    (table, column) pairs)."""
    tables = [t for t in TABLES if names is None or t.name in names]
    out = [f'COMMENT ON {on} "{t.name}" IS {sql_literal(t.comment)}' for t in tables if t.comment]
    out += [f'COMMENT ON COLUMN "{t.name}"."{c.name}" IS {sql_literal(c.comment)}'
            for t in tables for c in t.columns if c.comment and (columns is None or (t.name, c.name) in columns)]
    return out
