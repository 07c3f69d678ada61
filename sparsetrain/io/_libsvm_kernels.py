"""Compiled kernels that parse LibSVM text held in byte buffers, and a pure-Python reference
parser with the same contract that the tests compare the kernels against.

Grammar (one line): ``label[,label...] [qid:N] idx:val idx:val ... [# comment]``. Tokens are
separated by runs of space, tab, CR, VT or FF; ``#`` ends the line's data; blank and comment-only
lines are skipped. Labels and values are decimal numbers (see ``_decimal_kernels``); indices and
the qid are ``[+-]digits``.

:func:`parse_chunk` never raises: it stops at the first malformed token and reports an error
code with the token's byte span, and the caller builds the message (file, line, token).
A row whose features are all short ``digits:digits[.digits]`` pairs takes a fast path (separators
by 64-byte bit masks, their positions listed: ``_scan_kernels.flatten``, 8 pairs converted at once:
``_libsvm_simd``); other
rows are read byte by byte. Numbers are converted exactly (correctly rounded to binary64, then cast to the output
dtype, as scikit-learn does); the rare ones with more than 18 significant digits are listed as *slow*
tokens for the caller to convert with Python's ``float``. So results equal scikit-learn's bit
for bit.

The error recording, the ``info`` slots every parser shares and the grammar-free newline scans
of the chunk reader (``chunks.py``) come from ``_scan_kernels`` (the newline scans are re-exported
here); :func:`count_rows`, which knows the grammar's comments, lives here.
"""
from __future__ import annotations

import math
import re

import numpy as np
from numba import njit

from ..kernels.numba_cache import drop_stale_callers
from ._decimal_kernels import _U, NONFINITE, NOT_A_NUMBER, POW10, SLOW, parse_float, parse_int
from ._libsvm_simd import LANES, convert_pairs
from ._scan_kernels import (  # noqa: F401 (the chunk readers' newline scans, re-exported)
    I_ERR, I_ERR_AUX, I_ERR_END, I_ERR_START, I_LINES, I_NNZ, I_NSLOW, I_ROWS, N_COMMON, OK, VBMI, count_newlines,
    eq_mask64, eq_mask_tail, first_newline, flatten, is_space, last_newline, record_error,
)

# Error codes reported by parse_chunk and parse_reference (OK = 0: none).
E_LABEL = 1  # label is not a number
E_LABEL_NONFINITE = 2  # label is nan/inf
E_LABEL_COUNT = 3  # wrong number of comma-separated labels (aux: number found)
E_MISSING_COLON = 4  # feature token without ':'
E_INDEX_NOT_INT = 5  # index part is not an integer
E_INDEX_NEGATIVE = 6
E_INDEX_ZERO = 7  # index 0 in a one-based file
E_INDEX_ORDER = 8  # index not greater than the previous one (aux: previous index)
E_INDEX_RANGE = 9  # index >= index_limit (aux: the limit)
E_INDEX_OVERFLOW = 10  # more than 18 significant digits
E_VALUE = 11  # value is not a number
E_VALUE_NONFINITE = 12
E_QID = 13  # qid value is not an integer
E_LABEL_RANGE = 14  # label beyond the output dtype's range (it would become inf)
E_VALUE_RANGE = 15  # value beyond the output dtype's range
E_NO_NEWLINE = 16  # the buffer does not end with a newline (a caller's error)
E_LINE_TOO_LONG = 17  # a line longer than max_line bytes (aux: max_line)

#: |x| from which a double rounds to float32 infinity (FLT_MAX plus half an ulp).
FLOAT32_LIMIT = 3.4028235677973366e38

