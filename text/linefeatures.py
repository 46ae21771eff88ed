"""Line features of the learned boilerplate classifier (pure: stdlib + numpy).

The model (`linemodel.py`) reads these columns by name; the training script (`bench/train_linemodel.py`)
writes them. Changing a feature means retraining: the model file lists the names it was trained on and
is refused when they differ.

`line_features_batch(docs, ...)` computes the features of many documents in one pass (what the cleaner
runs: per-document numpy calls would cost more than the lines' own work); `line_features(lines,
rule_cats=None, cut_frac=None, recur=None)` is its one-document case (what the trainer runs). Both return
float32 rows, one per line; rows of blank lines are all zero (they are never classified).
"Document" below means the non-blank lines of one text in order; "block" a run of non-blank lines
between blank lines (trafilatura text has few blank lines, so list runs and short-line runs act as
blocks too). Nothing here names a site, page or sentence: only shapes, positions and generic word lists.

Features (FEATURE_NAMES, in order):
  position   rel_pos (index / n), log_from_start, log_from_end, log_n_lines, char_pos (share of the
             document's characters before the line), pos_in_block, log_block_len
  length     log_chars, log_words, short (<= 6 words), tiny (<= 2 words)
  shape      end_sentence (. ! ? … or closing quote), end_colon, end_none (ends in a letter/digit),
             end_question, first_upper, first_digit, cap_share (words starting upper/digit),
             title_case (>= 80 % of non-small words capitalised, >= 3 words), allcaps_share (upper /
             letters), stop_share (distinct stopwords of a small multi-language list / words),
             story, comma_rate, digit_share,
             punct_share, pipe_sep.  Word counts are runs of letters/digits; word-list counts are
             distinct whitespace tokens (with common punctuation glued on) found in the list.
             story = >= 8 words, sentence end, and mostly lowercase-initial words or a common verb (a
             vectorised form of the cleaner's is_story_line, as it was when v5 was trained: since
             2026-12-07 is_story_line also reads the sentence marks of other scripts, Chinese 。 and
             Hindi । among them, and this column does not. Made to follow it, the CV moved only within
             its seed spread (mean of seeds 1-6: traf 55.3% removed both ways; seed 12: 55.7% instead
             of 57.5%, AEB lost 0.53% instead of 0.48%): the dev sets have four pages in those scripts.
             The cleaner's guard, which spares story lines from the model, does read them)
  tokens     url, email, handle (@name), hashtag, list_marker, markdown (# heading, **, table pipes),
             date_like, time_like, ago (N minutes/hours/days ago), copyright (©, "all rights reserved"),
             comment_word (reply/comment/responses/says:/wrote and the like), cta_word (subscribe,
             follow, download, sign up, share, click, app, podcast, newsletter, ...),
             media_word (photo/image/video/gallery/credit/getty/ap/reuters ...), related_word (more,
             related, weitere, también, interesar ... on lines of <= 20 words), contact_word (tel, fax,
             kontakt, reporter ...), legal_word (copyright, license, affiliate, werbung, quelle ...),
             login_word (log in, eingeloggt, registriert ...), cue_prefix ("Read more: <title>")
  headline   title_sim, after_title: always 0. Columns of the model file (v1 read the headline); the
             cleaner runs before describe finds a headline, so neither training nor cleaning has one.
             Dropping them means retraining (the file lists the names it was trained on).
  runs       short_run (log length of the run of short non-sentence lines holding the line),
             list_run (log length of the run of list items holding it)
  comments   comment_hdr (line looks like a comment-section header: "12 Comments", "Leave a reply",
             "N responses to ..."), after_comment_hdr (a header occurred above), log_since_hdr
  story ctx  story_before (share of story lines above), story_after (share below), after_last_story
             (below the last story line), log_dist_story (distance to the nearest story line)
  rules      rule_removed, rule_comments, rule_links, rule_prompt, rule_meta, cut_frac,
             rule_near (rule removals among the 3 lines either side / 6), rule_after_share (share of
             the lines below removed by rules)
  recurrence recur (how often the line's key recurs for the publisher; optional, 0 when unknown).
             Always 0 so far, in training and in the pipeline: the development pages are about one per
             site (26 sites have 2+ pages; 37 of their lines recur), too few to learn a weight from,
             so no tree of v4 splits on it. Recurrence acts through the warehouse's learned pass
             instead (text/clean.py, warehouse/learned.py). The slot stays so that a model trained
             on pages with publisher history can use it without a change of the model format.
  neighbours for the previous and the next line: log_words, end_sentence, short, list_marker,
             rule_removed, story (prefix prev_/next_; 0 beyond the document)
  window     story_win (share of story lines among the 2 lines either side)
  layout     indent (log of the raw line's leading whitespace: trafilatura keeps the indentation of
             inline page chrome), indent_share (share of indented lines in the document), dup_in_doc (how
             often the same line recurs in the document, capped at 3), rel_chars (log chars minus the
             document's median log chars)
  main block in_main (inside the main content block: the span of lines maximising story characters
             minus a cost per non-story line, Kadane over the document), log_before_main, log_after_main
             (distance in lines to that block, 0 inside)
  window 3   short_win3, list_win3, story_win3, cue_win3 (lines with a cta/related/comment/contact word
             or a cue prefix), title_case_win3, tiny_win3: shares among the 3 lines either side;
             prev2_story, next2_story; prev/next comment_word and cta_word
"""
from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

# The cleaner's list items are the features' list items.
from newsetl.text.lines import LIST_MARKER, MARKER_CHARS, casefold_text

