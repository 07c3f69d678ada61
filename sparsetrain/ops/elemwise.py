"""Element-wise operators: binary (same shape), unary, and with a scalar."""
from __future__ import annotations

import numpy as np

from ..ndarray.creation import zeros
from ..ndarray.ndarray import CSRNDArray, NDArray, RowSparseNDArray, _as_index
from ..ndarray.sparse import sum_rows
from .registry import FusedForm, Op, merge_shape, register

D, CSR, RSP = "default", "csr", "row_sparse"


def same_shape(in_shapes, out_shapes, params, name="elementwise"):
    shape = None
    for s in list(in_shapes) + list(out_shapes):
        shape = merge_shape(shape, s, name)
    return [shape] * len(in_shapes), [shape] * len(out_shapes)


# -- sparse kernels of the binary family ------------------------------------------------------

def _csr_from_scipy(m, dtype) -> CSRNDArray:
    import scipy.sparse as sp

    m = sp.csr_matrix(m)
    m.sort_indices()
    return CSRNDArray(m.data.astype(dtype, copy=False), _as_index(m.indices), _as_index(m.indptr), m.shape)


def _rsp_union(a: RowSparseNDArray, b: RowSparseNDArray, sign: float) -> RowSparseNDArray:
    rows, data = sum_rows([(a._indices, a._data), (b._indices, b._data if sign == 1.0 else sign * b._data)])
    return RowSparseNDArray(data.astype(a.dtype, copy=False), rows, a.shape)


def _scatter_into_dense(dense: np.ndarray, sparse, sign: float) -> NDArray:
    out = np.array(dense, copy=True)
    if sparse.stype == CSR:
        rows = np.repeat(np.arange(sparse.shape[0]), np.diff(sparse._indptr))
        np.add.at(out, (rows, sparse._indices), sign * sparse._data)
    else:
        out[sparse._indices] += sign * sparse._data
    return NDArray(out)


def _add_kernels(sign):
    return {
        (CSR, CSR): ((CSR,), lambda x, p: [_csr_from_scipy(x[0].asscipy() + sign * x[1].asscipy(), x[0].dtype)]),
        (RSP, RSP): ((RSP,), lambda x, p: [_rsp_union(x[0], x[1], sign)]),
        (D, CSR): ((D,), lambda x, p: [_scatter_into_dense(x[0]._data, x[1], sign)]),
        (D, RSP): ((D,), lambda x, p: [_scatter_into_dense(x[0]._data, x[1], sign)]),
        (CSR, D): ((D,), lambda x, p: [_scatter_into_dense(sign * x[1]._data, x[0], 1.0)]),
        (RSP, D): ((D,), lambda x, p: [_scatter_into_dense(sign * x[1]._data, x[0], 1.0)]),
    }


def _csr_mul_dense(csr: CSRNDArray, dense: np.ndarray) -> CSRNDArray:
    rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr._indptr))
    values = csr._data * np.broadcast_to(dense, csr.shape)[rows, csr._indices]
    return CSRNDArray(values.astype(csr.dtype, copy=False), csr._indices.copy(), csr._indptr.copy(), csr.shape)


def _rsp_mul_rsp(a: RowSparseNDArray, b: RowSparseNDArray) -> RowSparseNDArray:
    rows, ia, ib = np.intersect1d(a._indices, b._indices, assume_unique=True, return_indices=True)
    return RowSparseNDArray(a._data[ia] * b._data[ib], _as_index(rows), a.shape)


def _rsp_mul_dense(a: RowSparseNDArray, dense: np.ndarray) -> RowSparseNDArray:
    return RowSparseNDArray(a._data * np.broadcast_to(dense, a.shape)[a._indices], a._indices.copy(), a.shape)


_MUL_KERNELS = {
    (CSR, CSR): ((CSR,), lambda x, p: [_csr_from_scipy(x[0].asscipy().multiply(x[1].asscipy()), x[0].dtype)]),
    (RSP, RSP): ((RSP,), lambda x, p: [_rsp_mul_rsp(x[0], x[1])]),
    (CSR, D): ((CSR,), lambda x, p: [_csr_mul_dense(x[0], x[1]._data)]),
    (D, CSR): ((CSR,), lambda x, p: [_csr_mul_dense(x[1], x[0]._data)]),
    (RSP, D): ((RSP,), lambda x, p: [_rsp_mul_dense(x[0], x[1]._data)]),
    (D, RSP): ((RSP,), lambda x, p: [_rsp_mul_dense(x[1], x[0]._data)]),
}


