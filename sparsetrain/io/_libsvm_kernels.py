"""Compiled kernels that parse and format LibSVM text held in byte buffers, and a pure-Python
reference parser with the same contract that the tests compare the kernels against.

Grammar (one line): ``label[,label...] [qid:N] idx:val idx:val ... [# comment]``. Tokens are
separated by runs of space, tab, CR, VT or FF; ``#`` ends the line's data; blank and comment-only
lines are skipped. Numbers follow ``[+-]digits[.digits][(e|E)[+-]digits]`` (as Python's
``float`` minus underscores); ``nan``/``inf``/``infinity`` are recognised so that they can be
reported as non-finite. Indices are ``[+-]digits``.

:func:`parse_chunk` never raises: it stops at the first malformed token and reports an error
code with the token's byte span, and the caller builds the message (file, line, token).
Numbers are converted exactly (correctly rounded to binary64, then cast to the output dtype,
as scikit-learn does): plain decimals of up to 15 digits by Clinger's fast path, others of up
to 18 significant digits by the Eisel-Lemire algorithm; the rare rest (longer mantissas) is
listed as *slow* tokens for the caller to convert with Python's ``float``. So results equal
scikit-learn's bit for bit.

The writers (:func:`format_rows_strings`, :func:`format_rows_fixed`) and the byte-scanning
helpers used by the chunk reader live here too.
"""
from __future__ import annotations

import math
import re

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import leading_zeros

# Error codes reported by parse_chunk and parse_reference.
OK = 0
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

#: |x| from which a double rounds to float32 infinity (FLT_MAX plus half an ulp).
FLOAT32_LIMIT = 3.4028235677973366e38

# Slots of the int64 ``info`` vector returned by parse_chunk.
I_ROWS = 0  # data rows parsed
I_NNZ = 1  # stored entries parsed
I_LINES = 2  # newline characters consumed
I_MIN = 3  # smallest raw feature index (INDEX_NONE_MIN when there is none)
I_MAX = 4  # largest raw feature index (-1 when there is none)
I_NLABELS = 5  # labels per row
I_LAB_START = 6  # byte span of the first row's label token (-1 when no rows)
I_LAB_END = 7
I_ERR = 8  # error code (OK when none)
I_ERR_START = 9  # byte span of the offending token
I_ERR_END = 10
I_ERR_AUX = 11
I_BOUND_START = 12  # byte span of the first index equal to ``boundary_index`` (-1 when none)
I_BOUND_END = 13
I_NSLOW = 14  # rows used in the ``slow`` table
N_INFO = 15

INDEX_NONE_MIN = np.iinfo(np.int64).max
_NO_LIMIT = np.iinfo(np.int64).max
SLOW_LABEL = 0
SLOW_VALUE = 1

# zero_based modes
ONE_BASED = 0
ZERO_BASED = 1
AUTO_BASED = 2

_MAX_EXACT_MANTISSA = 1 << 53
# Indexing with an unsigned integer spares numba's negative-index wraparound (~30% faster).
_U = np.uint64
# byte classes: 1 whitespace within a line, 2 newline or '#' (end of a line's data), 0 other
_CLASS = np.zeros(256, dtype=np.uint8)
_CLASS[[32, 9, 13, 11, 12]] = 1
_CLASS[[10, 35]] = 2
_POW10 = np.array([10.0**k for k in range(23)], dtype=np.float64)


# ---------------------------------------------------------------------------------------
# Exact decimal -> binary64 conversion for mantissas the Clinger fast path cannot take
# (more than 53 bits or a large exponent): the Eisel-Lemire algorithm, as in fast_float
# (Lemire, "Number Parsing at a Gigabyte per Second", 2021). The table holds 128-bit
# approximations of 5**q for q in [-342, 308], computed exactly here with Python integers.

_EL_MIN_Q = -342
_EL_MAX_Q = 308