_WORD = re.compile(r"\w+")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
_HANDLE = re.compile(r"(?:^|\s)@\w{2,}")
_HASHTAG = re.compile(r"(?:^|\s)#\w+")
_NUM_DATE = re.compile(r"\b\d{1,2}[./-]\d{1,2}[./-](?:19|20)?\d\d\b|\b(?:19|20)\d\d-\d\d-\d\d\b")
_TIME = re.compile(r"\b(?:[01]?\d|2[0-3])[:.h][0-5]\d\b|\b\d{1,2}\s*[ap]\.?m\.?\b", re.I)
_N_OF_M = re.compile(r"\b\d+\s*(?:of|von|de|/)\s*\d+\b")
_COMMENT_HDR = re.compile(
    r"^(?:\d+\s+)?(?:comments?|responses?|replies|kommentare?|commentaires?|comentarios?|commenti|"
    r"reacties|reactions?|discussion|diskussion|leserkommentare|thoughts? on\b.*|responses? to\b.*|"
    r"comments? (?:on|to)\b.*)\s*:?\s*(?:\(\d+\))?$|^(?:leave|post|add|write|submit) (?:a |your )?"
    r"(?:reply|comment|response)\b|^(?:join the (?:discussion|conversation)|what do you think\??|"
    r"schreibe einen kommentar|kommentar (?:schreiben|verfassen)|laisser un commentaire|"
    r"deja un comentario|lascia un commento)", re.I)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Generic word lists (casefolded \w+ tokens); counted as distinct tokens of a line.
MONTHS = _words("""jan feb mar apr may jun jul aug sep sept oct nov dec january february march april june
july august september october november december januar februar märz mai juni juli oktober dezember
janvier février mars avril juin juillet août septembre octobre novembre décembre enero febrero marzo abril
mayo junio julio agosto septiembre octubre noviembre diciembre""")
AGO_WORDS = _words("ago vor")
COPY_WORDS = _words("copyright rights reserved rechte vorbehalten droits réservés derechos reservados")
COMMENT_WORDS = _words("""reply replies comment comments responses response antworten antwort kommentar
kommentare kommentieren commentaire commentaires comentario comentarios commenti reacties says said wrote
schrieb schreibt sagt meldet login log report like likes upvote permalink quote""")
CTA_WORDS = _words("""subscribe subscribed subscription subscriber subscribers follow download signup sign
register share shares click tap app apps podcast podcasts newsletter newsletters youtube facebook twitter
instagram linkedin whatsapp telegram pinterest tiktok rss itunes spotify abonnieren abonnez abonnement
teilen folgen herunterladen inscrivez suscríbete suscribete partager donate donation spenden advertisement
advertising advertise sponsored anzeige werbung cookie cookies privacy datenschutz terms consent
einwilligung reprint reprints permission permissions license licensing contact kontakt email mail tags tag
categories category kategorie kategorien schlagwörter filed related more mehr weitere read watch listen
print printed""")
RELATED_WORDS = _words("""related more also see read next previous recommended popular latest trending
top stories topics topic weitere weiteres mehr auch lesen weiterlesen themen thema artikel beiträge
interessieren interessant empfehlungen neueste meistgelesen también relacionadas relacionados relacionado
relacionada notas mira mirá puedes ver interesar lee leer más aussi lire voir articles similaires plus
anche leggi altri""")
CONTACT_WORDS = _words("""contact kontakt tel telefon phone fax mail email e ansprechpartner ansprechpartnerin
pressesprecher pressesprecherin pressekontakt redaktion editor reporter correspondent writer author autor
autorin follow twitter""")
LEGAL_WORDS = _words("""copyright rights reserved license licence licensed lizenz cc reprint reprints
permission disclaimer affiliate affiliates werbung anzeige advertisement advertiser advertisers sponsored
sponsor compensation commission provision quelle source sources quellen bildquelle titelbild beitragsbild
foto photo credit gewähr haftung terms conditions datenschutz privacy policy cookies""")
LOGIN_WORDS = _words("""login log logged sign signed register registered registrieren registriert
anmelden angemeldet eingeloggt einloggen account konto member members mitglied subscriber abonnent
password passwort""")
MEDIA_WORDS = _words("""photo photos image images picture pictures foto fotos bild bilder video videos
gallery galerie slideshow credit credits getty reuters ap afp dpa epa shutterstock istock courtesy
illustration""")
_SMALL = _words("a an the of on in at to for and or but by vs via with from as is are")
STOPWORDS = _words("""
the a an and or but of to in on at for with from by as is are was were be been has have had it its this
that these those he she they we you i his her their our not no will would can could said says also than
then there which who what when where how after before about into over more most just only very
der die das und oder aber ein eine einen einem einer nicht mit von zu im in am auf für ist sind war
waren wird werden hat haben sich es er sie wir ich auch als bei nach aus noch wie dass den dem des
le la les un une et ou mais de du des au aux en dans sur pour par avec est sont était a ont il elle
ils nous vous je ne pas que qui ce cette ces plus se sa son leurs
el los las y o pero del al en con por para es son fue ha han lo que se su sus una uno como más
il lo gli i e o ma di da del della nel con per è sono che non si una uno come più anche
het een en of maar van in op met voor is zijn was heeft hebben niet dat die ook als bij naar
o a os as e ou mas do da dos das em no na com por para é são foi que não se um uma como mais
""")

