"""Describe: the facts analysts group and filter by - title, standfirst, byline, date, publisher, language.

Sources, in order of trust: what the container told us (`DescribeHints`: JSONL fields, trafilatura's
HTML metadata), then what the cleaner removed (dateline, syndication, donation/notification lines that
name the outlet), then the head of the body itself. Lines of the body that become metadata (headline,
byline, date line) are cut from the body and returned as `Removal`s, so nothing is lost; the standfirst is
read into `subtitle` and stays in the body (it is the article's own text).

Libraries, chosen on purpose:
- dates: ISO 8601 strings are parsed with the standard library (fast, exact); everything else with
  dateparser (offline, 200+ locales, time-zone abbreviations such as "EST"/"PST", relative phrases
  against a base time). It is always given a short candidate string and a language list: with
  neither it auto-detects over every locale (2.5 s for one string, measured). htmldate is what
  trafilatura already runs on HTML, so its result arrives as `hints.published_at`.
- publisher from a URL: `tld` (courlan's dependency, hence trafilatura's) for the registrable domain,
  so "www.independent.co.uk" gives "independent", not "co".
- language: py3langid (offline, ~1 ms per text).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import cache, lru_cache
from pathlib import Path

from newsetl.schemas.records import Metadata, Removal
from newsetl.text.lines import table_cells
from newsetl.text.publishers import has_org_word, is_outlet, registrable_domain
from newsetl.text.words import caseless_letter

# Removal categories and rules written by this stage.
TITLE = "title"
KICKER = "kicker"  # a section label or flag above the headline ("Politics", "Exclusive", "Wirtschaft")
SUBTITLE = "subtitle"
BYLINE = "byline"
DATELINE = "dateline"


@dataclass(frozen=True)
class DescribeHints:
    """Everything the container / HTML told us; all optional."""

    url: str | None = None
    title: str | None = None
    published_at: str | None = None
    # The page's own date (trafilatura's, from its HTML) when the container (a feed item, a JSON record) gave
    # `published_at`: read when that one does not parse. A feed's "not a date" left an article NULL whose
    # page said when it was published (a user trial).
    page_published_at: str | None = None
    publisher: str | None = None
    author: str | None = None
    sitename: str | None = None
    description: str | None = None
    fetched_at: datetime | None = None
    content_type: str = "text"  # "html" when the body came from trafilatura
    # When the page was seen (an HTTP fetch, a WARC capture): what "2 hours ago" counts from. None for a
    # file, whose fetched_at is its modification time: a relative date there would date a 2019 story by
    # the day its file was copied.
    seen_at: datetime | None = None


@dataclass(frozen=True)
class DescribeResult:
    metadata: Metadata
    body: str
    removals: tuple[Removal, ...]
    container_date_unread: bool = False  # the hints' published_at was given and not taken
    # Why it was not taken, as `extra._invalid_fields` says it: no parser reads it, or it reads as a date no
    # news article has (before `earliest_year`, after the record was fetched).
    container_date_why: str | None = None


@dataclass(frozen=True)
class DescribeConfig:
    head_lines: int = 8  # non-empty lines at the top that may hold headline, byline and date
    title_max_words: int = 22  # news headlines run 6-15 words; longer unpunctuated lines are story text
    subtitle_max_words: int = 45
    min_title_words: int = 3
    language_sample_chars: int = 1000  # py3langid is ~1 ms per 1000 chars; more text does not change the answer
    earliest_year: int = 1990  # older "dates" in a news head are numbers, not publication dates


# ----------------------------------------------------------------------------- lines
@dataclass(frozen=True)
class _Line:
    start: int  # offset of the line's first character in the body
    end: int  # offset just past the line (its newline excluded)
    text: str


def _lines(body: str) -> list[_Line]:
    out: list[_Line] = []
    pos = 0
    for raw in body.split("\n"):
        if raw.strip():
            out.append(_Line(pos, pos + len(raw), raw))
        pos += len(raw) + 1
    return out


def _norm(text: str) -> str:
    quotes = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'", "\u00a0": " "})
    return re.sub(r"\s+", " ", text.translate(quotes)).strip().casefold()


# ----------------------------------------------------------------------------- dates
_ISO_RE = re.compile(
    r"\b(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?\s*(Z|[+-]\d{2}:?\d{2})?)?\b"
)
_MONTHS = (
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
# Month names of the other languages news heads are written in most here (German, French, Spanish,
# Italian, Portuguese, Dutch): "14. Juli 2023", "5 janvier 2023", "7 de febrero de 2023".
_FOREIGN_MONTHS = (
    r"januar|jänner|februar|märz|mai|juni|juli|oktober|dezember"
    r"|janvier|février|fevrier|mars|avril|juin|juillet|août|aout|septembre|octobre|novembre|décembre"
    r"|enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|setiembre|octubre|noviembre|diciembre"
    r"|gennaio|febbraio|aprile|maggio|giugno|luglio|settembre|ottobre|dicembre"
    r"|janeiro|fevereiro|março|maio|junho|julho|setembro|outubro|dezembro"
    r"|januari|februari|maart|mei|augustus"
)
# A date written out: "March 6, 2022", "06 March 2022", "11/19/2019", "19.11.2019", "14. Juli 2023",
# "7 de febrero de 2023", plus an optional time and zone. Used to find the candidate inside a line
# before dateparser sees it.
_DATE_TEXT_RE = re.compile(
    rf"(?:\b(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s+)?"
    rf"(?:\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:{_MONTHS})\.?,?\s+\d{{4}}"
    rf"|\b(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"
    rf"|\b\d{{1,2}}\.?\s+(?:de\s+)?(?:{_FOREIGN_MONTHS}|{_MONTHS})\.?,?\s+(?:de\s+)?\d{{4}}"
    rf"|\b\d{{1,2}}[/.]\d{{1,2}}[/.]\d{{4}})"
    r"(?:,?\s*(?:at\s+|à\s+|às\s+|um\s+|alle\s+|om\s+|a\s+las?\s+)?\d{1,2}[:.h]\d{2}(?:[:.]\d{2})?\s*(?:[ap]\.?m\.?|uhr)?"
    r"(?:\s*[A-Z]{2,5}\b|\s*[+-]\d{2}:?\d{2})?)?",
    re.IGNORECASE,
)
_TIME_RE = re.compile(r"\b\d{1,2}(?:[:.]\d{2}(?:[:.]\d{2})?|h\d{2})\s*(?:[ap]\.?m\.?|uhr)?(?:\s*[A-Z]{2,5}\b)?",
                      re.IGNORECASE)
# Reading-time notes that share a line with the date ("Lesedauer: 3 Minuten", "4 min read").
_READ_TIME_RE = re.compile(
    r"\b(?:lesedauer|temps de lecture|tiempo de lectura|reading time)\b\W*(?:\d+\s*\w+)?"
    r"|\b\d+\s*(?:min(?:ute)?s?|minuten|minutos)\.?(?:\s+(?:read|lesen|de lecture|de lectura))?\b",
    re.IGNORECASE,
)
# Label words a date line may carry besides the date (English, German, French, Spanish, Thai, Persian,
# Korean, Japanese, Chinese).
_DATE_LABEL_WORDS_TEXT = """
published updated posted last modified on at date first created publication time veröffentlicht aktualisiert
zuletzt am um stand uhr publié publie mis à a jour modifié modifie le
la publicado actualizado modificado el de las
น เผยแพร่ ปรับปรุง อัปเดต วันที่ เวลา ساعت انتشار تاریخ بروزرسانی به‌روزرسانی
입력 수정 승인 등록 기사입력 최종수정 업데이트 발행 송고 公開日 更新日 配信日 掲載日 公開 更新 配信 发布时间 發佈時間
发布日期 發布日期 更新时间 更新時間 时间 時間 日期 发布 發佈
"""
_DATE_LABEL_WORDS = frozenset(_DATE_LABEL_WORDS_TEXT.split())
_REVISION_RE = re.compile(r"\b(?:updated?|modified|edited|revised|aktualisiert|mis à jour|actualizado)\b"
                          r"|(?:^|(?<=[\s|•·,;]))(?:수정|최종\s?수정|업데이트|更新)", re.IGNORECASE)
_YEAR_RE = re.compile(r"(?<!\d)(?:19|20)\d\d(?!\d)")
# "Today"/"yesterday" only with a time ("Today, 10:42", "yesterday at 5:30 pm") or ending the line
# ("Published yesterday"): followed by other words they are a link ("Today's Paper", "Today in History").
_RELATIVE_RE = re.compile(
    r"\b(?:(?:\d+|an?|one)\s+(?:second|minute|min|hour|hr|day|week|month)s?\s+ago"
    r"|(?:yesterday|today)(?=,?\s*(?:at\s+)?\d{1,2}[:.]\d\d|\s*$))\b",
    re.IGNORECASE,
)


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def _plausible(dt: datetime, hints: DescribeHints, config: DescribeConfig) -> bool:
    if dt.year < config.earliest_year:
        return False
    limit = (hints.fetched_at and _aware(hints.fetched_at)) or datetime.now(UTC)
    return dt <= limit + timedelta(days=2)


def _parse_iso(text: str) -> datetime | None:
    m = _ISO_RE.search(text)
    if not m:
        return None
    year, month, day, hour, minute, second, zone = m.groups()
    try:
        dt = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
    except ValueError:
        return None
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        hours, minutes = int(zone[1:3]), int(zone[-2:])
        return dt.replace(tzinfo=timezone(sign * timedelta(hours=hours, minutes=minutes)))
    return dt.replace(tzinfo=UTC)


# A fast path for the date formats news uses most ("Sunday 06 March 2022 10:58 EST", "March 6, 2022",
# "11/19/2019 5:45 AM PST"): dateparser costs ~6-10 ms a call, more than the rest of an article's
# processing, so it is only the fallback for what these patterns do not read.
_TZ_HOURS = {
    "UTC": 0, "GMT": 0, "Z": 0, "BST": 1, "CET": 1, "CEST": 2, "EET": 2, "EEST": 3, "MSK": 3,
    "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7,
    "ET": -5, "CT": -6, "MT": -7, "PT": -8, "AKST": -9, "HST": -10, "IST": 5.5, "JST": 9, "KST": 9,
    "HKT": 8, "SGT": 8, "AEST": 10, "AEDT": 11, "SAST": 2, "WAT": 1,
}
_MONTH_NUMBER = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
_MON = (r"(?P<mon>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?"
        r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_TIME = (r"(?:(?:\s*(?:,|at|@|-|–|—|\|)?\s*)(?P<h>[01]?\d|2[0-3])[:.](?P<mi>[0-5]\d)(?::(?P<s>[0-5]\d))?"
         r"\s*(?P<ap>[ap]\.?m\.?)?)?")
_TZ = r"(?:\s*\(?(?P<tz>[A-Z]{1,4}T|UTC|GMT|Z)\)?)?(?:\s*(?P<off>[+-]\d\d:?\d\d))?"
_COMMON_DATE_PATTERNS = (
    re.compile(r"(?P<y>(?:19|20)\d\d)-(?P<m>\d\d)-(?P<d>\d\d)(?:[T ](?P<h>\d\d):(?P<mi>\d\d)(?::(?P<s>\d\d))?"
               r"(?:\.\d+)?(?P<iso_tz>Z|[+-]\d\d:?\d\d)?)?"),
    re.compile(r"\b(?P<d>[0-3]?\d)(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MON + r",?\s+(?P<y>(?:19|20)\d\d)\b" + _TIME + _TZ,
               re.I),
    re.compile(r"\b" + _MON + r"\s+(?P<d>[0-3]?\d)(?:st|nd|rd|th)?,?\s+(?P<y>(?:19|20)\d\d)\b" + _TIME + _TZ, re.I),
    re.compile(r"\b(?P<a>[0-3]?\d)/(?P<b>[0-3]?\d)/(?P<y>(?:19|20)\d\d)\b" + _TIME + _TZ, re.I),
    # "03.03.2023", "12.04.2023 10:15 Uhr": the dotted form is European, day first everywhere.
    re.compile(r"\b(?P<d>[0-3]?\d)\.(?P<m>[01]?\d)\.(?P<y>(?:19|20)\d\d)\b" + _TIME + _TZ, re.I),
)

# A time written before its date ("Updated 6:12 AM ET, Tue February 13, 2024", CNN's and others' form):
# with a.m./p.m. or a zone, so that a bare "10.15" before a date is not taken for one.
_TIME_FIRST_RE = re.compile(r"\b(?P<h>[01]?\d|2[0-3])[:.](?P<mi>[0-5]\d)\s*(?:(?P<ap>[aApP]\.?[mM]\.?)\s*)?"
                            r"(?:\(?(?P<tz>[A-Z]{1,4}T|UTC|GMT)\)?)?(?=\W)")  # a zone in capitals: "at" is none


def _time_before(text: str, end: int) -> re.Match[str] | None:
    """The last time with a.m./p.m. or a zone in text[:end]."""
    found = [m for m in _TIME_FIRST_RE.finditer(text, 0, end) if m.group("ap") or m.group("tz")]
    return found[-1] if found else None


def _tz(match: re.Match[str]) -> timezone:
    groups = match.groupdict()
    off = groups.get("off") or groups.get("iso_tz")
    if off and off != "Z":
        sign = -1 if off[0] == "-" else 1
        digits = off[1:].replace(":", "")
        return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0)))
    name = (groups.get("tz") or "").upper()
    hours = _TZ_HOURS.get(name, 0)
    return timezone(timedelta(hours=hours))



def _parse_common(text: str, day_first: bool = False) -> datetime | None:
    """`day_first`: how to read an ambiguous "03/12/2023" - month first in English (US usage, which
    most English news with slashed dates follows), day first in the other languages."""
    for pattern in _COMMON_DATE_PATTERNS[1:]:  # [0] is ISO, which _parse_iso already handles
        match = pattern.search(text)
        if not match:
            continue
        g = dict(match.groupdict())
        zone = match
        if not g.get("h") and (before := _time_before(text, match.start())):
            g.update(h=before.group("h"), mi=before.group("mi"), ap=before.group("ap"))
            if before.group("tz") and not (g.get("tz") or g.get("off")):
                zone = before
        if g.get("a"):
            a, b = int(g["a"]), int(g["b"])
            # A number above 12 settles the order; otherwise the language does.
            first_is_day = a > 12 or (b <= 12 and day_first)
            g["d"], g["m"] = (g["a"], g["b"]) if first_is_day else (g["b"], g["a"])
        try:
            month = int(g["m"]) if g.get("m") else _MONTH_NUMBER[str(g["mon"]).casefold()[:3]]
            hour = int(g.get("h") or 0)
            ap = (g.get("ap") or "").casefold()
            if ap.startswith("p") and hour < 12:
                hour += 12
            elif ap.startswith("a") and hour == 12:
                hour = 0
            return datetime(int(g["y"]), month, int(g["d"]), hour, int(g.get("mi") or 0), int(g.get("s") or 0),
                            tzinfo=_tz(zone))
        except (ValueError, KeyError):
            continue
    return None


@lru_cache(maxsize=1)
def _dateparser() -> object:
    import dateparser  # ~0.3 s import: only when a non-ISO date needs it

    return dateparser


def _dateparse(text: str, languages: tuple[str, ...], base: datetime | None = None) -> datetime | None:
    # dateparser costs ~50-100 ms a call, and a stream repeats its date strings (copies of a story, one
    # outlet's dates): answered once per process. The day is part of the key where dateparser would
    # read the clock (no base), so a run across midnight answers exactly as without the cache.
    return _dateparse_cached(text, languages, base, datetime.now(UTC).date() if base is None else None)


@lru_cache(maxsize=4096)
def _dateparse_cached(text: str, languages: tuple[str, ...], base: datetime | None, _today: object) -> datetime | None:
    settings: dict[str, object] = {"RETURN_AS_TIMEZONE_AWARE": True, "PREFER_DATES_FROM": "past"}
    if base is None:
        settings["REQUIRE_PARTS"] = ["day", "month", "year"]
    else:
        settings["RELATIVE_BASE"] = base.replace(tzinfo=None) if base.tzinfo else base
    dp = _dateparser()
    try:
        dt = dp.parse(text, languages=list(languages), settings=settings)  # type: ignore[attr-defined]
    except Exception:  # dateparser raises on some odd strings (overflows, bad zones): no date then
        return None
    if dt is None:
        return None
    if base is not None and base.tzinfo is not None and dt.tzinfo is not None:
        dt = dt.replace(tzinfo=None).replace(tzinfo=base.tzinfo)
    return _aware(dt)


def parse_date(text: str, hints: DescribeHints = DescribeHints(), languages: tuple[str, ...] = ("en",),
               config: DescribeConfig = DescribeConfig()) -> datetime | None:
    """An absolute publication date in `text` (ISO, "date 2022-02-21", "Sunday 06 March 2022 10:58 EST",
    "March 6, 2022", "11/19/2019 5:45 AM PST", other languages through dateparser), timezone-aware
    (naive -> UTC); None when there is none, or when it is no plausible publication date (`_plausible`)."""
    dt = _read_date(text, languages)
    if dt is None or not _plausible(dt, hints, config):
        return None
    return dt


def _read_date(text: str, languages: tuple[str, ...]) -> datetime | None:
    """The date `text` writes, whether or not it is a plausible publication date."""
    if not text or len(text) > 400:
        return None
    text = _ascii_digits(text)  # "٢٠٢٤-١١-١٤", "١٤ نوفمبر ٢٠٢٤": a year test below reads ASCII digits
    jalali = _jalali_date(text)
    if jalali is not None:
        return jalali
    text = _cjk_numeric_date(_common_era(text))
    dt = _parse_iso(text) or _parse_common(text, day_first=any(lang != "en" for lang in languages))
    if dt is None:
        m = _DATE_TEXT_RE.search(text)
        if m is None and not _YEAR_RE.search(text):
            # No written-out date and no year: nothing absolute here ("3 hours ago" is relative and
            # needs the fetch time; "25 minutes" is a duration).
            return None
        candidate = m.group(0) if m else text
        dt = _dateparse(candidate, languages)
        if dt is None and m is None:
            # A label before the date in another language ("Опубликовано: ..."): drop leading words.
            words = text.split()
            for i in range(1, min(4, len(words))):
                dt = _dateparse(" ".join(words[i:]), languages)
                if dt is not None:
                    break
    return dt


def parse_relative_date(text: str, fetched_at: datetime | None) -> datetime | None:
    """ "2 hours ago", "yesterday" resolved against the fetch time; None without a fetch time."""
    if fetched_at is None:
        return None
    m = _RELATIVE_RE.search(text)
    if not m:
        return None
    return _dateparse(m.group(0), ("en",), base=_aware(fetched_at))


# A date in a language whose month names _DATE_TEXT_RE does not list: day, month word, year ("14 ноября
# 2024", "14 Kasım 2024", "14 Νοεμβρίου 2024", "14 नवंबर 2024", "١٤ نوفمبر ٢٠٢٤": \d is any script's digit),
# or year 年/년 month 月/월 day 日/일. Such head lines stayed in plain-text bodies and dated nothing (a user
# trial). The word form is a date only when dateparser reads it (`_date_line`): "10 things 2024" is not.
_WORD_DATE_RE = re.compile(
    r"\b\d{1,2}\.?\s+(?:de\s+)?[^\W\d_][^\s\d,.]{2,15}\.?,?\s+(?:de\s+)?\d{4}(?!\d)"
    r"|\b\d{4}\s*[年년]\s*\d{1,2}\s*[月월]\s*\d{1,2}\s*[日일]")


def _ascii_digits(text: str) -> str:
    """`text` with every script's decimal digits as ASCII ones ("٢٠٢٤" -> "2024"), for the year tests and
    the parsers, which read ASCII digits."""
    if text.isascii():
        return text
    return "".join(str(unicodedata.decimal(c)) if c.isdecimal() and not c.isascii() else c for c in text)


# Thai dates count years in the Buddhist era ("7 ธันวาคม 2569" is 7 December 2026): dateparser reads the
# year as written, so a Thai date line dated nothing (too late to be plausible). A year 2400-2699 beside
# Thai script is one of the Buddhist era, 543 years ahead of the common era.
_THAI_RE = re.compile("[\u0e00-\u0e7f]")
_BUDDHIST_YEAR_RE = re.compile(r"(?<!\d)2[4-6]\d\d(?!\d)")


def _common_era(text: str) -> str:
    """`text` (ASCII digits) with a Thai date's Buddhist-era year as the common era's."""
    if not _THAI_RE.search(text):
        return text
    return _BUDDHIST_YEAR_RE.sub(lambda m: str(int(m.group(0)) - 543), text)


# Chinese, Japanese and Korean pages write "2024年12月9日（月）10時15分", "2024.12.09" and "2024년 12월 9일 오후
# 3:15": read as "2024-12-09 10:15" and "2024-12-09 15:15", whatever language dateparser is told (a label and
# a weekday in brackets left "公開日：2024年12月9日（月）10:15" unread).
_CJK_YMD_RE = re.compile(r"(?<!\d)((?:19|20)\d\d)\s*[年년]\s*(\d{1,2})\s*[月월]\s*(\d{1,2})\s*[日일](?!\d)")
# Korean pages write "2024.12.09" (the ISO pattern wants hyphens); only beside these scripts, where it is a date
_CJK_DOTTED_RE = re.compile(r"(?<![\d.])((?:19|20)\d\d)\.\s?(\d{1,2})\.\s?(\d{1,2})\.?(?![\d.])")
_CJK_WEEKDAY_RE = re.compile(
    r"\s*[（(]\s*(?:[月火水木金土日]|(?:星期|周|週)?[一二三四五六日天]|[월화수목금토일](?:요일)?)\s*[)）]")
_CJK_HM_RE = re.compile(r"(?<!\d)(\d{1,2})\s*[時时시]\s*(\d{1,2})\s*[分분]")
_CJK_HALF_DAY_RE = re.compile(r"(오전|오후|午前|午後|上午|下午)\s*(\d{1,2}):(\d{2})")
_CJK_CHARS_RE = re.compile("[\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7a3]")


def _cjk_numeric_date(text: str) -> str:
    """`text` (ASCII digits) with a Chinese, Japanese or Korean numeric date and time in the ISO order."""
    if text.isascii() or not _CJK_CHARS_RE.search(text):
        return text
    # (a space before the date: a label glued to it, "公開日：2024-12-09", is one word the parsers skip)
    iso = lambda m: f" {m[1]}-{int(m[2]):02d}-{int(m[3]):02d}"  # noqa: E731
    text = _CJK_DOTTED_RE.sub(iso, _CJK_YMD_RE.sub(iso, text))
    text = _CJK_WEEKDAY_RE.sub(" ", text)
    text = _CJK_HM_RE.sub(lambda m: f"{int(m[1]):02d}:{int(m[2]):02d}", text)
    return _CJK_HALF_DAY_RE.sub(
        lambda m: f"{int(m[2]) % 12 + (12 if m[1] in ('오후', '午後', '下午') else 0):02d}:{m[3]}", text)


# Iranian and Afghan news date by the Solar Hijri calendar ("۱۶ آذر ۱۴۰۵" is 7 December 2026), which no
# Gregorian parser reads; dateparser's Jalali calendar (convertdate) does. Persian month names, written
# with the Persian or the Arabic yeh and kaf (the Arabic "دي" left dateparser without a month).
_JALALI_MONTHS = "فروردین|اردیبهشت|خرداد|تیر|مرداد|شهریور|مهر|آبان|آذر|دی|بهمن|اسفند"
_JALALI_RE = re.compile(rf"(?<!\d)\d{{1,2}}\s+(?:{_JALALI_MONTHS})\s+1[34]\d\d(?!\d)")
_PERSIAN_LETTERS = str.maketrans({"ي": "ی", "ك": "ک"})


@lru_cache(maxsize=1024)
def _jalali_date(text: str) -> datetime | None:
    """The Solar Hijri date `text` (ASCII digits) writes, as a Gregorian date; None without one."""
    text = text.translate(_PERSIAN_LETTERS)
    m = _JALALI_RE.search(text)
    if m is None:
        return None
    from dateparser.calendars.jalali import JalaliCalendar  # imports convertdate: only for such a date

    try:
        data = JalaliCalendar(text[m.start():]).get_date()
    except Exception:  # a day past its month's end ("31 اسفند"): no date, as for any unreadable one
        return None
    if data is None or data.date_obj is None or "month" not in (data.parts or ()):
        return None
    return _aware(data.date_obj)


def _date_line(line: str, languages: tuple[str, ...] = ()) -> bool:
    """A head line that is a date and little else ("Sunday 06 March 2022 10:58 EST", "Updated: ...").
    `languages`: what dateparser may read a month word of `_WORD_DATE_RE` in (empty: it detects)."""
    s = _cjk_numeric_date(_ascii_digits(line.strip()))
    # Two labelled dates on one line ("Publié le 3 mars 2022 à 8h15, mis à jour le 4 mars 2022 à 10h00")
    # run to 15-18 words; what is left after the dates and labels decides below.
    if len(s.split()) > 18 or len(s) > 120:
        return False
    if not (_ISO_RE.search(s) or _DATE_TEXT_RE.search(s) or _RELATIVE_RE.search(s)):
        word = _WORD_DATE_RE.search(s)
        if _jalali_date(s) is None and (word is None or _dateparse(_common_era(word.group(0)), languages) is None):
            return False
    rest = s.translate(_PERSIAN_LETTERS)
    for rx in (_ISO_RE, _DATE_TEXT_RE, _WORD_DATE_RE, _JALALI_RE, _RELATIVE_RE, _TIME_RE, _READ_TIME_RE):
        rest = rx.sub(" ", rest)
    rest = re.sub(r"[\s|•·,/–—:()：（）-]+", " ", rest).strip()
    # What is left may only be labels ("Published", "Updated on", "Publié le … modifié le"), not a sentence
    # (a label may end in a full stop: Thai "น.", o'clock).
    words = [w for w in rest.split() if w.casefold().strip(".") not in _DATE_LABEL_WORDS]
    return len(words) <= 3 and not (words and rest.endswith("."))


# ----------------------------------------------------------------------------- bylines
_NAME_PARTICLES = {"de", "da", "di", "del", "della", "van", "von", "der", "den", "la", "le", "bin", "al", "el",
                   "y", "du", "dos", "das", "ter", "ten", "st."}
_NOT_NAME_WORDS = {
    "news", "latest", "related", "popular", "stories", "story", "article", "articles", "read", "more",
    "share", "comments", "comment", "video", "videos", "photos", "photo", "live", "updates", "update",
    "breaking", "top", "home", "world", "politics", "business", "sport", "sports", "opinion", "editorial",
    "advertisement", "subscribe", "newsletter", "follow", "us", "the", "a", "an", "of", "in", "on", "for",
    "with", "to", "is", "are", "was", "be", "all", "new", "our", "your", "my", "this", "that", "it", "click",
    "here", "sign", "up", "log", "login", "menu", "search", "contact", "about", "privacy", "terms", "getty",
    "images", "image", "reuters", "ap", "afp", "staff", "reporter", "correspondent", "editor", "writer",
    "minutes", "minute", "hours", "ago", "published", "updated", "posted", "by", "says", "said",
}
_BY_RE = re.compile(
    r"^\s*(?:by|written by|words by|story by|text by|reporting by|(?:news\s+)?analysis by|opinion by|commentary by"
    r"|column by|review by|interview by|von|par|por|di|door|av|af)\s*:?\s+(?P<rest>.+)$",
    re.IGNORECASE,
)
# What may follow the names on a byline without a comma: a wire or outlet ("By JANE DOE Associated Press")
# or a role ("Nadia Rahman Environment correspondent").
_ROLE_WORDS_TEXT = """
correspondent correspondents reporter reporters editor editors writer writers columnist contributor
contributors critic producer analyst journalist photographer staff chief senior deputy
associate special bureau desk contributing freelance
"""
_ROLE_WORDS = frozenset(_ROLE_WORDS_TEXT.split())
_WIRES = {"associated press": "Associated Press", "the associated press": "Associated Press", "ap": "Associated Press",
          "reuters": "Reuters", "thomson reuters": "Reuters", "afp": "AFP", "agence france-presse": "AFP",
          "bloomberg": "Bloomberg", "bloomberg news": "Bloomberg", "dpa": "dpa", "efe": "EFE", "ansa": "ANSA",
          "pti": "PTI", "ians": "IANS", "ani": "ANI", "upi": "UPI", "kyodo": "Kyodo", "kyodo news": "Kyodo",
          "xinhua": "Xinhua", "yonhap": "Yonhap", "aap": "AAP", "tass": "TASS", "cnn": "CNN", "bbc": "BBC",
          "npr": "NPR", "tns": "Tribune News Service", "tribune news service": "Tribune News Service"}
# News agencies, whose copyright line on a text marks a wire copy (a broadcaster's or paper's own
# "© 2019 BBC" is its page footer, not syndication).
_WIRE_AGENCIES = frozenset({"associated press", "the associated press", "ap", "reuters", "thomson reuters", "afp",
                            "agence france-presse", "bloomberg", "bloomberg news", "dpa", "efe", "ansa", "pti",
                            "ians", "ani", "upi", "kyodo", "kyodo news", "xinhua", "yonhap", "aap", "tass"})
# Outlet words a byline credit must carry ("By Jane Doe, Pinewood Times"); institution words such as
# "University" are affiliations of guest authors, not outlets.
_MEDIA_WORDS_TEXT = """
news newspaper times post herald tribune journal gazette courier chronicle telegraph express mail standard
observer guardian independent sun star globe mirror record review register sentinel bulletin dispatch examiner
inquirer enquirer monitor ledger echo press media radio tv television broadcasting magazine weekly daily
wire insider advertiser argus beacon clarion courant eagle gleaner intelligencer mercury messenger pilot spectator
statesman tidings transcript citizen advocate banner bee blade telegram vindicator whig zeitung nachrichten rundschau
tagblatt presse diario periódico periodico quotidien corriere gazzetta krant
"""
_MEDIA_WORDS = frozenset(_MEDIA_WORDS_TEXT.split())
_DATED_BY_RE = re.compile(r"^(?P<pre>.*?\d.*?)\s+by\s+(?P<rest>[A-Z].+)$", re.IGNORECASE)
_NAME_TOKEN_RE = re.compile(r"^[^\W\d_](?:[^\W\d_]|['’.-])*$")
_SEPARATORS_RE = re.compile(r"\s+[|•·/]\s+|\s+[–—-]\s+|\s*\|\s*")


# Between the people of a names line: "Jane Doe, John Roe and Ann Poe", "Marie Curie et Pierre Curie".
_PEOPLE_SPLIT_RE = re.compile(r",\s*|\s+(?:and|&|und|et|y|e)\s+")


def _is_name(text: str) -> bool:
    """A person's name, or several joined by "and" / "&" / ",": "Jane Doe", "J.R. Smith", "Anna van Dyke"."""
    people = [p.strip() for p in _PEOPLE_SPLIT_RE.split(text.strip()) if p.strip()]
    if not people or len(people) > 5:
        return False
    for person in people:
        tokens = person.split()
        if not 2 <= len(tokens) <= 4 or has_org_word(person):
            return False  # "Pinewood Times", "Associated Press": an outlet, not a person
        for tok in tokens:
            low = tok.lower()
            if low in _NAME_PARTICLES:
                continue
            if low.strip(".") in _NOT_NAME_WORDS or not _NAME_TOKEN_RE.match(tok) or not tok[0].isupper():
                return False
            # ALL-CAPS words are labels ("BREAKING NEWS") unless every token is caps ("JANE DOE").
            if tok.isupper() and len(tok) > 3 and not tok.endswith(".") and not all(t.isupper() for t in tokens):
                return False
    return True


