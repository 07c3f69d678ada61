"""Read and write LibSVM / svmlight text files.

- :func:`load_libsvm` parses a whole file into a ``CSRNDArray`` and a label array, matching
  scikit-learn's ``load_svmlight_file`` (values, ``zero_based="auto"``, ``qid``, comments...).
- :class:`LibSVMReader` streams a file, or one of ``num_parts`` byte-range parts of it, as
  parsed blocks of rows in bounded memory.
- :func:`dump_libsvm` writes a matrix and labels so that :func:`load_libsvm` reads back exactly
  the same values.

The text is cut into byte chunks that end at a newline, and each chunk is parsed by a
compiled kernel (``_libsvm_kernels.parse_chunk``) on a pool of threads (the kernel releases
the GIL). A plain file is memory-mapped, so chunks are views of the page cache; a ``.gz`` or
``.bz2`` file (recognised by its first bytes) is decompressed into chunk buffers.
``load_libsvm`` on a plain file counts every chunk's newlines and colons first (a fast pass)
so that the chunks are parsed in parallel straight into the final arrays: no concatenation,
no second copy of the output. Streaming parses a few chunks ahead of the consumer, so memory
stays bounded by a few chunks plus their parsed output.

Malformed input raises :class:`sparsetrain.base.DataFormatError` naming the file, the line and
the offending token, e.g. ``data/x.libsvm:1832: feature index 'abc' is not an integer``.
"""
from __future__ import annotations

import bz2
import collections
import contextlib
import dataclasses
import gzip
import io
import math
import mmap
import os
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import scipy.sparse as sp

from ..base import DataFormatError
from . import _libsvm_kernels as K

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "LibSVMBlock",
    "LibSVMReader",
    "dump_libsvm",
    "load_libsvm",
    "open_libsvm",
]

#: Bytes parsed at a time. While streaming, each chunk in flight also holds its parsed output
#: (about the chunk's size), and ``workers + 2`` chunks are in flight at most.
DEFAULT_CHUNK_SIZE = 16 << 20

_SLOW_TABLE_ROWS = 64
_GZIP_MAGIC = b"\x1f\x8b"
_BZ2_MAGIC = b"BZh"


# ------------------------------------------------------------------------------------------
# Arguments


def _zero_based_mode(zero_based) -> int:
    if zero_based is True or (isinstance(zero_based, str) and zero_based.lower() == "true"):
        return K.ZERO_BASED
    if zero_based is False or (isinstance(zero_based, str) and zero_based.lower() == "false"):
        return K.ONE_BASED
    if isinstance(zero_based, str) and zero_based.lower() == "auto":
        return K.AUTO_BASED
    raise ValueError(f"zero_based must be True, False or 'auto', got {zero_based!r}")


def _float_dtype(dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return dt


def _num_features(num_features) -> int | None:
    if num_features is None:
        return None
    if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)) or num_features < 1:
        raise ValueError(f"num_features must be a positive integer or None, got {num_features!r}")
    return int(num_features)


def _default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


_POOL_LOCK = threading.Lock()
_POOL: ThreadPoolExecutor | None = None
_POOL_SIZE = 0
_POOL_PID = 0


def _executor(workers: int) -> ThreadPoolExecutor:
    """A process-wide pool of parser threads, grown on demand (and made anew in a forked
    child, whose copy of the parent's pool has no threads)."""
    global _POOL, _POOL_SIZE, _POOL_PID
    with _POOL_LOCK:
        if _POOL is None or _POOL_SIZE < workers or _POOL_PID != os.getpid():
            # a smaller pool may still be serving another reader: leave it to finish
            _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sparsetrain-libsvm")
            _POOL_SIZE = workers
            _POOL_PID = os.getpid()
        return _POOL


# ------------------------------------------------------------------------------------------
# Byte access: opening, sizes, line-aligned part ranges, chunks


def open_libsvm(path):
    """Open ``path`` for binary reading, decompressing gzip or bzip2 content transparently
    (recognised by its magic bytes, whatever the file name). An uncompressed pipe works too."""
    raw = open(path, "rb", buffering=0)
    try:
        if not raw.seekable():  # a pipe: look at the first bytes without consuming them
            f = io.BufferedReader(raw)
            if f.peek(3)[:2] == _GZIP_MAGIC or f.peek(3)[:3] == _BZ2_MAGIC:
                raise ValueError(f"{os.fspath(path)}: compressed data from a pipe is not supported; "
                                 "pipe it through zcat/bzcat or give the file")
            return f
        head = raw.read(3)
        raw.seek(0)
    except BaseException:
        raw.close()
        raise
    if head[:2] == _GZIP_MAGIC:
        raw.close()
        return gzip.open(path, "rb")
    if head == _BZ2_MAGIC:
        raw.close()
        return bz2.open(path, "rb")
    return raw


def _is_compressed(f) -> bool:
    return isinstance(f, (gzip.GzipFile, bz2.BZ2File))


def _is_mappable(f) -> bool:
    """A plain regular file (not compressed, not a pipe or device) can be memory-mapped."""
    return not _is_compressed(f) and stat.S_ISREG(os.fstat(f.fileno()).st_mode)


