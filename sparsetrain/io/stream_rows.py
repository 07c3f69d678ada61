"""What :class:`~sparsetrain.io.libsvm_iter.LibSVMIter` streams with: :class:`ChainedReader` (the files of a
stream one after the other), :class:`Rows` (the CSR rows with labels that batches are cut from) and
:class:`EpochPiece` (a run of whole batches of a streamed epoch, as the compiled engine trains it)."""
from __future__ import annotations

import os

import numpy as np

from .ndarray_iter import csr_take_rows

__all__ = ["ChainedReader", "EpochPiece", "Rows", "counting"]


class ChainedReader:
    """The blocks of several readers (one per file: ``LibSVMReader``, ``CSVReader``, ``VWReader``)
    one file after the other, as one stream; ``locate(row)`` is ``"file:line"`` of a row of the
    current pass (for the label checks' messages)."""

    def __init__(self, readers, names):
        self.readers = list(readers)
        self.names = [os.fspath(n) for n in names]
        self.num_features = getattr(self.readers[0], "num_features", None)
        self._starts: list[int] = []  # first row of each file begun in this pass

    def __iter__(self):
        self._starts = []
        rows = 0
        for reader in self.readers:
            self._starts.append(rows)
            for block in reader:
                rows += block.num_rows
                yield block

    def rows_before(self) -> int:
        return 0

    @property
    def rows_checked(self) -> bool:
        """Whether every reader vouches for its blocks (see ``LibSVMReader.rows_checked``)."""
        return all(getattr(r, "rows_checked", False) for r in self.readers)

    def locate(self, row: int) -> str:
        k = max(i for i, start in enumerate(self._starts) if start <= row)
        reader, local = self.readers[k], row - self._starts[k]
        if hasattr(reader, "line_of_row"):
            line = reader.line_of_row(local)
        else:
            source = getattr(reader, "source", None)
            line = source.line_of_row(local) if source is not None else None
        return f"{self.names[k]} (row {local + 1})" if line is None else f"{self.names[k]}:{line}"


class EpochPiece:
    """A run of whole batches of a streamed epoch, in the form of ``NDArrayIter.epoch_rows``:
    ``data``/``label`` as ``[(name, array)]``, and ``order[batch_ptr[b]:batch_ptr[b+1]]`` the rows
    of batch ``b``; ``pad`` rows of padding end the last batch; ``sample_weight``: the rows' importance
    weights (float64, by row), or None."""

    __slots__ = ("data", "label", "order", "batch_ptr", "pad", "sample_weight", "checked_csr")

    def __init__(self, data, label, order, batch_ptr, pad, sample_weight=None, checked_csr=False):
        self.data, self.label, self.order, self.batch_ptr, self.pad = data, label, order, batch_ptr, pad
        self.sample_weight = sample_weight
        self.checked_csr = checked_csr

    def reset(self) -> None:
        pass

    def epoch_rows(self):
        return self.order, self.batch_ptr, self.pad


_COUNTING = np.arange(1 << 16, dtype=np.int64)


def counting(n: int) -> np.ndarray:
    """``0, 1, ..., n - 1`` (int64) as a view of one array kept for it (grown as needed): a streamed epoch's
    pieces are runs of consecutive rows (and at batch size 1 of consecutive batch boundaries), ~30k a chunk,
    without two new arrays a chunk. Nothing may write to it (the engine reads ``order`` and ``batch_ptr``).

    It is not marked read-only: numba types a read-only array apart (``Array(int64, 1, 'C', readonly=True)``),
    so every epoch kernel and plan a streamed piece reaches would compile a second variant beside the one an
    in-memory epoch (and the warm-up child, ``trainer/warmup.py``) compiles, in the foreground of a first
    streamed run."""
    global _COUNTING
    counts = _COUNTING
    if len(counts) < n:
        counts = _COUNTING = np.arange(max(n, 2 * len(counts)), dtype=np.int64)
    return counts[:n]


