"""Constructors of the sparse storage types (``nd.sparse.*``)."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..base import ShapeError
from .ndarray import (
    INDEX_DTYPE,
    BaseArray,
    CSRNDArray,
    NDArray,
    RowSparseNDArray,
    _as_index,
    _dtype,
    _shape_tuple,
    cast_storage,
    zeros as _zeros,
)


def _values(a, dtype):
    a = a.asnumpy() if isinstance(a, BaseArray) else a
    return np.ascontiguousarray(a, dtype=dtype)


def _source_dtype(source, values: np.ndarray):
    """MXNet's rule: keep the float dtype of an array source; lists and ints give float32."""
    if isinstance(source, (np.ndarray, BaseArray)) and values.dtype.kind == "f":
        return values.dtype
    return None


def csr_matrix(arg1, shape=None, ctx=None, dtype=None) -> CSRNDArray:
    """A ``CSRNDArray`` from ``(data, indices, indptr)``, a scipy matrix, a dense array or a shape.

    Buffers that already have the right dtypes (values float32/float64, indices int64) are
    wrapped without copying.
    """
    if isinstance(arg1, tuple) and len(arg1) == 3:
        data, indices, indptr = arg1
        data_np = data.asnumpy() if isinstance(data, BaseArray) else np.asarray(data)
        dt = _dtype(dtype, _source_dtype(data, data_np))
        data_np = np.ascontiguousarray(data_np, dtype=dt)
        indices, indptr = _as_index(_values(indices, INDEX_DTYPE)), _as_index(_values(indptr, INDEX_DTYPE))
        if shape is None:
            shape = (len(indptr) - 1, int(indices.max()) + 1 if len(indices) else 0)
        shape = _shape_tuple(shape)
        if len(indptr) != shape[0] + 1 or len(indices) != len(data_np) or indptr[-1] != len(data_np):
            raise ShapeError(
                f"inconsistent csr buffers for shape {shape}: {len(data_np)} values, "
                f"{len(indices)} indices, {len(indptr)} indptr entries"
            )
        return CSRNDArray(data_np, indices, indptr, shape)
    if isinstance(arg1, tuple) and all(isinstance(s, (int, np.integer)) for s in arg1):
        return _zeros(arg1, dtype=dtype, stype="csr")
    if isinstance(arg1, CSRNDArray):
        return arg1.astype(_dtype(dtype, arg1.dtype)) if dtype is not None else arg1.copy()
    if sp.issparse(arg1):
        m = sp.csr_matrix(arg1)
        m.sum_duplicates()
        return CSRNDArray(
            np.ascontiguousarray(m.data, dtype=_dtype(dtype, m.dtype if m.dtype.kind == "f" else None)),
            _as_index(m.indices), _as_index(m.indptr), m.shape,
        )
    if isinstance(arg1, BaseArray):
        return cast_storage(arg1, "csr").astype(_dtype(dtype, arg1.dtype))
    dense = np.asarray(arg1, dtype=_dtype(dtype))
    return cast_storage(NDArray(dense), "csr")


def row_sparse_array(arg1, shape=None, ctx=None, dtype=None) -> RowSparseNDArray:
    """A ``RowSparseNDArray`` from ``(data, indices)``, a dense array, another array, or a shape."""
    if isinstance(arg1, tuple) and len(arg1) == 2 and not all(isinstance(s, (int, np.integer)) for s in arg1):
        data, indices = arg1
        data_np = data.asnumpy() if isinstance(data, BaseArray) else np.asarray(data)
        data_np = np.ascontiguousarray(data_np, dtype=_dtype(dtype, _source_dtype(data, data_np)))
        indices = _as_index(_values(indices, INDEX_DTYPE))
        if shape is None:
            shape = (int(indices.max()) + 1 if len(indices) else 0,) + data_np.shape[1:]
        shape = _shape_tuple(shape)
        if data_np.shape[0] != len(indices) or data_np.shape[1:] != shape[1:]:
            raise ShapeError(
                f"row_sparse data of shape {data_np.shape} does not fit {len(indices)} indices and shape {shape}"
            )
        if len(indices) and (np.any(np.diff(indices) <= 0) or indices[0] < 0 or indices[-1] >= shape[0]):
            order = np.argsort(indices, kind="stable")
            indices, data_np = indices[order], data_np[order]
            if np.any(np.diff(indices) == 0) or indices[0] < 0 or indices[-1] >= shape[0]:
                raise ShapeError(f"row_sparse indices must be unique and within [0, {shape[0]})")
        return RowSparseNDArray(data_np, indices, shape)
    if isinstance(arg1, tuple):
        return _zeros(arg1, dtype=dtype, stype="row_sparse")
    if isinstance(arg1, RowSparseNDArray):
        return arg1.astype(_dtype(dtype, arg1.dtype)) if dtype is not None else arg1.copy()
    if isinstance(arg1, BaseArray):
        return cast_storage(arg1, "row_sparse").astype(_dtype(dtype, arg1.dtype))
    return cast_storage(NDArray(np.asarray(arg1, dtype=_dtype(dtype))), "row_sparse")


def zeros(stype, shape, ctx=None, dtype=None):
    return _zeros(shape, dtype=dtype, stype=stype)


def array(source, ctx=None, dtype=None):
    if isinstance(source, RowSparseNDArray):
        return row_sparse_array(source, dtype=dtype)
    return csr_matrix(source, dtype=dtype)
