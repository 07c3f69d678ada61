"""The pieces every text parser's kernel shares (LibSVM, CSV, VW): the ``info`` vector's common
slots, the one error recorder, the grammar-free line scanning of byte buffers, two loads
wider than a byte (numba intrinsics): :func:`load_u64` (8 bytes as one word) and
:func:`eq_mask64` (a 64-byte block's bytes equal to any of three values, as a bit mask; a block at
the buffer's end: :func:`eq_mask_tail`), :func:`flatten`, which lists a mask's bits as positions
(a vector compress where numba compiles with AVX-512 VBMI2: :data:`VBMI`), and a cursor over a
buffer's separators (:func:`seps_from`, :func:`next_sep`).

A parser kernel never raises: it returns an int64 ``info`` vector whose first :data:`N_COMMON`
slots mean the same in every parser (rows, entries and lines parsed, the error code with the
offending byte span and an auxiliary value, the slow numbers listed), and its own slots after
them. At the first malformed token it calls :func:`record_error` and returns; the Python caller
builds the message (file, line, token).

:func:`record_error` is never compiled on its own: it is inlined into the calling kernel before
type inference (``inline="always"``), a few stores per call site. An error code is a module
constant, which numba types as a *literal*, so an ordinary helper would be compiled once for
every distinct ``(code, aux)`` combination at its call sites — about twenty full numba pipelines
for the LibSVM kernel on a cold cache. (A fixed signature would avoid that too, but numba then
compiles or loads it when the module is imported.)
"""
from __future__ import annotations

import re
import sys

import llvmlite.ir as ir
import numpy as np
from llvmlite.binding import llvm_version_info
from numba import njit, types
from numba.core import cgutils
from numba.cpython.unsafe.numbers import trailing_zeros
from numba.extending import intrinsic

# Slots of the int64 ``info`` vector common to the parser kernels (each parser's own follow).
I_ROWS = 0  # data rows parsed (up to the error, when there is one)
I_NNZ = 1  # stored entries parsed
I_LINES = 2  # newline characters consumed
I_ERR = 3  # error code (OK when none)
I_ERR_START = 4  # byte span of the offending token
I_ERR_END = 5
I_ERR_AUX = 6  # a value the message needs (a limit, a count, a column)
I_NSLOW = 7  # numbers listed for the caller to convert with Python's float
N_COMMON = 8

OK = 0


@njit(cache=True, nogil=True, inline="always")
def record_error(info, code, start, end, aux, rows, nslow):
    """Record error ``code`` at ``buf[start:end]`` (with ``aux``) and the rows/slow numbers so far."""
    info[I_ROWS] = rows
    info[I_NSLOW] = nslow
    info[I_ERR] = code
    info[I_ERR_START] = start
    info[I_ERR_END] = end
    info[I_ERR_AUX] = aux


@njit(cache=True, nogil=True, inline="always")
def is_space(c):
    """Whitespace within a line: space, tab, CR, VT, FF."""
    return c == 32 or c == 9 or c == 13 or c == 11 or c == 12


@njit(cache=True, nogil=True, inline="always")
def line_end(buf, p):
    """The index of the first newline at or after ``p``; the buffer must end with one (a sentinel)."""
    while buf[p] != 10:
        p += 1
    return p


