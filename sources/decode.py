"""Bytes to text without ever crashing: BOMs, declared charsets, UTF-8, then detection.

Order matters: a BOM is proof (once the bytes after a UTF-16/32 one read as text: binaries can start with
FF FE too); a charset declared by the container (HTTP header, HTML meta) is
strong evidence, but only if the bytes actually decode with it (servers lie); strict UTF-8 that
decodes is almost never wrong; only then do we guess. For the guess, cp1252 beats Latin-1 for
Western news (curly quotes live in 0x80-0x9F) and charset-normalizer handles the rest.

Two real-world cases get special care:
- *mixed* files (a UTF-8 article with one paragraph pasted from a cp1252 source): strict UTF-8
  fails on a few bytes, cp1252 would turn every correct UTF-8 character into mojibake. We decode
  UTF-8 and read only the invalid bytes as cp1252.
- labels that browsers never honour literally: the WHATWG Encoding Standard maps `iso-8859-1`,
  `latin1` and `us-ascii` to windows-1252, and so do we, since that is what the page's author saw.
- a server's catch-all default (HTTP `charset=ISO-8859-1`, Apache's and Tomcat's) over a page that
  declares its own charset (`<meta charset="windows-1251">`): the page's declaration is read first
  when the bytes read as text in it (see `_decode`), where a browser would let the header win.

`clean_decoded` then removes what is never text in any encoding (NUL and other C0 controls, lone
surrogates): they break Arrow/DuckDB writes downstream and carry no content.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from typing import IO

from charset_normalizer import from_bytes

from newsetl.sources.files import Rewritten


class DecodeError(ValueError):
    pass


_BOMS = (
    # UTF-32 first: its LE BOM starts with the UTF-16 LE BOM.
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Bounded repetitions: with `[^>]+` a head of thousands of unclosed "<meta" takes seconds.
_META_CHARSET = re.compile(
    rb"""<meta[^>]{0,300}?charset\s{0,8}=\s{0,8}["']?\s{0,8}([A-Za-z0-9_.:-]{1,40})""", re.I
)
_XML_ENCODING = re.compile(
    rb"""^\s{0,64}<\?xml[^>]{0,200}?encoding\s{0,8}=\s{0,8}["']([A-Za-z0-9_.:-]{1,40})""", re.I
)
# C0 controls other than tab/newline/VT/CR/formfeed/ESC are not text; a few stray ones are tolerated.
# Counted with bytes.translate (C speed): a regex findall costs ~75 us per 8 KB sample.
_CONTROL_BYTES = bytes([*range(0x00, 0x09), *range(0x0E, 0x1B), *range(0x1C, 0x20)])
# In decoded text: NUL and C0 controls (keeping \t \n \f \r), and lone surrogates (from JSON
# escapes such as "\ud800", which json.loads accepts but UTF-8 cannot encode).
# A terminal's escape sequences (colour, cursor: ESC [ ... letter) go whole, as the controls do: a scrape
# captured from a console would otherwise leave "[31m" in the body once its ESC was dropped.
_TEXT_JUNK = re.compile("\x1b\\[[0-?]*[ -/]*[@-~]|[\x00-\x08\x0b\x0e-\x1f]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_JUNK_CHARS = tuple(chr(c) for c in (*range(0x00, 0x09), 0x0B, *range(0x0E, 0x20)))
# Valid UTF-8 multi-byte sequences (2-4 bytes): evidence that a non-UTF-8 file is *mostly* UTF-8.
_UTF8_MULTI = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
_HIGH = re.compile(rb"[\x80-\xff]")

# WHATWG: these labels mean windows-1252 on the web.
_WEB_ALIASES = {"iso8859-1": "cp1252", "latin-1": "cp1252", "ascii": "cp1252", "iso-8859-1": "cp1252"}
# A header charset that reads almost any bytes (iso-8859-1, latin-1, us-ascii and windows-1252 all map to it
# above): a strict decode that succeeds says nothing about whether it was the page's charset.
_CATCH_ALL = "cp1252"
# C1 controls: an ISO-8859-x codec reads bytes 0x80-0x9F as them without error, but no text has them (a
# page declaring iso-8859-15 and writing cp1252's curly quotes there reads as them).
_C1 = re.compile("[\x80-\x9f]")
_SNIFF_BYTES = 65536
_MIXED_ERRORS = "newsetl-cp1252-fallback"


def _cp1252_fallback(exc: UnicodeError) -> tuple[str, int]:
    """Codec error handler: read the bytes UTF-8 rejected as cp1252 (Latin-1 for its 5 holes)."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    bad = exc.object[exc.start : exc.end]
    return bad.decode("cp1252", errors="replace").replace("\ufffd", "") or bad.decode("latin-1"), exc.end


codecs.register_error(_MIXED_ERRORS, _cp1252_fallback)


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 text of Latin scripts has a NUL in every other byte; detect which side.

    Text in another alphabet (Greek, Cyrillic, Hebrew, Arabic ...) has a NUL only where it writes an ASCII
    character (a space, a digit, punctuation): one high byte in six or so, not one in three. Such a NUL
    rhythm counts as UTF-16 only when the text it decodes to is nearly all letters, marks, digits, spaces
    and punctuation. A Greek article exported as UTF-16 without a BOM was refused as binary (a user trial).
    Chinese and Japanese, with fewer NULs still: `_cjk_utf16`."""
    sample = data[:4096]
    if len(sample) < 16:  # too short to tell a pattern from chance
        return None
    half = len(sample) / 2
    even_nuls = sample[0::2].count(0) / half
    odd_nuls = sample[1::2].count(0) / half
    if odd_nuls > 0.3 and even_nuls < 0.05:
        guess, alphabet = "utf-16-le", False
    elif even_nuls > 0.3 and odd_nuls < 0.05:
        guess, alphabet = "utf-16-be", False
    elif odd_nuls > 0.08 and even_nuls < 0.01:
        guess, alphabet = "utf-16-le", True
    elif even_nuls > 0.08 and odd_nuls < 0.01:
        guess, alphabet = "utf-16-be", True
    else:
        return _cjk_utf16(sample, (odd_nuls + even_nuls) * half)
    # Binary formats can have the same NUL rhythm (arrays of 16-bit ints): the decoded text must
    # be mostly free of control characters to count as UTF-16.
    text = sample[: len(sample) // 2 * 2].decode(guess, errors="replace")
    junk = sum(1 for ch in text if ch < " " and ch not in "\t\n\r\f")
    if alphabet:
        # The weaker rhythm must read as prose: letters, marks, digits, spaces, punctuation, line breaks.
        junk += sum(1 for ch in text if unicodedata.category(ch)[0] not in "LMNPZ" and ch not in "\t\n\r\f")
    return guess if junk <= len(text) // 20 else None


def _is_han_or_kana(ch: str) -> bool:
    # The main blocks of text/words.SPACELESS_RANGES (sources is read before text and does not import it).
    return "\u3040" <= ch <= "\u30ff" or "\u3400" <= ch <= "\u4dbf" or "\u4e00" <= ch <= "\u9fff"


def _cjk_utf16(sample: bytes, nul_count: float) -> str | None:
    """Chinese or Japanese in UTF-16 without a BOM (its codec, or None): its characters have next to no NUL
    byte (one character a word, full-width punctuation), so only its line breaks, digits and Latin letters
    leave one, too few for the rhythms above: such a story was refused as binary (a user trial). A legacy CJK
    encoding (GBK, Big5, Shift-JIS, EUC) has no NUL byte at all; a UTF-8 text (where a NUL is valid too)
    reads as UTF-8. So: some NULs, bytes that are no UTF-8, and a text mostly of Han and kana, with no junk,
    in one byte order (the other one reads as letters of other scripts)."""
    if nul_count < 2:
        return None
    try:
        sample.decode("utf-8")
        return None
    except UnicodeDecodeError as exc:
        if exc.start >= len(sample) - 3:  # only a character cut at the sample's end
            return None
    for encoding in ("utf-16-le", "utf-16-be"):
        text = sample[: len(sample) // 2 * 2].decode(encoding, errors="replace")
        letters = [ch for ch in text if ch.isalpha()]
        junk = sum(1 for ch in text if unicodedata.category(ch)[0] not in "LMNPZ" and ch not in "\t\n\r\f")
        if junk <= len(text) // 50 and sum(map(_is_han_or_kana, letters)) >= 0.8 * len(letters) > 0:
            return encoding
    return None


def bom_encoding(data: bytes) -> str | None:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding
    return None


def _wide_text_plausible(data: bytes, encoding: str) -> bool:
    """Whether bytes after a UTF-16/32 BOM read as text. A BOM is two or four bytes a binary can start with
    too (FF FE): random bytes read as UTF-16 are ~15% code points no text has (private use, unassigned,
    unpaired surrogates), where a text in any script has next to none (the icon-font glyphs of a scraped
    share bar are private use: hence a limit of one in twelve, not zero)."""
    unit = 4 if encoding.startswith("utf-32") else 2
    sample = data[: 8192 // unit * unit].decode(encoding, errors="replace")
    junk = sum(1 for ch in sample if ch == "\ufffd" or (ch < " " and ch not in "\t\n\r\f")
               or unicodedata.category(ch) in ("Co", "Cn", "Cs"))
    return junk <= len(sample) // 12


def looks_binary(data: bytes) -> bool:
    """True for images, archives and other non-text bytes (UTF-16 and UTF-32 are text).

    A few stray NULs or control characters (a bad conversion, a terminal paste) do not make a
    text binary: only a density of them does. Real binaries have NULs every few dozen bytes.
    """
    bom = bom_encoding(data)
    if bom is not None and bom != "utf-8":
        return not _wide_text_plausible(data[_bom_len(data):], bom)
    if bom or _utf16_without_bom(data):
        return False
    sample = data[:8192]
    if not sample:
        return False
    # Images and archives run well above 1 % NULs; random bytes sit near 0.4 % but fail the
    # control-character test below.
    nuls = sample.count(0)
    if nuls > max(8, len(sample) // 100):
        return True
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    return controls > max(8, len(sample) // 100)


def normalize_label(label: str) -> str | None:
    """A codec name Python knows for a declared charset label, web aliases applied; None if unknown."""
    try:
        info = codecs.lookup(label.strip().strip("\"'"))
    except (LookupError, ValueError):
        return None
    # Python also knows bytes-to-bytes codecs by name (base64, hex, rot13, zlib): bytes.decode refuses them
    # with a LookupError, and a page whose meta tag said charset="base64" ended the whole run.
    if not getattr(info, "_is_text_encoding", True):
        return None
    return _WEB_ALIASES.get(info.name, info.name)


def sniff_declared(data: bytes, *, html: bool) -> str | None:
    """The charset a document declares about itself (HTML meta or XML prolog), if any."""
    head = data[:_SNIFF_BYTES]
    match = _XML_ENCODING.search(head[:512]) or (_META_CHARSET.search(head) if html else None)
    return match.group(1).decode("ascii", "ignore") if match else None


def clean_decoded(text: str) -> str:
    """Drop characters that are never text: NUL/C0 controls, lone surrogates, a leading BOM."""
    if text.startswith("\ufeff"):
        text = text[1:]
    # Cheap presence checks first (substring search and the UTF-8 encoder run at C speed); the
    # regexes, ~40x slower on a 20 KB page, only run on the rare text that needs them.
    if any(ch in text for ch in _JUNK_CHARS):
        text = _TEXT_JUNK.sub("", text)
    if _has_surrogate(text):
        text = _SURROGATE.sub("\ufffd", text)
    return text


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def decode_bytes(data: bytes, *, html: bool = False, declared: str | None = None) -> tuple[str, str]:
    """Return (text, encoding used). Raises DecodeError only when nothing sensible decodes.

    The text is passed through `clean_decoded`. The encoding is a Python codec name, or
    "utf-8+cp1252" for a mixed file.
    """
    text, encoding = _decode(data, html=html, declared=declared)
    return clean_decoded(text), encoding


def _decode(data: bytes, *, html: bool, declared: str | None) -> tuple[str, str]:
    bom = bom_encoding(data)
    if bom:
        return data[_bom_len(data) :].decode(bom, errors="replace"), bom
    utf16 = _utf16_without_bom(data)
    if utf16:
        return data.decode(utf16, errors="replace"), utf16
    candidates: list[str] = []
    in_page = sniff_declared(data, html=html)
    header = normalize_label(declared) if declared else None
    inside = normalize_label(in_page) if in_page else None
    for codec in (header, inside):
        # A declared UTF-16/32 without BOM or NUL pattern is a lie (the meta tag itself is ASCII).
        if codec and not codec.startswith(("utf-16", "utf-32")) and codec not in candidates:
            candidates.append(codec)
    # The header's catch-all charset does not beat another one the page declares (meta charset,
    # http-equiv, XML prolog) that reads the bytes as text. WHATWG lets the header win, and browsers do;
    # newsetl does not, because an archived page carries its server's default (Apache's and Tomcat's
    # `charset=ISO-8859-1`), which was wrong for a Russian, Polish, Greek, Korean or Chinese page whose
    # author wrote the meta tag, and cp1252 decodes any bytes: the page would be stored as mojibake
    # ("Ìîñêâà" for "Москва") with nothing to tell. When the bytes do not read in the page's charset
    # (a template's stale meta tag), the header is taken as before.
    if header == _CATCH_ALL and inside is not None and inside != header and inside in candidates:
        try:
            text = data.decode(inside)
        except UnicodeDecodeError:
            pass
        else:
            if not _C1.search(text):
                return text, inside
    if "utf-8" not in candidates:
        candidates.append("utf-8")
    for codec in candidates:
        try:
            return data.decode(codec), codec
        except UnicodeDecodeError:
            continue
    # Not valid in any declared charset nor in UTF-8. Mostly-UTF-8 with a few legacy bytes?
    sample = data[: _SNIFF_BYTES * 4]
    in_sequences = sum(len(m) for m in _UTF8_MULTI.findall(sample))
    high = len(_HIGH.findall(sample))
    if in_sequences and in_sequences >= high * 0.6:  # most high bytes sit in valid UTF-8 sequences
        return data.decode("utf-8", errors=_MIXED_ERRORS), "utf-8+cp1252"
    # Western legacy text: few high bytes, and cp1252 defines all of them.
    letters = sum(1 for b in data[:_SNIFF_BYTES] if b >= 0x41)
    if high <= max(16, letters // 5):
        try:
            return data.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            pass
    # Mostly high bytes: Cyrillic, Greek, CJK legacy encodings. Ask the detector.
    try:
        best = from_bytes(data[:_SNIFF_BYTES]).best()
    except Exception:
        best = None
    if best is not None and best.encoding:
        return data.decode(best.encoding, errors="replace"), best.encoding
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"  # total: every byte is a character


def _bom_len(data: bytes) -> int:
    for bom, _ in _BOMS:
        if data.startswith(bom):
            return len(bom)
    return 0


def stream_encoding(sample: bytes) -> str:
    """The encoding `stream_decoder` reads a large file with, as `decode_bytes` names it ("utf-8+cp1252":
    UTF-8 with legacy bytes read as cp1252)."""
    return _decode(sample, html=False, declared=None)[1]


def stream_decoder(encoding: str) -> codecs.IncrementalDecoder:
    """A decoder for a file too large to decode whole, of the `encoding` `stream_encoding` chose from its
    first bytes (as `decode_bytes` chooses for a whole file). A UTF-8 file reads any byte UTF-8 rejects as
    cp1252 (as decode_bytes reads a mixed file), so a legacy paragraph deep in a large export does not end
    the read there; another codec replaces what it cannot read."""
    if encoding in ("utf-8", "utf-8+cp1252"):
        return codecs.getincrementaldecoder("utf-8")(errors=_MIXED_ERRORS)
    return codecs.getincrementaldecoder(encoding)(errors="replace")


class Utf8Stream(Rewritten):
    """The bytes of `raw`, decoded with `decoder` and handed on as UTF-8, as they are read: for parsers
    that read UTF-8 only (yajl, the line reader) over a file too large to decode whole. A leading BOM is
    dropped. `decoded` counts the bytes taken from `raw`, `produced` the UTF-8 bytes made of them."""

    def __init__(self, raw: IO[bytes], decoder: codecs.IncrementalDecoder, block: int = 65536) -> None:
        super().__init__(raw, block)
        self._decoder = decoder
        self._at_start = True
        self.decoded = 0
        self.produced = 0

    def file_offset(self, offset: int) -> int:
        """Roughly where in `raw` the UTF-8 byte `offset` came from (exact for UTF-8, which is passed
        on unchanged), for messages that point into the file."""
        return round(offset * self.decoded / self.produced) if self.produced else offset

    def _rewrite(self, chunk: bytes, *, final: bool) -> bytes:
        self.decoded += len(chunk)
        text = self._decoder.decode(chunk, final=final)
        if self._at_start and text:
            text, self._at_start = text.removeprefix("\ufeff"), False
        out = text.encode("utf-8", "replace")  # "replace": a lone surrogate (broken UTF-16) has no UTF-8 form
        self.produced += len(out)
        return out