_TITLES = frozenset({"dr", "prof", "mr", "mrs", "ms", "mx", "m", "mme", "mlle", "sir", "dame", "herr", "frau", "sr",
                     "sra", "dott", "ing", "mag"})
_INITIALS_RE = re.compile(r"^(?:[^\W\d_]\.-?)+$")
_GIVEN_NAMES_PATH = Path(__file__).resolve().parent / "data" / "given-names.txt"


@cache
def given_names() -> frozenset[str]:
    """The casefolded given names a bare byline must start with (`text/data/given-names.txt`, built by
    `bench/build_given_names.py` from Faker's first-name lists of every locale; read once per process)."""
    with _GIVEN_NAMES_PATH.open(encoding="utf-8") as fh:
        return frozenset(line.strip() for line in fh if line.strip() and not line.startswith("#"))


def _starts_with_given_name(text: str) -> bool:
    """The first person of a names line starts with a given name (after a title such as "Dr."); an initial
    ("J.R. Smith") stands for one."""
    first = _PEOPLE_SPLIT_RE.split(text.strip())[0]
    names = given_names()
    for tok in first.split():
        low = tok.casefold().strip(".")
        if low in _TITLES:
            continue
        if _INITIALS_RE.match(tok):
            return True  # "J.R. Smith", "M. Franck Riester": an initial stands for a given name
        # A particle first ("Das Louis Vuitton ...", "von ...") is not how a bare byline starts, though
        # Faker's lists hold "Von", "Van", "Le" as given names.
        return low not in _NAME_PARTICLES and low in names
    return False


