"""Bytes to text: BOMs, declared charsets, UTF-8, mixed files, detection — and what must not change."""

from __future__ import annotations

import codecs
import io
import os
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from newsetl.schemas.records import RawDocument
from newsetl.sources.decode import (
    bom_encoding,
    clean_decoded,
    decode_bytes,
    looks_binary,
    normalize_label,
    sniff_declared,
)
from newsetl.sources.read import read_path

ARTICLE = (
    "“We kept thinking there’d be a way through,” said Siobhán Ó Conaill of the U.S. office. "
    "The café sold 2.5 kg of bread for £6,000 — see https://example.com/a?b=1&c=2."
)


# -- what must NOT change ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        ARTICLE,
        "plain ASCII text, nothing to do.",
        "Quote ending in a curly quote.”",
        "Node.js 3.14 U.S. e.g. i.e.",
        "Привет, мир — русский текст в UTF-8.",
        "日本語のテキスト。",
        "emoji 🗞️ and RTL עברית text",
        "tab\tseparated\nlines\r\nand a form feed\f",
    ],
)
def test_valid_utf8_is_returned_unchanged(text: str) -> None:
    decoded, encoding = decode_bytes(text.encode("utf-8"))
    assert decoded == text
    assert encoding == "utf-8"


def test_utf8_declaration_over_cp1252_bytes_falls_back() -> None:
    # Servers and templates lie: a page declaring UTF-8 whose bytes are not UTF-8 must neither
    # crash nor turn into replacement characters.
    data = b'<meta charset="utf-8"><p>caf\xe9 \x93quoted\x94</p>'
    text, encoding = decode_bytes(data, html=True)
    assert "café “quoted”" in text
    assert encoding == "cp1252"


@pytest.mark.parametrize("label", ["base64", "hex", "rot13", "zlib", "uu", "bz2", "quopri"])
def test_a_charset_naming_a_bytes_codec_is_no_charset(label: str) -> None:
    # Python knows these names, but as bytes-to-bytes codecs: bytes.decode raised LookupError and one page
    # whose meta tag said charset="base64" (or whose HTTP header did) ended the whole run.
    assert normalize_label(label) is None
    data = f'<meta charset="{label}"><p>caf'.encode() + b"\xe9 \x93quoted\x94</p>"
    for declared in (None, label, "iso-8859-1"):
        text, encoding = decode_bytes(data, html=True, declared=declared)
        assert "café “quoted”" in text and encoding == "cp1252"


# -- BOMs and UTF-16/32 --------------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-be"])
def test_unicode_encodings_decode_exactly(codec: str) -> None:
    data = ARTICLE.encode(codec)  # utf-16-le/-be carry no BOM: found by the NUL rhythm
    if codec == "utf-32-be":
        data = codecs.BOM_UTF32_BE + data
    text, _ = decode_bytes(data)
    assert text == ARTICLE  # and the BOM itself is not part of the text


def test_bom_encoding_prefers_utf32_over_utf16() -> None:
    assert bom_encoding(codecs.BOM_UTF32_LE + "x".encode("utf-32-le")) == "utf-32-le"
    assert bom_encoding(codecs.BOM_UTF16_LE + b"x\x00") == "utf-16-le"
    assert bom_encoding(b"plain") is None


def test_short_bytes_with_nuls_are_not_taken_for_utf16() -> None:
    text, encoding = decode_bytes(b"a\x00b\x01c")
    assert encoding == "utf-8"
    assert text == "abc"  # NUL and SOH removed, letters kept


# -- legacy encodings ----------------------------------------------------------------------------


def test_cp1252_curly_quotes_and_accents() -> None:
    text, encoding = decode_bytes("“Róisín” costs €5 – naïve".encode("cp1252"))
    assert text == "“Róisín” costs €5 – naïve"
    assert encoding == "cp1252"


def test_latin1_declared_is_read_as_cp1252_like_browsers() -> None:
    data = '<meta charset="ISO-8859-1"><p>\x93quoted\x94 caf\xe9</p>'.encode("latin-1")
    text, encoding = decode_bytes(data, html=True)
    assert "“quoted” café" in text
    assert encoding == "cp1252"


def test_declared_header_charset_beats_detection() -> None:
    data = "Ελληνικά νέα: η βουλή ψήφισε τον προϋπολογισμό".encode("iso-8859-7")
    text, encoding = decode_bytes(data, declared="ISO-8859-7")
    assert text.startswith("Ελληνικά")
    assert encoding == "iso8859-7"


