"""Synthetic LibSVM data: the seed's ``y = X · [1..D]`` and friends, written at any size.

:func:`generate_libsvm` streams rows to disk block by block (constant memory whatever
``rows``; the true weights, of size ``features``, are the only thing held whole), formats
each block's text in one compiled pass, writes to a temporary file and renames it into place,
and saves the true weights beside the data as ``<path>.weights.npy``.

The rows:
- the number of non-zeros per row is ``nnz_per_row`` exactly, or Binomial(features, density);
- column ids are distinct and sorted within a row, drawn uniformly or from a Zipf law
  (``columns="zipf"``: column ``j`` has weight ``(j + 1) ** -zipf_a``, so low ids are the
  frequent ones, like the head of real click data);
- values are uniform on (0, 1] with six decimals (``k / 10**6``, written without trailing
  zeros), as MXNet's ``rand_ndarray`` draws uniform values.

The labels, from the score ``s = X · w`` computed in float64 from the written values:
- ``regression``: ``y = s + noise * N(0, 1)``, rounded to ``dtype``;
- ``binary``: ``y = 1 if s + noise * N(0, 1) > threshold else 0``, where ``threshold`` is the
  median score of 20,000 rows from an independent stream, so classes are roughly balanced;
- ``multiclass``: ``y = argmax_k (X · W)[k] + noise * N(0, 1)`` over ``classes`` columns.

The weights: ``target="arange"`` is the seed's ``w = [1, 2, ..., D]`` (for multiclass, column
``k`` of ``W`` holds ``j + 1`` in the rows ``j`` with ``j % classes == k``); ``"random"`` draws
``w`` (or ``W``) from N(0, 1). The ``.weights.npy`` file holds ``w`` of shape ``(D,)`` or
``W`` of shape ``(D, classes)``, indexed by zero-based column id.

The same arguments give a byte-identical file: every block of ``BLOCK_ROWS`` rows draws from
its own stream, ``SeedSequence(seed, spawn_key=(2, block))``, so the output does not depend
on ``chunk_rows`` either.
"""
from __future__ import annotations

import os
from typing import Callable

import numpy as np
import scipy.sparse as sp

from ..fileio import open_atomic
from ._libsvm_format import format_rows_fixed
from .synthetic_csv import generate_csv
from .synthetic_options import BLOCK_ROWS, SyntheticResult, check_call

__all__ = ["BLOCK_ROWS", "SyntheticResult", "generate", "generate_libsvm", "weights_path_for"]

#: Values are ``k / 10**VALUE_DECIMALS`` with ``k`` uniform in ``[1, 10**VALUE_DECIMALS]``.
VALUE_DECIMALS = 6
_PILOT_ROWS = 20_000


def weights_path_for(path) -> str:
    """Where :func:`generate_libsvm` saves the true weights of the data file ``path``."""
    return os.fspath(path) + ".weights.npy"