# Slots of the int64 ``info`` vector returned by parse_chunk: the parsers' common ones
# (``_scan_kernels``: I_ROWS, I_NNZ, I_LINES, I_ERR, I_ERR_START, I_ERR_END, I_ERR_AUX, I_NSLOW), then
I_MIN = N_COMMON  # smallest raw feature index (INDEX_NONE_MIN when there is none)
I_MAX = N_COMMON + 1  # largest raw feature index (-1 when there is none)
I_NLABELS = N_COMMON + 2  # labels per row
I_LAB_START = N_COMMON + 3  # byte span of the first row's label token (-1 when no rows)
I_LAB_END = N_COMMON + 4
I_BOUND_START = N_COMMON + 5  # byte span of the first index equal to ``boundary_index`` (-1 when none)
I_BOUND_END = N_COMMON + 6
N_INFO = N_COMMON + 7

INDEX_NONE_MIN = np.iinfo(np.int64).max
_NO_LIMIT = np.iinfo(np.int64).max
SLOW_LABEL = 0
SLOW_VALUE = 1

# zero_based modes
ONE_BASED = 0
ZERO_BASED = 1
AUTO_BASED = 2

# byte classes: 1 whitespace within a line, 2 newline or '#' (end of a line's data), 0 other
_CLASS = np.zeros(256, dtype=np.uint8)
_CLASS[[32, 9, 13, 11, 12]] = 1
_CLASS[[10, 35]] = 2


@njit(cache=True, nogil=True)
def _is_term(c):
    # ends a token: whitespace, newline or the start of a comment
    return c == 32 or c == 9 or c == 13 or c == 11 or c == 12 or c == 10 or c == 35


@njit(cache=True, nogil=True)
def _token_end(buf, p, n):
    while p < n and not _is_term(buf[p]):
        p += 1
    return p


@njit(cache=True, nogil=True)
def _count_labels(buf, p, n):
    e = _token_end(buf, p, n)
    k = 1
    for i in range(p, e):
        if buf[i] == 44:
            k += 1
    return k


_L7F = np.uint64(0x7F7F7F7F7F7F7F7F)
_L80 = np.uint64(0x8080808080808080)
_L00FF = np.uint64(0x00FF00FF00FF00FF)
_L0001 = np.uint64(0x0001000100010001)
_NEWLINES = np.uint64(0x0A0A0A0A0A0A0A0A)
_COLONS = np.uint64(0x3A3A3A3A3A3A3A3A)


@njit(cache=True, nogil=True)
def _count_in_words(words):
    """(newlines, colons) in a uint64 view of text: 8 bytes at a time, per-byte counters
    folded every 255 words (a zero byte of ``w ^ pattern`` is a match)."""
    newlines = 0
    colons = 0
    n = len(words)
    i = 0
    while i < n:
        e = min(n, i + 255)
        a = np.uint64(0)
        b = np.uint64(0)
        for j in range(i, e):
            w = words[j]
            x = w ^ _NEWLINES
            a += (~(((x & _L7F) + _L7F) | x) & _L80) >> np.uint64(7)
            y = w ^ _COLONS
            b += (~(((y & _L7F) + _L7F) | y) & _L80) >> np.uint64(7)
        # 8 byte lanes of at most 255 -> 4 lanes of 16 bits -> their sum
        a = (a & _L00FF) + ((a >> np.uint64(8)) & _L00FF)
        b = (b & _L00FF) + ((b >> np.uint64(8)) & _L00FF)
        newlines += np.int64((a * _L0001) >> np.uint64(48))
        colons += np.int64((b * _L0001) >> np.uint64(48))
        i = e
    return newlines, colons


@njit(cache=True, nogil=True)
def _count_in_bytes(buf):
    newlines = 0
    colons = 0
    for i in range(len(buf)):
        c = buf[i]
        newlines += c == 10
        colons += c == 58
    return newlines, colons


def count_newlines_colons(buf):
    """(newlines, colons) in ``buf``: upper bounds for the rows and entries it holds."""
    head = min(len(buf), -buf.ctypes.data % 8)
    stop = head + (len(buf) - head) // 8 * 8
    a, b = _count_in_bytes(buf[:head])
    c, d = _count_in_words(buf[head:stop].view(np.uint64))
    e, f = _count_in_bytes(buf[stop:])
    return a + c + e, b + d + f


