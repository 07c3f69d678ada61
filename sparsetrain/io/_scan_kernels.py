"""The pieces every text parser's kernel shares (LibSVM, CSV, VW): the ``info`` vector's common
slots, the one error recorder, the grammar-free line scanning of byte buffers, and two loads
wider than a byte (numba intrinsics): :func:`load_u64` (8 bytes as one word) and
:func:`eq_mask64` (a 64-byte block's bytes equal to any of three values, as a bit mask).

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

import sys

import llvmlite.ir as ir
from numba import njit, types
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
    """The number of b'\\n' in ``buf``."""
    c = 0
    for i in range(len(buf)):
        if buf[i] == 10:
            c += 1
    return c
