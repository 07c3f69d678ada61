"""The row sort of the hashed text formats (CSV/TSV and Vowpal Wabbit): a row's hashed ids in ascending
order, colliding ids summed into one entry (as scikit-learn's ``FeatureHasher``). :func:`sort_row` is
the general one (a counting sort on the top bits, then an insertion pass that merges repeats);
:func:`sort_ids` sorts up to :data:`SORT_LANES` ids in one vector register and says whether one repeats
(the CSV kernel uses it where numba compiles with AVX2 and merges the rare repeats with
:func:`sort_row`)."""
from __future__ import annotations

import llvmlite.ir as ir
import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic


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


@intrinsic
def sort_ids(typingctx, indices, data, a, n):
    """Sort ``indices[a:a + n]`` (int64 ids below ``2**31``, ``n <= SORT_LANES``) in place, and set
    ``data[a:a + n]`` to 1 (a masked store: the row's hashed entries, each of value 1), by a bitonic
    sorting network on one ``<32 x i32>`` vector (LLVM IR: on AVX-512 two registers, 15 steps of a
    permute, an unsigned min and max and a blend each; nothing branches on the ids); the lanes past
    ``n`` hold ``2**32 - 1``, above every id, and are not stored. Returns 1 when an id repeats (the
    caller merges those with :func:`sort_row`), else 0. A CSV row's 27 hashed ids: about half the
    CPU of the counting and insertion sort (isolated, 54 against 104-110 ns a row)."""
    if not (isinstance(indices, types.Array) and indices.dtype == types.int64 and indices.ndim == 1
            and isinstance(data, types.Array) and data.dtype in (types.float32, types.float64) and data.ndim == 1
            and isinstance(a, types.Integer) and isinstance(n, types.Integer)):
        return None
    sig = types.int64(indices, data, a, n)

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
        start, count = (context.cast(b, args[i], sig.args[i], types.int64) for i in (2, 3))
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
        ft = context.get_value_type(sig.args[1].dtype)
        values = context.make_array(sig.args[1])(context, b, args[1])
        vf = ir.VectorType(ft, w)
        at = b.gep(values.data, [start])
        name = f"v{w}f{32 if isinstance(ft, ir.FloatType) else 64}"
        store = cgutils.get_or_insert_function(b.module, ir.FunctionType(ir.VoidType(), [vf, at.type, i32, vmask]),
                                               f"llvm.masked.store.{name}.p0")
        b.call(store, [ir.Constant(vf, [1.0] * w), at, ir.Constant(i32, 4), active])
        return b.zext(b.icmp_unsigned("!=", b.bitcast(repeats, i32), ir.Constant(i32, 0)), i64)

    return sig, codegen
