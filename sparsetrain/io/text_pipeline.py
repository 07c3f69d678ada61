"""What the hashed text formats (CSV/TSV, Vowpal Wabbit) share on top of the one chunk
pipeline (:func:`~sparsetrain.io.pipeline.parse_chunks`, which LibSVM uses too): the reader
base class (path or stdin, parts, iterating parsed chunks as blocks), line numbers for messages, and
concatenating blocks into one CSR matrix.
"""
from __future__ import annotations

import math
import os
from typing import Iterator

import numpy as np

from ..base import DataFormatError
from . import _libsvm_kernels as LK
from .base import STDIN_PATH, STDIN_READ_ONCE, display_name
from .chunks import ChunkSource
from .libsvm_parse import LibSVMBlock
from .pipeline import BufferPool, ChunkJob, default_workers, parse_chunks, room

__all__ = ["HashedTextReader", "TextJob", "job_block", "keep_parsed", "line_of", "BlockStack",
           "concat_blocks", "load_blocks", "finite_limit"]


TextJob = ChunkJob  # one chunk of a hashed text file (``job.first``: it starts the file, a header is there)


class HashedTextReader:
    """What the CSV/TSV and Vowpal Wabbit readers share: the path (``-``: stdin, read once), the
    byte range of a part, and iterating the parsed chunks as blocks. A subclass calls ``_open``
    (path, dtype, chunk source, part, workers), sets ``num_features``, and implements ``_run(job)`` (worker thread) and ``_check(job, begin, cache)`` (raises the
    chunk's first error); ``_prepare()`` runs before a pass."""

    def _open(self, path, dtype, chunk_size: int, max_line_bytes: int, num_parts: int, part_index: int,
              workers: int | None) -> None:
        self.stdin = os.fspath(path) == "-"
        self.path = STDIN_PATH if self.stdin else path
        self.display = display_name(path)
        self._stdin_read = False
        self.dtype = np.dtype(dtype)
        self.source = ChunkSource(self.path, chunk_size, max_line_bytes)
        if num_parts < 1 or not 0 <= part_index < num_parts:
            raise ValueError(f"need 0 <= part_index < num_parts, got part_index={part_index}, num_parts={num_parts}")
        self.num_parts, self.part_index = int(num_parts), int(part_index)
        self.workers = workers or default_workers()
        # each pass parses into the arrays of chunks no longer in use: a streamed epoch's chunks
        # then cost no fresh pages (a page fault per 4 KiB of output, a large share of the parse)
        self._pool = BufferPool()

    def _room(self, spec) -> list:
        """Output arrays of at least ``n`` elements of ``dtype`` for each ``(n, dtype)`` of ``spec``,
        ``n`` rounded up (:func:`~.pipeline.room`) so that chunks of about the same size use the same
        arrays again."""
        return self._pool.take([(room(n), dt) for n, dt in spec])

    def _prepare(self) -> None:
        pass

    @property
    def rows_checked(self) -> bool:
        """Every block's rows are canonical CSR (column ids strictly increase within a row: the kernels
        sort a row's ids and sum repeated ones; numeric columns come after every hashed id) with ids in
        ``[0, num_features)`` (hashed ids are masked): a consumer (the compiled engine) need not check
        the blocks again, as for ``LibSVMReader.rows_checked``."""
        return True

    #: ``tap(reader, chunk_bytes, first)`` for each chunk parsed without error, in file order (stdin's
    #: feature names: ``io.feature_names.KeysTap``), or None
    chunk_tap = None

    _header_lines = 0  # lines before the first data row that count as rows for ``ChunkSource`` (a CSV header)

    def rows_before(self) -> int:
        """Data rows of the file before this reader's part."""
        begin, _ = self.byte_range()
        return 0 if begin == 0 else self.source.rows_before(begin) - self._header_lines

    def line_of_row(self, row: int) -> int | None:
        """The 1-based line of data row ``row`` (0-based) of the file; None for stdin or past the end."""
        return None if self.stdin else self.source.line_of_row(row + self._header_lines)

    def byte_range(self) -> tuple[int, int | None]:
        if self.num_parts == 1:
            return 0, None
        return self.source.part_range(self.num_parts, self.part_index)

    def __iter__(self) -> Iterator[LibSVMBlock]:
        if self.stdin:
            if self._stdin_read:
                raise DataFormatError(STDIN_READ_ONCE)
            self._stdin_read = True
        self._prepare()
        begin, end_hint = self.byte_range()
        cache: dict = {}
        for job in parse_chunks(self.source, begin, end_hint, self._run, self.workers):
            self._check(job, begin, cache)
            if self.chunk_tap is not None:
                self.chunk_tap(self, job.buf, job.first)
            job.buf = None
            if len(job.indptr) > 1:
                yield job_block(job, self.num_features)


