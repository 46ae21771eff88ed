"""The per-document stages wired together: extract -> repair -> clean -> describe -> count.

Pure and picklable, so a batch can run in this process or in a worker process unchanged.
Every document ends as an `Article` or a `Rejection`; an unexpected exception in one document
becomes a rejection of that document, never the failure of its batch.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from functools import cached_property

from newsetl.schemas.records import STAGE_EXTRACT, STAGE_PROCESS, Article, RawDocument, Rejection, Removal
from newsetl.text.clean import clean_text
from newsetl.text.describe import DescribeHints, describe_article, detect_language
from newsetl.text.extract import ExtractConfig, ExtractError, extract_html
from newsetl.text.learned import publisher_key
from newsetl.text.linemodel import LineModel, load_line_model
from newsetl.text.repair import RepairConfig, repair_text
from newsetl.text.rules import Ruleset, load_rules

PROCESSING_ERROR = "processing_error"

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class ProcessConfig:
    # Frozen configs: sharing one default instance is safe.
    extract: ExtractConfig = ExtractConfig()  # noqa: RUF009
    repair: RepairConfig = RepairConfig()  # noqa: RUF009
    rules_files: tuple[str, ...] = ()  # user rules files, added to the built-in library
    # The learned line classifier after the rules (text/linemodel.py); False = rules alone.
    line_model: bool = True


@dataclass(frozen=True)
class ProcessContext:
    """What a worker needs besides the documents: config plus compiled rules (built once)."""

    config: ProcessConfig
    rules: Ruleset
    learned: Mapping[str, AbstractSet[str]] = field(default_factory=dict)  # publisher key -> line keys
    model: LineModel | None = None  # the line model, when config.line_model

    @cached_property
    def learned_rules(self) -> Ruleset:
        """`rules` without the pattern rules (they already ran): for the learned pass, built once."""
        return self.rules.learned_only()


def make_context(config: ProcessConfig, learned: Mapping[str, AbstractSet[str]] | None = None) -> ProcessContext:
    # Load the language model now: it unpacks to a temporary file on first use, and a full /tmp should
    # fail the run at its start with one clear error, not each document.
    detect_language("Warm up the language model with a short English sentence.")
    # The line model too: a missing or corrupt model file is one error at start-up, not one per document.
    model = load_line_model() if config.line_model else None
    return ProcessContext(config=config, rules=load_rules(config.rules_files), learned=learned or {}, model=model)


def count_words(text: str) -> int:
    return len(_WORD.findall(text))


def process_document(doc: RawDocument, ctx: ProcessContext) -> Article | Rejection:
    try:
        return _process(doc, ctx)
    except ExtractError as exc:
        return Rejection(doc.source_uri, STAGE_EXTRACT, exc.reason, str(exc), doc_id=doc.doc_id, raw=doc.raw)
    except OSError:
        # The environment failed (disk full, /tmp not writable), not the document: fail the batch so that
        # nothing is recorded, rather than quarantining good documents for good.
        raise
    except Exception as exc:  # one bad document must not sink its batch
        where = traceback.extract_tb(exc.__traceback__)[-1]
        detail = f"{type(exc).__name__}: {exc} (at {where.filename}:{where.lineno})"
        return Rejection(doc.source_uri, STAGE_PROCESS, PROCESSING_ERROR, detail, doc_id=doc.doc_id, raw=doc.raw)


def process_documents(docs: Sequence[RawDocument], ctx: ProcessContext) -> list[Article | Rejection]:
    return [process_document(doc, ctx) for doc in docs]


def _process(doc: RawDocument, ctx: ProcessContext) -> Article | Rejection:
    hints = DescribeHints(
        url=doc.url,
        title=doc.title,
        published_at=doc.published_at,
        publisher=doc.publisher,
        fetched_at=doc.fetched_at,
        content_type=doc.content_type,
    )
    text = doc.content
    article_url = doc.url
    if doc.content_type == "html":
        ex = extract_html(doc.content, url=doc.url, config=ctx.config.extract)
        text = ex.text
        # trafilatura may know the host from <link rel=canonical> or og:url without a full URL; the
        # host alone still lets describe name the publisher from the domain.
        host_url = f"https://{ex.hostname}" if ex.hostname else None
        article_url = doc.url or ex.url
        # The container's fields (JSONL, feed) win over what the page says about itself.
        hints = replace(hints, url=doc.url or ex.url or host_url, title=doc.title or ex.title,
                        published_at=doc.published_at or ex.date, author=ex.author, sitename=ex.sitename,
                        description=ex.description)
    repaired = repair_text(text, ctx.config.repair)
    titles = tuple(t for t in (hints.title,) if t)
    cleaned = clean_text(repaired.text, ctx.rules, titles=titles, model=ctx.model)
    described = describe_article(cleaned.body, cleaned.removals, hints)
    body = described.body.strip()
    removals: tuple[Removal, ...] = (*cleaned.removals, *described.removals)
    # Learned boilerplate needs the publisher, which describe has only now found (for plain text it
    # may come from a signature line). Positions of these removals are offsets in the described body.
    learned = ctx.learned.get(publisher_key(described.metadata.publisher), frozenset())
    if learned and body:
        title_lines = tuple(t for t in (described.metadata.title, hints.title) if t)
        relearned = clean_text(body, ctx.learned_rules, titles=title_lines, learned=learned)
        body = relearned.body.strip()
        removals = (*removals, *relearned.removals)
    # A document that was nothing but boilerplate (a cookie wall, a site's address block) is still an
    # article, with an empty body and every removal recorded: it is a fact about the input, not an error
    # of it, and a consumer counting stories filters on word_count (canonical_articles flags such
    # stories `is_empty`).
    meta = described.metadata
    return Article(
        article_id=doc.doc_id,
        doc_id=doc.doc_id,
        source_uri=doc.source_uri,
        external_id=doc.external_id,
        url=article_url,
        publisher=meta.publisher,
        original_publisher=meta.original_publisher,
        title=meta.title,
        subtitle=meta.subtitle,
        byline=meta.byline,
        published_at=meta.published_at,
        fetched_at=doc.fetched_at,
        language=meta.language,
        body=body,
        word_count=count_words(body),
        content_type=doc.content_type,
        repairs=dict(repaired.repairs),
        removals=removals,
        extra=dict(doc.extra),
    )