FEATURE_NAMES = (
    "rel_pos", "log_from_start", "log_from_end", "log_n_lines", "char_pos", "pos_in_block", "log_block_len",
    "log_chars", "log_words", "short", "tiny",
    "end_sentence", "end_colon", "end_none", "end_question", "first_upper", "first_digit", "cap_share",
    "title_case", "allcaps_share", "stop_share", "story", "comma_rate", "digit_share", "punct_share",
    "pipe_sep",
    "url", "email", "handle", "hashtag", "list_marker", "markdown", "date_like", "time_like", "ago",
    "copyright", "comment_word", "cta_word", "media_word", "related_word", "contact_word", "legal_word",
    "login_word", "cue_prefix",
    "title_sim", "after_title",
    "short_run", "list_run",
    "comment_hdr", "after_comment_hdr", "log_since_hdr",
    "story_before", "story_after", "after_last_story", "log_dist_story",
    "rule_removed", "rule_comments", "rule_links", "rule_prompt", "rule_meta", "cut_frac", "rule_near",
    "rule_after_share",
    "recur",
    "prev_log_words", "prev_end_sentence", "prev_short", "prev_list_marker", "prev_rule_removed",
    "prev_story",
    "next_log_words", "next_end_sentence", "next_short", "next_list_marker", "next_rule_removed",
    "next_story",
    "story_win",
    "indent", "indent_share", "dup_in_doc", "rel_chars",
    "in_main", "log_before_main", "log_after_main",
    "short_win3", "list_win3", "story_win3", "cue_win3", "title_case_win3", "tiny_win3",
    "prev2_story", "next2_story", "prev_comment_word", "next_comment_word", "prev_cta_word", "next_cta_word",
)
N_FEATURES = len(FEATURE_NAMES)
_F = {name: i for i, name in enumerate(FEATURE_NAMES)}

# Rule-cleaner categories grouped for the rule-hit features.
RULE_GROUPS = {
    "comments": ("comments", "comment_prompt"),
    "links": ("related_links", "navigation", "promo"),
    "prompt": ("share_social", "newsletter", "login_prompt", "notification_prompt", "paywall", "donation_appeal",
               "contact_prompt", "cookie_notice"),
    "meta": ("caption", "photo_credit", "credit", "byline", "dateline", "reading_time", "syndication",
             "copyright", "affiliate_disclosure", "ad_marker", "markup", "learned"),
}
_CAT_GROUP = {c: g for g, cs in RULE_GROUPS.items() for c in cs}

# ------------------------------------------------------------------- lexicon and character classes
_VERBS = _words("""is are was were be been being am has have had do does did will would can could shall should
may might must said says say told tells tell added adds according announced reported wrote think thinks
believe know knew want wants make makes made get gets got take takes took go goes went come comes came see
sees saw find finds found give gives gave show shows showed need needs use uses become became seem seems
include includes expect expects plan plans called calls asked asks warned warns""")
_LISTS = (("stop", STOPWORDS), ("small", _SMALL), ("verb", _VERBS), ("month", MONTHS), ("ago", AGO_WORDS),
          ("copy", COPY_WORDS), ("comment", COMMENT_WORDS), ("cta", CTA_WORDS), ("media", MEDIA_WORDS),
          ("related", RELATED_WORDS), ("contact", CONTACT_WORDS), ("legal", LEGAL_WORDS),
          ("login", LOGIN_WORDS), ("ampm", _words("am pm a.m. p.m. uhr h")))
_LB = {name: k for k, (name, _) in enumerate(_LISTS)}
# word -> bitmask of the lists holding it; also the forms with common punctuation glued on, so that a
# line's whitespace tokens can be looked up without stripping each one.
_LEX: dict[str, int] = {}
for _k, (_name, _ws) in enumerate(_LISTS):
    for _w in _ws:
        for _form in (_w, _w + ":", _w + ",", _w + ".", _w + "?", _w + "!", _w + ";", "(" + _w, _w + ")",
                      "\"" + _w, _w + "\"", "“" + _w, _w + "”", "„" + _w, "»" + _w, _w + "«", "#" + _w):
            _LEX[_form] = _LEX.get(_form, 0) | (1 << _k)
_LEXKEYS = frozenset(_LEX)
# counts per list are summed as 6-bit fields of one Python int per line (list k at bits 6k..6k+5; a
# line has far fewer than 64 distinct tokens of one list in the first ... it is clipped at 63 anyway)
_LEXPACK = {w: sum(1 << (6 * k) for k in range(len(_LISTS)) if m >> k & 1) for w, m in _LEX.items()}
_HALF = 7  # lists 0..6 in the low 42 bits, 7..13 in the high ones
_LOW42 = (1 << (6 * _HALF)) - 1
_SHIFTS = np.arange(_HALF, dtype=np.int64) * 6

# character classes, one column each: a table over code points (rarer scripts: "other letter")
_CC = ("upper", "lower", "alpha", "digit", "punct", "comma", "sep", "at", "hash", "sent_end", "close_quote",
       "close_other", "colon", "question")
_TBL_N = 0x3000


def _char_table() -> np.ndarray:
    t = np.zeros((_TBL_N + 1, len(_CC)), dtype=np.uint8)
    for c in range(_TBL_N):
        ch = chr(c)
        if ch == "\n":
            continue
        t[c] = (ch.isupper(), ch.islower(), ch.isalpha(), ch.isdigit(), not (ch.isalnum() or ch.isspace()),
                ch == ",", ch in "|·•", ch == "@", ch == "#", ch in ".!?…", ch in "\"”’»", ch in "')]",
                ch == ":", ch == "?")
    t[_TBL_N, 2] = 1  # beyond the table: a letter of a caseless script
    return t


