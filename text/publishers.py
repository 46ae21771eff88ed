"""Publishers as entities: which strings name one outlet, and which strings are not outlets at all.

Pure functions (no warehouse): `outlet_key` folds a name or a web address to the key every spelling
of one outlet shares; `is_outlet` refuses people, platforms and tickers; `display_name` picks the name
analysts see among an outlet's spellings, the same one whatever order they were seen in;
`load_publisher_file` reads a user's alias file. The warehouse keeps the alias table
(`warehouse/publishers.py`) and resolves each new article's publisher against it.

Folding, in order (each step is how the same outlet is written differently in the wild):
- Unicode NFKC, case, curly quotes;
- a possessive at the end ("NJ.com’s", "Reuters'");
- legal suffixes ("Inc", "Inc.", ", LLC", "Ltd", "Limited", "GmbH", "Corp.", "plc", "B.V.", "S.A." ...);
- a leading article ("The", "Die", "Le", "La", "El", ...): "The Valley Gazette" is "Valley Gazette";
- a web address becomes its registrable domain's main label ("www.valleygazette.com" -> "valleygazette",
  "nj.com" -> "nj", "pinewood-times.co.uk" -> "pinewoodtimes");
- everything but letters and digits goes, so "Valley Gazette", "valleygazette.com" and "ValleyGazette"
  meet, and so do "Jeongdong Theater" and "Jeongdongtheater".
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

# Legal forms of companies, lower case, dots and spaces removed ("l.l.c." -> "llc"), matched at the end.
LEGAL_SUFFIXES: frozenset[str] = frozenset({
    "inc", "incorporated", "ltd", "limited", "llc", "llp", "lp", "plc", "corp", "corporation", "co",
    "gmbh", "ag", "kg", "gmbhcokg", "ug", "ev", "sa", "sas", "sarl", "srl", "spa", "bv", "nv", "ab", "asa",
    "oy", "oyj", "pty", "ptyltd", "pvt", "pvtltd", "kk", "sl", "sau", "sro", "zoo", "spzoo", "doo", "se",
})
_LEADING_ARTICLES = ("the", "die", "der", "das", "le", "la", "les", "el", "il", "lo", "de", "het")

# The news agencies under their other names, as outlet keys: "AP" and apnews.com are The Associated Press,
# "Thomson Reuters" is Reuters, "Agence France-Presse" is AFP. No folding rule joins them (AP is no word of
# the name; apnews abbreviates no name in order), and a wire's copies are most of a news stream: its counts
# were split over three outlets (a user trial). The warehouse stores them as aliases (source "wire").
WIRE_ALIASES: Mapping[str, str] = {
    "ap": "associatedpress", "apnews": "associatedpress", "thomsonreuters": "reuters", "agencefrancepresse": "afp",
}

# Social networks, search engines, shops, image agencies and blog platforms: a page hosted there or a
# "publisher" field naming them does not name a news outlet.
PLATFORMS: frozenset[str] = frozenset({
    "facebook", "meta", "twitter", "x", "xcom", "youtube", "instagram", "tiktok", "linkedin", "pinterest",
    "reddit", "snapchat", "whatsapp", "telegram", "threads", "bluesky", "mastodon", "tumblr", "vimeo",
    "google", "googlenews", "alphabet", "yahoo", "bing", "msn", "applenews", "apple", "amazon", "flipboard",
    "newsbreak", "smartnews", "medium", "substack", "wordpress", "blogger", "blogspot", "wix", "squarespace",
    "ghost", "gettyimages", "getty", "shutterstock", "alamy", "istock", "imgur", "flickr", "spotify",
    "soundcloud", "disqus", "feedburner", "wikipedia", "wikimedia", "github", "discord", "weibo", "wechat",
    "vk", "naver", "daum", "line",
})
# Stock tickers of those companies, as feeds and finance pages write them ("AMZN", "$GOOGL").
PLATFORM_TICKERS: frozenset[str] = frozenset({
    "amzn", "goog", "googl", "msft", "aapl", "fb", "twtr", "nflx", "snap", "pins", "rddt", "baba", "bidu",
    "meta", "yhoo", "tcehy", "shop",
})
# Placeholders content systems put where a publisher should be.
_PLACEHOLDERS = frozenset({"admin", "administrator", "staff", "editor", "editors", "webmaster", "guest", "unknown",
                           "anonymous", "none", "null", "nan", "na", "user", "author", "home", "news", "index"})
# Words that make a name an organisation (an outlet, a broadcaster, an institution), never a person.
_ORG_WORDS_TEXT = """
news newspaper newspapers times post herald tribune journal gazette courier chronicle telegraph express mail
standard observer guardian independent sun star globe mirror record review reporter register sentinel
bulletin dispatch examiner inquirer enquirer monitor leader ledger echo press media group network networks
radio tv television broadcasting broadcast channel studios studio publishing publications publication
magazine weekly daily today digital online wire agency service services insider report reports daily
week world nation national international local county city metro times-union voice voices view views
gazeta zeitung nachrichten rundschau tagblatt allgemeine presse journal noticias diario periodico
correio folha nouvelles quotidien giornale corriere stampa gazzetta nieuws krant dagblad avis tidning
theater theatre museum university college school institute foundation association society council
ministry department agency office bank club church hospital company corporation interactive
entertainment communications productions holdings partners labs technologies systems solutions
insights capital markets business finance financial economist economic politics science sports
sport health tech technology weather fm am blog blogs podcast podcasts hub central live
advertiser argus beacon clarion courant eagle gleaner intelligencer mercury messenger pilot progress
republican democrat spectator statesman tidings transcript citizen advocate banner bee blade enterprise
item packet patriot recorder republic telegram vindicator whig tribune-review currents outlook
syndicate syndication
"""
_ORG_WORDS = frozenset(_ORG_WORDS_TEXT.split())
_POSSESSIVE_RE = re.compile(r"(?:'s|(?<=s)')$", re.IGNORECASE)  # after _fold: ’ is '; "Reuters'" keeps its s
_DOMAIN_RE = re.compile(r"^(?:https?://)?(?:[a-z0-9-]+\.)+[a-z]{2,24}(?::\d+)?(?:/\S*)?$", re.IGNORECASE)
_PERSON_TOKEN_RE = re.compile(
    r"^(?:[A-Z][a-z]+(?:[-'’][A-Z]?[a-z]+)*|[A-Z]\.(?:[A-Z]\.)*|Mc[A-Z][a-z]+|O['’][A-Z][a-z]+)$")
_HONORIFICS = frozenset({"dr", "mr", "mrs", "ms", "prof", "sir", "dame", "rev", "hon"})
_PARTICLES = frozenset({"de", "da", "di", "del", "della", "van", "von", "der", "den", "la", "le", "bin", "al", "el",
                        "du", "dos", "das", "ter", "ten"})


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate({ord("’"): "'", ord("‘"): "'", 0xA0: " "})
    return re.sub(r"\s+", " ", text).strip()


def registrable_domain(url_or_host: str | None) -> str | None:
    """The registrable domain of a URL or host ("https://www.independent.co.uk/x" -> "independent.co.uk")."""
    if not url_or_host:
        return None
    text = url_or_host.strip()
    try:
        host = (urlsplit(text if "//" in text else f"//{text}").hostname or "").lower()
    except ValueError:
        return None
    host = re.sub(r"^(?:www\d?|m|amp|mobile|edition)\.", "", host)
    if not host or "." not in host or re.fullmatch(r"[\d.]+", host):
        return None
    try:
        from tld import get_fld

        fld = get_fld(host, fix_protocol=True, fail_silently=True)
    except ImportError:  # tld comes with courlan (trafilatura's dependency); keep a fallback all the same
        fld = None
    return str(fld or ".".join(host.split(".")[-2:]))


def looks_like_domain(name: str) -> bool:
    """ "nj.com", "www.valleygazette.example/news", "NJ.com" (one token with a dot and a TLD-like end)."""
    s = _fold(name)
    return " " not in s and bool(_DOMAIN_RE.match(s)) and not re.search(r"\.(?:html?|php|aspx?)$", s, re.I)


def _strip_legal(words: list[str]) -> list[str]:
    while len(words) > 1:
        last = re.sub(r"[.\s]", "", words[-1].lower()).strip(",")
        pair = re.sub(r"[.\s]", "", "".join(words[-2:]).lower()) if len(words) > 2 else ""
        if pair in LEGAL_SUFFIXES and len(words) > 2:
            words = words[:-2]
        elif last in LEGAL_SUFFIXES:
            words = words[:-1]
        else:
            break
        words[-1] = words[-1].rstrip(",")
    return words


def _strip_possessive(text: str) -> str:
    return _POSSESSIVE_RE.sub("", text) if len(text) > 3 else text


def clean_name(name: str) -> str:
    """The readable form of a spelling: legal suffix dropped, spacing tidied, "The" and a possessive kept
    ("CBS Interactive Inc" -> "CBS Interactive", "Lakeside  Radio" -> "Lakeside Radio"). A possessive is
    kept here because some outlets are named so ("Barron's"); `display_name` prefers a spelling without
    one when the outlet has both ("NJ.com’s" and "NJ.com")."""
    s = _fold(name).strip(" .,;:|-–—\"")
    s = s.rstrip("'") if not s.endswith("s'") else s
    words = s.replace(",", " , ").split()
    words = [w for w in _strip_legal(words)]
    out = " ".join(words).replace(" , ", ", ").replace(" ,", ",").strip(" ,")
    return out or s


def outlet_key(name: str | None) -> str:
    """The key every spelling of one outlet shares ("" for nothing usable); see the module docstring."""
    if not name:
        return ""
    s = _fold(name)
    if looks_like_domain(s):
        domain = registrable_domain(s)
        if domain:
            return re.sub(r"[^0-9a-z]", "", domain.split(".")[0])
    s = _strip_possessive(clean_name(s)).casefold()
    words = s.split()
    if len(words) > 1 and words[0] in _LEADING_ARTICLES:
        words = words[1:]
    s = " ".join(words)
    # "NJ.com" written as a name: the address is its name; a trailing ".com" is not part of the key.
    s = re.sub(r"\.(?:com|org|net|co\.uk|co|info|news|gov)$", "", s)
    return re.sub(r"[^0-9a-z]", "", unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode() or s) or \
        re.sub(r"\W", "", s)


def has_org_word(name: str) -> bool:
    """A word only organisations carry in their names ("Times", "Press", "Radio", "Theater", ...)."""
    return any(re.sub(r"[^a-z]", "", w.lower()) in _ORG_WORDS for w in _strip_possessive(_fold(name)).split())


def looks_like_person(name: str) -> bool:
    """Two to four capitalised name tokens and no word an organisation would carry: "Aaron Schwartz",
    "Dr. Alan Brooks", "Anna van Dyke". "The X" is never a person; neither is anything with an acronym."""
    s = _strip_possessive(_fold(name))
    words = s.split()
    if words and words[0].lower().strip(".") in _HONORIFICS:
        words = words[1:]
    if not 2 <= len(words) <= 4 or words[0].lower() in _LEADING_ARTICLES:
        return False
    # Each part of a hyphenated word too: "Chicago Sun-Times", "Austin American-Statesman", "Agence France-Presse".
    if any(re.sub(r"[^a-z]", "", part) in _ORG_WORDS for w in words for part in w.lower().split("-")):
        return False
    core = [w for w in words if w.lower() not in _PARTICLES]
    return len(core) >= 2 and all(_PERSON_TOKEN_RE.match(w) for w in core)


def is_outlet(name: str | None) -> bool:
    """False for a person, a platform (Facebook, X, YouTube, Medium ...), a ticker ("AMZN") or a placeholder."""
    if not name:
        return False
    s = _fold(name)
    key = outlet_key(s)
    if len(key) < 2 or key.isdigit():
        return False
    bare = re.sub(r"[^0-9a-z]", "", s.lower().lstrip("$"))
    if key in PLATFORMS or bare in PLATFORMS or key in _PLACEHOLDERS:
        return False
    if s.lstrip("$").isupper() and bare in PLATFORM_TICKERS:
        return False
    if re.fullmatch(r"\$?[A-Z]{1,5}", s) and bare in PLATFORM_TICKERS:
        return False
    # "Thomson Reuters" reads like a person's name: a news agency's other name is an outlet all the same.
    return key in WIRE_ALIASES or not looks_like_person(s)


def _display_rank(form: str) -> tuple[int, int, int, int, int, int, str]:
    """How good a spelling is to show (lower is better): a name before an address, natural case before
    all-lower or all-caps, "The X" before "X" (outlets drop their article in passing, rarely the reverse),
    words spaced before run together ("Jeongdong Theater", not "Jeongdongtheater"), then the shorter, then
    alphabetical so that ties never depend on arrival order."""
    is_domain = looks_like_domain(form)
    letters = [c for c in form if c.isalpha()]
    odd_case = bool(letters) and (all(c.islower() for c in letters) or
                                  (all(c.isupper() for c in letters) and len(letters) > 5))
    words = form.split()
    has_the = len(words) > 1 and words[0].lower() in _LEADING_ARTICLES
    possessive = _strip_possessive(form) != form
    return (int(possessive), int(is_domain), int(odd_case), int(not has_the), -len(words), len(form), form)


def display_name(forms: Iterable[str]) -> str | None:
    """The canonical name among an outlet's spellings (cleaned), the same for any order of `forms`."""
    cleaned = {clean_name(f) for f in forms if f and f.strip()}
    cleaned.discard("")
    if not cleaned:
        return None
    best = min(cleaned, key=_display_rank)
    if looks_like_domain(best):
        # Only an address is known: show the host as written ("NJ.com" stays "NJ.com"; a domain cannot
        # tell word breaks, so "valleygazette.com" is not guessed into "Valley Gazette").
        host = re.sub(r"^(?:https?://)?(?:www\d?\.)?", "", best, flags=re.IGNORECASE).split("/")[0]
        return host or best
    return best


