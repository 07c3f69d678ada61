"""The bytes of a data file as chunks of whole lines, in bounded memory.

:class:`ChunkSource` is what every reader of line-based data files builds on (the LibSVM
parser today; streaming and a disk cache later):

- opening: gzip and bzip2 content is decompressed transparently (recognised by its first
  bytes, whatever the file name); a pipe of plain text works for one pass. Corrupt or
  truncated compressed data is a :class:`~sparsetrain.base.DataFormatError` naming the file
  (and the line where the data stops), not a decompressor's exception; a UTF-8 byte order mark
  first is skipped, for every reader and format (the chunks start after it; offsets stay the file's);
- chunks: :meth:`ChunkSource.chunks` yields ``(buf, offset)``, np.uint8 buffers of about
  ``chunk_size`` bytes that end with a newline (one is added after a last line that lacks it,
  which parsers use as a sentinel). A plain file is memory-mapped and the chunks are views of
  the page cache; other sources are read into chunk buffers. A line longer than a chunk makes
  a larger chunk, up to ``max_line_bytes``: a longer line is an error with file:line, so that
  ``/dev/zero`` or a small ``.gz`` holding one huge line cannot exhaust memory;
- parts: :meth:`ChunkSource.part_range` splits the (decompressed) content into ``num_parts``
  byte ranges aligned to line starts, which together hold every line exactly once;
- positions: newlines and data rows before an offset, and the offset of the n-th data row.
"""
from __future__ import annotations

import bz2
import collections
import contextlib
import ctypes
import errno
import gzip
import io
import mmap
import os
import stat
import sys
import zlib

import numpy as np

from ..base import DataFormatError
from . import _libsvm_kernels as K
from .base import DEFAULT_CHUNK_SIZE, DEFAULT_MAX_LINE_BYTES, display_name

__all__ = ["DEFAULT_CHUNK_SIZE", "DEFAULT_MAX_LINE_BYTES", "STREAM_CHUNK_SIZE", "ChunkSource", "open_data", "estimate_rows", "populate"]

#: Bytes per chunk of a streaming iterator: small enough that the chunks in flight (parsed ahead,
#: and the pieces built from them) stay a small, fixed share of memory whatever the file size
#: (streaming one epoch peaks 260-275 MiB above the model, 30-45 more than with 4 MiB chunks; the
#: target is 300), large enough that the per-chunk work on the training thread (a kernel call's
#: set-up, cutting pieces, the hand-over between threads) stays small: with the parse in 2 MiB pages
#: the trainer is a batch-1 epoch's longer side, and 8 MiB chunks took 1.5-2 ms less of its CPU and
#: were faster than 4 MiB in 6 of 7 processes at batch 1, 4 of 5 at batch 256 (RESULTS.md, session 35).
STREAM_CHUNK_SIZE = 8 << 20

_GZIP_MAGIC = b"\x1f\x8b"
_BZ2_MAGIC = b"BZh"
# archives, compressions and text encodings not read: named, instead of "label '\xfd7zXZ...' is not a
# number" (a byte order mark of UTF-32 before UTF-16's, which it starts with)
_DECOMPRESS = "decompress it first"
_UNREAD_MAGIC = {b"\xfd7zXZ\x00": ("xz data", _DECOMPRESS), b"\x28\xb5\x2f\xfd": ("zstd data", _DECOMPRESS),
                 b"PK\x03\x04": ("zip data", _DECOMPRESS), b"7z\xbc\xaf\x27\x1c": ("7z data", _DECOMPRESS),
                 b"\x04\x22\x4d\x18": ("lz4 data", _DECOMPRESS),
                 b"\xff\xfe\x00\x00": ("UTF-32 text", "save it as UTF-8 (iconv -f UTF-32 -t UTF-8)"),
                 b"\x00\x00\xfe\xff": ("UTF-32 text", "save it as UTF-8 (iconv -f UTF-32 -t UTF-8)"),
                 b"\xff\xfe": ("UTF-16 text", "save it as UTF-8 (iconv -f UTF-16 -t UTF-8)"),
                 b"\xfe\xff": ("UTF-16 text", "save it as UTF-8 (iconv -f UTF-16 -t UTF-8)")}