def _clean_names(text: str) -> str:
    names = text.strip().strip(",;:")
    # "MARTA KOWALCZYK and DEREK HALLORAN": capitals are the wire's style, not part of the names.
    words = names.split()
    connectors = {"and", "&", "und", "et", "y", "e"}
    if all(w.isupper() or w.lower() in connectors for w in words if any(c.isalpha() for c in w)):
        names = " ".join(w.title() if w.isupper() and len(w) > 1 and not w.endswith(".") else w for w in words)
    return re.sub(r"\s+", " ", names)


def _is_credit_tail(words: Sequence[str], outlets: bool = True) -> bool:
    """Words after the names that give a role or (with `outlets`) credit an outlet, not more names."""
    text = " ".join(words).strip(" ,")
    low = text.casefold()
    if any(w.casefold().strip(".,") in _ROLE_WORDS for w in words):
        return True
    return outlets and (low in _WIRES or any(re.sub(r"[^a-z]", "", w.casefold()) in _MEDIA_WORDS for w in words))


# What an author link's text puts before the name: "View all posts by Daniel Lemire", "Written by ...".
_AUTHOR_LINK_RE = re.compile(
    r"^(?:view\s+all\s+(?:posts|articles|stories)\s+by|(?:more\s+)?(?:posts|articles|stories)\s+by|"
    r"written\s+by|posted\s+by|alle\s+beiträge\s+von|beiträge\s+von)\s+", re.IGNORECASE)
