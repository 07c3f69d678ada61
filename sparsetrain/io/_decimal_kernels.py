"""Compiled kernels that convert decimal text in a byte buffer to numbers, exactly.

Numbers follow ``[+-]digits[.digits][(e|E)[+-]digits]`` (as Python's ``float`` minus
underscores); ``nan``/``inf``/``infinity`` are recognised so that a caller can report them as
non-finite. :func:`parse_float` converts correctly rounded to binary64 (as Python's
``float``): up to 15 digits by Clinger's fast path, up to 18 significant digits by the
Eisel-Lemire algorithm; it reports longer mantissas as *slow* for the caller to convert with
Python's ``float``. (A hot loop may read the common ``[-]digits[.digits]`` of up to 15 digits
inline, as ``x = mant / POW10[nfrac]``, and call parse_float for the rest.) Integers:
:func:`parse_int`.

The reference for all of them is Python's ``float`` / ``int`` (see tests/test_libsvm.py).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import leading_zeros

_MAX_EXACT_MANTISSA = 1 << 53
# Indexing with an unsigned integer spares numba's negative-index wraparound (~30% faster).
_U = np.uint64
POW10 = np.array([10.0**k for k in range(23)], dtype=np.float64)

# parse_float's status
EXACT = 0  # the value is exact
SLOW = 1  # valid syntax: convert buf[p:end] with Python's float
NOT_A_NUMBER = 2  # end is where parsing stopped
NONFINITE = 3  # a nan/inf literal (or a number beyond binary64) ending at end


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
            c >>= max(0, c.bit_length() - 128)  # halved until below 2**128
        table.append(c)
    for q in range(0, _EL_MAX_Q + 1):
        power5 = 5**q
        shift = 128 - power5.bit_length()  # scaled by a power of two into [2**127, 2**128)
        table.append(power5 << shift if shift >= 0 else power5 >> -shift)
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
def eisel_lemire(mant, q):
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
def _sign(buf, p, n):
    """(negative, position after an optional ``+``/``-`` at ``p``)."""
    if p < n:
        if buf[p] == 45:
            return True, p + 1
        if buf[p] == 43:
            return False, p + 1
    return False, p


@njit(cache=True, nogil=True)
def parse_float(buf, p, n):
    """Parse a number at ``p``; returns (value, end, status).

    status 0: exact value; 1: valid syntax, convert ``buf[p:end]`` with Python's float;
    2: not a number (``end`` is where parsing stopped); 3: a nan/inf literal ending at ``end``.
    """
    neg, p = _sign(buf, p, n)
    p0 = p
    mant = 0
    nd = 0
    exp10 = 0
    any_digit = False
    inexact = False
    frac = False  # past the decimal point
    while p < n:
        c = buf[p]
        if c == 46 and not frac:
            frac = True
            p += 1
            continue
        d = np.int64(c) - 48
        if d < 0 or d > 9:
            break
        any_digit = True
        if nd < 18:  # up to 18 significant digits in the mantissa
            if mant != 0 or d != 0:
                mant = mant * 10 + d
                nd += 1
            if frac:
                exp10 -= 1
        else:  # the rest only scales (integer part) or makes the value inexact
            if not frac:
                exp10 += 1
            if d != 0:
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
            v = v * POW10[exp10]
        else:
            v = v / POW10[-exp10]
        return (-v if neg else v), p, 0
    v, ok = eisel_lemire(mant, exp10)
    if not ok:
        return 0.0, p, 1
    if v == math.inf:
        return 0.0, p, 3  # overflows binary64, like Python's float() giving inf
    return (-v if neg else v), p, 0


@njit(cache=True, nogil=True, inline="always")
def plain_int(buf, s, e):
    """``(value, True)`` when ``buf[s:e]`` is exactly ``[-]digits`` with 1 to 15 digits (every such
    integer is exact in binary64), else ``(0, False)``: a hot loop's common case, tried before
    :func:`parse_float`."""
    neg = buf[s] == 45 if s < e else False
    p = s + 1 if neg else s
    if p == e or e - p > 15:
        return 0, False
    v = 0
    while p < e:
        d = np.int64(buf[p]) - 48
        if d < 0 or d > 9:
            return 0, False
        v = v * 10 + d
        p += 1
    return (-v if neg else v), True


@njit(cache=True, nogil=True)
def parse_int(buf, p, n):
    """Parse ``[+-]digits`` at ``p``; returns (value, end, status): 0 ok, 2 no digits, 4 overflow."""
    neg, p = _sign(buf, p, n)
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


