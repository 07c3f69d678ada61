"""Reductions: ``sum`` and ``mean`` (csr input -> dense output), ``_square_sum``, ``norm``."""
from __future__ import annotations

import numpy as np

from ..base import ShapeError
from ..ndarray.ndarray import NDArray, RowSparseNDArray
from .registry import FusedForm, Op, register

D, CSR, RSP = "default", "csr", "row_sparse"


def _axes(axis, ndim, exclude=False):
    """The reduced axes: ``axis`` (all when None/()), or all others when ``exclude``."""
    if axis is None or axis == ():
        return () if exclude else tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else axis
    if not isinstance(axes, (list, tuple)) or not all(isinstance(a, int) and not isinstance(a, bool) for a in axes):
        raise ShapeError(f"axis must be an integer or a list of integers (got {axis!r})")  # (a config's axis: 0.0)
    axes = tuple(axes)
    axes = tuple(sorted({a % ndim for a in axes}))
    return tuple(a for a in range(ndim) if a not in axes) if exclude else axes


def reduced_axes(shape, p) -> tuple:
    return _axes(p["axis"], len(shape), p.get("exclude", False))


def _out_shape(shape, p):
    axes = reduced_axes(shape, p)
    if p["keepdims"]:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    out = tuple(d for i, d in enumerate(shape) if i not in axes)
    return out or (1,)


def _infer(i, o, p):
    return (i, [_out_shape(i[0], p)]) if i[0] is not None and all(i[0]) else (i, o)


def _dense(mean):
    def f(x, p):
        a = x[0]
        axes = reduced_axes(a.shape, p)
        r = (a.mean if mean else a.sum)(axis=axes, keepdims=p["keepdims"])
        return [np.asarray(r, dtype=a.dtype).reshape(_out_shape(a.shape, p))]

    return f


def _csr(mean):
    def f(x, p):
        a = x[0]
        m = a.asscipy()
        axes = reduced_axes(a.shape, p)
        if not axes:
            return [NDArray(a.asnumpy())]
        if len(axes) == 2:
            r = np.asarray(m.sum(), dtype=a.dtype)
            r = r / (a.shape[0] * a.shape[1]) if mean else r
        else:
            r = np.asarray(m.sum(axis=axes[0]), dtype=a.dtype)
            r = r / a.shape[axes[0]] if mean else r
        return [NDArray(np.asarray(r, dtype=a.dtype).reshape(_out_shape(a.shape, p)))]

    return f


def _gradient(mean):
    return lambda g: [g.apply("_backward_sum", g.og, g.inputs[0], axis=g.params["axis"],
                              keepdims=g.params["keepdims"], exclude=g.params["exclude"], mean=mean)]


def _backward_sum(x, p):
    og, data = x
    axes = reduced_axes(data.shape, p)
    kept = tuple(1 if i in axes else d for i, d in enumerate(data.shape))
    g = np.broadcast_to(og.reshape(kept), data.shape).astype(og.dtype)
    if p["mean"]:
        g = g / np.prod([data.shape[a] for a in axes])
    return [np.ascontiguousarray(g)]


def _fused_check(p):
    """The compiled engine reduces one axis after the batch's: 1 (or 2 of a (batch, fields, k) value)."""
    axis = p.get("axis")
    axes = tuple(axis) if isinstance(axis, (list, tuple)) else (axis,)
    if p.get("exclude") or axes not in ((1,), (2,), (-1,)):
        return f"axis={axis!r}{' with exclude' if p.get('exclude') else ''} (only one axis after the batch's is fused)"
    return None


for _name, _mean in (("sum", False), ("mean", True)):
    register(Op(
        name=_name, input_names=("data",), params={"axis": None, "keepdims": False, "exclude": False},
        dense=_dense(_mean), kernels={(CSR,): ((D,), _csr(_mean))}, infer_shape=_infer,
        gradient=_gradient(_mean), doc="csr -> default",
        fused=FusedForm("reduce", _name, check=_fused_check),
    ))

register(Op(name="_backward_sum", input_names=("ograd", "data"), hidden=True,
            params={"axis": None, "keepdims": False, "exclude": False, "mean": False},
            dense=_backward_sum, infer_shape=lambda i, o, p: (i, [i[1]])))


# -- _square_sum: sum(x ** 2) without materialising x ** 2 (MXNet's kernel for row_sparse) -------

def _square_sum_dense(x, p):
    return _dense(False)([np.square(x[0])], p)


def _square_sum_rsp(x, p):
    """2-D row_sparse input: along axis 1 with keepdims the result stays row_sparse (same rows)."""
    a = x[0]
    axes = reduced_axes(a.shape, p)
    if axes == (1,) and p["keepdims"]:
        values = np.square(a._data).sum(axis=1, keepdims=True).astype(a.dtype, copy=False)
        return [RowSparseNDArray(values, a._indices.copy(), (a.shape[0], 1))]
    return [NDArray(_square_sum_dense([a.asnumpy()], p)[0])]


