"""The per-document stages wired together: extract -> repair -> clean -> describe -> count.

Pure and picklable, so a batch can run in this process or in a worker process unchanged.
Every document ends as an `Article` or a `Rejection`; an unexpected exception in one document
becomes a rejection of that document, never the failure of its batch.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TypeVar

from newsetl.schemas.records import (
    OFFSET_IN_CLEANED,
    OFFSET_IN_DESCRIBED,
    OFFSET_IN_REPAIRED,
    STAGE_EXTRACT,
    STAGE_PROCESS,
    Article,
    CleanResult,
    RawDocument,
    Rejection,
    Removal,
    RepairResult,
)
from newsetl.text.clean import clean_batch, clean_text
from newsetl.text.describe import DescribeHints, describe_article, detect_language
from newsetl.text.extract import ExtractConfig, ExtractError, extract_html
from newsetl.text.learned import publisher_key
from newsetl.text.linemodel import LineModel, load_line_model
from newsetl.text.repair import LINE_INDENT, RepairConfig, dedent_lines, repair_field, repair_text
from newsetl.text.rules import Ruleset, load_rules
from newsetl.text.words import count_words

PROCESSING_ERROR = "processing_error"

_T = TypeVar("_T")


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
    def rules_without_patterns(self) -> Ruleset:
        """`rules` without the pattern rules (they already ran), protect patterns kept: for the pass that
        removes the publisher's learned lines, built once."""
        return self.rules.without_patterns()


def make_context(config: ProcessConfig, learned: Mapping[str, AbstractSet[str]] | None = None, *,
                 processes_here: bool = True) -> ProcessContext:
    """The run's context. `processes_here=False`: worker processes will process the documents and load
    the language model themselves; the worker pool checks at its start that they could
    (`tasks/pool.WorkerPool.start`), and this process does not load it (~1 s, 70 MB)."""
    # Load the language model now: it unpacks to a temporary file on first use, and a full /tmp should
    # fail the run at its start with one clear error, not each document.
    if processes_here:
        detect_language("Warm up the language model with a short English sentence.")
    # The line model too: a missing or corrupt model file is one error at start-up, not one per document.
    model = load_line_model() if config.line_model else None
    return ProcessContext(config=config, rules=load_rules(config.rules_files), learned=learned or {}, model=model)


def process_document(doc: RawDocument, ctx: ProcessContext) -> Article | Rejection:
    return _guarded(doc, lambda: _process(doc, ctx))


def _guarded(doc: RawDocument, step: Callable[[], _T]) -> _T | Rejection:
    """Run one document's step; its failure becomes that document's rejection (see the module doc)."""
    try:
        return step()
    except ExtractError as exc:
        return Rejection(doc.source_uri, STAGE_EXTRACT, exc.reason, str(exc), doc_id=doc.doc_id, raw=doc.raw,
                         url=doc.url)
    except OSError:
        # The environment failed (disk full, /tmp not writable), not the document: fail the batch so that
        # nothing is recorded, rather than quarantining good documents for good.
        raise
    except Exception as exc:  # one bad document must not sink its batch
        where = traceback.extract_tb(exc.__traceback__)[-1]
        detail = f"{type(exc).__name__}: {exc} (at {where.filename}:{where.lineno})"
        return Rejection(doc.source_uri, STAGE_PROCESS, PROCESSING_ERROR, detail, doc_id=doc.doc_id, raw=doc.raw,
                         url=doc.url)