# A company's legal form: metadata's author is then the web agency or the publishing house, no person.
_LEGAL_FORM_RE = re.compile(r"(?:\b(?:gmbh|ag|kg|ug|ohg|ltd|llc|inc|plc|corp)\.?|\bs\.a\.|\bs\.r\.l\.|\bb\.v\.)$",
                            re.IGNORECASE)


# A Chinese, Japanese or Korean name is written without a space between family and given name ("王晓明",
# "山田太郎", "김민수"): the one-word test below took every such author for an outlet or a user name and
# stored no byline, also when a JSON record named it (a user trial). Two to eight letters of those scripts.
# An outlet or a desk written the same way ("新华社", "编辑部", "연합뉴스", "央视") is not one: their common last
# words (agency, paper, site, station, TV, magazine, weekly, media, desk).
# Nor is a word all in katakana without the middle dot that parts a foreign name ("ジョン・スミス"): that is a
# foreign outlet or brand ("ロイター", Reuters), where a Japanese name is written in kanji.
_CJK_NAME_RE = re.compile("(?![\\s\\S]*(?:社|报|報|网|網|台|视|視|新闻|新聞|通信|杂志|雜誌|雑誌|周刊|週刊|媒体|媒體|"
                          "传媒|傳媒|编辑部|編集部|신문|일보|뉴스|방송|통신|편집부)$)"
                          "(?![\u30a0-\u30fa\u30fc-\u30ff]+$)"
                          "[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]{2,8}")


_AUTHOR_DATE_LABEL_RE = re.compile(
    r"\s+(?:입력|수정|승인|등록|업데이트|发布时间|發佈時間|公開日|更新日|配信日)(?:\s.*)?$")


def _author_names(author: str | None, not_names: Sequence[str | None] = ()) -> str | None:
    """The page's or record's author field without the roles metadata lists as authors: "Gareth Hughes;
    Consumer Affairs Correspondent" -> "Gareth Hughes" (a role alone is kept: "Staff Writer").
    `not_names`: the page's title and site name, which CMS themes put in the author field too."""
    # A URL, one word or an outlet is no author's name: NewsAPI's `author` is often
    # "https://www.facebook.com/bbcnews" or "BBC News" (trafilatura drops one-word authors the same way).
    # Nor is a web address trafilatura title-cased ("Www Medianotions De"), a company ("Wegewerk Gmbh"),
    # the headline or the site's name (a user trial, on pages of five sites).
    others = {_norm(t) for t in not_names if t}
    # A byline block's date label the extractor read into the author ("홍길동 기자 입력", from "홍길동 기자
    # 입력 2024.12.09"): the label and what follows it are no name.
    parts = [_AUTHOR_DATE_LABEL_RE.sub("", _AUTHOR_LINK_RE.sub("", p.strip())).strip()
             for p in (author or "").split(";") if p.strip()]
    parts = [p for p in parts if (" " in p or _CJK_NAME_RE.fullmatch(p)) and not _URL_IN_LINE_RE.search(p)
             and not credited_outlet(p)
             and not re.search(r"\bwww\b", p, re.IGNORECASE) and not _LEGAL_FORM_RE.search(p)
             and _norm(p) not in others]
    names = [p for p in parts if not _is_credit_tail(p.split(), outlets=False)]
    return "; ".join(names or parts) or None


def _without_credit_tail(text: str, outlets: bool = True) -> str | None:
    """'MARTA KOWALCZYK and DEREK HALLORAN Associated Press' -> the names before the credit, if names.
    Without a "By" (`outlets` False) only a role may follow: "Lake County Star Tribune" is an outlet."""
    tokens = text.split()
    # The longest credit first: "Nadia Rahman Environment correspondent" is not "Nadia Rahman Environment".
    for k in range(min(4, len(tokens) - 2), 0, -1):
        if _is_credit_tail(tokens[-k:], outlets) and _is_name(" ".join(tokens[:-k])):
            return " ".join(tokens[:-k])
    return None


