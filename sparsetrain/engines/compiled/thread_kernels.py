"""numba kernels of ``train.deterministic`` (:mod:`.threads`): the rows a thread touches, private
copies of them, and the ordered merge of the threads' changes.

A parameter array is seen as 2-D ``(rows, width)``. Each thread trains its share of a round of
batches — thread 0 in place, the others on their own copy of the rows their share touches (the
columns stored in its CSR rows; every row of a dense parameter). Afterwards a row one thread
touched is exactly as that thread left it (copied back, no arithmetic), and a row several threads
touched becomes ``old + the sum of their changes`` — for a weight under an adaptive rule and for a
state that adds a term per update (AdaGrad's history, FTRL's ``z``/``n``: every thread's updates
land, as one thread would have applied them) — or ``old + the mean of their changes`` for a running
average (momentum, Adam's moments: an average of the threads' averages) and for a weight under plain
SGD (``threads._Group.means``). The changes are added in thread order in
float64: the same result on every run. :func:`merge_reference` is the plain-numpy version the
tests compare against.
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["entries_below", "touched_rows", "split_shared", "copy_rows", "copy_owned", "gather_rows", "add_changes",
           "apply_changes", "merge_reference"]


@njit(cache=True, nogil=True)
def touched_rows(indices, indptr, order, lo, hi, seen, out):
    """The distinct columns stored in the CSR rows ``order[lo:hi]`` into ``out``, in order of first
    appearance; returns their number. ``seen``: uint8, one per column, all 0 (left all 0; a byte a
    column keeps it in cache)."""
    n = 0
    for q in range(lo, hi):
        r = order[q]
        for p in range(indptr[r], indptr[r + 1]):
            c = indices[p]
            if seen[c] == 0:
                seen[c] = 1
                out[n] = c
                n += 1
    for i in range(n):
        seen[out[i]] = 0
    return n


@njit(cache=True, nogil=True)
def entries_below(indices, indptr, order, lo, hi, limit):
    """``(entries with a column below limit, entries)`` of the CSR rows ``order[lo:hi]``."""
    below = 0
    total = 0
    for q in range(lo, hi):
        r = order[q]
        for p in range(indptr[r], indptr[r + 1]):
            below += indices[p] < limit
        total += indptr[r + 1] - indptr[r]
    return below, total


@njit(cache=True, nogil=True)
def split_shared(rows, owner, mark, shared, cnt):
    """Which thread owns each row: ``rows`` are the threads' distinct touched rows one after another
    (thread ``owner[i]``, in thread order); ``mark`` (int64, one per row, all -1) becomes ``j`` for a
    row only thread ``j`` touched and ``-2 - q`` for the ``q``-th row (``shared[q]``) that several
    threads touched, ``cnt[q]`` of them; returns the number of shared rows. The caller sets
    ``mark[rows] = -1`` afterwards."""
    n = 0
    for i in range(rows.shape[0]):
        r = rows[i]
        m = mark[r]
        if m == -1:
            mark[r] = owner[i]
        elif m >= 0:
            mark[r] = -2 - n
            shared[n] = r
            cnt[n] = 2.0
            n += 1
        else:
            cnt[-2 - m] += 1.0
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
def add_changes(arr, shared, old, acc):
    """One thread's change of the rows several threads touched: ``acc[q] += arr[shared[q]] - old[q]``
    (a thread that did not touch row ``shared[q]`` holds ``old[q]`` there: no change)."""
    for q in range(shared.shape[0]):
        r = shared[q]
        for k in range(arr.shape[1]):
            acc[q, k] += float(arr[r, k]) - old[q, k]


@njit(cache=True, nogil=True)
def copy_owned(src, dst, rows, mark, j):
    """``dst[r] = src[r]`` for each ``r`` of ``rows`` that only thread ``j`` touched (``mark[r] == j``)."""
    for i in range(rows.shape[0]):
        r = rows[i]
        if mark[r] == j:
            for k in range(src.shape[1]):
                dst[r, k] = src[r, k]


@njit(cache=True, nogil=True)
def apply_changes(arr, shared, old, acc, cnt, mean):
    """``arr[shared[i]] = old[i] + acc[i]``: every thread's change (a weight, a summed state); with
    ``mean``, ``old[i] + acc[i] / cnt[i]``: their mean (a running average)."""
    for i in range(shared.shape[0]):
        r = shared[i]
        scale = 1.0 / cnt[i] if mean else 1.0
        for k in range(arr.shape[1]):
            arr[r, k] = old[i, k] + acc[i, k] * scale


def merge_reference(old: np.ndarray, finals: list, touched: list, mean: bool) -> np.ndarray:
    """Plain numpy: ``old`` (2-D) after threads ended with ``finals[j]`` on their ``touched[j]`` rows:
    a row one thread touched is that thread's; a row several touched gets the sum of their changes
    (``mean``: the mean)."""
    acc = np.zeros(old.shape, np.float64)
    cnt = np.zeros(old.shape[0], np.int64)
    for final, rows in zip(finals, touched):
        acc[rows] += final[rows].astype(np.float64) - old[rows].astype(np.float64)
        cnt[rows] += 1
    out = old.copy()
    for final, rows in zip(finals, touched):
        mine = rows[cnt[rows] == 1]
        out[mine] = final[mine]
    hit = cnt > 1
    change = acc[hit] / cnt[hit, None] if mean else acc[hit]
    out[hit] = (old[hit].astype(np.float64) + change).astype(old.dtype)
    return out
