"""Storage conversion: ``cast_storage`` between dense, csr and row_sparse (``x.tostype(stype)``)."""
from __future__ import annotations

import numpy as np

from ..base import ShapeError, check_stype
from .ndarray import INDEX_DTYPE, BaseArray, CSRNDArray, NDArray, RowSparseNDArray, _as_index


def _dense_to_csr(x: np.ndarray) -> CSRNDArray:
    if x.ndim != 2:
        raise ShapeError(f"csr storage needs a 2-D array, got shape {x.shape}")
    rows, cols = np.nonzero(x)  # row-major: columns sorted within each row; any dtype
    indptr = np.zeros(x.shape[0] + 1, dtype=INDEX_DTYPE)
    np.cumsum(np.bincount(rows, minlength=x.shape[0]), out=indptr[1:])
    return CSRNDArray(np.ascontiguousarray(x[rows, cols]), _as_index(cols), indptr, x.shape)


def _dense_to_rsp(x: np.ndarray) -> RowSparseNDArray:
    if x.ndim == 0:
        raise ShapeError("row_sparse storage needs at least one dimension")
    flat = x.reshape(x.shape[0], -1)
    rows = np.flatnonzero(flat.any(axis=1)) if flat.shape[1] else np.zeros(0, INDEX_DTYPE)
    return RowSparseNDArray(np.ascontiguousarray(x[rows]), _as_index(rows), x.shape)


def cast_storage(x: BaseArray, stype: str):
    """``x`` converted to ``stype``; returns ``x`` itself when it already has that storage type."""
    check_stype(stype)
    if x.stype == stype:
        return x
    if stype == "default":
        return NDArray(x.asnumpy())
    if x.stype == "default":
        dense = x._data
    elif x.stype == "csr" and stype == "row_sparse":
        rows = np.flatnonzero(np.diff(x._indptr))
        return RowSparseNDArray(x[0 : x.shape[0]].asnumpy()[rows], _as_index(rows), x.shape)
    else:
        dense = x.asnumpy()
    return _dense_to_csr(dense) if stype == "csr" else _dense_to_rsp(dense)