@intrinsic
def load_u64(typingctx, buf, i):
    """The 8 bytes ``buf[i:i + 8]`` of a uint8 array as one little-endian uint64 (``buf[i]`` in the
    low byte): one unaligned load, nothing checked (the caller keeps ``0 <= i <= len(buf) - 8``)."""
    if not (isinstance(buf, types.Array) and buf.dtype == types.uint8 and buf.ndim == 1
            and isinstance(i, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        array = context.make_array(sig.args[0])(context, builder, args[0])
        offset = context.cast(builder, args[1], sig.args[1], types.intp)
        address = builder.gep(builder.bitcast(array.data, ir.IntType(8).as_pointer()), [offset])
        word = builder.load(builder.bitcast(address, ir.IntType(64).as_pointer()), align=1)
        if sys.byteorder == "big":
            fnty = ir.FunctionType(ir.IntType(64), [ir.IntType(64)])
            word = builder.call(builder.module.declare_intrinsic("llvm.bswap", [ir.IntType(64)], fnty), [word])
        return word

    return types.uint64(buf, i), codegen


@intrinsic
def eq_mask64(typingctx, buf, b, c0, c1, c2):
    """Bit ``k`` set where ``buf[b + k]`` equals ``c0``, ``c1`` or ``c2``, for the 64 bytes from ``b``:
    a vector load, three compares and the ``<64 x i1>`` result as a uint64 (on x86 with AVX-512 a
    compare into a mask register each; with AVX2 compares and ``vpmovmskb``). Nothing is checked (the
    caller keeps ``0 <= b <= len(buf) - 64``)."""
    if not (isinstance(buf, types.Array) and buf.dtype == types.uint8 and buf.ndim == 1
            and all(isinstance(t, types.Integer) for t in (b, c0, c1, c2))):
        return None

    def codegen(context, builder, sig, args):
        i8, i64 = ir.IntType(8), ir.IntType(64)
        vec = ir.VectorType(i8, 64)
        array = context.make_array(sig.args[0])(context, builder, args[0])
        offset = context.cast(builder, args[1], sig.args[1], types.intp)
        address = builder.gep(builder.bitcast(array.data, i8.as_pointer()), [offset])
        block = builder.load(builder.bitcast(address, vec.as_pointer()), align=1)
        hits = None
        for arg, ty in zip(args[2:], sig.args[2:]):
            byte = builder.trunc(context.cast(builder, arg, ty, types.int64), i8)
            first = builder.insert_element(ir.Constant(vec, ir.Undefined), byte, ir.Constant(ir.IntType(32), 0))
            zeros = ir.Constant(ir.VectorType(ir.IntType(32), 64), [0] * 64)
            splat = builder.shuffle_vector(first, ir.Constant(vec, ir.Undefined), zeros)
            eq = builder.icmp_unsigned("==", block, splat)
            hits = eq if hits is None else builder.or_(hits, eq)
        return builder.bitcast(hits, i64)

    return types.uint64(buf, b, c0, c1, c2), codegen


@njit(cache=True, nogil=True, inline="always")
def eq_mask_tail(buf, b, c0, c1, c2):
    """:func:`eq_mask64` of a block that runs past the buffer's end (its bytes there count as none): a
    loop over the bytes left, for the last block of a buffer. Inlined (``inline="always"``) like
    :func:`record_error`: its callers pass the bytes as literals."""
    m = np.uint64(0)
    for k in range(len(buf) - b):
        c = buf[np.uint64(b + k)]
        m |= np.uint64((c == c0) | (c == c1) | (c == c2)) << np.uint64(k)
    return m


@intrinsic
def popcount(typingctx, x):
    """The number of bits set in the unsigned integer ``x``, as an int64 (LLVM's ``ctpop``)."""
    if not (isinstance(x, types.Integer) and x.bitwidth == 64 and not x.signed):
        return None

    def codegen(context, builder, sig, args):
        return builder.ctpop(args[0])

    return types.int64(x), codegen


def compile_features() -> dict:
    """The CPU features numba compiles with, ``{name: on}``: its codegen's (``magic_tuple()``: the host's,
    or NUMBA_CPU_FEATURES, less AVX under NUMBA_ENABLE_AVX=0), what its cache is keyed on, so a path
    chosen from them is never loaded from a cache on a CPU without them."""
    from numba.core.registry import cpu_target

    features = {}
    for f in cpu_target.target_context.codegen().magic_tuple()[2].split(","):  # "+name,-name,...": the last wins
        if f[:1] in "+-" and f[1:]:
            features[f[1:]] = f[0] == "+"
    return features


def compiles_avx2() -> bool:
    """Whether the code numba compiles uses AVX2, as LLVM sees it: for numba's CPU name and feature string
    (its codegen's ``magic_tuple()``, what its cache is keyed on) LLVM adds two ``<8 x i32>`` vectors with
    one ``vpaddd`` on ``ymm`` registers. Not :func:`compile_features`' list: a CPU name brings the
    features it implies (``NUMBA_CPU_NAME=haswell`` with an empty ``NUMBA_CPU_FEATURES`` compiles AVX2
    code, and the string lists nothing), and a later feature can imply one switched off before it (under
    ``NUMBA_ENABLE_AVX=0`` a host with VAES still compiles AVX2 code: ``+vaes`` implies ``+avx2``). A
    target machine and a few lines of assembly, once (~2 ms)."""
    import llvmlite.binding as ll
    from numba.core.registry import cpu_target

    triple, name, features = cpu_target.target_context.codegen().magic_tuple()
    machine = ll.Target.from_triple(triple).create_target_machine(cpu=name, features=features)
    module = ll.parse_assembly("define <8 x i32> @f(<8 x i32> %a, <8 x i32> %b) {\n"
                               "  %c = add <8 x i32> %a, %b\n  ret <8 x i32> %c\n}\n")
    return re.search(r"vpaddd\s+%ymm", machine.emit_assembly(module)) is not None


def _byte_permutes() -> bool:
    """Whether :func:`flatten_bits` (and the LibSVM kernel's ``_libsvm_simd.convert_pairs_permute``) can be
    used: LLVM has a vector compress (19+), numba compiles for this CPU (no NUMBA_CPU_NAME) and with AVX-512
    VBMI and VBMI2 (:func:`compile_features`): a 64-byte
    compress in one instruction (``vpcompressb``; elsewhere LLVM expands it into a store per byte, slower
    than the scalar loop) and a byte permute across two registers (``vpermi2b``; elsewhere LLVM cannot
    compile it)."""
    from numba.core import config

    if llvm_version_info[0] < 19 or config.CPU_NAME not in (None, "host"):
        return False
    features = compile_features()
    return features.get("avx512vbmi", False) and features.get("avx512vbmi2", False)


#: whether numba compiles with AVX-512 VBMI and VBMI2: :func:`flatten` is :func:`flatten_bits` (else
#: :func:`flatten_scalar`), and the LibSVM fast path converts pairs by a byte permute
VBMI = _byte_permutes()


@intrinsic
def flatten_bits(typingctx, m, base, pos, n):
    """Write ``base + k`` for each bit ``k`` set in the uint64 ``m`` to the int64 array ``pos`` from ``n``,
    ascending; returns ``n`` plus their count. The bits' offsets are compressed into the low bytes of
    a 64-byte vector (``llvm.experimental.vector.compress``: one ``vpcompressb``), then stored 8 at a
    time (widened to int64, ``base`` added) while any are left: up to 7 positions past the last are
    written with garbage, so ``pos`` needs room for ``n + 64``. Nothing is checked. Only where
    :data:`VBMI`."""
    if not (isinstance(m, types.Integer) and m.bitwidth == 64 and isinstance(base, types.Integer)
            and isinstance(pos, types.Array) and pos.dtype == types.int64 and pos.ndim == 1
            and isinstance(n, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        b = builder
        i32, i64 = ir.IntType(32), ir.IntType(64)
        v64 = ir.VectorType(ir.IntType(8), 64)
        v8 = ir.VectorType(i64, 8)
        mask = b.bitcast(args[0], ir.VectorType(ir.IntType(1), 64))
        compress = cgutils.get_or_insert_function(b.module, ir.FunctionType(v64, [v64, mask.type, v64]),
                                                  "llvm.experimental.vector.compress.v64i8")
        offsets = b.call(compress, [ir.Constant(v64, list(range(64))), mask, ir.Constant(v64, ir.Undefined)])
        count = b.ctpop(args[0])
        array = context.make_array(sig.args[2])(context, b, args[2])
        n = context.cast(b, args[3], sig.args[3], types.int64)
        first = b.insert_element(ir.Constant(v8, ir.Undefined), context.cast(b, args[1], sig.args[1], types.int64),
                                 ir.Constant(i32, 0))
        base_v = b.shuffle_vector(first, ir.Constant(v8, ir.Undefined), ir.Constant(ir.VectorType(i32, 8), [0] * 8))
        for g in range(8):
            part = b.shuffle_vector(offsets, ir.Constant(v64, ir.Undefined),
                                    ir.Constant(ir.VectorType(i32, 8), list(range(8 * g, 8 * g + 8))))
            at = b.bitcast(b.gep(array.data, [b.add(n, ir.Constant(i64, 8 * g))]), v8.as_pointer())
            if g == 0:
                b.store(b.add(b.zext(part, v8), base_v), at, align=8)
            else:
                with b.if_then(b.icmp_unsigned(">", count, ir.Constant(i64, 8 * g))):
                    b.store(b.add(b.zext(part, v8), base_v), at, align=8)
        return b.add(n, count)

    return types.int64(m, base, pos, n), codegen


@njit(cache=True, nogil=True, inline="always")
def flatten_scalar(m, base, pos, n):
    """:func:`flatten_bits` where the CPU has no one-instruction compress: branch-free in 8s (as simdjson
    lists its structural characters), one ``tzcnt`` a bit."""
    count = popcount(m)
    i = 0
    while True:
        for _ in range(8):
            pos[np.uint64(n + i)] = base + np.int64(trailing_zeros(m))
            m &= m - np.uint64(1)
            i += 1
        if i >= count:
            break
    return n + count


#: ``flatten(m, base, pos, n)``: ``base + k`` for each bit ``k`` of ``m`` to ``pos[n:]`` (and up to 7
#: positions of garbage after them, then ``pos`` needs room for ``n + 64``); returns ``n`` + the count.
#: Format-neutral: the LibSVM fast path lists a row's separators with it, the CSV kernel a line's.
flatten = flatten_bits if VBMI else flatten_scalar


# ---------------------------------------------------------------------------------------
# Newline scanning for the chunk readers (``chunks.py``, ``text_pipeline.py``): any grammar.


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
    """The number of b'\\n' in ``buf``: 64-byte blocks' newline masks (:func:`eq_mask64`) counted by
    :func:`popcount`, the last, partial block byte by byte (the byte loop LLVM vectorizes widened every
    byte to a 64-bit count: 2.6x the CPU on the CSV benchmark's chunks, session 37)."""
    n = len(buf)
    c = 0
    b = 0
    while b + 64 <= n:
        c += popcount(eq_mask64(buf, b, 10, 10, 10))
        b += 64
    for i in range(b, n):
        c += buf[i] == 10
    return c


@njit(cache=True, nogil=True, inline="always")
def _sep_bits(buf, b, delim):
    """Bit ``k`` set where ``buf[b + k]`` is ``delim`` or a newline, for the 64 bytes from ``b``
    (:func:`eq_mask64`; the last, partial block :func:`eq_mask_tail`)."""
    if b + 64 > len(buf):
        return eq_mask_tail(buf, b, delim, 10, 10)
    return eq_mask64(buf, b, delim, 10, 10)


@njit(cache=True, nogil=True, inline="always")
def seps_from(buf, p, delim):
    """The separator cursor at ``buf[p]``: ``(block start, bits of the block's separators at or
    after p)``, which :func:`next_sep` walks (the Vowpal Wabbit kernel's newlines)."""
    b = p - (p & 63)
    return b, _sep_bits(buf, b, delim) & ~((np.uint64(1) << np.uint64(p - b)) - np.uint64(1))


@njit(cache=True, nogil=True, inline="always")
def next_sep(buf, b, m, delim):
    """The next separator's index and the cursor after it (the buffer ends with a newline, so
    there is one)."""
    while m == 0:
        b += 64
        m = _sep_bits(buf, b, delim)
    q = b + np.int64(trailing_zeros(m))
    return q, b, m & (m - np.uint64(1))
