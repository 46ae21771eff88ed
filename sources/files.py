"""Bytes from files: safe open, bounded reads, gzip by its magic bytes, file signatures, content ids.

Limits are per *document*: decompression is bounded by `ReadConfig.max_bytes`, so a gzip bomb is
stopped after that many bytes, never inflated in full.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import io
import os
import stat
import zlib
from typing import IO, Any, Protocol

from newsetl.schemas.records import STAGE_READ, Rejection
from newsetl.sources.reasons import BAD_GZIP, NOT_FOUND, NOT_REGULAR_FILE, TOO_LARGE, UNREADABLE, display_path, reject

# File signatures of formats that are never articles: refused with their name, not "looks binary".
MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or docx/xlsx/epub)"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"BZh", "a bzip2 stream"),
    (b"\xfd7zXZ\x00", "an xz stream"),
    (b"\x28\xb5\x2f\xfd", "a zstd stream"),
    (b"\x7fELF", "an ELF executable"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"RIFF", "a RIFF media file"),
    (b"\x00\x00\x00 ftyp", "an MP4/MOV video"),
    (b"\x1aE\xdf\xa3", "a Matroska/WebM video"),
    (b"OggS", "an Ogg media file"),
    (b"wOFF", "a web font"),
    (b"wOF2", "a web font"),
)

GZIPMAGIC = b"\x1f\x8b"


class TooLarge(Exception):
    """More bytes than the limit allows (after decompression)."""


class Refused(Exception):
    """An input that cannot be opened as a regular file; carries its rejection."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.detail)
        self.rejection = rejection


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


def sha256_hex(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
        h.update(b"\x00")  # separator, so ("ab","c") and ("a","bc") differ
    return h.hexdigest()


def open_regular(path: str) -> tuple[IO[bytes], os.stat_result]:
    """Open a regular file for reading, refusing FIFOs, devices, sockets and directories.

    O_NONBLOCK: opening a FIFO for reading would otherwise block until a writer appears, which
    stalls the run forever. The type is checked on the open descriptor (fstat), so a file swapped
    for something else between listing and opening is caught too.
    """
    uri = display_path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise Refused(
            reject(
                uri,
                STAGE_READ,
                NOT_FOUND,
                f"{uri} does not exist (removed after it was listed, or a dangling link)",
            )
        ) from None
    except PermissionError as exc:
        raise Refused(
            reject(uri, STAGE_READ, UNREADABLE, f"permission denied reading {uri}: {exc}")
        ) from None
    except IsADirectoryError:
        raise Refused(reject(uri, STAGE_READ, NOT_REGULAR_FILE, f"{uri} is a directory")) from None
    except OSError as exc:
        reason = UNREADABLE
        detail = f"cannot open {uri}: {exc.strerror or exc}"
        if exc.errno == errno.ELOOP:
            detail = f"cannot open {uri}: symbolic link loop"
        raise Refused(reject(uri, STAGE_READ, reason, detail)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            what = (
                "a directory"
                if stat.S_ISDIR(st.st_mode)
                else "a named pipe"
                if stat.S_ISFIFO(st.st_mode)
                else "a device"
                if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
                else "a socket"
                if stat.S_ISSOCK(st.st_mode)
                else "not a regular file"
            )
            raise Refused(
                reject(uri, STAGE_READ, NOT_REGULAR_FILE, f"{uri} is {what}; only regular files are read")
            )
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb", closefd=True), st
    except BaseException:
        os.close(fd)
        raise

def held_size(path: str) -> int:
    """About how many bytes reading `path` puts in memory: its size inflated when it is gzip (what a
    read group is bounded by; 22 MB of gzipped HTML pages are 109 MB of HTML). The gzip trailer gives
    the inflated size of the last member, exact for a one-member file; for a many-member file (a WARC)
    it is one record's, so the size on disk is the floor. 0 for what cannot be stat'ed (a URL)."""
    try:
        # Stat first: open() of a named pipe blocks until a writer comes, and this runs before
        # open_regular() refuses it (with its own reason) at read.
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            return 0
        size = st.st_size
        if size < 18:
            return size
        with open(path, "rb") as fh:
            if fh.read(2) != GZIPMAGIC:
                return size
            fh.seek(-4, os.SEEK_END)
            return max(size, int.from_bytes(fh.read(4), "little"))
    except OSError:
        return 0


def maybe_gunzip(fh: IO[bytes]) -> IO[bytes]:
    """A stream of the file's content: gunzipped when it starts with the gzip magic.

    The magic decides, not the name: a `.txt.gz` that is plain text is read as text, and a `.txt`
    that is really gzip (a server's Content-Encoding saved to disk) is inflated.
    """
    head = fh.peek(2)[:2] if hasattr(fh, "peek") else b""
    if head == GZIPMAGIC:
        return gzip.GzipFile(fileobj=fh)  # type: ignore[return-value]
    return fh

def read_upto(stream: Readable, limit: int, chunk: int) -> tuple[bytes, bool]:
    """Up to `limit` bytes (a chunk more when the stream is longer) and whether that was all of it: a
    caller that can go on streaming (a large .json) keeps what was read."""
    out = bytearray()
    while block := stream.read(chunk):
        out += block
        if len(out) > limit:
            return bytes(out), False
    return bytes(out), True


class Rewritten(io.RawIOBase):
    """The bytes of `raw`, read a block at a time and handed on as `_rewrite` makes them of each block
    (it may hold bytes back for the next one): a stream to put between a file and a parser."""

    def __init__(self, raw: Readable, block: int) -> None:
        self._raw = raw
        self._block = block
        self._out = memoryview(b"")
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._out and not self._done:
            chunk = self._raw.read(self._block) or b""
            self._done = not chunk
            self._out = memoryview(self._rewrite(chunk, final=self._done))
        n = min(len(buffer), len(self._out))
        buffer[:n] = self._out[:n]
        self._out = self._out[n:]
        return n

    def _rewrite(self, chunk: bytes, *, final: bool) -> bytes:
        raise NotImplementedError


def too_large(limit: int) -> str:
    return f"the input is larger than the limit of {limit} bytes (after decompression)"


def read_bounded(stream: Readable, limit: int, chunk: int) -> bytes:
    data, complete = read_upto(stream, limit, chunk)
    if not complete:
        raise TooLarge(too_large(limit))
    return data


def inflate(data: bytes, limit: int, chunk: int, where: str) -> bytes | Rejection:
    """Bytes that start with the gzip magic, inflated (bounded by `limit`); others as they are.

    The one place where in-memory gzip is undone (a payload, an HTTP body, a record's bytes), so the
    bound and the rejection reasons are the same everywhere."""
    if not data.startswith(GZIPMAGIC):
        return data
    try:
        return read_bounded(gzip.GzipFile(fileobj=io.BytesIO(data)), limit, chunk)
    except TooLarge as exc:
        return reject(where, STAGE_READ, TOO_LARGE, str(exc))
    except (EOFError, OSError, zlib.error) as exc:
        return reject(where, STAGE_READ, BAD_GZIP, f"corrupt or truncated gzip data in {where}: {exc}", raw=data)


def magic_name(data: bytes) -> str | None:
    for magic, name in MAGIC:
        if data.startswith(magic):
            return name
    if data[4:8] == b"ftyp":
        return "an MP4/MOV video"
    return None
