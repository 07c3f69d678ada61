"""MurmurHash3 x86 32-bit (Austin Appleby's ``MurmurHash3_x86_32``) as compiled kernels.

The hash is fed in pieces (``mm_feed``) so that a key such as ``column=value`` is hashed
straight from the bytes it is made of, without building it: a state is ``(h, carry, ncarry,
length)`` (the running hash, up to three pending bytes, how many, the bytes fed so far),
:func:`mm_start` makes one, :func:`mm_feed` adds bytes, :func:`mm_finish` gives the hash.
:func:`murmurhash3_32` hashes one byte range. Results equal scikit-learn's
``sklearn.utils.murmurhash3_32(key, seed, positive=True)`` (``tests/test_hashing.py``).
Everything is computed in uint64 and masked to 32 bits.
"""
from __future__ import annotations

import llvmlite.ir as ir
import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

_M = np.uint64(0xFFFFFFFF)
_C1 = np.uint64(0xCC9E2D51)
_C2 = np.uint64(0x1B873593)
_N = np.uint64(0xE6546B64)
_F1 = np.uint64(0x85EBCA6B)
_F2 = np.uint64(0xC2B2AE35)
_U5 = np.uint64(5)


@njit(cache=True, nogil=True, inline="always")
def _rotl(x, r):
    return ((x << np.uint64(r)) | (x >> np.uint64(32 - r))) & _M


@njit(cache=True, nogil=True, inline="always")
def _mix_k(k):
    k = (k * _C1) & _M
    k = _rotl(k, 15)
    return (k * _C2) & _M


@njit(cache=True, nogil=True, inline="always")
def _mix_h(h, k):
    h ^= _mix_k(k)
    h = _rotl(h, 13)
    return (h * _U5 + _N) & _M


@njit(cache=True, nogil=True)
def mm_start(seed):
    """The state before any byte: ``(h, carry, ncarry, length)``."""
    return np.uint64(seed) & _M, np.uint64(0), 0, 0


@njit(cache=True, nogil=True, inline="always")
def mm_feed(h, carry, ncarry, length, buf, start, end):
    """The state after feeding ``buf[start:end]``."""
    h = np.uint64(h)
    carry = np.uint64(carry)
    p = start
    # complete a pending block first
    while ncarry != 0 and p < end:
        carry |= np.uint64(buf[p]) << np.uint64(8 * ncarry)
        ncarry += 1
        p += 1
        if ncarry == 4:
            h = _mix_h(h, carry)
            carry = np.uint64(0)
            ncarry = 0
    while p + 4 <= end:
        k = (np.uint64(buf[p]) | (np.uint64(buf[p + 1]) << np.uint64(8)) | (np.uint64(buf[p + 2]) << np.uint64(16))
             | (np.uint64(buf[p + 3]) << np.uint64(24)))
        h = _mix_h(h, k)
        p += 4
    while p < end:
        carry |= np.uint64(buf[p]) << np.uint64(8 * ncarry)
        ncarry += 1
        p += 1
    return h, carry, ncarry, length + (end - start)


@njit(cache=True, nogil=True, inline="always")
def load32(buf, p):
    """The 4 bytes ``buf[p:p + 4]`` as a little-endian word (LLVM makes it one load)."""
    u = np.uint64(p)
    return (np.uint64(buf[u]) | (np.uint64(buf[u + np.uint64(1)]) << np.uint64(8))
            | (np.uint64(buf[u + np.uint64(2)]) << np.uint64(16)) | (np.uint64(buf[u + np.uint64(3)]) << np.uint64(24)))


@njit(cache=True, nogil=True, inline="always")
def mm_feed_words(h, carry, ncarry, length, buf, start, end):
    """:func:`mm_feed` of ``buf[start:end]`` by whole 4-byte loads, the same state: the pending bytes
    are joined to the first word by a shift, the last partial word is masked (no loop per byte;
    ~9 % less CPU for the CSV kernel). It reads the bytes before ``max(start, end) + 4``; where the
    buffer is shorter, or ``buf[start:end]`` cannot complete the pending block, it is :func:`mm_feed`."""
    n = end - start
    need = (4 - ncarry) & 3
    if n < need or start + 4 > len(buf) or end + 4 > len(buf):
        return mm_feed(h, carry, ncarry, length, buf, start, end)
    h = np.uint64(h)
    p = start
    if ncarry != 0:
        h = _mix_h(h, (np.uint64(carry) | (load32(buf, p) << np.uint64(8 * ncarry))) & _M)
        p += need
    while p + 4 <= end:
        h = _mix_h(h, load32(buf, p))
        p += 4
    r = end - p
    carry = load32(buf, p) & ((np.uint64(1) << np.uint64(8 * r)) - np.uint64(1))
    return h, carry, r, length + n