def _room(a: np.ndarray, n: int):
    """The array ``a`` is the start of, when it has room for ``n`` elements (else None)."""
    base = a.base
    if (isinstance(base, np.ndarray) and base.ndim == 1 and base.dtype == a.dtype and base.flags.c_contiguous
            and base.flags.writeable and len(base) >= n and a.ndim == 1
            and a.__array_interface__["data"][0] == base.__array_interface__["data"][0]):
        return base
    return None


class Rows:
    """CSR rows with dense labels (and importance weights, or None): the unit batches are cut from."""

    __slots__ = ("data", "indices", "indptr", "labels", "end", "weights", "spare")

    def __init__(self, data, indices, indptr, labels, end: int = 0, weights=None, spare: bool = False):
        self.data, self.indices, self.indptr, self.labels = data, indices, indptr, labels
        self.end = end  # byte offset in the file just past these rows' chunk (0: not from the file)
        self.weights = weights  # importance weights (VW), None when every row counts once
        # the CSR arrays start arrays that nothing else uses, with room after them (a parsed chunk's:
        # ParsedChunk.spare), where joined() may write rows
        self.spare = spare

    @property
    def n(self) -> int:
        return len(self.indptr) - 1

    def slice(self, r0: int, r1: int) -> "Rows":
        lo, hi = self.indptr[r0], self.indptr[r1]
        w = None if self.weights is None else self.weights[r0:r1]
        return Rows(self.data[lo:hi], self.indices[lo:hi], self.indptr[r0 : r1 + 1] - lo, self.labels[r0:r1],
                     weights=w)

    def joined(self, tail: "Rows") -> "Rows | None":
        """These rows, then ``tail``'s, written after these rows in the room of their arrays (``spare``):
        no copy of these rows. None where there is no such room."""
        if not self.spare:
            return None
        n, k = self.n, tail.n
        nnz, m = int(self.indptr[n]), int(tail.indptr[k])
        if self.indptr[0] != 0 or len(self.data) != nnz or len(self.indices) != nnz or tail.indptr[0] != 0:
            return None
        data, indices, indptr = _room(self.data, nnz + m), _room(self.indices, nnz + m), _room(self.indptr, n + k + 1)
        if data is None or indices is None or indptr is None:
            return None
        data[nnz:nnz + m] = tail.data[:m]
        indices[nnz:nnz + m] = tail.indices[:m]
        np.add(tail.indptr[1:], nnz, out=indptr[n + 1:n + k + 1])
        return Rows(data[:nnz + m], indices[:nnz + m], indptr[:n + k + 1], np.concatenate([self.labels, tail.labels]),
                     self.end, _weights([self, tail]))

    def copy(self) -> "Rows":
        w = None if self.weights is None else self.weights.copy()
        return Rows(self.data.copy(), self.indices.copy(), self.indptr.copy(), self.labels.copy(), weights=w)

    def take(self, rows: np.ndarray) -> "Rows":
        """These rows in the order ``rows`` (a copy)."""
        data, indices, indptr = csr_take_rows(self.data, self.indices, self.indptr, rows)
        w = None if self.weights is None else self.weights[rows]
        return Rows(data, indices, indptr, self.labels[rows], self.end, w)

    @staticmethod
    def concat(parts: list["Rows"]) -> "Rows":
        if len(parts) == 1:
            return parts[0]
        indptr = np.empty(sum(p.n for p in parts) + 1, np.int64)
        indptr[0] = 0
        r = 0
        off = 0
        for p in parts:
            indptr[r + 1 : r + p.n + 1] = p.indptr[1:] + off
            r += p.n
            off += int(p.indptr[-1])
        return Rows(
            np.concatenate([p.data for p in parts]),
            np.concatenate([p.indices for p in parts]),
            indptr,
            np.concatenate([p.labels for p in parts]),
            weights=_weights(parts),
        )


def _weights(parts: list[Rows]) -> np.ndarray | None:
    """The importance weights of ``parts`` one after another (1 for a part without), None if none has any."""
    if all(p.weights is None for p in parts):
        return None
    return np.concatenate([np.ones(p.n) if p.weights is None else p.weights for p in parts])
