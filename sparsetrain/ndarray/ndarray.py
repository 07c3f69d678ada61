"""The three storage types: dense ``NDArray``, ``CSRNDArray`` and ``RowSparseNDArray``.

Each wraps numpy buffers (``_data``, plus ``_indices``/``_indptr`` for the sparse ones) and keeps
object identity across ``x[:] = y`` so that an executor holding an array sees new values.
Arithmetic goes through the operator registry (``sparsetrain.ops``), like the ``nd.*`` functions.
"""
from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse as sp

from ..base import ShapeError, StorageTypeError, check_stype, cpu

DEFAULT_DTYPE = np.float32
INDEX_DTYPE = np.int64


def _shape_str(shape) -> str:
    return "x".join(str(s) for s in shape)


def _as_index(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=INDEX_DTYPE)


class BaseArray:
    """What the three storage types share: shape/dtype accessors, conversions, operators."""

    __slots__ = ()
    stype = "default"

    # -- description -------------------------------------------------------------------
    @property
    def context(self):
        return cpu()

    ctx = context

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __len__(self) -> int:
        return self.shape[0]

    # -- conversions ---------------------------------------------------------------------
    def tostype(self, stype: str):
        return cast_storage(self, stype)

    def as_in_context(self, ctx):
        return self

    def copyto(self, other):
        if isinstance(other, BaseArray):
            other[:] = self
            return other
        return self.copy()

    def asscalar(self):
        if self.size != 1:
            raise ShapeError(f"asscalar needs an array of size 1, got shape {self.shape}")
        return self.asnumpy().reshape(-1)[0]

    def wait_to_read(self):
        return None

    # -- arithmetic through the operator registry ---------------------------------------
    def _binary(self, other, op, scalar_op, reverse=False):
        from ..ops.imperative import invoke

        if isinstance(other, numbers.Number) or (isinstance(other, np.ndarray) and other.ndim == 0):
            return invoke(scalar_op, [self], {"scalar": float(other), "reverse": reverse})[0]
        if isinstance(other, np.ndarray):
            other = array(other, dtype=self.dtype)
        if not isinstance(other, BaseArray):
            return NotImplemented
        lhs, rhs = (other, self) if reverse else (self, other)
        if lhs.shape == rhs.shape:
            return invoke("elemwise_" + op, [lhs, rhs], {})[0]
        return invoke("broadcast_" + op, [lhs, rhs], {})[0]

    def __add__(self, o):
        return self._binary(o, "add", "_plus_scalar")

    def __radd__(self, o):
        return self._binary(o, "add", "_plus_scalar", reverse=True)

    def __sub__(self, o):
        return self._binary(o, "sub", "_minus_scalar")

    def __rsub__(self, o):
        return self._binary(o, "sub", "_minus_scalar", reverse=True)

    def __mul__(self, o):
        return self._binary(o, "mul", "_mul_scalar")

    def __rmul__(self, o):
        return self._binary(o, "mul", "_mul_scalar", reverse=True)

    def __truediv__(self, o):
        return self._binary(o, "div", "_div_scalar")

    def __rtruediv__(self, o):
        return self._binary(o, "div", "_div_scalar", reverse=True)

    def __neg__(self):
        from ..ops.imperative import invoke

        return invoke("negative", [self], {})[0]

    def __iadd__(self, o):
        self[:] = self + o
        return self

    def __isub__(self, o):
        self[:] = self - o
        return self

    def __imul__(self, o):
        self[:] = self * o
        return self

    def __itruediv__(self, o):
        self[:] = self / o
        return self

    def __eq__(self, other):
        if isinstance(other, BaseArray):
            other = other.asnumpy()
        return array(self.asnumpy() == other)

    __hash__ = object.__hash__

    def __bool__(self):
        if self.size != 1:
            raise ValueError("the truth value of an array with more than one element is ambiguous")
        return bool(self.asscalar())

    # -- shared assignment ------------------------------------------------------------
    def reshape(self, *shape, **kwargs):
        raise StorageTypeError(
            f"reshape is not supported for {self.stype} arrays (as in MXNet); use .tostype('default') first"
        )

    def _check_full_slice(self, key, what="assignment to the whole array (x[:] = y)"):
        if not (isinstance(key, slice) and key == slice(None)):
            raise IndexError(f"{type(self).__name__} only supports {what}")

    def _value_as(self, value, stype):
        """``value`` (array of any stype, numpy, or scalar) converted to this array's shape and ``stype``."""
        if isinstance(value, numbers.Number):
            return cast_storage(NDArray(np.full(self.shape, value, dtype=self.dtype)), stype)
        if not isinstance(value, BaseArray):
            value = np.asarray(value, dtype=self.dtype)
            if value.shape != self.shape:
                raise ShapeError(
                    f"cannot assign an array of shape {value.shape} to an array of shape {self.shape}"
                )
            return cast_storage(NDArray(value), stype)
        if value.shape != self.shape:
            raise ShapeError(
                f"cannot assign an array of shape {value.shape} to an array of shape {self.shape}"
            )
        return cast_storage(value, stype)