#: The bytes :func:`mm_feed_padded` may read past its range's end.
PAD = 8


@njit(cache=True, nogil=True, inline="always")
def mm_feed_padded(h, carry, ncarry, length, buf, start, end):
    """:func:`mm_feed` of a non-empty ``buf[start:end]`` where the buffer holds ``PAD`` bytes past
    ``end`` (the caller checks that once, e.g. per line): no check here. The pending bytes and
    the range are one stream of 4-byte blocks: block 0 is the carry joined to the first word by a
    shift, block ``i >= 1`` the word at ``start - ncarry + 4 * i``, the last partial block is the
    masked word after the last whole one. The first two blocks are mixed unrolled (a short key's
    blocks; a loop whose trip count varies by row mispredicts), each kept when the stream has it.
    For an empty range the state returned is not the state given (any state of the same shape):
    callers that drop an empty field's hash (the CSV kernel) do not branch on it."""
    u = np.uint64
    h = u(h)
    n = end - start
    total = ncarry + n
    nb = total >> 2  # whole blocks of the stream
    base = start - ncarry
    w0 = (u(carry) | (load32(buf, start) << u(8 * ncarry))) & _M
    h = _mix_h(h, w0) if nb >= 1 or n == 0 else h
    h = _mix_h(h, load32(buf, base + 4)) if nb >= 2 or n == 0 else h
    i = 2
    while i < nb:
        h = _mix_h(h, load32(buf, base + 4 * i))
        i += 1
    r = total & 3
    tail = load32(buf, base + 4 * max(nb, 1)) if nb != 0 or n == 0 else w0
    return h, tail & ((u(1) << u(8 * r)) - u(1)), r, length + n


@njit(cache=True, nogil=True, inline="always")
def mm_finish(h, carry, ncarry, length):
    """The 32-bit hash (as an int64 in [0, 2**32)) of the bytes fed."""
    h = np.uint64(h)
    carry = np.uint64(carry)
    if ncarry != 0:
        h ^= _mix_k(carry)
    h ^= np.uint64(length) & _M
    h ^= h >> np.uint64(16)
    h = (h * _F1) & _M
    h ^= h >> np.uint64(13)
    h = (h * _F2) & _M
    h ^= h >> np.uint64(16)
    return np.int64(h)


@njit(cache=True, nogil=True)
def murmurhash3_32(buf, start, end, seed):
    """MurmurHash3 x86 32-bit of ``buf[start:end]`` (uint8), unsigned, as an int64."""
    h, c, n, ln = mm_start(seed)
    h, c, n, ln = mm_feed(h, c, n, ln, buf, start, end)
    return mm_finish(h, c, n, ln)


@njit(cache=True, nogil=True)
def hash_many(buf, offsets, seed, mask):
    """``murmurhash3_32(buf[offsets[i]:offsets[i+1]]) & mask`` for every i."""
    n = len(offsets) - 1
    out = np.empty(n, np.int64)
    for i in range(n):
        out[i] = murmurhash3_32(buf, offsets[i], offsets[i + 1], seed) & mask
    return out


#: Intel cores (LLVM's CPU names) whose gather instructions are fast: no Gather Data Sampling microcode
#: (which makes them slow on Skylake to Ice Lake and Tiger Lake); AMD's are slower than a scalar load a lane
#: (Zen 1/2 by far; on Zen 5 the CSV kernel took 218-252 ns a row with them against 203-210 without,
#: RESULTS.md session 35, hash). On Emerald Rapids it takes ~17 % less CPU with them (session 37, hash3).
FAST_GATHER_CPUS = frozenset({"sapphirerapids", "emeraldrapids", "graniterapids", "graniterapids-d",
                              "diamondrapids"})


def fast_gathers() -> bool:
    """Whether numba compiles for a CPU in :data:`FAST_GATHER_CPUS` (its codegen's CPU name, which its cache
    is keyed on: a cache compiled with gathers is never loaded for another CPU)."""
    from numba.core.registry import cpu_target

    return cpu_target.target_context.codegen().magic_tuple()[1] in FAST_GATHER_CPUS