def count_newlines(buf) -> int:
    """Newlines in ``buf``: a bound on the rows of a chunk."""
    return LK.count_newlines(buf)


def line_of(source: ChunkSource, begin: int, job: TextJob, pos: int, cache: dict) -> int:
    """The 1-based line number of byte ``pos`` of ``job.buf`` in the file (the pass started at ``begin``)."""
    if "before" not in cache:
        cache["before"] = 0 if begin == 0 else source.newlines_before(begin)
    return cache["before"] + job.lines_before + LK.count_newlines(job.buf[:pos]) + 1


def keep_parsed(job: TextJob, indptr, rows: int, nnz: int) -> None:
    """The job's arrays cut (as views: they may be a pool's) to the ``rows`` rows and ``nnz`` entries
    the kernel wrote."""
    job.data, job.indices = job.data[:nnz], job.indices[:nnz]
    job.indptr = indptr[: rows + 1]
    job.labels = job.labels[:rows]
    if job.weights is not None:
        job.weights = job.weights[:rows]


def job_block(job: TextJob, num_features: int) -> LibSVMBlock:
    """The job's rows as a block (labels as (rows, 1); ``weights`` when the format has them). Its CSR
    arrays start arrays only this chunk uses (its reader's pool's, or the kernel's own when it needed
    more room), so the block is ``spare``: a streamed epoch may write a batch spanning two chunks
    after its rows (``stream_rows.Rows.joined``), as for a LibSVM chunk."""
    return LibSVMBlock(job.data, job.indices, job.indptr, job.labels.reshape(-1, 1), num_features,
                       weights=job.weights, offset=job.offset, end=job.end, spare=True)


