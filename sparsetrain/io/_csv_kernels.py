"""Compiled kernel that parses CSV/TSV text into hashed CSR rows, and its pure-Python reference.

A line is split into fields as Python's ``csv`` module does with its defaults (``doublequote``,
no ``skipinitialspace``, ``strict=False``): a field that starts with the quote character runs to
the next lone quote (``""`` inside is one quote) and whatever follows it up to the delimiter is
appended; a quote elsewhere is an ordinary character. A line ends at ``\\n`` (a ``\\r`` before it
is dropped), so a quoted field cannot hold a newline (an unterminated quote is an error). Blank
lines are skipped. Each column has a role (``ROLE_*``):

- the label column: a decimal number (see ``_decimal_kernels``), required; a field that is not
  a number is a *text label*: the label is a NaN whose low 32 bits are ``murmurhash3_32`` of the
  (unquoted, stripped) text (``TEXT_LABEL``; a number label is never NaN), and the first row of
  each new text in the chunk (compared by its bytes: another text of the same hash is new) is
  listed as *slow* (``SLOW_LABEL_TEXT``) for the caller to name it; a file without the label
  column (``label_col`` -1: rows ``predict`` scores) has labels NaN;
- the weight column (optional): the row's importance weight, a decimal number >= 0; an empty
  field is weight 1 (as a Vowpal Wabbit line without one);
- a numeric column: a decimal number, feature id ``hash_size + k`` (``k``: its place in the list
  of numeric columns), ``log1p`` optionally applied (``sign(x) * log(1 + |x|)``); an empty field
  or a value 0 is no entry;
- a categorical column: a non-empty field ``v`` of column ``c`` is the feature
  ``murmurhash3_32("c=v") & (hash_size - 1)`` with value 1 (hashed from the bytes, see
  ``_hash_kernels``); an empty field is no entry;
- a cross of two categorical columns ``a``, ``b``: the feature ``"a=va^b=vb"`` hashed likewise,
  present when both fields are non-empty.

Missing trailing fields are empty; more fields than columns is an error. Within a row the ids
are sorted and colliding hashed features are summed (as scikit-learn's ``FeatureHasher``).

:func:`parse_csv_chunk` never raises: it stops at the first malformed line with an error code
and a byte span; the caller writes the message (file, line, column, value). Numbers with more
than 18 significant digits are listed as *slow* for the caller to convert with Python's float.
"""
from __future__ import annotations

import csv
import io
import math

import llvmlite.ir as ir
import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.cpython.unsafe.numbers import trailing_zeros
from numba.extending import intrinsic

from ..kernels.numba_cache import drop_stale_callers
from ._decimal_kernels import NONFINITE, NOT_A_NUMBER, SLOW, parse_float, plain_int
from ._hash_kernels import LANES, PAD, hash_lanes, mm_feed_padded, mm_finish, murmurhash3_32
from ._scan_kernels import (I_ERR, I_ERR_AUX, I_ERR_END, I_ERR_START, I_LINES, I_NNZ, I_NSLOW,  # noqa: F401
                            I_ROWS, N_COMMON, compile_features, eq_mask64, eq_mask_tail, flatten, popcount,
                            record_error)

ROLE_SKIP = 0
ROLE_LABEL = 1
ROLE_NUMERIC = 2
ROLE_CATEGORICAL = 3
ROLE_WEIGHT = 4

OK = 0
E_QUOTE = 1  # unterminated quoted field (span: the field to the line's end)
E_FIELDS = 2  # more fields than columns (aux: the number of columns)
E_LABEL_MISSING = 3
E_LABEL = 4  # label is not a number (span: the raw field)
E_LABEL_NONFINITE = 5
E_VALUE = 6  # numeric field is not a number (aux: column)
E_VALUE_NONFINITE = 7
E_LINE_TOO_LONG = 8  # aux: max_line
E_LABEL_RANGE = 9
E_VALUE_RANGE = 10
E_NO_NEWLINE = 11
E_WEIGHT = 12  # the weight is not a number (aux: column)
E_WEIGHT_NEGATIVE = 13  # or not finite, or below 0

# info slots: the parsers' common ones (``_scan_kernels``)
N_INFO = N_COMMON

SLOW_LABEL = 0
SLOW_VALUE = 1
SLOW_WEIGHT = 2
SLOW_LABEL_TEXT = 3  # the first row of a text label in the chunk (the row's label: TEXT_LABEL | hash)

#: The bits of a text label (a quiet NaN; the low 32 bits hold the text's hash)
TEXT_LABEL = np.uint64(0x7FF8_0001_0000_0000)
_TEXTS_TRACKED = 8  # distinct text labels a chunk lists once; further ones are listed at every row
_TEXT_BYTES = 64  # (as is a text label longer than this)


@njit(cache=True, nogil=True, inline="always")
def _strip(buf, s, e):
    while s < e and (buf[s] == 32 or buf[s] == 9):
        s += 1
    while e > s and (buf[e - 1] == 32 or buf[e - 1] == 9):
        e -= 1
    return s, e


@njit(cache=True, nogil=True)
def _signed_log1p(v):
    return math.log1p(v) if v >= 0 else -math.log1p(-v)


# log1p of the small integers (counts: the usual numeric columns of click logs), by the same libm
_LOG1P_INTS = np.array([math.log1p(k) for k in range(1024)], np.float64)


