"""A document's metadata (a JSON record's title, author and publisher; a page's own title) gets the same
character repairs as its body: mojibake undone and NFC, so the stored title and byline are the text the
body shows, and the headline line the title names is taken out of the body (user trial 9)."""

from __future__ import annotations

import unicodedata

from newsetl.schemas.records import Article, RawDocument
from newsetl.text.pipeline import ProcessConfig, make_context, process_document
from newsetl.text.repair import repair_field

TITLE = "La mairie de Lyon présente un plan de rénovation des écoles élémentaires"
BYLINE = "Élodie Lefèvre"
PUBLISHER = "Сибирские вести"
PARAS = [
    "La mairie de Lyon a présenté mercredi un plan de rénovation énergétique de quarante écoles élémentaires, "
    "d'un montant de cent vingt millions d'euros, étalé sur six ans.",
    "Selon l'adjointe à l'éducation, les travaux prévoient l'isolation des façades, le remplacement des "
    "chaudières au fioul et la végétalisation des cours de récréation, très exposées à la chaleur l'été.",
    "Les fédérations de parents d'élèves ont salué l'annonce tout en réclamant un calendrier précis, afin "
    "que les chantiers ne perturbent pas la scolarité des enfants pendant l'année.",
]


def _mojibake(text: str) -> str:
    """UTF-8 read as windows-1252, as a scraper's dump holds it."""
    return text.encode("utf-8").decode("cp1252")


def _latin1_mojibake(text: str) -> str:
    return text.encode("utf-8").decode("latin-1")


def _process(content: str, content_type: str = "text", **fields: str) -> Article:
    doc = RawDocument(doc_id="d1", source_uri="mem://1", kind="jsonl" if content_type == "text" else "html",
                      content_type=content_type, raw=content.encode(), content=content, **fields)  # type: ignore[arg-type]
    out = process_document(doc, make_context(ProcessConfig()))
    assert isinstance(out, Article)
    return out


def test_a_records_mojibake_title_byline_and_publisher_are_stored_repaired() -> None:
    body = "\n".join([TITLE, *PARAS])
    article = _process(_mojibake(body), title=_mojibake(TITLE), author=_mojibake(BYLINE),
                       publisher=_latin1_mojibake(PUBLISHER))
    assert article.title == TITLE
    assert article.byline == BYLINE
    assert article.publisher == PUBLISHER
    # The repaired title names the body's headline line, which describe takes out as it does for a clean one.
    assert not article.body.startswith("La mairie de Lyon présente")
    assert article.body.split("\n")[0] == PARAS[0]


def test_an_nfd_title_and_byline_are_stored_nfc_and_the_headline_leaves_the_body() -> None:
    nfd = unicodedata.normalize("NFD", "\n".join([TITLE, *PARAS]))
    article = _process(nfd, title=unicodedata.normalize("NFD", TITLE), author=unicodedata.normalize("NFD", BYLINE))
    assert article.title == TITLE and unicodedata.is_normalized("NFC", article.title)
    assert article.byline == BYLINE
    assert TITLE not in article.body


def test_an_nfd_page_gives_an_nfc_title_through_trafilatura() -> None:
    page = (f"<html lang='fr'><head><meta charset='utf-8'><title>{TITLE}</title></head><body><article>"
            f"<h1>{TITLE}</h1>" + "".join(f"<p>{p}</p>" for p in PARAS) + "</article></body></html>")
    article = _process(unicodedata.normalize("NFD", page), "html")
    assert article.title == TITLE
    assert TITLE not in article.body


def test_repair_field_leaves_clean_and_missing_values_alone() -> None:
    assert repair_field(None) is None
    assert repair_field("") == ""
    assert repair_field(TITLE) == TITLE
    assert repair_field("AT&amp;T buys &quot;Time&quot;") == 'AT&T buys "Time"'