def byline_outlet(line: str) -> str | None:
    """The outlet a byline credits: "By Jane Doe, Pinewood Times", "Carolyn Ashby, The Washington Post",
    "By JANE DOE Associated Press", "By Jane Doe | Advance Media for NJ.com"; None for a role
    ("Staff Writer") or an affiliation ("University of Leeds")."""
    name = parse_byline(line)
    if not name:
        return None
    s = line.strip()
    by = _BY_RE.match(s)
    rest = (by.group("rest") if by else s).split(";")[0]
    for piece in reversed([p.strip(" ,") for p in re.split(r",|\s+[|•·]\s+|\s+[–—-]\s+", rest) if p.strip(" ,")]):
        if _norm(piece) == _norm(name) or _date_line(piece):
            continue
        for_part = re.search(r"\bfor\s+(?P<n>.+)$", piece)
        if for_part:
            piece = for_part.group("n")
        outlet = credited_outlet(piece)
        if outlet:
            return outlet
    tokens = rest.split()
    names = _without_credit_tail(" ".join(tokens), outlets=by is not None)
    if names:
        return credited_outlet(" ".join(tokens[len(names.split()):]))
    return None


def credited_outlet(text: str) -> str | None:
    """`text` as an outlet a credit names: a wire ("AP", "Reuters", "(TNS)"), a domain ("NJ.com"), or a
    name with an outlet word ("The Washington Post", "Chicago Tribune"); None for roles and people."""
    s = text.strip(" ,.()")
    low = s.casefold()
    if low in _WIRES:
        return _WIRES[low]
    if not s or len(s.split()) > 5 or any(w.casefold().strip(".,") in _ROLE_WORDS for w in s.split()):
        return None
    if re.fullmatch(r"[\w-]+(?:\.[\w-]+)*\.(?:com|org|net|co\.uk|news)", s, re.IGNORECASE):
        return s
    words = s.split()
    if not all(w[0].isupper() or w.lower() in {"of", "the", "and", "&", "de", "la"} for w in words):
        return None
    if any(re.sub(r"[^a-z]", "", w.casefold()) in _MEDIA_WORDS for w in words) and is_outlet(s):
        return s
    return None


def parse_byline(line: str) -> str | None:
    """The author name(s) of a byline line, or None: "By Jane Doe and John Roe", "John Bowden",
    "Jane Doe, Reuters", "By JANE DOE | March 6, 2022" (the date part is left to `parse_date`)."""
    s = table_cells(line.strip())  # "| von Inga Buller |", a layout table's cell
    if not s or len(s) > 160 or (s.endswith((".", "?", "!")) and not re.search(r"\b[A-Z]\.$", s)):
        return None
    by = _BY_RE.match(s)
    if by is None:
        # "Posted on January 5, 2024 by Jane Doe", "Published 3 May 2022 by Jane Doe": a date, then "by".
        dated = _DATED_BY_RE.match(s)
        if dated and _date_line(dated.group("pre")):
            by = dated
    rest = by.group("rest") if by else s
    # English "by" vouches for a name; "von", "par", "por", "di", "door", "av", "af" are prepositions too
    # ("Von Sprachregeln, Gender-Politik und ...", "Por Agencia EFE"), so after them, as on a line with no
    # "by" at all, the name must start with a known given name.
    vouched = by is not None and re.search(r"\bby\b", s[: by.start("rest")], re.IGNORECASE) is not None

    def named(names: str) -> bool:
        return vouched or _starts_with_given_name(names)

    # "Reporting by Jane Doe; Editing by John Roe": the reporter is the byline, the editor is not.
    rest = rest.split(";")[0]
    # "By Jane Doe on Jun 2, 2023", "By Jane Doe, March 6, 2022": the date after the names is not a name.
    when = _DATE_TEXT_RE.search(rest) or _ISO_RE.search(rest)
    if when and when.start() > 0:
        rest = re.sub(r"(?:\s+(?:on|at|am|le|el|published|posted|updated|publiziert|veröffentlicht|publié|publicado)"
                      r"|[\s,|•·–—-])+$", "", rest[: when.start()], flags=re.IGNORECASE) or rest
    parts = [p.strip() for p in _SEPARATORS_RE.split(rest) if p.strip()]
    if not parts:
        return None
    # "March 6, 2022 | Jane Doe": a date part before the name is skipped (parse_date reads it).
    while len(parts) > 1 and _date_line(parts[0]):
        parts = parts[1:]
    head = parts[0]
    # "Jane Doe, Reuters" / "Jane Doe, Senior Correspondent": try the whole, then without the last part.
    candidates = [head]
    if "," in head:
        candidates.append(head.rsplit(",", 1)[0])
    # Without "By", capitalised words are weak evidence (German capitalises every noun: "Kommende Events",
    # "Betriebliche Altersvorsorge"), so the name must start with a known given name.
    for cand in candidates:
        if _is_name(cand) and named(cand):
            return _clean_names(cand)
    names = _without_credit_tail(head, outlets=by is not None)
    if names and named(names):
        return _clean_names(names)
    if by:
        # "By" is evidence enough for a name in a form the name check does not know (one token,
        # lower-case particles): accept a short capitalised run.
        m = re.match(r"^([^\W\d_][\w'’.-]*(?:\s+[^\W\d_][\w'’.-]*){0,3})", head)
        if m and m.group(1)[0].isupper() and m.group(1).split()[0].lower() not in _NOT_NAME_WORDS \
                and named(m.group(1)):
            return _clean_names(m.group(1))
    return None


# ----------------------------------------------------------------------------- headline shape
_CLOSING = "\"”’'»)]"


_SENTENCE_BREAK_RE = re.compile(r"[^\W\d_]{2}[.!?][\"”’)]?\s+[\"“‘(]?[A-Z]")
_LABEL_RE = re.compile(r"\b[A-Z][\w ]{0,20}:\s")


_URL_IN_LINE_RE = re.compile(r"https?://|\bwww\.\w")