_TABLE = _char_table()
# Packed count tables: the first 8 class columns (the ones counted per line) as four 16-bit fields of a
# uint64, two tables; "#" is only tested for presence, with `in`.
_SHIFT16 = np.arange(4, dtype=np.uint64) * np.uint64(16)
_COUNT_TABLES = tuple(
    (_TABLE[:, 4 * j:4 * j + 4].astype(np.uint64) << _SHIFT16).sum(axis=1).astype(np.uint64) for j in range(2))
# bit 0: letter or digit; bit 1: capitalised-word initial (upper or digit); bit 2: lowercase
_ALNUM = ((_TABLE[:, 2] | _TABLE[:, 3]) | ((_TABLE[:, 0] | _TABLE[:, 3]) << 1) | (_TABLE[:, 1] << 2)).astype(np.uint8)
# weight of a word start: 1 in field 0, +1 in field 1 if capitalised, +1 in field 2 if lowercase
_WS_WEIGHT = np.array([1 + (((a >> 1) & 1) << 16) + (((a >> 2) & 1) << 32) for a in range(8)], dtype=np.uint64)
# A line may start a list item only with a marker character or a digit (ASCII digits only here, as
# always: the features of lines opening with other scripts' digits stay what the model was trained on).
_LIST_FIRST = frozenset(MARKER_CHARS + "0123456789")


