"""Discover: expand paths, directories, globs and `@list` files into the inputs of a run."""

from __future__ import annotations

import glob
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from newsetl.schemas.records import STAGE_DISCOVER, Rejection
from newsetl.sources.reasons import (
    BAD_SOURCES_FILE,
    BAD_URL,
    NOT_FOUND,
    SYMLINKED_FOLDER,
    UNREADABLE,
    display_path,
    reject,
)

TEXT_SUFFIXES = {".txt", ".text"}

HTML_SUFFIXES = {".html", ".htm", ".xhtml", ".shtml"}

JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}

WARC_SUFFIXES = {".warc", ".arc"}

URL_PREFIXES = ("http://", "https://")
# "scheme://" of RFC 3986: a source written so is meant as a URL, whether or not newsetl fetches its scheme.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(source: str) -> bool:
    """An http(s) URL, its scheme in any case ("HTTP://host/" is a URL, as a browser reads it)."""
    return source[:8].lower().startswith(URL_PREFIXES)


def url_scheme(source: str) -> str | None:
    """The scheme of anything written as a URL (ftp, file, s3 ...), None for a path."""
    m = _SCHEME.match(source)
    return m.group()[:-3].lower() if m else None


def unsupported_scheme(source: str, scheme: str) -> str:
    return f"{source}: {scheme}:// URLs are not read; newsetl fetches http:// and https:// (a file: give its path)"


def discover(sources: Iterable[str], leave_out: Callable[[str], bool] | None = None
             ) -> tuple[list[str], list[Rejection]]:
    """Expand paths, directories (recursive), globs and `@list` files into a sorted list of inputs.

    `leave_out(path)`: files a folder or a glob reaches that are not inputs (the files the run itself
    writes, when its warehouse is inside an ingested folder); a file named as a source is kept.

    URLs are passed through unchanged (fetched by `read_path`). `@FILE` names a sources file: one
    path, glob or URL per line, `#` comments, relative paths relative to that file (like
    `wget -i`). A file reached twice (through symlinks, overlapping globs) is listed once, under
    its first path in sorted order. A source that matches nothing is a rejection, not a silent
    no-op: a typo in a schedule's parameters must show up somewhere.
    """
    found: dict[str, str] = {}  # identity (real path or URL) -> path as given, made absolute
    rejections: list[Rejection] = []
    for source in _expand_lists(sources, rejections):
        if is_url(source):
            found.setdefault(source, source)
            continue
        matches = expand_glob(source) if glob.has_magic(source) else [source]
        if not matches:
            rejections.append(reject(source, STAGE_DISCOVER, NOT_FOUND, f"no file matches {source!r}"))
            continue
        named = matches == [source]
        for match in sorted(matches):
            path = absolute(match)
            if leave_out is not None and not named and leave_out(str(path)):
                continue
            if path.is_dir():
                for name, identity in _walk(path, rejections):
                    if leave_out is None or not leave_out(name):
                        _add(found, name, identity)
            elif path.exists() or path.is_symlink():
                _add(found, str(path))  # dangling links and special files are refused by read_path
            elif (scheme := url_scheme(source)) is not None:
                rejections.append(reject(source, STAGE_DISCOVER, BAD_URL, unsupported_scheme(source, scheme)))
            else:
                rejections.append(reject(str(path), STAGE_DISCOVER, NOT_FOUND, f"{path} does not exist"))
    return sorted(set(found.values())), rejections

def settling(paths: Sequence[str], min_age: float, now: float | None = None) -> tuple[list[str], list[str]]:
    """(paths to read now, files modified less than `min_age` seconds before `now`: left for a later run).

    A drop folder's producer may still be writing a file when a scheduled run lists it: read then, half a page
    loaded as an article and the whole one later as a second version (a user trial). A file that has not
    changed for `min_age` seconds is taken as complete. URLs and files that cannot be stat'ed (reading says
    why) are never held back; `min_age` 0 holds back nothing."""
    if min_age <= 0:
        return list(paths), []
    now = time.time() if now is None else now
    ready: list[str] = []
    young: list[str] = []
    for path in paths:
        try:
            modified = os.stat(path).st_mtime if "://" not in path else None
        except OSError:
            modified = None
        (young if modified is not None and now - modified < min_age else ready).append(path)
    return ready, young


def expand_glob(pattern: str) -> list[str]:
    """The paths `pattern` matches, `**` being any depth of folders, as `glob.glob(pattern, recursive=True)`
    but that `**` never descends into a symlinked folder (as a folder source is walked, `_walk`): Python's
    `**` follows them, and a folder with two links to itself (`a -> .`, `b -> .`) made the paths grow
    exponentially: a user's `newsetl ingest 'in/**/*.txt'` ran for 10 minutes at 1.2 GB and found
    nothing. A symlinked file matches, and so does a link a pattern names without `**` (bounded depth)."""
    parts = Path(pattern).parts
    if "**" not in parts:
        return glob.glob(pattern)
    at = parts.index("**")
    head = str(Path(*parts[:at])) if at else "."
    rest = str(Path(*parts[at + 1:])) if at + 1 < len(parts) else ""
    bases = [b for b in (glob.glob(head) if glob.has_magic(head) else [head]) if os.path.isdir(b)]
    if not rest:
        # `in/**`: the folders themselves; walking one finds every file below it, under the same rules
        # (listing each subfolder too made the walk of every file repeat once per folder above it).
        return bases
    out: list[str] = []
    for base in bases:
        for dirpath, dirnames, _ in os.walk(base, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))  # as glob's ** skips them
            if not at:  # a pattern starting with ** is relative to here: "sub/x", not "./sub/x"
                dirpath = dirpath.removeprefix("./").removeprefix(".")
            out.extend(expand_glob(os.path.join(glob.escape(dirpath), rest) if dirpath else rest))
    return out