# ---- the fast path of parse_chunk: a row's separators found by 64-byte masks, their positions listed,
# its pairs converted LANES at a time from the positions (``_libsvm_simd.convert_pairs``)

#: room for the separators' positions a row's fast path lists before it converts the pairs listed
#: (a longer row is converted in parts); +64 for a block's, +LANES + 1 read beyond by convert_pairs
POSITIONS = 192
_POS_ROOM = POSITIONS + 64 + LANES + 8


@njit(cache=True, nogil=True, inline="always")
def _convert(buf, cpos, spos, count, prev, nnz, lo, hi, boundary, indices, data):
    """Pairs ``0..count-1`` of the position lists converted (LANES at a time) into ``indices``/``data``
    from ``nnz``: ``(ok, prev)``, ``prev`` the last index stored."""
    j = 0
    while j < count:
        k = min(LANES, count - j)
        if VBMI:  # convert_pairs_permute: the pairs' text within the 128 bytes from 8 before the first colon
            while spos[_U(j + k)] > cpos[_U(j)] + 120:
                k -= 1
                if k == 0:  # a value of ~100 bytes
                    return False, prev
        if convert_pairs(buf, cpos, spos, j, k, indices, data, nnz + j, prev, lo, hi, boundary) != 0:
            return False, prev
        j += k
        prev = indices[_U(nnz + j - 1)]
    return True, prev


@njit(cache=True, nogil=True)
def _fast_row(buf, p, prev, nnz, lo, hi, boundary, indices, data, cpos, spos):
    """parse_chunk's fast path: the features of the row from ``p`` (>= 8) to its newline when every one is
    a pair ``digits:digits[.digits]`` of at most 8 bytes each, one space apart (a space or a CR before the
    newline allowed), the indices ascending in ``[lo, hi)`` and none equal to ``boundary``. Each 64-byte
    block's colons and spaces/newline (up to the row's newline) come from bit masks; their positions go to
    ``cpos`` (colons) and ``spos`` (pair ends, after ``p - 1``), which :func:`convert_pairs` reads: any
    pair not two tokens of digits (so any other separator, or two in a row) breaks its rules. A long
    row's pairs are converted whenever POSITIONS are listed. Returns ``(ok, p, prev, nnz)``, ``p`` at the
    newline; when not ``ok``, ``prev`` and ``nnz`` are as given and the entries stored past ``nnz`` are
    garbage: the byte loop reads the row."""
    n = len(buf)
    prev0 = prev
    n0 = nnz
    b = p - (p & 63)
    below = (np.uint64(1) << np.uint64(p - b)) - np.uint64(1)  # the first block's bytes before p
    nc = 0  # colons listed
    spos[0] = p - 1
    ns = 1  # pair ends listed, after the one before the first pair
    while True:
        if b + 64 <= n:
            colons = eq_mask64(buf, b, 58, 58, 58)
            spaces = eq_mask64(buf, b, 32, 32, 32)
            newlines = eq_mask64(buf, b, 10, 10, 10)
        else:  # the buffer's last block
            colons = eq_mask_tail(buf, b, 58, 58, 58)
            spaces = eq_mask_tail(buf, b, 32, 32, 32)
            newlines = eq_mask_tail(buf, b, 10, 10, 10)
        colons &= ~below
        spaces &= ~below
        newlines &= ~below
        below = np.uint64(0)
        last = newlines != 0
        if last:
            newline = newlines & (~newlines + np.uint64(1))  # the row's, the block's first
            colons &= newline - np.uint64(1)
            spaces = (spaces & (newline - np.uint64(1))) | newline
        nc = flatten(colons, b, cpos, nc)
        ns = flatten(spaces, b, spos, ns)
        if last:
            break
        b += 64
        if nc > POSITIONS or ns > POSITIONS:  # a long row: convert the pairs whose end is listed
            done = ns - 1
            if nc < done or nc > done + 1:
                return False, p, prev0, n0
            ok, prev = _convert(buf, cpos, spos, done, prev, nnz, lo, hi, boundary, indices, data)
            if not ok:
                return False, p, prev0, n0
            nnz += done
            spos[0] = spos[_U(done)]
            cpos[0] = cpos[_U(done)]
            nc -= done
            ns = 1
    end = spos[_U(ns - 1)]  # the newline
    c = buf[_U(end - 1)]
    if c == 13:  # a CR before it: the last value ends there
        spos[_U(ns - 1)] = end - 1
    elif c == 32 and ns == nc + 2:  # a space before it: the last value ends at the space
        ns -= 1
    if ns != nc + 1:
        return False, p, prev0, n0
    ok, prev = _convert(buf, cpos, spos, nc, prev, nnz, lo, hi, boundary, indices, data)
    if not ok:
        return False, p, prev0, n0
    return True, end, prev, nnz + nc