#: whether :func:`load_lanes` loads a vector's lanes by a gather instruction (else a scalar load a lane);
#: read when a kernel using it is compiled
GATHER = fast_gathers()


def load_lanes(b, ptr, index, vt, align, bytes_=False):
    """LLVM IR (builder ``b``): the vector ``vt`` of ``ptr[index[q]]`` for the lanes ``q`` of ``index`` (an i64
    vector; ``ptr`` points to ``vt``'s element type, or with ``bytes_`` to bytes, ``index`` then byte offsets
    of unaligned elements): one ``llvm.masked.gather`` where :data:`GATHER`, else a scalar load a lane."""
    lanes = vt.count
    i32 = ir.IntType(32)
    if GATHER:
        i64 = ir.IntType(64)
        size = 1 if bytes_ else 8 if isinstance(vt.element, ir.DoubleType) else vt.element.width // 8
        base = b.insert_element(ir.Constant(ir.VectorType(i64, lanes), ir.Undefined), b.ptrtoint(ptr, i64),
                                ir.Constant(i32, 0))
        base = b.shuffle_vector(base, ir.Constant(base.type, ir.Undefined), ir.Constant(ir.VectorType(i32, lanes),
                                                                                         [0] * lanes))
        at = b.add(base, b.mul(index, ir.Constant(index.type, [size] * lanes)) if size > 1 else index)
        ptrs = b.inttoptr(at, ir.VectorType(vt.element.as_pointer(), lanes))
        name = "f64" if isinstance(vt.element, ir.DoubleType) else f"i{vt.element.width}"
        fn = cgutils.get_or_insert_function(
            b.module, ir.FunctionType(vt, [ptrs.type, i32, ir.VectorType(ir.IntType(1), lanes), vt]),
            f"llvm.masked.gather.v{lanes}{name}.v{lanes}p0")
        return b.call(fn, [ptrs, ir.Constant(i32, align), ir.Constant(ir.VectorType(ir.IntType(1), lanes), [1] * lanes),
                           ir.Constant(vt, ir.Undefined)])
    v = ir.Constant(vt, ir.Undefined)
    for q in range(lanes):  # a scalar load a lane, not a gather instruction (slow on some CPUs)
        at_q = b.gep(ptr, [b.extract_element(index, ir.Constant(i32, q))])
        if bytes_:
            at_q = b.bitcast(at_q, vt.element.as_pointer())
        v = b.insert_element(v, b.load(at_q, align=align), ir.Constant(i32, q))
    return v


def field_bounds(b, fs, fe, cols, contiguous, on):
    """LLVM IR (builder ``b``): the ``<LANES x i64>`` vectors ``fs[cols[l]]`` and ``fe[cols[l]]`` (``fs``, ``fe``:
    i64 pointers, ``cols`` an i64 vector), 0 in the lanes not ``on``. Where ``contiguous`` (an i64) is not 0
    the columns are ``cols[0] + l`` and each vector is one load (``fs`` and ``fe`` hold ``cols[0] + LANES``
    entries: the CSV kernel pads them), else :func:`load_lanes`: on Emerald Rapids the CSV kernel took ~12 %
    less CPU with the loads than with gathers (session 37)."""
    lanes = cols.type.count
    i32, i64 = ir.IntType(32), ir.IntType(64)
    v64 = ir.VectorType(i64, lanes)
    first = b.extract_element(cols, ir.Constant(i32, 0))
    with b.if_else(b.icmp_signed("!=", contiguous, ir.Constant(i64, 0))) as (then, otherwise):
        with then:
            s1, e1 = (b.load(b.bitcast(b.gep(p, [first]), v64.as_pointer()), align=8) for p in (fs, fe))
            then_block = b.block
        with otherwise:
            s2, e2 = (load_lanes(b, p, cols, v64, 8) for p in (fs, fe))
            other_block = b.block
    joined = []
    for x1, x2 in ((s1, s2), (e1, e2)):  # (a block's phi nodes come first)
        x = b.phi(v64)
        x.add_incoming(x1, then_block)
        x.add_incoming(x2, other_block)
        joined.append(x)
    return [b.select(on, x, ir.Constant(v64, [0] * lanes)) for x in joined]


