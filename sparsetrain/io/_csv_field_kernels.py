"""The fields of a CSV/TSV line, for the CSV kernel (``_csv_kernels``): where they are and the numbers in them.

:func:`split_line` splits a line in place from its separators' bit masks (a line where no field starts
with a quote); :func:`split_quoted` splits one as Python's ``csv`` module does, unquoting into a scratch
buffer. A numeric column's field is most often a count: :func:`count_value` reads one field of digits,
:func:`count_lanes` ``LANES`` fields at once (LLVM IR), with ``log1p`` from :data:`LOG1P_INTS`; any
other number goes through the general decimal parser (``_decimal_kernels``, the kernel's job)."""
from __future__ import annotations

import math

import llvmlite.ir as ir
import numpy as np
from numba import njit, types
from numba.extending import intrinsic

from ..kernels.numba_cache import drop_stale_callers
from ._hash_kernels import LANES
from ._hash_kernels import compress_store, field_bounds
from ._hash_kernels import load_lanes as _load_lanes
from ._scan_kernels import eq_mask64, eq_mask_tail, flatten


@njit(cache=True, nogil=True, inline="always")
def strip(buf, s, e):
    while s < e and (buf[s] == 32 or buf[s] == 9):
        s += 1
    while e > s and (buf[e - 1] == 32 or buf[e - 1] == 9):
        e -= 1
    return s, e


@njit(cache=True, nogil=True)
def signed_log1p(v):
    return math.log1p(v) if v >= 0 else -math.log1p(-v)


# log1p of the small integers (counts: the usual numeric columns of click logs), by the same libm
LOG1P_INTS = np.array([math.log1p(k) for k in range(1024)], np.float64)


@njit(cache=True, nogil=True, inline="always")
def int_feature(v, log1p):
    """The feature value of the integer ``v`` (log1p: ``sign(v) * log(1 + |v|)``)."""
    if not log1p:
        return float(v)
    if -1024 < v < 1024:
        return LOG1P_INTS[np.uint64(v)] if v >= 0 else -LOG1P_INTS[np.uint64(-v)]
    return signed_log1p(float(v))


@njit(cache=True, nogil=True, inline="always")
def count_value(buf, s, e):
    """``(value, True)`` when ``buf[s:e]`` is empty (value 0) or 1 to 15 digits, else ``(0, False)``:
    the usual field of a numeric column of click logs (a count), with no branch on the digits."""
    v = 0
    bad = e - s > 15
    for p in range(s, e):
        d = np.int64(buf[np.uint64(p)]) - 48
        bad |= (d < 0) | (d > 9)
        v = v * 10 + d
    return v, not bad