@njit(cache=True, nogil=True)
def first_row_label_count(buf):
    """Comma-separated labels on the first data row of ``buf`` (0 when it has no data row)."""
    n = len(buf)
    p = np.int64(0)  # not the literal 0: numba would compile _count_labels for Literal[int](0) too
    while p < n:
        c = buf[p]
        if _CLASS[c] == 1 or c == 10:
            p += 1
        elif c == 35:
            while p < n and buf[p] != 10:
                p += 1
        else:
            return _count_labels(buf, p, n)
    return 0


def parse_chunk(
    buf, n_labels, zero_based, index_limit, boundary_index, value_limit, max_line, nnz_base, data, indices,
    row_ends, labels, slow,
):
    """Parse the lines in ``buf`` (np.uint8, ending with b'\\n') into caller-allocated CSR arrays.

    n_labels: labels per row, enforced (see first_row_label_count).
    zero_based: ONE_BASED (index 0 is an error), ZERO_BASED or AUTO_BASED (no check).
    index_limit: raw indices must be < index_limit (-1: no limit).
    boundary_index: record the span of the first raw index equal to it (-1: none).
    value_limit: labels and values must be smaller in magnitude (FLOAT32_LIMIT for float32
    output, inf for float64).
    max_line: a line may hold at most this many bytes before its newline (E_LINE_TOO_LONG).
    data, indices: room for every entry (no more than the colons, nor than a quarter of the
    bytes); row_ends: room for every row (no more than the newlines), receives
    ``nnz_base + entries up to the row's end``, i.e. ``indptr[1:]``; labels: float64, room for
    rows * n_labels.
    slow: int64 (k, 4) table that receives (kind, position, start, end) of the numbers the
    caller must convert itself; ``info[I_NSLOW]`` says how many there were, and when that
    exceeds ``k`` the caller must parse again with a larger table.

    Returns ``info`` (see the I_* slots); on a malformed token it stops there with I_ERR set.
    A Python function: it allocates ``info`` and the fast path's position lists, and the compiled loop
    (:func:`_parse_lines`) fills the caller's arrays, so that nothing is allocated or reference-counted
    inside the loop.
    """
    info = np.zeros(N_INFO, np.int64)
    positions = np.empty((2, _POS_ROOM), np.int64)  # the fast path's colons and pair ends
    _parse_lines(buf, n_labels, zero_based, index_limit, boundary_index, value_limit, max_line, nnz_base, data,
                 indices, row_ends, labels, slow, info, positions[0], positions[1])
    return info