def estimate_rows(path: str, sample: int = 1 << 16) -> int | None:
    """About how many lines ``path`` has: its size over the mean length of its first lines (``sample``
    bytes). A compressed file (known by its first bytes, as :func:`open_data` does): the lines of its
    first :data:`STREAM_CHUNK_SIZE` bytes decompressed when the content ends there, else None (its size
    is not known without decompressing it all). None for an unreadable file."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(sample)
        if head.startswith((_GZIP_MAGIC, _BZ2_MAGIC)):
            with (gzip.open if head.startswith(_GZIP_MAGIC) else bz2.open)(path, "rb") as f:
                head = f.read(STREAM_CHUNK_SIZE + 1)
            if len(head) > STREAM_CHUNK_SIZE:
                return None
            size = len(head)
    except (OSError, EOFError, zlib.error):
        return None
    lines = head.count(b"\n")
    if size <= len(head):
        return lines + (1 if head and not head.endswith(b"\n") else 0)
    return int(size * max(lines, 1) / max(len(head), 1))


def _refuse_unread(path, head: bytes) -> None:
    for magic, (kind, fix) in _UNREAD_MAGIC.items():
        if head.startswith(magic):
            raise DataFormatError(f"{display_name(path)}: {kind}; sparsetrain reads UTF-8 text, .gz and .bz2: {fix}")


def refuse_unread_pipe(path, head: bytes) -> None:
    """A ``DataFormatError`` for a pipe whose first bytes (``head``: 6, or all of a shorter pipe) are
    compressed (a pipe is read once: not decompressed) or of a format not read; also called by a reader
    that reads a pipe's first line itself (the CSV header)."""
    if head[:2] == _GZIP_MAGIC or head[:3] == _BZ2_MAGIC:
        raise DataFormatError(f"{display_name(path)}: compressed data from a pipe is not supported; "
                              "pipe it through zcat/bzcat or give the file")
    _refuse_unread(path, head)


_SCAN_CHUNK = 8 << 20  # chunk size of the counting passes

#: ``madvise``'s advice to map a range's pages into the process now (Linux 5.14+), as reading each
#: page would, in one call instead of one page fault per few pages.
_MADV_POPULATE_READ = 22
_madvise = None  # libc's madvise (through ctypes, which lets other threads run meanwhile), or False
_populate = True  # False once MADV_POPULATE_READ proved unknown (an older kernel: the parse faults the pages in)


def _libc_madvise():
    """libc's ``madvise`` (Linux), or False."""
    global _madvise
    if _madvise is None:
        _madvise = False
        if sys.platform.startswith("linux"):
            try:
                fn = ctypes.CDLL(None, use_errno=True).madvise
                fn.argtypes, fn.restype = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int), ctypes.c_int
                _madvise = fn
            except (OSError, AttributeError):
                pass
    return _madvise


def _of_a_map(view) -> bool:
    """Whether ``view`` (np.uint8) is a view of a memory map (a plain file's chunk)."""
    base = view.base
    while isinstance(base, np.ndarray):
        base = base.base
    return isinstance(base, memoryview) and isinstance(base.obj, mmap.mmap)


def populate(view) -> None:
    """Map the pages of ``view``, a chunk of a memory-mapped file, into the process in one call before
    it is parsed: a streaming reader maps every page of the file again on every pass (its pages are
    released after parsing), and one ``MADV_POPULATE_READ`` costs less CPU than the page faults the
    parse would take instead (session 33 of benchmarks/RESULTS.md). Nothing for a buffer that is not
    a view of a map, nor where the advice is unknown: a kernel that does not know it (EINVAL, ENOSYS)
    turns it off for the process; another failure (an I/O error reading this file's pages) is this
    chunk's, whose parse then faults its pages in (and meets the error) as without the advice."""
    global _populate
    if not _populate or not _libc_madvise() or not len(view) or not _of_a_map(view):
        return
    start = view.ctypes.data
    lo = start - start % mmap.PAGESIZE
    if _madvise(lo, start + len(view) - lo, _MADV_POPULATE_READ) != 0 and ctypes.get_errno() in (errno.EINVAL,
                                                                                                 errno.ENOSYS):
        _populate = False  # an older kernel: the parse faults the pages in as it reads them


def release(view) -> None:
    """Take the pages of ``view``, page-aligned bytes of a memory-mapped file that its reader is done
    with, out of the process (libc's ``MADV_DONTNEED``; read again, they come back from the file
    unchanged). :meth:`ChunkSource.chunks` hands such views to a ``release`` of its caller where libc's
    ``madvise`` is at hand: a streaming pipeline's parser threads call this, rather than its consumer (a
    streamed epoch's trainer) unmapping ~1,000 pages a chunk itself. (Refused, which Linux does not do for
    these pages, they would stay until the pass ends and its map closes.)"""
    _madvise(view.ctypes.data, len(view), mmap.MADV_DONTNEED)


