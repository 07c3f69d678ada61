"""Compiled kernels that format CSR rows as LibSVM text (the writers of ``dump_libsvm`` and
``synthetic.generate_libsvm``).

Each returns one np.uint8 buffer of whole lines for the caller to write: sizes are computed
first, so the text is written once into an exactly sized array.
"""
from __future__ import annotations

import numpy as np
from numba import njit

@njit(cache=True, nogil=True)
def _str_len(strs, i):
    w = strs.shape[1]
    for j in range(w):
        if strs[i, j] == 0:
            return j
    return w


@njit(cache=True, nogil=True)
def _int_len(v):
    if v < 0:
        return 1 + _int_len(-v)
    k = 1
    while v >= 10:
        v //= 10
        k += 1
    return k


@njit(cache=True, nogil=True)
def _write_int(out, o, v):
    if v < 0:
        out[o] = 45
        o += 1
        v = -v
    k = _int_len(v)
    for j in range(k - 1, -1, -1):
        out[o + j] = 48 + v % 10
        v //= 10
    return o + k


@njit(cache=True, nogil=True)
def _fixed_len(q, decimals, scale):
    ip = q // scale
    fp = q % scale
    k = _int_len(ip)
    if fp != 0:
        nd = decimals
        while fp % 10 == 0:
            fp //= 10
            nd -= 1
        k += 1 + nd
    return k


@njit(cache=True, nogil=True)
def _write_fixed(out, o, q, decimals, scale):
    # q / 10**decimals in positional notation without trailing zeros ("0.25", "1")
    ip = q // scale
    fp = q % scale
    o = _write_int(out, o, ip)
    if fp != 0:
        nd = decimals
        while fp % 10 == 0:
            fp //= 10
            nd -= 1
        out[o] = 46
        o += 1
        for j in range(nd - 1, -1, -1):
            out[o + j] = 48 + fp % 10
            fp //= 10
        o += nd
    return o


@njit(cache=True, nogil=True)
def format_rows_strings(label_strs, n_label_cols, indptr, indices, value_strs, index_offset):
    """LibSVM text for CSR rows whose labels and values are given as NUL-padded byte strings.

    label_strs: (rows * n_label_cols, w) uint8; value_strs: (nnz, w) uint8.
    """
    rows = len(indptr) - 1
    size = 0
    for r in range(rows):
        for k in range(n_label_cols):
            size += _str_len(label_strs, r * n_label_cols + k) + 1  # ',' or ' ' / '\n'
        for j in range(indptr[r], indptr[r + 1]):
            size += _int_len(indices[j] + index_offset) + 1 + _str_len(value_strs, j) + 1
    out = np.empty(size, np.uint8)
    o = 0
    for r in range(rows):
        for k in range(n_label_cols):
            i = r * n_label_cols + k
            m = _str_len(label_strs, i)
            out[o : o + m] = label_strs[i, :m]
            o += m
            if k + 1 < n_label_cols:
                out[o] = 44
                o += 1
        for j in range(indptr[r], indptr[r + 1]):
            out[o] = 32
            o = _write_int(out, o + 1, indices[j] + index_offset)
            out[o] = 58
            o += 1
            m = _str_len(value_strs, j)
            out[o : o + m] = value_strs[j, :m]
            o += m
        out[o] = 10
        o += 1
    return out


@njit(cache=True, nogil=True)
def format_rows_fixed(label_strs, indptr, indices, numerators, decimals, index_offset):
    """LibSVM text for CSR rows whose values are ``numerators / 10**decimals`` (written without
    trailing zeros) and whose labels are NUL-padded byte strings (one per row)."""
    rows = len(indptr) - 1
    scale = np.int64(1)  # not the literal 1: numba would compile _fixed_len/_write_fixed for Literal[int](1) too
    for _ in range(decimals):
        scale *= 10
    size = 0
    for r in range(rows):
        size += _str_len(label_strs, r) + 1
        for j in range(indptr[r], indptr[r + 1]):
            size += _int_len(indices[j] + index_offset) + 2 + _fixed_len(numerators[j], decimals, scale)
    out = np.empty(size, np.uint8)
    o = 0
    for r in range(rows):
        m = _str_len(label_strs, r)
        out[o : o + m] = label_strs[r, :m]
        o += m
        for j in range(indptr[r], indptr[r + 1]):
            out[o] = 32
            o = _write_int(out, o + 1, indices[j] + index_offset)
            out[o] = 58
            o = _write_fixed(out, o + 1, numerators[j], decimals, scale)
        out[o] = 10
        o += 1
    return out