def _powers_of_five_128():
    table = []
    for q in range(_EL_MIN_Q, 0):
        power5 = 5**-q
        z = power5.bit_length() if power5 & (power5 - 1) else power5.bit_length() - 1
        if q >= -27:
            c = 2 ** (z + 127) // power5 + 1
        else:
            c = 2 ** (2 * z + 128) // power5 + 1
            while c >= 1 << 128:
                c //= 2
        table.append(c)
    for q in range(0, _EL_MAX_Q + 1):
        power5 = 5**q
        while power5 < 1 << 127:
            power5 *= 2
        while power5 >= 1 << 128:
            power5 //= 2
        table.append(power5)
    out = np.empty(2 * len(table), dtype=np.uint64)
    for i, c in enumerate(table):
        out[2 * i] = c >> 64
        out[2 * i + 1] = c & ((1 << 64) - 1)
    return out


_POW5_128 = _powers_of_five_128()
_M32 = np.uint64(0xFFFFFFFF)
_ONES64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_PRECISION_MASK = np.uint64(0xFFFFFFFFFFFFFFFF >> 55)


@njit(cache=True, nogil=True)
def _mul128(a, b):
    """(high, low) 64-bit halves of the 128-bit product of uint64 ``a`` and ``b``."""
    a_lo = a & _M32
    a_hi = a >> np.uint64(32)
    b_lo = b & _M32
    b_hi = b >> np.uint64(32)
    p0 = a_lo * b_lo
    p1 = a_lo * b_hi
    p2 = a_hi * b_lo
    p3 = a_hi * b_hi
    mid = (p0 >> np.uint64(32)) + (p1 & _M32) + (p2 & _M32)
    low = (p0 & _M32) | (mid << np.uint64(32))
    high = p3 + (p1 >> np.uint64(32)) + (p2 >> np.uint64(32)) + (mid >> np.uint64(32))
    return high, low


@njit(cache=True, nogil=True)
def _eisel_lemire(mant, q):
    """(value, ok): the correctly rounded double nearest to ``mant * 10**q`` (mant > 0,
    int64). ``ok`` is False in the rare cases the 128-bit product cannot decide."""
    if q < _EL_MIN_Q:
        return 0.0, True
    if q > _EL_MAX_Q:
        return math.inf, True
    w = np.uint64(mant)
    lz = np.int64(leading_zeros(w))
    w = w << np.uint64(lz)
    index = 2 * (q - _EL_MIN_Q)
    high, low = _mul128(w, _POW5_128[index])
    if (high & _PRECISION_MASK) == _PRECISION_MASK:
        high2, _ = _mul128(w, _POW5_128[index + 1])
        low = low + high2
        if high2 > low:
            high = high + np.uint64(1)
    if low == _ONES64 and (q < -27 or q > 55):
        return 0.0, False
    upperbit = np.int64(high >> np.uint64(63))
    shift = np.uint64(upperbit + 9)
    mantissa = high >> shift
    power2 = (((152170 + 65536) * q) >> 16) + 63 + upperbit - lz + 1023
    if power2 <= 0:
        if -power2 + 1 >= 64:
            return 0.0, True
        mantissa = mantissa >> np.uint64(-power2 + 1)
        mantissa = mantissa + (mantissa & np.uint64(1))
        mantissa = mantissa >> np.uint64(1)
        return math.ldexp(float(mantissa), -1074), True
    if low <= np.uint64(1) and -4 <= q <= 23 and (mantissa & np.uint64(3)) == np.uint64(1):
        if (mantissa << shift) == high:
            mantissa = mantissa & ~np.uint64(1)
    mantissa = mantissa + (mantissa & np.uint64(1))
    mantissa = mantissa >> np.uint64(1)
    if mantissa >= np.uint64(1 << 53):
        mantissa = np.uint64(1 << 52)
        power2 += 1
    if power2 >= 0x7FF:
        return math.inf, True
    mantissa = mantissa | np.uint64(1 << 52)
    return math.ldexp(float(mantissa), power2 - 1075), True


