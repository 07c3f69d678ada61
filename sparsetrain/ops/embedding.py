"""``Embedding`` and ``SparseEmbedding`` (MXNet's ``contrib``): rows of a weight table selected by
integer ids, and the gradient that adds each output row back into its id's row (row_sparse with
``sparse_grad=True``, or always for ``SparseEmbedding``)."""
from __future__ import annotations

import numpy as np

from ..base import ShapeError
from ..ndarray import INDEX_DTYPE
from ..ndarray.ndarray import NDArray, RowSparseNDArray
from .registry import FusedForm, Op, register

D, RSP = "default", "row_sparse"

# The plan compiler reads the ids as the batch's columns (clipped to the table as the graph engine
# does) and gathers the weight's rows: ``engines/compiled/plan.py``'s ``lower_embedding``.
EMBEDDING_FUSED = FusedForm("embedding")


def embedding_infer(i, o, p):
    data, weight = i
    w = (int(p["input_dim"]), int(p["output_dim"]))
    if weight is not None and tuple(weight) != w and all(weight):
        raise ShapeError(f"Embedding: weight shape {weight} does not match (input_dim, output_dim) = {w}")
    out = tuple(data) + (w[1],) if data is not None else o[0]
    return [data, w], [out]


def embedding_dense(x, p):
    data, weight = x
    idx = np.clip(data.astype(np.int64), 0, weight.shape[0] - 1)
    return [weight[idx]]


def _embedding_rsp_weight(x, p):
    """Rows of a row_sparse weight; rows it does not hold are zeros."""
    data, weight = x
    idx = np.clip(data._data.astype(np.int64), 0, weight.shape[0] - 1)
    pos = np.searchsorted(weight._indices, idx)
    pos = np.minimum(pos, max(len(weight._indices) - 1, 0))
    present = (weight._indices[pos] == idx) if len(weight._indices) else np.zeros(idx.shape, dtype=bool)
    out = np.zeros(idx.shape + weight.shape[1:], dtype=weight.dtype)
    if len(weight._indices):
        out[present] = weight._data[pos[present]]
    return [NDArray(out)]


EMBEDDING_RSP_WEIGHT = {(D, RSP): ((D,), _embedding_rsp_weight)}


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
    shape = (int(p["input_dim"]), int(p["output_dim"]))
    return [RowSparseNDArray(values, np.ascontiguousarray(rows, dtype=INDEX_DTYPE), shape)]


def _backwardembedding_dense(x, p):
    rows, values = _embedding_grad(x, p)
    out = np.zeros((int(p["input_dim"]), int(p["output_dim"])), dtype=x[0].dtype)
    out[rows] = values
    return [out]


EMBEDDING_PARAMS = {"input_dim": 0, "output_dim": 0, "sparse_grad": False}
register(Op(
    name="Embedding", input_names=("data", "weight"), params=dict(EMBEDDING_PARAMS),
    dense=embedding_dense, infer_shape=embedding_infer, kernels=dict(EMBEDDING_RSP_WEIGHT),
    gradient=lambda g: [None, g.apply("_backward_Embedding", g.og, g.inputs[0], **g.params)],
    doc="rows of weight selected by integer data; sparse_grad=True gives a row_sparse weight gradient",
    fused=EMBEDDING_FUSED,
))
register(Op(
    name="_backward_Embedding", input_names=("ograd", "data"), params=dict(EMBEDDING_PARAMS), hidden=True,
    dense=_backwardembedding_dense,
    kernels={"rsp": ((RSP,), _backward_embedding_rsp)},
    storage=lambda s, p: "rsp" if p["sparse_grad"] and s[0] == D else tuple(s),
    infer_shape=lambda i, o, p: (i, [(int(p["input_dim"]), int(p["output_dim"]))]),
))


# -- SparseEmbedding: Embedding with a row_sparse weight gradient -------------------------------

register(Op(
    name="SparseEmbedding", input_names=("data", "weight"), params=dict(EMBEDDING_PARAMS, sparse_grad=True),
    dense=embedding_dense, infer_shape=embedding_infer, kernels=dict(EMBEDDING_RSP_WEIGHT),
    gradient=lambda g: [None, g.apply("_backward_Embedding", g.og, g.inputs[0], **{**g.params, "sparse_grad": True})],
    doc="rows of weight selected by integer data; the weight gradient is row_sparse",
    fused=EMBEDDING_FUSED,
))
