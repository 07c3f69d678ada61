"""LibSVM parsing: chunks of a :class:`~sparsetrain.io.chunks.ChunkSource` parsed by the
compiled kernel (``_libsvm_kernels.parse_chunk``) on the parser threads of the one chunk
pipeline (:mod:`~sparsetrain.io.pipeline`), checked and turned into messages on the calling
thread.

- :func:`iter_parsed` streams :class:`LibSVMBlock` s in file order, parsing a few chunks
  ahead of the consumer, so memory stays bounded by a few chunks plus their parsed output;
- :func:`load_arrays` parses a whole file into one set of CSR arrays. A plain file is
  memory-mapped and every chunk's newlines and colons are counted first (a fast pass), so
  that the chunks are parsed in parallel straight into the final arrays: no concatenation,
  no second copy of the output. Other sources are streamed and concatenated.

Malformed input raises :class:`sparsetrain.base.DataFormatError` naming the file, the line and
the offending token, e.g. ``data/x.libsvm:1832: feature index 'abc' is not an integer``.
The public API (``load_libsvm``, ``LibSVMReader``) is in ``libsvm.py``.
"""
from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ..base import DataFormatError, quoted
from . import _libsvm_kernels as K
from .base import named_format, token_text
from .chunks import ChunkSource
from .pipeline import BufferPool, ChunkJob, ParsedChunk, cancel, default_workers, executor, parse_chunks, room, submit

__all__ = ["BlockMeta", "LibSVMBlock", "Settings", "default_workers", "iter_parsed", "load_arrays", "settings_for"]

_SLOW_TABLE_ROWS = 64


LibSVMBlock = ParsedChunk  # the rows of one chunk (the name the LibSVM API has always used)


class _Job(ChunkJob):
    """One LibSVM chunk: where its output goes and, once parsed, the kernel's report."""

    def __init__(self, buf, lines_before, n_labels, offset: int = 0):
        super().__init__(buf, offset)
        self.lines_before = lines_before  # newlines between the part's start and this chunk
        self.n_labels = n_labels
        self.nnz_base = 0
        self.row_ends = None

    @property
    def rows(self) -> int:
        return int(self.info[K.I_ROWS])

    @property
    def nnz(self) -> int:
        return int(self.info[K.I_NNZ])


@dataclass
class Settings:
    """How the kernels check a stream (see parse_chunk)."""

    mode: int
    index_limit: int
    boundary: int
    value_limit: float
    max_line: int
    dtype: np.dtype


def _run_kernel(job: _Job, s: Settings) -> _Job:
    """Parse ``job.buf`` into the job's arrays; runs on a worker thread (the kernel releases
    the GIL)."""
    slow = np.empty((_SLOW_TABLE_ROWS, 4), np.int64)
    args = (job.buf, job.n_labels, s.mode, s.index_limit, s.boundary, s.value_limit, s.max_line, job.nnz_base,
            job.data, job.indices, job.row_ends, job.labels)
    info = K.parse_chunk(*args, slow)
    if info[K.I_NSLOW] > len(slow):
        slow = np.empty((int(info[K.I_NSLOW]), 4), np.int64)
        info = K.parse_chunk(*args, slow)
    job.info, job.slow = info, slow
    job.lines = int(info[K.I_LINES])
    return job