def absolute(path: str) -> Path:
    """`path` made absolute with its "." and ".." folded away (`os.path.abspath`), so that one file given
    as `../in/a.txt` from one folder and as `/data/in/a.txt` from another is one source, known to the
    next run (`Path.absolute` kept the "..": the second run read every file again as new inputs). Where
    folding changes what the path names (a symlinked folder before a ".."), it is kept as given."""
    given = Path(path).absolute()
    folded = Path(os.path.abspath(path))
    if folded != given and os.path.realpath(given) != os.path.realpath(folded):
        return given
    return folded


def _add(found: dict[str, str], path: str, identity: str | None = None) -> None:
    if identity is None:
        try:
            identity = os.path.realpath(path)
        except (OSError, ValueError):
            identity = path
    if identity not in found or path < found[identity]:
        found[identity] = path

_URL_COMMENT = re.compile(r"\s+#.*$")


def _expand_lists(sources: Iterable[str], rejections: list[Rejection]) -> Iterator[str]:
    for source in sources:
        if not source.startswith("@"):
            yield source
            continue
        list_path = Path(source[1:]).absolute()
        try:
            lines = list_path.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            rejections.append(
                reject(
                    str(list_path),
                    STAGE_DISCOVER,
                    BAD_SOURCES_FILE,
                    f"cannot read the sources file {list_path}: {exc}",
                )
            )
            continue
        for line in lines:
            entry = line.strip()
            if not entry or entry.startswith("#"):
                continue
            if entry.startswith("@"):  # no nesting: a list naming itself would never end
                rejections.append(
                    reject(
                        entry,
                        STAGE_DISCOVER,
                        BAD_SOURCES_FILE,
                        f"{list_path} names another sources file {entry!r}; not supported",
                    )
                )
            elif is_url(entry) or url_scheme(entry):
                # A URL holds no white space, so " # ..." after one is a comment (fetched as "%20#..." before, a
                # user trial); a path may hold both ("Notes #2.txt") and is taken whole.
                yield _URL_COMMENT.sub("", entry)
            elif os.path.isabs(entry):
                yield entry
            else:
                yield str(list_path.parent / entry)

def _walk(root: Path, rejections: list[Rejection]) -> Iterator[tuple[str, str]]:
    """(path, identity) of every file below root. The identity (real path) is resolved once per
    directory, and per file only for symlinks: realpath on every file of a 100,000-file drop folder
    was most of a re-run's time (4 of 13 s). A folder that cannot be listed is a rejection: its files
    are inputs nobody would otherwise hear of."""

    def unlisted(exc: OSError) -> None:
        where = display_path(str(exc.filename or root))
        rejections.append(reject(where, STAGE_DISCOVER, UNREADABLE,
                                 f"cannot list the folder {where}: {exc.strerror or exc}"))

    # followlinks=False: a symlink loop cannot recurse forever; linked *files* are still read.
    for dirpath, dirnames, filenames in os.walk(root, onerror=unlisted, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        base = str(absolute(dirpath))
        real_base = os.path.realpath(dirpath)
        try:
            with os.scandir(dirpath) as entries:
                links = {e.name for e in entries if e.is_symlink()}
        except OSError:
            links = set(filenames)  # cannot tell: resolve each one
        # A linked folder is not walked into (it could loop, or reach far outside the folder given), but it
        # is said: a user who linked a feed's folder into the drop folder saw nothing at all (a user trial).
        # A skip, not a refusal: nothing is wrong with it, and named as a source it is read.
        for name in dirnames:
            if name in links:
                where = display_path(os.path.join(base, name))
                rejections.append(reject(where, STAGE_DISCOVER, SYMLINKED_FOLDER,
                                         f"{where} is a symlinked folder, not followed while walking "
                                         f"{display_path(str(root))}: name it as a source to read it"))
        for name in sorted(filenames):
            if not name.startswith("."):  # editor swap files, .DS_Store: not inputs
                path = os.path.join(base, name)
                yield path, (os.path.realpath(path) if name in links else os.path.join(real_base, name))

def kind_of(path: str) -> tuple[str, bool]:
    """Return (kind, gzipped) from the name: kind is txt | html | jsonl | warc | url | unknown."""
    if is_url(path):
        return "url", False
    name = path.lower()
    gz = name.endswith(".gz")
    if gz:
        name = name[:-3]
    suffix = os.path.splitext(name)[1]
    if suffix in TEXT_SUFFIXES:
        return "txt", gz
    if suffix in HTML_SUFFIXES:
        return "html", gz
    if suffix in JSONL_SUFFIXES:
        return "jsonl", gz
    if suffix in WARC_SUFFIXES:
        return "warc", gz
    return "unknown", gz