def _doc_base(cores: list[str], markers: np.ndarray, need: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The per-line columns of the non-blank lines `cores` (stripped, list marker removed), computed for
    the whole document at once: character classes through one table look-up, counts per line through
    np.add.reduceat, word lists through one set intersection per line.

    `need` (bool per line, None: all): the lines whose own columns are read. Elsewhere only the columns
    that other lines' features read are exact (the story test, the comment-section header, the counts
    and shapes); the word lists and the regular expressions, most of the cost, are skipped there."""
    n = len(cores)
    doc = "\n".join(cores)
    cp = np.frombuffer(doc.encode("utf-32-le"), dtype=np.uint32)
    lens = np.fromiter(map(len, cores), dtype=np.intp, count=n)
    ends = np.cumsum(lens + 1) - 1  # index of each line's "\n" (one past the end of the document last)
    starts = ends - lens
    cpc = np.minimum(cp, _TBL_N)
    # counts per line of 8 character classes through 2 one-dimensional reduceat calls over packed
    # 16-bit fields (a line of more than 65,535 characters of one class would carry over; not a news line)
    sums = [np.add.reduceat(t[cpc], starts) for t in _COUNT_TABLES]
    cnt = np.empty((n, 4 * len(sums)), dtype=np.float64)
    for j, sm in enumerate(sums):
        cnt[:, 4 * j:4 * j + 4] = (sm[:, None] >> _SHIFT16) & 0xFFFF
    # word starts (a letter/digit after a non-letter/digit), capitalised and lowercase ones
    ac = _ALNUM[cpc]
    ws = ac & 1
    ws[1:] &= ~ac[:-1] & 1
    wsum = np.add.reduceat(ws.astype(np.uint64) * _WS_WEIGHT[ac], starts)
    wc = ((wsum[:, None] >> _SHIFT16[:3]) & 0xFFFF).astype(np.float64)
    nc = lens.astype(np.float64)
    nw, w_cap, w_low = wc[:, 0], wc[:, 1], wc[:, 2]
    last = _TABLE[cpc[ends - 1]]
    prev = _TABLE[cpc[np.maximum(starts, ends - 2)]]
    fcls = _TABLE[cpc[starts]]
    end_sent = (last[:, 9] | last[:, 10] | (last[:, 11] & prev[:, 9])).astype(bool)
    # word lists: distinct whitespace tokens of each line, counts summed as packed fields
    dl = casefold_text(doc)  # once: the word lists and the URL test both read it
    low = dl.split("\n")
    get = _LEXPACK.__getitem__
    if need is None:
        packs = [sum(map(get, _LEXKEYS.intersection(line.split()))) for line in low]
    else:
        # Outside the needed lines a word list is read only by `story`, and only by its verb test, where
        # length, sentence end and case do not decide it already.
        undecided = (nw >= 8) & end_sent & (2 * w_low < nw) & (cnt[:, 0] + cnt[:, 1] > 0)
        packs = [0] * n
        for i in np.flatnonzero(need | undecided).tolist():
            packs[i] = sum(map(get, _LEXKEYS.intersection(low[i].split())))
    lo = np.array([x & _LOW42 for x in packs], dtype=np.int64)
    hi = np.array([x >> (6 * _HALF) for x in packs], dtype=np.int64)
    L = np.empty((n, len(_LISTS)))
    L[:, :_HALF] = (lo[:, None] >> _SHIFTS) & 63
    L[:, _HALF:] = (hi[:, None] >> _SHIFTS[: len(_LISTS) - _HALF]) & 63
    lx = {name: L[:, k] for name, k in _LB.items()}
    safe_w = np.maximum(nw, 1.0)
    story = (nw >= 8) & end_sent & ((2 * w_low >= nw) | (lx["verb"] > 0) | (cnt[:, 0] + cnt[:, 1] == 0))
    nbig = nw - lx["small"]
    z = np.zeros
    out = {
        "log_chars": np.log1p(nc), "log_words": np.log1p(nw), "short": nw <= 6, "tiny": nw <= 2,
        "end_sentence": end_sent, "end_colon": last[:, 12], "end_none": last[:, 2] | last[:, 3],
        "end_question": last[:, 13], "first_upper": fcls[:, 0], "first_digit": fcls[:, 3],
        "cap_share": w_cap / safe_w,
        "title_case": (nw >= 3) & (nbig > 0) & (w_cap >= 0.8 * nbig),
        "allcaps_share": cnt[:, 0] / np.maximum(1.0, cnt[:, 2]) * (cnt[:, 0] >= 2),
        "stop_share": lx["stop"] / safe_w, "story": story,
        "comma_rate": cnt[:, 5] / safe_w, "digit_share": cnt[:, 3] / nc, "punct_share": cnt[:, 4] / nc,
        "pipe_sep": cnt[:, 6], "list_marker": markers,
        "date_like": z(n), "time_like": z(n), "url": z(n), "email": z(n), "handle": z(n), "hashtag": z(n),
        "markdown": fcls[:, 8] | (fcls[:, 6] & last[:, 6]),
        "ago": (lx["ago"] > 0) & (cnt[:, 3] > 0), "copyright": lx["copy"] > 0,
        "comment_word": np.where(nw <= 12, np.minimum(3, lx["comment"]), 0.0),
        "cta_word": np.minimum(3, lx["cta"]), "media_word": np.minimum(3, lx["media"]),
        "related_word": np.where(nw <= 20, np.minimum(3, lx["related"]), 0.0),
        "contact_word": np.minimum(3, lx["contact"]), "legal_word": np.minimum(3, lx["legal"]),
        "login_word": np.minimum(3, lx["login"]), "cue_prefix": z(n), "comment_hdr": z(n),
    }
    # the few regular expressions, only on the lines that hold their trigger (Python lists: no numpy
    # scalar indexing in the loop)
    has_digit, has_at = cnt[:, 3] > 0, cnt[:, 7] > 0
    has_hash = np.fromiter(("#" in c for c in cores), dtype=bool, count=n) if "#" in doc else np.zeros(n, bool)
    digits, at, hashes = has_digit.tolist(), has_at.tolist(), has_hash.tolist()
    nwl = nw.tolist()
    month = (lx["month"] > 0).tolist()
    ampm = (lx["ampm"] > 0).tolist()
    date_like, time_like, email, handle, hashtag, cue, hdr = ([0.0] * n for _ in range(7))
    n_of_m = [0.0] * n
    # only the lines one of the tests below can fire on (a long line without a digit, @ or # has none)
    fire = has_digit | has_at | has_hash | (nw <= 25)
    if need is not None:
        # elsewhere only the comment-section header is read (by every line below it)
        for i in np.flatnonzero(~need & (nw <= 12)).tolist():
            hdr[i] = float(_COMMENT_HDR.match(cores[i]) is not None)
        fire &= need
    for i in np.flatnonzero(fire).tolist():
        core = cores[i]
        w = nwl[i]
        if digits[i]:
            if month[i] or _NUM_DATE.search(core):
                date_like[i] = 1.0
            if (ampm[i] or ":" in core or "." in core) and _TIME.search(core):
                time_like[i] = 1.0
            if w <= 8 and _N_OF_M.search(core):
                n_of_m[i] = 1.0
        if at[i]:
            email[i] = float(_EMAIL.search(core) is not None)
            handle[i] = float(_HANDLE.search(core) is not None)
        if hashes[i]:
            hashtag[i] = float(_HASHTAG.search(core) is not None)
        if w <= 25 and ":" in core[:40]:
            cue[i] = float(_cue_prefix(core))
        if w <= 12:
            hdr[i] = float(_COMMENT_HDR.match(core) is not None)
    out.update(date_like=date_like, time_like=time_like, email=email, handle=handle, hashtag=hashtag,
               cue_prefix=cue, comment_hdr=hdr)
    out["media_word"] = np.minimum(3, out["media_word"] + np.asarray(n_of_m))
    if "http" in dl or "www." in dl or ".com" in dl or ".htm" in dl:
        out["url"] = [float("http" in x or "www." in x or ".com" in x or ".htm" in x) for x in low]
    if "©" in doc:
        out["copyright"] = out["copyright"] | np.array(["©" in c for c in cores])
    if "**" in doc:
        out["markdown"] = out["markdown"] | np.array(["**" in c for c in cores])
    return out


def _cue_prefix(core: str) -> bool:
    """A kicker before a link title ("Read more: <title>", "See also: <title>", in any language): a colon
    within the first four words (no digits: not a time or a score), a rest of >= 11 characters that does
    not close with a full stop."""
    colon = core.find(":", 0, 40)
    if colon <= 0 or core.endswith(".") or len(core) - colon < 12:
        return False
    head = core[:colon].split()
    return 1 <= len(head) <= 4 and not any(c.isdigit() for c in core[:colon])


def _set_blocks(F: np.ndarray, gap: np.ndarray, rows: np.ndarray) -> None:
    """The block features of every line: `gap` marks the first line of each block, `rows` is each line's
    row (so that its place in the block is its row minus the block's first row)."""
    block_id = np.cumsum(gap) - 1
    block_start = np.flatnonzero(gap)
    block_len = np.bincount(block_id).astype(np.float64)
    F[:, _F["pos_in_block"]] = np.log1p(rows - block_start[block_id])
    F[:, _F["log_block_len"]] = np.log1p(block_len[block_id])


# Cost of one non-story line inside the main block, in story characters: a block may bridge a few short
# lines (subheads, captions) between paragraphs, not a list of teasers.
_MAIN_GAP_COST = 120.0


def _main_block(story_chars: np.ndarray) -> tuple[int, int]:
    """[a, b] (inclusive) maximising the sum of story characters minus _MAIN_GAP_COST per non-story line
    (Kadane); (-1, -1) without a story line."""
    best, best_ab = 0.0, (-1, -1)
    cur, start = 0.0, 0
    for i, v in enumerate(story_chars.tolist()):
        gain = v if v > 0 else -_MAIN_GAP_COST
        if cur <= 0:
            cur, start = gain, i
        else:
            cur += gain
        if cur > best:
            best, best_ab = cur, (start, i)
    return best_ab


_WIN3 = [_F[k + "_win3"] for k in ("short", "list", "story", "cue", "title_case", "tiny")]


def _strip_list_markers(cores: list[str]) -> np.ndarray:
    """Cut a leading list marker ("- ", "1. ", "• ") off each line in place (not off a line that is only a
    marker); 1.0 where one was cut."""
    markers = np.zeros(len(cores))
    for k, c in enumerate(cores):
        if c[:1] in _LIST_FIRST:
            m = LIST_MARKER.match(c)
            if m is not None and m.end() < len(c):
                markers[k] = 1
                cores[k] = c[m.end():]
    return markers


def line_features(lines: Sequence[str], *, rule_cats: Sequence[str] | None = None,
                  cut_frac: Sequence[float] | None = None, recur: Sequence[float] | None = None) -> np.ndarray:
    """Feature matrix (len(lines), N_FEATURES) for one document; blank lines give zero rows.

    rule_cats: per line, the rule cleaner's category of a whole-line removal ("" or None = kept);
    cut_frac: per line, share of the line cut out by span rules; recur: per line, recurrence of the line
    for its publisher (any non-negative score; absent = 0). The one-document case of
    `line_features_batch`: one implementation, so training and cleaning cannot drift apart.
    """
    X, _ = line_features_batch([lines], rule_cats=None if rule_cats is None else [rule_cats],
                               cut_frac=None if cut_frac is None else [cut_frac],
                               recur=None if recur is None else [recur])
    return X


# --------------------------------------------------------------------------------- many documents
def _seg_window_sum(v: np.ndarray, half: int, lo_bound: np.ndarray, hi_bound: np.ndarray) -> np.ndarray:
    """Sum of v over [i - half, i + half] without v[i] (v a column, or columns side by side), for all
    documents at once: the window of line i is clipped to [lo_bound[i], hi_bound[i]) (its document's rows).
    The sums are of 0/1 values, so the global cumulative sum is exact."""
    c = np.zeros((len(v) + 1, *v.shape[1:]))
    np.cumsum(v, axis=0, out=c[1:])
    i = np.arange(len(v))
    lo = np.maximum(lo_bound, i - half)
    hi = np.minimum(hi_bound, i + half + 1)
    out: np.ndarray = c[hi] - c[lo] - v
    return out


def _seg_run_lengths(flag: np.ndarray, first: np.ndarray) -> np.ndarray:
    """For each line, the length of the run of True values holding it (0 where False); runs do not cross
    a document's first line (`first`)."""
    f = flag.astype(bool)
    start = f.copy()
    start[1:] &= ~f[:-1] | first[1:]
    run_id = np.cumsum(start) - 1
    out = np.zeros(len(f))
    if f.any():
        ids = run_id[f]
        out[f] = np.bincount(ids)[ids]
    return out


def _set_neighbours(F: np.ndarray, names: Sequence[str], first: np.ndarray, last: np.ndarray) -> None:
    """`prev_<name>` and `next_<name>` of each stacked line: its neighbour's value within its own document,
    0 at the document's first (prev) and last (next) line."""
    n = len(F)
    for name in names:
        v = F[:, _F[name]]
        prev = np.zeros(n)
        prev[1:] = v[:-1]
        prev[first] = 0.0
        nxt = np.zeros(n)
        nxt[:-1] = v[1:]
        nxt[last] = 0.0
        F[:, _F["prev_" + name]] = prev
        F[:, _F["next_" + name]] = nxt


def line_features_batch(docs: Sequence[Sequence[str]], *,
                        rule_cats: Sequence[Sequence[str]] | None = None,
                        cut_frac: Sequence[Sequence[float]] | None = None,
                        recur: Sequence[Sequence[float]] | None = None,
                        rows: Sequence[Sequence[int]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The features of many documents in one pass: (X, offsets), where X[offsets[k]:offsets[k + 1]] are
    the rows of docs[k] (with rule_cats[k], cut_frac[k], recur[k]: see `line_features`), the same values
    however the documents are batched (tests/text/test_linefeatures_batch.py).

    `rows` (per document, indexes into its lines): only these rows are read, so only they are exact.
    The word lists and regular expressions then run on them and the lines within `_REACH` of them;
    elsewhere only what other lines' features read (`_doc_base`). The cleaner scores ~1 line in 20 of
    a generated 4 KB text (bench/bench_clean.py).

    Why: per document the work is a few hundred small numpy calls, whose fixed cost outweighs the lines'
    own; here every column is computed once over the non-blank lines of all documents stacked, the
    windows, runs, cumulative shares and neighbours clipped to each line's document."""
    n_docs = len(docs)
    sizes = np.fromiter((len(d) for d in docs), dtype=np.intp, count=n_docs)
    offsets = np.zeros(n_docs + 1, dtype=np.intp)
    np.cumsum(sizes, out=offsets[1:])
    X = np.zeros((int(offsets[-1]), N_FEATURES), dtype=np.float32)
    # the non-blank lines of all documents, in order: their row in X (ga) and their document (d)
    all_lines = [s for lines in docs for s in lines]
    stripped = [s.strip() for s in all_lines]
    keep = np.fromiter(map(bool, stripped), dtype=bool, count=len(stripped))
    ga = np.flatnonzero(keep)
    n = len(ga)
    if n == 0:
        return X, offsets
    d = np.repeat(np.arange(n_docs), sizes)[ga]
    raws = list(itertools.compress(all_lines, keep))
    cores = list(itertools.compress(stripped, keep))
    markers = _strip_list_markers(cores)
    # per line: its document's first and end row in the stack, its count of lines, its row in it
    cnt_doc = np.bincount(d, minlength=n_docs)
    doc_first = np.zeros(n_docs + 1, dtype=np.intp)
    np.cumsum(cnt_doc, out=doc_first[1:])
    lo_b, hi_b = doc_first[d], doc_first[d + 1]
    need = None if rows is None else _needed(rows, offsets, ga, lo_b, hi_b)
    F = np.zeros((n, N_FEATURES))
    for name, v in _doc_base(cores, markers, need).items():  # line by line: the same on any stack of lines
        F[:, _F[name]] = v
    col = lambda name: F[:, _F[name]]  # noqa: E731
    g = np.arange(n)
    r = (g - lo_b).astype(np.float64)
    nd = (hi_b - lo_b).astype(np.float64)
    first = g == lo_b
    last = g == hi_b - 1
    F[:, _F["rel_pos"]] = r / np.maximum(1, nd - 1)
    F[:, _F["log_from_start"]] = np.log1p(r)
    F[:, _F["log_from_end"]] = np.log1p(nd - 1 - r)
    # math.log1p per document, as line_features does (not numpy's: the last bit may differ)
    F[:, _F["log_n_lines"]] = np.asarray([math.log1p(x) for x in cnt_doc.tolist()])[d]
    chars = np.fromiter((len(c) for c in cores), dtype=np.float64, count=n)
    cc = np.zeros(n + 1)
    np.cumsum(chars, out=cc[1:])
    doc_chars = cc[doc_first[1:]] - cc[doc_first[:-1]]
    F[:, _F["char_pos"]] = (cc[g] - cc[lo_b]) / np.maximum(1.0, doc_chars[d])
    # blocks: split where a blank line sits between two non-blank lines, and at each document's start
    gap = np.ones(n, dtype=bool)
    gap[1:] = (np.diff(ga) > 1) | first[1:]
    _set_blocks(F, gap, g)
    short_ns = (col("log_words") <= math.log1p(12)) & (col("end_sentence") == 0)
    F[:, _F["short_run"]] = np.log1p(_seg_run_lengths(short_ns, first))
    F[:, _F["list_run"]] = np.log1p(_seg_run_lengths(col("list_marker") > 0, first))
    # comment section onset: the last header at or above the line, in its document
    hdr = col("comment_hdr") > 0
    if hdr.any():
        seen = np.maximum.accumulate(np.where(hdr, g, -1))
        above = (seen >= lo_b) & ~hdr
        F[:, _F["after_comment_hdr"]] = above
        F[:, _F["log_since_hdr"]] = np.where(above, np.log1p(g - seen), 0.0)
    # story context
    story = col("story") > 0
    sf = story.astype(np.float64)
    cs0 = np.zeros(n + 1)
    np.cumsum(sf, out=cs0[1:])
    cs = cs0[g + 1] - cs0[lo_b]
    F[:, _F["story_before"]] = (cs - sf) / np.maximum(1, r)
    F[:, _F["story_after"]] = (cs0[hi_b] - cs0[lo_b] - cs) / np.maximum(1, nd - 1 - r)
    sp = np.flatnonzero(story)
    has_story = (cs0[hi_b] - cs0[lo_b]) > 0
    if len(sp):
        pos = np.searchsorted(sp, g)
        nxt = sp[np.minimum(pos, len(sp) - 1)]
        prv = sp[np.maximum(pos - 1, 0)]
        d_next = np.where((pos < len(sp)) & (nxt < hi_b), nxt - g, 1e3)
        d_prev = np.where((pos > 0) & (prv >= lo_b), g - prv, 1e3)
        last_story = np.maximum.accumulate(np.where(story, g, -1))[hi_b - 1]  # per line: its document's
        F[:, _F["after_last_story"]] = np.where(has_story, g > last_story, 1.0)
        F[:, _F["log_dist_story"]] = np.log1p(np.minimum(d_next, d_prev))
    else:
        F[:, _F["after_last_story"]] = 1.0
        F[:, _F["log_dist_story"]] = np.log1p(1e3)
    # rule hits
    if rule_cats is not None:
        flat_cats = [c for cs_k in rule_cats for c in cs_k]
        if len(flat_cats) != len(all_lines):
            raise ValueError("line_features_batch: rule_cats must have one entry per line of each document")
        cats = [c or "" for c in itertools.compress(flat_cats, keep)]
        rem = np.fromiter((bool(c) for c in cats), dtype=np.float64, count=n)
        F[:, _F["rule_removed"]] = rem
        grp = [_CAT_GROUP.get(c) for c in cats]
        for gname in ("comments", "links", "prompt", "meta"):
            F[:, _F["rule_" + gname]] = [x == gname for x in grp]
        F[:, _F["rule_near"]] = _seg_window_sum(rem, 3, lo_b, hi_b) / 6.0
        rc0 = np.zeros(n + 1)
        np.cumsum(rem, out=rc0[1:])
        F[:, _F["rule_after_share"]] = (rc0[hi_b] - rc0[g + 1]) / np.maximum(1, nd - 1 - r)
    for name, per_doc in (("cut_frac", cut_frac), ("recur", recur)):
        if per_doc is not None:
            flat = np.zeros(int(offsets[-1]))
            for k, vals in enumerate(per_doc):
                if len(vals) != sizes[k]:
                    raise ValueError(f"line_features_batch: {name} must have one entry per line of each document")
                if len(vals):
                    flat[offsets[k]:offsets[k + 1]] = np.asarray(vals, dtype=np.float64)
            F[:, _F[name]] = flat[ga]
    # neighbours (0 beyond the document)
    _set_neighbours(F, ("log_words", "end_sentence", "short", "list_marker", "rule_removed", "story"), first, last)
    F[:, _F["story_win"]] = _seg_window_sum(sf, 2, lo_b, hi_b) / 4.0
    _layout_batch(F, cores, raws, sf, r, d, lo_b, hi_b, first, last, doc_first, n_docs)
    X[ga] = F
    return X, offsets


# How far (in non-blank lines, within its document) a line's features read another line's word-list and
# regular-expression columns: the 3-line windows (cue_win3, title_case_win3) and the neighbours.
_REACH = 3


def _needed(rows: Sequence[Sequence[int]], offsets: np.ndarray, ga: np.ndarray, lo_b: np.ndarray,
            hi_b: np.ndarray) -> np.ndarray:
    """Per stacked non-blank line: is it one of `rows` (per document) or within _REACH of one?"""
    n = len(ga)
    need = np.zeros(n, dtype=bool)
    if len(rows) != len(offsets) - 1:
        raise ValueError("line_features_batch: rows must have one entry per document")
    flat = np.asarray([int(offsets[k]) + i for k, rs in enumerate(rows) for i in rs], dtype=np.intp)
    if not len(flat):
        return need
    # the stacked index of each requested row (a blank line has none: nothing of it is read)
    at = np.searchsorted(ga, flat)
    at = at[(at < n) & (ga[np.minimum(at, n - 1)] == flat)]
    for step in range(-_REACH, _REACH + 1):
        t = at + step
        ok = (t >= lo_b[at]) & (t < hi_b[at])
        need[t[ok]] = True
    return need


def _layout_batch(F: np.ndarray, cores: list[str], raws: list[str], story: np.ndarray, r: np.ndarray,
                  d: np.ndarray, lo_b: np.ndarray, hi_b: np.ndarray, first: np.ndarray, last: np.ndarray,
                  doc_first: np.ndarray, n_docs: int) -> None:
    """The layout, main-block and wider-window columns of a stack of documents (in place): per-document
    shares, medians, main blocks and windows. d: each line's document; lo_b/hi_b: its document's rows;
    r: its row in it."""
    n = len(cores)
    col = lambda name: F[:, _F[name]]  # noqa: E731
    ind = (np.fromiter(map(len, raws), dtype=np.float64, count=n)
           - np.fromiter(map(len, map(str.lstrip, raws)), dtype=np.float64, count=n))
    F[:, _F["indent"]] = np.log1p(ind)
    n_doc = np.diff(doc_first).astype(np.float64)
    indented = np.bincount(d, weights=(ind > 0).astype(np.float64), minlength=n_docs)
    with np.errstate(invalid="ignore", divide="ignore"):  # documents without a non-blank line
        F[:, _F["indent_share"]] = (indented / n_doc)[d]
    keys = list(zip(d.tolist(), cores, strict=True))
    counts = Counter(keys)
    F[:, _F["dup_in_doc"]] = np.minimum(3, np.fromiter(map(counts.__getitem__, keys), dtype=np.float64, count=n) - 1)
    lc = col("log_chars")
    # each document's median of log_chars (the mean of the middle two for an even count): sorted within
    # the document, then picked
    srt = lc[np.lexsort((lc, d))]
    nonempty = n_doc > 0
    cnt = np.diff(doc_first)[nonempty]
    base = doc_first[:-1][nonempty]
    hi_mid = srt[base + cnt // 2]
    lo_mid = srt[base + np.maximum(cnt // 2 - 1, 0)]
    med = np.zeros(n_docs)
    med[nonempty] = np.where(cnt % 2 == 1, hi_mid, (lo_mid + hi_mid) / 2)
    F[:, _F["rel_chars"]] = lc - med[d]
    # main block, per document (Kadane is a scan); documents without a story line: before it all along
    sc = np.where(story > 0, np.expm1(lc), 0.0)
    a_of = np.full(n_docs, -1.0)
    b_of = np.full(n_docs, -1.0)
    has = np.bincount(d, weights=story, minlength=n_docs) > 0
    for k in np.flatnonzero(has).tolist():
        a, b = _main_block(sc[doc_first[k]:doc_first[k + 1]])
        a_of[k], b_of[k] = a, b
    a_l, b_l = a_of[d], b_of[d]
    inside = a_l >= 0
    F[:, _F["in_main"]] = inside & (r >= a_l) & (r <= b_l)
    nd = (hi_b - lo_b).astype(np.float64)
    F[:, _F["log_before_main"]] = np.where(inside, np.log1p(np.maximum(0.0, a_l - r)), np.log1p(nd - r))
    F[:, _F["log_after_main"]] = np.where(inside, np.log1p(np.maximum(0.0, r - b_l)), 0.0)
    cue = ((col("cta_word") + col("related_word") + col("comment_word") + col("contact_word") + col("cue_prefix"))
           > 0).astype(np.float64)
    V = np.column_stack((col("short"), col("list_marker"), story, cue, col("title_case"), col("tiny")))
    F[:, _WIN3] = _seg_window_sum(V, 3, lo_b, hi_b) / 6.0
    g = np.arange(n)
    F[2:, _F["prev2_story"]] = story[:-2]
    F[:, _F["prev2_story"]] *= g - 2 >= lo_b
    F[:-2, _F["next2_story"]] = story[2:]
    F[:, _F["next2_story"]] *= g + 2 < hi_b
    _set_neighbours(F, ("comment_word", "cta_word"), first, last)