def _grad_add(g):
    return [g.og, g.og]


def _grad_sub(g):
    return [g.og, g.apply("negative", g.og)]


def _grad_mul(g):
    a, b = g.inputs
    return [g.apply("elemwise_mul", g.og, b), g.apply("elemwise_mul", g.og, a)]


def _grad_div(g):
    ga, gb = g.apply("_backward_elemwise_div", g.og, *g.inputs)
    return [ga, gb]


def _binary(name, dense, kernels, gradient, doc, fused=None):
    register(Op(name=name, input_names=("lhs", "rhs"), dense=dense, kernels=kernels,
                infer_shape=lambda i, o, p, n=name: same_shape(i, o, p, n), gradient=gradient, doc=doc,
                fused=fused))


# forward and partial derivatives (by a, by b) of the element-wise binary ops, for the compiled
# engine; broadcast_* (ops/broadcast.py) read the same table
BINARY_FUSED = {
    "add": ("a + b", ("1.0", "1.0")),
    "sub": ("a - b", ("1.0", "-1.0")),
    "mul": ("a * b", ("b", "a")),
    "div": ("a / b", ("1.0 / b", "-y / b")),
}

_binary("elemwise_add", lambda x, p: [x[0] + x[1]], _add_kernels(1.0), _grad_add,
        "a + b; csr+csr->csr, rsp+rsp->rsp, dense with sparse -> dense, csr+rsp falls back",
        FusedForm("binary", *BINARY_FUSED["add"]))
_binary("elemwise_sub", lambda x, p: [x[0] - x[1]], _add_kernels(-1.0), _grad_sub,
        "a - b; stype rules as elemwise_add", FusedForm("binary", *BINARY_FUSED["sub"]))
_binary("elemwise_mul", lambda x, p: [x[0] * x[1]], _MUL_KERNELS, _grad_mul,
        "a * b; csr*csr->csr, rsp*rsp->rsp, csr*dense->csr, rsp*dense->rsp", FusedForm("binary", *BINARY_FUSED["mul"]))
_binary("elemwise_div", lambda x, p: [x[0] / x[1]], {}, _grad_div, "a / b (dense)",
        FusedForm("binary", *BINARY_FUSED["div"]))

register(Op(
    name="_backward_elemwise_div", input_names=("ograd", "lhs", "rhs"), hidden=True, num_outputs=2,
    dense=lambda x, p: [x[0] / x[2], -x[0] * x[1] / (x[2] * x[2])],
    infer_shape=lambda i, o, p: same_shape(i, o, p, "elemwise_div backward"),
))


# -- unary ---------------------------------------------------------------------------------------

def _sparse_unary(fn):
    def csr(x, p):
        a = x[0]
        return [CSRNDArray(fn(a._data, p).astype(a.dtype, copy=False), a._indices.copy(), a._indptr.copy(), a.shape)]

    def rsp(x, p):
        a = x[0]
        return [RowSparseNDArray(fn(a._data, p).astype(a.dtype, copy=False), a._indices.copy(), a.shape)]

    return {(CSR,): ((CSR,), csr), (RSP,): ((RSP,), rsp)}


