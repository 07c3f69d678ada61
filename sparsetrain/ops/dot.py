"""``dot``: dense, csr·dense, csr·row_sparse and csrᵀ·dense -> row_sparse kernels."""
from __future__ import annotations

import numpy as np

from ..base import ShapeError, check_stype
from ..ndarray.ndarray import NDArray, RowSparseNDArray
from .registry import FusedForm, Op, merge_shape, register

D, CSR, RSP = "default", "csr", "row_sparse"


def _dense_dot(x, p):
    a, b = x
    if a.ndim == 2 and b.ndim == 2:
        a = a.T if p["transpose_a"] else a
        b = b.T if p["transpose_b"] else b
        return [np.dot(a, b)]
    if p["transpose_a"] or p["transpose_b"]:
        raise ShapeError("dot: transpose_a/transpose_b need 2-D inputs")
    return [np.tensordot(a, b, axes=1)]


def _infer_shape(in_shapes, out_shapes, p):
    a, b = in_shapes
    out = out_shapes[0]
    ta, tb = p["transpose_a"], p["transpose_b"]
    nd_a = len(a) if a is not None else (2 if ta or tb or b is None or len(b) == 2 else None)
    if (a is not None and len(a) != 2) or (b is not None and len(b) != 2) or nd_a != 2:
        if a is None or b is None:
            return in_shapes, out_shapes
        if ta or tb:
            raise ShapeError(f"dot: transpose_a/transpose_b need 2-D inputs, got {a} and {b}")
        if a[-1] and b[0] and a[-1] != b[0]:
            raise ShapeError(f"dot: shapes {a} and {b} are incompatible (inner dimensions {a[-1]} != {b[0]})")
        return in_shapes, [merge_shape(out, tuple(a[:-1]) + tuple(b[1:]), "dot output")]
    # 2-D: a is (m, k) (or (k, m) when transposed), b is (k, n) (or (n, k)); out is (m, n).
    a = a or (0, 0)
    b = b or (0, 0)
    out = out or (0, 0)
    if len(out) != 2:
        raise ShapeError(f"dot: output shape {out} is not 2-D")
    m_a, k_a = (a[1], a[0]) if ta else (a[0], a[1])
    k_b, n_b = (b[1], b[0]) if tb else (b[0], b[1])
    if k_a and k_b and k_a != k_b:
        raise ShapeError(
            f"dot: shapes {in_shapes[0]} and {in_shapes[1]} are incompatible "
            f"(inner dimensions {k_a} != {k_b})"
        )
    m = merge_shape((m_a,), (out[0],), "dot rows")[0]
    n = merge_shape((n_b,), (out[1],), "dot columns")[0]
    k = k_a or k_b
    new_a = (k, m) if ta else (m, k)
    new_b = (n, k) if tb else (k, n)
    return [new_a, new_b], [(m, n)]


# The numba kernels load on the first sparse dot, not with the operator registry (building and checking a
# graph, as config validation does, needs no numba).

def _csr_dense(x, p):
    from ..kernels.sparse_dot import csr_dense_dot

    a, w = x
    return [NDArray(csr_dense_dot(a._data, a._indices, a._indptr, np.ascontiguousarray(w._data)))]


def _csr_rsp(x, p):
    from ..kernels.sparse_dot import csr_rsp_dot

    a, w = x
    return [NDArray(csr_rsp_dot(a._data, a._indices, a._indptr, w._data, w._indices, w.shape[0]))]


def _csr_t_dense(x, p):
    from ..kernels.sparse_dot import csr_t_dense_dot_rsp

    a, g = x
    rows, values = csr_t_dense_dot_rsp(a._data, a._indices, a._indptr, np.ascontiguousarray(g._data), a.shape[1])
    return [RowSparseNDArray(values, rows, (a.shape[1], g.shape[1]))]


_KERNELS = {
    (CSR, D, False, False): ((D,), _csr_dense),
    (CSR, RSP, False, False): ((D,), _csr_rsp),
    (CSR, D, True, False): ((RSP,), _csr_t_dense),
}


def _gradient(g):
    a, b = g.inputs
    og = g.og
    ta, tb = g.params["transpose_a"], g.params["transpose_b"]
    if not ta and not tb:
        return [g.apply("dot", og, b, transpose_b=True), g.apply("dot", a, og, transpose_a=True)]
    if ta and not tb:
        return [g.apply("dot", b, og, transpose_b=True), g.apply("dot", a, og)]
    if tb and not ta:
        return [g.apply("dot", og, b), g.apply("dot", og, a, transpose_a=True)]
    return [g.apply("dot", b, og, transpose_a=True, transpose_b=True),
            g.apply("dot", og, a, transpose_a=True, transpose_b=True)]


def _gradient_shapes(in_shapes, p):
    """The gradient is 2-D dots (transposed): an input of another known rank has none (the forward's
    N-D ``tensordot`` does)."""
    for k, shape in enumerate(in_shapes):
        if shape is not None and len(shape) != 2:
            hint = ""
            if len(shape) == 1:
                hint = f" (e.g. {[1, shape[0]] if k == 0 else [shape[0], 1]})"
            return k, f"is {len(shape)}-D: dot's gradient needs 2-D inputs{hint}"
    return None


register(Op(
    name="dot", input_names=("lhs", "rhs"),
    params={"transpose_a": False, "transpose_b": False, "forward_stype": None},
    dense=_dense_dot, infer_shape=_infer_shape, kernels=_KERNELS,
    forced_stypes=lambda p: (check_stype(p["forward_stype"]),) if p["forward_stype"] else None,
    storage=lambda s, p: (s[0], s[1], bool(p["transpose_a"]), bool(p["transpose_b"])),
    gradient=_gradient, gradient_shapes=_gradient_shapes,
    fused=FusedForm("dot", check=lambda p: ("a transposed input" if p["transpose_a"] or p["transpose_b"]
                                            else "forward_stype" if p["forward_stype"] else None)),
    doc="d,d->d; csr,d->d; csr,rsp->d; csrᵀ,d->rsp; anything else falls back to dense; "
        "forward_stype= sets the output stype",
))