def _readinto_full(f, mv) -> int:
    """Fill ``mv`` from ``f`` unless the stream ends first; returns the bytes read."""
    total = 0
    n = len(mv)
    while total < n:
        got = f.readinto(mv[total:])
        if not got:
            break
        total += got
    return total


def _data_size(path) -> int:
    """Size in bytes of the (decompressed) content of ``path``."""
    with open_libsvm(path) as f:
        if _is_mappable(f):
            return os.fstat(f.fileno()).st_size
        buf = bytearray(1 << 20)
        mv = memoryview(buf)
        total = 0
        while True:
            got = f.readinto(mv)
            if not got:
                return total
            total += got


def _line_start_at_or_after(path, x: int, size: int) -> int:
    """The first offset >= ``x`` where a line starts (``size`` if none)."""
    if x <= 0:
        return 0
    if x >= size:
        return size
    with open_libsvm(path) as f:
        f.seek(x - 1)
        pos = x - 1
        block = np.empty(1 << 16, np.uint8)
        while True:
            got = _readinto_full(f, memoryview(block))
            if not got:
                return size
            j = K.first_newline(block[:got], 0)
            if j >= 0:
                return pos + j + 1
            pos += got


def _part_range(path, num_parts: int, part_index: int) -> tuple[int, int | None]:
    """(begin, end_hint) of part ``part_index``: it holds the lines that start in
    ``[s, e)`` with ``s = size * part_index // num_parts`` and ``e`` likewise, so that the
    parts together hold every line exactly once. ``end_hint`` is None for the last part."""
    if num_parts == 1:
        return 0, None
    size = _data_size(path)
    s = size * part_index // num_parts
    e = size * (part_index + 1) // num_parts
    begin = _line_start_at_or_after(path, s, size)
    if part_index == num_parts - 1:
        return begin, None
    if begin >= e:
        return begin, begin  # no line starts in [s, e)
    return begin, e


def _iter_byte_chunks(path, chunk_size: int, begin: int = 0, end_hint: int | None = None):
    """Yield ``(buf, offset)``: np.uint8 buffers of whole lines starting at ``begin``.

    Each buffer ends with a newline (one is added after a last line that lacks it, which the
    parser needs as a sentinel). With ``end_hint`` the stream stops after the line that holds
    byte ``end_hint - 1``. A line longer than ``chunk_size`` is returned whole in a larger
    buffer.
    """
    if end_hint is not None and end_hint <= begin:
        return
    with open_libsvm(path) as f:
        if _is_mappable(f):
            yield from _iter_mapped_chunks(f, chunk_size, begin, end_hint)
            return
        if begin:
            f.seek(begin)
        base = begin
        carry = None
        while True:
            clen = 0 if carry is None else len(carry)
            cap = max(chunk_size, 2 * clen)
            buf = np.empty(cap + 1, np.uint8)  # + room for a final newline
            if clen:
                buf[:clen] = carry
            n = clen + _readinto_full(f, memoryview(buf)[clen:cap])
            eof = n < cap
            if end_hint is not None and base + n >= end_hint:
                j = K.first_newline(buf[:n], max(0, end_hint - 1 - base))
                if j >= 0:
                    yield buf[: j + 1], base
                    return
            if eof:
                if n:
                    if buf[n - 1] != 10:
                        buf[n] = 10
                        n += 1
                    yield buf[:n], base
                return
            j = K.last_newline(buf[:n])
            if j < 0:
                carry = buf[:n]
                continue
            yield buf[: j + 1], base
            carry = buf[j + 1 : n]
            base += j + 1


def _iter_mapped_chunks(f, chunk_size: int, begin: int, end_hint: int | None):
    """``_iter_byte_chunks`` for a plain file: views of a memory map of it, no copies.

    (A copy-on-write mapping, so that the views are ordinary writable arrays for the kernels;
    nothing writes to them.)
    """
    size = os.fstat(f.fileno()).st_size
    if begin >= size:
        return
    mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    arr = np.frombuffer(mm, dtype=np.uint8)
    try:
        stop = size
        if end_hint is not None and end_hint < size:
            j = K.first_newline(arr, end_hint - 1)
            stop = size if j < 0 else j + 1
        pos = begin
        while pos < stop:
            target = pos + chunk_size
            if target >= stop:
                end = stop
            else:
                j = K.last_newline(arr[pos:target])
                if j >= 0:
                    end = pos + j + 1
                else:  # a line longer than a chunk
                    j = K.first_newline(arr, target)
                    end = stop if j < 0 else j + 1
            piece = arr[pos:end]
            if piece[-1] != 10:  # the last line lacks its newline: add one to a copy
                piece = np.append(piece, np.uint8(10))
            yield piece, pos
            pos = end
    finally:
        del arr
        try:
            mm.close()
        except BufferError:
            pass  # a chunk is still referenced (an abandoned parse); the map goes with it


def _count_newlines_before(path, offset: int) -> int:
    """Newlines in the first ``offset`` bytes of the (decompressed) content."""
    count = 0
    for buf, _ in _iter_byte_chunks(path, 8 << 20, 0, None):
        if offset <= 0:
            break
        take = buf[: min(len(buf), offset)]
        count += K.count_newlines(take)
        offset -= len(take)
    return count


