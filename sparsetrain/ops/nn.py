"""``FullyConnected`` (dense or csr data), a layer of MXNet's sparse models."""
from __future__ import annotations

import numpy as np

from ..base import ShapeError
from ..ndarray.ndarray import NDArray
from .registry import Op, register

D, CSR, RSP = "default", "csr", "row_sparse"


# -- FullyConnected: out = data · weightᵀ + bias ---------------------------------------------------

def _fc_infer(i, o, p):
    data, weight = i[0], i[1]
    has_bias = len(i) > 2
    bias = i[2] if has_bias else None
    k = int(p["num_hidden"])
    if k <= 0:
        raise ShapeError(f"FullyConnected: num_hidden must be positive, got {p['num_hidden']!r}")
    # MXNet takes the bias as (num_hidden,) or (num_hidden, 1)
    want_b = tuple(bias) if bias is not None and tuple(bias) == (k, 1) else (k,)
    if data is None or not all(data):
        return [data, weight or (k, 0)] + ([bias or want_b] if has_bias else []), o
    n_in = int(np.prod(data[1:], dtype=np.int64)) if p["flatten"] else data[-1]
    want_w = (k, n_in)
    if weight is not None and all(weight) and tuple(weight) != want_w:
        raise ShapeError(f"FullyConnected: weight shape {weight} does not fit data {data} (expected {want_w})")
    out = (data[0], k) if p["flatten"] else tuple(data[:-1]) + (k,)
    return [data, want_w] + ([want_b] if has_bias else []), [out]


def _flat(a, p):
    return a.reshape(a.shape[0], -1) if p["flatten"] else a.reshape(-1, a.shape[-1])


def _fc_dense(x, p):
    data, weight = x[0], x[1]
    out = _flat(data, p) @ weight.T
    if len(x) > 2:
        out = out + x[2].reshape(-1)
    shape = (data.shape[0], weight.shape[0]) if p["flatten"] else data.shape[:-1] + (weight.shape[0],)
    return [out.astype(data.dtype, copy=False).reshape(shape)]


def _fc_csr(x, p):
    data, weight = x[0], x[1]
    from ..kernels.sparse_dot import csr_dense_dot  # numba loads on the first call, not with the registry

    out = csr_dense_dot(data._data, data._indices, data._indptr, np.ascontiguousarray(weight._data.T))
    if len(x) > 2:
        out += x[2]._data.reshape(-1)
    return [NDArray(out)]


def _backward_fc(x, p):
    og, data, weight = x
    flat = _flat(data, p)
    og2 = og.reshape(flat.shape[0], -1)
    return [(og2 @ weight).reshape(data.shape), og2.T @ flat, og2.sum(axis=0)]


def _backward_fc_csr(x, p):
    og, data, weight = x
    og2 = og._data
    gw = np.asarray((data.asscipy().T @ og2).T, dtype=weight.dtype)
    return [NDArray(og2 @ weight._data), NDArray(gw), NDArray(og2.sum(axis=0))]


def _fc_gradient(g):
    gd, gw, gb = g.apply("_backward_FullyConnected", g.og, g.inputs[0], g.inputs[1], **g.params)
    if len(g.inputs) > 2 and len(g.shape(g.inputs[2]) or ()) == 2:  # a (num_hidden, 1) bias
        gb = g.apply("_reshape_like", gb, g.inputs[2])
    return [gd, gw, gb][: len(g.inputs)]


_FC_PARAMS = {"num_hidden": 0, "no_bias": False, "flatten": True}
register(Op(
    name="FullyConnected", input_names=("data", "weight", "bias"), params=dict(_FC_PARAMS),
    dense=_fc_dense, infer_shape=_fc_infer,
    kernels={(CSR, D, D): ((D,), _fc_csr), (CSR, D): ((D,), _fc_csr)},
    omitted_inputs=lambda p: ("bias",) if p["no_bias"] else (),
    gradient=_fc_gradient,
    doc="data · weightᵀ + bias (no bias input with no_bias=True); csr data with dense weight -> dense",
))
register(Op(
    name="_backward_FullyConnected", input_names=("ograd", "data", "weight"), params=dict(_FC_PARAMS),
    hidden=True, num_outputs=3, dense=_backward_fc,
    kernels={(D, CSR, D): ((D, D, D), _backward_fc_csr)},
    infer_shape=lambda i, o, p: (i, [i[1], i[2], (i[2][0],) if i[2] else None]),
))
