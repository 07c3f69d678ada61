"""Constructors of the sparse storage types (``nd.sparse.*``)."""
from __future__ import annotations

import numpy as np

from ..base import ShapeError
from .ndarray import (
    DEFAULT_DTYPE,
    INDEX_DTYPE,
    BaseArray,
    BaseSparseNDArray,  # noqa: F401  (nd.sparse.BaseSparseNDArray)
    CSRNDArray,
    NDArray,
    RowSparseNDArray,
    SparseFormatError,  # noqa: F401  (nd.sparse.SparseFormatError)
    _as_index,
    _shape_tuple,
    cast_storage,
    placed,
)
from .creation import is_scipy_sparse, zeros as _zeros


def _values(a, dtype):
    a = a.asnumpy() if isinstance(a, BaseArray) else a
    return np.ascontiguousarray(a, dtype=dtype)


def _source_dtype(source, dtype):
    """MXNet's rule: an explicit ``dtype``, else the dtype of an array source, else float32."""
    if dtype is not None:
        return np.dtype(dtype)
    if isinstance(source, (np.ndarray, BaseArray)) or is_scipy_sparse(source):
        return np.dtype(source.dtype)
    return np.dtype(DEFAULT_DTYPE)


def _check_shape(actual, requested):
    """A ``shape=`` that contradicts the source is an error (``ValueError``), as in MXNet."""
    if requested is not None and tuple(actual) != _shape_tuple(requested):
        raise ShapeError(f"shape mismatch: the source has shape {tuple(actual)}, shape={tuple(requested)} was given")


def _copy_as(x, dtype):
    return x.copy() if x.dtype == dtype else x.astype(dtype)


def _is_shape(arg) -> bool:
    return isinstance(arg, tuple) and len(arg) > 0 and all(isinstance(s, (int, np.integer)) for s in arg)


def _from_scipy(m, dtype) -> CSRNDArray:
    import scipy.sparse as sp

    m = sp.csr_matrix(m)
    m = m.sorted_indices() if not m.has_sorted_indices else m
    m.sum_duplicates()
    return CSRNDArray(np.ascontiguousarray(m.data, dtype=dtype), _as_index(m.indices), _as_index(m.indptr), m.shape)


def csr_matrix(arg1, shape=None, ctx=None, dtype=None) -> CSRNDArray:
    """A ``CSRNDArray`` from ``(data, indices, indptr)``, ``(data, (row, col))`` (COO), a scipy
    matrix, a ``CSRNDArray``, a dense array or a shape ``(M, N)``.

    The dtype is ``dtype``, else the source's (numpy, NDArray, scipy), else float32. A ``shape``
    contradicting the source, or one that cannot be inferred (no indices), raises ``ShapeError``
    (a ``ValueError``). Buffers that already have the right dtypes are wrapped without copying.
    """
    return placed(_csr_matrix(arg1, shape, dtype), ctx)


def _csr_matrix(arg1, shape, dtype) -> CSRNDArray:
    if isinstance(arg1, tuple) and len(arg1) == 2 and isinstance(arg1[1], tuple) and len(arg1[1]) == 2:
        data, (row, col) = arg1[0], arg1[1]
        dt = _source_dtype(data, dtype)
        data, row, col = (a.asnumpy() if isinstance(a, BaseArray) else np.asarray(a) for a in (data, row, col))
        import scipy.sparse as sp

        try:
            coo = sp.coo_matrix((data, (row, col)), shape=None if shape is None else _shape_tuple(shape))
        except ValueError as e:
            raise ShapeError(f"csr_matrix from (data, (row, col)): {e}") from None
        return _from_scipy(coo, dt)
    if _is_shape(arg1):
        if len(arg1) != 2:
            raise ShapeError(f"csr storage needs a 2-D shape, got {arg1}")
        _check_shape(arg1, shape)
        return _zeros(arg1, dtype=dtype, stype="csr")
    if isinstance(arg1, tuple) and len(arg1) == 3:
        return _csr_from_buffers(*arg1, shape=shape, dtype=dtype)
    if isinstance(arg1, tuple):
        raise ShapeError(f"csr_matrix: unexpected tuple of length {len(arg1)}; give (data, indices, indptr), "
                         "(data, (row, col)) or a shape (M, N)")
    if isinstance(arg1, RowSparseNDArray):
        raise ShapeError("csr_matrix: unexpected input type RowSparseNDArray; use .tostype('csr')")
    if isinstance(arg1, CSRNDArray):
        _check_shape(arg1.shape, shape)
        return _copy_as(arg1, _source_dtype(arg1, dtype))
    if is_scipy_sparse(arg1):
        _check_shape(arg1.shape, shape)
        return _from_scipy(arg1, _source_dtype(arg1, dtype))
    dense = np.asarray(arg1.asnumpy() if isinstance(arg1, BaseArray) else arg1, dtype=_source_dtype(arg1, dtype))
    _check_shape(dense.shape, shape)
    return cast_storage(NDArray(dense), "csr")


