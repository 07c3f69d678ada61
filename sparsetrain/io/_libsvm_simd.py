"""LibSVM feature pairs converted :data:`LANES` at a time: :func:`convert_pairs`, a numba intrinsic in
LLVM vector IR (``<8 x i64>``: on x86 with AVX-512 one register per quantity, with AVX2 two).

``parse_chunk``'s fast path (``_libsvm_kernels._fast_row``) finds a row's separators by 64-byte masks
and writes their positions into two arrays: the colons, and the pairs' ends (spaces, the newline). Here,
for each pair at once: the index's length is its colon less the previous pair's end, the value's its
end less its colon; the 8 bytes that end at the colon and at the value's end are gathered from the
text; the tokens' bytes are selected from the top of their words; the value's decimal point (the
first) is found and the bytes below it move up one; each token must then be 1 to 8 digits (SWAR
check: so the separators alternate, colon then end, and nothing else is in a pair); the digits become
numbers by Lemire's three multiplications (as ``fast_float`` parses eight digits); the value is
``mantissa / 10**fraction_digits`` in binary64, correctly rounded (both exact below 2**53: the same
division as the byte loop's, hence the same result), then the output dtype. The index must ascend
from the previous one, lie in ``[lo, hi)`` and differ from ``boundary``.

Nothing branches per pair: the result is a bit mask of the pairs that broke a rule (0: all stored),
and the caller reads the row with the byte loop when it is not 0.
"""
from __future__ import annotations

import llvmlite
import llvmlite.ir as ir
from llvmlite.binding import llvm_version_info
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._scan_kernels import VBMI

#: pairs a call converts (8: with the pairs' words gathered here, less CPU than 16 or 32 on the benchmark
#: file's rows of ~23 pairs, whose last call converts fewer)
LANES = 8
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
_V = ir.VectorType(_I64, LANES)
_VD = ir.VectorType(ir.DoubleType(), LANES)


def _c(x: int) -> ir.Constant:
    return ir.Constant(_V, [x if x < 1 << 63 else x - (1 << 64)] * LANES)


# The pointer's part of an intrinsic's name: with typed pointers (llvmlite 0.43's LLVM 14; llvmlite
# 0.44's LLVM 15 unless its opaque_pointers_enabled) a ``<16 x i64>*`` mangles as ``p0v16i64``; with
# opaque pointers (llvmlite 0.45+, LLVM 20) as ``p0``.
_TYPED_POINTERS = not getattr(llvmlite, "opaque_pointers_enabled", llvm_version_info[0] >= 15)


def _masked_store(b, vec, ptr, align: int, mask) -> None:
    elem = {"i64": "i64", "float": "f32", "double": "f64"}[str(vec.type.element)]
    vptr = b.bitcast(ptr, vec.type.as_pointer())
    suffix = f"p0v{LANES}{elem}" if _TYPED_POINTERS else "p0"
    fnty = ir.FunctionType(ir.VoidType(), [vec.type, vptr.type, _I32, mask.type])
    fn = cgutils.get_or_insert_function(b.module, fnty, f"llvm.masked.store.v{LANES}{elem}.{suffix}")
    b.call(fn, [vec, vptr, ir.Constant(_I32, align), mask])


def _convert_pairs_typer(buf, cpos, spos, j0, k, indices, data, nnz, prev, lo, hi, boundary):
    if not (isinstance(buf, types.Array) and buf.dtype == types.uint8 and buf.ndim == 1
            and all(isinstance(a, types.Array) and a.ndim == 1 and a.dtype == types.int64 for a in (cpos, spos))
            and isinstance(indices, types.Array) and indices.dtype == types.int64
            and isinstance(data, types.Array) and data.dtype in (types.float32, types.float64)):
        return None
    return types.int64(buf, cpos, spos, j0, k, indices, data, nnz, prev, lo, hi, boundary)