#: where a streaming pass releases a mapped file's pages: at the boundaries of whole 2 MiB huge pages in the
#: process's addresses, whose one-entry mapping a release that ends inside would split into 512 small ones.
#: (Linux places a map of 2 MiB or more at such a boundary, so they are the file's 2 MiB offsets, where its
#: page cache's huge folios start; a map placed elsewhere maps no huge page whole, and any boundary does.)
_RELEASE_ALIGN = 2 << 20


#: a streaming pass's first chunk is this share of the chunk size (the others whole). Nothing trains before the
#: first chunk is parsed, on the training thread as a rule (it waits for it; 8 MiB took ~2.8 ms at batch 1); a
#: parser thread parses the second meanwhile, and a second chunk up to twice the first is parsed by the time the
#: trainer is done with the first (parsing and training a byte take about as long at batch 1): half a chunk
#: first halves the wait and adds one chunk a pass (benchmarks/RESULTS.md, session 36)
_FIRST_STREAM_CHUNK = 0.5


def _huge_pages(mm: mmap.mmap) -> None:
    """Ask for ``mm``'s file pages in huge pages (``MADV_HUGEPAGE``, Linux): pages read from the file
    through the map from now on (not yet in the page cache) are read in 2 MiB folios, which map into the
    process (``populate``) and leave it (``release``) by one page-table entry each instead of 512. On the
    benchmark's 142 MiB file in 4 KiB pages, a streaming pass's populate and release took ~12 + ~5.5 ms of
    CPU; in 2 MiB folios ~0.2 + ~0.1 (benchmarks/RESULTS.md, session 35, pipe). Pages already cached stay
    as they are; nothing where the advice is unknown."""
    advice = getattr(mmap, "MADV_HUGEPAGE", None)
    if advice is not None:
        try:
            mm.madvise(advice)
        except OSError:
            pass


def open_data(path):
    """Open ``path`` for binary reading, decompressing gzip or bzip2 content transparently
    (recognised by its magic bytes, whatever the file name). An uncompressed pipe works too.
    A UTF-8 byte order mark first (Excel's CSV, Windows tools) is skipped: it is no part of the
    first line. Read errors of compressed data are raised as they come; :class:`ChunkSource` turns
    them into :class:`DataFormatError`."""
    return _open_data(path)[0]


#: The byte order mark Excel and other Windows tools put first in a UTF-8 text file.
UTF8_BOM = b"\xef\xbb\xbf"


def _open_data(path):
    """:func:`open_data`'s file, and the bytes of the byte order mark it skipped (0 or 3)."""
    raw = open(path, "rb", buffering=0)
    try:
        if raw.seekable():
            head = raw.read(6)
            raw.seek(0)
            f = raw
            _refuse_unread(path, head)
        else:  # a pipe: look at the first bytes without consuming them
            f = io.BufferedReader(raw)
            head = f.peek(6)[:6]
            refuse_unread_pipe(path, head)  # (_refuse_unread's checks too)
    except BaseException:
        raw.close()
        raise
    if head[:2] == _GZIP_MAGIC or head[:3] == _BZ2_MAGIC:
        raw.close()
        opener = gzip.open if head[:2] == _GZIP_MAGIC else bz2.open
        f = opener(path, "rb")
        try:
            head = f.peek(len(UTF8_BOM))[:len(UTF8_BOM)]
        except Exception as e:
            f.close()
            if not _is_decompression_error(e):
                raise
            return opener(path, "rb"), 0  # corrupt: its first read says so, naming the file and line (ChunkSource)
    skipped = len(UTF8_BOM) if head.startswith(UTF8_BOM) else 0
    if skipped:
        f.read(skipped)
    return f, skipped


@contextlib.contextmanager
def opened_data(path):
    """:func:`open_data` as a ``with`` block in which a read of corrupt or truncated compressed data
    is one :class:`DataFormatError` naming ``path`` (for the readers of a file's first lines; a
    :class:`ChunkSource` also names the line where the readable data stops)."""
    with open_data(path) as f:
        try:
            yield f
        except Exception as e:
            if not _is_decompression_error(e) or _compression(f) is None:
                raise
            raise DataFormatError(f"{display_name(path)}: corrupt or truncated {_compression(f)} data "
                                  f"({str(e) or type(e).__name__})") from None