def _count_rows_before(path, offset: int) -> int:
    """Data rows in the first ``offset`` bytes (``offset`` is a line start)."""
    rows = 0
    for buf, base in _iter_byte_chunks(path, 8 << 20, 0, None):
        if base >= offset:
            break
        r, _ = K.count_rows(buf[: offset - base], -1)
        rows += r
    return rows


def _offset_of_row(path, row: int) -> int | None:
    """Byte offset just past the ``row``-th data row's line (None if the file has fewer)."""
    if row <= 0:
        return 0
    remaining = row
    for buf, base in _iter_byte_chunks(path, 8 << 20, 0, None):
        r, end = K.count_rows(buf, remaining)
        remaining -= r
        if remaining == 0:
            return base + end
    return None


# ------------------------------------------------------------------------------------------
# Parsing: chunks on worker threads, then checks and messages on the calling thread


@dataclass
class LibSVMBlock:
    """Rows parsed from one chunk.

    ``data``, ``indices`` (int64 column ids, zero-based) and ``indptr`` (int64, starting at 0)
    are CSR arrays; ``labels`` is float64 of shape (rows, labels per row).
    """

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    labels: np.ndarray
    num_features: int | None = None

    @property
    def num_rows(self) -> int:
        return len(self.indptr) - 1

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1])

    def to_csr(self, num_features: int | None = None):
        """The rows as a ``CSRNDArray`` (wrapping the arrays without copying)."""
        from ..ndarray.sparse import csr_matrix

        d = num_features or self.num_features
        if d is None:
            d = int(self.indices.max()) + 1 if len(self.indices) else 1
        return csr_matrix((self.data, self.indices, self.indptr), shape=(self.num_rows, d), dtype=self.data.dtype)


class _Job:
    """One chunk: its bytes, where its output goes and, once parsed, the kernel's report."""

    __slots__ = (
        "buf", "lines_before", "n_labels", "nnz_base", "data", "indices", "indptr", "row_ends", "labels",
        "info", "slow",
    )

    def __init__(self, buf, lines_before, n_labels):
        self.buf = buf
        self.lines_before = lines_before  # newlines between the part's start and this chunk
        self.n_labels = n_labels
        self.nnz_base = 0
        self.indptr = None

    @property
    def rows(self) -> int:
        return int(self.info[K.I_ROWS])

    @property
    def nnz(self) -> int:
        return int(self.info[K.I_NNZ])


@dataclass
class _Settings:
    """How the kernels check a stream (see parse_chunk)."""

    mode: int
    index_limit: int
    boundary: int
    value_limit: float
    dtype: np.dtype


def _run_kernel(job: _Job, s: _Settings) -> _Job:
    """Parse ``job.buf`` into the job's arrays; runs on a worker thread (the kernel releases
    the GIL)."""
    slow = np.empty((_SLOW_TABLE_ROWS, 4), np.int64)
    args = (job.buf, job.n_labels, s.mode, s.index_limit, s.boundary, s.value_limit, job.nnz_base,
            job.data, job.indices, job.row_ends, job.labels)
    info = K.parse_chunk(*args, slow)
    if info[K.I_NSLOW] > len(slow):
        slow = np.empty((int(info[K.I_NSLOW]), 4), np.int64)
        info = K.parse_chunk(*args, slow)
    job.info, job.slow = info, slow
    return job