@njit(cache=True, nogil=True)
def _is_space(c):
    return c == 32 or c == 9 or c == 13 or c == 11 or c == 12


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
def _match_lower(buf, p, n, word):
    m = len(word)
    if p + m > n:
        return False
    for i in range(m):
        if (buf[p + i] | 32) != word[i]:
            return False
    return True


_W_NAN = np.frombuffer(b"nan", dtype=np.uint8).copy()
_W_INF = np.frombuffer(b"inf", dtype=np.uint8).copy()
_W_INFINITY = np.frombuffer(b"infinity", dtype=np.uint8).copy()


@njit(cache=True, nogil=True)
def _parse_float(buf, p, n):
    """Parse a number at ``p``; returns (value, end, status).

    status 0: exact value; 1: valid syntax, convert ``buf[p:end]`` with Python's float;
    2: not a number (``end`` is where parsing stopped); 3: a nan/inf literal ending at ``end``.
    """
    neg = False
    if p < n:
        c = buf[p]
        if c == 45:
            neg = True
            p += 1
        elif c == 43:
            p += 1
    p0 = p
    mant = 0
    nd = 0
    exp10 = 0
    any_digit = False
    inexact = False
    while p < n:
        d = np.int64(buf[p]) - 48
        if d < 0 or d > 9:
            break
        any_digit = True
        if nd < 18:
            if mant != 0 or d != 0:
                mant = mant * 10 + d
                nd += 1
        else:
            exp10 += 1
            if d != 0:
                inexact = True
        p += 1
    if p < n and buf[p] == 46:
        p += 1
        while p < n:
            d = np.int64(buf[p]) - 48
            if d < 0 or d > 9:
                break
            any_digit = True
            if nd < 18:
                if mant != 0 or d != 0:
                    mant = mant * 10 + d
                    nd += 1
                exp10 -= 1
            elif d != 0:
                inexact = True
            p += 1
    if not any_digit:
        if p != p0:  # a lone "." (also ".inf")
            return 0.0, p, 2
        if _match_lower(buf, p, n, _W_NAN):
            return 0.0, p + 3, 3
        if _match_lower(buf, p, n, _W_INFINITY):
            return 0.0, p + 8, 3
        if _match_lower(buf, p, n, _W_INF):
            return 0.0, p + 3, 3
        return 0.0, p, 2
    if p < n and (buf[p] | 32) == 101:  # 'e' or 'E'
        q = p + 1
        eneg = False
        if q < n and (buf[q] == 45 or buf[q] == 43):
            eneg = buf[q] == 45
            q += 1
        e = 0
        edig = False
        while q < n:
            d = np.int64(buf[q]) - 48
            if d < 0 or d > 9:
                break
            edig = True
            if e < 100000:
                e = e * 10 + d
            q += 1
        if not edig:
            return 0.0, q, 2
        exp10 += -e if eneg else e
        p = q
    if inexact:
        return 0.0, p, 1
    if mant == 0:
        return (-0.0 if neg else 0.0), p, 0
    if mant <= _MAX_EXACT_MANTISSA and -22 <= exp10 <= 22:
        v = float(mant)
        if exp10 >= 0:
            v = v * _POW10[exp10]
        else:
            v = v / _POW10[-exp10]
        return (-v if neg else v), p, 0
    v, ok = _eisel_lemire(mant, exp10)
    if not ok:
        return 0.0, p, 1
    if v == math.inf:
        return 0.0, p, 3  # overflows binary64, like Python's float() giving inf
    return (-v if neg else v), p, 0


@njit(cache=True, nogil=True)
def _parse_int(buf, p, n):
    """Parse ``[+-]digits`` at ``p``; returns (value, end, status): 0 ok, 2 no digits, 4 overflow."""
    neg = False
    if p < n:
        c = buf[p]
        if c == 45:
            neg = True
            p += 1
        elif c == 43:
            p += 1
    v = 0
    nd = 0
    any_digit = False
    while p < n:
        d = np.int64(buf[p]) - 48
        if d < 0 or d > 9:
            break
        any_digit = True
        if v != 0 or d != 0:
            nd += 1
            if nd <= 18:
                v = v * 10 + d
        p += 1
    if not any_digit:
        return 0, p, 2
    if nd > 18:
        return 0, p, 4
    return (-v if neg else v), p, 0