# A page in its own charset, served with a server's catch-all default in the HTTP header (Apache's and
# Tomcat's charset=ISO-8859-1): the page's meta tag is the author's word (sources/decode.py, `_decode`).
PAGE_TEXTS = {
    "windows-1251": "Власти Москвы во вторник объявили о строительстве новой линии метро.",
    "cp1250": "Rząd ogłosił nowy plan budżetowy na przyszły rok.",
    "windows-1253": "Η κυβέρνηση ανακοίνωσε νέο σχέδιο για τις μεταφορές.",
    "EUC-KR": "서울시 새 대중교통 계획 발표: 버스 노선을 개편한다.",
    "GBK": "北京将投资五百亿元改善公共交通，新线路明年开通。",
    "Shift_JIS": "東京都が新しい防災計画を発表した。",
    "utf-8": "Власти Москвы объявили о строительстве — “новой” линии.",
}


def _page(charset: str, body: str, declare: str | None = None) -> bytes:
    meta = f'<meta charset="{declare or charset}">' if declare != "" else ""
    return f"<html><head>{meta}<title>{body[:12]}</title></head><body><p>{body}</p></body></html>".encode(charset)


@pytest.mark.parametrize("header", ["ISO-8859-1", "latin1", "us-ascii", "windows-1252"])
@pytest.mark.parametrize("charset", sorted(PAGE_TEXTS))
def test_a_catch_all_header_charset_does_not_beat_the_pages_own(charset: str, header: str) -> None:
    text, encoding = decode_bytes(_page(charset, PAGE_TEXTS[charset]), html=True, declared=header)
    assert f"<p>{PAGE_TEXTS[charset]}</p>" in text
    assert encoding == codecs.lookup(charset).name


def test_http_equiv_declaration_beats_a_catch_all_header_too() -> None:
    meta = '<meta http-equiv="Content-Type" content="text/html; charset=windows-1251">'
    page = f'{meta}<p>{PAGE_TEXTS["windows-1251"]}</p>'
    assert decode_bytes(page.encode("cp1251"), html=True, declared="ISO-8859-1") == (page, "cp1251")


def test_a_catch_all_header_still_wins_when_the_page_declares_nothing_the_same_or_what_does_not_read() -> None:
    western = "“Róisín” paid €5 at the café – naïve"
    # Nothing declared in the page, or the same charset under another label: the header, as before.
    for declare, header in (("", "ISO-8859-1"), ("iso-8859-1", "windows-1252"), ("latin1", "us-ascii")):
        text, encoding = decode_bytes(_page("cp1252", western, declare=declare), html=True, declared=header)
        assert western in text and encoding == "cp1252"
    # A stale template meta tag the bytes do not read in (cp1252 bytes are not UTF-8): the header.
    text, encoding = decode_bytes(_page("cp1252", western, declare="utf-8"), html=True, declared="ISO-8859-1")
    assert western in text and encoding == "cp1252"
    # iso-8859-15 reads cp1252's curly quotes (0x93, 0x94) without error, as C1 controls no text has.
    text, encoding = decode_bytes(_page("cp1252", western, declare="iso-8859-15"), html=True, declared="ISO-8859-1")
    assert western in text and encoding == "cp1252"


def test_a_specific_header_charset_still_beats_the_pages_meta() -> None:
    greek = "Ελληνικά νέα: η βουλή ψήφισε τον προϋπολογισμό"
    text, encoding = decode_bytes(_page("iso-8859-7", greek, declare="windows-1251"), html=True, declared="ISO-8859-7")
    assert greek in text and encoding == "iso8859-7"


def test_a_warc_page_served_as_iso_8859_1_is_read_in_its_meta_charset(tmp_path: Path) -> None:
    body = PAGE_TEXTS["windows-1251"]
    path = tmp_path / "crawl.warc"
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=False)
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=ISO-8859-1")], protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record("https://r.example/a", "response", http_headers=http,
                                                      payload=io.BytesIO(_page("windows-1251", body))))
    (doc,) = list(read_path(str(path)))
    assert isinstance(doc, RawDocument)
    assert doc.encoding == "cp1251" and f"<p>{body}</p>" in doc.content


@pytest.mark.parametrize("codec", ["cp1251", "koi8-r"])
def test_cyrillic_legacy_text_is_detected_not_read_as_cp1252(codec: str) -> None:
    sentence = "Городской совет утвердил бюджет на следующий год после долгого обсуждения. " * 3
    text, _ = decode_bytes(sentence.encode(codec))
    assert text == sentence


