"""Discover: expand paths, directories, globs and `@list` files into the inputs of a run."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from newsetl.schemas.records import STAGE_DISCOVER, Rejection
from newsetl.sources.reasons import BAD_SOURCES_FILE, NOT_FOUND, reject

TEXT_SUFFIXES = {".txt", ".text"}

HTML_SUFFIXES = {".html", ".htm", ".xhtml", ".shtml"}

JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}

WARC_SUFFIXES = {".warc", ".arc"}

URL_PREFIXES = ("http://", "https://")


def discover(sources: Iterable[str]) -> tuple[list[str], list[Rejection]]:
    """Expand paths, directories (recursive), globs and `@list` files into a sorted list of inputs.

    URLs are passed through unchanged (fetched by `read_path`). `@FILE` names a sources file: one
    path, glob or URL per line, `#` comments, relative paths relative to that file (like
    `wget -i`). A file reached twice (through symlinks, overlapping globs) is listed once, under
    its first path in sorted order. A source that matches nothing is a rejection, not a silent
    no-op: a typo in a schedule's parameters must show up somewhere.
    """
    found: dict[str, str] = {}  # identity (real path or URL) -> path as given, made absolute
    rejections: list[Rejection] = []
    for source in _expand_lists(sources, rejections):
        if source.startswith(URL_PREFIXES):
            found.setdefault(source, source)
            continue
        matches = glob.glob(source, recursive=True) if glob.has_magic(source) else [source]
        if not matches:
            rejections.append(reject(source, STAGE_DISCOVER, NOT_FOUND, f"no file matches {source!r}"))
            continue
        for match in sorted(matches):
            path = Path(match).absolute()
            if path.is_dir():
                for name, identity in _walk(path):
                    _add(found, name, identity)
            elif path.exists() or path.is_symlink():
                _add(found, str(path))  # dangling links and special files are refused by read_path
            else:
                rejections.append(reject(str(path), STAGE_DISCOVER, NOT_FOUND, f"{path} does not exist"))
    return sorted(set(found.values())), rejections

def _add(found: dict[str, str], path: str, identity: str | None = None) -> None:
    if identity is None:
        try:
            identity = os.path.realpath(path)
        except (OSError, ValueError):
            identity = path
    if identity not in found or path < found[identity]:
        found[identity] = path

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
            elif entry.startswith(URL_PREFIXES) or os.path.isabs(entry):
                yield entry
            else:
                yield str(list_path.parent / entry)

def _walk(root: Path) -> Iterator[tuple[str, str]]:
    """(path, identity) of every file below root. The identity (real path) is resolved once per
    directory, and per file only for symlinks: realpath on every file of a 100,000-file drop folder
    was most of a re-run's time (4 of 13 s)."""
    # followlinks=False: a symlink loop cannot recurse forever; linked *files* are still read.
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        base = str(Path(dirpath).absolute())
        real_base = os.path.realpath(dirpath)
        try:
            with os.scandir(dirpath) as entries:
                links = {e.name for e in entries if e.is_symlink()}
        except OSError:
            links = set(filenames)  # cannot tell: resolve each one
        for name in sorted(filenames):
            if not name.startswith("."):  # editor swap files, .DS_Store: not inputs
                path = os.path.join(base, name)
                yield path, (os.path.realpath(path) if name in links else os.path.join(real_base, name))

def kind_of(path: str) -> tuple[str, bool]:
    """Return (kind, gzipped) from the name: kind is txt | html | jsonl | warc | url | unknown."""
    if path.startswith(URL_PREFIXES):
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