def _csr_from_buffers(data, indices, indptr, shape=None, dtype=None) -> CSRNDArray:
    data_np = np.ascontiguousarray(data.asnumpy() if isinstance(data, BaseArray) else data,
                                   dtype=_source_dtype(data, dtype))
    indices, indptr = _as_index(_values(indices, INDEX_DTYPE)), _as_index(_values(indptr, INDEX_DTYPE))
    if data_np.ndim != 1 or indices.ndim != 1 or indptr.ndim != 1 or len(indptr) == 0:
        raise ShapeError("csr_matrix: data, indices and indptr must be 1-D, indptr non-empty")
    if shape is None:
        if len(indices) == 0:
            raise ShapeError("csr_matrix: the shape cannot be inferred from empty indices; give shape=")
        shape = (len(indptr) - 1, int(indices.max()) + 1)
    shape = _shape_tuple(shape)
    if len(shape) != 2 or len(indptr) != shape[0] + 1 or len(indices) != len(data_np) or indptr[-1] != len(data_np):
        raise ShapeError(
            f"inconsistent csr buffers for shape {shape}: {len(data_np)} values, "
            f"{len(indices)} indices, {len(indptr)} indptr entries"
        )
    return CSRNDArray(data_np, indices, indptr, shape)


def row_sparse_array(arg1, shape=None, ctx=None, dtype=None) -> RowSparseNDArray:
    """A ``RowSparseNDArray`` from ``(data, indices)``, a dense array, another row-sparse array, or
    a shape. Dtype and shape rules as :func:`csr_matrix`; unsorted indices are sorted."""
    return placed(_row_sparse_array(arg1, shape, dtype), ctx)


def _row_sparse_array(arg1, shape, dtype) -> RowSparseNDArray:
    if _is_shape(arg1):
        _check_shape(arg1, shape)
        return _zeros(arg1, dtype=dtype, stype="row_sparse")
    if isinstance(arg1, tuple) and len(arg1) == 2:
        return _rsp_from_buffers(*arg1, shape=shape, dtype=dtype)
    if isinstance(arg1, tuple):
        raise ShapeError(f"row_sparse_array: unexpected tuple of length {len(arg1)}; give (data, indices) or a shape")
    if isinstance(arg1, CSRNDArray):
        raise ShapeError("row_sparse_array: unexpected input type CSRNDArray; use .tostype('row_sparse')")
    if isinstance(arg1, RowSparseNDArray):
        _check_shape(arg1.shape, shape)
        return _copy_as(arg1, _source_dtype(arg1, dtype))
    dense = np.asarray(arg1.asnumpy() if isinstance(arg1, BaseArray) else arg1, dtype=_source_dtype(arg1, dtype))
    _check_shape(dense.shape, shape)
    return cast_storage(NDArray(dense), "row_sparse")


def _rsp_from_buffers(data, indices, shape=None, dtype=None) -> RowSparseNDArray:
    data_np = np.ascontiguousarray(data.asnumpy() if isinstance(data, BaseArray) else data,
                                   dtype=_source_dtype(data, dtype))
    indices = _as_index(_values(indices, INDEX_DTYPE))
    if indices.ndim != 1:
        raise ShapeError("row_sparse_array: indices must be 1-D")
    if shape is None:
        if len(indices) == 0:
            raise ShapeError("row_sparse_array: the shape cannot be inferred from empty indices; give shape=")
        shape = (int(indices.max()) + 1,) + data_np.shape[1:]
    shape = _shape_tuple(shape)
    if data_np.ndim != len(shape) or data_np.shape[0] != len(indices) or data_np.shape[1:] != shape[1:]:
        raise ShapeError(
            f"row_sparse data of shape {data_np.shape} does not fit {len(indices)} indices and shape {shape}"
        )
    if len(indices) and (np.any(np.diff(indices) <= 0) or indices[0] < 0 or indices[-1] >= shape[0]):
        order = np.argsort(indices, kind="stable")
        indices, data_np = indices[order], data_np[order]
        if np.any(np.diff(indices) == 0) or indices[0] < 0 or indices[-1] >= shape[0]:
            raise ShapeError(f"row_sparse indices must be unique and within [0, {shape[0]})")
    return RowSparseNDArray(data_np, indices, shape)


def zeros(stype, shape, ctx=None, dtype=None):
    """Zeros of ``shape`` in storage ``stype`` (MXNet's argument order: the stype first)."""
    return _zeros(shape, ctx=ctx, dtype=dtype, stype=stype)


def empty(stype, shape, ctx=None, dtype=None):
    return _zeros(shape, ctx=ctx, dtype=dtype, stype=stype)


def array(source, ctx=None, dtype=None):
    if isinstance(source, RowSparseNDArray):
        return row_sparse_array(source, ctx=ctx, dtype=dtype)
    return csr_matrix(source, ctx=ctx, dtype=dtype)


def sum_rows(parts):
    """Sum row-sparse parts ``[(rows, values), ...]`` (rows sorted and unique within a part) into
    ``(rows, values)`` over the union of rows; parts are added in the order given.

    The one row-sparse summation: ``elemwise_add``/``add_n`` on row_sparse arrays, kvstore
    pushes of several values and the parameter servers' gradient merge all call it.
    """
    if len(parts) == 1:
        rows, values = parts[0]
        return np.asarray(rows, dtype=INDEX_DTYPE), values
    rows = np.unique(np.concatenate([np.asarray(r, dtype=INDEX_DTYPE) for r, _ in parts]))
    dtype = np.result_type(*[v.dtype for _, v in parts])
    out = np.zeros((len(rows),) + tuple(parts[0][1].shape[1:]), dtype=dtype)
    for r, v in parts:
        out[np.searchsorted(rows, r)] += v
    return rows, out