@njit(cache=True, nogil=True, _nrt=False)
def _parse_lines(
    buf, n_labels, zero_based, index_limit, boundary_index, value_limit, max_line, nnz_base, data, indices,
    row_ends, labels, slow, info, cpos, spos,
):
    """:func:`parse_chunk`'s loop over the lines, given ``info`` (zeroed) and the fast path's position
    lists (``cpos``/``spos``: int64, ``_POS_ROOM`` each). Compiled without numba's
    reference counts (``_nrt=False``: it allocates nothing), as the CSV and VW kernels' loops: with them,
    each row's call of the fast path cost an atomic add and subtract.
    The final newline is a sentinel that ends every scanning loop, so they need no bounds
    checks; ``E_NO_NEWLINE`` reports a buffer without it."""
    n = len(buf)
    info[I_MIN] = INDEX_NONE_MIN
    info[I_MAX] = -1
    info[I_LAB_START] = -1
    info[I_LAB_END] = -1
    info[I_BOUND_START] = -1
    info[I_BOUND_END] = -1
    info[I_NLABELS] = n_labels
    if n == 0:
        return
    if buf[_U(n - 1)] != 10:
        info[I_ERR] = E_NO_NEWLINE
        return
    nl = n_labels
    lo = 1 if zero_based == ONE_BASED else 0
    hi = index_limit if index_limit >= 0 else _NO_LIMIT
    slow_cap = slow.shape[0]
    nslow = 0
    rows = 0
    nnz = 0
    lines = 0
    min_idx = INDEX_NONE_MIN
    max_idx = -1
    bound_start = -1
    bound_end = -1
    # np.int64(0), not the literal 0: numba types a call before it unifies a variable's definitions,
    # and would compile parse_float, parse_int and _token_end once more for a Literal[int](0) position
    p = np.int64(0)
    line_start = 0
    misses = 0  # rows the fast path left to the byte loop (it stops trying when they are many)
    while p < n:
        c = buf[_U(p)]
        if _CLASS[c] == 1:
            p += 1
            continue
        if c == 10:
            if p - line_start > max_line:
                record_error(info, E_LINE_TOO_LONG, line_start, p, max_line, rows, nslow)
                return
            lines += 1
            p += 1
            line_start = p
            continue
        if c == 35:
            while buf[_U(p)] != 10:
                p += 1
            continue
        # ---- a data row: labels, an optional qid, features. Every number, label or feature
        # value, is read at one place, the top of this loop: the common ``[-]digits[.digits]``
        # inline (a call to a helper would halve the speed), anything else by parse_float, which
        # also classifies the errors.
        lab_start = p
        if rows == 0:
            info[I_LAB_START] = lab_start
            info[I_LAB_END] = _token_end(buf, p, n)
        k = 0  # labels read
        label = True  # reading labels, then feature values
        row_start = nnz
        prev = -1
        idx = 0
        while True:
            vs = p
            r = p
            neg = False
            mant = 0
            d = np.uint64(buf[_U(r)]) - np.uint64(48)
            if d > np.uint64(9) and buf[_U(r)] == 45:  # a sign, looked for only where no digit is
                neg = True
                r += 1
                d = np.uint64(buf[_U(r)]) - np.uint64(48)
            ds = r
            while d <= np.uint64(9):
                mant = mant * 10 + np.int64(d)
                r += 1
                d = np.uint64(buf[_U(r)]) - np.uint64(48)
            ndig = r - ds
            nfrac = 0
            if buf[_U(r)] == 46:
                r += 1
                fs = r
                d = np.uint64(buf[_U(r)]) - np.uint64(48)
                while d <= np.uint64(9):
                    mant = mant * 10 + np.int64(d)
                    r += 1
                    d = np.uint64(buf[_U(r)]) - np.uint64(48)
                nfrac = r - fs
                ndig += nfrac
            t = buf[_U(r)]
            if 0 < ndig <= 15 and (_CLASS[t] != 0 or (label and t == 44)):
                # below 10**15: exact (Clinger's fast path) and within any value_limit
                v = float(mant) / POW10[_U(nfrac)]
                if neg:
                    v = -v
            else:
                v, r, st = parse_float(buf, vs, n)
                t = buf[_U(r)]
                if st == NOT_A_NUMBER or not (_CLASS[t] != 0 or (label and t == 44)):
                    if label:
                        record_error(info, E_LABEL, lab_start, _token_end(buf, lab_start, n), 0, rows, nslow)
                    else:
                        record_error(info, E_VALUE, vs, _token_end(buf, vs, n), 0, rows, nslow)
                    return
                if st == NONFINITE or abs(v) >= value_limit:
                    if label:
                        code = E_LABEL_NONFINITE if st == NONFINITE else E_LABEL_RANGE
                        record_error(info, code, lab_start, _token_end(buf, lab_start, n), 0, rows, nslow)
                    else:
                        code = E_VALUE_NONFINITE if st == NONFINITE else E_VALUE_RANGE
                        record_error(info, code, vs, r, 0, rows, nslow)
                    return
                if st == SLOW:
                    if nslow < slow_cap:
                        if label:  # position -1: a surplus label, only checked for finiteness
                            slow[nslow, 0] = SLOW_LABEL
                            slow[nslow, 1] = rows * nl + k if k < nl else -1
                        else:
                            slow[nslow, 0] = SLOW_VALUE
                            slow[nslow, 1] = nnz
                        slow[nslow, 2] = vs
                        slow[nslow, 3] = r
                    nslow += 1
            p = r
            if label:
                if k < nl:
                    labels[_U(rows * nl + k)] = v
                k += 1
                if t == 44:
                    p += 1
                    continue
                if k != nl:
                    record_error(info, E_LABEL_COUNT, lab_start, p, k, rows, nslow)
                    return
                label = False
                # an optional "qid:N" after the labels
                c = buf[_U(p)]
                while _CLASS[c] == 1:
                    p += 1
                    c = buf[_U(p)]
                if c == 113 and buf[_U(p + 1)] == 105 and buf[_U(p + 2)] == 100 and buf[_U(p + 3)] == 58:
                    _, q, st = parse_int(buf, p + 4, n)
                    if st != 0 or _CLASS[buf[_U(q)]] == 0:
                        record_error(info, E_QID, p + 4, _token_end(buf, p, n), 0, rows, nslow)
                        return
                    p = q
            else:
                indices[_U(nnz)] = idx
                data[_U(nnz)] = v
                nnz += 1
                prev = idx
            # ---- the end of the line, or the next feature's index: ``digits`` inline, the
            # rest through parse_int
            c = buf[_U(p)]
            while _CLASS[c] == 1:
                p += 1
                c = buf[_U(p)]
            if c == 10 or c == 35:
                break
            # ---- a row's first feature: the fast path (_fast_row) reads the whole row when it can. Its
            # token ends come from separator bit masks, not a branch per byte (the byte loop below
            # mispredicts the end of about every index), and it converts 8 pairs at a time; a row
            # it cannot read (a sign, an exponent, a longer number, other whitespace, a comment, an
            # error) is read by the byte loop from here, with the same result. When many rows of a
            # chunk are such, it stops trying (each try costs about what reading the row does).
            if p >= 8 and nnz == row_start and misses * 8 <= rows + 64:
                ok, q, prev_f, nnz_f = _fast_row(buf, p, prev, nnz, lo, hi, boundary_index if bound_start < 0 else -1,
                                                 indices, data, cpos, spos)
                if ok:
                    p = q
                    prev = prev_f
                    nnz = nnz_f
                    break
                misses += 1
            tok = p
            idx = 0
            d = np.uint64(c) - np.uint64(48)
            while d <= np.uint64(9):
                idx = idx * 10 + np.int64(d)
                p += 1
                d = np.uint64(buf[_U(p)]) - np.uint64(48)
            q = p
            if buf[_U(q)] != 58 or q == tok or q - tok > 18:
                idx, q, st = parse_int(buf, tok, n)
                if st != 0 or buf[_U(q)] != 58:
                    e = _token_end(buf, tok, n)
                    colon = -1
                    for j in range(tok, e):
                        if buf[_U(j)] == 58:
                            colon = j
                            break
                    if colon < 0:
                        record_error(info, E_MISSING_COLON, tok, e, 0, rows, nslow)
                    elif st == 4 and q == colon:
                        record_error(info, E_INDEX_OVERFLOW, tok, colon, 0, rows, nslow)
                    else:
                        record_error(info, E_INDEX_NOT_INT, tok, colon, 0, rows, nslow)
                    return
            if idx <= prev or idx < lo or idx >= hi:
                if idx < 0:
                    code = E_INDEX_NEGATIVE
                elif idx < lo:
                    code = E_INDEX_ZERO
                elif idx <= prev:
                    code = E_INDEX_ORDER
                else:
                    code = E_INDEX_RANGE
                record_error(info, code, tok, q, prev if code == E_INDEX_ORDER else index_limit, rows, nslow)
                return
            if idx == boundary_index and bound_start < 0:
                bound_start = tok
                bound_end = q
            p = q + 1  # the value
        if nnz > row_start:  # indices ascend within a row
            if indices[_U(row_start)] < min_idx:
                min_idx = indices[_U(row_start)]
            if prev > max_idx:
                max_idx = prev
        row_ends[_U(rows)] = nnz_base + nnz
        rows += 1
        # a trailing comment and the newline are consumed at the top of the loop
    info[I_ROWS] = rows
    info[I_NNZ] = nnz
    info[I_LINES] = lines
    info[I_MIN] = min_idx
    info[I_MAX] = max_idx
    info[I_BOUND_START] = bound_start
    info[I_BOUND_END] = bound_end
    info[I_NSLOW] = nslow
    return