def compress_store(b, x, keep, ptr, offset, align):
    """LLVM IR (builder ``b``): store the lanes of the vector ``x`` (``LANES`` of them) where ``keep`` (an
    ``<N x i1>``) is set, in lane order, to ``ptr[offset:]`` (``ptr`` points to ``x``'s element type); returns
    the offset after them. Eight lanes at a time: one AVX-512 register each (``vpcompressq`` /
    ``vcompressps``; a 16-lane ``llvm.experimental.vector.compress``, which LLVM splits, crashed the process
    in a test)."""
    lanes = x.type.count
    half = lanes // 2
    i1, i32, i64 = ir.IntType(1), ir.IntType(32), ir.IntType(64)
    el = x.type.element
    name = "f64" if isinstance(el, ir.DoubleType) else "f32" if isinstance(el, ir.FloatType) else f"i{el.width}"
    vt, hbits = ir.VectorType(el, half), ir.VectorType(i1, half)
    ctpop = cgutils.get_or_insert_function(b.module, ir.FunctionType(ir.IntType(half), [ir.IntType(half)]),
                                           f"llvm.ctpop.i{half}")
    compress = cgutils.get_or_insert_function(b.module, ir.FunctionType(vt, [vt, hbits, vt]),
                                              f"llvm.experimental.vector.compress.v{half}{name}")
    store = cgutils.get_or_insert_function(b.module, ir.FunctionType(ir.VoidType(), [vt, vt.as_pointer(), i32, hbits]),
                                           f"llvm.masked.store.v{half}{name}.p0")
    for part in range(lanes // half):
        order = ir.Constant(ir.VectorType(i32, half), list(range(part * half, (part + 1) * half)))
        keep_h = b.shuffle_vector(keep, ir.Constant(keep.type, ir.Undefined), order)
        kept = b.zext(b.call(ctpop, [b.bitcast(keep_h, ir.IntType(half))]), i64)
        count = b.insert_element(ir.Constant(ir.VectorType(i64, half), ir.Undefined), kept, ir.Constant(i32, 0))
        count = b.shuffle_vector(count, ir.Constant(count.type, ir.Undefined), ir.Constant(ir.VectorType(i32, half),
                                                                                           [0] * half))
        stored = b.icmp_signed("<", ir.Constant(ir.VectorType(i64, half), list(range(half))), count)
        packed = b.call(compress, [b.shuffle_vector(x, ir.Constant(x.type, ir.Undefined), order), keep_h,
                                   ir.Constant(vt, ir.Undefined)])
        b.call(store, [packed, b.bitcast(b.gep(ptr, [offset]), vt.as_pointer()), ir.Constant(i32, align), stored])
        offset = b.add(offset, kept)
    return offset


#: fields :func:`hash_lanes` hashes at once (``<16 x i32>``: one AVX-512 register)
LANES = 16


@intrinsic
def hash_lanes(typingctx, src, fs, fe, cols, h0, carry0, ncarry0, length0, g, active, indices, nnz, mask,
               contiguous):
    """The hashed ids ``murmurhash3_32(prefix_l + src[fs[c]:fe[c]]) & mask`` of the first ``active`` of the
    ``LANES`` lanes ``l``, ``c = cols[g + l]``, where lane ``l``'s prefix is the murmur state ``(h0, carry0,
    ncarry0, length0)[g + l]`` (the column's ``name=``), written as a row's are: those of the non-empty
    fields stored to ``indices[nnz:]`` in lane order (``compress_store``; a row's ids are sorted after).
    :func:`mm_feed_padded` and :func:`mm_finish` on ``<16 x i32>`` vectors (LLVM IR), the fields' bounds by
    :func:`field_bounds` (``contiguous``: the lanes' columns are ``cols[g] + l``), their words by
    :func:`load_lanes` (gather instructions where they are fast, else a scalar load a lane). Reads
    up to ``PAD`` bytes past a field. A lane whose key has more than two whole blocks (a field longer than 8
    bytes less its prefix's pending bytes) is not stored: the caller hashes it alone. Returns the count
    stored, plus the bit mask of those long lanes shifted left by 32. Every array is C-contiguous; ``cols``
    and the states hold ``g + LANES`` entries (pad with a column of the row). A row's 26 categorical hashes
    of the benchmark's TSV: ~50 against ~140 ns one field at a time (session 35, Zen 5)."""
    ints = (fs, fe, cols, h0, carry0, ncarry0, length0, indices)
    if not (isinstance(src, types.Array) and src.dtype == types.uint8 and src.layout == "C"
            and all(isinstance(a, types.Array) and a.dtype == types.int64 and a.ndim == 1 and a.layout == "C"
                    for a in ints) and all(isinstance(x, types.Integer) for x in (g, active, nnz, mask, contiguous))):
        return None
    sig = types.int64(src, fs, fe, cols, h0, carry0, ncarry0, length0, g, active, indices, nnz, mask, contiguous)

    def codegen(context, b, sig, args):
        lanes = LANES
        i32, i64 = ir.IntType(32), ir.IntType(64)
        v32, v64 = ir.VectorType(i32, lanes), ir.VectorType(i64, lanes)
        arr = [context.make_array(t)(context, b, a) if isinstance(t, types.Array) else None
               for t, a in zip(sig.args, args)]
        at, count, start, mask, contiguous = (context.cast(b, args[k], sig.args[k], types.int64)
                                              for k in (8, 9, 11, 12, 13))

        def c32(x):
            return ir.Constant(v32, [x & 0xFFFFFFFF] * lanes)

        def c64(x):
            return ir.Constant(v64, [x] * lanes)

        def splat(x):
            v = b.insert_element(ir.Constant(v64, ir.Undefined), x, ir.Constant(i32, 0))
            return b.shuffle_vector(v, ir.Constant(v64, ir.Undefined), ir.Constant(v32, [0] * lanes))

        def row(k):  # lanes g .. g + LANES - 1 of the int64 array argument k
            return b.load(b.bitcast(b.gep(arr[k].data, [at]), v64.as_pointer()), align=8)

        def rotl(x, r):
            return b.or_(b.shl(x, c32(r)), b.lshr(x, c32(32 - r)))

        def mix_k(k):
            return b.mul(rotl(b.mul(k, c32(0xCC9E2D51)), 15), c32(0x1B873593))

        def mix_h(h, k):
            return b.add(b.mul(rotl(b.xor(h, mix_k(k)), 13), c32(5)), c32(0xE6546B64))

        on = b.icmp_signed("<", ir.Constant(v64, list(range(lanes))), splat(count))
        s, e = field_bounds(b, arr[1].data, arr[2].data, row(3), contiguous, on)  # (lanes not on: empty)
        h, ncarry = b.trunc(row(4), v32), row(6)
        n = b.sub(e, s)
        total = b.add(ncarry, n)
        nb = b.ashr(total, c64(2))  # whole blocks of the key after the prefix's full ones
        base = b.sub(s, ncarry)  # block i >= 1 at base + 4 i

        text = b.bitcast(arr[0].data, ir.IntType(8).as_pointer())

        def word(pos):  # the 4 bytes at each lane's position
            return load_lanes(b, text, pos, v32, 1, bytes_=True)

        empty = b.icmp_signed("==", n, c64(0))
        w0 = b.or_(b.trunc(row(5), v32), b.shl(word(s), b.trunc(b.mul(ncarry, c64(8)), v32)))
        h = b.select(b.or_(b.icmp_signed(">=", nb, c64(1)), empty), mix_h(h, w0), h)
        h = b.select(b.or_(b.icmp_signed(">=", nb, c64(2)), empty), mix_h(h, word(b.add(base, c64(4)))), h)
        last = b.select(b.icmp_signed("<", nb, c64(1)), c64(1), nb)
        tail = b.select(b.or_(b.icmp_signed("!=", nb, c64(0)), empty), word(b.add(base, b.mul(last, c64(4)))), w0)
        rest = b.trunc(b.and_(total, c64(3)), v32)
        tail = b.and_(tail, b.sub(b.shl(c32(1), b.mul(rest, c32(8))), c32(1)))
        h = b.xor(h, mix_k(tail))  # (mix_k(0) = 0: no pending bytes)
        h = b.xor(h, b.add(b.trunc(row(7), v32), b.trunc(n, v32)))
        h = b.mul(b.xor(h, b.lshr(h, c32(16))), c32(0x85EBCA6B))
        h = b.mul(b.xor(h, b.lshr(h, c32(13))), c32(0xC2B2AE35))
        h = b.xor(h, b.lshr(h, c32(16)))
        long_ = b.and_(on, b.icmp_signed(">", nb, c64(2)))
        keep = b.and_(b.and_(on, b.xor(empty, ir.Constant(empty.type, [1] * lanes))),
                      b.xor(long_, ir.Constant(long_.type, [1] * lanes)))
        end = compress_store(b, b.and_(b.zext(h, v64), splat(mask)), keep, arr[10].data, start, 8)
        longs = b.zext(b.bitcast(long_, ir.IntType(lanes)), i64)
        return b.or_(b.sub(end, start), b.shl(longs, ir.Constant(i64, 32)))

    return sig, codegen