@njit(cache=True, nogil=True, inline="always")
def _int_feature(v, log1p):
    """The feature value of the integer ``v`` (log1p: ``sign(v) * log(1 + |v|)``)."""
    if not log1p:
        return float(v)
    if -1024 < v < 1024:
        return _LOG1P_INTS[np.uint64(v)] if v >= 0 else -_LOG1P_INTS[np.uint64(-v)]
    return _signed_log1p(float(v))


@njit(cache=True, nogil=True, inline="always")
def _count_value(buf, s, e):
    """``(value, True)`` when ``buf[s:e]`` is empty (value 0) or 1 to 15 digits, else ``(0, False)``:
    the usual field of a numeric column of click logs (a count), with no branch on the digits."""
    v = 0
    bad = e - s > 15
    for p in range(s, e):
        d = np.int64(buf[np.uint64(p)]) - 48
        bad |= (d < 0) | (d > 9)
        v = v * 10 + d
    return v, not bad


@njit(cache=True, nogil=True, inline="always")
def _hash_field(states, c, src, s, e):
    """The murmur state after column ``c``'s ``name=`` prefix and ``src[s:e]``, which has ``PAD``
    bytes after ``e`` (the line loop sees to it); for an empty field, a state of no meaning (its
    entry is not kept). This, the field split, the row sort and the row emitter are inlined into
    the kernel's loop: as calls (27 of this one a row, each passing its arrays) they cost the
    kernel ~17 % (A/B, same output)."""
    h, cr, nc, ln = mm_feed_padded(np.uint64(states[c, 0]), np.uint64(states[c, 1]), states[c, 2], states[c, 3],
                                   src, s, e)
    return h, cr, nc, ln


@njit(cache=True, nogil=True, inline="always")
def sort_row(indices, data, a, b, keys, vals, buckets, id_bits, unit):
    """Sort the entries ``indices[a:b]`` (with their ``data``) by id and sum the values of repeated
    ids into one entry; returns the new end. The one row sort of the hashed text formats (CSV/TSV
    and Vowpal Wabbit). ``keys``/``vals``: int64/float scratch of at least ``b - a`` (``vals`` is
    not used with ``unit``: pass any float array); ``buckets``: int64 scratch of 64; ``id_bits``:
    every id is below ``2**id_bits``; ``unit``: every value is 1 (``data[a:b]`` is not read, the
    merged entries' values are the counts). The CSV kernel sorts with ``unit`` and no scratch for
    values: one more array in its loop cost it ~20 % (A/B, same output).

    Hashed ids are spread evenly: a counting sort on their top 6 bits leaves a row's few dozen ids
    almost in order, and an insertion sort then finishes with hardly a move (about half the time
    of a rank count, or of an insertion sort alone, whose inner loops mispredict). Tried, slower
    (same output): one entry a bucket of the top 8 or 10 bits, marked in a bit mask and read back
    in bit order, the entries whose bucket was taken inserted after (+50 %: the loops over mask
    bits and the insertions mispredict); a rank count of ``id * 64 + position`` over 32 slots
    (+40 %); counting the buckets while hashing, in the CSV kernel (no difference).

    Arrays are indexed by unsigned ints (``u(i)``): numba adds a wrap-around check to every
    index of a signed int (a negative one counts from the end); every index here is >= 0."""
    n = b - a
    if n == 0:
        return b
    u = np.uint64
    shift = max(id_bits - 6, 0)
    for t in range(64):
        buckets[t] = 0
    for i in range(n):
        k = indices[u(a + i)]
        keys[u(i)] = k
        buckets[u((k >> shift) & 63)] += 1
        if not unit:
            vals[u(i)] = data[u(a + i)]
    start = a
    for t in range(64):
        c = buckets[t]
        buckets[t] = start
        start += c
    for i in range(n):
        k = keys[u(i)]
        t = u((k >> shift) & 63)
        d = u(buckets[t])
        if not unit:
            data[d] = vals[u(i)]
        indices[d] = k
        buckets[t] += 1
    # an insertion sort that merges repeated ids as it goes: ``indices[a:w]`` is the sorted, merged
    # prefix; an entry past its end (the common case: the buckets left it in order) is appended
    w = a + 1
    if unit:
        data[u(a)] = 1.0
    for i in range(a + 1, b):
        k = indices[u(i)]
        v = 1.0 if unit else data[u(i)]
        j = w - 1
        while j >= a and indices[u(j)] > k:
            indices[u(j + 1)] = indices[u(j)]
            data[u(j + 1)] = data[u(j)]
            j -= 1
        if j >= a and indices[u(j)] == k:  # a repeated id (rare): moved back, its value added
            for q in range(j + 1, w):
                indices[u(q)] = indices[u(q + 1)]
                data[u(q)] = data[u(q + 1)]
            data[u(j)] += v
        else:
            indices[u(j + 1)] = k
            data[u(j + 1)] = v
            w += 1
    return w


#: the most hashed ids a row's :func:`sort_ids` sorts (more: :func:`sort_row` alone)
SORT_LANES = 32

#: whether numba compiles with AVX2 (``_scan_kernels.compile_features``: the host's features, or
#: NUMBA_CPU_FEATURES; a cache is keyed on them): the row emitter hashes the categorical columns LANES at
#: a time (``hash_lanes``) and sorts a row by the network (:func:`sort_ids`). Without AVX2 LLVM lowers
#: their masked loads, stores and gathers a lane at a time (SSE 4.2: a branch a lane) and SSE2 has no
#: unsigned 32-bit min/max: one field at a time and :func:`sort_row` are faster there (RESULTS.md,
#: session 35, portable2).
WIDE = compile_features().get("avx2", False)