@njit(cache=True, nogil=True)
def _count_labels(buf, p, n):
    e = _token_end(buf, p, n)
    k = 1
    for i in range(p, e):
        if buf[i] == 44:
            k += 1
    return k


@njit(cache=True, nogil=True)
def _fail(info, code, start, end, aux, rows, nslow):
    info[I_ROWS] = rows
    info[I_NSLOW] = nslow
    info[I_ERR] = code
    info[I_ERR_START] = start
    info[I_ERR_END] = end
    info[I_ERR_AUX] = aux


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


@njit(cache=True, nogil=True)
def first_row_label_count(buf):
    """Comma-separated labels on the first data row of ``buf`` (0 when it has no data row)."""
    n = len(buf)
    p = 0
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


@njit(cache=True, nogil=True)
def parse_chunk(
    buf, n_labels, zero_based, index_limit, boundary_index, value_limit, nnz_base, data, indices, row_ends,
    labels, slow,
):
    """Parse the lines in ``buf`` (np.uint8, ending with b'\\n') into caller-allocated CSR arrays.

    n_labels: labels per row, enforced (see first_row_label_count).
    zero_based: ONE_BASED (index 0 is an error), ZERO_BASED or AUTO_BASED (no check).
    index_limit: raw indices must be < index_limit (-1: no limit).
    boundary_index: record the span of the first raw index equal to it (-1: none).
    value_limit: labels and values must be smaller in magnitude (FLOAT32_LIMIT for float32
    output, inf for float64).
    data, indices: room for every entry (no more than the colons, nor than a quarter of the
    bytes); row_ends: room for every row (no more than the newlines), receives
    ``nnz_base + entries up to the row's end``, i.e. ``indptr[1:]``; labels: float64, room for
    rows * n_labels.
    slow: int64 (k, 4) table that receives (kind, position, start, end) of the numbers the
    caller must convert itself; ``info[I_NSLOW]`` says how many there were, and when that
    exceeds ``k`` the caller must parse again with a larger table.

    Returns ``info`` (see the I_* slots); on a malformed token it stops there with I_ERR set.
    The final newline is a sentinel that ends every scanning loop, so they need no bounds
    checks; ``E_NO_NEWLINE`` reports a buffer without it. The output arrays are allocated by
    the caller so that nothing is allocated or reference-counted inside the loop.
    """
    n = len(buf)
    info = np.zeros(N_INFO, np.int64)
    info[I_MIN] = INDEX_NONE_MIN
    info[I_MAX] = -1
    info[I_LAB_START] = -1
    info[I_LAB_END] = -1
    info[I_BOUND_START] = -1
    info[I_BOUND_END] = -1
    info[I_NLABELS] = n_labels
    if n == 0:
        return info
    if buf[_U(n - 1)] != 10:
        info[I_ERR] = E_NO_NEWLINE
        return info
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
    p = 0
    while p < n:
        c = buf[_U(p)]
        if _CLASS[c] == 1:
            p += 1
            continue
        if c == 10:
            lines += 1
            p += 1
            continue
        if c == 35:
            while buf[_U(p)] != 10:
                p += 1
            continue
        # ---- a data row; its label token starts at p
        lab_start = p
        if rows == 0:
            info[I_LAB_START] = lab_start
            info[I_LAB_END] = _token_end(buf, p, n)
        k = 0
        while True:
            # common labels ("1", "-1", "0.25") inline; the rest through _parse_float
            q = p
            neg = buf[_U(q)] == 45
            if neg:
                q += 1
            ds = q
            mant = 0
            d = np.int64(buf[_U(q)]) - 48
            while 0 <= d <= 9:
                mant = mant * 10 + d
                q += 1
                d = np.int64(buf[_U(q)]) - 48
            ndig = q - ds
            nfrac = 0
            if buf[_U(q)] == 46:
                q += 1
                fs = q
                d = np.int64(buf[_U(q)]) - 48
                while 0 <= d <= 9:
                    mant = mant * 10 + d
                    q += 1
                    d = np.int64(buf[_U(q)]) - 48
                nfrac = q - fs
                ndig += nfrac
            t = buf[_U(q)]
            if 0 < ndig <= 15 and (_CLASS[t] != 0 or t == 44):
                v = float(mant) / _POW10[nfrac]
                if neg:
                    v = -v
                st = 0
            else:
                v, q, st = _parse_float(buf, p, n)
                t = buf[_U(q)]
            if st == 2 or not (_CLASS[t] != 0 or t == 44):
                _fail(info, E_LABEL, lab_start, _token_end(buf, lab_start, n), 0, rows, nslow)
                return info
            if st == 3:
                _fail(info, E_LABEL_NONFINITE, lab_start, _token_end(buf, lab_start, n), 0, rows, nslow)
                return info
            if abs(v) >= value_limit:
                _fail(info, E_LABEL_RANGE, lab_start, _token_end(buf, lab_start, n), 0, rows, nslow)
                return info
            if k < nl:
                labels[rows * nl + k] = v
            if st == 1:
                # position -1: a surplus label, only checked for finiteness
                if nslow < slow_cap:
                    slow[nslow, 0] = SLOW_LABEL
                    slow[nslow, 1] = rows * nl + k if k < nl else -1
                    slow[nslow, 2] = p
                    slow[nslow, 3] = q
                nslow += 1
            k += 1
            if t == 44:
                p = q + 1
                continue
            p = q
            break
        if k != nl:
            _fail(info, E_LABEL_COUNT, lab_start, p, k, rows, nslow)
            return info
        # ---- features. The common form, ``digits:digits[.digits]``, is parsed inline (calls
        # to helper functions are not inlined by numba and would halve the speed); anything
        # else goes through the general helpers, which also classify the errors.
        row_start = nnz
        prev = -1
        first = True
        while True:
            c = buf[_U(p)]
            while _CLASS[c] == 1:
                p += 1
                c = buf[_U(p)]
            if c == 10 or c == 35:
                break
            tok = p
            if first:
                first = False
                if c == 113 and buf[_U(p + 1)] == 105 and buf[_U(p + 2)] == 100 and buf[_U(p + 3)] == 58:
                    _, q, st = _parse_int(buf, p + 4, n)  # "qid:N"
                    if st != 0 or _CLASS[buf[_U(q)]] == 0:
                        _fail(info, E_QID, p + 4, _token_end(buf, p, n), 0, rows, nslow)
                        return info
                    p = q
                    continue
            # index
            idx = 0
            d = np.int64(c) - 48
            while 0 <= d <= 9:
                idx = idx * 10 + d
                p += 1
                d = np.int64(buf[_U(p)]) - 48
            q = p
            if buf[_U(q)] != 58 or q == tok or q - tok > 18:
                idx, q, st = _parse_int(buf, tok, n)
                if st != 0 or buf[_U(q)] != 58:
                    e = _token_end(buf, tok, n)
                    colon = -1
                    for j in range(tok, e):
                        if buf[_U(j)] == 58:
                            colon = j
                            break
                    if colon < 0:
                        _fail(info, E_MISSING_COLON, tok, e, 0, rows, nslow)
                    elif st == 4 and q == colon:
                        _fail(info, E_INDEX_OVERFLOW, tok, colon, 0, rows, nslow)
                    else:
                        _fail(info, E_INDEX_NOT_INT, tok, colon, 0, rows, nslow)
                    return info
            if idx <= prev or idx < lo or idx >= hi:
                if idx < 0:
                    code = E_INDEX_NEGATIVE
                elif idx < lo:
                    code = E_INDEX_ZERO
                elif idx <= prev:
                    code = E_INDEX_ORDER
                else:
                    code = E_INDEX_RANGE
                _fail(info, code, tok, q, prev if code == E_INDEX_ORDER else index_limit, rows, nslow)
                return info
            if idx == boundary_index and bound_start < 0:
                bound_start = tok
                bound_end = q
            # value
            vs = q + 1
            r = vs
            mant = 0
            d = np.int64(buf[_U(r)]) - 48
            while 0 <= d <= 9:
                mant = mant * 10 + d
                r += 1
                d = np.int64(buf[_U(r)]) - 48
            ndig = r - vs
            nfrac = 0
            if buf[_U(r)] == 46:
                r += 1
                fs = r
                d = np.int64(buf[_U(r)]) - 48
                while 0 <= d <= 9:
                    mant = mant * 10 + d
                    r += 1
                    d = np.int64(buf[_U(r)]) - 48
                nfrac = r - fs
                ndig += nfrac
            if 0 < ndig <= 15 and _CLASS[buf[_U(r)]] != 0:
                # below 10**15: exact (Clinger's fast path) and within any value_limit
                v = float(mant) / _POW10[nfrac]
            else:
                v, r, st = _parse_float(buf, vs, n)
                if st == 2 or _CLASS[buf[_U(r)]] == 0:
                    _fail(info, E_VALUE, vs, _token_end(buf, vs, n), 0, rows, nslow)
                    return info
                if st == 3:
                    _fail(info, E_VALUE_NONFINITE, vs, r, 0, rows, nslow)
                    return info
                if abs(v) >= value_limit:
                    _fail(info, E_VALUE_RANGE, vs, r, 0, rows, nslow)
                    return info
                if st == 1:
                    if nslow < slow_cap:
                        slow[nslow, 0] = SLOW_VALUE
                        slow[nslow, 1] = nnz
                        slow[nslow, 2] = vs
                        slow[nslow, 3] = r
                    nslow += 1
            indices[nnz] = idx
            data[nnz] = v
            nnz += 1
            prev = idx
            p = r
        if nnz > row_start:  # indices ascend within a row
            if indices[row_start] < min_idx:
                min_idx = indices[row_start]
            if prev > max_idx:
                max_idx = prev
        row_ends[rows] = nnz_base + nnz
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
    return info


