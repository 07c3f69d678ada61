"""Reductions: ``sum`` and ``mean`` (csr input -> dense output)."""
from __future__ import annotations

import numpy as np

from ..ndarray.ndarray import NDArray
from .registry import Op, register

CSR = "csr"


def _axes(axis, ndim):
    if axis is None or axis == ():
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(a % ndim for a in axes)


def _out_shape(shape, p):
    axes = _axes(p["axis"], len(shape))
    if p["keepdims"]:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    out = tuple(d for i, d in enumerate(shape) if i not in axes)
    return out or (1,)


def _infer(i, o, p):
    return (i, [_out_shape(i[0], p)]) if i[0] is not None and all(i[0]) else (i, o)


def _dense(mean):
    def f(x, p):
        a = x[0]
        axes = _axes(p["axis"], a.ndim)
        r = (a.mean if mean else a.sum)(axis=axes, keepdims=p["keepdims"])
        return [np.asarray(r, dtype=a.dtype).reshape(_out_shape(a.shape, p))]

    return f


def _csr(mean):
    def f(x, p):
        a = x[0]
        m = a.asscipy()
        axes = _axes(p["axis"], 2)
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
                              keepdims=g.params["keepdims"], mean=mean)]


def _backward_sum(x, p):
    og, data = x
    axes = _axes(p["axis"], data.ndim)
    kept = tuple(1 if i in axes else d for i, d in enumerate(data.shape))
    g = np.broadcast_to(og.reshape(kept), data.shape).astype(og.dtype)
    if p["mean"]:
        g = g / np.prod([data.shape[a] for a in axes])
    return [np.ascontiguousarray(g)]


for _name, _mean in (("sum", False), ("mean", True)):
    register(Op(
        name=_name, input_names=("data",), params={"axis": None, "keepdims": False},
        dense=_dense(_mean), kernels={(CSR,): (("default",), _csr(_mean))}, infer_shape=_infer,
        gradient=_gradient(_mean), doc="csr -> default",
    ))

register(Op(name="_backward_sum", input_names=("ograd", "data"), hidden=True,
            params={"axis": None, "keepdims": False, "mean": False},
            dense=_backward_sum, infer_shape=lambda i, o, p: (i, [i[1]])))