# ----------------------------------------------------------------------------- the user's alias file
class PublishersFileError(ValueError):
    """A publishers file that cannot be read; the message names the file and the problem."""


@dataclass(frozen=True)
class UserPublisher:
    name: str  # the canonical name the user wants shown
    aliases: tuple[str, ...]  # spellings and domains that name it


def load_publisher_file(path: str | Path) -> list[UserPublisher]:
    """A user's publishers file (JSON): ``{"publishers": [{"name": "CBS News", "aliases": ["CBS Interactive",
    "cbsnews.com"]}]}``, or the short form ``{"CBS News": ["CBS Interactive", "cbsnews.com"]}``.
    Keys starting with "_" are comments."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PublishersFileError(f"publishers file {p}: {exc}") from exc
    entries: list[Mapping[str, object]]
    if isinstance(data, dict) and isinstance(data.get("publishers"), list):
        entries = data["publishers"]
    elif isinstance(data, dict):
        entries = [{"name": k, "aliases": v} for k, v in data.items() if not k.startswith("_")]
    else:
        raise PublishersFileError(f"publishers file {p}: expected a JSON object")
    out: list[UserPublisher] = []
    for i, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, Mapping) else None
        aliases = entry.get("aliases", []) if isinstance(entry, Mapping) else None
        if not isinstance(name, str) or not name.strip() or not isinstance(aliases, list) or \
                not all(isinstance(a, str) for a in aliases):
            raise PublishersFileError(f"publishers file {p}: entry {i} needs a 'name' and a list of 'aliases'")
        if not outlet_key(name):
            raise PublishersFileError(f"publishers file {p}: entry {i}: {name!r} has no letters or digits")
        out.append(UserPublisher(name.strip(), tuple(a for a in aliases if outlet_key(a))))
    return out