def sigmoid(x):
    """The logistic function (``sigmoid`` and ``LogisticRegressionOutput`` share it). A score below about
    -88 (float32) overflows ``exp`` to inf and gives 0, as it should, without numpy's overflow warning (a
    saturated probability is no fault of the data)."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


# name -> (f, derivative from (x, y), f(0) == 0)
UNARY = {
    "negative": (np.negative, None, True),
    "abs": (np.abs, lambda x, y: np.sign(x), True),
    "sign": (np.sign, lambda x, y: np.zeros_like(x), True),
    "square": (np.square, lambda x, y: 2 * x, True),
    "sqrt": (np.sqrt, lambda x, y: 0.5 / y, True),
    "relu": (lambda x: np.maximum(x, 0), lambda x, y: (x > 0).astype(x.dtype), True),
    "_copy": (np.copy, None, True),
    "tanh": (np.tanh, lambda x, y: 1 - y * y, True),
    "log1p": (np.log1p, lambda x, y: 1 / (1 + x), True),
    "expm1": (np.expm1, lambda x, y: y + 1, True),
    "log": (np.log, lambda x, y: 1 / x, False),
    "exp": (np.exp, lambda x, y: y, False),
    "sigmoid": (sigmoid, lambda x, y: y * (1 - y), False),
    # rounding: zero gradient almost everywhere (as MXNet)
    "round": (lambda x: np.sign(x) * np.floor(np.abs(x) + 0.5), lambda x, y: np.zeros_like(x), True),  # n.5 -> n+1
    "rint": (lambda x: np.ceil(x - 0.5), lambda x, y: np.zeros_like(x), True),  # n.5 -> n (MXNet's rint)
    "ceil": (np.ceil, lambda x, y: np.zeros_like(x), True),
    "floor": (np.floor, lambda x, y: np.zeros_like(x), True),
    "trunc": (np.trunc, lambda x, y: np.zeros_like(x), True),
    "fix": (np.fix, lambda x, y: np.zeros_like(x), True),
}

# the compiled engine's form of a unary op: f(a) and its derivative from a and y = f(a), as numba
# expressions (the numpy formulas above, element by element)
UNARY_FUSED = {
    "negative": ("-a", "-1.0"),
    "abs": ("abs(a)", "(1.0 if a > 0 else (-1.0 if a < 0 else 0.0))"),
    "square": ("a * a", "2.0 * a"),
    "sqrt": ("math.sqrt(a)", "0.5 / y"),
    "relu": ("(a if a > 0 else 0.0 * a)", "(1.0 if a > 0 else 0.0)"),
    "_copy": ("a", "1.0"),
    "tanh": ("math.tanh(a)", "1.0 - y * y"),
    "sigmoid": ("1.0 / (1.0 + math.exp(-a))", "y * (1.0 - y)"),
    "exp": ("math.exp(a)", "y"),
    "log": ("math.log(a)", "1.0 / a"),
}


def _unary_gradient(name, deriv):
    if name == "negative":
        return lambda g: [g.apply("negative", g.og)]
    if name == "_copy":
        return lambda g: [g.og]
    return lambda g: [g.apply("_backward_unary", g.og, g.inputs[0], g.outputs[0], fn=name)]


def _with_errstate(f):
    def run(x, p):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return [f(x[0])]

    return run


for _name, (_f, _deriv, _zero_preserving) in UNARY.items():
    register(Op(
        name=_name, input_names=("data",), dense=_with_errstate(_f),
        kernels=_sparse_unary(lambda d, p, f=_f: f(d)) if _zero_preserving else {},
        infer_shape=lambda i, o, p: same_shape(i, o, p, "unary"),
        gradient=_unary_gradient(_name, _deriv),
        doc=("keeps the input's stype" if _zero_preserving else "sparse input falls back to dense"),
        fused=FusedForm("unary", UNARY_FUSED[_name][0], (UNARY_FUSED[_name][1],)) if _name in UNARY_FUSED else None,
    ))


def _backward_unary(x, p):
    og, data, out = x
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return [og * UNARY[p["fn"]][1](data, out)]


def rows_of(a, rows: np.ndarray) -> np.ndarray:
    """Rows ``rows`` (sorted unique) of a dense or row_sparse array, zeros where a row is not stored."""
    if a.stype == D:
        return a._data[rows]
    out = np.zeros((len(rows),) + a.shape[1:], a.dtype)
    if len(a._indices):
        pos = np.minimum(np.searchsorted(a._indices, rows), len(a._indices) - 1)
        hit = a._indices[pos] == rows
        out[hit] = a._data[pos[hit]]
    return out


def _backward_unary_rsp(x, p):
    """``ograd * f'(data)`` on ograd's rows: a row_sparse head gradient stays row_sparse (the rows it
    does not store are zero, whatever ``f'`` is there), so a row-sparse weight's gradient through
    ``square(weight)`` keeps its lazy update."""
    og, data, out = x
    rows = og._indices
    value = _backward_unary([og._data, rows_of(data, rows), rows_of(out, rows)], p)[0]
    return [RowSparseNDArray(value.astype(og.dtype, copy=False), rows.copy(), og.shape)]


register(Op(
    name="_backward_unary", input_names=("ograd", "data", "output"), params={"fn": None}, hidden=True,
    dense=_backward_unary, infer_shape=lambda i, o, p: same_shape(i, o, p, "unary backward"),
    kernels={"rsp_ograd": ((RSP,), _backward_unary_rsp)},
    storage=lambda s, p: "rsp_ograd" if s[0] == RSP and s[1] in (D, RSP) and s[2] in (D, RSP) else tuple(s),
))


# -- with a scalar -----------------------------------------------------------------------------
#
# MXNet's storage rules for ``op(x, scalar)`` on a sparse ``x``:
# - KEEP: f(0, s) == 0 for every s (``_mul_scalar``, ``_div_scalar``): the output keeps x's stype.
# - ZERO: the output keeps x's stype when f(0, s) == 0 for this s (``x + 0``, ``rsp == 1``), else it
#   is dense, computed directly (no fallback: MXNet's "dense result" scalar ops).
# - DENSE: no sparse kernel (``_rdiv_scalar``, ``_power_scalar``): storage fallback.
KEEP, ZERO, DENSE = "keep", "zero", "dense"


def _scalar_storage(f, rule):
    def storage(in_stypes, p):
        if in_stypes[0] == D or rule == DENSE:
            return tuple(in_stypes)
        if rule == KEEP:
            return in_stypes
        with np.errstate(divide="ignore", invalid="ignore"):
            zero_kept = f(np.zeros(1), float(p["scalar"]))[0] == 0
        return in_stypes if zero_kept else "dense_result"

    return storage


def _scalar_dense_result(f):
    def kernel(x, p):
        a = x[0].asnumpy()
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return [NDArray(np.asarray(f(a, float(p["scalar"])), dtype=a.dtype))]

    return kernel


def _scalar_op(name, f, rule, gradient, doc):
    """Register ``name(data, scalar=)``: ``f(x, s)`` elementwise, with MXNet's stype ``rule``."""
    kernels = {}
    if rule != DENSE:
        kernels = _sparse_unary(lambda d, p: f(d, float(p["scalar"])))
        if rule == ZERO:
            kernels["dense_result"] = ((D,), _scalar_dense_result(f))

    def dense(x, p):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return [np.asarray(f(x[0], float(p["scalar"])), dtype=x[0].dtype)]

    register(Op(
        name=name, input_names=("data",), params={"scalar": 0.0}, dense=dense, kernels=kernels,
        storage=_scalar_storage(f, rule), infer_shape=lambda i, o, p: same_shape(i, o, p, name),
        gradient=gradient, hidden=True, doc=doc,
    ))


def _scaled(g, name):
    return [g.apply(name, g.og, scalar=g.params["scalar"])]


def _scalar_backward(fn):
    return lambda g: [g.apply("_backward_scalar", g.og, g.inputs[0], g.outputs[0], fn=fn, scalar=g.params["scalar"])]


def _zero_gradient(g):
    return [g.apply("zeros_like", g.inputs[0])]


# name -> derivative d f(x, s) / dx from (x, y = f(x, s), s)
_SCALAR_DERIVATIVES = {
    "_rdiv_scalar": lambda x, y, s: -y / x,
    "_power_scalar": lambda x, y, s: s * np.power(x, s - 1),
    "_rpower_scalar": lambda x, y, s: y * np.log(s),
}

_scalar_op("_plus_scalar", lambda x, s: x + s, ZERO, lambda g: [g.og], "x + scalar")
_scalar_op("_minus_scalar", lambda x, s: x - s, ZERO, lambda g: [g.og], "x - scalar")
_scalar_op("_rminus_scalar", lambda x, s: s - x, ZERO, lambda g: [g.apply("negative", g.og)], "scalar - x")
_scalar_op("_mul_scalar", lambda x, s: x * s, KEEP, lambda g: _scaled(g, "_mul_scalar"), "x * scalar")
_scalar_op("_div_scalar", lambda x, s: x / s, KEEP, lambda g: _scaled(g, "_div_scalar"), "x / scalar")
_scalar_op("_rdiv_scalar", lambda x, s: s / x, DENSE, _scalar_backward("_rdiv_scalar"), "scalar / x")
_scalar_op("_power_scalar", lambda x, s: np.power(x, s), DENSE, _scalar_backward("_power_scalar"), "x ** scalar")
_scalar_op("_rpower_scalar", lambda x, s: np.power(s, x), DENSE, _scalar_backward("_rpower_scalar"), "scalar ** x")
COMPARISONS = {
    "equal": np.equal, "not_equal": np.not_equal, "greater": np.greater,
    "greater_equal": np.greater_equal, "lesser": np.less, "lesser_equal": np.less_equal,
}
for _cmp, _f in COMPARISONS.items():
    _scalar_op(f"_{_cmp}_scalar", _f, ZERO, _zero_gradient, f"x {_cmp} scalar as 1/0 in x's dtype")


def _backward_scalar(x, p):
    og, data, out = x
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return [og * _SCALAR_DERIVATIVES[p["fn"]](data, out, float(p["scalar"]))]


register(Op(
    name="_backward_scalar", input_names=("ograd", "data", "output"), params={"fn": None, "scalar": 0.0},
    hidden=True, dense=_backward_scalar, infer_shape=lambda i, o, p: same_shape(i, o, p, "scalar backward"),
))


# -- clip: sparse inputs keep their stype when a_min <= 0 <= a_max (clip(0) == 0) --------------

def _clip_storage(in_stypes, p):
    if in_stypes[0] == D:
        return tuple(in_stypes)
    return in_stypes if float(p["a_min"]) <= 0 <= float(p["a_max"]) else "dense_result"


def _clip(a, p):
    return np.clip(a, float(p["a_min"]), float(p["a_max"]))


_CLIP_KERNELS = _sparse_unary(_clip)
_CLIP_KERNELS["dense_result"] = ((D,), lambda x, p: [NDArray(_clip(x[0].asnumpy(), p).astype(x[0].dtype))])
register(Op(
    name="clip", input_names=("data",), params={"a_min": 0.0, "a_max": 0.0},
    dense=lambda x, p: [_clip(x[0], p).astype(x[0].dtype, copy=False)], kernels=_CLIP_KERNELS,
    storage=_clip_storage, infer_shape=lambda i, o, p: same_shape(i, o, p, "clip"),
    gradient=lambda g: [g.apply("_backward_clip", g.og, g.inputs[0], **g.params)],
    doc="values limited to [a_min, a_max]; a sparse input keeps its stype when a_min <= 0 <= a_max",
))
register(Op(
    name="_backward_clip", input_names=("ograd", "data"), params={"a_min": 0.0, "a_max": 0.0}, hidden=True,
    dense=lambda x, p: [x[0] * ((x[1] >= float(p["a_min"])) & (x[1] <= float(p["a_max"])))],
    infer_shape=lambda i, o, p: same_shape(i, o, p, "clip backward"),
))


# -- zeros_like / ones_like -------------------------------------------------------------------

def _zeros_like(x, p):
    return [zeros(x[0].shape, dtype=x[0].dtype, stype=x[0].stype)]


register(Op(
    name="zeros_like", input_names=("data",), dense=lambda x, p: [np.zeros_like(x[0])],
    kernels={(CSR,): ((CSR,), _zeros_like), (RSP,): ((RSP,), _zeros_like)},
    infer_shape=lambda i, o, p: same_shape(i, o, p, "zeros_like"), gradient=_zero_gradient,
    doc="zeros of the input's shape, dtype and stype",
))
register(Op(
    name="ones_like", input_names=("data",), dense=lambda x, p: [np.ones_like(x[0])],
    infer_shape=lambda i, o, p: same_shape(i, o, p, "ones_like"), gradient=_zero_gradient,
    doc="ones of the input's shape (dense)",
))
