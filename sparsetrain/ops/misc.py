"""``add_n``, ``cast_storage``, ``slice`` and ``Embedding``."""
from __future__ import annotations

import numpy as np

from ..base import ShapeError, check_stype
from ..ndarray.ndarray import RowSparseNDArray, _as_index, cast_storage
from .elemwise import _rsp_union, same_shape
from .registry import Op, register

D, CSR, RSP = "default", "csr", "row_sparse"
STYPES = (D, CSR, RSP)


# -- add_n -----------------------------------------------------------------------------------

def _add_n_rsp(x, p):
    acc = x[0]
    for a in x[1:]:
        acc = _rsp_union(acc, a, 1.0)
    return [acc if len(x) > 1 else acc.copy()]


register(Op(
    name="add_n", input_names=("args",), variadic=True,
    dense=lambda x, p: [np.sum(np.stack(x), axis=0)] if len(x) > 1 else [x[0].copy()],
    kernels={"all_rsp": ((RSP,), _add_n_rsp)},
    storage=lambda s, p: "all_rsp" if all(t == RSP for t in s) else tuple(s),
    infer_shape=lambda i, o, p: same_shape(i, o, p, "add_n"),
    gradient=lambda g: [g.og] * len(g.inputs),
    doc="all row_sparse -> row_sparse; otherwise dense",
))


# -- cast_storage ---------------------------------------------------------------------------

def _cast(x, p):
    return [cast_storage(x[0], p["stype"])]


register(Op(
    name="cast_storage", input_names=("data",), params={"stype": D},
    dense=lambda x, p: [x[0].copy()],
    kernels={(a, b): ((b,), _cast) for a in STYPES for b in STYPES},
    storage=lambda s, p: (s[0], check_stype(p["stype"])),
    infer_shape=lambda i, o, p: same_shape(i, o, p, "cast_storage"),
    gradient=lambda g: [g.apply("_copy", g.og)],
    doc="converts to the `stype` parameter",
))


# -- slice ----------------------------------------------------------------------------------

def _norm_slice(shape, p):
    begin, end = tuple(p["begin"]), tuple(p["end"])
    if len(begin) != len(end) or len(begin) > len(shape):
        raise ShapeError(f"slice: begin {begin} and end {end} do not fit shape {shape}")
    out = []
    for d, size in enumerate(shape):
        b = begin[d] if d < len(begin) and begin[d] is not None else 0
        e = end[d] if d < len(end) and end[d] is not None else size
        b, e = (b + size if b < 0 else b), (e + size if e < 0 else e)
        if not 0 <= b < e <= size:
            raise ShapeError(f"slice: [{begin}, {end}) is out of range for shape {shape}")
        out.append(slice(b, e))
    return tuple(out)


def _slice_infer(i, o, p):
    if i[0] is None or not all(i[0]):
        return i, o
    return i, [tuple(s.stop - s.start for s in _norm_slice(i[0], p))]


def _slice_rows_only(p):
    return all(b is None for b in tuple(p["begin"])[1:]) and all(e is None for e in tuple(p["end"])[1:])


def _slice_csr(x, p):
    rows = _norm_slice(x[0].shape, p)[0]
    return [x[0][rows.start:rows.stop].copy()]


def _backward_slice(x, p):
    og, data = x
    g = np.zeros(data.shape, dtype=og.dtype)
    g[_norm_slice(data.shape, p)] = og
    return [g]


register(Op(
    name="slice", input_names=("data",), params={"begin": (), "end": ()},
    dense=lambda x, p: [np.ascontiguousarray(x[0][_norm_slice(x[0].shape, p)])],
    kernels={"csr_rows": ((CSR,), _slice_csr)},
    storage=lambda s, p: "csr_rows" if s[0] == CSR and _slice_rows_only(p) else tuple(s),
    infer_shape=_slice_infer,
    gradient=lambda g: [g.apply("_backward_slice", g.og, g.inputs[0], begin=g.params["begin"], end=g.params["end"])],
    doc="rows of a csr -> csr",
))
register(Op(name="_backward_slice", input_names=("ograd", "data"), params={"begin": (), "end": ()}, hidden=True,
            dense=_backward_slice, infer_shape=lambda i, o, p: (i, [i[1]])))


# -- Embedding ------------------------------------------------------------------------------

def _embedding_infer(i, o, p):
    data, weight = i
    w = (int(p["input_dim"]), int(p["output_dim"]))
    if weight is not None and tuple(weight) != w and all(weight):
        raise ShapeError(f"Embedding: weight shape {weight} does not match (input_dim, output_dim) = {w}")
    out = tuple(data) + (w[1],) if data is not None else o[0]
    return [data, w], [out]


def _embedding_dense(x, p):
    data, weight = x
    idx = np.clip(data.astype(np.int64), 0, weight.shape[0] - 1)
    return [weight[idx]]


def _embedding_grad(x, p):
    og, data = x
    k = int(p["output_dim"])
    idx = np.clip(data.astype(np.int64).reshape(-1), 0, int(p["input_dim"]) - 1)
    rows, inverse = np.unique(idx, return_inverse=True)
    values = np.zeros((len(rows), k), dtype=og.dtype)
    np.add.at(values, inverse, og.reshape(-1, k))
    return rows, values


def _backward_embedding_rsp(x, p):
    rows, values = _embedding_grad([x[0]._data, x[1].asnumpy()], p)
    return [RowSparseNDArray(values, _as_index(rows), (int(p["input_dim"]), int(p["output_dim"])))]


def _backward_embedding_dense(x, p):
    rows, values = _embedding_grad(x, p)
    out = np.zeros((int(p["input_dim"]), int(p["output_dim"])), dtype=x[0].dtype)
    out[rows] = values
    return [out]


_EMB_PARAMS = {"input_dim": 0, "output_dim": 0, "sparse_grad": False}
register(Op(
    name="Embedding", input_names=("data", "weight"), params=dict(_EMB_PARAMS),
    dense=_embedding_dense, infer_shape=_embedding_infer,
    gradient=lambda g: [None, g.apply("_backward_Embedding", g.og, g.inputs[0], **g.params)],
    doc="rows of weight selected by integer data; sparse_grad=True gives a row_sparse weight gradient",
))
register(Op(
    name="_backward_Embedding", input_names=("ograd", "data"), params=dict(_EMB_PARAMS), hidden=True,
    dense=_backward_embedding_dense,
    kernels={"rsp": ((RSP,), _backward_embedding_rsp)},
    storage=lambda s, p: "rsp" if p["sparse_grad"] and s[0] == D else tuple(s),
    infer_shape=lambda i, o, p: (i, [(int(p["input_dim"]), int(p["output_dim"]))]),
))