def _square_sum_storage(s, p):
    if s[0] != RSP:
        return tuple(s)
    rows_kept = p["keepdims"] and not p["exclude"] and _given_axes(p) in ((1,), (-1,))
    return "rsp_rows" if rows_kept else "rsp_dense"


def _given_axes(p):
    axis = p["axis"]
    return () if axis is None else ((axis,) if isinstance(axis, int) else tuple(axis))


def _backward_square_sum(x, p):
    og, data = x
    kept = tuple(1 if i in reduced_axes(data.shape, p) else d for i, d in enumerate(data.shape))
    return [(2 * data * og.reshape(kept)).astype(data.dtype, copy=False)]


def _backward_square_sum_rsp(x, p):
    og, data = x
    kept = tuple(1 if i in reduced_axes(data.shape, p) else d for i, d in enumerate(data.shape))
    ogk = og.asnumpy().reshape(kept)
    picked = ogk if ogk.shape[0] == 1 else ogk[data._indices]
    values = (2 * data._data * picked).astype(data.dtype, copy=False)
    return [RowSparseNDArray(values, data._indices.copy(), data.shape)]


_SQ_PARAMS = {"axis": None, "keepdims": False, "exclude": False}
register(Op(
    name="_square_sum", input_names=("data",), params=dict(_SQ_PARAMS), hidden=True,
    dense=_square_sum_dense, infer_shape=_infer,
    kernels={"rsp_rows": ((RSP,), _square_sum_rsp), "rsp_dense": ((D,), _square_sum_rsp)},
    storage=_square_sum_storage,
    gradient=lambda g: [g.apply("_backward_square_sum", g.og, g.inputs[0], **g.params)],
    doc="sum(data ** 2, axis); row_sparse along axis 1 with keepdims -> row_sparse",
))
register(Op(
    name="_backward_square_sum", input_names=("ograd", "data"), params=dict(_SQ_PARAMS), hidden=True,
    dense=_backward_square_sum, kernels={"rsp": ((RSP,), _backward_square_sum_rsp)},
    storage=lambda s, p: "rsp" if s[1] == RSP else tuple(s),
    infer_shape=lambda i, o, p: (i, [i[1]]),
))


# -- norm ---------------------------------------------------------------------------------------

def _norm_of(values, ord_):
    return np.abs(values).sum() if ord_ == 1 else np.sqrt(np.square(values).sum())


def _norm_dense(x, p):
    a = x[0]
    axes = reduced_axes(a.shape, p)
    if p["ord"] == 1:
        r = np.abs(a).sum(axis=axes, keepdims=p["keepdims"])
    else:
        r = np.sqrt(np.square(a).sum(axis=axes, keepdims=p["keepdims"]))
    return [np.asarray(r, dtype=a.dtype).reshape(_out_shape(a.shape, p))]


def _norm_sparse(x, p):
    a = x[0]
    return [NDArray(np.asarray(_norm_of(a._data, p["ord"]), dtype=a.dtype).reshape(_out_shape(a.shape, p)))]


def _backward_norm(x, p):
    og, data, out = x
    kept = tuple(1 if i in reduced_axes(data.shape, p) else d for i, d in enumerate(data.shape))
    if p["ord"] == 1:
        return [(np.sign(data) * og.reshape(kept)).astype(data.dtype, copy=False)]
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.where(out.reshape(kept) > 0, data / out.reshape(kept), 0) * og.reshape(kept)
    return [g.astype(data.dtype, copy=False)]


def _check_ord(p):
    if p["ord"] not in (1, 2):
        raise ShapeError(f"norm: ord must be 1 or 2, got {p['ord']!r}")


_NORM_PARAMS = {"ord": 2, "axis": None, "keepdims": False, "exclude": False}
register(Op(
    name="norm", input_names=("data",), params=dict(_NORM_PARAMS),
    dense=lambda x, p: (_check_ord(p), _norm_dense(x, p))[1],
    kernels={"sparse_all": ((D,), lambda x, p: (_check_ord(p), _norm_sparse(x, p))[1])},
    storage=lambda s, p: "sparse_all" if s[0] != D and p["axis"] in (None, ()) and not p["exclude"] else tuple(s),
    infer_shape=_infer,
    gradient=lambda g: [g.apply("_backward_norm", g.og, g.inputs[0], g.outputs[0], **g.params)],
    doc="L1 (ord=1) or L2 (ord=2) norm over axis; a sparse input over all axes -> dense, from the stored values",
))
register(Op(
    name="_backward_norm", input_names=("ograd", "data", "output"), params=dict(_NORM_PARAMS), hidden=True,
    dense=_backward_norm, infer_shape=lambda i, o, p: (i, [i[1]]),
))
