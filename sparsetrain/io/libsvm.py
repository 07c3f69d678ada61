"""Read LibSVM / svmlight text files: the public API.

- :func:`load_libsvm` parses a whole file into a ``CSRNDArray`` and a label array, matching
  scikit-learn's ``load_svmlight_file`` (values, ``zero_based="auto"``, ``qid``, comments...).
- :class:`LibSVMReader` streams a file, or one of ``num_parts`` byte-range parts of it, as
  parsed blocks of rows in bounded memory.
- :func:`dump_libsvm` (in ``libsvm_dump.py``) writes a matrix and labels so that
  :func:`load_libsvm` reads back exactly the same values.

How the work is shared: ``chunks.py`` reads the bytes (decompression, parts, chunks of whole
lines, the line-length bound), ``libsvm_parse.py`` runs the compiled parser
(``_libsvm_kernels.py``, numbers by ``_decimal_kernels.py``) over the chunks on a pool of
threads and turns its reports into messages. This module checks arguments and decides
what the indices mean (``zero_based``, ``num_features``).

Malformed input raises :class:`sparsetrain.base.DataFormatError` naming the file, the line and
the offending token, e.g. ``data/x.libsvm:1832: feature index 'abc' is not an integer``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
from typing import Iterator

import numpy as np

from ..base import DataFormatError
from . import _libsvm_kernels as K
from .base import STDIN_PATH, STDIN_READ_ONCE
from .chunks import DEFAULT_CHUNK_SIZE, DEFAULT_MAX_LINE_BYTES, ChunkSource, open_data
from .libsvm_dump import dump_libsvm
from .libsvm_parse import LibSVMBlock, default_workers, iter_parsed, load_arrays, range_error, settings_for
from .pipeline import BufferPool

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_MAX_LINE_BYTES",
    "LibSVMBlock",
    "LibSVMReader",
    "dump_libsvm",
    "libsvm_num_features",
    "load_libsvm",
    "open_libsvm",
]

#: Open a data file, decompressing gzip/bzip2 content transparently (see ``chunks.open_data``).
open_libsvm = open_data


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


def _float_dtype(dtype, name: str = "dtype") -> np.dtype:
    """``dtype`` as np.float32 or np.float64; another (or no dtype: ``'bogus'``) is a ValueError naming ``name``."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in (np.float32, np.float64):
        raise ValueError(f"{name} must be float32 or float64, got {repr(dtype) if dt is None else dt}")
    return dt


def _num_features(num_features) -> int | None:
    if num_features is None:
        return None
    if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)) or num_features < 1:
        raise ValueError(f"num_features must be a positive integer or None, got {num_features!r}")
    return int(num_features)


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
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
):
    """Read a LibSVM / svmlight file into ``(CSRNDArray, labels)``.

    num_features: number of columns; None takes the largest index + 1 (as scikit-learn,
        at least 1). An index that does not fit is an error naming its line.
    zero_based: True, False or "auto" (as scikit-learn: the file is one-based, and its
        indices are shifted down by one, unless index 0 occurs in it).
    dtype: float32 or float64, for the values and the labels.
    Labels are a 1-D array, or 2-D ``(rows, k)`` when every row has ``k`` comma-separated
    labels (``dump_libsvm`` writes 2-D labels that way).

    max_line_bytes: a longer line is an error naming it (a bound on the memory one line
        can take, e.g. reading ``/dev/zero`` or a small ``.gz`` that holds one huge line).

    A plain file is memory-mapped, counted and parsed by all workers straight into the
    output arrays; a compressed one is decompressed and parsed chunk by chunk.
    Raises DataFormatError for malformed input, including a file without data rows and
    corrupt or truncated compressed data.
    """
    mode = _zero_based_mode(zero_based)
    dtype = _float_dtype(dtype)
    num_features = _num_features(num_features)
    source = ChunkSource(path, chunk_size, max_line_bytes)
    settings = settings_for(mode, num_features, dtype, source.max_line_bytes)
    parsed = load_arrays(source, num_features, settings, workers or default_workers())
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
            raise range_error(path, hit[0], hit[1], num_features)
    if shift:
        indices -= 1
    if num_features is None:
        num_features = (max_idx - shift if nnz else 0) + 1
    from ..ndarray.sparse import csr_matrix

    X = csr_matrix((data, indices, indptr), shape=(len(indptr) - 1, num_features), dtype=dtype)
    y = labels[:, 0] if labels.shape[1] == 1 else labels
    return X, np.ascontiguousarray(y, dtype=dtype)