@intrinsic
def count_lanes(typingctx, src, fs, fe, cols, logs, g, active, table, ints, indices, data, nnz, id0, contiguous):
    """The entries of the numeric fields ``src[fs[c]:fe[c]]``, ``c = cols[g + l]``, for the first ``active``
    of the ``LANES`` lanes ``l`` (LLVM IR on ``<16 x i64>``), written as a row's are: id ``id0 + l`` and the
    field's value, a field whose value is 0 (or empty) skipped, the kept ones compressed to ``indices[nnz:]``
    / ``data[nnz:]`` in lane order. A field of 0 to 8 digits is the integer they make (SWAR: the field's bytes
    moved to the word's top, ``0`` bytes below, checked at once and converted by three multiplications), or
    where ``logs[g + l]`` is not 0 its ``log1p``, ``table[integer]`` below ``len(table)``. The fields' bounds
    by ``_hash_kernels.field_bounds`` (``contiguous``: the columns are ``cols[g] + l``), words and table entries
    by ``_hash_kernels.load_lanes`` (gathers where they are fast); reads up to
    ``PAD`` bytes past a field's start. ``ints[g + l]``: the lanes' integers. Returns three lane masks: bits
    0-15 the lanes kept, 16-31 those kept whose value is a ``log1p`` beyond the table (the caller writes
    it), 32-47 the active lanes whose field is not such a count (a sign, a point, spaces, more digits, not
    a number): the caller then writes the whole group again, one field at a time. ``cols``, ``logs`` and
    ``ints`` hold ``g + LANES`` entries."""
    ints_ = (fs, fe, cols, logs, ints, indices)
    if not (isinstance(src, types.Array) and src.dtype == types.uint8 and src.layout == "C"
            and all(isinstance(a, types.Array) and a.dtype == types.int64 and a.ndim == 1 and a.layout == "C"
                    for a in ints_)
            and isinstance(table, types.Array) and table.dtype == types.float64 and table.layout == "C"
            and isinstance(data, types.Array) and data.dtype in (types.float32, types.float64)
            and data.ndim == 1 and data.layout == "C"
            and all(isinstance(x, types.Integer) for x in (g, active, nnz, id0, contiguous))):
        return None
    sig = types.int64(src, fs, fe, cols, logs, g, active, table, ints, indices, data, nnz, id0, contiguous)

    def codegen(context, b, sig, args):
        lanes = LANES
        i1, i32, i64 = ir.IntType(1), ir.IntType(32), ir.IntType(64)
        f64 = ir.DoubleType()
        ft = context.get_value_type(sig.args[10].dtype)
        v32, v64, vf, vout, vbits = (ir.VectorType(t, lanes) for t in (i32, i64, f64, ft, i1))
        arr = [context.make_array(t)(context, b, a) if isinstance(t, types.Array) else None
               for t, a in zip(sig.args, args)]
        at, count, start, first, contiguous = (context.cast(b, args[k], sig.args[k], types.int64)
                                               for k in (5, 6, 11, 12, 13))

        def c64(x):
            return ir.Constant(v64, [x if x < 1 << 63 else x - (1 << 64)] * lanes)

        def splat(x, vt=v64):
            v = b.insert_element(ir.Constant(vt, ir.Undefined), x, ir.Constant(i32, 0))
            every = ir.Constant(ir.VectorType(i32, vt.count), [0] * vt.count)
            return b.shuffle_vector(v, ir.Constant(vt, ir.Undefined), every)

        def row(k):  # lanes g .. g + LANES - 1 of the int64 array argument k
            return b.bitcast(b.gep(arr[k].data, [at]), v64.as_pointer())

        def load_lanes(ptr, index, vt, align):  # ptr[index[q]] for every lane q
            return _load_lanes(b, ptr, index, vt, align)

        lane = ir.Constant(v64, list(range(lanes)))
        on = b.icmp_signed("<", lane, splat(count))
        s, e = field_bounds(b, arr[1].data, arr[2].data, b.load(row(3), align=8), contiguous, on)
        n = b.sub(e, s)
        text = b.bitcast(arr[0].data, ir.IntType(8).as_pointer())
        word = _load_lanes(b, text, s, v64, 1, bytes_=True)
        short = b.icmp_unsigned("<=", n, c64(8))
        half = b.mul(b.sub(c64(8), b.select(short, n, c64(8))), c64(4))  # two shifts: one of 64 is poison
        below = b.shl(b.shl(c64(-1), half), half)  # the field's bytes, once moved to the top
        w = b.or_(b.shl(b.shl(word, half), half), b.and_(b.xor(below, c64(-1)), c64(0x3030303030303030)))
        high = c64(0xF0F0F0F0F0F0F0F0)
        checked = b.or_(b.and_(w, high), b.lshr(b.and_(b.add(w, c64(0x0606060606060606)), high), c64(4)))
        ok = b.and_(short, b.icmp_unsigned("==", checked, c64(0x3333333333333333)))
        v = b.lshr(b.mul(b.and_(w, c64(0x0F0F0F0F0F0F0F0F)), c64(2561)), c64(8))
        v = b.lshr(b.mul(b.and_(v, c64(0x00FF00FF00FF00FF)), c64(6553601)), c64(16))
        v = b.lshr(b.mul(b.and_(v, c64(0x0000FFFF0000FFFF)), c64(42949672960001)), c64(32))
        b.store(v, row(8), align=8)
        logged = b.icmp_signed("!=", b.load(row(4), align=8), c64(0))
        inside = b.icmp_unsigned("<", v, splat(b.extract_value(arr[7].shape, 0)))
        logs_ = load_lanes(arr[7].data, b.select(inside, v, c64(0)), vf, 8)
        value = b.select(logged, logs_, b.uitofp(v, vf))
        if ft != f64:
            value = b.fptrunc(value, vout)
        keep = b.and_(b.and_(on, ok), b.icmp_unsigned("!=", v, c64(0)))
        fix = b.and_(keep, b.and_(logged, b.xor(inside, ir.Constant(vbits, [1] * lanes))))
        slow = b.and_(on, b.xor(ok, ir.Constant(vbits, [1] * lanes)))
        bits = [b.zext(b.bitcast(m, ir.IntType(lanes)), i64) for m in (keep, fix, slow)]
        compress_store(b, b.add(splat(first), lane), keep, arr[9].data, start, 8)
        compress_store(b, value, keep, arr[10].data, start, 8 if ft == f64 else 4)
        return b.or_(bits[0], b.or_(b.shl(bits[1], ir.Constant(i64, lanes)),
                                    b.shl(bits[2], ir.Constant(i64, 2 * lanes))))

    return sig, codegen