class BlockStack:
    """Blocks appended one by one into the arrays of one CSR matrix, each block copied once as it
    comes: the reader's pool then parses the next chunks into the arrays of the blocks already
    copied (no fresh pages for them, and memory holds the rows once, not the blocks and their
    concatenation). The arrays grow as needed, to an estimate of the whole file when its size is
    known (``total_bytes``: the bytes the blocks' ``offset``/``end`` count through), else by
    doubling; capacity that is never written costs address space, not memory."""

    def __init__(self, dtype=None, label_dtype=None, total_bytes: int | None = None):
        self.dtype, self.label_dtype, self.total_bytes = dtype, label_dtype, total_bytes
        self.rows = self.nnz = 0
        self._first = None  # the first block's offset: where the counted bytes begin
        self.data = self.indices = self.labels = self.weights = None
        self.indptr = np.zeros(1, np.int64)

    @staticmethod
    def _grown(a, used: int, need: int, estimate: int, dtype, fill=None):
        """``a`` if it holds ``need`` elements, else a larger array with ``a``'s first ``used`` (or ``fill``)."""
        if a is not None and len(a) >= need:
            return a
        size = max(need, estimate, 2 * (0 if a is None else len(a)))
        grown = np.empty(size, dtype)
        if fill is not None:
            grown[:used] = fill
        elif used:
            grown[:used] = a[:used]
        return grown

    def add(self, block) -> None:
        rows, nnz = block.num_rows, block.nnz
        r, n = self.rows, self.nnz
        if self._first is None:
            self._first = block.offset
            self.data = np.empty(0, self.dtype or block.data.dtype)
            self.indices = np.empty(0, np.int64)
            self.labels = np.empty(0, self.label_dtype or block.labels.dtype)
        done = block.end - self._first
        scale = self.total_bytes / done if self.total_bytes and done > 0 and block.end <= self.total_bytes else 0
        est_nnz, est_rows = int((n + nnz) * scale * 1.02), int((r + rows) * scale * 1.02) + 1
        self.data = self._grown(self.data, n, n + nnz, est_nnz, self.data.dtype)
        self.indices = self._grown(self.indices, n, n + nnz, est_nnz, np.int64)
        self.indptr = self._grown(self.indptr, r + 1, r + rows + 1, est_rows + 1, np.int64)
        self.labels = self._grown(self.labels, r, r + rows, est_rows, self.labels.dtype)
        self.data[n:n + nnz] = block.data[:nnz]
        self.indices[n:n + nnz] = block.indices[:nnz]
        np.add(block.indptr[1:rows + 1], n, out=self.indptr[r + 1:r + rows + 1])
        self.labels[r:r + rows] = block.labels[:rows, 0]
        if block.weights is not None or self.weights is not None:
            self.weights = self._grown(self.weights, r, r + rows, est_rows, np.float64,
                                      fill=1.0 if self.weights is None else None)
            self.weights[r:r + rows] = 1.0 if block.weights is None else block.weights[:rows]
        self.rows, self.nnz = r + rows, n + nnz

    def arrays(self):
        """``(data, indices, indptr, labels, weights or None)`` of the blocks added (views of the arrays)."""
        r, n = self.rows, self.nnz
        if self._first is None:
            return (np.zeros(0, self.dtype or np.float32), np.zeros(0, np.int64), self.indptr,
                    np.zeros(0, self.label_dtype or np.float64), None)
        return (self.data[:n], self.indices[:n], self.indptr[:r + 1], self.labels[:r],
                None if self.weights is None else self.weights[:r])


def concat_blocks(blocks, num_features: int = None, dtype=None, label_dtype=None, total_bytes=None):
    """One ``(data, indices, indptr, labels, weights)`` of an iterable of blocks (weights None if none
    has them; ``dtype``/``label_dtype``: of the values and labels, default the blocks'), through a
    :class:`BlockStack`."""
    stack = BlockStack(dtype, label_dtype, total_bytes)
    for block in blocks:
        stack.add(block)
    return stack.arrays()


def load_blocks(reader, dtype, label_dtype=None):
    """All blocks of ``reader`` as ``(CSRNDArray, labels, weights or None)`` (labels in ``label_dtype``,
    default ``dtype``); no rows is an error. The rows are the parser's: canonical CSR within the shape
    (``rows_checked``), so they are wrapped as they are, not checked again."""
    from ..ndarray import CSRNDArray

    source = reader.source  # a plain file's size bounds the estimate of the arrays' lengths
    total = os.stat(source.path).st_size if reader.num_parts == 1 and source.mappable() else None
    data, indices, indptr, labels, weights = concat_blocks(reader, reader.num_features, np.dtype(dtype),
                                                           np.dtype(label_dtype or dtype), total)
    if len(indptr) == 1:
        raise DataFormatError(f"{reader.display}: no data rows")
    width = reader.num_features or (int(indices.max()) + 1 if len(indices) else 1)  # (LibSVM without one)
    X = CSRNDArray(data, indices, indptr, (len(indptr) - 1, width))
    return X, labels, weights


def finite_limit(dtype) -> float:
    return LK.FLOAT32_LIMIT if np.dtype(dtype) == np.float32 else math.inf