# ---------------------------------------------------------------------------------------
# Small scanning helpers used by the chunk reader.


@njit(cache=True, nogil=True)
def last_newline(buf):
    """Index of the last b'\\n' in ``buf`` or -1."""
    for i in range(len(buf) - 1, -1, -1):
        if buf[i] == 10:
            return i
    return -1


@njit(cache=True, nogil=True)
def first_newline(buf, start):
    """Index of the first b'\\n' at or after ``start`` or -1."""
    for i in range(start, len(buf)):
        if buf[i] == 10:
            return i
    return -1


@njit(cache=True, nogil=True)
def count_newlines(buf):
    c = 0
    for i in range(len(buf)):
        if buf[i] == 10:
            c += 1
    return c


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
            if not _is_space(c):
                content = True
            p += 1
        if content:
            rows += 1
        if p < n:
            p += 1  # the newline
    return rows, n


# ---------------------------------------------------------------------------------------
# Formatting kernels (writers).


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
    scale = 1
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
            v, st = _ref_float(piece)
            if st == 2:
                raise ReferenceError_(E_LABEL, lineno, lab_tok)
            if st == 3:
                raise ReferenceError_(E_LABEL_NONFINITE, lineno, lab_tok)
            if abs(v) >= value_limit:
                raise ReferenceError_(E_LABEL_RANGE, lineno, lab_tok)
            row_labels.append(v)
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
            v, st = _ref_float(val_s)
            if st == 2:
                raise ReferenceError_(E_VALUE, lineno, val_s)
            if st == 3:
                raise ReferenceError_(E_VALUE_NONFINITE, lineno, val_s)
            if abs(v) >= value_limit:
                raise ReferenceError_(E_VALUE_RANGE, lineno, val_s)
            indices.append(idx)
            data.append(v)
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