@intrinsic
def convert_pairs_gather(typingctx, buf, cpos, spos, j0, k, indices, data, nnz, prev, lo, hi, boundary):
    """Convert pairs ``j0..j0+k-1`` (1 <= k <= LANES) of the text ``buf`` (uint8) given by positions (int64
    arrays): pair ``j``'s colon at ``cpos[j]``, its value's end at ``spos[j + 1]`` and its index's start
    at ``spos[j] + 1``, into ``indices[nnz:nnz + k]`` (int64) and ``data[nnz:nnz + k]`` (float32 or
    float64). Returns the int64 bit mask of the pairs that broke a rule (see the module); the stores
    happen either way. Both arrays are read for LANES (+1) positions from ``j0``: lanes from ``k`` on are
    computed from whatever they hold (their words are pair ``j0``'s) and discarded. The caller keeps every
    position of the ``k`` pairs at least 8. The pairs' words come from a scalar load each, not a
    masked gather: as fast compiled for AVX2 and faster for AVX-512 on this VM (benchmarks/RESULTS.md,
    session 34, portable), and no gather instruction, microcoded and slow on some CPUs (AMD Zen 1/2; Intel
    Skylake to Tiger Lake since the Gather Data Sampling fix), or scalarized with a branch a lane (no AVX2)."""
    sig = _convert_pairs_typer(buf, cpos, spos, j0, k, indices, data, nnz, prev, lo, hi, boundary)
    return None if sig is None else (sig, _convert_codegen(False))


@intrinsic
def convert_pairs_permute(typingctx, buf, cpos, spos, j0, k, indices, data, nnz, prev, lo, hi, boundary):
    """:func:`convert_pairs_gather` where the CPU has AVX-512 VBMI (``_scan_kernels.VBMI``): the 128 bytes from 8
    before the first colon are loaded (masked at the buffer's end) and each pair's two words taken from
    them by a byte permute (``vpermi2b``), which costs far less than a gather (on this Zen 5 VM a row's
    six 8-lane gathers took ~40 of its ~90 ns). The caller keeps the ``k`` pairs' ends within those 128
    bytes: ``spos[j0 + k] <= cpos[j0] + 120``."""
    sig = _convert_pairs_typer(buf, cpos, spos, j0, k, indices, data, nnz, prev, lo, hi, boundary)
    return None if sig is None else (sig, _convert_codegen(True))