def _compression(f) -> str | None:
    if isinstance(f, gzip.GzipFile):
        return "gzip"
    if isinstance(f, bz2.BZ2File):
        return "bzip2"
    return None


def _is_decompression_error(e: BaseException) -> bool:
    """A decompressor's complaint about its input (EOFError: truncated; BadGzipFile, zlib.error,
    bz2's OSError without errno: corrupt), as opposed to an I/O error of the disk."""
    return isinstance(e, (EOFError, zlib.error, gzip.BadGzipFile)) or (isinstance(e, OSError) and e.errno is None)


class _Reader:
    """An open data file whose reads raise DataFormatError for corrupt compressed data; the
    message names the file and the line where the readable data stops."""

    def __init__(self, path, max_line_bytes: int):
        self.path = os.fspath(path)
        self.f, self.start = _open_data(path)  # start: the first byte after a byte order mark
        self.compression = _compression(self.f)
        self.max_line_bytes = max_line_bytes
        self.lines_read = 0  # newlines in the bytes handed out so far (counted on demand)

    def close(self) -> None:
        self.f.close()

    def mappable(self) -> bool:
        """A plain regular file (not compressed, not a pipe or device) can be memory-mapped."""
        return self.compression is None and stat.S_ISREG(os.fstat(self.f.fileno()).st_mode)

    def _failed(self, e: BaseException, after_line: int | None = None) -> DataFormatError:
        after = f" after line {after_line}" if after_line else ""
        reason = str(e) or type(e).__name__
        return DataFormatError(f"{display_name(self.path)}: corrupt or truncated {self.compression} data{after} "
                               f"({reason})")

    def readinto_full(self, mv, lines_before=None) -> int:
        """Fill ``mv`` unless the data ends first; returns the bytes read. ``lines_before()``
        counts the complete lines before these bytes, for the message if the compressed data
        turns out corrupt."""
        total, n = 0, len(mv)
        try:
            while total < n:
                got = self.f.readinto(mv[total:])
                if not got:
                    break
                total += got
        except Exception as e:
            if self.compression is None or not _is_decompression_error(e):
                raise
            raise self._failed(e, lines_before() if lines_before else None) from None
        return total

    def seek(self, offset: int) -> None:
        try:
            self.f.seek(offset)  # a compressed stream decompresses up to offset
        except Exception as e:
            if self.compression is None or not _is_decompression_error(e):
                raise
            raise self._failed(e, None) from None