class NDArray(BaseArray):
    """A dense array (storage type ``default``)."""

    __slots__ = ("_data", "__weakref__")
    stype = "default"

    def __init__(self, data: np.ndarray):
        self._data = data

    @property
    def shape(self):
        return self._data.shape

    @property
    def handle(self):
        return self._data

    def asnumpy(self) -> np.ndarray:
        return np.array(self._data)

    def copy(self):
        return NDArray(self._data.copy())

    def astype(self, dtype, copy=True):
        return NDArray(self._data.astype(dtype, copy=copy))

    def reshape(self, *shape, **kwargs):
        """A reshaped view; as in MXNet, ``0`` copies the input's dimension and ``-1`` is inferred."""
        shape = kwargs.get("shape", shape[0] if len(shape) == 1 and not isinstance(shape[0], numbers.Integral) else shape)
        shape = _shape_tuple(shape) if isinstance(shape, numbers.Integral) else tuple(int(s) for s in shape)
        target = tuple(self.shape[i] if d == 0 and i < self.ndim else d for i, d in enumerate(shape))
        try:
            return NDArray(self._data.reshape(target))
        except ValueError:
            raise ShapeError(f"cannot reshape an array of shape {self.shape} to {shape}") from None

    @property
    def T(self):
        return NDArray(self._data.T)

    def __getitem__(self, key):
        if isinstance(key, BaseArray):
            key = key.asnumpy().astype(np.int64)
        out = self._data[key]
        return NDArray(out) if isinstance(out, np.ndarray) else NDArray(np.asarray(out, dtype=self.dtype))

    def __setitem__(self, key, value):
        if isinstance(key, slice) and key == slice(None):
            if isinstance(value, NDArray):
                if value.shape != self.shape:
                    raise ShapeError(
                        f"cannot assign an array of shape {value.shape} to an array of shape {self.shape}"
                    )
                self._data[...] = value._data
            elif isinstance(value, numbers.Number):
                self._data[...] = value
            else:
                self._data[...] = self._value_as(value, "default")._data
            return
        if isinstance(value, BaseArray):
            value = value.asnumpy()
        self._data[key] = value

    def __repr__(self) -> str:
        return f"\n{self._data}\n<NDArray {_shape_str(self.shape)} @{self.context}>"

    def __iter__(self):
        for i in range(self.shape[0]):
            yield self[i]

    def __float__(self):
        return float(self.asscalar())


class CSRNDArray(BaseArray):
    """A 2-D compressed-sparse-row array (storage type ``csr``), compatible with scipy's layout."""

    __slots__ = ("_data", "_indices", "_indptr", "_shape", "__weakref__")
    stype = "csr"

    def __init__(self, data, indices, indptr, shape):
        self._data = data
        self._indices = indices
        self._indptr = indptr
        self._shape = tuple(int(s) for s in shape)

    @property
    def shape(self):
        return self._shape

    @property
    def data(self) -> NDArray:
        return NDArray(self._data)

    @property
    def indices(self) -> NDArray:
        return NDArray(self._indices)

    @property
    def indptr(self) -> NDArray:
        return NDArray(self._indptr)

    @property
    def nnz(self) -> int:
        return int(self._indptr[-1])

    def asscipy(self) -> sp.csr_matrix:
        return sp.csr_matrix((self._data, self._indices, self._indptr), shape=self._shape)

    def asnumpy(self) -> np.ndarray:
        out = np.zeros(self._shape, dtype=self.dtype)
        rows = np.repeat(np.arange(self._shape[0]), np.diff(self._indptr))
        np.add.at(out, (rows, self._indices), self._data)
        return out

    def copy(self):
        return CSRNDArray(self._data.copy(), self._indices.copy(), self._indptr.copy(), self._shape)

    def astype(self, dtype, copy=True):
        return CSRNDArray(self._data.astype(dtype, copy=copy), self._indices, self._indptr, self._shape)

    def __getitem__(self, key):
        if isinstance(key, int):
            key = slice(key, key + 1)
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise IndexError("CSRNDArray supports row slices x[a:b] only")
        start, stop, _ = key.indices(self._shape[0])
        stop = max(stop, start)
        lo, hi = self._indptr[start], self._indptr[stop]
        return CSRNDArray(
            self._data[lo:hi], self._indices[lo:hi], self._indptr[start : stop + 1] - lo,
            (stop - start, self._shape[1]),
        )

    def __setitem__(self, key, value):
        self._check_full_slice(key)
        src = value if isinstance(value, CSRNDArray) else self._value_as(value, "csr")
        if src.shape != self.shape:
            raise ShapeError(f"cannot assign an array of shape {src.shape} to an array of shape {self.shape}")
        self._data = src._data.astype(self.dtype, copy=True)
        self._indices = src._indices.copy()
        self._indptr = src._indptr.copy()

    def __repr__(self) -> str:
        return f"\n<CSRNDArray {_shape_str(self.shape)} @{self.context}>"