@njit(cache=True, nogil=True, inline="always")
def split_line(buf, p, delim, quote, fs, fe, ncols, pos):
    """Split the line at ``buf[p:]`` into the field spans ``fs``/``fe`` (in ``buf``) when no field
    starts with a quote. Each 64-byte block's separators (the delimiter, the newline), newlines and
    quotes are bit masks (``eq_mask64``); the separators' positions up to the line's newline are listed
    into ``pos`` (``_scan_kernels.flatten``, shared with the LibSVM kernel), and the fields are the
    spans between them. A field starts with a quote where a quote bit is at the line's start or one
    past a separator (the masks say it, no load a field). Nothing branches per field, nor on where
    a block ends within a line (the branch where a block's separators run out mispredicts).
    Returns ``(newline index, status)``: status 0 ok, 1 a field starts with a quote (split the line
    again with :func:`split_quoted`), 2 more fields than columns. Missing trailing fields are empty;
    a ``\\r`` before the newline is dropped. ``pos``: room for ``ncols + 80`` positions."""
    n = len(buf)
    u = np.uint64
    one = u(1)
    b = p - (p & 63)
    below = (one << u(p - b)) - one  # the first block's bytes before the line
    start = one << u(p - b)  # where a field starts: the line's start, one past each separator
    at_quote = u(0)
    k = 0
    while True:
        if b + 64 <= n:
            seps = eq_mask64(buf, b, delim, 10, 10)
            newlines = eq_mask64(buf, b, 10, 10, 10)
            quotes = eq_mask64(buf, b, quote, quote, quote)
        else:  # the buffer's last, partial block
            seps = eq_mask_tail(buf, b, delim, 10, 10)
            newlines = eq_mask_tail(buf, b, 10, 10, 10)
            quotes = eq_mask_tail(buf, b, quote, quote, quote)
        seps &= ~below
        newlines &= ~below
        starts = (seps << one) | start
        start = seps >> u(63)  # the next block's first byte starts a field after this one's last separator
        last = newlines != 0
        if last:
            newline = newlines & (~newlines + one)  # the line's: the block's first
            seps &= (newline << one) - one  # (0 - 1: every bit, when the newline is bit 63)
            starts &= newline - one
        at_quote |= quotes & starts
        k = flatten(seps, b, pos, k)
        if last:
            break
        k = min(k, ncols + 1)  # more fields than columns: only the newline's position is wanted now
        b += 64
        below = u(0)
    e = pos[u(k - 1)]
    if at_quote != 0:
        return e, 1
    if k > ncols:
        return e, 2
    fs[0] = p
    fe[0] = pos[0]
    for c in range(1, k):
        fs[u(c)] = pos[u(c - 1)] + 1
        fe[u(c)] = pos[u(c)]
    if e > p and buf[u(e - 1)] == 13:
        fe[u(k - 1)] -= 1
    for c in range(k, ncols):
        fs[u(c)] = 0
        fe[u(c)] = 0
    return e, 0


@njit(cache=True, nogil=True)
def split_quoted(buf, p, le, delim, quote, scratch, fs, fe, rs, re_, ncols):
    """Split ``buf[p:le]`` as the ``csv`` module does, unquoting into ``scratch``: the field spans
    ``fs``/``fe`` (in ``scratch``) and ``rs``/``re_`` (raw, in ``buf``). Returns ``(status, start,
    aux)``: status 0 ok, 1 an unterminated quote (start: the field's, aux: its column), 2 more
    fields than columns (start: the line's, aux: ``ncols``)."""
    for c in range(ncols):
        fs[c] = 0
        fe[c] = 0
    col = 0
    q = p
    s = 0
    while True:
        if col >= ncols:
            return 2, p, ncols
        start = s
        raw = q
        if q < le and buf[q] == quote:
            q += 1
            closed = False
            while q < le:
                ch = buf[q]
                if ch == quote:
                    if q + 1 < le and buf[q + 1] == quote:
                        scratch[s] = quote
                        s += 1
                        q += 2
                        continue
                    q += 1
                    closed = True
                    break
                scratch[s] = ch
                s += 1
                q += 1
            if not closed:
                return 1, raw, col
        while q < le and buf[q] != delim:
            scratch[s] = buf[q]
            s += 1
            q += 1
        fs[col] = start
        fe[col] = s
        rs[col] = raw
        re_[col] = q
        col += 1
        if q < le:
            q += 1
            continue
        return 0, 0, 0


# numba keys a cached kernel on its own file: drop this module's when a kernel it calls from another file is newer
drop_stale_callers(__name__)
