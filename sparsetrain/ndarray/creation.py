"""Array constructors (``nd.array``, ``nd.zeros``, ``nd.ones``, ...) of the storage types in
:mod:`.ndarray`; ``nd.sparse``'s own are in :mod:`.sparse`."""
from __future__ import annotations

import sys

import numpy as np

from ..base import ShapeError, check_stype
from .ndarray import (DEFAULT_DTYPE, INDEX_DTYPE, BaseArray, CSRNDArray, NDArray, RowSparseNDArray, _shape_tuple,
                      placed)
from .storage import cast_storage


def _dtype(dtype, default=DEFAULT_DTYPE):
    if dtype is None:
        dtype = DEFAULT_DTYPE if default is None else default
    return np.dtype(dtype)


def is_scipy_sparse(x) -> bool:
    """``scipy.sparse.issparse(x)``, without importing scipy: unless it is loaded already, nothing is a
    scipy matrix (``import sparsetrain`` and the CLI's start-up stay free of scipy)."""
    sp = sys.modules.get("scipy.sparse")
    return sp is not None and sp.issparse(x)


def array(source, ctx=None, dtype=None):
    """A dense array from a list, numpy array, scipy matrix or another array (float32 unless ``dtype``)."""
    return placed(_array(source, dtype), ctx)


def _array(source, dtype):
    if isinstance(source, BaseArray):
        if source.stype != "default":
            return source.astype(_dtype(dtype, source.dtype))
        return NDArray(np.array(source._data, dtype=_dtype(dtype, source.dtype)))
    if is_scipy_sparse(source):
        from .sparse import csr_matrix

        return csr_matrix(source, dtype=dtype)
    return NDArray(np.array(source, dtype=_dtype(dtype)))


def zeros(shape, ctx=None, dtype=None, stype="default"):
    return placed(_zeros(shape, dtype, stype), ctx)


def _zeros(shape, dtype=None, stype="default"):
    check_stype(stype)
    shape = _shape_tuple(shape)
    dt = _dtype(dtype)
    if stype == "default":
        return NDArray(np.zeros(shape, dtype=dt))
    if stype == "csr":
        if len(shape) != 2:
            raise ShapeError(f"csr storage needs a 2-D shape, got {shape}")
        return CSRNDArray(np.zeros(0, dt), np.zeros(0, INDEX_DTYPE), np.zeros(shape[0] + 1, INDEX_DTYPE), shape)
    return RowSparseNDArray(np.zeros((0,) + shape[1:], dt), np.zeros(0, INDEX_DTYPE), shape)


def ones(shape, ctx=None, dtype=None, stype="default"):
    out = NDArray(np.ones(_shape_tuple(shape), dtype=_dtype(dtype)))
    return placed(cast_storage(out, check_stype(stype)), ctx)


def full(shape, val, ctx=None, dtype=None):
    return placed(NDArray(np.full(_shape_tuple(shape), val, dtype=_dtype(dtype))), ctx)


def empty(shape, ctx=None, dtype=None, stype="default"):
    return zeros(shape, ctx, dtype, stype)


def arange(start, stop=None, step=1.0, repeat=1, ctx=None, dtype=None):
    values = np.arange(start, stop, step, dtype=_dtype(dtype))
    return NDArray(np.repeat(values, repeat) if repeat != 1 else values)


def zeros_like(x):
    return zeros(x.shape, dtype=x.dtype, stype=x.stype)


def ones_like(x):
    return ones(x.shape, dtype=x.dtype)


def concat(*arrays, dim=1):
    return NDArray(np.concatenate([a.asnumpy() for a in arrays], axis=dim))


def waitall():
    return None