def _convert_codegen(permute: bool):
    def codegen(context, builder, sig, args):
        b = builder
        arr = [context.make_array(t)(context, b, a) if isinstance(t, types.Array) else None
               for t, a in zip(sig.args, args)]

        def scalar(i):
            return context.cast(b, args[i], sig.args[i], types.int64)

        def splat(x):
            v = b.insert_element(ir.Constant(_V, ir.Undefined), x, ir.Constant(_I32, 0))
            zeros = ir.Constant(ir.VectorType(_I32, LANES), [0] * LANES)
            return b.shuffle_vector(v, ir.Constant(_V, ir.Undefined), zeros)

        def load(i, at):
            return b.load(b.bitcast(b.gep(arr[i].data, [at]), _V.as_pointer()), align=8)

        active = b.icmp_signed("<", ir.Constant(_V, list(range(LANES))), splat(scalar(4)))
        j = scalar(3)
        colon = load(1, j)
        n_i = b.sub(b.sub(colon, load(2, j)), _c(1))  # the index's length: from the previous end
        end = load(2, b.add(j, ir.Constant(_I64, 1)))
        n_v = b.sub(b.sub(end, colon), _c(1))
        if permute:  # the 8 bytes before the colon / the value's end, from 128 bytes by a byte permute
            v64 = ir.VectorType(ir.IntType(8), 64)
            m64 = ir.VectorType(ir.IntType(1), 64)
            first = b.sub(b.extract_element(colon, ir.Constant(_I32, 0)), ir.Constant(_I64, 8))
            n = b.extract_value(arr[0].shape, 0)
            room = b.sub(n, first)  # bytes of the buffer from ``first``
            text = b.gep(b.bitcast(arr[0].data, ir.IntType(8).as_pointer()), [first])
            masked_load = cgutils.get_or_insert_function(
                b.module, ir.FunctionType(v64, [text.type, _I32, m64, v64]), "llvm.masked.load.v64i8.p0")
            room8 = b.insert_element(ir.Constant(v64, ir.Undefined), b.trunc(
                b.select(b.icmp_signed(">", room, ir.Constant(_I64, 128)), ir.Constant(_I64, 128), room),
                ir.IntType(8)), ir.Constant(_I32, 0))
            room8 = b.shuffle_vector(room8, ir.Constant(v64, ir.Undefined),
                                     ir.Constant(ir.VectorType(_I32, 64), [0] * 64))
            halves = []
            for h in range(2):
                inside = b.icmp_unsigned("<", ir.Constant(v64, list(range(64 * h, 64 * h + 64))), room8)
                at = b.gep(text, [ir.Constant(_I64, 64 * h)])
                halves.append(b.call(masked_load, [at, ir.Constant(_I32, 1), inside, ir.Constant(v64, [0] * 64)]))
            permute2 = cgutils.get_or_insert_function(b.module, ir.FunctionType(v64, [v64, v64, v64]),
                                                      "llvm.x86.avx512.vpermi2var.qi.512")
            base = splat(b.add(first, ir.Constant(_I64, 8)))

            def words(at):  # lane j's byte t: the window's byte at - 8 - first + t
                offsets = b.add(b.mul(b.sub(at, base), _c(0x0101010101010101)), _c(0x0706050403020100))
                return b.bitcast(b.call(permute2, [halves[0], b.bitcast(offsets, v64), halves[1]]), _V)
        else:  # a scalar load a lane (lanes from k on load pair j0's word)
            text8 = b.bitcast(arr[0].data, ir.IntType(8).as_pointer())

            def words(i, off):  # the words that end before position array i's entries j0 + off + lane
                v = ir.Constant(_V, ir.Undefined)
                for q in range(LANES):
                    lane = b.select(b.icmp_signed("<", ir.Constant(_I64, q), scalar(4)), ir.Constant(_I64, q),
                                    ir.Constant(_I64, 0))
                    pos = b.load(b.gep(arr[i].data, [b.add(b.add(j, lane), ir.Constant(_I64, off))]))
                    ptr = b.bitcast(b.gep(text8, [b.sub(pos, ir.Constant(_I64, 8))]), _I64.as_pointer())
                    v = b.insert_element(v, b.load(ptr, align=1), ir.Constant(_I32, q))
                return v

        w_i, w_v = (words(colon), words(end)) if permute else (words(1, 0), words(2, 1))
        ones = _c(-1)

        def clamp(x):  # into [1, 8]; a length outside is an error
            x = b.select(b.icmp_signed("<", x, _c(1)), _c(1), x)
            return b.select(b.icmp_signed(">", x, _c(8)), _c(8), x)

        c_i, c_v = clamp(n_i), clamp(n_v)
        bad = b.or_(b.icmp_signed("!=", n_i, c_i), b.icmp_signed("!=", n_v, c_v))
        keep_i = b.shl(ones, b.sub(_c(64), b.mul(_c(8), c_i)))  # the token's bytes: the word's top ones
        keep_v = b.shl(ones, b.sub(_c(64), b.mul(_c(8), c_v)))
        def digits(w, keep):
            """(the number, a lane mask of tokens with a byte not a digit); bytes not kept are zeros."""
            v = b.or_(b.and_(w, keep), b.and_(_c(0x3030303030303030), b.xor(keep, ones)))
            hi_nibbles = _c(0xF0F0F0F0F0F0F0F0)
            t = b.or_(b.and_(v, hi_nibbles), b.lshr(b.and_(b.add(v, _c(0x0606060606060606)), hi_nibbles), _c(4)))
            not_digits = b.icmp_unsigned("!=", t, _c(0x3333333333333333))
            v = b.and_(v, _c(0x0F0F0F0F0F0F0F0F))
            v = b.add(b.mul(v, _c(10)), b.lshr(v, _c(8)))
            pairs = _c(0x000000FF000000FF)
            v = b.add(b.mul(b.and_(v, pairs), _c(100 + (1000000 << 32))),
                      b.mul(b.and_(b.lshr(v, _c(16)), pairs), _c(1 + (10000 << 32))))
            return b.and_(b.lshr(v, _c(32)), _c(0xFFFFFFFF)), not_digits

        idx, bad_i = digits(w_i, keep_i)
        # the value's first '.': zero bytes of w ^ '........' (exact test, no borrow between bytes)
        x = b.xor(w_v, _c(0x2E2E2E2E2E2E2E2E))
        low7 = _c(0x7F7F7F7F7F7F7F7F)
        dots = b.and_(b.xor(b.or_(b.or_(b.add(b.and_(x, low7), low7), x), low7), ones), keep_v)
        has = b.icmp_unsigned("!=", dots, _c(0))
        cttz = cgutils.get_or_insert_function(b.module, ir.FunctionType(_V, [_V, ir.IntType(1)]),
                                              f"llvm.cttz.v{LANES}i64")
        at = b.lshr(b.call(cttz, [dots, ir.Constant(ir.IntType(1), 0)]), _c(3))
        at = b.select(b.icmp_unsigned(">", at, _c(7)), _c(7), at)  # (no point: 8, unused)
        below = b.sub(b.shl(_c(1), b.mul(at, _c(8))), _c(1))
        moved = b.or_(b.and_(w_v, b.shl(b.xor(below, ones), _c(8))), b.shl(b.and_(w_v, below), _c(8)))
        w_v = b.select(has, moved, w_v)
        keep_v = b.select(has, b.shl(keep_v, _c(8)), keep_v)
        nfrac = b.select(has, b.sub(_c(7), at), _c(0))
        mant, bad_v = digits(w_v, keep_v)
        bad = b.or_(bad, b.or_(bad_i, bad_v))
        bad = b.or_(bad, b.icmp_unsigned("==", keep_v, _c(0)))  # "." alone
        shift = ir.Constant(ir.VectorType(_I32, LANES), [LANES] + list(range(LANES - 1)))
        before = b.shuffle_vector(idx, splat(scalar(8)), shift)  # each lane's previous index
        bad = b.or_(bad, b.icmp_signed("<=", idx, before))
        bad = b.or_(bad, b.icmp_signed("<", idx, splat(scalar(9))))
        bad = b.or_(bad, b.icmp_signed(">=", idx, splat(scalar(10))))
        bad = b.or_(bad, b.icmp_signed("==", idx, splat(scalar(11))))
        bad = b.and_(bad, active)
        # 10**nfrac (nfrac < 8) from its bits, exact
        one = ir.Constant(_VD, [1.0] * LANES)
        power = None
        for bit, factor in ((1, 10.0), (2, 100.0), (4, 1e4)):
            f = b.select(b.icmp_unsigned("!=", b.and_(nfrac, _c(bit)), _c(0)),
                         ir.Constant(_VD, [factor] * LANES), one)
            power = f if power is None else b.fmul(power, f)
        value = b.fdiv(b.uitofp(mant, _VD), power)
        if sig.args[6].dtype == types.float32:
            value = b.fptrunc(value, ir.VectorType(ir.FloatType(), LANES))
        at_nnz = scalar(7)
        _masked_store(b, idx, b.gep(arr[5].data, [at_nnz]), 8, active)
        _masked_store(b, value, b.gep(arr[6].data, [at_nnz]), sig.args[6].dtype.bitwidth // 8, active)
        return b.zext(b.bitcast(bad, ir.IntType(LANES)), _I64)

    return codegen


#: the LibSVM fast path's conversion of LANES pairs (see ``_scan_kernels.VBMI``)
convert_pairs = convert_pairs_permute if VBMI else convert_pairs_gather
