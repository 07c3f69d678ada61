"""``add_n``, ``cast_storage``, ``slice``, ``_sparse_retain`` and ``getnnz``."""
from __future__ import annotations

import numpy as np

from ..base import ShapeError, check_stype
from ..ndarray.ndarray import NDArray, RowSparseNDArray, cast_storage
from ..ndarray.sparse import sum_rows
from .elemwise import same_shape
from .registry import Op, register

D, CSR, RSP = "default", "csr", "row_sparse"
STYPES = (D, CSR, RSP)


# -- add_n -----------------------------------------------------------------------------------

def _add_n_rsp(x, p):
    if len(x) == 1:
        return [x[0].copy()]
    rows, data = sum_rows([(a._indices, a._data) for a in x])
    return [RowSparseNDArray(data.astype(x[0].dtype, copy=False), rows, x[0].shape)]


def _add_n_dense_rsp(x, p):
    """Dense and row_sparse summands: the dense sum, then each row_sparse one added on its rows."""
    dense = [a._data for a in x if a.stype == D]
    out = np.sum(np.stack(dense), axis=0) if len(dense) > 1 else dense[0].copy()
    for a in x:
        if a.stype == RSP:
            out[a._indices] += a._data
    return [NDArray(out)]


def _add_n_storage(s, p):
    if all(t == RSP for t in s):
        return "all_rsp"
    if all(t in (D, RSP) for t in s) and RSP in s:
        return "dense_rsp"
    return tuple(s)


register(Op(
    name="add_n", input_names=("args",), variadic=True,
    dense=lambda x, p: [np.sum(np.stack(x), axis=0)] if len(x) > 1 else [x[0].copy()],
    kernels={"all_rsp": ((RSP,), _add_n_rsp), "dense_rsp": ((D,), _add_n_dense_rsp)},
    storage=_add_n_storage,
    infer_shape=lambda i, o, p: same_shape(i, o, p, "add_n"),
    gradient=lambda g: [g.og] * len(g.inputs),
    doc="all row_sparse -> row_sparse; dense with row_sparse -> dense (sparse kernel); otherwise dense",
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

def _axes_tuple(v):
    """A ``begin``/``end``/``step`` value as a tuple (MXNet reads a single number as a 1-tuple)."""
    return (v,) if v is None or isinstance(v, (int, np.integer)) else tuple(v)


def _norm_slice(shape, p):
    """Python slices for ``begin``/``end``/``step`` (``None`` entries and missing axes: the whole axis)."""
    begin, end = _axes_tuple(p["begin"]), _axes_tuple(p["end"])
    step = _axes_tuple(p.get("step") or ())
    if len(begin) != len(end) or len(begin) > len(shape) or len(step) > len(begin):
        raise ShapeError(f"slice: begin {begin}, end {end} and step {step} do not fit shape {shape}")
    out = []
    for d, size in enumerate(shape):
        b = begin[d] if d < len(begin) else None
        e = end[d] if d < len(end) else None
        st = step[d] if d < len(step) and step[d] is not None else 1
        if st == 0:
            raise ShapeError("slice: step cannot be 0")
        b = None if b is None else (b + size if b < 0 else b)
        e = None if e is None else (e + size if e < 0 else e)
        if st > 0:
            b, e = (0 if b is None else b), (size if e is None else e)
            ok = 0 <= b < e <= size
        else:
            b, e = (size - 1 if b is None else b), (-1 if e is None else e)
            ok = -1 <= e < b < size
        if not ok:
            raise ShapeError(f"slice: begin {begin}, end {end}, step {step} is out of range for shape {shape}")
        out.append(slice(b, e if e >= 0 else None, st))
    return tuple(out)


def _slice_infer(i, o, p):
    if i[0] is None or not all(i[0]):
        return i, o
    return i, [tuple(len(range(*s.indices(n))) for s, n in zip(_norm_slice(i[0], p), i[0]))]


def _slice_rows_only(p):
    steps = _axes_tuple(p.get("step") or ())
    return (all(b is None for b in _axes_tuple(p["begin"])[1:]) and all(e is None for e in _axes_tuple(p["end"])[1:])
            and all(st in (None, 1) for st in steps))


def _slice_csr(x, p):
    rows = _norm_slice(x[0].shape, p)[0]
    return [x[0][rows.start:rows.stop].copy()]


def _backward_slice(x, p):
    og, data = x
    g = np.zeros(data.shape, dtype=og.dtype)
    g[_norm_slice(data.shape, p)] = og
    return [g]


_SLICE_PARAMS = {"begin": (), "end": (), "step": ()}
register(Op(
    name="slice", input_names=("data",), params=dict(_SLICE_PARAMS),
    dense=lambda x, p: [np.ascontiguousarray(x[0][_norm_slice(x[0].shape, p)])],
    kernels={"csr_rows": ((CSR,), _slice_csr)},
    storage=lambda s, p: "csr_rows" if s[0] == CSR and _slice_rows_only(p) else tuple(s),
    infer_shape=_slice_infer,
    gradient=lambda g: [g.apply("_backward_slice", g.og, g.inputs[0], begin=g.params["begin"],
                                end=g.params["end"], step=g.params["step"])],
    doc="data[begin:end:step] per axis; rows of a csr (step 1) -> csr",
))
register(Op(name="_backward_slice", input_names=("ograd", "data"), params=dict(_SLICE_PARAMS), hidden=True,
            dense=_backward_slice, infer_shape=lambda i, o, p: (i, [i[1]])))


# -- sparse utilities: retain, getnnz ----------------------------------------------------------

def _retain(x, p):
    data, indices = x
    keep = np.isin(data._indices, indices.asnumpy().astype(np.int64))
    return [RowSparseNDArray(data._data[keep], data._indices[keep].copy(), data.shape)]


register(Op(
    name="_sparse_retain", input_names=("data", "indices"),
    dense=lambda x, p: [np.where(np.isin(np.arange(x[0].shape[0]), x[1].astype(np.int64)).reshape(
        (-1,) + (1,) * (x[0].ndim - 1)), x[0], 0).astype(x[0].dtype)],
    kernels={(RSP, D): ((RSP,), _retain)},
    infer_shape=lambda i, o, p: (i, [i[0]]),
    gradient=lambda g: [g.apply("_sparse_retain", g.og, g.inputs[1]), None],
    doc="the rows of a row_sparse array listed in indices (row_sparse -> row_sparse)",
))


def _getnnz(x, p):
    a = x[0]
    axis = p["axis"]
    if axis is None:
        counts = np.array([a.nnz], dtype=np.int64)
    elif axis in (1, -1):
        counts = np.diff(a._indptr).astype(np.int64)
    elif axis == 0:
        counts = np.bincount(a._indices, minlength=a.shape[1]).astype(np.int64)
    else:
        raise ShapeError(f"getnnz: axis must be None, 0 or 1, got {axis!r}")
    return [NDArray(counts)]


def _getnnz_infer(i, o, p):
    if i[0] is None:
        return i, o
    axis = p["axis"]
    return i, [(1,) if axis is None else (i[0][1] if axis == 0 else i[0][0],)]


register(Op(
    name="getnnz", input_names=("data",), params={"axis": None},
    dense=lambda x, p: [np.asarray(_getnnz_dense(x[0], p["axis"]), dtype=np.int64)],
    kernels={(CSR,): ((D,), _getnnz)}, infer_shape=_getnnz_infer,
    doc="number of stored values of a csr array (int64), in total or per row (axis=1) / column (axis=0)",
))


def _getnnz_dense(a, axis):
    nz = a != 0
    return np.array([nz.sum()]) if axis is None else nz.sum(axis=axis)