@intrinsic
def sort_ids(typingctx, indices, a, n):
    """Sort ``indices[a:a + n]`` (int64 ids below ``2**31``, ``n <= SORT_LANES``) in place by a bitonic
    sorting network on one ``<32 x i32>`` vector (LLVM IR: on AVX-512 two registers, 15 steps of a
    permute, an unsigned min and max and a blend each; nothing branches on the ids); the lanes past
    ``n`` hold ``2**32 - 1``, above every id, and are not stored. Returns 1 when an id repeats (the
    caller merges those with :func:`sort_row`), else 0. A CSV row's 27 hashed ids: about half the
    CPU of the counting and insertion sort (isolated, 54 against 104-110 ns a row)."""
    if not (isinstance(indices, types.Array) and indices.dtype == types.int64 and indices.ndim == 1
            and isinstance(a, types.Integer) and isinstance(n, types.Integer)):
        return None
    sig = types.int64(indices, a, n)

    def codegen(context, builder, sig, args):
        b = builder
        w = SORT_LANES
        i32, i64 = ir.IntType(32), ir.IntType(64)
        v32, v64, vmask = ir.VectorType(i32, w), ir.VectorType(i64, w), ir.VectorType(ir.IntType(1), w)

        def splat(x):
            v = b.insert_element(ir.Constant(v64, ir.Undefined), x, ir.Constant(i32, 0))
            return b.shuffle_vector(v, ir.Constant(v64, ir.Undefined), ir.Constant(v32, [0] * w))

        def lanes_to(v, order):  # a constant permutation (or, with a second vector, a blend)
            return b.shuffle_vector(v[0], v[1] if len(v) > 1 else ir.Constant(v32, ir.Undefined),
                                    ir.Constant(v32, order))

        arr = context.make_array(sig.args[0])(context, b, args[0])
        start, count = (context.cast(b, args[i], sig.args[i], types.int64) for i in (1, 2))
        ptr = b.gep(arr.data, [start])
        lane = ir.Constant(v64, list(range(w)))
        active = b.icmp_signed("<", lane, splat(count))
        load = cgutils.get_or_insert_function(b.module, ir.FunctionType(v64, [ptr.type, i32, vmask, v64]),
                                              f"llvm.masked.load.v{w}i64.p0")
        v = b.trunc(b.call(load, [ptr, ir.Constant(i32, 8), active, ir.Constant(v64, [0xFFFFFFFF] * w)]), v32)
        k = 2
        while k <= w:  # bitonic: lane i meets lane i ^ j and keeps the min where its k-block ascends
            j = k // 2
            while j >= 1:
                other = lanes_to([v], [i ^ j for i in range(w)])
                lt = b.icmp_unsigned("<", v, other)
                lo, hi = b.select(lt, v, other), b.select(lt, other, v)
                v = lanes_to([lo, hi], [i if ((i & j) == 0) == ((i & k) == 0) else w + i for i in range(w)])
                j //= 2
            k *= 2
        after = lanes_to([v], [min(i + 1, w - 1) for i in range(w)])
        repeats = b.and_(b.icmp_unsigned("==", v, after),
                         b.icmp_signed("<", lane, splat(b.sub(count, ir.Constant(i64, 1)))))
        store = cgutils.get_or_insert_function(b.module, ir.FunctionType(ir.VoidType(), [v64, ptr.type, i32, vmask]),
                                               f"llvm.masked.store.v{w}i64.p0")
        b.call(store, [b.zext(v, v64), ptr, ir.Constant(i32, 8), active])
        return b.zext(b.icmp_unsigned("!=", b.bitcast(repeats, i32), ir.Constant(i32, 0)), i64)

    return sig, codegen