def _parse_into_own_arrays(job: _Job, s: _Settings) -> _Job:
    """Streaming: allocate room by upper bounds that need no counting pass (an entry takes at
    least 4 bytes, a row at least 2 per label), parse, then give the unused room back
    (realloc shrinks in place). Untouched pages of the large allocations never become
    resident, so memory use follows the actual output."""
    n = len(job.buf)
    job.data = np.empty(n // 4 + 1, s.dtype)
    job.indices = np.empty(n // 4 + 1, np.int64)
    indptr = np.empty(n // 2 + 2, np.int64)
    indptr[0] = 0
    job.row_ends = indptr[1:]
    job.labels = np.empty(n // 2 + 1, np.float64)
    _run_kernel(job, s)
    job.row_ends = None  # a view: drop it before resizing its base
    if job.info[K.I_ERR] == K.OK:
        job.data.resize(job.nnz, refcheck=False)
        job.indices.resize(job.nnz, refcheck=False)
        indptr.resize(job.rows + 1, refcheck=False)
        job.labels.resize(job.rows * job.n_labels, refcheck=False)
    job.indptr = indptr
    return job


def _token_text(buf, start: int, end: int) -> str:
    text = bytes(buf[start:end]).decode("ascii", "backslashreplace")
    return text if len(text) <= 60 else text[:57] + "..."


def _plural(k: int, word: str) -> str:
    return f"{k} {word}" if k == 1 else f"{k} {word}s"


def _message(code: int, tok: str, aux: int, ctx: "_ParseContext") -> str:
    q = f"'{tok}'"
    if code == K.E_LABEL:
        hint = " (is the label missing?)" if ":" in tok else ""
        return f"label {q} is not a number{hint}"
    if code == K.E_LABEL_NONFINITE:
        return f"label {q} is not finite"
    if code == K.E_LABEL_COUNT:
        return f"expected {_plural(ctx.n_labels, 'label')} per row (as on the first row), found {aux} in {q}"
    if code == K.E_MISSING_COLON:
        return f"feature {q} has no ':' between index and value"
    if code == K.E_INDEX_NOT_INT:
        return f"feature index {q} is not an integer" if tok else "feature index is empty"
    if code == K.E_INDEX_NEGATIVE:
        return f"feature index {q} is negative"
    if code == K.E_INDEX_ZERO:
        return f"feature index {q} is 0 in a one-based file (zero_based=False)"
    if code == K.E_INDEX_ORDER:
        return (
            f"feature index {q} is not greater than the previous index {aux} "
            "(indices must be strictly ascending)"
        )
    if code == K.E_INDEX_RANGE:
        base = " with one-based indices" if ctx.mode != K.ZERO_BASED else ""
        return f"feature index {q} is out of range for num_features={ctx.num_features}{base}"
    if code == K.E_INDEX_OVERFLOW:
        return f"feature index {q} is too large"
    if code == K.E_VALUE:
        return f"feature value {q} is not a number"
    if code == K.E_VALUE_NONFINITE:
        return f"feature value {q} is not finite"
    if code == K.E_QID:
        return f"qid {q} is not an integer"
    if code == K.E_LABEL_RANGE:
        return f"label {q} is too large for {ctx.dtype}"
    if code == K.E_VALUE_RANGE:
        return f"feature value {q} is too large for {ctx.dtype}"
    return f"malformed token {q} (error {code})"


class _ParseContext:
    """What the messages need to know, and the line bookkeeping of one stream."""

    def __init__(self, path, num_features, mode, n_labels, part_begin, dtype):
        self.path = os.fspath(path)
        self.dtype = np.dtype(dtype).name
        self.num_features = num_features
        self.mode = mode
        self.n_labels = n_labels
        self.part_begin = part_begin
        self._lines_before_part = 0 if part_begin == 0 else None

    def lines_before_part(self) -> int:
        if self._lines_before_part is None:
            self._lines_before_part = _count_newlines_before(self.path, self.part_begin)
        return self._lines_before_part

    def line_of(self, job: _Job, pos: int) -> int:
        return self.lines_before_part() + job.lines_before + K.count_newlines(job.buf[:pos]) + 1

    def error(self, job: _Job, code, start, end, aux) -> DataFormatError:
        msg = _message(code, _token_text(job.buf, start, end), aux, self)
        return DataFormatError(f"{self.path}:{self.line_of(job, start)}: {msg}")


def _label_token_span(buf, start):
    # a slow label number starts inside the label token; report the whole token
    s = start
    while s > 0 and buf[s - 1] not in (32, 9, 13, 11, 12, 10):
        s -= 1
    e = start
    while e < len(buf) and K._CLASS[buf[e]] == 0:
        e += 1
    return s, e


def _check(job: _Job, ctx: _ParseContext, s: _Settings) -> None:
    """Convert the numbers the kernel left to Python, and raise the chunk's first error."""
    info, buf = job.info, job.buf
    errors = []  # (byte position, code, start, end, aux); the earliest one is raised
    for kind, pos, start, end in job.slow[: int(info[K.I_NSLOW])]:
        v = float(bytes(buf[start:end]))
        label = kind == K.SLOW_LABEL
        if not math.isfinite(v) or abs(v) >= s.value_limit:
            if not math.isfinite(v):
                code = K.E_LABEL_NONFINITE if label else K.E_VALUE_NONFINITE
            else:
                code = K.E_LABEL_RANGE if label else K.E_VALUE_RANGE
            start, end = _label_token_span(buf, int(start)) if label else (int(start), int(end))
            errors.append((start, code, start, end, 0))
            break
        if label:
            if pos >= 0:
                job.labels[pos] = v
        else:
            job.data[pos] = v
    code = int(info[K.I_ERR])
    if code == K.E_NO_NEWLINE:
        raise AssertionError("parse_chunk needs a buffer that ends with a newline")
    if code != K.OK:
        start = int(info[K.I_ERR_START])
        errors.append((start, code, start, int(info[K.I_ERR_END]), int(info[K.I_ERR_AUX])))
    if errors:
        _, code, start, end, aux = min(errors)
        raise ctx.error(job, code, start, end, aux)


@dataclass
class _BlockMeta:
    """Per-chunk facts the callers need besides the arrays."""

    min_index: int
    max_index: int
    boundary: tuple | None  # (line, token) of the first raw index equal to the boundary


def _meta(job: _Job, ctx: _ParseContext, want_boundary: bool) -> _BlockMeta:
    """The chunk's index range and, if ``want_boundary``, where its boundary index is."""
    info = job.info
    bound = None
    if want_boundary and info[K.I_BOUND_START] >= 0:
        s, e = int(info[K.I_BOUND_START]), int(info[K.I_BOUND_END])
        bound = (ctx.line_of(job, s), _token_text(job.buf, s, e))
    return _BlockMeta(int(info[K.I_MIN]), int(info[K.I_MAX]), bound)


def _iter_parsed(
    path,
    *,
    chunk_size: int,
    begin: int,
    end_hint: int | None,
    n_labels: int,
    num_features: int | None,
    settings: _Settings,
    workers: int,
) -> Iterator[tuple[LibSVMBlock, _BlockMeta]]:
    """Parse the lines of ``[begin, end)`` chunk by chunk; yields blocks in file order with
    raw (unshifted) indices. Up to ``workers + 1`` chunks are parsed ahead of the consumer.
    ``n_labels`` 0 takes the count from the first data row."""
    pool = _executor(workers)
    ctx = _ParseContext(path, num_features, settings.mode, n_labels, begin, settings.dtype)
    chunks = _iter_byte_chunks(path, chunk_size, begin, end_hint)
    pending: collections.deque = collections.deque()
    lines_before = 0
    boundary_seen = False
    try:
        exhausted = False
        while True:
            while not exhausted and len(pending) <= workers:
                try:
                    buf, _ = next(chunks)
                except StopIteration:
                    exhausted = True
                    break
                if not ctx.n_labels:
                    ctx.n_labels = K.first_row_label_count(buf)
                job = _Job(buf, 0, ctx.n_labels or 1)
                pending.append(pool.submit(_parse_into_own_arrays, job, settings))
            if not pending:
                return
            job = pending.popleft().result()
            job.lines_before = lines_before  # the previous chunks parsed whole: exact counts
            _check(job, ctx, settings)
            lines_before += int(job.info[K.I_LINES])
            meta = _meta(job, ctx, want_boundary=not boundary_seen)
            boundary_seen = boundary_seen or meta.boundary is not None
            block = LibSVMBlock(job.data, job.indices, job.indptr, job.labels.reshape(job.rows, job.n_labels))
            job.buf = None  # done with the bytes
            yield block, meta
    finally:
        for fut in pending:
            fut.cancel()
        chunks.close()


def _settings(mode: int, num_features: int | None, dtype) -> _Settings:
    """Kernel settings: raw indices allowed below ``index_limit``; ``boundary`` is the raw
    index valid only if an "auto" file turns out one-based."""
    value_limit = K.FLOAT32_LIMIT if dtype == np.float32 else math.inf
    if num_features is None:
        return _Settings(mode, -1, -1, value_limit, dtype)
    if mode == K.ZERO_BASED:
        return _Settings(mode, num_features, -1, value_limit, dtype)
    if mode == K.ONE_BASED:
        return _Settings(mode, num_features + 1, -1, value_limit, dtype)
    return _Settings(mode, num_features + 1, num_features, value_limit, dtype)


def _range_error(path, line, token, num_features) -> DataFormatError:
    return DataFormatError(
        f"{os.fspath(path)}:{line}: feature index '{token}' is out of range for "
        f"num_features={num_features} (the file has index 0, so it is zero-based)"
    )


# ------------------------------------------------------------------------------------------
# Whole files


def load_libsvm(
    path,
    num_features: int | None = None,
    zero_based="auto",
    dtype="float32",
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    workers: int | None = None,
):
    """Read a LibSVM / svmlight file into ``(CSRNDArray, labels)``.

    num_features: number of columns; None takes the largest index + 1 (as scikit-learn,
        at least 1). An index that does not fit is an error naming its line.
    zero_based: True, False or "auto" (as scikit-learn: the file is one-based, and its
        indices are shifted down by one, unless index 0 occurs in it).
    dtype: float32 or float64, for the values and the labels.
    Labels are a 1-D array, or 2-D ``(rows, k)`` when every row has ``k`` comma-separated
    labels (``dump_libsvm`` writes 2-D labels that way).

    A plain file is memory-mapped, counted and parsed by all workers straight into the
    output arrays; a compressed one is decompressed and parsed chunk by chunk.
    Raises DataFormatError for malformed input, including a file without data rows.
    """
    mode = _zero_based_mode(zero_based)
    dtype = _float_dtype(dtype)
    num_features = _num_features(num_features)
    workers = workers or _default_workers()
    settings = _settings(mode, num_features, dtype)
    mappable = False
    if stat.S_ISREG(os.stat(path).st_mode):  # (never open a pipe twice)
        with open_libsvm(path) as f:
            mappable = not _is_compressed(f)
    if mappable:
        parsed = _load_mapped(path, num_features, settings, chunk_size, workers)
    else:
        parsed = _load_streamed(path, num_features, settings, chunk_size, workers)
    if parsed is None:
        raise DataFormatError(f"{os.fspath(path)}: no data rows (the file is empty or only has comments)")
    data, indices, indptr, labels, metas = parsed
    nnz = len(indices)
    min_idx = min(m.min_index for m in metas)
    max_idx = max(m.max_index for m in metas)
    shift = 1 if mode == K.ONE_BASED or (mode == K.AUTO_BASED and nnz and min_idx > 0) else 0
    if shift == 0 and settings.boundary >= 0:
        hit = next((m.boundary for m in metas if m.boundary is not None), None)
        if hit is not None:
            raise _range_error(path, hit[0], hit[1], num_features)
    if shift:
        indices -= 1
    if num_features is None:
        num_features = (max_idx - shift if nnz else 0) + 1
    from ..ndarray.sparse import csr_matrix

    X = csr_matrix((data, indices, indptr), shape=(len(indptr) - 1, num_features), dtype=dtype)
    y = labels[:, 0] if labels.shape[1] == 1 else labels
    return X, np.ascontiguousarray(y, dtype=dtype)


def _load_streamed(path, num_features, settings, chunk_size, workers):
    """Parse chunk by chunk into separate arrays, then concatenate them."""
    blocks, metas = [], []
    for block, meta in _iter_parsed(
        path, chunk_size=chunk_size, begin=0, end_hint=None, n_labels=0, num_features=num_features,
        settings=settings, workers=workers,
    ):
        if block.num_rows:
            blocks.append(block)
            metas.append(meta)
    if not blocks:
        return None
    if len(blocks) == 1:
        b = blocks[0]
        return b.data, b.indices, b.indptr, b.labels, metas
    data = np.concatenate([b.data for b in blocks])
    indices = np.concatenate([b.indices for b in blocks])
    labels = np.concatenate([b.labels for b in blocks])
    indptr = np.empty(sum(b.num_rows for b in blocks) + 1, np.int64)
    indptr[0] = 0
    r = off = 0
    for b in blocks:
        np.add(b.indptr[1:], off, out=indptr[r + 1 : r + b.num_rows + 1])
        r += b.num_rows
        off += b.nnz
    return data, indices, indptr, labels, metas


def _mapped_pieces(arr, chunk_size):
    """(start, end) of chunks of whole lines over a mapped file."""
    pieces = []
    pos, size = 0, len(arr)
    while pos < size:
        target = pos + chunk_size
        if target >= size:
            end = size
        else:
            j = K.last_newline(arr[pos:target])
            if j >= 0:
                end = pos + j + 1
            else:  # a line longer than a chunk
                j = K.first_newline(arr, target)
                end = size if j < 0 else j + 1
        pieces.append((pos, end))
        pos = end
    return pieces


def _load_mapped(path, num_features, settings, chunk_size, workers):
    """Two parallel passes over a memory-mapped file: count each chunk's newlines and colons,
    which bound its rows and entries, then parse every chunk straight into its slice of the
    output arrays. Slices a chunk did not fill (comments, blank lines, ``qid``) are closed up
    at the end."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return None
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    arr = np.frombuffer(mm, dtype=np.uint8)
    pool = _executor(workers)
    jobs: list[_Job] = []
    futures = []
    bufs = []
    try:
        bufs = [arr[a:b] for a, b in _mapped_pieces(arr, chunk_size)]
        if bufs[-1][-1] != 10:  # the last line lacks its newline (the parser's sentinel)
            bufs[-1] = np.append(bufs[-1], np.uint8(10))
        counts = list(pool.map(K.count_newlines_colons, bufs))
        n_labels = 0
        for buf in bufs:
            n_labels = K.first_row_label_count(buf)
            if n_labels:
                break
        if not n_labels:
            return None
        newlines_total = sum(c[0] for c in counts)
        colons_total = sum(c[1] for c in counts)
        data = np.empty(colons_total, settings.dtype)
        indices = np.empty(colons_total, np.int64)
        indptr = np.empty(newlines_total + 1, np.int64)
        indptr[0] = 0
        labels = np.empty(newlines_total * n_labels, np.float64)
        ctx = _ParseContext(path, num_features, settings.mode, n_labels, 0, settings.dtype)
        row_off = nnz_off = 0
        for buf, (newlines, colons) in zip(bufs, counts):
            job = _Job(buf, row_off, n_labels)  # lines before == rows room before: both newlines
            job.nnz_base = nnz_off
            job.data = data[nnz_off : nnz_off + colons]
            job.indices = indices[nnz_off : nnz_off + colons]
            job.row_ends = indptr[1 + row_off : 1 + row_off + newlines]
            job.labels = labels[row_off * n_labels : (row_off + newlines) * n_labels]
            jobs.append(job)
            row_off += newlines
            nnz_off += colons
        futures = [pool.submit(_run_kernel, job, settings) for job in jobs]
        metas = []
        boundary_seen = False
        for fut in futures:
            job = fut.result()
            _check(job, ctx, settings)
            metas.append(_meta(job, ctx, want_boundary=not boundary_seen))
            boundary_seen = boundary_seen or metas[-1].boundary is not None
        rows = sum(j.rows for j in jobs)
        nnz = sum(j.nnz for j in jobs)
        if rows == 0:
            return None
        # close up what the counts over-reserved, moving each chunk down to its final place
        row_off = nnz_off = 0
        row_room = nnz_room = 0
        for job, (newlines, colons) in zip(jobs, counts):
            r, z = job.rows, job.nnz
            if row_room != row_off or nnz_room != nnz_off:
                data[nnz_off : nnz_off + z] = data[nnz_room : nnz_room + z]
                indices[nnz_off : nnz_off + z] = indices[nnz_room : nnz_room + z]
                indptr[1 + row_off : 1 + row_off + r] = indptr[1 + row_room : 1 + row_room + r] - (nnz_room - nnz_off)
                labels[row_off * n_labels : (row_off + r) * n_labels] = labels[row_room * n_labels : (row_room + r) * n_labels]
            row_off += r
            nnz_off += z
            row_room += newlines
            nnz_room += colons
            job.buf = job.data = job.indices = job.row_ends = job.labels = None
        for a, n in ((data, nnz), (indices, nnz), (indptr, rows + 1), (labels, rows * n_labels)):
            a.resize(n, refcheck=False)  # shrinks in place
        return data, indices, indptr, labels.reshape(rows, n_labels), metas
    finally:
        for fut in futures:
            fut.cancel()
        del arr
        bufs.clear()
        jobs.clear()
        try:
            mm.close()
        except BufferError:
            pass  # a chunk view is still referenced (a parse abandoned on error)


# ------------------------------------------------------------------------------------------
# Streaming


class LibSVMReader:
    """Stream a LibSVM file, or one byte-range part of it, as :class:`LibSVMBlock` s.

    Iterating yields the rows in file order, one block per byte chunk (about ``chunk_size``
    bytes of text; a longer line makes a larger chunk), with zero-based column ids. Each
    iteration reads the file again; memory stays bounded by a few chunks.

    num_parts / part_index: split the file into ``num_parts`` byte ranges aligned to line
        starts (the parts together hold every line exactly once) and read one of them.
    num_labels: labels per row; None takes the count from the first row (and enforces it).
    start_row: skip this many data rows first (only with ``num_parts == 1``).
    zero_based: True, False or "auto"; "auto" decides for the whole file as scikit-learn does,
        which costs one extra pass over a one-based file (stopping early at the first index 0
        of a zero-based one). Pass True or False to avoid it.
    """

    def __init__(
        self,
        path,
        num_features: int | None = None,
        zero_based="auto",
        dtype="float32",
        *,
        num_labels: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        num_parts: int = 1,
        part_index: int = 0,
        start_row: int = 0,
        workers: int | None = None,
    ):
        self.path = path
        self.num_features = _num_features(num_features)
        self._mode = _zero_based_mode(zero_based)
        self.dtype = _float_dtype(dtype)
        if num_labels is not None and (not isinstance(num_labels, (int, np.integer)) or num_labels < 1):
            raise ValueError(f"num_labels must be a positive integer or None, got {num_labels!r}")
        self.num_labels = None if num_labels is None else int(num_labels)
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        self.chunk_size = int(chunk_size)
        if num_parts < 1 or not 0 <= part_index < num_parts:
            raise ValueError(f"need 0 <= part_index < num_parts, got part_index={part_index}, num_parts={num_parts}")
        if not os.path.exists(path):
            raise FileNotFoundError(f"no such file: {os.fspath(path)}")
        if not os.path.isfile(path):
            # it is read once per iteration (and once more to decide zero_based="auto")
            raise ValueError(f"{os.fspath(path)}: streaming needs a regular file, not a pipe")
        if start_row and num_parts != 1:
            raise ValueError("start_row needs num_parts == 1")
        self.num_parts = int(num_parts)
        self.part_index = int(part_index)
        self.start_row = int(start_row)
        self.workers = workers or _default_workers()
        self._range: tuple[int, int | None] | None = None

    @property
    def zero_based(self) -> bool:
        """Whether the file's indices are zero-based (decided on first use for "auto")."""
        if self._mode == K.AUTO_BASED:
            self._mode = K.ZERO_BASED if self._detect_zero_based() else K.ONE_BASED
        return self._mode == K.ZERO_BASED

    def byte_range(self) -> tuple[int, int | None]:
        """(begin, end_hint) of the lines this reader reads; see ``_part_range``."""
        if self._range is None:
            if self.start_row:
                begin = _offset_of_row(self.path, self.start_row)
                if begin is None:
                    raise DataFormatError(f"{os.fspath(self.path)}: has fewer than {self.start_row} data rows")
                self._range = (begin, None)
            else:
                self._range = _part_range(self.path, self.num_parts, self.part_index)
        return self._range

    def rows_before(self) -> int:
        """Data rows of the file before this reader's first row."""
        begin, _ = self.byte_range()
        return self.start_row or (_count_rows_before(self.path, begin) if begin else 0)

    def _detect_zero_based(self) -> bool:
        settings = dataclasses.replace(_settings(K.AUTO_BASED, self.num_features, self.dtype), boundary=-1)
        any_index = False
        # small chunks: a zero-based file usually shows an index 0 within its first rows
        with contextlib.closing(
            _iter_parsed(
                self.path, chunk_size=min(self.chunk_size, 1 << 20), begin=0, end_hint=None,
                n_labels=self.num_labels or 0,
                num_features=self.num_features, settings=settings, workers=self.workers,
            )
        ) as blocks:
            for block, meta in blocks:
                if meta.min_index == 0:
                    return True
                any_index = any_index or block.nnz > 0
        return not any_index

    def __iter__(self) -> Iterator[LibSVMBlock]:
        zero_based = self.zero_based
        mode = K.ZERO_BASED if zero_based else K.ONE_BASED
        begin, end_hint = self.byte_range()
        for block, _ in _iter_parsed(
            self.path, chunk_size=self.chunk_size, begin=begin, end_hint=end_hint,
            n_labels=self.num_labels or 0, num_features=self.num_features,
            settings=_settings(mode, self.num_features, self.dtype), workers=self.workers,
        ):
            if not zero_based:
                block.indices -= 1
            block.num_features = self.num_features
            if block.num_rows:
                yield block


# ------------------------------------------------------------------------------------------
# Writing


def _as_scipy_csr(X) -> sp.csr_matrix:
    from ..ndarray import BaseArray

    if isinstance(X, BaseArray):
        if X.stype == "csr":
            m = X.asscipy()
        else:
            m = sp.csr_matrix(np.atleast_2d(X.asnumpy()))
    elif sp.issparse(X):
        m = sp.csr_matrix(X)
    else:
        arr = np.asarray(X)
        if arr.ndim != 2:
            raise ValueError(f"X must be 2-D, got shape {arr.shape}")
        m = sp.csr_matrix(arr)
    if not m.has_canonical_format:
        m = m.copy()
        m.sum_duplicates()
    return m


def _as_strings(a: np.ndarray) -> np.ndarray:
    """Shortest round-trip text of each number, as a (len, width) uint8 array padded with NULs."""
    if a.dtype.kind == "b":
        a = a.astype(np.int64)
    elif a.dtype.kind == "f" and a.dtype not in (np.float32, np.float64):
        # float16 widens exactly to float32; longdouble is written at float64 precision
        a = a.astype(np.float32 if a.dtype.itemsize < 4 else np.float64)
    s = np.ascontiguousarray(a.astype("S"))
    return s.view(np.uint8).reshape(len(a), s.dtype.itemsize)


def _open_for_write(tmp_path, final_path):
    name = os.fspath(final_path)
    if name.endswith(".gz"):
        return gzip.open(tmp_path, "wb", compresslevel=6)
    if name.endswith(".bz2"):
        return bz2.open(tmp_path, "wb")
    return open(tmp_path, "wb")


def _temp_path(path) -> str:
    d, base = os.path.split(os.path.abspath(os.fspath(path)))
    return os.path.join(d, f".{base}.tmp-{os.getpid()}-{threading.get_ident()}")


def dump_libsvm(X, y, path, zero_based: bool = True, *, chunk_rows: int = 65536) -> None:
    """Write ``X`` (CSRNDArray, scipy sparse matrix or dense 2-D array) and labels ``y``
    (1-D, or 2-D ``(rows, k)`` written as ``k`` comma-separated labels) as LibSVM text.

    Every stored entry of a sparse ``X`` is written (explicit zeros included); a dense ``X``
    writes its non-zeros. Numbers are written in their shortest round-trip form, so
    :func:`load_libsvm` with the same dtype reads back exactly the same values. The file is
    written to a temporary name and renamed into place; a name ending in ``.gz`` or ``.bz2``
    is compressed.
    """
    if not isinstance(zero_based, (bool, np.bool_)):
        raise ValueError(f"zero_based must be True or False, got {zero_based!r}")
    m = _as_scipy_csr(X)
    y = y.asnumpy() if hasattr(y, "asnumpy") else np.asarray(y)
    if y.ndim == 1:
        y2 = y.reshape(-1, 1)
    elif y.ndim == 2 and y.shape[1] >= 1:
        y2 = y
    else:
        raise ValueError(f"y must be 1-D, or 2-D with at least one column, got shape {y.shape}")
    if y2.dtype.kind not in "biuf":
        y2 = y2.astype(np.float64)
    if y2.shape[0] != m.shape[0]:
        raise ValueError(f"X has {m.shape[0]} rows but y has {y2.shape[0]}")
    if m.data.dtype.kind not in "biuf":
        raise ValueError(f"X must hold numbers, got dtype {m.data.dtype}")
    if m.data.dtype.kind == "f" and not np.isfinite(m.data).all():
        raise ValueError("X holds nan or inf, which LibSVM readers reject")
    if y2.dtype.kind == "f" and not np.isfinite(y2).all():
        raise ValueError("y holds nan or inf, which LibSVM readers reject")
    indptr = m.indptr.astype(np.int64, copy=False)
    indices = m.indices.astype(np.int64, copy=False)
    offset = 0 if zero_based else 1
    k = y2.shape[1]
    tmp = _temp_path(path)
    try:
        with _open_for_write(tmp, path) as f:
            for r0 in range(0, m.shape[0], chunk_rows):
                r1 = min(m.shape[0], r0 + chunk_rows)
                lo, hi = indptr[r0], indptr[r1]
                text = K.format_rows_strings(
                    _as_strings(np.ascontiguousarray(y2[r0:r1]).reshape(-1)),
                    k,
                    indptr[r0 : r1 + 1] - lo,
                    indices[lo:hi],
                    _as_strings(m.data[lo:hi]),
                    offset,
                )
                f.write(memoryview(text))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