def process_documents(docs: Sequence[RawDocument], ctx: ProcessContext) -> list[Article | Rejection]:
    """`process_document` over a batch, with the same outcomes; the clean step runs as one
    `clean_batch` call, so that per-call costs (and the line model's) are paid once per batch. Should
    the batch call fail, the documents go one by one, so that a bad document still only rejects itself.

    The three steps are public (`prepare_document`, `clean_prepared` / `clean_document`,
    `finish_document`) so that the worker pool can run them under its per-document time limit."""
    out: list[Article | Rejection | None] = []  # None: prepared, waiting for the clean step
    ready: list[tuple[int, PreparedDocument]] = []
    for k, doc in enumerate(docs):
        p = prepare_document(doc, ctx)
        if isinstance(p, PreparedDocument):
            ready.append((k, p))
            out.append(None)
        else:
            out.append(p)
    try:
        cleaned = clean_prepared([p for _, p in ready], ctx)
    except OSError:
        raise
    except Exception:
        return [process_document(doc, ctx) for doc in docs]
    for (k, p), c in zip(ready, cleaned, strict=True):
        out[k] = finish_document(docs[k], ctx, p, c)
    return [o for o in out if o is not None]


def prepare_document(doc: RawDocument, ctx: ProcessContext) -> PreparedDocument | Rejection:
    """Step 1 of a document: extract (HTML) and repair; a failure is the document's rejection."""
    return _guarded(doc, lambda: _prepare(doc, ctx))


def clean_prepared(prepared: Sequence[PreparedDocument], ctx: ProcessContext) -> list[CleanResult]:
    """Step 2 of many documents in one `clean_batch` call (raises when the call fails: the caller then
    cleans them one by one with `clean_document`)."""
    return clean_batch([p.text for p in prepared], ctx.rules, titles=[p.titles for p in prepared], model=ctx.model)


def clean_document(doc: RawDocument, p: PreparedDocument, ctx: ProcessContext) -> CleanResult | Rejection:
    """Step 2 of one document; a failure is the document's rejection."""
    return _guarded(doc, lambda: clean_text(p.text, ctx.rules, titles=p.titles, model=ctx.model))


def finish_document(doc: RawDocument, ctx: ProcessContext, p: PreparedDocument,
                    cleaned: CleanResult) -> Article | Rejection:
    """Step 3: describe, the learned pass, the Article; a failure is the document's rejection."""
    return _guarded(doc, lambda: _finish(doc, ctx, *_with_alternative(p, cleaned, ctx)))


def _with_alternative(p: PreparedDocument, cleaned: CleanResult,
                      ctx: ProcessContext) -> tuple[PreparedDocument, CleanResult]:
    """When the cleaner left nothing of the extraction, the first other extraction mode's text whose body
    it keeps (rare: the mode with the most words was all page furniture); else the document as it was."""
    if cleaned.body.strip() or not p.alternatives:
        return p, cleaned
    for text in p.alternatives:
        repaired = repair_text(text, ctx.config.repair)
        other = clean_text(repaired.text, ctx.rules, titles=p.titles, model=ctx.model)
        if other.body.strip():
            return replace(p, repaired=repaired, alternatives=()), other
    return p, cleaned


@dataclass(frozen=True)
class PreparedDocument:
    """A document extracted and repaired, ready for the clean step."""

    hints: DescribeHints
    article_url: str | None
    repaired: RepairResult
    alternatives: tuple[str, ...] = ()  # Extraction.alternatives of an HTML page

    @property
    def text(self) -> str:
        return self.repaired.text

    @property
    def titles(self) -> tuple[str, ...]:
        return tuple(t for t in (self.hints.title,) if t)


def _process(doc: RawDocument, ctx: ProcessContext) -> Article | Rejection:
    p = _prepare(doc, ctx)
    return _finish(doc, ctx, *_with_alternative(p, clean_text(p.text, ctx.rules, titles=p.titles, model=ctx.model),
                                                ctx))


# Documents whose fetched_at is when the page was seen (not a file's modification time).
SEEN_KINDS = frozenset({"url", "warc"})


