"""numba kernels of ``train.deterministic`` (:mod:`.threads`): the rows a thread touches, private
copies of them, and the ordered merge of the threads' changes.

A parameter array is seen as 2-D ``(rows, width)``. Each thread trains its share of a round of
batches on its own copy of the rows its share touches (the columns stored in its CSR rows; every
row of a dense parameter); afterwards each touched row of a weight becomes ``old + the sum of the
threads' changes`` (every thread's updates land, as in Hogwild), and of an optimizer state
``old + the mean of the changes`` of the threads that touched it (a running mean or a sum of
squares stays in its range); the changes are added in thread order in float64, so a row one thread
touched ends exactly as that thread left it. :func:`merge_reference` is the plain-numpy version
the tests compare against.
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["touched_rows", "union_rows", "copy_rows", "gather_rows", "add_changes", "apply_changes",
           "merge_reference"]


@njit(cache=True, nogil=True)
def touched_rows(indices, indptr, order, lo, hi, mark, out):
    """The distinct columns stored in the CSR rows ``order[lo:hi]`` into ``out``, in order of first
    appearance; returns their number. ``mark``: int64, one per column, all -1 (left all -1)."""
    n = 0
    for q in range(lo, hi):
        r = order[q]
        for p in range(indptr[r], indptr[r + 1]):
            c = indices[p]
            if mark[c] < 0:
                mark[c] = n
                out[n] = c
                n += 1
    for i in range(n):
        mark[out[i]] = -1
    return n


@njit(cache=True, nogil=True)
def union_rows(rows, mark, out):
    """The distinct ids of ``rows`` into ``out`` (first appearance); ``mark[id]`` is set to the id's
    position in ``out`` (the caller resets ``mark[out[:n]] = -1``); returns ``n``."""
    n = 0
    for i in range(rows.shape[0]):
        c = rows[i]
        if mark[c] < 0:
            mark[c] = n
            out[n] = c
            n += 1
    return n


@njit(cache=True, nogil=True)
def copy_rows(src, dst, rows):
    """``dst[r] = src[r]`` for each ``r`` of ``rows``."""
    for i in range(rows.shape[0]):
        r = rows[i]
        for k in range(src.shape[1]):
            dst[r, k] = src[r, k]


@njit(cache=True, nogil=True)
def gather_rows(src, rows, out):
    """``out[i] = src[rows[i]]`` (in float64)."""
    for i in range(rows.shape[0]):
        r = rows[i]
        for k in range(src.shape[1]):
            out[i, k] = src[r, k]


@njit(cache=True, nogil=True)
def add_changes(arr, rows, mark, old, acc, cnt):
    """One thread's change of each of its ``rows``: ``acc[mark[r]] += arr[r] - old[mark[r]]`` and
    ``cnt[mark[r]] += 1``."""
    for i in range(rows.shape[0]):
        r = rows[i]
        q = mark[r]
        cnt[q] += 1.0
        for k in range(arr.shape[1]):
            acc[q, k] += float(arr[r, k]) - old[q, k]


@njit(cache=True, nogil=True)
def apply_changes(arr, union, old, acc, cnt, mean):
    """``arr[union[i]] = old[i] + acc[i]``: every thread's change (a weight); with ``mean``,
    ``old[i] + acc[i] / cnt[i]``: their mean (an optimizer state)."""
    for i in range(union.shape[0]):
        r = union[i]
        scale = 1.0 / cnt[i] if mean else 1.0
        for k in range(arr.shape[1]):
            arr[r, k] = old[i, k] + acc[i, k] * scale


def merge_reference(old: np.ndarray, finals: list, touched: list, mean: bool) -> np.ndarray:
    """Plain numpy: ``old`` (2-D) after threads ended with ``finals[j]`` on their ``touched[j]`` rows
    (``mean``: the mean change of a row, else the sum)."""
    acc = np.zeros(old.shape, np.float64)
    cnt = np.zeros(old.shape[0], np.float64)
    for final, rows in zip(finals, touched):
        acc[rows] += final[rows].astype(np.float64) - old[rows].astype(np.float64)
        cnt[rows] += 1
    out = old.copy()
    hit = cnt > 0
    change = acc[hit] / cnt[hit, None] if mean else acc[hit]
    out[hit] = (old[hit].astype(np.float64) + change).astype(old.dtype)
    return out