class RowSparseNDArray(BaseArray):
    """Rows ``indices`` (sorted, unique, int64) of an array; ``data`` has shape ``(len(indices),) + shape[1:]``."""

    __slots__ = ("_data", "_indices", "_shape", "__weakref__")
    stype = "row_sparse"

    def __init__(self, data, indices, shape):
        self._data = data
        self._indices = indices
        self._shape = tuple(int(s) for s in shape)

    @property
    def shape(self):
        return self._shape

    @property
    def data(self) -> NDArray:
        return NDArray(self._data)

    @property
    def indices(self) -> NDArray:
        return NDArray(self._indices)

    def asnumpy(self) -> np.ndarray:
        out = np.zeros(self._shape, dtype=self.dtype)
        out[self._indices] = self._data
        return out

    def copy(self):
        return RowSparseNDArray(self._data.copy(), self._indices.copy(), self._shape)

    def astype(self, dtype, copy=True):
        return RowSparseNDArray(self._data.astype(dtype, copy=copy), self._indices, self._shape)

    def retain(self, indices):
        """The rows of ``indices`` that are present, as a new row-sparse array."""
        idx = _as_index(indices.asnumpy() if isinstance(indices, BaseArray) else indices)
        keep = np.isin(self._indices, idx)
        return RowSparseNDArray(self._data[keep], self._indices[keep], self._shape)

    def __setitem__(self, key, value):
        self._check_full_slice(key)
        src = value if isinstance(value, RowSparseNDArray) else self._value_as(value, "row_sparse")
        if src.shape != self.shape:
            raise ShapeError(f"cannot assign an array of shape {src.shape} to an array of shape {self.shape}")
        self._data = src._data.astype(self.dtype, copy=True)
        self._indices = src._indices.copy()

    def __getitem__(self, key):
        self._check_full_slice(key, "the whole array x[:] as an index")
        return self

    def __repr__(self) -> str:
        return f"\n<RowSparseNDArray {_shape_str(self.shape)} @{self.context}>"


# -- storage conversion --------------------------------------------------------------------

def _dense_to_csr(x: np.ndarray) -> CSRNDArray:
    if x.ndim != 2:
        raise ShapeError(f"csr storage needs a 2-D array, got shape {x.shape}")
    m = sp.csr_matrix(x)
    return CSRNDArray(m.data.astype(x.dtype, copy=False), _as_index(m.indices), _as_index(m.indptr), x.shape)


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


# -- constructors --------------------------------------------------------------------------

def _dtype(dtype, default=DEFAULT_DTYPE):
    if dtype is None:
        dtype = DEFAULT_DTYPE if default is None else default
    return np.dtype(dtype)


def array(source, ctx=None, dtype=None):
    """A dense array from a list, numpy array, scipy matrix or another array (float32 unless ``dtype``)."""
    if isinstance(source, BaseArray):
        if source.stype != "default":
            return source.astype(_dtype(dtype, source.dtype))
        return NDArray(np.array(source._data, dtype=_dtype(dtype, source.dtype)))
    if sp.issparse(source):
        from .sparse import csr_matrix

        return csr_matrix(source, dtype=dtype)
    return NDArray(np.array(source, dtype=_dtype(dtype)))


def _shape_tuple(shape):
    return (int(shape),) if isinstance(shape, numbers.Integral) else tuple(int(s) for s in shape)


def zeros(shape, ctx=None, dtype=None, stype="default"):
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
    return cast_storage(out, check_stype(stype))


def full(shape, val, ctx=None, dtype=None):
    return NDArray(np.full(_shape_tuple(shape), val, dtype=_dtype(dtype)))


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