def _prepare(doc: RawDocument, ctx: ProcessContext) -> PreparedDocument:
    hints = DescribeHints(
        url=doc.url,
        title=doc.title,
        published_at=doc.published_at,
        publisher=doc.publisher,
        author=doc.author,
        fetched_at=doc.fetched_at,
        content_type=doc.content_type,
        seen_at=doc.fetched_at if doc.kind in SEEN_KINDS else None,
    )
    text = doc.content
    if text is None:  # the caller decodes first (`sources.document.decode_pending`), as the worker pool does
        raise ValueError(f"document {doc.doc_id} was not decoded before processing")
    article_url = doc.url
    alternatives: tuple[str, ...] = ()
    if doc.content_type == "html":
        ex = extract_html(text, url=doc.url, config=ctx.config.extract)
        text, alternatives = ex.text, ex.alternatives
        # trafilatura may know the host from <link rel=canonical> or og:url without a full URL; the
        # host alone still lets describe name the publisher from the domain.
        host_url = f"https://{ex.hostname}" if ex.hostname else None
        article_url = doc.url or ex.url
        # The container's fields (JSONL, feed) win over what the page says about itself.
        hints = replace(hints, url=doc.url or ex.url or host_url, title=doc.title or ex.title,
                        published_at=doc.published_at or ex.date, author=doc.author or ex.author,
                        page_published_at=ex.date if doc.published_at else None,
                        sitename=ex.sitename,
                        description=ex.description)
    # The metadata gets the body's character repairs: a record's mojibake title or an NFD byline is as
    # broken as its body, and the title is matched against the repaired body's headline line.
    fix = ctx.config.repair
    hints = replace(hints, title=repair_field(hints.title, fix), author=repair_field(hints.author, fix),
                    publisher=repair_field(hints.publisher, fix), sitename=repair_field(hints.sitename, fix),
                    description=repair_field(hints.description, fix),
                    published_at=repair_field(hints.published_at, fix),
                    page_published_at=repair_field(hints.page_published_at, fix))
    return PreparedDocument(hints, article_url, repair_text(text, fix), alternatives)


def _offsets_in(removals: Sequence[Removal], text: str) -> tuple[Removal, ...]:
    """The removals of one pass, with the text their positions are offsets in."""
    return tuple(replace(r, offset_in=text) for r in removals)


def _finish(doc: RawDocument, ctx: ProcessContext, p: PreparedDocument, cleaned: CleanResult) -> Article | Rejection:
    hints, article_url, repaired = p.hints, p.article_url, p.repaired
    described = describe_article(cleaned.body, cleaned.removals, hints)
    body = described.body.strip()
    removals: tuple[Removal, ...] = (*_offsets_in(cleaned.removals, OFFSET_IN_REPAIRED),
                                     *_offsets_in(described.removals, OFFSET_IN_CLEANED))
    # Learned boilerplate needs the publisher, which describe has only now found (for plain text it
    # may come from a signature line). Positions of these removals are offsets in the described body.
    learned = ctx.learned.get(publisher_key(described.metadata.publisher), frozenset())
    signed_text: str | None = None
    if learned and body:
        title_lines = tuple(t for t in (described.metadata.title, hints.title) if t)
        relearned = clean_text(body, ctx.rules_without_patterns, titles=title_lines, learned=learned)
        if relearned.removals:
            signed_text = body  # what dedup signs (Article.signed_text)
        body = relearned.body.strip()
        removals = (*removals, *_offsets_in(relearned.removals, OFFSET_IN_DESCRIBED))
    body, dedented = dedent_lines(body)
    repairs = {**repaired.repairs, LINE_INDENT: dedented} if dedented else dict(repaired.repairs)
    # A document that was nothing but boilerplate (a cookie wall, a site's address block) is still an
    # article, with an empty body and every removal recorded: it is a fact about the input, not an error
    # of it, and a consumer counting stories filters on word_count (canonical_articles flags such
    # stories `is_empty`).
    meta = described.metadata
    extra = dict(doc.extra)
    if doc.published_at and described.container_date_why:
        # The input named a date no parser reads ("2024-13-45", "soon") or one no article has (after the record
        # was fetched, before 1990): said, with why, beside the record's other unusable values rather than a
        # silent NULL (user trials), also when the page or the text gave the date.
        extra["_invalid_fields"] = {**(extra.get("_invalid_fields") or {}),
                                    "published_at": described.container_date_why}
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
        repairs=repairs,
        removals=removals,
        extra=extra,
        signed_text=signed_text,
    )