class ChunkSource:
    """The (decompressed) bytes of the data file ``path``, read as chunks of whole lines.

    Nothing is opened until a method needs it; each :meth:`chunks` call reads the file again
    (a pipe can be read once).
    """

    def __init__(self, path, chunk_size: int = DEFAULT_CHUNK_SIZE, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES):
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        if (isinstance(max_line_bytes, bool) or not isinstance(max_line_bytes, (int, np.integer))
                or max_line_bytes < 1):
            raise ValueError(f"max_line_bytes must be a positive integer, got {max_line_bytes!r}")
        self.path = path
        self.chunk_size = int(chunk_size)
        self.max_line_bytes = int(max_line_bytes)
        self._size: int | None = None

    @property
    def name(self) -> str:
        """The file as messages name it (stdin, opened as ``/dev/stdin``: ``<stdin>``)."""
        return display_name(self.path)

    def _open(self) -> _Reader:
        return _Reader(self.path, self.max_line_bytes)

    def is_regular_file(self) -> bool:
        return stat.S_ISREG(os.stat(self.path).st_mode)

    def mappable(self) -> bool:
        """Whether the chunks are views of a memory map (a plain, uncompressed regular file).
        Never opens a pipe."""
        if not self.is_regular_file():
            return False
        r = self._open()
        try:
            return r.mappable()
        finally:
            r.close()

    # -- sizes and ranges ------------------------------------------------------------------
    def size(self) -> int:
        """Size in bytes of the (decompressed) content."""
        if self._size is None:
            r = self._open()
            try:
                if r.mappable():
                    self._size = os.fstat(r.f.fileno()).st_size
                else:
                    buf = memoryview(bytearray(1 << 20))
                    total = 0
                    while got := r.readinto_full(buf):
                        total += got
                    self._size = r.start + total
            finally:
                r.close()
        return self._size

    def line_start_at_or_after(self, x: int) -> int:
        """The first offset >= ``x`` where a line starts (``size()`` if none)."""
        size = self.size()
        if x <= 0:
            return 0
        if x >= size:
            return size
        r = self._open()
        try:
            r.seek(x - 1)
            pos = x - 1
            block = np.empty(1 << 16, np.uint8)
            while True:
                got = r.readinto_full(memoryview(block))
                if not got:
                    return size
                j = K.first_newline(block[:got], 0)
                if j >= 0:
                    return pos + j + 1
                pos += got
        finally:
            r.close()

    def part_range(self, num_parts: int, part_index: int) -> tuple[int, int | None]:
        """(begin, end_hint) of part ``part_index``: it holds the lines that start in
        ``[s, e)`` with ``s = size * part_index // num_parts`` and ``e`` likewise, so that the
        parts together hold every line exactly once. ``end_hint`` is None for the last part."""
        if num_parts == 1:
            return 0, None
        size = self.size()
        s = size * part_index // num_parts
        e = size * (part_index + 1) // num_parts
        begin = self.line_start_at_or_after(s)
        if part_index == num_parts - 1:
            return begin, None
        if begin >= e:
            return begin, begin  # no line starts in [s, e)
        return begin, e

    # -- chunks ----------------------------------------------------------------------------
    def chunks(self, begin: int = 0, end_hint: int | None = None, release_after: int = 0, release=None):
        """Yield ``(buf, offset)``: np.uint8 buffers of whole lines from ``begin`` on, each
        ending with a newline. With ``end_hint`` the chunks stop after the line that holds
        byte ``end_hint - 1``. Raises DataFormatError for a line longer than
        ``max_line_bytes`` (only where it does not fit in a chunk: parsers check the rest)
        and for corrupt compressed data. ``release_after`` > 0 (a streaming reader that is done
        with a chunk once ``release_after`` more were handed out): the pages of a memory-mapped
        file's older chunks leave the process, so its resident memory does not grow with the file (and its
        first chunk is smaller: :data:`_FIRST_STREAM_CHUNK`); ``release(view)``: who takes them out
        (:func:`release` on another thread), else this generator."""
        if end_hint is not None and end_hint <= begin:
            return
        r = self._open()
        try:
            if r.mappable():
                yield from self._mapped_chunks(r, begin, end_hint, release_after, release if _libc_madvise() else None)
            else:
                yield from self._read_chunks(r, begin, end_hint)
        finally:
            r.close()

    def _line_too_long(self, line: int) -> DataFormatError:
        return DataFormatError(f"{self.name}:{line}: line is longer than max_line_bytes={self.max_line_bytes}")

    def _chunk_end(self, arr, pos: int, stop: int, size: int) -> int:
        """Where the chunk of ``arr`` that starts at line start ``pos`` ends: after the last
        newline within ``size`` bytes, or after the line that does not fit."""
        target = pos + size
        if target >= stop:
            return stop
        j = K.last_newline(arr[pos:target])
        if j >= 0:
            return pos + j + 1
        limit = min(stop, pos + self.max_line_bytes + 1)  # a line longer than a chunk
        j = K.first_newline(arr[:limit], target)
        if j < 0 and limit < stop:
            raise self._line_too_long(K.count_newlines(arr[:pos]) + 1)
        return stop if j < 0 else j + 1

    def _mapped_chunks(self, r: _Reader, begin: int, end_hint: int | None, release_after: int = 0, release=None):
        """Views of a memory map of a plain file, no copies. (A copy-on-write mapping, so that
        the views are ordinary writable arrays for the kernels; nothing writes to them, so a
        released page that were read again would come back from the file unchanged.)"""
        size = os.fstat(r.f.fileno()).st_size
        if begin >= size:
            return
        mm = mmap.mmap(r.f.fileno(), 0, access=mmap.ACCESS_COPY)
        _huge_pages(mm)
        arr = np.frombuffer(mm, dtype=np.uint8)
        try:
            stop = size
            if end_hint is not None and end_hint < size:
                j = K.first_newline(arr, end_hint - 1)
                stop = size if j < 0 else j + 1
            pos = begin or r.start
            starts: collections.deque = collections.deque()
            shift = arr.ctypes.data % _RELEASE_ALIGN  # the map's start past a huge page boundary (0 as a rule)

            def boundary(offset):  # the last huge page boundary at or before ``offset`` (in the map)
                return max(0, offset - (offset + shift) % _RELEASE_ALIGN)

            released = boundary(begin)
            chunk = max(1, int(self.chunk_size * _FIRST_STREAM_CHUNK)) if release_after else self.chunk_size
            while pos < stop:
                end = self._chunk_end(arr, pos, stop, chunk)
                chunk = self.chunk_size
                piece = arr[pos:end]
                if piece[-1] != 10:  # the last line lacks its newline: add one to a copy
                    if end - pos > self.max_line_bytes:
                        raise self._line_too_long(K.count_newlines(arr[:pos]) + 1)
                    piece = np.append(piece, np.uint8(10))
                yield piece, pos
                starts.append(pos)
                if release_after and len(starts) > release_after:
                    starts.popleft()  # that chunk is parsed and checked: its pages can go
                    upto = boundary(starts[0])
                    if upto > released:
                        if release is None:
                            mm.madvise(mmap.MADV_DONTNEED, released, upto - released)
                        else:
                            release(arr[released:upto])
                        released = upto
                pos = end
        finally:
            del arr
            try:
                mm.close()
            except BufferError:
                pass  # a chunk is still referenced (an abandoned parse); the map goes with it

    def _read_chunks(self, r: _Reader, begin: int, end_hint: int | None):
        """Chunks read into buffers (compressed data, pipes, devices). A buffer holds the
        previous read's unfinished line (``carry``) and is grown for a long line up to
        ``max_line_bytes``."""
        if begin:
            r.seek(begin)
        base = begin or r.start
        carry = None
        lines = 0  # newlines handed out, for the messages of a long line or corrupt data
        while True:
            clen = 0 if carry is None else len(carry)
            cap = max(self.chunk_size, min(2 * clen, self.max_line_bytes + 1))
            buf = np.empty(cap + 1, np.uint8)  # + room for a final newline
            if clen:
                buf[:clen] = carry
            n = clen + r.readinto_full(memoryview(buf)[clen:cap],
                                       lambda: self._line_at(begin, lines + K.count_newlines(buf[:clen])))
            eof = n < cap
            if end_hint is not None and base + n >= end_hint:
                j = K.first_newline(buf[:n], max(0, end_hint - 1 - base))
                if j >= 0:
                    yield buf[: j + 1], base
                    return
            j = K.last_newline(buf[:n])
            if j < 0 and n > self.max_line_bytes:
                raise self._line_too_long(self._line_at(begin, lines) + 1)
            if eof:
                if n:
                    if buf[n - 1] != 10:
                        buf[n] = 10
                        n += 1
                    yield buf[:n], base
                return
            if j < 0:
                carry = buf[:n]
                continue
            lines += K.count_newlines(buf[: j + 1])
            yield buf[: j + 1], base
            carry = buf[j + 1 : n]
            base += j + 1

    def _line_at(self, begin: int, lines_in_range: int) -> int:
        """Lines of the file before the range starting at ``begin``, plus ``lines_in_range``."""
        return lines_in_range if begin == 0 else self.newlines_before(begin) + lines_in_range

    # -- positions -------------------------------------------------------------------------
    def _scan(self):
        return ChunkSource(self.path, _SCAN_CHUNK, self.max_line_bytes).chunks()

    def newlines_before(self, offset: int) -> int:
        """Newlines in the first ``offset`` bytes of the (decompressed) content."""
        count = 0
        for buf, base in self._scan():
            if base >= offset:
                break
            count += K.count_newlines(buf[: offset - base])
        return count

    def rows_before(self, offset: int) -> int:
        """Data rows in the first ``offset`` bytes (``offset`` is a line start)."""
        rows = 0
        for buf, base in self._scan():
            if base >= offset:
                break
            n, _ = K.count_rows(buf[: offset - base], -1)
            rows += n
        return rows

    def line_of_row(self, row: int) -> int | None:
        """The 1-based line number of the ``row``-th data row (0-based; None if there are fewer)."""
        end = self.offset_of_row(row + 1)
        return None if end is None else self.newlines_before(end - 1) + 1

    def offset_of_row(self, row: int) -> int | None:
        """Byte offset just past the ``row``-th data row's line (None if there are fewer)."""
        if row <= 0:
            return 0
        remaining = row
        for buf, base in self._scan():
            n, end = K.count_rows(buf, remaining)
            remaining -= n
            if remaining == 0:
                return base + end
        return None