def _headline_like(text: str, max_words: int, min_words: int, caseless: bool = False) -> bool:
    """Reads as a headline or standfirst: short, no final period, one sentence, not a label list.
    `caseless`: a line in a script without case may be one too (no capital tells it from a sentence, so
    the caller asks for more: a byline or date line under it).

    Measured on aeb-dev/text (first lines of trafilatura output): the shape rules below keep real
    headlines and reject deal items ("… for $39.99" stays possible), shouting calls to action
    ("CLICK FOR FULL RESULTS"), "Label: value Label: value" lines and two-sentence paragraphs.
    """
    s = text.strip()
    caseless = caseless and caseless_letter(s[:1])
    n_words = len(s.split())
    if caseless:
        # Chinese, Japanese and Thai put no space between words: count at least one word per 4 characters.
        n_words = max(n_words, len(s) // 4)
    if not min_words <= n_words <= max_words or len(s) > 300:
        return False
    if not (s[0].isupper() or s[0].isdigit() or s[0] in "\"“‘'«" or caseless):
        return False
    core = s.rstrip(_CLOSING)
    if core.endswith((".", ",", ";", ":", "。", "，", "،", "؛", "।")) and not core.endswith("..."):
        return False
    letters = [c for c in s if c.isalpha()]
    if len(letters) > 10 and all(not c.islower() for c in letters) and any(c.isupper() for c in letters):
        return False  # ALL CAPS: a section label or a call to action
    if _SENTENCE_BREAK_RE.search(s) or len(_LABEL_RE.findall(s)) >= 2:
        return False
    if _date_line(s) or parse_byline(s):
        return False
    # A web address or a line mostly of figures is no headline ("The Wayback Machine - https://…",
    # "Mo, 11:41 Uhr"); "UN: 5 Tote" and "Patch Notes 4.47.4" are.
    if _URL_IN_LINE_RE.search(s) or 2 * len(letters) < len(s) - s.count(" "):
        return False
    return not (s.startswith(("-", "•", "*", "–", "—")))


# ----------------------------------------------------------------------------- publishers
_NAME = r"(?:[Tt]he\s+)?[A-Z](?:[\w&'’-]|\.(?=\w))*(?:\s+(?:of\s+|the\s+|&\s+)?[A-Z](?:[\w&'’-]|\.(?=\w))*){0,4}"
_SIGNATURE_RES = (
    re.compile(rf"\bnotifications\s+from\s+(?P<n>{_NAME})"),
    re.compile(rf"(?P<n>{_NAME})\s+is\s+(?:trusted|on the ground|reader[- ]funded|funded by|independent)\b"),
    re.compile(rf"\bother\s+(?P<n>{_NAME})\s+readers\b"),
    re.compile(rf"\b(?:[Ss]upport|[Ss]ubscribe to|[Dd]onate to|[Rr]egister with|newsletters? from)\s+(?P<n>{_NAME})"),
    re.compile(rf"(?:©|\([Cc]\)|[Cc]opyright)(?:\s*(?:©|\([Cc]\)|[Cc]opyright))*\s*"
               rf"(?:\d{{4}}(?:\s*[-–]\s*\d{{4}})?\s*,?\s*)?(?P<n>{_NAME})"),
)
# "All rights reserved" in the languages of the copyright lines the cleaner removes: what follows the ©
# there is no outlet ("© Tous droits réservés" named the publisher "Tous", "© RIPRODUZIONE RISERVATA"
# itself).
_RIGHTS_RESERVED_RE = re.compile(
    r"(?:all\s+rights|alle\s+rechte|tous\s+droits|todos\s+los\s+derechos|todos\s+os\s+direitos|"
    r"tutti\s+i\s+diritti|riproduzione\s+riservata|alle\s+rechten|wszelkie\s+prawa|alla\s+rättigheter|"
    r"alle\s+rettigheder|alle\s+rettigheter|kaikki\s+oikeudet|všechna\s+práva|minden\s+jog|"
    r"derechos\s+reservados|direitos\s+reservados)\b",
    re.IGNORECASE,
)
_SIGNATURE_CATEGORIES = {"donation_appeal", "notification_prompt", "comment_prompt", "newsletter",
                         "login_prompt", "copyright", "share_social", "learned", "subscription"}
_NOT_PUBLISHERS = {"we", "you", "our", "us", "all", "this", "it", "the", "americans", "all rights reserved",
                   "rights", "getty", "getty images", "ap", "reuters", "afp", "shutterstock",
                   # the page's own parts, which footer links put after "Copyright" or "Subscribe to"
                   # ("Copyright Policy", "Subscribe to Newsletter"): never an outlet's whole name
                   "policy", "policies", "notice", "newsletter", "newsletters", "terms", "information",
                   "infringement", "disclaimer", "statement", "complaints", "claims", "agent", "updates"}


# After a name ending in 's: a lowercase word, so the 's is a possessive before a noun ("X's newsletters").
_POSSESSIVE_BEFORE_NOUN = re.compile(r"\s+[a-z]")


def _signature_publishers(texts: Sequence[str]) -> Counter[str]:
    """Outlet names in signature lines: 'notifications from The Independent', 'other X readers' ..."""
    found: Counter[str] = Counter()
    for text in texts:
        for rx in _SIGNATURE_RES:
            for m in rx.finditer(text):
                if _RIGHTS_RESERVED_RE.match(text, m.start("n")):
                    continue
                name = re.sub(r"\s+", " ", m.group("n")).strip(" .,'’")
                name = re.sub(r"\s+(?:is|are|and|or|to|for|on|in)$", "", name)
                if _POSSESSIVE_BEFORE_NOUN.match(text, m.end("n")) and re.search(r"['’]s$", name):
                    # "Subscribe to NJ.com’s newsletters": the outlet is NJ.com (a user trial found 9
                    # articles under "NJ.com's"); "Subscribe to Barron's." keeps its name
                    name = name[:-2]
                if name.lower() in _NOT_PUBLISHERS or len(name) < 3:
                    continue
                found[name] += 1
    return found


def _best_publisher(found: Counter[str]) -> str | None:
    """Most often named outlet; "Independent" and "The Independent" are one (the fuller form wins)."""
    if not found:
        return None
    groups: Counter[str] = Counter()
    forms: dict[str, str] = {}
    for name, n in found.items():
        key = re.sub(r"^the\s+", "", name.lower())
        groups[key] += n
        if key not in forms or len(name) > len(forms[key]):
            forms[key] = name
    key, _ = groups.most_common(1)[0]
    form = forms[key]
    return "The " + form[4:] if form.lower().startswith("the ") else form


def _registrable_label(url: str) -> tuple[str, str] | None:
    """(registrable domain, its main label) of a URL: ("independent.co.uk", "independent")."""
    fld = registrable_domain(url)
    return (fld, fld.split(".")[0]) if fld else None


def publisher_from_url(url: str | None) -> str | None:
    """A readable outlet name from a URL's domain: "www.independent.co.uk" -> "Independent",
    "cnn.com" -> "CNN". Only a fallback: the domain cannot tell "The" or word breaks."""
    if not url:
        return None
    parts = _registrable_label(url)
    if parts is None:
        return None
    label = parts[1]
    if not label or label.isdigit():
        return None
    return label.upper() if len(label) <= 4 else label[0].upper() + label[1:]


def _squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", re.sub(r"^the\s+", "", name.lower()))


# The wires' own sites, by their registrable domain's main label (reuters.com, afp.com and bloomberg.com
# are their names already).
_WIRE_DOMAIN_LABELS = {"apnews": "Associated Press", "ap": "Associated Press", "thomsonreuters": "Reuters"}


def _wire_name(name: str) -> str | None:
    """The wire `name` is a spelling of ("AP", "apnews.com", "Thomson Reuters" -> the wire's name), else None."""
    low = re.sub(r"\s+", " ", name.strip().casefold())
    if low in _WIRES:
        return _WIRES[low]
    parts = _registrable_label(low) if re.fullmatch(r"(?:https?://)?[\w.-]+\.[a-z]{2,}(?:/\S*)?", low) else None
    if parts is not None:
        return _WIRE_DOMAIN_LABELS.get(parts[1]) or _WIRES.get(parts[1])
    return _WIRE_DOMAIN_LABELS.get(_squash(name))  # "Apnews" (a name read off the URL), "AP News"


def _same_outlet(a: str, b: str) -> bool:
    """Two names of one outlet: equal but for case, punctuation and a leading "The", or spellings of one
    wire ("AP", "apnews.com" and "The Associated Press")."""
    if _squash(a) == _squash(b):
        return True
    wire = _wire_name(a)
    return wire is not None and wire == _wire_name(b)


def _consistent_with_url(name: str, url: str | None) -> bool:
    parts = _registrable_label(url) if url else None
    if parts is None:
        return True
    label = re.sub(r"[^a-z0-9]", "", parts[1])
    key = _squash(name)
    return bool(key) and (key in label or label in key)


_TAIL_DOMAIN_RE = re.compile(
    r"^\W*(?:[\w.+-]+@|https?://)?(?:www\.)?((?:[a-z0-9-]+\.)+[a-z]{2,})(?:/\S*)?\W*$", re.IGNORECASE
)


def _tail_domain_publisher(lines: Sequence[_Line], last: int = 6) -> str | None:
    """An outlet's own address on a line of its own at the end ("www.example.co.kr", "desk@example.com")."""
    for line in reversed(lines[-last:]):
        m = _TAIL_DOMAIN_RE.match(line.text.strip())
        if m:
            return publisher_from_url(m.group(1))
    return None


# ----------------------------------------------------------------------------- syndication
_AGENCIES = {"ap": "Associated Press", "afp": "AFP", "upi": "UPI", "dpa": "dpa", "ians": "IANS", "pti": "PTI",
             "ani": "ANI", "efe": "EFE", "ansa": "ANSA", "tass": "TASS", "cnn": "CNN", "bbc": "BBC"}
_ORIGINAL_RES = (
    re.compile(r"\b(?:read|view|see)\s+(?:the\s+)?original\s+(?:article|story|post|piece)\s+(?:at|on|in|from)\s+"
               r"(?P<n>[^\n]{2,80}?)\s*[.!]?\s*$", re.IGNORECASE),
    re.compile(r"\b(?:this|the)\s+(?:article|story|post|piece|report|column)\s+(?:was\s+|is\s+)?(?:originally\s+|first\s+)"
               r"(?:published|appeared|posted|ran)\s+(?:on|in|at|by)\s+(?P<n>[^\n]{2,80}?)\s*[.!]?\s*$", re.IGNORECASE),
    re.compile(r"\b(?:originally|first)\s+(?:published|appeared|posted)\s+(?:on|in|at|by)\s+"
               r"(?P<n>[^\n]{2,80}?)\s*[.!]?\s*$", re.IGNORECASE),
    re.compile(r"\brepublished\s+(?:with\s+permission\s+)?(?:from|by)\s+(?P<n>[^\n]{2,80}?)\s*[.!]?\s*$",
               re.IGNORECASE),
    # "This story was produced by X and is republished with permission" (non-profit newsrooms' form).
    re.compile(r"\b(?:produced|written|reported|published)\s+by\s+(?P<n>[^\n]{2,60}?)\s+and\s+(?:is\s+|was\s+)?"
               r"(?:re-?published|reprinted|shared|distributed)\b", re.IGNORECASE),
)
# "Source: Metro Transit News" on a line of its own at the end; the name must be an outlet ("Source:
# company filings", "Source: Getty" are not).
_SOURCE_LINE_RE = re.compile(r"^\s*(?:source|via|courtesy(?:\s+of)?)\s*:\s*(?P<n>[A-Z][^\n]{1,60}?)\s*\.?\s*$",
                             re.IGNORECASE)
# Where a name in a syndication line ends: "X under a Creative Commons license", "X. Reprinted with
# permission", "X with permission", "X and is republished".
_OUTLET_END_RE = re.compile(r"\.\s|\s+(?:under|with|and|for|on|in)\s+(?:a|an|the|permission|is|was|their|its|our)\b",
                            re.IGNORECASE)
# "WASHINGTON (AP) — ", "LONDON (Reuters) - ", "(CNN) —", "Hamburg (dpa) - ", "Valencia, 21 sep (EFE).- "
# at the start of the story; "New Delhi, Aug 4 (PTI) The …" (no dash) only for a known wire's code.
_AGENCY_DATELINE_RE = re.compile(
    r"^[^\n(]{0,60}?\((?P<n>[A-Za-z][A-Za-z]{1,14}(?: [A-Z][a-z]+)?)\)(?P<dash>\s*\.?\s*[—–-]{1,2}\s)?")
_PLACE_RE = re.compile(r"^(?:[A-ZÀ-Ý][\w'.-]*[\s/,]*){1,4}(?:[A-Z][a-z]{2,8}\.?\s+\d{1,2}\s*)?$")
# The tail of a syndicated copy: a copyright line with a syndicate's distribution note ("©2023 Chicago
# Tribune. … Distributed by Tribune Content Agency", "Copyright 2024 NPR. To see more, visit …"), or the
# copyright line of a news agency ("© 2023 The Associated Press. All rights reserved."). "This material
# may not be published, broadcast, rewritten or redistributed" is no such note: Fox News's own pages
# carry it too.
_COPYRIGHT_NAME_RE = re.compile(
    r"(?:©|\([Cc]\)|\b[Cc]opyright\b)\s*(?:\d{4}(?:\s*[-–]\s*\d{4})?\s*,?\s*)?(?P<n>[A-Z][^\n.,;]{1,60}?)"
    r"(?:\s+(?:L\.?P|LLC|Inc|Ltd|GmbH)\.?)?(?=[.,;]|\s*$|\s+(?:all\s+rights|distributed|visit)\b)")
_SYNDICATION_NOTICE_RE = re.compile(r"\bdistributed\s+by\b|\bto\s+see\s+more,?\s+visit\b", re.IGNORECASE)


def _clean_outlet(name: str) -> str | None:
    name = _OUTLET_END_RE.split(re.sub(r"\s+", " ", name), 1)[0]
    name = name.strip(" .,:;!\"'“”’")
    name = re.sub(r"\s*\((?:opens|link)[^)]*\)$", "", name, flags=re.IGNORECASE)
    name = re.sub(r"\s+(?:here|today|website|\.com)$", "", name, flags=re.IGNORECASE)
    if not name:
        return None
    if re.match(r"^(?:https?://|www\.)", name, re.IGNORECASE) or re.fullmatch(r"[\w-]+(?:\.[\w-]+)+/?\S*", name):
        return publisher_from_url(name)
    if len(name.split()) > 6 or _date_line(name):  # "First published on November 19, 2019 / 8:16 AM"
        return None
    if name.islower():
        name = " ".join(w.upper() if len(w) <= 3 and w in _AGENCIES else w.capitalize() for w in name.split())
    return name


def original_publisher_of(texts: Sequence[str], body_start: str) -> str | None:
    for text in texts:
        for rx in _ORIGINAL_RES:
            m = rx.search(text)
            if m:
                name = _clean_outlet(m.group("n"))
                if name:
                    return name
    for text in texts:
        m = _SOURCE_LINE_RE.match(text)
        if m and m.group("n")[0].isupper() and (name := _clean_outlet(m.group("n"))) and is_outlet(name) \
                and has_org_word(name):
            return name
    for text in texts:
        m = _COPYRIGHT_NAME_RE.search(text)
        if m and (wire := m.group("n").strip().casefold()) and (
                wire in _WIRE_AGENCIES or _SYNDICATION_NOTICE_RE.search(text)):
            name = _WIRES.get(wire) or _clean_outlet(m.group("n"))
            if name and is_outlet(name):
                return name
    m = _AGENCY_DATELINE_RE.match(body_start)
    if m:
        code = m.group("n")
        if m.group("dash") and code[0].isupper():
            return _AGENCIES.get(code.lower(), code)
        # "Hamburg (dpa) -", "New Delhi, Aug 4 (PTI) The …": a known wire after a place (capitalised
        # words, maybe a short date), not "She said the (AP) style guide".
        place = body_start[: m.start("n") - 1]
        if code.casefold() in _WIRE_AGENCIES and _PLACE_RE.match(place):
            return _WIRES[code.casefold()]
    return None


# ----------------------------------------------------------------------------- language
@lru_cache(maxsize=1)
def _langid() -> object:
    import py3langid

    return py3langid


def detect_language(text: str, sample: int = 1000) -> str | None:
    """ISO 639-1 code of the text (py3langid), None for too little text to tell."""
    sample_text = text[:sample]
    if len(re.findall(r"\w+", sample_text)) < 3:
        return None
    return _classify(sample_text)


@lru_cache(maxsize=8192)
def _classify(sample_text: str) -> str:
    # py3langid is pure Python (~2-5 ms a call) and deterministic; copies of a story (a re-scrape, a
    # syndicated text) mostly share their opening, so a worker classifies it once. The copies come far
    # apart (on the re-scrape corpus a story's next copy comes 2,073 documents later), so the cache holds
    # 8,192 openings of at most 1,000 characters (1,024 of them hit 29% of the look-ups there).
    lang, _score = _langid().classify(sample_text)  # type: ignore[attr-defined]
    return str(lang)


# ----------------------------------------------------------------------------- entry point
def describe_article(body: str, removals: Sequence[Removal], hints: DescribeHints,
                     config: DescribeConfig = DescribeConfig()) -> DescribeResult:
    """Metadata for one article, and its body without the lines that became metadata."""
    lines = _lines(body)
    head = lines[: config.head_lines]
    taken: list[tuple[_Line, Removal]] = []
    title, subtitle, idx = _head_title(lines, head, hints, config, taken,
                                       dated_below=bool(head) and _removed_date_below(head[0], removals))
    date_texts: list[str] = [r.text for r in removals if r.category == DATELINE]
    credits: list[str | None] = []
    # The language first: the head's date lines are read in it ("14 ноября 2024").
    language = detect_language(body, config.language_sample_chars)
    languages = ("en",) if language in (None, "en") else ("en", language)
    byline = _head_byline(head, idx, hints, taken, date_texts, credits, languages)
    if byline is None:  # bylines the cleaner took out (category "byline") count too
        byline = next((name for r in removals if r.category == BYLINE and (name := parse_byline(r.text))), None)
    if byline is None:  # "Reporting by Jane Doe; Editing by John Roe" is removed as a credit line
        byline = next((name for r in removals if r.category == "credit" and _BY_RE.match(r.text)
                       and (name := parse_byline(r.text))), None)
    published_at, container_date_why = _published_at(hints, date_texts, languages, config)
    publisher = _publisher(removals, hints, lines)
    original = _original_publisher(removals, lines, taken, publisher, credits,
                                   own_publisher=bool(hints.publisher or hints.sitename or hints.url))
    new_body = _cut(body, [t[0] for t in taken])
    metadata = Metadata(title=title, subtitle=subtitle, byline=byline, published_at=published_at,
                        publisher=publisher, original_publisher=original, language=language)
    return DescribeResult(metadata=metadata, body=new_body, removals=tuple(r for _, r in taken),
                          container_date_unread=container_date_why is not None,
                          container_date_why=container_date_why)


def _head_title(lines: Sequence[_Line], head: Sequence[_Line], hints: DescribeHints, config: DescribeConfig,
                taken: list[tuple[_Line, Removal]], dated_below: bool = False) -> tuple[str | None, str | None, int]:
    """Headline and standfirst at the top of a plain-text body (or the hinted headline repeated there):
    (title, subtitle, index of the first head line after them). Lines taken are appended to `taken`.
    `dated_below`: the line under the first one was a date or byline line the cleaner removed."""
    hinted = (hints.title or "").strip() or None
    # A feed's or API's title often ends with the site ("… - BBC News", NewsAPI's form): the headline is
    # what precedes it, as for a headline read from the text.
    title = _without_site_suffix(hinted) if hinted else None
    subtitle: str | None = None
    idx = 0
    if not head:
        return title, subtitle, idx
    offset = 0  # head lines before the headline: a kicker
    if _kicker_before(head, {_norm(t) for t in (hinted, title) if t}, config):
        taken.append((head[0], Removal(KICKER, "head_kicker", head[0].text, head[0].start)))
        head, offset = head[1:], 1
    first = head[0]
    if title is not None:
        if _norm(first.text) in {_norm(title), _norm(hinted or "")}:
            taken.append((first, Removal(TITLE, "hint_title", first.text, first.start)))
            idx = 1
        elif len(head) > 1 and _headline_like(first.text, config.title_max_words, config.min_title_words) \
                and _signed_or_dated(head[1].text):
            # The page's own headline over its "By" or date line, worded otherwise than the container's
            # title (a feed's or an SEO title often is): a headline all the same. Left in the body, it
            # stopped the byline below it from being read (a user trial). The container's title stays.
            taken.append((first, Removal(TITLE, "head_title_other", first.text, first.start)))
            idx = 1
    elif len(lines) > 1 and (
            _headline_like(first.text, config.title_max_words, config.min_title_words)
            # A headline in a script without case, known by the date or byline line under it: left in
            # the body, it kept that line from being read (the date and byline stayed in the body).
            or ((dated_below or (len(head) > 1 and _signed_or_dated(head[1].text)))
                and _headline_like(first.text, config.title_max_words, config.min_title_words, caseless=True))):
        title = _without_site_suffix(first.text.strip())
        taken.append((first, Removal(TITLE, "head_title", first.text, first.start)))
        idx = 1
        if len(lines) > 2 and idx < len(head):
            second = head[idx]
            if _headline_like(second.text, config.subtitle_max_words, config.min_title_words):
                # The standfirst is read into `subtitle` and stays in the body: it is the article's own text
                # (trafilatura's evaluation pages count it as content), and a line this guess takes for one
                # may be the first question of an interview. Cutting it lost 8 of traf-dev's 1,818 content
                # snippets (0.44%) for 3 of its 212 boilerplate snippets and one of aeb-dev's 197 boilerplate
                # lines (site-grouped CV, `bench/train_linemodel.py` mode `product`).
                subtitle = second.text.strip()
                idx += 1
    return title, subtitle, idx + offset


def _removed_date_below(first: _Line, removals: Sequence[Removal]) -> bool:
    """Was the line right under the body's first line a date or byline line the cleaner removed? The
    cleaner's first removal, a dateline or byline, sits just past the first line in the text it received
    (the first line, its newline, maybe a blank line). A headline in a script without case is known by such
    a line under it; once the cleaner took the line ("2024-12-09 10:15:32 来源：新华网", "입력 2024.12.09"),
    the body no longer showed it, and the headline stayed in the body."""
    if not removals:
        return False
    r = min(removals, key=lambda r: r.position)
    return r.category in (DATELINE, BYLINE) and 0 < r.position - len(first.text) <= 3


def _signed_or_dated(text: str) -> bool:
    """A "By Jane Doe" line or a date line: what stands under a headline, never under story text."""
    return bool(_BY_RE.match(text.strip()) and parse_byline(text)) or bool(_date_line(text))


def _kicker_before(head: Sequence[_Line], hint_titles: set[str], config: DescribeConfig) -> bool:
    """Is the first line a kicker over the headline: one or two words without sentence punctuation, then
    the headline (the hinted one, with or without its site suffix: `hint_titles`, normalized; or a
    headline-like line followed by a byline or a date line)?"""
    if len(head) < 3:
        return False
    first = head[0].text.strip()
    if not 1 <= len(first.split()) <= 2 or first[-1:] in ".!?:;," or parse_byline(first) or _date_line(first):
        return False
    second, third = head[1].text, head[2].text
    if hint_titles:
        return _norm(second) in hint_titles
    return _headline_like(second, config.title_max_words, config.min_title_words) \
        and bool(parse_byline(third) or _date_line(third))


_SITE_SUFFIX_RE = re.compile(r"^(?P<head>.+?)\s+(?:[|–—-]|::)\s+(?P<site>[^|–—]+?)\s*$")


def site_suffix(title: str) -> str | None:
    """The site name a page title ends with ("… - Harborview Daily News", "… | BBC News", "… — Gadget
    Ledger", "… | NJ.com"), when what precedes it is still a headline of three words or more."""
    m = _SITE_SUFFIX_RE.match(title)
    if not m or len(m.group("head").split()) < 3:
        return None
    site = m.group("site").strip()
    if len(site.split()) > 5 or (any(c.isdigit() for c in site) and "." not in site):
        return None
    outlet = credited_outlet(site)
    return site if outlet else None


def _without_site_suffix(title: str) -> str:
    """The headline without a trailing site name, and then without the section trail before it
    ("… | Editorial | Opinion | The Guardian", "… | World | News | Express.co.uk")."""
    site = site_suffix(title)
    if not site:
        return title
    title = title[: title.rindex(site)].rstrip(" |–—-:")
    while (m := re.match(r"^(?P<head>.+?)\s+\|\s+(?P<section>[A-Z][\w&]*(?: [A-Z&][\w&]*)?)$", title)) \
            and len(m.group("head").split()) >= 3:
        title = m.group("head")
    return title


def _head_byline(head: Sequence[_Line], idx: int, hints: DescribeHints, taken: list[tuple[_Line, Removal]],
                 date_texts: list[str], credits: list[str | None] | None = None,
                 languages: tuple[str, ...] = ()) -> str | None:
    """Byline and date lines just below the headline (up to four lines; stop at the first story line).
    Lines taken are appended to `taken`, texts that may hold a date to `date_texts`."""
    byline = _author_names(hints.author, (hints.title, hints.sitename, hints.publisher))
    looked = 0
    by_seen = False
    while idx < len(head) and looked < 4:
        line = head[idx]
        name = parse_byline(line.text)
        if name is None and byline is not None and _norm(line.text) == _norm(byline):
            # The line is the name the record or page gave as its author: a byline line also when no given
            # name vouches for it ("Ayşe Yılmaz", "Nguyễn Văn Hùng", "김민수 기자", "山田太郎" stayed atop
            # JSON records' bodies; parse_byline knows the given names of few languages).
            name = byline
        if name and (byline is None or _norm(name) == _norm(byline) or hints.author):
            byline = byline or name
            taken.append((line, Removal(BYLINE, "head_byline", line.text, line.start)))
            date_texts.append(line.text)  # "By Jane Doe | March 6, 2022"
            if credits is not None:
                credits.append(byline_outlet(line.text))
            by_seen = by_seen or bool(_BY_RE.match(line.text.strip()))
        elif byline is not None and credits is not None and len(line.text.split()) <= 5 and by_seen \
                and (outlet := credited_outlet(line.text)):
            # "By Evelyn Marsh / Chicago Tribune / (TNS)": the outlet on its own line under a "By" line.
            # (Without "By" - "Jane Doe / Lake County Star Tribune" - it is how chains' own sites
            # print the byline: the site, not a source.)
            credits.append(outlet)
            taken.append((line, Removal(BYLINE, "head_byline_outlet", line.text, line.start)))
        elif _date_line(line.text, languages):
            taken.append((line, Removal(DATELINE, "head_date", line.text, line.start)))
            date_texts.append(line.text)
        elif len(line.text.split()) > 3 or line.text.rstrip().endswith("."):
            break
        idx += 1
        looked += 1
    return byline


_EPOCH_RE = re.compile(r"(\d{9,10})(?:\.\d+)?|(\d{12,13})")


def _epoch(text: str, hints: DescribeHints, config: DescribeConfig) -> datetime | None:
    """A container's date given as Unix time (seconds, or milliseconds as JavaScript writes it): only the
    container's field, never a body line, where such a number is an id or a count."""
    dt = _read_epoch(text)
    return dt if dt is not None and _plausible(dt, hints, config) else None


def _read_epoch(text: str) -> datetime | None:
    m = _EPOCH_RE.fullmatch(text.strip())
    if m is None:
        return None
    seconds = float(text) if m.group(1) else int(m.group(2)) / 1000
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _published_at(hints: DescribeHints, date_texts: list[str], languages: tuple[str, ...],
                  config: DescribeConfig) -> tuple[datetime | None, str | None]:
    """The container's date, else the page's own, else the first date line that parses (revisions last), else
    a relative one; and, when the container gave a date that was not taken, why."""
    published_at = None
    container_why = None
    if hints.published_at:
        published_at = _epoch(hints.published_at, hints, config) or parse_date(hints.published_at, hints,
                                                                                languages, config)
        if published_at is None:
            container_why = _why_not_taken(hints.published_at, hints, languages, config)
    if published_at is None and hints.page_published_at:
        published_at = parse_date(hints.page_published_at, hints, languages, config)
    # A line that says "updated"/"modified" dates a revision: read the others first. One line may hold
    # both ("Updated: Jun. 03, 2023 | Published: Jun. 01, 2023", "Publié le …, modifié le …"), so each
    # line is cut before every label and the pieces are ordered.
    date_texts = [piece for text in date_texts for piece in _label_pieces(text)]
    date_texts.sort(key=lambda t: bool(_REVISION_RE.search(t)))
    for text in date_texts:
        if published_at is not None:
            break
        published_at = parse_date(text, hints, languages, config)
    if published_at is None:
        for text in date_texts:
            published_at = parse_relative_date(text, hints.seen_at)
            if published_at is not None:
                break
    return published_at, container_why


def _why_not_taken(text: str, hints: DescribeHints, languages: tuple[str, ...], config: DescribeConfig) -> str:
    """What `extra._invalid_fields` says of a container's date that was not taken: one no parser reads, or one
    that reads as a date no news article has (a user trial: "2024-01-02" was said unreadable when it was
    only later than the record's fetch time)."""
    shown = text[:200]
    dt = _read_epoch(text) or _read_date(text, languages)
    if dt is None:
        return f"not a date newsetl reads: {shown}"
    if dt.year < config.earliest_year:
        return f"read as {dt.isoformat()}, before {config.earliest_year}: not taken for a publication date: {shown}"
    if hints.fetched_at is not None:
        fetched = _aware(hints.fetched_at).isoformat()
        return (f"read as {dt.isoformat()}, later than the record was fetched ({fetched}): not taken for a "
                f"publication date: {shown}")
    return f"read as {dt.isoformat()}, in the future: not taken for a publication date: {shown}"


_DATE_LABEL_START_RE = re.compile(
    r"(?<=\S)\s*(?=[|•·,;]?\s*\b(?:published|updated|posted|last\s+updated|modified|first\s+published"
    r"|veröffentlicht|aktualisiert|publié|modifié|mis à jour|publicado|actualizado)\b"
    r"|[|•·,;]?\s*(?:입력|수정|최종\s?수정|업데이트|公開日|更新日|配信日|更新|发布时间|更新时间|更新時間))",
    re.IGNORECASE,
)


def _label_pieces(text: str) -> list[str]:
    """A date line cut before each of its labels: the publication and revision dates apart."""
    return [p for p in _DATE_LABEL_START_RE.split(text) if re.search(r"\w", p)] or [text]


def _publisher(removals: Sequence[Removal], hints: DescribeHints, lines: Sequence[_Line]) -> str | None:
    """The container's publisher or site name, else a signature line consistent with the URL, else the
    URL's domain, else any signature, else a domain named in the last lines."""
    signature_texts = [r.text for r in removals if r.category in _SIGNATURE_CATEGORIES]
    signature = _best_publisher(_signature_publishers(signature_texts))
    publisher = (hints.publisher or "").strip() or (hints.sitename or "").strip() or None
    if publisher is None and signature and _consistent_with_url(signature, hints.url):
        publisher = signature
    if publisher is None:
        publisher = publisher_from_url(hints.url) or signature or _tail_domain_publisher(lines)
    return publisher


def _original_publisher(removals: Sequence[Removal], lines: Sequence[_Line], taken: list[tuple[_Line, Removal]],
                        publisher: str | None, credits: Sequence[str | None] = (),
                        own_publisher: bool = False) -> str | None:
    """The original publisher a syndicated copy names (never the publisher itself)."""
    syndication_texts = [r.text for r in removals if r.category == "syndication"]
    syndication_texts += [line.text for line in lines[-3:]]
    # A syndication line the cleaner filed under another category (a newsletter or copyright line
    # that also names the original: "This story was originally published by Grist. Subscribe …").
    syndication_texts += [r.text for r in removals if r.category not in {"syndication", TITLE, SUBTITLE, BYLINE}]
    # "Source: X" lines are credits to the cleaner; original_publisher_of only takes an outlet from them.
    syndication_texts += [r.text for r in removals if r.category == "credit" and _SOURCE_LINE_RE.match(r.text)]
    kept_start = next((ln.text for ln in lines if ln not in {t[0] for t in taken}), "")
    original = original_publisher_of(syndication_texts, kept_start)
    if original is None:
        # The outlet a byline credits ("By Jane Doe, Pinewood Times", "Carolyn Ashby, The Washington
        # Post", a "Chicago Tribune" / "AFP" line under the names).
        original = next((credit for credit in credits if credit), None)
    if original and publisher and own_publisher and _same_outlet(original, publisher):
        # The site's own name (from the container: URL, site name) is no syndication source. A publisher
        # read only from the text's own copyright line is no evidence against one: a syndicated copy
        # carries the source's copyright ("© 2023 The Associated Press …", "(c) 2023, The Washington Post").
        original = None
    return original


def _cut(body: str, lines: Sequence[_Line]) -> str:
    if not lines:
        return body
    pieces: list[str] = []
    pos = 0
    for line in sorted(lines, key=lambda ln: ln.start):
        pieces.append(body[pos : line.start])
        pos = line.end + 1 if line.end < len(body) and body[line.end] == "\n" else line.end
    pieces.append(body[pos:])
    out = "".join(pieces)
    return re.sub(r"\n{3,}", "\n\n", out).lstrip("\n")