class _RowSampler:
    """Draws the sparsity pattern and values of blocks of rows."""

    def __init__(self, features, density, nnz_per_row, columns, zipf_a):
        self.D = int(features)
        self.density = density
        self.k = nnz_per_row
        self.zipf = columns == "zipf"
        self.a = float(zipf_a)
        self._zipf_p = None

    def _draw_columns(self, rng, size):
        if not self.zipf:
            return rng.integers(0, self.D, size=size, dtype=np.int64)
        out = rng.zipf(self.a, size=size).astype(np.int64) - 1
        bad = np.flatnonzero(out >= self.D)
        while bad.size:  # truncate the law at D by redrawing
            out[bad] = rng.zipf(self.a, size=bad.size) - 1
            bad = bad[out[bad] >= self.D]
        return out

    def _zipf_probabilities(self):
        if self._zipf_p is None:
            # (a steep law underflows to 0 past its first columns: a row still needs k of them, so each keeps
            # the least positive weight; zipf_a 1e308 was an internal error, "fewer non-zero entries in p")
            p = np.maximum(np.arange(1, self.D + 1, dtype=np.float64) ** -self.a, np.finfo(np.float64).tiny)
            self._zipf_p = p / p.sum()
        return self._zipf_p

    def _dense_row(self, rng, k):
        p = self._zipf_probabilities() if self.zipf else None
        return np.sort(rng.choice(self.D, size=k, replace=False, p=p))

    def sample(self, rng, n):
        """(indptr, columns, numerators) of ``n`` rows; values are numerators / 10**6."""
        D = self.D
        if self.k is not None:
            counts = np.full(n, self.k, np.int64)
        else:
            counts = rng.binomial(D, self.density, n).astype(np.int64)
        # Rows with more than half the columns are drawn directly; the others by drawing with
        # replacement and redrawing duplicates, which converges fast when rows are sparse.
        dense_rows = np.flatnonzero(counts > D // 2)
        sparse_counts = counts.copy()
        sparse_counts[dense_rows] = 0
        row = np.repeat(np.arange(n, dtype=np.int64), sparse_counts)
        cols = self._draw_columns(rng, len(row))
        for _ in range(200):
            order = np.argsort(row * D + cols, kind="stable")
            cols = cols[order]
            dup = np.flatnonzero((cols[1:] == cols[:-1]) & (row[1:] == row[:-1])) + 1
            if not dup.size:
                break
            cols[dup] = self._draw_columns(rng, dup.size)
        else:
            # a skewed law over few columns: finish the rows that still repeat a column directly
            stuck = np.unique(row[dup])
            sparse_counts[stuck] = 0
            dense_rows = np.union1d(dense_rows, stuck)
            keep = ~np.isin(row, stuck)
            row, cols = row[keep], cols[keep]
            cols = cols[np.argsort(row * D + cols, kind="stable")]
        if dense_rows.size:
            pieces = np.split(cols, np.cumsum(sparse_counts)[:-1])
            for r in dense_rows:
                pieces[r] = self._dense_row(rng, int(counts[r]))
            cols = np.concatenate(pieces) if pieces else cols
        indptr = np.zeros(n + 1, np.int64)
        np.cumsum(counts, out=indptr[1:])
        numerators = rng.integers(1, 10**VALUE_DECIMALS + 1, size=len(cols), dtype=np.int64)
        return indptr, cols, numerators


def _true_weights(rng, task, target, features, classes):
    if task == "multiclass":
        if target == "random":
            return rng.standard_normal((features, classes))
        W = np.zeros((features, classes))
        j = np.arange(features)
        W[j, j % classes] = j + 1
        return W
    if target == "random":
        return rng.standard_normal(features)
    return np.arange(1, features + 1, dtype=np.float64)


def _scores(indptr, cols, numerators, weights):
    values = numerators / float(10**VALUE_DECIMALS)
    X = sp.csr_matrix((values, cols, indptr), shape=(len(indptr) - 1, weights.shape[0]))
    return X @ weights


def generate(path, *, progress: Callable[[int], None] | None = None, **options):
    """Write synthetic data of ``options["format"]`` (libsvm by default) to ``path``: see
    :func:`generate_libsvm` and :func:`~sparsetrain.io.synthetic_csv.generate_csv`."""
    if options.get("format", "libsvm") == "csv":
        return generate_csv(path, progress=progress, **options)
    return generate_libsvm(path, progress=progress, **options)


def generate_libsvm(
    path,
    rows: int,
    features: int,
    *,
    chunk_rows: int = 100_000,
    dtype="float32",
    progress: Callable[[int], None] | None = None,
    **options,
) -> SyntheticResult:
    """Write ``rows`` synthetic LibSVM rows over ``features`` columns to ``path`` (see the
    module docstring for the distributions), and the true weights to ``<path>.weights.npy``.

    ``options`` are the fields of :class:`~sparsetrain.io.synthetic_options.SyntheticOptions`
    (their defaults and ranges are there): exactly one of ``density`` (fraction of non-zeros per
    row) and ``nnz_per_row``; ``task``, ``classes``, ``target``, ``noise``, ``columns``,
    ``zipf_a``, ``seed``, ``zero_based``. ``progress(rows_done)`` is called as rows are written.
    A path ending in ``.gz`` or ``.bz2`` is compressed. Both files are written to temporary
    names and renamed into place (``fileio.open_atomic``): a missing directory or a full disk
    is an ``OutputError`` naming the path, and no partial file is left.
    """
    o, dt = check_call(chunk_rows, dtype, rows=rows, features=features, **options)
    if o.format != "libsvm":
        raise ValueError(f"generate_libsvm writes libsvm data, got format={o.format!r} (use generate)")
    density, nnz_per_row, task, classes, target = o.density, o.nnz_per_row, o.task, o.classes, o.target
    noise, columns, zipf_a, seed, zero_based = o.noise, o.columns, o.zipf_a, o.seed, o.zero_based
    path = os.fspath(path)
    sampler = _RowSampler(features, density, nnz_per_row, columns, zipf_a)
    weights = _true_weights(np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,))), task, target,
                            features, classes)
    threshold = None
    if task == "binary":
        pilot_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
        threshold = float(np.median(_scores(*sampler.sample(pilot_rng, _PILOT_ROWS), weights)))
    offset = 0 if zero_based else 1
    wpath = weights_path_for(path)
    nnz = 0
    with open_atomic(path) as f:
        pending, pending_rows, done = [], 0, 0
        for block, r0 in enumerate(range(0, rows, BLOCK_ROWS)):
            n = min(BLOCK_ROWS, rows - r0)
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2, block)))
            indptr, cols, numerators = sampler.sample(rng, n)
            score = _scores(indptr, cols, numerators, weights)
            if task == "regression":
                labels = (score + noise * rng.standard_normal(n)).astype(dt).astype("S")
            elif task == "binary":
                labels = ((score + noise * rng.standard_normal(n)) > threshold).astype(np.int64).astype("S")
            else:
                noisy = score + noise * rng.standard_normal(score.shape) if noise else score
                labels = np.argmax(noisy, axis=1).astype(np.int64).astype("S")
            label_bytes = np.ascontiguousarray(labels).view(np.uint8).reshape(n, labels.dtype.itemsize)
            pending.append(format_rows_fixed(label_bytes, indptr, cols, numerators, VALUE_DECIMALS, offset))
            pending_rows += n
            nnz += len(cols)
            if pending_rows >= chunk_rows or r0 + n == rows:
                for text in pending:
                    f.write(memoryview(text))
                done += pending_rows
                pending, pending_rows = [], 0
                if progress is not None:
                    progress(done)
    try:
        with open_atomic(wpath) as wf:
            np.save(wf, weights)
    except BaseException:  # the data without its weights would be a partial result
        os.unlink(path)
        raise
    return SyntheticResult(
        path=path, rows=int(rows), features=int(features), nnz=int(nnz), bytes=os.path.getsize(path),
        weights_path=wpath, task=task, threshold=threshold,
    )