# ---------------------------------------------------------------------------------------
# Row counting for the chunk reader (it knows the grammar's comments).


@njit(cache=True, nogil=True)
def count_rows(buf, limit):
    """Count data rows (lines with content before any '#') in ``buf``, stopping after ``limit``
    rows (-1: no limit). Returns (rows, end) where ``end`` is the offset just past the last
    counted row's newline, or ``len(buf)``."""
    n = len(buf)
    rows = 0
    p = 0
    while p < n:
        if limit >= 0 and rows == limit:
            return rows, p
        content = False
        while p < n and buf[p] != 10:
            c = buf[p]
            if c == 35:
                while p < n and buf[p] != 10:
                    p += 1
                break
            if not is_space(c):
                content = True
            p += 1
        if content:
            rows += 1
        if p < n:
            p += 1  # the newline
    return rows, n


# ---------------------------------------------------------------------------------------
# Pure-Python reference parser: same contract as parse_chunk, line by line with regexes.

_FLOAT_RE = re.compile(rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_NONFINITE_RE = re.compile(rb"[+-]?(?:nan|inf|infinity)\Z", re.IGNORECASE)
_INT_RE = re.compile(rb"[+-]?[0-9]+\Z")
_SPLIT_RE = re.compile(rb"[ \t\r\x0b\x0c]+")


class ReferenceError_(Exception):
    """Raised by parse_reference: (code, line index within the text, token bytes, aux)."""

    def __init__(self, code, line, token, aux=0):
        super().__init__(code, line, token, aux)
        self.code, self.line, self.token, self.aux = code, line, token, aux


def _ref_float(tok: bytes):
    """(value, status) with status 0 ok, 2 not a number, 3 non-finite."""
    if _NONFINITE_RE.match(tok):
        return 0.0, 3
    if not _FLOAT_RE.match(tok):
        return 0.0, 2
    v = float(tok)
    return v, (0 if math.isfinite(v) else 3)


_LABEL_CODES = (E_LABEL, E_LABEL_NONFINITE, E_LABEL_RANGE)
_VALUE_CODES = (E_VALUE, E_VALUE_NONFINITE, E_VALUE_RANGE)


def _ref_number(tok: bytes, value_limit, codes, lineno, report: bytes) -> float:
    """The number ``tok``; raises ReferenceError_ with ``codes`` (not a number, non-finite,
    out of range) reporting the token ``report``."""
    v, st = _ref_float(tok)
    if st == 2:
        raise ReferenceError_(codes[0], lineno, report)
    if st == 3:
        raise ReferenceError_(codes[1], lineno, report)
    if abs(v) >= value_limit:
        raise ReferenceError_(codes[2], lineno, report)
    return v


def parse_reference(text: bytes, n_labels=0, zero_based=AUTO_BASED, index_limit=-1, value_limit=math.inf):
    """Parse ``text`` the slow, obvious way. Returns a dict with ``labels`` (rows, n_labels)
    float64, ``indptr``, ``indices`` (raw), ``data`` float64, ``min``, ``max``, ``n_labels``;
    raises :class:`ReferenceError_` at the first malformed token."""
    labels, indices, data, indptr = [], [], [], [0]
    nl = n_labels
    for lineno, line in enumerate(text.split(b"\n")):
        line = line.split(b"#", 1)[0]
        parts = [t for t in _SPLIT_RE.split(line) if t]
        if not parts:
            continue
        lab_tok, feats = parts[0], parts[1:]
        pieces = lab_tok.split(b",")
        if nl == 0:
            nl = len(pieces)
        row_labels = []
        for piece in pieces:
            row_labels.append(_ref_number(piece, value_limit, _LABEL_CODES, lineno, lab_tok))
        if len(pieces) != nl:
            raise ReferenceError_(E_LABEL_COUNT, lineno, lab_tok, len(pieces))
        labels.append(row_labels)
        if feats and feats[0].startswith(b"qid:"):
            if not _INT_RE.match(feats[0][4:]) or len(feats[0][4:].lstrip(b"+-").lstrip(b"0")) > 18:
                raise ReferenceError_(E_QID, lineno, feats[0][4:])
            feats = feats[1:]
        prev = -1
        for tok in feats:
            if b":" not in tok:
                raise ReferenceError_(E_MISSING_COLON, lineno, tok)
            idx_s, val_s = tok.split(b":", 1)
            if not _INT_RE.match(idx_s):
                raise ReferenceError_(E_INDEX_NOT_INT, lineno, idx_s)
            if len(idx_s.lstrip(b"+-").lstrip(b"0")) > 18:
                raise ReferenceError_(E_INDEX_OVERFLOW, lineno, idx_s)
            idx = int(idx_s)
            if idx < 0:
                raise ReferenceError_(E_INDEX_NEGATIVE, lineno, idx_s)
            if idx == 0 and zero_based == ONE_BASED:
                raise ReferenceError_(E_INDEX_ZERO, lineno, idx_s)
            if idx <= prev:
                raise ReferenceError_(E_INDEX_ORDER, lineno, idx_s, prev)
            if 0 <= index_limit <= idx:
                raise ReferenceError_(E_INDEX_RANGE, lineno, idx_s, index_limit)
            indices.append(idx)
            data.append(_ref_number(val_s, value_limit, _VALUE_CODES, lineno, val_s))
            prev = idx
        indptr.append(len(indices))
    ind = np.array(indices, dtype=np.int64)
    return {
        "labels": np.array(labels, dtype=np.float64).reshape(len(labels), max(nl, 1)),
        "indptr": np.array(indptr, dtype=np.int64),
        "indices": ind,
        "data": np.array(data, dtype=np.float64),
        "min": int(ind.min()) if len(ind) else int(INDEX_NONE_MIN),
        "max": int(ind.max()) if len(ind) else -1,
        "n_labels": nl,
    }


# numba keys a cached kernel on its own file: drop this module's when a kernel it calls from another file is newer
drop_stale_callers(__name__)