def libsvm_num_features(paths, zero_based="auto", *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> int:
    """The number of features of LibSVM files: their largest column id + 1 (ids zero-based as
    ``zero_based`` decides, per file as :func:`load_libsvm` does; at least 1), from one streamed
    pass over each file in bounded memory. Malformed input raises ``DataFormatError``."""
    largest = -1
    for path in paths:
        for block in LibSVMReader(path, zero_based=zero_based, max_line_bytes=max_line_bytes):
            if block.nnz:
                largest = max(largest, int(block.indices.max()))
    return largest + 1 if largest >= 0 else 1


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
    path ``-`` reads stdin, once (``zero_based`` True or False, one part).
    zero_based: True, False or "auto"; "auto" decides for the whole file as scikit-learn does,
        which costs one extra pass over a one-based file (stopping early at the first index 0
        of a zero-based one). Pass True or False to avoid it.
    max_line_bytes: a longer line is an error naming it (see :func:`load_libsvm`).
    label_dtype: the blocks' labels in this dtype (cast on the parser threads, off the consumer's),
        float64 by default.
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
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        label_dtype=None,
    ):
        self.path = path
        self.label_dtype = None if label_dtype is None else _float_dtype(label_dtype, "label_dtype")
        self.num_features = _num_features(num_features)
        self._mode = _zero_based_mode(zero_based)
        self.dtype = _float_dtype(dtype)
        if num_labels is not None and (not isinstance(num_labels, (int, np.integer)) or num_labels < 1):
            raise ValueError(f"num_labels must be a positive integer or None, got {num_labels!r}")
        self.num_labels = None if num_labels is None else int(num_labels)
        self.source = ChunkSource(path, chunk_size, max_line_bytes)
        self.chunk_size = self.source.chunk_size
        if num_parts < 1 or not 0 <= part_index < num_parts:
            raise ValueError(f"need 0 <= part_index < num_parts, got part_index={part_index}, num_parts={num_parts}")
        self._stdin = os.fspath(path) == "-"
        if self._stdin:  # read once, as it comes
            if self._mode == K.AUTO_BASED:
                raise ValueError("zero_based='auto' reads the file twice; give True or False to read stdin ('-')")
            if num_parts != 1 or start_row:
                raise ValueError("stdin ('-') is read whole: num_parts and start_row do not apply")
            self.source = ChunkSource(STDIN_PATH, chunk_size, max_line_bytes)
        elif not os.path.exists(path):
            raise FileNotFoundError(f"no such file: {os.fspath(path)}")
        elif not os.path.isfile(path):
            # it is read once per iteration (and once more to decide zero_based="auto")
            raise DataFormatError(f"{os.fspath(path)}: streaming needs a regular file, not a pipe or device")
        if start_row and num_parts != 1:
            raise ValueError("start_row needs num_parts == 1")
        self.num_parts = int(num_parts)
        self.part_index = int(part_index)
        self.start_row = int(start_row)
        self.workers = workers or default_workers()
        self._range: tuple[int, int | None] | None = None
        self._pool = BufferPool()  # each pass parses into the arrays of chunks no longer in use

    @property
    def display(self) -> str:
        """The file as messages name it (``<stdin>`` for ``-``)."""
        return self.source.name

    @property
    def rows_checked(self) -> bool:
        """Whether every block's rows are canonical CSR (column ids strictly increase within a row) with
        ids in ``[0, num_features)``: the parser refuses anything else when ``num_features`` is given, so a
        consumer (the compiled engine) need not check the blocks again."""
        return self.num_features is not None

    @property
    def zero_based(self) -> bool:
        """Whether the file's indices are zero-based (decided on first use for "auto")."""
        if self._mode == K.AUTO_BASED:
            self._mode = K.ZERO_BASED if self._detect_zero_based() else K.ONE_BASED
        return self._mode == K.ZERO_BASED

    def byte_range(self) -> tuple[int, int | None]:
        """(begin, end_hint) of the lines this reader reads; see ``ChunkSource.part_range``."""
        if self._range is None:
            if self.start_row:
                begin = self.source.offset_of_row(self.start_row)
                if begin is None:
                    raise DataFormatError(f"{os.fspath(self.path)}: has fewer than {self.start_row} data rows")
                self._range = (begin, None)
            else:
                self._range = self.source.part_range(self.num_parts, self.part_index)
        return self._range

    def rows_before(self) -> int:
        """Data rows of the file before this reader's first row."""
        begin, _ = self.byte_range()
        return self.start_row or (self.source.rows_before(begin) if begin else 0)

    def _settings(self, mode: int):
        return settings_for(mode, self.num_features, self.dtype, self.source.max_line_bytes)

    def _detect_zero_based(self) -> bool:
        settings = dataclasses.replace(self._settings(K.AUTO_BASED), boundary=-1)
        any_index = False
        # small chunks: a zero-based file usually shows an index 0 within its first rows
        small = ChunkSource(self.path, min(self.chunk_size, 1 << 20), self.source.max_line_bytes)
        with contextlib.closing(
            iter_parsed(
                small, begin=0, end_hint=None, n_labels=self.num_labels or 0,
                num_features=self.num_features, settings=settings, workers=self.workers,
            )
        ) as blocks:
            for block, meta in blocks:
                if meta.min_index == 0:
                    return True
                any_index = any_index or block.nnz > 0
        return not any_index

    def __iter__(self) -> Iterator[LibSVMBlock]:
        if self._stdin:
            if getattr(self, "_stdin_read", False):
                raise DataFormatError(STDIN_READ_ONCE)
            self._stdin_read = True
        zero_based = self.zero_based
        mode = K.ZERO_BASED if zero_based else K.ONE_BASED
        begin, end_hint = self.byte_range()
        for block, _ in iter_parsed(
            self.source, begin=begin, end_hint=end_hint, n_labels=self.num_labels or 0,
            num_features=self.num_features, settings=self._settings(mode), workers=self.workers, pool=self._pool,
            label_dtype=self.label_dtype,
        ):
            if not zero_based:
                block.indices -= 1
            block.num_features = self.num_features
            if block.num_rows:
                yield block