@intrinsic
def count_lanes(typingctx, src, fs, fe, cols, logs, g, active, table, ints, indices, data, nnz, id0):
    """The entries of the numeric fields ``src[fs[c]:fe[c]]``, ``c = cols[g + l]``, for the first ``active``
    of the ``LANES`` lanes ``l`` (LLVM IR on ``<16 x i64>``), written as a row's are: id ``id0 + l`` and the
    field's value, a field whose value is 0 (or empty) skipped, the kept ones compressed to ``indices[nnz:]``
    / ``data[nnz:]`` in lane order. A field of 0 to 8 digits is the integer they make (SWAR: the field's bytes
    moved to the word's top, ``0`` bytes below, checked at once and converted by three multiplications), or
    where ``logs[g + l]`` is not 0 its ``log1p``, ``table[integer]`` below ``len(table)``. The fields' bounds,
    words and table entries by a scalar load a lane (gather instructions are slow on some CPUs); reads up to
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
            and all(isinstance(x, types.Integer) for x in (g, active, nnz, id0))):
        return None
    sig = types.int64(src, fs, fe, cols, logs, g, active, table, ints, indices, data, nnz, id0)

    def codegen(context, b, sig, args):
        lanes = LANES
        i1, i32, i64 = ir.IntType(1), ir.IntType(32), ir.IntType(64)
        f64 = ir.DoubleType()
        ft = context.get_value_type(sig.args[10].dtype)
        v32, v64, vf, vout, vbits = (ir.VectorType(t, lanes) for t in (i32, i64, f64, ft, i1))
        arr = [context.make_array(t)(context, b, a) if isinstance(t, types.Array) else None
               for t, a in zip(sig.args, args)]
        at, count, start, first = (context.cast(b, args[k], sig.args[k], types.int64) for k in (5, 6, 11, 12))

        def c64(x):
            return ir.Constant(v64, [x if x < 1 << 63 else x - (1 << 64)] * lanes)

        def splat(x, vt=v64):
            v = b.insert_element(ir.Constant(vt, ir.Undefined), x, ir.Constant(i32, 0))
            every = ir.Constant(ir.VectorType(i32, vt.count), [0] * vt.count)
            return b.shuffle_vector(v, ir.Constant(vt, ir.Undefined), every)

        def row(k):  # lanes g .. g + LANES - 1 of the int64 array argument k
            return b.bitcast(b.gep(arr[k].data, [at]), v64.as_pointer())

        def load_lanes(ptr, index, vt, align):  # ptr[index[q]] for every lane q, a scalar load each
            v = ir.Constant(vt, ir.Undefined)
            for q in range(lanes):
                at_q = b.extract_element(index, ir.Constant(i32, q))
                v = b.insert_element(v, b.load(b.gep(ptr, [at_q]), align=align), ir.Constant(i32, q))
            return v

        cols_ = b.load(row(3), align=8)
        s = load_lanes(arr[1].data, cols_, v64, 8)
        n = b.sub(load_lanes(arr[2].data, cols_, v64, 8), s)
        text = b.bitcast(arr[0].data, ir.IntType(8).as_pointer())
        word = ir.Constant(v64, ir.Undefined)
        for q in range(lanes):
            ptr = b.bitcast(b.gep(text, [b.extract_element(s, ir.Constant(i32, q))]), i64.as_pointer())
            word = b.insert_element(word, b.load(ptr, align=1), ir.Constant(i32, q))
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
        lane = ir.Constant(v64, list(range(lanes)))
        on = b.icmp_signed("<", lane, splat(count))
        keep = b.and_(b.and_(on, ok), b.icmp_unsigned("!=", v, c64(0)))
        fix = b.and_(keep, b.and_(logged, b.xor(inside, ir.Constant(vbits, [1] * lanes))))
        slow = b.and_(on, b.xor(ok, ir.Constant(vbits, [1] * lanes)))
        bits = [b.zext(b.bitcast(m, ir.IntType(lanes)), i64) for m in (keep, fix, slow)]
        # the kept lanes compressed 8 at a time: one AVX-512 register each (vpcompressq / vcompressps; a
        # 16-lane llvm.experimental.vector.compress, which LLVM splits, crashed the process in a test)
        half = lanes // 2
        h32, h64, hbits = ir.VectorType(i32, half), ir.VectorType(i64, half), ir.VectorType(i1, half)
        hout = ir.VectorType(ft, half)
        wide = ft == f64
        ctpop = cgutils.get_or_insert_function(b.module, ir.FunctionType(ir.IntType(half), [ir.IntType(half)]),
                                               f"llvm.ctpop.i{half}")
        ids = b.add(splat(first), lane)
        offset = start
        for part in range(2):
            order = ir.Constant(h32, list(range(part * half, (part + 1) * half)))
            keep_h = b.shuffle_vector(keep, ir.Constant(vbits, ir.Undefined), order)
            kept = b.zext(b.call(ctpop, [b.bitcast(keep_h, ir.IntType(half))]), i64)
            stored = b.icmp_signed("<", ir.Constant(h64, list(range(half))), splat(kept, h64))
            for k, vt, x, name, align in ((9, h64, ids, "i64", 8),
                                          (10, hout, value, "f64" if wide else "f32", 8 if wide else 4)):
                x = b.shuffle_vector(x, ir.Constant(x.type, ir.Undefined), order)
                compress = cgutils.get_or_insert_function(b.module, ir.FunctionType(vt, [vt, hbits, vt]),
                                                          f"llvm.experimental.vector.compress.v{half}{name}")
                packed = b.call(compress, [x, keep_h, ir.Constant(vt, ir.Undefined)])
                ptr = b.bitcast(b.gep(arr[k].data, [offset]), vt.as_pointer())
                store_type = ir.FunctionType(ir.VoidType(), [vt, ptr.type, i32, hbits])
                store = cgutils.get_or_insert_function(b.module, store_type, f"llvm.masked.store.v{half}{name}.p0")
                b.call(store, [packed, ptr, ir.Constant(i32, align), stored])
            offset = b.add(offset, kept)
        return b.or_(bits[0], b.or_(b.shl(bits[1], ir.Constant(i64, lanes)),
                                    b.shl(bits[2], ir.Constant(i64, 2 * lanes))))

    return sig, codegen


@njit(cache=True, nogil=True, inline="always")
def _sep_bits(buf, b, delim):
    """Bit ``k`` set where ``buf[b + k]`` is ``delim`` or a newline, for the 64 bytes from ``b``
    (``_scan_kernels.eq_mask64``; the last, partial block ``eq_mask_tail``)."""
    if b + 64 > len(buf):
        return eq_mask_tail(buf, b, delim, 10, 10)
    return eq_mask64(buf, b, delim, 10, 10)


@njit(cache=True, nogil=True, inline="always")
def _seps_from(buf, p, delim):
    """The separator cursor at ``buf[p]``: ``(block start, bits of the block's separators at or
    after p)``, which :func:`_next_sep` walks (the Vowpal Wabbit kernel's newlines)."""
    b = p - (p & 63)
    return b, _sep_bits(buf, b, delim) & ~((np.uint64(1) << np.uint64(p - b)) - np.uint64(1))


@njit(cache=True, nogil=True, inline="always")
def _next_sep(buf, b, m, delim):
    """The next separator's index and the cursor after it (the buffer ends with a newline, so
    there is one)."""
    while m == 0:
        b += 64
        m = _sep_bits(buf, b, delim)
    q = b + np.int64(trailing_zeros(m))
    return q, b, m & (m - np.uint64(1))


@njit(cache=True, nogil=True, inline="always")
def _split_line(buf, p, delim, quote, fs, fe, ncols, pos):
    """Split the line at ``buf[p:]`` into the field spans ``fs``/``fe`` (in ``buf``) when no field
    starts with a quote. Each 64-byte block's separators (the delimiter, the newline), newlines and
    quotes are bit masks (``eq_mask64``); the separators' positions up to the line's newline are listed
    into ``pos`` (``_scan_kernels.flatten``, shared with the LibSVM kernel), and the fields are the
    spans between them. A field starts with a quote where a quote bit is at the line's start or one
    past a separator (the masks say it, no load a field). Nothing branches per field, nor on where
    a block ends within a line (a branch per field, a mispredicted one where the separators of a
    block ran out, was the split before session 34). Returns ``(newline index, status)``: status 0
    ok, 1 a field starts with a quote (split the line again with :func:`_split_quoted`), 2 more fields
    than columns. Missing trailing fields are empty; a ``\\r`` before the newline is dropped.
    ``pos``: room for ``ncols + 80`` positions."""
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
def _split_quoted(buf, p, le, delim, quote, scratch, fs, fe, rs, re_, ncols):
    """Split ``buf[p:le]`` as the ``csv`` module does, unquoting into ``scratch``: the field spans
    ``fs``/``fe`` (in ``scratch``) and ``rs``/``re_`` (raw, in ``buf``). Returns ``(code, start,
    aux)``: OK, or E_FIELDS / E_QUOTE with the error's start and aux."""
    for c in range(ncols):
        fs[c] = 0
        fe[c] = 0
    col = 0
    q = p
    s = 0
    while True:
        if col >= ncols:
            return E_FIELDS, p, ncols
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
                return E_QUOTE, raw, col
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
        return OK, 0, 0


@njit(cache=True, nogil=True, inline="always")
def _field_number(src, s, e, value_limit, raw_s, raw_e, slow_kind, slow_pos, slow, nslow, e_bad, e_nonfinite,
                  e_range):
    """``(value, code, nslow)`` of the number ``src[s:e]``: code OK or ``e_bad``/``e_nonfinite``/
    ``e_range``; a number too long for the fast parser is listed in ``slow`` as ``(slow_kind,
    slow_pos, raw_s, raw_e)`` and its value is 1 (replaced by the caller, never dropped as a 0)."""
    v, r, st = parse_float(src, s, e)
    if st == NOT_A_NUMBER or r != e:
        return v, e_bad, nslow
    if st == NONFINITE:
        return v, e_nonfinite, nslow
    if abs(v) >= value_limit:
        return v, e_range, nslow
    if st == SLOW:
        if nslow < slow.shape[0]:
            slow[nslow, 0] = slow_kind
            slow[nslow, 1] = slow_pos
            slow[nslow, 2] = raw_s
            slow[nslow, 3] = raw_e
        return 1.0, OK, nslow + 1
    return v, OK, nslow


@njit(cache=True, nogil=True)
def _text_label(src, s, e, raw_s, raw_e, row, label_bits, texts, text_bytes, slow, nslow):
    """Write the text label ``src[s:e]`` of ``row`` (``TEXT_LABEL | hash``); list its raw span as slow
    unless the chunk has listed the same text (``texts``: the count, then (hash, length) per text
    seen, its bytes in ``text_bytes``): a new text, or another text of the same hash, is named by
    the caller. Returns nslow."""
    h = np.int64(murmurhash3_32(src, s, e, 0))
    label_bits[row] = TEXT_LABEL | np.uint64(h)
    n = texts[0]
    width = text_bytes.shape[1]
    for t in range(n):
        if texts[1 + 2 * t] == h and texts[2 + 2 * t] == e - s and e - s <= width:
            same = True
            for i in range(e - s):
                if text_bytes[t, i] != src[s + i]:
                    same = False
                    break
            if same:
                return nslow
    if n < text_bytes.shape[0] and e - s <= width:
        texts[1 + 2 * n] = h
        texts[2 + 2 * n] = e - s
        for i in range(e - s):
            text_bytes[n, i] = src[s + i]
        texts[0] = n + 1
    if nslow < slow.shape[0]:
        slow[nslow, 0] = SLOW_LABEL_TEXT
        slow[nslow, 1] = row
        slow[nslow, 2] = raw_s
        slow[nslow, 3] = raw_e
    return nslow + 1


@njit(cache=True, nogil=True, inline="always")
def _emit_row(src, fs, fe, rs, re_, line_start, le, value_limit, label_col, num_cols, log1p, cat_cols,
              prefix_states, cross_a, cross_b, cross_mid, cross_mid_off, lanes, data, indices, labels, rows,
              nnz, slow, nslow, keys, buckets, hash_bits, weight_col, weights):
    """The label and entries of one split row (fields ``src[fs[c]:fe[c]]``, raw spans ``rs``/``re_``
    in the chunk for messages and slow numbers): ``(code, err_start, err_end, aux, nnz, nslow)``.
    (30 arguments at most: CPython passes more as a tuple, which numba's inliner cannot take.)"""
    hash_size = np.int64(1) << hash_bits
    mask = hash_size - 1
    # ---- the label (label_col -1: the file has none, rows scored without labels: NaN)
    if label_col < 0:
        labels[rows] = np.nan
    else:
        ls, lend = _strip(src, fs[label_col], fe[label_col])
        if ls == lend:
            return E_LABEL_MISSING, line_start, le, label_col, nnz, nslow
        iv, plain = plain_int(src, ls, lend)
        if plain:  # the common 0/1 label without the general number parser
            labels[rows] = iv
        else:
            v, code, nslow = _field_number(src, ls, lend, value_limit, rs[label_col], re_[label_col], SLOW_LABEL,
                                           rows, slow, nslow, E_LABEL, E_LABEL_NONFINITE, E_LABEL_RANGE)
            if code == E_LABEL:  # a text label: the caller writes it (``_text_label``)
                labels[rows] = np.nan
            elif code != OK:
                return code, rs[label_col], re_[label_col], label_col, nnz, nslow
            else:
                labels[rows] = v
    # ---- the importance weight
    if weight_col >= 0:
        ws, we = _strip(src, fs[weight_col], fe[weight_col])
        if ws == we:
            weights[rows] = 1.0
        else:
            v, code, nslow = _field_number(src, ws, we, value_limit, rs[weight_col], re_[weight_col], SLOW_WEIGHT,
                                           rows, slow, nslow, E_WEIGHT, E_WEIGHT_NEGATIVE, E_WEIGHT_NEGATIVE)
            if code == OK and v < 0.0:
                code = E_WEIGHT_NEGATIVE
            if code != OK:
                return code, rs[weight_col], re_[weight_col], weight_col, nnz, nslow
            weights[rows] = v
    # ---- hashed features (value 1): categorical columns and crosses, then sorted and counted
    row_start = nnz
    # (an empty field is hashed too and its entry not kept: no branch per field, whose outcome
    # varies from row to row, i.e. mispredicts)
    ncat = len(cat_cols)
    hashed = lanes[5]
    for g in range(0, ncat, LANES):  # LANES fields at once (WIDE); a field too long for that, one at a time
        if WIDE:
            long_ = hash_lanes(src, fs, fe, lanes[0], lanes[1], lanes[2], lanes[3], lanes[4], g, hashed, mask)
        else:
            long_ = (np.int64(1) << LANES) - 1
        if ncat - g < LANES:
            long_ &= (np.int64(1) << (ncat - g)) - 1
        while long_ != 0:
            i = np.uint64(g + trailing_zeros(long_))
            c = np.uint64(cat_cols[i])
            h, cr, nc, ln = _hash_field(prefix_states, c, src, fs[c], fe[c])
            hashed[i] = mm_finish(h, cr, nc, ln) & mask
            long_ &= long_ - 1
    for i in range(ncat):
        c = np.uint64(cat_cols[i])
        indices[np.uint64(nnz)] = hashed[np.uint64(i)]
        nnz += fe[c] > fs[c]
    for i in range(len(cross_a)):
        a = np.uint64(cross_a[i])
        b = np.uint64(cross_b[i])
        h, cr, nc, ln = _hash_field(prefix_states, a, src, fs[a], fe[a])
        h, cr, nc, ln = mm_feed_padded(h, cr, nc, ln, cross_mid, cross_mid_off[i], cross_mid_off[i + 1])
        h, cr, nc, ln = mm_feed_padded(h, cr, nc, ln, src, fs[b], fe[b])
        indices[np.uint64(nnz)] = mm_finish(h, cr, nc, ln) & mask
        nnz += (fe[a] > fs[a]) & (fe[b] > fs[b])
    repeats = True
    if WIDE and nnz - row_start <= SORT_LANES:
        repeats = sort_ids(indices, row_start, nnz - row_start) != 0
        for i in range(row_start, nnz):
            data[np.uint64(i)] = 1.0
    if repeats:  # (rare: ~3e-4 of the benchmark's rows) or a row of more than SORT_LANES ids
        nnz = sort_row(indices, data, row_start, nnz, keys, data, buckets, hash_bits, True)
    # ---- numeric columns, after every hashed id: LANES fields at once (WIDE); a group with a field that is not
    # a count of at most 8 digits again one field at a time (a value 0 is written and not kept, as above)
    nnum = len(num_cols)
    every = (np.int64(1) << LANES) - 1
    for g in range(0, nnum, LANES):
        end = min(g + LANES, nnum)
        odd = every
        if WIDE:
            got = count_lanes(src, fs, fe, lanes[6], lanes[7], g, end - g, _LOG1P_INTS, lanes[8], indices, data, nnz,
                              hash_size + g)
            odd = got >> (2 * LANES)
            if odd == 0:
                kept = np.uint64(got & every)
                fix = (got >> LANES) & every
                while fix != 0:  # a log1p beyond the table's counts
                    i = np.uint64(trailing_zeros(fix))
                    at = nnz + popcount(kept & ((np.uint64(1) << i) - np.uint64(1)))
                    data[np.uint64(at)] = _signed_log1p(float(lanes[8, np.uint64(g) + i]))
                    fix &= fix - 1
                nnz += popcount(kept)
        if odd != 0:
            for k in range(g, end):
                c = np.uint64(num_cols[k])
                iv, plain = _count_value(src, fs[c], fe[c])
                if plain:
                    v = _int_feature(iv, log1p[k])
                else:
                    vs, ve = _strip(src, fs[c], fe[c])
                    iv, plain = plain_int(src, vs, ve)
                    if vs == ve:
                        v = 0.0
                    elif plain:
                        v = _int_feature(iv, log1p[k])
                    else:
                        v, code, nslow = _field_number(src, vs, ve, value_limit, rs[c], re_[c], SLOW_VALUE, nnz,
                                                       slow, nslow, E_VALUE, E_VALUE_NONFINITE, E_VALUE_RANGE)
                        if code != OK:
                            return code, rs[c], re_[c], c, nnz, nslow
                        if log1p[k]:
                            v = _signed_log1p(v)
                indices[np.uint64(nnz)] = hash_size + k
                data[np.uint64(nnz)] = v
                nnz += v != 0.0
    return OK, 0, 0, 0, nnz, nslow


@njit(cache=True, nogil=True)
def lane_table(cat_cols, prefix_states, num_cols, log1p):
    """The columns as lanes of :func:`hash_lanes` and :func:`count_lanes`, a multiple of ``LANES`` (a last
    group's spare lanes repeat the first column): rows 0-5 the categorical columns, their prefix states' h,
    carry, ncarry, length and a row for the hashes; rows 6-8 the numeric columns, their log1p flags and a
    row for their integers."""
    ncat, nnum = len(cat_cols), len(num_cols)
    nl = (max(ncat, nnum) + LANES - 1) // LANES * LANES
    lanes = np.zeros((9, nl), np.int64)
    for i in range(nl):
        if ncat > 0:
            c = cat_cols[i if i < ncat else 0]
            lanes[0, i] = c
            for k in range(4):
                lanes[1 + k, i] = prefix_states[c, k]
        if nnum > 0:
            lanes[6, i] = num_cols[i if i < nnum else 0]
            lanes[7, i] = log1p[i] if i < nnum else False
    return lanes


@njit(cache=True, nogil=True)
def parse_csv_chunk(buf, delim, quote, skip_first, max_line, value_limit, roles, label_col, num_cols, log1p,
                    cat_cols, prefix_states, cross_a, cross_b, cross_mid, cross_mid_off, hash_bits,
                    scratch, data, indices, row_ends, labels, nnz_base, slow, weight_col, weights):
    """Parse the lines of ``buf`` (np.uint8 ending with a newline) into caller-allocated arrays.

    roles: ROLE_* per column; label_col: the label's column (-1: none, labels NaN); num_cols: the numeric columns in
    feature order (with ``log1p`` flags); cat_cols: the categorical columns; prefix_states:
    (columns, 4) murmur states after ``name=`` (``_hash_kernels``); crosses: column pairs
    ``cross_a[i]``, ``cross_b[i]`` and the bytes ``^b=`` between the two values in
    ``cross_mid[cross_mid_off[i]:cross_mid_off[i + 1]]``. scratch: room for ``len(buf) + PAD`` bytes
    (a smaller one is replaced by a fresh array).
    data/indices: room for rows * (numeric + categorical + crosses) entries; row_ends: room for
    the rows (``indptr[1:]``, offset by ``nnz_base``); labels: room for the rows; weight_col: the
    weight column (-1: none) and ``weights`` room for the rows (or empty). slow:
    (k, 4) table of (kind, position, raw field start, end) numbers for the caller to convert.
    skip_first: the first line is a header. Returns ``info`` (I_* slots).

    A line in which no field starts with a quote is split in place (its fields are spans of
    ``buf``); one with a quoted field, or one that ends less than ``PAD`` bytes before the buffer's
    end (the field hash reads up to ``PAD`` bytes past a field), is unquoted into ``scratch`` first.
    """
    n = len(buf)
    info = np.zeros(N_INFO, np.int64)
    if n == 0:
        return info
    if buf[n - 1] != 10:
        info[I_ERR] = E_NO_NEWLINE
        return info
    ncols = len(roles)
    fs = np.empty(ncols, np.int64)  # field spans (in buf, or in scratch for a quoted line)
    fe = np.empty(ncols, np.int64)
    rs = np.empty(ncols, np.int64)  # raw spans in buf (for messages)
    re_ = np.empty(ncols, np.int64)
    keys = np.empty(len(cat_cols) + len(cross_a) + 1, np.int64)  # a row's hashed entries, to sort
    buckets = np.empty(64, np.int64)
    pos = np.empty(ncols + 80, np.int64)  # a line's separator positions (_split_line)
    if len(scratch) < n + PAD:
        scratch = np.empty(n + PAD, np.uint8)
    mid = np.zeros(len(cross_mid) + PAD, np.uint8)  # the crosses' middle bytes, padded for the field hash
    mid[:len(cross_mid)] = cross_mid
    lanes = lane_table(cat_cols, prefix_states, num_cols, log1p)
    texts = np.zeros(1 + 2 * _TEXTS_TRACKED, np.int64)
    text_bytes = np.empty((_TEXTS_TRACKED, _TEXT_BYTES), np.uint8)
    _parse_lines(buf, delim, quote, skip_first, max_line, value_limit, label_col, num_cols, log1p, cat_cols,
                 prefix_states, cross_a, cross_b, mid, cross_mid_off, hash_bits, scratch, data, indices,
                 row_ends, labels, labels.view(np.uint64), nnz_base, slow, weight_col, weights, info, fs, fe, rs, re_,
                 keys, buckets, texts, text_bytes, pos, lanes)
    return info


@njit(cache=True, nogil=True, _nrt=False)
def _parse_lines(buf, delim, quote, skip_first, max_line, value_limit, label_col, num_cols, log1p, cat_cols,
                 prefix_states, cross_a, cross_b, cross_mid, cross_mid_off, hash_bits, scratch, data, indices,
                 row_ends, labels, label_bits, nnz_base, slow, weight_col, weights, info, fs, fe, rs, re_, keys,
                 buckets, texts, text_bytes, pos, lanes):
    """:func:`parse_csv_chunk`'s loop over the lines, given its scratch arrays (``fs`` ... ``text_bytes``).
    Compiled without numba's reference counts (``_nrt=False``: it allocates nothing). With them, the
    inlined helpers' array arguments (the row emitter's 20, the split's 3) cost an atomic add and
    subtract each per row, which numba's pruning of reference counts leaves in this loop's branches:
    ~60 a row, ~30 % of the kernel's CPU (A/B, same output)."""
    n = len(buf)
    ncols = len(fs)
    nslow = 0
    rows = 0
    nnz = 0
    lines = 0
    p = 0
    if skip_first:
        while buf[p] != 10:
            p += 1
        p += 1
        lines = 1
    while p < n:
        line_start = p
        e, status = _split_line(buf, p, delim, quote, fs, fe, ncols, pos)
        if e - line_start > max_line:
            record_error(info, E_LINE_TOO_LONG, line_start, e, max_line, rows, nslow)
            return
        le = e
        if le > p and buf[le - 1] == 13:
            le -= 1
        if le == p:  # blank line
            p = e + 1
            lines += 1
            continue
        if status == 2:
            record_error(info, E_FIELDS, line_start, le, ncols, rows, nslow)
            return
        if e + PAD > n:  # the buffer's last line(s): split (copied) into scratch, which has PAD to spare
            status = 1
        # one call of the (inlined) row emitter for both kinds of line: its fields are spans of
        # ``buf``, or of ``scratch`` once unquoted (two inlined copies doubled the compile time)
        src, raw_s, raw_e = buf, fs, fe
        code, es, ee, aux = OK, 0, 0, 0
        if status != 0:
            code, es, aux = _split_quoted(buf, p, le, delim, quote, scratch, fs, fe, rs, re_, ncols)
            ee = le
            src, raw_s, raw_e = scratch, rs, re_
        if code == OK:
            code, es, ee, aux, nnz, nslow = _emit_row(
                src, fs, fe, raw_s, raw_e, line_start, le, value_limit, label_col, num_cols, log1p, cat_cols,
                prefix_states, cross_a, cross_b, cross_mid, cross_mid_off, lanes, data, indices, labels, rows,
                nnz, slow, nslow, keys, buckets, hash_bits, weight_col, weights)
        if code != OK:
            record_error(info, code, es, ee, aux, rows, nslow)
            return
        if labels[rows] != labels[rows] and label_col >= 0:  # NaN: a text label (a number label is never NaN)
            ls, lend = _strip(src, fs[label_col], fe[label_col])
            nslow = _text_label(src, ls, lend, raw_s[label_col], raw_e[label_col], rows, label_bits, texts, text_bytes,
                                slow, nslow)
        row_ends[rows] = nnz_base + nnz
        rows += 1
        lines += 1
        p = e + 1
    info[I_ROWS] = rows
    info[I_NNZ] = nnz
    info[I_LINES] = lines
    info[I_NSLOW] = nslow


# ---------------------------------------------------------------------------------------
# Pure-Python reference: Python's csv module, hashlib-free hashing via hashing.murmurhash3_32


def parse_reference(text: str, columns, label, numeric, categorical, crosses, hash_bits, log1p=(),
                    delimiter=",", header=False, weight_column=None):
    """Rows of ``text`` as ``(labels, rows)``, each row a dict id -> value (a dict, no order),
    using ``csv.reader`` for the fields and :func:`hashing.murmurhash3_32` for the ids; with a
    ``weight_column``, ``(labels, rows, weights)``."""
    from .hashing import murmurhash3_32

    size = 1 << hash_bits
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    labels, rows, weights = [], [], []
    for i, fields in enumerate(reader):
        if header and i == 0:
            continue
        if not fields:
            continue
        vals = dict(zip(columns, fields))
        labels.append(float(vals[label]))
        if weight_column is not None:
            w = vals.get(weight_column, "").strip(" \t")
            weights.append(float(w) if w else 1.0)
            if not weights[-1] >= 0 or weights[-1] == math.inf:
                raise ValueError(f"weight {w!r}")
        row: dict[int, float] = {}
        for c in categorical:
            if vals.get(c, ""):
                j = murmurhash3_32(f"{c}={vals[c]}") % size
                row[j] = row.get(j, 0.0) + 1.0
        for a, b in crosses:
            if vals.get(a, "") and vals.get(b, ""):
                j = murmurhash3_32(f"{a}={vals[a]}^{b}={vals[b]}") % size
                row[j] = row.get(j, 0.0) + 1.0
        for k, c in enumerate(numeric):
            t = vals.get(c, "").strip(" \t")
            if t and float(t) != 0:
                x = float(t)
                row[size + k] = math.copysign(math.log1p(abs(x)), x) if c in log1p else x
        rows.append(row)
    return (labels, rows) if weight_column is None else (labels, rows, weights)


# numba keys a cached kernel on its own file: drop this module's when a kernel it calls from another file is newer
drop_stale_callers(__name__)
