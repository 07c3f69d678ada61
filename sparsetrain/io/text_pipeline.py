"""What the hashed text formats (CSV/TSV, Vowpal Wabbit) share on top of the one chunk
pipeline (:func:`~sparsetrain.io.pipeline.parse_chunks`, which LibSVM uses too): the reader
base class (path or stdin, parts, iterating parsed chunks as blocks), line numbers and token
text for messages, and concatenating blocks into one CSR matrix.
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
from .libsvm_parse import LibSVMBlock, stacked_indptr
from .pipeline import BufferPool, ChunkJob, default_workers, parse_chunks, room

__all__ = ["HashedTextReader", "TextJob", "job_block", "keep_parsed", "line_of", "token_text", "concat_blocks", "load_blocks", "finite_limit"]


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


def token_text(buf, start: int, end: int, limit: int = 60) -> str:
    text = bytes(buf[start:end]).decode("utf-8", "backslashreplace")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def keep_parsed(job: TextJob, indptr, rows: int, nnz: int) -> None:
    """The job's arrays cut (as views: they may be a pool's) to the ``rows`` rows and ``nnz`` entries
    the kernel wrote."""
    job.data, job.indices = job.data[:nnz], job.indices[:nnz]
    job.indptr = indptr[: rows + 1]
    job.labels = job.labels[:rows]
    if job.weights is not None:
        job.weights = job.weights[:rows]


def job_block(job: TextJob, num_features: int) -> LibSVMBlock:
    """The job's rows as a block (labels as (rows, 1); ``weights`` when the format has them)."""
    return LibSVMBlock(job.data, job.indices, job.indptr, job.labels.reshape(-1, 1), num_features,
                       weights=job.weights, offset=job.offset, end=job.end)


def concat_blocks(blocks: list[LibSVMBlock], num_features: int):
    """One ``(data, indices, indptr, labels, weights)`` of several blocks (weights None if none has them)."""
    data = np.concatenate([b.data for b in blocks]) if blocks else np.zeros(0, np.float32)
    indices = np.concatenate([b.indices for b in blocks]) if blocks else np.zeros(0, np.int64)
    labels = np.concatenate([b.labels[:, 0] for b in blocks]) if blocks else np.zeros(0)
    indptr = stacked_indptr(blocks)
    weights = None
    if any(b.weights is not None for b in blocks):
        weights = np.concatenate([b.weights if b.weights is not None else np.ones(b.num_rows) for b in blocks])
    return data, indices, indptr, labels, weights


def load_blocks(reader, dtype, label_dtype=None):
    """All blocks of ``reader`` as ``(CSRNDArray, labels, weights or None)`` (labels in ``label_dtype``,
    default ``dtype``); no rows is an error."""
    from ..ndarray.sparse import csr_matrix

    blocks = list(reader)
    if not blocks:
        raise DataFormatError(f"{reader.display}: no data rows")
    data, indices, indptr, labels, weights = concat_blocks(blocks, reader.num_features)
    X = csr_matrix((data, indices, indptr), shape=(len(indptr) - 1, reader.num_features), dtype=dtype)
    return X, labels.astype(label_dtype or dtype), weights


def finite_limit(dtype) -> float:
    return LK.FLOAT32_LIMIT if np.dtype(dtype) == np.float32 else math.inf