def _parse_into_own_arrays(job: _Job, s: Settings, pool: BufferPool | None = None, label_dtype=None) -> _Job:
    """Streaming: room by upper bounds that need no counting pass (an entry takes at least 4
    bytes, a row at least 2 per label), from ``pool`` (arrays an earlier chunk used, already
    resident) or fresh; the job's arrays are views of the rows and entries parsed. Untouched
    pages of fresh allocations never become resident, so memory use follows the output.
    ``label_dtype``: the labels are handed over in it (cast here, on the parsing thread; the
    numbers the kernel leaves to Python are written into them by :func:`_check`)."""
    n = len(job.buf)
    spec = [(room(n // 4 + 1), s.dtype), (room(n // 4 + 1), np.int64), (room(n // 2 + 2), np.int64),
            (room(n // 2 + 1), np.float64)]
    cast = label_dtype is not None and np.dtype(label_dtype) != np.float64
    if cast:
        spec.append((room(n // 2 + 1), label_dtype))
    arrays = pool.take(spec) if pool is not None else [np.empty(k, dt) for k, dt in spec]
    data, indices, indptr, labels = arrays[:4]
    indptr[0] = 0
    job.data, job.indices, job.row_ends, job.labels = data, indices, indptr[1:], labels
    _run_kernel(job, s)
    job.row_ends = None
    if job.info[K.I_ERR] == K.OK:
        job.data, job.indices = data[: job.nnz], indices[: job.nnz]
        indptr = indptr[: job.rows + 1]
        job.labels = labels[: job.rows * job.n_labels]
        if cast:
            out = arrays[4][: len(job.labels)]
            np.copyto(out, job.labels)
            job.labels = out
    job.indptr = indptr
    return job


def _plural(k: int, word: str) -> str:
    return f"{k} {word}" if k == 1 else f"{k} {word}s"


# messages by error code: {q} is the quoted token, {aux} the kernel's extra number
_MESSAGES = {
    K.E_LABEL_NONFINITE: "label {q} is not finite",
    K.E_MISSING_COLON: "feature {q} has no ':' between index and value",
    K.E_INDEX_NEGATIVE: "feature index {q} is negative",
    K.E_INDEX_ZERO: "feature index {q} is 0 in a one-based file (zero_based=False)",
    K.E_INDEX_ORDER: "feature index {q} is not greater than the previous index {aux} "
                     "(indices must be strictly ascending)",
    K.E_INDEX_OVERFLOW: "feature index {q} is too large",
    K.E_VALUE: "feature value {q} is not a number",
    K.E_VALUE_NONFINITE: "feature value {q} is not finite",
    K.E_QID: "qid {q} is not an integer",
    K.E_LABEL_RANGE: "label {q} is too large for {dtype}",
    K.E_VALUE_RANGE: "feature value {q} is too large for {dtype}",
    K.E_LINE_TOO_LONG: "line is longer than max_line_bytes={aux}",
}


# a first line that is no LibSVM at all: another format's file read as LibSVM (a CSV file named x.txt: "label
# 'y,a,b' is not a number", a Vowpal Wabbit one: "feature '|a' has no ':'")
_OTHER_FORMAT_CODES = (K.E_LABEL, K.E_MISSING_COLON, K.E_INDEX_NOT_INT, K.E_VALUE)
_OTHER_FORMAT = ("read as LibSVM; CSV/TSV or Vowpal Wabbit data is read as such when named .csv, .tsv or .vw, "
                 "or with data.format")


def _message(code: int, tok: str, aux: int, ctx: "_ParseContext") -> str:
    q = quoted(tok)
    if code == K.E_LABEL:
        hint = " (is the label missing?)" if ":" in tok else ""
        return f"label {q} is not a number{hint}"
    if code == K.E_LABEL_COUNT:
        return f"expected {_plural(ctx.n_labels, 'label')} per row (as on the first row), found {aux} in {q}"
    if code == K.E_INDEX_NOT_INT:
        return f"feature index {q} is not an integer" if tok else "feature index is empty"
    if code == K.E_INDEX_RANGE:
        base = " with one-based indices" if ctx.mode == K.ONE_BASED else ""
        return f"feature index {q} is out of range for num_features={ctx.num_features}{base}"
    return _MESSAGES.get(code, "malformed token {q} (error {code})").format(q=q, aux=aux, dtype=ctx.dtype, code=code)


class _ParseContext:
    """What the messages need to know, and the line bookkeeping of one stream."""

    def __init__(self, source: ChunkSource, num_features, mode, n_labels, part_begin, dtype):
        self.source = source
        self.path = source.name
        self.dtype = np.dtype(dtype).name
        self.num_features = num_features
        self.mode = mode
        self.n_labels = n_labels
        self.part_begin = part_begin
        self._lines_before_part = 0 if part_begin == 0 else None

    def lines_before_part(self) -> int:
        if self._lines_before_part is None:
            self._lines_before_part = self.source.newlines_before(self.part_begin)
        return self._lines_before_part

    def line_of(self, job: _Job, pos: int) -> int:
        return self.lines_before_part() + job.lines_before + K.count_newlines(job.buf[:pos]) + 1

    def error(self, job: _Job, code, start, end, aux) -> DataFormatError:
        msg = _message(code, token_text(job.buf, start, end), aux, self)
        line = self.line_of(job, start)
        if line == 1 and code in _OTHER_FORMAT_CODES and named_format(self.path) != "libsvm":
            msg += f" ({_OTHER_FORMAT})"
        return DataFormatError(f"{self.path}:{line}: {msg}")


def _label_token_span(buf, start):
    # a slow label number starts inside the label token; report the whole token
    s = start
    while s > 0 and buf[s - 1] not in (32, 9, 13, 11, 12, 10):
        s -= 1
    e = start
    while e < len(buf) and K._CLASS[buf[e]] == 0:
        e += 1
    return s, e


def _check(job: _Job, ctx: _ParseContext, s: Settings) -> None:
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
        # a token error on a line that is too long anyway: the length is the news
        line_start = buf[:start].tobytes().rfind(b"\n") + 1
        line_end = K.first_newline(buf, start)
        if line_end - line_start > s.max_line:
            code, start, end, aux = K.E_LINE_TOO_LONG, line_start, line_end, s.max_line
        raise ctx.error(job, code, start, end, aux)


@dataclass
class BlockMeta:
    """Per-chunk facts the callers need besides the arrays."""

    min_index: int
    max_index: int
    boundary: tuple | None  # (line, token) of the first raw index equal to the boundary


def _meta(job: _Job, ctx: _ParseContext, want_boundary: bool) -> BlockMeta:
    """The chunk's index range and, if ``want_boundary``, where its boundary index is."""
    info = job.info
    bound = None
    if want_boundary and info[K.I_BOUND_START] >= 0:
        s, e = int(info[K.I_BOUND_START]), int(info[K.I_BOUND_END])
        bound = (ctx.line_of(job, s), token_text(job.buf, s, e))
    return BlockMeta(int(info[K.I_MIN]), int(info[K.I_MAX]), bound)


def iter_parsed(
    source: ChunkSource,
    *,
    begin: int,
    end_hint: int | None,
    n_labels: int,
    num_features: int | None,
    settings: Settings,
    workers: int,
    pool: BufferPool | None = None,
    label_dtype=None,
) -> Iterator[tuple[LibSVMBlock, BlockMeta]]:
    """Parse the lines of ``[begin, end)`` chunk by chunk; yields blocks in file order with
    raw (unshifted) indices. Up to ``workers + 1`` chunks are parsed ahead of the consumer.
    ``n_labels`` 0 takes the count from the first data row. An error of the source (corrupt
    compressed data, a line too long) is raised after the blocks before it. ``pool``: where the
    blocks' arrays come from (see :class:`~.pipeline.BufferPool`); fresh arrays without one.
    ``label_dtype``: the blocks' labels in this dtype (cast on the parser threads), float64 without."""
    ctx = _ParseContext(source, num_features, settings.mode, n_labels, begin, settings.dtype)

    def make_job(buf, offset, first):
        if not ctx.n_labels:
            ctx.n_labels = K.first_row_label_count(buf)
        return _Job(buf, 0, ctx.n_labels or 1, offset)

    boundary_seen = False
    run = functools.partial(_parse_into_own_arrays, s=settings, pool=pool, label_dtype=label_dtype)
    for job in parse_chunks(source, begin, end_hint, run, workers, make_job):
        _check(job, ctx, settings)
        meta = _meta(job, ctx, want_boundary=not boundary_seen)
        boundary_seen = boundary_seen or meta.boundary is not None
        block = LibSVMBlock(job.data, job.indices, job.indptr, job.labels.reshape(job.rows, job.n_labels),
                            offset=job.offset, end=job.end, spare=pool is not None)
        job.buf = None  # done with the bytes
        yield block, meta


def settings_for(mode: int, num_features: int | None, dtype, max_line_bytes: int) -> Settings:
    """Kernel settings: raw indices allowed below ``index_limit``; ``boundary`` is the raw
    index valid only if an "auto" file turns out one-based."""
    value_limit = K.FLOAT32_LIMIT if dtype == np.float32 else math.inf
    if num_features is None:
        limit, boundary = -1, -1
    elif mode == K.ZERO_BASED:
        limit, boundary = num_features, -1
    elif mode == K.ONE_BASED:
        limit, boundary = num_features + 1, -1
    else:
        limit, boundary = num_features + 1, num_features
    return Settings(mode, limit, boundary, value_limit, max_line_bytes, np.dtype(dtype))


def range_error(path, line, token, num_features) -> DataFormatError:
    return DataFormatError(
        f"{os.fspath(path)}:{line}: feature index {quoted(token)} is out of range for "
        f"num_features={num_features} (the file has index 0, so it is zero-based)"
    )


def load_arrays(source: ChunkSource, num_features: int | None, settings: Settings, workers: int):
    """The whole file as ``(data, indices, indptr, labels, metas)`` with raw (unshifted)
    indices and 2-D labels, or None when it has no data rows."""
    if source.mappable():
        return _load_mapped(source, num_features, settings, workers)
    return _load_streamed(source, num_features, settings, workers)


def _load_streamed(source: ChunkSource, num_features, settings, workers):
    """Parse chunk by chunk into separate arrays, then concatenate them."""
    blocks, metas = [], []
    for block, meta in iter_parsed(
        source, begin=0, end_hint=None, n_labels=0, num_features=num_features, settings=settings, workers=workers,
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
    return data, indices, stacked_indptr(blocks), labels, metas


def stacked_indptr(blocks) -> np.ndarray:
    """The row pointers of the rows of ``blocks`` one after another (each block's shifted by the
    entries of the blocks before it)."""
    indptr = np.zeros(sum(b.num_rows for b in blocks) + 1, np.int64)
    r = off = 0
    for b in blocks:
        np.add(b.indptr[1:], off, out=indptr[r + 1 : r + b.num_rows + 1])
        r += b.num_rows
        off += b.nnz
    return indptr


def _load_mapped(source: ChunkSource, num_features, settings, workers):
    """Two parallel passes over a memory-mapped file: count each chunk's newlines and colons,
    which bound its rows and entries, then parse every chunk straight into its slice of the
    output arrays. Slices a chunk did not fill (comments, blank lines, ``qid``) are closed up
    at the end."""
    jobs: list[_Job] = []
    tasks = []
    bufs = []
    try:
        bufs = [buf for buf, _ in source.chunks()]  # views of the mapped file
        if not bufs:
            return None
        counts = list(executor(workers).map(K.count_newlines_colons, bufs))
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
        ctx = _ParseContext(source, num_features, settings.mode, n_labels, 0, settings.dtype)
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
        run = functools.partial(_run_kernel, s=settings)
        tasks = [submit(run, job, workers) for job in jobs]
        metas = []
        boundary_seen = False
        for task in tasks:
            job = task.result()
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
                kept = labels[row_room * n_labels : (row_room + r) * n_labels]
                labels[row_off * n_labels : (row_off + r) * n_labels] = kept
            row_off += r
            nnz_off += z
            row_room += newlines
            nnz_room += colons
            job.buf = job.data = job.indices = job.row_ends = job.labels = None
        for a, n in ((data, nnz), (indices, nnz), (indptr, rows + 1), (labels, rows * n_labels)):
            a.resize(n, refcheck=False)  # shrinks in place
        return data, indices, indptr, labels.reshape(rows, n_labels), metas
    finally:  # an error: the later chunks' parses must not read the file after we return
        cancel(tasks)
        bufs.clear()  # the last views of the map: it is unmapped with them
        jobs.clear()
