"""Bytes to text without ever crashing: BOMs, declared charsets, UTF-8, then detection.

Order matters: a BOM is proof; a charset declared by the container (HTTP header, HTML meta) is
strong evidence; strict UTF-8 that decodes is almost never wrong; only then do we guess. For the
guess, cp1252 beats Latin-1 for Western news (curly quotes live in 0x80-0x9F) and
charset-normalizer handles the rest.
"""

from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes


class DecodeError(ValueError):
    pass


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
# C0 controls other than tab/newline/CR/formfeed are not text; a few stray ones are tolerated.
_CONTROL = re.compile(rb"[\x01-\x08\x0e-\x1a\x1c-\x1f]")


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 text of Latin scripts has a NUL in every other byte; detect which side."""
    sample = data[:4096]
    if len(sample) < 4:
        return None
    even_nuls = sample[0::2].count(0) / (len(sample) / 2)
    odd_nuls = sample[1::2].count(0) / (len(sample) / 2)
    if odd_nuls > 0.3 and even_nuls < 0.05:
        return "utf-16-le"
    if even_nuls > 0.3 and odd_nuls < 0.05:
        return "utf-16-be"
    return None


def looks_binary(data: bytes) -> bool:
    """True for images, archives and other non-text bytes (UTF-16 and UTF-32 are text)."""
    if any(data.startswith(bom) for bom, _ in _BOMS) or _utf16_without_bom(data):
        return False
    sample = data[:8192]
    if b"\x00" in sample:
        return True
    return len(_CONTROL.findall(sample)) > max(8, len(sample) // 100)


def decode_bytes(data: bytes, *, html: bool = False, declared: str | None = None) -> tuple[str, str]:
    """Return (text, encoding used). Raises DecodeError only when nothing sensible decodes."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace"), encoding
    utf16 = _utf16_without_bom(data)
    if utf16:
        return data.decode(utf16, errors="replace"), utf16
    candidates: list[str] = []
    if declared:
        candidates.append(declared)
    if html:
        match = _META_CHARSET.search(data[:4096])
        if match:
            candidates.append(match.group(1).decode("ascii", "ignore"))
    candidates.append("utf-8")
    for encoding in candidates:
        try:
            codec = codecs.lookup(encoding).name
            return data.decode(codec), codec
        except (LookupError, UnicodeDecodeError):
            continue
    # Not UTF-8. Western news in a legacy charset is overwhelmingly cp1252; check that reading
    # makes sense (no undefined bytes) before trusting it, else ask charset-normalizer.
    try:
        text = data.decode("cp1252")
        return text, "cp1252"
    except UnicodeDecodeError:
        pass
    best = from_bytes(data[:65536]).best()
    if best is not None and best.encoding:
        return data.decode(best.encoding, errors="replace"), best.encoding
    return data.decode("latin-1"), "latin-1"