def test_mixed_utf8_and_cp1252_keeps_both_halves_readable() -> None:
    data = "Le café “Chez Zoë” ouvre.\n".encode() + "Second paragraph: caf\xe9 \x93ok\x94.".encode("latin-1")
    text, encoding = decode_bytes(data)
    assert text == "Le café “Chez Zoë” ouvre.\nSecond paragraph: café “ok”."
    assert encoding == "utf-8+cp1252"


def test_bogus_and_utf16_declarations_are_ignored() -> None:
    assert decode_bytes(b'<meta charset="no-such-charset"><p>caf\xc3\xa9</p>', html=True)[0].endswith(
        "café</p>"
    )
    # A meta tag saying UTF-16 is necessarily a lie: the tag itself was readable as ASCII.
    assert decode_bytes(b'<meta charset="utf-16"><p>caf\xc3\xa9</p>', html=True)[1] == "utf-8"


def test_sniff_declared_reads_meta_and_xml_prolog() -> None:
    assert (
        sniff_declared(
            b'<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1252">',
            html=True,
        )
        == "windows-1252"
    )
    assert sniff_declared(b"<?xml version='1.0' encoding='ISO-8859-15'?><rss/>", html=False) == "ISO-8859-15"
    assert sniff_declared(b"<p>charset=utf-8 is just text here</p>", html=False) is None


def test_normalize_label() -> None:
    assert normalize_label("UTF8") == "utf-8"
    assert normalize_label("latin1") == "cp1252"
    assert normalize_label("us-ascii") == "cp1252"
    assert normalize_label("x-no-such") is None


# -- cleaning of decoded text ----------------------------------------------------------------------


def test_clean_decoded_removes_never_text_characters_only() -> None:
    assert clean_decoded("\ufeffa\x00b\x07c\ud800d") == "abc\ufffdd"
    # Tabs, newlines, NBSP, zero-width and bidi marks are text (repair decides about them later).
    keep = "a\tb\nc\r\nd\u00a0e\u200bf\u202eg\u200fh"
    assert clean_decoded(keep) == keep


# -- binary detection ----------------------------------------------------------------------------


def test_looks_binary() -> None:
    assert looks_binary(os.urandom(4096))
    assert looks_binary(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    assert not looks_binary(ARTICLE.encode("utf-16"))
    assert not looks_binary(ARTICLE.encode("utf-16-le"))
    # A few stray NULs in a long text are a bad conversion, not a binary file.
    assert not looks_binary(ARTICLE.encode() * 20 + b"\x00\x00" + ARTICLE.encode())
    assert not looks_binary(b"")


def test_a_utf16_bom_is_proof_only_when_text_follows() -> None:
    rng = random.Random(16)
    for bom in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE):
        assert looks_binary(bom + bytes(rng.getrandbits(8) for _ in range(4000))), bom
    chinese = "市议会周二投票通过了明年的预算，官员表示。" * 40
    for encoding in ("utf-16", "utf-32"):
        assert not looks_binary(ARTICLE.encode(encoding))
        assert not looks_binary(chinese.encode(encoding))
    # A scraped share bar's icon-font glyphs are private-use characters: a few do not make a text binary.
    assert not looks_binary(("\uf09a Share \uf099 Tweet\n" + ARTICLE).encode("utf-16"))


# -- properties ----------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=2048), st.booleans(), st.sampled_from([None, "utf-8", "latin-1", "bogus", "utf-16"])
)
def test_decode_never_raises_and_returns_clean_text(data: bytes, html: bool, declared: str | None) -> None:
    text, encoding = decode_bytes(data, html=html, declared=declared)
    assert isinstance(text, str) and encoding
    assert clean_decoded(text) == text  # no NUL, no lone surrogate: safe for Arrow and DuckDB
    text.encode("utf-8")  # would raise on a lone surrogate


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=500))
def test_utf8_round_trip(text: str) -> None:
    decoded, _ = decode_bytes(text.encode("utf-8"))
    assert decoded == text.removeprefix("\ufeff")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_clean_decoded_is_idempotent(text: str) -> None:
    once = clean_decoded(text)
    assert clean_decoded(once) == once


def test_terminal_escape_sequences_go_whole() -> None:
    # Text captured from a console: the colour codes go with their ESC, not just the ESC ("[31m" left).
    captured = "Council \x1b[1;31mapproves\x1b[0m budget\x1b[K.\nA [31m without its ESC is text."
    assert clean_decoded(captured) == "Council approves budget.\nA [31m without its ESC is text."
